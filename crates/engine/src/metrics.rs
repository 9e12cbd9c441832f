//! HDR measurement of a run: end-to-end latency from the *intended* start,
//! per-step service times, with successes and each failure class kept apart,
//! counters of arrivals/delays/drops, transactions, and per-interval state.
//!
//! All latencies are recorded in microseconds in auto-resizing HDR histograms
//! with 3 significant digits (relative error ≤ 0.1 %).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::flow::{FlowResult, TxSample};
use crate::threshold::{Agg, MetricView, metric as m};

/// The `step` of an error class charged to arrivals that never started.
pub const DROPPED_STEP: &str = "(not started)";

/// Why an arrival never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropCause {
    /// It waited `maxQueueWaitSecs` for a concurrency slot.
    QueueTimeout,
    /// The circuit breaker of `component` was open.
    Shed { component: String },
}

impl DropCause {
    /// The error class written to results: `queue_timeout` or `breaker(<component>)`.
    pub fn class(&self) -> String {
        match self {
            DropCause::QueueTimeout => "queue_timeout".into(),
            DropCause::Shed { component } => format!("breaker({component})"),
        }
    }

    /// The cause a journal line's class records (the inverse of [`DropCause::class`]).
    pub fn from_class(class: &str) -> DropCause {
        match class
            .strip_prefix("breaker(")
            .and_then(|c| c.strip_suffix(')'))
        {
            Some(component) => DropCause::Shed {
                component: component.to_string(),
            },
            None => DropCause::QueueTimeout,
        }
    }
}

/// Significant digits of every histogram.
pub const SIGFIG: u8 = 3;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Hist(pub Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(Histogram::new(SIGFIG).expect("3 significant digits is valid"))
    }
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        // `record` grows the auto-resizing histogram; `saturating_record` would clamp.
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Percentile `q` (0–100) in milliseconds, `None` when empty.
    pub fn pct_ms(&self, q: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_percentile(q) as f64 / 1000.0)
    }
    pub fn max_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.max() as f64 / 1000.0)
    }
    pub fn min_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.min() as f64 / 1000.0)
    }
    pub fn mean_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.mean() / 1000.0)
    }
    fn agg_ms(&self, agg: Agg) -> Option<f64> {
        match agg {
            Agg::Percentile(q) => self.pct_ms(q),
            Agg::Max => self.max_ms(),
            Agg::Min => self.min_ms(),
            Agg::Avg => self.mean_ms(),
            Agg::Count | Agg::Rate => None,
        }
    }
}

/// Per-step measurements.
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    /// Service times of successful samples.
    pub ok: Hist,
    /// Service times of failed samples, by error class.
    pub failed: BTreeMap<String, Hist>,
    pub count: u64,
    pub errors: u64,
}

/// Per transaction kind.
#[derive(Debug, Clone, Default)]
pub struct TxStats {
    pub count: u64,
    pub gas_total: u128,
    pub fee_wei_total: u128,
    pub confirm: Hist,
}

/// Per-interval accumulators, reset at each snapshot.
#[derive(Debug, Clone, Default)]
pub struct IntervalStats {
    pub arrivals: u64,
    pub completions: u64,
    pub failures: u64,
    pub e2e: Hist,
    pub errors: BTreeMap<String, u64>,
    pub txs: u64,
}

/// One of the flow's named per-journey counts ([`FlowResult::counts`]),
/// summed over the successful and the failed journeys apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountStats {
    pub successful_total: u64,
    pub successful_max: u64,
    pub failed_total: u64,
}

impl CountStats {
    /// Adds another recorder's sums (shards being merged).
    pub fn add(&mut self, other: &CountStats) {
        self.successful_total += other.successful_total;
        self.successful_max = self.successful_max.max(other.successful_max);
        self.failed_total += other.failed_total;
    }
}

/// First/last seen and a sample message of an error class.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorInfo {
    pub count: u64,
    pub first_s: f64,
    pub last_s: f64,
    pub step: String,
    pub sample: String,
}

/// Everything measured so far. Times `*_s` are seconds since the schedule start.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub planned: u64,
    pub arrived: u64,
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub delayed: u64,
    pub dropped: u64,
    /// Arrivals refused because a circuit breaker was open (included in `dropped`).
    pub shed: u64,
    /// Journeys cancelled by an abort (neither succeeded nor failed).
    pub cancelled: u64,
    pub in_flight: u64,
    /// E2E latency (intended start → end) of successful journeys.
    pub e2e_ok: Hist,
    /// E2E latency of failed journeys, by class.
    pub e2e_failed: BTreeMap<String, Hist>,
    /// Wait for a concurrency slot (actual start − intended start).
    pub queue_wait: Hist,
    /// Dispatch lag of the scheduler (task start − intended start), before any slot wait.
    pub schedule_lag: Hist,
    pub steps: BTreeMap<String, StepStats>,
    /// Failures by class: failed journeys, dropped and shed arrivals.
    pub errors: BTreeMap<String, ErrorInfo>,
    /// Failed journeys by the step that failed them.
    pub failures_by_step: BTreeMap<String, u64>,
    pub txs: BTreeMap<String, TxStats>,
    /// The flow's named per-journey counts.
    pub counts: BTreeMap<String, CountStats>,
    /// Submission → receipt of every transaction, all kinds together (`tx_confirm`).
    pub tx_confirm: Hist,
    /// Step name → the component it exercises (for `component.<name>`
    /// thresholds); set by the run from the resolved steps.
    pub components: BTreeMap<String, String>,
    pub tx_per_block: BTreeMap<u64, u64>,
    pub interval: IntervalStats,
    pub peak_completions_per_s: f64,
    pub first_arrival_s: Option<f64>,
    pub last_completion_s: Option<f64>,
}

impl Recorder {
    pub fn new(planned: u64) -> Recorder {
        Recorder {
            planned,
            ..Default::default()
        }
    }

    pub fn arrival(&mut self, at_s: f64, lag: Duration) {
        self.arrived += 1;
        self.interval.arrivals += 1;
        self.schedule_lag.record(lag);
        self.first_arrival_s.get_or_insert(at_s);
    }

    pub fn start(&mut self, wait: Duration) {
        self.started += 1;
        self.in_flight += 1;
        self.queue_wait.record(wait);
    }

    /// Records a finished journey; `e2e` runs from the intended start.
    pub fn finish(&mut self, at_s: f64, e2e: Duration, r: &FlowResult) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.last_completion_s = Some(self.last_completion_s.map_or(at_s, |l| l.max(at_s)));
        for s in &r.steps {
            let st = self.steps.entry(s.name.to_string()).or_default();
            st.count += 1;
            if s.ok {
                st.ok.record(s.duration);
            } else {
                st.errors += 1;
                let class = s.error_class.clone().unwrap_or_else(|| "unknown".into());
                st.failed.entry(class).or_default().record(s.duration);
            }
        }
        for t in &r.txs {
            self.record_tx(t);
        }
        for (name, &n) in &r.counts {
            let c = self.counts.entry(name.to_string()).or_default();
            if r.error.is_none() {
                c.successful_total += n;
                c.successful_max = c.successful_max.max(n);
            } else {
                c.failed_total += n;
            }
        }
        match &r.error {
            None => {
                self.succeeded += 1;
                self.interval.completions += 1;
                self.e2e_ok.record(e2e);
                self.interval.e2e.record(e2e);
            }
            Some(err) => {
                self.failed += 1;
                *self
                    .failures_by_step
                    .entry(err.step.to_string())
                    .or_default() += 1;
                self.failure(at_s, e2e, &err.class, err.step, &err.message);
            }
        }
    }

    /// Records an arrival that never started: a failure of its cause's class,
    /// with the latency it waited.
    pub fn dropped(&mut self, at_s: f64, waited: Duration, cause: &DropCause, message: &str) {
        self.dropped += 1;
        if matches!(cause, DropCause::Shed { .. }) {
            self.shed += 1;
        }
        self.failure(at_s, waited, &cause.class(), DROPPED_STEP, message);
    }

    /// One failure of `class`, counted once.
    fn failure(&mut self, at_s: f64, e2e: Duration, class: &str, step: &str, message: &str) {
        self.interval.failures += 1;
        self.e2e_failed
            .entry(class.to_string())
            .or_default()
            .record(e2e);
        *self.interval.errors.entry(class.to_string()).or_default() += 1;
        let info = self
            .errors
            .entry(class.to_string())
            .or_insert_with(|| ErrorInfo {
                count: 0,
                first_s: at_s,
                last_s: at_s,
                step: step.to_string(),
                sample: truncate(message, 300),
            });
        info.count += 1;
        info.last_s = at_s;
    }

    fn record_tx(&mut self, t: &TxSample) {
        let s = self.txs.entry(t.kind.to_string()).or_default();
        s.count += 1;
        s.gas_total += t.gas_used as u128;
        s.fee_wei_total += t.fee_wei;
        s.confirm.record(t.confirm);
        self.tx_confirm.record(t.confirm);
        *self.tx_per_block.entry(t.block).or_default() += 1;
        self.interval.txs += 1;
    }

    /// A user cancelled by an abort: `started` when it held a slot (in flight),
    /// otherwise it was still queued.
    pub fn cancelled(&mut self, started: bool) {
        if started {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.cancelled += 1;
    }

    /// Records which component each step exercises: `(step, component)` pairs.
    pub fn set_components<'a>(&mut self, steps: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.components = steps
            .into_iter()
            .map(|(s, c)| (s.to_string(), c.to_string()))
            .collect();
    }

    /// The steps of `component`, as recorded so far.
    fn steps_of<'a>(&'a self, component: &'a str) -> impl Iterator<Item = &'a StepStats> + 'a {
        self.steps
            .iter()
            .filter(move |(name, _)| {
                self.components.get(name.as_str()).map(String::as_str) == Some(component)
            })
            .map(|(_, s)| s)
    }

    pub fn tx_count(&self) -> u64 {
        self.txs.values().map(|t| t.count).sum()
    }

    /// Error counts by class.
    pub fn error_counts(&self) -> BTreeMap<String, u64> {
        self.errors
            .iter()
            .map(|(k, v)| (k.clone(), v.count))
            .collect()
    }

    /// Seconds of the load phases: first arrival → last completion.
    pub fn load_seconds(&self) -> Option<f64> {
        match (self.first_arrival_s, self.last_completion_s) {
            (Some(a), Some(b)) if b > a => Some(b - a),
            _ => None,
        }
    }

    /// Takes and resets the interval accumulators.
    pub fn take_interval(&mut self) -> IntervalStats {
        std::mem::take(&mut self.interval)
    }

    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Users that arrived and ended: finished, dropped or cancelled.
    pub fn ended(&self) -> u64 {
        self.finished() + self.dropped + self.cancelled
    }

    /// (failed + dropped + cancelled) ÷ arrived users that ended.
    pub fn error_rate(&self) -> Option<f64> {
        let bad = self.failed + self.dropped + self.cancelled;
        let all = self.ended();
        (all > 0).then(|| bad as f64 / all as f64)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    format!("{}…", &s[..i])
}

/// Answers exactly the [`crate::threshold::ENGINE_METRICS`] (by their names in
/// [`crate::threshold::metric`]), `component.<name>` (every step of that
/// component together: their successful samples pooled, their counts summed)
/// and, for any other name, the step of that name.
impl MetricView for Recorder {
    fn latency(&self, metric: &str, agg: Agg) -> Option<f64> {
        if let Some(c) = metric.strip_prefix(m::COMPONENT_PREFIX) {
            let mut pooled = Hist::default();
            for s in self.steps_of(c) {
                // Both histograms auto-resize, so adding cannot fail on range.
                let _ = pooled.0.add(&s.ok.0);
            }
            return pooled.agg_ms(agg);
        }
        match metric {
            m::E2E => self.e2e_ok.agg_ms(agg),
            m::QUEUE_WAIT => self.queue_wait.agg_ms(agg),
            m::SCHEDULE_LAG => self.schedule_lag.agg_ms(agg),
            m::TX_CONFIRM => self.tx_confirm.agg_ms(agg),
            step => self.steps.get(step).and_then(|s| s.ok.agg_ms(agg)),
        }
    }
    fn count(&self, metric: &str) -> Option<f64> {
        if let Some(c) = metric.strip_prefix(m::COMPONENT_PREFIX) {
            let mut steps = self.steps_of(c).peekable();
            steps.peek()?;
            return Some(steps.map(|s| s.count as f64).sum());
        }
        Some(match metric {
            m::E2E | m::SUCCESS | m::SUCCEEDED => self.succeeded as f64,
            m::ERRORS => (self.failed + self.dropped + self.cancelled) as f64,
            m::FAILED => self.failed as f64,
            m::DROPPED => self.dropped as f64,
            m::DELAYED => self.delayed as f64,
            m::STARTED => self.started as f64,
            m::TXS => self.tx_count() as f64,
            m::TX_CONFIRM => self.tx_confirm.len() as f64,
            step => self.steps.get(step).map(|s| s.count as f64)?,
        })
    }
    fn rate(&self, metric: &str) -> Option<f64> {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        if let Some(c) = metric.strip_prefix(m::COMPONENT_PREFIX) {
            let (errors, count) = self
                .steps_of(c)
                .fold((0, 0), |(e, n), s| (e + s.errors, n + s.count));
            return ratio(errors, count);
        }
        match metric {
            m::ERRORS => self.error_rate(),
            m::FAILED => ratio(self.failed, self.finished()),
            m::SUCCESS | m::SUCCEEDED | m::E2E => ratio(self.succeeded, self.finished()),
            m::DROPPED => ratio(self.dropped, self.arrived),
            m::DELAYED => ratio(self.delayed, self.arrived),
            step => self.steps.get(step).and_then(|s| ratio(s.errors, s.count)),
        }
    }
}

/// One row of the time series (`timeseries.jsonl`), taken every `metricsInterval`.
/// The report reads it back with the same type; fields missing from an older
/// or partial file take their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Snapshot {
    /// Seconds since the schedule start.
    pub t_s: f64,
    pub phase: String,
    /// Arrivals the schedule intended by now (cumulative).
    pub planned_arrivals: u64,
    /// Arrivals dispatched by now (cumulative).
    pub arrivals: u64,
    pub started: u64,
    pub in_flight: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub delayed: u64,
    pub dropped: u64,
    /// Successful completions per second over this interval.
    pub completions_per_s: f64,
    pub arrivals_per_s: f64,
    pub interval_failures: u64,
    pub tx_per_s: f64,
    /// E2E percentiles of the journeys that completed in this interval.
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    /// Failures in this interval, by class.
    pub errors: BTreeMap<String, u64>,
    /// Cumulative per-step p50/p95 (ms) of successful samples.
    pub steps: BTreeMap<String, StepPoint>,
    pub schedule_lag_p99_ms: Option<f64>,
    /// Components whose circuit breaker is open.
    pub breakers_open: Vec<String>,
    /// Scraped gauges: source → metric (with labels) → value.
    pub gauges: BTreeMap<String, BTreeMap<String, f64>>,
    /// The host's CPU and the watched processes' CPU and RSS ([`crate::sysmon::SysMon`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<crate::sysmon::SystemSample>,
    /// The flow's JSON-RPC calls so far, by outcome (when it counts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc: Option<crate::schema::RpcCounts>,
    /// Alerts firing at this moment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<crate::schema::AlertName>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StepPoint {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub errors: u64,
}

impl Recorder {
    /// Builds a snapshot of the `interval_s` seconds just ended and resets the
    /// interval accumulators. `nominal_s` is the configured metrics interval: an
    /// interval shorter than half of it (the last one of a run, cut short) is
    /// reported but does not count toward `peak_completions_per_s`.
    pub fn snapshot(
        &mut self,
        t_s: f64,
        interval_s: f64,
        nominal_s: f64,
        phase: &str,
        planned: u64,
    ) -> Snapshot {
        let iv = self.take_interval();
        let per_s = |n: u64| {
            if interval_s > 0.0 {
                n as f64 / interval_s
            } else {
                0.0
            }
        };
        let cps = per_s(iv.completions);
        if interval_s >= 0.5 * nominal_s && cps > self.peak_completions_per_s {
            self.peak_completions_per_s = cps;
        }
        Snapshot {
            t_s,
            phase: phase.to_string(),
            planned_arrivals: planned,
            arrivals: self.arrived,
            started: self.started,
            in_flight: self.in_flight,
            succeeded: self.succeeded,
            failed: self.failed,
            delayed: self.delayed,
            dropped: self.dropped,
            completions_per_s: cps,
            arrivals_per_s: per_s(iv.arrivals),
            interval_failures: iv.failures,
            tx_per_s: per_s(iv.txs),
            e2e_p50_ms: iv.e2e.pct_ms(50.0),
            e2e_p95_ms: iv.e2e.pct_ms(95.0),
            e2e_p99_ms: iv.e2e.pct_ms(99.0),
            errors: iv.errors,
            steps: self
                .steps
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        StepPoint {
                            p50_ms: s.ok.pct_ms(50.0),
                            p95_ms: s.ok.pct_ms(95.0),
                            errors: s.errors,
                        },
                    )
                })
                .collect(),
            schedule_lag_p99_ms: self.schedule_lag.pct_ms(99.0),
            breakers_open: Vec::new(),
            gauges: BTreeMap::new(),
            system: None,
            rpc: None,
            alerts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(r: &mut Recorder, n: usize) {
        for _ in 0..n {
            r.finish(1.0, Duration::from_millis(100), &FlowResult::default());
        }
    }

    /// The recorder answers every engine metric with exactly the aggregations
    /// `ENGINE_METRICS` lists for it, so a checked threshold always has data.
    #[test]
    fn metric_view_answers_the_engine_metrics_as_listed() {
        use crate::flow::TxSample;
        use crate::threshold::ENGINE_METRICS;
        let mut r = Recorder::new(4);
        for _ in 0..2 {
            r.arrival(0.1, Duration::from_millis(2));
            r.start(Duration::from_millis(3));
        }
        r.delayed = 1;
        r.dropped = 1;
        let mut ok = FlowResult::default();
        ok.txs.push(TxSample {
            kind: "register",
            gas_used: 21_000,
            fee_wei: 1,
            confirm: Duration::from_secs(1),
            block: 7,
        });
        r.finish(1.0, Duration::from_millis(100), &ok);
        for e in ENGINE_METRICS {
            let n = e.name;
            assert_eq!(
                r.latency(n, Agg::Max).is_some(),
                e.latency,
                "latency of {n}"
            );
            assert_eq!(r.count(n).is_some(), e.count, "count of {n}");
            assert_eq!(r.rate(n).is_some(), e.rate, "rate of {n}");
        }
    }

    /// The last interval of a run is cut short: 3 completions in 0.2 s are not a
    /// peak of 15/s when full 1 s intervals saw 10/s.
    #[test]
    fn a_short_final_interval_does_not_set_the_peak() {
        let mut r = Recorder::new(20);
        complete(&mut r, 10);
        let s = r.snapshot(1.0, 1.0, 1.0, "sustain", 10);
        assert_eq!(s.completions_per_s, 10.0);
        complete(&mut r, 3);
        let s = r.snapshot(1.2, 0.2, 1.0, "done", 13);
        // The interval's own rate is still reported as measured.
        assert_eq!(s.completions_per_s, 15.0);
        assert_eq!(r.peak_completions_per_s, 10.0);
        // Half the nominal length is enough.
        complete(&mut r, 6);
        r.snapshot(1.7, 0.5, 1.0, "done", 13);
        assert_eq!(r.peak_completions_per_s, 12.0);
    }
}
