//! Test wallets: HD derivation of the users and their batch funding.
//!
//! Users are `m/44'/60'/0'/0/{offset + i}` of the run's mnemonic (offset
//! 1000 by default, clear of the deployer, app, TEE and relayer keys).
//! [`HdKeys`] turns the mnemonic into the seed and the account node
//! `m/44'/60'/0'/0` once; each key is then a single non-hardened child step,
//! so thousands of wallets derive in well under a second per thousand.
//!
//! [`fund`] reads every balance with batched JSON-RPC, keeps the wallets
//! below the threshold, and tops them up to the funding amount through the
//! `BatchFunder` contract, hundreds per transaction, all transactions
//! pipelined from the funder's nonce. It is idempotent (a funded wallet is
//! skipped), hence resumable (re-running after an interruption funds only
//! what is still missing), and reports progress through a callback.

use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;

use crate::errors::{ErrorKind, JourneyError};
use crate::keys::Secret;
use crate::target::Funding;

pub use crate::keys::{DeriveError, HdKeys, derive_one};

/// The user wallets of a run: user `i` is HD index `offset + i`.
#[derive(Debug)]
pub struct UserWallets {
    keys: HdKeys,
    offset: u32,
}

impl UserWallets {
    pub fn new(mnemonic: &Secret, offset: u32) -> Result<Self, DeriveError> {
        Ok(UserWallets {
            keys: HdKeys::new(mnemonic)?,
            offset,
        })
    }

    /// HD index of user `i`.
    pub fn hd_index(&self, user: u32) -> u32 {
        self.offset + user
    }

    pub fn user(&self, user: u32) -> Result<PrivateKeySigner, DeriveError> {
        self.keys.signer(self.hd_index(user))
    }

    pub fn addresses(&self, count: u32) -> Result<Vec<Address>, DeriveError> {
        self.keys.addresses(self.offset, count)
    }
}

/// Progress of [`fund`], reported after each phase step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundProgress {
    /// Balances read so far, of the total.
    Checked { done: usize, total: usize },
    /// Wallets whose top-up transaction is confirmed, of those that needed one.
    Funded { done: usize, total: usize },
}

/// What [`fund`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundReport {
    pub wallets: usize,
    /// Wallets that were below the threshold (and are now at the amount).
    pub topped_up: usize,
    pub transactions: usize,
    /// Wei sent to wallets (excluding gas).
    pub value_sent: U256,
    pub gas_used: u64,
    pub elapsed: Duration,
}

/// Balances per JSON-RPC batch.
const BALANCE_BATCH: usize = 500;

/// Reads the balances of `addresses` with batched `eth_getBalance`.
pub async fn balances(
    client: &alloy::rpc::client::RpcClient,
    addresses: &[Address],
    mut progress: impl FnMut(usize),
) -> Result<Vec<U256>, JourneyError> {
    let mut out = Vec::with_capacity(addresses.len());
    for chunk in addresses.chunks(BALANCE_BATCH) {
        let mut batch = client.new_batch();
        let mut waiters = Vec::with_capacity(chunk.len());
        for a in chunk {
            let w = batch
                .add_call::<_, U256>("eth_getBalance", &(*a, "latest"))
                .map_err(|e| JourneyError::rpc(format!("eth_getBalance batch: {e}")))?;
            waiters.push(w);
        }
        batch
            .send()
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        for w in waiters {
            out.push(w.await.map_err(|e| JourneyError::from_transport(&e))?);
        }
        progress(out.len());
    }
    Ok(out)
}

/// Tops up every wallet below `funding.threshold` to `funding.amount`
/// through `batch_funder`, paid by `funder`.
pub async fn fund(
    rpc_url: &url::Url,
    funder: PrivateKeySigner,
    batch_funder: Address,
    addresses: &[Address],
    funding: Funding,
    mut progress: impl FnMut(FundProgress),
) -> Result<FundReport, JourneyError> {
    let started = Instant::now();
    let from = funder.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(funder))
        .connect_client(protocol::rpc::client(rpc_url.clone()));
    let total = addresses.len();
    let rpc = protocol::rpc::client(rpc_url.clone());
    let bals = balances(&rpc, addresses, |done| {
        progress(FundProgress::Checked { done, total })
    })
    .await?;
    let needy: Vec<(Address, U256)> = addresses
        .iter()
        .zip(&bals)
        .filter(|(_, b)| **b < funding.threshold)
        .map(|(a, b)| (*a, funding.amount - *b))
        .collect();
    let need_total: U256 = needy.iter().map(|(_, v)| *v).sum();
    progress(FundProgress::Funded {
        done: 0,
        total: needy.len(),
    });
    if needy.is_empty() {
        return Ok(FundReport {
            wallets: total,
            topped_up: 0,
            transactions: 0,
            value_sent: U256::ZERO,
            gas_used: 0,
            elapsed: started.elapsed(),
        });
    }
    let have = provider
        .get_balance(from)
        .await
        .map_err(|e| JourneyError::from_transport(&e))?;
    if have < need_total {
        return Err(JourneyError::new(
            ErrorKind::InsufficientFunds,
            format!(
                "funder {from} has {} VANA but {} wallets need {} VANA (plus gas)",
                alloy::primitives::utils::format_ether(have),
                needy.len(),
                alloy::primitives::utils::format_ether(need_total)
            ),
        ));
    }
    let code = provider
        .get_code_at(batch_funder)
        .await
        .map_err(|e| JourneyError::from_transport(&e))?;
    if code.is_empty() {
        return Err(JourneyError::new(
            ErrorKind::Revert("NoCode".into()),
            format!("contracts.batch_funder {batch_funder} has no code on this chain"),
        ));
    }
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| JourneyError::from_transport(&e))?;
    let mut nonce = provider
        .get_transaction_count(from)
        .pending()
        .await
        .map_err(|e| JourneyError::from_transport(&e))?;
    let fees = provider
        .estimate_eip1559_fees()
        .await
        .map_err(|e| JourneyError::from_transport(&e))?;

    // Receipts come from one block follower, not a poll per transaction.
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    let hub = crate::chain::ReceiptHub::start(
        alloy::providers::DynProvider::new(provider.clone()),
        Duration::from_millis(250),
        stop,
    )
    .await?;
    // Send every batch, pipelined, then wait for all receipts.
    let mut pending = Vec::new();
    for batch in needy.chunks(funding.batch_size.max(1)) {
        let wallets: Vec<Address> = batch.iter().map(|(a, _)| *a).collect();
        let value: U256 = batch.iter().map(|(_, v)| *v).sum();
        let input = protocol::contracts::batch_funder::BatchFunder::topUpCall {
            wallets,
            target: funding.amount,
        }
        .abi_encode();
        // ~36k gas per fresh account (new account + value call) plus loop overhead.
        let gas = 60_000 + 40_000 * batch.len() as u64;
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(batch_funder)
            .with_input(input)
            .with_value(value)
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_gas_limit(gas)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let p = provider
            .send_transaction(tx)
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        pending.push((batch.len(), value, *p.tx_hash()));
        nonce += 1;
    }
    let transactions = pending.len();
    let mut done = 0;
    let mut value_sent = U256::ZERO;
    let mut gas_used = 0;
    for (n, value, p) in pending {
        let receipt = hub.wait(p, Duration::from_secs(120)).await?;
        if !receipt.status() {
            return Err(JourneyError::new(
                ErrorKind::Revert("topUp".into()),
                format!(
                    "BatchFunder.topUp transaction {} reverted",
                    receipt.transaction_hash
                ),
            ));
        }
        gas_used += receipt.gas_used;
        done += n;
        value_sent += value;
        progress(FundProgress::Funded {
            done,
            total: needy.len(),
        });
    }
    Ok(FundReport {
        wallets: total,
        topped_up: needy.len(),
        transactions,
        value_sent,
        gas_used,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::DEFAULT_TEST_MNEMONIC;

    #[test]
    fn derivation_matches_anvils_well_known_accounts() {
        let keys = HdKeys::new(&Secret::new(DEFAULT_TEST_MNEMONIC)).unwrap();
        // anvil's accounts 0 and 1 for the default test mnemonic.
        assert_eq!(
            keys.signer(0).unwrap().address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            keys.signer(1).unwrap().address(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<Address>()
                .unwrap()
        );
        // The batch path agrees with the single-key path.
        let addrs = keys.addresses(1000, 9).unwrap();
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(*a, keys.signer(1000 + i as u32).unwrap().address());
        }
        let one = derive_one(&Secret::new(DEFAULT_TEST_MNEMONIC), 1003).unwrap();
        assert_eq!(one.address(), addrs[3]);
    }

    #[test]
    fn users_start_at_the_offset_and_are_distinct() {
        let w = UserWallets::new(&Secret::new(DEFAULT_TEST_MNEMONIC), 1000).unwrap();
        assert_eq!(w.hd_index(5), 1005);
        let addrs = w.addresses(50).unwrap();
        let mut uniq = addrs.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 50);
        assert_eq!(w.user(0).unwrap().address(), addrs[0]);
    }

    #[test]
    fn malformed_mnemonic_is_rejected_without_echo() {
        let e = HdKeys::new(&Secret::new("test test test"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("malformed mnemonic") && !e.contains("test"),
            "{e}"
        );
    }
}
