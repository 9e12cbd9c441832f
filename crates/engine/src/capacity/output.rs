//! The capacity search's typed result (`capacity.json`), its text summary
//! (`capacity.txt`, also printed) and its chart page (`capacity.html`: rate
//! against p95, goodput and errors, drawn with [`crate::report::svg`]).

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use maud::html;
use serde::{Deserialize, Serialize};

use super::window::{self, WindowStats};
use super::{GOODPUT_HOLDS, MIN_COMPLETION, Settings};
use crate::config::LoadTestConfig;
use crate::report::Bottleneck;
use crate::report::svg::{PALETTE, Series, Style, line_chart};
use crate::run::RunOutcome;
use crate::schema::Verdict;

/// Version of `capacity.json`.
pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

const SECS_PER_DAY: f64 = 86_400.0;

/// Why a step was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    Climb,
    Bisect,
    /// The goodput check at 1.5× the knee.
    Beyond,
}

impl StepPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            StepPhase::Climb => "climb",
            StepPhase::Bisect => "bisect",
            StepPhase::Beyond => "beyond",
        }
    }
}

/// One run of a step at one hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    /// Subdirectory of the capacity results (a normal results directory).
    pub dir: String,
    /// Seconds the constant rate was held.
    pub held_s: f64,
    /// User indices `[from, to)` (distinct wallets).
    pub users_from: u64,
    pub users_to: u64,
    pub stable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstable_reason: Option<String>,
}

/// One step of the search, as judged on its last attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepRecord {
    pub index: usize,
    pub phase: StepPhase,
    /// Arrival rate held, journeys/s.
    pub rate_per_s: f64,
    /// The same rate per day.
    pub users_per_day: f64,
    /// Every attempt; the last one is judged.
    pub attempts: Vec<Attempt>,
    /// Seconds the judged attempt held the rate.
    pub held_s: f64,
    pub arrived: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dropped: u64,
    /// E2E p95 of the successful journeys of the whole step (ms).
    pub p95_ms: Option<f64>,
    pub p95_target_ms: f64,
    /// (failed + dropped + cancelled) ÷ arrived.
    pub error_rate: Option<f64>,
    pub schedule_lag_p99_ms: Option<f64>,
    /// The two judged windows ([`window`]).
    pub windows: Vec<WindowStats>,
    /// Successful journeys per second over both judged windows.
    pub goodput_per_s: f64,
    /// `goodput_per_s ÷ rate_per_s`.
    pub completion_ratio: f64,
    pub stable: bool,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    /// What failed: the engine's failed criteria, `completion`, `stable`.
    pub failed_criteria: Vec<String>,
    pub pass: bool,
    /// The report's bottleneck analysis of this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<Bottleneck>,
}

impl StepRecord {
    pub(super) fn new(index: usize, phase: StepPhase, rate: f64) -> StepRecord {
        StepRecord {
            index,
            phase,
            rate_per_s: rate,
            users_per_day: rate * SECS_PER_DAY,
            attempts: Vec::new(),
            held_s: 0.0,
            arrived: 0,
            succeeded: 0,
            failed: 0,
            dropped: 0,
            p95_ms: None,
            p95_target_ms: 0.0,
            error_rate: None,
            schedule_lag_p99_ms: None,
            windows: Vec::new(),
            goodput_per_s: 0.0,
            completion_ratio: 0.0,
            stable: false,
            verdict: Verdict::Inconclusive,
            verdict_reason: None,
            failed_criteria: Vec::new(),
            pass: false,
            bottleneck: None,
        }
    }

    /// Takes the measurements of one attempt (the last one is judged).
    pub(super) fn record_attempt(
        &mut self,
        dir: String,
        hold: f64,
        users: Range<u64>,
        outcome: &RunOutcome,
        data: &crate::report::RunData,
        cfg: &LoadTestConfig,
    ) {
        let s = &outcome.summary;
        let target_ms = cfg.p95_e2e_target_secs * 1000.0;
        let w = window::judged_windows(&data.journeys, hold);
        let why = window::unstable_because(&w, target_ms);
        let span: f64 = w.iter().map(|x| x.to_s - x.from_s).sum();
        let done: u64 = w.iter().map(|x| x.completions).sum();
        self.goodput_per_s = done as f64 / span.max(f64::MIN_POSITIVE);
        self.completion_ratio = self.goodput_per_s / self.rate_per_s;
        self.stable = why.is_none();
        self.attempts.push(Attempt {
            dir,
            held_s: hold,
            users_from: users.start,
            users_to: users.end,
            stable: self.stable,
            unstable_reason: why,
        });
        self.held_s = hold;
        self.windows = w.to_vec();
        self.arrived = outcome.details.arrived;
        self.succeeded = s.users.succeeded;
        self.failed = s.users.failed;
        self.dropped = s.users.dropped;
        self.p95_ms = s.e2e_ms.p95;
        self.p95_target_ms = target_ms;
        self.error_rate = s.rates.error_rate;
        self.schedule_lag_p99_ms = s.schedule_lag.p99_ms;
        self.verdict = s.verdict;
        self.verdict_reason = s.verdict_reason.clone();
        self.failed_criteria = s
            .criteria
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.clone())
            .collect();
        self.bottleneck = s.bottleneck.clone();
    }

    /// Pass: engine verdict PASS, stable, goodput ≥ 95 % of the rate (less
    /// one journey of counting granularity over the judged windows).
    pub(super) fn judge(&mut self) {
        let span: f64 = self.windows.iter().map(|x| x.to_s - x.from_s).sum();
        let slack = if span > 0.0 { 1.0 / span } else { 0.0 };
        let completes = self.goodput_per_s + slack >= MIN_COMPLETION * self.rate_per_s;
        if !completes {
            self.failed_criteria.push("completion".into());
        }
        if !self.stable {
            self.failed_criteria.push("stable".into());
        }
        if self.verdict == Verdict::Inconclusive && self.failed_criteria.is_empty() {
            self.failed_criteria.push("schedule_lag".into());
        }
        self.pass = self.verdict == Verdict::Pass && completes && self.stable;
    }

    /// One line for the console and the text summary.
    pub fn line(&self) -> String {
        let mut l = format!(
            "step {:>2} {:<6} {:>8.2}/s  held {:>5.1} s  goodput {:>7.2}/s ({:>5.1} %)  p95 {:>9}  errors {:>6}  {}",
            self.index,
            self.phase.as_str(),
            self.rate_per_s,
            self.held_s,
            self.goodput_per_s,
            self.completion_ratio * 100.0,
            self.p95_ms
                .map_or("-".to_string(), |p| format!("{:.0} ms", p)),
            self.error_rate
                .map_or("-".to_string(), |e| format!("{:.1} %", e * 100.0)),
            if self.pass { "PASS" } else { "FAIL" },
        );
        if !self.pass {
            let _ = write!(l, " ({})", self.failed_criteria.join(", "));
        }
        if self.attempts.len() > 1 {
            let holds: Vec<String> = self
                .attempts
                .iter()
                .map(|a| format!("{} s", a.held_s))
                .collect();
            let _ = write!(l, " [holds {}]", holds.join(", "));
        }
        l
    }
}

/// The knee: the highest rate whose step passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Knee {
    pub rate_per_s: f64,
    pub users_per_day: f64,
    /// Its step (index into `steps`).
    pub step: usize,
    /// The lowest rate that failed, and its step.
    pub first_bad_rate_per_s: f64,
    pub first_bad_step: usize,
    /// Goodput measured at the knee.
    pub goodput_per_s: f64,
    /// The limiting component: the first bad step's bottleneck analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<String>,
    /// Its evidence, sentences of the report's bottleneck analysis.
    pub evidence: Vec<String>,
}

/// The goodput check at 1.5× the knee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BeyondKnee {
    pub rate_per_s: f64,
    pub step: usize,
    pub goodput_per_s: f64,
    pub knee_goodput_per_s: f64,
    /// `goodput_per_s ÷ knee_goodput_per_s`.
    pub ratio: f64,
    /// Ratio ≥ 0.9.
    pub holds: bool,
}

impl BeyondKnee {
    pub(super) fn of(step: &StepRecord, knee_goodput: f64) -> BeyondKnee {
        let ratio = if knee_goodput > 0.0 {
            step.goodput_per_s / knee_goodput
        } else {
            0.0
        };
        BeyondKnee {
            rate_per_s: step.rate_per_s,
            step: step.index,
            goodput_per_s: step.goodput_per_s,
            knee_goodput_per_s: knee_goodput,
            ratio,
            holds: ratio >= GOODPUT_HOLDS,
        }
    }
}

/// How the search ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// A knee between a passing and a failing rate.
    KneeFound,
    /// Every step passed up to the highest rate tried (no knee below it).
    NoKneeBelowMax { max_tried_per_s: f64 },
    /// The first step already failed: the knee is below `--from`.
    BelowFrom { from_per_s: f64 },
    /// Stopped by a signal.
    Interrupted { signal: String },
}

/// `capacity.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CapacityResult {
    pub schema_version: u32,
    pub profile: String,
    pub settings: Settings,
    /// Stability tolerances and pass rules, as applied.
    pub rules: Rules,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Knee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond: Option<BeyondKnee>,
    pub steps: Vec<StepRecord>,
    /// Seconds of constant rate held over every attempt of every step.
    pub total_held_s: f64,
}

/// The rules the steps were judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rules {
    pub min_completion: f64,
    pub goodput_tolerance: f64,
    pub p95_tolerance: f64,
    pub p95_floor_of_target: f64,
    pub goodput_holds: f64,
    pub p95_target_ms: f64,
    pub error_budget: f64,
    pub max_schedule_lag_ms: f64,
}

impl CapacityResult {
    pub(super) fn assemble(
        base: &LoadTestConfig,
        settings: &Settings,
        steps: Vec<StepRecord>,
        good: Option<usize>,
        bad: Option<usize>,
        beyond: Option<BeyondKnee>,
        interrupted: Option<String>,
    ) -> CapacityResult {
        let outcome = match (&interrupted, good, bad) {
            (Some(sig), _, _) => Outcome::Interrupted {
                signal: sig.clone(),
            },
            (None, Some(_), Some(_)) => Outcome::KneeFound,
            (None, None, _) => Outcome::BelowFrom {
                from_per_s: settings.from,
            },
            (None, Some(g), None) => Outcome::NoKneeBelowMax {
                max_tried_per_s: steps[g].rate_per_s,
            },
        };
        let knee = match (good, bad) {
            (Some(g), Some(b)) if interrupted.is_none() => {
                let (k, f) = (&steps[g], &steps[b]);
                // The limit shows at the first failing rate; the knee's own
                // analysis when that step has none.
                let limit = f.bottleneck.as_ref().or(k.bottleneck.as_ref());
                Some(Knee {
                    rate_per_s: k.rate_per_s,
                    users_per_day: k.users_per_day,
                    step: g,
                    first_bad_rate_per_s: f.rate_per_s,
                    first_bad_step: b,
                    goodput_per_s: k.goodput_per_s,
                    bottleneck: limit.and_then(|x| x.component.clone()),
                    evidence: limit.map(|x| x.sentences.clone()).unwrap_or_default(),
                })
            }
            _ => None,
        };
        let total_held_s = steps
            .iter()
            .flat_map(|s| s.attempts.iter())
            .map(|a| a.held_s)
            .sum();
        CapacityResult {
            schema_version: CAPACITY_SCHEMA_VERSION,
            profile: base.profile.clone(),
            settings: settings.clone(),
            rules: Rules {
                min_completion: MIN_COMPLETION,
                goodput_tolerance: window::GOODPUT_TOLERANCE,
                p95_tolerance: window::P95_TOLERANCE,
                p95_floor_of_target: window::P95_FLOOR_OF_TARGET,
                goodput_holds: GOODPUT_HOLDS,
                p95_target_ms: base.p95_e2e_target_secs * 1000.0,
                error_budget: base.error_budget,
                max_schedule_lag_ms: base.max_schedule_lag_ms,
            },
            outcome,
            knee,
            beyond,
            steps,
            total_held_s,
        }
    }

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
        let _ = writeln!(
            t,
            "a step passes when: engine verdict PASS (p95 < {:.0} ms, errors < {} %, thresholds, \
             schedule-lag p99 ≤ {:.0} ms), goodput ≥ {:.0} % of the rate, and stable \
             (the two windows after warm-up: goodput within ±{:.0} %, p95 within ±{:.0} %)",
            self.rules.p95_target_ms,
            self.rules.error_budget * 100.0,
            self.rules.max_schedule_lag_ms,
            self.rules.min_completion * 100.0,
            self.rules.goodput_tolerance * 100.0,
            self.rules.p95_tolerance * 100.0,
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
                    "bottleneck at {:.2}/s: {}",
                    k.first_bad_rate_per_s,
                    k.bottleneck
                        .as_deref()
                        .unwrap_or("no single component identified (evidence below)")
                );
                for e in &k.evidence {
                    let _ = writeln!(t, "  - {e}");
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
