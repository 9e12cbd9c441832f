//! The capacity search's typed result (`capacity.json`); its text summary and
//! chart page are rendered in [`super::render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::evidence::{self, Degradation, StepCpu, StepFigures};
use super::window::{self, WindowStats, Z_SIGNIFICANT};
use super::{GOODPUT_HOLDS, MIN_COMPLETION, Settings};
use crate::config::LoadTestConfig;
use crate::report::Bottleneck;
use crate::run::RunOutcome;
use crate::schema::{CountSummary, Verdict};

/// The failed criterion of a goodput shortfall past 5 % of the rate but
/// within counting noise (held longer; failing at the longest hold).
pub const UNDECIDED_COMPLETION: &str = "completion_within_noise";

/// The bottleneck named when the profile's concurrency cap binds.
pub const CONCURRENCY_CAP: &str = "concurrency_cap";

/// Version of `capacity.json`.
pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

pub(super) const SECS_PER_DAY: f64 = 86_400.0;

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
    /// How far the second window's latencies shifted against the first's,
    /// in standard deviations ([`window::latency_shift_z`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_shift_z: Option<f64>,
    /// Standard deviation, in journeys, of the count finishing in the judged
    /// windows under a steady rate ([`window::edge_variance`], two edges).
    #[serde(default)]
    pub count_sd: f64,
    /// The goodput shortfall, journeys/s, within the judged windows'
    /// counting noise ([`Self::judge`]).
    #[serde(default)]
    pub completion_noise_per_s: f64,
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
    /// The flow's own per-journey counts in this step (as in its `summary.json`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, CountSummary>,
    /// Each journey step's count, errors and p95 in this step.
    #[serde(default)]
    pub flow_steps: Vec<StepFigures>,
    /// The machine's CPU over the hold (when the run sampled it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<StepCpu>,
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
            latency_shift_z: None,
            count_sd: 0.0,
            completion_noise_per_s: 0.0,
            goodput_per_s: 0.0,
            completion_ratio: 0.0,
            stable: false,
            verdict: Verdict::Inconclusive,
            verdict_reason: None,
            failed_criteria: Vec::new(),
            pass: false,
            bottleneck: None,
            counts: BTreeMap::new(),
            flow_steps: Vec::new(),
            cpu: None,
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
        let z = window::latency_shift_z(&data.journeys, &w);
        let edge_var = window::edge_variance(&data.journeys, self.rate_per_s);
        let why = window::unstable_because(&w, z, edge_var, target_ms);
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
        self.latency_shift_z = z;
        // Both windows together: two edges.
        self.count_sd = (2.0 * edge_var).sqrt();
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
        self.counts = s.counts.clone();
        self.flow_steps = evidence::step_figures(data);
        self.cpu = evidence::step_cpu(data, hold);
    }

    /// Pass: engine verdict PASS, stable, and goodput ≥ 95 % of the rate.
    /// A shortfall past 5 % but within the counting noise of the judged
    /// windows ([`Z_SIGNIFICANT`] standard deviations of their count,
    /// `count_sd`, at least one journey) cannot be told from chance: it is
    /// `completion_within_noise`, and like instability it asks for a longer
    /// hold (the noise shrinks relative to the count as the hold grows); at
    /// the longest hold it fails the step.
    pub(super) fn judge(&mut self) {
        let span: f64 = self.windows.iter().map(|x| x.to_s - x.from_s).sum();
        let noise_journeys = (Z_SIGNIFICANT * self.count_sd).max(1.0);
        let noise = if span > 0.0 {
            noise_journeys / span
        } else {
            0.0
        };
        self.completion_noise_per_s = noise;
        let shortfall = self.rate_per_s - self.goodput_per_s;
        let completes = shortfall <= (1.0 - MIN_COMPLETION) * self.rate_per_s;
        if !completes {
            self.failed_criteria.push(if shortfall <= noise {
                UNDECIDED_COMPLETION.into()
            } else {
                "completion".into()
            });
        }
        if !self.stable {
            self.failed_criteria.push("stable".into());
        }
        if self.verdict == Verdict::Inconclusive && self.failed_criteria.is_empty() {
            self.failed_criteria.push("schedule_lag".into());
        }
        self.pass = self.verdict == Verdict::Pass && completes && self.stable;
    }

    /// Whether a longer hold could change the judgement: what fails the step
    /// is instability or a shortfall within noise, nothing else.
    pub(super) fn undecided(&self) -> bool {
        !self.failed_criteria.is_empty()
            && self
                .failed_criteria
                .iter()
                .all(|c| c == "stable" || c == UNDECIDED_COMPLETION)
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
    /// The limiting component: the first bad step's bottleneck analysis,
    /// else the component of the journey step that degraded most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<String>,
    /// How `bottleneck` was named: `analysis` (the first failing step's
    /// bottleneck analysis), `cap` (journeys filled the concurrency cap and
    /// arrivals waited for a slot) or `degraded_step` (`degraded`'s component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck_from: Option<String>,
    /// The journey step that degraded most from the knee to the first failing rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<Degradation>,
    /// The evidence ([`evidence::sentences`]): the knee's step against the
    /// first failing one, then the first failing step's bottleneck analysis
    /// when it named a component.
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
    /// The steps each user ran, in order: the whole journey, or the subset
    /// of a component search (`--steps`). Empty in files written before it.
    #[serde(default)]
    pub journey_steps: Vec<String>,
    pub settings: Settings,
    /// Stability tolerances and pass rules, as applied.
    pub rules: Rules,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Knee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond: Option<BeyondKnee>,
    /// Why the goodput check at 1.5× the knee was not run or not judged,
    /// when a knee was bracketed and `beyond` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_not_run: Option<String>,
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
    /// A difference between the windows counts only past this many standard
    /// deviations of its sampling noise.
    #[serde(default)]
    pub z_significant: f64,
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
        beyond: Option<Result<BeyondKnee, String>>,
        interrupted: Option<String>,
    ) -> CapacityResult {
        let (beyond, beyond_not_run) = match beyond {
            Some(Ok(b)) => (Some(b), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
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
                let degraded = evidence::degradation(k, f);
                // The run's own analysis first; else the concurrency cap when
                // journeys filled it and arrivals waited for a slot; else the
                // component of the step that degraded most.
                let cap_bound = f.bottleneck.as_ref().is_some_and(|b| {
                    b.delayed > 0
                        && (b.cap_reached_s.is_some() || b.in_flight_max >= b.in_flight_cap)
                });
                let (bottleneck, from) = match (limit.and_then(|x| x.component.clone()), &degraded)
                {
                    (Some(c), _) => (Some(c), Some("analysis")),
                    (None, _) if cap_bound => (Some(CONCURRENCY_CAP.into()), Some("cap")),
                    (None, Some(d)) => (Some(d.component.clone()), Some("degraded_step")),
                    (None, None) => (None, None),
                };
                let mut evidence = evidence::sentences(k, f, degraded.as_ref());
                // The analysis's own verdict, when it named a component (its
                // other sentences describe one ramped run, not a step).
                if let Some(first) = limit
                    .filter(|x| x.component.is_some())
                    .and_then(|x| x.sentences.first())
                {
                    evidence.push(format!(
                        "the run's analysis at {:.2}/s: {first}",
                        f.rate_per_s
                    ));
                }
                Some(Knee {
                    rate_per_s: k.rate_per_s,
                    users_per_day: k.users_per_day,
                    step: g,
                    first_bad_rate_per_s: f.rate_per_s,
                    first_bad_step: b,
                    goodput_per_s: k.goodput_per_s,
                    bottleneck,
                    bottleneck_from: from.map(str::to_string),
                    degraded,
                    evidence,
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
            journey_steps: Vec::new(),
            settings: settings.clone(),
            rules: Rules {
                min_completion: MIN_COMPLETION,
                goodput_tolerance: window::GOODPUT_TOLERANCE,
                p95_tolerance: window::P95_TOLERANCE,
                p95_floor_of_target: window::P95_FLOOR_OF_TARGET,
                z_significant: window::Z_SIGNIFICANT,
                goodput_holds: GOODPUT_HOLDS,
                p95_target_ms: base.p95_e2e_target_secs * 1000.0,
                error_budget: base.error_budget,
                max_schedule_lag_ms: base.max_schedule_lag_ms,
            },
            outcome,
            knee,
            beyond,
            beyond_not_run,
            steps,
            total_held_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step at 1/s whose 20 s of windows counted `done` journeys, with the
    /// counting noise `count_sd`, and an engine verdict of PASS.
    fn step(done: u64, count_sd: f64) -> StepRecord {
        let mut r = StepRecord::new(0, StepPhase::Climb, 1.0);
        r.windows = vec![
            window::WindowStats {
                from_s: 0.0,
                to_s: 10.0,
                completions: done / 2,
                goodput_per_s: 0.0,
                p95_ms: Some(1.0),
            },
            window::WindowStats {
                from_s: 10.0,
                to_s: 20.0,
                completions: done - done / 2,
                goodput_per_s: 0.0,
                p95_ms: Some(1.0),
            },
        ];
        r.goodput_per_s = done as f64 / 20.0;
        r.count_sd = count_sd;
        r.stable = true;
        r.verdict = Verdict::Pass;
        r.judge();
        r
    }

    #[test]
    fn a_shortfall_within_counting_noise_is_undecided_and_past_it_fails() {
        // 19 of 20: within 5 %.
        let s = step(19, 1.5);
        assert!(s.pass && s.failed_criteria.is_empty());
        // 17 of 20 with a count noise of 1.5 journeys (±3.9 at 2.58 sd):
        // undecided, held longer.
        let s = step(17, 1.5);
        assert!(!s.pass);
        assert_eq!(s.failed_criteria, [UNDECIDED_COMPLETION]);
        assert!(s.undecided());
        assert!((s.completion_noise_per_s - Z_SIGNIFICANT * 1.5 / 20.0).abs() < 1e-12);
        // 10 of 20 is past the noise: it fails at any hold.
        let s = step(10, 1.5);
        assert_eq!(s.failed_criteria, ["completion"]);
        assert!(!s.undecided());
    }

    /// The knee's bottleneck: the failing step's own analysis first; else the
    /// concurrency cap when journeys filled it and arrivals waited; else the
    /// component of the journey step that degraded most.
    #[test]
    fn the_knees_bottleneck_is_the_analysis_then_the_cap_then_the_degraded_step() {
        let fig = |p95: f64| StepFigures {
            step: "infer_wait".into(),
            component: "inference".into(),
            count: 100,
            errors: 0,
            p95_ms: Some(p95),
        };
        let good = {
            let mut r = step(20, 0.0);
            r.flow_steps = vec![fig(1_000.0)];
            r
        };
        let bad = |analysis: Option<&str>, delayed: u64, in_flight_max: u64| {
            let mut r = step(10, 0.0);
            r.index = 1;
            r.rate_per_s = 2.0;
            r.flow_steps = vec![fig(4_000.0)];
            r.bottleneck = Some(Bottleneck {
                component: analysis.map(str::to_string),
                in_flight_cap: 50,
                in_flight_max,
                delayed,
                ..Bottleneck::default()
            });
            r
        };
        let named = |bad: StepRecord| {
            let r = CapacityResult::assemble(
                &LoadTestConfig::default(),
                &Settings::default(),
                vec![good.clone(), bad],
                Some(0),
                Some(1),
                None,
                None,
            );
            let k = r.knee.expect("a knee between the two steps");
            (
                k.bottleneck.unwrap_or_default(),
                k.bottleneck_from.unwrap_or_default(),
            )
        };
        // The analysis named a component: it stands, cap or not.
        assert_eq!(
            named(bad(Some("tee"), 7, 50)),
            ("tee".into(), "analysis".into())
        );
        // None named, the cap full and arrivals waiting: the cap.
        assert_eq!(
            named(bad(None, 7, 50)),
            (CONCURRENCY_CAP.into(), "cap".into())
        );
        // The cap full but nobody waited, or arrivals waiting below the cap
        // (never reached): the step that slowed down names its component.
        for (delayed, max) in [(0, 50), (7, 30)] {
            assert_eq!(
                named(bad(None, delayed, max)),
                ("inference".into(), "degraded_step".into()),
                "delayed {delayed}, in flight at most {max}"
            );
        }
    }
}
