//! `engine::run`: drives a [`Flow`] on the open arrival schedule, measures it,
//! evaluates thresholds and writes the results directory.
//!
//! Pacing uses absolute deadlines (`sleep_until(t0 + offset)`), so dispatch never
//! drifts. Each arrival becomes a task; if the concurrency cap is reached the
//! arrival waits for a slot (FIFO, counted as *delayed*) and after
//! `maxQueueWaitSecs` is *dropped*. Latency runs from the intended start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::breaker::{Admit, BreakerReport, Breakers};
use crate::config::{ConfigError, LoadTestConfig};
use crate::flow::{Flow, FlowError, FlowResult};
use crate::journal;
use crate::live::{LiveMode, LiveState, LiveView};
use crate::metrics::{ErrorInfo, Hist, Recorder};
use crate::prom::{GaugeSource, PromMetrics, scrape_all};
use crate::results::{
    self, Criterion, E2e, Event, EventStep, EventTx, LineWriter, Summary, append_hlog,
    tagged_histograms, write_json,
};
use crate::schedule::Schedule;
use crate::threshold::{MetricView, Threshold, ThresholdResult};

/// How to run (everything that is not the load profile itself).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory; default `runs/<UTC timestamp>`.
    pub out_dir: Option<PathBuf>,
    /// Serve the engine's Prometheus metrics here (`--metrics-addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// Services whose `/metrics` gauges are scraped into the time series each interval.
    pub gauge_sources: Vec<GaugeSource>,
    pub live: LiveMode,
    /// Run identifier (the `test_id` prefix); default derived from the time.
    pub run_id: Option<String>,
    /// Continue the interrupted run in `out_dir`: users the journal shows
    /// finished or dropped are skipped and their measurements carried over.
    pub resume: bool,
    /// Treat Ctrl-C as an abort (results are still written).
    pub handle_ctrl_c: bool,
}

/// A run that could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("results directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "results directory {0} already holds a run (events.jsonl); choose another --out or resume it"
    )]
    NotEmpty(PathBuf),
    #[error("cannot serve Prometheus metrics on {addr}: {source}")]
    MetricsAddr {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl EngineError {
    /// Usage/setup errors exit with 2.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub summary: Summary,
    pub details: Details,
    pub out_dir: PathBuf,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// Where the Prometheus endpoint listened, if enabled.
    pub metrics_addr: Option<SocketAddr>,
}

impl RunOutcome {
    /// 0 when every criterion passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.summary.verdict == "pass" { 0 } else { 1 }
    }
}

/// `details.json`: what the summary has no field for.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub run_id: String,
    pub profile: String,
    pub started_at: String,
    pub finished_at: String,
    pub aborted: Option<String>,
    pub resumed: bool,
    pub schedule: ScheduleInfo,
    /// Arrivals dispatched, shed by breakers (part of dropped), cancelled by an abort, never started.
    pub arrived: u64,
    pub shed: u64,
    pub cancelled: u64,
    pub not_arrived: u64,
    pub thresholds: Vec<ThresholdResult>,
    pub breakers: Vec<BreakerReport>,
    pub schedule_lag_ms: E2e,
    pub queue_wait_ms: E2e,
    /// E2E of failed journeys by class (from the intended start).
    pub e2e_failed_ms: std::collections::BTreeMap<String, E2e>,
    pub errors: std::collections::BTreeMap<String, ErrorInfo>,
    /// Highest value seen of each scraped gauge (`source.metric`).
    pub gauge_max: std::collections::BTreeMap<String, f64>,
    pub metrics: LoadTestMetrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleInfo {
    pub duration_s: f64,
    pub ramp_up_s: f64,
    pub sustain_s: f64,
    pub ramp_down_s: f64,
    pub peak_rate_per_s: f64,
    pub time_scale: f64,
    pub arrival: String,
    pub max_concurrent_users: u64,
}

/// The plan's `LoadTestMetrics` groups.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadTestMetrics {
    pub blockchain: BlockchainMetrics,
    pub storage: StorageMetrics,
    pub ai: AiMetrics,
    pub end_to_end: EndToEndMetrics,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TxKindMetrics {
    pub count: u64,
    pub gas_used_mean: f64,
    pub gas_used_total: String,
    pub fee_wei_total: String,
    pub confirm_ms: E2e,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct BlockchainMetrics {
    /// Transactions per second over the load phases.
    pub transaction_throughput: f64,
    pub gas_usage: std::collections::BTreeMap<String, TxKindMetrics>,
    /// Submission → receipt latency of all transactions.
    pub rpc_latency_ms: E2e,
    /// Share of journeys that failed in a chain-facing step (register, proof, claim, wallet).
    pub error_rate: Option<f64>,
    pub max_tx_per_block: u64,
    pub mean_tx_per_block: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StorageMetrics {
    pub upload_latency_ms: E2e,
    pub upload_success_rate: Option<f64>,
    /// Highest scraped gauge whose name mentions `bytes` (the twin's storage bytes).
    pub storage_quota_used: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct AiMetrics {
    /// `infer_request` + `infer_wait` service time, via `infer_wait`.
    pub inference_latency_ms: E2e,
    /// Highest scraped gauge whose name mentions `queue` (inference queue depth).
    pub queue_depth: Option<f64>,
    /// Share of inference steps that succeeded.
    pub model_availability: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct EndToEndMetrics {
    pub flow_completion_time_ms: E2e,
    pub success_rate: Option<f64>,
    pub user_throughput: f64,
}

fn e2e_of(h: &Hist) -> E2e {
    E2e {
        p50: h.pct_ms(50.0),
        p95: h.pct_ms(95.0),
        p99: h.pct_ms(99.0),
        max: h.max_ms(),
    }
}

struct Shared<F> {
    flow: Arc<F>,
    cfg: LoadTestConfig,
    run_id: String,
    t0: Instant,
    wall0_ms: i64,
    rec: Mutex<Recorder>,
    breakers: Mutex<Breakers>,
    events: LineWriter<Event>,
    prom: PromMetrics,
    sem: Arc<Semaphore>,
    cancel: CancellationToken,
    abort_reason: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl<F: Flow> Shared<F> {
    fn abort(&self, reason: String) {
        let mut r = lock(&self.abort_reason);
        if r.is_none() {
            tracing::warn!("aborting the run: {reason}");
            *r = Some(reason);
        }
        self.cancel.cancel();
    }

    fn secs_since_t0(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    fn now_ms(&self) -> i64 {
        // Wall clock derived from the monotonic clock, so paused-clock tests are consistent.
        self.wall0_ms + (Instant::now() - self.t0).as_millis() as i64
    }

    fn event(&self, event: &str, user: u64, wallet: &str, intended: Instant) -> Event {
        Event {
            event: event.to_string(),
            wallet: wallet.to_string(),
            test_id: format!("{}-{}", self.run_id, user),
            timestamp: self.now_ms(),
            user,
            intended_ms: ms(intended.saturating_duration_since(self.t0)),
            ..Default::default()
        }
    }

    fn is_critical(&self, class: &str) -> bool {
        let list = &self.cfg.critical_error_classes;
        list.is_empty() || list.iter().any(|c| class.starts_with(c.as_str()))
    }
}

/// Records a cancellation if the journey's future is dropped before it finishes.
struct CancelGuard<F: Flow> {
    sh: Arc<Shared<F>>,
    user: u64,
    wallet: String,
    intended: Instant,
    probe: Option<String>,
    armed: bool,
}

impl<F: Flow> Drop for CancelGuard<F> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        lock(&self.sh.rec).cancelled();
        self.sh.prom.in_flight.dec();
        if let Some(c) = &self.probe {
            lock(&self.sh.breakers).probe_abandoned(c, Instant::now());
        }
        let ev = self
            .sh
            .event("flow_cancelled", self.user, &self.wallet, self.intended);
        self.sh.events.send(ev);
    }
}

async fn user_task<F: Flow>(
    sh: Arc<Shared<F>>,
    user: u64,
    intended: Instant,
    probe: Option<String>,
) {
    let arrived = Instant::now();
    let lag = arrived.saturating_duration_since(intended);
    lock(&sh.rec).arrival(sh.secs_since_t0(intended), lag);
    sh.prom.arrivals.inc();
    let wallet = sh.flow.wallet(user);
    let (permit, delayed) = match sh.sem.clone().try_acquire_owned() {
        Ok(p) => (p, false),
        Err(_) => {
            lock(&sh.rec).delayed += 1;
            sh.prom.delayed.inc();
            let deadline = intended + Duration::from_secs_f64(sh.cfg.max_queue_wait_secs);
            match timeout_at(deadline, sh.sem.clone().acquire_owned()).await {
                Ok(Ok(p)) => (p, true),
                _ => {
                    lock(&sh.rec).dropped += 1;
                    sh.prom.dropped.inc();
                    if let Some(c) = &probe {
                        lock(&sh.breakers).probe_abandoned(c, Instant::now());
                    }
                    let mut ev = sh.event("flow_dropped", user, &wallet, intended);
                    ev.error = Some("queue_timeout".into());
                    ev.delayed = Some(true);
                    ev.wait_ms = Some(ms(Instant::now() - intended));
                    sh.events.send(ev);
                    return;
                }
            }
        }
    };
    let started = Instant::now();
    let wait = started.saturating_duration_since(intended);
    lock(&sh.rec).start(wait);
    sh.prom.started.inc();
    sh.prom.in_flight.inc();
    let mut ev = sh.event("flow_start", user, &wallet, intended);
    ev.wait_ms = Some(ms(wait));
    ev.delayed = Some(delayed);
    sh.events.send(ev);

    let mut guard = CancelGuard {
        sh: sh.clone(),
        user,
        wallet,
        intended,
        probe,
        armed: true,
    };
    let journey_timeout = Duration::from_secs_f64(sh.cfg.journey_timeout_secs);
    let result = match timeout(journey_timeout, sh.flow.run(user, &sh.run_id)).await {
        Ok(r) => r,
        Err(_) => FlowResult {
            steps: Vec::new(),
            error: Some(FlowError {
                step: "journey",
                class: "timeout".into(),
                message: format!(
                    "journey exceeded journeyTimeoutSecs = {}",
                    sh.cfg.journey_timeout_secs
                ),
            }),
            txs: Vec::new(),
        },
    };
    let end = Instant::now();
    drop(permit);
    guard.armed = false;
    let e2e = end.saturating_duration_since(intended);
    let at_s = sh.secs_since_t0(end);
    lock(&sh.rec).finish(at_s, e2e, &result);
    sh.prom.in_flight.dec();
    for s in result.steps.iter().filter(|s| s.ok) {
        sh.prom
            .step
            .get_or_create(&vec![("step".to_string(), s.name.to_string())])
            .observe(s.duration.as_secs_f64());
    }

    let kind = if result.error.is_some() {
        "flow_failed"
    } else {
        "flow_complete"
    };
    let mut ev = sh.event(kind, user, &guard.wallet, intended);
    ev.duration_ms = Some(ms(e2e));
    ev.wait_ms = Some(ms(wait));
    ev.steps = result
        .steps
        .iter()
        .map(|s| EventStep {
            name: s.name.to_string(),
            ms: ms(s.duration),
            ok: s.ok,
            error: s.error_class.clone(),
        })
        .collect();
    ev.txs = result
        .txs
        .iter()
        .map(|t| EventTx {
            kind: t.kind.to_string(),
            gas_used: t.gas_used,
            fee_wei: t.fee_wei.to_string(),
            confirm_ms: ms(t.confirm),
            block: t.block,
        })
        .collect();
    match &result.error {
        None => {
            sh.prom.completed.get_or_create(&vec![]).inc();
            sh.prom.e2e.observe(e2e.as_secs_f64());
            let comps: Vec<&str> = result
                .steps
                .iter()
                .map(|s| sh.cfg.component_of(s.name))
                .collect();
            lock(&sh.breakers).success(comps);
            sh.events.send(ev);
        }
        Some(err) => {
            sh.prom
                .failed
                .get_or_create(&vec![
                    ("class".to_string(), err.class.clone()),
                    ("step".to_string(), err.step.to_string()),
                ])
                .inc();
            ev.step = Some(err.step.to_string());
            ev.error = Some(err.class.clone());
            ev.message = Some(
                crate::redact::redact_text(&err.message)
                    .chars()
                    .take(500)
                    .collect(),
            );
            sh.events.send(ev);
            let component = sh.cfg.component_of(err.step).to_string();
            let tripped = lock(&sh.breakers).failure(&component, end, at_s);
            if tripped {
                tracing::warn!("circuit breaker opened for component `{component}`");
            }
            if sh.cfg.fail_fast && sh.is_critical(&err.class) {
                sh.abort(format!(
                    "failFast: journey of user {user} failed at step `{}` with `{}`",
                    err.step, err.class
                ));
            } else if sh.cfg.fail_fast && tripped {
                sh.abort(format!(
                    "failFast: circuit breaker opened for `{component}`"
                ));
            }
        }
    }
}

/// The live view's state from the recorder.
fn live_state<F>(sh: &Shared<F>, sched: &Schedule, base: f64, t: f64, cps: f64) -> LiveState {
    let r = lock(&sh.rec);
    let open = lock(&sh.breakers).open_components(Instant::now());
    let dur = sched.curve.duration() - base;
    let eta = if t < dur {
        Some(dur - t + r.e2e_ok.pct_ms(50.0).unwrap_or(0.0) / 1000.0)
    } else if r.in_flight == 0 {
        Some(0.0)
    } else if cps > 0.0 {
        Some(r.in_flight as f64 / cps)
    } else {
        None
    };
    let mut errors: Vec<(String, u64)> = r.error_counts().into_iter().collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    LiveState {
        profile: sh.cfg.profile.clone(),
        phase: sched.curve.phase(t + base).name().to_string(),
        elapsed_s: t,
        schedule_s: dur,
        planned: r.planned,
        planned_arrivals: sched.arrivals_by(t + base) as u64,
        arrivals: r.arrived,
        in_flight: r.in_flight,
        cap: sh.cfg.max_concurrent_users,
        succeeded: r.succeeded,
        failed: r.failed,
        delayed: r.delayed,
        dropped: r.dropped,
        completions_per_s: cps,
        e2e_p50_ms: r.e2e_ok.pct_ms(50.0),
        e2e_p95_ms: r.e2e_ok.pct_ms(95.0),
        steps: crate::config::STEPS
            .iter()
            .map(|s| s.to_string())
            .chain(
                r.steps
                    .keys()
                    .filter(|k| !crate::config::STEPS.contains(&k.as_str()))
                    .cloned(),
            )
            .filter_map(|k| {
                r.steps
                    .get(&k)
                    .map(|s| (k.clone(), s.ok.pct_ms(50.0), s.ok.pct_ms(95.0), s.errors))
            })
            .collect(),
        errors,
        breakers_open: open,
        eta_s: eta,
    }
}

struct MonitorCtx {
    out: PathBuf,
    sources: Vec<GaugeSource>,
    live: LiveMode,
    thresholds: Vec<Threshold>,
    base: f64,
}

/// Ticks every second (live view, abort thresholds) and snapshots every metrics interval.
async fn monitor<F: Flow>(
    sh: Arc<Shared<F>>,
    sched: Arc<Schedule>,
    ctx: MonitorCtx,
    done: CancellationToken,
) -> std::collections::BTreeMap<String, f64> {
    let mut live = LiveView::start(ctx.live);
    let client = reqwest::Client::new();
    let interval = sh.cfg.metrics_interval();
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(interval));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_snap = sh.t0;
    let mut next_snap = sh.t0 + interval;
    let mut gauge_max = std::collections::BTreeMap::new();
    let (mut last_ok, mut last_t) = (0u64, sh.t0);
    let mut cps = 0.0;
    let ts = match LineWriter::<crate::metrics::Snapshot>::open(&ctx.out.join("timeseries.jsonl")) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot write timeseries.jsonl: {e}");
            None
        }
    };
    let mut finished = false;
    while !finished {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.cancelled() => finished = true,
        }
        let now = Instant::now();
        let t = sh.secs_since_t0(now);
        // Completions per second over the last tick window.
        {
            let ok = lock(&sh.rec).succeeded;
            let dt = (now - last_t).as_secs_f64();
            if dt >= 0.5 {
                cps = (ok - last_ok) as f64 / dt;
                last_ok = ok;
                last_t = now;
            }
        }
        let aborters: Vec<&Threshold> = ctx.thresholds.iter().filter(|t| t.abort_on_fail).collect();
        if !aborters.is_empty() && !finished {
            let r = lock(&sh.rec);
            if r.finished() >= 10 {
                let failing = aborters
                    .iter()
                    .map(|th| th.evaluate(&*r as &dyn MetricView, r.finished()))
                    .find(|res| !res.pass);
                drop(r);
                if let Some(f) = failing {
                    sh.abort(format!(
                        "threshold `{}` failed (actual {:?})",
                        f.expr, f.actual
                    ));
                }
            }
        }
        let state = live_state(&sh, &sched, ctx.base, t, cps);
        live.tick(&state);
        sh.prom.planned_arrivals.set(state.planned_arrivals as i64);
        sh.prom.breakers_open.set(state.breakers_open.len() as i64);
        if let Some(p99) = lock(&sh.rec).schedule_lag.pct_ms(99.0) {
            sh.prom.schedule_lag_p99.set(p99 / 1000.0);
        }
        if now >= next_snap || finished {
            let gauges = if ctx.sources.is_empty() {
                Default::default()
            } else {
                scrape_all(&client, &ctx.sources).await
            };
            for (src, m) in &gauges {
                for (k, v) in m {
                    let e = gauge_max.entry(format!("{src}.{k}")).or_insert(*v);
                    if *v > *e {
                        *e = *v;
                    }
                }
            }
            let iv_s = (now - last_snap).as_secs_f64();
            let (snap, e2e_iv) = {
                let mut r = lock(&sh.rec);
                let e2e_iv = r.interval.e2e.clone();
                let mut s = r.snapshot(
                    t,
                    iv_s,
                    sh.cfg.metrics_interval,
                    state.phase.as_str(),
                    state.planned_arrivals,
                );
                s.breakers_open = state.breakers_open.clone();
                s.gauges = gauges;
                (s, e2e_iv)
            };
            if let Some(w) = &ts {
                w.send(snap);
            }
            let start = last_snap.saturating_duration_since(sh.t0);
            if let Err(e) = append_hlog(
                &ctx.out.join("intervals.hlog"),
                start,
                now - last_snap,
                &[("e2e".to_string(), &e2e_iv)],
            ) {
                tracing::warn!("cannot append intervals.hlog: {e}");
            }
            if !finished {
                live.interval(&state);
            }
            last_snap = now;
            while next_snap <= now {
                next_snap += interval;
            }
        }
        if finished {
            live.finish(&state);
        }
    }
    if let Some(mut w) = ts {
        let _ = w.close();
    }
    gauge_max
}

fn criteria(
    cfg: &LoadTestConfig,
    r: &Recorder,
    thresholds: &[ThresholdResult],
    parsed: &[Threshold],
    breakers: &[BreakerReport],
    aborted: &Option<String>,
) -> Vec<Criterion> {
    use serde_json::json;
    let need = (r.planned as f64 * (1.0 - cfg.error_budget)).ceil() as u64;
    let rate = r.rate("errors");
    let p95 = r.e2e_ok.pct_ms(95.0);
    let target_ms = cfg.p95_e2e_target_secs * 1000.0;
    let mut critical = Vec::new();
    for b in breakers {
        critical.push(format!(
            "circuit breaker `{}` opened {}x, shed {}",
            b.component, b.trips, b.shed
        ));
    }
    if let Some(a) = aborted
        && a.starts_with("failFast")
    {
        critical.push(a.clone());
    }
    let mut v = vec![
        Criterion {
            name: "users_succeeded".into(),
            target: format!(
                ">= {need} of {} planned (error budget {}%)",
                r.planned,
                cfg.error_budget * 100.0
            ),
            actual: json!(r.succeeded),
            pass: r.succeeded >= need,
        },
        Criterion {
            name: "error_rate".into(),
            target: format!("< {}", cfg.error_budget),
            actual: json!(rate),
            pass: rate.is_some_and(|x| x < cfg.error_budget),
        },
        Criterion {
            name: "p95_e2e_ms".into(),
            target: format!("< {target_ms}"),
            actual: json!(p95),
            pass: p95.is_some_and(|p| p < target_ms),
        },
        Criterion {
            name: "no_critical_failure".into(),
            target: "no circuit breaker opened, no failFast abort".into(),
            actual: if critical.is_empty() {
                json!("none")
            } else {
                json!(critical.join("; "))
            },
            pass: critical.is_empty(),
        },
    ];
    for (res, th) in thresholds.iter().zip(parsed) {
        let op = match th.op {
            crate::threshold::Op::Lt => "<",
            crate::threshold::Op::Le => "<=",
            crate::threshold::Op::Gt => ">",
            crate::threshold::Op::Ge => ">=",
            crate::threshold::Op::Eq => "==",
            crate::threshold::Op::Ne => "!=",
        };
        let aborted_by_me = aborted
            .as_deref()
            .is_some_and(|a| a.contains(&format!("`{}`", th.expr)));
        v.push(Criterion {
            name: th.expr.clone(),
            target: format!("{op} {}", th.value),
            actual: json!(res.actual),
            pass: res.pass && !aborted_by_me,
        });
    }
    v
}

fn load_metrics(
    r: &Recorder,
    gauge_max: &std::collections::BTreeMap<String, f64>,
) -> LoadTestMetrics {
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let load_s = r.load_seconds();
    let mut all_confirm = Hist::default();
    for t in r.txs.values() {
        let _ = all_confirm.0.add(&t.confirm.0);
    }
    let chain_steps = ["wallet", "register", "proof", "claim"];
    let chain_failures: u64 = r
        .errors
        .values()
        .filter(|e| chain_steps.contains(&e.step.as_str()))
        .map(|e| e.count)
        .sum();
    let step = |n: &str| r.steps.get(n);
    let pick_gauge = |needle: &str| {
        gauge_max
            .iter()
            .filter(|(k, _)| k.contains(needle))
            .map(|(_, v)| *v)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    let infer_ok: u64 = ["infer_request", "infer_wait"]
        .iter()
        .filter_map(|n| step(n))
        .map(|s| s.count - s.errors)
        .sum();
    let infer_all: u64 = ["infer_request", "infer_wait"]
        .iter()
        .filter_map(|n| step(n))
        .map(|s| s.count)
        .sum();
    LoadTestMetrics {
        blockchain: BlockchainMetrics {
            transaction_throughput: load_s.map_or(0.0, |s| r.tx_count() as f64 / s),
            gas_usage: r
                .txs
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        TxKindMetrics {
                            count: t.count,
                            gas_used_mean: if t.count > 0 {
                                t.gas_total as f64 / t.count as f64
                            } else {
                                0.0
                            },
                            gas_used_total: t.gas_total.to_string(),
                            fee_wei_total: t.fee_wei_total.to_string(),
                            confirm_ms: e2e_of(&t.confirm),
                        },
                    )
                })
                .collect(),
            rpc_latency_ms: e2e_of(&all_confirm),
            error_rate: ratio(chain_failures, r.finished()),
            max_tx_per_block: r.tx_per_block.values().copied().max().unwrap_or(0),
            mean_tx_per_block: if r.tx_per_block.is_empty() {
                0.0
            } else {
                r.tx_count() as f64 / r.tx_per_block.len() as f64
            },
        },
        storage: StorageMetrics {
            upload_latency_ms: step("upload").map(|s| e2e_of(&s.ok)).unwrap_or_default(),
            upload_success_rate: step("upload").and_then(|s| ratio(s.count - s.errors, s.count)),
            storage_quota_used: pick_gauge("bytes"),
        },
        ai: AiMetrics {
            inference_latency_ms: step("infer_wait")
                .map(|s| e2e_of(&s.ok))
                .unwrap_or_default(),
            queue_depth: pick_gauge("queue"),
            model_availability: ratio(infer_ok, infer_all),
        },
        end_to_end: EndToEndMetrics {
            flow_completion_time_ms: e2e_of(&r.e2e_ok),
            success_rate: ratio(r.succeeded, r.finished()),
            user_throughput: load_s.map_or(0.0, |s| r.succeeded as f64 / s),
        },
    }
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Dispatches every arrival on its absolute deadline, then drains in-flight journeys
/// (after an abort, for at most `abortGraceSecs`, then cancels them).
async fn dispatch<F: Flow>(sh: Arc<Shared<F>>, sched: Arc<Schedule>, todo: Vec<u64>, base: f64) {
    let t0 = sh.t0;
    // Dispatch on absolute deadlines.
    let mut set = JoinSet::new();
    for &user in &todo {
        let intended = t0 + Duration::from_secs_f64((sched.offset(user as usize) - base).max(0.0));
        tokio::select! {
            biased;
            _ = sh.cancel.cancelled() => break,
            _ = sleep_until(intended) => {}
        }
        while set.try_join_next().is_some() {}
        let admit = lock(&sh.breakers).admit(Instant::now());
        match admit {
            Admit::Shed(component) => {
                let lag = Instant::now().saturating_duration_since(intended);
                {
                    let mut r = lock(&sh.rec);
                    r.arrival(sh.secs_since_t0(intended), lag);
                    r.dropped += 1;
                    r.shed += 1;
                }
                sh.prom.arrivals.inc();
                sh.prom.dropped.inc();
                let mut ev = sh.event("flow_dropped", user, &sh.flow.wallet(user), intended);
                ev.error = Some(format!("breaker({component})"));
                sh.events.send(ev);
            }
            Admit::Yes => {
                set.spawn(user_task(sh.clone(), user, intended, None));
            }
            Admit::Probe(c) => {
                set.spawn(user_task(sh.clone(), user, intended, Some(c)));
            }
        }
    }
    // Drain: wait for in-flight journeys; after an abort, give them the grace period.
    let grace = Duration::from_secs_f64(sh.cfg.abort_grace_secs);
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            r = set.join_next() => if r.is_none() { break },
            _ = sh.cancel.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + grace);
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// Runs the whole load test: schedule, measurement, thresholds, live view,
/// Prometheus, and the results directory. Returns `Err` (exit code 2) only when
/// the run cannot start; a run that starts always writes its results.
pub async fn run<F: Flow>(
    config: LoadTestConfig,
    flow: Arc<F>,
    options: RunOptions,
) -> Result<RunOutcome, EngineError> {
    config.validate()?;
    let thresholds: Vec<Threshold> = config
        .thresholds
        .iter()
        .map(|t| t.parse().expect("validated"))
        .collect();
    let out = options
        .out_dir
        .clone()
        .unwrap_or_else(results::default_out_dir);
    std::fs::create_dir_all(&out).map_err(io_err(&out))?;
    let events_path = out.join("events.jsonl");
    let has_events = std::fs::metadata(&events_path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let (recorder, skip, prev_run_id) = if options.resume && has_events {
        let st = journal::replay(&out, config.total_users).map_err(io_err(&events_path))?;
        let prev: Option<String> = std::fs::read(out.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("run_id")?.as_str().map(str::to_string));
        let skip: std::collections::BTreeSet<u64> =
            st.finished.union(&st.dropped).copied().collect();
        (st.recorder, skip, prev)
    } else if has_events {
        return Err(EngineError::NotEmpty(out));
    } else {
        (Recorder::new(config.total_users), Default::default(), None)
    };
    let resumed = !skip.is_empty();
    let run_id = options
        .run_id
        .clone()
        .or(prev_run_id)
        .unwrap_or_else(|| format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    let started_at = chrono::Utc::now();
    write_json(&out, "config.json", &config.redacted_json()).map_err(io_err(&out))?;
    let (profile, total_users, seed, arrival) = (
        config.profile.clone(),
        config.total_users,
        config.seed,
        config.arrival,
    );
    let run_json = |status: &str, aborted: &Option<String>| {
        serde_json::json!({
            "run_id": run_id,
            "profile": profile,
            "status": status,
            "aborted": aborted,
            "started_at": started_at.to_rfc3339(),
            "updated_at": chrono::Utc::now().to_rfc3339(),
            "total_users": total_users,
            "seed": seed,
            "arrival": arrival,
            "resumed": resumed,
        })
    };
    write_json(&out, "run.json", &run_json("running", &None)).map_err(io_err(&out))?;

    let prom = PromMetrics::new();
    let mut prom_addr = None;
    let mut prom_task = None;
    if let Some(addr) = options.metrics_addr {
        let (local, h) = prom
            .serve(addr)
            .await
            .map_err(|source| EngineError::MetricsAddr { addr, source })?;
        prom_addr = Some(local);
        prom_task = Some(h);
    }

    let sched = Arc::new(Schedule::from_config(&config));
    let todo: Vec<u64> = (0..config.total_users)
        .filter(|u| !skip.contains(u))
        .collect();
    // A resumed run starts its first remaining user now.
    let base = todo.first().map_or(0.0, |u| sched.offset(*u as usize));
    let events = LineWriter::open(&events_path).map_err(io_err(&events_path))?;
    let t0 = Instant::now();
    let sh = Arc::new(Shared {
        flow,
        sem: Arc::new(Semaphore::new(config.max_concurrent_users as usize)),
        breakers: Mutex::new(Breakers::new(config.breaker)),
        cfg: config,
        run_id: run_id.clone(),
        t0,
        wall0_ms: chrono::Utc::now().timestamp_millis(),
        rec: Mutex::new(recorder),
        events,
        prom,
        cancel: CancellationToken::new(),
        abort_reason: Mutex::new(None),
    });
    let ctrl_c = options.handle_ctrl_c.then(|| {
        let sh2 = sh.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                sh2.abort("interrupted (Ctrl-C)".into());
            }
        })
    });
    let done = CancellationToken::new();
    let mon = tokio::spawn(monitor(
        sh.clone(),
        sched.clone(),
        MonitorCtx {
            out: out.clone(),
            sources: options.gauge_sources.clone(),
            live: options.live,
            thresholds: thresholds.clone(),
            base,
        },
        done.clone(),
    ));

    // Dispatch runs as a task on a worker, so the journeys it spawns go to that
    // worker's local queue and start promptly.
    if let Err(e) = tokio::spawn(dispatch(sh.clone(), sched.clone(), todo, base)).await {
        tracing::error!("dispatcher failed: {e}");
    }
    done.cancel();
    let gauge_max = mon.await.unwrap_or_default();
    if let Some(h) = prom_task {
        h.abort();
    }

    // Final results.
    let aborted = lock(&sh.abort_reason).clone();
    let now = Instant::now();
    let breakers = lock(&sh.breakers).report(now);
    let rec = lock(&sh.rec).clone();
    let th_results: Vec<ThresholdResult> = thresholds
        .iter()
        .map(|t| t.evaluate(&rec as &dyn MetricView, rec.finished()))
        .collect();
    let mut summary = Summary::from_recorder(&rec);
    summary.criteria = criteria(&sh.cfg, &rec, &th_results, &thresholds, &breakers, &aborted);
    summary.verdict = if summary.criteria.iter().all(|c| c.pass) {
        "pass"
    } else {
        "fail"
    }
    .into();
    let (u, s, d) = sh.cfg.scaled_phases();
    let details = Details {
        run_id: run_id.clone(),
        profile: sh.cfg.profile.clone(),
        started_at: started_at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        aborted: aborted.clone(),
        resumed,
        schedule: ScheduleInfo {
            duration_s: u + s + d,
            ramp_up_s: u,
            sustain_s: s,
            ramp_down_s: d,
            peak_rate_per_s: sched.curve.peak,
            time_scale: sh.cfg.time_scale,
            arrival: format!("{:?}", sh.cfg.arrival).to_lowercase(),
            max_concurrent_users: sh.cfg.max_concurrent_users,
        },
        arrived: rec.arrived,
        shed: rec.shed,
        cancelled: rec.cancelled,
        not_arrived: rec.planned.saturating_sub(rec.arrived),
        thresholds: th_results,
        breakers,
        schedule_lag_ms: e2e_of(&rec.schedule_lag),
        queue_wait_ms: e2e_of(&rec.queue_wait),
        e2e_failed_ms: rec
            .e2e_failed
            .iter()
            .map(|(k, h)| (k.clone(), e2e_of(h)))
            .collect(),
        errors: rec.errors.clone(),
        gauge_max: gauge_max.clone(),
        metrics: load_metrics(&rec, &gauge_max),
    };
    let hl = out.join("histograms.hlog");
    let _ = std::fs::remove_file(&hl);
    let end_s = now.saturating_duration_since(t0);
    append_hlog(&hl, Duration::ZERO, end_s, &tagged_histograms(&rec)).map_err(io_err(&hl))?;
    write_json(&out, "summary.json", &summary).map_err(io_err(&out))?;
    write_json(&out, "details.json", &details).map_err(io_err(&out))?;
    let status = match &aborted {
        None => "completed",
        Some(a) if a.starts_with("interrupted") => "interrupted",
        Some(_) => "aborted",
    };
    write_json(&out, "run.json", &run_json(status, &aborted)).map_err(io_err(&out))?;
    // Close the events file (flushes everything still queued).
    if let Some(h) = ctrl_c {
        h.abort();
        let _ = h.await;
    }
    match Arc::try_unwrap(sh) {
        Ok(sh) => {
            let mut ev = sh.events;
            ev.close().map_err(io_err(&events_path))?;
        }
        Err(_) => tracing::debug!("events writer still shared; it flushes when dropped"),
    }
    // report.html, and the bottleneck/capacity analysis added to summary.json.
    if let Err(e) = crate::report::write_report(&out, &crate::report::ReportOptions::default()) {
        tracing::warn!("cannot write report.html: {e}");
    }
    Ok(RunOutcome {
        summary,
        details,
        out_dir: out,
        aborted,
        metrics_addr: prom_addr,
    })
}
