//! A step's statistics over windows of its hold, and when they count as stable.
//!
//! A step holds a constant arrival rate for `H` seconds. Its start is
//! warm-up (journeys are still filling the pipeline): the larger of `H/3` and
//! the step's median journey, at most `2H/3`. The rest of the hold is split
//! into two equal windows, judged by *finish* time: the
//! goodput of a window is the successful journeys that finished in it per
//! second, and its p95 is the end-to-end p95 (from the intended start) of
//! those journeys. The step is **stable** when the two windows agree:
//! - goodput within 10 % of the larger, or within one journey per window;
//! - p95 within 20 % of the larger, or within 2 % of the profile's p95 target.
//!
//! A saturated step is typically unstable (its p95 keeps climbing), and one
//! that stays unstable up to the longest hold is judged failing. A hold too
//! short for the journey leaves small windows that rarely agree, so the
//! search holds longer (the warm-up stays below the median journey only
//! while `H/3` is shorter than it).

use serde::{Deserialize, Serialize};

use crate::schema::Journey;

/// Goodput tolerance: relative to the larger window's goodput.
pub const GOODPUT_TOLERANCE: f64 = 0.10;
/// p95 tolerance: relative to the larger window's p95.
pub const P95_TOLERANCE: f64 = 0.20;
/// p95 tolerance floor, as a share of the p95 target.
pub const P95_FLOOR_OF_TARGET: f64 = 0.02;

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
/// else why not.
pub fn unstable_because(w: &[WindowStats; 2], p95_target_ms: f64) -> Option<String> {
    let (a, b) = (&w[0], &w[1]);
    let g_max = a.goodput_per_s.max(b.goodput_per_s);
    let one_journey = 1.0 / (a.to_s - a.from_s).max(f64::MIN_POSITIVE);
    let g_tol = (GOODPUT_TOLERANCE * g_max).max(one_journey);
    if (a.goodput_per_s - b.goodput_per_s).abs() > g_tol {
        return Some(format!(
            "goodput moved from {:.2}/s to {:.2}/s (tolerance ±{:.2}/s)",
            a.goodput_per_s, b.goodput_per_s, g_tol
        ));
    }
    match (a.p95_ms, b.p95_ms) {
        (Some(pa), Some(pb)) => {
            let tol = (P95_TOLERANCE * pa.max(pb)).max(P95_FLOOR_OF_TARGET * p95_target_ms);
            ((pa - pb).abs() > tol).then(|| {
                format!("p95 moved from {pa:.0} ms to {pb:.0} ms (tolerance ±{tol:.0} ms)")
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
        assert_eq!(unstable_because(&w, 30_000.0), None);
        // Latency growing 1 s per journey: p95 climbs between windows.
        let climbing: Vec<Journey> = (0..9)
            .map(|k| j(k as f64 * 1000.0, 200.0 + 400.0 * k as f64))
            .collect();
        let w = judged_windows(&climbing, 12.0);
        let why = unstable_because(&w, 30_000.0).expect("unstable");
        assert!(why.contains("p95") || why.contains("goodput"), "{why}");
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 95.0), Some(95.0));
        assert_eq!(percentile(&mut [], 95.0), None);
    }
}
