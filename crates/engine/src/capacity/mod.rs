//! `engine::capacity`: finds the knee — the highest constant arrival rate
//! whose step meets every criterion — by measurement.
//!
//! The search, generic over [`Flow`]:
//! 1. **Climb.** From `from` journeys/s, multiply the rate by `step` until a
//!    step fails (or the next rate would pass `max_rate`).
//! 2. **Hold.** Each step is one ordinary engine run ([`crate::run`]) of a
//!    constant-rate schedule (no ramps) in its own subdirectory, so it has
//!    every normal file. It is held `hold` seconds; if its two judged windows
//!    disagree ([`window`]), or its goodput falls short within counting
//!    noise, it is run again with twice the hold, up to `max_hold` — only
//!    while that is all that fails it (a step that fails another criterion
//!    fails at any hold; one still undecided at `max_hold` fails). Every
//!    attempt is kept and reported with its hold.
//! 3. **Judge.** A step passes when the engine's verdict is PASS (p95 below
//!    the profile's target, errors within budget, every threshold, schedule lag
//!    within `maxScheduleLagMs`), its windows are stable, and the goodput of
//!    its judged windows is ≥ 95 % of the arrival rate. A shortfall within
//!    the windows' counting noise ([`window`]) is undecided, not failed.
//! 4. **Bisect** between the last good and the first bad rate, `bisections`
//!    times.
//! 5. **Beyond the knee.** One step at 1.5× the knee; goodput holds when its
//!    goodput is ≥ 90 % of the knee step's. When it is not run (`--no-beyond`,
//!    above `max_rate`, interrupted) the result says why instead.
//!
//! Each step's users are new wallets: the user index continues across steps
//! ([`Offset`]), and [`StepSetup::prepare`] is called with each step's range
//! before its clock starts (the CLI funds the wallets there).
//!
//! The knee's evidence ([`evidence`]) compares the knee's step with the
//! first failing one: the journey's p95, errors and goodput, the journey step
//! that degraded most, the concurrency cap, and the machine's CPU.
//!
//! Every number in the result is measured; the knee is a rate that was run.

pub mod evidence;
pub mod output;
pub mod render;
pub mod window;

use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{ConfigError, LoadTestConfig};
use crate::flow::{Flow, FlowResult, FlowScope, PrepareError, Progress, RpcCounts, StepDef};
use crate::run::{EngineError, RunOptions};
use crate::schema::AbortReason;

pub use output::{BeyondKnee, CapacityResult, Knee, Outcome, StepPhase, StepRecord};

/// Share of the arrival rate a step's goodput must reach.
pub const MIN_COMPLETION: f64 = 0.95;
/// Share of the knee's goodput the step at 1.5× the knee must keep.
pub const GOODPUT_HOLDS: f64 = 0.90;
/// The rate of the goodput check, as a multiple of the knee.
pub const BEYOND_FACTOR: f64 = 1.5;
/// At most this many bisection steps.
pub const MAX_BISECTIONS: u32 = 8;
/// A step needs at least this many arrivals to be judged on two windows.
pub const MIN_STEP_USERS: f64 = 6.0;

/// How to search.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Settings {
    /// First rate, journeys/s.
    pub from: f64,
    /// Each climbing step multiplies the rate by this (> 1).
    pub step: f64,
    /// Shortest hold of a step, seconds.
    pub hold_secs: f64,
    /// Longest hold of a step (the hold doubles while the step is unstable).
    pub max_hold_secs: f64,
    /// Never run a step faster than this, journeys/s.
    pub max_rate: f64,
    /// Bisection steps between the last good and the first bad rate.
    pub bisections: u32,
    /// Run the step at 1.5× the knee.
    pub check_beyond: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            from: 1.0,
            step: 2.0,
            hold_secs: 20.0,
            max_hold_secs: 80.0,
            max_rate: 200.0,
            bisections: 2,
            check_beyond: true,
        }
    }
}

/// A search that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("--from must be a positive rate in journeys/s, not {0}")]
    From(f64),
    #[error("--step must be a factor above 1 (e.g. 2 doubles the rate each step), not {0}")]
    Step(f64),
    #[error("--hold must be a positive number of seconds, not {0}")]
    Hold(f64),
    #[error("--max-hold ({max}) must be at least --hold ({hold})")]
    MaxHold { hold: f64, max: f64 },
    #[error("--max-rate ({max}) must be at least --from ({from})")]
    MaxRate { from: f64, max: f64 },
    #[error("--bisect must be at most {MAX_BISECTIONS}, not {0}")]
    Bisections(u32),
    #[error(
        "a step at --from {from}/s held --hold {hold} s has {users:.1} arrivals; it needs at least \
         {MIN_STEP_USERS} to be judged (raise --from or --hold)"
    )]
    TooFewUsers { from: f64, hold: f64, users: f64 },
    #[error(
        "--max-rate {rate}/s held --max-hold {hold} s needs more users than a wallet index holds"
    )]
    TooMany { rate: f64, hold: f64 },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("step at {rate}/s: {source}")]
    Run {
        rate: f64,
        #[source]
        source: EngineError,
    },
    #[error("preparing the users {from}..{to} of the step at {rate}/s: {message}")]
    Prepare {
        rate: f64,
        from: u64,
        to: u64,
        message: String,
    },
    #[error("results directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Settings {
    /// Refuses bad settings, and a profile the steps cannot run, naming the problem.
    pub fn validate(&self, base: &LoadTestConfig) -> Result<(), CapacityError> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if !pos(self.from) {
            return Err(CapacityError::From(self.from));
        }
        if !(self.step.is_finite() && self.step > 1.0) {
            return Err(CapacityError::Step(self.step));
        }
        if !pos(self.hold_secs) {
            return Err(CapacityError::Hold(self.hold_secs));
        }
        if !(self.max_hold_secs.is_finite() && self.max_hold_secs >= self.hold_secs) {
            return Err(CapacityError::MaxHold {
                hold: self.hold_secs,
                max: self.max_hold_secs,
            });
        }
        if !(self.max_rate.is_finite() && self.max_rate >= self.from) {
            return Err(CapacityError::MaxRate {
                from: self.from,
                max: self.max_rate,
            });
        }
        if self.bisections > MAX_BISECTIONS {
            return Err(CapacityError::Bisections(self.bisections));
        }
        let users = self.from * self.hold_secs;
        if users < MIN_STEP_USERS {
            return Err(CapacityError::TooFewUsers {
                from: self.from,
                hold: self.hold_secs,
                users,
            });
        }
        if self.max_rate * self.max_hold_secs > u32::MAX as f64 {
            return Err(CapacityError::TooMany {
                rate: self.max_rate,
                hold: self.max_hold_secs,
            });
        }
        step_config(base, self.from, self.hold_secs).validate()?;
        step_config(base, self.max_rate, self.max_hold_secs).validate()?;
        Ok(())
    }
}

/// A step's snapshots come at least this often (seconds), whatever the
/// profile's `metricsInterval` (the burst profile's is 30 s, one snapshot per
/// 30 s hold): the CPU, gauges and bottleneck analysis of a step read them.
pub const STEP_SNAPSHOT_SECS: f64 = 5.0;

/// The profile turned into one constant-rate step: `rate` journeys/s for
/// `hold` seconds, no ramps, time scale 1, a snapshot at least every
/// [`STEP_SNAPSHOT_SECS`]. Everything else (cap, criteria, thresholds,
/// timeouts) is the profile's.
pub fn step_config(base: &LoadTestConfig, rate: f64, hold: f64) -> LoadTestConfig {
    let mut c = base.clone();
    c.metrics_interval = c.metrics_interval.min(STEP_SNAPSHOT_SECS);
    let users = (rate * hold).round().max(1.0) as u64;
    c.total_users = users;
    c.max_wallets = c.max_wallets.max(users);
    c.time_scale = 1.0;
    c.ramp_up_minutes = 0.0;
    c.ramp_down_minutes = 0.0;
    c.sustain_minutes = hold / 60.0;
    c.test_duration_minutes = hold / 60.0;
    c
}

/// A flow whose user `k` is the inner flow's user `base + k`: each step's
/// users are new wallets.
pub struct Offset<F> {
    pub inner: Arc<F>,
    pub base: u64,
}

impl<F: Flow> Flow for Offset<F> {
    fn steps(&self) -> Vec<StepDef> {
        self.inner.steps()
    }

    fn run(&self, user: u64, progress: &Progress) -> impl Future<Output = FlowResult> + Send {
        self.inner.run(self.base + user, progress)
    }

    fn wallet(&self, user: u64) -> String {
        self.inner.wallet(self.base + user)
    }

    fn rpc(&self) -> Option<RpcCounts> {
        self.inner.rpc()
    }

    async fn prepare(&self, users: &[u64]) -> Result<(), PrepareError> {
        let shifted: Vec<u64> = users.iter().map(|u| self.base + u).collect();
        self.inner.prepare(&shifted).await
    }

    fn scope(&self) -> Option<FlowScope> {
        self.inner.scope()
    }
}

/// What is done before a step's clock starts, for its users (e.g. funding).
pub trait StepSetup: Send + Sync {
    fn prepare(&self, users: Range<u64>) -> impl Future<Output = Result<(), String>> + Send;
}

/// Nothing to prepare.
pub struct NoSetup;

impl StepSetup for NoSetup {
    async fn prepare(&self, _users: Range<u64>) -> Result<(), String> {
        Ok(())
    }
}

/// The search's running state.
struct Search<'a, F, S> {
    base: &'a LoadTestConfig,
    settings: &'a Settings,
    flow: Arc<F>,
    setup: &'a S,
    options: &'a RunOptions,
    out: PathBuf,
    next_user: u64,
    steps: Vec<StepRecord>,
    interrupted: Option<String>,
}

impl<F: Flow, S: StepSetup> Search<'_, F, S> {
    /// Runs one step at `rate` (with longer holds while it is unstable).
    async fn measure(&mut self, rate: f64, phase: StepPhase) -> Result<usize, CapacityError> {
        let index = self.steps.len();
        let mut hold = self.settings.hold_secs;
        let mut rec = StepRecord::new(index, phase, rate);
        loop {
            let cfg = step_config(self.base, rate, hold);
            let users = cfg.total_users;
            let range = self.next_user..self.next_user + users;
            self.setup
                .prepare(range.clone())
                .await
                .map_err(|message| CapacityError::Prepare {
                    rate,
                    from: range.start,
                    to: range.end,
                    message,
                })?;
            self.next_user = range.end;
            let name = format!("step-{index:02}-{}-{}", phase.as_str(), rate_tag(rate));
            let name = if rec.attempts.is_empty() {
                name
            } else {
                format!("{name}-hold{}", hold.round())
            };
            let mut opts = self.options.clone();
            opts.out_dir = Some(self.out.join(&name));
            opts.run_id = Some(format!(
                "{}-{name}",
                self.options.run_id.as_deref().unwrap_or("capacity")
            ));
            opts.resume = false;
            opts.shard = None;
            opts.start_at = None;
            tracing::info!("capacity: {name}: {rate:.2} journeys/s for {hold} s ({users} users)");
            let flow = Arc::new(Offset {
                inner: self.flow.clone(),
                base: range.start,
            });
            let outcome = crate::run::run(cfg.clone(), flow, opts)
                .await
                .map_err(|source| CapacityError::Run { rate, source })?;
            let data =
                crate::report::RunData::load(&outcome.out_dir).map_err(|e| CapacityError::Io {
                    path: outcome.out_dir.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            rec.record_attempt(name, hold, range, &outcome, &data, &cfg);
            if let Some(AbortReason::Signal { signal }) = &outcome.aborted {
                self.interrupted = Some(signal.clone());
                break;
            }
            rec.judge();
            // A longer hold is tried only when instability, or a goodput
            // shortfall within noise, is all that fails the step: otherwise
            // it fails at any hold.
            if !rec.undecided() || hold * 2.0 > self.settings.max_hold_secs + 1e-9 {
                break;
            }
            hold *= 2.0;
        }
        eprintln!("{}", rec.line());
        self.steps.push(rec);
        Ok(index)
    }

    /// The goodput check at 1.5× the knee step `g`, or why it was not run.
    async fn beyond(&mut self, g: usize) -> Result<Result<BeyondKnee, String>, CapacityError> {
        let rate = self.steps[g].rate_per_s * BEYOND_FACTOR;
        let max = self.settings.max_rate;
        let why = if !self.settings.check_beyond {
            "not run (--no-beyond)".to_string()
        } else if rate > max * (1.0 + 1e-9) {
            format!("not run: {BEYOND_FACTOR}× the knee is {rate:.2}/s, above --max-rate {max}/s")
        } else if self.interrupted.is_some() {
            "not run: the search was interrupted".to_string()
        } else {
            let knee_goodput = self.steps[g].goodput_per_s;
            let i = self.measure(rate, StepPhase::Beyond).await?;
            if self.interrupted.is_none() {
                return Ok(Ok(BeyondKnee::of(&self.steps[i], knee_goodput)));
            }
            format!("interrupted during its step at {rate:.2}/s: not judged")
        };
        Ok(Err(why))
    }

    fn passed(&self, i: usize) -> bool {
        self.steps[i].pass
    }
}

/// A rate as a path-safe tag (`2.5` → `2.50`).
fn rate_tag(rate: f64) -> String {
    format!("{rate:.2}")
}

/// Runs the capacity search into `out` (each step in a subdirectory) and
/// writes `capacity.json`, `capacity.txt` and `capacity.html` there.
/// `options` is the template of every step's run (target, gauges, processes).
pub async fn search<F: Flow, S: StepSetup>(
    base: &LoadTestConfig,
    settings: &Settings,
    flow: Arc<F>,
    setup: &S,
    options: &RunOptions,
    out: PathBuf,
) -> Result<CapacityResult, CapacityError> {
    settings.validate(base)?;
    std::fs::create_dir_all(&out).map_err(|source| CapacityError::Io {
        path: out.clone(),
        source,
    })?;
    let mut s = Search {
        base,
        settings,
        flow,
        setup,
        options,
        out: out.clone(),
        next_user: 0,
        steps: Vec::new(),
        interrupted: None,
    };
    // Climb.
    let mut good: Option<usize> = None;
    let mut bad: Option<usize> = None;
    let mut rate = settings.from;
    while s.interrupted.is_none() {
        let i = s.measure(rate, StepPhase::Climb).await?;
        if s.passed(i) {
            good = Some(i);
        } else {
            bad = Some(i);
            break;
        }
        let next = rate * settings.step;
        if next > settings.max_rate * (1.0 + 1e-9) {
            break;
        }
        rate = next;
    }
    // Bisect.
    if let (Some(mut g), Some(mut b)) = (good, bad) {
        for _ in 0..settings.bisections {
            if s.interrupted.is_some() {
                break;
            }
            let mid = (s.steps[g].rate_per_s + s.steps[b].rate_per_s) / 2.0;
            let i = s.measure(mid, StepPhase::Bisect).await?;
            if s.passed(i) {
                g = i;
            } else {
                b = i;
            }
        }
        good = Some(g);
        bad = Some(b);
    }
    // Beyond the knee.
    let beyond = match (good, bad) {
        (Some(g), Some(_)) => Some(s.beyond(g).await?),
        _ => None,
    };
    let journey_steps = s.flow.steps().iter().map(|d| d.name.to_string()).collect();
    let mut result =
        CapacityResult::assemble(base, settings, s.steps, good, bad, beyond, s.interrupted);
    result.journey_steps = journey_steps;
    render::write(&out, &result).map_err(|source| CapacityError::Io {
        path: out.clone(),
        source,
    })?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_the_profile_at_a_constant_rate_sampled_every_five_seconds_at_most() {
        let mut base = LoadTestConfig {
            metrics_interval: 30.0,
            ..Default::default()
        };
        let c = step_config(&base, 12.0, 30.0);
        assert_eq!(c.total_users, 360);
        assert_eq!((c.ramp_up_minutes, c.ramp_down_minutes), (0.0, 0.0));
        assert_eq!(c.sustain_minutes, 0.5);
        assert_eq!(c.metrics_interval, STEP_SNAPSHOT_SECS);
        c.validate().unwrap();
        // A finer profile interval is kept.
        base.metrics_interval = 2.0;
        assert_eq!(step_config(&base, 12.0, 30.0).metrics_interval, 2.0);
    }
}
