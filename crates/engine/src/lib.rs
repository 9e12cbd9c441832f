//! The load engine of vana-load: profiles and config layers, the open arrival
//! schedule, HDR measurement from the intended start (no coordinated omission),
//! thresholds and circuit breakers, live alerts, the live view, Prometheus, the load
//! generator's own CPU and memory, and the results directory with its journal.
//! A run can be split into shards ([`shard`]: `RunOptions::shard`) and the
//! shards' results merged into one run with one verdict ([`merge`]).
//!
//! The engine knows nothing of Vana. It drives any [`Flow`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vana_load_engine::{Flow, FlowResult, Progress, StepDef, StepSample, LoadTestConfig, Preset, RunOptions};
//!
//! struct Sleep;
//! impl Flow for Sleep {
//!     fn steps(&self) -> Vec<StepDef> {
//!         vec![StepDef::new("nap", "bed", Duration::from_secs(1), false)]
//!     }
//!     async fn run(&self, _user: u64, progress: &Progress) -> FlowResult {
//!         progress.begin("nap");
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!         let nap = StepSample::ok("nap", Duration::from_millis(100));
//!         progress.end(nap.clone());
//!         FlowResult::ok(vec![nap])
//!     }
//! }
//!
//! # async fn demo() -> Result<(), vana_load_engine::EngineError> {
//! let config: LoadTestConfig = Preset::Smoke.config();
//! let outcome = vana_load_engine::run(config, Arc::new(Sleep), RunOptions::default()).await?;
//! std::process::exit(outcome.exit_code() as i32);
//! # }
//! ```

pub mod alert;
pub mod breaker;
pub mod capacity;
pub mod config;
pub mod flow;
pub mod journal;
pub mod live;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod prom;
pub mod redact;
pub mod report;
pub mod results;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod shard;
pub mod sysmon;
pub mod threshold;

pub use alert::AlertLimits;
pub use config::{ConfigError, ConfigPatch, LoadTestConfig, Preset, Spacing, TxMode};
pub use flow::{
    Flow, FlowError, FlowResult, FlowScope, PrepareError, Progress, RpcCounts, StepDef, StepSample,
    TxSample,
};
pub use live::LiveMode;
pub use plan::PlanReport;
pub use prom::GaugeSource;
pub use run::{EngineError, RunOptions, RunOutcome, run};
pub use schedule::{RateCurve, Schedule};
pub use schema::{AbortReason, RunInfo, Summary, TargetInfo, TargetKind, TwinInfo, Verdict};
pub use shard::Shard;
pub use threshold::{Threshold, ThresholdLayer, ThresholdSpec};
