//! Crash safety, with the built binary: `vana-load run` against a twin that
//! `vana-load twin up` keeps running is killed with SIGKILL mid-run (no
//! drain, no final files), then `vana-load run --resume --out DIR` on the
//! same twin (`--manifest`) finishes the remaining users. Every planned user
//! ends exactly once in the journal and in the summary: nothing is counted
//! twice, nothing is lost. Small and bounded; everything on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USERS: u64 = 24;

fn vana_load(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
    cmd.current_dir(dir)
        .env_remove("VANA_LOAD_MNEMONIC")
        .env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Kills the child (SIGKILL) and reaps it when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_args(cmd: &mut Command, manifest: &Path, out: &Path) {
    cmd.args(["run", "--profile", "smoke", "--live", "off"])
        .args(["--total", &USERS.to_string(), "--duration", "0.5"])
        .args(["--metrics-interval", "1", "--manifest"])
        .arg(manifest)
        .arg("--out")
        .arg(out);
}

fn terminal_events(out: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(out.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let kind = v["type"].as_str().or(v["event"].as_str())?.to_owned();
            let terminal = matches!(
                kind.as_str(),
                "flow_complete" | "flow_failed" | "flow_dropped"
            );
            let user = v["user"].as_u64()?;
            terminal.then_some((kind, user))
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_on_the_same_twin_and_counts_every_user_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    let twin_log = std::fs::File::create(dir.path().join("twin.err")).unwrap();
    let twin = Reaped(
        vana_load(dir.path())
            .args(["twin", "up", "--port", "0", "--manifest"])
            .arg(&manifest)
            .stdout(Stdio::null())
            .stderr(twin_log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !manifest.exists() {
        assert!(
            Instant::now() < deadline,
            "no manifest: {}",
            std::fs::read_to_string(dir.path().join("twin.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = dir.path().join("run");
    let mut first = vana_load(dir.path());
    run_args(&mut first, &manifest, &out);
    let mut first = Reaped(
        first
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Mid-run: some journeys finished, not all.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = terminal_events(&out).len() as u64;
        if done >= 3 {
            assert!(done < USERS, "the run ended before it could be killed");
            break;
        }
        assert!(Instant::now() < deadline, "the run did not get going");
        assert!(first.0.try_wait().unwrap().is_none(), "the run stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    first.0.kill().unwrap(); // SIGKILL: no drain, no summary
    first.0.wait().unwrap();
    assert!(
        !out.join("summary.json").exists(),
        "a killed run writes no summary"
    );
    let before = terminal_events(&out);

    let mut resume = vana_load(dir.path());
    run_args(&mut resume, &manifest, &out);
    let o = resume
        .arg("--resume")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "the resumed run finished: {stdout}\n{stderr}"
    );

    // Every user ends exactly once in the journal…
    let after = terminal_events(&out);
    let mut per_user: BTreeMap<u64, u32> = BTreeMap::new();
    for (_, user) in &after {
        *per_user.entry(*user).or_default() += 1;
    }
    assert_eq!(per_user.len() as u64, USERS, "{per_user:?}");
    assert!(
        per_user.values().all(|n| *n == 1),
        "a user finished twice: {per_user:?}"
    );
    // …the users finished before the kill kept their outcome…
    for e in &before {
        assert!(after.contains(e), "{e:?} was lost on resume");
    }
    // …and the summary counts each once.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let users = &summary["users"];
    let counted = ["succeeded", "failed", "dropped"]
        .iter()
        .map(|k| users[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(counted, USERS, "{users}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["resumed"], true, "{run}");
    drop(twin);
}
