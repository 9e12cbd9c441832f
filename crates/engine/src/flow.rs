//! The contract between the engine and whatever it loads: a [`Flow`] declares
//! its steps ([`StepDef`]), runs one user's journey, reports each step as it
//! ends through [`Progress`], and returns what happened in a [`FlowResult`].
//!
//! The engine knows nothing of Vana and holds no step names: the flow is the
//! one place that declares them (name, component, timeout, whether the step
//! touches the chain). The engine measures end-to-end latency itself (from the
//! *intended* start); the flow reports per-step service times, transactions and
//! the error. `Progress` is what lets the engine's own journey timeout keep the
//! steps that had finished and charge the one that was running. A flow that
//! talks to a node may count its JSON-RPC calls ([`Flow::rpc`]); the engine
//! samples them every second for the RPC success rate.
//!
//! A flow may need per-user state made before the clock starts (a component
//! run that times a few steps of a longer journey needs the earlier steps'
//! results): the engine calls [`Flow::prepare`] with the users it is about to
//! run, before the schedule's time zero, so that work is never measured. A
//! flow that times only part of what it models says so in [`Flow::scope`];
//! `run.json` and every report header carry it.
//!
//! A flow may also count things of its own per journey
//! ([`FlowResult::counts`], e.g. the queries it sent to one service): the
//! engine sums each named count over the successful and the failed journeys
//! and reports it per journey.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

pub use crate::schema::{FlowScope, RpcCounts};

/// Why a flow could not prepare its users (the run does not start; exit code 2).
pub type PrepareError = Box<dyn std::error::Error + Send + Sync>;

/// One step a flow runs, declared once by the flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDef {
    /// The step's name in every result and report, e.g. `register`.
    pub name: &'static str,
    /// The component the step exercises (circuit breakers, bottleneck analysis).
    pub component: &'static str,
    /// The step's deadline as the flow applies it.
    pub timeout: Duration,
    /// Whether the step sends or waits for a transaction (the chain error rate).
    pub chain: bool,
}

impl StepDef {
    pub const fn new(
        name: &'static str,
        component: &'static str,
        timeout: Duration,
        chain: bool,
    ) -> StepDef {
        StepDef {
            name,
            component,
            timeout,
            chain,
        }
    }
}

/// One user's journey. Implementations are shared by all users (`&self`), so
/// they hold long-lived clients; per-user state lives in the returned future.
pub trait Flow: Send + Sync + 'static {
    /// The steps of a journey, in order, with the timeouts the flow applies.
    fn steps(&self) -> Vec<StepDef>;

    /// Runs one user's journey. `user` is the user's index in the schedule
    /// (0-based; each index must map to a distinct wallet). The flow calls
    /// [`Progress::begin`] and [`Progress::end`] around each step.
    fn run(&self, user: u64, progress: &Progress) -> impl Future<Output = FlowResult> + Send;

    /// The wallet address of user `user`, logged in `flow_start` before the journey
    /// runs. Cheap and deterministic (e.g. HD derivation). Default: `user-<index>`.
    fn wallet(&self, user: u64) -> String {
        format!("user-{user}")
    }

    /// Every JSON-RPC call the flow made so far, by outcome (cumulative,
    /// cheap: read every second). Default: `None`, the flow does not count them.
    fn rpc(&self) -> Option<RpcCounts> {
        None
    }

    /// Makes what users `users` need before the clock starts (the engine
    /// awaits it before the schedule's time zero; an error stops the run
    /// before it starts). Default: nothing to prepare.
    fn prepare(&self, users: &[u64]) -> impl Future<Output = Result<(), PrepareError>> + Send {
        let _ = users;
        std::future::ready(Ok(()))
    }

    /// What part of the journey it models the flow times, for `run.json` and
    /// the report headers. Default: `None`, nothing said (synthetic flows).
    fn scope(&self) -> Option<FlowScope> {
        None
    }
}

/// The steps a running journey has finished, and the one it is in.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Arc<Mutex<ProgressState>>,
}

#[derive(Debug, Default)]
struct ProgressState {
    done: Vec<StepSample>,
    running: Option<(&'static str, Instant)>,
}

impl Progress {
    fn state(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The journey enters `step`.
    pub fn begin(&self, step: &'static str) {
        self.state().running = Some((step, Instant::now()));
    }

    /// A step ended (successfully or not).
    pub fn end(&self, sample: StepSample) {
        let mut s = self.state();
        s.running = None;
        s.done.push(sample);
    }

    /// The result of a journey stopped by the engine's journey timeout: the
    /// finished steps, and the running one marked `timeout` with the time it had run.
    pub(crate) fn timed_out(&self, message: String) -> FlowResult {
        let s = self.state();
        let mut steps = s.done.clone();
        let step = match s.running {
            Some((name, since)) => {
                steps.push(StepSample::failed(name, since.elapsed(), "timeout"));
                name
            }
            // Between two steps: charge the last one that ended, else the journey.
            None => steps.last().map_or("journey", |st| st.name),
        };
        FlowResult {
            steps,
            error: Some(FlowError {
                step,
                class: "timeout".into(),
                message,
            }),
            txs: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// The step running now, if any.
    pub fn running(&self) -> Option<&'static str> {
        self.state().running.map(|r| r.0)
    }
}

/// What one journey did.
#[derive(Debug, Clone, Default)]
pub struct FlowResult {
    /// The steps that ran, in order (a failed journey ends with the failed step).
    pub steps: Vec<StepSample>,
    /// `None` when the journey succeeded.
    pub error: Option<FlowError>,
    /// Transactions the journey sent (for throughput, gas and fee metrics).
    pub txs: Vec<TxSample>,
    /// Named counts the flow kept for this journey (e.g. `subgraph_queries`).
    /// The engine sums each over the successful and the failed journeys; a
    /// journey that does not report a name counts 0 for it. A journey stopped
    /// by the engine's journey timeout reports none.
    pub counts: BTreeMap<&'static str, u64>,
}

impl FlowResult {
    pub fn ok(steps: Vec<StepSample>) -> FlowResult {
        FlowResult {
            steps,
            error: None,
            txs: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// This result with the count `name` set to `n`.
    pub fn count(mut self, name: &'static str, n: u64) -> FlowResult {
        self.counts.insert(name, n);
        self
    }
}

/// One timed step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSample {
    /// Step name, one of the flow's [`StepDef::name`]s.
    pub name: &'static str,
    /// Service time of the step.
    pub duration: Duration,
    pub ok: bool,
    /// Error class when `ok` is false (same vocabulary as [`FlowError::class`]).
    pub error_class: Option<String>,
}

impl StepSample {
    pub fn ok(name: &'static str, duration: Duration) -> StepSample {
        StepSample {
            name,
            duration,
            ok: true,
            error_class: None,
        }
    }
    pub fn failed(name: &'static str, duration: Duration, class: &str) -> StepSample {
        StepSample {
            name,
            duration,
            ok: false,
            error_class: Some(class.to_string()),
        }
    }
}

/// Why a journey failed.
#[derive(Debug, Clone)]
pub struct FlowError {
    /// The step that failed.
    pub step: &'static str,
    /// The error class, e.g. `revert(InvalidNonce)`, `timeout`, `server_NOT_FOUND_ERROR`.
    pub class: String,
    /// A human-readable message. The engine redacts secrets before writing it.
    pub message: String,
}

/// One transaction a journey sent.
#[derive(Debug, Clone)]
pub struct TxSample {
    /// e.g. `register`, `proof`, `claim`.
    pub kind: &'static str,
    pub gas_used: u64,
    pub fee_wei: u128,
    /// From submission to receipt.
    pub confirm: Duration,
    pub block: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timed_out_keeps_finished_steps_and_charges_the_running_one() {
        let p = Progress::default();
        p.begin("a");
        tokio::time::advance(Duration::from_secs(2)).await;
        p.end(StepSample::ok("a", Duration::from_secs(2)));
        p.begin("b");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(p.running(), Some("b"));
        let r = p.timed_out("journey exceeded 7 s".into());
        assert_eq!(r.steps.len(), 2);
        assert_eq!(r.steps[0], StepSample::ok("a", Duration::from_secs(2)));
        assert_eq!(r.steps[1].name, "b");
        assert!(!r.steps[1].ok);
        assert_eq!(r.steps[1].duration, Duration::from_secs(5));
        assert_eq!(r.steps[1].error_class.as_deref(), Some("timeout"));
        let e = r.error.unwrap();
        assert_eq!((e.step, e.class.as_str()), ("b", "timeout"));
    }
}
