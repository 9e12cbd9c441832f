//! The relayer's keys: HD-derived at indices 10.. of the twin mnemonic and
//! topped up by the deployer (index 0) at start, so a fresh twin's relayer
//! can pay for what it relays.

use std::time::{Duration, Instant};

use alloy::consensus::TxEip1559;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use protocol::keys;

use super::config::{Config, RELAYER_INDEX_START};
use super::fees::Fees;
use super::sender;
use super::setup;
use crate::service::ServiceError;

/// Derives the key at `m/44'/60'/0'/0/{index}`.
pub fn derive_key(mnemonic: &str, index: u32) -> Result<PrivateKeySigner, String> {
    keys::derive_signer(mnemonic, index)
        .map_err(|e| format!("cannot derive key {index} from the mnemonic: {e}"))
}

/// The relayer key addresses for `keys` keys.
pub fn relayer_addresses(mnemonic: &str, keys: usize) -> Result<Vec<Address>, String> {
    (0..keys as u32)
        .map(|i| derive_key(mnemonic, RELAYER_INDEX_START + i).map(|k| k.address()))
        .collect()
}

/// Tops up every relayer key below half of `fund_ether` to `fund_ether`,
/// from the deployer, and waits until the transfers are mined.
pub(super) async fn fund(
    rpc: &RootProvider,
    chain_id: u64,
    deployer: &PrivateKeySigner,
    keys: &[PrivateKeySigner],
    cfg: &Config,
    fees: Fees,
) -> Result<(), ServiceError> {
    let target = U256::from(cfg.fund_ether) * U256::from(10u64).pow(U256::from(18));
    let mut nonce = rpc
        .get_transaction_count(deployer.address())
        .pending()
        .await
        .map_err(|e| setup(format!("cannot read the deployer's nonce: {e}")))?;
    let mut last = None;
    for k in keys {
        let bal = rpc
            .get_balance(k.address())
            .await
            .map_err(|e| setup(format!("cannot read the balance of {}: {e}", k.address())))?;
        if bal * U256::from(2) >= target {
            continue;
        }
        let tx = TxEip1559 {
            chain_id,
            nonce,
            gas_limit: sender::FILL_GAS,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: TxKind::Call(k.address()),
            value: target - bal,
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let (hash, raw) = sender::sign(deployer, tx).map_err(setup)?;
        match sender::broadcast(rpc, &raw).await {
            sender::Broadcast::Accepted => {}
            other => {
                return Err(setup(format!(
                    "funding relayer key {} from the deployer failed: {other:?}",
                    k.address()
                )));
            }
        }
        nonce += 1;
        last = Some(hash);
    }
    let Some(last) = last else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(r)) = rpc.get_transaction_receipt(last).await {
            if alloy::network::ReceiptResponse::status(&r) {
                return Ok(());
            }
            return Err(setup("the funding transfer reverted"));
        }
        if Instant::now() > deadline {
            return Err(setup(
                "the funding transfers were not mined within 60 s (is the chain mining?)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayer_keys_are_the_reserved_hd_range() {
        let m = keys::DEFAULT_TEST_MNEMONIC;
        let a = relayer_addresses(m, 2).unwrap();
        assert_eq!(a[0], keys::derive_signer(m, 10).unwrap().address());
        assert_eq!(a[1], keys::derive_signer(m, 11).unwrap().address());
        assert_ne!(a[0], keys::derive_signer(m, 0).unwrap().address());
    }
}
