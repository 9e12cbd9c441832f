//! Reports people read: turns a results directory into `report.html` (one
//! self-contained page with inline SVG charts), a Markdown summary for CI job
//! summaries, a bottleneck analysis and a capacity projection (also added to
//! `summary.json` as `bottleneck` and to `details.json` as `capacity`), and
//! compares two runs.
//!
//! ```no_run
//! use vana_load_engine::report::{ReportOptions, write_report};
//! let paths = write_report(std::path::Path::new("runs/x"), &ReportOptions::default())?;
//! println!("{}", paths.html.display());
//! # Ok::<(), vana_load_engine::report::ReportError>(())
//! ```

pub mod analysis;
pub mod capacity;
pub mod compare;
pub mod data;
pub mod fmt;
pub mod html;
pub mod markdown;
pub mod svg;
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
    /// The twin's block settings; when `None`, `run.json`'s `chain` object
    /// (`block_gas_limit`, `block_time_s`) is used if present.
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
        let c = data.run.get("chain")?;
        Some(ChainParams {
            block_gas_limit: c.get("block_gas_limit")?.as_u64()?,
            block_time_s: c.get("block_time_s")?.as_f64()?,
        })
    });
    let capacity = capacity::project(data, &bottleneck, opts.real_chain, twin);
    Analysis {
        timeline,
        bottleneck,
        capacity,
    }
}

/// Files written by [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub html: PathBuf,
    /// Gains `bottleneck`.
    pub summary: PathBuf,
    /// Gains `capacity`.
    pub details: PathBuf,
}

/// Renders `dir/report.html`, adds `bottleneck` to `dir/summary.json` and
/// `capacity` to `dir/details.json` (both additive; re-running replaces them).
pub fn write_report(dir: &Path, opts: &ReportOptions) -> Result<ReportPaths, ReportError> {
    let data = RunData::load(dir)?;
    let a = analyse(&data, opts);
    let html_path = dir.join("report.html");
    write_atomic(&html_path, html::render(&data, &a).as_bytes())?;
    let add = |name: &str, raw: &serde_json::Value, key: &str, v: serde_json::Value| {
        let mut raw = raw.clone();
        if let Some(m) = raw.as_object_mut() {
            m.insert(key.into(), v);
        }
        crate::results::write_json(dir, name, &raw).map_err(|source| ReportError::Io {
            path: dir.join(name),
            source,
        })
    };
    add(
        "summary.json",
        &data.summary_raw,
        "bottleneck",
        serde_json::to_value(&a.bottleneck).unwrap_or_default(),
    )?;
    if data.details.is_object() {
        add(
            "details.json",
            &data.details,
            "capacity",
            serde_json::to_value(&a.capacity).unwrap_or_default(),
        )?;
    }
    Ok(ReportPaths {
        html: html_path,
        summary: dir.join("summary.json"),
        details: dir.join("details.json"),
    })
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
