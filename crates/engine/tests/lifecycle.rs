//! How a run and each journey end: the engine's journey timeout keeps the
//! finished steps, an abort starts no queued arrival (and records every one),
//! failures are charged to the step that
//! failed them, secrets leave messages before anything is written, and the
//! load generator records its own CPU and memory. Paused clock unless noted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vana_load_engine::schema::{AbortReason, Event, RunInfo, RunStatus};
use vana_load_engine::{Flow, FlowError, FlowResult, Progress, StepDef, StepSample, run};

mod common;
use common::{cfg, events, opts};

/// Steps `a` (1 s), `b` (1 s) and `c` (sleeps `c_secs`), reported as they go.
struct ThreeSteps {
    c_secs: u64,
    step_timeout: Duration,
}

impl Flow for ThreeSteps {
    fn steps(&self) -> Vec<StepDef> {
        ["a", "b", "c"]
            .into_iter()
            .map(|n| StepDef::new(n, "svc", self.step_timeout, false))
            .collect()
    }

    async fn run(&self, _user: u64, progress: &Progress) -> FlowResult {
        let mut steps = Vec::new();
        for (name, secs) in [("a", 1), ("b", 1), ("c", self.c_secs)] {
            progress.begin(name);
            let d = Duration::from_secs(secs);
            tokio::time::sleep(d).await;
            let s = StepSample::ok(name, d);
            progress.end(s.clone());
            steps.push(s);
        }
        FlowResult::ok(steps)
    }
}

/// The journey timeout fires in step `c`: `a` and `b` keep their samples, `c`
/// is the failed step with class `timeout` and the time it had run.
#[tokio::test(start_paused = true)]
async fn the_journey_timeout_keeps_the_finished_steps_and_charges_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(3, 3.0, 10);
    c.journey_timeout_secs = Some(30.0);
    let flow = ThreeSteps {
        c_secs: 100,
        step_timeout: Duration::from_secs(10),
    };
    let out = run(c, Arc::new(flow), opts(dir.path())).await.unwrap();
    let s = &out.summary;
    assert_eq!((s.users.succeeded, s.users.failed), (0, 3));
    assert_eq!((s.steps["a"].count, s.steps["a"].errors), (3, 0));
    assert_eq!((s.steps["b"].count, s.steps["b"].errors), (3, 0));
    assert_eq!((s.steps["c"].count, s.steps["c"].errors), (3, 3));
    assert!((s.steps["a"].p50_ms.unwrap() - 1000.0).abs() <= 2.0);
    assert_eq!(s.errors.get("timeout"), Some(&3));
    assert!(!s.steps.contains_key("journey"), "{:?}", s.steps.keys());
    let j = events(dir.path())
        .into_iter()
        .find_map(Event::into_journey)
        .unwrap();
    assert_eq!(j.step.as_deref(), Some("c"));
    assert_eq!(j.error.as_deref(), Some("timeout"));
    let names: Vec<&str> = j.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!((j.steps[2].ms - 28_000.0).abs() < 5.0, "{:?}", j.steps[2]);
}

/// A journey timeout below the sum of the step timeouts is refused before the run.
#[tokio::test(start_paused = true)]
async fn a_journey_timeout_shorter_than_its_steps_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(3, 3.0, 10);
    c.journey_timeout_secs = Some(20.0);
    let flow = ThreeSteps {
        c_secs: 1,
        step_timeout: Duration::from_secs(10),
    };
    let e = run(c, Arc::new(flow), opts(dir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("journeyTimeoutSecs") && e.contains("30 s"),
        "{e}"
    );
    assert!(!dir.path().join("events.jsonl").exists(), "nothing started");
}

/// One slot, 10 s journeys, an arrival every 0.1 s, and the first journey
/// fails at 10 s with `failFast`: every queued arrival is cancelled, none starts
/// in the grace period, and each writes its event.
#[tokio::test(start_paused = true)]
async fn an_abort_starts_no_queued_arrival_and_records_each() {
    struct SlowFail(AtomicU64);
    impl Flow for SlowFail {
        fn steps(&self) -> Vec<StepDef> {
            vec![StepDef::new("work", "svc", Duration::from_secs(60), false)]
        }
        async fn run(&self, _u: u64, p: &Progress) -> FlowResult {
            self.0.fetch_add(1, Ordering::SeqCst);
            p.begin("work");
            tokio::time::sleep(Duration::from_secs(10)).await;
            FlowResult {
                steps: vec![StepSample::failed("work", Duration::from_secs(10), "boom")],
                error: Some(FlowError {
                    step: "work",
                    class: "boom".into(),
                    message: "boom".into(),
                }),
                txs: vec![],
                counts: Default::default(),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(200, 20.0, 1);
    c.fail_fast = true;
    c.max_queue_wait_secs = 1000.0;
    c.abort_grace_secs = 30.0;
    let flow = Arc::new(SlowFail(AtomicU64::new(0)));
    let out = run(c, flow.clone(), opts(dir.path())).await.unwrap();
    assert_eq!(
        flow.0.load(Ordering::SeqCst),
        1,
        "only the first journey ran"
    );
    assert!(matches!(out.aborted, Some(AbortReason::FailFast { .. })));
    let u = &out.summary.users;
    // Arrivals in the first 10 s queued behind the one slot: ~100 of them.
    assert!((95..=105).contains(&u.cancelled), "{u:?}");
    assert_eq!(u.started, 1);
    assert_eq!(
        u.cancelled + u.started + u.not_arrived + u.dropped,
        200,
        "{u:?}"
    );
    let cancelled: BTreeSet<u64> = events(dir.path())
        .iter()
        .filter_map(|e| match e {
            Event::FlowCancelled(c) => {
                assert!(!c.started, "a queued arrival never started");
                Some(c.who.user)
            }
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len() as u64, u.cancelled);
    // The run did not complete: `completed` fails, and so does the verdict.
    let done = out
        .summary
        .criteria
        .iter()
        .find(|c| c.name == "completed")
        .unwrap();
    assert!(!done.pass);
    assert_eq!(out.exit_code(), 1);
    let info: RunInfo =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(info.status, RunStatus::Aborted);
}

/// A failure is charged to the step that failed, even when an earlier journey
/// failed with the same class at another step.
#[tokio::test(start_paused = true)]
async fn the_chain_error_rate_counts_every_failing_chain_step() {
    struct SameClass;
    impl Flow for SameClass {
        fn steps(&self) -> Vec<StepDef> {
            vec![
                StepDef::new("upload", "storage", Duration::from_secs(60), false),
                StepDef::new("register", "relayer", Duration::from_secs(60), true),
                StepDef::new("proof", "tee", Duration::from_secs(60), true),
            ]
        }
        async fn run(&self, u: u64, _p: &Progress) -> FlowResult {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Users 0..3 fail at register, 3..6 at proof, all with class `timeout`.
            let step = match u {
                0..3 => "register",
                3..6 => "proof",
                _ => return FlowResult::ok(vec![]),
            };
            FlowResult {
                steps: vec![StepSample::failed(
                    step,
                    Duration::from_millis(100),
                    "timeout",
                )],
                error: Some(FlowError {
                    step,
                    class: "timeout".into(),
                    message: String::new(),
                }),
                txs: vec![],
                counts: Default::default(),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(cfg(20, 2.0, 20), Arc::new(SameClass), opts(dir.path()))
        .await
        .unwrap();
    let rate = out.details.metrics.blockchain.error_rate.unwrap();
    assert!((rate - 6.0 / 20.0).abs() < 1e-9, "{rate}");
}

/// Secrets in a flow's error message (an API key in a URL, a bearer token)
/// reach no results file.
#[tokio::test(start_paused = true)]
async fn secrets_leave_messages_before_anything_is_written() {
    struct Leaky;
    impl Flow for Leaky {
        fn steps(&self) -> Vec<StepDef> {
            vec![StepDef::new(
                "upload",
                "storage",
                Duration::from_secs(60),
                false,
            )]
        }
        async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
            FlowResult {
                steps: vec![StepSample::failed("upload", Duration::ZERO, "http_401")],
                error: Some(FlowError {
                    step: "upload",
                    class: "http_401".into(),
                    message: "POST https://rpc.example.com/v2/0123456789abcdef0123456789abcdef?apikey=SECRETKEY42 \
                              failed; Authorization: Bearer tok3n-value"
                        .into(),
                }),
                txs: vec![],
                counts: Default::default(),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    run(cfg(3, 1.0, 5), Arc::new(Leaky), opts(dir.path()))
        .await
        .unwrap();
    for f in [
        "events.jsonl",
        "details.json",
        "summary.json",
        "report.html",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        for secret in [
            "0123456789abcdef0123456789abcdef",
            "SECRETKEY42",
            "tok3n-value",
        ] {
            assert!(!text.contains(secret), "{f} holds {secret}");
        }
    }
    let ev = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(ev.contains("rpc.example.com"), "the host stays: {ev}");
}

/// The time series records the host's CPU and this process's CPU and RSS
/// (real clock: CPU time needs real time to pass).
#[tokio::test]
async fn the_time_series_records_the_load_generators_own_cpu_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(4, 1.0, 5);
    c.metrics_interval = 0.4;
    let flow = ThreeSteps {
        c_secs: 0,
        step_timeout: Duration::from_secs(10),
    };
    // Steps of 1 s: four journeys over ~3 s.
    run(c, Arc::new(flow), opts(dir.path())).await.unwrap();
    let rows: Vec<vana_load_engine::metrics::Snapshot> =
        std::fs::read_to_string(dir.path().join("timeseries.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert!(rows.len() >= 3, "{} rows", rows.len());
    // Every snapshot has the CPU since the one before, the first included
    // (since the run started): a 30 s step sampled once still has its CPU.
    for r in &rows {
        let s = r.system.as_ref().expect("system sampled");
        assert!(s.host_cpu_pct.is_some(), "t = {}: {s:?}", r.t_s);
        assert!(s.processes["vana-load"].cpu_pct.is_some(), "{s:?}");
    }
    let sys = rows[0].system.as_ref().unwrap();
    assert!(sys.host_cores >= 1);
    let me = &sys.processes["vana-load"];
    assert!(me.rss_mb.unwrap() > 1.0, "{me:?}");
}
