//! The relayed calls still in flight, by the hash of their exact target and
//! calldata. A request identical to one of them is a replay racing its own
//! first copy: only such a request is simulated on the pending state (which
//! anvil builds by executing its whole pool, so its cost grows with the pool);
//! every other request is simulated on the latest block, which is cheap.
//!
//! Entries are dropped once their operation ends (checked lazily), and the
//! map is purged of ended operations whenever it reaches [`PURGE_AT`], so it
//! holds about as many entries as there are calls in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256, Bytes, keccak256};

use super::ops::OpEntry;

/// Size at which ended operations are purged.
const PURGE_AT: usize = 4096;

/// The calls in flight.
#[derive(Debug, Default)]
pub struct InFlight {
    calls: Mutex<HashMap<B256, Arc<OpEntry>>>,
}

/// The key of a call: keccak256(target ‖ calldata).
pub fn call_key(to: Address, input: &Bytes) -> B256 {
    let mut buf = Vec::with_capacity(20 + input.len());
    buf.extend_from_slice(to.as_slice());
    buf.extend_from_slice(input);
    keccak256(buf)
}

impl InFlight {
    /// The operation still in flight with this exact call, if any.
    pub fn running(&self, key: B256) -> Option<Arc<OpEntry>> {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls
            .get(&key)
            .filter(|op| !op.status().is_terminal())
            .cloned()
    }

    /// Records `op` as the call in flight for `key`.
    pub fn insert(&self, key: B256, op: Arc<OpEntry>) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        if calls.len() >= PURGE_AT {
            calls.retain(|_, op| !op.status().is_terminal());
        }
        calls.insert(key, op);
    }
}

#[cfg(test)]
impl InFlight {
    /// Entries held (ended ones included until purged).
    fn len(&self) -> usize {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relayer::ops::{OpStatus, OpStore};

    #[test]
    fn a_running_call_is_found_until_it_ends_and_ended_ones_are_purged() {
        let store = OpStore::new(10_000);
        let inflight = InFlight::default();
        let input = Bytes::from(vec![1, 2, 3]);
        let key = call_key(Address::ZERO, &input);
        assert_ne!(key, call_key(Address::repeat_byte(1), &input));
        let op = store.create();
        inflight.insert(key, op.clone());
        assert_eq!(
            inflight.running(key).map(|o| o.id.clone()),
            Some(op.id.clone())
        );
        op.set(OpStatus::Failed("dropped".into()));
        assert!(
            inflight.running(key).is_none(),
            "an ended call is not in flight"
        );
        for i in 0..(PURGE_AT as u32 + 10) {
            let op = store.create();
            op.set(OpStatus::Failed("done".into()));
            inflight.insert(
                call_key(Address::ZERO, &Bytes::from(i.to_be_bytes().to_vec())),
                op,
            );
        }
        assert!(inflight.len() <= PURGE_AT, "{} entries", inflight.len());
    }
}
