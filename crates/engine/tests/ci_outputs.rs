//! What a run leaves for CI and prints at its end: `junit.xml` (valid against
//! the JUnit schema CI systems read, one test case per criterion and
//! threshold, a failed one carrying its measured value), `steps.csv` (one row
//! per step, in the flow's order), `timeseries.csv` (one row per line of
//! `timeseries.jsonl`), and the end-of-run summary with ✓/✗ per check, in
//! plain text without escape codes unless colour is asked for.
//!
//! The schema check runs `xmllint` (Debian: `libxml2-utils`). Under CI (`CI`
//! set) a missing xmllint fails the test; elsewhere it says so loudly and
//! skips only that check.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use quick_xml::events::Event as Xml;
use vana_load_engine::config::Preset;
use vana_load_engine::report::fmt::measured;
use vana_load_engine::report::tables::{STEPS_COLUMNS, TIMESERIES_COLUMNS};
use vana_load_engine::report::{RunData, junit, markdown_report};
use vana_load_engine::schema::{Criterion, Summary, Verdict};
use vana_load_engine::{
    Flow, FlowResult, LiveMode, Progress, RunOptions, RunOutcome, StepDef, StepSample,
    ThresholdSpec, run,
};

mod report_support;
use report_support::steps;

const SLOW_REGISTER: &str = "p95(register) < 5ms";
const FEW_ERRORS: &str = "rate(errors) < 50%";

/// The Vana-shaped journey: every step 2 ms, `register` 20 ms; none fails.
struct Journey;

impl Flow for Journey {
    fn steps(&self) -> Vec<StepDef> {
        steps::defs()
    }

    async fn run(&self, _user: u64, _p: &Progress) -> FlowResult {
        let mut out = Vec::new();
        for name in steps::NAMES {
            let d = Duration::from_millis(if name == "register" { 20 } else { 2 });
            tokio::time::sleep(d).await;
            out.push(StepSample::ok(name, d));
        }
        FlowResult::ok(out)
    }
}

/// 30 users over 3 s, a snapshot every 0.5 s, one threshold that fails
/// (`register` takes 20 ms) and one that passes.
async fn run_with_thresholds(dir: &Path) -> RunOutcome {
    let mut c = Preset::Smoke.config();
    c.total_users = 30;
    c.max_wallets = 30;
    c.ramp_up_minutes = 0.0;
    c.ramp_down_minutes = 0.0;
    c.sustain_minutes = 3.0 / 60.0;
    c.test_duration_minutes = 3.0 / 60.0;
    c.metrics_interval = 0.5;
    c.thresholds = vec![
        ThresholdSpec::new(SLOW_REGISTER, false),
        ThresholdSpec::new(FEW_ERRORS, false),
    ];
    run(
        c,
        Arc::new(Journey),
        RunOptions {
            out_dir: Some(dir.to_path_buf()),
            live: LiveMode::Off,
            run_id: Some("ci".into()),
            ..Default::default()
        },
    )
    .await
    .expect("the run starts")
}

/// Start and empty elements of an XML document with their unescaped attributes.
fn elements(xml: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Xml::Start(e) | Xml::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        (
                            a.key.into_inner().to_string(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .expect("escaped value")
                                .into_owned(),
                        )
                    })
                    .collect();
                let name = e.name().into_inner().to_string();
                out.push((name, attrs));
            }
            Xml::Eof => return out,
            _ => {}
        }
    }
}

/// Each test case (classname, name) with the element and message of its
/// `<failure>`/`<error>`, if any.
type Cases = Vec<((String, String), Option<(String, String)>)>;

fn cases(xml: &str) -> Cases {
    let mut out: Cases = Vec::new();
    for (name, a) in elements(xml) {
        match name.as_str() {
            "testcase" => out.push(((a["classname"].clone(), a["name"].clone()), None)),
            "failure" | "error" => {
                let last = out.last_mut().expect("a failure inside a test case");
                last.1 = Some((name.clone(), a["message"].clone()));
            }
            _ => {}
        }
    }
    out
}

fn xmllint() -> Option<&'static str> {
    let found = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("xmllint");
    }
    let install = "apt-get update && apt-get install -y libxml2-utils";
    if std::env::var_os("CI").is_some() {
        panic!("xmllint is needed to validate junit.xml against the JUnit schema: {install}");
    }
    // Straight to stderr, past the test harness's capture, so it is seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!\n!!! xmllint is missing: junit.xml was NOT validated against the JUnit \
         schema.\n!!! Install it with: {install}\n!!!!!!!!\n"
    );
    None
}

/// `xmllint --noout --schema junit.xsd FILE`: Ok, or the validator's complaint.
fn validate(xmllint: &str, file: &Path) -> Result<(), String> {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit.xsd");
    let o = Command::new(xmllint)
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(file)
        .output()
        .expect("run xmllint");
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_leaves_junit_and_csvs_and_ends_with_a_summary_of_every_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let outcome = run_with_thresholds(dir).await;
    assert_eq!(outcome.summary.verdict, Verdict::Fail);
    let crit = |name: &str| -> &Criterion {
        outcome
            .summary
            .criteria
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no criterion {name}"))
    };
    let slow = crit(SLOW_REGISTER);
    assert!(!slow.pass, "{slow:?}");
    assert!(crit(FEW_ERRORS).pass);
    let failing: Vec<&str> = outcome
        .summary
        .criteria
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        failing,
        [SLOW_REGISTER],
        "only the register threshold fails"
    );
    let register_p95 = slow.actual.as_f64().expect("a measured p95");
    assert!(register_p95 >= 20.0, "{register_p95}");

    // junit.xml: the verdict, five criteria and two thresholds.
    let xml = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml is written");
    let els = elements(&xml);
    let suite = &els.iter().find(|(n, _)| n == "testsuite").unwrap().1;
    assert_eq!(suite["tests"], "8", "{xml}");
    assert_eq!(
        suite["failures"], "2",
        "the threshold and the verdict: {xml}"
    );
    assert_eq!(suite["errors"], "0");
    let time: f64 = suite["time"].parse().expect("a duration in seconds");
    assert!(time >= 0.0);
    let root = &els[0];
    assert_eq!(root.0, "testsuites");
    assert_eq!(root.1["tests"], "8");
    let cs = cases(&xml);
    assert_eq!(cs.len(), 8, "{cs:?}");
    let of = |class: &str| cs.iter().filter(|c| c.0.0 == class).count();
    assert_eq!(of("vana-load.verdict"), 1);
    assert_eq!(of("vana-load.criteria"), 5);
    assert_eq!(of("vana-load.thresholds"), 2);
    let find = |name: &str| cs.iter().find(|c| c.0.1 == name).unwrap();
    let (elem, msg) = find(SLOW_REGISTER).1.clone().expect("a <failure>");
    assert_eq!(elem, "failure");
    let shown = format!("{} ms", measured(register_p95));
    assert!(msg.contains(&format!("measured {shown}")), "{msg}");
    assert!(msg.contains("limit < 5 ms"), "{msg}");
    assert!(find(FEW_ERRORS).1.is_none());
    assert!(find("completed").1.is_none());
    let (elem, msg) = find("verdict").1.clone().expect("the verdict fails");
    assert_eq!(elem, "failure");
    assert!(
        msg.contains(SLOW_REGISTER),
        "names the failed threshold: {msg}"
    );
    // The expression's `<` is escaped in the file and read back intact.
    assert!(xml.contains("p95(register) &lt; 5ms"), "{xml}");
    if let Some(x) = xmllint() {
        validate(x, &dir.join("junit.xml")).expect("junit.xml is valid JUnit XML");
    }

    // steps.csv: one row per step, in the flow's order.
    let mut rd = csv::Reader::from_path(dir.join("steps.csv")).expect("steps.csv is written");
    assert_eq!(rd.headers().unwrap(), STEPS_COLUMNS.as_slice());
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), steps::NAMES.len());
    let names: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(names, steps::NAMES);
    let register = &rows[4];
    assert_eq!((&register[0], &register[1]), ("register", "relayer"));
    assert_eq!(&register[2], "30", "count");
    assert_eq!(&register[3], "0", "errors");
    let p95: f64 = register[5].parse().unwrap();
    assert!((p95 - register_p95).abs() < 1e-9, "{p95} vs {register_p95}");

    // timeseries.csv: one row per timeseries.jsonl line, the same t_s.
    let jsonl = std::fs::read_to_string(dir.join("timeseries.jsonl")).unwrap();
    let t_s: Vec<f64> = jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["t_s"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(t_s.len() >= 5, "{} snapshots", t_s.len());
    let mut rd = csv::Reader::from_path(dir.join("timeseries.csv")).unwrap();
    let header = rd.headers().unwrap().clone();
    assert_eq!(
        &header
            .iter()
            .take(TIMESERIES_COLUMNS.len())
            .collect::<Vec<_>>(),
        &TIMESERIES_COLUMNS
    );
    assert!(header.iter().any(|h| h == "p95_ms:register"), "{header:?}");
    assert!(
        header.iter().any(|h| h == "cpu_pct:vana-load"),
        "{header:?}"
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), t_s.len());
    for (r, t) in rows.iter().zip(&t_s) {
        assert_eq!(r.len(), header.len());
        assert_eq!(r[0].parse::<f64>().unwrap(), *t);
    }
    let last = rows.last().unwrap();
    assert_eq!(&last[6], "30", "succeeded, cumulative");

    // The end-of-run summary: ✓/✗ per check, the steps in order, where the results are.
    let text = outcome.text_summary(false);
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes without colour: {text}"
    );
    assert!(text.contains("vana-load FAIL"), "{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}: {text}"))
    };
    let check = |name: &str| {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(['✓', '✗']) && l.contains(name))
            .unwrap_or_else(|| panic!("no ✓/✗ line for {name}: {text}"))
    };
    let l = check(SLOW_REGISTER);
    assert!(l.starts_with('✗'), "{l}");
    assert!(l.contains(&shown) && l.contains("limit < 5 ms"), "{l}");
    assert!(check(FEW_ERRORS).starts_with('✓'));
    assert!(check("users_succeeded").starts_with('✓'));
    assert!(line("why:").contains(SLOW_REGISTER), "{text}");
    let at: Vec<usize> = steps::NAMES
        .iter()
        .map(|s| {
            text.lines()
                .position(|l| l.trim_start().starts_with(&format!("{s} ")))
                .unwrap_or_else(|| panic!("no row for {s}: {text}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "step order: {at:?}");
    assert!(line("RESULTS").contains(&dir.display().to_string()));
    assert!(line("junit.xml").contains("steps.csv"));
    let bottleneck = &outcome.summary.bottleneck.as_ref().unwrap().sentences[0];
    assert!(line("BOTTLENECK").contains(bottleneck.as_str()));
    assert!(
        outcome.text_summary(true).contains("\u{1b}["),
        "colour when asked"
    );

    // The Markdown summary has the same checks.
    let md = markdown_report(dir, &Default::default()).unwrap();
    assert!(
        md.contains("| threshold | limit | measured | result |"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| `p95(register)"))
        .unwrap_or_else(|| panic!("no threshold row: {md}"));
    assert!(row.contains("✗ **fail**") && row.contains(&shown), "{row}");
    assert!(md.contains("✓ pass"));
    assert!(md.contains("`junit.xml`"), "{md}");
}

#[test]
fn an_inconclusive_verdict_is_an_error_and_awkward_text_stays_valid_xml() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = Summary {
        verdict: Verdict::Inconclusive,
        verdict_reason: Some("schedule-lag p99 900 ms > 500 ms & \"lagging\"".into()),
        criteria: vec![
            Criterion {
                name: "completed".into(),
                target: "the whole schedule ran".into(),
                actual: serde_json::json!("completed"),
                pass: true,
                reason: None,
            },
            Criterion {
                name: "count(errors) < 1".into(),
                target: "< 1".into(),
                actual: serde_json::json!(3),
                pass: false,
                reason: Some("class `revert(<InvalidNonce>)` \u{1b}[31m&'\u{1}".into()),
            },
        ],
        ..Default::default()
    };
    let data = RunData::from_parts(tmp.path(), summary, Default::default(), Default::default());
    let xml = junit::render(&data).unwrap();
    let cs = cases(&xml);
    assert_eq!(cs.len(), 3);
    let (elem, msg) = cs[0].1.clone().expect("the verdict is marked");
    assert_eq!((cs[0].0.1.as_str(), elem.as_str()), ("verdict", "error"));
    assert!(msg.contains("& \"lagging\""), "{msg}");
    let (_, msg) = cs[2].1.clone().expect("the threshold failed");
    assert!(msg.starts_with("measured 3, limit < 1"), "{msg}");
    assert!(msg.contains("revert(<InvalidNonce>)"), "{msg}");
    let suite = elements(&xml)
        .into_iter()
        .find(|(n, _)| n == "testsuite")
        .unwrap()
        .1;
    assert_eq!(
        (suite["failures"].as_str(), suite["errors"].as_str()),
        ("1", "1")
    );
    let Some(x) = xmllint() else { return };
    let good = tmp.path().join("junit.xml");
    std::fs::write(&good, &xml).unwrap();
    validate(x, &good).expect("valid JUnit XML");
    // The validator can fail: a suite without its required `tests` count.
    let bad = tmp.path().join("bad.xml");
    std::fs::write(&bad, xml.replacen(" tests=\"3\"", "", 2)).unwrap();
    let err = validate(x, &bad).expect_err("a suite without `tests` is refused");
    assert!(err.contains("tests"), "{err}");
}
