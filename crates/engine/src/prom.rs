//! Prometheus: the engine's own metrics served at `/metrics` (`--metrics-addr`),
//! and scraping of other services' `/metrics` (plain gauges and counters) into
//! the run's time series.
//!
//! `deploy/grafana/vana-load.json` charts these metrics and
//! `deploy/prometheus/alerts.yml` alerts on them; a test checks that every
//! metric they query is one this registry (or the twin's) exports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn latency_hist() -> Histogram {
    // 10 ms … ~5.8 min.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// The engine's metrics, updated live by the run.
#[derive(Clone)]
pub struct PromMetrics {
    registry: Arc<Registry>,
    pub arrivals: Counter,
    pub started: Counter,
    pub delayed: Counter,
    pub dropped: Counter,
    pub in_flight: Gauge,
    pub completed: Family<Labels, Counter>,
    pub failed: Family<Labels, Counter>,
    pub e2e: Histogram,
    pub step: Family<Labels, Histogram, fn() -> Histogram>,
    pub planned_arrivals: Gauge,
    pub breakers_open: Gauge,
    pub schedule_lag_p99: Gauge<f64, AtomicU64>,
    /// `vana_load_rpc_requests_total{outcome}`: the flow's JSON-RPC calls.
    pub rpc_requests: Family<Labels, Counter>,
    /// `vana_load_alerts_total{name}`: times each alert started firing.
    pub alerts: Family<Labels, Counter>,
    /// `vana_load_alert_firing{name}`: 1 while the alert fires.
    pub alert_firing: Family<Labels, Gauge>,
}

impl Default for PromMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PromMetrics {
    pub fn new() -> PromMetrics {
        let mut r = Registry::with_prefix("vana_load");
        let m = PromMetrics {
            registry: Arc::new(Registry::default()),
            arrivals: Counter::default(),
            started: Counter::default(),
            delayed: Counter::default(),
            dropped: Counter::default(),
            in_flight: Gauge::default(),
            completed: Family::default(),
            failed: Family::default(),
            e2e: latency_hist(),
            step: Family::new_with_constructor(latency_hist as fn() -> Histogram),
            planned_arrivals: Gauge::default(),
            breakers_open: Gauge::default(),
            schedule_lag_p99: Gauge::default(),
            rpc_requests: Family::default(),
            alerts: Family::default(),
            alert_firing: Family::default(),
        };
        r.register(
            "arrivals",
            "Arrivals dispatched by the schedule",
            m.arrivals.clone(),
        );
        r.register("started", "Journeys started", m.started.clone());
        r.register(
            "delayed",
            "Arrivals that waited for a concurrency slot",
            m.delayed.clone(),
        );
        r.register(
            "dropped",
            "Arrivals dropped (slot wait timeout or circuit breaker)",
            m.dropped.clone(),
        );
        r.register("in_flight", "Journeys in flight", m.in_flight.clone());
        r.register("completed", "Journeys that succeeded", m.completed.clone());
        r.register(
            "failed",
            "Journeys that failed, by error class and step",
            m.failed.clone(),
        );
        r.register(
            "e2e_seconds",
            "End-to-end latency of successful journeys from the intended start",
            m.e2e.clone(),
        );
        r.register(
            "step_seconds",
            "Service time of successful steps",
            m.step.clone(),
        );
        r.register(
            "planned_arrivals",
            "Arrivals the schedule intended so far",
            m.planned_arrivals.clone(),
        );
        r.register(
            "breakers_open",
            "Open circuit breakers",
            m.breakers_open.clone(),
        );
        r.register(
            "schedule_lag_p99_seconds",
            "p99 of dispatch lag behind the intended start",
            m.schedule_lag_p99.clone(),
        );
        r.register(
            "rpc_requests",
            "JSON-RPC calls the flow made, by outcome (ok, error, timeout)",
            m.rpc_requests.clone(),
        );
        r.register(
            "alerts",
            "Times each of the plan's alerting thresholds started to be breached",
            m.alerts.clone(),
        );
        r.register(
            "alert_firing",
            "1 while an alert fires, by name",
            m.alert_firing.clone(),
        );
        PromMetrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Adds the calls made since `before` to `vana_load_rpc_requests_total`.
    pub fn add_rpc(&self, now: &crate::schema::RpcCounts, before: &crate::schema::RpcCounts) {
        let d = now.since(before);
        for (outcome, n) in [("ok", d.ok), ("error", d.error), ("timeout", d.timeout)] {
            self.rpc_requests
                .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
                .inc_by(n);
        }
    }

    /// Sets `vana_load_alert_firing` for every alert (1 firing, 0 not) and
    /// counts the ones that just `fired`.
    pub fn set_alerts(
        &self,
        firing: &std::collections::BTreeSet<crate::schema::AlertName>,
        fired: &[crate::schema::AlertEvent],
    ) {
        let label =
            |n: crate::schema::AlertName| vec![("name".to_string(), n.as_str().to_string())];
        for name in crate::schema::AlertName::ALL {
            self.alert_firing
                .get_or_create(&label(name))
                .set(i64::from(firing.contains(&name)));
        }
        for ev in fired {
            self.alerts.get_or_create(&label(ev.name)).inc();
        }
    }

    /// The text exposition of all metrics.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// Serves `/metrics` on `addr` until the returned handle is aborted.
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let me = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let me = me.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        me.encode(),
                    )
                }
            }),
        );
        let h = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((local, h))
    }
}

/// A service whose `/metrics` is scraped each interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaugeSource {
    /// Short name used as the key in the time series (e.g. `relayer`).
    pub name: String,
    /// Full URL of the Prometheus text endpoint.
    pub url: String,
}

/// Parses the Prometheus text format, keeping samples of metrics typed gauge,
/// counter or untyped (histogram and summary series are skipped). Keys are
/// `name` or `name{labels}` as written.
pub fn parse_prometheus_text(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n, t);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(i) => match line[i..].find('}') {
                Some(j) => (&line[..i + j + 1], &line[i + j + 1..]),
                None => continue,
            },
            None => match line.find(char::is_whitespace) {
                Some(i) => (&line[..i], &line[i..]),
                None => continue,
            },
        };
        let name = series.split('{').next().unwrap_or(series);
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let family_type = types.get(name).copied().or_else(|| {
            // Counters are exposed as `<family>_total` in OpenMetrics.
            name.strip_suffix("_total")
                .and_then(|f| types.get(f).copied())
        });
        match family_type {
            Some("gauge" | "counter" | "untyped" | "unknown") | None => {
                let is_hist_part = ["_bucket", "_sum", "_count", "_created"].iter().any(|s| {
                    name.strip_suffix(s)
                        .is_some_and(|f| matches!(types.get(f), Some(&"histogram" | &"summary")))
                });
                if !is_hist_part {
                    out.insert(series.to_string(), value);
                }
            }
            _ => {}
        }
    }
    out
}

/// Scrapes every source once (2 s timeout each); a failing source yields an empty map
/// and a `scrape_error` entry of 1.
pub async fn scrape_all(
    client: &reqwest::Client,
    sources: &[GaugeSource],
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let futs = sources.iter().map(|s| async move {
        let got = async {
            let resp = client
                .get(&s.url)
                .timeout(Duration::from_secs(2))
                .send()
                .await?
                .error_for_status()?;
            resp.text().await
        }
        .await;
        let map = match got {
            Ok(t) => parse_prometheus_text(&t),
            Err(_) => BTreeMap::from([("scrape_error".to_string(), 1.0)]),
        };
        (s.name.clone(), map)
    });
    futures::future::join_all(futs).await.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AlertEvent, AlertName, RpcCounts};

    /// RPC counts are added as deltas, alerts set their gauge and count each firing.
    #[test]
    fn rpc_calls_and_alerts_are_exported() {
        let p = PromMetrics::new();
        let a = RpcCounts {
            ok: 5,
            error: 1,
            timeout: 0,
        };
        let b = RpcCounts {
            ok: 8,
            error: 1,
            timeout: 2,
        };
        p.add_rpc(&a, &RpcCounts::default());
        p.add_rpc(&b, &a);
        let fired = AlertEvent {
            name: AlertName::QueueDepth,
            value: 2000.0,
            limit: 1000.0,
            t_s: 1.0,
            timestamp: 0,
            source: None,
        };
        p.set_alerts(&[AlertName::QueueDepth].into(), &[fired]);
        let m = parse_prometheus_text(&p.encode());
        assert_eq!(m[r#"vana_load_rpc_requests_total{outcome="ok"}"#], 8.0);
        assert_eq!(m[r#"vana_load_rpc_requests_total{outcome="error"}"#], 1.0);
        assert_eq!(m[r#"vana_load_rpc_requests_total{outcome="timeout"}"#], 2.0);
        assert_eq!(m[r#"vana_load_alert_firing{name="queue_depth"}"#], 1.0);
        assert_eq!(m[r#"vana_load_alert_firing{name="error_rate"}"#], 0.0);
        assert_eq!(m[r#"vana_load_alerts_total{name="queue_depth"}"#], 1.0);
    }
}
