//! One sender task per relayer key: the single writer of that key's nonces.
//!
//! A job (target, calldata, fixed gas limit, a held window slot) arrives on
//! the key's channel. The sender reserves the next nonce, signs an EIP-1559
//! transaction with the current fee suggestion, registers it with the receipt
//! tracker *before* broadcasting (so the block stream can never see it first),
//! and broadcasts it. Every reserved nonce ends in exactly one transaction:
//! - accepted (or "already known") → consumed; the tracker owns it from here;
//! - a transport failure → the same signed bytes are retried a few times, and
//!   then left to the tracker, which rebroadcasts and bumps it like any stuck
//!   transaction (it may be in a pool already);
//! - rejected by the node, or failed before broadcast (signing, an injected
//!   fault) → the nonce is cancelled and filled by a 0-value self-transfer
//!   with bumped fees; only if the node rejects that too is the nonce handed
//!   out again (nothing can then be pending at it);
//! - "nonce too low" → the key was used elsewhere: resynchronise from the
//!   node and retry the job once with a fresh nonce.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use tokio::sync::{mpsc, oneshot};

use super::fees::{FeeOracle, Fees};
use super::metrics::Metrics;
use super::nonce::{NonceAllocator, Reserved};
use super::ops::{OpEntry, OpStatus};
use super::pool::Slot;
use super::tracker::{PendingTx, Purpose, Tracker};

/// Gas of the 0-value self-transfer that fills a cancelled nonce.
pub const FILL_GAS: u64 = 21_000;

/// A transaction for a key's sender.
#[derive(Debug)]
pub struct Job {
    pub to: Address,
    pub input: Bytes,
    pub gas_limit: u64,
    /// Short name for logs and errors, e.g. `"addPermission"`.
    pub function: &'static str,
    pub op: Arc<OpEntry>,
    pub slot: Slot,
    pub accepted_at: Instant,
    pub reply: oneshot::Sender<Result<B256, SubmitError>>,
}

/// Why a job was not broadcast (its nonce was filled or released).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the node rejected the {function} transaction: {message}")]
    Rejected {
        function: &'static str,
        message: String,
    },
    #[error("signing the {function} transaction failed: {message}")]
    Signing {
        function: &'static str,
        message: String,
    },
    #[error("injected pre-broadcast failure of the {function} transaction (test fault)")]
    Injected { function: &'static str },
    /// Stuck: given up after its replacements; its nonce was filled.
    #[error(
        "the {function} transaction was not mined after {replacements} replacements; its nonce was cancelled"
    )]
    NotMined {
        function: &'static str,
        replacements: u32,
    },
    #[error("relayer stopping")]
    Stopped,
}

impl SubmitError {
    /// Label for the errors metric.
    pub fn kind(&self) -> &'static str {
        match self {
            SubmitError::Rejected { .. } => "broadcast_rejected",
            SubmitError::Signing { .. } => "signing",
            SubmitError::Injected { .. } => "injected",
            SubmitError::NotMined { .. } => "not_mined",
            SubmitError::Stopped => "stopped",
        }
    }
}

/// The outcome of one `eth_sendRawTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broadcast {
    Accepted,
    NonceTooLow,
    Rejected(String),
    /// No answer from the node: the transaction may or may not be in its pool.
    Transport(String),
}

/// Sends signed bytes and classifies the answer.
pub async fn broadcast(rpc: &RootProvider, raw: &Bytes) -> Broadcast {
    let r: Result<B256, RpcError<TransportErrorKind>> = rpc
        .raw_request("eth_sendRawTransaction".into(), (raw,))
        .await;
    match r {
        Ok(_) => Broadcast::Accepted,
        Err(e) => match e.as_error_resp() {
            Some(p) => {
                let m = p.message.to_lowercase();
                if m.contains("already known") || m.contains("already imported") {
                    Broadcast::Accepted
                } else if m.contains("nonce too low") || m.contains("nonce is too low") {
                    Broadcast::NonceTooLow
                } else {
                    Broadcast::Rejected(p.message.to_string())
                }
            }
            None => Broadcast::Transport(e.to_string()),
        },
    }
}

/// Signs an EIP-1559 transaction; returns its hash and network encoding.
pub fn sign(signer: &PrivateKeySigner, mut tx: TxEip1559) -> Result<(B256, Bytes), String> {
    let sig = signer
        .sign_transaction_sync(&mut tx)
        .map_err(|e| e.to_string())?;
    let signed = tx.into_signed(sig);
    let hash = *signed.hash();
    let env = TxEnvelope::Eip1559(signed);
    Ok((hash, env.encoded_2718().into()))
}

/// Builds an unsigned EIP-1559 call.
pub fn build(
    chain_id: u64,
    nonce: u64,
    to: Address,
    input: Bytes,
    gas_limit: u64,
    fees: Fees,
) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        to: TxKind::Call(to),
        value: U256::ZERO,
        access_list: Default::default(),
        input,
    }
}

/// Everything a key's sender needs.
pub struct KeySender {
    pub index: usize,
    pub signer: PrivateKeySigner,
    pub alloc: NonceAllocator,
    pub rpc: RootProvider,
    pub chain_id: u64,
    pub oracle: Arc<FeeOracle>,
    pub tracker: Arc<Tracker>,
    pub metrics: Metrics,
    pub fee_cap: u128,
    /// Shared count of pre-broadcast failures still to inject (tests).
    pub faults: Arc<AtomicU32>,
}

impl KeySender {
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Serves jobs until the channel closes.
    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        self.publish_nonce();
        while let Some(job) = jobs.recv().await {
            self.handle(job).await;
            self.publish_nonce();
        }
    }

    fn publish_nonce(&self) {
        self.metrics
            .next_nonce
            .get_or_create(&Metrics::key_labels(&self.address()))
            .set(self.alloc.next() as i64);
    }

    async fn handle(&mut self, job: Job) {
        for attempt in 0..2 {
            let reserved = match self.alloc.reserve() {
                Ok(r) => r,
                Err(e) => {
                    // Unreachable by construction (one job at a time); fail loudly.
                    tracing::error!(key = %self.address(), error = %e, "nonce allocator misuse");
                    return self.fail(job, SubmitError::Stopped);
                }
            };
            let nonce = reserved.nonce();
            let fees = self.oracle.get();
            let tx = build(
                self.chain_id,
                nonce,
                job.to,
                job.input.clone(),
                job.gas_limit,
                fees,
            );
            let signed = if take_fault(&self.faults) {
                Err(SubmitError::Injected {
                    function: job.function,
                })
            } else {
                sign(&self.signer, tx.clone()).map_err(|message| SubmitError::Signing {
                    function: job.function,
                    message,
                })
            };
            let (hash, raw) = match signed {
                Ok(x) => x,
                Err(failure) => {
                    self.fill(reserved, fees, job.function).await;
                    return self.fail(job, failure);
                }
            };
            self.tracker.watch_hash(self.index, nonce, hash);
            match self.send_with_retries(&raw).await {
                Broadcast::Accepted | Broadcast::Transport(_) => {
                    // Transport: possibly pooled; the tracker rebroadcasts
                    // and bumps it if it is not mined.
                    let nonce = self.alloc.consume(reserved);
                    job.op.set(OpStatus::Submitted(hash));
                    self.tracker.register(PendingTx {
                        key: self.index,
                        nonce,
                        tx,
                        hashes: vec![hash],
                        raw,
                        accepted_at: job.accepted_at,
                        last_sent: Instant::now(),
                        replacements: 0,
                        purpose: Purpose::Operation(job.function),
                        op: Some(job.op),
                        slot: Some(job.slot),
                    });
                    let _ = job.reply.send(Ok(hash));
                    return;
                }
                Broadcast::NonceTooLow => {
                    self.tracker.unwatch_hash(hash);
                    let c = self.alloc.cancel(reserved);
                    self.alloc.release(c);
                    self.resync().await;
                    if attempt == 0 {
                        continue;
                    }
                    let failure = SubmitError::Rejected {
                        function: job.function,
                        message: "nonce too low, again after resynchronising".into(),
                    };
                    return self.fail(job, failure);
                }
                Broadcast::Rejected(message) => {
                    self.tracker.unwatch_hash(hash);
                    self.fill(reserved, fees, job.function).await;
                    let failure = SubmitError::Rejected {
                        function: job.function,
                        message,
                    };
                    return self.fail(job, failure);
                }
            }
        }
    }

    fn fail(&self, job: Job, failure: SubmitError) {
        self.metrics.error(failure.kind());
        job.op.set(OpStatus::Failed(failure.to_string()));
        let _ = job.reply.send(Err(failure));
    }

    async fn send_with_retries(&self, raw: &Bytes) -> Broadcast {
        let mut last = Broadcast::Transport(String::new());
        for attempt in 0..3u32 {
            last = broadcast(&self.rpc, raw).await;
            match &last {
                Broadcast::Transport(e) => {
                    tracing::warn!(key = %self.address(), attempt, error = %e, "broadcast failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                _ => return last,
            }
        }
        last
    }

    /// Fills the outstanding (cancelled) nonce with a 0-value self-transfer.
    async fn fill(&mut self, reserved: Reserved, fees: Fees, function: &'static str) {
        let nonce = reserved.nonce();
        let cancelled = self.alloc.cancel(reserved);
        let fees = fees.bumped(self.oracle.get(), self.fee_cap).unwrap_or(fees);
        let me = self.address();
        let mut tx = build(self.chain_id, nonce, me, Bytes::new(), FILL_GAS, fees);
        tx.to = TxKind::Call(me);
        let (hash, raw) = match sign(&self.signer, tx.clone()) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(key = %me, nonce, error = %e, "cannot sign the filler; releasing the nonce");
                self.alloc.release(cancelled);
                return;
            }
        };
        self.tracker.watch_hash(self.index, nonce, hash);
        match self.send_with_retries(&raw).await {
            Broadcast::Accepted | Broadcast::Transport(_) => {
                self.alloc.filled(cancelled);
                self.metrics.nonce_fills.inc();
                tracing::info!(key = %me, nonce, function, "filled a cancelled nonce with a self-transfer");
                self.tracker.register(PendingTx {
                    key: self.index,
                    nonce,
                    tx,
                    hashes: vec![hash],
                    raw,
                    accepted_at: Instant::now(),
                    last_sent: Instant::now(),
                    replacements: 0,
                    purpose: Purpose::Fill,
                    op: None,
                    slot: None,
                });
            }
            Broadcast::NonceTooLow | Broadcast::Rejected(_) => {
                self.tracker.unwatch_hash(hash);
                self.alloc.release(cancelled);
                self.resync().await;
            }
        }
    }

    /// Moves the allocator forward to the node's pending count if it is ahead.
    async fn resync(&mut self) {
        match self
            .rpc
            .get_transaction_count(self.address())
            .pending()
            .await
        {
            Ok(n) => {
                if self.alloc.resync(n) {
                    tracing::warn!(key = %self.address(), next = n, "nonce resynchronised from the node");
                }
            }
            Err(e) => {
                tracing::warn!(key = %self.address(), error = %e, "cannot read the key's nonce")
            }
        }
    }
}

fn take_fault(faults: &AtomicU32) -> bool {
    faults
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
