//! Live alerts: the plan's "Alerting Thresholds" (error rate > 1 %, P95 > 5 s,
//! queue depth > 1000, RPC success rate < 99 %) watched by the monitor every
//! second.
//!
//! Each rule is measured over the last minute ([`ALERT_WINDOW`]), as the
//! Prometheus rules in `deploy/prometheus/alerts.yml` are (`[1m]`): a
//! cumulative figure would hardly move late in a three-hour run, and would
//! never clear. The queue depth is the deepest gauge whose name says `queue`
//! in the latest scrape of the services. An alert fires when its rule becomes
//! true, and again only after it cleared; a rule without data in the window
//! (nothing ended, no call made, no scrape yet) keeps its state. Alerts are
//! reported (events, live view, summary, Prometheus), never judged: they do
//! not change the verdict.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::metrics::Hist;
use crate::schema::{AlertEvent, AlertName, AlertSummary, RpcCounts};

/// Every rule looks this far back.
pub const ALERT_WINDOW: Duration = Duration::from_secs(60);

/// The window's start is kept to this resolution (a mark every 5 s), so at
/// most 13 copies of the E2E histogram are held.
const MARK_EVERY: Duration = Duration::from_secs(5);

/// The limits of the plan's alerting thresholds (`alerts` in a profile).
/// Fields not given take the plan's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AlertLimits {
    /// Failed, dropped and cancelled users over users that ended (fraction).
    pub error_rate: f64,
    /// E2E p95 of successful journeys, seconds.
    pub p95_e2e_secs: f64,
    /// Deepest queue gauge of the services.
    pub queue_depth: f64,
    /// JSON-RPC calls answered with a result over all calls (fraction); fires below.
    pub rpc_success_rate: f64,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            error_rate: 0.01,
            p95_e2e_secs: 5.0,
            queue_depth: 1000.0,
            rpc_success_rate: 0.99,
        }
    }
}

impl AlertLimits {
    pub fn limit(&self, name: AlertName) -> f64 {
        match name {
            AlertName::ErrorRate => self.error_rate,
            AlertName::E2eP95 => self.p95_e2e_secs,
            AlertName::QueueDepth => self.queue_depth,
            AlertName::RpcSuccessRate => self.rpc_success_rate,
        }
    }

    /// The profile field of each limit, and whether it is a fraction.
    pub fn fields(&self) -> [(&'static str, f64, bool); 4] {
        [
            ("alerts.errorRate", self.error_rate, true),
            ("alerts.p95E2eSecs", self.p95_e2e_secs, false),
            ("alerts.queueDepth", self.queue_depth, false),
            ("alerts.rpcSuccessRate", self.rpc_success_rate, true),
        ]
    }
}

/// What the run measured by now (cumulative), read by [`AlertWatch::check`].
pub struct AlertInputs<'a> {
    /// Seconds since the schedule start.
    pub t_s: f64,
    /// Wall-clock milliseconds, for the event.
    pub timestamp: i64,
    /// Users that ended (finished, dropped or cancelled), and those of them that failed.
    pub ended: u64,
    pub bad: u64,
    /// E2E of successful journeys.
    pub e2e_ok: &'a Hist,
    /// The flow's JSON-RPC calls, if it counts them.
    pub rpc: Option<RpcCounts>,
    /// The services' gauges when they were scraped at this tick
    /// (source → metric → value); `None` between scrapes.
    pub gauges: Option<&'a BTreeMap<String, BTreeMap<String, f64>>>,
}

/// The cumulative figures at one moment: the start of a window.
struct Mark {
    at: Instant,
    ended: u64,
    bad: u64,
    e2e: Hist,
    rpc: RpcCounts,
}

/// The state of every rule and what fired so far.
pub struct AlertWatch {
    limits: AlertLimits,
    marks: VecDeque<Mark>,
    /// Firing rules with their latest value.
    firing: BTreeMap<AlertName, f64>,
    summary: BTreeMap<AlertName, AlertSummary>,
}

impl AlertWatch {
    pub fn new(limits: AlertLimits) -> AlertWatch {
        AlertWatch {
            limits,
            marks: VecDeque::new(),
            firing: BTreeMap::new(),
            summary: BTreeMap::new(),
        }
    }

    /// Counts alerts that fired before (a resumed run's journal).
    pub fn carry(&mut self, past: &[AlertEvent]) {
        for ev in past {
            self.count(ev);
        }
    }

    /// Evaluates every rule at `now` and returns the alerts that start firing.
    pub fn check(&mut self, now: Instant, x: &AlertInputs<'_>) -> Vec<AlertEvent> {
        let rpc = x.rpc.unwrap_or_default();
        if self
            .marks
            .back()
            .is_none_or(|m| now.saturating_duration_since(m.at) >= MARK_EVERY)
        {
            self.marks.push_back(Mark {
                at: now,
                ended: x.ended,
                bad: x.bad,
                e2e: x.e2e_ok.clone(),
                rpc,
            });
        }
        // The window starts at the newest mark at least ALERT_WINDOW old.
        while self
            .marks
            .get(1)
            .is_some_and(|m| now.saturating_duration_since(m.at) >= ALERT_WINDOW)
        {
            self.marks.pop_front();
        }
        let base = self.marks.front().expect("a mark was pushed");
        let ended = x.ended.saturating_sub(base.ended);
        let error_rate = (ended > 0).then(|| x.bad.saturating_sub(base.bad) as f64 / ended as f64);
        let p95 = {
            let mut w = x.e2e_ok.clone();
            match w.0.subtract(&base.e2e.0) {
                Ok(()) => w.pct_ms(95.0).map(|ms| ms / 1000.0),
                Err(_) => None,
            }
        };
        let calls = rpc.since(&base.rpc);
        let rpc_rate = x.rpc.and_then(|_| calls.success_rate());
        let queue = x.gauges.and_then(deepest_queue);
        let mut fired = Vec::new();
        for (name, value, source) in [
            (AlertName::ErrorRate, error_rate, None),
            (AlertName::E2eP95, p95, None),
            (
                AlertName::QueueDepth,
                queue.as_ref().map(|q| q.0),
                queue.as_ref().map(|q| q.1.clone()),
            ),
            (AlertName::RpcSuccessRate, rpc_rate, None),
        ] {
            let Some(value) = value else { continue };
            let limit = self.limits.limit(name);
            if !name.breached(value, limit) {
                self.firing.remove(&name);
                continue;
            }
            let was = self.firing.insert(name, value).is_some();
            let s = self.summary.entry(name).or_default();
            if was {
                s.worst = if name.fires_below() {
                    s.worst.min(value)
                } else {
                    s.worst.max(value)
                };
                continue;
            }
            let ev = AlertEvent {
                name,
                value,
                limit,
                t_s: x.t_s,
                timestamp: x.timestamp,
                source,
            };
            self.count(&ev);
            fired.push(ev);
        }
        fired
    }

    fn count(&mut self, ev: &AlertEvent) {
        let s = self.summary.entry(ev.name).or_default();
        let worse = |a: f64, b: f64| {
            if ev.name.fires_below() {
                a.min(b)
            } else {
                a.max(b)
            }
        };
        if s.count == 0 {
            s.first_s = ev.t_s;
            s.worst = ev.value;
        } else {
            s.first_s = s.first_s.min(ev.t_s);
            s.worst = worse(s.worst, ev.value);
        }
        s.count += 1;
        s.last_s = s.last_s.max(ev.t_s);
        s.limit = ev.limit;
    }

    /// The rules firing now, with their latest value.
    pub fn firing(&self) -> &BTreeMap<AlertName, f64> {
        &self.firing
    }

    /// The names of the rules firing now.
    pub fn firing_names(&self) -> BTreeSet<AlertName> {
        self.firing.keys().copied().collect()
    }

    /// How often each alert fired.
    pub fn summary(&self) -> BTreeMap<AlertName, AlertSummary> {
        self.summary.clone()
    }

    pub fn limits(&self) -> &AlertLimits {
        &self.limits
    }
}

/// The deepest gauge whose metric name (labels aside) says `queue`, as
/// (value, `source.metric`).
fn deepest_queue(gauges: &BTreeMap<String, BTreeMap<String, f64>>) -> Option<(f64, String)> {
    gauges
        .iter()
        .flat_map(|(src, m)| m.iter().map(move |(k, v)| (src, k, *v)))
        .filter(|(_, k, _)| {
            k.split('{')
                .next()
                .is_some_and(|n| n.to_ascii_lowercase().contains("queue"))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(src, k, v)| (v, format!("{src}.{k}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run {
        watch: AlertWatch,
        ended: u64,
        bad: u64,
        e2e: Hist,
        rpc: Option<RpcCounts>,
        t: f64,
    }

    impl Run {
        fn new() -> Run {
            Run {
                watch: AlertWatch::new(AlertLimits::default()),
                ended: 0,
                bad: 0,
                e2e: Hist::default(),
                rpc: None,
                t: 0.0,
            }
        }

        /// One second passes with `ok` and `failed` users ending.
        async fn second(&mut self, ok: u64, failed: u64) -> Vec<AlertEvent> {
            self.ended += ok + failed;
            self.bad += failed;
            for _ in 0..ok {
                self.e2e.record(Duration::from_secs(1));
            }
            self.tick(None).await
        }

        async fn tick(
            &mut self,
            gauges: Option<&BTreeMap<String, BTreeMap<String, f64>>>,
        ) -> Vec<AlertEvent> {
            let x = AlertInputs {
                t_s: self.t,
                timestamp: 0,
                ended: self.ended,
                bad: self.bad,
                e2e_ok: &self.e2e,
                rpc: self.rpc,
                gauges,
            };
            let fired = self.watch.check(Instant::now(), &x);
            tokio::time::advance(Duration::from_secs(1)).await;
            self.t += 1.0;
            fired
        }
    }

    /// Errors above 1 % fire once while they last, clear when the last minute
    /// is clean again, and fire again when they come back.
    #[tokio::test(start_paused = true)]
    async fn the_error_rate_fires_once_per_breach_over_the_last_minute() {
        let mut r = Run::new();
        let mut fired = Vec::new();
        for _ in 0..30 {
            fired.extend(r.second(10, 0).await);
        }
        assert!(fired.is_empty());
        for _ in 0..20 {
            fired.extend(r.second(5, 5).await);
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].name, AlertName::ErrorRate);
        // 5 failed of the 300 users that ended in the window (1 s … 30 s).
        assert_eq!(fired[0].t_s, 30.0);
        assert!((fired[0].value - 5.0 / 300.0).abs() < 1e-12);
        // Clean seconds: the failures stay in the window for up to a minute
        // (until 110 s, when the window starts at the 50 s mark).
        for _ in 0..60 {
            fired.extend(r.second(10, 0).await);
        }
        assert!(r.watch.firing().contains_key(&AlertName::ErrorRate));
        for _ in 0..10 {
            fired.extend(r.second(10, 0).await);
        }
        assert_eq!(fired.len(), 1);
        assert!(r.watch.firing().is_empty(), "cleared");
        for _ in 0..5 {
            fired.extend(r.second(0, 10).await);
        }
        assert_eq!(fired.len(), 2);
        assert_eq!(fired[1].t_s, 120.0);
        let s = &r.watch.summary()[&AlertName::ErrorRate];
        assert_eq!((s.count, s.first_s, s.last_s), (2, 30.0, 120.0));
        // The worst minute: 100 failed of 490 ended, at 49 s.
        assert!((s.worst - 100.0 / 490.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s.limit, 0.01);
    }

    /// A quiet minute (nothing ended) is no evidence: the state holds.
    #[tokio::test(start_paused = true)]
    async fn a_rule_without_data_keeps_its_state() {
        let mut r = Run::new();
        r.second(0, 0).await;
        assert_eq!(r.second(0, 5).await.len(), 1);
        for _ in 0..120 {
            assert!(r.second(0, 0).await.is_empty());
        }
        assert!(r.watch.firing().contains_key(&AlertName::ErrorRate));
        assert!(r.second(0, 1).await.is_empty(), "still the same breach");
    }

    /// Slow journeys, a deep queue and failing RPC each fire their own alert.
    #[tokio::test(start_paused = true)]
    async fn p95_queue_depth_and_rpc_success_fire_on_their_limits() {
        let mut r = Run::new();
        r.rpc = Some(RpcCounts {
            ok: 0,
            ..Default::default()
        });
        assert!(r.second(10, 0).await.is_empty());
        for _ in 0..10 {
            r.e2e.record(Duration::from_secs(9));
        }
        r.ended += 10;
        r.rpc = Some(RpcCounts {
            ok: 95,
            error: 4,
            timeout: 1,
        });
        let q = BTreeMap::from([(
            "inference".to_string(),
            BTreeMap::from([
                ("inference_queue_depth".to_string(), 1500.0),
                ("inference_workers".to_string(), 9999.0),
            ]),
        )]);
        let fired = r.tick(Some(&q)).await;
        let names: Vec<AlertName> = fired.iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                AlertName::E2eP95,
                AlertName::QueueDepth,
                AlertName::RpcSuccessRate
            ]
        );
        assert!((fired[0].value - 9.0).abs() < 0.1, "{:?}", fired[0]);
        assert_eq!(fired[1].value, 1500.0);
        assert_eq!(
            fired[1].source.as_deref(),
            Some("inference.inference_queue_depth")
        );
        assert_eq!(fired[2].value, 0.95);
        // Between scrapes the queue keeps its state; a shallow scrape clears it.
        assert!(r.tick(None).await.is_empty());
        assert!(r.watch.firing().contains_key(&AlertName::QueueDepth));
        let shallow = BTreeMap::from([(
            "tee".to_string(),
            BTreeMap::from([("tee_queue_depth".to_string(), 3.0)]),
        )]);
        r.tick(Some(&shallow)).await;
        assert!(!r.watch.firing().contains_key(&AlertName::QueueDepth));
    }

    /// The profile's limits are the ones applied.
    #[tokio::test(start_paused = true)]
    async fn configured_limits_replace_the_plans() {
        let mut r = Run::new();
        r.watch = AlertWatch::new(AlertLimits {
            error_rate: 0.5,
            ..Default::default()
        });
        r.second(0, 0).await;
        assert!(r.second(7, 3).await.is_empty(), "30 % < 50 %");
        assert_eq!(r.second(0, 20).await.len(), 1, "23 of 30 > 50 %");
    }

    #[test]
    fn a_partial_alerts_table_keeps_the_plans_other_limits() {
        let l: AlertLimits = toml::from_str("errorRate = 0.05").unwrap();
        assert_eq!(l.error_rate, 0.05);
        assert_eq!(l.p95_e2e_secs, 5.0);
        assert_eq!(l.rpc_success_rate, 0.99);
        let bad = toml::from_str::<AlertLimits>("errorRat = 0.05").unwrap_err();
        assert!(bad.to_string().contains("errorRat"), "{bad}");
    }
}
