//! Gas limits of relayed calls, measured once per shape and then fixed, and
//! the per-request simulation that keeps a call the contract would refuse
//! (a replayed signed request, a stale nonce) from costing a nonce or gas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::transports::{RpcError, TransportErrorKind};

/// Target, selector and calldata length.
type GasKey = (Address, [u8; 4], usize);

/// The most call shapes remembered. Real traffic has a handful; requests with
/// ever new calldata lengths could add more, so past this the table starts
/// over (each shape is measured again on its next request).
const MAX_SHAPES: usize = 1024;

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

    /// The limit for `input` to `to`, after checking that this exact call
    /// would not revert: the first request of a shape is checked by its
    /// estimate (concurrent first requests share it), every later one by an
    /// `eth_call` on `block`: the latest block, or the pending state for a
    /// call identical to one still in flight (see [`super::inflight`]), so a
    /// replay is refused even while its first copy waits in the pool. A
    /// failed estimate is not remembered: the next request measures again.
    pub async fn checked_limit(
        &self,
        rpc: &RootProvider,
        from: Address,
        to: Address,
        input: &Bytes,
        block: BlockId,
    ) -> Result<u64, String> {
        let mut measured = false;
        let limit = self
            .limit_with(rpc, from, to, input, || measured = true)
            .await?;
        if !measured {
            let req = call_request(from, to, input).gas_limit(limit);
            rpc.call(req)
                .block(block)
                .await
                .map_err(|e| describe_failure(&e, "simulation"))?;
        }
        Ok(limit)
    }

    /// The limit for `input` to `to`, measuring it the first time (concurrent
    /// first requests of one shape share a single estimate) and then calling
    /// `on_measure`. A failed estimate is not remembered.
    async fn limit_with(
        &self,
        rpc: &RootProvider,
        from: Address,
        to: Address,
        input: &Bytes,
        on_measure: impl FnOnce(),
    ) -> Result<u64, String> {
        let sel: [u8; 4] = input
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]);
        let cell = {
            let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
            let key = (to, sel, input.len());
            if limits.len() >= MAX_SHAPES && !limits.contains_key(&key) {
                limits.clear();
            }
            limits.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            on_measure();
            let est = rpc
                .estimate_gas(call_request(from, to, input))
                .latest() // as the SDK's relay (viem); see the client's `Chain::send`
                .await
                .map_err(|e| describe_failure(&e, "gas estimate"))?;
            Ok(est + est * self.margin_percent / 100)
        })
        .await
        .copied()
    }
}

#[cfg(test)]
impl GasTable {
    /// Remembered shapes, for the bound's test.
    fn shapes(&self) -> usize {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn call_request(from: Address, to: Address, input: &Bytes) -> TransactionRequest {
    TransactionRequest::default()
        .from(from)
        .to(to)
        .input(input.clone().into())
}

/// `revert(<contract error>)` when the node returned revert data (decoded
/// with the contracts' ABI errors), else `<what> failed: <error>`.
fn describe_failure(e: &RpcError<TransportErrorKind>, what: &str) -> String {
    match e.as_error_resp().and_then(|p| p.as_revert_data()) {
        Some(data) if !data.is_empty() => {
            format!("revert({})", protocol::contracts::describe_revert(&data))
        }
        _ => format!("{what} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests of ever new shapes cannot grow the table past its bound, even
    /// when every estimate fails (the shape is entered before it is measured).
    #[tokio::test]
    async fn the_table_of_shapes_is_bounded() {
        let rpc = RootProvider::new_http("http://127.0.0.1:9".parse().unwrap());
        let table = GasTable::new(20);
        for len in 4..(MAX_SHAPES + 100) {
            let input = Bytes::from(vec![1u8; len]);
            let r = table
                .checked_limit(
                    &rpc,
                    Address::ZERO,
                    Address::ZERO,
                    &input,
                    BlockId::latest(),
                )
                .await;
            assert!(r.is_err(), "nothing listens on port 9");
            assert!(table.shapes() <= MAX_SHAPES, "{} shapes", table.shapes());
        }
        assert!(table.shapes() > 0);
    }
}
