//! k6-style thresholds: `p95(e2e) < 30s`, `rate(errors) < 0.02`, `p99(register) < 10s`.
//!
//! Grammar: `AGG(METRIC) OP VALUE[UNIT]`.
//! - `AGG`: `pNN` / `pNN.N` or k6's `p(NN)` (percentile), `max`, `min`, `avg`,
//!   `count`, `rate`;
//! - `METRIC`: `e2e` (successful journeys, from the intended start), a step name
//!   of the flow (successful samples of that step), `queue_wait`, `schedule_lag`;
//!   counted: `errors` (failed journeys + dropped + cancelled arrivals), `failed`,
//!   `succeeded`, `dropped`, `delayed`, `started`, `txs`;
//!   `rate(step)` is that step's error rate, `rate(errors)` the error rate over
//!   arrived users, `rate(failed)` failed / finished journeys,
//!   `rate(dropped|delayed)` over arrivals;
//! - `OP`: `<`, `<=`, `>`, `>=`, `==`, `!=`;
//! - `UNIT`: `ms` (the default for latencies), `s`, `m`, or `%` for rates.

use serde::{Deserialize, Serialize};

/// Metrics with latencies (any aggregation but `count`/`rate`), besides the flow's steps.
pub const LATENCY_METRICS: [&str; 3] = ["e2e", "queue_wait", "schedule_lag"];
/// Counted metrics (`count` and `rate`), besides the flow's steps.
pub const COUNTED_METRICS: [&str; 9] = [
    "e2e",
    "errors",
    "failed",
    "success",
    "succeeded",
    "dropped",
    "delayed",
    "started",
    "txs",
];

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

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("threshold `{expr}`: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// `None` when the metric has no data.
    pub actual: Option<f64>,
    pub pass: bool,
    /// Why, when the value alone does not say (no samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Threshold {
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        let err = |reason: &str| ThresholdError {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        let s = expr.trim();
        let open = s
            .find('(')
            .ok_or_else(|| err("expected AGG(METRIC), e.g. p95(e2e)"))?;
        let close = s.find(')').ok_or_else(|| err("missing `)`"))?;
        if close < open {
            return Err(err("misplaced `)`"));
        }
        let agg_s = s[..open].trim();
        let inner = s[open + 1..close].trim();
        // k6 writes percentiles as `p(95)`: then `(METRIC)` may follow, and
        // without it the metric is `e2e` (k6 keys a threshold by its metric;
        // a profile's list has no key, and the journey is what k6 users time).
        let (agg_s, metric, close) = if agg_s == "p" {
            let rest = &s[close + 1..];
            match rest.trim_start().strip_prefix('(') {
                Some(r) => {
                    let c2 = r
                        .find(')')
                        .ok_or_else(|| err("missing `)` after the metric"))?;
                    let used = rest.len() - r.len() + c2;
                    (
                        format!("p{inner}"),
                        r[..c2].trim().to_string(),
                        close + 1 + used,
                    )
                }
                None => (format!("p{inner}"), "e2e".to_string(), close),
            }
        } else {
            (agg_s.to_string(), inner.to_string(), close)
        };
        if metric.is_empty()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(err("metric must be a name like e2e, errors or a step name"));
        }
        if metric.is_empty()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(err("metric must be a name like e2e, errors or a step name"));
        }
        let agg = match agg_s.as_str() {
            "max" => Agg::Max,
            "min" => Agg::Min,
            "avg" | "mean" => Agg::Avg,
            "med" => Agg::Percentile(50.0),
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            p if p.starts_with('p') => {
                let q: f64 = p[1..]
                    .parse()
                    .map_err(|_| err("percentile must look like p95 or p99.9"))?;
                if !(0.0..=100.0).contains(&q) {
                    return Err(err("percentile must be within p0..p100"));
                }
                Agg::Percentile(q)
            }
            _ => {
                return Err(err(
                    "unknown aggregation (expected pNN, max, min, avg, count or rate)",
                ));
            }
        };
        let rest = s[close + 1..].trim();
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(t, op)| rest.strip_prefix(t).map(|r| (*op, r.trim())))
        .ok_or_else(|| err("expected a comparison: < <= > >= == !="))?;
        let (num, unit) = split_unit(rest);
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
            metric,
            op,
            value,
            abort_on_fail: false,
        })
    }

    /// Refuses a metric the engine does not know, or one the aggregation does
    /// not fit. `steps` are the flow's step names.
    pub fn check_metric(&self, steps: &[&str]) -> Result<(), ThresholdError> {
        let m = self.metric.as_str();
        let is_step = steps.contains(&m);
        let counted = matches!(self.agg, Agg::Count | Agg::Rate);
        let known = is_step
            || if counted {
                COUNTED_METRICS.contains(&m)
            } else {
                LATENCY_METRICS.contains(&m)
            };
        if known {
            return Ok(());
        }
        let any = is_step || COUNTED_METRICS.contains(&m) || LATENCY_METRICS.contains(&m);
        let reason = if any {
            if counted {
                format!(
                    "`{m}` has no count or rate (count and rate take {} or a step)",
                    COUNTED_METRICS.join(", ")
                )
            } else {
                format!(
                    "`{m}` is not a latency (latency aggregations take {} or a step)",
                    LATENCY_METRICS.join(", ")
                )
            }
        } else {
            let mut all: Vec<&str> = LATENCY_METRICS.to_vec();
            for c in COUNTED_METRICS {
                if !all.contains(&c) {
                    all.push(c);
                }
            }
            format!(
                "unknown metric `{m}` (expected {}, or a step: {})",
                all.join(", "),
                steps.join(", ")
            )
        };
        Err(ThresholdError {
            expr: self.expr.clone(),
            reason,
        })
    }

    /// Evaluates against a view of the metrics. `finished` is the number of
    /// journeys that have finished: once there are any, a threshold whose
    /// metric has no samples fails and says why; before, it is pending.
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
                    "no samples of `{}` among {finished} finished journeys",
                    self.metric
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
}

fn split_unit(s: &str) -> (&str, &str) {
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    (s[..i].trim(), s[i..].trim())
}
