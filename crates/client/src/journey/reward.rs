//! The `proof` step (`requestContributionProof`, `RunProof` to the TEE, the
//! proof on chain) and the `claim` step (`requestReward`, the reward paid),
//! with the helper that sends a user's transaction and finds its event.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolCall, SolEvent};
use protocol::api::tee::RunProofRequest;
use protocol::contracts::{DataLiquidityPool, DataRegistry, RewardToken, TeePoolPhala};
use protocol::crypto::ecies;

use super::{JourneyReport, State, hex_key, u64_of};
use crate::chain::{Call, LogMatch, events, find_event};
use crate::context::Context;
use crate::errors::{ErrorKind, JourneyError, RetryPolicy};

pub(super) async fn proof(
    ctx: &Arc<Context>,
    st: &mut State,
    r: &mut JourneyReport,
    limit: Duration,
) -> Result<(), JourneyError> {
    let file_id = U256::from(r.file_id.unwrap_or_default());
    let pool_addr = ctx.target.contracts.tee_pool;
    let input = TeePoolPhala::requestContributionProofCall { fileId: file_id }.abi_encode();
    let (_, job) = send_for_event::<TeePoolPhala::JobSubmitted>(
        ctx,
        st,
        r,
        Call::new("requestContributionProof", pool_addr, input).value(ctx.facts.tee_fee),
        limit,
    )
    .await?;
    st.job_id = job.jobId;
    let tee = ctx.tee_endpoint(job.teeAddress).await?;
    let key = st
        .key
        .as_ref()
        .ok_or_else(|| JourneyError::crypto("no K"))?
        .as_str()
        .to_string();
    let (encryption_key, encrypted_encryption_key) = if tee.public_key.is_empty() {
        (Some(key), None)
    } else {
        let k = ecies::encrypt(&hex_key(&tee.public_key, "TEE public key")?, key.as_bytes())
            .map_err(|e| JourneyError::crypto(format!("ECIES to TEE: {e}")))?;
        (None, Some(k))
    };
    let req = RunProofRequest {
        job_id: u64_of(job.jobId, "jobId")?,
        file_id: u64_of(file_id, "fileId")?,
        nonce: None,
        encryption_key,
        encrypted_encryption_key,
        proof_url: ctx.target.proof_url.clone().unwrap_or_default(),
        encryption_seed: Some(protocol::crypto::user_key::ENCRYPTION_SEED.to_string()),
        env_vars: Default::default(),
        secrets: Default::default(),
        validate_permissions: None,
    };
    // The outcome comes from the blocks the receipt hub reads anyway: the
    // proof's `DataRegistry.ProofAdded(fileId, …, proofIndex, …)`, or the
    // pool's `JobCanceled(jobId)`. Both watches start before `RunProof`, so
    // the block that carries either cannot go by unseen.
    let hub = &ctx.chain.receipts;
    let added = hub.watch_log(LogMatch {
        address: ctx.target.contracts.data_registry,
        event: DataRegistry::ProofAdded::SIGNATURE_HASH,
        topic1: B256::from(file_id),
    });
    let canceled = hub.watch_log(LogMatch {
        address: pool_addr,
        event: TeePoolPhala::JobCanceled::SIGNATURE_HASH,
        topic1: B256::from(st.job_id),
    });
    RetryPolicy::default()
        .run(|_| ctx.tee.run_proof(&tee.url, &req))
        .await?;
    let log = tokio::select! {
        log = added.log() => log?,
        log = canceled.log() => {
            log?;
            return Err(JourneyError::new(
                ErrorKind::Revert("JobCanceled".into()),
                format!("TEE job {} was canceled", st.job_id),
            ));
        }
    };
    let added = log.log_decode::<DataRegistry::ProofAdded>().map_err(|e| {
        JourneyError::rpc(format!(
            "ProofAdded for file {file_id} does not decode: {e}"
        ))
    })?;
    r.proof_index = Some(u64_of(added.inner.data.proofIndex, "proofIndex")?);
    Ok(())
}

/// Sends `call` from the user, records the transaction, and returns the
/// receipt with the first `E` event logged by the called contract.
pub(super) async fn send_for_event<E: SolEvent>(
    ctx: &Arc<Context>,
    st: &State,
    r: &mut JourneyReport,
    call: Call<'_>,
    limit: Duration,
) -> Result<(TransactionReceipt, E), JourneyError> {
    let emitter = call.to;
    let (rc, rec) = ctx.chain.send(st.user, &st.signer, call, limit).await?;
    r.txs.push(rec);
    let event = find_event::<E>(&rc, emitter).ok_or_else(|| {
        let name = E::SIGNATURE.split('(').next().unwrap_or(E::SIGNATURE);
        JourneyError::rpc(format!("no {name} event in the receipt"))
    })?;
    Ok((rc, event))
}

pub(super) async fn claim(
    ctx: &Arc<Context>,
    st: &mut State,
    r: &mut JourneyReport,
    limit: Duration,
) -> Result<(), JourneyError> {
    let dlp_addr = ctx
        .target
        .contracts
        .dlp
        .ok_or_else(|| JourneyError::rpc("contracts.dlp is not set"))?;
    let file_id = U256::from(r.file_id.unwrap_or_default());
    let proof_index = U256::from(r.proof_index.unwrap_or_default());
    let input = DataLiquidityPool::requestRewardCall {
        registryFileId: file_id,
        proofIndex: proof_index,
    }
    .abi_encode();
    let (rc, ev) = send_for_event::<DataLiquidityPool::RewardRequested>(
        ctx,
        st,
        r,
        Call::new("requestReward", dlp_addr, input),
        limit,
    )
    .await?;
    if ev.contributorAddress != r.address || ev.fileId != file_id || ev.proofIndex != proof_index {
        return Err(JourneyError::new(
            ErrorKind::Revert("RewardMismatch".into()),
            format!("RewardRequested does not match: {ev:?}"),
        ));
    }
    reward_paid(
        &rc,
        ctx.facts.reward_token,
        dlp_addr,
        r.address,
        ev.rewardAmount,
    )?;
    r.reward = Some(ev.rewardAmount);
    Ok(())
}

/// The reward was paid in the claim's own transaction: the reward token
/// logged `Transfer(dlp → user, amount)` there. An ERC-20 logs `Transfer`
/// only when the balances move, so this proves the payment as a balance
/// read before and after would, without the two `eth_call`s per journey
/// (and without a past-block read, which a node keeping no history refuses).
fn reward_paid(
    rc: &TransactionReceipt,
    token: Address,
    dlp: Address,
    user: Address,
    amount: U256,
) -> Result<(), JourneyError> {
    let mut transfers = events::<RewardToken::Transfer>(rc, token);
    if transfers.any(|t| t.from == dlp && t.to == user && t.value == amount) {
        return Ok(());
    }
    let transfers: Vec<_> = events::<RewardToken::Transfer>(rc, token).collect();
    Err(JourneyError::new(
        ErrorKind::Revert("RewardNotPaid".into()),
        format!(
            "RewardRequested says {amount}, but the reward token {token} logged no transfer of it \
             from the pool {dlp} to {user} (transfers: {transfers:?})"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, address};
    use alloy::sol_types::SolEvent;

    const TOKEN: Address = address!("00000000000000000000000000000000000000aa");
    const DLP: Address = address!("00000000000000000000000000000000000000bb");
    const USER: Address = address!("00000000000000000000000000000000000000cc");

    /// A mined receipt carrying `logs` (emitter, event), as a node sends it.
    fn receipt(logs: &[(Address, RewardToken::Transfer)]) -> TransactionReceipt {
        let logs: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(i, (emitter, ev))| {
                let data = ev.encode_log_data();
                serde_json::json!({
                    "address": emitter,
                    "topics": data.topics(),
                    "data": Bytes::from(data.data.to_vec()),
                    "blockNumber": "0x7",
                    "transactionHash": B256::repeat_byte(1),
                    "transactionIndex": "0x0",
                    "blockHash": B256::repeat_byte(2),
                    "logIndex": format!("{i:#x}"),
                    "removed": false,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "type": "0x2",
            "status": "0x1",
            "cumulativeGasUsed": "0x5208",
            "logs": logs,
            "logsBloom": format!("0x{}", "00".repeat(256)),
            "transactionHash": B256::repeat_byte(1),
            "transactionIndex": "0x0",
            "blockHash": B256::repeat_byte(2),
            "blockNumber": "0x7",
            "gasUsed": "0x5208",
            "effectiveGasPrice": "0x1",
            "from": USER,
            "to": DLP,
            "contractAddress": null,
        }))
        .expect("a node's receipt JSON")
    }

    fn transfer(from: Address, to: Address, value: u64) -> RewardToken::Transfer {
        RewardToken::Transfer {
            from,
            to,
            value: U256::from(value),
        }
    }

    #[test]
    fn the_pools_transfer_of_the_reward_to_the_user_is_the_payment() {
        let rc = receipt(&[(TOKEN, transfer(DLP, USER, 700))]);
        assert!(reward_paid(&rc, TOKEN, DLP, USER, U256::from(700)).is_ok());
    }

    #[test]
    fn anything_short_of_that_transfer_is_reward_not_paid() {
        let amount = U256::from(700);
        let cases = [
            ("no transfer", receipt(&[])),
            (
                "another amount",
                receipt(&[(TOKEN, transfer(DLP, USER, 699))]),
            ),
            (
                "to someone else",
                receipt(&[(TOKEN, transfer(DLP, DLP, 700))]),
            ),
            (
                "from someone else",
                receipt(&[(TOKEN, transfer(USER, USER, 700))]),
            ),
            (
                "logged by another contract",
                receipt(&[(DLP, transfer(DLP, USER, 700))]),
            ),
        ];
        for (what, rc) in cases {
            let e = reward_paid(&rc, TOKEN, DLP, USER, amount).expect_err(what);
            assert_eq!(e.kind, ErrorKind::Revert("RewardNotPaid".into()), "{what}");
            assert!(e.message.contains("700"), "{what}: {}", e.message);
        }
    }
}
