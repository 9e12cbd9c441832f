//! Bottleneck analysis: which step's latency grows with load, and which
//! component saturates first (its step latency climbs with in-flight, its queue
//! gauge rises while completions stay flat, its errors begin), with the numbers.
//! The machine counts as a component too: when its CPU is saturated at that
//! onset, the knee is the machine's (the driver's, and the local twin's when
//! they share it), not a service's.
//!
//! It works from the results alone (journal + time series), whatever the flow.

mod gauges;
mod prose;

use serde::{Deserialize, Serialize};

use super::data::RunData;
use super::fmt::{ms as fmt_ms, num, secs};
use super::machine::machine_saturation;
use super::timeline::{Timeline, correlation};

use gauges::gauge_signal;
pub use gauges::{GaugeKind, gauge_series};
use prose::sentences;
pub use prose::{FAILED_BY_COMPONENT, component_name, knob_of};

/// How one step's median service time changes between low and high load.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct StepGrowth {
    pub step: String,
    pub component: String,
    /// Mean journeys in flight in the low- and high-load bins.
    pub low_in_flight: f64,
    pub high_in_flight: f64,
    /// Median of the per-bin step medians (ms) in the low- and high-load bins.
    pub low_p50_ms: f64,
    pub high_p50_ms: f64,
    pub ratio: f64,
    pub added_ms: f64,
    /// Pearson correlation of per-bin step median with in-flight.
    pub correlation: f64,
    /// Whether this counts as growth with load (r ≥ 0.5, ×1.5, and a material added time).
    pub grows: bool,
    /// First time (s) the step median got halfway from its low-load value to its high-load value.
    pub onset_s: Option<f64>,
}

/// A queue-like gauge of a component (relayer pending, inference queue, indexer lag).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct GaugeSignal {
    pub gauge: String,
    pub first: f64,
    pub max: f64,
    pub rising: bool,
    pub onset_s: Option<f64>,
    /// Mean completions/s in the bins after the onset, and the arrivals/s then
    /// (dropped arrivals included: they arrived and did not complete).
    pub completions_per_s_after: Option<f64>,
    pub arrivals_per_s_after: Option<f64>,
    /// Of those arrivals, the ones dropped before starting, per second.
    #[serde(default)]
    pub dropped_per_s_after: Option<f64>,
}

/// What the run says about one component.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct ComponentSignal {
    pub component: String,
    pub steps: Vec<String>,
    pub saturated: bool,
    pub onset_s: Option<f64>,
    /// Largest added median latency among its steps (ms) when they grow with load.
    pub latency_growth_ms: f64,
    pub queue: Option<GaugeSignal>,
    pub errors: u64,
    pub first_error_s: Option<f64>,
    /// Journeys/s through the component: at saturation, else the best observed (a lower bound).
    pub throughput_per_s: f64,
    pub knob: String,
    pub evidence: Vec<String>,
}

/// `summary.json`'s `bottleneck` object.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Default)]
pub struct Bottleneck {
    /// The component that saturates first, if any did.
    pub component: Option<String>,
    /// The step whose latency grows most with load (if any grew).
    pub step: Option<String>,
    /// The knob that would raise the limit.
    pub knob: Option<String>,
    /// Plain sentences, most important first.
    pub sentences: Vec<String>,
    pub in_flight_cap: u64,
    pub in_flight_max: u64,
    /// First time the in-flight count reached the cap.
    pub cap_reached_s: Option<f64>,
    pub delayed: u64,
    pub dropped: u64,
    /// Every step, most added latency first.
    pub steps: Vec<StepGrowth>,
    pub components: Vec<ComponentSignal>,
}

fn step_growth(data: &RunData, tl: &Timeline, step: &str, min_abs_ms: f64) -> Option<StepGrowth> {
    let p50 = tl.step_p50.get(step)?;
    let pts: Vec<(usize, f64, f64)> = p50
        .iter()
        .enumerate()
        .filter_map(|(i, y)| y.map(|y| (i, tl.in_flight[i], y)))
        .collect();
    if pts.len() < 4 {
        return None;
    }
    let xs: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
    let r = correlation(&xs, &ys);
    let mut by_load = pts.clone();
    by_load.sort_by(|a, b| a.1.total_cmp(&b.1));
    let third = (by_load.len() / 3).max(1);
    let med = |v: &[(usize, f64, f64)], f: fn(&(usize, f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        let n = x.len();
        if n % 2 == 1 {
            x[n / 2]
        } else {
            (x[n / 2 - 1] + x[n / 2]) / 2.0
        }
    };
    let low = &by_load[..third];
    let high = &by_load[by_load.len() - third..];
    let (low_p50, high_p50) = (med(low, |p| p.2), med(high, |p| p.2));
    let (low_if, high_if) = (
        low.iter().map(|p| p.1).sum::<f64>() / low.len() as f64,
        high.iter().map(|p| p.1).sum::<f64>() / high.len() as f64,
    );
    let added = high_p50 - low_p50;
    let ratio = if low_p50 > 0.0 {
        high_p50 / low_p50
    } else {
        1.0
    };
    let grows = r >= 0.5 && ratio >= 1.5 && added >= min_abs_ms;
    let half = low_p50 + added / 2.0;
    let onset_s = grows
        .then(|| pts.iter().find(|p| p.2 >= half).map(|p| tl.bins.mid(p.0)))
        .flatten();
    Some(StepGrowth {
        step: step.to_string(),
        component: data.component_of(step).to_string(),
        low_in_flight: low_if,
        high_in_flight: high_if,
        low_p50_ms: low_p50,
        high_p50_ms: high_p50,
        ratio,
        added_ms: added,
        correlation: r,
        grows,
        onset_s,
    })
}

/// Analyses a run. `tl` is the run's timeline (None when the journal is empty).
pub fn bottleneck(data: &RunData, tl: Option<&Timeline>) -> Bottleneck {
    let cap = data.config.max_concurrent_users;
    let in_flight_max = data.series.iter().map(|p| p.in_flight).max().unwrap_or(0);
    let cap_reached_s = data
        .series
        .iter()
        .find(|p| cap > 0 && p.in_flight >= cap)
        .map(|p| p.t_s);
    let mut b = Bottleneck {
        in_flight_cap: cap,
        in_flight_max,
        cap_reached_s,
        delayed: data.summary.users.delayed,
        dropped: data.summary.users.dropped,
        ..Default::default()
    };
    let e2e_p50 = data.summary.e2e_ms.p50.unwrap_or(0.0);
    let min_abs = (0.05 * e2e_p50).max(5.0);
    let steps = data.step_order();
    if let Some(tl) = tl {
        b.steps = steps
            .iter()
            .filter_map(|s| step_growth(data, tl, s, min_abs))
            .collect();
        b.steps.sort_by(|a, b| b.added_ms.total_cmp(&a.added_ms));
    }
    // Components in journey order.
    let mut comps: Vec<String> = Vec::new();
    for s in &steps {
        let c = data.component_of(s).to_string();
        if !comps.contains(&c) {
            comps.push(c);
        }
    }
    let gauges = gauge_series(data);
    for c in &comps {
        let csteps: Vec<String> = steps
            .iter()
            .filter(|s| data.component_of(s) == c)
            .cloned()
            .collect();
        let growth: Vec<&StepGrowth> = b
            .steps
            .iter()
            .filter(|g| g.grows && &g.component == c)
            .collect();
        let queue = gauges
            .iter()
            .find(|(k, _)| k.is_queue() && k.component() == c)
            .map(|(k, pts)| gauge_signal(*k, pts, tl));
        let errors: u64 = csteps
            .iter()
            .filter_map(|s| data.summary.steps.get(s))
            .map(|s| s.errors)
            .sum();
        let first_error_s = tl.and_then(|tl| {
            csteps
                .iter()
                .filter_map(|s| tl.first_failure.get(s).map(|f| f.0))
                .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.min(t))))
        });
        let throughput = tl.map_or(0.0, |tl| {
            csteps
                .iter()
                .filter_map(|s| tl.step_rate.get(s))
                .map(|r| Timeline::smooth(r).into_iter().fold(0.0, f64::max))
                .fold(f64::INFINITY, f64::min)
        });
        let throughput = if throughput.is_finite() {
            throughput
        } else {
            0.0
        };
        let finished = data.summary.users.succeeded + data.summary.users.failed;
        // Errors count as onset only when they rise with load (a constant
        // failure rate is a bug, not saturation).
        let error_onset = errors >= 3
            && errors as f64 >= 0.01 * finished as f64
            && tl.is_some_and(|tl| errors_rise_with_load(tl, &csteps));
        let mut evidence = Vec::new();
        for g in &growth {
            evidence.push(format!(
                "`{}` median rose from {} at {} journeys in flight to {} at {} in flight (×{}, r = {:.2})",
                g.step,
                fmt_ms(g.low_p50_ms),
                num(g.low_in_flight),
                fmt_ms(g.high_p50_ms),
                num(g.high_in_flight),
                num(g.ratio),
                g.correlation
            ));
        }
        if let Some(q) = queue.as_ref().filter(|q| q.rising) {
            let mut s = format!(
                "{} rose from {} to {} (from t = {})",
                q.gauge.to_lowercase(),
                num(q.first),
                num(q.max),
                secs(q.onset_s.unwrap_or(0.0))
            );
            if let (Some(c), Some(a)) = (q.completions_per_s_after, q.arrivals_per_s_after) {
                s.push_str(&format!(
                    " while completions stayed at {}/s against {}/s arriving",
                    num(c),
                    num(a)
                ));
                if let Some(d) = q.dropped_per_s_after.filter(|d| *d > 0.0) {
                    s.push_str(&format!(" ({}/s of them dropped before starting)", num(d)));
                }
            }
            evidence.push(s);
        }
        if error_onset {
            evidence.push(format!(
                "{errors} failed steps, the first at t = {}",
                secs(first_error_s.unwrap_or(0.0))
            ));
        }
        let saturated = !growth.is_empty() || queue.as_ref().is_some_and(|q| q.rising);
        let onset_s = growth
            .iter()
            .filter_map(|g| g.onset_s)
            .chain(queue.as_ref().and_then(|q| q.onset_s))
            .chain(if error_onset { first_error_s } else { None })
            .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.min(t))));
        b.components.push(ComponentSignal {
            component: c.clone(),
            steps: csteps,
            saturated,
            onset_s,
            latency_growth_ms: growth.iter().map(|g| g.added_ms).fold(0.0, f64::max),
            queue,
            errors,
            first_error_s,
            throughput_per_s: throughput,
            knob: knob_of(c),
            evidence,
        });
    }
    let width = tl.map_or(0.0, |t| t.bins.width);
    b.component = first_saturated(&b.components, width);
    // A saturated machine at that onset is the knee, whatever queue moved.
    let half_width = tl.map_or(data.config.metrics_interval, |t| t.bins.width);
    if let Some(machine) = machine_saturation(data, &b, half_width) {
        b.component = Some(machine.component.clone());
        b.components.push(machine);
    }
    // In flight at the cap is the whole system saturating: it is evidence for
    // the component that saturated (whose queueing filled the slots).
    if let (Some(t), Some(name)) = (b.cap_reached_s, b.component.clone())
        && let Some(sig) = b.components.iter_mut().find(|c| c.component == name)
    {
        sig.evidence.push(format!(
            "journeys in flight reached the cap of {cap} at t = {}, after which {} arrivals waited for a slot",
            secs(t),
            b.delayed
        ));
    }
    b.step = b.steps.iter().find(|g| g.grows).map(|g| g.step.clone());
    // The named component's own knob (a CPU-limited machine names its limit).
    b.knob = b.component.as_deref().map(|name| {
        b.components
            .iter()
            .find(|c| c.component == name)
            .map_or_else(|| knob_of(name), |c| c.knob.clone())
    });
    b.sentences = sentences(&b, data);
    b
}

/// Whether the failure rate of `steps` is clearly higher in the high-load bins
/// than in the low-load bins (by journeys in flight).
/// The component that saturates first: the earliest onset among the
/// saturated components (within one bin of it, the larger latency growth
/// wins), counting first those whose own steps slowed down or failed — a
/// queue that grew while its steps stayed as fast (an indexer a few blocks
/// behind an automining chain while inference queues) limits no journey,
/// and is named only when no component shows it in its steps. Error onset
/// alone only if none saturated.
fn first_saturated(components: &[ComponentSignal], width: f64) -> Option<String> {
    let pick = |cands: Vec<&ComponentSignal>| -> Option<String> {
        let first = cands
            .iter()
            .filter_map(|c| c.onset_s)
            .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.min(t))))?;
        cands
            .into_iter()
            .filter(|c| c.onset_s.is_some_and(|t| t <= first + width))
            .max_by(|a, b| {
                a.latency_growth_ms.total_cmp(&b.latency_growth_ms).then(
                    b.onset_s
                        .unwrap_or(0.0)
                        .total_cmp(&a.onset_s.unwrap_or(0.0)),
                )
            })
            .map(|c| c.component.clone())
    };
    let saturated: Vec<&ComponentSignal> = components.iter().filter(|c| c.saturated).collect();
    let felt: Vec<&ComponentSignal> = saturated
        .iter()
        .copied()
        .filter(|c| c.latency_growth_ms > 0.0 || c.errors > 0)
        .collect();
    pick(felt).or_else(|| pick(saturated)).or_else(|| {
        pick(
            components
                .iter()
                .filter(|c| !c.evidence.is_empty())
                .collect(),
        )
    })
}

fn errors_rise_with_load(tl: &Timeline, steps: &[String]) -> bool {
    let n = tl.bins.n;
    let (mut err, mut all) = (vec![0u64; n], vec![0u64; n]);
    for s in steps {
        if let Some(v) = tl.step_errors.get(s) {
            for i in 0..n {
                err[i] += v[i];
                all[i] += v[i];
            }
        }
        if let Some(v) = tl.step_count.get(s) {
            for i in 0..n {
                all[i] += v[i];
            }
        }
    }
    let mut pts: Vec<(f64, f64)> = (0..n)
        .filter(|&i| all[i] >= 3)
        .map(|i| (tl.in_flight[i], err[i] as f64 / all[i] as f64))
        .collect();
    if pts.len() < 4 {
        return false;
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let third = (pts.len() / 3).max(1);
    let mean = |v: &[(f64, f64)]| v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64;
    let (low, high) = (mean(&pts[..third]), mean(&pts[pts.len() - third..]));
    high >= (2.0 * low).max(low + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::machine::is_machine;
    use crate::report::timeline::Bins;
    use std::collections::BTreeMap;

    /// Ten 10 s bins with steady arrivals and completions per second.
    fn steady(arrivals: f64, completions: f64) -> Timeline {
        let n = 10;
        Timeline {
            bins: Bins {
                start: 0.0,
                width: 10.0,
                n,
            },
            in_flight: vec![100.0; n],
            completions_per_s: vec![completions; n],
            arrivals_per_s: vec![arrivals; n],
            dropped_per_s: vec![0.0; n],
            step_p50: BTreeMap::new(),
            step_count: BTreeMap::new(),
            step_rate: BTreeMap::new(),
            step_errors: BTreeMap::new(),
            first_failure: BTreeMap::new(),
        }
    }

    fn signal(component: &str, onset_s: f64, growth_ms: f64) -> ComponentSignal {
        ComponentSignal {
            component: component.into(),
            steps: vec![],
            saturated: true,
            onset_s: Some(onset_s),
            latency_growth_ms: growth_ms,
            queue: None,
            errors: 0,
            first_error_s: None,
            throughput_per_s: 0.0,
            knob: String::new(),
            evidence: vec!["a queue rose".into()],
        }
    }

    #[test]
    fn a_queue_whose_steps_stay_as_fast_is_not_named_before_one_users_feel() {
        // The indexer's lag rose first (t = 4 s) but `index` did not slow
        // down; inference queued from t = 8 s and `infer_wait` grew 11 s.
        let lag_only = signal("indexer", 4.0, 0.0);
        let felt = signal("inference", 8.0, 11_000.0);
        let both = [lag_only.clone(), felt.clone()];
        assert_eq!(first_saturated(&both, 2.0).as_deref(), Some("inference"));
        // Alone, the queue is still named (it is all the run shows).
        assert_eq!(
            first_saturated(std::slice::from_ref(&lag_only), 2.0).as_deref(),
            Some("indexer")
        );
        // Among components users feel, the earliest onset still wins.
        let earlier = signal("relayer", 2.0, 300.0);
        assert_eq!(
            first_saturated(&[felt, earlier, lag_only], 2.0).as_deref(),
            Some("relayer")
        );
    }

    #[test]
    fn a_queue_drained_as_fast_as_work_arrives_is_not_saturation() {
        // Pending transactions: 0 at the start, 7 under load from t = 15 s.
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (5.0 + 10.0 * i as f64, if i == 0 { 0.0 } else { 7.0 }))
            .collect();
        let kind = GaugeKind::RelayerPending;

        let keeping_pace = gauge_signal(kind, &pts, Some(&steady(12.1, 12.1)));
        assert!(!keeping_pace.rising, "{keeping_pace:?}");
        assert_eq!(keeping_pace.onset_s, None);

        let falling_behind = gauge_signal(kind, &pts, Some(&steady(12.0, 9.0)));
        assert!(falling_behind.rising, "{falling_behind:?}");
        assert_eq!(falling_behind.onset_s, Some(15.0));

        // Without a timeline there is nothing to compare with: the climb counts.
        assert!(gauge_signal(kind, &pts, None).rising);
        // Storage bytes are not a queue, however far they climb.
        assert!(!gauge_signal(GaugeKind::StorageBytes, &pts, Some(&steady(12.0, 9.0))).rising);
    }

    /// A results directory of a 60 s run at 10 arrivals/s whose every journey
    /// takes 1 s in `register` (the relayer). From t = 20 s every other arrival
    /// is dropped (queue timeout) and the relayer's pending gauge rises 0 → 27:
    /// the journeys that start all complete, the arrivals do not. Each snapshot
    /// records the host at `host_cpu` % (None: no system metrics); `target` is
    /// `run.json`'s `target.kind`.
    fn relayer_falls_behind(host_cpu: Option<f64>, target: &str) -> tempfile::TempDir {
        relayer_falls_behind_with(host_cpu, target, 1.0)
    }

    /// As [`relayer_falls_behind`], with the watched processes' CPU scaled by `own`.
    fn relayer_falls_behind_with(
        host_cpu: Option<f64>,
        target: &str,
        own: f64,
    ) -> tempfile::TempDir {
        relayer_falls_behind_limited(host_cpu, target, own, None)
    }

    /// As [`relayer_falls_behind_with`], the run allowed `limit` cores by its
    /// CPU affinity.
    fn relayer_falls_behind_limited(
        host_cpu: Option<f64>,
        target: &str,
        own: f64,
        limit: Option<f64>,
    ) -> tempfile::TempDir {
        use serde_json::json;
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("write results file")
        };
        let (mut events, mut completed, mut dropped) = (Vec::new(), 0u64, 0u64);
        for user in 0..600u64 {
            let intended_ms = user as f64 * 100.0;
            let base = json!({"wallet": "0x0", "test_id": "t", "timestamp": 0,
                "user": user, "intended_ms": intended_ms});
            let mut e = base.clone();
            if intended_ms >= 20_000.0 && user % 2 == 0 {
                dropped += 1;
                e["event"] = json!("flow_dropped");
                e["error"] = json!("queue_timeout");
                e["wait_ms"] = json!(5000.0);
            } else {
                completed += 1;
                e["event"] = json!("flow_complete");
                e["duration_ms"] = json!(1000.0);
                e["wait_ms"] = json!(0.0);
                e["steps"] = json!([{"name": "register", "ms": 1000.0, "ok": true}]);
            }
            events.push(e.to_string());
        }
        write("events.jsonl", events.join("\n"));
        let rows: Vec<String> = (1..=13)
            .map(|k| {
                let t = 5.0 * k as f64;
                let pending = if t <= 20.0 { 0.0 } else { 27.0 };
                let mut row = json!({"t_s": t, "in_flight": 10,
                    "gauges": {"relayer": {"relayer_pending_transactions": pending}}});
                if let Some(cpu) = host_cpu {
                    // A little jitter around the level, as a real machine shows.
                    let jitter = [-2.0, 0.0, 3.0, 1.0][k % 4];
                    row["system"] = json!({"host_cpu_pct": cpu + jitter, "host_cores": 2,
                        "processes": {"vana-load": {"cpu_pct": 1.2 * cpu * own, "rss_mb": 80.0},
                                      "anvil": {"cpu_pct": 0.5 * cpu * own, "rss_mb": 300.0}}});
                    if target != "twin" {
                        // Against a remote target only the driver is watched.
                        row["system"]["processes"]
                            .as_object_mut()
                            .unwrap()
                            .remove("anvil");
                    }
                    if let Some(cores) = limit {
                        row["system"]["cpu_limit"] = json!({"cores": cores, "by": "affinity"});
                    }
                }
                row.to_string()
            })
            .collect();
        write("timeseries.jsonl", rows.join("\n"));
        let summary = json!({
            "users": {"planned": 600, "started": completed, "succeeded": completed,
                      "failed": 0, "delayed": dropped, "dropped": dropped},
            "e2e_ms": {"p50": 1000.0, "p95": 1000.0, "p99": 1000.0, "max": 1000.0},
            "steps": {"register": {"count": completed, "errors": 0,
                                   "p50_ms": 1000.0, "p95_ms": 1000.0, "p99_ms": 1000.0}},
            "errors": {},
            "throughput": {"flows_per_s": 6.7, "peak_flows_per_s": 10.0, "tx_per_s": 0.0},
            "criteria": [],
            "verdict": "pass"
        });
        write("summary.json", summary.to_string());
        write(
            "run.json",
            json!({"run_id": "t", "target": {"kind": target},
                "steps": [{"name": "register", "component": "relayer", "timeout": 60.0, "chain": true}]})
            .to_string(),
        );
        dir
    }

    fn analyse_dir(dir: &tempfile::TempDir) -> Bottleneck {
        let data = RunData::load(dir.path()).expect("results load");
        let tl = Timeline::build(&data);
        bottleneck(&data, tl.as_ref())
    }

    const NETWORK: [&str; 7] = [
        "relayer",
        "inference",
        "personal_server",
        "chain",
        "indexer",
        "storage",
        "tee",
    ];

    #[test]
    fn dropped_arrivals_do_not_complete_so_a_queue_that_drops_work_is_saturated() {
        let dir = relayer_falls_behind(None, "twin");
        let b = analyse_dir(&dir);
        assert_eq!(
            b.component.as_deref(),
            Some("relayer"),
            "{:#?}",
            b.sentences
        );
        let q = b
            .components
            .iter()
            .find(|c| c.component == "relayer")
            .and_then(|c| c.queue.clone())
            .expect("relayer queue gauge");
        assert!(q.rising, "{q:?}");
        // About 5 completions/s against 10 arrivals/s, half of them dropped.
        let (c, a) = (
            q.completions_per_s_after.unwrap_or(0.0),
            q.arrivals_per_s_after.unwrap_or(0.0),
        );
        assert!((8.0..=12.0).contains(&a) && c < 0.8 * a, "{c}/s of {a}/s");
        assert!(q.dropped_per_s_after.is_some_and(|d| d > 3.0), "{q:?}");
        assert!(
            b.sentences[0].contains("dropped before starting"),
            "{}",
            b.sentences[0]
        );
    }

    #[test]
    fn a_host_kept_busy_by_other_work_is_not_blamed_on_the_run() {
        // 90 % busy, but the driver and the twin use a fifth of that: a build
        // or parallel tests took the CPU, so the queue that moved is named.
        let dir = relayer_falls_behind_with(Some(90.0), "twin", 0.2);
        let b = analyse_dir(&dir);
        assert_eq!(
            b.component.as_deref(),
            Some("relayer"),
            "{:#?}",
            b.sentences
        );
    }

    #[test]
    fn a_saturated_host_shared_with_a_local_twin_is_named_instead_of_the_queue() {
        let dir = relayer_falls_behind(Some(90.0), "twin");
        let b = analyse_dir(&dir);
        assert_eq!(
            b.component.as_deref(),
            Some("host_cpu"),
            "{:#?}",
            b.sentences
        );
        assert_eq!(b.knob.as_deref().map(|k| k.contains("CPU")), Some(true));
        let first = &b.sentences[0];
        assert!(
            first.contains("host CPU (driver and twin share it)"),
            "{first}"
        );
        // The measured share (88–93 % around the onset) and what it means.
        assert!(first.contains("2 cores were 88–93 % busy"), "{first}");
        assert!(
            first.contains("the knee is the machine's, not a service's")
                && first.contains("lower bound"),
            "{first}"
        );
        assert!(first.contains("vana-load 108 %"), "{first}");
        let host = b
            .components
            .iter()
            .find(|c| c.component == "host_cpu")
            .expect("host_cpu signal");
        assert!(host.saturated && host.onset_s.is_some(), "{host:?}");
        assert!(!first.contains("The bottleneck is the relayer"), "{first}");
    }

    #[test]
    fn a_host_at_forty_percent_leaves_the_queue_named() {
        let dir = relayer_falls_behind(Some(40.0), "twin");
        let b = analyse_dir(&dir);
        assert_eq!(
            b.component.as_deref(),
            Some("relayer"),
            "{:#?}",
            b.sentences
        );
        assert!(!b.components.iter().any(|c| is_machine(&c.component)));
    }

    #[test]
    fn a_saturated_driver_against_a_remote_target_is_the_generator_not_the_network() {
        let dir = relayer_falls_behind(Some(90.0), "network");
        let b = analyse_dir(&dir);
        let c = b.component.clone().unwrap_or_default();
        assert!(
            !NETWORK.contains(&c.as_str()),
            "named {c}: {:#?}",
            b.sentences
        );
        assert_eq!(c, "driver_cpu");
        assert!(
            b.sentences[0].contains("load generator itself was saturated"),
            "{}",
            b.sentences[0]
        );
        assert!(!b.sentences[0].contains("share this machine"));
    }

    /// The bottleneck of `dir`'s run, asserted to be `want`.
    fn names(dir: tempfile::TempDir, want: &str) -> Bottleneck {
        let b = analyse_dir(&dir);
        assert_eq!(b.component.as_deref(), Some(want), "{:#?}", b.sentences);
        b
    }

    #[test]
    fn a_run_that_used_all_the_cpu_it_may_use_is_saturated_whatever_the_machine() {
        // Pinned to one of two cores: the host is ~50 % busy, but vana-load
        // and anvil together use ~95 % of the one core the run may use.
        let pinned =
            |target, own, limit| relayer_falls_behind_limited(Some(50.0), target, own, limit);
        let b = names(pinned("twin", 1.12, Some(1.0)), "host_cpu");
        let first = &b.sentences[0];
        assert!(
            first.contains("may use 1 core (CPU affinity) of the machine's 2 cores")
                && first.contains("% busy"),
            "{first}"
        );
        assert!(first.contains("limit, not the machine, ran out"), "{first}");
        let knob = b.knob.as_deref().unwrap_or_default();
        assert!(
            knob.starts_with("the run's CPU limit (1 core (CPU affinity)"),
            "{knob}"
        );
        // The same run without the limit: the host at 50 % is not saturated.
        names(pinned("twin", 1.12, None), "relayer");
        // A pinned driver against a remote target: the generator, not the network.
        let b = names(pinned("network", 1.6, Some(1.0)), "driver_cpu");
        assert!(
            b.sentences[0].contains("load generator may use 1 core (CPU affinity)"),
            "{}",
            b.sentences[0]
        );
        // Pinned, but using a third of its core: nothing saturated.
        names(pinned("twin", 0.35, Some(1.0)), "relayer");
    }
}
