//! The run's monitor: a tick every second (live view, aborting thresholds,
//! the flow's RPC counts, the plan's alerts, Prometheus gauges) and a
//! snapshot every metrics interval (`timeseries.jsonl` with the scraped
//! service gauges and the system load, `intervals.hlog`).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Shared, lock};
use crate::alert::{AlertInputs, AlertWatch};
use crate::flow::Flow;
use crate::live::{LiveMode, LiveState, LiveView};
use crate::metrics::Snapshot;
use crate::prom::{GaugeSource, scrape_all};
use crate::results::{LineWriter, append_hlog};
use crate::schedule::Schedule;
use crate::schema::{AbortReason, AlertEvent, AlertName, AlertSummary, Event, RpcCounts};
use crate::sysmon::SysMon;
use crate::threshold::{MetricView, Threshold};

/// The live completion rate is taken over this much time (a shorter window
/// shows 0/s and 1/s alternately at one journey a second).
const RATE_WINDOW: Duration = Duration::from_secs(10);

pub(super) struct MonitorCtx {
    pub out: PathBuf,
    pub sources: Vec<GaugeSource>,
    pub processes: Vec<(String, u32)>,
    pub live: LiveMode,
    pub thresholds: Vec<Threshold>,
    /// Alerts an interrupted run fired before it was resumed.
    pub past_alerts: Vec<AlertEvent>,
}

/// What the monitor hands back when the run ends.
#[derive(Debug, Default)]
pub(super) struct MonitorOut {
    /// Highest value seen of each scraped gauge (`source.metric`).
    pub gauge_max: BTreeMap<String, f64>,
    /// How often each alert fired.
    pub alerts: BTreeMap<AlertName, AlertSummary>,
    /// The flow's JSON-RPC calls at the end, if it counts them.
    pub rpc: Option<RpcCounts>,
}

/// Successful completions per second over a sliding window.
#[derive(Default)]
struct CompletionRate {
    samples: VecDeque<(Instant, u64)>,
}

impl CompletionRate {
    fn update(&mut self, now: Instant, succeeded: u64) -> f64 {
        self.samples.push_back((now, succeeded));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some(&(t, n)) if now > t => (succeeded - n) as f64 / (now - t).as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// The live view's state from the recorder.
fn live_state<F: Flow>(sh: &Shared<F>, sched: &Schedule, t: f64, cps: f64) -> LiveState {
    let r = lock(&sh.rec);
    let open = lock(&sh.breakers).open_components(Instant::now());
    let dur = sched.curve.duration();
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
        phase: sched.curve.phase(t).name().to_string(),
        elapsed_s: t,
        schedule_s: dur,
        planned: r.planned,
        planned_arrivals: sh.planned_by(sched, t),
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
        // The flow's steps in journey order.
        steps: sh
            .steps
            .iter()
            .filter_map(|st| {
                r.steps.get(&st.name).map(|s| {
                    (
                        st.name.clone(),
                        s.ok.pct_ms(50.0),
                        s.ok.pct_ms(95.0),
                        s.errors,
                    )
                })
            })
            .collect(),
        errors,
        breakers_open: open,
        alerts: Vec::new(),
        rpc: None,
        eta_s: eta,
    }
}

/// Aborts the run when a threshold marked `abortOnFail` fails (once a few journeys finished).
fn check_aborting<F: Flow>(sh: &Shared<F>, thresholds: &[Threshold]) {
    let aborters: Vec<&Threshold> = thresholds.iter().filter(|t| t.abort_on_fail).collect();
    if aborters.is_empty() {
        return;
    }
    let r = lock(&sh.rec);
    if r.finished() < 10 {
        return;
    }
    let failing = aborters
        .iter()
        .map(|th| th.evaluate(&*r as &dyn MetricView, r.finished()))
        .find(|res| !res.pass);
    drop(r);
    if let Some(f) = failing {
        sh.abort(AbortReason::Threshold {
            expr: f.expr,
            actual: f.actual,
        });
    }
}

/// Checks the plan's alerts at this tick: writes an event for each that
/// starts firing and updates the Prometheus alert metrics.
fn check_alerts<F: Flow>(
    sh: &Shared<F>,
    watch: &mut AlertWatch,
    now: Instant,
    rpc: Option<RpcCounts>,
    gauges: Option<&BTreeMap<String, BTreeMap<String, f64>>>,
) -> Vec<AlertEvent> {
    let fired = {
        let r = lock(&sh.rec);
        watch.check(
            now,
            &AlertInputs {
                t_s: sh.secs_since_t0(now),
                timestamp: sh.now_ms(),
                ended: r.ended(),
                bad: r.failed + r.dropped + r.cancelled,
                e2e_ok: &r.e2e_ok,
                rpc,
                gauges,
            },
        )
    };
    for ev in &fired {
        sh.events.send(Event::Alert(ev.clone()));
    }
    sh.prom.set_alerts(&watch.firing_names(), &fired);
    fired
}

/// Ticks every second and snapshots every metrics interval; returns the
/// highest value seen of each scraped gauge, the alerts and the RPC counts.
pub(super) async fn monitor<F: Flow>(
    sh: Arc<Shared<F>>,
    sched: Arc<Schedule>,
    ctx: MonitorCtx,
    done: CancellationToken,
) -> MonitorOut {
    let mut live = LiveView::start(ctx.live);
    let client = reqwest::Client::new();
    let mut sysmon = SysMon::new(ctx.processes.clone());
    // The baseline for the first snapshot's CPU shares (else it has none).
    let _ = sysmon.sample();
    let interval = sh.cfg.metrics_interval();
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(interval));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut last_snap = start;
    // Snapshots fall on the grid t0 + k·interval, so the shards of a run (and
    // a resumed run) share one grid however late they start.
    let mut next_snap = sh.t0 + interval;
    while next_snap <= start {
        next_snap += interval;
    }
    let mut gauge_max = BTreeMap::new();
    let mut rate = CompletionRate::default();
    let mut watch = AlertWatch::new(sh.cfg.alerts);
    watch.carry(&ctx.past_alerts);
    let mut last_rpc = RpcCounts::default();
    let mut rpc = None;
    let ts = match LineWriter::<Snapshot>::open(&ctx.out.join("timeseries.jsonl")) {
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
        let cps = rate.update(now, lock(&sh.rec).succeeded);
        if !finished {
            check_aborting(&sh, &ctx.thresholds);
        }
        let snap_due = now >= next_snap || finished;
        let scraped = match (snap_due, ctx.sources.is_empty()) {
            (false, _) => None,
            (true, true) => Some(BTreeMap::new()),
            (true, false) => Some(scrape_all(&client, &ctx.sources).await),
        };
        rpc = sh.flow.rpc().or(rpc);
        if let Some(now_rpc) = &rpc {
            sh.prom.add_rpc(now_rpc, &last_rpc);
            last_rpc = *now_rpc;
        }
        for ev in check_alerts(&sh, &mut watch, now, rpc, scraped.as_ref()) {
            live.alert(&ev);
        }
        let mut state = live_state(&sh, &sched, t, cps);
        state.rpc = rpc;
        state.alerts = watch
            .firing()
            .iter()
            .map(|(name, v)| name.describe(*v, watch.limits().limit(*name)))
            .collect();
        live.tick(&state);
        sh.prom.planned_arrivals.set(state.planned_arrivals as i64);
        sh.prom.breakers_open.set(state.breakers_open.len() as i64);
        if let Some(p99) = lock(&sh.rec).schedule_lag.pct_ms(99.0) {
            sh.prom.schedule_lag_p99.set(p99 / 1000.0);
        }
        if let Some(gauges) = scraped {
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
                    interval.as_secs_f64(),
                    state.phase.as_str(),
                    state.planned_arrivals,
                );
                s.breakers_open = state.breakers_open.clone();
                s.gauges = gauges;
                s.rpc = rpc;
                s.alerts = watch.firing_names().into_iter().collect();
                (s, e2e_iv)
            };
            let mut snap = snap;
            snap.system = Some(sysmon.sample());
            if let Some(w) = &ts {
                w.send(snap);
            }
            // The journal reaches the disk once per interval: a crash loses
            // at most the events of the last one (see `results`).
            sh.events.sync();
            let from = last_snap.saturating_duration_since(sh.t0);
            if let Err(e) = append_hlog(
                &ctx.out.join("intervals.hlog"),
                from,
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
    MonitorOut {
        gauge_max,
        alerts: watch.summary(),
        rpc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_live_rate_at_one_journey_a_second_reads_one() {
        let mut rate = CompletionRate::default();
        let mut shown = Vec::new();
        for s in 0..30u64 {
            // One completion every second, sampled every second.
            shown.push(rate.update(Instant::now(), s));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        for r in &shown[11..] {
            assert!((r - 1.0).abs() < 1e-9, "{shown:?}");
        }
    }
}
