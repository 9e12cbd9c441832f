//! The bottleneck analysis on synthetic runs of known shape: a pool of two
//! "inference workers" must be named as the inference backend; a single
//! "relayer key" as the relayer; plentiful workers must name nothing. The
//! analysis reads only the results directory, so it works for any flow.

mod report_support;

use report_support::{Scenario, run_scenario};
use vana_load_engine::report::{ReportOptions, RunData, analyse};

fn summary_bottleneck(dir: &std::path::Path) -> serde_json::Value {
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    raw["bottleneck"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_inference_workers_names_the_inference_backend() {
    let dir = tempfile::tempdir().unwrap();
    // 2 workers × 40 ms = 50 predictions/s against a 100/s peak.
    run_scenario(Scenario::saturating("infer_wait", 2, 40), dir.path()).await;
    let data = RunData::load(dir.path()).unwrap();
    let a = analyse(&data, &ReportOptions::default());
    let b = &a.bottleneck;
    assert_eq!(
        b.component.as_deref(),
        Some("inference"),
        "{:#?}",
        b.sentences
    );
    assert_eq!(b.step.as_deref(), Some("infer_wait"), "{:#?}", b.steps);
    let sig = b
        .components
        .iter()
        .find(|c| c.component == "inference")
        .unwrap();
    let q = sig
        .queue
        .as_ref()
        .expect("the inference queue gauge was scraped");
    assert!(q.rising && q.max >= 20.0, "queue depth should rise: {q:?}");
    // Completions stay flat near the pool's capacity while arrivals run at ~100/s.
    let cps = q.completions_per_s_after.unwrap();
    assert!(
        (35.0..=65.0).contains(&cps),
        "completions/s after onset {cps}"
    );
    assert!(q.arrivals_per_s_after.unwrap() > cps * 1.3);
    // Capacity is measured at saturation: about 50 journeys/s.
    let c = &a.capacity;
    assert!(!c.lower_bound);
    assert_eq!(c.limiting_component.as_deref(), Some("inference"));
    assert!(
        (40.0..=62.0).contains(&c.journeys_per_s),
        "{}",
        c.journeys_per_s
    );
    assert!(c.knob.as_deref().unwrap().contains("inference workers"));
    assert!(
        b.sentences[0].contains("inference backend"),
        "{}",
        b.sentences[0]
    );
    // No other component is blamed.
    for other in b.components.iter().filter(|c| c.component != "inference") {
        assert!(
            !other.saturated,
            "{} flagged: {:?}",
            other.component, other.evidence
        );
    }
    // Written into summary.json and the report.
    let sb = summary_bottleneck(dir.path());
    assert_eq!(sb["component"], "inference");
    assert_eq!(sb["step"], "infer_wait");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("The bottleneck is the inference backend"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_relayer_key_names_the_relayer() {
    let dir = tempfile::tempdir().unwrap();
    // One key, 20 ms per transaction = 50 registrations/s against a 100/s peak.
    run_scenario(Scenario::saturating("register", 1, 20), dir.path()).await;
    let data = RunData::load(dir.path()).unwrap();
    let a = analyse(&data, &ReportOptions::default());
    let b = &a.bottleneck;
    assert_eq!(
        b.component.as_deref(),
        Some("relayer"),
        "{:#?}",
        b.sentences
    );
    assert_eq!(b.step.as_deref(), Some("register"));
    let g = b.steps.iter().find(|g| g.step == "register").unwrap();
    assert!(g.grows && g.correlation > 0.6 && g.ratio > 5.0, "{g:?}");
    assert!(b.knob.as_deref().unwrap().contains("relayer keys"));
    assert!((40.0..=62.0).contains(&a.capacity.journeys_per_s));
    assert_eq!(summary_bottleneck(dir.path())["component"], "relayer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plentiful_workers_name_no_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    // 64 workers × 40 ms = 1600/s: nothing queues at a 100/s peak.
    let mut sc = Scenario::saturating("infer_wait", 64, 40);
    sc.base = std::time::Duration::from_millis(20);
    // A constant failure rate (1 in 25 at `proof`) is not saturation either.
    sc.fail_every = 25;
    run_scenario(sc, dir.path()).await;
    let data = RunData::load(dir.path()).unwrap();
    let a = analyse(&data, &ReportOptions::default());
    assert_eq!(
        a.bottleneck.component, None,
        "{:#?}",
        a.bottleneck.sentences
    );
    assert!(a.bottleneck.sentences[0].starts_with("No component saturated"));
    let tee = a
        .bottleneck
        .components
        .iter()
        .find(|c| c.component == "tee")
        .unwrap();
    assert_eq!(tee.errors, 26);
    assert!(tee.evidence.is_empty(), "{:?}", tee.evidence);
    // Capacity is then a lower bound from the best observed throughput.
    assert!(a.capacity.lower_bound);
    assert!(
        a.capacity.journeys_per_s >= 60.0,
        "{}",
        a.capacity.journeys_per_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_binding_still_names_the_inference_backend() {
    let dir = tempfile::tempdir().unwrap();
    // Same two workers, but only 80 journeys may be in flight: arrivals wait for
    // slots (outside every step), and the cap is part of the evidence.
    let mut sc = Scenario::saturating("infer_wait", 2, 40);
    sc.max_concurrent = 80;
    let out = run_scenario(sc, dir.path()).await;
    assert!(out.summary.users.delayed > 0);
    let data = RunData::load(dir.path()).unwrap();
    let b = analyse(&data, &ReportOptions::default()).bottleneck;
    assert_eq!(
        b.component.as_deref(),
        Some("inference"),
        "{:#?}",
        b.sentences
    );
    assert!(b.cap_reached_s.is_some());
    let sig = b
        .components
        .iter()
        .find(|c| c.component == "inference")
        .unwrap();
    assert!(
        sig.evidence
            .iter()
            .any(|e| e.contains("reached the cap of 80")),
        "{:?}",
        sig.evidence
    );
    assert!(
        b.sentences
            .iter()
            .any(|s| s.contains("reached the cap of 80"))
    );
}
