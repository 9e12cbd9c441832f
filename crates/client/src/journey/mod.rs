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
//!
//! The chain-heavy steps have their own files: `register` (register, index)
//! and `reward` (proof, claim).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use protocol::api::personal_server::OperationState;
use protocol::crypto::UserKey;
use serde::Serialize;

use crate::chain::TxRecord;
use crate::context::Context;
use crate::data::DataSize;
use crate::errors::{ErrorKind, JourneyError, RetryPolicy, with_timeout};
use crate::steps::Step;

mod register;
mod reward;

use register::{register, wait_indexed};
use reward::{claim, proof};

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
        self.completed(&Step::ALL)
    }

    /// Exactly `steps` ran, in that order, and succeeded (a component run's
    /// timed steps).
    pub fn completed(&self, steps: &[Step]) -> bool {
        self.steps.iter().map(|s| s.name).eq(steps.iter().copied())
            && self.steps.iter().all(|s| s.ok)
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

/// An observer of a journey's steps.
pub type Observer<'o> = &'o (dyn Fn(StepEvent<'_>) + Send + Sync);

/// [`run_sized`], telling `observe` when each step begins and ends (the load
/// engine keeps the finished steps of a journey it has to stop).
pub async fn run_observed(
    ctx: &Arc<Context>,
    user: u64,
    mode: Mode,
    size: DataSize,
    observe: Observer<'_>,
) -> JourneyReport {
    let mut journey = match Partial::start(ctx, user, size) {
        Ok(j) => j,
        Err(failed) => {
            observe(StepEvent::Begin(Step::Wallet));
            observe(StepEvent::End(&failed.steps[0]));
            return *failed;
        }
    };
    journey.run_steps(ctx, mode, &Step::ALL, observe).await;
    journey.report
}

/// A journey that may run its steps in parts: a component run runs the
/// steps it prepares before the clock, then the steps it times
/// ([`crate::component`]). Its report keeps every step it ran until
/// [`Partial::restart_report`].
pub struct Partial {
    st: State,
    report: JourneyReport,
}

impl Partial {
    /// A journey for user `user` with a dataset of `size`, its wallet
    /// derived; or the report of a failed `wallet` step if it cannot be.
    pub fn start(ctx: &Context, user: u64, size: DataSize) -> Result<Partial, Box<JourneyReport>> {
        let mut report = JourneyReport {
            user_index: user,
            ..Default::default()
        };
        let Some(signer) = u32::try_from(user)
            .ok()
            .and_then(|u| ctx.users.user(u).ok())
        else {
            report.steps.push(StepResult {
                name: Step::Wallet,
                ok: false,
                duration: Duration::ZERO,
                error: Some(JourneyError::crypto(format!("cannot derive user {user}"))),
            });
            return Err(Box::new(report));
        };
        report.address = signer.address();
        let st = State {
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
        Ok(Partial { st, report })
    }

    /// Runs `steps` in the order given, each timed and bounded by its
    /// deadline, stopping at the first failure; true when all succeeded.
    pub async fn run_steps(
        &mut self,
        ctx: &Arc<Context>,
        mode: Mode,
        steps: &[Step],
        observe: Observer<'_>,
    ) -> bool {
        let (st, report) = (&mut self.st, &mut self.report);
        for &step in steps {
            let limit = ctx.target.timeouts.get(step);
            observe(StepEvent::Begin(step));
            let started = Instant::now();
            let fut = run_step(ctx, step, mode, st, report, limit);
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
                return false;
            }
        }
        true
    }

    /// Forgets the steps and transactions reported so far, keeping what they
    /// made (ids, URLs, keys): the report then shows only the steps run next.
    pub fn restart_report(&mut self) {
        self.report.steps.clear();
        self.report.txs.clear();
        self.report.subgraph_queries = 0;
    }

    /// The journey's report.
    pub fn report(&self) -> &JourneyReport {
        &self.report
    }

    /// The report, ending the journey.
    pub fn into_report(self) -> JourneyReport {
        self.report
    }
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
            // On the users' low-priority pool: see `crate::cpu`.
            let (key, enc, data) = crate::cpu::run(move || {
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
