//! The relayer: the SDK's UnifiedRelayer endpoint `POST /api/relay`
//! (`vana-wire.md` §1.8), built for throughput and for never leaving a nonce gap.
//!
//! - `signed` (`submitAddPermission`, `submitAddServerFilesAndPermissions`,
//!   `submitPermissionRevoke`): the EIP-712 signer is recovered from the typed
//!   data and must equal `expectedUserAddress` ([`signed`]); the relayer then
//!   calls DataPortabilityPermissions with the message and the signature.
//! - `direct` `submitFileAdditionComplete`: `DataRegistry.addFileWithPermissionsAndSchema`
//!   from a relayer key, answered `{type:"direct", result:{fileId, transactionHash}}`
//!   once mined (the id from the receipt's `FileAdded` log).
//! - `direct` `storeGrantFile`: the grant JSON is kept in memory and served at
//!   `GET /grants/{sha256}`; the answer is `{type:"direct", result:{url}}`
//!   with that plain-HTTP URL (which the SDK and the personal server fetch as is).
//! - `status_check {operationId}`: `pending` | `submitted` | `confirmed` | `error`.
//!
//! **Wait modes** ([`WaitMode`], config `wait`, per request `?wait=`):
//! `confirmed` (default) answers a signed operation once it is mined:
//! `confirmed{hash, receipt}` with block, gas, price, status and the decoded
//! `fileIds`/`permissionId`, or `error{"revert(InvalidNonce(…))"}`; if it is not
//! mined within `wait_timeout_ms` the answer is `pending{operationId}`.
//! `submitted` answers `submitted{hash}` once broadcast; `pending` answers
//! `pending{operationId}` at once. In the last two the client polls
//! `status_check`.
//!
//! **Throughput design**: K keys HD-derived at indices 10.. of the twin
//! mnemonic and funded by the deployer at start ([`Config::keys`]); one sender
//! task per key owns its nonces ([`nonce`], [`sender`]); a bounded in-flight
//! window per key with a bounded wait for a slot ([`pool`]); EIP-1559 fees
//! from `eth_feeHistory` and bump-and-replace ([`fees`], [`tracker`]); gas
//! limits measured once per function and calldata size with `eth_estimateGas`
//! plus a margin, then fixed ([`GasTable`]); receipts from one new-block
//! stream ([`tracker`]). Reverts are decoded to the contract's error and
//! reported; they consume the nonce like any mined transaction.

pub mod fees;
pub mod metrics;
pub mod nonce;
pub mod ops;
pub mod pool;
pub mod sender;
pub mod signed;
pub mod tracker;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alloy::consensus::TxEip1559;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use protocol::api::relayer::{
    DirectOperation, DirectResult, FileAdditionParams, RELAY_PATH, RelayRequest, RelayResponse,
};
use protocol::contracts::{DataRegistry, Permission};
use protocol::keys;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::service::{ServiceError, ServiceHandle, serve};
use fees::{FeeOracle, Fees};
use metrics::Metrics;
use nonce::NonceAllocator;
use ops::{OpEntry, OpStatus, OpStore};
use pool::Pool;
use sender::{Job, KeySender};
use tracker::{Tracker, TrackerConfig};

const SERVICE: &str = "relayer";

/// First HD index of the relayer key pool (`protocol::keys::RELAYER_INDICES`).
pub const RELAYER_INDEX_START: u32 = keys::RELAYER_INDICES.start;
/// Last HD index of the relayer key pool.
pub const RELAYER_INDEX_END: u32 = keys::RELAYER_INDICES.end - 1;

/// When a signed request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitMode {
    /// Once mined (or `pending` after `wait_timeout_ms`).
    #[default]
    Confirmed,
    /// Once broadcast: `submitted{hash}`.
    Submitted,
    /// At once: `pending{operationId}`.
    Pending,
}

/// `[relayer]` of the twin config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port.
    pub port: u16,
    /// Relayer keys K (HD indices 10..10+K). Default 4, at most 90.
    pub keys: usize,
    /// Operations in flight per key (accepted, not yet mined). Default 16.
    pub window: usize,
    /// Longest wait for a window slot before answering "relayer busy". Default 10 s.
    pub max_wait_ms: u64,
    /// Replace a transaction not mined within this, with fees +12.5 %. Default 15 s.
    pub bump_after_ms: u64,
    /// Head polling interval of the block stream. Default 50 ms.
    pub poll_interval_ms: u64,
    /// Default answer time of signed operations.
    pub wait: WaitMode,
    /// Longest wait for a receipt in `confirmed` mode, then `pending`. Default 60 s.
    pub wait_timeout_ms: u64,
    /// Margin added to each measured gas estimate, in percent. Default 30.
    pub gas_margin_percent: u64,
    /// Lowest priority fee (tip), in wei. Default 1 gwei.
    pub min_priority_fee_wei: u64,
    /// Highest max fee per gas a bump may reach, in wei. Default 1000 gwei.
    pub max_fee_cap_wei: u64,
    /// Each key is topped up to this balance at start when below half of it,
    /// in whole ether. Default 100.
    pub fund_ether: u64,
    /// Operations remembered for `status_check`. Default 100000.
    pub operations_kept: usize,
    /// Testing only: the first N submissions fail after reserving their nonce
    /// and before broadcast. Default 0.
    pub inject_prebroadcast_failures: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            keys: 4,
            window: 16,
            max_wait_ms: 10_000,
            bump_after_ms: 15_000,
            poll_interval_ms: 50,
            wait: WaitMode::Confirmed,
            wait_timeout_ms: 60_000,
            gas_margin_percent: 30,
            min_priority_fee_wei: 1_000_000_000,
            max_fee_cap_wei: 1_000_000_000_000,
            fund_ether: 100,
            operations_kept: 100_000,
            inject_prebroadcast_failures: 0,
        }
    }
}

impl Config {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Checks the values; the error names the field (`relayer.keys`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max_keys = (RELAYER_INDEX_END - RELAYER_INDEX_START + 1) as usize;
        if self.keys == 0 || self.keys > max_keys {
            return Err(ConfigError::invalid(
                "relayer.keys",
                format!(
                    "must be between 1 and {max_keys} (HD indices {RELAYER_INDEX_START}..={RELAYER_INDEX_END}), got {}",
                    self.keys
                ),
            ));
        }
        let positive = [
            ("relayer.window", self.window as u64),
            ("relayer.poll_interval_ms", self.poll_interval_ms),
            ("relayer.bump_after_ms", self.bump_after_ms),
            ("relayer.operations_kept", self.operations_kept as u64),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ConfigError::invalid(field, "must be positive"));
            }
        }
        if self.min_priority_fee_wei > self.max_fee_cap_wei {
            return Err(ConfigError::invalid(
                "relayer.min_priority_fee_wei",
                format!(
                    "{} is above relayer.max_fee_cap_wei {}",
                    self.min_priority_fee_wei, self.max_fee_cap_wei
                ),
            ));
        }
        Ok(())
    }
}

/// Target, selector and calldata length.
type GasKey = (Address, [u8; 4], usize);

/// Gas limits, measured once per (target, selector, calldata length) with
/// `eth_estimateGas` plus the margin, then fixed. Calldata of the same length
/// stores the same number of words, so its gas differs only by slot
/// warm/cold effects, which the margin covers. An estimate that reverts is
/// reported as the contract error before any nonce is reserved.
#[derive(Debug)]
pub struct GasTable {
    limits: Mutex<HashMap<GasKey, Arc<tokio::sync::OnceCell<u64>>>>,
    margin_percent: u64,
}

impl GasTable {
    pub fn new(margin_percent: u64) -> Self {
        GasTable {
            limits: Mutex::new(HashMap::new()),
            margin_percent,
        }
    }

    /// The limit for `input` to `to`, measuring it the first time (concurrent
    /// first requests of one shape share a single estimate).
    pub async fn limit(
        &self,
        rpc: &RootProvider,
        from: Address,
        to: Address,
        input: &Bytes,
    ) -> Result<u64, String> {
        let sel: [u8; 4] = input
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]);
        let cell = self
            .limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((to, sel, input.len()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let req = TransactionRequest::default()
                .from(from)
                .to(to)
                .input(input.clone().into());
            let est = rpc.estimate_gas(req).await.map_err(|e| {
                match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                    Some(data) if !data.is_empty() => {
                        format!("revert({})", protocol::contracts::describe_revert(&data))
                    }
                    _ => format!("gas estimate failed: {e}"),
                }
            })?;
            Ok(est + est * self.margin_percent / 100)
        })
        .await
        .copied()
    }
}

/// The shared state of the HTTP handlers.
struct Relayer {
    cfg: Config,
    rpc: RootProvider,
    pool: Arc<Pool>,
    senders: Vec<mpsc::Sender<Job>>,
    addresses: Vec<Address>,
    ops: OpStore,
    gas: GasTable,
    metrics: Metrics,
    target: signed::SignedTarget,
    data_registry: Address,
    grants: Mutex<HashMap<String, axum::body::Bytes>>,
    base_url: OnceLock<String>,
}

/// Derives the key at `m/44'/60'/0'/0/{index}`.
pub fn derive_key(mnemonic: &str, index: u32) -> Result<PrivateKeySigner, String> {
    keys::derive_signer(mnemonic, index)
        .map_err(|e| format!("cannot derive key {index} from the mnemonic: {e}"))
}

/// The relayer key addresses for `keys` keys.
pub fn relayer_addresses(mnemonic: &str, keys: usize) -> Result<Vec<Address>, String> {
    (0..keys as u32)
        .map(|i| derive_key(mnemonic, RELAYER_INDEX_START + i).map(|k| k.address()))
        .collect()
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

/// Starts the relayer against the chain at `rpc_url`, with keys from
/// `mnemonic` (funded by its index 0, the deployer) and the deployment's
/// `contracts` (name → address; needs `DataRegistry` and
/// `DataPortabilityPermissions`).
pub async fn spawn(
    config: Config,
    rpc_url: &str,
    mnemonic: &str,
    contracts: &BTreeMap<String, Address>,
) -> Result<ServiceHandle, ServiceError> {
    config.validate().map_err(setup)?;
    let data_registry = contract(contracts, "DataRegistry")?;
    let permissions = contract(contracts, "DataPortabilityPermissions")?;
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
            fee_cap: config.max_fee_cap_wei.into(),
            min_priority_fee: config.min_priority_fee_wei.into(),
            data_registry,
            permissions,
        },
    );
    tracker.refresh_fees(head).await;
    fund(&rpc, chain_id, &deployer, &signers, &config, oracle.get()).await?;

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
        cfg: config.clone(),
        rpc,
        pool,
        senders,
        addresses,
        metrics,
        target: signed::SignedTarget {
            chain_id,
            permissions,
        },
        data_registry,
        grants: Mutex::new(HashMap::new()),
        base_url: OnceLock::new(),
    });
    let router = Router::new()
        .route(RELAY_PATH, post(relay))
        .route("/grants/{id}", get(grant))
        .with_state(state.clone());
    let handle = serve(SERVICE, config.addr(), router, Arc::new(registry)).await?;
    let _ = state.base_url.set(handle.url());
    Ok(handle.with_guard(cancel.drop_guard()))
}

/// Tops up every relayer key below half of `fund_ether` to `fund_ether`,
/// from the deployer, and waits until the transfers are mined.
async fn fund(
    rpc: &RootProvider,
    chain_id: u64,
    deployer: &PrivateKeySigner,
    keys: &[PrivateKeySigner],
    cfg: &Config,
    fees: Fees,
) -> Result<(), ServiceError> {
    let target = U256::from(cfg.fund_ether) * U256::from(10u64).pow(U256::from(18));
    let mut nonce = rpc
        .get_transaction_count(deployer.address())
        .pending()
        .await
        .map_err(|e| setup(format!("cannot read the deployer's nonce: {e}")))?;
    let mut last = None;
    for k in keys {
        let bal = rpc
            .get_balance(k.address())
            .await
            .map_err(|e| setup(format!("cannot read the balance of {}: {e}", k.address())))?;
        if bal * U256::from(2) >= target {
            continue;
        }
        let tx = TxEip1559 {
            chain_id,
            nonce,
            gas_limit: sender::FILL_GAS,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: TxKind::Call(k.address()),
            value: target - bal,
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let (hash, raw) = sender::sign(deployer, tx).map_err(setup)?;
        match sender::broadcast(rpc, &raw).await {
            sender::Broadcast::Accepted => {}
            other => {
                return Err(setup(format!(
                    "funding relayer key {} from the deployer failed: {other:?}",
                    k.address()
                )));
            }
        }
        nonce += 1;
        last = Some(hash);
    }
    let Some(last) = last else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(r)) = rpc.get_transaction_receipt(last).await {
            if alloy::network::ReceiptResponse::status(&r) {
                return Ok(());
            }
            return Err(setup("the funding transfer reverted"));
        }
        if Instant::now() > deadline {
            return Err(setup(
                "the funding transfers were not mined within 60 s (is the chain mining?)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Debug, Deserialize)]
struct RelayQuery {
    wait: Option<WaitMode>,
}

fn reply(status: StatusCode, body: RelayResponse) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(
        status,
        RelayResponse::Error {
            error: message.into(),
        },
    )
}

async fn relay(
    State(r): State<Arc<Relayer>>,
    Query(q): Query<RelayQuery>,
    body: axum::body::Bytes,
) -> Response {
    let req: RelayRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            r.metrics.request("invalid", "");
            r.metrics.error("bad_request");
            return error(
                StatusCode::BAD_REQUEST,
                format!("malformed relay request: {e}"),
            );
        }
    };
    let wait = q.wait.unwrap_or(r.cfg.wait);
    match req {
        RelayRequest::Signed {
            operation,
            typed_data,
            signature,
            expected_user_address,
        } => {
            r.metrics.request("signed", operation.as_str());
            match signed::prepare(
                &r.target,
                operation,
                &typed_data,
                &signature,
                expected_user_address.as_deref(),
            ) {
                Ok(call) => r.submit(call.to, call.input, call.function, wait).await,
                Err(e) => {
                    r.metrics.error(if e.starts_with("invalid signature") {
                        "signature"
                    } else {
                        "bad_request"
                    });
                    error(StatusCode::BAD_REQUEST, e)
                }
            }
        }
        RelayRequest::Direct(DirectOperation::SubmitFileAdditionComplete(p)) => {
            r.metrics.request("direct", "submitFileAdditionComplete");
            r.add_file(p).await
        }
        RelayRequest::Direct(DirectOperation::StoreGrantFile(grant)) => {
            r.metrics.request("direct", "storeGrantFile");
            r.store_grant(grant)
        }
        RelayRequest::StatusCheck { operation_id } => {
            r.metrics.request("status_check", "");
            match r.ops.get(&operation_id) {
                Some(op) => reply(StatusCode::OK, op.status().response(&op.id, true)),
                None => {
                    r.metrics.error("unknown_operation");
                    error(
                        StatusCode::NOT_FOUND,
                        format!("unknown operationId {operation_id:?}"),
                    )
                }
            }
        }
    }
}

async fn grant(State(r): State<Arc<Relayer>>, Path(id): Path<String>) -> Response {
    let body = r
        .grants
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    match body {
        Some(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("unknown grant {id:?}")),
    }
}

/// HTTP status of a failed operation's error.
fn failure_status(e: &str) -> StatusCode {
    if e.starts_with("revert(") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if e.starts_with("relayer busy") {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_GATEWAY
    }
}

impl Relayer {
    /// Accepts a call: measures gas (a revert here is reported with no nonce
    /// used), then queues it on the least-loaded key and answers per `wait`.
    async fn submit(
        self: &Arc<Self>,
        to: Address,
        input: Bytes,
        function: &'static str,
        wait: WaitMode,
    ) -> Response {
        let (op, result) = self.start(to, input, function, wait).await;
        let status = match result {
            Err(e) => {
                return error(failure_status(&e), e);
            }
            Ok(()) => match wait {
                WaitMode::Pending => op.status(),
                WaitMode::Submitted => op.status(),
                WaitMode::Confirmed => {
                    op.wait_terminal(Duration::from_millis(self.cfg.wait_timeout_ms))
                        .await
                }
            },
        };
        match (wait, &status) {
            (_, OpStatus::Failed(e)) => error(failure_status(e), e.clone()),
            (WaitMode::Pending, _)
            | (WaitMode::Confirmed, OpStatus::Queued | OpStatus::Submitted(_)) => reply(
                StatusCode::OK,
                RelayResponse::Pending {
                    operation_id: op.id.clone(),
                },
            ),
            _ => reply(StatusCode::OK, status.response(&op.id, true)),
        }
    }

    /// Creates the operation and drives it to broadcast (in the background
    /// for `pending`). `Err` only for failures before the operation exists
    /// on chain.
    async fn start(
        self: &Arc<Self>,
        to: Address,
        input: Bytes,
        function: &'static str,
        wait: WaitMode,
    ) -> (Arc<OpEntry>, Result<(), String>) {
        let op = self.ops.create();
        let accepted_at = Instant::now();
        let gas = match self
            .gas
            .limit(&self.rpc, self.addresses[0], to, &input)
            .await
        {
            Ok(g) => g,
            Err(e) => {
                self.metrics.error(if e.starts_with("revert(") {
                    "revert"
                } else {
                    "rpc"
                });
                op.set(OpStatus::Failed(e.clone()));
                return (op, Err(e));
            }
        };
        let this = self.clone();
        let op2 = op.clone();
        let drive = async move {
            let slot = match this
                .pool
                .acquire(Duration::from_millis(this.cfg.max_wait_ms))
                .await
            {
                Ok(s) => s,
                Err(busy) => {
                    this.metrics.error("busy");
                    op2.set(OpStatus::Failed(busy.to_string()));
                    return Err(busy.to_string());
                }
            };
            let (tx, rx) = oneshot::channel();
            let key = slot.key();
            let job = Job {
                to,
                input,
                gas_limit: gas,
                function,
                op: op2.clone(),
                slot,
                accepted_at,
                reply: tx,
            };
            if this.senders[key].send(job).await.is_err() {
                op2.set(OpStatus::Failed("relayer stopping".into()));
                return Err("relayer stopping".into());
            }
            match rx.await {
                Ok(Ok(_hash)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("relayer stopping".into()),
            }
        };
        if wait == WaitMode::Pending {
            tokio::spawn(drive);
            (op, Ok(()))
        } else {
            let r = drive.await;
            (op, r)
        }
    }

    async fn add_file(self: &Arc<Self>, p: FileAdditionParams) -> Response {
        if p.url.trim().is_empty() {
            self.metrics.error("bad_request");
            return error(StatusCode::BAD_REQUEST, "params.url is empty");
        }
        let owner = p.owner_address.unwrap_or(p.user_address);
        let call = DataRegistry::addFileWithPermissionsAndSchemaCall {
            url: p.url,
            ownerAddress: owner,
            permissions: p
                .permissions
                .into_iter()
                .map(|x| Permission {
                    account: x.account,
                    key: x.key,
                })
                .collect(),
            schemaId: U256::from(p.schema_id),
        };
        let (op, result) = self
            .start(
                self.data_registry,
                call.abi_encode().into(),
                "addFileWithPermissionsAndSchema",
                WaitMode::Confirmed,
            )
            .await;
        if let Err(e) = result {
            return error(failure_status(&e), e);
        }
        match op
            .wait_terminal(Duration::from_millis(self.cfg.wait_timeout_ms))
            .await
        {
            OpStatus::Confirmed(receipt) => match receipt.file_ids.first() {
                Some(id) => reply(
                    StatusCode::OK,
                    RelayResponse::Direct {
                        result: DirectResult::FileAdded {
                            file_id: *id,
                            transaction_hash: receipt.transaction_hash,
                        },
                    },
                ),
                None => error(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "transaction {} was mined without a FileAdded event",
                        receipt.transaction_hash
                    ),
                ),
            },
            OpStatus::Failed(e) => error(failure_status(&e), e),
            _ => reply(
                StatusCode::OK,
                RelayResponse::Pending {
                    operation_id: op.id.clone(),
                },
            ),
        }
    }

    fn store_grant(&self, grant: serde_json::Value) -> Response {
        let check = || -> Result<(), String> {
            let obj = grant
                .as_object()
                .ok_or("params must be a grant file object")?;
            let grantee = obj
                .get("grantee")
                .and_then(|g| g.as_str())
                .ok_or("params.grantee is missing")?;
            grantee
                .parse::<Address>()
                .map_err(|e| format!("params.grantee {grantee:?} is not an address: {e}"))?;
            obj.get("operation")
                .and_then(|o| o.as_str())
                .ok_or("params.operation is missing")?;
            if !obj.get("parameters").is_some_and(|p| p.is_object()) {
                return Err("params.parameters must be an object".into());
            }
            Ok(())
        };
        if let Err(e) = check() {
            self.metrics.error("bad_request");
            return error(StatusCode::BAD_REQUEST, e);
        }
        let bytes = axum::body::Bytes::from(serde_json::to_vec(&grant).unwrap_or_default());
        let id = hex::encode(sha2::Sha256::digest(&bytes));
        let Some(base) = self.base_url.get() else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "relayer starting");
        };
        let url = format!("{base}/grants/{id}");
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, bytes);
        reply(
            StatusCode::OK,
            RelayResponse::Direct {
                result: DirectResult::Stored { url },
            },
        )
    }
}

/// `revert(<error>)` text of revert data.
pub(crate) fn describe_revert(data: &[u8]) -> String {
    protocol::contracts::describe_revert(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_toml() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.addr().to_string(), "127.0.0.1:0");
        assert_eq!((c.keys, c.wait), (4, WaitMode::Confirmed));
        c.validate().unwrap();
        let c: Config =
            toml::from_str("keys = 8\nwindow = 4\nwait = \"pending\"\nbump_after_ms = 500")
                .unwrap();
        assert_eq!((c.keys, c.window, c.wait), (8, 4, WaitMode::Pending));
        let err = toml::from_str::<Config>("keyz = 1").unwrap_err();
        assert!(err.to_string().contains("keyz"), "{err}");
        let bad = Config {
            keys: 91,
            ..Config::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("relayer.keys")
        );
        let bad = Config {
            window: 0,
            ..Config::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("relayer.window")
        );
    }

    #[test]
    fn relayer_keys_are_the_reserved_hd_range() {
        let m = keys::DEFAULT_TEST_MNEMONIC;
        let a = relayer_addresses(m, 2).unwrap();
        assert_eq!(a[0], keys::derive_signer(m, 10).unwrap().address());
        assert_eq!(a[1], keys::derive_signer(m, 11).unwrap().address());
        assert_ne!(a[0], keys::derive_signer(m, 0).unwrap().address());
    }
}
