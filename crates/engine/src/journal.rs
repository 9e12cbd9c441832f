//! The run journal: `events.jsonl` read back.
//!
//! Every finished journey's line carries its user index, E2E latency, per-step
//! times and transactions, so replaying the file rebuilds the [`Recorder`]
//! exactly (up to histogram precision). That makes an interrupted run resumable
//! (`RunOptions::resume`: users already finished are skipped and their
//! measurements carried over) and lets anyone check `summary.json` against it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use crate::flow::{FlowError, FlowResult, StepSample, TxSample};
use crate::metrics::Recorder;
use crate::schema::Event;

/// What a journal says about a run. The recorder's counters describe the
/// finished and dropped users only (unfinished users will run again on resume).
#[derive(Debug, Default)]
pub struct JournalState {
    /// Users whose journey completed or failed.
    pub finished: BTreeSet<u64>,
    /// Users dropped (queue timeout or breaker).
    pub dropped: BTreeSet<u64>,
    /// Users that started but never finished (in flight at the crash, or cancelled).
    pub unfinished: BTreeSet<u64>,
    /// Measurements rebuilt from the finished journeys.
    pub recorder: Recorder,
    /// Lines that could not be parsed (a torn last line after a crash).
    pub bad_lines: usize,
}

fn leak(s: &str) -> &'static str {
    // Step and tx-kind names form a small fixed vocabulary; interning them keeps the
    // replayed FlowResult identical in shape to a live one.
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(n) = set.get(s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(n);
    n
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64((x / 1000.0).max(0.0))
}

/// Replays `events.jsonl` from `dir`.
///
/// A user who started but never finished (in flight at a crash, or cancelled)
/// runs again on resume, so nothing of that first attempt is counted: not its
/// arrival, its start, its slot wait nor its delay.
pub fn replay(dir: &Path, planned: u64) -> std::io::Result<JournalState> {
    let f = std::fs::File::open(dir.join("events.jsonl"))?;
    let mut st = JournalState {
        recorder: Recorder::new(planned),
        ..Default::default()
    };
    let mut events = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(ev) => events.push(ev),
            Err(_) => st.bad_lines += 1,
        }
    }
    let mut started = BTreeSet::new();
    for ev in &events {
        match ev {
            Event::FlowStart(s) => {
                started.insert(s.who.user);
            }
            Event::FlowComplete(j) | Event::FlowFailed(j) => {
                st.finished.insert(j.who.user);
            }
            Event::FlowDropped(d) => {
                st.dropped.insert(d.who.user);
            }
            Event::FlowCancelled(_) => {}
        }
    }
    st.unfinished = started.difference(&st.finished).copied().collect();
    let r = &mut st.recorder;
    for ev in events {
        match ev {
            Event::FlowStart(s) if st.finished.contains(&s.who.user) => {
                let at = s.who.intended_ms / 1000.0;
                r.arrived += 1;
                r.first_arrival_s = Some(r.first_arrival_s.map_or(at, |a: f64| a.min(at)));
                r.start(ms(s.wait_ms));
                if s.delayed {
                    r.delayed += 1;
                }
            }
            Event::FlowComplete(j) | Event::FlowFailed(j) => {
                let at_s = (j.who.intended_ms + j.duration_ms) / 1000.0;
                let result = FlowResult {
                    steps: j
                        .steps
                        .iter()
                        .map(|s| StepSample {
                            name: leak(&s.name),
                            duration: ms(s.ms),
                            ok: s.ok,
                            error_class: s.error.clone(),
                        })
                        .collect(),
                    error: j.error.as_ref().map(|class| FlowError {
                        step: leak(j.step.as_deref().unwrap_or("unknown")),
                        class: class.clone(),
                        message: j.message.clone().unwrap_or_default(),
                    }),
                    txs: j
                        .txs
                        .iter()
                        .map(|t| TxSample {
                            kind: leak(&t.kind),
                            gas_used: t.gas_used,
                            fee_wei: t.fee_wei.parse().unwrap_or(0),
                            confirm: ms(t.confirm_ms),
                            block: t.block,
                        })
                        .collect(),
                };
                r.finish(at_s, ms(j.duration_ms), &result);
            }
            Event::FlowDropped(d) => {
                let at = d.who.intended_ms / 1000.0;
                r.arrived += 1;
                r.first_arrival_s = Some(r.first_arrival_s.map_or(at, |a: f64| a.min(at)));
                if d.delayed {
                    r.delayed += 1;
                }
                let message = d.error.clone();
                r.dropped(
                    (d.who.intended_ms + d.wait_ms) / 1000.0,
                    ms(d.wait_ms),
                    &d.error,
                    &message,
                );
            }
            // Starts of re-run users and cancellations count again when they run.
            Event::FlowStart(_) | Event::FlowCancelled(_) => {}
        }
    }
    st.recorder.in_flight = 0;
    st.recorder.interval = Default::default();
    Ok(st)
}
