//! k6-style threshold parsing and evaluation.

use std::time::Duration;

use vana_load_engine::metrics::Recorder;
use vana_load_engine::threshold::{Agg, ENGINE_METRICS, MetricView, Op, Threshold};
use vana_load_engine::{FlowError, FlowResult, StepSample};

struct View;
impl MetricView for View {
    fn latency(&self, metric: &str, agg: Agg) -> Option<f64> {
        match (metric, agg) {
            ("e2e", Agg::Percentile(95.0)) => Some(25_000.0),
            ("register", Agg::Percentile(99.0)) => Some(12_000.0),
            ("e2e", Agg::Max) => Some(40_000.0),
            _ => None,
        }
    }
    fn count(&self, metric: &str) -> Option<f64> {
        (metric == "dropped").then_some(3.0)
    }
    fn rate(&self, metric: &str) -> Option<f64> {
        (metric == "errors").then_some(0.01)
    }
}

#[test]
fn parses_the_issue_examples() {
    let t = Threshold::parse("p95(e2e) < 30s").unwrap();
    assert_eq!(
        (t.agg, t.metric.as_str(), t.op, t.value),
        (Agg::Percentile(95.0), "e2e", Op::Lt, 30_000.0)
    );
    let t = Threshold::parse("rate(errors) < 0.02").unwrap();
    assert_eq!((t.agg, t.op, t.value), (Agg::Rate, Op::Lt, 0.02));
    let t = Threshold::parse("p99(register) < 10s").unwrap();
    assert_eq!((t.metric.as_str(), t.value), ("register", 10_000.0));
    let t = Threshold::parse("p99.9(infer_wait)<=2m").unwrap();
    assert_eq!(
        (t.agg, t.op, t.value),
        (Agg::Percentile(99.9), Op::Le, 120_000.0)
    );
    assert_eq!(Threshold::parse("rate(errors) < 2%").unwrap().value, 0.02);
    assert_eq!(Threshold::parse("max(e2e) < 1500").unwrap().value, 1500.0);
    assert_eq!(Threshold::parse("count(dropped) == 0").unwrap().op, Op::Eq);
}

#[test]
fn rejects_malformed_expressions_with_a_reason() {
    for bad in [
        "p95 e2e < 30s",
        "p95(e2e) 30s",
        "p95(e2e) < soon",
        "q95(e2e) < 1",
        "p101(e2e) < 1",
        "rate(errors) < 3s",
        "count(dropped) < 1s",
        "p95(e2e) < 3h",
    ] {
        let e = Threshold::parse(bad).unwrap_err();
        assert_eq!(e.expr, bad);
        assert!(!e.reason.is_empty());
    }
}

#[test]
fn evaluates_against_metrics() {
    let ev = |s: &str| Threshold::parse(s).unwrap().evaluate(&View, 20);
    assert!(ev("p95(e2e) < 30s").pass);
    assert!(!ev("p95(e2e) < 20s").pass);
    assert!(!ev("p99(register) < 10s").pass);
    assert_eq!(ev("p99(register) < 10s").actual, Some(12_000.0));
    assert!(ev("rate(errors) < 0.02").pass);
    assert!(!ev("rate(errors) < 1%").pass);
    assert!(!ev("count(dropped) == 0").pass);
    assert!(ev("max(e2e) >= 40s").pass);
    assert_eq!(ev("max(e2e) >= 40s").reason, None);
    // No data before any journey finished: passes, as in k6.
    let r = Threshold::parse("p95(claim) < 1s")
        .unwrap()
        .evaluate(&View, 0);
    assert!(r.pass && r.actual.is_none());
    assert_eq!(r.reason.as_deref(), Some("no data yet"));
}

#[test]
fn parses_k6_percentiles() {
    for (expr, q) in [
        ("p(95)(e2e) < 30s", 95.0),
        ("p(99.9)(register) <= 2m", 99.9),
        (" p( 50 ) (e2e) < 1s", 50.0),
    ] {
        let t = Threshold::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.agg, Agg::Percentile(q), "{expr}");
        assert_eq!(
            t,
            Threshold {
                expr: expr.into(),
                ..t.clone()
            }
        );
    }
    assert_eq!(
        Threshold::parse("p(95)(e2e) < 30s").unwrap().metric,
        Threshold::parse("p95(e2e) < 30s").unwrap().metric
    );
    // k6's metric-as-key form has no metric here.
    let e = Threshold::parse("p(95) < 200").unwrap_err();
    assert!(e.reason.contains("p(95)(e2e)"), "{e}");
    assert!(Threshold::parse("p(x)(e2e) < 1").is_err());
    assert!(Threshold::parse("p(101)(e2e) < 1").is_err());
}

const STEPS: &[&str] = &["wallet", "data", "register", "claim"];

fn check(expr: &str) -> Result<(), String> {
    Threshold::parse(expr)
        .unwrap()
        .check_metric(STEPS)
        .map_err(|e| e.to_string())
}

#[test]
fn a_misspelt_metric_is_rejected_naming_what_is_accepted() {
    let e = check("p95(regster) < 10s").unwrap_err();
    assert!(
        e.starts_with(
            "threshold `p95(regster) < 10s`: unknown metric `regster` (expected e2e, errors, "
        ),
        "{e}"
    );
    for name in ENGINE_METRICS
        .iter()
        .map(|m| m.name)
        .chain(STEPS.iter().copied())
    {
        assert!(e.contains(name), "{name} missing from: {e}");
    }
    assert!(
        e.contains("or a step: wallet, data, register, claim)"),
        "{e}"
    );
    assert!(e.ends_with("did you mean `register`?"), "{e}");
    // Without steps, and far from any name: no suggestion.
    let e = Threshold::parse("count(zzz) < 1")
        .unwrap()
        .check_metric(&[])
        .unwrap_err();
    assert!(e.reason.ends_with("schedule_lag)"), "{e}");
}

#[test]
fn the_aggregation_must_fit_the_metric() {
    for ok in [
        "p95(e2e) < 30s",
        "p(99)(register) < 10s",
        "max(queue_wait) < 5s",
        "avg(schedule_lag) < 100",
        "count(dropped) == 0",
        "rate(delayed) < 5%",
        "rate(errors) < 0.02",
        "rate(failed) < 0.02",
        "rate(success) > 0.9",
        "count(succeeded) > 10",
        "count(started) > 0",
        "count(txs) > 0",
        "rate(claim) < 1%",
        "count(wallet) > 1",
    ] {
        check(ok).unwrap_or_else(|e| panic!("{e}"));
    }
    for (bad, says) in [
        (
            "p95(dropped) < 1s",
            "`p95` does not apply to `dropped`, which takes count or rate",
        ),
        ("max(errors) < 1s", "`max` does not apply to `errors`"),
        ("count(queue_wait) < 1", "which takes a latency aggregation"),
        (
            "rate(schedule_lag) < 1",
            "`rate` does not apply to `schedule_lag`",
        ),
        ("rate(txs) < 1", "`txs`, which takes count"),
        (
            "p(99.9)(started) < 1",
            "`p99.9` does not apply to `started`",
        ),
    ] {
        let e = check(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

/// Journeys that all failed at `register`: wallet succeeded each time.
fn all_register_failed(n: usize) -> Recorder {
    let mut r = Recorder::new(n as u64);
    for _ in 0..n {
        let f = FlowResult {
            steps: vec![
                StepSample::ok("wallet", Duration::from_millis(5)),
                StepSample {
                    name: "register",
                    duration: Duration::from_secs(2),
                    ok: false,
                    error_class: Some("http_500".into()),
                },
            ],
            error: Some(FlowError {
                step: "register",
                class: "http_500".into(),
                message: String::new(),
            }),
            txs: vec![],
        };
        r.finish(1.0, Duration::from_secs(3), &f);
    }
    r
}

#[test]
fn no_samples_after_journeys_finished_fails_with_a_reason() {
    let r = all_register_failed(37);
    let ev = |s: &str| {
        Threshold::parse(s)
            .unwrap()
            .evaluate(&r as &dyn MetricView, r.finished())
    };
    let res = ev("p95(register) < 10s");
    assert!(!res.pass && res.actual.is_none(), "{res:?}");
    assert_eq!(
        res.reason.as_deref(),
        Some("no samples: no successful `register` step among 37 finished journeys")
    );
    // A misspelt metric that was not checked has no samples either.
    assert!(!ev("p95(regster) < 10s").pass);
    assert_eq!(
        ev("p95(e2e) < 30s").reason.as_deref(),
        Some("no samples: no successful journey among 37 finished journeys")
    );
    assert_eq!(
        ev("rate(claim) < 1%").reason.as_deref(),
        Some("no samples: no `claim` step ran among 37 finished journeys")
    );
    // The step ran and failed: its error rate and count have data.
    assert_eq!(ev("rate(register) < 1%").actual, Some(1.0));
    assert!(ev("count(register) == 37").pass);
    assert!(ev("p95(wallet) < 1s").pass);

    let one = all_register_failed(1);
    let res = Threshold::parse("p95(register) < 10s")
        .unwrap()
        .evaluate(&one as &dyn MetricView, 1);
    assert!(res.reason.unwrap().ends_with("among 1 finished journey"));

    // Before anything finished (the live abort check): no data yet, a pass.
    let res = Threshold::parse("p95(register) < 10s")
        .unwrap()
        .evaluate(&Recorder::new(10) as &dyn MetricView, 0);
    assert!(res.pass);
    assert_eq!(res.reason.as_deref(), Some("no data yet"));
}

#[test]
fn the_reason_is_serialised_only_when_there_is_one() {
    let t = Threshold::parse("count(dropped) == 0").unwrap();
    let j = serde_json::to_value(t.evaluate(&Recorder::new(1) as &dyn MetricView, 0)).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"expr": "count(dropped) == 0", "actual": 0.0, "pass": true})
    );
    let t = Threshold::parse("p95(e2e) < 1s").unwrap();
    let j = serde_json::to_value(t.evaluate(&Recorder::new(1) as &dyn MetricView, 0)).unwrap();
    assert_eq!(j["reason"], "no data yet");
}
