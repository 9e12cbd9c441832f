//! One [`Recorder`] per shard, then their sum: the measurements of one process
//! that recorded every shard's samples.
//!
//! A shard's recorder is rebuilt from three files, each for what it holds exactly:
//! - `events.jsonl` (the journal, replayed by [`crate::journal::replay`]):
//!   error classes with their first and last time and sample message, the
//!   failures by step, the step counts, the transactions by kind and by block;
//! - `histograms.hlog`: every latency histogram as the shard recorded it
//!   (replaying the journal would re-record milliseconds, not the recorded
//!   microseconds);
//! - `summary.json` / `details.json`: the user counters as the run counted
//!   them (a journal replay drops cancelled users' arrivals, which the run counted).
//!
//! HDR histograms of the same precision add bucket by bucket, so the sum holds
//! exactly the counts one process would have: the same buckets, the same
//! percentiles.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::MergeError;
use super::load::ShardRun;
use crate::journal;
use crate::metrics::{Hist, Recorder};
use crate::results::tag_name;

fn add(into: &mut Hist, h: &Histogram<u64>) -> Result<(), MergeError> {
    into.0
        .add(h)
        .map_err(|e| MergeError::Histogram(format!("{e:?}")))
}

/// The key of `map` whose interval-log tag is `tag` (tags replace commas and
/// spaces), or `tag` itself for a name the journal did not have.
fn key_for<V>(map: &BTreeMap<String, V>, tag: &str) -> String {
    map.keys()
        .find(|k| tag_name(k) == tag)
        .cloned()
        .unwrap_or_else(|| tag.to_string())
}

/// Replaces every histogram of `r` with those of the shard's `histograms.hlog`.
fn put_histograms(r: &mut Recorder, s: &ShardRun) -> Result<(), MergeError> {
    r.e2e_ok = Hist::default();
    r.queue_wait = Hist::default();
    r.schedule_lag = Hist::default();
    r.tx_confirm = Hist::default();
    r.e2e_failed.values_mut().for_each(|h| *h = Hist::default());
    for st in r.steps.values_mut() {
        st.ok = Hist::default();
        st.failed.values_mut().for_each(|h| *h = Hist::default());
    }
    for t in r.txs.values_mut() {
        t.confirm = Hist::default();
    }
    for e in &s.hists {
        let Some(tag) = e.tag.as_deref() else {
            continue;
        };
        let h = &e.hist;
        if let Some(class) = tag.strip_prefix("e2e.failed.") {
            let k = key_for(&r.e2e_failed, class);
            add(r.e2e_failed.entry(k).or_default(), h)?;
        } else if let Some(rest) = tag.strip_prefix("step.") {
            let (step, class) = match rest.split_once(".failed.") {
                Some((st, c)) => (st, Some(c)),
                None => (rest, None),
            };
            let k = key_for(&r.steps, step);
            let st = r.steps.entry(k).or_default();
            match class {
                None => add(&mut st.ok, h)?,
                Some(c) => {
                    let k = key_for(&st.failed, c);
                    add(st.failed.entry(k).or_default(), h)?
                }
            }
        } else if let Some(kind) = tag
            .strip_prefix("tx.")
            .and_then(|t| t.strip_suffix(".confirm"))
        {
            let k = key_for(&r.txs, kind);
            add(&mut r.txs.entry(k).or_default().confirm, h)?;
            add(&mut r.tx_confirm, h)?;
        } else {
            match tag {
                "e2e" => add(&mut r.e2e_ok, h)?,
                "queue_wait" => add(&mut r.queue_wait, h)?,
                "schedule_lag" => add(&mut r.schedule_lag, h)?,
                other => {
                    return Err(MergeError::Inconsistent {
                        dir: s.dir.clone(),
                        shard: s.name(),
                        what: format!(
                            "histograms.hlog has a tag `{other}` this version cannot place"
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The recorder of one shard, with its times moved by `shift_s` onto the
/// merged run's time zero.
pub(crate) fn of_shard(s: &ShardRun, shift_s: f64) -> Result<Recorder, MergeError> {
    let inconsistent = |what: String| MergeError::Inconsistent {
        dir: s.dir.clone(),
        shard: s.name(),
        what,
    };
    let st = journal::replay(&s.dir, s.shard.users).map_err(|source| MergeError::Io {
        path: s.dir.join("events.jsonl"),
        source,
    })?;
    let u = &s.summary.users;
    // The journal must hold every journey the summary counts: nothing measured is lost.
    if (st.recorder.succeeded, st.recorder.failed) != (u.succeeded, u.failed) {
        return Err(inconsistent(format!(
            "events.jsonl holds {} successful and {} failed journeys, summary.json {} and {}",
            st.recorder.succeeded, st.recorder.failed, u.succeeded, u.failed
        )));
    }
    let mut r = st.recorder;
    put_histograms(&mut r, s)?;
    if r.e2e_ok.len() != u.succeeded {
        return Err(inconsistent(format!(
            "histograms.hlog holds {} successful journeys, summary.json {}",
            r.e2e_ok.len(),
            u.succeeded
        )));
    }
    r.planned = s.shard.users;
    r.arrived = s.details.arrived;
    r.started = u.started;
    r.succeeded = u.succeeded;
    r.failed = u.failed;
    r.delayed = u.delayed;
    r.dropped = u.dropped;
    r.shed = s.details.shed;
    r.cancelled = u.cancelled;
    r.in_flight = 0;
    r.first_arrival_s = r.first_arrival_s.map(|t| t + shift_s);
    r.last_completion_s = r.last_completion_s.map(|t| t + shift_s);
    for e in r.errors.values_mut() {
        e.first_s += shift_s;
        e.last_s += shift_s;
    }
    Ok(r)
}

fn add_all(into: &mut Hist, from: &Hist) -> Result<(), MergeError> {
    add(into, &from.0)
}

fn add_map(
    into: &mut BTreeMap<String, Hist>,
    from: &BTreeMap<String, Hist>,
) -> Result<(), MergeError> {
    for (k, h) in from {
        add_all(into.entry(k.clone()).or_default(), h)?;
    }
    Ok(())
}

/// Adds `b` into `a`: counters add, histograms add bucket by bucket, the first
/// and last times are the earliest and latest.
pub(crate) fn absorb(a: &mut Recorder, b: &Recorder) -> Result<(), MergeError> {
    a.planned += b.planned;
    a.arrived += b.arrived;
    a.started += b.started;
    a.succeeded += b.succeeded;
    a.failed += b.failed;
    a.delayed += b.delayed;
    a.dropped += b.dropped;
    a.shed += b.shed;
    a.cancelled += b.cancelled;
    add_all(&mut a.e2e_ok, &b.e2e_ok)?;
    add_map(&mut a.e2e_failed, &b.e2e_failed)?;
    add_all(&mut a.queue_wait, &b.queue_wait)?;
    add_all(&mut a.schedule_lag, &b.schedule_lag)?;
    add_all(&mut a.tx_confirm, &b.tx_confirm)?;
    for (name, s) in &b.steps {
        let t = a.steps.entry(name.clone()).or_default();
        t.count += s.count;
        t.errors += s.errors;
        add_all(&mut t.ok, &s.ok)?;
        add_map(&mut t.failed, &s.failed)?;
    }
    for (class, e) in &b.errors {
        match a.errors.get_mut(class) {
            Some(x) => {
                x.count += e.count;
                if e.first_s < x.first_s {
                    x.first_s = e.first_s;
                    x.step = e.step.clone();
                    x.sample = e.sample.clone();
                }
                x.last_s = x.last_s.max(e.last_s);
            }
            None => {
                a.errors.insert(class.clone(), e.clone());
            }
        }
    }
    for (step, n) in &b.failures_by_step {
        *a.failures_by_step.entry(step.clone()).or_default() += n;
    }
    for (kind, t) in &b.txs {
        let x = a.txs.entry(kind.clone()).or_default();
        x.count += t.count;
        x.gas_total += t.gas_total;
        x.fee_wei_total += t.fee_wei_total;
        add_all(&mut x.confirm, &t.confirm)?;
    }
    for (name, c) in &b.counts {
        a.counts.entry(name.clone()).or_default().add(c);
    }
    // Shards share the chain: their transactions in one block add up.
    for (block, n) in &b.tx_per_block {
        *a.tx_per_block.entry(*block).or_default() += n;
    }
    for (k, v) in &b.components {
        a.components.entry(k.clone()).or_insert_with(|| v.clone());
    }
    a.first_arrival_s = min_opt(a.first_arrival_s, b.first_arrival_s, f64::min);
    a.last_completion_s = min_opt(a.last_completion_s, b.last_completion_s, f64::max);
    Ok(())
}

fn min_opt(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(pick(x, y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn buckets(h: &Hist) -> Vec<(u64, u64)> {
        h.0.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// Samples spread over three recorders, each written to an interval log
    /// and read back as a shard's would be, then added: the same buckets and
    /// the same percentiles as one recorder that took every sample.
    #[test]
    fn added_histograms_are_those_of_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = Recorder::new(0);
        let mut parts = [Recorder::new(0), Recorder::new(0), Recorder::new(0)];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // From 50 µs to ~30 min, heavy-tailed.
            let us = 50 + (x % 1000) * (x % 1000) * (1 + x % 1800);
            let d = Duration::from_micros(us);
            one.e2e_ok.record(d);
            parts[(x % 3) as usize].e2e_ok.record(d);
            if i % 7 == 0 {
                one.schedule_lag.record(d / 1000);
                parts[(i % 3) as usize].schedule_lag.record(d / 1000);
            }
        }
        let mut sum = Recorder::new(0);
        for (k, p) in parts.iter().enumerate() {
            let path = dir.path().join(format!("{k}.hlog"));
            crate::results::append_hlog(
                &path,
                Duration::ZERO,
                Duration::from_secs(1),
                &crate::results::tagged_histograms(p),
            )
            .unwrap();
            let mut back = Recorder::new(0);
            for (tag, h) in crate::results::read_hlog(&path).unwrap() {
                match tag.as_deref() {
                    Some("e2e") => add(&mut back.e2e_ok, &h).unwrap(),
                    Some("schedule_lag") => add(&mut back.schedule_lag, &h).unwrap(),
                    _ => {}
                }
            }
            absorb(&mut sum, &back).unwrap();
        }
        for (a, b) in [
            (&sum.e2e_ok, &one.e2e_ok),
            (&sum.schedule_lag, &one.schedule_lag),
        ] {
            assert_eq!(a.len(), b.len());
            assert_eq!(buckets(a), buckets(b));
            for q in [0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
                assert_eq!(a.pct_ms(q), b.pct_ms(q), "p{q}");
            }
            assert_eq!(a.max_ms(), b.max_ms());
            assert_eq!(a.mean_ms(), b.mean_ms());
        }
    }
}
