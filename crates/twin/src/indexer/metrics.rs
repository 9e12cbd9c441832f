//! The indexer's Prometheus metrics: indexing progress, entity counts, and
//! GraphQL traffic.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntityLabel {
    pub entity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok`, `graphql_error` (HTTP 200 with `errors`) or `bad_request` (HTTP 400).
    pub outcome: String,
}

/// Handles to every indexer metric (cheap to clone).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub indexed_block: Gauge,
    pub chain_head: Gauge,
    pub lag_blocks: Gauge,
    pub reorgs: Counter,
    pub entities: Family<EntityLabel, Gauge>,
    pub requests: Family<OutcomeLabel, Counter>,
    pub latency: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them under `indexer_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            indexed_block: Gauge::default(),
            chain_head: Gauge::default(),
            lag_blocks: Gauge::default(),
            reorgs: Counter::default(),
            entities: Family::default(),
            requests: Family::default(),
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        };
        let r = registry.sub_registry_with_prefix("indexer");
        r.register(
            "indexed_block",
            "Last block indexed (what _meta.block.number reports)",
            m.indexed_block.clone(),
        );
        r.register(
            "chain_head",
            "Latest block number seen on the node",
            m.chain_head.clone(),
        );
        r.register(
            "lag_blocks",
            "Chain head minus the last indexed block",
            m.lag_blocks.clone(),
        );
        r.register(
            "reorgs",
            "Chain reorganisations rolled back",
            m.reorgs.clone(),
        );
        r.register("entities", "Stored entities by type", m.entities.clone());
        r.register(
            "graphql_requests",
            "GraphQL requests by outcome",
            m.requests.clone(),
        );
        r.register(
            "graphql_request_duration_seconds",
            "GraphQL request latency",
            m.latency.clone(),
        );
        m
    }

    pub fn set_entity_counts(&self, counts: &[(&str, i64)]) {
        for (entity, n) in counts {
            self.entities
                .get_or_create(&EntityLabel {
                    entity: entity.to_string(),
                })
                .set(*n);
        }
    }

    pub fn request(&self, outcome: &str, seconds: f64) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.latency.observe(seconds);
    }
}
