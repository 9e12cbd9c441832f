//! Receipt tracking from ONE stream of new blocks, and bump-and-replace.
//!
//! A single task polls the head; for every new block it fetches all of the
//! block's receipts in one call (`eth_getBlockReceipts`; nodes without it:
//! the block's hashes, then receipts of our transactions only) and matches
//! them against the hashes of every pending transaction, including earlier
//! fee levels of replaced ones. There is never a poll per transaction. The
//! same task refreshes the EIP-1559 fee suggestion once per new head and
//! replaces any transaction not mined within `bump_after` by the same nonce
//! with fees raised ≥ 12.5 %. An operation's transaction still not mined
//! after `max_replacements` is given up: its operation fails with
//! [`SubmitError::NotMined`], its window slot is freed, and its nonce is
//! replaced by a 0-value self-transfer that the tracker keeps (re)sending
//! until mined, so no gap is left behind it. (Should an earlier version of
//! the call be mined after all, the nonce is used just the same.)
//!
//! A mined receipt releases the transaction's window slot and resolves its
//! operation: `Confirmed` with the receipt (block, gas, price, ids decoded
//! from the `FileAdded`/`PermissionAdded` logs), or `Failed("revert(…)")`
//! with the contract error recovered by tracing (or re-calling) the
//! transaction. Either way the nonce is used: a revert leaves no gap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::consensus::{Transaction as _, TxEip1559};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent as _;
use futures::StreamExt as _;
use protocol::api::relayer::{ReceiptLog, RelayReceipt};
use protocol::contracts::{DataPortabilityPermissions, DataRegistry};
use tokio_util::sync::CancellationToken;

use super::fees::{FeeOracle, Fees};
use super::metrics::Metrics;
use super::ops::{OpEntry, OpStatus};
use super::pool::Slot;
use super::sender::{Broadcast, FILL_GAS, SubmitError, broadcast, sign};

/// What a pending transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An operation's call (the function name).
    Operation(&'static str),
    /// A 0-value self-transfer filling a cancelled nonce.
    Fill,
}

/// A broadcast transaction of one key at one nonce, until a receipt for any
/// of its hashes is seen.
#[derive(Debug)]
pub struct PendingTx {
    pub key: usize,
    pub nonce: u64,
    /// The latest version (fees) sent.
    pub tx: TxEip1559,
    /// Every hash sent at this nonce, oldest first.
    pub hashes: Vec<B256>,
    /// Network encoding of the latest version.
    pub raw: Bytes,
    pub accepted_at: Instant,
    pub last_sent: Instant,
    /// Versions sent after the first.
    pub replacements: u32,
    pub purpose: Purpose,
    pub op: Option<Arc<OpEntry>>,
    /// The window slot, freed when this is dropped.
    pub slot: Option<Slot>,
}

/// Tuning of the tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub poll_interval: Duration,
    pub bump_after: Duration,
    /// Replacements of an operation's transaction before it is given up.
    pub max_replacements: u32,
    pub fee_cap: u128,
    pub min_priority_fee: u128,
    /// Where `FileAdded` is decoded from.
    pub data_registry: Address,
    /// Where `PermissionAdded` is decoded from.
    pub permissions: Address,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<(usize, u64), PendingTx>,
    by_hash: HashMap<B256, (usize, u64)>,
    /// Receipts seen for a watched hash before its transaction was registered.
    early: HashMap<(usize, u64), TransactionReceipt>,
}

/// The receipt tracker.
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
    rpc: RootProvider,
    signers: Vec<PrivateKeySigner>,
    oracle: Arc<FeeOracle>,
    metrics: Metrics,
    cfg: TrackerConfig,
}

/// topic0 of `DataRegistry.FileAdded(uint256 indexed fileId, address indexed ownerAddress, string url)`.
pub fn file_added_topic() -> B256 {
    DataRegistry::FileAdded::SIGNATURE_HASH
}

/// topic0 of `DataPortabilityPermissions.PermissionAdded(uint256 indexed permissionId, …)`.
pub fn permission_added_topic() -> B256 {
    DataPortabilityPermissions::PermissionAdded::SIGNATURE_HASH
}

impl Tracker {
    pub fn new(
        rpc: RootProvider,
        signers: Vec<PrivateKeySigner>,
        oracle: Arc<FeeOracle>,
        metrics: Metrics,
        cfg: TrackerConfig,
    ) -> Arc<Self> {
        Arc::new(Tracker {
            state: Mutex::new(State::default()),
            rpc,
            signers,
            oracle,
            metrics,
            cfg,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts matching `hash` (call before broadcasting it).
    pub fn watch_hash(&self, key: usize, nonce: u64, hash: B256) {
        self.lock().by_hash.insert(hash, (key, nonce));
    }

    /// Stops matching a hash the node rejected.
    pub fn unwatch_hash(&self, hash: B256) {
        let mut s = self.lock();
        s.by_hash.remove(&hash);
    }

    /// Transactions broadcast and not yet mined.
    pub fn pending_count(&self) -> usize {
        self.lock().pending.len()
    }

    /// Hands a broadcast transaction to the tracker.
    pub fn register(self: &Arc<Self>, p: PendingTx) {
        let id = (p.key, p.nonce);
        let early = {
            let mut s = self.lock();
            for h in &p.hashes {
                s.by_hash.insert(*h, id);
            }
            s.pending.insert(id, p);
            s.early.remove(&id)
        };
        self.metrics.pending.set(self.pending_count() as i64);
        if let Some(r) = early {
            self.on_receipt(r);
        }
    }

    /// The block stream: runs until `cancel`, starting at block `next`.
    pub async fn run(self: Arc<Self>, mut next: u64, cancel: CancellationToken) {
        let mut getblockreceipts = true;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
            let head = match self.rpc.get_block_number().await {
                Ok(h) => h,
                Err(e) => {
                    self.metrics.error("rpc");
                    tracing::warn!(error = %e, "relayer: cannot read the head block");
                    continue;
                }
            };
            if head >= next {
                // Read the head first: a hash watched after this check is
                // broadcast after `head` was mined, so it lands above it.
                if self.lock().by_hash.is_empty() {
                    next = head + 1;
                } else {
                    let last = head.min(next + 255);
                    let whole = getblockreceipts;
                    let this = self.clone();
                    let mut blocks = futures::stream::iter(next..=last)
                        .map(|n| {
                            let this = this.clone();
                            async move { (n, this.block_receipts(n, whole).await) }
                        })
                        .buffered(8);
                    while let Some((n, r)) = blocks.next().await {
                        match r {
                            Ok(receipts) => {
                                for r in receipts {
                                    self.on_receipt(r);
                                }
                                next = n + 1;
                            }
                            Err(e) => {
                                if whole && e.contains("-32601") {
                                    tracing::info!(
                                        "relayer: eth_getBlockReceipts unsupported; using per-block hashes"
                                    );
                                    getblockreceipts = false;
                                } else {
                                    self.metrics.error("rpc");
                                    tracing::warn!(block = n, error = %e, "relayer: cannot read block receipts");
                                }
                                break;
                            }
                        }
                    }
                }
                self.refresh_fees(head).await;
            }
            self.bump_stuck().await;
        }
    }

    async fn block_receipts(&self, n: u64, whole: bool) -> Result<Vec<TransactionReceipt>, String> {
        if whole {
            return match self.rpc.get_block_receipts(BlockId::number(n)).await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(format!("block {n} not found")),
                Err(e) => Err(match e.as_error_resp() {
                    Some(p) => format!("{} ({})", p.message, p.code),
                    None => e.to_string(),
                }),
            };
        }
        let block = self
            .rpc
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("block {n} not found"))?;
        let ours: Vec<B256> = {
            let s = self.lock();
            block
                .transactions
                .hashes()
                .filter(|h| s.by_hash.contains_key(h))
                .collect()
        };
        let mut out = Vec::new();
        for h in ours {
            if let Some(r) = self
                .rpc
                .get_transaction_receipt(h)
                .await
                .map_err(|e| e.to_string())?
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Refreshes the fee suggestion from `eth_feeHistory`.
    pub async fn refresh_fees(&self, head: u64) {
        match self
            .rpc
            .get_fee_history(5, BlockNumberOrTag::Number(head), &[50.0])
            .await
        {
            Ok(h) => {
                let base = h.next_block_base_fee().unwrap_or(0);
                let rewards: Vec<u128> = h
                    .reward
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.first().copied())
                    .collect();
                self.oracle.set(Fees::from_history(
                    base,
                    &rewards,
                    self.cfg.min_priority_fee,
                ));
            }
            Err(e) => {
                self.metrics.error("rpc");
                tracing::warn!(error = %e, "relayer: eth_feeHistory failed");
            }
        }
    }

    fn on_receipt(self: &Arc<Self>, r: TransactionReceipt) {
        let p = {
            let mut s = self.lock();
            let Some(id) = s.by_hash.get(&r.transaction_hash).copied() else {
                return;
            };
            match s.pending.remove(&id) {
                Some(p) => {
                    for h in &p.hashes {
                        s.by_hash.remove(h);
                    }
                    p
                }
                None => {
                    s.early.insert(id, r);
                    return;
                }
            }
        };
        self.metrics.pending.set(self.pending_count() as i64);
        let success = r.status();
        self.metrics
            .confirmed
            .get_or_create(&vec![(
                "status".to_string(),
                if success { "success" } else { "reverted" }.to_string(),
            )])
            .inc();
        let Some(op) = p.op.clone() else {
            return;
        };
        self.metrics
            .confirm_latency
            .observe(p.accepted_at.elapsed().as_secs_f64());
        let receipt = self.relay_receipt(&r);
        if success {
            op.set(OpStatus::Confirmed(Box::new(receipt)));
        } else {
            self.metrics.error("revert");
            let this = self.clone();
            let from = self.signers[p.key].address();
            tokio::spawn(async move {
                let reason = this.revert_reason(&r, &p.tx, from).await;
                op.set(OpStatus::Failed(format!("revert({reason})")));
            });
        }
    }

    /// The viem-shaped receipt with the decoded ids.
    pub fn relay_receipt(&self, r: &TransactionReceipt) -> RelayReceipt {
        let fa = file_added_topic();
        let pa = permission_added_topic();
        let mut file_ids = Vec::new();
        let mut permission_id = None;
        let mut logs = Vec::new();
        for l in r.inner.logs() {
            let topics = l.topics();
            if topics.len() >= 2 {
                let id = U256::from_be_bytes(topics[1].0).saturating_to::<u64>();
                if topics[0] == fa && l.address() == self.cfg.data_registry {
                    file_ids.push(id);
                } else if topics[0] == pa && l.address() == self.cfg.permissions {
                    permission_id = Some(id);
                }
            }
            logs.push(ReceiptLog {
                address: l.address(),
                topics: topics.to_vec(),
                data: l.data().data.clone(),
            });
        }
        RelayReceipt {
            transaction_hash: r.transaction_hash,
            block_hash: r.block_hash.unwrap_or_default(),
            block_number: r.block_number.unwrap_or_default().into(),
            gas_used: r.gas_used.into(),
            effective_gas_price: r.effective_gas_price,
            status: if r.status() { "success" } else { "reverted" }.into(),
            from: r.from,
            to: r.to,
            file_ids,
            permission_id,
            logs,
        }
    }

    /// The contract error of a reverted transaction: its trace's output, or
    /// else the same call replayed on the state after its block (or the
    /// latest state, where the chain keeps no history).
    async fn revert_reason(&self, r: &TransactionReceipt, tx: &TxEip1559, from: Address) -> String {
        let traced: Result<serde_json::Value, _> = self
            .rpc
            .raw_request(
                "debug_traceTransaction".into(),
                (
                    r.transaction_hash,
                    serde_json::json!({"tracer": "callTracer"}),
                ),
            )
            .await;
        if let Ok(v) = traced
            && let Some(out) = v.get("output").and_then(|o| o.as_str())
            && let Ok(bytes) = alloy::hex::decode(out)
            && !bytes.is_empty()
        {
            return super::describe_revert(&bytes);
        }
        let call = TransactionRequest::default()
            .from(from)
            .to(tx.to().unwrap_or_default())
            .input(tx.input().clone().into())
            .gas_limit(tx.gas_limit());
        let block = r.block_number.unwrap_or_default();
        let mut replay = self
            .rpc
            .call(call.clone())
            .block(BlockId::number(block))
            .await;
        if let Err(e) = &replay
            && e.as_error_resp().and_then(|p| p.as_revert_data()).is_none()
        {
            // A chain without history (anvil `--prune-history`) refuses past
            // blocks: the latest state is the next best replay.
            replay = self.rpc.call(call).await;
        }
        match replay {
            Err(e) => {
                if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data())
                    && !data.is_empty()
                {
                    return super::describe_revert(&data);
                }
                format!("no revert data: {e}")
            }
            Ok(_) => format!(
                "no revert data; gas used {} of limit {}",
                r.gas_used,
                tx.gas_limit()
            ),
        }
    }

    /// Replaces (or rebroadcasts) every transaction not mined within `bump_after`.
    async fn bump_stuck(self: &Arc<Self>) {
        let stuck: Vec<(usize, u64, TxEip1559, Bytes, bool)> = {
            let s = self.lock();
            s.pending
                .values()
                .filter(|p| p.last_sent.elapsed() >= self.cfg.bump_after)
                .map(|p| {
                    let give_up = matches!(p.purpose, Purpose::Operation(_))
                        && p.replacements >= self.cfg.max_replacements;
                    (p.key, p.nonce, p.tx.clone(), p.raw.clone(), give_up)
                })
                .collect()
        };
        for (key, nonce, tx, raw, give_up) in stuck {
            let old = Fees {
                max_fee_per_gas: tx.max_fee_per_gas,
                max_priority_fee_per_gas: tx.max_priority_fee_per_gas,
            };
            let bumped = old.bumped(self.oracle.get(), self.cfg.fee_cap);
            let mut next = tx.clone();
            if give_up {
                // A self-transfer at the same nonce: at the cap it cannot
                // replace a pooled version, but one that is pooled will be
                // mined, and one that was dropped is replaced.
                let me = self.signers[key].address();
                next.to = TxKind::Call(me);
                next.input = Bytes::new();
                next.gas_limit = FILL_GAS;
            } else if bumped.is_none() {
                // At the cap: keep the current version alive.
                let _ = broadcast(&self.rpc, &raw).await;
                self.touch(key, nonce);
                continue;
            }
            let fees = bumped.unwrap_or(old);
            next.max_fee_per_gas = fees.max_fee_per_gas;
            next.max_priority_fee_per_gas = fees.max_priority_fee_per_gas;
            let Ok((hash, raw)) = sign(&self.signers[key], next.clone()) else {
                self.touch(key, nonce);
                continue;
            };
            self.watch_hash(key, nonce, hash);
            let outcome = broadcast(&self.rpc, &raw).await;
            let mut s = self.lock();
            let Some(p) = s.pending.get_mut(&(key, nonce)) else {
                // Mined meanwhile.
                s.by_hash.remove(&hash);
                continue;
            };
            p.last_sent = Instant::now();
            if give_up && let Purpose::Operation(function) = p.purpose {
                let failure = SubmitError::NotMined {
                    function,
                    replacements: p.replacements,
                };
                tracing::warn!(key, nonce, error = %failure, "relayer: gave up a stuck transaction");
                self.metrics.error(failure.kind());
                if let Some(op) = p.op.take() {
                    op.set(OpStatus::Failed(failure.to_string()));
                }
                p.slot = None;
                p.purpose = Purpose::Fill;
                p.replacements = 0;
                self.metrics.nonce_fills.inc();
            }
            match outcome {
                Broadcast::Accepted | Broadcast::Transport(_) => {
                    p.tx = next;
                    p.raw = raw;
                    p.hashes.push(hash);
                    p.replacements += 1;
                    if let (Some(op), Purpose::Operation(_)) = (&p.op, p.purpose) {
                        op.set(OpStatus::Submitted(hash));
                    }
                    self.metrics.replacements.inc();
                    tracing::info!(key, nonce, %hash, max_fee = fees.max_fee_per_gas, "relayer: replaced a stuck transaction");
                }
                Broadcast::NonceTooLow => {
                    // One of its versions was mined; its receipt comes with its block.
                    s.by_hash.remove(&hash);
                }
                Broadcast::Rejected(m) => {
                    s.by_hash.remove(&hash);
                    self.metrics.error("replacement_rejected");
                    tracing::warn!(key, nonce, error = %m, "relayer: replacement rejected");
                }
            }
        }
    }

    fn touch(&self, key: usize, nonce: u64) {
        if let Some(p) = self.lock().pending.get_mut(&(key, nonce)) {
            p.last_sent = Instant::now();
        }
    }
}
