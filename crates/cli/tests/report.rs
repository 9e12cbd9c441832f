//! `vana-load report` end to end on real results directories written by the
//! engine (synthetic flows of known timing): HTML and Markdown output, the CI
//! outputs (`junit.xml`, `steps.csv`, `timeseries.csv`) rewritten and the
//! end-of-run summary with ✓/✗ printed, chain flags, `report compare` exit
//! codes (0 same, 1 regressed beyond the tolerance, 2 bad input), and clear
//! errors for a missing directory.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use client::steps::Step;
use engine::config::Preset;
use engine::{Flow, FlowResult, LiveMode, Progress, RunOptions, StepDef, StepSample, TxSample};

/// Eleven steps of `base` ms; `register` takes `register_ms`.
struct Fixed {
    base: u64,
    register_ms: u64,
}

impl Flow for Fixed {
    fn steps(&self) -> Vec<StepDef> {
        Step::ALL
            .iter()
            .map(|s| {
                StepDef::new(
                    s.name(),
                    s.component(),
                    s.default_timeout(),
                    s.touches_chain(),
                )
            })
            .collect()
    }

    async fn run(&self, user: u64, _p: &Progress) -> FlowResult {
        let mut steps = Vec::new();
        for name in Step::ALL.map(Step::name) {
            let ms = if name == "register" {
                self.register_ms
            } else {
                self.base
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            steps.push(StepSample::ok(name, Duration::from_millis(ms)));
        }
        FlowResult {
            steps,
            error: None,
            txs: vec![TxSample {
                kind: "register",
                gas_used: 500_000,
                fee_wei: 500_000 * 2_000_000_000,
                confirm: Duration::from_millis(self.register_ms),
                block: 10 + user / 4,
            }],
            counts: Default::default(),
        }
    }
}

/// A 40-user run into `dir`, with the profile's `thresholds`.
fn make_run(dir: &Path, register_ms: u64, thresholds: &[&str]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = Preset::Smoke.config();
        cfg.total_users = 40;
        cfg.ramp_up_minutes = 0.5 / 60.0;
        cfg.sustain_minutes = 1.0 / 60.0;
        cfg.ramp_down_minutes = 0.5 / 60.0;
        cfg.test_duration_minutes = 2.0 / 60.0;
        cfg.metrics_interval = 0.2;
        cfg.thresholds = thresholds
            .iter()
            .map(|t| engine::ThresholdSpec::new(t, false))
            .collect();
        engine::run(
            cfg,
            Arc::new(Fixed {
                base: 3,
                register_ms,
            }),
            RunOptions {
                out_dir: Some(dir.to_path_buf()),
                live: LiveMode::Off,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    });
}

fn vana_load(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_renders_html_and_markdown_and_compare_gates_regressions() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make_run(&a, 10, &["p95(register) < 1s"]);
    make_run(&b, 60, &["p95(register) < 30ms"]);
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());

    // HTML and the CI outputs: regenerated in place, with the twin's chain settings.
    const REWRITTEN: [&str; 4] = ["report.html", "junit.xml", "steps.csv", "timeseries.csv"];
    for f in REWRITTEN {
        std::fs::remove_file(a.join(f)).unwrap_or_else(|e| panic!("the run wrote no {f}: {e}"));
    }
    let (code, out, err) = vana_load(&[
        "report",
        a_s,
        "--twin-block-gas-limit",
        "30000000",
        "--twin-block-time",
        "1",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("report: "), "{out}");
    for f in REWRITTEN {
        assert!(a.join(f).is_file(), "{f} is rewritten");
    }
    let junit = std::fs::read_to_string(a.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testsuite name="vana-load smoke" tests="7" failures="0""#),
        "{junit}"
    );
    let steps = std::fs::read_to_string(a.join("steps.csv")).unwrap();
    assert_eq!(steps.lines().count(), 1 + Step::ALL.len(), "{steps}");
    assert!(steps.starts_with("step,component,count,errors,p50_ms,p95_ms,p99_ms\nwallet,"));
    // The end-of-run summary, plain (stdout is a pipe): every check passed.
    assert!(out.contains("vana-load PASS"), "{out}");
    assert!(!out.contains('\u{1b}'), "no escape codes on a pipe: {out}");
    let marks: Vec<&str> = out
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(['✓', '✗']))
        .collect();
    assert_eq!(marks.len(), 6, "five criteria and one threshold: {out}");
    assert!(marks.iter().all(|l| l.starts_with('✓')), "{out}");
    assert!(out.contains("✓ p95(register) < 1s"), "{out}");

    // B's threshold failed: ✗ with the measured value, and a <failure> in junit.xml.
    let (code, out, err) = vana_load(&["report", b.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("vana-load FAIL"), "{out}");
    let failed = out
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("✗ p95(register) < 30ms"))
        .unwrap_or_else(|| panic!("no ✗ line for the threshold: {out}"));
    assert!(
        failed.contains(" ms") && failed.contains("limit < 30 ms"),
        "{failed}"
    );
    let junit = std::fs::read_to_string(b.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<failure message="measured "#) && junit.contains("limit &lt; 30 ms"),
        "{junit}"
    );
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(html.contains("Chain ceiling (twin)"));
    assert!(html.contains("id=\"chart-e2e\""));
    // 30M gas per 1 s block / 500k gas per journey = 60 journeys/s.
    assert!(html.contains("= 60 journeys/s"), "the twin's chain ceiling");
    assert!(
        html.contains("Above half of it (30 journeys/s, EIP-1559"),
        "the sustained rate at which fees start to climb"
    );

    // Real-network flags change the ceiling: 15M / 3 s / 500k = 10 journeys/s.
    let (code, md, _) = vana_load(&[
        "report",
        a_s,
        "--format",
        "markdown",
        "--block-gas-limit",
        "15000000",
        "--block-time",
        "3",
    ]);
    assert_eq!(code, 0);
    assert!(md.starts_with("## "), "{md}");
    assert!(md.contains("| criterion | target | actual | result |"));
    assert!(md.contains("= 10 journeys/s"), "{md}");

    // Same run: no regression.
    let (code, out, _) = vana_load(&["report", "compare", a_s, a_s]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no regression"));

    // B's register is 6x slower: a regression at 10 %, with an HTML diff.
    let diff = tmp.path().join("diff.html");
    let (code, out, err) = vana_load(&[
        "report",
        "compare",
        a_s,
        b_s,
        "--tolerance",
        "0.1",
        "--out",
        diff.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("register p50"), "{out}");
    assert!(out.contains("REGRESSED"));
    let h = std::fs::read_to_string(&diff).unwrap();
    assert!(h.contains("B regressed against A"));
    assert!(h.contains("register p95"));

    // …but not at a 10,000 % tolerance (the slowdown is about 500 %).
    let (code, out, _) = vana_load(&["report", "compare", a_s, b_s, "--tolerance", "100"]);
    assert_eq!(code, 0, "{out}");
    assert!(b.join("compare.html").exists());

    // B back against A: faster is not a regression.
    let (code, _, _) = vana_load(&["report", "compare", b_s, a_s]);
    assert_eq!(code, 0);
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let (code, _, err) = vana_load(&["report", "/nonexistent/run"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/run"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = vana_load(&["report", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a results directory"), "{err}");
    let p = tmp.path().to_str().unwrap();
    let (code, _, err) = vana_load(&["report", "compare", p, p, "--tolerance", "-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--tolerance"), "{err}");
    let (code, _, err) = vana_load(&["report", p, "--twin-block-time", "1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = vana_load(&["report"]);
    assert_eq!(code, 2);
}
