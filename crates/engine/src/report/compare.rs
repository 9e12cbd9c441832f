//! `vana-load report compare A B`: two runs side by side — criteria, E2E and
//! per-step p50/p95 with deltas — as terminal text and an HTML diff, and the
//! regressions of B against A beyond a relative tolerance (for CI gating).
//!
//! The HTML page is built with [`maud::html!`], which escapes every
//! interpolated value by default (run paths, criterion names and values come
//! from the runs and may hold markup); nothing here escapes by hand.
//! `PreEscaped` wraps only the constant stylesheet `CSS` inside `<style>`
//! (raw text in HTML, where entities would not be decoded).

use std::fmt::Write;
use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

use super::data::{ReportError, RunData};
use super::fmt::oms;
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

    /// The HTML diff (self-contained, like the report), built with
    /// [`maud::html!`]: run paths, criterion names and values, metric names
    /// and regression texts are escaped by the template.
    pub fn to_html(&self) -> String {
        let verdict = |x: &Option<(String, bool)>| -> Markup {
            html! {
                @match x {
                    Some((v, p)) => {
                        (v) " "
                        span class=(if *p { "good" } else { "bad" }) { (if *p { "pass" } else { "fail" }) }
                    }
                    None => "–",
                }
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "vana-load compare" }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    h1 { "Run comparison" }
                    p {
                        "A: " code { (self.a) } " (" (self.verdicts.0) ")"
                        br;
                        "B: " code { (self.b) } " (" (self.verdicts.1) ")"
                    }
                    @if self.regressions.is_empty() {
                        p class="good" id="result" {
                            "No regression beyond the tolerance of "
                            (format!("{:.1}", self.tolerance * 100.0))
                            " %."
                        }
                    } @else {
                        div id="result" {
                            p class="bad" { "B regressed against A:" }
                            ul {
                                @for r in &self.regressions {
                                    li { (r) }
                                }
                            }
                        }
                    }
                    h2 { "Criteria" }
                    table id="criteria" {
                        tr { th { "criterion" } th { "target" } th { "A" } th { "B" } }
                        @for c in &self.criteria {
                            tr {
                                td { (c.name) }
                                td { (c.target) }
                                td { (verdict(&c.a)) }
                                td { (verdict(&c.b)) }
                            }
                        }
                    }
                    h2 { "Latency" }
                    table id="latency" {
                        tr { th { "metric" } th { "A" } th { "B" } th { "change" } }
                        @for d in &self.latencies {
                            tr {
                                td { (d.metric) }
                                td class="num" { (oms(d.a)) }
                                td class="num" { (oms(d.b)) }
                                td class=(if d.regressed { "num bad" } else { "num" }) { (change(d)) }
                            }
                        }
                    }
                }
            }
        }
        .into_string()
    }
}

/// The page's constant stylesheet: raw text inside `<style>`, where HTML
/// entities would not be decoded, hence the only `PreEscaped` on this page.
const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:20px auto;max-width:1100px;color:#1d1d1f}table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #dde1e6;padding:4px 8px}th{background:#eef1f4}td.num{text-align:right}.bad{color:#c62828;font-weight:600}.good{color:#1a7f37}";

fn short(s: &str) -> String {
    if s.chars().count() <= 24 {
        s.to_string()
    } else {
        s.chars().take(23).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_criterion_names_and_paths_is_escaped() {
        let evil = r#"<script>alert("x")</script>&'"#;
        let c = Comparison {
            a: "runs/<a>".into(),
            b: "runs/b&c".into(),
            tolerance: 0.1,
            verdicts: ("pass".into(), "fail".into()),
            criteria: vec![CriterionPair {
                name: evil.into(),
                target: "< 1 s".into(),
                a: Some(("<b>0.5</b>".into(), true)),
                b: Some(("2".into(), false)),
            }],
            latencies: vec![Delta {
                metric: "<i>step</i> p95".into(),
                a: Some(10.0),
                b: Some(20.0),
                change: Some(1.0),
                regressed: true,
            }],
            error_rate: (None, None),
            throughput: (1.0, 1.0),
            regressions: vec![format!("criterion `{evil}` passed in A and fails in B")],
        };
        let h = c.to_html();
        assert!(!h.contains("<script>"), "{h}");
        assert!(!h.contains("<b>0.5") && !h.contains("<i>step"), "{h}");
        assert!(
            h.contains("<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'</td>"),
            "{h}"
        );
        assert!(h.contains("<code>runs/&lt;a&gt;</code>"), "{h}");
        assert!(h.contains("<code>runs/b&amp;c</code>"), "{h}");
        assert!(
            h.contains("&lt;b&gt;0.5&lt;/b&gt; <span class=\"good\">pass</span>"),
            "{h}"
        );
        assert!(h.contains("<td class=\"num bad\">+100.0 %</td>"), "{h}");
        assert!(h.contains("<li>criterion `&lt;script&gt;"), "{h}");
        assert!(h.starts_with("<!DOCTYPE html>"), "{h}");
    }
}
