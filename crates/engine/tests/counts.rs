//! A flow's own per-journey counts ([`FlowResult::counts`]): summed over the
//! successful and the failed journeys apart, written into `summary.json` per
//! journey, kept in each journey's journal line (so a replayed journal counts
//! the same), and shown in the end-of-run text, the Markdown summary and
//! `report.html`, each naming the journeys it is taken over.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vana_load_engine::report::{ReportOptions, RunData, markdown_report, text};
use vana_load_engine::{Flow, FlowError, FlowResult, Progress, StepDef, StepSample, run};

mod common;
use common::{cfg, defs, events, journeys, opts};

/// User `u` sends `u % 4` queries; every fifth user (u % 5 == 4) fails after
/// sending them. Users 0..20: successful users send 0,1,2,3,0,1,2,3,...
struct Counting;

const QUERIES: &str = "queries";

fn queries(u: u64) -> u64 {
    u % 4
}

fn fails(u: u64) -> bool {
    u % 5 == 4
}

impl Flow for Counting {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["ask"])
    }

    async fn run(&self, u: u64, _p: &Progress) -> FlowResult {
        let d = Duration::from_millis(20);
        tokio::time::sleep(d).await;
        if fails(u) {
            return FlowResult {
                steps: vec![StepSample::failed("ask", d, "boom")],
                error: Some(FlowError {
                    step: "ask",
                    class: "boom".into(),
                    message: "failed on purpose".into(),
                }),
                txs: Vec::new(),
                counts: Default::default(),
            }
            .count(QUERIES, queries(u));
        }
        FlowResult::ok(vec![StepSample::ok("ask", d)]).count(QUERIES, queries(u))
    }
}

async fn recorded(dir: &Path) {
    let mut c = cfg(20, 2.0, 50);
    c.error_budget = 0.5;
    run(c, Arc::new(Counting), opts(dir)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn per_journey_counts_add_up_and_are_shown_with_their_population() {
    let dir = tempfile::tempdir().unwrap();
    recorded(dir.path()).await;
    let users = 0..20u64;
    let ok: Vec<u64> = users.clone().filter(|u| !fails(*u)).collect();
    let bad: Vec<u64> = users.filter(|u| fails(*u)).collect();
    let sum = |v: &[u64]| v.iter().map(|u| queries(*u)).sum::<u64>();
    assert_eq!((ok.len(), bad.len()), (16, 4));

    let d = RunData::load(dir.path()).unwrap();
    let c = &d.summary.counts[QUERIES];
    assert_eq!(c.successful_journeys, 16);
    assert_eq!(c.successful_total, sum(&ok));
    assert_eq!(c.successful_max, 3);
    assert_eq!(c.per_successful_journey, Some(sum(&ok) as f64 / 16.0));
    assert_eq!(c.failed_journeys, 4);
    assert_eq!(c.failed_total, sum(&bad));
    assert_eq!(c.per_failed_journey, Some(sum(&bad) as f64 / 4.0));

    // Each journal line carries its own count.
    let ev = events(dir.path());
    let js = journeys(&ev);
    assert_eq!(js.len(), 20);
    for j in &js {
        assert_eq!(j.counts.get(QUERIES), Some(&queries(j.who.user)), "{j:?}");
    }
    // Replaying the journal (resume, merge) rebuilds the same sums.
    let st = vana_load_engine::journal::replay(dir.path(), 20).unwrap();
    let r = &st.recorder.counts[QUERIES];
    assert_eq!(
        (r.successful_total, r.successful_max, r.failed_total),
        (sum(&ok), 3, sum(&bad))
    );

    // Shown, with the population each figure is taken over.
    let per_ok = format!("{:.1}", sum(&ok) as f64 / 16.0);
    let per_bad = format!("{:.1}", sum(&bad) as f64 / 4.0);
    let sentence = format!(
        "queries: {per_ok} per journey over the 16 successful journeys (at most 3 in one); \
         {per_bad} per journey over the 4 failed journeys"
    );
    let txt = text::render(&d, false);
    assert!(txt.contains(&sentence), "{txt}");
    let md = markdown_report(dir.path(), &ReportOptions::default()).unwrap();
    assert!(md.contains(&sentence), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("id=\"count-queries\""),
        "no count in report.html"
    );
    assert!(html.contains(&sentence), "report.html lacks: {sentence}");
}

#[tokio::test(start_paused = true)]
async fn a_flow_without_counts_shows_none() {
    let dir = tempfile::tempdir().unwrap();
    struct Plain;
    impl Flow for Plain {
        fn steps(&self) -> Vec<StepDef> {
            defs(&["ask"])
        }
        async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
            FlowResult::ok(vec![StepSample::ok("ask", Duration::from_millis(5))])
        }
    }
    run(cfg(5, 1.0, 10), Arc::new(Plain), opts(dir.path()))
        .await
        .unwrap();
    let d = RunData::load(dir.path()).unwrap();
    assert!(d.summary.counts.is_empty());
    let json = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(!json.contains("\"counts\""), "{json}");
    assert!(!text::render(&d, false).contains("COUNT"));
}
