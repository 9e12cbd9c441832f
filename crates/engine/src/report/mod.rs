//! Reports people and CI systems read: turns a results directory into
//! `report.html` (one self-contained page with inline SVG charts), the
//! end-of-run summary for a terminal ([`text`]) and its Markdown twin for CI
//! job summaries ([`markdown`]), `junit.xml` ([`junit`]), `steps.csv` and
//! `timeseries.csv` ([`tables`]), a bottleneck analysis and a capacity
//! projection, and compares two runs. The engine runs the analysis once at the end of a run and writes
//! it into `summary.json` (`bottleneck`) and `details.json` (`capacity`);
//! rendering a report later only rereads the files.
//!
//! ```no_run
//! use vana_load_engine::report::{ReportOptions, write_report};
//! let page = write_report(std::path::Path::new("runs/x"), &ReportOptions::default())?;
//! println!("{}", page.display());
//! # Ok::<(), vana_load_engine::report::ReportError>(())
//! ```

pub mod analysis;
pub mod capacity;
pub mod checks;
pub mod compare;
pub mod data;
pub mod fmt;
pub mod html;
pub mod junit;
pub mod machine;
pub mod markdown;
pub mod shards;
pub mod svg;
pub mod tables;
pub mod text;
pub mod timeline;

use std::path::{Path, PathBuf};

pub use analysis::Bottleneck;
pub use capacity::{Capacity, ChainParams};
pub use compare::{Comparison, compare};
pub use data::{ReportError, RunData};
pub use timeline::Timeline;

/// Settings of the analysis that the results cannot tell.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The real network's block gas limit and block time for the chain ceiling
    /// (default 30M gas, 6 s).
    pub real_chain: ChainParams,
    /// The twin's block settings; when `None`, `run.json`'s `twin` (its
    /// `block_gas_limit` and `block_time_s`) is used if present.
    pub twin_chain: Option<ChainParams>,
}

/// The analysis of a run: timeline, bottleneck, capacity.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub timeline: Option<Timeline>,
    pub bottleneck: Bottleneck,
    pub capacity: Capacity,
}

/// Analyses a loaded run.
pub fn analyse(data: &RunData, opts: &ReportOptions) -> Analysis {
    let timeline = Timeline::build(data);
    let bottleneck = analysis::bottleneck(data, timeline.as_ref());
    let twin = opts.twin_chain.or_else(|| {
        let t = data.run.twin.as_ref()?;
        Some(ChainParams {
            block_gas_limit: t.block_gas_limit,
            block_time_s: t.block_time_s?,
        })
    });
    let capacity = capacity::project(data, &bottleneck, opts.real_chain, twin);
    Analysis {
        timeline,
        bottleneck,
        capacity,
    }
}

/// Renders `dir/report.html` from the results in `dir` (rereads them; writes
/// nothing else). Returns the page's path.
pub fn write_report(dir: &Path, opts: &ReportOptions) -> Result<PathBuf, ReportError> {
    let data = RunData::load(dir)?;
    let a = analyse(&data, opts);
    write_html(&data, &a)
}

/// Writes `report.html` into the run's directory.
pub fn write_html(data: &RunData, a: &Analysis) -> Result<PathBuf, ReportError> {
    let path = data.dir.join("report.html");
    write_atomic(&path, html::render(data, a).as_bytes())?;
    Ok(path)
}

/// The files [`write_ci_outputs`] writes into a results directory.
pub const CI_FILES: [&str; 3] = ["junit.xml", "steps.csv", "timeseries.csv"];

/// Writes `junit.xml`, `steps.csv` and `timeseries.csv` into the run's
/// directory (each atomically). Returns their paths.
pub fn write_ci_outputs(data: &RunData) -> Result<Vec<PathBuf>, ReportError> {
    let render_err = |file: &str, e: &dyn std::fmt::Display| ReportError::Render {
        path: data.dir.join(file),
        message: e.to_string(),
    };
    let junit = junit::render(data).map_err(|e| render_err("junit.xml", &e))?;
    let steps = tables::steps_csv(data).map_err(|e| render_err("steps.csv", &e))?;
    let series = tables::timeseries_csv(data).map_err(|e| render_err("timeseries.csv", &e))?;
    let mut paths = Vec::new();
    for (name, bytes) in CI_FILES
        .into_iter()
        .zip([junit.into_bytes(), steps, series])
    {
        let path = data.dir.join(name);
        write_atomic(&path, &bytes)?;
        paths.push(path);
    }
    Ok(paths)
}

/// The Markdown summary of `dir` (for a CI job summary).
pub fn markdown_report(dir: &Path, opts: &ReportOptions) -> Result<String, ReportError> {
    let data = RunData::load(dir)?;
    let a = analyse(&data, opts);
    Ok(markdown::render(&data, &a))
}

/// Writes a file atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })
}
