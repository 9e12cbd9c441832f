//! The TEE key's transaction sender: one task owns the key's nonces and
//! broadcasts each `addProof` in turn with an explicit nonce; a follower task
//! per transaction then sees it to a receipt, within a deadline.
//!
//! A transaction that is not mined within `bump_after` is sent again with the
//! same nonce and fees raised by a quarter (a replacement a node accepts, and
//! a re-broadcast of one it dropped), at most `max_bumps` times. At
//! `receipt_timeout` the job fails with a `timeout`, and the sender reads the
//! key's nonce from the chain again before its next transaction, so a
//! transaction that never made it leaves no gap behind. Any failure before
//! broadcast resynchronises the nonce the same way. Waiting uses alloy's
//! shared new-block heartbeat, not a receipt poll per transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy::eips::eip1559::Eip1559Estimation;
use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use protocol::contracts::TeePoolPhala;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How the sender waits for its transactions.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// Per JSON-RPC call.
    pub rpc_timeout: Duration,
    /// Not mined after this long: send again with higher fees.
    pub bump_after: Duration,
    /// Re-sends at most.
    pub max_bumps: u32,
    /// Not mined after this long: the job fails.
    pub receipt_timeout: Duration,
}

/// One proof to put on chain; `done` gets the outcome.
pub struct ProofTx {
    pub job_id: U256,
    pub proof: protocol::contracts::Proof,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// How long the TEE sender reuses an EIP-1559 fee estimate.
const FEE_REFRESH: Duration = Duration::from_secs(2);

type Pool = TeePoolPhala::TeePoolPhalaInstance<DynProvider>;

/// Starts the sender task of `key`; it stops with `stop`.
pub fn spawn_sender(
    rpc_url: &str,
    key: PrivateKeySigner,
    tee_pool: Address,
    policy: SendPolicy,
    stop: CancellationToken,
) -> Result<mpsc::Sender<ProofTx>, String> {
    let url: reqwest::Url = rpc_url
        .parse()
        .map_err(|e| format!("invalid rpc url {rpc_url:?}: {e}"))?;
    let from = key.address();
    let provider = ProviderBuilder::new()
        .wallet(key)
        .connect_client(protocol::rpc::client_with_timeout(url, policy.rpc_timeout))
        .erased();
    let (tx, rx) = mpsc::channel::<ProofTx>(1024);
    let sender = Sender {
        pool: TeePoolPhala::new(tee_pool, provider.clone()),
        provider,
        from,
        policy,
        resync: Arc::new(AtomicBool::new(false)),
    };
    tokio::spawn(sender.run(rx, stop));
    Ok(tx)
}

struct Sender {
    pool: Pool,
    provider: DynProvider,
    from: Address,
    policy: SendPolicy,
    /// Set by a follower whose transaction never made it: read the nonce again.
    resync: Arc<AtomicBool>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<ProofTx>, stop: CancellationToken) {
        let mut nonce: Option<u64> = None;
        let mut gas_limit: Option<u64> = None;
        let mut fees: Option<(Instant, Eip1559Estimation)> = None;
        loop {
            let item = tokio::select! {
                _ = stop.cancelled() => return,
                item = rx.recv() => match item { Some(i) => i, None => return },
            };
            if self.resync.swap(false, Ordering::SeqCst) {
                nonce = None;
            }
            let next = match nonce {
                Some(n) => n,
                None => match self
                    .provider
                    .get_transaction_count(self.from)
                    .pending()
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = item
                            .done
                            .send(Err(format!("rpc: nonce of {}: {e}", self.from)));
                        continue;
                    }
                },
            };
            // Fees are read at most once per FEE_REFRESH, so a send is one RPC.
            if fees
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() > FEE_REFRESH)
            {
                match self.provider.estimate_eip1559_fees().await {
                    Ok(f) => fees = Some((Instant::now(), f)),
                    Err(e) => {
                        let _ = item.done.send(Err(format!("rpc: fees: {e}")));
                        continue;
                    }
                }
            }
            let fee = fees.as_ref().map(|(_, f)| *f).expect("fetched above");
            let gas = match gas_limit {
                Some(g) => g,
                None => match self.call(&item, next, fee, None).estimate_gas().await {
                    Ok(g) => {
                        // Measured once; proofs have the same shape, so a margin suffices.
                        let g = g + g / 4;
                        gas_limit = Some(g);
                        g
                    }
                    Err(e) => {
                        nonce = None;
                        let _ = item.done.send(Err(describe_call_error("estimate", &e)));
                        continue;
                    }
                },
            };
            match self.call(&item, next, fee, Some(gas)).send().await {
                Ok(pending) => {
                    nonce = Some(next + 1);
                    let follower = Follower {
                        pool: self.pool.clone(),
                        provider: self.provider.clone(),
                        from: self.from,
                        policy: self.policy,
                        nonce: next,
                        gas,
                        resync: self.resync.clone(),
                    };
                    tokio::spawn(follower.follow(item, fee, pending));
                }
                Err(e) => {
                    nonce = None;
                    let _ = item.done.send(Err(describe_call_error("send", &e)));
                }
            }
        }
    }

    fn call(
        &self,
        item: &ProofTx,
        nonce: u64,
        fee: Eip1559Estimation,
        gas: Option<u64>,
    ) -> alloy::contract::CallBuilder<
        &DynProvider,
        std::marker::PhantomData<TeePoolPhala::addProofCall>,
    > {
        proof_call(&self.pool, item, nonce, fee, gas)
    }
}

fn proof_call<'a>(
    pool: &'a Pool,
    item: &ProofTx,
    nonce: u64,
    fee: Eip1559Estimation,
    gas: Option<u64>,
) -> alloy::contract::CallBuilder<
    &'a DynProvider,
    std::marker::PhantomData<TeePoolPhala::addProofCall>,
> {
    let call = pool
        .addProof(item.job_id, item.proof.clone().into())
        .nonce(nonce)
        .max_fee_per_gas(fee.max_fee_per_gas)
        .max_priority_fee_per_gas(fee.max_priority_fee_per_gas);
    match gas {
        Some(g) => call.gas(g),
        None => call,
    }
}

/// Fees a node accepts as a replacement: each raised by a quarter.
pub fn bumped(fee: Eip1559Estimation) -> Eip1559Estimation {
    let up = |v: u128| v.saturating_add(v / 4).saturating_add(1);
    Eip1559Estimation {
        max_fee_per_gas: up(fee.max_fee_per_gas),
        max_priority_fee_per_gas: up(fee.max_priority_fee_per_gas),
    }
}

/// Sees one transaction (and its replacements) to a receipt.
struct Follower {
    pool: Pool,
    provider: DynProvider,
    from: Address,
    policy: SendPolicy,
    nonce: u64,
    gas: u64,
    resync: Arc<AtomicBool>,
}

impl Follower {
    async fn follow(
        self,
        item: ProofTx,
        fee: Eip1559Estimation,
        pending: PendingTransactionBuilder<Ethereum>,
    ) {
        // Every step below is bounded by an RPC timeout; this bounds their sum.
        let limit = self.policy.receipt_timeout + 3 * self.policy.rpc_timeout;
        let result = match tokio::time::timeout(limit, self.wait(&item, fee, pending)).await {
            Ok(r) => r,
            Err(_) => Err(self.given_up()),
        };
        if result.is_err() {
            self.resync.store(true, Ordering::SeqCst);
        }
        let _ = item.done.send(result);
    }

    fn given_up(&self) -> String {
        format!(
            "timeout: addProof with nonce {} not mined within {:?}",
            self.nonce, self.policy.receipt_timeout
        )
    }

    /// The outcome of whichever of our sends was mined, if one was.
    async fn mined(&self, hashes: &[B256]) -> Option<Result<(), String>> {
        for hash in hashes {
            if let Ok(Some(r)) = self.provider.get_transaction_receipt(*hash).await {
                return Some(outcome(r.status(), r.transaction_hash));
            }
        }
        None
    }

    /// The outcome of a just-sent transaction if it is mined within `wait`.
    /// The provider's new-block heartbeat says when it is mined, and one
    /// receipt lookup right after registering with it covers a transaction
    /// mined before: two receipt calls at most, where alloy's `get_receipt`
    /// asks for the receipt again on every poll interval (250 ms on
    /// loopback) until the transaction is mined.
    async fn mined_within(
        &self,
        pending: PendingTransactionBuilder<Ethereum>,
        wait: Duration,
    ) -> Option<Result<(), String>> {
        let hash = *pending.tx_hash();
        let watching = pending.with_timeout(Some(wait)).register().await.ok()?;
        if let Some(done) = self.mined(&[hash]).await {
            return Some(done);
        }
        watching.await.ok()?;
        self.mined(&[hash]).await
    }

    async fn wait(
        &self,
        item: &ProofTx,
        mut fee: Eip1559Estimation,
        pending: PendingTransactionBuilder<Ethereum>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.policy.receipt_timeout;
        let mut hashes: Vec<B256> = vec![*pending.tx_hash()];
        let mut pending = Some(pending);
        let mut bumps = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = self.policy.bump_after.min(left);
            match pending.take() {
                Some(p) => {
                    if let Some(done) = self.mined_within(p, wait).await {
                        return done;
                    }
                }
                None => tokio::time::sleep(wait).await,
            }
            // Any of our sends may have been mined (an earlier one, or the
            // latest between its watch timing out and now).
            if let Some(done) = self.mined(&hashes).await {
                return done;
            }
            if Instant::now() >= deadline {
                return Err(self.given_up());
            }
            if self
                .provider
                .get_transaction_count(self.from)
                .latest()
                .await
                .is_ok_and(|mined| mined > self.nonce)
            {
                // The nonce may have been used by one of ours, mined since the
                // receipts were looked up above.
                if let Some(done) = self.mined(&hashes).await {
                    return done;
                }
                return Err(format!(
                    "replaced: nonce {} was used by another transaction",
                    self.nonce
                ));
            }
            if bumps < self.policy.max_bumps {
                bumps += 1;
                fee = bumped(fee);
                match proof_call(&self.pool, item, self.nonce, fee, Some(self.gas))
                    .send()
                    .await
                {
                    Ok(p) => {
                        tracing::debug!(nonce = self.nonce, bumps, "addProof sent again");
                        hashes.push(*p.tx_hash());
                        pending = Some(p);
                    }
                    // E.g. the node already has it: keep waiting for the ones sent.
                    Err(e) => tracing::debug!(nonce = self.nonce, "re-send refused: {e}"),
                }
            }
        }
    }
}

fn outcome(status: bool, hash: B256) -> Result<(), String> {
    if status {
        Ok(())
    } else {
        Err(format!("revert: addProof reverted in tx {hash}"))
    }
}

fn describe_call_error(stage: &str, e: &alloy::contract::Error) -> String {
    let named = e
        .as_revert_data()
        .and_then(|data| protocol::contracts::decode_revert(&data));
    match named {
        Some(name) => format!("revert: {stage}: {name}"),
        None => format!("rpc: {stage}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_raises_both_fees_by_more_than_a_tenth() {
        let fee = Eip1559Estimation {
            max_fee_per_gas: 1_000,
            max_priority_fee_per_gas: 0,
        };
        let b = bumped(fee);
        assert!(b.max_fee_per_gas * 10 >= fee.max_fee_per_gas * 11);
        assert!(b.max_priority_fee_per_gas > 0);
        let max = Eip1559Estimation {
            max_fee_per_gas: u128::MAX,
            max_priority_fee_per_gas: u128::MAX,
        };
        assert_eq!(bumped(max), max, "saturates instead of overflowing");
    }
}
