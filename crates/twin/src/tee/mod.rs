//! The TEE (the contribution-proof worker of a DLP), as a Phala TEE behaves.
//!
//! It watches `TeePoolPhala.JobSubmitted` for jobs assigned to its key and
//! accepts `POST /RunProof` with the user's key K (in clear, or ECIES-wrapped
//! to the TEE's public key). A bounded pool of workers then downloads and
//! decrypts the file, scores it, signs the proof exactly as
//! `DataLiquidityPool.requestReward` verifies it, and calls
//! `TeePoolPhala.addProof` from the TEE key. Transactions from that key are
//! sent by one task, so its nonces never race ([`sender`]: fee bumps and a
//! receipt deadline, so one stuck transaction blocks neither later ones nor a
//! worker).
//!
//! Nothing a job on chain says can stop the TEE: a file id that does not fit
//! in 64 bits or names no file fails that job alone, and no lock is held
//! across anything that can fail.

pub mod sender;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::api::tee::{RunProofAccepted, RunProofRequest, TeeError, proof_digest};
use protocol::contracts::{DataLiquidityPool, DataRegistry, TeePoolPhala};
use protocol::crypto;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};

use self::sender::{ProofTx, SendPolicy, spawn_sender};
use tokio_util::sync::CancellationToken;

use crate::fetch::{DEFAULT_MAX_BYTES, Fetcher};
use crate::service::{ServiceError, ServiceHandle, serve};

/// TEE settings (the `[tee]` section of the twin config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: std::net::IpAddr,
    /// Default 0: any free port (the manifest lists the URL).
    pub port: u16,
    /// Proofs computed at once.
    pub workers: usize,
    /// Jobs accepted but not yet started before `RunProof` answers 429.
    pub max_queue: usize,
    /// Extra time each proof takes, emulating the proof-of-contribution image.
    pub service_time_ms: u64,
    /// How often the TEE looks for new `JobSubmitted` logs.
    pub poll_interval_ms: u64,
    /// Metadata recorded with each proof.
    pub metadata: String,
    /// Longest wait for one JSON-RPC answer. Default 10000.
    pub rpc_timeout_ms: u64,
    /// An `addProof` not mined after this long is sent again with higher
    /// fees. Default 3000.
    pub bump_after_ms: u64,
    /// Re-sends of one `addProof` at most. Default 5.
    pub max_fee_bumps: u32,
    /// An `addProof` not mined after this long fails its job. Default 60000.
    pub receipt_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            workers: 16,
            max_queue: 10_000,
            service_time_ms: 250,
            poll_interval_ms: 200,
            metadata: r#"{"source":"vana-load-twin"}"#.into(),
            rpc_timeout_ms: 10_000,
            bump_after_ms: 3_000,
            max_fee_bumps: 5,
            receipt_timeout_ms: 60_000,
        }
    }
}

impl Config {
    /// Checks the section; errors name the field.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        if self.workers == 0 {
            return Err(ConfigError::invalid("tee.workers", "must be at least 1"));
        }
        if self.max_queue == 0 {
            return Err(ConfigError::invalid("tee.max_queue", "must be at least 1"));
        }
        for (field, ms) in [
            ("tee.poll_interval_ms", self.poll_interval_ms),
            ("tee.rpc_timeout_ms", self.rpc_timeout_ms),
            ("tee.bump_after_ms", self.bump_after_ms),
            ("tee.receipt_timeout_ms", self.receipt_timeout_ms),
        ] {
            if ms == 0 {
                return Err(ConfigError::invalid(field, "must be positive"));
            }
        }
        Ok(())
    }

    fn send_policy(&self) -> SendPolicy {
        SendPolicy {
            rpc_timeout: Duration::from_millis(self.rpc_timeout_ms),
            bump_after: Duration::from_millis(self.bump_after_ms),
            max_bumps: self.max_fee_bumps,
            receipt_timeout: Duration::from_millis(self.receipt_timeout_ms),
        }
    }

    /// The longest one job may hold a worker: download, decryption, service
    /// time, two reads and the receipt deadline, with a margin.
    fn job_deadline(&self) -> Duration {
        Duration::from_millis(
            FETCH_TIMEOUT.as_millis() as u64
                + self.service_time_ms
                + 4 * self.rpc_timeout_ms
                + self.receipt_timeout_ms,
        ) + Duration::from_secs(5)
    }
}

/// How long downloading a file may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the TEE finds the chain and the files.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub rpc_url: String,
    pub tee_pool: Address,
    pub data_registry: Address,
    pub dlp: Address,
    pub ipfs_gateway: String,
}

struct Metrics {
    requests: Family<Vec<(String, String)>, Counter>,
    jobs: Family<Vec<(String, String)>, Counter>,
    queued: Gauge,
    busy: Gauge,
    proof_seconds: Histogram,
}

struct Job {
    job_id: u64,
    file_id: u64,
    password: String,
    received: Instant,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            requests: Family::default(),
            jobs: Family::default(),
            queued: Gauge::default(),
            busy: Gauge::default(),
            proof_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        };
        registry.register(
            "tee_requests",
            "RunProof requests by status",
            metrics.requests.clone(),
        );
        registry.register("tee_jobs", "Jobs by outcome", metrics.jobs.clone());
        registry.register(
            "tee_queue_depth",
            "Jobs waiting for a worker",
            metrics.queued.clone(),
        );
        registry.register(
            "tee_busy_workers",
            "Workers computing a proof",
            metrics.busy.clone(),
        );
        registry.register(
            "tee_proof_seconds",
            "From RunProof to addProof confirmed",
            metrics.proof_seconds.clone(),
        );
        metrics
    }
}

/// The TEE's state: its key, the chain, its job map and queue.
pub struct AppState {
    tee: Address,
    signer: PrivateKeySigner,
    provider: DynProvider,
    upstreams: Upstreams,
    /// Jobs seen in `JobSubmitted` logs for this TEE: job id → file id.
    seen: Mutex<HashMap<u64, u64>>,
    queue: mpsc::Sender<Job>,
    metrics: Metrics,
    /// The twin's injected faults (`[faults.tee] silent_rate`).
    faults: Option<crate::faults::Faults>,
}

impl AppState {
    /// The job map. Nothing that can panic runs under its lock; should a
    /// panic ever poison it anyway, the map (plain data) is still usable.
    fn seen(&self) -> MutexGuard<'_, HashMap<u64, u64>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the TEE with its signing key.
pub async fn spawn(
    config: Config,
    upstreams: Upstreams,
    tee_key: PrivateKeySigner,
) -> Result<ServiceHandle, ServiceError> {
    let setup = |message: String| ServiceError::Setup {
        service: "tee",
        message,
    };
    if config.workers == 0 {
        return Err(setup("tee.workers must be at least 1".into()));
    }
    let url: reqwest::Url = upstreams
        .rpc_url
        .parse()
        .map_err(|e| setup(format!("invalid rpc url {:?}: {e}", upstreams.rpc_url)))?;
    let rpc_timeout = Duration::from_millis(config.rpc_timeout_ms);
    let provider = protocol::rpc::provider_with_timeout(url, rpc_timeout).erased();
    let dlp = DataLiquidityPool::new(upstreams.dlp, &provider);
    let instruction = dlp.proofInstruction().call().await.map_err(|e| {
        setup(format!(
            "cannot read DataLiquidityPool.proofInstruction at {}: {e}",
            upstreams.dlp
        ))
    })?;
    let dlp_id = U256::from(1u64);

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);

    let (queue_tx, queue_rx) = mpsc::channel(config.max_queue.max(1));
    let state = Arc::new(AppState {
        tee: tee_key.address(),
        signer: tee_key.clone(),
        provider: provider.clone(),
        upstreams: upstreams.clone(),
        seen: Mutex::new(HashMap::new()),
        queue: queue_tx,
        metrics,
        faults: crate::faults::current(),
    });
    let stop = CancellationToken::new();
    let sender = spawn_sender(
        &upstreams.rpc_url,
        tee_key,
        upstreams.tee_pool,
        config.send_policy(),
        stop.clone(),
    )
    .map_err(setup)?;
    let fetcher = Fetcher::new(
        crate::fetch::http_client(),
        upstreams.ipfs_gateway.clone(),
        DEFAULT_MAX_BYTES,
    );
    tokio::spawn(watch_jobs(
        state.clone(),
        Duration::from_millis(config.poll_interval_ms),
        stop.clone(),
    ));
    tokio::spawn(run_workers(
        state.clone(),
        queue_rx,
        Worker {
            fetcher,
            sender,
            instruction,
            dlp_id,
            metadata: config.metadata.clone(),
            service_time: Duration::from_millis(config.service_time_ms),
            deadline: config.job_deadline(),
        },
        config.workers,
        stop.clone(),
    ));
    let handle = serve(
        "tee",
        SocketAddr::new(config.host, config.port),
        router(state),
        Arc::new(registry),
    )
    .await?;
    Ok(handle.with_guard(stop.drop_guard()))
}

/// The TEE's route over `state`: `POST /RunProof` (accepted jobs go to the
/// workers [`spawn`] starts).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/RunProof", post(run_proof))
        .with_state(state)
}

fn reject(status: StatusCode, code: &str, error: String) -> Response {
    (
        status,
        Json(TeeError {
            error,
            code: code.into(),
        }),
    )
        .into_response()
}

async fn run_proof(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let response = accept(&state, &body).await.unwrap_or_else(|r| r);
    state
        .metrics
        .requests
        .get_or_create(&vec![(
            "status".into(),
            response.status().as_u16().to_string(),
        )])
        .inc();
    response
}

async fn accept(state: &AppState, body: &[u8]) -> Result<Response, Response> {
    let req: RunProofRequest = serde_json::from_slice(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            format!("invalid RunProof body: {e}"),
        )
    })?;
    let password = match (&req.encryption_key, &req.encrypted_encryption_key) {
        (Some(k), _) if !k.is_empty() => k.clone(),
        (_, Some(wrapped)) => {
            let key =
                crypto::ecies::decrypt(state.signer.credential().to_bytes().as_slice(), wrapped)
                    .map_err(|e| {
                        reject(
                            StatusCode::BAD_REQUEST,
                            "DECRYPTION_ERROR",
                            format!("encrypted_encryption_key: {e}"),
                        )
                    })?;
            String::from_utf8(key).map_err(|_| {
                reject(
                    StatusCode::BAD_REQUEST,
                    "DECRYPTION_ERROR",
                    "encryption key is not UTF-8".into(),
                )
            })?
        }
        _ => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "one of encryption_key or encrypted_encryption_key is required".into(),
            ));
        }
    };
    let known = state.seen().get(&req.job_id).copied();
    let file_id = match known {
        Some(file_id) => file_id,
        None => job_file_on_chain(state, req.job_id).await?,
    };
    if file_id != req.file_id {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "JOB_MISMATCH",
            format!(
                "job {} is for file {file_id}, not file {}",
                req.job_id, req.file_id
            ),
        ));
    }
    if let Some(f) = &state.faults
        && f.roll(f.with(|c| c.tee.silent_rate))
    {
        // Silence: accepted like any job, and never proved.
        f.count("tee", "silent");
        return Ok(accepted(req.job_id));
    }
    let job = Job {
        job_id: req.job_id,
        file_id,
        password,
        received: Instant::now(),
    };
    match state.queue.try_send(job) {
        Ok(()) => {
            state.metrics.queued.inc();
            Ok(accepted(req.job_id))
        }
        Err(_) => Err(reject(
            StatusCode::TOO_MANY_REQUESTS,
            "QUEUE_FULL",
            "the TEE queue is full".into(),
        )),
    }
}

fn accepted(job_id: u64) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(RunProofAccepted {
            job_id,
            status: "queued".into(),
        }),
    )
        .into_response()
}

/// Reads a job the log watcher has not seen yet, checking it is this TEE's.
async fn job_file_on_chain(state: &AppState, job_id: u64) -> Result<u64, Response> {
    let pool = TeePoolPhala::new(state.upstreams.tee_pool, &state.provider);
    let job = pool.jobs(U256::from(job_id)).call().await.map_err(|e| {
        reject(
            StatusCode::BAD_GATEWAY,
            "BLOCKCHAIN_ERROR",
            format!("cannot read job {job_id}: {e}"),
        )
    })?;
    if job.fileId.is_zero() {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "JOB_NOT_FOUND",
            format!("job {job_id} does not exist"),
        ));
    }
    if job.teeAddress != state.tee {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "WRONG_TEE",
            format!(
                "job {job_id} is assigned to {}, not this TEE ({})",
                job.teeAddress, state.tee
            ),
        ));
    }
    u64::try_from(job.fileId).map_err(|_| {
        reject(
            StatusCode::BAD_REQUEST,
            "JOB_MISMATCH",
            format!(
                "job {job_id} is for file {}, which no file id of a request can name",
                job.fileId
            ),
        )
    })
}

/// Follows `JobSubmitted` logs for this TEE, remembering job → file.
async fn watch_jobs(state: Arc<AppState>, every: Duration, stop: CancellationToken) {
    let mut next = match state.provider.get_block_number().await {
        Ok(n) => n.saturating_sub(100),
        Err(_) => 0,
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(head) = state.provider.get_block_number().await else {
            continue;
        };
        if head < next {
            continue;
        }
        let filter = Filter::new()
            .address(state.upstreams.tee_pool)
            .event_signature(TeePoolPhala::JobSubmitted::SIGNATURE_HASH)
            .from_block(next)
            .to_block(head);
        let Ok(logs) = state.provider.get_logs(&filter).await else {
            continue;
        };
        let jobs = own_jobs(&logs, state.tee);
        let mut seen = state.seen();
        seen.extend(jobs);
        forget_oldest(&mut seen, MAX_SEEN_JOBS);
        drop(seen);
        next = head + 1;
    }
}

/// Jobs remembered from logs at most; a `RunProof` for a forgotten job
/// reads it from the chain instead.
const MAX_SEEN_JOBS: usize = 200_000;

/// Bounded memory: past `max` jobs, the oldest half is forgotten.
fn forget_oldest(seen: &mut HashMap<u64, u64>, max: usize) {
    if seen.len() <= max {
        return;
    }
    let mut ids: Vec<u64> = seen.keys().copied().collect();
    ids.sort_unstable();
    for id in &ids[..seen.len() - max / 2] {
        seen.remove(id);
    }
}

/// This TEE's jobs in `JobSubmitted` logs, as job id → file id. A job whose
/// id or file id does not fit in 64 bits cannot be named by a `RunProof`
/// request (its ids are 64-bit), so it is skipped, not a reason to stop.
fn own_jobs(logs: &[alloy::rpc::types::Log], tee: Address) -> Vec<(u64, u64)> {
    logs.iter()
        .filter_map(|log| TeePoolPhala::JobSubmitted::decode_log(&log.inner).ok())
        .filter(|ev| ev.teeAddress == tee)
        .filter_map(|ev| {
            let ids = (u64::try_from(ev.jobId).ok(), u64::try_from(ev.fileId).ok());
            match ids {
                (Some(job), Some(file)) => Some((job, file)),
                _ => {
                    tracing::warn!(job = %ev.jobId, file = %ev.fileId, "job ids beyond 64 bits skipped");
                    None
                }
            }
        })
        .collect()
}

struct Worker {
    fetcher: Fetcher,
    sender: mpsc::Sender<ProofTx>,
    instruction: String,
    dlp_id: U256,
    metadata: String,
    service_time: Duration,
    /// The longest one job may hold a worker.
    deadline: Duration,
}

async fn run_workers(
    state: Arc<AppState>,
    mut queue: mpsc::Receiver<Job>,
    worker: Worker,
    workers: usize,
    stop: CancellationToken,
) {
    let worker = Arc::new(worker);
    let slots = Arc::new(Semaphore::new(workers));
    loop {
        let job = tokio::select! {
            _ = stop.cancelled() => return,
            job = queue.recv() => match job { Some(j) => j, None => return },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        state.metrics.queued.dec();
        state.metrics.busy.inc();
        let (state, worker) = (state.clone(), worker.clone());
        tokio::spawn(async move {
            let job_id = job.job_id;
            let received = job.received;
            let outcome = tokio::time::timeout(worker.deadline, prove(&state, &worker, job))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "timeout: the job took longer than {:?}",
                        worker.deadline
                    ))
                });
            state.metrics.busy.dec();
            drop(permit);
            let label = match &outcome {
                Ok(()) => {
                    state
                        .metrics
                        .proof_seconds
                        .observe(received.elapsed().as_secs_f64());
                    "proved".to_owned()
                }
                Err(e) => {
                    tracing::warn!(job_id, error = %e, "proof failed");
                    e.split(':').next().unwrap_or("error").to_owned()
                }
            };
            state
                .metrics
                .jobs
                .get_or_create(&vec![("outcome".into(), label)])
                .inc();
        });
    }
}

/// Scores a decrypted file: valid JSON with the expected sections scores
/// highest; anything decryptable still scores above zero (a valid proof).
pub fn score(plaintext: &[u8]) -> U256 {
    let one = U256::from(10u64).pow(U256::from(18u64));
    match serde_json::from_slice::<serde_json::Value>(plaintext) {
        Ok(serde_json::Value::Object(map)) => {
            let sections = ["user_profile", "activity_logs", "preferences", "metadata"];
            let present = sections.iter().filter(|s| map.contains_key(**s)).count() as u64;
            // 0.6 for valid JSON, +0.1 per expected section.
            one * U256::from(6 + present) / U256::from(10u64)
        }
        Ok(_) => one / U256::from(2u64),
        Err(_) => one / U256::from(10u64),
    }
}

async fn prove(state: &AppState, worker: &Worker, job: Job) -> Result<(), String> {
    let registry = DataRegistry::new(state.upstreams.data_registry, &state.provider);
    let file = registry
        .files(U256::from(job.file_id))
        .call()
        .await
        .map_err(|e| format!("rpc: file {}: {e}", job.file_id))?;
    let ciphertext = worker
        .fetcher
        .get(&file.url, FETCH_TIMEOUT)
        .await
        .map_err(|e| format!("download: {e}"))?;
    let password = job.password;
    let plaintext =
        tokio::task::spawn_blocking(move || crypto::decrypt_with_password(&ciphertext, &password))
            .await
            .map_err(|e| format!("decrypt: task failed: {e}"))?
            .map_err(|e| format!("decrypt: {e}"))?;
    tokio::time::sleep(worker.service_time).await;
    let score = score(&plaintext);
    let proof_url = format!("ipfs://twin-proof/{}", job.job_id);
    let digest = proof_digest(
        &file.url,
        score,
        worker.dlp_id,
        &worker.metadata,
        &proof_url,
        &worker.instruction,
    );
    let signature = state
        .signer
        .sign_message_sync(digest.as_slice())
        .map_err(|e| format!("sign: {e}"))?;
    let proof = protocol::contracts::Proof {
        signature: signature.as_bytes().to_vec().into(),
        data: protocol::contracts::ProofData {
            score,
            dlpId: worker.dlp_id,
            metadata: worker.metadata.clone(),
            proofUrl: proof_url,
            instruction: worker.instruction.clone(),
        },
    };
    let (done_tx, done_rx) = oneshot::channel();
    worker
        .sender
        .send(ProofTx {
            job_id: U256::from(job.job_id),
            proof,
            done: done_tx,
        })
        .await
        .map_err(|_| "tx: sender stopped".to_owned())?;
    done_rx.await.map_err(|_| "tx: sender stopped".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::oneshot::{post_json, send};

    #[tokio::test]
    async fn run_proof_refuses_a_malformed_body_or_a_missing_key_by_code() {
        let key = PrivateKeySigner::random();
        let url: reqwest::Url = "http://127.0.0.1:9".parse().unwrap();
        let (queue, _jobs) = mpsc::channel(1);
        let state = Arc::new(AppState {
            tee: key.address(),
            signer: key,
            provider: protocol::rpc::provider(url).erased(),
            upstreams: Upstreams {
                rpc_url: "http://127.0.0.1:9".into(),
                tee_pool: Address::ZERO,
                data_registry: Address::ZERO,
                dlp: Address::ZERO,
                ipfs_gateway: "http://127.0.0.1:9/ipfs/".into(),
            },
            seen: Mutex::new(HashMap::new()),
            queue,
            metrics: Metrics::register(&mut Registry::default()),
            faults: None,
        });
        let app = router(state);
        let bad = send(app.clone(), post_json("/RunProof", &serde_json::json!([1]))).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.json()["code"], "INVALID_REQUEST");
        let keyless = serde_json::json!({"job_id": 1, "file_id": 1, "proof_url": "x"});
        let r = send(app, post_json("/RunProof", &keyless)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("encryption_key")),
            "{}",
            r.json()
        );
    }

    #[test]
    fn the_job_map_keeps_the_newest_jobs_within_its_bound() {
        let mut seen: HashMap<u64, u64> = (0..1_000).map(|j| (j, j * 2)).collect();
        forget_oldest(&mut seen, 1_000);
        assert_eq!(seen.len(), 1_000, "at the bound nothing is forgotten");
        seen.insert(5_000, 1);
        forget_oldest(&mut seen, 1_000);
        assert_eq!(seen.len(), 500);
        assert!(seen.contains_key(&5_000) && seen.contains_key(&999));
        assert!(!seen.contains_key(&500));
    }
}
