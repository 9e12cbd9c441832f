//! The capacity search on the paused clock, against flows with a known
//! service rate: `k` slots of fixed service time `s`, so the true knee is
//! `k / s` journeys/s. Past it the flow's own queue grows and latency climbs;
//! for [`Slots`] goodput holds there, for [`Thrashing`] it collapses.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

mod common;
use common::{cfg, defs, opts};

use vana_load_engine::capacity::{
    CapacityError, CapacityResult, Outcome, Settings, StepPhase, StepSetup, search,
};
use vana_load_engine::{Flow, FlowResult, Progress, StepDef, StepSample};

/// `k` slots, each journey holds one for `service`.
struct Slots {
    sem: Semaphore,
    service: Duration,
    users: Mutex<Vec<u64>>,
}

impl Slots {
    fn new(k: usize, service: Duration) -> Slots {
        Slots {
            sem: Semaphore::new(k),
            service,
            users: Mutex::new(Vec::new()),
        }
    }
}

impl Flow for Slots {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["service"])
    }

    async fn run(&self, user: u64, _p: &Progress) -> FlowResult {
        self.users.lock().unwrap().push(user);
        let start = tokio::time::Instant::now();
        let _slot = self.sem.acquire().await.unwrap();
        tokio::time::sleep(self.service).await;
        FlowResult::ok(vec![StepSample::ok("service", start.elapsed())])
    }
}

/// A service that thrashes: a journey takes `base` while at most `k`
/// journeys (itself included) are in flight when it starts, and
/// `base × (n / k)²` when `n` are. Below `k / base` journeys/s nothing
/// queues; past it every late journey slows the next ones down, the backlog
/// runs away and goodput falls instead of holding.
struct Thrashing {
    k: u64,
    base: Duration,
    in_flight: Arc<AtomicU64>,
}

/// Leaves the in-flight count when the journey ends (or is dropped).
struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Flow for Thrashing {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["service"])
    }

    async fn run(&self, _user: u64, _p: &Progress) -> FlowResult {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(self.in_flight.clone());
        let over = (n as f64 / self.k as f64).max(1.0);
        let service = self.base.mul_f64(over * over);
        tokio::time::sleep(service).await;
        FlowResult::ok(vec![StepSample::ok("service", service)])
    }
}

/// Records the user ranges it is asked to prepare.
#[derive(Default)]
struct Ranges(Mutex<Vec<Range<u64>>>);

impl StepSetup for Ranges {
    async fn prepare(&self, users: Range<u64>) -> Result<(), String> {
        self.0.lock().unwrap().push(users);
        Ok(())
    }
}

fn settings() -> Settings {
    Settings {
        from: 2.5,
        step: 2.0,
        hold_secs: 12.0,
        max_hold_secs: 48.0,
        max_rate: 100.0,
        bisections: 3,
        check_beyond: true,
    }
}

fn profile() -> vana_load_engine::LoadTestConfig {
    let mut c = cfg(10, 10.0, 10_000);
    c.p95_e2e_target_secs = 5.0;
    c.max_queue_wait_secs = 600.0;
    c
}

/// A search of `flow` with nothing to prepare, into `dir`.
async fn search_without_setup<F: Flow>(
    flow: Arc<F>,
    s: &Settings,
    dir: &std::path::Path,
) -> CapacityResult {
    search(
        &profile(),
        s,
        flow,
        &vana_load_engine::capacity::NoSetup,
        &opts(dir),
        dir.to_path_buf(),
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn finds_the_knee_of_a_known_service_rate_then_bisects_and_checks_goodput() {
    let dir = tempfile::tempdir().unwrap();
    // 4 slots × 0.5 s: the true knee is 8 journeys/s.
    let flow = Arc::new(Slots::new(4, Duration::from_millis(500)));
    let setup = Ranges::default();
    let s = settings();
    let r = search(
        &profile(),
        &s,
        flow.clone(),
        &setup,
        &opts(dir.path()),
        dir.path().to_path_buf(),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::KneeFound, "{}", r.text());
    let k = r.knee.as_ref().unwrap();
    // The climb: 2.5, 5, 10 (fails); then 3 bisections between 5 and 10.
    let climb: Vec<f64> = r
        .steps
        .iter()
        .filter(|x| x.phase == StepPhase::Climb)
        .map(|x| x.rate_per_s)
        .collect();
    assert_eq!(climb, [2.5, 5.0, 10.0], "{}", r.text());
    let bisect = r
        .steps
        .iter()
        .filter(|x| x.phase == StepPhase::Bisect)
        .count();
    assert_eq!(bisect, 3);
    // The knee brackets the true one within the final resolution (10-5)/2³.
    let resolution = 5.0 / 8.0;
    assert!(k.first_bad_rate_per_s > 8.0, "{}", r.text());
    assert!(k.first_bad_rate_per_s - k.rate_per_s <= resolution + 1e-9);
    assert!((k.rate_per_s - 8.0).abs() <= resolution, "{}", r.text());
    assert!((k.users_per_day - k.rate_per_s * 86_400.0).abs() < 1e-6);
    // Steps past the knee fail on completion (goodput capped at 8/s).
    let bad = &r.steps[k.first_bad_step];
    assert!(!bad.pass);
    assert!(bad.goodput_per_s <= 8.0 + 0.5, "{}", r.text());
    // Goodput holds at 1.5× the knee: the slots keep serving 8/s.
    let b = r.beyond.as_ref().unwrap();
    assert!((b.rate_per_s - 1.5 * k.rate_per_s).abs() < 1e-9);
    assert!(b.holds, "{}", r.text());
    assert_eq!(r.steps.last().unwrap().phase, StepPhase::Beyond);
    // Every step's users were distinct, and prepared before they ran.
    let users = flow.users.lock().unwrap().clone();
    let distinct: BTreeSet<u64> = users.iter().copied().collect();
    assert_eq!(distinct.len(), users.len(), "a user index was reused");
    let ranges = setup.0.lock().unwrap().clone();
    for w in ranges.windows(2) {
        assert_eq!(w[0].end, w[1].start, "user ranges continue across steps");
    }
    let attempts: usize = r.steps.iter().map(|x| x.attempts.len()).sum();
    assert_eq!(ranges.len(), attempts);
    assert_eq!(ranges.last().unwrap().end, users.len() as u64);
    // Every attempt states its hold and has its normal results directory.
    for a in r.steps.iter().flat_map(|x| x.attempts.iter()) {
        assert!(a.held_s >= s.hold_secs && a.held_s <= s.max_hold_secs);
        assert!(dir.path().join(&a.dir).join("summary.json").exists());
    }
    let back: CapacityResult =
        serde_json::from_slice(&std::fs::read(dir.path().join("capacity.json")).unwrap()).unwrap();
    assert_eq!(back.knee, r.knee);
    assert_eq!(back.outcome, r.outcome);
    assert_eq!(back.steps.len(), r.steps.len());
    let html = std::fs::read_to_string(dir.path().join("capacity.html")).unwrap();
    assert!(html.contains("id=\"capacity-p95\""));
    let txt = std::fs::read_to_string(dir.path().join("capacity.txt")).unwrap();
    assert!(txt.contains("knee:") && txt.contains("users/day"), "{txt}");
    // The header says what each user ran (a component search names its subset).
    assert_eq!(back.journey_steps, ["service"]);
    assert!(txt.contains("each user runs 1 step(s): service"), "{txt}");
}

#[tokio::test(start_paused = true)]
async fn finds_the_knee_of_a_thrashing_service_and_reports_goodput_collapsing_past_it() {
    let dir = tempfile::tempdir().unwrap();
    // 4 × 0.5 s: the true knee is 8 journeys/s; past it the service thrashes.
    let flow = Arc::new(Thrashing {
        k: 4,
        base: Duration::from_millis(500),
        in_flight: Arc::default(),
    });
    let r = search_without_setup(flow, &settings(), dir.path()).await;
    assert_eq!(r.outcome, Outcome::KneeFound, "{}", r.text());
    let k = r.knee.as_ref().unwrap();
    // Within one bisection (the final resolution, (10-5)/2³) of the true knee.
    let resolution = 5.0 / 8.0;
    assert!(
        k.rate_per_s <= 8.0 && k.first_bad_rate_per_s > 8.0,
        "{}",
        r.text()
    );
    assert!(8.0 - k.rate_per_s <= resolution, "{}", r.text());
    assert!(r.steps[k.step].pass && !r.steps[k.first_bad_step].pass);
    // At 1.5× the knee the backlog runs away: goodput collapses, and the
    // check says so with the measured figures.
    let b = r.beyond.as_ref().expect("the 1.5× step ran");
    assert!((b.rate_per_s - 1.5 * k.rate_per_s).abs() < 1e-9);
    assert!(!b.holds, "{}", r.text());
    assert!(b.ratio < 0.9, "{}", r.text());
    assert!(
        (b.knee_goodput_per_s - r.steps[k.step].goodput_per_s).abs() < 1e-9
            && (b.goodput_per_s - r.steps[b.step].goodput_per_s).abs() < 1e-9
    );
    let beyond_step = &r.steps[b.step];
    assert_eq!(beyond_step.phase, StepPhase::Beyond);
    assert!(!beyond_step.pass, "{}", r.text());
    let text = r.text();
    assert!(text.contains("does NOT hold"), "{text}");
    assert!(r.beyond_not_run.is_none());
}

#[tokio::test(start_paused = true)]
async fn says_so_when_no_knee_is_below_the_maximum_rate() {
    let dir = tempfile::tempdir().unwrap();
    let flow = Arc::new(Slots::new(100, Duration::from_millis(100)));
    let mut s = settings();
    s.max_rate = 6.0;
    let r = search_without_setup(flow, &s, dir.path()).await;
    assert_eq!(
        r.outcome,
        Outcome::NoKneeBelowMax {
            max_tried_per_s: 5.0
        }
    );
    assert!(r.knee.is_none() && r.beyond.is_none());
    assert!(r.text().contains("no knee found"));
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let p = profile();
    let bad = |f: &dyn Fn(&mut Settings)| {
        let mut s = settings();
        f(&mut s);
        s.validate(&p).unwrap_err()
    };
    assert!(matches!(bad(&|s| s.from = 0.0), CapacityError::From(_)));
    assert!(matches!(
        bad(&|s| s.from = f64::NAN),
        CapacityError::From(_)
    ));
    assert!(matches!(bad(&|s| s.step = 1.0), CapacityError::Step(_)));
    assert!(matches!(
        bad(&|s| s.hold_secs = -1.0),
        CapacityError::Hold(_)
    ));
    assert!(matches!(
        bad(&|s| s.max_hold_secs = 5.0),
        CapacityError::MaxHold { .. }
    ));
    assert!(matches!(
        bad(&|s| s.max_rate = 1.0),
        CapacityError::MaxRate { .. }
    ));
    assert!(matches!(
        bad(&|s| s.bisections = 99),
        CapacityError::Bisections(99)
    ));
    let e = bad(&|s| {
        s.from = 0.1;
        s.max_rate = 1.0
    });
    assert!(matches!(e, CapacityError::TooFewUsers { .. }));
    assert!(e.to_string().contains("--hold"), "{e}");
    settings().validate(&p).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_search_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let flow = Arc::new(Slots::new(1, Duration::from_millis(10)));
    let mut s = settings();
    s.step = 0.5;
    let err = search(
        &profile(),
        &s,
        flow.clone(),
        &vana_load_engine::capacity::NoSetup,
        &opts(dir.path()),
        dir.path().join("out"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CapacityError::Step(_)));
    assert!(flow.users.lock().unwrap().is_empty());
    assert!(!dir.path().join("out").exists());
}
