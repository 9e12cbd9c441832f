//! `merge`: one results directory from the shards of a run (`--shard i/n`),
//! judged as one run.
//!
//! The merged directory holds what a single process's would: `events.jsonl`
//! ([`events`]), `histograms.hlog` (the shards' histograms added: exactly the
//! histograms of one process that recorded every sample, [`recorder`]),
//! `timeseries.jsonl` and `intervals.hlog` aligned on the shared start
//! ([`series`]), `config.json` (the whole run's config), and `summary.json`,
//! `details.json`, `run.json`, the report and the CI files. The verdict is
//! judged on the merged measurements by the same code as a single run's
//! ([`crate::run`]'s judgement), never by a vote of the shards.
//!
//! Shards of different runs, of different splits, given twice, unfinished or
//! missing are refused by name ([`load`]). With `allow_partial` the shards
//! present are merged; the users of the missing ones count as planned users
//! that never arrived, a `shards` criterion fails, and the verdict is `fail`
//! with the missing shards named: a run that did not run as planned is never
//! a pass (as for an interrupted single run).

mod events;
mod load;
mod recorder;
mod series;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::breaker::BreakerReport;
use crate::config::LoadTestConfig;
use crate::metrics::{Recorder, Snapshot};
use crate::results::{LineWriter, append_hlog, tagged_histograms, write_json};
use crate::run::{EngineError, RunOutcome};
use crate::schedule::Schedule;
use crate::schema::{
    AbortReason, AlertName, AlertSummary, Criterion, RpcSummary, RunInfo, RunStatus, Verdict,
};
use crate::shard::{MergeInfo, ShardRow};
use crate::threshold::Threshold;

use load::ShardRun;

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Merge the shards present even when some are missing or unfinished
    /// (the verdict then fails, naming them).
    pub allow_partial: bool,
}

/// Shards that cannot be merged, or a merge that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no shard directories given")]
    NoInput,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{0} is not a shard of a run: its run.json names no shard (run each part with --shard i/n)"
    )]
    NotAShard(PathBuf),
    #[error(
        "{dir} holds run `{found}`, but {first} holds run `{expected}`: shards of different runs cannot be merged"
    )]
    RunId {
        dir: PathBuf,
        found: String,
        first: PathBuf,
        expected: String,
    },
    #[error("{dir} is shard {shard}, but {first} is one of {expected} shards")]
    Count {
        dir: PathBuf,
        shard: String,
        first: PathBuf,
        expected: u32,
    },
    #[error("shard {shard} is given twice: {a} and {b}")]
    Duplicate {
        shard: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error(
        "run `{run_id}`: shard {} missing; pass every shard's directory, or --allow-partial to merge those present (the verdict then fails)",
        shards.join(", ")
    )]
    Missing { run_id: String, shards: Vec<String> },
    #[error(
        "{dir} (shard {shard}) has not finished: its run.json says `running` (still running, or killed); wait for it, or --allow-partial to merge without it"
    )]
    Unfinished { dir: PathBuf, shard: String },
    #[error("run `{0}`: no shard has finished")]
    NothingFinished(String),
    #[error("{dir} (shard {shard}) ran another config than {first}: `{field}` differs")]
    Config {
        dir: PathBuf,
        shard: String,
        first: PathBuf,
        field: String,
    },
    #[error("{dir} (shard {shard}): {what}")]
    Inconsistent {
        dir: PathBuf,
        shard: String,
        what: String,
    },
    #[error("user {user} was run by both shard {a} and shard {b}")]
    Overlap { user: u64, a: String, b: String },
    #[error("histograms cannot be added: {0}")]
    Histogram(String),
    #[error("{0} already holds results (events.jsonl); choose another --out")]
    OutNotEmpty(PathBuf),
    #[error("{0} is one of the shards' directories; choose another --out")]
    OutIsInput(PathBuf),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl MergeError {
    /// Every refusal is a usage error (exit code 2).
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// Merges the shard directories `dirs` into `out` and judges the merged run.
pub fn merge(dirs: &[PathBuf], out: &Path, opts: &MergeOptions) -> Result<RunOutcome, MergeError> {
    if dirs.iter().any(|d| same_dir(d, out)) {
        return Err(MergeError::OutIsInput(out.to_path_buf()));
    }
    let set = load::load_set(dirs, opts.allow_partial)?;
    let io = |source| MergeError::Io {
        path: out.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    if std::fs::metadata(out.join("events.jsonl")).is_ok_and(|m| m.len() > 0) {
        return Err(MergeError::OutNotEmpty(out.to_path_buf()));
    }
    let shards = &set.shards;
    let zero_ms = shards
        .iter()
        .filter_map(|s| s.run.schedule_start_ms)
        .min()
        .unwrap_or(0);
    let shifts: Vec<f64> = shards.iter().map(|s| s.shift_s(zero_ms)).collect();
    let cfg = whole_config(&shards[0]);
    write_json(out, "config.json", &cfg.redacted_json()).map_err(io)?;

    // The measurements: one recorder, the sum of the shards'.
    let mut rec = Recorder::new(0);
    for (s, shift) in shards.iter().zip(&shifts) {
        recorder::absorb(&mut rec, &recorder::of_shard(s, *shift)?)?;
    }
    // The users of missing shards were planned and never arrived.
    rec.planned = cfg.total_users;

    let mut journal = Vec::new();
    events::merge_events(shards, &shifts, out, |ev| {
        journal.extend(series::JournalEntry::of(ev));
    })?;
    let sched = Schedule::from_config(&cfg);
    let interval = cfg.metrics_interval;
    let intervals = series::merge_intervals(shards, &shifts, interval)?;
    let rows = series::merge_series(shards, &shifts, interval, &sched, &mut journal, &intervals);
    rec.peak_completions_per_s = rows
        .iter()
        .map(|(_, r)| r)
        .scan(0.0, |prev, r| {
            let len = r.t_s - *prev;
            *prev = r.t_s;
            Some((len, r.completions_per_s))
        })
        .filter(|(len, _)| *len >= 0.5 * interval)
        .map(|(_, c)| c)
        .fold(0.0, f64::max);
    write_series(out, &rows)?;
    write_intervals(out, &rows, &intervals)?;
    let hl = out.join("histograms.hlog");
    let _ = std::fs::remove_file(&hl);
    let end = rec.last_completion_s.unwrap_or(0.0).max(0.0);
    append_hlog(
        &hl,
        std::time::Duration::ZERO,
        std::time::Duration::from_secs_f64(end),
        &tagged_histograms(&rec),
    )
    .map_err(|source| MergeError::Io { path: hl, source })?;

    // The judgement, on the merged data.
    let aborted = shards.iter().find_map(|s| s.run.aborted.clone());
    let run = merged_run(&set, &cfg, zero_ms, &aborted);
    let thresholds: Vec<Threshold> = cfg
        .thresholds
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let started_at = chrono::DateTime::parse_from_rfc3339(&run.started_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let gauge_max = shards.iter().flat_map(|s| s.details.gauge_max.iter()).fold(
        BTreeMap::new(),
        |mut m, (k, v)| {
            let e = m.entry(k.clone()).or_insert(*v);
            *e = e.max(*v);
            m
        },
    );
    let (mut summary, mut details) = crate::run::judge(crate::run::JudgeInputs {
        cfg: &cfg,
        steps: &run.steps,
        rec: &rec,
        thresholds: &thresholds,
        breakers: breakers(shards, &shifts),
        aborted: aborted.clone(),
        sched: &sched,
        gauge_max,
        run_id: &run.run_id,
        target: &run.target,
        started_at: &started_at,
        resumed: run.resumed,
    });
    summary.alerts = alerts(shards, &shifts);
    summary.rpc = rpc(shards);
    details.shards = shards.iter().map(row_of).collect();
    judge_shards(&mut summary, &set, &rec);
    Ok(crate::run::finish(
        out.to_path_buf(),
        run,
        cfg.redacted(),
        (summary, details),
        aborted,
        None,
    )?)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The whole run's config: a shard's, with the whole concurrency cap.
fn whole_config(s: &ShardRun) -> LoadTestConfig {
    let mut c = s.config.clone();
    c.max_concurrent_users = s.shard.total_max_concurrent_users;
    c
}

fn merged_run(
    set: &load::ShardSet,
    cfg: &LoadTestConfig,
    zero_ms: i64,
    aborted: &Option<AbortReason>,
) -> RunInfo {
    let shards = &set.shards;
    let first = &shards[0].run;
    let rank = |s: RunStatus| match s {
        RunStatus::Completed => 0,
        RunStatus::Aborted => 1,
        RunStatus::Interrupted => 2,
        RunStatus::Running => 3,
    };
    let status = shards
        .iter()
        .map(|s| s.run.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(RunStatus::Completed);
    let started_at = shards
        .iter()
        .map(|s| s.run.started_at.clone())
        .min()
        .unwrap_or_default();
    let now = chrono::Utc::now().to_rfc3339();
    let mut versions = first.versions.clone();
    versions.insert("vana-load merge".into(), env!("CARGO_PKG_VERSION").into());
    RunInfo {
        schema_version: crate::schema::SCHEMA_VERSION,
        run_id: first.run_id.clone(),
        status,
        aborted: aborted.clone(),
        profile: first.profile.clone(),
        target: first.target.clone(),
        time_scale: cfg.time_scale,
        total_users: cfg.total_users,
        seed: cfg.seed,
        arrival: cfg.arrival,
        resumed: shards.iter().any(|s| s.run.resumed),
        started_at,
        updated_at: now,
        versions,
        steps: first.steps.clone(),
        scope: first.scope.clone(),
        twin: first.twin.clone(),
        schedule_start_ms: Some(zero_ms),
        start_at: first.start_at.clone(),
        start_lag_ms: shards
            .iter()
            .filter_map(|s| s.run.start_lag_ms)
            .reduce(f64::max),
        shard: None,
        merged: Some(MergeInfo {
            count: set.count,
            merged: shards.iter().map(|s| s.shard.index).collect(),
            missing: set.missing.clone(),
        }),
    }
}

fn row_of(s: &ShardRun) -> ShardRow {
    let u = &s.summary.users;
    ShardRow {
        index: s.shard.index,
        count: s.shard.count,
        dir: s.dir.display().to_string(),
        status: s.run.status,
        planned: u.planned,
        succeeded: u.succeeded,
        not_succeeded: u.failed + u.dropped + u.cancelled,
        start_lag_ms: s.run.start_lag_ms,
        schedule_lag_ms: s.details.schedule_lag_ms.clone(),
        verdict: s.summary.verdict,
    }
}

/// The `shards` criterion; missing shards make the verdict `fail`, naming them.
fn judge_shards(summary: &mut crate::schema::Summary, set: &load::ShardSet, rec: &Recorder) {
    let n = set.count;
    let present = set.shards.len();
    let missing: Vec<String> = set.missing.iter().map(|i| format!("{i}/{n}")).collect();
    let unfinished = set.unfinished.len();
    let pass = missing.is_empty();
    summary.criteria.push(Criterion {
        name: "shards".into(),
        target: format!("all {n} shards merged"),
        actual: serde_json::json!(format!("{present} of {n}")),
        pass,
        reason: (!pass).then(|| {
            let mut r = format!("missing shard {}", missing.join(", "));
            if unfinished > 0 {
                r.push_str(&format!(" ({unfinished} of them unfinished)"));
            }
            r
        }),
    });
    if !pass {
        let never = rec.planned.saturating_sub(rec.arrived);
        let mut why = format!(
            "shard {} missing from the merge (--allow-partial): {never} planned users never \
             arrived, and the figures describe the {present} shards present only",
            missing.join(", ")
        );
        if let Some(r) = &summary.verdict_reason {
            why.push_str("; ");
            why.push_str(r);
        }
        summary.verdict = Verdict::Fail;
        summary.verdict_reason = Some(why);
    }
}

/// The breakers of every shard, by component: trips and sheds add up.
fn breakers(shards: &[ShardRun], shifts: &[f64]) -> Vec<BreakerReport> {
    let mut by: BTreeMap<String, BreakerReport> = BTreeMap::new();
    for (s, shift) in shards.iter().zip(shifts) {
        for b in &s.details.breakers {
            let e = by
                .entry(b.component.clone())
                .or_insert_with(|| BreakerReport {
                    component: b.component.clone(),
                    trips: 0,
                    shed: 0,
                    opened_at_s: Vec::new(),
                    open_at_end: false,
                });
            e.trips += b.trips;
            e.shed += b.shed;
            e.opened_at_s
                .extend(b.opened_at_s.iter().map(|t| t + shift));
            e.open_at_end |= b.open_at_end;
        }
    }
    by.into_values()
        .map(|mut b| {
            b.opened_at_s.sort_by(f64::total_cmp);
            b
        })
        .collect()
}

/// How often each alert fired in any shard (alerts are reported, never judged).
fn alerts(shards: &[ShardRun], shifts: &[f64]) -> BTreeMap<AlertName, AlertSummary> {
    let mut out: BTreeMap<AlertName, AlertSummary> = BTreeMap::new();
    for (s, shift) in shards.iter().zip(shifts) {
        for (name, a) in &s.summary.alerts {
            let (first, last) = (a.first_s + shift, a.last_s + shift);
            match out.get_mut(name) {
                None => {
                    let mut a = a.clone();
                    (a.first_s, a.last_s) = (first, last);
                    out.insert(*name, a);
                }
                Some(x) => {
                    x.count += a.count;
                    x.first_s = x.first_s.min(first);
                    x.last_s = x.last_s.max(last);
                    x.worst = if name.fires_below() {
                        x.worst.min(a.worst)
                    } else {
                        x.worst.max(a.worst)
                    };
                }
            }
        }
    }
    out
}

fn rpc(shards: &[ShardRun]) -> Option<RpcSummary> {
    let mut calls = None;
    for s in shards.iter().filter_map(|s| s.summary.rpc.as_ref()) {
        calls
            .get_or_insert_with(crate::schema::RpcCounts::default)
            .add(&s.calls);
    }
    calls.map(RpcSummary::of)
}

fn write_series(out: &Path, rows: &[(i64, Snapshot)]) -> Result<(), MergeError> {
    let path = out.join("timeseries.jsonl");
    let _ = std::fs::remove_file(&path);
    let io = |source| MergeError::Io {
        path: path.clone(),
        source,
    };
    let mut w = LineWriter::<Snapshot>::open(&path).map_err(io)?;
    for (_, r) in rows {
        w.send(r.clone());
    }
    w.close().map_err(io)
}

fn write_intervals(
    out: &Path,
    rows: &[(i64, Snapshot)],
    intervals: &BTreeMap<i64, crate::metrics::Hist>,
) -> Result<(), MergeError> {
    let path = out.join("intervals.hlog");
    let _ = std::fs::remove_file(&path);
    let mut prev = 0.0f64;
    for (b, row) in rows {
        if let Some(h) = intervals.get(b) {
            let len = (row.t_s - prev).max(0.0);
            append_hlog(
                &path,
                std::time::Duration::from_secs_f64(prev),
                std::time::Duration::from_secs_f64(len),
                &[("e2e".to_string(), h)],
            )
            .map_err(|source| MergeError::Io {
                path: path.clone(),
                source,
            })?;
        }
        prev = row.t_s;
    }
    Ok(())
}
