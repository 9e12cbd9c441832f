//! The relayer's Prometheus metrics: requests, pending transactions, per-key
//! next nonce and in-flight count, confirmation latency, replacements and
//! errors by kind.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the relayer exports; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `relayer_requests_total{type,operation}`.
    pub requests: Family<Labels, Counter>,
    /// `relayer_pending_transactions`: broadcast, not yet mined.
    pub pending: Gauge,
    /// `relayer_key_next_nonce{key}`.
    pub next_nonce: Family<Labels, Gauge>,
    /// `relayer_key_in_flight{key}`.
    pub in_flight: Family<Labels, Gauge>,
    /// `relayer_confirm_latency_seconds`: request accepted → receipt seen.
    pub confirm_latency: Histogram,
    /// `relayer_replacements_total`: bump-and-replace broadcasts.
    pub replacements: Counter,
    /// `relayer_nonce_fills_total`: cancelled nonces filled by a self-transfer.
    pub nonce_fills: Counter,
    /// `relayer_errors_total{kind}`.
    pub errors: Family<Labels, Counter>,
    /// `relayer_confirmed_total{status}` (`success` / `reverted`).
    pub confirmed: Family<Labels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` with the `relayer_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            requests: Family::default(),
            pending: Gauge::default(),
            next_nonce: Family::default(),
            in_flight: Family::default(),
            confirm_latency: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            replacements: Counter::default(),
            nonce_fills: Counter::default(),
            errors: Family::default(),
            confirmed: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("relayer");
        r.register(
            "requests",
            "Relay requests by type and operation",
            m.requests.clone(),
        );
        r.register(
            "pending_transactions",
            "Transactions broadcast and not yet mined",
            m.pending.clone(),
        );
        r.register(
            "key_next_nonce",
            "Next nonce each relayer key will use",
            m.next_nonce.clone(),
        );
        r.register(
            "key_in_flight",
            "Operations holding a window slot of each relayer key",
            m.in_flight.clone(),
        );
        r.register(
            "confirm_latency_seconds",
            "Time from accepting a transaction to seeing its receipt",
            m.confirm_latency.clone(),
        );
        r.register(
            "replacements",
            "Fee-bumped replacements of stuck transactions",
            m.replacements.clone(),
        );
        r.register(
            "nonce_fills",
            "Nonces of failed submissions filled by a 0-value self-transfer",
            m.nonce_fills.clone(),
        );
        r.register("errors", "Errors by kind", m.errors.clone());
        r.register(
            "confirmed",
            "Mined relayer transactions by receipt status",
            m.confirmed.clone(),
        );
        m
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&vec![("kind".to_string(), kind.to_string())])
            .inc();
    }

    pub fn request(&self, ty: &str, operation: &str) {
        self.requests
            .get_or_create(&vec![
                ("type".to_string(), ty.to_string()),
                ("operation".to_string(), operation.to_string()),
            ])
            .inc();
    }

    pub fn key_labels(key: &alloy::primitives::Address) -> Labels {
        vec![("key".to_string(), key.to_string())]
    }
}
