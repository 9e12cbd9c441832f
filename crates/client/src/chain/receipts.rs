//! Receipts delivered from one shared new-block stream: a single task
//! follows the head and fetches each block's receipts while anyone waits for
//! one; nobody polls per transaction.
//!
//! A [`Waiter`] is registered per transaction hash. A user's own transaction
//! is signed locally, so its hash is known before it is broadcast: its
//! waiter is registered first ([`ReceiptHub::watch`]) and no block the
//! transaction can be in goes by unseen. A relayed transaction's hash is
//! known only once the relayer answers, by which time it may be mined, so
//! [`ReceiptHub::wait`] also asks for its receipt once after registering.
//! A waiter unregisters itself when dropped (delivered, timed out, or its
//! journey gone), so none is left behind.
//!
//! The same blocks deliver logs: a [`LogWaiter`] ([`ReceiptHub::watch_log`])
//! receives the first log of a contract with a given event and first
//! indexed topic, e.g. the TEE's `ProofAdded` for a file, from the receipts
//! the hub fetches anyway — instead of each journey calling a view once per
//! block until its job is done.

use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::errors::JourneyError;

type Waiters = HashMap<B256, Vec<oneshot::Sender<TransactionReceipt>>>;

/// Which logs a [`LogWaiter`] wants: emitted by `address`, with event
/// signature `event` (topic 0) and first indexed argument `topic1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogMatch {
    pub address: Address,
    pub event: B256,
    pub topic1: B256,
}

impl LogMatch {
    /// The match a log would satisfy (`None` for a log with fewer than two
    /// topics, which no waiter asks for).
    fn of(log: &Log) -> Option<LogMatch> {
        match log.topics() {
            [event, topic1, ..] => Some(LogMatch {
                address: log.address(),
                event: *event,
                topic1: *topic1,
            }),
            _ => None,
        }
    }
}

type LogWaiters = HashMap<LogMatch, Vec<oneshot::Sender<Log>>>;

/// Everyone waiting on the block stream.
#[derive(Default)]
struct Interest {
    receipts: Waiters,
    logs: LogWaiters,
}

impl Interest {
    fn is_empty(&self) -> bool {
        self.receipts.is_empty() && self.logs.is_empty()
    }

    fn deliver_logs<'a>(&mut self, logs: impl Iterator<Item = &'a Log>) {
        if self.logs.is_empty() {
            return;
        }
        for log in logs {
            let waiting = LogMatch::of(log).and_then(|m| self.logs.remove(&m));
            for s in waiting.unwrap_or_default() {
                let _ = s.send(log.clone());
            }
        }
    }
}

fn deliver(interest: &Mutex<Interest>, receipts: Vec<TransactionReceipt>) {
    let mut w = interest.lock().expect("poisoned");
    w.deliver_logs(receipts.iter().flat_map(|r| r.inner.logs()));
    for r in receipts {
        if let Some(senders) = w.receipts.remove(&r.transaction_hash) {
            for s in senders {
                let _ = s.send(r.clone());
            }
        }
    }
}

/// Blocks whose receipts the hub fetches at once.
const RECEIPT_FETCH_CONCURRENCY: usize = 16;

/// Delivers receipts to whoever waits for a transaction hash, from one task
/// that follows new blocks on one endpoint.
#[derive(Clone)]
pub struct ReceiptHub {
    waiters: Arc<Mutex<Interest>>,
    head: watch::Receiver<u64>,
    provider: DynProvider,
}

impl ReceiptHub {
    /// Starts following the head of `provider`, polling every `interval`,
    /// until `stop` is cancelled.
    pub async fn start(
        provider: DynProvider,
        interval: Duration,
        stop: CancellationToken,
    ) -> Result<Self, JourneyError> {
        let start = provider
            .get_block_number()
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        let (tx, rx) = watch::channel(start);
        let waiters: Arc<Mutex<Interest>> = Arc::default();
        let hub = ReceiptHub {
            waiters: waiters.clone(),
            head: rx,
            provider: provider.clone(),
        };
        tokio::spawn(async move {
            let mut last = start;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
                let Ok(n) = provider.get_block_number().await else {
                    continue;
                };
                // Blocks are fetched concurrently (an automining node makes one
                // block per transaction, faster than one round trip each) and
                // handled in order; a block not served yet ends this tick.
                let mut blocks = futures::stream::iter(last + 1..=n)
                    .map(|b| {
                        let provider = provider.clone();
                        let any_waiting = !waiters.lock().expect("poisoned").is_empty();
                        async move {
                            let receipts = if any_waiting {
                                Some(provider.get_block_receipts(BlockId::number(b)).await)
                            } else {
                                None
                            };
                            (b, receipts)
                        }
                    })
                    .buffered(RECEIPT_FETCH_CONCURRENCY);
                while let Some((next, receipts)) = blocks.next().await {
                    match receipts {
                        None => {}
                        Some(Ok(Some(receipts))) => deliver(&waiters, receipts),
                        // Not served yet: retry this block on the next tick.
                        Some(Ok(None)) => break,
                        // A node without eth_getBlockReceipts: ask for the
                        // waited-for receipts one by one instead.
                        Some(Err(_)) => {
                            let (hashes, want_logs) = {
                                let w = waiters.lock().expect("poisoned");
                                (
                                    w.receipts.keys().copied().collect::<Vec<B256>>(),
                                    !w.logs.is_empty(),
                                )
                            };
                            let mut found = Vec::new();
                            for h in hashes {
                                if let Ok(Some(r)) = provider.get_transaction_receipt(h).await {
                                    found.push(r);
                                }
                            }
                            deliver(&waiters, found);
                            if want_logs {
                                // The block's logs, for the log waiters; a
                                // failure retries this block on the next tick.
                                match provider.get_logs(&Filter::new().select(next)).await {
                                    Ok(logs) => {
                                        waiters.lock().expect("poisoned").deliver_logs(logs.iter())
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    last = next;
                    let _ = tx.send(last);
                }
            }
        });
        Ok(hub)
    }

    /// The latest block number the hub has processed.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that changes on every new block.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    /// Registers interest in the receipt of `hash`; the block stream
    /// delivers it to the returned [`Waiter`] from the next block the hub
    /// processes on. For a transaction not yet broadcast.
    pub fn watch(&self, hash: B256) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("poisoned")
            .receipts
            .entry(hash)
            .or_default()
            .push(tx);
        Waiter {
            hash,
            rx: Some(rx),
            waiters: self.waiters.clone(),
        }
    }

    /// How many transaction hashes are waited for.
    pub fn waiting(&self) -> usize {
        self.waiters.lock().expect("poisoned").receipts.len()
    }

    /// Registers interest in the first log that `m` matches, in the blocks
    /// the hub processes from now on. Register before the action that
    /// causes the log, so its block cannot go by unseen.
    pub fn watch_log(&self, m: LogMatch) -> LogWaiter {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("poisoned")
            .logs
            .entry(m)
            .or_default()
            .push(tx);
        LogWaiter {
            m,
            rx: Some(rx),
            waiters: self.waiters.clone(),
        }
    }

    /// How many log matches are waited for.
    pub fn waiting_logs(&self) -> usize {
        self.waiters.lock().expect("poisoned").logs.len()
    }

    /// The receipt of `hash`, from the block stream (or directly, if it was
    /// mined before the wait began), within `limit`. For a transaction
    /// someone else broadcast (a relayer); see [`ReceiptHub::watch`].
    pub async fn wait(
        &self,
        hash: B256,
        limit: Duration,
    ) -> Result<TransactionReceipt, JourneyError> {
        let waiter = self.watch(hash);
        // Close the race with a transaction mined before we registered.
        if let Ok(Some(r)) = self.provider.get_transaction_receipt(hash).await {
            return Ok(r);
        }
        waiter.receipt(limit).await
    }
}

/// Interest in one transaction's receipt ([`ReceiptHub::watch`]);
/// unregistered when dropped.
pub struct Waiter {
    hash: B256,
    /// `None` only while dropping.
    rx: Option<oneshot::Receiver<TransactionReceipt>>,
    waiters: Arc<Mutex<Interest>>,
}

impl Waiter {
    /// The transaction hash waited for.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The receipt, from the block stream, within `limit`.
    pub async fn receipt(mut self, limit: Duration) -> Result<TransactionReceipt, JourneyError> {
        let hash = self.hash;
        let rx = self.rx.as_mut().expect("a waiter has its receiver");
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(JourneyError::rpc(format!(
                "receipt stream stopped while waiting for {hash}"
            ))),
            Err(_) => Err(JourneyError::timeout(format!(
                "transaction {hash} not mined within {limit:?}"
            ))),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // Closing our receiver marks our sender closed; other waiters for
        // the same hash keep theirs.
        drop(self.rx.take());
        let mut waiters = self.waiters.lock().expect("poisoned");
        forget_closed(&mut waiters.receipts, &self.hash);
    }
}

/// Removes the closed senders under `key`, and the key once none is left.
fn forget_closed<K: std::hash::Hash + Eq, T>(
    map: &mut HashMap<K, Vec<oneshot::Sender<T>>>,
    key: &K,
) {
    if let Some(senders) = map.get_mut(key) {
        senders.retain(|s| !s.is_closed());
        if senders.is_empty() {
            map.remove(key);
        }
    }
}

/// Interest in one log ([`ReceiptHub::watch_log`]); unregistered when dropped.
pub struct LogWaiter {
    m: LogMatch,
    /// `None` only while dropping.
    rx: Option<oneshot::Receiver<Log>>,
    waiters: Arc<Mutex<Interest>>,
}

impl LogWaiter {
    /// The first matching log. No deadline of its own: the caller's step
    /// deadline bounds it (dropping the future unregisters the waiter).
    pub async fn log(mut self) -> Result<Log, JourneyError> {
        let rx = self.rx.as_mut().expect("a waiter has its receiver");
        rx.await.map_err(|_| {
            JourneyError::rpc(format!(
                "block stream stopped while waiting for a log of {}",
                self.m.address
            ))
        })
    }
}

impl Drop for LogWaiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut waiters = self.waiters.lock().expect("poisoned");
        forget_closed(&mut waiters.logs, &self.m);
    }
}
