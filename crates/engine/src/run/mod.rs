//! `engine::run`: drives a [`Flow`] on the open arrival schedule, measures it,
//! judges it and writes the results directory.
//!
//! The jobs, one file each:
//! - [`dispatch`]: every arrival on its absolute deadline (`sleep_until(t0 +
//!   offset)`, so dispatch never drifts), then the drain;
//! - [`user`]: one user's task — slot wait (FIFO, *delayed*; after
//!   `maxQueueWaitSecs` *dropped*), the journey under the journey timeout, and
//!   its measurement from the intended start;
//! - [`monitor`]: the once-a-second tick (live view, aborting thresholds) and
//!   the snapshot every metrics interval (time series, gauges, system load);
//! - [`verdict`]: criteria, verdict and the typed summary and details.
//!
//! This file wires them: it resolves the flow's steps against the config,
//! opens the results directory, handles SIGINT/SIGTERM, and at the end writes
//! every file once.

mod dispatch;
mod monitor;
mod user;
mod verdict;

pub use verdict::summarize;
pub(crate) use verdict::{Inputs as JudgeInputs, judge};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::breaker::Breakers;
use crate::config::{ConfigError, LoadTestConfig, ResolvedStep};
use crate::flow::Flow;
use crate::journal;
use crate::live::LiveMode;
use crate::metrics::Recorder;
use crate::prom::{GaugeSource, PromMetrics};
use crate::results::{self, LineWriter, append_hlog, tagged_histograms, write_json};
use crate::schedule::Schedule;
use crate::schema::{
    AbortReason, Details, Event, RunInfo, RunStatus, SCHEMA_VERSION, Summary, TargetInfo, TwinInfo,
};
use crate::shard::{Shard, ShardError, ShardInfo};
use crate::threshold::Threshold;

/// How to run (everything that is not the load profile itself).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory; default `runs/<UTC timestamp>`.
    pub out_dir: Option<PathBuf>,
    /// Serve the engine's Prometheus metrics here (`--metrics-addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// Services whose `/metrics` gauges are scraped into the time series each interval.
    pub gauge_sources: Vec<GaugeSource>,
    /// Other processes whose CPU and memory are recorded (name, pid), e.g. anvil.
    pub processes: Vec<(String, u32)>,
    pub live: LiveMode,
    /// Run identifier (the `test_id` prefix); default derived from the time.
    pub run_id: Option<String>,
    /// Continue the interrupted run in `out_dir`: users the journal shows
    /// finished or dropped are skipped and their measurements carried over.
    pub resume: bool,
    /// Treat SIGINT and SIGTERM as an abort (results are still written).
    pub handle_signals: bool,
    /// What the run is aimed at (recorded in `run.json` and the report).
    pub target: TargetInfo,
    /// The local twin's settings, when the target is one.
    pub twin: Option<TwinInfo>,
    /// Versions of the parts of the run besides the engine (e.g. `anvil`).
    pub versions: BTreeMap<String, String>,
    /// Run only this shard of the schedule ([`crate::shard`]).
    pub shard: Option<Shard>,
    /// Start the schedule at this instant (wait for it; a late start is
    /// charged to the users it delays). Shards of one run share it.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A run that could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("results directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "results directory {0} already holds a run (events.jsonl); choose another --out or resume it"
    )]
    NotEmpty(PathBuf),
    #[error("preparing the users before the clock: {0}")]
    Prepare(#[source] crate::flow::PrepareError),
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
    pub run: RunInfo,
    pub summary: Summary,
    pub details: Details,
    pub out_dir: PathBuf,
    /// Why the run stopped early, if it did.
    pub aborted: Option<AbortReason>,
    /// Where the Prometheus endpoint listened, if enabled.
    pub metrics_addr: Option<SocketAddr>,
}

impl RunOutcome {
    /// 0 pass, 1 fail or inconclusive.
    pub fn exit_code(&self) -> u8 {
        self.summary.verdict.exit_code()
    }

    /// The end-of-run summary ([`crate::report::text`]): verdict, criteria
    /// and thresholds with ✓/✗, the step table, the bottleneck and where the
    /// results are. `color` adds ANSI styles (only for a terminal).
    pub fn text_summary(&self, color: bool) -> String {
        let data = crate::report::RunData::from_parts(
            &self.out_dir,
            self.summary.clone(),
            self.details.clone(),
            self.run.clone(),
        );
        crate::report::text::render(&data, color)
    }
}

/// What every part of a running test shares.
struct Shared<F> {
    flow: Arc<F>,
    cfg: LoadTestConfig,
    steps: Vec<ResolvedStep>,
    journey_timeout: Duration,
    run_id: String,
    /// The schedule's time zero (for a resumed run, back-dated to the original).
    t0: Instant,
    wall0_ms: i64,
    rec: Mutex<Recorder>,
    breakers: Mutex<Breakers>,
    events: LineWriter<Event>,
    prom: PromMetrics,
    sem: Arc<Semaphore>,
    cancel: CancellationToken,
    abort_reason: Mutex<Option<AbortReason>>,
    shard: Option<Shard>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl<F: Flow> Shared<F> {
    /// Stops the run for `reason` (the first reason wins).
    fn abort(&self, reason: AbortReason) {
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

    fn who(&self, user: u64, wallet: &str, intended: Instant) -> crate::schema::Who {
        crate::schema::Who {
            wallet: wallet.to_string(),
            test_id: format!("{}-{}", self.run_id, user),
            timestamp: self.now_ms(),
            user,
            intended_ms: ms(intended.saturating_duration_since(self.t0)),
        }
    }

    /// The component of a step (the step's own name for one the flow did not declare).
    fn component_of<'a>(&'a self, step: &'a str) -> &'a str {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .map_or(step, |s| s.component.as_str())
    }

    /// Arrivals of this process the schedule intends by `t` (its shard's share).
    fn planned_by(&self, sched: &Schedule, t: f64) -> u64 {
        let m = sched.arrivals_by(t) as u64;
        self.shard.map_or(m, |s| s.count_below(m))
    }

    fn is_critical(&self, class: &str) -> bool {
        let list = &self.cfg.critical_error_classes;
        list.is_empty() || list.iter().any(|c| class.starts_with(c.as_str()))
    }
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Waits for SIGINT or SIGTERM and aborts the run with it (the run drains
/// for `abortGraceSecs`, then writes every file). A second signal stops the
/// process at once; `events.jsonl`, flushed as it goes, keeps what was measured.
fn watch_signals<F: Flow>(sh: Arc<Shared<F>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot install SIGINT/SIGTERM handlers");
                return;
            };
            let first = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            eprintln!(
                "{first}: stopping; in-flight journeys get {} s, then the results are written \
                 (send it again to stop at once)",
                sh.cfg.abort_grace_secs
            );
            sh.abort(AbortReason::Signal {
                signal: first.into(),
            });
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!(
                "stopped at once: the summary was not written (events.jsonl holds the journal)"
            );
            std::process::exit(1);
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_ok() {
            sh.abort(AbortReason::Signal {
                signal: "SIGINT".into(),
            });
        }
    })
}

/// Runs the whole load test: schedule, measurement, thresholds, live view,
/// Prometheus, and the results directory. Returns `Err` (exit code 2) only when
/// the run cannot start; a run that starts always writes its results.
pub async fn run<F: Flow>(
    mut config: LoadTestConfig,
    flow: Arc<F>,
    options: RunOptions,
) -> Result<RunOutcome, EngineError> {
    config.validate()?;
    let shard = options.shard;
    let shard_info = match shard {
        Some(s) => {
            s.check(config.total_users, config.max_concurrent_users)?;
            let total_cap = config.max_concurrent_users;
            // This process holds its slice of the cap; config.json records it.
            config.max_concurrent_users = s.cap(total_cap);
            Some(ShardInfo {
                index: s.index,
                count: s.count,
                users: s.count_below(config.total_users),
                max_concurrent_users: config.max_concurrent_users,
                total_max_concurrent_users: total_cap,
            })
        }
        None => None,
    };
    let planned = shard_info.as_ref().map_or(config.total_users, |s| s.users);
    let declared = flow.steps();
    config.validate_for(&declared)?;
    let steps = config.resolve_steps(&declared);
    let journey_timeout = config.journey_timeout(&steps);
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
    let (mut recorder, skip, prev_run_id, past_alerts) = if options.resume && has_events {
        let st = journal::replay(&out, planned).map_err(io_err(&events_path))?;
        let prev: Option<String> = std::fs::read(out.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<RunInfo>(&b).ok())
            .map(|r| r.run_id)
            .filter(|id| !id.is_empty());
        let skip: std::collections::BTreeSet<u64> =
            st.finished.union(&st.dropped).copied().collect();
        (st.recorder, skip, prev, st.alerts)
    } else if has_events {
        return Err(EngineError::NotEmpty(out));
    } else {
        let fresh = Recorder::new(planned);
        (fresh, Default::default(), None, Vec::new())
    };
    recorder.set_components(
        steps
            .iter()
            .map(|s| (s.name.as_str(), s.component.as_str())),
    );
    let resumed = !skip.is_empty();
    let run_id = options
        .run_id
        .clone()
        .or(prev_run_id)
        .unwrap_or_else(|| format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    let started_at = chrono::Utc::now();
    let mut versions = options.versions.clone();
    versions.insert("vana-load".into(), env!("CARGO_PKG_VERSION").into());
    let mut run_info = RunInfo {
        schema_version: SCHEMA_VERSION,
        run_id: run_id.clone(),
        status: RunStatus::Running,
        aborted: None,
        profile: config.profile.clone(),
        target: options.target.clone(),
        time_scale: config.time_scale,
        total_users: config.total_users,
        seed: config.seed,
        arrival: config.arrival,
        resumed,
        started_at: started_at.to_rfc3339(),
        updated_at: started_at.to_rfc3339(),
        versions,
        steps: steps.clone(),
        scope: flow.scope(),
        twin: options.twin.clone(),
        start_at: options.start_at.map(|t| t.to_rfc3339()),
        shard: shard_info,
        ..Default::default()
    };
    let sched = Arc::new(Schedule::from_config(&config));
    let todo: Vec<u64> = match shard {
        Some(s) => s.users(config.total_users).collect(),
        None => (0..config.total_users).collect(),
    };
    let todo: Vec<u64> = todo.into_iter().filter(|u| !skip.contains(u)).collect();
    // What the flow needs before the clock (a component run's earlier steps),
    // for exactly the users this process will run; never measured.
    flow.prepare(&todo).await.map_err(EngineError::Prepare)?;
    write_json(&out, "config.json", &config.redacted_json()).map_err(io_err(&out))?;
    write_json(&out, "run.json", &run_info).map_err(io_err(&out))?;

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

    // A resumed run keeps the original time base: its first remaining user
    // starts now, at that user's offset in the schedule, so replayed and new
    // events share one clock.
    let base = if resumed {
        todo.first().map_or(0.0, |u| sched.offset(*u as usize))
    } else {
        0.0
    };
    let events = LineWriter::open(&events_path).map_err(io_err(&events_path))?;
    let (t0, wall0_ms) = match options.start_at.filter(|_| !resumed) {
        Some(at) => {
            let late = wait_for(at).await;
            run_info.start_lag_ms = Some(ms(late));
            let now = Instant::now();
            (now.checked_sub(late).unwrap_or(now), at.timestamp_millis())
        }
        None => {
            if resumed && options.start_at.is_some() {
                tracing::warn!(
                    "--start-at is ignored on resume: the run keeps its original time base"
                );
            }
            let now = Instant::now();
            let t0 = now
                .checked_sub(Duration::from_secs_f64(base))
                .unwrap_or(now);
            let wall = chrono::Utc::now().timestamp_millis() - (now - t0).as_millis() as i64;
            (t0, wall)
        }
    };
    run_info.schedule_start_ms = Some(wall0_ms);
    let sh = Arc::new(Shared {
        flow,
        sem: Arc::new(Semaphore::new(config.max_concurrent_users as usize)),
        breakers: Mutex::new(Breakers::new(config.breaker)),
        steps,
        journey_timeout,
        cfg: config,
        run_id: run_id.clone(),
        t0,
        wall0_ms,
        rec: Mutex::new(recorder),
        events,
        prom,
        cancel: CancellationToken::new(),
        abort_reason: Mutex::new(None),
        shard,
    });
    let signals = options.handle_signals.then(|| watch_signals(sh.clone()));
    let done = CancellationToken::new();
    let mon = tokio::spawn(monitor::monitor(
        sh.clone(),
        sched.clone(),
        monitor::MonitorCtx {
            out: out.clone(),
            sources: options.gauge_sources.clone(),
            processes: options.processes.clone(),
            live: options.live,
            thresholds: thresholds.clone(),
            past_alerts,
        },
        done.clone(),
    ));

    // Dispatch runs as a task on a worker, so the journeys it spawns go to that
    // worker's local queue and start promptly.
    if let Err(e) = tokio::spawn(dispatch::dispatch(sh.clone(), sched.clone(), todo)).await {
        tracing::error!("dispatcher failed: {e}");
    }
    done.cancel();
    let monitored = mon.await.unwrap_or_default();
    if let Some(h) = prom_task {
        h.abort();
    }
    if let Some(h) = signals {
        h.abort();
        let _ = h.await;
    }

    // Final results: histograms and the events journal first (the analysis reads them).
    let aborted = lock(&sh.abort_reason).clone();
    let now = Instant::now();
    let breakers = lock(&sh.breakers).report(now);
    let rec = lock(&sh.rec).clone();
    let hl = out.join("histograms.hlog");
    let _ = std::fs::remove_file(&hl);
    let end_s = now.saturating_duration_since(t0);
    append_hlog(&hl, Duration::ZERO, end_s, &tagged_histograms(&rec)).map_err(io_err(&hl))?;
    let mut judged = verdict::judge(verdict::Inputs {
        cfg: &sh.cfg,
        steps: &sh.steps,
        rec: &rec,
        thresholds: &thresholds,
        breakers,
        aborted: aborted.clone(),
        sched: &sched,
        gauge_max: monitored.gauge_max,
        run_id: &run_id,
        target: &options.target,
        started_at: &started_at,
        resumed,
    });
    // Reported, never judged: the alerts and RPC counts leave the verdict as it is.
    judged.0.alerts = monitored.alerts;
    judged.0.rpc = monitored.rpc.map(crate::schema::RpcSummary::of);
    let report_config = sh.cfg.redacted();
    match Arc::try_unwrap(sh) {
        Ok(sh) => {
            let mut ev = sh.events;
            ev.close().map_err(io_err(&events_path))?;
        }
        // Every journey task ended in the drain; should one still hold the
        // state, its events flush when it drops.
        Err(_) => tracing::warn!("a journey task outlived the run; its events flush on exit"),
    }
    let run_info = ended(run_info, &aborted);
    finish(out, run_info, report_config, judged, aborted, prom_addr)
}

/// Waits until the wall clock reaches `at`; returns how late it already was
/// (zero when it had to wait).
async fn wait_for(at: chrono::DateTime<chrono::Utc>) -> Duration {
    let ahead = at - chrono::Utc::now();
    match ahead.to_std() {
        Ok(wait) if !wait.is_zero() => {
            tracing::info!(
                "waiting {:.1} s for the start at {}",
                wait.as_secs_f64(),
                at.to_rfc3339()
            );
            tokio::time::sleep(wait).await;
            // The sleep may end a little early or late; what is left is charged.
            (chrono::Utc::now() - at).to_std().unwrap_or_default()
        }
        _ => {
            let late = (-ahead).to_std().unwrap_or_default();
            tracing::warn!(
                "started {:.1} s after --start-at {}: the users due meanwhile start at once, \
                 and their lag is charged to them",
                late.as_secs_f64(),
                at.to_rfc3339()
            );
            late
        }
    }
}

/// `run.json` as the run ended.
fn ended(mut run: RunInfo, aborted: &Option<AbortReason>) -> RunInfo {
    run.status = aborted
        .as_ref()
        .map_or(RunStatus::Completed, |a| a.status());
    run.aborted = aborted.clone();
    run.updated_at = chrono::Utc::now().to_rfc3339();
    run
}

/// Analyses the run (bottleneck, capacity), then writes the CI outputs
/// (`junit.xml`, `steps.csv`, `timeseries.csv`), `details.json`,
/// `summary.json`, `run.json` and `report.html`, each once.
pub(crate) fn finish(
    out: PathBuf,
    run: RunInfo,
    config: LoadTestConfig,
    (mut summary, mut details): (Summary, Details),
    aborted: Option<AbortReason>,
    metrics_addr: Option<SocketAddr>,
) -> Result<RunOutcome, EngineError> {
    match crate::report::RunData::assemble(
        &out,
        summary.clone(),
        details.clone(),
        run.clone(),
        config,
    ) {
        Ok(mut data) => {
            let a = crate::report::analyse(&data, &crate::report::ReportOptions::default());
            summary.bottleneck = Some(a.bottleneck.clone());
            details.capacity = Some(a.capacity.clone());
            data.summary.bottleneck = summary.bottleneck.clone();
            data.details.capacity = details.capacity.clone();
            if let Err(e) = crate::report::write_ci_outputs(&data) {
                tracing::warn!("cannot write the CI outputs: {e}");
            }
            results::write_final(&out, &run, &summary, &details).map_err(io_err(&out))?;
            if let Err(e) = crate::report::write_html(&data, &a) {
                tracing::warn!("cannot write report.html: {e}");
            }
        }
        Err(e) => {
            tracing::warn!("cannot analyse the run for its report: {e}");
            results::write_final(&out, &run, &summary, &details).map_err(io_err(&out))?;
        }
    }
    Ok(RunOutcome {
        run,
        summary,
        details,
        out_dir: out,
        aborted,
        metrics_addr,
    })
}
