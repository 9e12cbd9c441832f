//! Replicate's predictions API, the part the personal server uses
//! (`vana-wire.md` §4): create a prediction for a model, read it, cancel it,
//! and the RFC 7807 problem body Replicate answers errors with.
//!
//! - `POST /v1/models/{owner}/{name}/predictions` `{"input":{…}}` → 201 [`Prediction`]
//! - `GET /v1/predictions/{id}` → 200 [`Prediction`]
//! - `POST /v1/predictions/{id}/cancel` → 200 [`Prediction`] (a finished prediction is returned unchanged)
//!
//! Authentication is `Authorization: Bearer <token>` (the older `Token <token>` is accepted too).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The model the personal server runs for `llm_inference`.
pub const DEFAULT_MODEL: &str = "deepseek-ai/deepseek-v3";
/// The `max_tokens` the personal server asks for.
pub const DEFAULT_MAX_TOKENS: u64 = 16384;

/// `/v1/models/{owner}/{name}/predictions`.
pub fn create_path(model: &str) -> String {
    format!("/v1/models/{model}/predictions")
}

/// `/v1/predictions/{id}`.
pub fn get_path(id: &str) -> String {
    format!("/v1/predictions/{id}")
}

/// `/v1/predictions/{id}/cancel`.
pub fn cancel_path(id: &str) -> String {
    format!("/v1/predictions/{id}/cancel")
}

/// The body of a create request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatePrediction {
    /// The model's inputs; language models read `prompt` (and `max_tokens`).
    pub input: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_events_filter: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

impl CreatePrediction {
    /// `{"input":{"prompt":…,"max_tokens":…}}`, as the personal server sends it.
    pub fn prompt(prompt: &str, max_tokens: u64) -> Self {
        let mut input = Map::new();
        input.insert("prompt".into(), prompt.into());
        input.insert("max_tokens".into(), max_tokens.into());
        CreatePrediction {
            input,
            webhook: None,
            webhook_events_filter: None,
            stream: None,
        }
    }
}

/// Where a prediction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictionStatus {
    /// Created, waiting for a worker.
    Starting,
    /// A worker is running it.
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl PredictionStatus {
    /// `succeeded`, `failed` or `canceled`: it will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A prediction, as every endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub id: String,
    /// `owner/name`.
    pub model: String,
    pub version: String,
    pub input: Map<String, Value>,
    #[serde(default)]
    pub logs: String,
    /// `null` until it succeeds; language models return a list of text chunks
    /// (see [`Prediction::output_text`]).
    pub output: Option<Value>,
    #[serde(default)]
    pub data_removed: bool,
    /// The failure message when `status` is `failed`.
    pub error: Option<Value>,
    pub status: PredictionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    pub urls: PredictionUrls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<PredictionMetrics>,
}

impl Prediction {
    /// The output as one string: a list of chunks is joined (as the personal
    /// server does), a string is returned as is, anything else as JSON text.
    pub fn output_text(&self) -> Option<String> {
        match self.output.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            other => Some(other.to_string()),
        }
    }

    /// The failure message, if any.
    pub fn error_text(&self) -> Option<String> {
        match self.error.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// `urls` of a [`Prediction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionUrls {
    pub get: String,
    pub cancel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
}

/// `metrics` of a finished [`Prediction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionMetrics {
    /// Seconds a worker spent on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict_time: Option<f64>,
    /// Seconds from creation to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time: Option<f64>,
}

/// Replicate's error body (RFC 7807 problem details):
/// `{"title":"…","detail":"…","status":429}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateError {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub title: String,
    pub detail: String,
    pub status: u16,
    /// For 422: which input fields are wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_fields: Option<Vec<InvalidField>>,
}

/// One entry of [`ReplicateError::invalid_fields`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidField {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: String,
    pub description: String,
}

impl ReplicateError {
    pub fn new(status: u16, title: &str, detail: impl Into<String>) -> Self {
        ReplicateError {
            kind: None,
            title: title.to_string(),
            detail: detail.into(),
            status,
            invalid_fields: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_is_what_the_server_sends() {
        let v = serde_json::to_value(CreatePrediction::prompt("hi", DEFAULT_MAX_TOKENS)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"input":{"prompt":"hi","max_tokens":16384}})
        );
        assert_eq!(
            create_path(DEFAULT_MODEL),
            "/v1/models/deepseek-ai/deepseek-v3/predictions"
        );
    }

    #[test]
    fn parses_a_replicate_prediction_and_joins_list_output() {
        let p: Prediction = serde_json::from_value(serde_json::json!({
            "id": "gm3qorzdhgbfurvjtvhg6dckhu", "model": "replicate/hello-world",
            "version": "5c7d", "input": {"text": "Alice"}, "logs": "",
            "output": ["hello ", "Alice"], "data_removed": false, "error": null,
            "status": "succeeded", "created_at": "2023-09-08T16:19:34.765994Z",
            "started_at": "2023-09-08T16:19:34.779176Z",
            "completed_at": "2023-09-08T16:19:34.791859Z",
            "urls": {"get": "https://api.replicate.com/v1/predictions/gm3q",
                     "cancel": "https://api.replicate.com/v1/predictions/gm3q/cancel"},
            "metrics": {"predict_time": 0.012683}
        }))
        .unwrap();
        assert_eq!(p.status, PredictionStatus::Succeeded);
        assert!(p.status.is_terminal());
        assert_eq!(p.output_text().as_deref(), Some("hello Alice"));
        assert_eq!(p.error_text(), None);
        assert!(!PredictionStatus::Processing.is_terminal());
    }

    #[test]
    fn error_body_shape() {
        let v =
            serde_json::to_value(ReplicateError::new(429, "Request was throttled.", "d")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"title":"Request was throttled.","detail":"d","status":429})
        );
    }
}
