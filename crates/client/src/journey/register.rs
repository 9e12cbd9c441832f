//! The `register` step (the file and its permissions on chain, through the
//! relayer or paid by the user) and the `index` step (the file visible in the
//! subgraph at a head at least the registration's block).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolCall;
use protocol::api::relayer::{RelayRequest, RelayResponse, SignedOperation};
use protocol::contracts::{DataPortabilityPermissions, DataRegistry};
use protocol::crypto::ecies;

use super::reward::send_for_event;
use super::{JourneyReport, Mode, State, hex_key, u64_of};
use crate::chain::{Call, find_event};
use crate::context::Context;
use crate::errors::{ErrorKind, JourneyError, RetryPolicy};
use crate::services::subgraph::Backoff;

pub(super) async fn register(
    ctx: &Arc<Context>,
    mode: Mode,
    st: &mut State,
    r: &mut JourneyReport,
    limit: Duration,
) -> Result<(), JourneyError> {
    let key = st
        .key
        .as_ref()
        .ok_or_else(|| JourneyError::crypto("no K"))?
        .as_str()
        .to_string();
    let file_url = r.file_url.clone().unwrap_or_default();
    let identity = RetryPolicy::default()
        .run(|_| ctx.server.identity(r.address))
        .await?;
    let server_addr: Address = identity.personal_server.address.parse().map_err(|_| {
        JourneyError::new(
            ErrorKind::Server("identity".into()),
            "identity: bad server address",
        )
    })?;
    let server_pk = identity.personal_server.public_key.clone();
    let server_key = ecies::encrypt(&hex_key(&server_pk, "server public key")?, key.as_bytes())
        .map_err(|e| JourneyError::crypto(format!("ECIES to server: {e}")))?;
    let mut perms = vec![(server_addr, server_key)];
    // The DLP's file permission (K wrapped to `DataLiquidityPool.publicKey()`),
    // as the SDK's DLP flow adds it. A DLP whose key is not a secp256k1 point
    // gets none: the TEE receives K through RunProof either way.
    if let Some(dlp) = ctx.target.contracts.dlp
        && let Some(k) = hex_key(&ctx.facts.dlp_public_key, "DLP public key")
            .ok()
            .and_then(|pk| ecies::encrypt(&pk, key.as_bytes()).ok())
    {
        perms.push((dlp, k));
    }
    let p = ctx.chain.provider(st.user).clone();
    let permissions = DataPortabilityPermissions::new(ctx.target.contracts.permissions, p.clone());
    let registry_addr = ctx.target.contracts.data_registry;
    let domain =
        protocol::eip712::permissions_domain(ctx.chain.chain_id, ctx.target.contracts.permissions);
    match mode {
        Mode::Relayer => {
            use protocol::eip712::server_files::{Permission, ServerFilesAndPermission};
            let relayer = ctx
                .relayer
                .as_ref()
                .ok_or_else(|| JourneyError::rpc("services.relayer is not set"))?;
            let nonce = permissions
                .userNonce(r.address)
                .call()
                .await
                .map_err(|e| JourneyError::from_contract(&e))?;
            let msg = ServerFilesAndPermission {
                nonce,
                granteeId: ctx.facts.grantee_id,
                grant: st.grant_url.clone(),
                fileUrls: vec![file_url.clone()],
                schemaIds: vec![U256::from(ctx.target.schema_id)],
                serverAddress: server_addr,
                serverUrl: ctx
                    .target
                    .personal_server_url
                    .as_ref()
                    .map(|u| u.as_str().trim_end_matches('/').to_string())
                    .unwrap_or_default(),
                serverPublicKey: server_pk,
                filePermissions: vec![
                    perms
                        .iter()
                        .map(|(a, k)| Permission {
                            account: *a,
                            key: k.clone(),
                        })
                        .collect(),
                ],
            };
            let sig = protocol::eip712::sign(&st.signer, &msg, &domain)
                .map_err(|e| JourneyError::crypto(e.to_string()))?;
            let typed = protocol::eip712::typed_data_json(&msg, &domain)
                .map_err(|e| JourneyError::crypto(e.to_string()))?;
            let req = RelayRequest::Signed {
                operation: SignedOperation::SubmitAddServerFilesAndPermissions,
                typed_data: typed,
                signature: format!("0x{}", hex::encode(&sig)),
                expected_user_address: Some(r.address.to_checksum(None)),
            };
            let sent = Instant::now();
            let resp = relayer
                .submit(
                    &req,
                    ctx.target.poll.block.max(Duration::from_millis(100)),
                    limit,
                )
                .await?;
            let hash = match resp {
                RelayResponse::Confirmed { hash, .. }
                | RelayResponse::Submitted { hash }
                | RelayResponse::Signed { hash } => hash,
                other => {
                    return Err(JourneyError::new(
                        ErrorKind::Relayer("unexpected".into()),
                        format!("relayer answered {other:?}"),
                    ));
                }
            };
            let receipt = ctx.chain.receipts.wait(hash, limit).await?;
            r.txs.push(crate::chain::record(
                "addServerFilesAndPermissions(relayed)",
                &receipt,
                sent.elapsed(),
            ));
            if !receipt.status() {
                let name = ctx.chain.mined_revert(&receipt).await;
                return Err(JourneyError::new(
                    ErrorKind::Revert(name),
                    format!("relayed transaction {hash} reverted"),
                ));
            }
            ids_from_receipt(ctx, &receipt, r, st)?;
        }
        Mode::Direct => {
            let perms_sol: Vec<protocol::contracts::Permission> = perms
                .iter()
                .map(|(a, k)| protocol::contracts::Permission {
                    account: *a,
                    key: k.clone(),
                })
                .collect();
            let input = DataRegistry::addFileWithPermissionsAndSchemaCall {
                url: file_url.clone(),
                ownerAddress: r.address,
                permissions: perms_sol,
                schemaId: U256::from(ctx.target.schema_id),
            }
            .abi_encode();
            let (_, added) = send_for_event::<DataRegistry::FileAdded>(
                ctx,
                st,
                r,
                Call::new("addFileWithPermissionsAndSchema", registry_addr, input),
                limit,
            )
            .await?;
            r.file_id = Some(u64_of(added.fileId, "fileId")?);
            let nonce = permissions
                .userNonce(r.address)
                .call()
                .await
                .map_err(|e| JourneyError::from_contract(&e))?;
            let msg = protocol::eip712::permission::Permission {
                nonce,
                granteeId: ctx.facts.grantee_id,
                grant: st.grant_url.clone(),
                fileIds: vec![added.fileId],
            };
            let sig = protocol::eip712::sign(&st.signer, &msg, &domain)
                .map_err(|e| JourneyError::crypto(e.to_string()))?;
            let input = DataPortabilityPermissions::addPermissionCall {
                permissionInput: protocol::contracts::PermissionInput {
                    nonce,
                    granteeId: ctx.facts.grantee_id,
                    grant: st.grant_url.clone(),
                    fileIds: vec![added.fileId],
                },
                signature: sig,
            }
            .abi_encode();
            let (rc, rec) = ctx
                .chain
                .send(
                    st.user,
                    &st.signer,
                    Call::new("addPermission", ctx.target.contracts.permissions, input),
                    limit,
                )
                .await?;
            r.txs.push(rec);
            ids_from_receipt(ctx, &rc, r, st)?;
        }
    }
    Ok(())
}

fn ids_from_receipt(
    ctx: &Context,
    rc: &TransactionReceipt,
    r: &mut JourneyReport,
    st: &mut State,
) -> Result<(), JourneyError> {
    if r.file_id.is_none() {
        let added = find_event::<DataRegistry::FileAdded>(rc, ctx.target.contracts.data_registry)
            .ok_or_else(|| JourneyError::rpc("no FileAdded event in the receipt"))?;
        r.file_id = Some(u64_of(added.fileId, "fileId")?);
    }
    let perm = find_event::<DataPortabilityPermissions::PermissionAdded>(
        rc,
        ctx.target.contracts.permissions,
    )
    .ok_or_else(|| JourneyError::rpc("no PermissionAdded event in the receipt"))?;
    r.permission_id = Some(u64_of(perm.permissionId, "permissionId")?);
    st.register_block = rc.block_number.unwrap_or_default();
    Ok(())
}

pub(super) async fn wait_indexed(
    ctx: &Arc<Context>,
    st: &mut State,
    r: &mut JourneyReport,
) -> Result<(), JourneyError> {
    let file_id = r.file_id.unwrap_or_default().to_string();
    let backoff = Backoff {
        initial: ctx.target.poll.index,
        max: ctx.target.poll.index_max,
    };
    ctx.subgraph
        .wait_for_file(
            r.address,
            &file_id,
            st.register_block,
            backoff,
            &mut r.subgraph_queries,
        )
        .await
}
