//! Component mode and the pure-HTTP flow, run as the built binary against a
//! twin it starts on 127.0.0.1 (every port chosen by the OS, inference scaled
//! down): `--steps upload,register,index` and `--steps proof` time only those
//! steps on users prepared before the clock, `--flow http` times its three
//! requests, and a subset that cannot be timed alone is refused by name
//! before anything starts. Each run is a handful of users over a few seconds.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

const TWIN: &str = "[chain]\nport = 0\n[inference]\ntime_scale = 0.01\n";

fn vana_load(dir: &Path, extra: &[&str]) -> (Output, std::path::PathBuf) {
    let twin = dir.join("twin.toml");
    std::fs::write(&twin, TWIN).unwrap();
    let out = dir.join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(["run", "--profile", "smoke", "--live", "off"])
        .args([
            "--total",
            "5",
            "--duration",
            "0.1",
            "--metrics-interval",
            "1",
        ])
        .args(extra)
        .arg("--twin-config")
        .arg(&twin)
        .arg("--out")
        .arg(&out)
        .env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("vana-load runs");
    (o, out)
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Runs `extra` and checks that every user succeeded on exactly `steps`;
/// returns `run.json`.
fn run_ok(extra: &[&str], steps: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = vana_load(dir.path(), extra);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{extra:?}: {}\n{stdout}\n{stderr}",
        o.status
    );
    let summary = json(&out.join("summary.json"));
    let users = &summary["users"];
    assert_eq!(users["succeeded"], 5, "{extra:?}: {users}\n{stdout}");
    assert_eq!(users["failed"], 0, "{extra:?}: {:#}", summary["errors"]);
    // Only the timed steps were measured, each once per user, without error.
    let measured: Vec<&String> = summary["steps"].as_object().unwrap().keys().collect();
    let mut want: Vec<&str> = steps.to_vec();
    want.sort();
    assert_eq!(measured, want, "{extra:?}");
    for s in steps {
        let st = &summary["steps"][s];
        assert_eq!(
            (st["count"].as_u64(), st["errors"].as_u64()),
            (Some(5), Some(0)),
            "{s}: {st}"
        );
    }
    let run = json(&out.join("run.json"));
    let run_steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(run_steps, steps, "run.json lists the timed steps in order");
    // Each journey in the journal ran exactly the timed steps.
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let complete: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|ev| ev["event"] == "flow_complete")
        .collect();
    assert_eq!(complete.len(), 5, "{events}");
    for ev in complete {
        let ran: Vec<&str> = ev["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(ran, steps, "{ev}");
    }
    // The header says it is not a whole journey.
    assert!(stdout.contains("scope: "), "{stdout}");
    assert!(stdout.contains("not the"), "{stdout}");
    support::validate("run.schema.json", &[&out.join("run.json")]);
    run
}

#[test]
fn upload_register_index_times_only_those_steps() {
    let run = run_ok(
        &["--steps", "index,upload,register"],
        &["upload", "register", "index"],
    );
    let scope = &run["scope"];
    assert_eq!(scope["flow"], "component");
    assert_eq!(scope["whole"], false);
    assert_eq!(names(&scope["prepared"]), ["wallet", "data", "encrypt"]);
    assert_eq!(
        names(&scope["skipped"]),
        ["proof", "infer_request", "infer_wait", "result", "claim"]
    );
}

#[test]
fn proof_alone_runs_on_files_registered_before_the_clock() {
    let run = run_ok(&["--steps", "proof"], &["proof"]);
    assert_eq!(
        names(&run["scope"]["prepared"]),
        ["wallet", "data", "encrypt", "upload", "register"]
    );
}

#[test]
fn the_http_flow_times_its_three_requests() {
    let run = run_ok(
        &["--flow", "http"],
        &["http_upload", "http_read", "http_query"],
    );
    assert_eq!(run["scope"]["flow"], "http");
    assert_eq!(run["scope"]["whole"], false);
}

#[test]
fn a_subset_that_cannot_be_timed_alone_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (steps, says) in [
        ("upload,proof", "`proof` needs `register`"),
        ("index", "`index` measures the time from `register`"),
        ("upload,regster", "unknown step \"regster\""),
    ] {
        let (o, out) = vana_load(dir.path(), &["--steps", steps]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{steps}: {err}");
        assert!(err.contains(says), "{steps}: {err}");
        assert!(err.contains("--steps"), "{steps}: names the flag: {err}");
        assert!(!err.contains("starting the local twin"), "{err}");
        assert!(!out.exists(), "no results directory for a refused run");
    }
    // The environment variable is read like the flag.
    let o = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(["run", "--live", "off"])
        .env("VANA_LOAD_STEPS", "upload,proof")
        .env("VANA_LOAD_NO_INSTALL", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--steps upload,register,proof"), "{err}");
}
