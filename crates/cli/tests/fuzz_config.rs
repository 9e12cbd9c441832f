//! Fuzzed config files (bounded property tests): arbitrary text, and the
//! shipped files with random values put in, taken out or added, given to
//! the three parsers — the load profile (`--profile`), the target
//! (`--target`) and the twin config (`--twin-config`). Each must end in a
//! config or in an error that names the problem; none may panic.
//!
//! The number of inputs per parser is `CASES` (recorded in BENCHMARKS.md,
//! "Reliability").

use std::path::{Path, PathBuf};

use std::time::Duration;

use client::steps::{Step, StepTimeouts};
use client::target::Target;
use engine::config::{ConfigPatch, LoadTestConfig, Preset};
use proptest::prelude::*;
use twin::TwinConfig;

/// Inputs per parser and generator.
const CASES: u32 = 1000;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn table(path: &str) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(repo(path)).unwrap()).unwrap()
}

/// A value of any TOML type, including the awkward ones.
fn value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e300)
        ]
        .prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        ".{0,24}".prop_map(toml::Value::String),
        Just(toml::Value::String("0x".into())),
        Just(toml::Value::String("127.0.0.1".into())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// Every leaf path of a table.
fn leaves(t: &toml::Table, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for (k, v) in t {
        let mut p = prefix.to_vec();
        p.push(k.clone());
        match v {
            toml::Value::Table(inner) if !inner.is_empty() => leaves(inner, &p, out),
            _ => out.push(p),
        }
    }
}

fn slot<'a>(t: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Table> {
    let mut t = t;
    for k in &path[..path.len() - 1] {
        t = t.get_mut(k)?.as_table_mut()?;
    }
    Some(t)
}

/// What one mutation does to the file.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, toml::Value),
    Remove(usize),
    Add(usize, String, toml::Value),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), value()).prop_map(|(i, v)| Edit::Set(i, v)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), "[a-zA-Z_]{1,16}", value()).prop_map(|(i, k, v)| Edit::Add(i, k, v)),
    ];
    prop::collection::vec(edit, 1..4)
}

/// `base` with `edits` applied, as TOML text.
fn mutated(base: &toml::Table, edits: &[Edit]) -> String {
    let mut t = base.clone();
    for e in edits {
        let mut paths = Vec::new();
        leaves(&t, &[], &mut paths);
        if paths.is_empty() {
            paths.push(vec!["x".to_owned()]);
        }
        let pick = |i: &usize| paths[i % paths.len()].clone();
        match e {
            Edit::Set(i, v) => {
                let p = pick(i);
                if let Some(s) = slot(&mut t, &p) {
                    s.insert(p[p.len() - 1].clone(), v.clone());
                }
            }
            Edit::Remove(i) => {
                let p = pick(i);
                if let Some(s) = slot(&mut t, &p) {
                    s.remove(&p[p.len() - 1]);
                }
            }
            Edit::Add(i, k, v) => {
                let p = pick(i);
                if let Some(s) = slot(&mut t, &p) {
                    s.insert(k.clone(), v.clone());
                }
            }
        }
    }
    toml::to_string(&t).unwrap_or_default()
}

/// Parses and validates a profile as `vana-load run` does, then uses every
/// duration it derives (where a value too large for a `Duration` panicked).
fn profile(text: &str) -> Result<(), String> {
    let patch = ConfigPatch::from_toml_str(text, "fuzz.toml").map_err(|e| e.to_string())?;
    let none = ConfigPatch::default();
    let cfg = LoadTestConfig::layered(Preset::Burst, Some(&patch), &none, &none)
        .map_err(|e| e.to_string())?;
    let steps: Vec<engine::StepDef> = Step::ALL
        .iter()
        .map(|s| {
            let timeout = StepTimeouts::default().get(*s);
            engine::StepDef::new(s.name(), s.component(), timeout, s.touches_chain())
        })
        .collect();
    cfg.validate_for(&steps).map_err(|e| e.to_string())?;
    let resolved = cfg.resolve_steps(&steps);
    let _ = (cfg.journey_timeout(&resolved), cfg.metrics_interval());
    let _ = Duration::from_secs_f64(cfg.max_queue_wait_secs);
    let _ = Duration::from_secs_f64(cfg.abort_grace_secs);
    let _ = Duration::from_secs_f64(cfg.breaker.cooldown_secs);
    Ok(())
}

fn target(text: &str) -> Result<(), String> {
    Target::from_toml_str(text, &|_| None).map(|_| ())
}

fn twin_config(text: &str) -> Result<(), String> {
    let c = TwinConfig::from_toml_str(text, "fuzz.toml").map_err(|e| e.to_string())?;
    c.validate().map_err(|e| e.to_string())
}

/// Ends in a config, or in an error that says something.
fn named(parser: &str, text: &str, result: Result<(), String>) -> Result<(), TestCaseError> {
    if let Err(message) = result {
        prop_assert!(
            message.trim().len() >= 8,
            "{parser}: an error that names nothing ({message:?}) for:\n{text}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_any_parser(text in "(?s).{0,400}") {
        named("profile", &text, profile(&text))?;
        named("target", &text, target(&text))?;
        named("twin config", &text, twin_config(&text))?;
    }

    #[test]
    fn a_mutated_profile_is_a_config_or_a_named_error(e in edits()) {
        let text = mutated(&table("profiles/example.toml"), &e);
        named("profile", &text, profile(&text))?;
    }

    #[test]
    fn a_mutated_target_is_a_config_or_a_named_error(e in edits()) {
        let text = mutated(&table("targets/moksha.toml"), &e);
        named("target", &text, target(&text))?;
    }

    #[test]
    fn a_mutated_twin_config_is_a_config_or_a_named_error(e in edits()) {
        let base = if e.len() % 2 == 0 { "profiles/faults.toml" } else { "profiles/twin-burst.toml" };
        let text = mutated(&table(base), &e);
        named("twin config", &text, twin_config(&text))?;
    }
}
