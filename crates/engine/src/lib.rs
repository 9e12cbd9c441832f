//! The load engine of vana-load: profiles and config layers, the open arrival
//! schedule, HDR measurement from the intended start (no coordinated omission),
//! thresholds and circuit breakers, the live view, Prometheus, and the results
//! directory with its journal.
//!
//! The engine knows nothing of Vana. It drives any [`Flow`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vana_load_engine::{Flow, FlowResult, StepSample, LoadTestConfig, Preset, RunOptions};
//!
//! struct Sleep;
//! impl Flow for Sleep {
//!     async fn run(&self, _user: u64, _run_id: &str) -> FlowResult {
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!         FlowResult::ok(vec![StepSample::ok("data", Duration::from_millis(100))])
//!     }
//! }
//!
//! # async fn demo() -> Result<(), vana_load_engine::EngineError> {
//! let config: LoadTestConfig = Preset::Smoke.config();
//! let outcome = vana_load_engine::run(config, Arc::new(Sleep), RunOptions::default()).await?;
//! std::process::exit(outcome.exit_code() as i32);
//! # }
//! ```

pub mod breaker;
pub mod config;
pub mod flow;
pub mod journal;
pub mod live;
pub mod metrics;
pub mod plan;
pub mod prom;
pub mod redact;
pub mod report;
pub mod results;
pub mod run;
pub mod schedule;
pub mod threshold;

pub use config::{ConfigError, ConfigPatch, LoadTestConfig, Preset, Spacing, TxMode};
pub use flow::{Flow, FlowError, FlowResult, StepSample, TxSample};
pub use live::LiveMode;
pub use plan::PlanReport;
pub use prom::GaugeSource;
pub use results::Summary;
pub use run::{EngineError, RunOptions, RunOutcome, run};
pub use schedule::{RateCurve, Schedule};
pub use threshold::{Threshold, ThresholdSpec};
