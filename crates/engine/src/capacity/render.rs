//! The capacity search's text summary (`capacity.txt`, also printed), its
//! chart page (`capacity.html`: rate against p95, goodput and errors, drawn
//! with [`crate::report::svg`]) and the writing of the three files.

use std::fmt::Write as _;
use std::path::Path;

use maud::html;

use super::output::{CapacityResult, Outcome, SECS_PER_DAY, StepRecord};
use crate::report::svg::{PALETTE, Series, Style, line_chart};

impl CapacityResult {
    /// The text summary (`capacity.txt`).
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "capacity search: profile {}, from {}/s ×{} per step, hold {}–{} s, {} bisection(s)",
            self.profile,
            self.settings.from,
            self.settings.step,
            self.settings.hold_secs,
            self.settings.max_hold_secs,
            self.settings.bisections
        );
        if !self.journey_steps.is_empty() {
            let _ = writeln!(
                t,
                "each user runs {} step(s): {}",
                self.journey_steps.len(),
                self.journey_steps.join(", ")
            );
        }
        let _ = writeln!(
            t,
            "a step passes when: engine verdict PASS (p95 < {:.0} ms, errors < {} %, thresholds, \
             schedule-lag p99 ≤ {:.0} ms), goodput ≥ {:.0} % of the rate (a shortfall within \
             counting noise holds the step longer), and stable \
             (the two windows after warm-up: goodput within ±{:.0} %, p95 within ±{:.0} %, \
             or the difference within sampling noise, |z| ≤ {})",
            self.rules.p95_target_ms,
            self.rules.error_budget * 100.0,
            self.rules.max_schedule_lag_ms,
            self.rules.min_completion * 100.0,
            self.rules.goodput_tolerance * 100.0,
            self.rules.p95_tolerance * 100.0,
            self.rules.z_significant,
        );
        t.push('\n');
        for s in &self.steps {
            let _ = writeln!(t, "{}", s.line());
        }
        t.push('\n');
        match &self.outcome {
            Outcome::KneeFound => {
                let k = self.knee.as_ref().expect("knee found");
                let _ = writeln!(
                    t,
                    "knee: {:.2} journeys/s = {:.0} users/day (measured at step {}, goodput {:.2}/s); \
                     {:.2}/s failed (step {})",
                    k.rate_per_s,
                    k.users_per_day,
                    k.step,
                    k.goodput_per_s,
                    k.first_bad_rate_per_s,
                    k.first_bad_step
                );
                let failed = &self.steps[k.first_bad_step].failed_criteria;
                let _ = writeln!(
                    t,
                    "at {:.2}/s it failed: {}",
                    k.first_bad_rate_per_s,
                    failed.join(", ")
                );
                let _ = writeln!(
                    t,
                    "bottleneck at {:.2}/s: {}{}",
                    k.first_bad_rate_per_s,
                    k.bottleneck
                        .as_deref()
                        .unwrap_or("no single component identified (evidence below)"),
                    match k.bottleneck_from.as_deref() {
                        Some("cap") => {
                            " (journeys in flight filled the profile's maxConcurrentUsers and \
                             arrivals waited for a slot; the run's own analysis named no \
                             component)"
                        }
                        Some("degraded_step") => {
                            " (the component of the step that degraded most; the run's own \
                             analysis named none)"
                        }
                        _ => "",
                    }
                );
                for e in &k.evidence {
                    let _ = writeln!(t, "  - {e}");
                }
                for (at, i) in [
                    ("the knee", k.step),
                    ("the first failing rate", k.first_bad_step),
                ] {
                    for (name, c) in &self.steps[i].counts {
                        let _ = writeln!(t, "at {at}, {}", c.sentence(name));
                    }
                }
            }
            Outcome::NoKneeBelowMax { max_tried_per_s } => {
                let _ = writeln!(
                    t,
                    "no knee found: every step passed up to {max_tried_per_s:.2} journeys/s \
                     ({:.0} users/day), the highest rate tried (raise --max-rate to go further)",
                    max_tried_per_s * SECS_PER_DAY
                );
            }
            Outcome::BelowFrom { from_per_s } => {
                let _ = writeln!(
                    t,
                    "no knee found: the first step, {from_per_s:.2} journeys/s, already failed \
                     (the knee is below --from; lower it)"
                );
            }
            Outcome::Interrupted { signal } => {
                let _ = writeln!(t, "interrupted by {signal}: no knee is claimed");
            }
        }
        if let Some(b) = &self.beyond {
            let _ = writeln!(
                t,
                "goodput past the knee: at {:.2}/s (step {}) goodput {:.2}/s = {:.0} % of the knee's {:.2}/s: {}",
                b.rate_per_s,
                b.step,
                b.goodput_per_s,
                b.ratio * 100.0,
                b.knee_goodput_per_s,
                if b.holds {
                    "holds (≥ 90 %)"
                } else {
                    "does NOT hold (< 90 %)"
                }
            );
        }
        if let Some(why) = &self.beyond_not_run {
            let _ = writeln!(t, "goodput past the knee: {why}");
        }
        let _ = writeln!(
            t,
            "{} steps, {:.0} s of constant rate held in all; every figure above was measured",
            self.steps.len(),
            self.total_held_s
        );
        t
    }

    /// The chart page (`capacity.html`).
    pub fn html(&self) -> String {
        let mut steps: Vec<&StepRecord> = self.steps.iter().collect();
        steps.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
        let pts = |f: &dyn Fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            steps
                .iter()
                .filter_map(|s| f(s).map(|y| (s.rate_per_s, y)))
                .collect()
        };
        let p95 = line_chart(
            "capacity-p95",
            "E2E p95 against arrival rate",
            "arrival rate (journeys/s)",
            "p95 (s)",
            &[Series::new(
                "p95",
                PALETTE[0],
                Style::Line,
                pts(&|s| s.p95_ms.map(|p| p / 1000.0)),
            )],
            Some((self.rules.p95_target_ms / 1000.0, "target")),
        );
        let goodput = line_chart(
            "capacity-goodput",
            "Completions against arrival rate",
            "arrival rate (journeys/s)",
            "journeys/s",
            &[
                Series::new(
                    "goodput",
                    PALETTE[2],
                    Style::Line,
                    pts(&|s| Some(s.goodput_per_s)),
                ),
                Series::new(
                    "arrivals",
                    PALETTE[8],
                    Style::Dashed,
                    pts(&|s| Some(s.rate_per_s)),
                ),
            ],
            None,
        );
        let errors = line_chart(
            "capacity-errors",
            "Errors against arrival rate",
            "arrival rate (journeys/s)",
            "error rate (%)",
            &[Series::new(
                "errors",
                PALETTE[3],
                Style::Dots,
                pts(&|s| s.error_rate.map(|e| e * 100.0)),
            )],
            Some((self.rules.error_budget * 100.0, "budget")),
        );
        let text = self.text();
        html! {
            (maud::DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { "vana-load capacity: " (self.profile) } }
                body style="font-family: sans-serif; max-width: 1000px; margin: 1em auto" {
                    h1 { "Capacity search: " (self.profile) }
                    pre { (text) }
                    (p95) (goodput) (errors)
                    h2 { "Steps" }
                    ul {
                        @for s in &self.steps {
                            @for a in &s.attempts {
                                li { a href=(format!("{}/report.html", a.dir)) { (a.dir) } " — held " (a.held_s) " s" }
                            }
                        }
                    }
                }
            }
        }
        .into_string()
    }
}

/// Writes `capacity.json`, `capacity.txt` and `capacity.html` into `out`.
pub fn write(out: &Path, r: &CapacityResult) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(out.join("capacity.json"), json)?;
    std::fs::write(out.join("capacity.txt"), r.text())?;
    std::fs::write(out.join("capacity.html"), r.html())?;
    Ok(())
}
