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
//!
//! By job: [`config`], [`error`] (the error body), [`identity`], [`pipeline`]
//! (creating an operation), [`inference`] (the backend's client) and
//! [`operations`] (status and cancel).

mod config;
mod error;
mod identity;
mod inference;
mod operations;
mod pipeline;
mod rate_limit;

use std::net::SocketAddr;
use std::sync::Arc;

use alloy::providers::{DynProvider, Provider};
use axum::Router;
use axum::routing::{get, post};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::crypto;

pub use config::{Config, DEFAULT_SERVER_MNEMONIC, Upstreams};
pub use rate_limit::RateLimits;

use crate::fetch::Fetcher;
use crate::service::{ServiceError, ServiceHandle, serve};
use identity::identity;
use operations::{cancel_operation, get_operation};
use pipeline::create_operation;

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
    limiter: rate_limit::Limiter,
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
    )
    .with_public_gateways(config.ipfs_fetch.clone());

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
    let limiter = rate_limit::Limiter::new(config.rate_limits.clone());
    let state = Arc::new(AppState {
        config,
        upstreams,
        provider,
        http,
        fetcher,
        server_keys,
        metrics,
        limiter,
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

#[cfg(test)]
mod tests;
