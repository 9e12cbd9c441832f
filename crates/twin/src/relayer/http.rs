//! The wire of `POST /api/relay`: parsing, and the answer shapes of two
//! protocols.
//!
//! - **The SDK's** (default): what an app's relay route running the SDK's
//!   `handleRelayerOperation` answers. A signed request gets `{type:"signed",
//!   hash}` as soon as its transaction is broadcast; a direct one its
//!   `{type:"direct", result}`. Every failure, a malformed body included, is
//!   `{type:"error", error}` with HTTP 200, as the SDK's example relay route
//!   (`examples/vana-sdk-demo/src/app/api/relay/route.ts`) returns it: an SDK
//!   configured with `relayer: "<url>"` throws away the body of a non-2xx
//!   answer, so a status would hide the message from the app.
//! - **vana-load's extension** (`?wait=confirmed|submitted|pending`, or config
//!   `wait`): `confirmed{hash, receipt}`, `submitted{hash}` or
//!   `pending{operationId}` followed by `status_check`; failures carry an
//!   HTTP status (400 refused, 404 unknown operation, 422 revert, 503 busy,
//!   502 upstream).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::api::relayer::{DirectOperation, RELAY_PATH, RelayRequest, RelayResponse};
use serde::Deserialize;

use super::Relayer;
use super::config::WaitMode;
use super::direct::FileAddition;

/// Which protocol answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The published SDK's.
    Sdk,
    /// vana-load's extension, with its wait mode.
    Extension(WaitMode),
}

/// A failed request: the message of its `{type:"error"}` answer, and the
/// HTTP status the extension gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A failed operation, its status from the message: a revert is 422,
    /// "relayer busy" 503, anything else (the node, the relayer stopping) 502.
    pub fn of_operation(message: String) -> Self {
        let status = if message.starts_with("revert(") {
            StatusCode::UNPROCESSABLE_ENTITY
        } else if message.starts_with("relayer busy") {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        Failure { status, message }
    }
}

#[derive(Debug, Deserialize)]
struct RelayQuery {
    wait: Option<WaitMode>,
}

/// The relayer's routes (without state).
pub fn routes() -> Router<Arc<Relayer>> {
    Router::new().route(RELAY_PATH, post(relay))
}

fn answer(protocol: Protocol, result: Result<RelayResponse, Failure>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(f) => {
            let status = match protocol {
                Protocol::Sdk => StatusCode::OK,
                Protocol::Extension(_) => f.status,
            };
            let body = RelayResponse::Error { error: f.message };
            (status, axum::Json(body)).into_response()
        }
    }
}

async fn relay(
    State(r): State<Arc<Relayer>>,
    query: Result<Query<RelayQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Query(q)) = query else {
        r.metrics.error("bad_request");
        let f = Failure::new(
            StatusCode::BAD_REQUEST,
            "?wait= must be one of confirmed, submitted, pending",
        );
        return answer(Protocol::Extension(WaitMode::Confirmed), Err(f));
    };
    let protocol = match q.wait.or(r.cfg.wait) {
        Some(wait) => Protocol::Extension(wait),
        None => Protocol::Sdk,
    };
    answer(protocol, handle(&r, protocol, &body).await)
}

async fn handle(
    r: &Arc<Relayer>,
    protocol: Protocol,
    body: &[u8],
) -> Result<RelayResponse, Failure> {
    let req: RelayRequest = serde_json::from_slice(body).map_err(|e| {
        r.metrics.request("invalid", "");
        r.metrics.error("bad_request");
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("malformed relay request: {e}"),
        )
    })?;
    match req {
        RelayRequest::Signed {
            operation,
            typed_data,
            signature,
            expected_user_address,
        } => {
            r.metrics.request("signed", operation.as_str());
            let call = super::signed::prepare(
                &r.target,
                &typed_data,
                &signature,
                expected_user_address.as_deref(),
            )
            .map_err(|e| {
                r.metrics.error(e.kind());
                Failure::new(StatusCode::BAD_REQUEST, e.to_string())
            })?;
            r.relay_signed(call.to, call.input, call.function, protocol)
                .await
        }
        RelayRequest::Direct(op) => {
            r.metrics.request("direct", op.as_str());
            match op {
                DirectOperation::SubmitFileAddition(p) => r.add_file(FileAddition::Plain, p).await,
                DirectOperation::SubmitFileAdditionWithPermissions(p) => {
                    r.add_file(FileAddition::WithPermissions, p).await
                }
                DirectOperation::SubmitFileAdditionComplete(p) => {
                    r.add_file(FileAddition::Complete, p).await
                }
                DirectOperation::StoreGrantFile(grant) => r.store_grant(grant).await,
            }
        }
        RelayRequest::StatusCheck { operation_id } => {
            r.metrics.request("status_check", "");
            match r.ops.get(&operation_id) {
                Some(op) => Ok(op.status().response(&op.id, true)),
                None => {
                    r.metrics.error("unknown_operation");
                    Err(Failure::new(
                        StatusCode::NOT_FOUND,
                        format!("unknown operationId {operation_id:?}"),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_failures_get_their_extension_status() {
        assert_eq!(
            Failure::of_operation("revert(InvalidNonce(1, 0))".into()).status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            Failure::of_operation("relayer busy: no slot".into()).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Failure::of_operation("node down".into()).status,
            StatusCode::BAD_GATEWAY
        );
    }

    #[tokio::test]
    async fn the_sdk_protocol_answers_errors_with_200_and_the_extension_with_their_status() {
        let f = Failure::new(StatusCode::BAD_REQUEST, "Unsupported operation type: X");
        let sdk = answer(Protocol::Sdk, Err(f.clone()));
        assert_eq!(sdk.status(), StatusCode::OK);
        let body = axum::body::to_bytes(sdk.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": "Unsupported operation type: X"})
        );
        let ext = answer(Protocol::Extension(WaitMode::Confirmed), Err(f));
        assert_eq!(ext.status(), StatusCode::BAD_REQUEST);
    }
}
