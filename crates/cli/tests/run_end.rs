//! How `vana-load run` ends, run as the built binary: a profile naming an
//! unknown threshold metric is refused with exit 2 before anything starts,
//! and SIGTERM mid-run (a CI cancel, `timeout`, a Kubernetes stop) drains,
//! writes a complete results directory (with `junit.xml` and the CSVs), fails
//! the `completed` criterion, prints it with ✗ in the end-of-run summary and
//! exits 1; its files validate against the JSON Schemas in `docs/schema/`,
//! checked by ajv (an independent validator, from the pinned npm tools), and
//! carry the journeys' subgraph queries per journey. The
//! run is small (a smoke-sized twin run on 127.0.0.1) and bounded.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::validate;

fn vana_load() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
    cmd.env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_misspelt_threshold_metric_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("typo.toml");
    std::fs::write(
        &profile,
        "preset = \"smoke\"\nthresholds = [\"p95(regster) < 10s\"]\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let t = Instant::now();
    let o = vana_load()
        .args(["run", "--live", "off", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown metric `regster`"), "{err}");
    assert!(err.contains("register"), "names what is accepted: {err}");
    assert!(!err.contains("starting the local twin"), "{err}");
    assert!(!out.exists(), "no results directory for a refused run");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn sigterm_mid_run_leaves_complete_results_and_fails_completed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = vana_load()
        .args([
            "run",
            "--profile",
            "smoke",
            "--live",
            "off",
            "--total",
            "40",
            "--duration",
            "1",
            "--metrics-interval",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-run: once a few journeys have completed.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = std::fs::read_to_string(out.join("events.jsonl"))
            .map(|t| t.matches("\"flow_complete\"").count())
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "the run did not get going: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // It drains for the abort grace period (10 s), then writes and exits.
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vana-load did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("vana-load FAIL"), "{stdout}");
    // The end-of-run summary: the failed criterion marked, the results named.
    assert!(stdout.contains("✗ completed"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "no escape codes on a pipe: {stdout}"
    );
    assert!(stdout.contains(&out.display().to_string()), "{stdout}");

    for f in [
        "summary.json",
        "details.json",
        "run.json",
        "config.json",
        "events.jsonl",
        "timeseries.jsonl",
        "histograms.hlog",
        "report.html",
        "junit.xml",
        "steps.csv",
        "timeseries.csv",
    ] {
        assert!(out.join(f).exists(), "{f} is missing");
    }
    validate("run.schema.json", &[&out.join("run.json")]);
    validate("summary.schema.json", &[&out.join("summary.json")]);
    validate("details.schema.json", &[&out.join("details.json")]);
    validate(
        "event.schema.json",
        &[Path::new("--lines"), &out.join("events.jsonl")],
    );
    let run = json(&out.join("run.json"));
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["aborted"]["kind"], "signal");
    assert_eq!(run["aborted"]["signal"], "SIGTERM");
    assert_eq!(run["target"]["kind"], "twin");
    assert_eq!(run["target"]["name"], "local twin");
    assert_eq!(run["target"]["chain_id"], 14800);
    assert!(
        run["target"]["rpc_host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["verdict"], "fail");
    assert_eq!(
        summary["target"], run["target"],
        "the summary names its target"
    );
    let completed = summary["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "completed")
        .expect("a `completed` criterion");
    assert_eq!(completed["pass"], false);
    // Every user is accounted for once: nothing measured is lost.
    let u = &summary["users"];
    let n = |k: &str| u[k].as_u64().unwrap();
    assert_eq!(
        n("started"),
        n("succeeded") + n("failed") + events_cancelled_started(&out),
        "{u}"
    );
    assert_eq!(
        n("planned"),
        n("succeeded") + n("failed") + n("dropped") + n("cancelled") + n("not_arrived"),
        "{u}"
    );
    assert!(n("not_arrived") > 0, "stopped mid-run: {u}");
    // Subgraph queries per journey: counted by the client, carried through
    // the engine into summary.json and the end-of-run summary. On an idle
    // twin a file is indexed within about a second: a few polls, each at most
    // a `_meta` and a files query.
    let q = &summary["counts"]["subgraph_queries"];
    let per = q["per_successful_journey"]
        .as_f64()
        .unwrap_or_else(|| panic!("no subgraph queries per journey: {summary}"));
    assert!(per > 0.0 && per <= 10.0, "{q}");
    assert_eq!(q["successful_journeys"], u["succeeded"], "{q}");
    let max = q["successful_max"].as_u64().unwrap();
    assert!(max as f64 >= per && max <= 20, "{q}");
    assert_eq!(
        q["successful_total"].as_u64().unwrap() as f64,
        (per * n("succeeded") as f64).round(),
        "{q}"
    );
    assert!(stdout.contains("subgraph queries: "), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("local twin"), "the report names its target");
    assert!(!html.contains("rpc.moksha.vana.org"));
}

/// Journeys that held a slot when the run was cancelled.
fn events_cancelled_started(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"flow_cancelled\"") && l.contains("\"started\":true"))
        .count() as u64
}
