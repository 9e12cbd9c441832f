//! k6-style threshold parsing and evaluation.

use std::time::Duration;

use vana_load_engine::metrics::Recorder;
use vana_load_engine::threshold::{Agg, ENGINE_METRICS, MetricView, Op, Threshold};
use vana_load_engine::{FlowError, FlowResult, StepSample, TxSample};

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
        .check_metric(STEPS, &[])
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
        .check_metric(&[], &[])
        .unwrap_err();
    assert!(e.reason.ends_with("tx_confirm)"), "{e}");
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
            counts: Default::default(),
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

#[test]
fn k6_expressions_under_a_metric_key_take_the_key_as_their_metric() {
    // k6 writes latencies in milliseconds, without a unit.
    let t = Threshold::parse_for("p(95)<30000", "e2e").unwrap();
    assert_eq!(
        (t.agg, t.metric.as_str(), t.op, t.value),
        (Agg::Percentile(95.0), "e2e", Op::Lt, 30_000.0)
    );
    let t = Threshold::parse_for("rate<0.02", "errors").unwrap();
    assert_eq!(
        (t.agg, t.metric.as_str(), t.value),
        (Agg::Rate, "errors", 0.02)
    );
    let t = Threshold::parse_for(" avg <= 2s", "register").unwrap();
    assert_eq!((t.agg, t.op, t.value), (Agg::Avg, Op::Le, 2000.0));
    // Naming the key's own metric is fine; another metric is refused.
    assert!(Threshold::parse_for("p(95)(e2e) < 30s", "e2e").is_ok());
    let e = Threshold::parse_for("p95(register) < 30s", "e2e").unwrap_err();
    assert!(
        e.reason
            .contains("listed under `e2e` but names the metric `register`"),
        "{e}"
    );
    // Without a key, a metric-less expression is refused, saying where it works.
    let e = Threshold::parse("rate<0.02").unwrap_err();
    assert!(e.reason.contains("under a metric key"), "{e}");
    // Qualified: a complete expression, held as written when it was one.
    assert_eq!(
        Threshold::qualify("p(95)<30000", "e2e").unwrap(),
        "p(95)(e2e) < 30000"
    );
    assert_eq!(
        Threshold::qualify("rate<0.02", "errors").unwrap(),
        "rate(errors) < 0.02"
    );
    assert_eq!(
        Threshold::qualify("p99(register)<10s", "register").unwrap(),
        "p99(register)<10s"
    );
    let q = Threshold::qualify("p(95)<5000", "component.storage").unwrap();
    assert_eq!(
        Threshold::parse(&q).unwrap(),
        Threshold {
            expr: q.clone(),
            ..Threshold::parse_for("p(95)<5000", "component.storage").unwrap()
        }
    );
    assert!(Threshold::qualify("p(95)<soon", "e2e").is_err());
}

fn tx(confirm_ms: u64) -> TxSample {
    TxSample {
        kind: "register",
        gas_used: 21_000,
        fee_wei: 1,
        confirm: Duration::from_millis(confirm_ms),
        block: 1,
    }
}

/// Journeys of three steps over two components (`storage`: upload and
/// fetch; `relayer`: register), each with two transactions.
fn by_component() -> Recorder {
    let mut r = Recorder::new(10);
    r.set_components([
        ("upload", "storage"),
        ("fetch", "storage"),
        ("register", "relayer"),
    ]);
    for i in 0..10u64 {
        let f = FlowResult {
            steps: vec![
                StepSample::ok("upload", Duration::from_millis(100 + i)),
                StepSample::ok("fetch", Duration::from_millis(1000 + i)),
                if i == 9 {
                    StepSample::failed("register", Duration::from_secs(1), "timeout")
                } else {
                    StepSample::ok("register", Duration::from_millis(50))
                },
            ],
            error: None,
            txs: vec![tx(2000 + i), tx(8000 + i)],
            counts: Default::default(),
        };
        r.finish(1.0, Duration::from_secs(2), &f);
    }
    r
}

#[test]
fn tx_confirm_and_component_metrics_read_the_recorder() {
    let r = by_component();
    let ev = |s: &str| {
        Threshold::parse(s)
            .unwrap()
            .evaluate(&r as &dyn MetricView, r.finished())
    };
    // Every transaction's confirm time, all kinds together.
    assert_eq!(r.count("tx_confirm"), Some(20.0));
    let max = r.latency("tx_confirm", Agg::Max).unwrap();
    assert!((8009.0..8020.0).contains(&max), "{max}");
    let med = r.latency("tx_confirm", Agg::Percentile(50.0)).unwrap();
    assert!((2000.0..2020.0).contains(&med), "{med}");
    assert!(ev("p95(tx_confirm) < 10s").pass);
    assert!(!ev("p95(tx_confirm) < 5s").pass);
    // A component pools its steps' successful samples: half upload (~0.1 s),
    // half fetch (~1 s).
    assert_eq!(r.count("component.storage"), Some(20.0));
    let p25 = r
        .latency("component.storage", Agg::Percentile(25.0))
        .unwrap();
    let p75 = r
        .latency("component.storage", Agg::Percentile(75.0))
        .unwrap();
    assert!((100.0..110.0).contains(&p25), "{p25}");
    assert!((1000.0..1010.0).contains(&p75), "{p75}");
    // Its rate is the error rate of its steps.
    assert_eq!(r.rate("component.relayer"), Some(0.1));
    assert_eq!(r.rate("component.storage"), Some(0.0));
    // A component with no step recorded has no data.
    assert_eq!(r.latency("component.inference", Agg::Max), None);
    assert_eq!(r.count("component.inference"), None);
    let res = ev("p95(component.inference) < 30s");
    assert!(!res.pass);
    assert_eq!(
        res.reason.as_deref(),
        Some("no samples: no successful step of component `inference` among 10 finished journeys")
    );
}

#[test]
fn a_component_threshold_names_one_of_the_flows_components() {
    let check = |expr: &str| {
        Threshold::parse(expr)
            .unwrap()
            .check_metric(STEPS, &["storage", "relayer"])
            .map_err(|e| e.to_string())
    };
    check("p95(component.storage) < 5s").unwrap();
    check("rate(component.relayer) < 1%").unwrap();
    check("count(component.storage) > 0").unwrap();
    check("p95(tx_confirm) < 10s").unwrap();
    check("count(tx_confirm) > 0").unwrap();
    let e = check("rate(tx_confirm) < 1").unwrap_err();
    assert!(e.contains("`rate` does not apply to `tx_confirm`"), "{e}");
    let e = check("p95(component.storag) < 5s").unwrap_err();
    assert!(
        e.contains("unknown component `storag` in `component.storag` (the flow's components are storage, relayer)")
            && e.ends_with("did you mean `component.storage`?"),
        "{e}"
    );
    // The list of accepted metrics names the components too.
    let e = check("p95(nope) < 5s").unwrap_err();
    assert!(
        e.contains("or component.<name> for a component: storage, relayer)"),
        "{e}"
    );
}
