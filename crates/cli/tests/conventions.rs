//! The binary's conventions, run as the built binary without a twin: a bare
//! `vana-load` prints help; enumerated flags refuse a bad value with the
//! accepted ones listed (exit 2, nothing started); every option can come from
//! `VANA_LOAD_<OPTION>`, a flag beats its variable, and both beat the plan's
//! `LOAD_TEST_*`. `vana-load plan` prints the resolved config and starts nothing.

use std::process::{Command, Output, Stdio};

/// The binary with no `VANA_LOAD_*` / `LOAD_TEST_*` from the caller's environment.
fn vana_load(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vana-load"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VANA_LOAD_") || k.starts_with("LOAD_TEST_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    vana_load(env).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `users` line of `plan`: the total users of the resolved config.
fn planned_users(o: &Output) -> u64 {
    assert!(o.status.success(), "plan failed: {}", stderr(o));
    let out = stdout(o);
    let line = out
        .lines()
        .find(|l| l.starts_with("users "))
        .unwrap_or_else(|| panic!("no users line in:\n{out}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The `criteria` line of `plan`.
fn criteria_line(o: &Output) -> String {
    assert!(o.status.success(), "plan failed: {}", stderr(o));
    stdout(o)
        .lines()
        .find(|l| l.starts_with("criteria "))
        .unwrap_or_else(|| panic!("no criteria line in:\n{}", stdout(o)))
        .to_string()
}

#[test]
fn a_bare_vana_load_prints_help_and_exits_0() {
    let o = run(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Usage: vana-load"), "{out}");
    for sub in ["run", "plan", "journey", "twin", "report"] {
        assert!(out.contains(sub), "{sub} missing from help:\n{out}");
    }
}

#[test]
fn a_bad_enumerated_value_exits_2_naming_the_accepted_values() {
    let cases: [(&[&str], &str); 6] = [
        (&["run", "--live", "sometimes"], "auto, tui, plain, off"),
        (&["capacity", "--flow", "grpc"], "journey, http"),
        (&["plan", "--arrival", "bursty"], "uniform, poisson"),
        (&["plan", "--tx-mode", "relay"], "relayer, direct"),
        (&["journey", "--mode", "relay"], "relayer, direct"),
        (&["journey", "--size", "huge"], "small, medium, large"),
    ];
    for (args, accepted) in cases {
        let o = run(&[], args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("[possible values: {accepted}]")),
            "{args:?}: {err}"
        );
        // Refused by the parser: no twin was started.
        assert!(!err.contains("starting the local twin"), "{args:?}: {err}");
    }
    // The same through the environment.
    let o = run(&[("VANA_LOAD_LIVE", "sometimes")], &["run"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[possible values: auto, tui, plain, off]"),
        "{}",
        stderr(&o)
    );
    let o = run(&[("VANA_LOAD_FAIL_FAST", "maybe")], &["plan"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn vana_load_variables_reach_the_config_and_flags_win() {
    // The default profile (smoke) has 60 users.
    assert_eq!(planned_users(&run(&[], &["plan"])), 60);
    // VANA_LOAD_TOTAL reaches the config.
    let env = [("VANA_LOAD_TOTAL", "42")];
    assert_eq!(planned_users(&run(&env, &["plan"])), 42);
    // The flag beats its variable.
    assert_eq!(planned_users(&run(&env, &["plan", "--total", "7"])), 7);
    // The plan's LOAD_TEST_* keep working, below VANA_LOAD_*.
    let plan_env = [("LOAD_TEST_TOTAL_USERS", "30")];
    assert_eq!(planned_users(&run(&plan_env, &["plan"])), 30);
    let both = [("LOAD_TEST_TOTAL_USERS", "30"), ("VANA_LOAD_TOTAL", "42")];
    assert_eq!(planned_users(&run(&both, &["plan"])), 42);
    // The profile itself, and a positional profile over the variable.
    let burst = [("VANA_LOAD_PROFILE", "burst")];
    assert_eq!(planned_users(&run(&burst, &["plan"])), 12_500);
    assert_eq!(
        planned_users(&run(&burst, &["plan", "conservative"])),
        5_000
    );
    // A bad value in a variable is refused naming it.
    let o = run(&[("VANA_LOAD_TOTAL", "many")], &["plan"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--total"), "{}", stderr(&o));
}

#[test]
fn burst_shows_its_baselines_and_they_can_be_replaced_or_dropped() {
    let line = criteria_line(&run(&[], &["plan", "--profile", "burst"]));
    for b in [
        "p95(e2e) < 60s",
        "p95(tx_confirm) < 10s",
        "p95(component.inference) < 30s",
        "p95(component.storage) < 5s",
    ] {
        assert!(line.contains(b), "{b} missing: {line}");
    }
    // A flag on the same aggregation and metric replaces the baseline.
    let line = criteria_line(&run(
        &[],
        &[
            "plan",
            "--profile",
            "burst",
            "--threshold",
            "p(95)(e2e) < 45s",
        ],
    ));
    assert!(
        line.contains("p(95)(e2e) < 45s") && !line.contains("p95(e2e) < 60s"),
        "{line}"
    );
    // Several through the variable, `;`-separated; `!` aborts on failure.
    let env = [("VANA_LOAD_THRESHOLD", "p95(e2e) < 50s;!rate(errors) < 1%")];
    let line = criteria_line(&run(&env, &["plan", "--profile", "burst"]));
    assert!(
        line.contains("p95(e2e) < 50s") && line.contains("!rate(errors) < 1%"),
        "{line}"
    );
    // --reset-thresholds (or its variable) drops them.
    let line = criteria_line(&run(
        &[("VANA_LOAD_RESET_THRESHOLDS", "yes")],
        &["plan", "--profile", "burst"],
    ));
    assert!(!line.contains("thresholds"), "{line}");
    // An unknown metric is refused by name before anything starts.
    let o = run(&[], &["plan", "--threshold", "p95(regster) < 1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown metric `regster`"),
        "{}",
        stderr(&o)
    );
}
