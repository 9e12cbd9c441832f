//! `GET /operations/{id}` and `POST /operations/{id}/cancel`: an operation
//! is its prediction on the inference backend.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::api::personal_server::{ErrorCode, OperationState, OperationStatus};
use protocol::api::replicate;

use super::error::ApiError;
use super::inference::{fetch_prediction, inference_request, to_operation_state};
use super::{AppState, count};

/// Operation ids are prediction ids: short, URL-safe tokens.
pub(super) fn check_operation_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::ValidationField,
            format!("operation id {id:?} is malformed"),
        )
        .field("operation_id"))
    }
}

pub(super) async fn get_operation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let response = operation_status(&state, &id)
        .await
        .map_or_else(IntoResponse::into_response, |body| {
            (StatusCode::OK, Json(body)).into_response()
        });
    count(&state, "operations_get", response.status().as_u16());
    response
}

pub(super) async fn operation_status(
    state: &AppState,
    id: &str,
) -> Result<OperationStatus, ApiError> {
    check_operation_id(id)?;
    let p = fetch_prediction(state, id).await?;
    let status = to_operation_state(p.status);
    let result = (status == OperationState::Succeeded)
        .then(|| serde_json::json!({ "output": p.output_text() }));
    Ok(OperationStatus {
        kind: "OperationStatus".into(),
        id: p.id,
        status,
        started_at: p.started_at.or(Some(p.created_at)),
        finished_at: p.completed_at,
        result,
    })
}

pub(super) async fn cancel_operation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let response = cancel(&state, &id)
        .await
        .map_or_else(IntoResponse::into_response, |()| {
            StatusCode::NO_CONTENT.into_response()
        });
    count(&state, "operations_cancel", response.status().as_u16());
    response
}

pub(super) async fn cancel(state: &AppState, id: &str) -> Result<(), ApiError> {
    check_operation_id(id)?;
    let response = inference_request(
        state,
        reqwest::Method::POST,
        &replicate::cancel_path(id),
        None,
    )
    .await?;
    match response.status().as_u16() {
        s if (200..300).contains(&s) => Ok(()),
        404 => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("operation {id} not found"),
        )),
        s => Err(ApiError::new(
            ErrorCode::Compute,
            format!("cancel failed: HTTP {s}"),
        )),
    }
}
