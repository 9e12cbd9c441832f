//! The plan's alerting thresholds watched during a run (paused clock): an
//! alert is one `alert` event when its rule starts to hold, another only after
//! it cleared; the summary counts them, the journal replay keeps them apart
//! from the users, and the verdict ignores them. The flow's JSON-RPC counts
//! reach the summary and the time series.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vana_load_engine::config::{LoadTestConfig, Preset};
use vana_load_engine::metrics::Snapshot;
use vana_load_engine::schema::{AlertName, Event, Verdict};
use vana_load_engine::{
    Flow, FlowError, FlowResult, LiveMode, Progress, RpcCounts, RunOptions, StepDef, StepSample,
    run,
};

/// One arrival a second for `users` seconds.
fn cfg(users: u64) -> LoadTestConfig {
    let mut c = Preset::Smoke.config();
    c.total_users = users;
    c.max_wallets = users;
    c.max_concurrent_users = 50;
    c.ramp_up_minutes = 0.0;
    c.ramp_down_minutes = 0.0;
    c.sustain_minutes = users as f64 / 60.0;
    c.test_duration_minutes = c.sustain_minutes;
    c.metrics_interval = 5.0;
    c.breaker.enabled = false;
    // The verdict must not depend on the alerts: a budget no failure here reaches.
    c.error_budget = 0.5;
    c
}

/// 1 s journeys making ten JSON-RPC calls each. Users 100–119 and 300–319
/// fail; users 200–209 make their calls in vain (errors) yet succeed.
#[derive(Default)]
struct Bursts {
    ok: AtomicU64,
    error: AtomicU64,
}

impl Flow for Bursts {
    fn steps(&self) -> Vec<StepDef> {
        vec![StepDef::new("work", "svc", Duration::from_secs(10), true)]
    }

    async fn run(&self, user: u64, p: &Progress) -> FlowResult {
        p.begin("work");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let calls = if (200..210).contains(&user) {
            &self.error
        } else {
            &self.ok
        };
        calls.fetch_add(10, Ordering::SeqCst);
        let fails = (100..120).contains(&user) || (300..320).contains(&user);
        let d = Duration::from_secs(1);
        if fails {
            let s = StepSample::failed("work", d, "boom");
            p.end(s.clone());
            return FlowResult {
                steps: vec![s],
                error: Some(FlowError {
                    step: "work",
                    class: "boom".into(),
                    message: "boom".into(),
                }),
                txs: Vec::new(),
                counts: Default::default(),
            };
        }
        let s = StepSample::ok("work", d);
        p.end(s.clone());
        FlowResult::ok(vec![s])
    }

    fn rpc(&self) -> Option<RpcCounts> {
        Some(RpcCounts {
            ok: self.ok.load(Ordering::SeqCst),
            error: self.error.load(Ordering::SeqCst),
            timeout: 0,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn each_breach_is_one_alert_counted_in_the_summary_and_never_judged() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: Some(dir.path().to_path_buf()),
        live: LiveMode::Off,
        run_id: Some("t".into()),
        ..Default::default()
    };
    let out = run(cfg(400), Arc::new(Bursts::default()), opts)
        .await
        .unwrap();
    let s = &out.summary;
    assert_eq!((s.users.succeeded, s.users.failed), (360, 40));

    let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let alerts: Vec<_> = text
        .lines()
        .map(|l| serde_json::from_str::<Event>(l).unwrap())
        .filter_map(|e| match e {
            Event::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    let names: Vec<AlertName> = alerts.iter().map(|a| a.name).collect();
    // Errors at 100–120 s fire; they leave the one-minute window by about
    // 185 s, so those at 300–320 s fire again. The RPC errors at 200–210 s
    // fire once. Journeys of 1 s and no scraped queue fire nothing else.
    assert_eq!(
        names,
        [
            AlertName::ErrorRate,
            AlertName::RpcSuccessRate,
            AlertName::ErrorRate
        ],
        "{alerts:?}"
    );
    let at = |i: usize| alerts[i].t_s;
    assert!((100.0..104.0).contains(&at(0)), "{alerts:?}");
    assert!((200.0..204.0).contains(&at(1)), "{alerts:?}");
    assert!((300.0..304.0).contains(&at(2)), "{alerts:?}");
    assert!(alerts.iter().all(|a| a.limit > 0.0 && a.timestamp > 0));
    assert!(alerts[1].value < 0.99, "{:?}", alerts[1]);

    let er = &s.alerts[&AlertName::ErrorRate];
    assert_eq!(er.count, 2);
    assert_eq!((er.first_s, er.last_s), (at(0), at(2)));
    assert_eq!(er.limit, 0.01);
    // At worst 20 failed among about 60 ended in a minute.
    assert!(er.worst > 0.25 && er.worst < 0.45, "{er:?}");
    assert_eq!(s.alerts[&AlertName::RpcSuccessRate].count, 1);
    assert_eq!(s.alerts.len(), 2, "{:?}", s.alerts);
    // 10 % of users failed, under the 50 % budget: the alerts did not fail the run.
    assert_eq!(s.verdict, Verdict::Pass, "{:?}", s.criteria);

    let rpc = s.rpc.as_ref().expect("the flow counts its calls");
    assert_eq!(
        (rpc.calls.ok, rpc.calls.error, rpc.calls.timeout),
        (3900, 100, 0)
    );
    assert_eq!(rpc.success_rate, Some(0.975));

    // The time series carries the running counts and the alerts firing.
    let series: Vec<Snapshot> = std::fs::read_to_string(dir.path().join("timeseries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = series.last().unwrap();
    assert_eq!(last.rpc.map(|r| r.total()), Some(4000));
    let firing_at = |t: f64| {
        series
            .iter()
            .find(|p| p.t_s >= t)
            .map(|p| p.alerts.clone())
            .unwrap_or_default()
    };
    assert_eq!(firing_at(150.0), [AlertName::ErrorRate]);
    assert!(firing_at(250.0).contains(&AlertName::RpcSuccessRate));
    assert!(!firing_at(250.0).contains(&AlertName::ErrorRate));

    // The journal replay measures the users only, and keeps the alerts aside.
    let st = vana_load_engine::journal::replay(dir.path(), 400).unwrap();
    assert_eq!(st.bad_lines, 0);
    assert_eq!(st.alerts.len(), 3);
    assert_eq!((st.recorder.succeeded, st.recorder.failed), (360, 40));
}
