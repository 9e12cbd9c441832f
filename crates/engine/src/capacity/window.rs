//! A step's statistics over windows of its hold, and when they count as stable.
//!
//! A step holds a constant arrival rate for `H` seconds. Its start is
//! warm-up (journeys are still filling the pipeline): the larger of `H/3` and
//! the step's median journey, at most `2H/3`. The rest of the hold is split
//! into two equal windows, judged by *finish* time: the
//! goodput of a window is the successful journeys that finished in it per
//! second, and its p95 is the end-to-end p95 (from the intended start) of
//! those journeys. The step is **stable** unless the two windows differ both
//! materially and beyond sampling noise:
//! - goodput: more than 10 % of the larger (and more than one journey per
//!   window), and the two counts differ by more than [`Z_SIGNIFICANT`]
//!   standard deviations of their difference under a steady rate (below);
//! - latency: the p95s differ by more than 20 % of the larger (and more than
//!   2 % of the profile's p95 target), and the second window's latencies are
//!   shifted against the first's beyond noise: a Mann–Whitney rank test
//!   ([`latency_shift_z`]) with |z| > [`Z_SIGNIFICANT`].
//!
//! **Counting noise.** Arrivals are evenly spaced, but journeys finish at
//! their start plus a latency that varies, so the count finishing in a window
//! varies at its edges: each edge adds a variance of `rate × g / 2`
//! ([`edge_variance`]), where `g` is the mean absolute difference of two
//! journeys' latencies (estimated from successive journeys, so that a
//! latency trend does not pass for noise). The count over both windows has two edges; the
//! difference of the two windows' counts has 6 such variances (its middle
//! edge moves a journey from one window to the other). With a journey of
//! 5 ± 2 s at 1/s, two windows of 10 s differ by 2–3 journeys by chance.
//!
//! Why both: a window of a dozen journeys whose latency is dominated by a
//! heavy-tailed step (inference) has a p95 that is nearly its maximum, so
//! two windows of one steady step routinely differ by 40 %; a tolerance
//! alone called such steps unstable and held them again and again (on the
//! smoke twin it failed the first step at 1/s at every hold up to 120 s). A
//! saturated step's latency climbs through its hold, which the rank test
//! sees at once; one that stays unstable up to the longest hold is judged
//! failing.
//!
//! The rank test is written here (twenty lines: the U statistic with its
//! normal approximation) rather than taken from a statistics crate, none of
//! which the engine otherwise needs.

use serde::{Deserialize, Serialize};

use crate::schema::Journey;

/// Goodput tolerance: relative to the larger window's goodput.
pub const GOODPUT_TOLERANCE: f64 = 0.10;
/// p95 tolerance: relative to the larger window's p95.
pub const P95_TOLERANCE: f64 = 0.20;
/// p95 tolerance floor, as a share of the p95 target.
pub const P95_FLOOR_OF_TARGET: f64 = 0.02;
/// A difference between the windows counts only past this many standard
/// deviations of its sampling noise (two-sided, about 1 %).
pub const Z_SIGNIFICANT: f64 = 2.58;

/// One window of a step's hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowStats {
    /// Seconds after the step's schedule start.
    pub from_s: f64,
    pub to_s: f64,
    /// Successful journeys that finished in the window.
    pub completions: u64,
    /// `completions` per second.
    pub goodput_per_s: f64,
    /// E2E p95 of those journeys (ms); None when none finished.
    pub p95_ms: Option<f64>,
}

/// Nearest-rank percentile of `v` (sorted in place).
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// The window `[from, to)` (seconds) of `journeys`, by finish time.
pub fn window(journeys: &[Journey], from: f64, to: f64) -> WindowStats {
    let mut d: Vec<f64> = journeys
        .iter()
        .filter(|j| j.ok())
        .filter(|j| {
            let end = (j.who.intended_ms + j.duration_ms) / 1000.0;
            end >= from && end < to
        })
        .map(|j| j.duration_ms)
        .collect();
    let completions = d.len() as u64;
    let span = (to - from).max(f64::MIN_POSITIVE);
    WindowStats {
        from_s: from,
        to_s: to,
        completions,
        goodput_per_s: completions as f64 / span,
        p95_ms: percentile(&mut d, 95.0),
    }
}

/// The two judged windows of a hold of `hold_s` seconds: what follows the
/// warm-up, halved.
pub fn judged_windows(journeys: &[Journey], hold_s: f64) -> [WindowStats; 2] {
    let warm = warm_up(journeys, hold_s);
    let mid = (warm + hold_s) / 2.0;
    [window(journeys, warm, mid), window(journeys, mid, hold_s)]
}

/// The variance, in journeys², that one window edge adds to the count of
/// journeys finishing in a window under a steady `rate` (journeys/s):
/// `rate × g / 2`, with `g` the mean absolute difference (s) of two
/// journeys' latencies. `g` is taken over successive successful journeys
/// (by intended start): for independent latencies that is the mean
/// difference of any two, and a latency trend (a filling queue, which must
/// not pass for noise) barely moves it.
pub fn edge_variance(journeys: &[Journey], rate: f64) -> f64 {
    let mut d: Vec<(f64, f64)> = journeys
        .iter()
        .filter(|j| j.ok())
        .map(|j| (j.who.intended_ms, j.duration_ms / 1000.0))
        .collect();
    if d.len() < 2 {
        return 0.0;
    }
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    let g = d.windows(2).map(|w| (w[1].1 - w[0].1).abs()).sum::<f64>() / (d.len() - 1) as f64;
    rate * g / 2.0
}

/// The E2E latencies (ms) of the successful journeys that finished in `w`.
fn latencies(journeys: &[Journey], w: &WindowStats) -> Vec<f64> {
    journeys
        .iter()
        .filter(|j| j.ok())
        .filter(|j| {
            let end = (j.who.intended_ms + j.duration_ms) / 1000.0;
            end >= w.from_s && end < w.to_s
        })
        .map(|j| j.duration_ms)
        .collect()
}

/// How far the second window's latencies are shifted against the first's,
/// in standard deviations: the Mann–Whitney U statistic of the second
/// sample (pairs where it is the larger, ties half) in its normal
/// approximation. Positive when the second window is slower; `None` when a
/// window has no journey.
pub fn latency_shift_z(journeys: &[Journey], w: &[WindowStats; 2]) -> Option<f64> {
    let mut a = latencies(journeys, &w[0]);
    let b = latencies(journeys, &w[1]);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    a.sort_by(f64::total_cmp);
    let u: f64 = b
        .iter()
        .map(|&x| {
            let below = a.partition_point(|&y| y < x);
            let not_above = a.partition_point(|&y| y <= x);
            below as f64 + (not_above - below) as f64 / 2.0
        })
        .sum();
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let sd = (na * nb * (na + nb + 1.0) / 12.0).sqrt();
    Some((u - na * nb / 2.0) / sd)
}

/// The warm-up of a hold: a third of it, or the median journey if longer
/// (the first journeys finish only then), at most two thirds of it.
pub fn warm_up(journeys: &[Journey], hold_s: f64) -> f64 {
    let mut d: Vec<f64> = journeys
        .iter()
        .filter(|j| j.ok())
        .map(|j| j.duration_ms / 1000.0)
        .collect();
    let median = percentile(&mut d, 50.0).unwrap_or(0.0);
    median.max(hold_s / 3.0).min(2.0 * hold_s / 3.0)
}

/// Whether the two windows agree (see the module doc); `None` when they do,
/// else why not. `shift_z` is [`latency_shift_z`] of the windows, `edge_var`
/// the step's [`edge_variance`].
pub fn unstable_because(
    w: &[WindowStats; 2],
    shift_z: Option<f64>,
    edge_var: f64,
    p95_target_ms: f64,
) -> Option<String> {
    let (a, b) = (&w[0], &w[1]);
    let g_max = a.goodput_per_s.max(b.goodput_per_s);
    let one_journey = 1.0 / (a.to_s - a.from_s).max(f64::MIN_POSITIVE);
    let g_tol = (GOODPUT_TOLERANCE * g_max).max(one_journey);
    let count_noise = Z_SIGNIFICANT * (6.0 * edge_var).sqrt();
    let count_diff = a.completions.abs_diff(b.completions) as f64;
    if (a.goodput_per_s - b.goodput_per_s).abs() > g_tol && count_diff > count_noise {
        return Some(format!(
            "goodput moved from {:.2}/s to {:.2}/s (tolerance ±{:.2}/s; {} against {} \
             journeys, beyond counting noise of ±{count_noise:.0})",
            a.goodput_per_s, b.goodput_per_s, g_tol, a.completions, b.completions
        ));
    }
    match (a.p95_ms, b.p95_ms) {
        (Some(pa), Some(pb)) => {
            let tol = (P95_TOLERANCE * pa.max(pb)).max(P95_FLOOR_OF_TARGET * p95_target_ms);
            let z = shift_z.unwrap_or(0.0);
            ((pa - pb).abs() > tol && z.abs() > Z_SIGNIFICANT).then(|| {
                format!(
                    "p95 moved from {pa:.0} ms to {pb:.0} ms (tolerance ±{tol:.0} ms), and the \
                     latencies shifted {} beyond noise (rank test z = {z:.1})",
                    if z > 0.0 { "up" } else { "down" }
                )
            })
        }
        (None, None) => Some("no journey finished in either window".into()),
        _ => Some("journeys finished in only one of the two windows".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Who;

    fn j(intended_ms: f64, duration_ms: f64) -> Journey {
        Journey {
            who: Who {
                intended_ms,
                ..Default::default()
            },
            duration_ms,
            wait_ms: 0.0,
            step: None,
            error: None,
            message: None,
            steps: Vec::new(),
            txs: Vec::new(),
            counts: Default::default(),
        }
    }

    #[test]
    fn windows_count_by_finish_time_and_compare() {
        // One journey a second, 500 ms each, over 9 s: steady.
        let steady: Vec<Journey> = (0..9).map(|k| j(k as f64 * 1000.0, 500.0)).collect();
        let w = judged_windows(&steady, 9.0);
        assert_eq!((w[0].completions, w[1].completions), (3, 3));
        assert_eq!(w[1].p95_ms, Some(500.0));
        let z = latency_shift_z(&steady, &w);
        assert_eq!(z, Some(0.0), "all ties");
        assert_eq!(
            unstable_because(&w, z, edge_variance(&steady, 1.0), 30_000.0),
            None
        );
        // Latency growing 100 ms per journey over 60 s: every journey of the
        // second window is slower than every one of the first.
        let climbing: Vec<Journey> = (0..60)
            .map(|k| j(k as f64 * 1000.0, 200.0 + 100.0 * k as f64))
            .collect();
        let w = judged_windows(&climbing, 60.0);
        let z = latency_shift_z(&climbing, &w).unwrap();
        assert!(z > Z_SIGNIFICANT, "{z}");
        let why = unstable_because(&w, Some(z), edge_variance(&climbing, 1.0), 30_000.0)
            .expect("unstable");
        assert!(why.contains("p95") && why.contains("rank test"), "{why}");
    }

    #[test]
    fn a_steady_step_with_noisy_latency_is_stable() {
        // One journey a second, 3–5 s each, but two 9 s outliers in the first
        // window: the windows' p95s differ by far more than 20 %, yet the two
        // windows' latencies are drawn from the same mix.
        let pattern = [3_000.0, 4_000.0, 3_500.0, 3_200.0, 4_500.0, 5_000.0];
        let steady: Vec<Journey> = (0..60)
            .map(|k| {
                let d = if k == 25 || k == 30 {
                    9_000.0
                } else {
                    pattern[k % 6]
                };
                j(k as f64 * 1000.0, d)
            })
            .collect();
        let w = judged_windows(&steady, 60.0);
        let (pa, pb) = (w[0].p95_ms.unwrap(), w[1].p95_ms.unwrap());
        assert!((pa - pb).abs() > P95_TOLERANCE * pa.max(pb), "{w:?}");
        let z = latency_shift_z(&steady, &w).unwrap();
        assert!(z.abs() < Z_SIGNIFICANT, "{z}");
        let var = edge_variance(&steady, 1.0);
        assert_eq!(unstable_because(&w, Some(z), var, 30_000.0), None, "{w:?}");
        // Goodput 12 against 10 journeys: within counting noise.
        let mut a = w.clone();
        a[0].completions = 12;
        a[0].goodput_per_s = 1.2;
        a[1].completions = 10;
        a[1].goodput_per_s = 1.0;
        assert_eq!(unstable_because(&a, Some(0.0), var, 30_000.0), None);
        // 60 against 20: goodput fell beyond noise.
        a[0].completions = 60;
        a[0].goodput_per_s = 3.0;
        a[1].completions = 20;
        a[1].goodput_per_s = 1.0;
        let why = unstable_because(&a, Some(0.0), var, 30_000.0).expect("unstable");
        assert!(why.contains("goodput"), "{why}");
    }

    #[test]
    fn edge_variance_is_half_the_rate_times_the_successive_latency_difference() {
        // Latencies 1, 3, 2 s by start: successive differences 2 and 1.
        let js: Vec<Journey> = [1.0, 3.0, 2.0]
            .iter()
            .enumerate()
            .map(|(k, d)| j(k as f64 * 1000.0, d * 1000.0))
            .collect();
        assert!((edge_variance(&js, 3.0) - 3.0 * 1.5 / 2.0).abs() < 1e-12);
        // A queue filling: latency climbs 10 ms a journey. Its noise is that
        // step, not the 10 s the latencies span.
        let trend: Vec<Journey> = (0..1000)
            .map(|k| j(k as f64 * 100.0, 500.0 + 10.0 * k as f64))
            .collect();
        assert!((edge_variance(&trend, 10.0) - 10.0 * 0.01 / 2.0).abs() < 1e-9);
        // Equal latencies: the count is exact.
        let same: Vec<Journey> = (0..5).map(|k| j(k as f64, 500.0)).collect();
        assert_eq!(edge_variance(&same, 2.0), 0.0);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 95.0), Some(95.0));
        assert_eq!(percentile(&mut [], 95.0), None);
    }
}
