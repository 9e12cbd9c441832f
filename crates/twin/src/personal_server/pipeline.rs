//! `POST /operations`: the synchronous pipeline that checks the signed
//! request, the permission and grant, decrypts each file and dispatches the
//! prediction (see the module doc of [`super`]).
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Signature, U256};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use protocol::api::personal_server::{
    CreateOperation, ErrorCode, GRANT_OPERATIONS, GrantFile, OperationCreated, OperationRequest,
    RequestValidationError, build_prompt,
};
use protocol::contracts::{DataPortabilityGrantees, DataPortabilityPermissions, DataRegistry};
use protocol::crypto;

use super::error::{ApiError, not_found};
use super::identity::{parse_address, server_key};
use super::inference::create_prediction;
use super::rate_limit::{Bucket, client_ip_of};
use super::{AppState, count};

pub(super) async fn create_operation(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: axum::body::Bytes,
) -> Response {
    let started = Instant::now();
    // A body that does not match the request model never reaches the
    // handler: FastAPI answers 422 with pydantic's error list.
    if let Some(invalid) = RequestValidationError::of_create_operation(&body) {
        let response = (StatusCode::UNPROCESSABLE_ENTITY, Json(invalid)).into_response();
        count(&state, "operations_create", response.status().as_u16());
        return response;
    }
    // The optional rate limits: per client IP, and per signer when the
    // signature recovers.
    let signer = serde_json::from_slice::<CreateOperation>(&body)
        .ok()
        .and_then(|req| recover_app(&req).ok())
        .map(|a| a.to_checksum(None));
    if let Err(limited) = state
        .limiter
        .check(Bucket::Operations, client_ip_of(&parts), signer)
    {
        count(&state, "operations_create", 429);
        return limited.into_response();
    }
    let response = match run_pipeline(&state, &body).await {
        Ok(created) => (StatusCode::ACCEPTED, Json(created)).into_response(),
        Err(e) => {
            tracing::debug!(code = e.code.as_str(), detail = %e.detail, "operation rejected");
            e.into_response()
        }
    };
    state
        .metrics
        .pipeline_seconds
        .observe(started.elapsed().as_secs_f64());
    count(&state, "operations_create", response.status().as_u16());
    response
}

pub(super) async fn run_pipeline(
    state: &AppState,
    body: &[u8],
) -> Result<OperationCreated, ApiError> {
    let req: CreateOperation = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::Validation, format!("invalid request body: {e}")))?;
    let len = req.operation_request_json.chars().count();
    if !(2..=state.config.max_request_chars).contains(&len) {
        return Err(ApiError::new(
            ErrorCode::ValidationField,
            format!(
                "operation_request_json must be 2..{} characters, got {len}",
                state.config.max_request_chars
            ),
        )
        .field("operation_request_json"));
    }
    let op: OperationRequest = serde_json::from_str(&req.operation_request_json).map_err(|e| {
        ApiError::new(
            ErrorCode::Validation,
            format!("operation_request_json is not a valid request: {e}"),
        )
        .field("operation_request_json")
    })?;
    if op.permission_id == 0 {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "permission_id must be greater than 0",
        )
        .field("permission_id"));
    }

    // 1. Who is asking: the app key that signed the request JSON.
    let app = recover_app(&req)?;

    // 2. The permission and its grantee, on chain.
    let permissions = DataPortabilityPermissions::new(state.upstreams.permissions, &state.provider);
    let permission = permissions
        .permissions(U256::from(op.permission_id))
        .call()
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::of_call_error(&e, ErrorCode::NotFound),
                format!("permission {} could not be read: {e}", op.permission_id),
            )
        })?;
    // The contract answers a zeroed struct for an unknown id: as the server, 404.
    if permission.grantor == Address::ZERO {
        return Err(not_found("Permission", op.permission_id));
    }
    if permission.fileIds.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("No file IDs found for permission {}", op.permission_id),
        ));
    }
    let grantees = DataPortabilityGrantees::new(state.upstreams.grantees, &state.provider);
    let grantee = grantees
        .grantees(permission.granteeId)
        .call()
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::Blockchain,
                format!("grantee {} could not be read: {e}", permission.granteeId),
            )
        })?;
    if grantee.granteeAddress == Address::ZERO {
        return Err(not_found("Grantee", permission.granteeId));
    }
    if grantee.granteeAddress != app {
        return Err(ApiError::new(
            ErrorCode::Authentication,
            format!(
                "app signature is from {app}, but permission {} is granted to {}",
                op.permission_id, grantee.granteeAddress
            ),
        ));
    }

    // 3. The grant file.
    let timeout = Duration::from_millis(state.config.download_timeout_ms);
    let grant_bytes = state
        .fetcher
        .get(&permission.grant, timeout)
        .await
        .map_err(|e| ApiError::new(ErrorCode::FileAccess, format!("grant file: {e}")))?;
    let grant: GrantFile = serde_json::from_slice(&grant_bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::GrantValidation,
            format!("grant file does not match the schema: {e}"),
        )
    })?;
    validate_grant(&grant, &grantee.granteeAddress.to_checksum(None), &op)?;
    let mut parameters = op.parameters.clone().unwrap_or_default();
    for (k, v) in &grant.parameters {
        parameters.insert(k.clone(), v.clone()); // the grant wins on conflicts
    }

    // 4. The files, decrypted with the per-user server key.
    let server_key = server_key(state, permission.grantor)?;
    let registry = DataRegistry::new(state.upstreams.data_registry, &state.provider);
    let mut files = Vec::with_capacity(permission.fileIds.len());
    for file_id in &permission.fileIds {
        let file = registry.files(*file_id).call().await.map_err(|e| {
            ApiError::new(
                ErrorCode::Blockchain,
                format!("file {file_id} could not be read: {e}"),
            )
        })?;
        if file.ownerAddress == Address::ZERO {
            return Err(not_found("File", file_id));
        }
        let wrapped = registry
            .filePermissions(*file_id, server_key.address())
            .call()
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::Blockchain,
                    format!("file {file_id} permission could not be read: {e}"),
                )
            })?;
        if wrapped.is_empty() {
            return Err(not_found(
                "File key",
                format!("{file_id}/{}", server_key.address()),
            ));
        }
        let key = crypto::ecies::decrypt(server_key.credential().to_bytes().as_slice(), &wrapped)
            .map_err(|e| {
            ApiError::new(ErrorCode::Decryption, format!("file {file_id} key: {e}"))
        })?;
        let password = String::from_utf8(key).map_err(|_| {
            ApiError::new(
                ErrorCode::Decryption,
                format!("file {file_id} key is not UTF-8"),
            )
        })?;
        let ciphertext =
            state.fetcher.get(&file.url, timeout).await.map_err(|e| {
                ApiError::new(ErrorCode::FileAccess, format!("file {file_id}: {e}"))
            })?;
        let plaintext = tokio::task::spawn_blocking(move || {
            crypto::decrypt_with_password(&ciphertext, &password)
        })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Operation, format!("decryption task failed: {e}")))?
        .map_err(|e| ApiError::new(ErrorCode::Decryption, format!("file {file_id}: {e}")))?;
        let text = String::from_utf8(plaintext).map_err(|_| {
            ApiError::new(
                ErrorCode::Decryption,
                format!("file {file_id} is not UTF-8 text"),
            )
        })?;
        files.push(text);
    }

    // 5. Dispatch to the inference backend.
    let template = parameters
        .get("prompt")
        .and_then(|p| p.as_str())
        .unwrap_or("{{data}}");
    let prompt = build_prompt(template, &files);
    let prediction = create_prediction(state, prompt).await?;
    Ok(OperationCreated {
        kind: "OperationCreated".into(),
        id: prediction.id,
        created_at: prediction.created_at,
    })
}

pub(super) fn validate_grant(
    grant: &GrantFile,
    checksummed_grantee: &str,
    op: &OperationRequest,
) -> Result<(), ApiError> {
    let invalid = |msg: String| ApiError::new(ErrorCode::GrantValidation, msg);
    if parse_address(&grant.grantee).is_none() {
        return Err(invalid(format!(
            "grant.grantee {:?} is not an address",
            grant.grantee
        )));
    }
    if grant.grantee != checksummed_grantee {
        return Err(invalid(format!(
            "grant.grantee {} does not equal the permission's grantee {checksummed_grantee}",
            grant.grantee
        )));
    }
    if !GRANT_OPERATIONS.contains(&grant.operation.as_str()) {
        return Err(invalid(format!(
            "grant.operation {:?} is not supported",
            grant.operation
        )));
    }
    if let Some(expires) = grant.expires {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        if expires <= now {
            return Err(invalid(format!("grant expired at {expires}")));
        }
    }
    if let Some(requested) = &op.operation
        && requested != &grant.operation
    {
        return Err(invalid(format!(
            "requested operation {requested:?} does not match the grant's {:?}",
            grant.operation
        )));
    }
    Ok(())
}

/// The app key that signed the request JSON (EIP-191).
fn recover_app(req: &CreateOperation) -> Result<Address, ApiError> {
    Signature::from_str(&req.app_signature)
        .ok()
        .and_then(|sig| {
            sig.recover_address_from_msg(req.operation_request_json.as_bytes())
                .ok()
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Authentication,
                "invalid app_signature: cannot recover the signer",
            )
        })
}
