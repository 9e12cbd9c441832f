//! The chain side of the client: one provider per RPC endpoint, locally
//! signed transactions, and receipts delivered from one shared new-block
//! stream ([`ReceiptHub`]). Every JSON-RPC call the providers make is
//! counted by outcome in one [`RpcStats`] ([`Chain::rpc_stats`]).
//!
//! What every user would otherwise ask the node again is shared by all
//! journeys on one [`Chain`]: the EIP-1559 fee estimate, made once per block
//! the receipt hub has seen (any client at that block would compute the same
//! one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::eips::eip1559::Eip1559Estimation;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use protocol::rpc::RpcStats;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::errors::{ErrorKind, JourneyError, RetryPolicy};
use crate::target::Target;

mod receipts;
pub use receipts::{LogMatch, LogWaiter, ReceiptHub, Waiter};

/// One transaction the journey sent or had relayed, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    /// What it did, e.g. `addFileWithPermissionsAndSchema`, `requestReward`.
    pub kind: String,
    pub hash: B256,
    pub gas_used: u64,
    /// `gas_used × effective_gas_price`, in wei.
    pub fee_wei: u128,
    /// From broadcast to receipt.
    #[serde(serialize_with = "ser_ms")]
    pub confirm: Duration,
    pub block: u64,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A contract call to send: what it is (for the report), where, data, value.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub kind: &'a str,
    pub to: Address,
    pub input: Bytes,
    pub value: U256,
}

impl<'a> Call<'a> {
    pub fn new(kind: &'a str, to: Address, input: impl Into<Bytes>) -> Self {
        Call {
            kind,
            to,
            input: input.into(),
            value: U256::ZERO,
        }
    }

    pub fn value(mut self, value: U256) -> Self {
        self.value = value;
        self
    }
}

/// Providers (one per endpoint) and the receipt hub.
#[derive(Clone)]
pub struct Chain {
    providers: Vec<DynProvider>,
    pub chain_id: u64,
    pub receipts: ReceiptHub,
    retry: RetryPolicy,
    rpc_stats: RpcStats,
    /// The last fee estimate, with the hub head it was made at.
    fees: Arc<Mutex<Option<(u64, Eip1559Estimation)>>>,
}

impl Chain {
    /// Connects to every endpoint of `target`, checks the chain id on the
    /// first, and starts the receipt hub on it.
    pub async fn connect(target: &Target, stop: CancellationToken) -> Result<Self, JourneyError> {
        if target.rpc_urls.is_empty() {
            return Err(JourneyError::rpc("target has no RPC endpoint (rpc.urls)"));
        }
        let rpc_stats = RpcStats::new();
        let providers: Vec<DynProvider> = target
            .rpc_urls
            .iter()
            .map(|u| DynProvider::new(protocol::rpc::counted_provider(u.clone(), &rpc_stats)))
            .collect();
        let chain_id = providers[0]
            .get_chain_id()
            .await
            .map_err(|e| JourneyError::rpc(format!("{}: eth_chainId: {e}", target.rpc_urls[0])))?;
        if chain_id != target.chain_id {
            return Err(JourneyError::rpc(format!(
                "{} reports chain id {chain_id}, the target says {}",
                target.rpc_urls[0], target.chain_id
            )));
        }
        let receipts = ReceiptHub::start(providers[0].clone(), target.poll.block, stop).await?;
        Ok(Chain {
            providers,
            chain_id,
            receipts,
            retry: RetryPolicy::default(),
            rpc_stats,
            fees: Arc::default(),
        })
    }

    /// Every JSON-RPC call made through this chain's providers (the
    /// journeys' and the receipt hub's), by outcome.
    pub fn rpc_stats(&self) -> &RpcStats {
        &self.rpc_stats
    }

    /// The provider for `user`'s home endpoint.
    pub fn provider(&self, user: u64) -> &DynProvider {
        &self.providers[(user % self.providers.len() as u64) as usize]
    }

    /// The first endpoint (for run-wide reads).
    pub fn main(&self) -> &DynProvider {
        &self.providers[0]
    }

    /// Runs `f` on `user`'s home endpoint, failing over to the others (in
    /// order) on `rpc` errors.
    pub async fn with_failover<T, F, Fut>(&self, user: u64, mut f: F) -> Result<T, JourneyError>
    where
        F: FnMut(DynProvider) -> Fut,
        Fut: std::future::Future<Output = Result<T, JourneyError>>,
    {
        let n = self.providers.len();
        let home = (user % n as u64) as usize;
        let mut last = None;
        for k in 0..n {
            let p = self.providers[(home + k) % n].clone();
            match f(p).await {
                Err(e) if e.kind == ErrorKind::Rpc => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| JourneyError::rpc("no endpoint")))
    }

    /// Signs and sends a call from `signer`, waits for its receipt from the
    /// block stream, and returns it with its record. Nonce races and RPC
    /// failures are retried; reverts are decoded to the error name (from the
    /// gas estimate, or by replaying a mined failure).
    pub async fn send(
        &self,
        user: u64,
        signer: &PrivateKeySigner,
        call: Call<'_>,
        limit: Duration,
    ) -> Result<(TransactionReceipt, TxRecord), JourneyError> {
        let Call {
            kind,
            to,
            input,
            value,
        } = call;
        let from = signer.address();
        let wallet = EthereumWallet::from(signer.clone());
        // A nonce race or a failure before signing signs afresh; a send
        // with no answer re-sends the same bytes (below), so a transaction
        // that did reach the node is never doubled by a second nonce.
        let (waiter, sent_at) = self
            .retry
            .run(|_| {
                let wallet = wallet.clone();
                let input = input.clone();
                async move {
                    let (hash, raw) = self
                        .with_failover(user, move |p| {
                            let wallet = wallet.clone();
                            let input = input.clone();
                            async move {
                                let call = TransactionRequest::default()
                                    .with_from(from)
                                    .with_to(to)
                                    .with_input(input)
                                    .with_value(value);
                                // At the latest block, as the SDK's viem
                                // estimates (it sends no block tag; nodes
                                // default to latest). alloy's default is
                                // `pending`, for which anvil executes every
                                // transaction in its pool before each
                                // estimate: a cost that grows with the pool.
                                let gas = p
                                    .estimate_gas(call.clone())
                                    .latest()
                                    .await
                                    .map_err(|e| JourneyError::from_transport(&e))?;
                                let nonce = p
                                    .get_transaction_count(from)
                                    .pending()
                                    .await
                                    .map_err(|e| JourneyError::from_transport(&e))?;
                                let fees = self.fees(&p).await?;
                                let tx = call
                                    .with_nonce(nonce)
                                    .with_chain_id(self.chain_id)
                                    .with_gas_limit(gas + gas / 5)
                                    .with_max_fee_per_gas(fees.max_fee_per_gas)
                                    .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
                                let envelope = tx.build(&wallet).await.map_err(|e| {
                                    JourneyError::crypto(format!("signing {kind}: {e}"))
                                })?;
                                let raw: Bytes = envelope.encoded_2718().into();
                                Ok((*envelope.tx_hash(), raw))
                            }
                        })
                        .await?;
                    // The hash is known before the broadcast: waiting for it
                    // from here on misses no block, so no receipt is asked
                    // for. A hash given up for a fresh signature drops its
                    // waiter.
                    let waiter = self.receipts.watch(hash);
                    let sent_at = self.broadcast(user, hash, &raw).await?;
                    Ok((waiter, sent_at))
                }
            })
            .await
            .map_err(|e| JourneyError::new(e.kind, format!("{kind}: {}", e.message)))?;
        let hash = waiter.hash();
        let receipt = waiter.receipt(limit).await?;
        let record = record(kind, &receipt, sent_at.elapsed());
        if !receipt.status() {
            let name = self
                .replay_revert(from, to, &input, value, receipt.block_number)
                .await;
            return Err(JourneyError::new(
                ErrorKind::Revert(name),
                format!("{kind} transaction {hash} reverted"),
            ));
        }
        Ok((receipt, record))
    }

    /// The EIP-1559 fees for a transaction sent now: the estimate made at
    /// the receipt hub's current head if there is one, else a fresh one from
    /// `p` (an `eth_feeHistory`), kept for the others at this head.
    async fn fees(&self, p: &DynProvider) -> Result<Eip1559Estimation, JourneyError> {
        let head = self.receipts.head();
        if let Some((at, fees)) = *self.fees.lock().expect("poisoned")
            && at == head
        {
            return Ok(fees);
        }
        let fees = p
            .estimate_eip1559_fees()
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        let mut cached = self.fees.lock().expect("poisoned");
        // A slower estimate from an older head does not replace a newer one.
        if cached.is_none_or(|(at, _)| at <= head) {
            *cached = Some((head, fees));
        }
        Ok(fees)
    }

    /// Sends signed bytes, re-sending the same bytes (same hash) while the
    /// node gives no answer (failing over between endpoints; classed `rpc`). "Already
    /// known", or "nonce too low" for a transaction the node has, means an
    /// earlier send got through. Any other refusal goes back to the caller
    /// at once (a nonce race is signed afresh there).
    async fn broadcast(&self, user: u64, hash: B256, raw: &Bytes) -> Result<Instant, JourneyError> {
        self.retry
            .run(|_| {
                self.with_failover(user, |p| async move {
                    let e = match p.send_raw_transaction(raw).await {
                        Ok(_) => return Ok(Ok(Instant::now())),
                        Err(e) => e,
                    };
                    let m = e.to_string().to_lowercase();
                    let ours = m.contains("already known")
                        || m.contains("already imported")
                        || (m.contains("nonce too low")
                            && matches!(p.get_transaction_by_hash(hash).await, Ok(Some(_))));
                    if ours {
                        Ok(Ok(Instant::now()))
                    } else if e.as_error_resp().is_none() {
                        // No answer from the node (a transport failure, a
                        // gateway's 5xx, a timeout): it may have the
                        // transaction, so only these bytes may follow.
                        Err(JourneyError::rpc(format!(
                            "eth_sendRawTransaction got no answer: {e}"
                        )))
                    } else {
                        Ok(Err(JourneyError::from_transport(&e)))
                    }
                })
            })
            .await?
    }

    /// The error name of a mined failure sent by someone else (a relayer),
    /// by reading its transaction and replaying it on the parent block.
    pub async fn mined_revert(&self, receipt: &TransactionReceipt) -> String {
        let tx = self
            .main()
            .get_transaction_by_hash(receipt.transaction_hash)
            .await;
        let Ok(Some(tx)) = tx else {
            return "unknown".into();
        };
        let Some(to) = receipt.to else {
            return "unknown".into();
        };
        use alloy::consensus::Transaction as _;
        let input = tx.inner.input().clone();
        let value = tx.inner.value();
        self.replay_revert(receipt.from, to, &input, value, receipt.block_number)
            .await
    }

    /// The error name of a mined failure, by replaying the call on the parent block.
    async fn replay_revert(
        &self,
        from: Address,
        to: Address,
        input: &Bytes,
        value: U256,
        block: Option<u64>,
    ) -> String {
        let call = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(input.clone())
            .with_value(value);
        let at = block
            .map(|b| BlockId::number(b.saturating_sub(1)))
            .unwrap_or(BlockId::latest());
        match self.main().call(call).block(at).await {
            Err(e) => match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                Some(d) => crate::errors::revert_name(&d),
                None => "unknown".into(),
            },
            Ok(_) => "unknown".into(),
        }
    }
}

/// The report entry of a receipt.
pub fn record(kind: &str, r: &TransactionReceipt, confirm: Duration) -> TxRecord {
    TxRecord {
        kind: kind.to_string(),
        hash: r.transaction_hash,
        gas_used: r.gas_used,
        fee_wei: u128::from(r.gas_used) * r.effective_gas_price,
        confirm,
        block: r.block_number.unwrap_or_default(),
    }
}

/// Decodes the first log of type `E` emitted by `from` in a receipt.
pub fn find_event<E: alloy::sol_types::SolEvent>(
    r: &TransactionReceipt,
    from: Address,
) -> Option<E> {
    events(r, from).next()
}

/// Decodes every log of type `E` emitted by `from` in a receipt, in order.
pub fn events<E: alloy::sol_types::SolEvent>(
    r: &TransactionReceipt,
    from: Address,
) -> impl Iterator<Item = E> + '_ {
    r.inner
        .logs()
        .iter()
        .filter(move |l| l.address() == from)
        .filter_map(|l| l.log_decode::<E>().ok().map(|d| d.inner.data))
}
