//! `deploy/grafana/vana-load.json` and `deploy/prometheus/alerts.yml` query
//! only metrics that exist: every metric name in every PromQL expression is
//! one the engine's registry (`PromMetrics::encode`) or a running twin's
//! services (each `/metrics` URL of the manifest) export, with the suffix its
//! type gives it (`_total` for a counter, `_bucket`/`_sum`/`_count` for a
//! histogram). The alert rules are the plan's four, at the engine's limits.
//!
//! The names are pulled out of PromQL by a small tokenizer written here: a
//! full PromQL parser (promql-parser) would bring a parser generator into the
//! build to answer one question, which identifiers are metric names. The
//! tokenizer skips strings, label matchers, ranges, Grafana variables,
//! numbers and durations, keywords and aggregation operators, grouping label
//! lists (`by (le)`) and function names; what remains are the selectors.

use std::collections::{BTreeMap, BTreeSet};

use engine::alert::AlertLimits;
use engine::prom::PromMetrics;
use engine::schema::AlertName;

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    // Aggregation operators (a metric name never follows them directly).
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a list of label names in parentheses.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Skips from the opening bracket at `i` to just past its closing one,
/// stepping over quoted strings.
fn skip_group(b: &[u8], mut i: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q) - 1,
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn skip_string(b: &[u8], mut i: usize, quote: u8) -> usize {
    i += 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// The metric names a PromQL expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(b, i, c),
            b'{' => i = skip_group(b, i, b'{', b'}'),
            b'[' => i = skip_group(b, i, b'[', b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            // A Grafana variable: `$__rate_interval`, `${datasource}`.
            b'$' => {
                i += 1;
                if b.get(i) == Some(&b'{') {
                    i = skip_group(b, i, b'{', b'}');
                } else {
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                }
            }
            // A number or a duration: `0.95`, `1e3`, `5m`.
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let next = b.get(j).copied();
                if GROUPING.contains(&word) {
                    if next == Some(b'(') {
                        i = skip_group(b, j, b'(', b')');
                    }
                } else if KEYWORDS.contains(&word) || next == Some(b'(') {
                    // An operator, or a function call.
                } else {
                    out.insert(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Metric families by name and type, from the `# TYPE` lines of an exposition.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// Whether a series name exists among `fams`, with its type's suffix.
fn exported(name: &str, fams: &BTreeMap<String, String>) -> bool {
    let is = |family: &str, types: &[&str]| {
        fams.get(family)
            .is_some_and(|t| types.contains(&t.as_str()))
    };
    if is(name, &["gauge", "unknown", "untyped"]) {
        return true;
    }
    if let Some(f) = name.strip_suffix("_total")
        && is(f, &["counter"])
    {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|f| is(f, &["histogram"]) || (*suffix != "_bucket" && is(f, &["summary"])))
    })
}

/// The metric names of `exprs` that `fams` does not export, each with its expression.
fn missing<'a>(exprs: &'a [String], fams: &BTreeMap<String, String>) -> Vec<(String, &'a str)> {
    exprs
        .iter()
        .flat_map(|e| metric_names(e).into_iter().map(move |n| (n, e.as_str())))
        .filter(|(n, _)| !exported(n, fams))
        .collect()
}

fn repo_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `expr` of every panel target, at any depth (rows hold panels too).
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            m.values().for_each(|x| dashboard_exprs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct Rule {
    alert: String,
    expr: String,
    labels: BTreeMap<String, String>,
}

fn rules() -> Vec<Rule> {
    let file: RuleFile = serde_yaml_ng::from_str(&repo_file("deploy/prometheus/alerts.yml"))
        .expect("alerts.yml is a Prometheus rule file");
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn engine_families() -> BTreeMap<String, String> {
    families(&PromMetrics::new().encode())
}

#[test]
fn the_tokenizer_finds_selectors_only() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            "histogram_quantile(0.95, sum by (le, step) (rate(vana_load_step_seconds_bucket{step=~\"a|b\"}[$__rate_interval])))"
        ),
        ["vana_load_step_seconds_bucket"]
    );
    assert_eq!(
        names(
            "(sum(rate(x_total{outcome=\"ok\"}[1m])) or vector(0)) / sum without (job) (rate(x_total[5m] offset 1h)) < 0.99"
        ),
        ["x_total"]
    );
    assert_eq!(
        names("max(inference_queue_depth) > 1e3 or on (job) max(tee_queue_depth) > 1000"),
        ["inference_queue_depth", "tee_queue_depth"]
    );
    assert_eq!(
        names("a:recorded:rate5m * ${factor}"),
        ["a:recorded:rate5m"]
    );
}

/// A misspelt metric, a counter without `_total` and a histogram without a
/// suffix are all reported; the real names are not.
#[test]
fn a_misspelt_metric_is_caught() {
    let fams = engine_families();
    let exprs: Vec<String> = [
        "histogram_quantile(0.95, sum by (le) (rate(vana_load_e2e_secnds_bucket[1m])))",
        "rate(vana_load_arrivals[1m])",
        "vana_load_e2e_seconds",
        "rate(vana_load_arrivals_total[1m]) + vana_load_in_flight + vana_load_e2e_seconds_count",
    ]
    .map(String::from)
    .to_vec();
    let bad: Vec<String> = missing(&exprs, &fams).into_iter().map(|m| m.0).collect();
    assert_eq!(
        bad,
        [
            "vana_load_e2e_secnds_bucket",
            "vana_load_arrivals",
            "vana_load_e2e_seconds"
        ]
    );
}

/// The rule file holds the plan's four alerting thresholds, each once, at
/// the limits the engine applies by default, with the engine's alert names.
#[test]
fn the_alert_rules_are_the_plans_four_at_the_engines_limits() {
    let limits = AlertLimits::default();
    let mut seen = BTreeSet::new();
    for r in rules() {
        let name: AlertName =
            serde_json::from_value(serde_json::Value::String(r.labels["name"].clone()))
                .unwrap_or_else(|e| panic!("{}: label name: {e}", r.alert));
        assert!(seen.insert(name), "{name} twice");
        let expr = r.expr.trim();
        let op_at = expr.rfind(['<', '>']).expect("a comparison");
        let op = &expr[op_at..op_at + 1];
        let limit: f64 = expr[op_at + 1..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: the limit after `{op}`: {e}", r.alert));
        assert_eq!(op == "<", name.fires_below(), "{}: {expr}", r.alert);
        assert_eq!(limit, limits.limit(name), "{}", r.alert);
    }
    assert_eq!(seen, AlertName::ALL.into_iter().collect());
}

/// Every metric the dashboard and the rules query is exported by the engine
/// or by one of a running twin's services.
#[tokio::test(flavor = "multi_thread")]
async fn every_queried_metric_is_exported() {
    let dash: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/vana-load.json")).expect("dashboard JSON");
    // A Prometheus data source chosen on import, used by every panel.
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(
        vars.iter().any(|v| v["type"] == "datasource"
            && v["query"] == "prometheus"
            && v["name"] == "datasource"),
        "{vars:?}"
    );
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, &mut exprs);
    let selected: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for series in [
        "vana_load_planned_arrivals",
        "vana_load_arrivals_total",
        "vana_load_in_flight",
        "vana_load_completed_total",
        "vana_load_e2e_seconds_bucket",
        "vana_load_step_seconds_bucket",
        "vana_load_failed_total",
        "vana_load_rpc_requests_total",
        "vana_load_alert_firing",
        "inference_queue_depth",
        "tee_queue_depth",
        "relayer_pending_transactions",
        "indexer_lag_blocks",
        "storage_quota_used_bytes",
    ] {
        assert!(selected.contains(series), "no panel shows {series}");
    }
    exprs.extend(rules().into_iter().map(|r| r.expr));

    let mut fams = engine_families();
    let twin = twin::Twin::start(twin::TwinConfig::ephemeral())
        .await
        .expect("the twin starts");
    let services = twin.manifest().services.clone();
    assert!(services.len() >= 5, "{:?}", services.keys());
    for (name, ep) in &services {
        let text = reqwest::get(&ep.metrics_url)
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", ep.metrics_url))
            .text()
            .await
            .unwrap();
        let got = families(&text);
        assert!(!got.is_empty(), "{name} exports nothing");
        fams.extend(got);
    }
    twin.stop().await;

    let bad = missing(&exprs, &fams);
    assert!(
        bad.is_empty(),
        "metrics queried but not exported: {:#?}\nexported: {:?}",
        bad,
        fams.keys().collect::<Vec<_>>()
    );
}
