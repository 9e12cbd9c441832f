//! `report.html`: one self-contained page (inline CSS and SVG, no script, no
//! URL), readable offline and printable. Sections: header with verdict and
//! criteria, the alerts that fired (and the RPC success rate), charts over
//! time (with the service gauges and the load generator's machine),
//! bottleneck, capacity and cost, per-step breakdown and histograms, chain,
//! errors.
//!
//! The page is built with [`maud::html!`], a template checked at compile time
//! that escapes every interpolated value by default: the report shows text
//! from remote services (error samples, error classes, step, target and
//! criterion names), and nothing here escapes by hand. `PreEscaped` wraps two
//! kinds of content only:
//!
//! - the constant stylesheet `CSS` inside `<style>` (raw text in HTML, where
//!   entities would not be decoded), and
//! - the inline SVG charts from [`super::svg`] (`figure` and the per-step
//!   histograms), which are built as strings:
//!   svg.rs escapes its own text (ids, titles, axis labels, legend and bar
//!   names go through `fmt::esc`; everything else it writes is a number or a
//!   colour from `PALETTE`).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Analysis;
use super::analysis::{GaugeKind, component_name, gauge_series};
use super::data::RunData;
use super::fmt::{group, ms, num, oms, pct, secs};
use super::svg::{self, PALETTE, Series, Style};

const CSS: &str = r#"
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid #dde1e6;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}
.meta{color:#555;font-size:13px}
.verdict{display:inline-block;padding:4px 14px;border-radius:4px;font-weight:700;font-size:18px;color:#fff;margin-right:12px}
.verdict.pass{background:#1a7f37}.verdict.fail{background:#c62828}.verdict.inconclusive{background:#8a6d00}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
.grid3{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:8px}
figure{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:4px;padding:4px}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555;padding:2px 6px 4px}
.card{background:#fff;border:1px solid #dde1e6;border-left:4px solid #0072B2;border-radius:4px;padding:10px 14px;margin:8px 0}
.card.warn{border-left-color:#D55E00}
.kpis{display:flex;gap:10px;flex-wrap:wrap;margin:12px 0}
.kpi{background:#fff;border:1px solid #dde1e6;border-radius:4px;padding:8px 12px;min-width:150px}
.kpi b{display:block;font-size:20px}
.kpi span{font-size:12px;color:#555}
.note{color:#666;font-size:12px}
code{background:#eef1f4;padding:0 3px;border-radius:3px}
@media print{body{background:#fff}main{max-width:none;padding:0}.grid{grid-template-columns:1fr 1fr}figure,.card,table{break-inside:avoid}h2{break-after:avoid}}
"#;

/// A chart from svg.rs (which escapes its own text) with its caption.
fn figure(svg: String, caption: &str) -> Markup {
    html! {
        figure {
            (PreEscaped(svg))
            figcaption { (caption) }
        }
    }
}

/// A "yes" in red, or a plain "no".
fn yes_no(b: bool) -> Markup {
    html! {
        @if b { span class="bad" { "yes" } } @else { "no" }
    }
}

fn actual(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "–".into(),
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(|f| {
                if f > 0.0 && f < 1.0 {
                    format!("{f:.4}")
                } else {
                    num(f)
                }
            })
            .unwrap_or_else(|| n.to_string()),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders the whole page.
pub fn render(d: &RunData, a: &Analysis) -> String {
    let s = &d.summary;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { "vana-load report: " (d.run_id()) " (" (s.verdict.as_str()) ")" }
                // A constant: see the module doc.
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    (header(d))
                    (alerts(d))
                    (over_time(d, a))
                    (bottleneck(a))
                    (capacity(a))
                    (steps(d))
                    (chain(d, a))
                    (errors(d))
                    p class="note" {
                        "Generated by vana-load from "
                        code { (d.dir.display().to_string()) }
                        ". Latencies run from each journey's intended start on the schedule (no coordinated omission). Charts over time bin the journal into "
                        (a.timeline.as_ref().map_or(0, |t| t.bins.n))
                        " intervals of "
                        (a.timeline.as_ref().map_or("–".into(), |t| secs(t.bins.width)))
                        "."
                    }
                }
            }
        }
    };
    page.into_string()
}

fn header(d: &RunData) -> Markup {
    let s = &d.summary;
    let status = serde_json::to_value(d.run.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let started = if d.details.started_at.is_empty() {
        d.run.started_at.as_str()
    } else {
        d.details.started_at.as_str()
    };
    let u = &s.users;
    let kpi = |v: String, l: &str| {
        html! {
            div class="kpi" { b { (v) } span { (l) } }
        }
    };
    html! {
        header id="header" {
            h1 { "Load test report — " (d.run_id()) }
            p {
                span class={ "verdict " (s.verdict.as_str()) } id="verdict" {
                    (s.verdict.as_str().to_uppercase())
                }
                span class="meta" {
                    "profile " b id="profile" { (d.profile()) }
                    " · target " b id="target" { (d.target()) }
                    " · status " (status)
                    " · started " (started)
                    " · time scale " (num(s.time_scale))
                }
            }
            @if let Some(why) = &s.verdict_reason {
                div class="card warn" id="verdict-reason" { (why) }
            }
            @if let Some(a) = &d.details.aborted {
                div class="card warn" { "Aborted: " (a.to_string()) }
            }
            div class="kpis" {
                (kpi(
                    format!("{} / {}", group(u.succeeded as i128), group(u.planned as i128)),
                    "users succeeded / planned",
                ))
                (kpi(s.rates.error_rate.map_or("–".into(), pct), "error rate of users that arrived"))
                (kpi(oms(s.e2e_ms.p95), "E2E p95 of successful journeys"))
                (kpi(oms(s.e2e_ms.p50), "E2E p50 of successful journeys"))
                (kpi(
                    format!("{}/s", num(s.throughput.flows_per_s)),
                    &format!("journeys/s (peak interval {}/s)", num(s.throughput.peak_flows_per_s)),
                ))
                (kpi(
                    format!("{} / {}", group(u.delayed as i128), group(u.dropped as i128)),
                    "arrivals delayed / dropped",
                ))
            }
            h2 { "Success criteria" }
            table id="criteria" {
                tr { th { "criterion" } th { "target" } th { "actual" } th { "result" } }
                @for c in &s.criteria {
                    tr {
                        td { (c.name) }
                        td { (c.target) }
                        td class="num" { (actual(&c.actual)) }
                        @if c.pass { td class="ok" { "pass" } } @else { td class="bad" { "fail" } }
                    }
                }
                @if s.criteria.is_empty() {
                    tr { td colspan="4" { "no criteria were evaluated" } }
                }
            }
        }
    }
}

fn over_time(d: &RunData, a: &Analysis) -> Markup {
    // A run shorter than a few metrics intervals has too few snapshots: rebuild
    // the series from the journal instead.
    let rebuilt: Option<Vec<super::data::Point>> = match &a.timeline {
        Some(tl) if d.series.len() < 8 && tl.bins.n > d.series.len() => Some(tl.points(d)),
        _ => None,
    };
    let ts: &[super::data::Point] = rebuilt.as_deref().unwrap_or(&d.series);
    let pts = |f: &dyn Fn(&super::data::Point) -> Option<f64>| -> Vec<(f64, f64)> {
        ts.iter().filter_map(|p| f(p).map(|v| (p.t_s, v))).collect()
    };
    let mut figs: Vec<Markup> = Vec::new();
    figs.push(figure(
        svg::line_chart(
            "chart-arrivals",
            "Arrivals: planned vs actual (cumulative)",
            "seconds",
            "users",
            &[
                Series::new("planned", PALETTE[8], Style::Dashed, pts(&|p| Some(p.planned_arrivals as f64))),
                Series::new("actual", PALETTE[0], Style::Line, pts(&|p| Some(p.arrivals as f64))),
            ],
            None,
        ),
        "The schedule's intended arrivals and the arrivals dispatched; a gap means the generator fell behind.",
    ));
    let cap = d.config.max_concurrent_users as f64;
    let max_if = ts.iter().map(|p| p.in_flight).max().unwrap_or(0) as f64;
    figs.push(figure(
        svg::line_chart(
            "chart-inflight",
            "Journeys in flight",
            "seconds",
            "journeys",
            &[Series::new(
                "in flight",
                PALETTE[0],
                Style::Line,
                pts(&|p| Some(p.in_flight as f64)),
            )],
            // The cap line only when in flight came near it (else it flattens the curve).
            (max_if >= 0.3 * cap).then_some((cap, "concurrency cap")),
        ),
        &format!(
            "Journeys running at each snapshot (cap {}); arrivals over the cap wait for a slot.",
            group(cap as i128)
        ),
    ));
    figs.push(figure(
        svg::line_chart(
            "chart-completions",
            "Completions and arrivals per second",
            "seconds",
            "per second",
            &[
                Series::new("completions/s", PALETTE[2], Style::Line, pts(&|p| Some(p.completions_per_s))),
                Series::new("arrivals/s", PALETTE[8], Style::Dashed, pts(&|p| Some(p.arrivals_per_s))),
            ],
            None,
        ),
        "Successful journeys finishing per second; flat completions under rising arrivals is saturation.",
    ));
    let target = d.config.p95_e2e_target_secs;
    let max_e2e = ts.iter().filter_map(|p| p.e2e_p99_ms).fold(0.0, f64::max) / 1000.0;
    figs.push(figure(
        svg::line_chart(
            "chart-e2e",
            "End-to-end latency per interval",
            "seconds",
            "latency (s)",
            &[
                Series::new(
                    "p50",
                    PALETTE[2],
                    Style::Line,
                    pts(&|p| p.e2e_p50_ms.map(|v| v / 1000.0)),
                ),
                Series::new(
                    "p95",
                    PALETTE[1],
                    Style::Line,
                    pts(&|p| p.e2e_p95_ms.map(|v| v / 1000.0)),
                ),
                Series::new(
                    "p99",
                    PALETTE[3],
                    Style::Line,
                    pts(&|p| p.e2e_p99_ms.map(|v| v / 1000.0)),
                ),
            ],
            // The target line only when latencies come near it.
            (max_e2e >= 0.3 * target).then_some((target, "p95 target")),
        ),
        &format!("Percentiles of the journeys that finished in each interval, from the intended start (p95 target {}).", secs(target)),
    ));
    // Errors by class (top 6 by total).
    let mut totals: Vec<(String, u64)> = d
        .summary
        .errors
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    totals.sort_by_key(|t| std::cmp::Reverse(t.1));
    let err_series: Vec<Series> = totals
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, (class, _))| {
            Series::new(
                class,
                PALETTE[(i + 3) % PALETTE.len()],
                Style::Line,
                pts(&|p| Some(*p.errors.get(class).unwrap_or(&0) as f64)),
            )
        })
        .collect();
    if err_series.is_empty() {
        figs.push(figure(
            svg::line_chart(
                "chart-errors",
                "Errors per interval",
                "seconds",
                "failed journeys",
                &[Series::new(
                    "failures",
                    PALETTE[3],
                    Style::Line,
                    pts(&|p| Some(p.interval_failures as f64)),
                )],
                None,
            ),
            "No journey failed.",
        ));
    } else {
        figs.push(figure(
            svg::line_chart(
                "chart-errors",
                "Errors per interval, by class",
                "seconds",
                "failed journeys",
                &err_series,
                None,
            ),
            "Failed journeys in each interval, one line per error class (top six).",
        ));
    }
    // Step latency vs load: the evidence for the bottleneck step.
    if let Some(tl) = &a.timeline {
        let top: Vec<&str> = a
            .bottleneck
            .steps
            .iter()
            .take(3)
            .map(|g| g.step.as_str())
            .collect();
        let series: Vec<Series> = top
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let p50 = &tl.step_p50[*st];
                Series::new(
                    st,
                    PALETTE[i],
                    Style::Dots,
                    p50.iter()
                        .enumerate()
                        .filter_map(|(j, y)| y.map(|y| (tl.in_flight[j], y / 1000.0)))
                        .collect(),
                )
            })
            .collect();
        figs.push(figure(
            svg::line_chart("chart-step-load", "Step median vs journeys in flight", "journeys in flight (interval mean)", "step median (s)", &series, None),
            "Each dot is one interval: the steps whose latency changed most with load. A rising cloud is a step that queues.",
        ));
    }
    // Twin gauges.
    let gauges = gauge_series(d);
    let mut gauge_figs: Vec<Markup> = Vec::new();
    for kind in GaugeKind::ALL {
        if let Some(p) = gauges.get(&kind) {
            let (div, unit) = if kind == GaugeKind::StorageBytes {
                (1e6, "MB")
            } else {
                (1.0, "")
            };
            gauge_figs.push(figure(
                svg::line_chart(
                    &format!("chart-gauge-{}", kind.id()),
                    kind.title(),
                    "seconds",
                    if unit.is_empty() { kind.title() } else { unit },
                    &[Series::new(
                        kind.title(),
                        PALETTE[4],
                        Style::Line,
                        p.iter().map(|(t, v)| (*t, v / div)).collect(),
                    )],
                    None,
                ),
                &format!(
                    "Scraped from the {}'s /metrics each interval.",
                    component_name(kind.component())
                ),
            ));
        }
    }
    html! {
        section id="over-time" {
            h2 { "Over time" }
            @if rebuilt.is_some() {
                p class="note" id="series-rebuilt" {
                    "This run has few metrics snapshots, so these charts are rebuilt from the journal (events.jsonl), one point per bin."
                }
            }
            div class="grid" { @for f in &figs { (f) } }
            h3 { "Component gauges" }
            @if gauges.is_empty() {
                p class="note" id="gauges-none" {
                    "No service gauges were scraped in this run (the twin's gauges appear when the target is the local twin)."
                }
            } @else {
                div class="grid" { @for f in &gauge_figs { (f) } }
            }
            (system(d))
        }
    }
}

/// The load generator's machine over time: host CPU, each watched process's
/// CPU and RSS (`series[].system`), and their peaks.
fn system(d: &RunData) -> Markup {
    let Some(stats) = d.system_stats() else {
        return html! {
            h3 id="system" { "System: the load generator's machine" }
            p class="note" id="system-none" {
                "This run recorded no system metrics (the host's CPU and the CPU and memory of vana-load and the twin's processes are sampled on Linux at each snapshot)."
            }
        };
    };
    let names = d.system_processes();
    let rows = || {
        d.series
            .iter()
            .filter_map(|p| p.system.as_ref().map(|s| (p.t_s, s)))
    };
    let cores = match stats.cores {
        0 => "all cores".to_string(),
        1 => "its one core".to_string(),
        n => format!("all {n} cores"),
    };
    let mut cpu = vec![Series::new(
        "host",
        PALETTE[8],
        Style::Dashed,
        rows()
            .filter_map(|(t, s)| s.host_cpu_pct.map(|v| (t, v)))
            .collect(),
    )];
    let mut rss = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let color = PALETTE[i % 8];
        let proc_pts = |f: &dyn Fn(&crate::sysmon::ProcSample) -> Option<f64>| -> Vec<(f64, f64)> {
            rows()
                .filter_map(|(t, s)| s.processes.get(name).and_then(f).map(|v| (t, v)))
                .collect()
        };
        cpu.push(Series::new(
            name,
            color,
            Style::Line,
            proc_pts(&|p| p.cpu_pct),
        ));
        rss.push(Series::new(
            name,
            color,
            Style::Line,
            proc_pts(&|p| p.rss_mb),
        ));
    }
    let pct_cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0} %"));
    html! {
        h3 id="system" { "System: the load generator's machine" }
        div class="grid" {
            (figure(
                svg::line_chart("chart-system-cpu", "CPU: host and processes", "seconds", "CPU %", &cpu, None),
                &format!("Host: busy share of {cores} (100 % = every core busy). Processes: 100 % = one core busy. Sampled from /proc at each snapshot."),
            ))
            (figure(
                svg::line_chart("chart-system-rss", "Resident memory per process", "seconds", "RSS (MiB)", &rss, None),
                "Resident set size of vana-load and of each watched process (anvil included when the target is the local twin).",
            ))
        }
        table id="system-table" {
            tr { th { "what" } th { "peak CPU" } th { "mean CPU" } th { "peak RSS" } }
            tr {
                td { "host (" (cores) ")" }
                td class="num" { (pct_cell(stats.host.peak_pct)) }
                td class="num" { (pct_cell(stats.host.mean_pct)) }
                td class="num" { "–" }
            }
            @for p in &stats.processes {
                tr {
                    td { (p.name) }
                    td class="num" { (pct_cell(p.cpu.peak_pct)) }
                    td class="num" { (pct_cell(p.cpu.mean_pct)) }
                    td class="num" { (p.peak_rss_mb.map_or("–".into(), |v| format!("{} MiB", num(v)))) }
                }
            }
        }
    }
}

fn bottleneck(a: &Analysis) -> Markup {
    let b = &a.bottleneck;
    html! {
        section id="bottleneck" {
            h2 { "Bottleneck" }
            @for (i, s) in b.sentences.iter().enumerate() {
                div class=(if i == 0 && b.component.is_some() { "card warn" } else { "card" }) { (s) }
            }
            h3 { "Step latency against load" }
            table id="step-growth" {
                tr {
                    th { "step" } th { "component" } th { "median at low load" } th { "median at high load" }
                    th { "in flight low → high" } th { "×" } th { "r" } th { "grows with load" }
                }
                @for g in &b.steps {
                    tr {
                        td { (g.step) }
                        td { (g.component) }
                        td class="num" { (ms(g.low_p50_ms)) }
                        td class="num" { (ms(g.high_p50_ms)) }
                        td class="num" { (num(g.low_in_flight)) " → " (num(g.high_in_flight)) }
                        td class="num" { (num(g.ratio)) }
                        td class="num" { (format!("{:.2}", g.correlation)) }
                        td { (yes_no(g.grows)) }
                    }
                }
            }
            h3 { "Components" }
            table id="components" {
                tr {
                    th { "component" } th { "steps" } th { "saturated" } th { "from" }
                    th { "journeys/s" } th { "failed steps" } th { "evidence" } th { "knob" }
                }
                @for c in &b.components {
                    tr {
                        td { (c.component) }
                        td { (c.steps.join(", ")) }
                        td { (yes_no(c.saturated)) }
                        td class="num" { (c.onset_s.map_or("–".into(), secs)) }
                        td class="num" { (num(c.throughput_per_s)) }
                        td class="num" { (c.errors) }
                        td { (c.evidence.join("; ")) }
                        td { (c.knob) }
                    }
                }
            }
        }
    }
}

fn capacity(a: &Analysis) -> Markup {
    let c = &a.capacity;
    html! {
        section id="capacity" {
            h2 { "Capacity and cost" }
            @for s in &c.sentences {
                div class="card" { (s) }
            }
            table id="capacity-table" {
                tr {
                    th { "component" } th { "journeys/s" } th { "users/day" } th { "vs 100,000/day" }
                    th { "measured" } th { "knob" }
                }
                @for x in &c.components {
                    tr {
                        td { (x.component) }
                        td class="num" { (num(x.journeys_per_s)) }
                        td class="num" { (group(x.users_per_day as i128)) }
                        td class="num" { (num(x.users_per_day / c.target_users_per_day as f64)) "×" }
                        td { (if x.at_saturation { "at saturation" } else { "best observed (≥)" }) }
                        td { (x.knob) }
                    }
                }
                @for ce in &c.chain {
                    tr {
                        td {
                            "chain ceiling (" (ce.label) ": " (group(ce.block_gas_limit as i128))
                            " gas / " (num(ce.block_time_s)) " s)"
                        }
                        td class="num" { (num(ce.journeys_per_s)) }
                        td class="num" { (group(ce.users_per_day as i128)) }
                        td class="num" { (num(ce.margin)) "×" }
                        td { "gas per journey measured" }
                        td { "block gas limit, block time" }
                    }
                }
            }
        }
    }
}

/// The successful journey at quantile `q` of E2E, as segments (name, ms).
fn journey_at(d: &RunData, q: f64) -> Option<(f64, Vec<(String, f64)>)> {
    let mut ok: Vec<&crate::schema::Journey> = d.journeys.iter().filter(|e| e.ok()).collect();
    if ok.is_empty() {
        return None;
    }
    ok.sort_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms));
    let i = (((ok.len() as f64) * q).ceil() as usize).clamp(1, ok.len()) - 1;
    let e = ok[i];
    let total = e.duration_ms;
    let wait = e.wait_ms;
    let mut segs = Vec::new();
    if wait >= 0.5 {
        segs.push(("slot wait".to_string(), wait));
    }
    let mut sum = wait;
    for s in &e.steps {
        segs.push((s.name.clone(), s.ms));
        sum += s.ms;
    }
    if total - sum > 0.5 {
        segs.push(("other".to_string(), total - sum));
    }
    Some((total, segs))
}

fn steps(d: &RunData) -> Markup {
    let rows: Vec<(String, Vec<(String, f64)>)> = [(0.5, "median journey"), (0.95, "p95 journey")]
        .iter()
        .filter_map(|(q, l)| journey_at(d, *q).map(|(_, s)| (l.to_string(), s)))
        .collect();
    let order = d.step_order();
    html! {
        section id="steps" {
            h2 { "Where the time goes" }
            div class="grid" {
                (figure(
                    svg::stacked_hbars("chart-breakdown", "Where a median and a p95 journey spend their time", &rows),
                    "The successful journeys at the median and at the 95th percentile of E2E latency, split into slot wait and the steps' service times.",
                ))
                div {
                    table id="step-table" {
                        tr {
                            th { "step" } th { "component" } th { "count" } th { "errors" }
                            th { "p50 (successful samples)" } th { "p95" } th { "p99" }
                        }
                        @for st in &order {
                            @if let Some(s) = d.summary.steps.get(st) {
                                tr {
                                    td { (st) }
                                    td { (d.component_of(st)) }
                                    td class="num" { (s.count) }
                                    td class="num" { (s.errors) }
                                    td class="num" { (oms(s.p50_ms)) }
                                    td class="num" { (oms(s.p95_ms)) }
                                    td class="num" { (oms(s.p99_ms)) }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Latency histogram per step (successful samples)" }
            div class="grid3" {
                @for (i, st) in order.iter().enumerate() {
                    @if let Some(h) = d.hists.get(&format!("step.{st}")) {
                        figure {
                            (PreEscaped(svg::histogram(
                                &format!("chart-hist-{st}"),
                                st,
                                &svg::hdr_bins(h, 24),
                                PALETTE[i % 6],
                            )))
                        }
                    }
                }
            }
        }
    }
}

fn chain(d: &RunData, a: &Analysis) -> Markup {
    let mut per_block: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut kinds: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for e in &d.journeys {
        for t in &e.txs {
            *per_block.entry(t.block).or_default() += 1;
            kinds.entry(t.kind.clone()).or_default().push(t.confirm_ms);
        }
    }
    if per_block.is_empty() {
        return html! {
            section id="chain" {
                h2 { "Chain" }
                p class="note" id="chain-none" { "This run recorded no transactions." }
            }
        };
    }
    // Transactions per block, including empty blocks in the range.
    let (b0, b1) = (
        *per_block.keys().next().unwrap_or(&0),
        *per_block.keys().last().unwrap_or(&0),
    );
    // Every block in the range (empty ones too); long runs average over groups
    // of blocks so the chart keeps at most 200 bars.
    let span = b1 - b0 + 1;
    let group_of = span.div_ceil(200).max(1);
    let bars: Vec<(String, f64)> = (0..span.div_ceil(group_of))
        .map(|g| {
            let lo = b0 + g * group_of;
            let hi = (lo + group_of - 1).min(b1);
            let n: u64 = per_block.range(lo..=hi).map(|(_, n)| *n).sum();
            (lo.to_string(), n as f64 / (hi - lo + 1) as f64)
        })
        .collect();
    let tx_fig = figure(
        svg::bar_chart(
            "chart-tx-per-block",
            if group_of > 1 {
                "Transactions per block (mean per group of blocks)"
            } else {
                "Transactions per block"
            },
            "transactions",
            &bars,
            PALETTE[0],
        ),
        &format!(
            "{} blocks from {} to {}; at most {} transactions in one block.",
            per_block.len(),
            b0,
            b1,
            per_block.values().max().unwrap_or(&0)
        ),
    );
    let cost = &a.capacity.cost;
    let gas_bars: Vec<(String, f64)> = cost
        .by_kind
        .iter()
        .map(|k| (k.kind.clone(), k.gas_mean))
        .collect();
    let gas_fig = figure(
        svg::bar_chart(
            "chart-gas",
            "Mean gas used per transaction kind",
            "gas",
            &gas_bars,
            PALETTE[1],
        ),
        "From the receipts of every transaction the journeys sent.",
    );
    // Confirm latency per kind from the HDR histograms (fallback: events).
    let conf: Vec<Series> = kinds
        .keys()
        .enumerate()
        .filter_map(|(i, k)| {
            let h = d.hists.get(&format!("tx.{k}.confirm"))?;
            let bins = svg::hdr_bins(h, 20);
            Some(Series::new(
                k,
                PALETTE[i % PALETTE.len()],
                Style::Line,
                bins.iter()
                    .map(|b| ((b.0 * b.1).sqrt(), b.2 as f64))
                    .collect(),
            ))
        })
        .collect();
    let confirm_fig = figure(
        svg::line_chart(
            "chart-confirm",
            "Confirm latency distribution per kind",
            "submission → receipt (ms)",
            "transactions",
            &conf,
            None,
        ),
        "Histogram of submission-to-receipt time, one line per transaction kind.",
    );
    let fee_bars: Vec<(String, f64)> = cost
        .by_kind
        .iter()
        .map(|k| (k.kind.clone(), k.fee_vana_total))
        .collect();
    let fee_fig = figure(
        svg::bar_chart(
            "chart-fees",
            "Fees paid per transaction kind (VANA)",
            "VANA",
            &fee_bars,
            PALETTE[2],
        ),
        "Total fees (gas used × effective gas price) over the run.",
    );
    let confirm_q = |kind: &str, p: f64| {
        let mut v = kinds.get(kind).cloned().unwrap_or_default();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 * p).ceil() as usize).clamp(1, v.len().max(1)) - 1)
            .copied()
    };
    html! {
        section id="chain" {
            h2 { "Chain" }
            div class="grid" { (tx_fig) (gas_fig) (confirm_fig) (fee_fig) }
            table id="tx-table" {
                tr {
                    th { "kind" } th { "count" } th { "mean gas" } th { "fees (VANA)" }
                    th { "confirm p50" } th { "confirm p95" }
                }
                @for k in &cost.by_kind {
                    tr {
                        td { (k.kind) }
                        td class="num" { (k.count) }
                        td class="num" { (group(k.gas_mean as i128)) }
                        td class="num" { (num(k.fee_vana_total)) }
                        td class="num" { (oms(confirm_q(&k.kind, 0.5))) }
                        td class="num" { (oms(confirm_q(&k.kind, 0.95))) }
                    }
                }
            }
            p {
                "Per journey: " (num(cost.txs_per_journey)) " transactions, "
                (group(cost.gas_per_journey as i128)) " gas, "
                (super::fmt::vana(cost.fee_vana_per_journey)) " VANA. Per 100,000 users: "
                (group(cost.gas_per_100k_users as i128)) " gas, "
                (num(cost.fee_vana_per_100k_users)) " VANA."
            }
        }
    }
}

/// The plan's alerting thresholds as watched during the run, and the RPC
/// success rate.
fn alerts(d: &RunData) -> Markup {
    let s = &d.summary;
    let limits = &d.config.alerts;
    let watched: Vec<String> = crate::schema::AlertName::ALL
        .iter()
        .map(|n| {
            let op = if n.fires_below() { "≥" } else { "≤" };
            format!("{} {op} {}", n.label(), n.show(limits.limit(*n)))
        })
        .collect();
    html! {
        section id="alerts" {
            h2 { "Alerts" }
            @if s.alerts.is_empty() {
                p class="note" id="alerts-none" {
                    "No alert fired: " (watched.join(", ")) " over every minute of the run."
                }
            } @else {
                table id="alert-table" {
                    tr {
                        th { "alert" } th { "fires when" } th { "times fired" } th { "first" }
                        th { "last" } th { "worst" }
                    }
                    @for (name, a) in &s.alerts {
                        tr {
                            td { (name.as_str()) }
                            td {
                                (name.label()) " " (if name.fires_below() { "<" } else { ">" }) " "
                                (name.show(a.limit))
                            }
                            td class="num" { (a.count) }
                            td class="num" { (secs(a.first_s)) }
                            td class="num" { (secs(a.last_s)) }
                            td class="num" { (name.show(a.worst)) }
                        }
                    }
                }
            }
            @if let Some(rpc) = &s.rpc {
                p id="rpc" {
                    "JSON-RPC calls: " (group(rpc.calls.total() as i128))
                    " — ok " (group(rpc.calls.ok as i128))
                    ", error " (group(rpc.calls.error as i128))
                    ", timeout " (group(rpc.calls.timeout as i128))
                    "; success rate "
                    (rpc.success_rate.map_or("–".into(), |r| crate::schema::AlertName::RpcSuccessRate.show(r)))
                    "."
                }
            }
            p class="note" {
                "Each alert is measured over the last minute and fires when its limit is crossed, again only after it cleared. Alerts are reported, not judged: they do not change the verdict."
            }
        }
    }
}

fn errors(d: &RunData) -> Markup {
    let infos = &d.details.errors;
    let mut rows: Vec<(String, u64)> = d
        .summary
        .errors
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    html! {
        section id="errors" {
            h2 { "Errors" }
            @if rows.is_empty() {
                p class="note" id="errors-none" { "No journey failed." }
            } @else {
                table id="error-table" {
                    tr {
                        th { "class" } th { "count" } th { "step" } th { "first seen" }
                        th { "last seen" } th { "sample message (redacted)" }
                    }
                    @for (class, n) in rows.iter().take(20) {
                        @let info = infos.get(class);
                        tr {
                            td { code { (class) } }
                            td class="num" { (n) }
                            td { (info.map_or("–", |i| i.step.as_str())) }
                            td class="num" { (info.map_or("–".into(), |i| secs(i.first_s))) }
                            td class="num" { (info.map_or("–".into(), |i| secs(i.last_s))) }
                            td { (info.map_or("", |i| i.sample.as_str())) }
                        }
                    }
                }
            }
            @if !d.details.breakers.is_empty() {
                h3 { "Circuit breakers" }
                table id="breakers" {
                    tr { th { "component" } th { "details" } }
                    @for b in &d.details.breakers {
                        tr {
                            td { (b.component) }
                            td { code { (serde_json::to_string(b).unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
    }
}
