//! The merged time series (`timeseries.jsonl`) and interval histograms
//! (`intervals.hlog`), aligned on the shared start.
//!
//! Every shard snapshots on the grid `t0 + k·I` of its schedule's time zero
//! (the shared start), plus once when it ends. Each row is placed, on the
//! merged run's clock, in the interval `((b−1)·I, b·I]` it closes (with a
//! little slack for a tick's delay); a shard's last, shorter interval joins
//! the interval it falls in. Per interval:
//! - counters that accumulate (arrivals, started, succeeded, …, the RPC
//!   calls) add up, each shard's last value carried forward through
//!   intervals where it wrote no row;
//! - per-interval counts (completions, failures by class, transactions) add
//!   up and become rates over the merged interval's length;
//! - the interval's E2E percentiles come from the sum of the shards'
//!   interval histograms (exact, as HDR histograms add);
//! - the per-step percentiles come from the merged journal (every journey's
//!   steps up to the interval's end);
//! - the schedule-lag p99 is the highest shard's (the union's p99 lies
//!   between the shards' lowest and highest);
//! - the load generator's own CPU and memory are left out: each shard's
//!   report has its own machine's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::load::ShardRun;
use crate::metrics::{Hist, Snapshot, StepPoint};
use crate::schedule::Schedule;
use crate::schema::{Event, RpcCounts};

/// Where on the merged clock a row written at `t_s` falls: the interval
/// `((b−1)·I, b·I]` it closes, with a little slack for a tick that came late.
fn bucket(t_s: f64, interval: f64) -> i64 {
    let slack = (0.1 * interval).min(0.25);
    ((t_s - slack) / interval).ceil().max(0.0) as i64
}

/// One shard's contribution to one interval.
#[derive(Default, Clone)]
struct Part {
    t_s: f64,
    /// The shard's last row in the interval (cumulative values).
    last: Snapshot,
    completions: u64,
    arrivals: u64,
    txs: f64,
    failures: u64,
    errors: BTreeMap<String, u64>,
    breakers: BTreeSet<String>,
    alerts: BTreeSet<crate::schema::AlertName>,
    gauges: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Groups one shard's rows by interval.
fn parts(s: &ShardRun, shift: f64, interval: f64) -> BTreeMap<i64, Part> {
    let mut out: BTreeMap<i64, Part> = BTreeMap::new();
    let mut prev: Option<&Snapshot> = None;
    for row in &s.series {
        let t = row.t_s + shift;
        let p = out.entry(bucket(t, interval)).or_default();
        let (succ0, arr0, t0) = prev.map_or((0, 0, 0.0), |q| (q.succeeded, q.arrivals, q.t_s));
        p.t_s = p.t_s.max(t);
        p.completions += row.succeeded.saturating_sub(succ0);
        p.arrivals += row.arrivals.saturating_sub(arr0);
        p.txs += row.tx_per_s * (row.t_s - t0).max(0.0);
        p.failures += row.interval_failures;
        for (k, v) in &row.errors {
            *p.errors.entry(k.clone()).or_default() += v;
        }
        p.breakers.extend(row.breakers_open.iter().cloned());
        p.alerts.extend(row.alerts.iter().copied());
        for (src, m) in &row.gauges {
            p.gauges.entry(src.clone()).or_default().extend(m.clone());
        }
        p.last = row.clone();
        prev = Some(row);
    }
    out
}

/// The merged rows, each with its interval's number. `journal` holds every
/// merged journey; `sched` is the whole run's schedule.
pub(crate) fn merge_series(
    shards: &[ShardRun],
    shifts: &[f64],
    interval: f64,
    sched: &Schedule,
    journal: &mut [JournalEntry],
    intervals: &BTreeMap<i64, Hist>,
) -> Vec<(i64, Snapshot)> {
    let per: Vec<BTreeMap<i64, Part>> = shards
        .iter()
        .zip(shifts)
        .map(|(s, sh)| parts(s, *sh, interval))
        .collect();
    let buckets: BTreeSet<i64> = per.iter().flat_map(|p| p.keys().copied()).collect();
    journal.sort_by(|a, b| a.end_s.total_cmp(&b.end_s));
    let mut steps: BTreeMap<String, (Hist, u64)> = BTreeMap::new();
    let mut next_journey = 0;
    let mut carried: Vec<Option<Snapshot>> = vec![None; shards.len()];
    let mut out: Vec<(i64, Snapshot)> = Vec::new();
    let mut prev_t = 0.0;
    for b in buckets {
        let mut row = Snapshot::default();
        let mut sums = Part::default();
        let mut rpc: Option<RpcCounts> = None;
        let mut lag_p99: Option<f64> = None;
        for (i, p) in per.iter().enumerate() {
            if let Some(part) = p.get(&b) {
                carried[i] = Some(part.last.clone());
                sums.t_s = sums.t_s.max(part.t_s);
                sums.completions += part.completions;
                sums.arrivals += part.arrivals;
                sums.txs += part.txs;
                sums.failures += part.failures;
                for (k, v) in &part.errors {
                    *sums.errors.entry(k.clone()).or_default() += v;
                }
                sums.breakers.extend(part.breakers.iter().cloned());
                sums.alerts.extend(part.alerts.iter().copied());
                for (src, m) in &part.gauges {
                    sums.gauges
                        .entry(src.clone())
                        .or_default()
                        .extend(m.clone());
                }
            }
            let Some(c) = &carried[i] else { continue };
            row.planned_arrivals += c.planned_arrivals;
            row.arrivals += c.arrivals;
            row.started += c.started;
            row.in_flight += c.in_flight;
            row.succeeded += c.succeeded;
            row.failed += c.failed;
            row.delayed += c.delayed;
            row.dropped += c.dropped;
            if let Some(x) = c.rpc {
                rpc.get_or_insert_with(RpcCounts::default).add(&x);
            }
            if let Some(x) = c.schedule_lag_p99_ms {
                lag_p99 = Some(lag_p99.map_or(x, |y: f64| y.max(x)));
            }
        }
        let t = sums.t_s;
        let len = t - prev_t;
        let per_s = |n: f64| if len > 0.0 { n / len } else { 0.0 };
        row.t_s = t;
        row.phase = sched.curve.phase(t).name().to_string();
        row.completions_per_s = per_s(sums.completions as f64);
        row.arrivals_per_s = per_s(sums.arrivals as f64);
        row.tx_per_s = per_s(sums.txs);
        row.interval_failures = sums.failures;
        row.errors = sums.errors;
        if let Some(h) = intervals.get(&b) {
            row.e2e_p50_ms = h.pct_ms(50.0);
            row.e2e_p95_ms = h.pct_ms(95.0);
            row.e2e_p99_ms = h.pct_ms(99.0);
        }
        while next_journey < journal.len() && journal[next_journey].end_s <= t {
            for (name, ms, ok) in &journal[next_journey].steps {
                let e = steps.entry(name.clone()).or_default();
                if *ok {
                    e.0.record(Duration::from_secs_f64(ms / 1000.0));
                } else {
                    e.1 += 1;
                }
            }
            next_journey += 1;
        }
        row.steps = steps
            .iter()
            .map(|(k, (h, errors))| {
                let point = StepPoint {
                    p50_ms: h.pct_ms(50.0),
                    p95_ms: h.pct_ms(95.0),
                    errors: *errors,
                };
                (k.clone(), point)
            })
            .collect();
        row.schedule_lag_p99_ms = lag_p99;
        row.breakers_open = sums.breakers.into_iter().collect();
        row.gauges = sums.gauges;
        row.rpc = rpc;
        row.alerts = sums.alerts.into_iter().collect();
        prev_t = t;
        out.push((b, row));
    }
    out
}

/// The shards' interval E2E histograms, added per merged interval.
pub(crate) fn merge_intervals(
    shards: &[ShardRun],
    shifts: &[f64],
    interval: f64,
) -> Result<BTreeMap<i64, Hist>, super::MergeError> {
    let mut out: BTreeMap<i64, Hist> = BTreeMap::new();
    for (s, shift) in shards.iter().zip(shifts) {
        for e in s
            .intervals
            .iter()
            .filter(|e| e.tag.as_deref() == Some("e2e"))
        {
            let end = (e.start + e.len).as_secs_f64() + shift;
            out.entry(bucket(end, interval))
                .or_default()
                .0
                .add(&e.hist)
                .map_err(|x| super::MergeError::Histogram(format!("{x:?}")))?;
        }
    }
    Ok(out)
}

/// A finished journey's steps, for the per-step series.
pub(crate) struct JournalEntry {
    /// When it ended, on the merged clock.
    end_s: f64,
    /// (step, milliseconds, ok).
    steps: Vec<(String, f64, bool)>,
}

impl JournalEntry {
    pub(crate) fn of(ev: &Event) -> Option<JournalEntry> {
        let j = ev.journey()?;
        Some(JournalEntry {
            end_s: (j.who.intended_ms + j.duration_ms) / 1000.0,
            steps: j
                .steps
                .iter()
                .map(|s| (s.name.clone(), s.ms, s.ok))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_in_the_interval_they_close() {
        // Rows a little after each multiple of 5 s belong to that interval.
        assert_eq!(bucket(5.02, 5.0), 1);
        assert_eq!(bucket(10.2, 5.0), 2);
        assert_eq!(bucket(0.0, 5.0), 0);
        // A final, short interval ending at 11.1 s or at 14 s is in the third one.
        assert_eq!(bucket(11.1, 5.0), 3);
        assert_eq!(bucket(14.0, 5.0), 3);
    }
}
