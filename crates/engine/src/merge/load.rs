//! Reading the shards' results directories and checking that they are one run:
//! the same run id, the same number of shards, each shard once, finished, and
//! the same config (apart from each shard's slice of the concurrency cap).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::MergeError;
use crate::config::LoadTestConfig;
use crate::metrics::Snapshot;
use crate::results::{HlogEntry, read_hlog_entries};
use crate::schema::{Details, RunInfo, RunStatus, Summary};
use crate::shard::ShardInfo;

/// One shard's results, read.
#[derive(Debug, Clone)]
pub(crate) struct ShardRun {
    pub dir: PathBuf,
    pub run: RunInfo,
    pub shard: ShardInfo,
    pub summary: Summary,
    pub details: Details,
    pub config: LoadTestConfig,
    /// `histograms.hlog`: the final tagged histograms.
    pub hists: Vec<HlogEntry>,
    /// `intervals.hlog`: the E2E histogram of each metrics interval.
    pub intervals: Vec<HlogEntry>,
    /// `timeseries.jsonl`.
    pub series: Vec<Snapshot>,
}

impl ShardRun {
    /// `shard i/n` for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.shard.index, self.shard.count)
    }

    /// Seconds from the merged run's time zero (`zero_ms`) to this shard's.
    pub fn shift_s(&self, zero_ms: i64) -> f64 {
        self.run
            .schedule_start_ms
            .map_or(0.0, |ms| (ms - zero_ms) as f64 / 1000.0)
    }
}

fn read<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, MergeError> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|source| MergeError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| MergeError::Parse {
        path,
        message: e.to_string(),
    })
}

fn hlog(dir: &Path, name: &str) -> Result<Vec<HlogEntry>, MergeError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_hlog_entries(&path).map_err(|source| MergeError::Io { path, source })
}

/// The identity of a shard directory: its `run.json` alone (enough to check
/// the set before reading the rest).
pub(crate) fn identify(dir: &Path) -> Result<(RunInfo, ShardInfo), MergeError> {
    let run: RunInfo = read(dir, "run.json")?;
    let shard = run
        .shard
        .clone()
        .ok_or_else(|| MergeError::NotAShard(dir.to_path_buf()))?;
    Ok((run, shard))
}

/// Reads a finished shard's directory.
pub(crate) fn load(dir: &Path, run: RunInfo, shard: ShardInfo) -> Result<ShardRun, MergeError> {
    let series_path = dir.join("timeseries.jsonl");
    let series = match std::fs::read_to_string(&series_path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(MergeError::Io {
                path: series_path,
                source,
            });
        }
    };
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        summary: read(dir, "summary.json")?,
        details: read(dir, "details.json")?,
        config: read(dir, "config.json")?,
        hists: hlog(dir, "histograms.hlog")?,
        intervals: hlog(dir, "intervals.hlog")?,
        series,
        run,
        shard,
    })
}

/// The shards found, and the indices missing, of one run.
pub(crate) struct ShardSet {
    pub shards: Vec<ShardRun>,
    pub count: u32,
    pub missing: Vec<u32>,
    /// Shards given but not finished (counted among the missing).
    pub unfinished: Vec<(u32, PathBuf)>,
}

/// Reads and checks every directory; refuses, by name, shards of another run
/// or another split, a shard given twice, a missing or unfinished shard
/// (unless `allow_partial`) and shards that ran different configs.
pub(crate) fn load_set(dirs: &[PathBuf], allow_partial: bool) -> Result<ShardSet, MergeError> {
    let first = dirs.first().ok_or(MergeError::NoInput)?;
    let (first_run, first_shard) = identify(first)?;
    let mut seen: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut found = Vec::new();
    let mut unfinished = Vec::new();
    for dir in dirs {
        let (run, shard) = identify(dir)?;
        if run.run_id != first_run.run_id {
            return Err(MergeError::RunId {
                dir: dir.clone(),
                found: run.run_id,
                first: first.clone(),
                expected: first_run.run_id.clone(),
            });
        }
        if shard.count != first_shard.count {
            return Err(MergeError::Count {
                dir: dir.clone(),
                shard: format!("{}/{}", shard.index, shard.count),
                first: first.clone(),
                expected: first_shard.count,
            });
        }
        if let Some(other) = seen.insert(shard.index, dir.clone()) {
            return Err(MergeError::Duplicate {
                shard: format!("{}/{}", shard.index, shard.count),
                a: other,
                b: dir.clone(),
            });
        }
        if run.status == RunStatus::Running {
            unfinished.push((shard.index, dir.clone()));
            continue;
        }
        found.push((dir.clone(), run, shard));
    }
    let count = first_shard.count;
    let missing: Vec<u32> = (1..=count)
        .filter(|i| found.iter().all(|(_, _, s)| s.index != *i))
        .collect();
    if !allow_partial {
        if let Some((index, dir)) = unfinished.first() {
            return Err(MergeError::Unfinished {
                dir: dir.clone(),
                shard: format!("{index}/{count}"),
            });
        }
        if !missing.is_empty() {
            return Err(MergeError::Missing {
                run_id: first_run.run_id.clone(),
                shards: missing.iter().map(|i| format!("{i}/{count}")).collect(),
            });
        }
    }
    if found.is_empty() {
        return Err(MergeError::NothingFinished(first_run.run_id));
    }
    let mut shards = Vec::new();
    for (dir, run, shard) in found {
        shards.push(load(&dir, run, shard)?);
    }
    shards.sort_by_key(|s| s.shard.index);
    check_configs(&shards)?;
    Ok(ShardSet {
        shards,
        count,
        missing,
        unfinished,
    })
}

/// Every shard must have run the same config; only the cap's slice differs.
fn check_configs(shards: &[ShardRun]) -> Result<(), MergeError> {
    let comparable = |s: &ShardRun| {
        let mut c = s.config.clone();
        c.max_concurrent_users = s.shard.total_max_concurrent_users;
        serde_json::to_value(c).unwrap_or_default()
    };
    let base = &shards[0];
    let want = comparable(base);
    for s in &shards[1..] {
        let got = comparable(s);
        if got != want {
            let field = match (&got, &want) {
                (serde_json::Value::Object(a), serde_json::Value::Object(b)) => a
                    .iter()
                    .find(|(k, v)| b.get(*k) != Some(v))
                    .map_or_else(|| "?".to_string(), |(k, _)| k.clone()),
                _ => "?".to_string(),
            };
            return Err(MergeError::Config {
                dir: s.dir.clone(),
                shard: s.name(),
                first: base.dir.clone(),
                field,
            });
        }
        if s.shard.total_max_concurrent_users != base.shard.total_max_concurrent_users {
            return Err(MergeError::Config {
                dir: s.dir.clone(),
                shard: s.name(),
                first: base.dir.clone(),
                field: "maxConcurrentUsers".into(),
            });
        }
    }
    Ok(())
}
