//! Sharded runs merged (`engine::merge`), against one process running the
//! same schedule, in paused time with a flow whose every duration is a
//! function of the user: both record exactly the same samples, so the merged
//! results must equal the single run's exactly — every count, every
//! histogram bucket, every percentile, the time series interval by interval,
//! and the verdict. Then the refusals (another run's shard, a missing or
//! repeated shard) and `allow_partial`, and a shard that starts late.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{cfg, defs, opts};
use vana_load_engine::config::LoadTestConfig;
use vana_load_engine::merge::{MergeError, MergeOptions, merge};
use vana_load_engine::metrics::Snapshot;
use vana_load_engine::schema::{Details, RunInfo, Summary, Verdict};
use vana_load_engine::{
    Flow, FlowError, FlowResult, Progress, RunOptions, Shard, StepDef, StepSample, TxSample, run,
};

/// Per-user durations from a hash; one user in ten fails its second step;
/// four users share each block.
struct Hashed;

fn h(u: u64) -> u64 {
    let mut x = u.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

impl Flow for Hashed {
    fn steps(&self) -> Vec<StepDef> {
        defs(&["upload", "register"])
    }

    async fn run(&self, u: u64, _p: &Progress) -> FlowResult {
        let a = Duration::from_millis(50 + h(u) % 700);
        tokio::time::sleep(a).await;
        let b = Duration::from_millis(200 + h(u + 7) % 3000);
        tokio::time::sleep(b).await;
        let txs = vec![TxSample {
            kind: "register",
            gas_used: 100_000 + u,
            fee_wei: 10u128.pow(14),
            confirm: b,
            block: u / 4,
        }];
        let mut steps = vec![StepSample::ok("upload", a)];
        if h(u + 3).is_multiple_of(10) {
            steps.push(StepSample::failed("register", b, "revert(Nope)"));
            return FlowResult {
                steps,
                error: Some(FlowError {
                    step: "register",
                    class: "revert(Nope)".into(),
                    message: "synthetic".into(),
                }),
                txs,
                counts: Default::default(),
            };
        }
        steps.push(StepSample::ok("register", b));
        FlowResult {
            steps,
            error: None,
            txs,
            counts: Default::default(),
        }
    }

    fn wallet(&self, u: u64) -> String {
        format!("0x{u:040x}")
    }
}

fn config() -> LoadTestConfig {
    let mut c = cfg(121, 40.0, 60);
    c.ramp_up_minutes = 0.2;
    c.ramp_down_minutes = 0.2;
    c.test_duration_minutes = 40.0 / 60.0 + 0.4;
    c.breaker.enabled = false;
    c.error_budget = 0.2;
    c.metrics_interval = 5.0;
    c
}

fn shard_opts(
    dir: &Path,
    shard: Shard,
    run_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> RunOptions {
    RunOptions {
        shard: Some(shard),
        run_id: Some(run_id.into()),
        start_at: Some(at),
        ..opts(dir)
    }
}

fn read<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> T {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

fn series(dir: &Path) -> Vec<Snapshot> {
    std::fs::read_to_string(dir.join("timeseries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every tagged histogram of `histograms.hlog`, as (value, count) per bucket.
fn buckets(dir: &Path) -> std::collections::BTreeMap<String, Vec<(u64, u64)>> {
    vana_load_engine::results::read_hlog(&dir.join("histograms.hlog"))
        .unwrap()
        .into_iter()
        .map(|(tag, h)| {
            let b = h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            (tag.unwrap(), b)
        })
        .collect()
}

/// Runs the three shards (sharing a start instant far enough ahead that no
/// shard is late) into `root/shard-i`, and returns their directories.
async fn run_shards(root: &Path, run_id: &str, late: Option<u32>) -> Vec<PathBuf> {
    let at = chrono::Utc::now() + chrono::Duration::seconds(600);
    let mut dirs = Vec::new();
    for shard in Shard::all(3) {
        let dir = root.join(format!("shard-{}", shard.index));
        // A late shard: its start instant had passed 10 s before it began.
        let start = match late {
            Some(i) if i == shard.index => chrono::Utc::now() - chrono::Duration::seconds(10),
            _ => at,
        };
        run(
            config(),
            Arc::new(Hashed),
            shard_opts(&dir, shard, run_id, start),
        )
        .await
        .unwrap();
        dirs.push(dir);
    }
    dirs
}

#[tokio::test(start_paused = true)]
async fn merged_shards_equal_one_process_running_the_same_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    let one = run(config(), Arc::new(Hashed), opts(&single))
        .await
        .unwrap();
    let dirs = run_shards(tmp.path(), "r1", None).await;
    let out = tmp.path().join("merged");
    let merged = merge(&dirs, &out, &MergeOptions::default()).unwrap();

    // Counts: users, errors, steps, transactions — exact.
    let (a, b): (Summary, Summary) = (read(&single, "summary.json"), read(&out, "summary.json"));
    assert_eq!(b.users, a.users);
    assert_eq!(a.users.planned, 121);
    assert!(
        a.users.failed > 0 && a.users.succeeded > 100,
        "{:?}",
        a.users
    );
    assert_eq!(b.errors, a.errors);
    assert_eq!(b.steps, a.steps, "step counts and percentiles");
    assert_eq!(b.rates, a.rates);
    // Latency percentiles: identical (the same samples in the same buckets).
    assert_eq!(b.e2e_ms, a.e2e_ms);
    assert_eq!(b.schedule_lag, a.schedule_lag);
    let (da, db): (Details, Details) = (read(&single, "details.json"), read(&out, "details.json"));
    assert_eq!(db.schedule_lag_ms, da.schedule_lag_ms);
    assert_eq!(db.queue_wait_ms, da.queue_wait_ms);
    assert_eq!(db.e2e_failed_ms, da.e2e_failed_ms);
    let (ga, gb) = (&da.metrics.blockchain, &db.metrics.blockchain);
    assert_eq!(
        gb.max_tx_per_block, ga.max_tx_per_block,
        "blocks shared by shards add up"
    );
    assert_eq!(gb.mean_tx_per_block, ga.mean_tx_per_block);
    assert_eq!(
        gb.gas_usage["register"].gas_used_total,
        ga.gas_usage["register"].gas_used_total
    );
    assert_eq!(gb.rpc_latency_ms, ga.rpc_latency_ms);
    // Every histogram, bucket by bucket.
    assert_eq!(buckets(&out), buckets(&single));
    // The verdict, judged on the merged data, with the same criteria.
    assert_eq!(merged.summary.verdict, one.summary.verdict);
    assert_eq!(b.verdict, Verdict::Pass, "{:?}", b.verdict_reason);
    let crit = |s: &Summary| -> Vec<(String, bool)> {
        s.criteria
            .iter()
            .map(|c| (c.name.clone(), c.pass))
            .collect()
    };
    let mut want = crit(&a);
    want.push(("shards".into(), true));
    assert_eq!(crit(&b), want);

    // The time series, aligned on the shared start: interval by interval.
    // A journey that ends at the very instant of a snapshot (paused time makes
    // such ties) may land on either side of it; those rows are left out.
    let (sa, sb) = (series(&single), series(&out));
    assert_eq!(sb.len(), sa.len());
    let ends: Vec<f64> = common::events(&single)
        .iter()
        .filter_map(|e| e.journey().map(|j| j.who.intended_ms + j.duration_ms))
        .collect();
    let mut compared = 0;
    for (i, (x, y)) in sa.iter().zip(&sb).enumerate() {
        // The last row is each process's end, which differs.
        if i + 1 < sa.len() {
            assert!(
                (x.t_s - y.t_s).abs() < 0.01,
                "row at {} s vs {} s",
                x.t_s,
                y.t_s
            );
        }
        if ends.iter().any(|e| (e - x.t_s * 1000.0).abs() < 1.5) {
            continue;
        }
        compared += 1;
        assert_eq!(
            (y.arrivals, y.succeeded, y.failed, y.planned_arrivals),
            (x.arrivals, x.succeeded, x.failed, x.planned_arrivals),
            "at {} s",
            x.t_s
        );
        assert_eq!(y.e2e_p95_ms, x.e2e_p95_ms, "interval p95 at {} s", x.t_s);
        assert_eq!(y.errors, x.errors, "at {} s", x.t_s);
    }
    assert!(
        compared * 2 > sa.len(),
        "{compared} of {} rows compared",
        sa.len()
    );
    let (la, lb) = (sa.last().unwrap(), sb.last().unwrap());
    assert_eq!((lb.succeeded, lb.failed), (la.succeeded, la.failed));
    assert_eq!(b.throughput.peak_flows_per_s, a.throughput.peak_flows_per_s);

    // One journal: every user once, as in the single run.
    let ends = |d: &Path| {
        let mut v: Vec<u64> = common::events(d)
            .iter()
            .filter_map(|e| e.journey().map(|j| j.who.user))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ends(&out), ends(&single));
    assert_eq!(ends(&out), (0..121).collect::<Vec<_>>());

    // The merged run names its shards, each with its own schedule lag.
    let r: RunInfo = read(&out, "run.json");
    let m = r.merged.unwrap();
    assert_eq!((m.count, m.merged, m.missing), (3, vec![1, 2, 3], vec![]));
    assert_eq!(db.shards.len(), 3);
    assert_eq!(db.shards.iter().map(|s| s.planned).sum::<u64>(), 121);
    assert_eq!(db.shards[0].planned, 41, "users 0, 3, …, 120");
    assert!(db.shards.iter().all(|s| s.start_lag_ms == Some(0.0)));
    let text = merged.text_summary(false);
    assert!(text.contains("SHARDS  merged from 3 of 3 shards"), "{text}");
    assert!(text.contains("schedule lag p99"), "{text}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"shards\""));
    // A shard's own report says which slice it ran.
    let own = vana_load_engine::report::RunData::load(&dirs[1]).unwrap();
    let text = vana_load_engine::report::text::render(&own, false);
    assert!(
        text.contains("shard 2/3 of run r1: 40 of 121 users, 20 of 60 concurrency slots"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn shards_of_other_runs_missing_or_repeated_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = run_shards(tmp.path(), "r1", None).await;
    let other = tmp.path().join("other");
    let at = chrono::Utc::now() + chrono::Duration::seconds(600);
    run(
        config(),
        Arc::new(Hashed),
        shard_opts(&other, Shard::new(3, 3).unwrap(), "r2", at),
    )
    .await
    .unwrap();
    let out = |n: &str| tmp.path().join(n);
    let opts = MergeOptions::default();

    let e = merge(
        &[dirs[0].clone(), dirs[1].clone(), other.clone()],
        &out("m1"),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(e, MergeError::RunId { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("`r2`") && msg.contains("`r1`") && msg.contains("other"),
        "{msg}"
    );

    let e = merge(&dirs[..2], &out("m2"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("run `r1`: shard 3/3 missing") && e.contains("--allow-partial"),
        "{e}"
    );

    let e = merge(&[dirs[0].clone(), dirs[0].clone()], &out("m3"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shard 1/3 is given twice"), "{e}");

    let single = tmp.path().join("single");
    let mut c = config();
    c.total_users = 3;
    run(c, Arc::new(Hashed), common::opts(&single))
        .await
        .unwrap();
    let e = merge(&[single], &out("m4"), &opts).unwrap_err().to_string();
    assert!(e.contains("is not a shard of a run"), "{e}");

    // --allow-partial merges what is there, and the verdict is not a pass.
    let partial = out("partial");
    let outcome = merge(
        &dirs[..2],
        &partial,
        &MergeOptions {
            allow_partial: true,
        },
    )
    .unwrap();
    let s = &outcome.summary;
    assert_eq!(s.verdict, Verdict::Fail);
    let why = s.verdict_reason.as_deref().unwrap();
    assert!(
        why.contains("shard 3/3 missing") && why.contains("40 planned users never arrived"),
        "{why}"
    );
    assert_eq!(s.users.planned, 121);
    assert_eq!(s.users.not_arrived, 40);
    let shards = s.criteria.iter().find(|c| c.name == "shards").unwrap();
    assert!(!shards.pass);
    assert_eq!(shards.actual, serde_json::json!("2 of 3"));
    // Merging into a directory that already holds results is refused.
    let e = merge(&dirs, &partial, &opts).unwrap_err().to_string();
    assert!(e.contains("already holds results"), "{e}");
}

/// Shard 2 starts 10 s after the shared instant: it reports the lag, its
/// users due meanwhile are charged it, and the merged verdict cannot pass.
#[tokio::test(start_paused = true)]
async fn a_late_shard_reports_and_charges_its_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = run_shards(tmp.path(), "late", Some(2)).await;
    let own: RunInfo = read(&dirs[1], "run.json");
    let lag = own.start_lag_ms.unwrap();
    assert!((10_000.0..10_500.0).contains(&lag), "start lag {lag}");
    let s: Summary = read(&dirs[1], "summary.json");
    assert_eq!(s.verdict, Verdict::Inconclusive, "{:?}", s.verdict_reason);
    let d: Details = read(&dirs[1], "details.json");
    // Its users due in the first 10 s (users 1, 4 and 7 by then) were charged the lag.
    assert!(
        d.schedule_lag_ms.max.unwrap() >= 5000.0,
        "{:?}",
        d.schedule_lag_ms
    );

    let out = tmp.path().join("merged");
    let merged = merge(&dirs, &out, &MergeOptions::default()).unwrap();
    let d: Details = read(&out, "details.json");
    let row = &d.shards[1];
    assert_eq!(row.index, 2);
    assert!(row.start_lag_ms.unwrap() >= 10_000.0);
    assert!(row.schedule_lag_ms.max.unwrap() >= 5000.0);
    assert_eq!(d.shards[0].start_lag_ms, Some(0.0));
    assert_ne!(merged.summary.verdict, Verdict::Pass);
    let text = merged.text_summary(false);
    assert!(text.contains("2/3"), "{text}");
}
