//! The results schema: one typed definition of every JSON file in a results
//! directory, written by the engine at the end of a run (each file once) and
//! read back by the report and by `vana-load report DIR`.
//!
//! - `run.json` → [`RunInfo`]: identity, target, profile, time scale, the
//!   twin's settings, versions, the steps as run, and the status.
//! - `summary.json` → [`Summary`]: the verdict, the criteria, users, latency
//!   and rates, each labelled with the population it describes.
//! - `details.json` → [`Details`]: what the summary has no field for.
//! - `events.jsonl` → one [`Event`] per line (the run's journal).
//!
//! Fields that existed before `schema_version` keep their names and shapes;
//! new ones are additive, and readers default what an older file lacks.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::breaker::BreakerReport;
use crate::config::{ResolvedStep, Spacing};
use crate::metrics::ErrorInfo;
use crate::report::{Bottleneck, Capacity};
use crate::threshold::ThresholdResult;

/// The version of this schema, written in `run.json` and `summary.json`.
pub const SCHEMA_VERSION: u32 = 2;

/// A `summary.json` without `schema_version` predates it: version 1.
fn legacy_version() -> u32 {
    1
}

/// The JSON Schema (draft 2020-12) of each results file, by schema file name:
/// `run`, `summary` and `details` describe those files; `event` one line of
/// `events.jsonl`. `docs/schema/` holds them, checked against these by a test.
pub fn json_schemas() -> Vec<(&'static str, serde_json::Value)> {
    let v = |s: schemars::Schema| serde_json::to_value(s).unwrap_or_default();
    vec![
        ("run.schema.json", v(schemars::schema_for!(RunInfo))),
        ("summary.schema.json", v(schemars::schema_for!(Summary))),
        ("details.schema.json", v(schemars::schema_for!(Details))),
        ("event.schema.json", v(schemars::schema_for!(Event))),
    ]
}

// ---------------------------------------------------------------- run.json

/// `run.json`: what was run, against what, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(default)]
pub struct RunInfo {
    pub schema_version: u32,
    pub run_id: String,
    pub status: RunStatus,
    /// Why the run stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<AbortReason>,
    pub profile: String,
    pub target: TargetInfo,
    /// Every duration of the schedule was multiplied by this (0.1 = ten times the arrival rate).
    pub time_scale: f64,
    pub total_users: u64,
    pub seed: u64,
    pub arrival: Spacing,
    pub resumed: bool,
    pub started_at: String,
    pub updated_at: String,
    pub versions: BTreeMap<String, String>,
    /// The flow's steps as this run used them (order, component, timeout).
    pub steps: Vec<ResolvedStep>,
    /// Which part of the journey the flow timed (a whole journey, or a
    /// component run of some of its steps). Absent in runs from before it was
    /// recorded, which all timed the whole journey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<FlowScope>,
    /// The local twin's settings, when the target was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twin: Option<TwinInfo>,
    /// Wall-clock time of the schedule's time zero, milliseconds since the
    /// Unix epoch: every `intended_ms` and `t_s` counts from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_start_ms: Option<i64>,
    /// The instant `--start-at` asked the schedule to start (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How late the schedule started after `start_at`, in milliseconds (0 on
    /// time). The users made late by it are dispatched at once and the lag is
    /// charged to them (schedule lag, and latency from the intended start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_lag_ms: Option<f64>,
    /// The slice of the run this process took (`--shard i/n`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The shards a merged run was made from (`vana-load merge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::shard::MergeInfo>,
}

/// Which part of the journey it models a flow times. The engine does not
/// interpret it: it records it in `run.json` and prints `description` in the
/// report headers of a run that is not `whole`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(default)]
pub struct FlowScope {
    /// The flow's name, e.g. `journey`, `component`, `http`.
    pub flow: String,
    /// Whether the run timed the whole journey. When false, the end-to-end
    /// latency, the rates and the capacity describe the timed steps only.
    pub whole: bool,
    /// Steps of the journey done for each user before the clock started (untimed).
    pub prepared: Vec<String>,
    /// Steps of the journey that were neither prepared nor timed.
    pub skipped: Vec<String>,
    /// One line for a report header, e.g. `component run: timed upload, register, index; …`.
    pub description: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Running,
    Completed,
    /// Stopped by the run's own rules (failFast, a breaker, an aborting threshold).
    Aborted,
    /// Stopped from outside (SIGINT, SIGTERM).
    Interrupted,
}

/// What the run was aimed at. Never holds credentials: the RPC is a host name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(default)]
pub struct TargetInfo {
    pub kind: TargetKind,
    /// e.g. `local twin`, `moksha`, the target file's name.
    pub name: String,
    /// Host (and port) of the first RPC endpoint, without path, query or userinfo.
    pub rpc_host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A twin of the network that vana-load started on this machine.
    Twin,
    /// A network given by a target file or a manifest (Moksha, a remote twin).
    Network,
    /// No network: a synthetic flow (tests, benchmarks).
    #[default]
    Synthetic,
}

impl TargetInfo {
    /// The one-line name of the target for reports.
    pub fn describe(&self) -> String {
        let mut s = match self.kind {
            TargetKind::Twin => format!("{} (local twin", self.name),
            TargetKind::Network => format!("{} (network", self.name),
            TargetKind::Synthetic => return format!("{} (synthetic flow)", self.name),
        };
        if !self.rpc_host.is_empty() {
            s.push_str(&format!(", RPC {}", self.rpc_host));
        }
        if let Some(id) = self.chain_id {
            s.push_str(&format!(", chain {id}"));
        }
        s.push(')');
        s
    }
}

/// The twin's settings that the analysis needs, plus its whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(default)]
pub struct TwinInfo {
    pub block_gas_limit: u64,
    /// `None` with automine (a block per transaction).
    pub block_time_s: Option<f64>,
    /// The twin's configuration as it ran (no secrets).
    pub config: serde_json::Value,
}

/// Why a run stopped before its schedule was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AbortReason {
    /// SIGINT (Ctrl-C) or SIGTERM (a CI cancel, `timeout`, a Kubernetes stop).
    Signal { signal: String },
    /// `failFast`: a journey failed with a critical error class.
    FailFast {
        user: u64,
        step: String,
        class: String,
    },
    /// `failFast`: a component's circuit breaker opened.
    Breaker { component: String },
    /// A threshold with `abortOnFail` failed.
    Threshold { expr: String, actual: Option<f64> },
}

impl AbortReason {
    /// The status a run stopped for this reason ends with.
    pub fn status(&self) -> RunStatus {
        match self {
            AbortReason::Signal { .. } => RunStatus::Interrupted,
            _ => RunStatus::Aborted,
        }
    }

    /// Whether this reason is a critical failure (the `no_critical_failure` criterion).
    pub fn is_critical(&self) -> bool {
        matches!(
            self,
            AbortReason::FailFast { .. } | AbortReason::Breaker { .. }
        )
    }
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::Signal { signal } => write!(f, "interrupted ({signal})"),
            AbortReason::FailFast { user, step, class } => write!(
                f,
                "failFast: journey of user {user} failed at step `{step}` with `{class}`"
            ),
            AbortReason::Breaker { component } => {
                write!(f, "failFast: circuit breaker opened for `{component}`")
            }
            AbortReason::Threshold { expr, actual } => match actual {
                Some(a) => write!(f, "threshold `{expr}` failed (actual {a})"),
                None => write!(f, "threshold `{expr}` failed (no data)"),
            },
        }
    }
}

// ---------------------------------------------------------------- summary.json

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    #[default]
    Fail,
    /// The load generator could not keep its own schedule: the figures do not
    /// describe the offered load, so neither pass nor fail can be claimed.
    Inconclusive,
}

impl Verdict {
    /// 0 pass, 1 fail or inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail | Verdict::Inconclusive => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Summary {
    #[serde(default = "legacy_version")]
    pub schema_version: u32,
    pub users: Users,
    /// Percentiles of **successful** journeys from each user's intended start;
    /// see `e2e_population`.
    pub e2e_ms: E2e,
    #[serde(default)]
    pub e2e_population: String,
    pub steps: BTreeMap<String, StepSummary>,
    /// Failures by class: failed journeys, and arrivals dropped (`queue_timeout`)
    /// or shed by a breaker (`breaker(<component>)`).
    pub errors: BTreeMap<String, u64>,
    #[serde(default)]
    pub rates: Rates,
    pub throughput: Throughput,
    #[serde(default)]
    pub time_scale: f64,
    /// What the run was aimed at (as in `run.json`).
    #[serde(default)]
    pub target: TargetInfo,
    /// Schedule-lag p99 and the bound above which the verdict is `inconclusive`.
    #[serde(default)]
    pub schedule_lag: ScheduleLag,
    pub criteria: Vec<Criterion>,
    pub verdict: Verdict,
    /// Why the verdict is what it is, when it is not a plain pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<Bottleneck>,
    /// The plan's alerting thresholds watched during the run: how often each
    /// fired. Alerts do not change the verdict.
    #[serde(default)]
    pub alerts: BTreeMap<AlertName, AlertSummary>,
    /// JSON-RPC calls the flow made, by outcome (when the flow counts them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<RpcSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Users {
    pub planned: u64,
    pub started: u64,
    pub succeeded: u64,
    /// Journeys that started and failed.
    pub failed: u64,
    pub delayed: u64,
    /// Arrivals that never started: queue timeout or shed by a breaker.
    pub dropped: u64,
    /// Journeys or queued arrivals cancelled by an abort.
    #[serde(default)]
    pub cancelled: u64,
    /// Planned users that never arrived (the run stopped early).
    #[serde(default)]
    pub not_arrived: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct E2e {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Failure rates, each with the population it is taken over.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Rates {
    /// (failed + dropped + cancelled) ÷ arrived users.
    pub error_rate: Option<f64>,
    /// Names the error rate's numerator and denominator.
    pub error_rate_of: String,
    /// (planned − succeeded) ÷ planned: every user who did not succeed, including
    /// those who never arrived.
    pub not_succeeded_of_planned: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct StepSummary {
    /// Samples of the step (successful and failed).
    pub count: u64,
    pub errors: u64,
    /// Percentiles of successful samples.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Throughput {
    /// Successful journeys per second over the load phases (first arrival → last completion).
    pub flows_per_s: f64,
    /// Highest successful completions per second over a full metrics interval.
    pub peak_flows_per_s: f64,
    pub tx_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct ScheduleLag {
    pub p99_ms: Option<f64>,
    pub bound_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Criterion {
    pub name: String,
    pub target: String,
    pub actual: serde_json::Value,
    pub pass: bool,
    /// Why it failed when the value alone does not say (e.g. no samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// JSON-RPC calls by outcome, cumulative (see [`crate::Flow::rpc`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(default)]
pub struct RpcCounts {
    /// Answered with a result.
    pub ok: u64,
    /// Answered with a JSON-RPC error, or the transport failed.
    pub error: u64,
    /// Not answered in time (the client's timeout, or the caller gave up).
    pub timeout: u64,
}

impl RpcCounts {
    pub fn total(&self) -> u64 {
        self.ok + self.error + self.timeout
    }

    /// `ok ÷ total`, `None` without calls.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| self.ok as f64 / n as f64)
    }

    /// Adds `other`'s calls (another process's, when shards are merged).
    pub fn add(&mut self, other: &RpcCounts) {
        self.ok += other.ok;
        self.error += other.error;
        self.timeout += other.timeout;
    }

    /// The calls made since `earlier` (counts never go down).
    pub fn since(&self, earlier: &RpcCounts) -> RpcCounts {
        RpcCounts {
            ok: self.ok.saturating_sub(earlier.ok),
            error: self.error.saturating_sub(earlier.error),
            timeout: self.timeout.saturating_sub(earlier.timeout),
        }
    }
}

/// `summary.rpc`: the run's JSON-RPC calls and their success rate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct RpcSummary {
    #[serde(flatten)]
    pub calls: RpcCounts,
    /// `ok ÷ (ok + error + timeout)`.
    pub success_rate: Option<f64>,
}

impl RpcSummary {
    pub fn of(calls: RpcCounts) -> RpcSummary {
        RpcSummary {
            calls,
            success_rate: calls.success_rate(),
        }
    }
}

/// The plan's alerting thresholds ("Monitoring & Observability").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertName {
    /// Failed, dropped and cancelled users over users that ended, above the limit.
    ErrorRate,
    /// E2E p95 of successful journeys, in seconds, above the limit.
    E2eP95,
    /// The deepest queue gauge scraped from the services, above the limit.
    QueueDepth,
    /// JSON-RPC calls answered with a result over all calls, below the limit.
    RpcSuccessRate,
}

impl AlertName {
    pub const ALL: [AlertName; 4] = [
        AlertName::ErrorRate,
        AlertName::E2eP95,
        AlertName::QueueDepth,
        AlertName::RpcSuccessRate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertName::ErrorRate => "error_rate",
            AlertName::E2eP95 => "e2e_p95",
            AlertName::QueueDepth => "queue_depth",
            AlertName::RpcSuccessRate => "rpc_success_rate",
        }
    }

    /// Whether the alert fires below its limit (the RPC success rate) rather than above.
    pub fn fires_below(self) -> bool {
        self == AlertName::RpcSuccessRate
    }

    /// Whether `value` breaches `limit`.
    pub fn breached(self, value: f64, limit: f64) -> bool {
        if self.fires_below() {
            value < limit
        } else {
            value > limit
        }
    }

    /// What the alert watches, in words.
    pub fn label(self) -> &'static str {
        match self {
            AlertName::ErrorRate => "error rate",
            AlertName::E2eP95 => "E2E p95",
            AlertName::QueueDepth => "queue depth",
            AlertName::RpcSuccessRate => "RPC success rate",
        }
    }

    /// A value of this alert with its unit: `3.2 %`, `7.5 s`, `1500`.
    pub fn show(self, v: f64) -> String {
        match self {
            AlertName::ErrorRate | AlertName::RpcSuccessRate => format!("{} %", trim(v * 100.0)),
            AlertName::E2eP95 => format!("{} s", trim(v)),
            AlertName::QueueDepth => trim(v),
        }
    }

    /// `value` against `limit` in words, e.g. `error rate 3.2 % > 1 %`.
    pub fn describe(self, value: f64, limit: f64) -> String {
        let op = if self.fires_below() { "<" } else { ">" };
        format!(
            "{} {} {op} {}",
            self.label(),
            self.show(value),
            self.show(limit)
        )
    }
}

/// A number with at most two decimals and no trailing zeros.
fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl fmt::Display for AlertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often an alert fired in a run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct AlertSummary {
    /// Times it started firing (it fires again only after it cleared).
    pub count: u64,
    /// Seconds after the schedule start of its first and last firing.
    pub first_s: f64,
    pub last_s: f64,
    pub limit: f64,
    /// The furthest past the limit it went while firing.
    pub worst: f64,
}

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

// ---------------------------------------------------------------- events.jsonl

/// One line of `events.jsonl`: the plan's structured log (`event`, `wallet`,
/// `test_id`, `timestamp`) plus what the journal needs to rebuild the run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    FlowStart(Start),
    FlowComplete(Journey),
    FlowFailed(Journey),
    FlowDropped(Dropped),
    FlowCancelled(Cancelled),
    /// One of the plan's alerting thresholds started to be breached (no user).
    Alert(AlertEvent),
}

/// An alert that started firing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AlertEvent {
    pub name: AlertName,
    /// The measured value (a fraction for rates, seconds for E2E p95).
    pub value: f64,
    pub limit: f64,
    /// Seconds after the schedule start.
    pub t_s: f64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// What the value was read from, when there are several (the queue gauge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name.describe(self.value, self.limit))?;
        if let Some(src) = &self.source {
            write!(f, " ({src})")?;
        }
        Ok(())
    }
}

/// Who and when, on every event.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Who {
    pub wallet: String,
    pub test_id: String,
    /// Wall-clock milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The user's index in the schedule.
    pub user: u64,
    /// Intended start, milliseconds after the schedule start.
    pub intended_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Start {
    #[serde(flatten)]
    pub who: Who,
    /// Wait for a concurrency slot.
    #[serde(default)]
    pub wait_ms: f64,
    #[serde(default)]
    pub delayed: bool,
}

/// A journey that ran to its end (complete or failed).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Journey {
    #[serde(flatten)]
    pub who: Who,
    /// End-to-end latency from the intended start.
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub wait_ms: f64,
    /// The failed step (failed journeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The error class (failed journeys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<EventStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txs: Vec<EventTx>,
}

impl Journey {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// An arrival that never started.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Dropped {
    #[serde(flatten)]
    pub who: Who,
    /// `queue_timeout` or `breaker(<component>)`.
    pub error: String,
    /// How long it waited, from the intended start.
    #[serde(default)]
    pub wait_ms: f64,
    #[serde(default)]
    pub delayed: bool,
}

/// A journey, or a queued arrival, cancelled by an abort.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Cancelled {
    #[serde(flatten)]
    pub who: Who,
    /// The step running at cancellation (None while still queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Whether it had started (held a slot).
    #[serde(default)]
    pub started: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EventStep {
    pub name: String,
    pub ms: f64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EventTx {
    pub kind: String,
    pub gas_used: u64,
    /// Decimal string (u128 does not fit JSON numbers).
    pub fee_wei: String,
    pub confirm_ms: f64,
    pub block: u64,
}

impl Event {
    /// The event's name as written (`flow_start`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::FlowStart(_) => "flow_start",
            Event::FlowComplete(_) => "flow_complete",
            Event::FlowFailed(_) => "flow_failed",
            Event::FlowDropped(_) => "flow_dropped",
            Event::FlowCancelled(_) => "flow_cancelled",
            Event::Alert(_) => "alert",
        }
    }

    /// The user of a user's event (alerts have none).
    pub fn who(&self) -> Option<&Who> {
        match self {
            Event::FlowStart(e) => Some(&e.who),
            Event::FlowComplete(e) | Event::FlowFailed(e) => Some(&e.who),
            Event::FlowDropped(e) => Some(&e.who),
            Event::FlowCancelled(e) => Some(&e.who),
            Event::Alert(_) => None,
        }
    }

    /// The journey of a complete or failed event.
    pub fn journey(&self) -> Option<&Journey> {
        match self {
            Event::FlowComplete(j) | Event::FlowFailed(j) => Some(j),
            _ => None,
        }
    }

    pub fn into_journey(self) -> Option<Journey> {
        match self {
            Event::FlowComplete(j) | Event::FlowFailed(j) => Some(j),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_plans_log_fields_and_round_trip() {
        let who = Who {
            wallet: "0xabc".into(),
            test_id: "run-1-3".into(),
            timestamp: 1_700_000_000_000,
            user: 3,
            intended_ms: 1500.0,
        };
        let ev = Event::FlowComplete(Journey {
            who: who.clone(),
            duration_ms: 2500.0,
            wait_ms: 0.0,
            ..Default::default()
        });
        let line = serde_json::to_string(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "flow_complete");
        assert_eq!(v["wallet"], "0xabc");
        assert_eq!(v["test_id"], "run-1-3");
        assert_eq!(v["timestamp"], 1_700_000_000_000i64);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
        let dropped = Event::FlowDropped(Dropped {
            who,
            error: "queue_timeout".into(),
            wait_ms: 30_000.0,
            delayed: true,
        });
        let line = serde_json::to_string(&dropped).unwrap();
        assert!(line.contains(r#""event":"flow_dropped""#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), dropped);
    }

    #[test]
    fn an_alert_is_one_typed_line_without_a_user() {
        let ev = Event::Alert(AlertEvent {
            name: AlertName::RpcSuccessRate,
            value: 0.95,
            limit: 0.99,
            t_s: 12.5,
            timestamp: 1_700_000_000_000,
            source: None,
        });
        let line = serde_json::to_string(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "alert");
        assert_eq!(v["name"], "rpc_success_rate");
        assert_eq!(v["limit"], 0.99);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
        assert!(ev.who().is_none());
        let Event::Alert(a) = ev else { unreachable!() };
        assert_eq!(a.to_string(), "RPC success rate 95 % < 99 %");
        assert!(AlertName::RpcSuccessRate.breached(0.95, 0.99));
        assert!(
            !AlertName::ErrorRate.breached(0.01, 0.01),
            "at the limit is not over it"
        );
    }

    #[test]
    fn abort_reasons_are_typed_and_say_what_happened() {
        let sig = AbortReason::Signal {
            signal: "SIGTERM".into(),
        };
        assert_eq!(sig.status(), RunStatus::Interrupted);
        assert!(!sig.is_critical());
        assert_eq!(sig.to_string(), "interrupted (SIGTERM)");
        let v = serde_json::to_value(&sig).unwrap();
        assert_eq!(v["kind"], "signal");
        let b = AbortReason::Breaker {
            component: "tee".into(),
        };
        assert_eq!(b.status(), RunStatus::Aborted);
        assert!(b.is_critical());
    }

    #[test]
    fn an_older_summary_without_the_new_fields_still_reads() {
        let old = r#"{"users":{"planned":1,"started":1,"succeeded":1,"failed":0,"delayed":0,"dropped":0},
          "e2e_ms":{"p50":1.0,"p95":1.0,"p99":1.0,"max":1.0},"steps":{},"errors":{},
          "throughput":{"flows_per_s":1.0,"peak_flows_per_s":1.0,"tx_per_s":0.0},
          "criteria":[],"verdict":"pass"}"#;
        let s: Summary = serde_json::from_str(old).unwrap();
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!(s.schema_version, 1);
    }
}
