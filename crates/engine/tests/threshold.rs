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
    let ev = |s: &str| Threshold::parse(s).unwrap().evaluate(&View);
    assert!(ev("p95(e2e) < 30s").pass);
    assert!(!ev("p95(e2e) < 20s").pass);
    assert!(!ev("p99(register) < 10s").pass);
    assert_eq!(ev("p99(register) < 10s").actual, Some(12_000.0));
    assert!(ev("rate(errors) < 0.02").pass);
    assert!(!ev("rate(errors) < 1%").pass);
    assert!(!ev("count(dropped) == 0").pass);
    assert!(ev("max(e2e) >= 40s").pass);
    // No data yet: passes, as in k6.
    let r = ev("p95(claim) < 1s");
    assert!(r.pass && r.actual.is_none());
}
