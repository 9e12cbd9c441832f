//! The personal server's HTTP API (`/api/v1`), as the hosted Vana server
//! speaks it: identity, operations, and the FastAPI-style error body.

use serde::{Deserialize, Serialize};

/// Path prefix of every personal-server route.
pub const API_PREFIX: &str = "/api/v1";

/// `GET /api/v1/identity?address=0x…` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Always `"Identity"`.
    pub kind: String,
    pub user_address: String,
    pub personal_server: PersonalServerIdentity,
}

/// The per-user server key of an [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalServerIdentity {
    /// Always `"PersonalServer"`.
    pub kind: String,
    /// Checksummed address of the per-user server key.
    pub address: String,
    /// `"0x04"` + X ‖ Y, 130 hex characters after `0x`.
    pub public_key: String,
}

impl Identity {
    pub fn new(user_address: String, address: String, public_key: String) -> Self {
        Self {
            kind: "Identity".into(),
            user_address,
            personal_server: PersonalServerIdentity {
                kind: "PersonalServer".into(),
                address,
                public_key,
            },
        }
    }
}

/// `POST /api/v1/operations` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOperation {
    /// EIP-191 signature by the app (grantee) key over `operation_request_json`.
    pub app_signature: String,
    /// A JSON document as a string: `{"permission_id":N[,"operation":…][,"parameters":{…}]}`.
    pub operation_request_json: String,
}

/// The JSON inside [`CreateOperation::operation_request_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRequest {
    pub permission_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Map<String, serde_json::Value>>,
}

impl OperationRequest {
    /// The exact text the SDK signs: `JSON.stringify({permission_id})`.
    pub fn sdk_json(permission_id: u64) -> String {
        format!("{{\"permission_id\":{permission_id}}}")
    }
}

/// `POST /api/v1/operations` → 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCreated {
    /// Always `"OperationCreated"`.
    pub kind: String,
    /// The inference backend's prediction id.
    pub id: String,
    pub created_at: String,
}

/// The terminal and non-terminal states of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl OperationState {
    /// `succeeded`, `failed` and `canceled` end an operation; only the first is a success.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// `GET /api/v1/operations/{id}` → 200.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStatus {
    /// Always `"OperationStatus"`.
    pub kind: String,
    pub id: String,
    pub status: OperationState,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `{"output": "<text>"}`, a parsed JSON object, or null. Servers before
    /// commit 1cf5759 sent a plain string; clients accept that too.
    pub result: Option<serde_json::Value>,
}

impl OperationStatus {
    /// The output text, whichever of the result shapes the server used.
    pub fn output_text(&self) -> Option<String> {
        match self.result.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(map) => match map.get("output") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
                None => Some(serde_json::Value::Object(map.clone()).to_string()),
            },
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// The error codes of the server's error body, with their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    ValidationField,
    GrantValidation,
    Authentication,
    Authorization,
    NotFound,
    RateLimit,
    Blockchain,
    FileAccess,
    Decryption,
    Compute,
    Operation,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION_ERROR",
            Self::ValidationField => "VALIDATION_ERROR_FIELD",
            Self::GrantValidation => "GRANT_VALIDATION_ERROR",
            Self::Authentication => "AUTHENTICATION_ERROR",
            Self::Authorization => "AUTHORIZATION_ERROR",
            Self::NotFound => "NOT_FOUND_ERROR",
            Self::RateLimit => "RATE_LIMIT_ERROR",
            Self::Blockchain => "BLOCKCHAIN_ERROR",
            Self::FileAccess => "FILE_ACCESS_ERROR",
            Self::Decryption => "DECRYPTION_ERROR",
            Self::Compute => "COMPUTE_ERROR",
            Self::Operation => "OPERATION_ERROR",
        }
    }

    /// The code of a failed contract read: `on_revert` when the contract
    /// refused it, `BLOCKCHAIN_ERROR` when the node could not be asked (a
    /// transport failure or timeout is the chain's fault, not the request's).
    pub fn of_call_error(e: &alloy::contract::Error, on_revert: ErrorCode) -> ErrorCode {
        let reverted =
            e.as_revert_data().is_some() || e.to_string().to_ascii_lowercase().contains("revert");
        if reverted {
            on_revert
        } else {
            Self::Blockchain
        }
    }

    /// The code of an upstream HTTP status: 429 stays a rate limit, anything
    /// else is `otherwise`.
    pub fn of_upstream_status(status: u16, otherwise: ErrorCode) -> ErrorCode {
        if status == 429 {
            Self::RateLimit
        } else {
            otherwise
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::Validation | Self::ValidationField | Self::GrantValidation => 400,
            Self::Authentication => 401,
            Self::Authorization => 403,
            Self::NotFound => 404,
            Self::RateLimit => 429,
            Self::Blockchain
            | Self::FileAccess
            | Self::Decryption
            | Self::Compute
            | Self::Operation => 500,
        }
    }
}

/// The error body: `{"detail":{"kind":"Error","detail":msg,"error_code":…,"field":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Always `"Error"`.
    pub kind: String,
    pub detail: String,
    pub error_code: String,
    #[serde(default)]
    pub field: Option<String>,
}

impl ErrorBody {
    /// The body of `code`; a validation error about a field carries the
    /// server's `VALIDATION_ERROR_{FIELD}` code (`VALIDATION_ERROR_ADDRESS`, …).
    pub fn new(code: ErrorCode, detail: impl Into<String>, field: Option<&str>) -> Self {
        let error_code = match (code, field) {
            (ErrorCode::Validation | ErrorCode::ValidationField, Some(f)) => {
                format!("VALIDATION_ERROR_{}", f.to_uppercase())
            }
            _ => code.as_str().into(),
        };
        Self {
            detail: ErrorDetail {
                kind: "Error".into(),
                detail: detail.into(),
                error_code,
                field: field.map(str::to_owned),
            },
        }
    }
}

/// FastAPI's 422 body for a request body that does not match the endpoint's
/// model: `{"detail":[{"type","loc","msg","input"[,"ctx"]}]}` (pydantic v2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestValidationError {
    pub detail: Vec<RequestValidationItem>,
}

/// One entry of a [`RequestValidationError`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestValidationItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    pub input: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<serde_json::Value>,
}

impl RequestValidationError {
    /// The 422 body for a `POST /operations` body, or `None` when it matches
    /// [`CreateOperation`] (two string fields).
    pub fn of_create_operation(body: &[u8]) -> Option<Self> {
        use serde_json::{Value, json};
        let item = |kind: &str, loc: Vec<Value>, msg: &str, input: Value| RequestValidationItem {
            kind: kind.into(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        };
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                // pydantic reports the byte offset of the JSON error.
                let offset: usize = std::str::from_utf8(body)
                    .unwrap_or("")
                    .lines()
                    .take(e.line().saturating_sub(1))
                    .map(|l| l.len() + 1)
                    .sum::<usize>()
                    + e.column().saturating_sub(1);
                let mut it = item(
                    "json_invalid",
                    vec![json!("body"), json!(offset)],
                    "JSON decode error",
                    json!({}),
                );
                it.ctx = Some(json!({"error": e.to_string()}));
                return Some(RequestValidationError { detail: vec![it] });
            }
        };
        let Some(obj) = value.as_object() else {
            return Some(RequestValidationError {
                detail: vec![item(
                    "model_attributes_type",
                    vec![json!("body")],
                    "Input should be a valid dictionary or object to extract fields from",
                    value.clone(),
                )],
            });
        };
        let detail: Vec<_> = ["app_signature", "operation_request_json"]
            .into_iter()
            .filter_map(|field| match obj.get(field) {
                None => Some(item(
                    "missing",
                    vec![json!("body"), json!(field)],
                    "Field required",
                    value.clone(),
                )),
                Some(Value::String(_)) => None,
                Some(other) => Some(item(
                    "string_type",
                    vec![json!("body"), json!(field)],
                    "Input should be a valid string",
                    other.clone(),
                )),
            })
            .collect();
        (!detail.is_empty()).then_some(RequestValidationError { detail })
    }
}

/// The grant file's JSON, as the server validates it (`additionalProperties: false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    /// Must equal the checksummed on-chain grantee address, case-sensitively.
    pub grantee: String,
    pub operation: String,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// Operations a grant may name.
pub const GRANT_OPERATIONS: [&str; 3] =
    ["llm_inference", "prompt_gemini_agent", "prompt_qwen_agent"];

/// The separator the server puts between files in a prompt: `"-----"` × 80 and a newline.
pub fn data_separator() -> String {
    let mut s = "-----".repeat(80);
    s.push('\n');
    s
}

/// Longest prompt data the server sends, in characters, before truncating.
pub const MAX_PROMPT_CHARS: usize = 75_000;

/// Builds the inference prompt as the server does: `{{data}}` in
/// `parameters.prompt` (appended as `"\n\n{{data}}"` when absent) becomes
/// `"\n" + SEP.join(files) + "\n" + SEP`, truncated to [`MAX_PROMPT_CHARS`].
pub fn build_prompt(prompt_template: &str, files: &[String]) -> String {
    let sep = data_separator();
    let mut data = String::from("\n");
    data.push_str(&files.join(&sep));
    data.push('\n');
    data.push_str(&sep);
    let template = if prompt_template.contains("{{data}}") {
        prompt_template.to_owned()
    } else {
        format!("{prompt_template}\n\n{{{{data}}}}")
    };
    let prompt = template.replace("{{data}}", &data);
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        let cut: String = prompt.chars().take(MAX_PROMPT_CHARS).collect();
        format!("{cut}\n--- DATA TRUNCATED (exceeded {MAX_PROMPT_CHARS} characters) ---")
    } else {
        prompt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_validation_errors_name_the_field_in_the_code() {
        let b = ErrorBody::new(ErrorCode::ValidationField, "bad", Some("address"));
        assert_eq!(b.detail.error_code, "VALIDATION_ERROR_ADDRESS");
        let b = ErrorBody::new(ErrorCode::Validation, "bad", Some("permission_id"));
        assert_eq!(b.detail.error_code, "VALIDATION_ERROR_PERMISSION_ID");
        let b = ErrorBody::new(ErrorCode::Validation, "bad", None);
        assert_eq!(b.detail.error_code, "VALIDATION_ERROR");
        let b = ErrorBody::new(ErrorCode::NotFound, "x", Some("ignored"));
        assert_eq!(b.detail.error_code, "NOT_FOUND_ERROR");
    }

    #[test]
    fn malformed_bodies_get_fastapis_422_list() {
        let ok = br#"{"app_signature":"0x1","operation_request_json":"{}"}"#;
        assert_eq!(RequestValidationError::of_create_operation(ok), None);
        let e = RequestValidationError::of_create_operation(b"{not json").unwrap();
        assert_eq!(e.detail[0].kind, "json_invalid");
        assert_eq!(
            e.detail[0].loc,
            vec![serde_json::json!("body"), serde_json::json!(1)]
        );
        let e = RequestValidationError::of_create_operation(br#"{"app_signature":5}"#).unwrap();
        let kinds: Vec<_> = e
            .detail
            .iter()
            .map(|d| (d.kind.as_str(), d.loc[1].clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("string_type", serde_json::json!("app_signature")),
                ("missing", serde_json::json!("operation_request_json"))
            ]
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["detail"][1]["msg"], "Field required");
        assert!(v["detail"][1].get("ctx").is_none());
        let e = RequestValidationError::of_create_operation(b"[1]").unwrap();
        assert_eq!(e.detail[0].kind, "model_attributes_type");
    }

    #[test]
    fn sdk_request_json_is_exact() {
        assert_eq!(OperationRequest::sdk_json(42), r#"{"permission_id":42}"#);
        let parsed: OperationRequest =
            serde_json::from_str(&OperationRequest::sdk_json(7)).unwrap();
        assert_eq!(parsed.permission_id, 7);
    }

    #[test]
    fn prompt_appends_data_placeholder() {
        let p = build_prompt("Summarise", &["a".into(), "b".into()]);
        let sep = data_separator();
        assert_eq!(p, format!("Summarise\n\n\na{sep}b\n{sep}"));
        let q = build_prompt("X {{data}} Y", &["z".into()]);
        assert_eq!(q, format!("X \nz\n{sep} Y"));
    }

    #[test]
    fn prompt_truncates_long_data() {
        let big = "x".repeat(MAX_PROMPT_CHARS * 2);
        let p = build_prompt("{{data}}", &[big]);
        assert!(p.contains("DATA TRUNCATED"));
        assert!(p.chars().count() < MAX_PROMPT_CHARS + 100);
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorBody::new(ErrorCode::NotFound, "no such operation", None);
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["detail"]["kind"], "Error");
        assert_eq!(v["detail"]["error_code"], "NOT_FOUND_ERROR");
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
    }

    #[test]
    fn output_text_accepts_every_result_shape() {
        let mk = |result| OperationStatus {
            kind: "OperationStatus".into(),
            id: "x".into(),
            status: OperationState::Succeeded,
            started_at: None,
            finished_at: None,
            result,
        };
        assert_eq!(
            mk(Some(serde_json::json!({"output": "hi"})))
                .output_text()
                .unwrap(),
            "hi"
        );
        assert_eq!(
            mk(Some(serde_json::json!("old"))).output_text().unwrap(),
            "old"
        );
        assert_eq!(mk(None).output_text(), None);
        assert!(
            mk(Some(serde_json::json!({"a": 1})))
                .output_text()
                .unwrap()
                .contains("\"a\"")
        );
    }

    #[test]
    fn grant_rejects_unknown_fields() {
        let bad = r#"{"grantee":"0x0","operation":"llm_inference","parameters":{},"extra":1}"#;
        assert!(serde_json::from_str::<GrantFile>(bad).is_err());
    }
}
