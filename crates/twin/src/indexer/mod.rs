//! The indexer: the twin's stand-in for Vana's Goldsky subgraph.
//!
//! It follows the chain with `eth_getLogs` ([`follow`]), keeps the subgraph's
//! entities in SQLite ([`store`]) and answers the SDK's GraphQL queries at
//! `POST /subgraphs/name/vana` ([`graphql`]), with `_meta` reporting the last
//! indexed block. An optional extra lag (blocks and/or milliseconds) emulates
//! the hosted subgraph's delay behind the chain.
//!
//! Differences from the real subgraph, on purpose: one epoch covers every
//! block (so `DataRegistryProof`s are always kept; the real one drops proofs
//! outside an epoch), only the data-portability entities exist, and there is
//! no time-travel (`block:` arguments) except on `_meta`.

pub mod events;
pub mod follow;
pub mod graphql;
pub mod metrics;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::providers::{Provider, ProviderBuilder};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use events::IndexedContracts;
pub use protocol::api::subgraph::SUBGRAPH_PATH;

use crate::config::ConfigError;
use crate::service::{ServiceError, ServiceHandle, serve};

const SERVICE: &str = "indexer";

/// The `[indexer]` section of the twin config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port.
    pub port: u16,
    /// Extra lag in blocks: index only up to `head - lag_blocks`. Default 0.
    pub lag_blocks: u64,
    /// Extra lag in milliseconds: a block is indexed only once the follower has
    /// known it for this long (emulates Goldsky's delay). Default 0.
    pub lag_ms: u64,
    /// How often to poll the node for new blocks. Default 200.
    pub poll_interval_ms: u64,
    /// The widest block range of one `eth_getLogs`. Default 1000.
    pub max_block_range: u64,
    /// The SQLite file; `None` (the default) for a temporary one removed on stop.
    /// An existing file indexed from the same contracts is resumed.
    pub db_path: Option<PathBuf>,
    /// What `_meta.deployment` reports.
    pub deployment: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            lag_blocks: 0,
            lag_ms: 0,
            poll_interval_ms: 200,
            max_block_range: 1000,
            db_path: None,
            deployment: "vana-load-twin-subgraph".to_string(),
        }
    }
}

impl Config {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Errors name the field (`indexer.poll_interval_ms`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::invalid(
                "indexer.poll_interval_ms",
                "must be positive (milliseconds between polls of the node)",
            ));
        }
        if self.max_block_range == 0 {
            return Err(ConfigError::invalid(
                "indexer.max_block_range",
                "must be positive (blocks per eth_getLogs)",
            ));
        }
        if self.deployment.trim().is_empty() {
            return Err(ConfigError::invalid(
                "indexer.deployment",
                "must not be empty (it is what _meta.deployment reports)",
            ));
        }
        Ok(())
    }
}

/// State of the GraphQL endpoint. Dropping the last clone (when the server
/// stops) stops the follower and removes a temporary database.
pub struct App {
    schema: graphql::SubgraphSchema,
    readers: Arc<graphql::ReaderPool>,
    metrics: metrics::Metrics,
    _stop_follower: DropGuard,
}

fn setup(message: impl std::fmt::Display) -> ServiceError {
    ServiceError::Setup {
        service: SERVICE,
        message: message.to_string(),
    }
}

/// Starts the indexer: [`start`], then [`router`] served on `config.addr()`
/// (GraphQL at [`SUBGRAPH_PATH`], and `/metrics`).
pub async fn spawn(
    config: Config,
    rpc_url: &str,
    contracts: &IndexedContracts,
) -> Result<ServiceHandle, ServiceError> {
    let addr = config.addr();
    let (app, registry) = start(config, rpc_url, contracts).await?;
    serve(SERVICE, addr, router(app), Arc::new(registry)).await
}

/// The indexer's route over `app`: `POST` [`SUBGRAPH_PATH`].
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(SUBGRAPH_PATH, post(graphql_handler))
        .with_state(app)
}

/// Checks the node at `rpc_url`, opens the store and starts the follower;
/// serves nothing (see [`router`]). The follower stops when the last clone of
/// the returned state goes.
pub async fn start(
    config: Config,
    rpc_url: &str,
    contracts: &IndexedContracts,
) -> Result<(Arc<App>, Registry), ServiceError> {
    config.validate().map_err(setup)?;
    let url: reqwest::Url = rpc_url
        .parse()
        .map_err(|e| setup(format!("invalid RPC URL {rpc_url:?}: {e}")))?;
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(protocol::rpc::client(url.clone()))
        .get_chain_id()
        .await
        .map_err(|e| setup(format!("cannot reach the node at {rpc_url}: {e}")))?;

    let (temp_dir, path) = match &config.db_path {
        Some(p) => (None, p.clone()),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("vana-load-indexer-")
                .tempdir()
                .map_err(|e| setup(format!("cannot create a temporary directory: {e}")))?;
            let path = dir.path().join("subgraph.sqlite");
            (Some(dir), path)
        }
    };
    let writer = open_store(path.clone(), contracts).await?;

    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);

    // The follower gets a provider of its own, whose connections are made
    // (and driven) on the follower's own runtime, never on the shared one.
    let follower_provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(protocol::rpc::client(url))
        .erased();
    let stop = CancellationToken::new();
    let follower = follow::Follower::new(
        follower_provider,
        contracts.clone(),
        follow::FollowSettings {
            lag_blocks: config.lag_blocks,
            lag: Duration::from_millis(config.lag_ms),
            poll_interval: Duration::from_millis(config.poll_interval_ms.max(1)),
            max_block_range: config.max_block_range.max(1),
        },
        writer,
        metrics.clone(),
    );
    // The temporary database goes once the follower has stopped.
    follower
        .spawn(stop.clone(), move || drop(temp_dir))
        .map_err(|e| setup(format!("cannot start the follower thread: {e}")))?;

    let app = App::new(&config, contracts, path, metrics, stop.drop_guard());
    Ok((app, registry))
}

/// Opens the store at `path` (created and initialised for `contracts` if new).
async fn open_store(
    path: PathBuf,
    contracts: &IndexedContracts,
) -> Result<rusqlite::Connection, ServiceError> {
    let init_path = path.clone();
    let source = contracts.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = store::open(&init_path)?;
        store::init(&mut conn, &source)?;
        Ok::<_, rusqlite::Error>(conn)
    })
    .await
    .map_err(setup)?
    .map_err(|e| setup(format!("cannot open the database {}: {e}", path.display())))
}

impl App {
    fn new(
        config: &Config,
        contracts: &IndexedContracts,
        path: PathBuf,
        metrics: metrics::Metrics,
        stop_follower: DropGuard,
    ) -> Arc<App> {
        Arc::new(App {
            schema: graphql::schema(graphql::MetaInfo {
                deployment: config.deployment.clone(),
                before_start: contracts.start_block.saturating_sub(1),
            }),
            readers: Arc::new(graphql::ReaderPool::new(path)),
            metrics,
            _stop_follower: stop_follower,
        })
    }
}

fn error_body(message: String) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message }] })
}

async fn graphql_handler(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = Instant::now();
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            app.metrics
                .request("bad_request", started.elapsed().as_secs_f64());
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(error_body(format!(
                    "the request body must be JSON {{\"query\": string, \"variables\"?: object}}: {e}"
                ))),
            )
                .into_response();
        }
    };
    let tx = match app.readers.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            app.metrics
                .request("store_error", started.elapsed().as_secs_f64());
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error_body(e))).into_response();
        }
    };
    let response = app.schema.execute(request.data(tx.clone())).await;
    app.readers.finish(tx).await;
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "graphql_error"
    };
    app.metrics
        .request(outcome, started.elapsed().as_secs_f64());
    axum::Json(response).into_response()
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;

    use super::*;
    use crate::service::oneshot::{post_json, send};

    /// The endpoint over an empty store (no node, no follower).
    #[tokio::test]
    async fn graphql_answers_meta_and_lists_and_refuses_bad_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subgraph.sqlite");
        let contracts = IndexedContracts {
            data_registry: Address::repeat_byte(1),
            permissions: Address::repeat_byte(2),
            grantees: Address::repeat_byte(3),
            servers: Address::repeat_byte(4),
            start_block: 10,
        };
        let _writer = open_store(path.clone(), &contracts).await.unwrap();
        let metrics = metrics::Metrics::register(&mut Registry::default());
        let config = Config::default();
        let stop = CancellationToken::new().drop_guard();
        let app = router(App::new(&config, &contracts, path, metrics, stop));

        let query = serde_json::json!({"query": "{ _meta { block { number } deployment } files(first: 5) { id } }"});
        let r = send(app.clone(), post_json(SUBGRAPH_PATH, &query)).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(v["data"]["_meta"]["block"]["number"], 9, "{v}");
        assert_eq!(v["data"]["_meta"]["deployment"], config.deployment.as_str());
        assert_eq!(v["data"]["files"], serde_json::json!([]));

        let too_many = serde_json::json!({"query": "{ files(first: 1001) { id } }"});
        let v = send(app.clone(), post_json(SUBGRAPH_PATH, &too_many))
            .await
            .json();
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("`first`"),
            "{v}"
        );

        let bad = send(app, post_json(SUBGRAPH_PATH, &serde_json::json!(7))).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }
}
