//! A sharded run end to end, as the built binary: one twin (`twin up`, given
//! to the shards by `--manifest`), three `run --shard i/3` processes sharing a
//! run id and a start instant, then `merge`; compared with one `run` process
//! running the same schedule against the same kind of twin (a fresh one, as
//! the shards' twin already holds their users' files).
//!
//! Compared exactly: the user counts, the error classes, the step counts, the
//! transactions by kind and the verdict (a twin without faults completes every
//! journey of a smoke-sized run in either layout; a difference is a lost or
//! double-counted user). Compared within a tolerance: the latency percentiles.
//! The two layouts record different samples — three processes and one twin
//! share two cores in one, one process in the other — so only how the samples
//! are merged can be exact, and that is proven on identical samples by the
//! engine's `merge` test. Here the E2E latency is dominated by the twin's
//! simulated inference (seconds, the same in both layouts), so the medians
//! agree within a factor of 1.5 unless a journey was lost or mis-timed by
//! whole seconds; the p95 of 12 journeys is a single journey, so it gets a
//! factor of 2.
//!
//! Bounded: 12 users over 18 s each time, on 127.0.0.1; the whole test takes
//! about a minute.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_vana-load");

/// The smoke profile, smaller: 12 users over 18 s.
const PROFILE: [&str; 10] = [
    "--profile",
    "smoke",
    "--total",
    "12",
    "--duration",
    "0.3",
    "--metrics-interval",
    "2",
    "--live",
    "off",
];

fn vana_load() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("VANA_LOAD_") || k.starts_with("LOAD_TEST_") || k.starts_with("JOB_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Kills the twin when the test ends, however it ends.
struct Twin(Child);

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn twin_up(dir: &Path) -> (Twin, PathBuf) {
    let manifest = dir.join("manifest.json");
    let child = vana_load()
        .args(["twin", "up", "--port", "0", "--manifest"])
        .arg(&manifest)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("twin.log")).unwrap())
        .spawn()
        .unwrap();
    let mut twin = Twin(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !manifest.exists() {
        if let Some(status) = twin.0.try_wait().unwrap() {
            panic!("twin up exited early ({status})");
        }
        assert!(Instant::now() < deadline, "no twin manifest after 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (twin, manifest)
}

/// Waits for a child with a bound; returns its exit code.
fn finish(mut child: Child, log: &Path, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn within(merged: &serde_json::Value, single: &serde_json::Value, factor: f64) -> bool {
    let (a, b) = (merged.as_f64().unwrap(), single.as_f64().unwrap());
    a <= b * factor && b <= a * factor
}

#[test]
fn three_shards_merged_reproduce_one_process_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The shards, against one twin, sharing a run id and a start instant
    // (far enough ahead for every process to fund its wallets first).
    let (twin, manifest) = twin_up(dir);
    let at = chrono::Utc::now() + chrono::Duration::seconds(15);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let shards: Vec<(Child, PathBuf, PathBuf)> = (1..=3)
        .map(|i| {
            let out = dir.join(format!("shard-{i}"));
            let log = dir.join(format!("shard-{i}.log"));
            let child = vana_load()
                .arg("run")
                .args(PROFILE)
                .args(["--shard", &format!("{i}/3"), "--run-id", "it-1"])
                .args(["--start-at", &at, "--manifest"])
                .arg(&manifest)
                .arg("--out")
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            (child, out, log)
        })
        .collect();
    let mut dirs = Vec::new();
    for (child, out, log) in shards {
        let code = finish(child, &log, Duration::from_secs(150));
        assert!(
            matches!(code, 0 | 1),
            "shard {} exited {code}: {}",
            out.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        dirs.push(out);
    }
    drop(twin);

    let merged = dir.join("merged");
    let o = vana_load()
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let merge_code = o.status.code();
    assert!(
        matches!(merge_code, Some(0 | 1)),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // One process, the same schedule, a fresh twin of the same kind.
    let twin_dir = dir.join("single-twin");
    std::fs::create_dir_all(&twin_dir).unwrap();
    let (twin, manifest) = twin_up(&twin_dir);
    let single = dir.join("single");
    let log = dir.join("single.log");
    let child = vana_load()
        .arg("run")
        .args(PROFILE)
        .arg("--manifest")
        .arg(&manifest)
        .arg("--out")
        .arg(&single)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let single_code = finish(child, &log, Duration::from_secs(150));
    drop(twin);

    let (a, b) = (
        json(&single.join("summary.json")),
        json(&merged.join("summary.json")),
    );
    // Exact: every count, and the verdict.
    assert_eq!(b["users"], a["users"], "users");
    assert_eq!(a["users"]["planned"], 12);
    assert_eq!(b["errors"], a["errors"], "error classes");
    for (step, s) in a["steps"].as_object().unwrap() {
        assert_eq!(b["steps"][step]["count"], s["count"], "{step} count");
        assert_eq!(b["steps"][step]["errors"], s["errors"], "{step} errors");
    }
    let (da, db) = (
        json(&single.join("details.json")),
        json(&merged.join("details.json")),
    );
    let gas = |d: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        d["metrics"]["blockchain"]["gas_usage"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["count"].clone()))
            .collect()
    };
    assert_eq!(gas(&db), gas(&da), "transactions by kind");
    assert_eq!(b["verdict"], a["verdict"], "{text}");
    assert_eq!(
        merge_code,
        Some(single_code),
        "exit codes follow the verdict"
    );
    // Within a tolerance (see the module doc): the E2E percentiles.
    assert!(
        within(&b["e2e_ms"]["p50"], &a["e2e_ms"]["p50"], 1.5),
        "{a} vs {b}"
    );
    assert!(
        within(&b["e2e_ms"]["p95"], &a["e2e_ms"]["p95"], 2.0),
        "{a} vs {b}"
    );

    // The merged report shows the shards, each with its own schedule lag.
    let rows = db["shards"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["index"], i as u64 + 1);
        assert_eq!(r["planned"], 4);
        assert!(r["schedule_lag_ms"]["p99"].is_number(), "{r}");
        assert!(r["start_lag_ms"].is_number(), "{r}");
    }
    assert!(text.contains("SHARDS  merged from 3 of 3 shards"), "{text}");
    for s in ["1/3", "2/3", "3/3"] {
        assert!(text.contains(s), "{s}: {text}");
    }
    let run = json(&merged.join("run.json"));
    assert_eq!(run["run_id"], "it-1");
    assert_eq!(run["merged"]["missing"], serde_json::json!([]));
    // The merged files are results files like any other.
    support::validate("summary.schema.json", &[&merged.join("summary.json")]);
    support::validate("run.schema.json", &[&merged.join("run.json")]);
    support::validate("details.schema.json", &[&merged.join("details.json")]);
}
