//! The personal server (`/api/v1`), as the hosted Vana server behaves.
//!
//! `POST /operations` runs the server's pipeline synchronously before answering
//! 202: parse and bound the request, recover the app's EIP-191 signature, read
//! the permission and its grantee on chain, fetch and validate the grant JSON,
//! then for each file derive the per-user server key, read the wrapped key K
//! from `DataRegistry.filePermissions`, ECIES-decrypt K, download and OpenPGP-
//! decrypt the file, build the prompt and create a prediction on the inference
//! backend. The operation id is the prediction id. `GET /operations/{id}` maps
//! the prediction to an `OperationStatus`.
//!
//! Like the hosted server, it does not check revocation (`endBlock`) nor server
//! trust. Every rejection uses the server's error body and HTTP status.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Signature, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::api::personal_server::{
    CreateOperation, ErrorBody, ErrorCode, GRANT_OPERATIONS, GrantFile, Identity, OperationCreated,
    OperationRequest, OperationState, OperationStatus, RequestValidationError, build_prompt,
};
use protocol::api::replicate::{self, CreatePrediction, Prediction, PredictionStatus};
use protocol::contracts::{DataPortabilityGrantees, DataPortabilityPermissions, DataRegistry};
use protocol::crypto;
use serde::{Deserialize, Serialize};

use crate::fetch::{DEFAULT_MAX_BYTES, Fetcher};
use crate::service::{ServiceError, ServiceHandle, serve};

/// Anvil's second well-known test mnemonic is *not* used: the server's keys
/// come from their own mnemonic so they never collide with user wallets.
pub const DEFAULT_SERVER_MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

/// Personal-server settings (the `[personal_server]` section of the twin config).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: std::net::IpAddr,
    /// Default 0: any free port (the manifest lists the URL).
    pub port: u16,
    /// Mnemonic of the per-user server keys (`WALLET_MNEMONIC` on the hosted server).
    pub server_mnemonic: String,
    /// Bearer token sent to the inference backend (empty: the twin's inference token).
    pub replicate_token: String,
    /// `owner/name` of the model the predictions run.
    pub model: String,
    pub max_tokens: u64,
    /// Largest file it downloads, in bytes.
    pub max_download_bytes: usize,
    pub download_timeout_ms: u64,
    /// Longest `operation_request_json` accepted, in characters.
    pub max_request_chars: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            server_mnemonic: DEFAULT_SERVER_MNEMONIC.into(),
            replicate_token: String::new(),
            model: "deepseek-ai/deepseek-v3".into(),
            max_tokens: 16384,
            max_download_bytes: DEFAULT_MAX_BYTES,
            download_timeout_ms: 10_000,
            max_request_chars: 100_000,
        }
    }
}

impl Config {
    /// Checks the section; errors name the field.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        protocol::keys::validate_mnemonic(&self.server_mnemonic)
            .map_err(|e| ConfigError::invalid("personal_server.server_mnemonic", e.to_string()))?;
        if self.model.split('/').count() != 2 {
            return Err(ConfigError::invalid(
                "personal_server.model",
                "must be owner/name",
            ));
        }
        if self.max_download_bytes == 0 {
            return Err(ConfigError::invalid(
                "personal_server.max_download_bytes",
                "must be positive",
            ));
        }
        if self.max_request_chars < 2 {
            return Err(ConfigError::invalid(
                "personal_server.max_request_chars",
                "must be at least 2",
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_mnemonic", &"<redacted>")
            .field("replicate_token", &"<redacted>")
            .field("model", &self.model)
            .field("max_download_bytes", &self.max_download_bytes)
            .finish_non_exhaustive()
    }
}

/// Where the server finds the chain, the files and the inference backend.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub rpc_url: String,
    pub permissions: Address,
    pub grantees: Address,
    pub data_registry: Address,
    /// Base URL of the inference backend (`…/v1/models/{owner}/{name}/predictions`).
    pub inference_url: String,
    /// Base URL of an IPFS gateway for `ipfs://` file URLs.
    pub ipfs_gateway: String,
}

struct Metrics {
    requests: Family<Vec<(String, String)>, Counter>,
    pipeline_seconds: Histogram,
}

/// The personal server's state: settings, upstream clients, keys, metrics.
pub struct AppState {
    config: Config,
    upstreams: Upstreams,
    provider: DynProvider,
    http: reqwest::Client,
    fetcher: Fetcher,
    server_keys: crypto::ServerKeyring,
    metrics: Metrics,
}

/// Starts the personal server: [`start`], then [`router`] served on
/// `config.host:config.port`.
pub async fn spawn(config: Config, upstreams: Upstreams) -> Result<ServiceHandle, ServiceError> {
    let bind = SocketAddr::new(config.host, config.port);
    let (state, registry) = start(config, upstreams)?;
    serve("personal_server", bind, router(state), Arc::new(registry)).await
}

/// Builds the server's state (keys, clients; nothing is contacted yet);
/// serves nothing (see [`router`]). The registry holds its metrics.
pub fn start(
    config: Config,
    upstreams: Upstreams,
) -> Result<(Arc<AppState>, Registry), ServiceError> {
    let setup = |message: String| ServiceError::Setup {
        service: "personal_server",
        message,
    };
    let url = upstreams
        .rpc_url
        .parse()
        .map_err(|e| setup(format!("invalid rpc url {:?}: {e}", upstreams.rpc_url)))?;
    let provider = protocol::rpc::provider(url).erased();
    let server_keys = crypto::ServerKeyring::new(&config.server_mnemonic)
        .map_err(|e| setup(format!("server_mnemonic: {e}")))?;
    let http = crate::fetch::http_client_builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| setup(e.to_string()))?;
    let fetcher = Fetcher::new(
        http.clone(),
        upstreams.ipfs_gateway.clone(),
        config.max_download_bytes,
    );

    let mut registry = Registry::default();
    let metrics = Metrics {
        requests: Family::default(),
        pipeline_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
    };
    registry.register(
        "ps_requests",
        "Requests by route and status",
        metrics.requests.clone(),
    );
    registry.register(
        "ps_operation_pipeline_seconds",
        "Time to validate, decrypt and dispatch an operation",
        metrics.pipeline_seconds.clone(),
    );
    let state = Arc::new(AppState {
        config,
        upstreams,
        provider,
        http,
        fetcher,
        server_keys,
        metrics,
    });
    Ok((state, registry))
}

/// The `/api/v1` routes over `state`: identity and operations.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/identity", get(identity))
        .route("/api/v1/operations", post(create_operation))
        .route("/api/v1/operations/{id}", get(get_operation))
        .route("/api/v1/operations/{id}/cancel", post(cancel_operation))
        .with_state(state)
}

/// A rejection with the server's error body.
#[derive(Debug)]
struct ApiError {
    code: ErrorCode,
    detail: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field: None,
        }
    }
    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// The server's `NotFoundError`: 404, `"{kind} '{id}' not found"`.
fn not_found(kind: &str, id: impl std::fmt::Display) -> ApiError {
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

fn count(state: &AppState, route: &str, status: u16) {
    state
        .metrics
        .requests
        .get_or_create(&vec![
            ("route".into(), route.into()),
            ("status".into(), status.to_string()),
        ])
        .inc();
}

#[derive(Deserialize)]
struct IdentityQuery {
    address: Option<String>,
}

fn parse_address(s: &str) -> Option<Address> {
    let hex = s.strip_prefix("0x")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Address::from_str(s).ok()
}

async fn identity(State(state): State<Arc<AppState>>, Query(q): Query<IdentityQuery>) -> Response {
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

async fn create_operation(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let started = Instant::now();
    // A body that does not match the request model never reaches the
    // handler: FastAPI answers 422 with pydantic's error list.
    if let Some(invalid) = RequestValidationError::of_create_operation(&body) {
        let response = (StatusCode::UNPROCESSABLE_ENTITY, Json(invalid)).into_response();
        count(&state, "operations_create", response.status().as_u16());
        return response;
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

async fn run_pipeline(state: &AppState, body: &[u8]) -> Result<OperationCreated, ApiError> {
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
    let app = Signature::from_str(&req.app_signature)
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
        })?;

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

fn validate_grant(
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

/// Sends one request to the inference backend (bearer token, base URL from
/// the upstreams); a transport failure is a `COMPUTE_ERROR`.
async fn inference_request(
    state: &AppState,
    method: reqwest::Method,
    path: &str,
    body: Option<&CreatePrediction>,
) -> Result<reqwest::Response, ApiError> {
    let url = format!(
        "{}{path}",
        state.upstreams.inference_url.trim_end_matches('/')
    );
    let mut request = state
        .http
        .request(method, &url)
        .bearer_auth(&state.config.replicate_token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Compute,
            format!("inference backend unreachable: {e}"),
        )
    })
}

async fn read_prediction(response: reqwest::Response) -> Result<Prediction, ApiError> {
    response.json::<Prediction>().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Compute,
            format!("inference backend sent an invalid prediction: {e}"),
        )
    })
}

async fn create_prediction(state: &AppState, prompt: String) -> Result<Prediction, ApiError> {
    let body = CreatePrediction::prompt(&prompt, state.config.max_tokens);
    let response = inference_request(
        state,
        reqwest::Method::POST,
        &replicate::create_path(&state.config.model),
        Some(&body),
    )
    .await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(ApiError::new(
            ErrorCode::of_upstream_status(status.as_u16(), ErrorCode::Compute),
            format!(
                "inference backend answered HTTP {}: {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            ),
        ));
    }
    read_prediction(response).await
}

fn to_operation_state(status: PredictionStatus) -> OperationState {
    match status {
        PredictionStatus::Starting => OperationState::Starting,
        PredictionStatus::Processing => OperationState::Processing,
        PredictionStatus::Succeeded => OperationState::Succeeded,
        PredictionStatus::Failed => OperationState::Failed,
        PredictionStatus::Canceled => OperationState::Canceled,
    }
}

async fn fetch_prediction(state: &AppState, id: &str) -> Result<Prediction, ApiError> {
    let response =
        inference_request(state, reqwest::Method::GET, &replicate::get_path(id), None).await?;
    match response.status().as_u16() {
        200 => read_prediction(response).await,
        404 => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("operation {id} not found"),
        )),
        s => Err(ApiError::new(
            ErrorCode::of_upstream_status(s, ErrorCode::Compute),
            format!("inference backend answered HTTP {s}"),
        )),
    }
}

/// Operation ids are prediction ids: short, URL-safe tokens.
fn check_operation_id(id: &str) -> Result<(), ApiError> {
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

async fn get_operation(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let response = operation_status(&state, &id)
        .await
        .map_or_else(IntoResponse::into_response, |body| {
            (StatusCode::OK, Json(body)).into_response()
        });
    count(&state, "operations_get", response.status().as_u16());
    response
}

async fn operation_status(state: &AppState, id: &str) -> Result<OperationStatus, ApiError> {
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

async fn cancel_operation(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let response = cancel(&state, &id)
        .await
        .map_or_else(IntoResponse::into_response, |()| {
            StatusCode::NO_CONTENT.into_response()
        });
    count(&state, "operations_cancel", response.status().as_u16());
    response
}

async fn cancel(state: &AppState, id: &str) -> Result<(), ApiError> {
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

fn server_key(state: &AppState, user: Address) -> Result<PrivateKeySigner, ApiError> {
    state
        .server_keys
        .signer_for(user)
        .map_err(|e| ApiError::new(ErrorCode::Operation, format!("server key for {user}: {e}")))
}

#[cfg(test)]
mod tests;
