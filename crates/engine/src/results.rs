//! The results directory of a run.
//!
//! - `events.jsonl` — the plan's structured log, one JSON object per line, flushed
//!   as events happen (a writer thread drains a channel and flushes when idle):
//!   `flow_start`, `flow_complete`, `flow_failed`, plus `flow_dropped` and
//!   `flow_cancelled`. It is also the run's journal: see [`crate::journal`].
//! - `timeseries.jsonl` — one [`crate::metrics::Snapshot`] per `metricsInterval`.
//! - `intervals.hlog` — per-interval E2E histograms (HdrHistogram interval log,
//!   V2 deflate, base64 per line), appended at each snapshot.
//! - `histograms.hlog` — the final cumulative histograms, one tagged line each
//!   (`e2e`, `e2e.failed.<class>`, `step.<name>`, `step.<name>.failed.<class>`,
//!   `queue_wait`, `schedule_lag`, `tx.<kind>.confirm`), mergeable across machines.
//! - `summary.json` — exactly the fields; `details.json` — the plan's
//!   `LoadTestMetrics` groups, breakers, thresholds, schedule accuracy.
//! - `config.json` — the config with secrets redacted; `run.json` — run identity
//!   and status (`running`, `completed`, `aborted`, `interrupted`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use serde::{Deserialize, Serialize};

use crate::metrics::{Hist, Recorder};

/// One line of `events.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Event {
    /// `flow_start`, `flow_complete`, `flow_failed`, `flow_dropped` or `flow_cancelled`.
    pub event: String,
    pub wallet: String,
    pub test_id: String,
    /// Wall-clock milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The user's index in the schedule.
    pub user: u64,
    /// Intended start, milliseconds after the schedule start.
    pub intended_ms: f64,
    /// End-to-end latency from the intended start (complete/failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Wait for a concurrency slot (start/complete/failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<f64>,
    /// The failed step (failed), or the step running at cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The error class (failed), or the drop reason (`queue_timeout`, `breaker(<component>)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed: Option<bool>,
    /// Per-step service times (complete/failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<EventStep>,
    /// Transactions sent (complete/failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txs: Vec<EventTx>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventStep {
    pub name: String,
    pub ms: f64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventTx {
    pub kind: String,
    pub gas_used: u64,
    /// Decimal string (u128 does not fit JSON numbers).
    pub fee_wei: String,
    pub confirm_ms: f64,
    pub block: u64,
}

/// Appends JSON lines to a file from a dedicated thread, which also does the
/// serialisation (keeping it off the async workers); flushes whenever the queue is empty.
pub struct LineWriter<T: Serialize + Send + 'static> {
    tx: Option<mpsc::Sender<T>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl<T: Serialize + Send + 'static> LineWriter<T> {
    pub fn open(path: &Path) -> std::io::Result<LineWriter<T>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<T>();
        let thread = std::thread::Builder::new()
            .name("vana-load-writer".into())
            .spawn(move || {
                let mut w = BufWriter::with_capacity(1 << 16, file);
                let put = |w: &mut BufWriter<File>, v: T| -> std::io::Result<()> {
                    serde_json::to_writer(&mut *w, &v)?;
                    w.write_all(b"\n")
                };
                while let Ok(v) = rx.recv() {
                    put(&mut w, v)?;
                    while let Ok(v) = rx.try_recv() {
                        put(&mut w, v)?;
                    }
                    w.flush()?;
                }
                w.flush()
            })?;
        Ok(LineWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one line.
    pub fn send(&self, v: T) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(v);
        }
    }

    /// Flushes and closes the file.
    pub fn close(&mut self) -> std::io::Result<()> {
        self.tx.take();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("writer panicked"))),
            None => Ok(()),
        }
    }
}

impl<T: Serialize + Send + 'static> Drop for LineWriter<T> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// `summary.json`: exactly the fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub users: Users,
    pub e2e_ms: E2e,
    pub steps: BTreeMap<String, StepSummary>,
    pub errors: BTreeMap<String, u64>,
    pub throughput: Throughput,
    pub criteria: Vec<Criterion>,
    /// `pass` or `fail`.
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Users {
    pub planned: u64,
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub delayed: u64,
    pub dropped: u64,
}

/// Percentiles of successful journeys, from the intended start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct E2e {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StepSummary {
    /// Samples of the step (successful and failed).
    pub count: u64,
    pub errors: u64,
    /// Percentiles of successful samples.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Throughput {
    /// Successful journeys per second over the load phases (first arrival → last completion).
    pub flows_per_s: f64,
    /// Highest per-interval successful completions per second.
    pub peak_flows_per_s: f64,
    pub tx_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Criterion {
    pub name: String,
    pub target: String,
    pub actual: serde_json::Value,
    pub pass: bool,
}

impl Summary {
    /// Everything but the criteria and verdict, from the recorder.
    pub fn from_recorder(r: &Recorder) -> Summary {
        let load_s = r.load_seconds();
        let per_s = |n: u64| load_s.map_or(0.0, |s| n as f64 / s);
        Summary {
            users: Users {
                planned: r.planned,
                started: r.started,
                succeeded: r.succeeded,
                failed: r.failed,
                delayed: r.delayed,
                dropped: r.dropped,
            },
            e2e_ms: E2e {
                p50: r.e2e_ok.pct_ms(50.0),
                p95: r.e2e_ok.pct_ms(95.0),
                p99: r.e2e_ok.pct_ms(99.0),
                max: r.e2e_ok.max_ms(),
            },
            steps: r
                .steps
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        StepSummary {
                            count: s.count,
                            errors: s.errors,
                            p50_ms: s.ok.pct_ms(50.0),
                            p95_ms: s.ok.pct_ms(95.0),
                            p99_ms: s.ok.pct_ms(99.0),
                        },
                    )
                })
                .collect(),
            errors: r.error_counts(),
            throughput: Throughput {
                flows_per_s: per_s(r.succeeded),
                peak_flows_per_s: r.peak_completions_per_s,
                tx_per_s: per_s(r.tx_count()),
            },
            criteria: Vec::new(),
            verdict: String::new(),
        }
    }
}

/// Writes `value` as pretty JSON to `dir/name` (atomically: temp file + rename).
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    serde_json::to_writer_pretty(&mut f, value)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(tmp, dir.join(name))
}

fn tag_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Appends histograms to an HdrHistogram interval log.
pub fn append_hlog(
    path: &Path,
    start: Duration,
    len: Duration,
    hists: &[(String, &Hist)],
) -> std::io::Result<()> {
    let new = !path.exists();
    let mut f = BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?);
    let mut ser = V2DeflateSerializer::new();
    let mut b = IntervalLogWriterBuilder::new();
    if new {
        b.add_comment("vana-load latency histograms, microseconds; timestamps are seconds since the schedule start");
    }
    let mut w = b.begin_log_with(&mut f, &mut ser)?;
    for (tag, h) in hists {
        let t = tag_name(tag);
        w.write_histogram(&h.0, start, len, Tag::new(&t))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    drop(w);
    f.flush()
}

/// The final histograms of a recorder, tagged.
pub fn tagged_histograms(r: &Recorder) -> Vec<(String, &Hist)> {
    let mut v: Vec<(String, &Hist)> = vec![("e2e".into(), &r.e2e_ok)];
    for (c, h) in &r.e2e_failed {
        v.push((format!("e2e.failed.{c}"), h));
    }
    for (s, st) in &r.steps {
        v.push((format!("step.{s}"), &st.ok));
        for (c, h) in &st.failed {
            v.push((format!("step.{s}.failed.{c}"), h));
        }
    }
    v.push(("queue_wait".into(), &r.queue_wait));
    v.push(("schedule_lag".into(), &r.schedule_lag));
    for (k, t) in &r.txs {
        v.push((format!("tx.{k}.confirm"), &t.confirm));
    }
    v
}

/// Reads every tagged histogram of an interval log (for merging runs or checking).
pub fn read_hlog(
    path: &Path,
) -> std::io::Result<Vec<(Option<String>, hdrhistogram::Histogram<u64>)>> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        if let LogEntry::Interval(h) = entry {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .map_err(std::io::Error::other)?;
            let hist: hdrhistogram::Histogram<u64> = de
                .deserialize(&mut raw.as_slice())
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            out.push((h.tag().map(|t| t.as_str().to_string()), hist));
        }
    }
    Ok(out)
}

/// The default results directory: `runs/<UTC timestamp>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("runs").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}
