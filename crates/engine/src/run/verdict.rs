//! The judgement of a run: criteria, thresholds, the [`Verdict`], and the typed
//! summary and details built from the recorder.
//!
//! The verdict is `fail` when the run did not complete (an abort, a signal) or
//! a criterion failed, and `inconclusive` when the load generator could not
//! keep its own schedule (schedule-lag p99 above `maxScheduleLagMs`): a run
//! that could not offer the planned load says nothing about the network. It is
//! `pass` only when neither holds.

use std::collections::BTreeMap;

use serde_json::json;

use crate::breaker::BreakerReport;
use crate::config::{LoadTestConfig, ResolvedStep};
use crate::metrics::{CountStats, Hist, Recorder};
use crate::schedule::Schedule;
use crate::schema::{
    AbortReason, AiMetrics, BlockchainMetrics, CountSummary, Criterion, Details, E2e,
    EndToEndMetrics, LoadTestMetrics, Rates, SCHEMA_VERSION, ScheduleInfo, ScheduleLag,
    StepSummary, StorageMetrics, Summary, Throughput, TxKindMetrics, Users, Verdict,
};
use crate::threshold::{MetricView, Threshold, ThresholdResult};

/// What the judgement reads.
pub(crate) struct Inputs<'a> {
    pub cfg: &'a LoadTestConfig,
    pub steps: &'a [ResolvedStep],
    pub rec: &'a Recorder,
    pub thresholds: &'a [Threshold],
    pub breakers: Vec<BreakerReport>,
    pub aborted: Option<AbortReason>,
    pub sched: &'a Schedule,
    pub gauge_max: BTreeMap<String, f64>,
    pub run_id: &'a str,
    pub target: &'a crate::schema::TargetInfo,
    pub started_at: &'a chrono::DateTime<chrono::Utc>,
    pub resumed: bool,
}

pub(super) fn e2e_of(h: &Hist) -> E2e {
    E2e {
        p50: h.pct_ms(50.0),
        p95: h.pct_ms(95.0),
        p99: h.pct_ms(99.0),
        max: h.max_ms(),
    }
}

/// The summary (with criteria and verdict) and the details of a run.
pub(crate) fn judge(i: Inputs<'_>) -> (Summary, Details) {
    let r = i.rec;
    let th_results: Vec<ThresholdResult> = i
        .thresholds
        .iter()
        .map(|t| t.evaluate(r as &dyn MetricView, r.finished()))
        .collect();
    let mut summary = summarize(r, i.cfg);
    summary.target = i.target.clone();
    summary.criteria = criteria(i.cfg, r, &th_results, i.thresholds, &i.breakers, &i.aborted);
    let (verdict, reason) = verdict(&summary, i.cfg, r, &i.aborted);
    summary.verdict = verdict;
    summary.verdict_reason = reason;
    let (u, s, d) = i.cfg.scaled_phases();
    let details = Details {
        run_id: i.run_id.to_string(),
        profile: i.cfg.profile.clone(),
        started_at: i.started_at.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        aborted: i.aborted.clone(),
        resumed: i.resumed,
        schedule: ScheduleInfo {
            duration_s: u + s + d,
            ramp_up_s: u,
            sustain_s: s,
            ramp_down_s: d,
            peak_rate_per_s: i.sched.curve.peak,
            time_scale: i.cfg.time_scale,
            arrival: format!("{:?}", i.cfg.arrival).to_lowercase(),
            max_concurrent_users: i.cfg.max_concurrent_users,
        },
        arrived: r.arrived,
        shed: r.shed,
        cancelled: r.cancelled,
        not_arrived: r.planned.saturating_sub(r.arrived),
        thresholds: th_results,
        breakers: i.breakers,
        schedule_lag_ms: e2e_of(&r.schedule_lag),
        queue_wait_ms: e2e_of(&r.queue_wait),
        e2e_failed_ms: r
            .e2e_failed
            .iter()
            .map(|(k, h)| (k.clone(), e2e_of(h)))
            .collect(),
        errors: r.errors.clone(),
        metrics: load_metrics(r, i.steps, &i.gauge_max),
        gauge_max: i.gauge_max,
        capacity: None,
        shards: Vec::new(),
    };
    (summary, details)
}

/// Everything in the summary but the criteria and the verdict (also what a
/// replayed journal rebuilds).
pub fn summarize(r: &Recorder, cfg: &LoadTestConfig) -> Summary {
    let load_s = r.load_seconds();
    let per_s = |n: u64| load_s.map_or(0.0, |s| n as f64 / s);
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let mut step_summaries = BTreeMap::new();
    for (name, s) in &r.steps {
        step_summaries.insert(
            name.clone(),
            StepSummary {
                count: s.count,
                errors: s.errors,
                p50_ms: s.ok.pct_ms(50.0),
                p95_ms: s.ok.pct_ms(95.0),
                p99_ms: s.ok.pct_ms(99.0),
            },
        );
    }
    Summary {
        schema_version: SCHEMA_VERSION,
        users: Users {
            planned: r.planned,
            started: r.started,
            succeeded: r.succeeded,
            failed: r.failed,
            delayed: r.delayed,
            dropped: r.dropped,
            cancelled: r.cancelled,
            not_arrived: r.planned.saturating_sub(r.arrived),
        },
        e2e_ms: e2e_of(&r.e2e_ok),
        e2e_population: format!(
            "the {} successful journeys, from each user's intended start",
            r.succeeded
        ),
        steps: step_summaries,
        errors: r.error_counts(),
        rates: Rates {
            error_rate: r.error_rate(),
            error_rate_of: format!(
                "(failed {} + dropped {} + cancelled {}) ÷ {} users that arrived and ended",
                r.failed,
                r.dropped,
                r.cancelled,
                r.ended()
            ),
            not_succeeded_of_planned: ratio(r.planned.saturating_sub(r.succeeded), r.planned),
        },
        throughput: Throughput {
            flows_per_s: per_s(r.succeeded),
            peak_flows_per_s: r.peak_completions_per_s,
            tx_per_s: per_s(r.tx_count()),
        },
        time_scale: cfg.time_scale,
        target: Default::default(),
        schedule_lag: ScheduleLag {
            p99_ms: r.schedule_lag.pct_ms(99.0),
            bound_ms: cfg.max_schedule_lag_ms,
        },
        criteria: Vec::new(),
        verdict: Verdict::Fail,
        verdict_reason: None,
        bottleneck: None,
        alerts: BTreeMap::new(),
        rpc: None,
        counts: r
            .counts
            .iter()
            .map(|(name, c)| (name.clone(), count_summary(c, r)))
            .collect(),
    }
}

/// A named count over the journeys that finished, successful and failed apart.
fn count_summary(c: &CountStats, r: &Recorder) -> CountSummary {
    let per = |total: u64, n: u64| (n > 0).then(|| total as f64 / n as f64);
    CountSummary {
        successful_journeys: r.succeeded,
        successful_total: c.successful_total,
        per_successful_journey: per(c.successful_total, r.succeeded),
        successful_max: c.successful_max,
        failed_journeys: r.failed,
        failed_total: c.failed_total,
        per_failed_journey: per(c.failed_total, r.failed),
    }
}

fn verdict(
    s: &Summary,
    cfg: &LoadTestConfig,
    r: &Recorder,
    aborted: &Option<AbortReason>,
) -> (Verdict, Option<String>) {
    if let Some(a) = aborted {
        return (
            Verdict::Fail,
            Some(format!("the run did not complete: {a}")),
        );
    }
    let lag = r.schedule_lag.pct_ms(99.0).unwrap_or(0.0);
    if lag > cfg.max_schedule_lag_ms {
        return (
            Verdict::Inconclusive,
            Some(format!(
                "the load generator could not keep its schedule: schedule-lag p99 {lag:.0} ms \
                 exceeds maxScheduleLagMs {} ms, so the load offered was not the load planned",
                cfg.max_schedule_lag_ms
            )),
        );
    }
    let failed: Vec<&str> = s
        .criteria
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        (Verdict::Pass, None)
    } else {
        (
            Verdict::Fail,
            Some(format!("failed criteria: {}", failed.join(", "))),
        )
    }
}

fn criteria(
    cfg: &LoadTestConfig,
    r: &Recorder,
    thresholds: &[ThresholdResult],
    parsed: &[Threshold],
    breakers: &[BreakerReport],
    aborted: &Option<AbortReason>,
) -> Vec<Criterion> {
    let need = (r.planned as f64 * (1.0 - cfg.error_budget)).ceil() as u64;
    let rate = r.error_rate();
    let p95 = r.e2e_ok.pct_ms(95.0);
    let target_ms = cfg.p95_e2e_target_secs * 1000.0;
    let mut critical = Vec::new();
    for b in breakers {
        critical.push(format!(
            "circuit breaker `{}` opened {}x, shed {}",
            b.component, b.trips, b.shed
        ));
    }
    if let Some(a) = aborted.as_ref().filter(|a| a.is_critical()) {
        critical.push(a.to_string());
    }
    let not_arrived = r.planned.saturating_sub(r.arrived);
    let mut v = vec![
        Criterion {
            name: "completed".into(),
            target: "the whole schedule ran, with no abort or signal".into(),
            actual: match aborted {
                Some(a) => json!(a.to_string()),
                None => json!("completed"),
            },
            pass: aborted.is_none() && not_arrived == 0,
            reason: aborted
                .as_ref()
                .map(|a| format!("{a}; {not_arrived} planned users never arrived")),
        },
        Criterion {
            name: "users_succeeded".into(),
            target: format!(
                ">= {need} of {} planned (error budget {}%)",
                r.planned,
                cfg.error_budget * 100.0
            ),
            actual: json!(r.succeeded),
            pass: r.succeeded >= need,
            reason: None,
        },
        Criterion {
            name: "error_rate".into(),
            target: format!(
                "< {} of users that arrived: (failed + dropped + cancelled) ÷ arrived",
                cfg.error_budget
            ),
            actual: json!(rate),
            pass: rate.is_some_and(|x| x < cfg.error_budget),
            reason: rate.is_none().then(|| "no user arrived".to_string()),
        },
        Criterion {
            name: "p95_e2e_ms".into(),
            target: format!("< {target_ms} (successful journeys, from the intended start)"),
            actual: json!(p95),
            pass: p95.is_some_and(|p| p < target_ms),
            reason: p95.is_none().then(|| "no journey succeeded".to_string()),
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
            reason: None,
        },
    ];
    for (res, th) in thresholds.iter().zip(parsed) {
        let aborted_by_me = matches!(
            aborted,
            Some(AbortReason::Threshold { expr, .. }) if *expr == th.expr
        );
        v.push(Criterion {
            name: th.expr.clone(),
            target: format!("{} {}", th.op.symbol(), th.value),
            actual: json!(res.actual),
            pass: res.pass && !aborted_by_me,
            reason: res.reason.clone(),
        });
    }
    v
}

fn load_metrics(
    r: &Recorder,
    steps: &[ResolvedStep],
    gauge_max: &BTreeMap<String, f64>,
) -> LoadTestMetrics {
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let load_s = r.load_seconds();
    let mut all_confirm = Hist::default();
    for t in r.txs.values() {
        let _ = all_confirm.0.add(&t.confirm.0);
    }
    // Every failed journey is charged to the step that failed it.
    let chain_failures: u64 = steps
        .iter()
        .filter(|s| s.chain)
        .filter_map(|s| r.failures_by_step.get(&s.name))
        .sum();
    let by_component = |c: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|s| s.component == c)
            .map(|s| s.name.as_str())
            .collect()
    };
    let pick_gauge = |needle: &str| {
        gauge_max
            .iter()
            .filter(|(k, _)| k.contains(needle))
            .map(|(_, v)| *v)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    let storage = by_component("storage");
    let inference = by_component("inference");
    let first = |names: &[&str]| names.first().and_then(|n| r.steps.get(*n));
    let (inf_ok, inf_all) = inference
        .iter()
        .filter_map(|n| r.steps.get(*n))
        .fold((0, 0), |(ok, all), s| {
            (ok + s.count - s.errors, all + s.count)
        });
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
            upload_latency_ms: first(&storage).map(|s| e2e_of(&s.ok)).unwrap_or_default(),
            upload_success_rate: first(&storage).and_then(|s| ratio(s.count - s.errors, s.count)),
            storage_quota_used: pick_gauge("bytes"),
        },
        ai: AiMetrics {
            inference_latency_ms: first(&inference).map(|s| e2e_of(&s.ok)).unwrap_or_default(),
            queue_depth: pick_gauge("queue"),
            model_availability: ratio(inf_ok, inf_all),
        },
        end_to_end: EndToEndMetrics {
            flow_completion_time_ms: e2e_of(&r.e2e_ok),
            success_rate: ratio(r.succeeded, r.finished()),
            user_throughput: load_s.map_or(0.0, |s| r.succeeded as f64 / s),
        },
    }
}
