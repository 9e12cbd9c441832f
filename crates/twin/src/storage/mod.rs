//! The twin's storage service: Pinata- and IPFS-compatible uploads and an IPFS gateway.
//!
//! - `POST /pinning/pinFileToIPFS` (Pinata): multipart `file` + optional
//!   `pinataMetadata`/`pinataOptions`, `Authorization: Bearer <jwt>` checked
//!   against [`Config::jwt`] → `{IpfsHash, PinSize, Timestamp[, isDuplicate]}`.
//! - `POST /api/v0/add` (a Kubo node, no auth) → `{Name, Hash, Size}`.
//! - `GET /ipfs/{cid}` → the bytes (400 for a malformed CID, 404 for an unknown one).
//!
//! CIDs are real (CIDv1, raw, sha2-256, base32) and the bytes are stored by CID
//! on disk ([`store`]), so re-uploading is idempotent. Clients register
//! `ipfs://<cid>` ([`ipfs_url`]) and download from [`gateway_url`].
//! Errors use Pinata's body `{"error":{"reason","details"}}` (also on the
//! gateway) and Kubo's `{"Message","Code","Type"}` on `/api/v0/add`.
//! Metrics: `storage_quota_used_bytes`, `storage_objects`, uploads by outcome,
//! and per-route request counts and latencies.

pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use protocol::api::storage::{
    GATEWAY_PREFIX, IPFS_ADD_PATH, IpfsAddResponse, KuboError, PIN_FILE_PATH, PinFileResponse,
    PinataError, PinataMetadata,
};

use crate::config::ConfigError;
use crate::service::{HttpMetrics, Secret, ServiceError, ServiceHandle, authorization, serve};
use store::{BlobStore, Stored};

pub use protocol::api::storage::{gateway_url, ipfs_url, raw_cid};

/// The service's name in logs, errors and the manifest.
pub const NAME: &str = "storage";
/// The JWT the twin expects by default (a local, public test credential).
pub const DEFAULT_JWT: &str = "vana-load-twin-pinata-jwt";
/// Default upload limit: 10 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// Room for multipart framing and metadata fields beyond the file limit.
const MULTIPART_OVERHEAD: u64 = 1024 * 1024;

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port.
    pub port: u16,
    /// Where blobs are kept. Default: a temporary directory removed when the service stops.
    pub data_dir: Option<PathBuf>,
    /// The bearer JWT `pinFileToIPFS` requires. Default [`DEFAULT_JWT`]; `None`
    /// (not expressible in TOML: use [`Config::open`]) disables the check.
    pub jwt: Option<Secret>,
    /// Largest accepted file in bytes (413 beyond it). Default 10 MiB.
    pub max_upload_bytes: u64,
    /// Fault injection: the probability (0..=1) that an upload or download is
    /// answered with `fail_status` instead (nothing is stored). Default 0.
    pub fail_rate: f64,
    /// The status of injected faults (400..=599). Default 503.
    pub fail_status: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            data_dir: None,
            jwt: Some(Secret::new(DEFAULT_JWT)),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            fail_rate: 0.0,
            fail_status: 503,
        }
    }
}

impl Config {
    /// The defaults without the JWT check.
    pub fn open() -> Self {
        Config {
            jwt: None,
            ..Config::default()
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Errors name the field (`storage.fail_rate`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_upload_bytes == 0 {
            return Err(ConfigError::invalid(
                "storage.max_upload_bytes",
                "must be positive",
            ));
        }
        if self.max_upload_bytes > (usize::MAX as u64) - MULTIPART_OVERHEAD {
            return Err(ConfigError::invalid(
                "storage.max_upload_bytes",
                "too large",
            ));
        }
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err(ConfigError::invalid(
                "storage.fail_rate",
                format!("must be between 0 and 1 (got {})", self.fail_rate),
            ));
        }
        if !(400..=599).contains(&self.fail_status) {
            return Err(ConfigError::invalid(
                "storage.fail_status",
                format!(
                    "must be an HTTP error status 400..=599 (got {})",
                    self.fail_status
                ),
            ));
        }
        if self
            .jwt
            .as_ref()
            .is_some_and(|j| j.expose().trim().is_empty())
        {
            return Err(ConfigError::invalid("storage.jwt", "must not be empty"));
        }
        Ok(())
    }
}

/// Starts the storage service: [`start`], then [`router`] served on `config.addr()`.
pub async fn spawn(config: Config) -> Result<ServiceHandle, ServiceError> {
    let addr = config.addr();
    let (state, registry) = start(config)?;
    serve(NAME, addr, router(state), Arc::new(registry)).await
}

/// Checks `config` and opens the blob store; serves nothing (see [`router`]).
/// The registry holds the service's metrics.
pub fn start(config: Config) -> Result<(Arc<AppState>, Registry), ServiceError> {
    let setup = |message: String| ServiceError::Setup {
        service: NAME,
        message,
    };
    config.validate().map_err(|e| setup(e.to_string()))?;
    let store = BlobStore::open(config.data_dir.as_deref())
        .map_err(|e| setup(format!("cannot open the data directory: {e}")))?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    metrics.refresh(&store);
    let http = HttpMetrics::register(&mut registry, NAME);
    let state = Arc::new(AppState {
        config,
        store,
        metrics,
        http,
    });
    Ok((state, registry))
}

/// The storage routes over `state` (Pinata, the IPFS add API and the gateway),
/// with the HTTP metrics layer; `/metrics` is added by `serve`.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = (state.config.max_upload_bytes + MULTIPART_OVERHEAD) as usize;
    let http = state.http.clone();
    let router = Router::new()
        .route(PIN_FILE_PATH, post(pin_file))
        .route(IPFS_ADD_PATH, post(ipfs_add))
        .route(&format!("{GATEWAY_PREFIX}{{cid}}"), get(gateway))
        .fallback(|| async {
            StorageError::new(
                Api::Pinata,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such route; the twin serves POST /pinning/pinFileToIPFS, POST /api/v0/add and GET /ipfs/{cid}",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    http.layer(router)
}

/// The storage service's state: its settings, blobs and metrics.
pub struct AppState {
    config: Config,
    store: BlobStore,
    metrics: Metrics,
    http: HttpMetrics,
}

#[derive(Clone)]
struct Metrics {
    used: Gauge,
    objects: Gauge,
    uploads: Family<[(&'static str, &'static str); 1], Counter>,
    upload_bytes: Counter,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            used: Gauge::default(),
            objects: Gauge::default(),
            uploads: Family::default(),
            upload_bytes: Counter::default(),
        };
        registry.register(
            "storage_quota_used_bytes",
            "Bytes stored (storageQuotaUsed), each distinct object once",
            m.used.clone(),
        );
        registry.register(
            "storage_objects",
            "Distinct objects stored",
            m.objects.clone(),
        );
        registry.register(
            "storage_uploads",
            "Accepted uploads by outcome (new or duplicate)",
            m.uploads.clone(),
        );
        registry.register(
            "storage_upload_bytes",
            "Bytes received in accepted uploads, duplicates included",
            m.upload_bytes.clone(),
        );
        m
    }

    fn refresh(&self, store: &BlobStore) {
        self.used.set(store.used_bytes() as i64);
        self.objects.set(store.objects() as i64);
    }

    fn uploaded(&self, store: &BlobStore, stored: &Stored) {
        let outcome = if stored.duplicate { "duplicate" } else { "new" };
        self.uploads.get_or_create(&[("outcome", outcome)]).inc();
        self.upload_bytes.inc_by(stored.info.size);
        self.refresh(store);
    }
}

/// Which API's error body to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Pinata,
    Kubo,
}

/// A rejected request, rendered in the body shape of its API.
#[derive(Debug)]
struct StorageError {
    api: Api,
    status: StatusCode,
    reason: &'static str,
    details: String,
}

impl StorageError {
    fn new(api: Api, status: StatusCode, reason: &'static str, details: impl Into<String>) -> Self {
        StorageError {
            api,
            status,
            reason,
            details: details.into(),
        }
    }

    fn bad_request(api: Api, details: impl Into<String>) -> Self {
        Self::new(api, StatusCode::BAD_REQUEST, "INVALID_REQUEST", details)
    }

    fn internal(api: Api, e: std::io::Error) -> Self {
        tracing::error!(service = NAME, error = %e, "storage I/O error");
        Self::new(
            api,
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            format!("storage I/O error: {e}"),
        )
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        match self.api {
            Api::Pinata => (
                self.status,
                axum::Json(PinataError::new(self.reason, self.details)),
            )
                .into_response(),
            Api::Kubo => (self.status, axum::Json(KuboError::new(self.details))).into_response(),
        }
    }
}

/// What a multipart upload carried.
struct Upload {
    stored: Stored,
    file_name: Option<String>,
    metadata: Option<PinataMetadata>,
}

async fn pin_file(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, StorageError> {
    if let Some(jwt) = &state.config.jwt {
        let unauthorized = |details: &str| {
            StorageError::new(
                Api::Pinata,
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                details,
            )
        };
        let rejection = match authorization(&headers, &["Bearer"]) {
            None => Some(unauthorized("missing `Authorization: Bearer <jwt>` header")),
            Some(token) if !jwt.matches(token) => Some(unauthorized(
                "Invalid/expired credentials: the JWT is not the configured one",
            )),
            Some(_) => None,
        };
        if let Some(rejection) = rejection {
            // Read (and discard) the body, bounded by the body limit, so that the
            // client receives the 401 rather than a reset connection.
            if let Ok(mut m) = multipart {
                while let Ok(Some(mut f)) = m.next_field().await {
                    while let Ok(Some(_)) = f.chunk().await {}
                }
            }
            return Err(rejection);
        }
    }
    let upload = receive(&state, Api::Pinata, multipart).await?;
    let name = upload
        .metadata
        .as_ref()
        .and_then(|m| m.name.as_deref())
        .or(upload.file_name.as_deref())
        .unwrap_or("");
    tracing::debug!(service = NAME, cid = %upload.stored.info.cid, name, "pinned");
    let body = PinFileResponse {
        ipfs_hash: upload.stored.info.cid.clone(),
        pin_size: upload.stored.info.size,
        timestamp: upload.stored.info.timestamp(),
        is_duplicate: upload.stored.duplicate.then_some(true),
    };
    Ok(axum::Json(body).into_response())
}

async fn ipfs_add(
    State(state): State<Arc<AppState>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, StorageError> {
    let upload = receive(&state, Api::Kubo, multipart).await?;
    let info = &upload.stored.info;
    let body = IpfsAddResponse {
        name: upload.file_name.unwrap_or_else(|| info.cid.clone()),
        hash: info.cid.clone(),
        size: info.size.to_string(),
    };
    Ok(axum::Json(body).into_response())
}

/// Reads the multipart body: streams `file` into the store (bounded by the
/// size limit), parses the Pinata fields, then commits. Any rejection leaves
/// the store unchanged.
async fn receive(
    state: &AppState,
    api: Api,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Upload, StorageError> {
    let mut multipart = multipart.map_err(|e| {
        StorageError::bad_request(
            api,
            format!("expected a multipart/form-data body with a `file` field: {e}"),
        )
    })?;
    let limit = state.config.max_upload_bytes;
    let mut staged = None;
    let mut file_name = None;
    let mut metadata = None;
    // Once the file is over the limit, the rest of the body is read and
    // discarded, so that the client (still sending) receives the 413 rather
    // than a reset connection.
    let mut oversize = false;
    loop {
        let next = multipart.next_field().await;
        let mut field = match next {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) if oversize => break,
            Err(e) => return Err(multipart_error(api, limit, e)),
        };
        if oversize {
            while let Ok(Some(_)) = field.chunk().await {}
            continue;
        }
        match field.name().unwrap_or_default() {
            "file" => {
                if staged.is_some() {
                    return Err(StorageError::bad_request(
                        api,
                        "more than one `file` field: the twin stores one file per request (no directory uploads)",
                    ));
                }
                file_name = field.file_name().map(str::to_string);
                let mut s = state.store.stage();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(api, limit, e))?
                {
                    if s.size() + chunk.len() as u64 > limit {
                        oversize = true;
                        while let Ok(Some(_)) = field.chunk().await {}
                        break;
                    }
                    s.write(&chunk)
                        .await
                        .map_err(|e| StorageError::internal(api, e))?;
                }
                // An oversize upload's staged bytes are deleted on drop.
                staged = (!oversize).then_some(s);
            }
            "pinataMetadata" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| multipart_error(api, limit, e))?;
                let parsed: PinataMetadata = serde_json::from_str(&text).map_err(|e| {
                    StorageError::bad_request(
                        api,
                        format!("field `pinataMetadata` is not a valid metadata JSON object: {e}"),
                    )
                })?;
                metadata = Some(parsed);
            }
            "pinataOptions" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| multipart_error(api, limit, e))?;
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).map_err(
                    |e| {
                        StorageError::bad_request(
                            api,
                            format!("field `pinataOptions` is not a JSON object: {e}"),
                        )
                    },
                )?;
            }
            _ => {
                // Unknown fields are ignored, as Pinata does.
                while field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(api, limit, e))?
                    .is_some()
                {}
            }
        }
    }
    if oversize {
        return Err(too_large(api, limit));
    }
    let staged = staged
        .ok_or_else(|| StorageError::bad_request(api, "multipart field `file` is missing"))?;
    if let Some(fault) = injected_fault(&state.config, api) {
        return Err(fault);
    }
    let stored = state
        .store
        .commit(staged)
        .await
        .map_err(|e| StorageError::internal(api, e))?;
    state.metrics.uploaded(&state.store, &stored);
    Ok(Upload {
        stored,
        file_name,
        metadata,
    })
}

fn too_large(api: Api, limit: u64) -> StorageError {
    StorageError::new(
        api,
        StatusCode::PAYLOAD_TOO_LARGE,
        "FILE_TOO_LARGE",
        format!("file exceeds the upload limit of {limit} bytes (storage.max_upload_bytes)"),
    )
}

fn multipart_error(
    api: Api,
    limit: u64,
    e: axum::extract::multipart::MultipartError,
) -> StorageError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(api, limit)
    } else {
        StorageError::bad_request(api, format!("malformed multipart body: {}", e.body_text()))
    }
}

fn injected_fault(config: &Config, api: Api) -> Option<StorageError> {
    (config.fail_rate > 0.0 && rand::random::<f64>() < config.fail_rate).then(|| {
        let status =
            StatusCode::from_u16(config.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        StorageError::new(
            api,
            status,
            "INJECTED_FAULT",
            format!("injected fault (storage.fail_rate = {})", config.fail_rate),
        )
    })
}

async fn gateway(
    State(state): State<Arc<AppState>>,
    Path(cid): Path<String>,
) -> Result<Response, StorageError> {
    let parsed = protocol::api::storage::parse_cid(&cid).map_err(|e| {
        StorageError::new(
            Api::Pinata,
            StatusCode::BAD_REQUEST,
            "INVALID_CID",
            e.to_string(),
        )
    })?;
    if let Some(fault) = injected_fault(&state.config, Api::Pinata) {
        return Err(fault);
    }
    // CIDv1 in any multibase names the same object as its base32 form.
    let key = parsed.to_string();
    let bytes = state
        .store
        .read(&key)
        .await
        .map_err(|e| StorageError::internal(Api::Pinata, e))?
        .ok_or_else(|| {
            StorageError::new(
                Api::Pinata,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no content with CID {cid} is stored here"),
            )
        })?;
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=29030400, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{key}\"")) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/ipfs/{key}")) {
        h.insert("x-ipfs-path", v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests;
