//! The report's charts over time: throughput, latency, in-flight users, errors,
//! the service gauges, and the load generator's machine (host CPU, each watched
//! process's CPU and RSS).

use maud::{Markup, html};

use super::figure;
use crate::report::Analysis;
use crate::report::analysis::{GaugeKind, component_name, gauge_series};
use crate::report::data::{Point, RunData};
use crate::report::fmt::{group, num, secs};
use crate::report::svg::{self, PALETTE, Series, Style};

pub(super) fn over_time(d: &RunData, a: &Analysis) -> Markup {
    // A run shorter than a few metrics intervals has too few snapshots: rebuild
    // the series from the journal instead.
    let rebuilt: Option<Vec<Point>> = match &a.timeline {
        Some(tl) if d.series.len() < 8 && tl.bins.n > d.series.len() => Some(tl.points(d)),
        _ => None,
    };
    let ts: &[Point] = rebuilt.as_deref().unwrap_or(&d.series);
    let pts = |f: &dyn Fn(&Point) -> Option<f64>| -> Vec<(f64, f64)> {
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
                &format!("Host: busy share of {cores} (100 % = every core busy){}. Processes: 100 % = one core busy. Sampled from /proc at each snapshot.", stats.limit.as_ref().map_or(String::new(), |l| format!("; the run may use {} of them", l.describe()))),
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
