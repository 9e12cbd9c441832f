//! `events.jsonl`: one [`Event`] per line, the run's journal.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AlertName;

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
    /// The flow's named counts for this journey (see `summary.json`'s `counts`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
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
}
