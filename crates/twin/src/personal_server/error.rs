//! A rejection with the hosted server's error body and status.
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::api::personal_server::{ErrorBody, ErrorCode};

/// A rejection with the server's error body.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) code: ErrorCode,
    pub(super) detail: String,
    pub(super) field: Option<&'static str>,
}

impl ApiError {
    pub(super) fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field: None,
        }
    }
    pub(super) fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// The server's `NotFoundError`: 404, `"{kind} '{id}' not found"`.
pub(super) fn not_found(kind: &str, id: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{kind} '{id}' not found"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ErrorBody::new(self.code, self.detail, self.field)),
        )
            .into_response()
    }
}
