//! The chain follower: polls the head, indexes block ranges with one
//! `eth_getLogs` per range, and rolls back on a reorg.
//!
//! Each poll:
//! 1. reads the head and works out the target block, held back by the
//!    configured lag (in blocks, and in milliseconds since the follower first
//!    saw a block);
//! 2. checks that the last indexed block is still on the chain; if not, walks
//!    back over the stored block hashes to the fork point and reverts to it;
//! 3. fetches the logs of every indexed address and topic for
//!    `[last+1, min(target, last+max_range)]`, reads `permissions(id)` at the
//!    event's block for each `PermissionAdded` (at `latest` once the node is
//!    known to keep no history, see [`protocol::rpc::History`]), and applies
//!    the range and the new head in one SQLite transaction.
//!
//! The follower runs on its own OS thread with its own single-threaded tokio
//! runtime, and owns the store's only writer connection ([`Follower::spawn`]).
//! GraphQL readers use their own connections and WAL snapshots, so nothing
//! the query side does (however many requests, however busy the process's
//! shared runtime and blocking pool are) stands between the follower and its
//! writes: a real hosted subgraph does not index slower because clients poll it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use super::events::{self, Event, EventCtx, IndexedContracts, PermissionState};
use super::metrics::Metrics;
use super::store::{self, Batch, KnownBlock};

/// How many stored blocks to compare when looking for a fork point.
const FORK_SEARCH_LIMIT: usize = 256;
/// Undo records older than this many blocks behind the head are pruned.
const REORG_WINDOW: u64 = 4096;
/// How many indexed blocks between two prunings.
const PRUNE_EVERY: u64 = 256;

/// What can go wrong in one poll (logged, then retried at the next poll).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("RPC {method}: {message}")]
    Rpc {
        method: &'static str,
        message: String,
    },
    #[error("block {0} is missing on the node")]
    MissingBlock(u64),
    #[error("indexer database: {0}")]
    Db(#[from] rusqlite::Error),
}

fn rpc<E: std::fmt::Display>(method: &'static str) -> impl FnOnce(E) -> FollowError {
    move |e| FollowError::Rpc {
        method,
        message: e.to_string(),
    }
}

/// The follower's settings.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    pub lag_blocks: u64,
    pub lag: Duration,
    pub poll_interval: Duration,
    pub max_block_range: u64,
}

/// The chain follower; [`Follower::run`] loops until cancelled.
pub struct Follower {
    provider: DynProvider,
    contracts: IndexedContracts,
    settings: FollowSettings,
    /// The store's one writer connection, used only on the follower's thread.
    writer: Connection,
    metrics: Metrics,
    /// Head numbers with the time each was first seen, for the ms lag.
    seen: VecDeque<(u64, Instant)>,
    /// The head at the last pruning of the undo journal.
    pruned_at: u64,
    /// The twin's injected faults (`[faults.indexer] stall`).
    faults: Option<crate::faults::Faults>,
    /// Whether the node keeps past states, learnt from its first refusal.
    history: protocol::rpc::History,
}

/// What one poll achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing new to index.
    Idle,
    /// A range was indexed and more remains up to the target.
    More,
    /// The target was reached.
    Done,
    /// A reorg was rolled back.
    Reverted,
}

impl Follower {
    pub fn new(
        provider: DynProvider,
        contracts: IndexedContracts,
        settings: FollowSettings,
        writer: Connection,
        metrics: Metrics,
    ) -> Self {
        Follower {
            provider,
            contracts,
            settings,
            writer,
            metrics,
            seen: VecDeque::new(),
            pruned_at: 0,
            faults: crate::faults::current(),
            history: protocol::rpc::History::new(),
        }
    }

    /// Runs the follower on a dedicated thread (named `indexer-follower`) with
    /// its own current-thread runtime, until `stop` is cancelled; `on_stop`
    /// runs on that thread once the follower has stopped (e.g. to remove a
    /// temporary database). The provider should be fresh (no pooled
    /// connections), so that its connections live on the follower's runtime.
    pub fn spawn(
        self,
        stop: CancellationToken,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("indexer-follower".into())
            .spawn(move || {
                runtime.block_on(self.run(stop));
                on_stop();
            })
    }

    /// Polls until `stop` is cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            if self.faults.as_ref().is_some_and(|f| f.indexer_stalled()) {
                // An injected stall: the indexer stops following the chain.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.settings.poll_interval) => continue,
                }
            }
            let progress = match self.poll().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "indexer poll failed; retrying");
                    Progress::Idle
                }
            };
            if matches!(progress, Progress::More | Progress::Reverted) {
                if stop.is_cancelled() {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Runs `f` on the writer connection, inline: the follower's thread is
    /// its own, so blocking it blocks nothing else.
    fn db<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, FollowError> {
        f(&mut self.writer).map_err(FollowError::Db)
    }

    async fn chain_block(&self, number: u64) -> Result<Option<KnownBlock>, FollowError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(rpc("eth_getBlockByNumber"))?;
        Ok(block.map(|b| KnownBlock {
            number: b.header.number,
            hash: b.header.hash,
            timestamp: b.header.timestamp,
        }))
    }

    /// The highest block that the lag allows to index, given the head.
    fn target(&mut self, head: u64, now: Instant) -> Option<u64> {
        if self.seen.back().is_none_or(|(n, _)| *n != head) {
            self.seen.push_back((head, now));
        }
        let by_blocks = head.checked_sub(self.settings.lag_blocks)?;
        if self.settings.lag.is_zero() {
            self.seen.clear();
            self.seen.push_back((head, now));
            return Some(by_blocks);
        }
        // The newest head first seen at least `lag` ago.
        let cutoff = now.checked_sub(self.settings.lag)?;
        while self.seen.len() > 1 && self.seen[1].1 <= cutoff {
            self.seen.pop_front();
        }
        let (old_head, at) = *self.seen.front()?;
        if at > cutoff {
            return None;
        }
        Some(by_blocks.min(old_head))
    }

    /// One poll.
    pub async fn poll(&mut self) -> Result<Progress, FollowError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(rpc("eth_blockNumber"))?;
        self.metrics.chain_head.set(head as i64);
        let target = self.target(head, Instant::now());

        let last = self.db(|c| store::last_block(c))?;
        if let Some(last) = last {
            let on_chain = self.chain_block(last.number).await?;
            if on_chain.map(|b| b.hash) != Some(last.hash) {
                self.revert(last).await?;
                return Ok(Progress::Reverted);
            }
        }
        let from = last.map_or(self.contracts.start_block, |b| b.number + 1);
        let Some(target) = target else {
            return Ok(Progress::Idle);
        };
        self.metrics
            .lag_blocks
            .set(head.saturating_sub(last.map_or(0, |b| b.number)) as i64);
        if target < from {
            return Ok(Progress::Idle);
        }
        let to = target.min(from.saturating_add(self.settings.max_block_range.max(1) - 1));
        self.index_range(from, to).await?;
        if to >= self.pruned_at + PRUNE_EVERY {
            self.pruned_at = to;
            let keep_from = to.saturating_sub(REORG_WINDOW);
            self.db(move |c| store::prune(c, keep_from))?;
        }
        self.metrics.indexed_block.set(to as i64);
        self.metrics.lag_blocks.set(head.saturating_sub(to) as i64);
        Ok(if to < target {
            Progress::More
        } else {
            Progress::Done
        })
    }

    async fn revert(&mut self, last: KnownBlock) -> Result<(), FollowError> {
        let stored =
            self.db(move |c| store::blocks_descending(c, last.number, FORK_SEARCH_LIMIT))?;
        let mut fork = None;
        for b in stored {
            if self.chain_block(b.number).await?.map(|c| c.hash) == Some(b.hash) {
                fork = Some(b.number);
                break;
            }
        }
        tracing::info!(
            from = last.number,
            fork = ?fork,
            "chain reorganised; reverting the indexer to the fork point"
        );
        self.db(move |c| store::revert_to(c, fork))?;
        self.metrics.reorgs.inc();
        let fork_n = fork.unwrap_or(0);
        self.metrics.indexed_block.set(fork_n as i64);
        self.refresh_counts()
    }

    fn refresh_counts(&mut self) -> Result<(), FollowError> {
        let counts = self.db(|c| store::entity_counts(c))?;
        self.metrics.set_entity_counts(&counts);
        Ok(())
    }

    async fn index_range(&mut self, from: u64, to: u64) -> Result<(), FollowError> {
        let head = self
            .chain_block(to)
            .await?
            .ok_or(FollowError::MissingBlock(to))?;
        let filter = Filter::new()
            .address(self.contracts.addresses())
            .event_signature(events::topics())
            .from_block(from)
            .to_block(to);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(rpc("eth_getLogs"))?;

        let mut blocks: BTreeMap<u64, KnownBlock> = BTreeMap::new();
        let mut decoded = Vec::with_capacity(logs.len());
        let mut indexing_errors = 0;
        for log in &logs {
            if log.removed {
                continue;
            }
            let (Some(number), Some(block_hash)) = (log.block_number, log.block_hash) else {
                continue;
            };
            let event = match events::decode(&self.contracts, log) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "indexing error");
                    indexing_errors += 1;
                    continue;
                }
            };
            let timestamp = match (log.block_timestamp, blocks.get(&number)) {
                (Some(t), _) => t,
                (None, Some(b)) => b.timestamp,
                (None, None) if number == to => head.timestamp,
                (None, None) => {
                    self.chain_block(number)
                        .await?
                        .ok_or(FollowError::MissingBlock(number))?
                        .timestamp
                }
            };
            blocks.insert(
                number,
                KnownBlock {
                    number,
                    hash: block_hash,
                    timestamp,
                },
            );
            let ctx = EventCtx {
                block: number,
                block_hash,
                timestamp,
                tx_hash: log.transaction_hash.unwrap_or(B256::ZERO),
                log_index: log.log_index.unwrap_or_default(),
            };
            decoded.push((ctx, event));
        }
        decoded.sort_by_key(|(c, _)| (c.block, c.log_index));
        for (ctx, event) in decoded.iter_mut() {
            if let Event::PermissionAdded {
                permission_id,
                state,
                ..
            } = event
            {
                *state = self.permission_state(*permission_id, ctx.block).await;
            }
        }
        let batch = Batch {
            head,
            blocks: blocks.into_values().collect(),
            events: decoded,
            indexing_errors,
        };
        let had_events = !batch.events.is_empty();
        self.db(move |c| store::apply(c, &batch))?;
        if had_events {
            self.refresh_counts()?;
        }
        Ok(())
    }

    /// `permissions(id)` at `block`, as a subgraph handler reads it; `None`
    /// if the call fails (the subgraph then stores nonce 0 and the event's
    /// block as start).
    ///
    /// A chain that keeps no history (anvil with `--prune-history`, see
    /// `chain.prune_history`) refuses calls at past blocks, so the read uses
    /// the latest state there: after the first refusal, directly. The two
    /// agree unless the permission was revoked in between, and a revocation
    /// is indexed from its own event.
    async fn permission_state(
        &self,
        id: alloy::primitives::U256,
        block: u64,
    ) -> Option<PermissionState> {
        let view = protocol::contracts::DataPortabilityPermissions::new(
            self.contracts.permissions,
            &self.provider,
        );
        let info = self
            .history
            .read_at(block, |at| {
                let view = &view;
                async move { view.permissions(id).block(at).call().await }
            })
            .await;
        match info {
            Ok(info) => Some(PermissionState {
                nonce: info.nonce,
                start_block: info.startBlock,
                end_block: info.endBlock,
            }),
            Err(e) => {
                tracing::warn!(permission = %id, error = %e, "permissions(id) failed");
                None
            }
        }
    }
}
