//! Reads a results directory back for the report, through the types of
//! [`crate::schema`]: `summary.json`, `details.json`, `config.json`,
//! `run.json`, `timeseries.jsonl`, `events.jsonl` and `histograms.hlog`. Only
//! `summary.json` is required; every other file may be missing (an
//! interrupted or partial run) and the report then says what it could not
//! show. The engine builds the same [`RunData`] in memory at the end of a run
//! ([`RunData::assemble`]), so a report rendered then and one rendered later
//! by `vana-load report DIR` read the same values.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::config::{LoadTestConfig, ResolvedStep};
use crate::schema::{Details, Dropped, Event, Journey, RunInfo, Summary};

/// A report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {message}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{0} is not a results directory (no summary.json)")]
    NotResults(PathBuf),
    #[error("cannot render {path}: {message}")]
    Render { path: PathBuf, message: String },
}

/// One row of `timeseries.jsonl`, read back with the type the engine writes.
pub type Point = crate::metrics::Snapshot;

/// Peaks and means of `series[].system` over the run (see [`RunData::system_stats`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemStats {
    /// Online cores of the machine (the most any snapshot saw).
    pub cores: u32,
    /// Host CPU, busy share of all cores (0–100).
    pub host: CpuStats,
    /// Each watched process, `vana-load` first, then by name.
    pub processes: Vec<ProcStats>,
    /// The CPU the run may use, when less than the machine's cores.
    pub limit: Option<crate::sysmon::CpuLimit>,
}

/// Peak and mean of a CPU share over the snapshots that recorded one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CpuStats {
    pub peak_pct: Option<f64>,
    pub mean_pct: Option<f64>,
}

/// One watched process over the run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcStats {
    pub name: String,
    /// 100 = one core.
    pub cpu: CpuStats,
    pub peak_rss_mb: Option<f64>,
}

impl CpuStats {
    fn of(v: impl Iterator<Item = f64>) -> CpuStats {
        let (mut n, mut sum, mut peak) = (0usize, 0.0, f64::NEG_INFINITY);
        for x in v {
            n += 1;
            sum += x;
            peak = peak.max(x);
        }
        CpuStats {
            peak_pct: (n > 0).then_some(peak),
            mean_pct: (n > 0).then(|| sum / n as f64),
        }
    }
}

/// Everything a results directory holds, parsed.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub summary: Summary,
    /// `details.json` (the defaults when absent).
    pub details: Details,
    /// `run.json` (the defaults when absent).
    pub run: RunInfo,
    /// `config.json` parsed; the defaults when absent or unreadable.
    pub config: LoadTestConfig,
    pub series: Vec<Point>,
    /// The journeys of `flow_complete` and `flow_failed` events (the others
    /// are counted in the summary).
    pub journeys: Vec<Journey>,
    /// `flow_dropped` events: arrivals that never started (queue timeout or a
    /// circuit breaker's shed). They arrived and did not complete.
    pub dropped: Vec<Dropped>,
    /// Tagged histograms of `histograms.hlog` (microseconds).
    pub hists: BTreeMap<String, Histogram<u64>>,
    /// Lines of `events.jsonl` / `timeseries.jsonl` that did not parse.
    pub bad_lines: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, ReportError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ReportError::Parse {
                path: path.to_path_buf(),
                what: "JSON file",
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Reads the JSON lines of `path` that parse as `T`; returns them and the count of bad lines.
fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, usize), ReportError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io(path)(e)),
    };
    let (mut out, mut bad) = (Vec::new(), 0);
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(&line) {
            Ok(v) if keep(&v) => out.push(v),
            Ok(_) => {}
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

fn parse<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &'static str,
    v: serde_json::Value,
) -> Result<T, ReportError> {
    serde_json::from_value(v).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        what,
        message: e.to_string(),
    })
}

impl RunData {
    /// Loads the results directory `dir`.
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        let sp = dir.join("summary.json");
        let raw = read_json(&sp)?.ok_or_else(|| ReportError::NotResults(dir.into()))?;
        let summary: Summary = parse(&sp, "summary.json", raw)?;
        let dp = dir.join("details.json");
        let details = match read_json(&dp)? {
            Some(v) => parse(&dp, "details.json", v)?,
            None => Details::default(),
        };
        let rp = dir.join("run.json");
        let run = match read_json(&rp)? {
            Some(v) => parse(&rp, "run.json", v)?,
            None => RunInfo::default(),
        };
        let config = read_json(&dir.join("config.json"))?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Self::assemble(dir, summary, details, run, config)
    }

    /// A run's data from its typed parts alone, reading nothing: no time
    /// series, journeys or histograms. Enough for what the summary and
    /// details hold (the end-of-run text, `junit.xml`, `steps.csv`).
    pub fn from_parts(dir: &Path, summary: Summary, details: Details, run: RunInfo) -> RunData {
        RunData {
            dir: dir.to_path_buf(),
            summary,
            details,
            run,
            config: LoadTestConfig::default(),
            series: Vec::new(),
            journeys: Vec::new(),
            dropped: Vec::new(),
            hists: BTreeMap::new(),
            bad_lines: 0,
        }
    }

    /// A run's data from its typed parts plus the journal, the time series and
    /// the histograms read from `dir`.
    pub fn assemble(
        dir: &Path,
        summary: Summary,
        details: Details,
        run: RunInfo,
        config: LoadTestConfig,
    ) -> Result<RunData, ReportError> {
        let (series, bad1) = read_lines::<Point>(&dir.join("timeseries.jsonl"), |_| true)?;
        let (events, bad2) = read_lines::<Event>(&dir.join("events.jsonl"), |e| {
            matches!(
                e,
                Event::FlowComplete(_) | Event::FlowFailed(_) | Event::FlowDropped(_)
            )
        })?;
        let mut journeys = Vec::new();
        let mut dropped = Vec::new();
        for e in events {
            match e {
                Event::FlowComplete(j) | Event::FlowFailed(j) => journeys.push(j),
                Event::FlowDropped(d) => dropped.push(d),
                _ => {}
            }
        }
        let hp = dir.join("histograms.hlog");
        let hists = if hp.exists() {
            crate::results::read_hlog(&hp)
                .map_err(io(&hp))?
                .into_iter()
                .filter_map(|(tag, h)| tag.map(|t| (t, h)))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(RunData {
            dir: dir.to_path_buf(),
            summary,
            details,
            run,
            config,
            series,
            journeys,
            dropped,
            hists,
            bad_lines: bad1 + bad2,
        })
    }

    /// The line a report header gives a run that did not time the whole
    /// journey (a component run), so its numbers are not read as a journey's.
    pub fn partial_scope(&self) -> Option<&str> {
        self.run
            .scope
            .as_ref()
            .filter(|s| !s.whole)
            .map(|s| s.description.as_str())
    }

    /// Profile name (run.json, else config).
    pub fn profile(&self) -> String {
        if self.run.profile.is_empty() {
            self.config.profile.clone()
        } else {
            self.run.profile.clone()
        }
    }

    /// What the run was aimed at, from `run.json`; for a results directory
    /// older than the typed schema, the (redacted) RPC hosts of the config.
    pub fn target(&self) -> String {
        if !self.run.target.name.is_empty() {
            return self.run.target.describe();
        }
        let hosts: Vec<&str> = self
            .config
            .rpc_endpoints
            .iter()
            .map(|u| u.split_once("://").map_or(u.as_str(), |(_, r)| r))
            .collect();
        format!("{} (target not recorded)", hosts.join(", "))
    }

    /// Whether the run drove a twin on this machine: the driver and the
    /// services then share one machine (and its CPU).
    pub fn local_twin(&self) -> bool {
        self.run.target.kind == crate::schema::TargetKind::Twin
    }

    pub fn run_id(&self) -> String {
        [&self.run.run_id, &self.details.run_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    }

    /// The steps as the run declared them (`run.json`).
    pub fn steps(&self) -> &[ResolvedStep] {
        &self.run.steps
    }

    /// The component a step belongs to (the step's name when undeclared).
    pub fn component_of<'a>(&'a self, step: &'a str) -> &'a str {
        self.run
            .steps
            .iter()
            .find(|s| s.name == step)
            .map_or(step, |s| s.component.as_str())
    }

    /// The names of the processes `series[].system` watched, `vana-load`
    /// first, then by name.
    pub fn system_processes(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for p in self.series.iter().filter_map(|p| p.system.as_ref()) {
            for k in p.processes.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        names.sort_by_key(|n| (n != crate::sysmon::SELF_NAME, n.clone()));
        names
    }

    /// Peak and mean CPU of the host and of each watched process, and each
    /// process's peak RSS; `None` when no snapshot recorded system metrics.
    pub fn system_stats(&self) -> Option<SystemStats> {
        let rows: Vec<&crate::sysmon::SystemSample> = self
            .series
            .iter()
            .filter_map(|p| p.system.as_ref())
            .collect();
        if rows.is_empty() {
            return None;
        }
        let processes = self
            .system_processes()
            .into_iter()
            .map(|name| {
                let of = |r: &&crate::sysmon::SystemSample| r.processes.get(&name).cloned();
                ProcStats {
                    cpu: CpuStats::of(rows.iter().filter_map(of).filter_map(|p| p.cpu_pct)),
                    peak_rss_mb: rows
                        .iter()
                        .filter_map(of)
                        .filter_map(|p| p.rss_mb)
                        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
                    name,
                }
            })
            .collect();
        Some(SystemStats {
            cores: rows.iter().map(|r| r.host_cores).max().unwrap_or(0),
            host: CpuStats::of(rows.iter().filter_map(|r| r.host_cpu_pct)),
            processes,
            limit: rows.iter().find_map(|r| r.cpu_limit.clone()),
        })
    }

    /// Steps in journey order: the declared ones first, then any others seen.
    pub fn step_order(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .run
            .steps
            .iter()
            .filter(|s| self.summary.steps.contains_key(&s.name))
            .map(|s| s.name.clone())
            .collect();
        for j in &self.journeys {
            for s in &j.steps {
                if !v.contains(&s.name) {
                    v.push(s.name.clone());
                }
            }
        }
        for k in self.summary.steps.keys() {
            if !v.contains(k) {
                v.push(k.clone());
            }
        }
        v
    }
}
