//! k6-style threshold parsing and evaluation.

use vana_load_engine::threshold::{Agg, MetricView, Op, Threshold};

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
    let ev = |s: &str| Threshold::parse(s).unwrap().evaluate(&View, 50);
    assert!(ev("p95(e2e) < 30s").pass);
    assert!(!ev("p95(e2e) < 20s").pass);
    assert!(!ev("p99(register) < 10s").pass);
    assert_eq!(ev("p99(register) < 10s").actual, Some(12_000.0));
    assert!(ev("rate(errors) < 0.02").pass);
    assert!(!ev("rate(errors) < 1%").pass);
    assert!(!ev("count(dropped) == 0").pass);
    assert!(ev("max(e2e) >= 40s").pass);
    // No samples once journeys finished (e.g. every `claim` failed): fails, and says why.
    let r = ev("p95(claim) < 1s");
    assert!(!r.pass && r.actual.is_none());
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("no samples of `claim`"),
        "{r:?}"
    );
    // Before any journey finished it is pending (the live abort check waits).
    let r = Threshold::parse("p95(claim) < 1s")
        .unwrap()
        .evaluate(&View, 0);
    assert!(r.pass && r.actual.is_none());
}

#[test]
fn a_misspelt_or_misfitting_metric_is_refused_by_name() {
    let steps = ["wallet", "register", "claim"];
    let e = Threshold::parse("p95(regster) < 10s")
        .unwrap()
        .check_metric(&steps)
        .unwrap_err();
    assert!(e.reason.contains("unknown metric `regster`"), "{e}");
    assert!(e.reason.contains("register"), "lists the steps: {e}");
    for ok in [
        "p95(register) < 10s",
        "p95(e2e) < 30s",
        "rate(errors) < 2%",
        "count(dropped) == 0",
        "p99(schedule_lag) < 1s",
        "rate(claim) < 0.1",
    ] {
        Threshold::parse(ok).unwrap().check_metric(&steps).unwrap();
    }
    let e = Threshold::parse("p95(dropped) < 1s")
        .unwrap()
        .check_metric(&steps)
        .unwrap_err();
    assert!(e.reason.contains("not a latency"), "{e}");
    let e = Threshold::parse("rate(queue_wait) < 1")
        .unwrap()
        .check_metric(&steps)
        .unwrap_err();
    assert!(e.reason.contains("no count or rate"), "{e}");
}

#[test]
fn k6_percentile_spelling_is_accepted() {
    let t = Threshold::parse("p(95) < 30s").unwrap();
    assert_eq!(
        (t.agg, t.metric.as_str(), t.value),
        (Agg::Percentile(95.0), "e2e", 30_000.0)
    );
    let t = Threshold::parse("p(99.9)(register) <= 10s").unwrap();
    assert_eq!(
        (t.agg, t.metric.as_str(), t.op, t.value),
        (Agg::Percentile(99.9), "register", Op::Le, 10_000.0)
    );
    assert!(Threshold::parse("p(95)(register < 1s").is_err());
    assert!(Threshold::parse("p(x) < 1s").is_err());
}
