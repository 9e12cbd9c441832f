//! The `proof` step (`requestContributionProof`, `RunProof` to the TEE, the
//! proof on chain) and the `claim` step (`requestReward`, the reward paid),
//! with the helper that sends a user's transaction and finds its event.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolCall, SolEvent};
use protocol::api::tee::RunProofRequest;
use protocol::contracts::{DataLiquidityPool, DataRegistry, RewardToken, TeePoolPhala};
use protocol::crypto::ecies;

use super::{JourneyReport, State, hex_key, u64_of};
use crate::chain::{Call, LogMatch, find_event};
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
    let p = ctx.chain.provider(st.user).clone();
    let token = RewardToken::new(ctx.facts.reward_token, p.clone());
    let before = token
        .balanceOf(r.address)
        .call()
        .await
        .map_err(|e| JourneyError::from_contract(&e))?;
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
    // The balance at the reward's own block; a node that keeps no history
    // (anvil with `--prune-history`) refuses past blocks, and then the latest
    // state stands in (nothing else pays this wallet during its journey).
    // The chain remembers the first refusal for every journey.
    let at = rc.block_number.unwrap_or_default();
    let (token, address) = (&token, r.address);
    let after = ctx
        .chain
        .history
        .read_at(at, |block| async move {
            token.balanceOf(address).block(block).call().await
        })
        .await
        .map_err(|e| JourneyError::from_contract(&e))?;
    if after.saturating_sub(before) != ev.rewardAmount {
        return Err(JourneyError::new(
            ErrorKind::Revert("RewardNotPaid".into()),
            format!(
                "reward balance went {before} → {after}, RewardRequested says {}",
                ev.rewardAmount
            ),
        ));
    }
    r.reward = Some(ev.rewardAmount);
    Ok(())
}
