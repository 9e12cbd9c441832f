//! The user journey: the plan's eleven steps, each timed and bounded by its
//! own deadline, stopping at the first failure with a classified error.
//!
//! `wallet` → `data` → `encrypt` (K + OpenPGP) → `upload` (file + grant) →
//! `register` (relayer: signed `ServerFilesAndPermission`; direct:
//! `addFileWithPermissionsAndSchema` + `addPermission`) → `index` (subgraph
//! head ≥ receipt block and the file visible) → `proof`
//! (`requestContributionProof`, `RunProof`, proof on chain) →
//! `infer_request` → `infer_wait` (only `succeeded` succeeds) → `result` →
//! `claim` (`requestReward`, `RewardRequested`, reward balance checked).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use protocol::api::personal_server::OperationState;
use protocol::api::relayer::{RelayRequest, RelayResponse, SignedOperation};
use protocol::api::tee::RunProofRequest;
use protocol::contracts::{
    DataLiquidityPool, DataPortabilityPermissions, DataRegistry, RewardToken, TeePoolPhala,
};

const JOB_COMPLETED: u8 = 2;
const JOB_CANCELED: u8 = 3;
use protocol::crypto::{UserKey, ecies};
use serde::Serialize;

use crate::chain::{Call, TxRecord, find_event};
use crate::context::Context;
use crate::data::DataSize;
use crate::errors::{ErrorKind, JourneyError, RetryPolicy, with_timeout};
use crate::services::subgraph::Backoff;
use crate::steps::Step;

/// How the file and permission are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// EIP-712 `ServerFilesAndPermission` signed by the user, submitted by the relayer.
    #[default]
    Relayer,
    /// `addFileWithPermissionsAndSchema` + `addPermission`, paid by the user.
    Direct,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relayer" => Ok(Mode::Relayer),
            "direct" => Ok(Mode::Direct),
            o => Err(format!("unknown mode {o:?}: expected relayer or direct")),
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub name: Step,
    pub ok: bool,
    pub duration: Duration,
    pub error: Option<JourneyError>,
}

/// What one journey did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JourneyReport {
    pub user_index: u64,
    pub address: Address,
    pub file_url: Option<String>,
    pub file_id: Option<u64>,
    pub permission_id: Option<u64>,
    pub operation_id: Option<String>,
    pub proof_index: Option<u64>,
    /// Reward paid by `requestReward`, in the token's smallest unit.
    pub reward: Option<U256>,
    pub steps: Vec<StepResult>,
    pub txs: Vec<TxRecord>,
    /// GraphQL queries this journey sent to the subgraph (`_meta` answers
    /// served from the shared cache are not queries).
    pub subgraph_queries: u64,
}

impl JourneyReport {
    /// All eleven steps ran and succeeded.
    pub fn ok(&self) -> bool {
        self.steps.len() == Step::ALL.len() && self.steps.iter().all(|s| s.ok)
    }

    /// The first failure, if any.
    pub fn error(&self) -> Option<(Step, &JourneyError)> {
        self.steps
            .iter()
            .find_map(|s| s.error.as_ref().map(|e| (s.name, e)))
    }

    /// Total time over the steps that ran.
    pub fn total(&self) -> Duration {
        self.steps.iter().map(|s| s.duration).sum()
    }

    /// The `--json` shape: address, file_url, file_id, permission_id,
    /// operation_id, proof_index, reward, steps[{name, ok, ms, error?}], txs.
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::json!({"name": s.name.name(), "ok": s.ok, "ms": s.duration.as_secs_f64() * 1000.0});
                if let Some(e) = &s.error {
                    v["error"] = serde_json::json!({"class": e.class(), "message": e.message});
                }
                v
            })
            .collect();
        serde_json::json!({
            "ok": self.ok(),
            "address": self.address,
            "file_url": self.file_url,
            "file_id": self.file_id,
            "permission_id": self.permission_id,
            "operation_id": self.operation_id,
            "proof_index": self.proof_index,
            "reward": self.reward.map(|r| r.to_string()),
            "steps": steps,
            "txs": self.txs,
            "subgraph_queries": self.subgraph_queries,
        })
    }
}

/// Per-journey working state.
struct State {
    user: u64,
    size: DataSize,
    signer: PrivateKeySigner,
    data: Vec<u8>,
    key: Option<UserKey>,
    encrypted: Vec<u8>,
    grant_url: String,
    register_block: u64,
    job_id: U256,
    output: Option<String>,
}

/// Runs one journey for user `user` (HD index `offset + user`).
/// Runs user `user`'s journey with the context's data size.
pub async fn run(ctx: &Arc<Context>, user: u64, mode: Mode) -> JourneyReport {
    run_sized(ctx, user, mode, ctx.opts.data_size).await
}

/// Runs user `user`'s journey with a synthetic dataset of `size`.
pub async fn run_sized(ctx: &Arc<Context>, user: u64, mode: Mode, size: DataSize) -> JourneyReport {
    run_observed(ctx, user, mode, size, &|_| {}).await
}

/// What a journey tells its observer as it goes.
#[derive(Debug)]
pub enum StepEvent<'a> {
    /// The journey enters this step.
    Begin(Step),
    /// The step ended, successfully or not.
    End(&'a StepResult),
}

/// [`run_sized`], telling `observe` when each step begins and ends (the load
/// engine keeps the finished steps of a journey it has to stop).
pub async fn run_observed(
    ctx: &Arc<Context>,
    user: u64,
    mode: Mode,
    size: DataSize,
    observe: &(dyn Fn(StepEvent<'_>) + Send + Sync),
) -> JourneyReport {
    let mut report = JourneyReport {
        user_index: user,
        ..Default::default()
    };
    let signer = match u32::try_from(user)
        .ok()
        .and_then(|u| ctx.users.user(u).ok())
    {
        Some(s) => s,
        None => {
            observe(StepEvent::Begin(Step::Wallet));
            report.steps.push(StepResult {
                name: Step::Wallet,
                ok: false,
                duration: Duration::ZERO,
                error: Some(JourneyError::crypto(format!("cannot derive user {user}"))),
            });
            observe(StepEvent::End(&report.steps[0]));
            return report;
        }
    };
    report.address = signer.address();
    let mut st = State {
        user,
        size,
        signer,
        data: Vec::new(),
        key: None,
        encrypted: Vec::new(),
        grant_url: String::new(),
        register_block: 0,
        job_id: U256::ZERO,
        output: None,
    };
    for step in Step::ALL {
        let limit = ctx.target.timeouts.get(step);
        observe(StepEvent::Begin(step));
        let started = Instant::now();
        let fut = run_step(ctx, step, mode, &mut st, &mut report, limit);
        let res = match step {
            // The index step's deadline is the indexer lag bound, classified as such.
            Step::Index => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(JourneyError::new(
                    ErrorKind::IndexerLag,
                    format!(
                        "the subgraph did not show file {:?} at block ≥ {} within {limit:?}",
                        report.file_id, st.register_block
                    ),
                )),
            },
            _ => with_timeout(step.name(), limit, fut).await,
        };
        let duration = started.elapsed();
        let failed = res.is_err();
        report.steps.push(StepResult {
            name: step,
            ok: !failed,
            duration,
            error: res.err(),
        });
        if let Some(last) = report.steps.last() {
            observe(StepEvent::End(last));
        }
        if failed {
            break;
        }
    }
    report
}

async fn run_step(
    ctx: &Arc<Context>,
    step: Step,
    mode: Mode,
    st: &mut State,
    r: &mut JourneyReport,
    limit: Duration,
) -> Result<(), JourneyError> {
    match step {
        Step::Wallet => {
            if let Some(tx) = ctx.ensure_funded(st.user, r.address, limit).await? {
                r.txs.push(tx);
            }
            Ok(())
        }
        Step::Data => {
            st.data = ctx.data.bytes(st.user, st.size);
            Ok(())
        }
        Step::Encrypt => {
            let signer = st.signer.clone();
            let data = std::mem::take(&mut st.data);
            let (key, enc, data) = tokio::task::spawn_blocking(move || {
                let key = protocol::crypto::user_key(&signer)
                    .map_err(|e| JourneyError::crypto(format!("K: {e}")))?;
                let enc = protocol::crypto::encrypt_with_password(&data, key.as_str())
                    .map_err(|e| JourneyError::crypto(format!("OpenPGP: {e}")))?;
                Ok::<_, JourneyError>((key, enc, data))
            })
            .await
            .map_err(|e| JourneyError::crypto(format!("encryption task: {e}")))??;
            st.key = Some(key);
            st.encrypted = enc;
            st.data = data;
            Ok(())
        }
        Step::Upload => {
            let ms = chrono::Utc::now().timestamp_millis();
            let grant = serde_json::json!({
                "grantee": ctx.facts.app.to_checksum(None),
                "operation": "llm_inference",
                "parameters": {"prompt": "Summarise this user's activity and preferences as JSON: {{data}}"},
            });
            let grant_bytes = serde_json::to_vec(&grant).expect("json");
            let (file_name, grant_name) = (format!("upload-{ms}.enc"), format!("grant-{ms}.json"));
            // Content-addressed uploads are idempotent: retry transient failures.
            let enc = std::mem::take(&mut st.encrypted);
            let retry = RetryPolicy::default();
            let (file_url, grant_url) = tokio::try_join!(
                retry.run(|_| ctx.storage.upload(
                    &file_name,
                    enc.clone(),
                    "application/octet-stream"
                )),
                retry.run(|_| ctx.storage.upload(
                    &grant_name,
                    grant_bytes.clone(),
                    "application/json"
                )),
            )?;
            r.file_url = Some(file_url);
            st.grant_url = grant_url;
            Ok(())
        }
        Step::Register => register(ctx, mode, st, r, limit).await,
        Step::Index => wait_indexed(ctx, st, r).await,
        Step::Proof => proof(ctx, st, r, limit).await,
        Step::InferRequest => {
            let pid = r
                .permission_id
                .ok_or_else(|| JourneyError::rpc("no permission id"))?;
            let created = ctx.server.create_operation(&ctx.app, pid).await?;
            r.operation_id = Some(created.id);
            Ok(())
        }
        Step::InferWait => {
            let id = r.operation_id.clone().unwrap_or_default();
            let started = Instant::now();
            let mut n = 0u32;
            loop {
                match ctx.server.operation(&id).await {
                    Ok(s) if s.status == OperationState::Succeeded => {
                        st.output = s.output_text();
                        return Ok(());
                    }
                    Ok(s) if s.status.is_terminal() => {
                        return Err(JourneyError::new(
                            ErrorKind::InferenceFailed,
                            format!(
                                "operation {id} ended {:?}: {}",
                                s.status,
                                s.output_text().unwrap_or_default()
                            ),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) if e.is_retryable() => {}
                    Err(e) => return Err(e),
                }
                tokio::time::sleep(ctx.target.poll.infer_delay(started.elapsed(), n)).await;
                n += 1;
            }
        }
        Step::Result => {
            let id = r.operation_id.clone().unwrap_or_default();
            let s = ctx.server.operation(&id).await?;
            let out = s.output_text().or(st.output.take()).unwrap_or_default();
            check_output(&out).map_err(|m| {
                JourneyError::new(ErrorKind::InferenceFailed, format!("operation {id}: {m}"))
            })
        }
        Step::Claim => claim(ctx, st, r, limit).await,
    }
}

/// A usable inference output: non-empty, and valid JSON if it looks like JSON.
pub fn check_output(out: &str) -> Result<(), String> {
    let t = out.trim();
    if t.is_empty() {
        return Err("empty output".into());
    }
    if (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(t).is_err()
    {
        return Err("output looks like JSON but does not parse".into());
    }
    Ok(())
}

fn u64_of(v: U256, what: &str) -> Result<u64, JourneyError> {
    u64::try_from(v).map_err(|_| JourneyError::rpc(format!("{what} {v} does not fit u64")))
}

fn hex_key(s: &str, what: &str) -> Result<Vec<u8>, JourneyError> {
    hex::decode(s.trim().trim_start_matches("0x"))
        .map_err(|_| JourneyError::crypto(format!("{what} is not hex")))
}

async fn register(
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

async fn wait_indexed(
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

async fn proof(
    ctx: &Arc<Context>,
    st: &mut State,
    r: &mut JourneyReport,
    limit: Duration,
) -> Result<(), JourneyError> {
    let file_id = U256::from(r.file_id.unwrap_or_default());
    let pool_addr = ctx.target.contracts.tee_pool;
    let input = TeePoolPhala::requestContributionProofCall { fileId: file_id }.abi_encode();
    let (rc, job) = send_for_event::<TeePoolPhala::JobSubmitted>(
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
    RetryPolicy::default()
        .run(|_| ctx.tee.run_proof(&tee.url, &req))
        .await?;
    // Wait for the job to complete, checking once per new block.
    let pool = TeePoolPhala::new(pool_addr, ctx.chain.provider(st.user).clone());
    let mut heads = ctx.chain.receipts.subscribe();
    loop {
        let j = pool
            .jobs(st.job_id)
            .call()
            .await
            .map_err(|e| JourneyError::from_contract(&e))?;
        // JobStatus{None, Submitted, Completed, Canceled}.
        match j.status {
            JOB_COMPLETED => break,
            JOB_CANCELED => {
                return Err(JourneyError::new(
                    ErrorKind::Revert("JobCanceled".into()),
                    format!("TEE job {} was canceled", st.job_id),
                ));
            }
            _ => {}
        }
        if heads.changed().await.is_err() {
            return Err(JourneyError::rpc("block stream stopped"));
        }
    }
    // The proof index from DataRegistry.ProofAdded(fileId indexed, …, proofIndex, …).
    // A node may answer `eth_call` from a new block before its logs are
    // queryable (seen on anvil under load), so a missing log is looked for
    // again on the next few blocks before it counts as an error.
    let filter = Filter::new()
        .address(ctx.target.contracts.data_registry)
        .event_signature(DataRegistry::ProofAdded::SIGNATURE_HASH)
        .topic1(file_id)
        .from_block(rc.block_number.unwrap_or_default());
    let mut attempts = 0;
    let added = loop {
        let logs = ctx
            .chain
            .provider(st.user)
            .get_logs(&filter)
            .await
            .map_err(|e| JourneyError::from_transport(&e))?;
        if let Some(added) = logs
            .iter()
            .rev()
            .find_map(|l| l.log_decode::<DataRegistry::ProofAdded>().ok())
        {
            break added;
        }
        attempts += 1;
        if attempts > 10 {
            return Err(JourneyError::rpc(format!(
                "job {} completed but no ProofAdded for file {file_id}",
                st.job_id
            )));
        }
        tokio::time::sleep(Duration::from_millis(50 * attempts)).await;
    };
    r.proof_index = Some(u64_of(added.inner.data.proofIndex, "proofIndex")?);
    Ok(())
}

/// Sends `call` from the user, records the transaction, and returns the
/// receipt with the first `E` event logged by the called contract.
async fn send_for_event<E: SolEvent>(
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

async fn claim(
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
    let at = rc.block_number.unwrap_or_default();
    let balance_at = token.balanceOf(r.address).block(at.into());
    let after = match balance_at.call().await {
        Err(e) if e.to_string().contains("BlockOutOfRange") => {
            token.balanceOf(r.address).call().await
        }
        other => other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_check() {
        assert!(check_output("  ").is_err());
        assert!(check_output("{\"a\":1}").is_ok());
        assert!(check_output("{broken").is_err());
        assert!(check_output("The user likes cycling.").is_ok());
    }

    #[test]
    fn json_shape_has_the_documented_fields() {
        let r = JourneyReport {
            address: Address::with_last_byte(1),
            file_id: Some(3),
            steps: vec![
                StepResult {
                    name: Step::Wallet,
                    ok: true,
                    duration: Duration::from_millis(5),
                    error: None,
                },
                StepResult {
                    name: Step::Data,
                    ok: false,
                    duration: Duration::from_millis(1),
                    error: Some(JourneyError::timeout("slow")),
                },
            ],
            ..Default::default()
        };
        let v = r.to_json();
        for k in [
            "address",
            "file_url",
            "file_id",
            "permission_id",
            "operation_id",
            "proof_index",
            "reward",
            "steps",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["steps"][0]["name"], "wallet");
        assert_eq!(v["steps"][0]["ms"], 5.0);
        assert!(v["steps"][0].get("error").is_none());
        assert_eq!(v["steps"][1]["error"]["class"], "timeout");
        assert!(!r.ok());
        assert_eq!(r.error().unwrap().0, Step::Data);
        assert_eq!("direct".parse::<Mode>().unwrap(), Mode::Direct);
    }
}
