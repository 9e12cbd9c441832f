//! The twin's inference backend: Replicate's predictions API in front of a
//! stand-in for a hosted model (no model runs here).
//!
//! - `POST /v1/models/{owner}/{name}/predictions` `{"input":{"prompt":…}}` → 201 prediction
//! - `GET /v1/predictions/{id}` → 200 prediction
//! - `POST /v1/predictions/{id}/cancel` → 200 prediction (a finished one unchanged)
//!
//! `Authorization: Bearer <token>` (or `Token <token>`) is checked against
//! [`Config::token`]. A bounded pool of `workers` "GPUs" serves a FIFO queue
//! ([`pool`]); each prediction takes a service time drawn from
//! [`ServiceTime`] (log-normal, median 4 s, clamped to 2–10 s by default)
//! times `time_scale`, and goes `starting → processing → succeeded | failed |
//! canceled`. The output is derived from the prompt ([`output`]). More than
//! `max_queue` waiting predictions → 429. Errors are Replicate's problem
//! bodies `{"title","detail","status"}`.

pub mod output;
mod pool;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Deserialize;
use serde_json::Value;

use protocol::api::replicate::{DEFAULT_MODEL, InvalidField, ReplicateError};

use crate::config::ConfigError;
use crate::service::{Secret, ServiceError, ServiceHandle, authorization, serve};
pub use pool::Backend;

/// The service's name in logs, errors and the manifest.
pub const NAME: &str = "inference";
/// The API token the twin expects by default (a local, public test credential).
pub const DEFAULT_TOKEN: &str = "vana-load-twin-replicate-token";

/// `[inference]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port.
    pub port: u16,
    /// The bearer token required. Default [`DEFAULT_TOKEN`]; `None` disables the check.
    pub token: Option<Secret>,
    /// Models served (`owner/name`); others get 404. Default `["deepseek-ai/deepseek-v3"]`.
    pub models: Vec<String>,
    /// Concurrent predictions (the "GPUs"). Default 32: enough for the plan's burst
    /// peak (about 1.4 journeys/s at 4 s each) with room to spare.
    pub workers: usize,
    /// Predictions allowed to wait for a worker; beyond it, 429. Default 1000.
    pub max_queue: usize,
    /// Service-time distribution. Default log-normal, median 4 s, 2–10 s.
    pub service_time: ServiceTime,
    /// Multiplies every service time (0.01 turns 4 s into 40 ms). Default 1.
    pub time_scale: f64,
    /// Probability (0..=1) that a prediction ends `failed`. Default 0.
    pub fail_rate: f64,
    /// Seconds a finished prediction stays readable. Default 3600.
    pub finished_ttl_secs: u64,
    /// Finished predictions kept at most (oldest evicted first). Default 10000.
    pub max_finished: usize,
    /// Seed of the service-time and fault sampling (absent: random).
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: Some(Secret::new(DEFAULT_TOKEN)),
            models: vec![DEFAULT_MODEL.to_string()],
            workers: 32,
            max_queue: 1000,
            service_time: ServiceTime::default(),
            time_scale: 1.0,
            fail_rate: 0.0,
            finished_ttl_secs: 3600,
            max_finished: 10_000,
            seed: None,
        }
    }
}

/// How long a worker spends on one prediction (before `time_scale`).
///
/// ```toml
/// [inference.service_time]
/// kind = "log_normal"   # or: kind = "fixed", ms = 4000
/// median_ms = 4000
/// sigma = 0.35
/// min_ms = 2000
/// max_ms = 10000
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceTime {
    /// Log-normal with the given median and shape, clamped to `[min_ms, max_ms]`.
    LogNormal {
        #[serde(default = "default_median_ms")]
        median_ms: u64,
        #[serde(default = "default_sigma")]
        sigma: f64,
        #[serde(default = "default_min_ms")]
        min_ms: u64,
        #[serde(default = "default_max_ms")]
        max_ms: u64,
    },
    /// Always `ms`.
    Fixed { ms: u64 },
}

fn default_median_ms() -> u64 {
    4000
}
fn default_sigma() -> f64 {
    0.35
}
fn default_min_ms() -> u64 {
    2000
}
fn default_max_ms() -> u64 {
    10_000
}

impl Default for ServiceTime {
    fn default() -> Self {
        ServiceTime::LogNormal {
            median_ms: default_median_ms(),
            sigma: default_sigma(),
            min_ms: default_min_ms(),
            max_ms: default_max_ms(),
        }
    }
}

impl ServiceTime {
    /// One draw, unscaled.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            ServiceTime::Fixed { ms } => Duration::from_millis(ms),
            ServiceTime::LogNormal {
                median_ms,
                sigma,
                min_ms,
                max_ms,
            } => {
                let ms = LogNormal::new((median_ms.max(1) as f64).ln(), sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(median_ms as f64);
                Duration::from_secs_f64(ms.clamp(min_ms as f64, max_ms as f64) / 1000.0)
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let ServiceTime::LogNormal {
            median_ms,
            sigma,
            min_ms,
            max_ms,
        } = *self
        {
            if median_ms == 0 {
                return Err(ConfigError::invalid(
                    "inference.service_time.median_ms",
                    "must be positive",
                ));
            }
            if !(sigma.is_finite() && sigma >= 0.0) {
                return Err(ConfigError::invalid(
                    "inference.service_time.sigma",
                    format!("must be a non-negative number (got {sigma})"),
                ));
            }
            if min_ms > max_ms {
                return Err(ConfigError::invalid(
                    "inference.service_time.min_ms",
                    format!("{min_ms} is above max_ms {max_ms}"),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Errors name the field (`inference.workers`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::invalid(
                "inference.workers",
                "must be at least 1",
            ));
        }
        if self.workers > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::invalid("inference.workers", "too large"));
        }
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(ConfigError::invalid(
                "inference.time_scale",
                format!("must be a non-negative number (got {})", self.time_scale),
            ));
        }
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err(ConfigError::invalid(
                "inference.fail_rate",
                format!("must be between 0 and 1 (got {})", self.fail_rate),
            ));
        }
        if let Some(bad) = self
            .models
            .iter()
            .find(|m| m.split('/').count() != 2 || m.split('/').any(str::is_empty))
        {
            return Err(ConfigError::invalid(
                "inference.models",
                format!("`{bad}` is not of the form owner/name"),
            ));
        }
        if self.models.is_empty() {
            return Err(ConfigError::invalid(
                "inference.models",
                "must list at least one model",
            ));
        }
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(ConfigError::invalid("inference.token", "must not be empty"));
        }
        self.service_time.validate()
    }
}

/// Starts the inference backend: [`start`], then [`router`] served on
/// `config.addr()`; predictions' URLs then name that address.
pub async fn spawn(config: Config) -> Result<ServiceHandle, ServiceError> {
    let addr = config.addr();
    let (backend, registry) = start(config)?;
    let handle = serve(NAME, addr, router(backend.clone()), Arc::new(registry)).await?;
    backend.set_base_url(handle.url());
    // Stopping (or dropping) the handle ends every prediction task.
    Ok(handle.with_guard(backend.root.clone().drop_guard()))
}

/// Checks `config` and builds the backend (its workers start with the first
/// prediction); serves nothing (see [`router`]). Dropping the backend's last
/// clone does not stop its predictions: [`spawn`] ties them to the handle.
pub fn start(config: Config) -> Result<(Arc<Backend>, Registry), ServiceError> {
    config.validate().map_err(|e| ServiceError::Setup {
        service: NAME,
        message: e.to_string(),
    })?;
    let mut registry = Registry::default();
    let backend = Arc::new(Backend::new(config, &mut registry));
    Ok((backend, registry))
}

/// The Replicate-shaped routes over `backend`, with the HTTP metrics layer.
pub fn router(backend: Arc<Backend>) -> Router {
    let http = backend.http.clone();
    let router = Router::new()
        .route("/v1/models/{owner}/{name}/predictions", post(create))
        .route("/v1/predictions/{id}", get(read))
        .route("/v1/predictions/{id}/cancel", post(cancel))
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "Not found",
                "no such route; the twin serves POST /v1/models/{owner}/{name}/predictions, GET /v1/predictions/{id} and POST /v1/predictions/{id}/cancel",
            )
        })
        .with_state(backend);
    http.layer(router)
}

fn problem(status: StatusCode, title: &str, detail: impl Into<String>) -> Response {
    error_response(ReplicateError::new(status.as_u16(), title, detail))
}

fn error_response(e: ReplicateError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, axum::Json(e)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// `Some(401 response)` when the request lacks the configured token.
fn unauthenticated(backend: &Backend, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &backend.config().token else {
        return None;
    };
    match authorization(headers, &["Bearer", "Token"]) {
        Some(t) if expected.matches(t) => None,
        Some(_) => Some(problem(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        )),
        None => Some(problem(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "You did not pass an authentication token (Authorization: Bearer <token>)",
        )),
    }
}

fn not_found(id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("no prediction with id `{id}` (unknown, or evicted after it finished)"),
    )
}

async fn create(
    State(backend): State<Arc<Backend>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthenticated(&backend, &headers) {
        return r;
    }
    let model = format!("{owner}/{name}");
    if !backend.config().models.contains(&model) {
        return problem(
            StatusCode::NOT_FOUND,
            "Model not found",
            format!("model `{model}` is not served here (inference.models)"),
        );
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Invalid JSON",
                format!("the request body is not valid JSON: {e}"),
            );
        }
    };
    let invalid = |field: &str, kind: &str, description: &str| {
        let mut e = ReplicateError::new(
            422,
            "Input validation failed",
            format!("- {field}: {description}"),
        );
        e.invalid_fields = Some(vec![InvalidField {
            kind: kind.into(),
            field: field.into(),
            description: description.into(),
        }]);
        error_response(e)
    };
    let Some(input) = value.get("input") else {
        return invalid("input", "required", "input is required");
    };
    let Some(input) = input.as_object() else {
        return invalid("input", "invalid_type", "input must be an object");
    };
    match input.get("prompt") {
        None => return invalid("input.prompt", "required", "prompt is required"),
        Some(Value::String(_)) => {}
        Some(_) => return invalid("input.prompt", "invalid_type", "prompt must be a string"),
    }
    if let Some(mt) = input.get("max_tokens")
        && mt.as_u64().is_none_or(|n| n == 0)
    {
        return invalid(
            "input.max_tokens",
            "invalid_type",
            "max_tokens must be a positive integer",
        );
    }
    match backend.create(&model, input.clone()) {
        Ok(p) => (StatusCode::CREATED, axum::Json(p)).into_response(),
        Err(full) => {
            let mut r = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Request was throttled.",
                format!(
                    "Request was throttled: {} predictions are already waiting for a worker (inference.max_queue). Expected available in 1 second.",
                    full.depth
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

async fn read(
    State(backend): State<Arc<Backend>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthenticated(&backend, &headers) {
        return r;
    }
    match backend.get(&id) {
        Some(p) => axum::Json(p).into_response(),
        None => not_found(&id),
    }
}

async fn cancel(
    State(backend): State<Arc<Backend>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthenticated(&backend, &headers) {
        return r;
    }
    match backend.cancel(&id) {
        Some(p) => axum::Json(p).into_response(),
        None => not_found(&id),
    }
}

#[cfg(test)]
mod tests;
