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
use crate::results::Event;

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
pub fn replay(dir: &Path, planned: u64) -> std::io::Result<JournalState> {
    let f = std::fs::File::open(dir.join("events.jsonl"))?;
    let mut st = JournalState {
        recorder: Recorder::new(planned),
        ..Default::default()
    };
    let mut started = BTreeSet::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        let Ok(ev) = serde_json::from_str::<Event>(&line) else {
            st.bad_lines += 1;
            continue;
        };
        let r = &mut st.recorder;
        let at_s = ev.intended_ms / 1000.0 + ev.duration_ms.unwrap_or(0.0) / 1000.0;
        match ev.event.as_str() {
            "flow_start" => {
                started.insert(ev.user);
                r.arrived += 1;
                r.first_arrival_s =
                    Some(r.first_arrival_s.map_or(ev.intended_ms / 1000.0, |a: f64| {
                        a.min(ev.intended_ms / 1000.0)
                    }));
                r.start(ms(ev.wait_ms.unwrap_or(0.0)));
                if ev.delayed == Some(true) {
                    r.delayed += 1;
                }
            }
            "flow_complete" | "flow_failed" => {
                st.finished.insert(ev.user);
                let result = FlowResult {
                    steps: ev
                        .steps
                        .iter()
                        .map(|s| StepSample {
                            name: leak(&s.name),
                            duration: ms(s.ms),
                            ok: s.ok,
                            error_class: s.error.clone(),
                        })
                        .collect(),
                    error: (ev.event == "flow_failed").then(|| FlowError {
                        step: leak(ev.step.as_deref().unwrap_or("unknown")),
                        class: ev.error.clone().unwrap_or_else(|| "unknown".into()),
                        message: ev.message.clone().unwrap_or_default(),
                    }),
                    txs: ev
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
                r.finish(at_s, ms(ev.duration_ms.unwrap_or(0.0)), &result);
            }
            "flow_dropped" => {
                st.dropped.insert(ev.user);
                r.arrived += 1;
                r.dropped += 1;
                if ev.delayed == Some(true) {
                    r.delayed += 1;
                }
                if ev
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("breaker("))
                {
                    r.shed += 1;
                }
            }
            "flow_cancelled" => r.cancelled(),
            _ => {}
        }
    }
    st.unfinished = started.difference(&st.finished).copied().collect();
    // A resumed run re-runs unfinished users: they count as neither arrived,
    // started, in flight nor cancelled until they run again.
    let n = st.unfinished.len() as u64;
    st.recorder.started = st.recorder.started.saturating_sub(n);
    st.recorder.arrived = st.recorder.arrived.saturating_sub(n);
    st.recorder.cancelled = 0;
    st.recorder.in_flight = 0;
    st.recorder.interval = Default::default();
    Ok(st)
}
