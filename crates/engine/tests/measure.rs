//! Tests of the measurement itself, with synthetic flows of known timing.
//! Most run on tokio's paused clock, so timings are exact and deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{cfg, defs, events, journeys, opts};

use vana_load_engine::config::Preset;
use vana_load_engine::journal;
use vana_load_engine::results::read_hlog;
use vana_load_engine::schema::{AbortReason, Event, Journey, Summary};
use vana_load_engine::{
    Flow, FlowError, FlowResult, Progress, StepDef, StepSample, ThresholdSpec, TxSample, run,
};

/// Sleeps `service` in one step named `service`.
struct Fixed {
    service: Duration,
}

impl Flow for Fixed {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["service"])
    }

    async fn run(&self, _user: u64, _p: &Progress) -> FlowResult {
        tokio::time::sleep(self.service).await;
        FlowResult::ok(vec![StepSample::ok("service", self.service)])
    }
}

fn summary(dir: &std::path::Path) -> Summary {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// Cap 1, 1 s service, an arrival every 0.7 s: user k starts at k s, so its
/// latency from the *intended* start is 1 + 0.3k s, while its service time is 1 s.
#[tokio::test(start_paused = true)]
async fn cap_of_one_measures_latency_from_the_intended_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(9, 6.3, 1);
    c.max_queue_wait_secs = 100.0;
    let out = run(
        c,
        Arc::new(Fixed {
            service: Duration::from_secs(1),
        }),
        opts(dir.path()),
    )
    .await
    .unwrap();
    let s = &out.summary;
    assert_eq!(
        (
            s.users.started,
            s.users.succeeded,
            s.users.delayed,
            s.users.dropped
        ),
        (9, 9, 8, 0)
    );
    let ev = events(dir.path());
    let mut done: Vec<&Journey> = journeys(&ev).into_iter().filter(|j| j.ok()).collect();
    done.sort_by_key(|e| e.who.user);
    for e in &done {
        let want = 1000.0 + 300.0 * e.who.user as f64;
        let got = e.duration_ms;
        assert!(
            (got - want).abs() < 1.0,
            "user {}: e2e {got} ms, want {want} ms",
            e.who.user
        );
        assert!(
            (e.steps[0].ms - 1000.0).abs() < 1.0,
            "service time stays 1 s"
        );
        assert!((e.who.intended_ms - 700.0 * e.who.user as f64).abs() < 1.0);
    }
    // Max is user 8: 3.4 s. p50 is user 4: 2.2 s. Service time p50 stays 1 s.
    assert!((s.e2e_ms.max.unwrap() - 3400.0).abs() <= 3400.0 * 0.001 + 1.0);
    assert!((s.e2e_ms.p50.unwrap() - 2200.0).abs() <= 2200.0 * 0.001 + 1.0);
    assert!((s.steps["service"].p50_ms.unwrap() - 1000.0).abs() <= 1.0 + 1.0);
    assert!(
        s.e2e_ms.p95.unwrap() > 3000.0,
        "a closed-loop measurement would report 1 s"
    );
}

/// Same system with a 1 s maximum wait: users 4 and 7 would wait 1.2 s and 1.1 s, so they are dropped.
#[tokio::test(start_paused = true)]
async fn arrivals_over_the_cap_are_delayed_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(9, 6.3, 1);
    c.max_queue_wait_secs = 1.0;
    let out = run(
        c,
        Arc::new(Fixed {
            service: Duration::from_secs(1),
        }),
        opts(dir.path()),
    )
    .await
    .unwrap();
    let u = &out.summary.users;
    assert_eq!(
        (u.planned, u.started, u.succeeded, u.delayed, u.dropped),
        (9, 7, 7, 8, 2)
    );
    let dropped: Vec<(u64, f64)> = events(dir.path())
        .iter()
        .filter_map(|e| match e {
            Event::FlowDropped(d) => Some((d.who.user, d.wait_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped.iter().map(|d| d.0).collect::<BTreeSet<_>>(),
        BTreeSet::from([4, 7])
    );
    assert_eq!(out.exit_code(), 1, "2 of 9 dropped misses users_succeeded");
    // A dropped arrival is a failure of class `queue_timeout`, with the time it waited.
    let s = &out.summary;
    assert_eq!(s.errors.get("queue_timeout"), Some(&2));
    for (_, waited) in &dropped {
        assert!((waited - 1000.0).abs() < 1.0, "waited {waited} ms");
    }
    let failed_e2e = &out.details.e2e_failed_ms["queue_timeout"];
    assert!(
        (failed_e2e.max.unwrap() - 1000.0).abs() <= 2.0,
        "{failed_e2e:?}"
    );
    // The error rate's denominator is every user who arrived: 2 of 9.
    assert!((s.rates.error_rate.unwrap() - 2.0 / 9.0).abs() < 1e-9);
    assert!(s.rates.error_rate_of.contains("dropped 2"), "{:?}", s.rates);
    let er = s.criteria.iter().find(|c| c.name == "error_rate").unwrap();
    assert!(!er.pass, "2 of 9 dropped is no 0 % error rate: {er:?}");
}

/// Inference fixed at 2 s (real clock): the reported infer_wait p50 is within 5 % of 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_two_second_inference_is_reported_as_two_seconds() {
    struct Infer;
    impl Flow for Infer {
        fn steps(&self) -> Vec<StepDef> {
            defs(&["infer_request", "infer_wait"])
        }

        async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
            let t = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let a = t.elapsed();
            let t = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_secs(2)).await;
            FlowResult::ok(vec![
                StepSample::ok("infer_request", a),
                StepSample::ok("infer_wait", t.elapsed()),
            ])
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(cfg(20, 2.0, 50), Arc::new(Infer), opts(dir.path()))
        .await
        .unwrap();
    let s = &out.summary;
    assert_eq!(s.users.succeeded, 20);
    let p50 = s.steps["infer_wait"].p50_ms.unwrap();
    assert!((p50 - 2000.0).abs() < 100.0, "infer_wait p50 {p50} ms");
    let e2e = s.e2e_ms.p50.unwrap();
    assert!((e2e - 2020.0).abs() < 101.0, "e2e p50 {e2e} ms");
}

/// A mixed synthetic flow: per-user durations from a hash, three failure classes, transactions.
struct Mixed;

fn h(u: u64) -> u64 {
    let mut x = u.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

impl Flow for Mixed {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["upload", "register"])
    }

    async fn run(&self, u: u64, _p: &Progress) -> FlowResult {
        let a = Duration::from_millis(100 + h(u) % 900);
        tokio::time::sleep(a).await;
        let mut steps = vec![StepSample::ok("upload", a)];
        let txs = vec![TxSample {
            kind: "register",
            gas_used: 150_000 + u,
            fee_wei: 10u128.pow(15),
            confirm: a,
            block: u / 4,
        }];
        let b = Duration::from_millis(500 + h(u + 1) % 4000);
        tokio::time::sleep(b).await;
        let class = match h(u + 2) % 20 {
            0 => Some("timeout"),
            1 => Some("revert(InvalidNonce)"),
            2 if u.is_multiple_of(2) => Some("server_NOT_FOUND_ERROR"),
            _ => None,
        };
        match class {
            None => {
                steps.push(StepSample::ok("register", b));
                FlowResult {
                    steps,
                    error: None,
                    txs,
                    counts: Default::default(),
                }
            }
            Some(c) => {
                steps.push(StepSample::failed("register", b, c));
                FlowResult {
                    steps,
                    error: Some(FlowError {
                        step: "register",
                        class: c.into(),
                        message: format!("synthetic {c}"),
                    }),
                    txs,
                    counts: Default::default(),
                }
            }
        }
    }
    fn wallet(&self, u: u64) -> String {
        format!("0x{u:040x}")
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q / 100.0) * n as f64).ceil().max(1.0) as usize;
    sorted[rank.min(n) - 1]
}

fn close(hdr: f64, exact: f64) -> bool {
    // HDR with 3 significant digits reports the bucket's highest equivalent value.
    (hdr - exact).abs() <= exact * 0.001 + 0.002
}

#[tokio::test(start_paused = true)]
async fn summary_agrees_with_events_and_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(400, 60.0, 20);
    c.ramp_up_minutes = 0.25;
    c.ramp_down_minutes = 0.25;
    c.sustain_minutes = 0.5;
    c.test_duration_minutes = 1.0;
    c.arrival = vengine_spacing();
    c.max_queue_wait_secs = 3.0;
    c.breaker.enabled = false;
    let out = run(c, Arc::new(Mixed), opts(dir.path())).await.unwrap();
    let s = summary(dir.path());
    assert_eq!(s, out.summary);
    let ev = events(dir.path());
    let count = |k: &str| ev.iter().filter(|e| e.kind() == k).count() as u64;
    assert_eq!(s.users.started, count("flow_start"));
    assert_eq!(s.users.succeeded, count("flow_complete"));
    assert_eq!(s.users.failed, count("flow_failed"));
    assert_eq!(s.users.dropped, count("flow_dropped"));
    assert!(
        s.users.delayed > 0 && s.users.dropped > 0,
        "the cap must bind in this test: {:?}",
        s.users
    );
    let delayed = ev
        .iter()
        .filter(|e| match e {
            Event::FlowStart(s) => s.delayed,
            Event::FlowDropped(d) => d.delayed,
            _ => false,
        })
        .count() as u64;
    assert_eq!(s.users.delayed, delayed);
    assert_eq!(s.users.started + s.users.dropped, 400);
    // Error classes.
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for e in journeys(&ev).into_iter().filter(|j| !j.ok()) {
        *classes.entry(e.error.clone().unwrap()).or_default() += 1;
        assert_eq!(e.step.as_deref(), Some("register"));
    }
    assert_eq!(classes.len(), 3);
    // Dropped arrivals are failures too, of class `queue_timeout`.
    classes.insert("queue_timeout".into(), s.users.dropped);
    assert_eq!(s.errors, classes);
    // Percentiles recomputed from the events, within histogram precision.
    let mut e2e: Vec<f64> = journeys(&ev)
        .into_iter()
        .filter(|j| j.ok())
        .map(|e| e.duration_ms)
        .collect();
    e2e.sort_by(f64::total_cmp);
    for (q, got) in [
        (50.0, s.e2e_ms.p50),
        (95.0, s.e2e_ms.p95),
        (99.0, s.e2e_ms.p99),
        (100.0, s.e2e_ms.max),
    ] {
        let want = nearest_rank(&e2e, q);
        assert!(
            close(got.unwrap(), want),
            "p{q}: summary {got:?} vs events {want}"
        );
    }
    let mut up: Vec<f64> = journeys(&ev)
        .into_iter()
        .flat_map(|e| e.steps.iter())
        .filter(|s| s.name == "upload")
        .map(|s| s.ms)
        .collect();
    up.sort_by(f64::total_cmp);
    assert_eq!(s.steps["upload"].count, up.len() as u64);
    assert!(close(
        s.steps["upload"].p95_ms.unwrap(),
        nearest_rank(&up, 95.0)
    ));
    assert_eq!(s.steps["register"].errors, s.users.failed);
    // Every flow_* line carries the plan's fields (alert lines concern no user).
    for w in ev.iter().filter_map(Event::who) {
        assert!(
            w.wallet.starts_with("0x") && w.test_id == format!("t-{}", w.user) && w.timestamp > 0
        );
    }
    // Throughput is over the load phases: succeeded / (first arrival → last completion).
    assert!(
        s.throughput.flows_per_s > 0.0
            && s.throughput.peak_flows_per_s >= s.throughput.flows_per_s * 0.5
    );
    assert!(
        (s.throughput.tx_per_s / s.throughput.flows_per_s
            - (s.users.started as f64 / s.users.succeeded as f64))
            .abs()
            < 1e-6
    );
    // The journal rebuilds the same measurements.
    let st = journal::replay(dir.path(), 400).unwrap();
    let again = vana_load_engine::run::summarize(&st.recorder, &Preset::Smoke.config());
    assert_eq!(again.users, s.users);
    assert_eq!(again.errors, s.errors);
    for (k, v) in &s.steps {
        let w = &again.steps[k];
        assert_eq!((w.count, w.errors), (v.count, v.errors));
        assert!(close(w.p95_ms.unwrap(), v.p95_ms.unwrap()));
    }
    assert!(close(again.e2e_ms.p99.unwrap(), s.e2e_ms.p99.unwrap()));
    // Histograms in HdrHistogram V2 (interval log) agree with the summary.
    let hl = read_hlog(&dir.path().join("histograms.hlog")).unwrap();
    let e2e_h = &hl
        .iter()
        .find(|(t, _)| t.as_deref() == Some("e2e"))
        .unwrap()
        .1;
    assert_eq!(e2e_h.len(), s.users.succeeded);
    assert!(close(
        e2e_h.value_at_percentile(95.0) as f64 / 1000.0,
        s.e2e_ms.p95.unwrap()
    ));
    assert!(
        hl.iter()
            .any(|(t, _)| t.as_deref() == Some("e2e.failed.revert(InvalidNonce)"))
    );
    // Per-interval histograms merge to the same total.
    let iv = read_hlog(&dir.path().join("intervals.hlog")).unwrap();
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for (_, h) in &iv {
        merged.add(h).unwrap();
    }
    assert_eq!(merged.len(), s.users.succeeded);
    assert_eq!(
        merged.value_at_percentile(99.0),
        e2e_h.value_at_percentile(99.0)
    );
    // Time series: one line per interval, cumulative counters end at the totals.
    let ts: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("timeseries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(ts.len() >= 60, "{} snapshots", ts.len());
    let last = ts.last().unwrap();
    assert_eq!(last["succeeded"], s.users.succeeded);
    assert_eq!(last["planned_arrivals"], 400);
    let sum_cps: f64 = ts
        .windows(2)
        .map(|w| w[1]["succeeded"].as_u64().unwrap() - w[0]["succeeded"].as_u64().unwrap())
        .sum::<u64>() as f64;
    assert!(sum_cps <= s.users.succeeded as f64);
    // Redacted config and details are written.
    assert!(dir.path().join("config.json").exists());
    let details: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("details.json")).unwrap()).unwrap();
    assert_eq!(
        details["metrics"]["blockchain"]["gas_usage"]["register"]["count"],
        s.users.started
    );
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["status"], "completed");
}

fn vengine_spacing() -> vana_load_engine::Spacing {
    vana_load_engine::Spacing::Poisson
}

/// The summary.json has exactly the issue's fields.
#[tokio::test(start_paused = true)]
async fn summary_json_has_exactly_the_issues_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        cfg(5, 5.0, 5),
        Arc::new(Fixed {
            service: Duration::from_millis(200),
        }),
        opts(dir.path()),
    )
    .await
    .unwrap();
    assert_eq!(out.exit_code(), 0, "{:?}", out.summary.criteria);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let set = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        keys(&v),
        set(&[
            "schema_version",
            "users",
            "e2e_ms",
            "e2e_population",
            "steps",
            "errors",
            "rates",
            "throughput",
            "time_scale",
            "target",
            "schedule_lag",
            "criteria",
            "verdict",
            "bottleneck",
            // The plan's alerting thresholds, watched live (none fired here);
            // `rpc` only when the flow counts its calls.
            "alerts"
        ])
    );
    assert_eq!(v["alerts"], serde_json::json!({}));
    assert_eq!(
        v["schema_version"],
        vana_load_engine::schema::SCHEMA_VERSION
    );
    assert_eq!(v["time_scale"], 1.0);
    assert!(
        v["e2e_population"]
            .as_str()
            .unwrap()
            .contains("5 successful journeys"),
        "{}",
        v["e2e_population"]
    );
    assert_eq!(
        keys(&v["users"]),
        set(&[
            "planned",
            "started",
            "succeeded",
            "failed",
            "delayed",
            "dropped",
            "cancelled",
            "not_arrived"
        ])
    );
    assert_eq!(keys(&v["e2e_ms"]), set(&["p50", "p95", "p99", "max"]));
    assert_eq!(
        keys(&v["steps"]["service"]),
        set(&["count", "errors", "p50_ms", "p95_ms", "p99_ms"])
    );
    assert_eq!(
        keys(&v["throughput"]),
        set(&["flows_per_s", "peak_flows_per_s", "tx_per_s"])
    );
    assert_eq!(
        keys(&v["criteria"][0]),
        set(&["name", "target", "actual", "pass"])
    );
    assert_eq!(v["verdict"], "pass");
}

struct AlwaysFails(AtomicU64);
impl Flow for AlwaysFails {
    fn steps(&self) -> Vec<StepDef> {
        vec![StepDef::new(
            "upload",
            "storage",
            Duration::from_secs(60),
            false,
        )]
    }

    async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        FlowResult {
            steps: vec![StepSample::failed(
                "upload",
                Duration::from_millis(300),
                "storage_503",
            )],
            error: Some(FlowError {
                step: "upload",
                class: "storage_503".into(),
                message: "503".into(),
            }),
            txs: vec![],
            counts: Default::default(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn abort_on_fail_threshold_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(600, 60.0, 100);
    c.breaker.enabled = false;
    c.thresholds = vec![ThresholdSpec::new("rate(errors) < 0.02", true)];
    let flow = Arc::new(AlwaysFails(AtomicU64::new(0)));
    let out = run(c, flow.clone(), opts(dir.path())).await.unwrap();
    assert!(
        matches!(&out.aborted, Some(AbortReason::Threshold { expr, .. }) if expr == "rate(errors) < 0.02"),
        "{:?}",
        out.aborted
    );
    assert!(
        flow.0.load(Ordering::SeqCst) < 100,
        "stopped early: {}",
        flow.0.load(Ordering::SeqCst)
    );
    assert_eq!(out.exit_code(), 1);
    let c = out
        .summary
        .criteria
        .iter()
        .find(|c| c.name == "rate(errors) < 0.02")
        .unwrap();
    assert!(!c.pass);
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["status"], "aborted");
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_at_the_first_critical_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(100, 10.0, 100);
    c.fail_fast = true;
    c.abort_grace_secs = 0.0;
    let flow = Arc::new(AlwaysFails(AtomicU64::new(0)));
    let out = run(c, flow.clone(), opts(dir.path())).await.unwrap();
    assert!(
        matches!(&out.aborted, Some(AbortReason::FailFast { step, .. }) if step == "upload"),
        "{:?}",
        out.aborted
    );
    assert_eq!(out.summary.users.failed, 1);
    // Arrivals in the 0.3 s before the first failure started; the rest never arrived.
    assert!(out.summary.users.started < 10, "{:?}", out.summary.users);
    let crit = out
        .summary
        .criteria
        .iter()
        .find(|c| c.name == "no_critical_failure")
        .unwrap();
    assert!(!crit.pass);
}

#[tokio::test(start_paused = true)]
async fn circuit_breaker_sheds_load_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(300, 30.0, 100);
    c.breaker.consecutive_failures = 5;
    c.breaker.cooldown_secs = 5.0;
    let flow = Arc::new(AlwaysFails(AtomicU64::new(0)));
    let out = run(c, flow.clone(), opts(dir.path())).await.unwrap();
    let b = &out.details.breakers;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].component, "storage", "upload's component");
    assert!(
        b[0].trips >= 2,
        "probes after each cooldown re-open it: {b:?}"
    );
    assert!(out.details.shed > 200, "{}", out.details.shed);
    assert_eq!(out.summary.users.dropped, out.details.shed);
    assert_eq!(flow.0.load(Ordering::SeqCst), out.summary.users.started);
    let shed_events = events(dir.path())
        .iter()
        .filter(|e| matches!(e, Event::FlowDropped(d) if d.error == "breaker(storage)"))
        .count() as u64;
    assert_eq!(shed_events, out.details.shed);
    assert!(
        !out.summary
            .criteria
            .iter()
            .find(|c| c.name == "no_critical_failure")
            .unwrap()
            .pass
    );
}

/// A run stopped half-way is resumed from its journal: finished users are not re-run.
#[tokio::test(start_paused = true)]
async fn interrupted_run_resumes_from_the_journal() {
    struct FailAt(u64, Mutex<Vec<u64>>);
    impl Flow for FailAt {
        fn steps(&self) -> Vec<StepDef> {
            defs(&["claim"])
        }

        async fn run(&self, u: u64, _p: &Progress) -> FlowResult {
            self.1.lock().unwrap().push(u);
            tokio::time::sleep(Duration::from_millis(500)).await;
            if u == self.0 {
                return FlowResult {
                    steps: vec![],
                    error: Some(FlowError {
                        step: "claim",
                        class: "nonce".into(),
                        message: "x".into(),
                    }),
                    txs: vec![],
                    counts: Default::default(),
                };
            }
            FlowResult::ok(vec![StepSample::ok("claim", Duration::from_millis(500))])
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(40, 20.0, 40);
    c.fail_fast = true;
    c.abort_grace_secs = 0.0;
    let first = Arc::new(FailAt(15, Mutex::new(vec![])));
    let out1 = run(c.clone(), first.clone(), opts(dir.path()))
        .await
        .unwrap();
    assert!(out1.aborted.is_some());
    let done1 = out1.summary.users.succeeded + out1.summary.users.failed;
    assert!((15..40).contains(&done1));
    // A second plain run refuses to overwrite it.
    assert!(
        run(c.clone(), first.clone(), opts(dir.path()))
            .await
            .is_err()
    );
    let second = Arc::new(FailAt(u64::MAX, Mutex::new(vec![])));
    let mut o = opts(dir.path());
    o.resume = true;
    let out2 = run(c, second.clone(), o).await.unwrap();
    let ran1: BTreeSet<u64> = first.1.lock().unwrap().iter().copied().collect();
    let ran2: BTreeSet<u64> = second.1.lock().unwrap().iter().copied().collect();
    let u = &out2.summary.users;
    assert_eq!((u.succeeded + u.failed, u.failed), (40, 1), "{u:?}");
    assert_eq!(
        ran2.len() as u64,
        40 - done1,
        "only unfinished users re-run"
    );
    assert!(ran1.union(&ran2).count() == 40);
    assert!(out2.details.resumed);
    // The resumed run keeps the first run's time base: every user's intended
    // start is its schedule offset (0.5 s apart), whichever run dispatched it.
    for j in events(dir.path()).iter().filter_map(Event::journey) {
        let want = 500.0 * j.who.user as f64;
        assert!(
            (j.who.intended_ms - want).abs() < 1.0,
            "user {}: intended {} ms, schedule {want} ms",
            j.who.user,
            j.who.intended_ms
        );
        assert!(
            j.duration_ms < 1000.0,
            "user {}: {}",
            j.who.user,
            j.duration_ms
        );
    }
    // Throughput spans the schedule (about 20 s), not a restarted clock.
    let fps = out2.summary.throughput.flows_per_s;
    assert!((1.5..2.5).contains(&fps), "{fps} journeys/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_serves_engine_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.metrics_addr = Some(addr);
    let c = cfg(6, 1.0, 10);
    let handle = tokio::spawn(run(
        c,
        Arc::new(Fixed {
            service: Duration::from_millis(2500),
        }),
        o,
    ));
    // Mid-run (all 6 arrived within 1 s, each takes 2.5 s): 6 in flight.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = vana_load_engine::prom::parse_prometheus_text(&text);
    assert_eq!(m.get("vana_load_arrivals_total"), Some(&6.0), "{text}");
    assert_eq!(m.get("vana_load_in_flight"), Some(&6.0), "{text}");
    let out = handle.await.unwrap().unwrap();
    assert_eq!(out.metrics_addr, Some(addr));
    assert_eq!(out.summary.users.succeeded, 6);
}

#[test]
fn parses_prometheus_text_gauges_and_counters() {
    let text = "# HELP relayer_pending Pending txs\n# TYPE relayer_pending gauge\nrelayer_pending{key=\"0\"} 3\nrelayer_pending{key=\"1\"} 4 1700000000\n# TYPE inference_queue_depth gauge\ninference_queue_depth 12\n# TYPE storage_bytes counter\nstorage_bytes_total 1.5e6\n# TYPE req_seconds histogram\nreq_seconds_bucket{le=\"1\"} 3\nreq_seconds_sum 2\nreq_seconds_count 3\nindexer_lag_blocks 2\n";
    let m = vana_load_engine::prom::parse_prometheus_text(text);
    assert_eq!(m["relayer_pending{key=\"0\"}"], 3.0);
    assert_eq!(m["relayer_pending{key=\"1\"}"], 4.0);
    assert_eq!(m["inference_queue_depth"], 12.0);
    assert_eq!(m["storage_bytes_total"], 1.5e6);
    assert_eq!(m["indexer_lag_blocks"], 2.0);
    assert!(!m.keys().any(|k| k.starts_with("req_seconds")));
}

/// Gauges of a live `/metrics` endpoint land in the time series.
#[tokio::test]
async fn scraped_gauges_reach_the_time_series() {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            "# TYPE inference_queue_depth gauge\ninference_queue_depth 7\n"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.gauge_sources = vec![vana_load_engine::GaugeSource {
        name: "inference".into(),
        url: format!("http://{addr}/metrics"),
    }];
    let mut c = cfg(3, 1.0, 10);
    c.metrics_interval = 0.5;
    let out = run(
        c,
        Arc::new(Fixed {
            service: Duration::from_millis(700),
        }),
        o,
    )
    .await
    .unwrap();
    server.abort();
    assert_eq!(
        out.details.gauge_max.get("inference.inference_queue_depth"),
        Some(&7.0)
    );
    assert_eq!(out.details.metrics.ai.queue_depth, Some(7.0));
    let ts = std::fs::read_to_string(dir.path().join("timeseries.jsonl")).unwrap();
    assert!(
        ts.lines()
            .any(|l| l.contains("\"inference\":{\"inference_queue_depth\":7.0}")),
        "{ts}"
    );
}
