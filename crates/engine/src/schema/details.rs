//! `details.json` ([`Details`]): what the summary has no field for.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AbortReason, E2e};
use crate::breaker::BreakerReport;
use crate::metrics::ErrorInfo;
use crate::report::Capacity;
use crate::threshold::ThresholdResult;

// ---------------------------------------------------------------- details.json

/// `details.json`: what the summary has no field for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct Details {
    pub run_id: String,
    pub profile: String,
    pub started_at: String,
    pub finished_at: String,
    pub aborted: Option<AbortReason>,
    pub resumed: bool,
    pub schedule: ScheduleInfo,
    /// Arrivals dispatched, shed by breakers (part of dropped), cancelled by an abort, never started.
    pub arrived: u64,
    pub shed: u64,
    pub cancelled: u64,
    pub not_arrived: u64,
    pub thresholds: Vec<ThresholdResult>,
    pub breakers: Vec<BreakerReport>,
    pub schedule_lag_ms: E2e,
    pub queue_wait_ms: E2e,
    /// E2E of failed journeys and dropped arrivals by class (from the intended start).
    pub e2e_failed_ms: BTreeMap<String, E2e>,
    pub errors: BTreeMap<String, ErrorInfo>,
    /// Highest value seen of each scraped gauge (`source.metric`).
    pub gauge_max: BTreeMap<String, f64>,
    pub metrics: LoadTestMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// The shards of a merged run, each with its own schedule lag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::shard::ShardRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct ScheduleInfo {
    pub duration_s: f64,
    pub ramp_up_s: f64,
    pub sustain_s: f64,
    pub ramp_down_s: f64,
    pub peak_rate_per_s: f64,
    pub time_scale: f64,
    pub arrival: String,
    pub max_concurrent_users: u64,
}

/// The plan's `LoadTestMetrics` groups.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct LoadTestMetrics {
    pub blockchain: BlockchainMetrics,
    pub storage: StorageMetrics,
    pub ai: AiMetrics,
    pub end_to_end: EndToEndMetrics,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct TxKindMetrics {
    pub count: u64,
    pub gas_used_mean: f64,
    pub gas_used_total: String,
    pub fee_wei_total: String,
    pub confirm_ms: E2e,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct BlockchainMetrics {
    /// Transactions per second over the load phases.
    pub transaction_throughput: f64,
    pub gas_usage: BTreeMap<String, TxKindMetrics>,
    /// Submission → receipt latency of all transactions.
    pub rpc_latency_ms: E2e,
    /// Share of finished journeys that failed in a step that touches the chain.
    pub error_rate: Option<f64>,
    pub max_tx_per_block: u64,
    pub mean_tx_per_block: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct StorageMetrics {
    pub upload_latency_ms: E2e,
    pub upload_success_rate: Option<f64>,
    /// Highest scraped gauge whose name mentions `bytes` (the twin's storage bytes).
    pub storage_quota_used: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct AiMetrics {
    /// Service time of the inference-wait step.
    pub inference_latency_ms: E2e,
    /// Highest scraped gauge whose name mentions `queue` (inference queue depth).
    pub queue_depth: Option<f64>,
    /// Share of inference steps that succeeded.
    pub model_availability: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default)]
pub struct EndToEndMetrics {
    pub flow_completion_time_ms: E2e,
    pub success_rate: Option<f64>,
    pub user_throughput: f64,
}
