//! The merged journal: every shard's `events.jsonl`, interleaved by wall-clock
//! timestamp (a k-way merge of the files as they stream, so a large run is never
//! held in memory whole). Lines are copied as written; only when a shard's
//! time zero differs from the merged run's (shards started without a shared
//! `--start-at`) are they rewritten with their schedule times moved onto it.

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::Path;

use super::MergeError;
use super::load::ShardRun;
use crate::schema::Event;

/// One parsed line waiting in the merge, ordered by (timestamp, shard, line).
struct Head {
    key: (i64, usize, u64),
    line: String,
    event: Event,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.key.cmp(&self.key) // min-heap
    }
}

struct Source {
    lines: Lines<BufReader<File>>,
    n: u64,
}

fn timestamp(ev: &Event) -> i64 {
    match ev {
        Event::Alert(a) => a.timestamp,
        e => e.who().map_or(0, |w| w.timestamp),
    }
}

fn next(src: &mut Source, shard: usize, path: &Path) -> Result<Option<Head>, MergeError> {
    for line in src.lines.by_ref() {
        let line = line.map_err(|source| MergeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        src.n += 1;
        if line.trim().is_empty() {
            continue;
        }
        // A torn line (a crash mid-write) is left out, as the journal replay does.
        let Ok(event) = serde_json::from_str::<Event>(&line) else {
            continue;
        };
        return Ok(Some(Head {
            key: (timestamp(&event), shard, src.n),
            line,
            event,
        }));
    }
    Ok(None)
}

fn shifted(mut ev: Event, shift_ms: f64) -> Event {
    match &mut ev {
        Event::FlowStart(e) => e.who.intended_ms += shift_ms,
        Event::FlowComplete(j) | Event::FlowFailed(j) => j.who.intended_ms += shift_ms,
        Event::FlowDropped(d) => d.who.intended_ms += shift_ms,
        Event::FlowCancelled(c) => c.who.intended_ms += shift_ms,
        Event::Alert(a) => a.t_s += shift_ms / 1000.0,
    }
    ev
}

/// Writes the merged `events.jsonl` into `out` and calls `each` on every
/// event as written. Refuses a user that two shards both ran.
pub(crate) fn merge_events(
    shards: &[ShardRun],
    shifts: &[f64],
    out: &Path,
    mut each: impl FnMut(&Event),
) -> Result<(), MergeError> {
    let mut sources = Vec::new();
    let mut heap = BinaryHeap::new();
    for (i, s) in shards.iter().enumerate() {
        let path = s.dir.join("events.jsonl");
        let f = File::open(&path).map_err(|source| MergeError::Io {
            path: path.clone(),
            source,
        })?;
        let mut src = Source {
            lines: BufReader::new(f).lines(),
            n: 0,
        };
        if let Some(h) = next(&mut src, i, &path)? {
            heap.push(h);
        }
        sources.push((src, path));
    }
    let path = out.join("events.jsonl");
    let io = |source| MergeError::Io {
        path: path.clone(),
        source,
    };
    let mut w = BufWriter::new(File::create(&path).map_err(io)?);
    let mut owner: HashMap<u64, usize> = HashMap::new();
    while let Some(h) = heap.pop() {
        let shard = h.key.1;
        if let Some(who) = h.event.who() {
            let first = *owner.entry(who.user).or_insert(shard);
            if first != shard {
                return Err(MergeError::Overlap {
                    user: who.user,
                    a: shards[first].name(),
                    b: shards[shard].name(),
                });
            }
        }
        let shift_ms = shifts[shard] * 1000.0;
        if shift_ms == 0.0 {
            each(&h.event);
            w.write_all(h.line.as_bytes()).map_err(io)?;
        } else {
            let ev = shifted(h.event, shift_ms);
            each(&ev);
            serde_json::to_writer(&mut w, &ev).map_err(|e| io(e.into()))?;
        }
        w.write_all(b"\n").map_err(io)?;
        let (src, p) = &mut sources[shard];
        if let Some(n) = next(src, shard, p)? {
            heap.push(n);
        }
    }
    w.flush().map_err(io)?;
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)
}
