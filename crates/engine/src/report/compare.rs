//! `vana-load report compare A B`: two runs side by side — criteria, E2E and
//! per-step p50/p95 with deltas — as terminal text and an HTML diff, and the
//! regressions of B against A beyond a relative tolerance (for CI gating).

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::data::{ReportError, RunData};
use super::fmt::{esc, oms};
use crate::schema::Summary;

/// One compared latency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delta {
    /// `e2e p95`, `register p50`, …
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// (b − a) / a.
    pub change: Option<f64>,
    pub regressed: bool,
}

/// One criterion in both runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CriterionPair {
    pub name: String,
    pub target: String,
    pub a: Option<(String, bool)>,
    pub b: Option<(String, bool)>,
}

/// The comparison of run B against run A.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub tolerance: f64,
    pub verdicts: (String, String),
    pub criteria: Vec<CriterionPair>,
    pub latencies: Vec<Delta>,
    pub error_rate: (Option<f64>, Option<f64>),
    pub throughput: (f64, f64),
    /// Why B regressed (empty: no regression).
    pub regressions: Vec<String>,
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }
}

fn rate(s: &Summary) -> Option<f64> {
    let f = s.users.succeeded + s.users.failed;
    (f > 0).then(|| s.users.failed as f64 / f as f64)
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Compares run `b` with run `a`; `tolerance` is relative (0.1 = 10 % worse allowed).
pub fn compare(a: &Path, b: &Path, tolerance: f64) -> Result<Comparison, ReportError> {
    let (da, db) = (RunData::load(a)?, RunData::load(b)?);
    let (sa, sb) = (&da.summary, &db.summary);
    let mut regressions = Vec::new();
    let mut criteria: Vec<CriterionPair> = Vec::new();
    for c in &sa.criteria {
        criteria.push(CriterionPair {
            name: c.name.clone(),
            target: c.target.clone(),
            a: Some((show(&c.actual), c.pass)),
            b: None,
        });
    }
    for c in &sb.criteria {
        match criteria.iter_mut().find(|p| p.name == c.name) {
            Some(p) => p.b = Some((show(&c.actual), c.pass)),
            None => criteria.push(CriterionPair {
                name: c.name.clone(),
                target: c.target.clone(),
                a: None,
                b: Some((show(&c.actual), c.pass)),
            }),
        }
    }
    for p in &criteria {
        if let (Some((_, true)), Some((v, false))) = (&p.a, &p.b) {
            regressions.push(format!(
                "criterion `{}` passed in A and fails in B (actual {v})",
                p.name
            ));
        }
    }
    let mut latencies = Vec::new();
    let mut push = |metric: String, x: Option<f64>, y: Option<f64>, min_abs: f64| {
        let change = match (x, y) {
            (Some(x), Some(y)) if x > 0.0 => Some((y - x) / x),
            _ => None,
        };
        let regressed = match (x, y) {
            (Some(x), Some(y)) => y > x * (1.0 + tolerance) && y - x >= min_abs,
            _ => false,
        };
        if regressed {
            regressions.push(format!(
                "{metric} rose from {} to {} (+{:.1} %, tolerance {:.1} %)",
                oms(x),
                oms(y),
                change.unwrap_or(0.0) * 100.0,
                tolerance * 100.0
            ));
        }
        latencies.push(Delta {
            metric,
            a: x,
            b: y,
            change,
            regressed,
        });
    };
    push("e2e p50".into(), sa.e2e_ms.p50, sb.e2e_ms.p50, 1.0);
    push("e2e p95".into(), sa.e2e_ms.p95, sb.e2e_ms.p95, 1.0);
    push("e2e p99".into(), sa.e2e_ms.p99, sb.e2e_ms.p99, 1.0);
    let mut steps = da.step_order();
    for s in db.step_order() {
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    for st in &steps {
        let (x, y) = (sa.steps.get(st), sb.steps.get(st));
        push(
            format!("{st} p50"),
            x.and_then(|s| s.p50_ms),
            y.and_then(|s| s.p50_ms),
            1.0,
        );
        push(
            format!("{st} p95"),
            x.and_then(|s| s.p95_ms),
            y.and_then(|s| s.p95_ms),
            1.0,
        );
    }
    let (ra, rb) = (rate(sa), rate(sb));
    if let (Some(x), Some(y)) = (ra, rb)
        && y > x * (1.0 + tolerance) + 0.001
    {
        regressions.push(format!(
            "error rate rose from {:.2} % to {:.2} %",
            x * 100.0,
            y * 100.0
        ));
    }
    let (ta, tb) = (sa.throughput.flows_per_s, sb.throughput.flows_per_s);
    if ta > 0.0 && tb < ta * (1.0 - tolerance) {
        regressions.push(format!(
            "throughput fell from {ta:.2} to {tb:.2} journeys/s"
        ));
    }
    Ok(Comparison {
        a: a.display().to_string(),
        b: b.display().to_string(),
        tolerance,
        verdicts: (sa.verdict.to_string(), sb.verdict.to_string()),
        criteria,
        latencies,
        error_rate: (ra, rb),
        throughput: (ta, tb),
        regressions,
    })
}

fn change(d: &Delta) -> String {
    d.change
        .map_or("–".into(), |c| format!("{:+.1} %", c * 100.0))
}

impl Comparison {
    /// The terminal table.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "A: {}  ({})", self.a, self.verdicts.0);
        let _ = writeln!(o, "B: {}  ({})", self.b, self.verdicts.1);
        let _ = writeln!(o, "\n{:<24} {:>16} {:>16}", "criterion", "A", "B");
        for c in &self.criteria {
            let f = |x: &Option<(String, bool)>| {
                x.as_ref().map_or("–".to_string(), |(v, p)| {
                    format!("{} {}", short(v), if *p { "pass" } else { "FAIL" })
                })
            };
            let _ = writeln!(o, "{:<24} {:>16} {:>16}", short(&c.name), f(&c.a), f(&c.b));
        }
        let _ = writeln!(
            o,
            "\n{:<24} {:>12} {:>12} {:>10}",
            "latency", "A", "B", "change"
        );
        for d in &self.latencies {
            let _ = writeln!(
                o,
                "{:<24} {:>12} {:>12} {:>10}{}",
                d.metric,
                oms(d.a),
                oms(d.b),
                change(d),
                if d.regressed { "  REGRESSED" } else { "" }
            );
        }
        if self.regressions.is_empty() {
            let _ = writeln!(
                o,
                "\nno regression beyond the tolerance of {:.1} %",
                self.tolerance * 100.0
            );
        } else {
            let _ = writeln!(o, "\nB regressed against A:");
            for r in &self.regressions {
                let _ = writeln!(o, "  - {r}");
            }
        }
        o
    }

    /// The HTML diff (self-contained, like the report).
    pub fn to_html(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>vana-load compare</title><style>body{{font:14px/1.4 system-ui,sans-serif;margin:20px auto;max-width:1100px;color:#1d1d1f}}table{{border-collapse:collapse;margin:8px 0 16px}}th,td{{border:1px solid #dde1e6;padding:4px 8px}}th{{background:#eef1f4}}td.num{{text-align:right}}.bad{{color:#c62828;font-weight:600}}.good{{color:#1a7f37}}</style></head><body><h1>Run comparison</h1><p>A: <code>{}</code> ({})<br>B: <code>{}</code> ({})</p>"#,
            esc(&self.a),
            esc(&self.verdicts.0),
            esc(&self.b),
            esc(&self.verdicts.1)
        );
        if self.regressions.is_empty() {
            let _ = write!(
                o,
                r#"<p class="good" id="result">No regression beyond the tolerance of {:.1} %.</p>"#,
                self.tolerance * 100.0
            );
        } else {
            o.push_str(r#"<div id="result"><p class="bad">B regressed against A:</p><ul>"#);
            for r in &self.regressions {
                let _ = write!(o, "<li>{}</li>", esc(r));
            }
            o.push_str("</ul></div>");
        }
        o.push_str(r#"<h2>Criteria</h2><table id="criteria"><tr><th>criterion</th><th>target</th><th>A</th><th>B</th></tr>"#);
        for c in &self.criteria {
            let f = |x: &Option<(String, bool)>| {
                x.as_ref().map_or("–".to_string(), |(v, p)| {
                    format!(
                        r#"{} <span class="{}">{}</span>"#,
                        esc(v),
                        if *p { "good" } else { "bad" },
                        if *p { "pass" } else { "fail" }
                    )
                })
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name),
                esc(&c.target),
                f(&c.a),
                f(&c.b)
            );
        }
        o.push_str(r#"</table><h2>Latency</h2><table id="latency"><tr><th>metric</th><th>A</th><th>B</th><th>change</th></tr>"#);
        for d in &self.latencies {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num{}">{}</td></tr>"#,
                esc(&d.metric),
                oms(d.a),
                oms(d.b),
                if d.regressed { " bad" } else { "" },
                change(d)
            );
        }
        o.push_str("</table></body></html>");
        o
    }
}

fn short(s: &str) -> String {
    if s.chars().count() <= 24 {
        s.to_string()
    } else {
        s.chars().take(23).collect::<String>() + "…"
    }
}
