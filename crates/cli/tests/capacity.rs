//! `vana-load capacity`, run as the built binary: bad settings are refused
//! with exit 2 before a twin starts, and a small search of the smoke profile
//! against the local twin finds the knee that its concurrency cap sets,
//! explains it, and writes its files (bounded: three or four 30 s steps on
//! 127.0.0.1).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vana_load() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
    cmd.env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn bad_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (&["--step", "1"][..], "--step"),
        (&["--from", "0"][..], "--from"),
        (&["--hold", "10", "--max-hold", "5"][..], "--max-hold"),
        (
            &["--from", "0.1", "--hold", "5"][..],
            "raise --from or --hold",
        ),
    ] {
        let out = dir.path().join("cap");
        let t = Instant::now();
        let o = vana_load()
            .args(["capacity", "--profile", "smoke"])
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("starting the local twin"), "{err}");
        assert!(!out.exists(), "nothing written for a refused search");
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn a_small_smoke_search_reports_its_knee_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap");
    // A cap of 3 journeys in flight makes the knee about 3 ÷ (journey time):
    // with the default twin's ~8-12 s journeys 0.2/s (2-3 in flight) passes
    // and 0.8/s (6-10 wanted) cannot, whatever the machine's speed, so the
    // knee lies in [0.2, 0.8) for any journey between 4 and 15 s.
    let o = vana_load()
        .args([
            "capacity",
            "--profile",
            "smoke",
            "--concurrent",
            "3",
            "--max-queue-wait",
            "5",
            "--from",
            "0.2",
            "--step",
            "2",
            "--hold",
            "30",
            "--max-hold",
            "30",
            "--max-rate",
            "2",
            "--bisect",
            "1",
            "--no-beyond",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("capacity.json"))
            .unwrap_or_else(|e| panic!("no capacity.json ({e}); stdout:\n{text}\nstderr:\n{err}")),
    )
    .unwrap();
    assert_eq!(v["outcome"]["kind"], "knee_found", "{text}{err}");
    assert_eq!(o.status.code(), Some(0), "{text}{err}");
    assert!(
        text.contains("knee:") && text.contains("users/day"),
        "{text}"
    );
    let knee = v["knee"]["rate_per_s"].as_f64().unwrap();
    assert!((0.2..0.8).contains(&knee), "{knee}: {text}");
    // Explained: the first failing rate, what limited it (the cap of three
    // journeys in flight: nothing else is near its limit at under 1/s), and
    // the knee's evidence.
    assert!(
        text.contains("bottleneck at") && text.contains("concurrency_cap"),
        "{text}"
    );
    assert!(text.contains("E2E p95"), "the knee's evidence: {text}");
    assert!(
        text.contains("goodput past the knee: not run (--no-beyond)"),
        "{text}"
    );
    let steps = v["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for s in steps {
        // Subgraph queries per successful journey, in every step's record:
        // a few polls (each a `_meta` and a files query at most) while the
        // indexer catches up with the registration.
        if s["succeeded"].as_u64().unwrap() > 0 {
            let q = &s["counts"]["subgraph_queries"];
            let per = q["per_successful_journey"].as_f64().unwrap_or(0.0);
            assert!(per > 0.0 && per <= 20.0, "{q}");
        }
        for a in s["attempts"].as_array().unwrap() {
            assert_eq!(a["held_s"].as_f64(), Some(30.0));
            let d = out.join(a["dir"].as_str().unwrap());
            for f in ["summary.json", "events.jsonl", "report.html"] {
                assert!(d.join(f).exists(), "{} lacks {f}", d.display());
            }
        }
    }
    assert!(text.contains("held  30.0 s"), "{text}");
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    assert!(html.contains("capacity-p95") && html.contains("capacity-goodput"));
    assert!(out.join("capacity.txt").exists());
}
