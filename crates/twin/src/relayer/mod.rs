//! The relayer: the SDK's UnifiedRelayer endpoint `POST /api/relay`
//! (`vana-wire.md` §1.8), answering as the published SDK's own server side
//! (`handleRelayerOperation`, which an app's relay route runs) does, and
//! built for throughput and for never leaving a nonce gap.
//!
//! By job:
//! - [`http`]: the wire: parsing, the answer shapes of the SDK's protocol
//!   (default) and of vana-load's extension (`?wait=` or config `wait`),
//!   errors in the shape an app's relay route gives them;
//! - [`signed`]: routing of signed requests on `typedData.primaryType` to the
//!   six contract functions, after the EIP-712 checks;
//! - [`direct`]: the file additions (answered with `{fileId, transactionHash}`
//!   once mined) and `storeGrantFile` (stored through the twin's storage
//!   service, answered with its `ipfs://` URL);
//! - [`submit`]: an accepted call through gas measurement, a key's window and
//!   its sender, to broadcast (and, when asked, to its receipt);
//! - [`gas`], [`fees`]: fixed gas limits per call shape, EIP-1559 fees from
//!   `eth_feeHistory` with bump-and-replace;
//! - [`funding`]: the keys, HD-derived at indices 10.. and topped up by the
//!   deployer at start;
//! - [`nonce`], [`sender`], [`pool`], [`tracker`], [`ops`]: one sender task
//!   per key owns its nonces; a bounded in-flight window per key with a
//!   bounded wait for a slot; receipts from one new-block stream; operations
//!   by id for `status_check`.
//!
//! Reverts found by the gas estimate are reported before any nonce is used;
//! a transaction that reverts once mined consumes its nonce like any other.

pub mod config;
pub mod direct;
pub mod fees;
pub mod funding;
pub mod gas;
pub mod http;
pub mod inflight;
pub mod metrics;
pub mod nonce;
pub mod ops;
pub mod pool;
pub mod sender;
pub mod signed;
pub mod submit;
pub mod tracker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use prometheus_client::registry::Registry;
use protocol::keys;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::service::{ServiceError, ServiceHandle, serve};
use fees::{FeeOracle, Fees};
use gas::GasTable;
use metrics::Metrics;
use nonce::NonceAllocator;
use ops::OpStore;
use pool::Pool;
use sender::{Job, KeySender};
use tracker::{Tracker, TrackerConfig};

pub use config::{Config, RELAYER_INDEX_END, RELAYER_INDEX_START, WaitMode};
pub use direct::GrantStorage;
pub use funding::{derive_key, relayer_addresses};

const SERVICE: &str = "relayer";

/// What the relayer talks to.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The deployment's contracts (name → address); needs `DataRegistry`,
    /// `DataPortabilityPermissions` and `DataPortabilityServers`.
    pub contracts: BTreeMap<String, Address>,
    /// Where `storeGrantFile` stores grants; without it that operation is
    /// refused by name.
    pub storage: Option<GrantStorage>,
}

/// The shared state of the HTTP handlers.
pub struct Relayer {
    cfg: Config,
    rpc: RootProvider,
    pool: Arc<Pool>,
    senders: Vec<mpsc::Sender<Job>>,
    addresses: Vec<Address>,
    ops: OpStore,
    gas: GasTable,
    inflight: inflight::InFlight,
    metrics: Metrics,
    target: signed::SignedTarget,
    data_registry: Address,
    storage: Option<GrantStorage>,
    http: reqwest::Client,
}

/// A started relayer: its state (for [`router`]), its metrics and the guard
/// that stops its sender and tracker tasks when dropped.
pub struct Started {
    pub state: Arc<Relayer>,
    pub registry: Registry,
    pub guard: DropGuard,
}

fn contract(contracts: &BTreeMap<String, Address>, name: &str) -> Result<Address, ServiceError> {
    contracts
        .get(name)
        .copied()
        .ok_or_else(|| ServiceError::Setup {
            service: SERVICE,
            message: format!("the deployment lists no {name} contract"),
        })
}

fn setup(message: impl std::fmt::Display) -> ServiceError {
    ServiceError::Setup {
        service: SERVICE,
        message: message.to_string(),
    }
}

/// The relayer's routes over `state`: `POST /api/relay`.
pub fn router(state: Arc<Relayer>) -> Router {
    http::routes().with_state(state)
}

/// Starts the relayer and serves it on `config.addr()`.
pub async fn spawn(
    config: Config,
    mnemonic: &str,
    upstreams: Upstreams,
) -> Result<ServiceHandle, ServiceError> {
    let addr = config.addr();
    let started = start(config, mnemonic, upstreams).await?;
    let handle = serve(
        SERVICE,
        addr,
        router(started.state),
        Arc::new(started.registry),
    )
    .await?;
    Ok(handle.with_guard(started.guard))
}

/// Funds the keys (derived from `mnemonic`, funded by its index 0, the
/// deployer) and starts one sender per key and the receipt tracker; serves
/// nothing (see [`router`], [`spawn`]).
pub async fn start(
    config: Config,
    mnemonic: &str,
    upstreams: Upstreams,
) -> Result<Started, ServiceError> {
    config.validate().map_err(setup)?;
    let contracts = &upstreams.contracts;
    let data_registry = contract(contracts, "DataRegistry")?;
    let permissions = contract(contracts, "DataPortabilityPermissions")?;
    let servers = contract(contracts, "DataPortabilityServers")?;
    let rpc_url = &upstreams.rpc_url;
    let url = rpc_url
        .parse()
        .map_err(|e| setup(format!("rpc url {rpc_url:?} is invalid: {e}")))?;
    let rpc = protocol::rpc::provider(url);
    let chain_id = rpc
        .get_chain_id()
        .await
        .map_err(|e| setup(format!("cannot reach the chain at {rpc_url}: {e}")))?;
    let signers: Vec<PrivateKeySigner> = (0..config.keys as u32)
        .map(|i| derive_key(mnemonic, RELAYER_INDEX_START + i))
        .collect::<Result<_, _>>()
        .map_err(setup)?;
    let deployer = derive_key(mnemonic, keys::DEPLOYER_INDEX).map_err(setup)?;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let oracle = Arc::new(FeeOracle::new(Fees {
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
    }));
    let head = rpc
        .get_block_number()
        .await
        .map_err(|e| setup(format!("cannot read the head block: {e}")))?;
    let tracker = Tracker::new(
        rpc.clone(),
        signers.clone(),
        oracle.clone(),
        metrics.clone(),
        TrackerConfig {
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            bump_after: Duration::from_millis(config.bump_after_ms),
            max_replacements: config.max_replacements,
            fee_cap: config.max_fee_cap_wei.into(),
            min_priority_fee: config.min_priority_fee_wei.into(),
            data_registry,
            permissions,
        },
    );
    tracker.refresh_fees(head).await;
    funding::fund(&rpc, chain_id, &deployer, &signers, &config, oracle.get()).await?;

    let cancel = CancellationToken::new();
    let faults = Arc::new(AtomicU32::new(config.inject_prebroadcast_failures));
    let mut senders = Vec::new();
    for (i, signer) in signers.iter().enumerate() {
        let next = rpc
            .get_transaction_count(signer.address())
            .pending()
            .await
            .map_err(|e| setup(format!("cannot read the nonce of relayer key {i}: {e}")))?;
        let (tx, rx) = mpsc::channel(config.window.max(1));
        let ks = KeySender {
            index: i,
            signer: signer.clone(),
            alloc: NonceAllocator::new(next),
            rpc: rpc.clone(),
            chain_id,
            oracle: oracle.clone(),
            tracker: tracker.clone(),
            metrics: metrics.clone(),
            fee_cap: config.max_fee_cap_wei.into(),
            faults: faults.clone(),
        };
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = ks.run(rx) => {}
                _ = stop.cancelled() => {}
            }
        });
        senders.push(tx);
    }
    let head_now = rpc.get_block_number().await.unwrap_or(head);
    tokio::spawn(tracker.clone().run(head_now + 1, cancel.clone()));

    let addresses: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let in_flight = metrics.in_flight.clone();
    let labels: Vec<_> = addresses.iter().map(Metrics::key_labels).collect();
    let pool = Pool::new(config.keys, config.window, move |k, n| {
        in_flight.get_or_create(&labels[k]).set(n as i64);
    });
    let state = Arc::new(Relayer {
        ops: OpStore::new(config.operations_kept),
        gas: GasTable::new(config.gas_margin_percent),
        inflight: inflight::InFlight::default(),
        cfg: config,
        rpc,
        pool,
        senders,
        addresses,
        metrics,
        target: signed::SignedTarget {
            chain_id,
            permissions,
            servers,
        },
        data_registry,
        storage: upstreams.storage,
        http: reqwest::Client::new(),
    });
    Ok(Started {
        state,
        registry,
        guard: cancel.drop_guard(),
    })
}

/// `revert(<error>)` text of revert data.
pub(crate) fn describe_revert(data: &[u8]) -> String {
    protocol::contracts::describe_revert(data)
}
