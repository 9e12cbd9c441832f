//! `summary.json` ([`Summary`]): the verdict, the criteria, users, latency
//! and rates, each labelled with the population it describes; and the
//! plan's alert names it counts.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TargetInfo;
use crate::report::Bottleneck;

/// A `summary.json` without `schema_version` predates it: version 1.
fn legacy_version() -> u32 {
    1
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
    /// The flow's own per-journey counts, by name (e.g. `subgraph_queries`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, CountSummary>,
}

/// One of the flow's named per-journey counts, summed over the journeys that
/// finished, the successful and the failed apart. A journey that did not
/// report it counts 0.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
#[serde(default)]
pub struct CountSummary {
    /// The successful journeys (the population of the `successful_*` figures).
    pub successful_journeys: u64,
    /// Summed over the successful journeys.
    pub successful_total: u64,
    /// `successful_total` ÷ `successful_journeys` (`None` without any).
    pub per_successful_journey: Option<f64>,
    /// The most one successful journey counted.
    pub successful_max: u64,
    /// The failed journeys (the population of the `failed_*` figures).
    pub failed_journeys: u64,
    /// Summed over the failed journeys.
    pub failed_total: u64,
    /// `failed_total` ÷ `failed_journeys` (`None` without any).
    pub per_failed_journey: Option<f64>,
}

impl CountSummary {
    /// `name` (`subgraph_queries`) in words: `subgraph queries`.
    pub fn label(name: &str) -> String {
        name.replace('_', " ")
    }

    /// One sentence, e.g. `subgraph queries: 3.1 per journey over the 60
    /// successful journeys (at most 7 in one); 2.0 per journey over the 4
    /// failed journeys`.
    pub fn sentence(&self, name: &str) -> String {
        let mut s = format!("{}: ", Self::label(name));
        match self.per_successful_journey {
            Some(v) => s.push_str(&format!(
                "{v:.1} per journey over the {} successful journeys (at most {} in one)",
                self.successful_journeys, self.successful_max
            )),
            None => s.push_str("no successful journey"),
        }
        if let Some(f) = self.per_failed_journey {
            s.push_str(&format!(
                "; {f:.1} per journey over the {} failed journeys",
                self.failed_journeys
            ));
        }
        s
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
