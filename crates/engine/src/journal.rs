//! The run journal: `events.jsonl` read back.
//!
//! Every finished journey's line carries its user index, E2E latency, per-step
//! times and transactions, so replaying the file rebuilds the [`Recorder`]
//! exactly (up to histogram precision). That makes an interrupted run resumable
//! (`RunOptions::resume`: users already finished are skipped and their
//! measurements carried over) and lets anyone check `summary.json` against it.
//! Alert lines measure no user: they are kept aside ([`JournalState::alerts`])
//! so a resumed run still counts them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use crate::flow::{FlowError, FlowResult, StepSample, TxSample};
use crate::metrics::{DropCause, Recorder};
use crate::schema::{AlertEvent, Event};

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
    /// Alerts the run fired (they change no measurement).
    pub alerts: Vec<AlertEvent>,
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
    // A user re-run by an earlier resume started more than once: its last start counts.
    let mut last_start = std::collections::HashMap::new();
    for (i, ev) in events.iter().enumerate() {
        match ev {
            Event::FlowStart(s) => {
                started.insert(s.who.user);
                last_start.insert(s.who.user, i);
            }
            Event::FlowComplete(j) | Event::FlowFailed(j) => {
                st.finished.insert(j.who.user);
            }
            Event::FlowDropped(d) => {
                st.dropped.insert(d.who.user);
            }
            Event::FlowCancelled(_) => {}
            Event::Alert(a) => st.alerts.push(a.clone()),
        }
    }
    st.unfinished = started
        .iter()
        .filter(|u| !st.finished.contains(u) && !st.dropped.contains(u))
        .copied()
        .collect();
    let r = &mut st.recorder;
    for (i, ev) in events.into_iter().enumerate() {
        match ev {
            Event::FlowStart(s)
                if st.finished.contains(&s.who.user) && last_start.get(&s.who.user) == Some(&i) =>
            {
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
                    counts: j.counts.iter().map(|(k, v)| (leak(k), *v)).collect(),
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
                r.dropped(
                    (d.who.intended_ms + d.wait_ms) / 1000.0,
                    ms(d.wait_ms),
                    &DropCause::from_class(&d.error),
                    &d.error,
                );
            }
            // Starts of re-run users and cancellations count again when they run.
            Event::FlowStart(_) | Event::FlowCancelled(_) | Event::Alert(_) => {}
        }
    }
    st.recorder.in_flight = 0;
    st.recorder.interval = Default::default();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str, user: u64, extra: &str) -> String {
        format!(
            r#"{{"event":"{event}","wallet":"w{user}","test_id":"r-{user}","timestamp":0,"user":{user},"intended_ms":{}{extra}}}"#,
            user * 100
        )
    }

    /// Users finished, failed, dropped, in flight at a crash, cancelled, and one
    /// re-run by an earlier resume: only the finished and dropped users count.
    #[test]
    fn rerun_users_earlier_starts_count_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ok =
            r#","duration_ms":1000,"wait_ms":400,"steps":[{"name":"data","ms":600,"ok":true}]"#;
        let lines = [
            line("flow_start", 0, r#","wait_ms":400,"delayed":true"#),
            line("flow_start", 1, r#","wait_ms":0,"delayed":false"#),
            line(
                "flow_dropped",
                2,
                r#","error":"queue_timeout","delayed":true"#,
            ),
            line("flow_start", 3, r#","wait_ms":900,"delayed":true"#),
            line("flow_start", 4, r#","wait_ms":700,"delayed":true"#),
            line("flow_start", 5, r#","wait_ms":800,"delayed":true"#),
            line("flow_complete", 0, ok),
            line(
                "flow_failed",
                1,
                r#","duration_ms":300,"step":"data","error":"http_500","steps":[{"name":"data","ms":300,"ok":false,"error":"http_500"}]"#,
            ),
            line("flow_cancelled", 4, ""),
            line("flow_cancelled", 5, ""),
            // An earlier resume re-ran user 5, not delayed this time.
            line("flow_start", 5, r#","wait_ms":0,"delayed":false"#),
            line("flow_complete", 5, ok),
            // A user that started in the first run and was dropped in the resumed one.
            line("flow_start", 6, r#","wait_ms":850,"delayed":true"#),
            line("flow_dropped", 6, r#","error":"breaker(rpc)""#),
            r#"{"event":"alert","name":"error_rate","value":0.5,"limit":0.01,"t_s":3.0,"timestamp":0}"#
                .to_string(),
            r#"{"event":"flow_st"#.to_string(),
        ];
        std::fs::write(dir.path().join("events.jsonl"), lines.join("\n")).unwrap();

        let st = replay(dir.path(), 10).unwrap();
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        assert_eq!(st.finished, set(&[0, 1, 5]));
        assert_eq!(st.dropped, set(&[2, 6]));
        assert_eq!(st.unfinished, set(&[3, 4]));
        assert_eq!(st.bad_lines, 1, "the alert line reads");
        assert_eq!(st.alerts.len(), 1);
        assert_eq!(st.alerts[0].t_s, 3.0);
        let r = &st.recorder;
        assert_eq!(r.delayed, 2, "users 0 and 2 only");
        assert_eq!(r.arrived, 5, "users 0, 1, 2, 5, 6");
        assert_eq!(r.started, 3, "users 0, 1, 5");
        assert_eq!((r.dropped, r.shed), (2, 1));
        assert_eq!((r.succeeded, r.failed), (2, 1));
        assert_eq!((r.cancelled, r.in_flight), (0, 0));
        assert_eq!(r.queue_wait.len(), 3);
        assert_eq!(r.queue_wait.max_ms().map(f64::round), Some(400.0));
        assert_eq!(r.first_arrival_s, Some(0.0));
    }
}
