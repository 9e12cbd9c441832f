//! `steps.csv` and `timeseries.csv`: the step table and the time series as
//! CSV, for spreadsheets, CI artifacts and plotting tools that do not read
//! JSON lines. Written with the `csv` crate (quoting is its job).
//!
//! - `steps.csv`: one row per step in the flow's order — `step, component,
//!   count, errors, p50_ms, p95_ms, p99_ms` (percentiles of successful
//!   samples; empty when the step had none).
//! - `timeseries.csv`: one row per line of `timeseries.jsonl`. The fixed
//!   columns come first ([`TIMESERIES_COLUMNS`]); then, for what a run may or
//!   may not have, one column per name seen in any row: `cpu_pct:<process>`
//!   and `rss_mb:<process>` (the watched processes, `vana-load` first),
//!   `p50_ms:<step>` and `p95_ms:<step>` (cumulative, in step order),
//!   `errors:<class>` (failures in the interval) and `gauge:<source>:<metric>`
//!   (scraped gauges). A missing value is an empty cell.

use std::collections::BTreeSet;

use super::data::{Point, RunData};

/// The header of `steps.csv`.
pub const STEPS_COLUMNS: [&str; 7] = [
    "step",
    "component",
    "count",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
];

/// The fixed leading columns of `timeseries.csv`.
pub const TIMESERIES_COLUMNS: [&str; 21] = [
    "t_s",
    "phase",
    "planned_arrivals",
    "arrivals",
    "started",
    "in_flight",
    "succeeded",
    "failed",
    "delayed",
    "dropped",
    "completions_per_s",
    "arrivals_per_s",
    "tx_per_s",
    "interval_failures",
    "e2e_p50_ms",
    "e2e_p95_ms",
    "e2e_p99_ms",
    "schedule_lag_p99_ms",
    "breakers_open",
    "host_cpu_pct",
    "host_cores",
];

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| x.to_string())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    w.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// Renders `steps.csv`.
pub fn steps_csv(d: &RunData) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(STEPS_COLUMNS)?;
    for step in d.step_order() {
        let Some(s) = d.summary.steps.get(&step) else {
            continue;
        };
        w.write_record([
            step.clone(),
            d.component_of(&step).to_string(),
            s.count.to_string(),
            s.errors.to_string(),
            opt(s.p50_ms),
            opt(s.p95_ms),
            opt(s.p99_ms),
        ])?;
    }
    finish(w)
}

/// Reads one cell of a dynamic column from a row.
type Cell = Box<dyn Fn(&Point) -> Option<f64>>;

/// One dynamic column of the time series: its header and how a row fills it.
struct Column {
    name: String,
    get: Cell,
}

fn dynamic_columns(d: &RunData) -> Vec<Column> {
    let mut cols = Vec::new();
    for p in d.system_processes() {
        let (a, b) = (p.clone(), p.clone());
        cols.push(Column {
            name: format!("cpu_pct:{p}"),
            get: Box::new(move |r: &Point| r.system.as_ref()?.processes.get(&a)?.cpu_pct),
        });
        cols.push(Column {
            name: format!("rss_mb:{p}"),
            get: Box::new(move |r: &Point| r.system.as_ref()?.processes.get(&b)?.rss_mb),
        });
    }
    let seen_steps: BTreeSet<&String> = d.series.iter().flat_map(|r| r.steps.keys()).collect();
    let mut order = d.step_order();
    for s in &seen_steps {
        if !order.contains(*s) {
            order.push((*s).clone());
        }
    }
    for step in order.into_iter().filter(|s| seen_steps.contains(&s)) {
        let (a, b) = (step.clone(), step.clone());
        cols.push(Column {
            name: format!("p50_ms:{step}"),
            get: Box::new(move |r: &Point| r.steps.get(&a)?.p50_ms),
        });
        cols.push(Column {
            name: format!("p95_ms:{step}"),
            get: Box::new(move |r: &Point| r.steps.get(&b)?.p95_ms),
        });
    }
    let classes: BTreeSet<&String> = d.series.iter().flat_map(|r| r.errors.keys()).collect();
    for class in classes {
        let c = class.clone();
        cols.push(Column {
            name: format!("errors:{class}"),
            // An interval without failures of this class had none.
            get: Box::new(move |r: &Point| Some(r.errors.get(&c).copied().unwrap_or(0) as f64)),
        });
    }
    let gauges: BTreeSet<(&String, &String)> = d
        .series
        .iter()
        .flat_map(|r| r.gauges.iter())
        .flat_map(|(src, m)| m.keys().map(move |k| (src, k)))
        .collect();
    for (src, metric) in gauges {
        let (s, m) = (src.clone(), metric.clone());
        cols.push(Column {
            name: format!("gauge:{src}:{metric}"),
            get: Box::new(move |r: &Point| r.gauges.get(&s)?.get(&m).copied()),
        });
    }
    cols
}

/// Renders `timeseries.csv`.
pub fn timeseries_csv(d: &RunData) -> Result<Vec<u8>, csv::Error> {
    let cols = dynamic_columns(d);
    let mut w = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = TIMESERIES_COLUMNS
        .iter()
        .copied()
        .chain(cols.iter().map(|c| c.name.as_str()))
        .collect();
    w.write_record(&header)?;
    for r in &d.series {
        let sys = r.system.as_ref();
        let mut row: Vec<String> = vec![
            r.t_s.to_string(),
            r.phase.clone(),
            r.planned_arrivals.to_string(),
            r.arrivals.to_string(),
            r.started.to_string(),
            r.in_flight.to_string(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            r.delayed.to_string(),
            r.dropped.to_string(),
            r.completions_per_s.to_string(),
            r.arrivals_per_s.to_string(),
            r.tx_per_s.to_string(),
            r.interval_failures.to_string(),
            opt(r.e2e_p50_ms),
            opt(r.e2e_p95_ms),
            opt(r.e2e_p99_ms),
            opt(r.schedule_lag_p99_ms),
            r.breakers_open.join(";"),
            opt(sys.and_then(|s| s.host_cpu_pct)),
            sys.filter(|s| s.host_cores > 0)
                .map_or_else(String::new, |s| s.host_cores.to_string()),
        ];
        row.extend(cols.iter().map(|c| opt((c.get)(r))));
        w.write_record(&row)?;
    }
    finish(w)
}
