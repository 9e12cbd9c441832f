//! The report names the component that really saturates, on real runs of
//! `vana-load run` against a twin deliberately under-provisioned in one
//! place: one inference worker, or one relayer key sending one transaction
//! at a time. Each run is small (tens of users over a quarter of a minute)
//! and bounded by the profile; everything stays on 127.0.0.1.

use std::path::Path;
use std::process::Command;

mod support;

fn run_against(twin_toml: &str, users: u32, minutes: f64, dir: &Path) -> serde_json::Value {
    let twin = dir.join("twin.toml");
    std::fs::write(&twin, twin_toml).unwrap();
    let out = dir.join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args([
            "run",
            "--profile",
            "smoke",
            "--live",
            "off",
            "--metrics-interval",
            "2",
        ])
        .args([
            "--total",
            &users.to_string(),
            "--duration",
            &minutes.to_string(),
        ])
        .arg("--twin-config")
        .arg(&twin)
        .arg("--out")
        .arg(&out)
        .env("VANA_LOAD_NO_INSTALL", "1")
        .status()
        .expect("vana-load runs");
    // 0 (criteria met) or 1 (thresholds failed) are both a finished run; 2 is not.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "vana-load run failed to run: {status}"
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(out.join("report.html").exists());
    // A whole smoke run's files validate against the published schemas.
    support::validate("summary.schema.json", &[&out.join("summary.json")]);
    support::validate("run.schema.json", &[&out.join("run.json")]);
    serde_json::from_str(&summary).unwrap()
}

fn bottleneck(summary: &serde_json::Value) -> (String, String) {
    let b = &summary["bottleneck"];
    (
        b["component"].as_str().unwrap_or("none").to_owned(),
        b["step"].as_str().unwrap_or("none").to_owned(),
    )
}

#[test]
fn one_inference_worker_is_named_the_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    // Capacity 1 / 0.6 s ≈ 1.7 predictions/s, offered ≈ 3 journeys/s.
    let twin = r#"
[chain]
port = 0
[inference]
workers = 1
[inference.service_time]
kind = "fixed"
ms = 600
"#;
    let summary = run_against(twin, 60, 0.35, dir.path());
    let (component, step) = bottleneck(&summary);
    assert_eq!(component, "inference", "{:#}", summary["bottleneck"]);
    assert_eq!(step, "infer_wait", "{:#}", summary["bottleneck"]);
}

#[test]
fn one_relayer_key_is_named_the_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    // One key, one transaction in flight, one block a second: about one
    // registration a second, offered ≈ 3 journeys/s.
    let twin = r#"
[chain]
port = 0
block_time = 1.0
[relayer]
keys = 1
window = 1
[inference.service_time]
kind = "fixed"
ms = 200
"#;
    let summary = run_against(twin, 45, 0.25, dir.path());
    let (component, step) = bottleneck(&summary);
    assert_eq!(component, "relayer", "{:#}", summary["bottleneck"]);
    assert_eq!(step, "register", "{:#}", summary["bottleneck"]);
}
