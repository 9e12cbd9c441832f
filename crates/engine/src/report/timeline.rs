//! Rebuilds per-interval load and per-step latency from the journal.
//!
//! `timeseries.jsonl` has only cumulative step percentiles, so the report bins
//! the journeys of `events.jsonl` itself: each journey runs from its actual
//! start (intended start + slot wait) to its end, and its steps run back to
//! back from the start. Per bin we get the mean number of journeys in flight,
//! arrivals (started or dropped: every arrival the schedule dispatched) and
//! completions per second, and per step the median service time (by step
//! midpoint), the rate of successful samples and the failures.

use std::collections::BTreeMap;

use super::data::{Point, RunData};

/// Equal-width time bins, in seconds since the schedule start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    pub start: f64,
    pub width: f64,
    pub n: usize,
}

impl Bins {
    pub fn index(&self, t: f64) -> usize {
        if self.width <= 0.0 {
            return 0;
        }
        (((t - self.start) / self.width).floor().max(0.0) as usize).min(self.n.saturating_sub(1))
    }
    pub fn mid(&self, i: usize) -> f64 {
        self.start + (i as f64 + 0.5) * self.width
    }
}

/// Per-bin measurements of a run.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub bins: Bins,
    /// Mean journeys in flight over each bin.
    pub in_flight: Vec<f64>,
    /// Successful journeys ending in each bin, per second.
    pub completions_per_s: Vec<f64>,
    /// Arrivals whose intended start falls in each bin, per second: the
    /// journeys that started and those dropped before starting (queue timeout,
    /// breaker shed), as the engine counts arrivals.
    pub arrivals_per_s: Vec<f64>,
    /// Of those, the arrivals dropped before starting, per second.
    pub dropped_per_s: Vec<f64>,
    /// Per step: median service time (ms) of successful samples per bin (`None` under 3 samples).
    pub step_p50: BTreeMap<String, Vec<Option<f64>>>,
    /// Per step: successful samples per bin.
    pub step_count: BTreeMap<String, Vec<u64>>,
    /// Per step: successful samples ending per second in each bin.
    pub step_rate: BTreeMap<String, Vec<f64>>,
    /// Per step: failed samples per bin.
    pub step_errors: BTreeMap<String, Vec<u64>>,
    /// Per step: time of the first failure (s), its class and count.
    pub first_failure: BTreeMap<String, (f64, String)>,
}

/// Fewest samples for a bin's step median to count.
pub const MIN_SAMPLES: usize = 3;

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Timeline {
    /// Bins the journeys of `data`; `None` when the journal holds no finished journey.
    pub fn build(data: &RunData) -> Option<Timeline> {
        let spans: Vec<(f64, f64, f64)> = data
            .journeys
            .iter()
            .map(|e| {
                let intended = e.who.intended_ms / 1000.0;
                let start = intended + e.wait_ms / 1000.0;
                let end = intended + e.duration_ms / 1000.0;
                (intended, start, end.max(start))
            })
            .collect();
        let drops: Vec<f64> = data
            .dropped
            .iter()
            .map(|e| e.who.intended_ms / 1000.0)
            .collect();
        let t0 = spans
            .iter()
            .map(|s| s.0)
            .chain(drops.iter().copied())
            .fold(f64::INFINITY, f64::min);
        let t1 = spans.iter().map(|s| s.2).fold(f64::NEG_INFINITY, f64::max);
        if !t0.is_finite() || !t1.is_finite() {
            return None;
        }
        let span = (t1 - t0).max(1e-3);
        let interval = data.config.metrics_interval.max(1e-3);
        let by_interval = (span / interval).round() as usize;
        let by_count = (data.journeys.len() / 5).max(1);
        let n = by_interval.clamp(12, 60).min(by_count).max(1);
        let bins = Bins {
            start: t0,
            width: span / n as f64,
            n,
        };
        let w = bins.width;
        let mut in_flight = vec![0.0; n];
        let mut completions = vec![0.0; n];
        let mut arrivals = vec![0.0; n];
        let mut dropped = vec![0.0; n];
        for &t in &drops {
            arrivals[bins.index(t)] += 1.0 / w;
            dropped[bins.index(t)] += 1.0 / w;
        }
        let mut samples: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        let mut rate: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut errors: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut first_failure: BTreeMap<String, (f64, String)> = BTreeMap::new();
        for (e, &(intended, start, end)) in data.journeys.iter().zip(&spans) {
            arrivals[bins.index(intended)] += 1.0 / w;
            if e.ok() {
                completions[bins.index(end)] += 1.0 / w;
            }
            // Overlap of [start, end] with every bin it touches.
            let (a, b) = (bins.index(start), bins.index(end));
            for (i, slot) in in_flight.iter_mut().enumerate().take(b + 1).skip(a) {
                let lo = (bins.start + i as f64 * w).max(start);
                let hi = (bins.start + (i + 1) as f64 * w).min(end);
                if hi > lo {
                    *slot += (hi - lo) / w;
                }
            }
            let mut cur = start;
            for s in &e.steps {
                let s_end = cur + s.ms / 1000.0;
                let mid = (cur + s_end) / 2.0;
                if s.ok {
                    samples
                        .entry(s.name.clone())
                        .or_insert_with(|| vec![Vec::new(); n])[bins.index(mid)]
                    .push(s.ms);
                    rate.entry(s.name.clone()).or_insert_with(|| vec![0.0; n])
                        [bins.index(s_end)] += 1.0 / w;
                } else {
                    errors.entry(s.name.clone()).or_insert_with(|| vec![0; n])
                        [bins.index(s_end)] += 1;
                    let class = s.error.clone().unwrap_or_else(|| "unknown".into());
                    let f = first_failure
                        .entry(s.name.clone())
                        .or_insert((s_end, class.clone()));
                    if s_end < f.0 {
                        *f = (s_end, class);
                    }
                }
                cur = s_end;
            }
        }
        let mut step_p50 = BTreeMap::new();
        let mut step_count = BTreeMap::new();
        for (k, mut per_bin) in samples {
            step_count.insert(k.clone(), per_bin.iter().map(|v| v.len() as u64).collect());
            step_p50.insert(
                k,
                per_bin
                    .iter_mut()
                    .map(|v| {
                        if v.len() >= MIN_SAMPLES {
                            median(v)
                        } else {
                            None
                        }
                    })
                    .collect(),
            );
        }
        Some(Timeline {
            bins,
            in_flight,
            completions_per_s: completions,
            arrivals_per_s: arrivals,
            dropped_per_s: dropped,
            step_p50,
            step_count,
            step_rate: rate,
            step_errors: errors,
            first_failure,
        })
    }

    /// Time-series points rebuilt from the journal, one per bin (for runs whose
    /// `timeseries.jsonl` is too coarse: fewer snapshots than bins). Planned
    /// arrivals come from the run's schedule; gauges stay empty.
    pub fn points(&self, data: &RunData) -> Vec<Point> {
        let n = self.bins.n;
        let sched = crate::schedule::Schedule::from_config(&data.config);
        let mut e2e: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut errors: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n];
        // Cumulative arrivals count the dropped ones too, as the engine's do.
        let mut intended: Vec<f64> = data
            .dropped
            .iter()
            .map(|e| e.who.intended_ms / 1000.0)
            .collect();
        for e in &data.journeys {
            let i0 = e.who.intended_ms / 1000.0;
            intended.push(i0);
            let end = i0 + e.duration_ms / 1000.0;
            let i = self.bins.index(end);
            if e.ok() {
                e2e[i].push(e.duration_ms);
            } else {
                *errors[i]
                    .entry(e.error.clone().unwrap_or_else(|| "unknown".into()))
                    .or_default() += 1;
            }
        }
        intended.sort_by(|a, b| a.total_cmp(b));
        let q = |v: &mut Vec<f64>, p: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            v.sort_by(|a, b| a.total_cmp(b));
            let k = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[k])
        };
        (0..n)
            .map(|i| {
                let t = self.bins.start + (i + 1) as f64 * self.bins.width;
                let arrived = intended.partition_point(|x| *x <= t) as u64;
                Point {
                    t_s: t,
                    planned_arrivals: sched.arrivals_by(t) as u64,
                    arrivals: arrived,
                    in_flight: self.in_flight[i].round() as u64,
                    completions_per_s: self.completions_per_s[i],
                    arrivals_per_s: self.arrivals_per_s[i],
                    interval_failures: errors[i].values().sum(),
                    e2e_p50_ms: q(&mut e2e[i], 0.5),
                    e2e_p95_ms: q(&mut e2e[i], 0.95),
                    e2e_p99_ms: q(&mut e2e[i], 0.99),
                    errors: std::mem::take(&mut errors[i]),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// Moving average over 3 bins (the edges average what they have).
    pub fn smooth(v: &[f64]) -> Vec<f64> {
        (0..v.len())
            .map(|i| {
                let lo = i.saturating_sub(1);
                let hi = (i + 1).min(v.len() - 1);
                v[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64
            })
            .collect()
    }
}

/// Pearson correlation of two equally long samples (0 when either is constant).
pub fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= f64::EPSILON || syy <= f64::EPSILON {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_of_linear_and_constant() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((correlation(&x, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-9);
        assert!((correlation(&x, &[8.0, 6.0, 4.0, 2.0]) + 1.0).abs() < 1e-9);
        assert_eq!(correlation(&x, &[5.0; 4]), 0.0);
    }

    #[test]
    fn bins_clamp_and_mid() {
        let b = Bins {
            start: 10.0,
            width: 2.0,
            n: 5,
        };
        assert_eq!(b.index(9.0), 0);
        assert_eq!(b.index(13.9), 1);
        assert_eq!(b.index(100.0), 4);
        assert_eq!(b.mid(1), 13.0);
        assert_eq!(Timeline::smooth(&[0.0, 3.0, 6.0]), vec![1.5, 3.0, 4.5]);
    }
}
