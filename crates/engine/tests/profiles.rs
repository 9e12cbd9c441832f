//! The profiles shipped in `profiles/`: each preset file loads through the
//! profile loader to exactly the built-in preset (so neither can drift from
//! the other), and the documented example loads and means what it says.
//! `twin-*.toml` files, and `faults.toml` (the twin with faults in every
//! component), are twin configs, not load profiles.

use std::path::{Path, PathBuf};

use vana_load_engine::config::{ConfigPatch, LoadTestConfig, Preset, TxMode};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
}

fn load(path: &Path) -> LoadTestConfig {
    let none = ConfigPatch::default();
    LoadTestConfig::from_profile(&path.display().to_string(), &none, &none)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_profile_loads_and_each_preset_file_is_its_preset() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(profiles_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.starts_with("twin-") || name == "faults.toml" {
            continue;
        }
        let cfg = load(&path);
        let stem = name.trim_end_matches(".toml");
        if let Ok(preset) = stem.parse::<Preset>() {
            assert_eq!(
                cfg,
                preset.config(),
                "{name} differs from Preset::{preset:?}"
            );
        }
        seen.push(stem.to_string());
    }
    seen.sort();
    // Every preset but `debug` (one user, for troubleshooting) has its file.
    assert_eq!(seen, ["burst", "conservative", "example", "smoke"]);
}

#[test]
fn the_example_sets_every_field_it_documents() {
    let c = load(&profiles_dir().join("example.toml"));
    assert_eq!(c.profile, "example");
    assert_eq!((c.total_users, c.max_concurrent_users), (200, 50));
    assert_eq!(
        (c.ramp_up_minutes, c.sustain_minutes, c.ramp_down_minutes),
        (1.0, 4.0, 1.0)
    );
    assert_eq!(c.tx_mode, TxMode::Relayer);
    assert_eq!(c.step_timeouts["infer_wait"], 120.0);
    assert_eq!(c.step_components["result"], "personal_server");
    assert_eq!(c.journey_timeout_secs, Some(900.0));
    assert_eq!(c.critical_error_classes, ["revert(", "server_"]);
    // The table form over the conservative baselines: `e2e` replaced,
    // `tx_confirm` dropped, the component baselines kept, new metrics added.
    let exprs: Vec<(&str, bool)> = c
        .thresholds
        .iter()
        .map(|t| (t.expr.as_str(), t.abort_on_fail))
        .collect();
    assert_eq!(
        exprs,
        [
            ("p95(component.inference) < 30s", false),
            ("p95(component.storage) < 5s", false),
            ("p(95)(e2e) < 45000", false),
            ("rate(e2e) > 0.98", false),
            ("rate(errors) < 0.02", true),
            ("p(99)(register) < 10000", false),
            ("rate(register) < 0.01", false),
        ]
    );
    // Every field the config has is set in the file (none left to the preset
    // silently): the file's keys are the config's keys.
    let text = std::fs::read_to_string(profiles_dir().join("example.toml")).unwrap();
    let file: toml::Table = toml::from_str(&text).unwrap();
    let config = serde_json::to_value(&c).unwrap();
    for key in config.as_object().unwrap().keys() {
        assert!(file.contains_key(key), "example.toml does not show `{key}`");
    }
}
