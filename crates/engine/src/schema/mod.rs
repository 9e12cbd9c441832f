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
//! One file per results file: this module holds `run.json`, `summary.rs`
//! `summary.json` (and the alert names it counts), `details.rs`
//! `details.json` and `events.rs` the lines of `events.jsonl`; every type is
//! re-exported here.
//!
//! Fields that existed before `schema_version` keep their names and shapes;
//! new ones are additive, and readers default what an older file lacks.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{ResolvedStep, Spacing};

mod details;
mod events;
mod summary;

pub use details::*;
pub use events::*;
pub use summary::*;

/// The version of this schema, written in `run.json` and `summary.json`.
pub const SCHEMA_VERSION: u32 = 2;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
