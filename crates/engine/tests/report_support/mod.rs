//! Shared by the report tests: a synthetic journey of known shape whose one
//! "bottleneck" step goes through a pool of `workers` (a semaphore) with a fixed
//! service time, a local `/metrics` server exposing the twin's gauge names
//! (relayer pending, inference queue depth, indexer lag, storage bytes) fed by
//! the flow, and a helper that runs the engine into a results directory.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use vana_load_engine::config::Preset;
use vana_load_engine::{
    Flow, FlowError, FlowResult, GaugeSource, LiveMode, Progress, RunOptions, RunOutcome, StepDef,
    StepSample, TxSample, run,
};

pub mod steps;
use steps::NAMES as STEPS;

/// The shape of a synthetic run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The step served by the worker pool (`infer_wait`, `register`, …).
    pub pooled_step: &'static str,
    pub workers: usize,
    pub service: Duration,
    /// Service time of every other step.
    pub base: Duration,
    /// Every n-th user fails at `proof` (0 = never).
    pub fail_every: u64,
    /// Peak arrivals per second and the phases in seconds.
    pub peak_per_s: f64,
    pub phases_s: (f64, f64, f64),
    pub max_concurrent: u64,
}

impl Scenario {
    pub fn saturating(step: &'static str, workers: usize, service_ms: u64) -> Scenario {
        Scenario {
            pooled_step: step,
            workers,
            service: Duration::from_millis(service_ms),
            base: Duration::from_millis(6),
            fail_every: 0,
            peak_per_s: 100.0,
            phases_s: (3.0, 4.0, 2.0),
            max_concurrent: 1000,
        }
    }
}

/// Live values the flow publishes and the gauge server exposes.
#[derive(Default)]
pub struct Gauges {
    pub waiting: AtomicI64,
    pub uploads: AtomicU64,
}

pub struct SynFlow {
    sc: Scenario,
    pool: Arc<Semaphore>,
    gauges: Arc<Gauges>,
    t0: Instant,
}

impl SynFlow {
    pub fn new(sc: Scenario, gauges: Arc<Gauges>) -> SynFlow {
        SynFlow {
            pool: Arc::new(Semaphore::new(sc.workers)),
            sc,
            gauges,
            t0: Instant::now(),
        }
    }

    fn block(&self) -> u64 {
        // One block every 100 ms.
        100 + (self.t0.elapsed().as_millis() / 100) as u64
    }

    fn tx(&self, kind: &'static str, gas: u64, start: Instant) -> TxSample {
        TxSample {
            kind,
            gas_used: gas,
            // 1 gwei effective gas price.
            fee_wei: gas as u128 * 1_000_000_000,
            confirm: start.elapsed(),
            block: self.block(),
        }
    }
}

impl Flow for SynFlow {
    fn steps(&self) -> Vec<StepDef> {
        steps::defs()
    }

    async fn run(&self, user: u64, _progress: &Progress) -> FlowResult {
        let mut steps = Vec::new();
        let mut txs = Vec::new();
        for name in STEPS {
            let t = Instant::now();
            if name == self.sc.pooled_step {
                self.gauges.waiting.fetch_add(1, Ordering::SeqCst);
                let permit = self.pool.acquire().await.expect("pool open");
                self.gauges.waiting.fetch_sub(1, Ordering::SeqCst);
                tokio::time::sleep(self.sc.service).await;
                drop(permit);
            } else {
                tokio::time::sleep(self.sc.base).await;
            }
            if name == "upload" {
                self.gauges.uploads.fetch_add(1, Ordering::SeqCst);
            }
            match name {
                "register" => txs.push(self.tx("register", 600_000, t)),
                "proof" => txs.push(self.tx("proof", 220_000, t)),
                "claim" => txs.push(self.tx("claim", 90_000, t)),
                _ => {}
            }
            if name == "proof" && self.sc.fail_every > 0 && user % self.sc.fail_every == 3 {
                steps.push(StepSample::failed(name, t.elapsed(), "tee_timeout"));
                return FlowResult {
                    steps,
                    error: Some(FlowError {
                        step: name,
                        class: "tee_timeout".into(),
                        message: "TEE did not answer; request had Authorization: Bearer s3cr3t-token-value".into(),
                    }),
                    txs,
                    counts: Default::default(),
                };
            }
            steps.push(StepSample::ok(name, t.elapsed()));
        }
        FlowResult {
            steps,
            error: None,
            txs,
            counts: Default::default(),
        }
    }
}

/// Serves `/relayer`, `/inference`, `/indexer` and `/storage` Prometheus text on 127.0.0.1.
pub async fn gauge_server(
    g: Arc<Gauges>,
    pooled: &'static str,
) -> (Vec<GaugeSource>, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("addr");
    let text = |name: &'static str, v: f64| {
        format!("# HELP {name} test gauge\n# TYPE {name} gauge\n{name} {v}\n")
    };
    let (g1, g2, g3) = (g.clone(), g.clone(), g.clone());
    let app = axum::Router::new()
        .route(
            "/relayer",
            get(move || {
                let w = if pooled == "register" {
                    g1.waiting.load(Ordering::SeqCst) as f64
                } else {
                    0.0
                };
                async move { text("relayer_pending_transactions", w) }
            }),
        )
        .route(
            "/inference",
            get(move || {
                let w = if pooled == "infer_wait" {
                    g2.waiting.load(Ordering::SeqCst) as f64
                } else {
                    0.0
                };
                async move { text("inference_queue_depth", w) }
            }),
        )
        .route(
            "/indexer",
            get(move || async move { text("indexer_lag_blocks", 1.0) }),
        )
        .route(
            "/storage",
            get(move || {
                let b = g3.uploads.load(Ordering::SeqCst) as f64 * 10_240.0;
                async move { text("storage_quota_used_bytes", b) }
            }),
        );
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let sources = ["relayer", "inference", "indexer", "storage"]
        .iter()
        .map(|n| GaugeSource {
            name: n.to_string(),
            url: format!("http://{addr}/{n}"),
        })
        .collect();
    (sources, h)
}

/// Runs the scenario into `dir` (which must not hold a run yet).
pub async fn run_scenario(sc: Scenario, dir: &Path) -> RunOutcome {
    let gauges = Arc::new(Gauges::default());
    let (sources, server) = gauge_server(gauges.clone(), sc.pooled_step).await;
    let mut cfg = Preset::Smoke.config();
    let (u, s, d) = sc.phases_s;
    cfg.profile = format!("synthetic-{}", sc.pooled_step);
    cfg.total_users = (sc.peak_per_s * (u / 2.0 + s + d / 2.0)).round() as u64;
    cfg.max_wallets = cfg.total_users;
    cfg.max_concurrent_users = sc.max_concurrent;
    cfg.ramp_up_minutes = u / 60.0;
    cfg.sustain_minutes = s / 60.0;
    cfg.ramp_down_minutes = d / 60.0;
    cfg.test_duration_minutes = cfg.ramp_up_minutes + cfg.sustain_minutes + cfg.ramp_down_minutes;
    cfg.metrics_interval = 0.25;
    cfg.time_scale = 1.0;
    cfg.rpc_endpoints = vec!["http://127.0.0.1:8545".into()];
    let flow = Arc::new(SynFlow::new(sc, gauges));
    let out = run(
        cfg,
        flow,
        RunOptions {
            out_dir: Some(dir.to_path_buf()),
            gauge_sources: sources,
            live: LiveMode::Off,
            ..Default::default()
        },
    )
    .await
    .expect("run starts");
    server.abort();
    out
}

/// Runs a scenario on its own runtime (for `OnceLock` fixtures shared by tests).
pub fn run_blocking(sc: Scenario, dir: &Path) -> RunOutcome {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run_scenario(sc, dir))
}
