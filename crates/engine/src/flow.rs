//! The contract between the engine and whatever it loads: a [`Flow`] runs one
//! user's journey and reports what happened in a [`FlowResult`].
//!
//! The engine knows nothing of Vana; the CLI adapts the client's journey to this
//! trait. The engine measures end-to-end latency itself (from the *intended*
//! start); the flow reports per-step service times, transactions and the error.

use std::future::Future;
use std::time::Duration;

/// One user's journey. Implementations are shared by all users (`&self`), so
/// they hold long-lived clients; per-user state lives in the returned future.
pub trait Flow: Send + Sync + 'static {
    /// Runs one user's journey. `user` is the user's index in the schedule
    /// (0-based; each index must map to a distinct wallet). `run_id` identifies the run.
    fn run(&self, user: u64, run_id: &str) -> impl Future<Output = FlowResult> + Send;

    /// The wallet address of user `user`, logged in `flow_start` before the journey
    /// runs. Cheap and deterministic (e.g. HD derivation). Default: `user-<index>`.
    fn wallet(&self, user: u64) -> String {
        format!("user-{user}")
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
}

impl FlowResult {
    pub fn ok(steps: Vec<StepSample>) -> FlowResult {
        FlowResult {
            steps,
            error: None,
            txs: Vec::new(),
        }
    }
}

/// One timed step.
#[derive(Debug, Clone)]
pub struct StepSample {
    /// Step name (`wallet`, `data`, …, `claim`).
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
    /// A human-readable message. Must not contain secrets; it is written to results.
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
