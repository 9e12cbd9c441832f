//! Relayed operations by id: each accepted request gets an operation whose
//! status moves `Queued → Submitted(hash) → Confirmed | Failed`, observable by
//! `status_check` and awaitable by a request in wait mode. The store keeps the
//! most recent `capacity` operations.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use protocol::api::relayer::{RelayReceipt, RelayResponse};
use tokio::sync::watch;

/// Where an operation is.
#[derive(Debug, Clone, PartialEq)]
pub enum OpStatus {
    /// Accepted, waiting for a window slot or the key's sender.
    Queued,
    /// Broadcast (the latest hash, if it was replaced).
    Submitted(B256),
    /// Mined with status success.
    Confirmed(Box<RelayReceipt>),
    /// Refused before broadcast, reverted, or dropped; the error names why.
    Failed(String),
}

impl OpStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, OpStatus::Confirmed(_) | OpStatus::Failed(_))
    }

    /// The protocol response for this status.
    pub fn response(&self, id: &str, with_receipt: bool) -> RelayResponse {
        match self {
            OpStatus::Queued => RelayResponse::Pending {
                operation_id: id.to_string(),
            },
            OpStatus::Submitted(hash) => RelayResponse::Submitted { hash: *hash },
            OpStatus::Confirmed(r) => RelayResponse::Confirmed {
                hash: r.transaction_hash,
                receipt: with_receipt.then(|| r.clone()),
            },
            OpStatus::Failed(e) => RelayResponse::Error { error: e.clone() },
        }
    }
}

/// One operation.
#[derive(Debug)]
pub struct OpEntry {
    pub id: String,
    pub created: Instant,
    status: watch::Sender<OpStatus>,
}

impl OpEntry {
    pub fn new(id: String) -> Arc<Self> {
        Arc::new(OpEntry {
            id,
            created: Instant::now(),
            status: watch::Sender::new(OpStatus::Queued),
        })
    }

    pub fn status(&self) -> OpStatus {
        self.status.borrow().clone()
    }

    /// Moves the status on; a terminal status is never overwritten.
    pub fn set(&self, s: OpStatus) {
        self.status.send_if_modified(|cur| {
            if cur.is_terminal() {
                false
            } else {
                *cur = s;
                true
            }
        });
    }

    /// Waits for a terminal status, at most `timeout`; returns the status then.
    pub async fn wait_terminal(&self, timeout: Duration) -> OpStatus {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.is_terminal())).await;
        self.status()
    }
}

/// Operations by id, and their ids oldest first.
type Ops = (HashMap<String, Arc<OpEntry>>, VecDeque<String>);

/// The operations, by id, bounded.
#[derive(Debug)]
pub struct OpStore {
    inner: Mutex<Ops>,
    capacity: usize,
}

impl OpStore {
    pub fn new(capacity: usize) -> Self {
        OpStore {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    /// Creates an operation with a fresh random id.
    pub fn create(&self) -> Arc<OpEntry> {
        let id = format!("op_{}", hex::encode(rand::random::<[u8; 12]>()));
        let entry = OpEntry::new(id.clone());
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while g.1.len() >= self.capacity {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
        g.0.insert(id.clone(), entry.clone());
        g.1.push_back(id);
        entry
    }

    pub fn get(&self, id: &str) -> Option<Arc<OpEntry>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn terminal_status_is_final_and_awaitable() {
        let store = OpStore::new(10);
        let op = store.create();
        assert!(op.id.starts_with("op_"));
        assert_eq!(
            op.wait_terminal(Duration::from_millis(10)).await,
            OpStatus::Queued
        );
        let op2 = op.clone();
        let waiter = tokio::spawn(async move { op2.wait_terminal(Duration::from_secs(5)).await });
        op.set(OpStatus::Submitted(B256::ZERO));
        op.set(OpStatus::Failed("revert(X)".into()));
        op.set(OpStatus::Submitted(B256::ZERO));
        assert_eq!(waiter.await.unwrap(), OpStatus::Failed("revert(X)".into()));
        assert_eq!(op.status(), OpStatus::Failed("revert(X)".into()));
        assert!(store.get(&op.id).is_some());
        assert!(store.get("op_nope").is_none());
    }

    #[test]
    fn store_is_bounded() {
        let store = OpStore::new(2);
        let a = store.create();
        let _b = store.create();
        let _c = store.create();
        assert!(store.get(&a.id).is_none());
    }

    #[test]
    fn responses() {
        let r = OpStatus::Queued.response("op_1", true);
        assert_eq!(
            r,
            RelayResponse::Pending {
                operation_id: "op_1".into()
            }
        );
        let r = OpStatus::Failed("relayer busy".into()).response("op_1", true);
        assert_eq!(
            r,
            RelayResponse::Error {
                error: "relayer busy".into()
            }
        );
    }
}
