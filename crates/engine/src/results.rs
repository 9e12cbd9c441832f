//! The results directory of a run.
//!
//! - `events.jsonl` — the plan's structured log, one JSON object per line, flushed
//!   as events happen (a writer thread drains a channel and flushes when idle)
//!   and fsynced at every metrics interval ([`LineWriter::sync`]), so a machine
//!   that dies mid-run loses at most one interval of the journal:
//!   `flow_start`, `flow_complete`, `flow_failed`, plus `flow_dropped` and
//!   `flow_cancelled`. It is also the run's journal: see [`crate::journal`].
//! - `timeseries.jsonl` — one [`crate::metrics::Snapshot`] per `metricsInterval`.
//! - `intervals.hlog` — per-interval E2E histograms (HdrHistogram interval log,
//!   V2 deflate, base64 per line), appended at each snapshot.
//! - `histograms.hlog` — the final cumulative histograms, one tagged line each
//!   (`e2e`, `e2e.failed.<class>`, `step.<name>`, `step.<name>.failed.<class>`,
//!   `queue_wait`, `schedule_lag`, `tx.<kind>.confirm`), mergeable across machines.
//! - `summary.json`, `details.json`, `run.json` — the typed files of
//!   [`crate::schema`], written once each at the end of the run by [`write_final`]
//!   (`run.json` also once at the start, as `running`, so a killed run shows it).
//! - `config.json` — the config with secrets redacted.
//!
//! This module writes bytes; what they mean is [`crate::schema`].

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use serde::Serialize;

use crate::metrics::{Hist, Recorder};
use crate::schema::{Details, RunInfo, Summary};

/// Appends JSON lines to a file from a dedicated thread, which also does the
/// serialisation (keeping it off the async workers); flushes whenever the
/// queue is empty, and forces the file to disk when asked ([`LineWriter::sync`]).
pub struct LineWriter<T: Serialize + Send + 'static> {
    tx: Option<mpsc::Sender<Item<T>>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// What the writer thread receives: a line, or a request to fsync.
enum Item<T> {
    Line(T),
    Sync,
}

impl<T: Serialize + Send + 'static> LineWriter<T> {
    /// Opens `path` for appending. A file a crash left with a torn last line
    /// gets its newline first, so the next line starts a line of its own.
    pub fn open(path: &Path) -> std::io::Result<LineWriter<T>> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        end_line(&mut file)?;
        let (tx, rx) = mpsc::channel::<Item<T>>();
        let thread = std::thread::Builder::new()
            .name("vana-load-writer".into())
            .spawn(move || {
                let mut w = BufWriter::with_capacity(1 << 16, file);
                // Writes a line; `Ok(true)` when an fsync was asked for.
                let put = |w: &mut BufWriter<File>, item: Item<T>| -> std::io::Result<bool> {
                    match item {
                        Item::Line(v) => {
                            serde_json::to_writer(&mut *w, &v)?;
                            w.write_all(b"\n")?;
                            Ok(false)
                        }
                        Item::Sync => Ok(true),
                    }
                };
                while let Ok(item) = rx.recv() {
                    let mut sync = put(&mut w, item)?;
                    while let Ok(item) = rx.try_recv() {
                        sync |= put(&mut w, item)?;
                    }
                    w.flush()?;
                    if sync {
                        w.get_ref().sync_data()?;
                    }
                }
                w.flush()?;
                w.get_ref().sync_data()
            })?;
        Ok(LineWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one line.
    pub fn send(&self, v: T) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Item::Line(v));
        }
    }

    /// Asks for every line queued so far to be written and fsynced (the
    /// writer thread does it; this does not wait).
    pub fn sync(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Item::Sync);
        }
    }

    /// Flushes, fsyncs and closes the file.
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

/// Appends a newline to `file` unless it is empty or already ends with one.
fn end_line(file: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(());
    }
    let mut last = [0u8];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes the final files of a run, each once: `details.json`, then
/// `summary.json`, then `run.json` (last, so that a completed status means
/// every other file is there).
pub fn write_final(
    dir: &Path,
    run: &RunInfo,
    summary: &Summary,
    details: &Details,
) -> std::io::Result<()> {
    write_json(dir, "details.json", details)?;
    write_json(dir, "summary.json", summary)?;
    write_json(dir, "run.json", run)
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

/// A name as an interval-log tag: commas and whitespace become `_`.
pub fn tag_name(s: &str) -> String {
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

/// One histogram of an interval log: its tag, its interval (as written:
/// seconds since the schedule start) and its counts.
#[derive(Debug, Clone)]
pub struct HlogEntry {
    pub tag: Option<String>,
    pub start: Duration,
    pub len: Duration,
    pub hist: hdrhistogram::Histogram<u64>,
}

/// Reads every tagged histogram of an interval log (for merging runs or checking).
pub fn read_hlog(
    path: &Path,
) -> std::io::Result<Vec<(Option<String>, hdrhistogram::Histogram<u64>)>> {
    Ok(read_hlog_entries(path)?
        .into_iter()
        .map(|e| (e.tag, e.hist))
        .collect())
}

/// Reads every histogram of an interval log with its interval.
pub fn read_hlog_entries(path: &Path) -> std::io::Result<Vec<HlogEntry>> {
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
            out.push(HlogEntry {
                tag: h.tag().map(|t| t.as_str().to_string()),
                start: h.start_timestamp(),
                len: h.duration(),
                hist,
            });
        }
    }
    Ok(out)
}

/// The default results directory: `runs/<UTC timestamp>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("runs").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        // What a kill in the middle of a write leaves behind.
        std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
        let mut w = LineWriter::<serde_json::Value>::open(&path).unwrap();
        w.send(serde_json::json!({"b": 2}));
        w.sync();
        w.close().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["{\"a\":1}", "{\"a\":", "{\"b\":2}"]);
    }
}
