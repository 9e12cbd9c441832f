//! Gas limits of relayed calls, measured once per shape and then fixed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, Bytes};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;

/// Target, selector and calldata length.
type GasKey = (Address, [u8; 4], usize);

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

    /// The limit for `input` to `to`, measuring it the first time (concurrent
    /// first requests of one shape share a single estimate). A failed
    /// estimate is not remembered: the next request of that shape measures again.
    pub async fn limit(
        &self,
        rpc: &RootProvider,
        from: Address,
        to: Address,
        input: &Bytes,
    ) -> Result<u64, String> {
        let sel: [u8; 4] = input
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]);
        let cell = self
            .limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((to, sel, input.len()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let req = TransactionRequest::default()
                .from(from)
                .to(to)
                .input(input.clone().into());
            let est = rpc.estimate_gas(req).await.map_err(|e| {
                match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                    Some(data) if !data.is_empty() => {
                        format!("revert({})", protocol::contracts::describe_revert(&data))
                    }
                    _ => format!("gas estimate failed: {e}"),
                }
            })?;
            Ok(est + est * self.margin_percent / 100)
        })
        .await
        .copied()
    }
}
