//! `Flow::prepare` and `Flow::scope`: the engine has the flow prepare
//! exactly the users it will run before the schedule's time zero (so the
//! preparation is never in a latency), a failed preparation stops the run
//! before anything is measured, and the flow's scope is recorded in
//! `run.json` and the report header. Paused clock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vana_load_engine::schema::RunInfo;
use vana_load_engine::{
    EngineError, Flow, FlowResult, FlowScope, PrepareError, Progress, StepDef, StepSample, run,
};

mod common;
use common::{cfg, events, journeys, opts};

/// One 1 s step; preparing takes `prep_secs` and fails for `fail_user`.
struct Prepared {
    prep_secs: u64,
    fail_user: Option<u64>,
    ready: Mutex<BTreeSet<u64>>,
}

impl Prepared {
    fn new(prep_secs: u64, fail_user: Option<u64>) -> Prepared {
        Prepared {
            prep_secs,
            fail_user,
            ready: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Flow for Prepared {
    fn steps(&self) -> Vec<StepDef> {
        vec![StepDef::new("b", "svc", Duration::from_secs(10), false)]
    }

    async fn run(&self, user: u64, progress: &Progress) -> FlowResult {
        // Each user runs once, on its own preparation.
        assert!(
            self.ready.lock().unwrap().remove(&user),
            "user {user} unprepared"
        );
        progress.begin("b");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = StepSample::ok("b", Duration::from_secs(1));
        progress.end(s.clone());
        FlowResult::ok(vec![s])
    }

    async fn prepare(&self, users: &[u64]) -> Result<(), PrepareError> {
        tokio::time::sleep(Duration::from_secs(self.prep_secs)).await;
        if let Some(u) = self.fail_user.filter(|u| users.contains(u)) {
            return Err(format!("user {u}: step `a` failed").into());
        }
        self.ready.lock().unwrap().extend(users);
        Ok(())
    }

    fn scope(&self) -> Option<FlowScope> {
        Some(FlowScope {
            flow: "component".into(),
            whole: false,
            prepared: vec!["a".into()],
            skipped: vec!["c".into()],
            description: "component run: timed b; prepared a".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn users_are_prepared_before_the_clock_and_the_scope_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let flow = Arc::new(Prepared::new(50, None));
    let out = run(cfg(4, 2.0, 10), flow.clone(), opts(dir.path()))
        .await
        .unwrap();
    let s = &out.summary;
    assert_eq!(s.users.succeeded, 4);
    assert!(
        flow.ready.lock().unwrap().is_empty(),
        "every prepared user ran"
    );
    // The 50 s of preparation are in no latency: each journey is its 1 s step.
    for j in journeys(&events(dir.path())) {
        assert!(j.duration_ms < 1_100.0, "{j:?}");
    }
    let run_json: RunInfo =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    let scope = run_json.scope.expect("scope in run.json");
    assert_eq!((scope.flow.as_str(), scope.whole), ("component", false));
    assert_eq!(scope.prepared, ["a"]);
    assert!(
        out.text_summary(false)
            .contains("scope: component run: timed b; prepared a"),
        "{}",
        out.text_summary(false)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_preparation_stops_the_run_before_anything_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let flow = Arc::new(Prepared::new(1, Some(2)));
    let e = run(cfg(4, 2.0, 10), flow, opts(dir.path()))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Prepare(_)), "{e:?}");
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("preparing the users before the clock"),
        "{msg}"
    );
    assert!(
        !dir.path().join("events.jsonl").exists(),
        "nothing measured"
    );
    assert!(!dir.path().join("run.json").exists(), "no run recorded");
}

#[tokio::test(start_paused = true)]
async fn a_flow_without_a_scope_records_none() {
    struct Plain;
    impl Flow for Plain {
        fn steps(&self) -> Vec<StepDef> {
            vec![StepDef::new("b", "svc", Duration::from_secs(10), false)]
        }
        async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
            FlowResult::ok(vec![StepSample::ok("b", Duration::ZERO)])
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(cfg(2, 1.0, 10), Arc::new(Plain), opts(dir.path()))
        .await
        .unwrap();
    assert!(out.run.scope.is_none());
    assert!(!out.text_summary(false).contains("scope:"));
}
