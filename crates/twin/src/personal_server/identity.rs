//! `GET /identity?address=`: the user's server address and public key, and
//! the per-user server key every step derives.
use std::str::FromStr;
use std::sync::Arc;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use protocol::api::personal_server::{ErrorCode, Identity};
use protocol::crypto;
use serde::Deserialize;

use super::error::ApiError;
use super::rate_limit::{Bucket, client_ip_of};
use super::{AppState, count};

#[derive(Deserialize)]
pub(super) struct IdentityQuery {
    address: Option<String>,
}

pub(super) fn parse_address(s: &str) -> Option<Address> {
    let hex = s.strip_prefix("0x")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Address::from_str(s).ok()
}

pub(super) async fn identity(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    Query(q): Query<IdentityQuery>,
) -> Response {
    if let Err(limited) = state
        .limiter
        .check(Bucket::Identity, client_ip_of(&parts), None)
    {
        count(&state, "identity", 429);
        return limited.into_response();
    }
    let result = (|| {
        let raw = q.address.ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationField,
                "address query parameter is required",
            )
            .field("address")
        })?;
        let user = parse_address(&raw).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationField,
                format!("address {raw:?} must match ^0x[a-fA-F0-9]{{40}}$"),
            )
            .field("address")
        })?;
        let key = server_key(&state, user)?;
        Ok::<_, ApiError>(Identity::new(
            raw,
            key.address().to_checksum(None),
            crypto::public_key_hex(&key),
        ))
    })();
    let response = match result {
        Ok(identity) => (StatusCode::OK, Json(identity)).into_response(),
        Err(e) => e.into_response(),
    };
    count(&state, "identity", response.status().as_u16());
    response
}

pub(super) fn server_key(state: &AppState, user: Address) -> Result<PrivateKeySigner, ApiError> {
    state
        .server_keys
        .signer_for(user)
        .map_err(|e| ApiError::new(ErrorCode::Operation, format!("server key for {user}: {e}")))
}
