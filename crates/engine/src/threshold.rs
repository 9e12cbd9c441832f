//! k6-style thresholds: `p95(e2e) < 30s`, `rate(errors) < 0.02`, `p99(register) < 10s`.
//!
//! Grammar: `AGG(METRIC) OP VALUE[UNIT]`.
//! - `AGG`: `pNN` / `pNN.N` or k6's `p(NN)` / `p(NN.N)` (percentile, so
//!   `p(95)(e2e)` is `p95(e2e)`), `med`, `max`, `min`, `avg`, `count`, `rate`;
//! - `METRIC`: one of [`ENGINE_METRICS`], a step name of the flow, or
//!   `component.<name>` for a component of the flow (its steps together):
//!   - latencies (`pNN`, `med`, `max`, `min`, `avg`): `e2e` (successful journeys,
//!     from the intended start), `queue_wait`, `schedule_lag`, `tx_confirm`
//!     (submission → receipt of every transaction), a step (its successful
//!     samples), a component (its steps' successful samples, pooled);
//!   - `count`: `e2e`/`success`/`succeeded`, `errors`/`failed`, `dropped`,
//!     `delayed`, `started`, `txs`, `tx_confirm`, a step or a component (its samples);
//!   - `rate`: `errors`/`failed` and `success`/`succeeded`/`e2e` over finished
//!     journeys, `dropped`/`delayed` over arrivals, a step's or a component's
//!     error rate;
//!
//!   [`Threshold::check_metric`] rejects any other metric or pairing;
//! - `OP`: `<`, `<=`, `>`, `>=`, `==`, `!=`;
//! - `UNIT`: `ms` (the default for latencies, as in k6), `us`, `s`, `m`, or `%` for rates.
//!
//! k6's metric-as-key form leaves the metric out (`p(95)<30000`, `rate<0.01`)
//! and lists expressions under their metric; a profile writes it as a
//! `[thresholds]` table ([`ThresholdLayer`]), and [`Threshold::qualify`] turns
//! each into a complete expression. Layers combine thresholds by key (the
//! aggregation and metric), so a later layer can replace or drop an earlier
//! one, e.g. a preset's baseline.
//!
//! A threshold whose metric has no samples although journeys have finished
//! (every `register` failed, say) fails, with a reason; before any journey has
//! finished it passes as "no data yet".
//!
//! The parser is written by hand: the grammar is a dozen tokens, and no
//! crate parses k6's threshold syntax outside k6 itself (Go).

use serde::{Deserialize, Serialize};

/// A threshold as written in a profile: a bare string or `{ expr, abortOnFail }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawSpec")]
#[serde(rename_all = "camelCase")]
pub struct ThresholdSpec {
    pub expr: String,
    /// Stop the run as soon as this threshold fails (after a few completions).
    pub abort_on_fail: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSpec {
    Expr(String),
    Table {
        /// k6 names it `threshold`.
        #[serde(alias = "threshold")]
        expr: String,
        #[serde(default, alias = "abort_on_fail", rename = "abortOnFail")]
        abort_on_fail: bool,
    },
}

impl From<RawSpec> for ThresholdSpec {
    fn from(r: RawSpec) -> Self {
        match r {
            RawSpec::Expr(expr) => ThresholdSpec {
                expr,
                abort_on_fail: false,
            },
            RawSpec::Table {
                expr,
                abort_on_fail,
            } => ThresholdSpec {
                expr,
                abort_on_fail,
            },
        }
    }
}

impl ThresholdSpec {
    pub fn new(expr: &str, abort_on_fail: bool) -> Self {
        ThresholdSpec {
            expr: expr.to_string(),
            abort_on_fail,
        }
    }
    pub fn parse(&self) -> Result<Threshold, ThresholdError> {
        let mut t = Threshold::parse(&self.expr)?;
        t.abort_on_fail = self.abort_on_fail;
        Ok(t)
    }
}

impl ThresholdSpec {
    /// What a later threshold replaces this one by: its aggregation and
    /// metric (`p95`, `e2e`); `None` when the expression does not parse.
    pub fn key(&self) -> Option<(String, String)> {
        self.parse().ok().map(|t| (t.agg.to_string(), t.metric))
    }

    /// The metric the expression names, if it parses.
    pub fn metric(&self) -> Option<String> {
        self.parse().ok().map(|t| t.metric)
    }
}

/// `thresholds` as one config layer writes it: a list, or k6's
/// metric-as-key table.
///
/// ```toml
/// thresholds = ["p95(e2e) < 30s", { expr = "rate(errors) < 2%", abortOnFail = true }]
/// # or
/// [thresholds]
/// e2e = ["p(95)<30000"]                       # k6: milliseconds
/// register = ["p(99)<10000", "rate<0.01"]
/// component.storage = ["p(95)<5000"]          # a dotted key is a metric with a dot
/// tx_confirm = []                             # drops every threshold on tx_confirm
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawLayer")]
pub enum ThresholdLayer {
    /// Each is added; one on the same aggregation and metric as an earlier
    /// threshold ([`ThresholdSpec::key`]) replaces it in place.
    List(Vec<ThresholdSpec>),
    /// Metric → its complete list, which replaces every earlier threshold on
    /// that metric (`[]` drops them). Expressions are held qualified
    /// ([`Threshold::qualify`]): `p(95)<30000` under `e2e` is `p(95)(e2e) < 30000`.
    ByMetric(std::collections::BTreeMap<String, Vec<ThresholdSpec>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLayer {
    List(Vec<ThresholdSpec>),
    ByMetric(std::collections::BTreeMap<String, RawEntry>),
}

/// A value in the table form: one expression, a list, or (for a dotted TOML
/// key such as `component.storage`) a table of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    One(ThresholdSpec),
    Many(Vec<ThresholdSpec>),
    Nested(std::collections::BTreeMap<String, RawEntry>),
}

impl TryFrom<RawLayer> for ThresholdLayer {
    type Error = String;
    fn try_from(raw: RawLayer) -> Result<Self, String> {
        fn flatten(
            prefix: &str,
            entries: std::collections::BTreeMap<String, RawEntry>,
            out: &mut std::collections::BTreeMap<String, Vec<ThresholdSpec>>,
        ) -> Result<(), String> {
            for (key, entry) in entries {
                let metric = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                let specs = match entry {
                    RawEntry::One(s) => vec![s],
                    RawEntry::Many(v) => v,
                    RawEntry::Nested(m) => {
                        flatten(&metric, m, out)?;
                        continue;
                    }
                };
                let qualified = specs
                    .into_iter()
                    .map(|s| {
                        Threshold::qualify(&s.expr, &metric)
                            .map(|expr| ThresholdSpec { expr, ..s })
                            .map_err(|e| format!("thresholds.{metric}: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert(metric, qualified);
            }
            Ok(())
        }
        Ok(match raw {
            RawLayer::List(v) => ThresholdLayer::List(v),
            RawLayer::ByMetric(m) => {
                let mut out = std::collections::BTreeMap::new();
                flatten("", m, &mut out)?;
                ThresholdLayer::ByMetric(out)
            }
        })
    }
}

impl ThresholdLayer {
    /// Applies this layer over `current` (see the variants).
    pub fn apply_to(&self, current: &mut Vec<ThresholdSpec>) {
        match self {
            ThresholdLayer::List(v) => {
                for t in v {
                    let slot = t
                        .key()
                        .and_then(|k| current.iter_mut().find(|c| c.key().as_ref() == Some(&k)));
                    match slot {
                        Some(slot) => *slot = t.clone(),
                        None => current.push(t.clone()),
                    }
                }
            }
            ThresholdLayer::ByMetric(m) => {
                for (metric, list) in m {
                    current.retain(|c| c.metric().as_deref() != Some(metric.as_str()));
                    current.extend(list.iter().cloned());
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("threshold `{expr}`: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
}

/// A metric the engine records, and the aggregations it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineMetric {
    pub name: &'static str,
    /// Takes latency aggregations (`pNN`, `med`, `max`, `min`, `avg`).
    pub latency: bool,
    /// Takes `count`.
    pub count: bool,
    /// Takes `rate`.
    pub rate: bool,
}

/// Names of the engine's metrics, for [`MetricView`] implementations.
pub mod metric {
    pub const E2E: &str = "e2e";
    pub const ERRORS: &str = "errors";
    pub const FAILED: &str = "failed";
    pub const SUCCESS: &str = "success";
    pub const SUCCEEDED: &str = "succeeded";
    pub const DROPPED: &str = "dropped";
    pub const DELAYED: &str = "delayed";
    pub const STARTED: &str = "started";
    pub const TXS: &str = "txs";
    pub const QUEUE_WAIT: &str = "queue_wait";
    pub const SCHEDULE_LAG: &str = "schedule_lag";
    pub const TX_CONFIRM: &str = "tx_confirm";
    /// `component.<name>`: every step of the flow's component `<name>`.
    pub const COMPONENT_PREFIX: &str = "component.";
}

const fn em(name: &'static str, latency: bool, count: bool, rate: bool) -> EngineMetric {
    EngineMetric {
        name,
        latency,
        count,
        rate,
    }
}

/// Every metric a threshold can name besides a step (a step takes every
/// aggregation). `impl MetricView for Recorder` answers exactly these.
pub const ENGINE_METRICS: &[EngineMetric] = &[
    em(metric::E2E, true, true, true),
    em(metric::ERRORS, false, true, true),
    em(metric::FAILED, false, true, true),
    em(metric::SUCCESS, false, true, true),
    em(metric::SUCCEEDED, false, true, true),
    em(metric::DROPPED, false, true, true),
    em(metric::DELAYED, false, true, true),
    em(metric::STARTED, false, true, false),
    em(metric::TXS, false, true, false),
    em(metric::QUEUE_WAIT, true, false, false),
    em(metric::SCHEDULE_LAG, true, false, false),
    em(metric::TX_CONFIRM, true, true, false),
];

/// The engine metric named `name`, if any.
pub fn engine_metric(name: &str) -> Option<&'static EngineMetric> {
    ENGINE_METRICS.iter().find(|m| m.name == name)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Percentile(f64),
    Max,
    Min,
    Avg,
    Count,
    Rate,
}

impl Agg {
    /// A latency aggregation (percentile, max, min, avg).
    pub fn is_latency(self) -> bool {
        !matches!(self, Agg::Count | Agg::Rate)
    }
}

impl std::fmt::Display for Agg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Agg::Percentile(q) => write!(f, "p{q}"),
            Agg::Max => f.write_str("max"),
            Agg::Min => f.write_str("min"),
            Agg::Avg => f.write_str("avg"),
            Agg::Count => f.write_str("count"),
            Agg::Rate => f.write_str("rate"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() < 1e-9,
            Op::Ne => (a - b).abs() >= 1e-9,
        }
    }
}

/// A parsed threshold. Latencies are compared in milliseconds, rates as fractions.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: String,
    pub agg: Agg,
    pub metric: String,
    pub op: Op,
    pub value: f64,
    pub abort_on_fail: bool,
}

/// What a threshold reads. Latencies in milliseconds; `None` when there is no data.
pub trait MetricView {
    fn latency(&self, metric: &str, agg: Agg) -> Option<f64>;
    fn count(&self, metric: &str) -> Option<f64>;
    fn rate(&self, metric: &str) -> Option<f64>;
}

/// The outcome of evaluating a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThresholdResult {
    pub expr: String,
    /// `None` when the metric has no samples.
    pub actual: Option<f64>,
    pub pass: bool,
    /// Why there is no `actual`: "no data yet" (a pass: no journey has finished),
    /// or what has no samples (a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The pieces of an expression as written, before their meaning is checked.
struct Parts<'a> {
    /// The aggregation as written: `p95`, `p(95)`, `med`, `rate`…
    agg_text: &'a str,
    /// `pNN` for k6's `p(NN)`, else `agg_text`.
    agg_name: String,
    /// `None` in k6's metric-as-key form (`p(95)<200` under a metric key).
    metric: Option<&'a str>,
    op: Op,
    /// The value and its unit as written, e.g. `30s`, `2%`.
    value_text: &'a str,
}

impl<'a> Parts<'a> {
    fn split(
        s: &'a str,
        err: &dyn Fn(&str) -> ThresholdError,
    ) -> Result<Parts<'a>, ThresholdError> {
        // k6 spells a percentile `p(95)`: `p(95)(e2e)` is `p95(e2e)`.
        let (agg_text, agg_name, rest) = if let Some(r) = s.strip_prefix("p(") {
            let close = r.find(')').ok_or_else(|| err("missing `)` after `p(`"))?;
            (
                &s[..close + 3],
                format!("p{}", r[..close].trim()),
                r[close + 1..].trim_start(),
            )
        } else {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(s.len());
            if end == 0 {
                return Err(err("expected AGG(METRIC), e.g. p95(e2e) or p(95)(e2e)"));
            }
            (&s[..end], s[..end].to_string(), s[end..].trim_start())
        };
        let (metric, rest) = match rest.strip_prefix('(') {
            Some(inner) => {
                let close = inner.find(')').ok_or_else(|| err("missing `)`"))?;
                (Some(inner[..close].trim()), inner[close + 1..].trim())
            }
            None => (None, rest),
        };
        let (op, value_text) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(t, op)| rest.strip_prefix(t).map(|r| (*op, r.trim())))
        .ok_or_else(|| {
            if metric.is_none() {
                err(
                    "expected (METRIC) after the aggregation, e.g. p(95)(e2e) or p95(e2e) \
                     (k6's `p(95)<200` without a metric works only under a metric key \
                     in the table form of `thresholds`)",
                )
            } else {
                err("expected a comparison: < <= > >= == !=")
            }
        })?;
        Ok(Parts {
            agg_text,
            agg_name,
            metric,
            op,
            value_text,
        })
    }
}

impl Threshold {
    /// Parses `AGG(METRIC) OP VALUE[UNIT]`.
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        Self::parse_with(expr, None)
    }

    /// Parses an expression listed under `metric` in k6's metric-as-key form:
    /// it may leave the metric out (`p(95)<30000`, `rate<0.01`); if it names
    /// one, it must be `metric`.
    pub fn parse_for(expr: &str, metric: &str) -> Result<Threshold, ThresholdError> {
        Self::parse_with(expr, Some(metric))
    }

    /// `expr` as a complete expression on `metric`: unchanged when it names
    /// its metric, else with `(metric)` after the aggregation (`p(95)<30000`
    /// under `e2e` is `p(95)(e2e) < 30000`). Refuses an expression that
    /// names another metric, or does not parse.
    pub fn qualify(expr: &str, metric: &str) -> Result<String, ThresholdError> {
        let t = Self::parse_for(expr, metric)?;
        let s = expr.trim();
        let err = |reason: &str| ThresholdError {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        let p = Parts::split(s, &err)?;
        Ok(match p.metric {
            Some(_) => expr.to_string(),
            None => format!(
                "{}({}) {} {}",
                p.agg_text,
                t.metric,
                p.op.symbol(),
                p.value_text
            ),
        })
    }

    fn parse_with(expr: &str, default_metric: Option<&str>) -> Result<Threshold, ThresholdError> {
        let err = |reason: &str| ThresholdError {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        let p = Parts::split(expr.trim(), &err)?;
        let metric = match (p.metric, default_metric) {
            (Some(m), Some(key)) if m != key => {
                return Err(err(&format!(
                    "listed under `{key}` but names the metric `{m}`"
                )));
            }
            (Some(m), _) => m,
            (None, Some(key)) => key,
            // `Parts::split` refuses a metric-less expression with no comparison;
            // one with a comparison still needs its metric here.
            (None, None) => {
                return Err(err(
                    "expected (METRIC) after the aggregation, e.g. p(95)(e2e) or p95(e2e) \
                     (k6's `p(95)<200` without a metric works only under a metric key \
                     in the table form of `thresholds`)",
                ));
            }
        };
        let metric_ok = |m: &str| {
            !m.is_empty()
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        if !metric_ok(metric) {
            return Err(err("metric must be a name like e2e, errors or a step name"));
        }
        let agg = match p.agg_name.as_str() {
            "max" => Agg::Max,
            "min" => Agg::Min,
            "avg" | "mean" => Agg::Avg,
            "med" => Agg::Percentile(50.0),
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            a if a.starts_with('p') => {
                let q: f64 = a[1..]
                    .parse()
                    .map_err(|_| err("percentile must look like p95, p99.9 or p(95)"))?;
                if !(0.0..=100.0).contains(&q) {
                    return Err(err("percentile must be within p0..p100"));
                }
                Agg::Percentile(q)
            }
            _ => {
                return Err(err(
                    "unknown aggregation (expected pNN, p(NN), med, max, min, avg, count or rate)",
                ));
            }
        };
        let (num, unit) = split_unit(p.value_text);
        let n: f64 = num
            .parse()
            .map_err(|_| err("expected a number after the comparison"))?;
        let value = match (agg, unit) {
            (Agg::Rate, "") => n,
            (Agg::Rate, "%") => n / 100.0,
            (Agg::Rate, _) => return Err(err("a rate takes a fraction or a percentage")),
            (Agg::Count, "") => n,
            (Agg::Count, _) => return Err(err("a count takes a plain number")),
            (_, "" | "ms") => n,
            (_, "us" | "µs") => n / 1000.0,
            (_, "s") => n * 1000.0,
            (_, "m") => n * 60_000.0,
            _ => return Err(err("unknown unit (expected ms, s or m)")),
        };
        Ok(Threshold {
            expr: expr.to_string(),
            agg,
            metric: metric.to_string(),
            op: p.op,
            value,
            abort_on_fail: false,
        })
    }

    /// Checks that the metric is one the engine records ([`ENGINE_METRICS`]),
    /// one of the flow's `steps`, or `component.<name>` for one of the flow's
    /// `components`, and that the aggregation applies to it (a latency
    /// aggregation to a latency, `count`/`rate` to what is counted).
    pub fn check_metric(&self, steps: &[&str], components: &[&str]) -> Result<(), ThresholdError> {
        let err = |reason: String| ThresholdError {
            expr: self.expr.clone(),
            reason,
        };
        let m = self.metric.as_str();
        let component = m.strip_prefix(metric::COMPONENT_PREFIX);
        let (latency, count, rate) = match (engine_metric(m), component) {
            (Some(e), _) => (e.latency, e.count, e.rate),
            (None, Some(c)) if components.contains(&c) => (true, true, true),
            (None, Some(c)) => {
                let mut reason = format!(
                    "unknown component `{c}` in `{m}` (the flow's components are {})",
                    components.join(", ")
                );
                if let Some(near) = closest(c, components.iter()) {
                    reason.push_str(&format!("; did you mean `component.{near}`?"));
                }
                return Err(err(reason));
            }
            (None, None) if steps.contains(&m) => (true, true, true),
            (None, None) => {
                let names: Vec<&str> = ENGINE_METRICS.iter().map(|e| e.name).collect();
                let mut reason = format!("unknown metric `{m}` (expected {}", names.join(", "));
                if !steps.is_empty() {
                    reason.push_str(&format!(", or a step: {}", steps.join(", ")));
                }
                if !components.is_empty() {
                    reason.push_str(&format!(
                        ", or component.<name> for a component: {}",
                        components.join(", ")
                    ));
                }
                reason.push(')');
                if let Some(near) = closest(m, names.iter().chain(steps)) {
                    reason.push_str(&format!("; did you mean `{near}`?"));
                }
                return Err(err(reason));
            }
        };
        let fits = match self.agg {
            Agg::Count => count,
            Agg::Rate => rate,
            _ => latency,
        };
        if !fits {
            let takes: Vec<&str> = [
                (latency, "a latency aggregation (pNN, med, max, min, avg)"),
                (count, "count"),
                (rate, "rate"),
            ]
            .iter()
            .filter_map(|(ok, what)| ok.then_some(*what))
            .collect();
            return Err(err(format!(
                "`{}` does not apply to `{m}`, which takes {}",
                self.agg,
                takes.join(" or ")
            )));
        }
        Ok(())
    }

    /// Evaluates against a view of the metrics, once `finished` journeys have
    /// finished. No samples before any journey finished passes ("no data yet");
    /// no samples after some have fails.
    pub fn evaluate(&self, view: &dyn MetricView, finished: u64) -> ThresholdResult {
        let actual = match self.agg {
            Agg::Count => view.count(&self.metric),
            Agg::Rate => view.rate(&self.metric),
            a => view.latency(&self.metric, a),
        };
        let (pass, reason) = match actual {
            Some(a) => (self.op.holds(a, self.value), None),
            None if finished == 0 => (true, Some("no data yet".to_string())),
            None => (
                false,
                Some(format!(
                    "no samples: {} among {finished} finished journey{}",
                    self.missing(),
                    if finished == 1 { "" } else { "s" }
                )),
            ),
        };
        ThresholdResult {
            expr: self.expr.clone(),
            actual,
            pass,
            reason,
        }
    }

    /// What has no samples when the metric has none.
    fn missing(&self) -> String {
        let m = &self.metric;
        match (self.agg.is_latency(), engine_metric(m)) {
            (true, Some(e)) if e.name == metric::E2E => "no successful journey".into(),
            (true, None) => match m.strip_prefix(metric::COMPONENT_PREFIX) {
                Some(c) => format!("no successful step of component `{c}`"),
                None => format!("no successful `{m}` step"),
            },
            (false, None) => match m.strip_prefix(metric::COMPONENT_PREFIX) {
                Some(c) => format!("no step of component `{c}` ran"),
                None => format!("no `{m}` step ran"),
            },
            (_, Some(_)) => format!("no `{m}` sample"),
        }
    }
}

/// The candidate nearest to `name` by edit distance, if close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a &'a str>) -> Option<&'a str> {
    let dist = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    candidates
        .map(|c| (dist(name, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn split_unit(s: &str) -> (&str, &str) {
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    (s[..i].trim(), s[i..].trim())
}
