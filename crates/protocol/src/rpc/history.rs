//! What a node is known to keep of its past states, learnt from its answers.
//!
//! Some reads belong at a past block (the indexer reads a permission as of
//! its event's block). A node that keeps no history (anvil
//! with `--prune-history`, as load runs start it) refuses every such read
//! with `BlockOutOfRangeError`, and the reader falls back to the latest
//! state. Asking at the past block first on every read would cost one
//! refused call each (more when the block is within two of the head: the
//! [`StaleHead`](super::StaleHead) retry cannot tell that refusal from a
//! `latest` race and asks again). So the first refusal is remembered in a
//! [`History`] shared by every reader of that node, and later reads go to
//! `latest` directly ([`History::read_at`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy::eips::BlockId;

/// Whether a node's error message refuses a block because the node keeps
/// no state for it (anvil's `BlockOutOfRangeError`, whatever the distance).
pub fn is_block_out_of_range(message: &str) -> bool {
    message.contains("BlockOutOfRange")
}

/// Whether an out-of-range refusal is for a block the node has not reached
/// yet (a node behind its peers, e.g. behind a load balancer), which says
/// nothing about the history it keeps.
fn is_ahead_of_node(message: &str) -> bool {
    super::out_of_range_blocks(message).is_some_and(|(height, requested)| requested > height)
}

/// Whether the node behind one endpoint is known to keep no past states;
/// clones share what was learnt.
#[derive(Debug, Clone, Default)]
pub struct History {
    pruned: Arc<AtomicBool>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// True once a read at a past block was refused as out of range.
    pub fn is_pruned(&self) -> bool {
        self.pruned.load(Ordering::Relaxed)
    }

    /// Records that the node refused a past block; true the first time.
    fn learn_pruned(&self) -> bool {
        !self.pruned.swap(true, Ordering::Relaxed)
    }

    /// `read` at `block`, or at `latest` when the node keeps no history: a
    /// node not known to be pruned is asked at `block` first, and if it
    /// refuses the block as out of range that is remembered (logged once)
    /// and the read is made at `latest`. Any other error is returned as it
    /// came.
    pub async fn read_at<T, E, F, Fut>(&self, block: u64, mut read: F) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut(BlockId) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if self.is_pruned() {
            return read(BlockId::latest()).await;
        }
        match read(BlockId::number(block)).await {
            Err(e) if is_block_out_of_range(&e.to_string()) => {
                if is_ahead_of_node(&e.to_string()) {
                    // A node behind: this read only falls back.
                    return read(BlockId::latest()).await;
                }
                if self.learn_pruned() {
                    tracing::info!(
                        block,
                        error = %e,
                        "the node keeps no past states; reads meant for a past block use the latest state from now on"
                    );
                }
                read(BlockId::latest()).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A node's answers to reads: a past block is refused when `pruned`.
    fn answer(pruned: bool, at: BlockId) -> Result<u64, String> {
        match at {
            BlockId::Number(n) if n.is_latest() => Ok(7),
            BlockId::Number(n) if pruned => Err(format!(
                "BlockOutOfRangeError: block height is 100 but requested was {}",
                n.as_number().unwrap_or_default()
            )),
            _ => Ok(5),
        }
    }

    #[tokio::test]
    async fn a_pruned_node_is_asked_at_latest_after_its_first_refusal() {
        let history = History::new();
        let asked = Mutex::new(Vec::new());
        let read = |at: BlockId| {
            asked.lock().unwrap().push(at);
            async move { answer(true, at) }
        };
        assert_eq!(history.read_at(99, read).await, Ok(7));
        assert!(history.is_pruned());
        assert_eq!(history.clone().read_at(98, read).await, Ok(7));
        assert_eq!(
            *asked.lock().unwrap(),
            vec![BlockId::number(99), BlockId::latest(), BlockId::latest()],
            "one refused call, then latest only"
        );
    }

    #[tokio::test]
    async fn a_node_with_history_is_read_at_the_block() {
        let history = History::new();
        let calls = Mutex::new(0);
        let read = |at: BlockId| {
            *calls.lock().unwrap() += 1;
            async move { answer(false, at) }
        };
        assert_eq!(history.read_at(99, read).await, Ok(5));
        assert_eq!(history.read_at(99, read).await, Ok(5));
        assert!(!history.is_pruned());
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_node_behind_the_block_is_not_taken_for_pruning() {
        let history = History::new();
        let read = |at: BlockId| async move {
            match at {
                BlockId::Number(n) if n.is_latest() => Ok(7),
                _ => {
                    Err("BlockOutOfRangeError: block height is 97 but requested was 99".to_string())
                }
            }
        };
        assert_eq!(history.read_at(99, read).await, Ok(7));
        assert!(!history.is_pruned(), "a lagging node keeps its history");
    }

    #[tokio::test]
    async fn other_errors_are_not_taken_for_pruning() {
        let history = History::new();
        let got: Result<u64, String> = history
            .read_at(99, |_| async { Err("execution reverted".to_string()) })
            .await;
        assert_eq!(got, Err("execution reverted".to_string()));
        assert!(!history.is_pruned());
    }
}
