//! Config layering (preset → profile TOML → env → CLI) and validation errors.

use std::collections::HashMap;

use std::time::Duration;

use vana_load_engine::StepDef;
use vana_load_engine::config::{ConfigError, ConfigPatch, LoadTestConfig, Preset, TxMode};

/// A flow's steps: two of 100 s and one of 300 s (500 s in sum).
fn flow_steps() -> Vec<StepDef> {
    vec![
        StepDef::new("upload", "storage", Duration::from_secs(100), false),
        StepDef::new("register", "relayer", Duration::from_secs(100), true),
        StepDef::new("proof", "tee", Duration::from_secs(300), true),
    ]
}

#[test]
fn step_names_thresholds_and_the_journey_timeout_are_checked_against_the_flow() {
    let ok = Preset::Smoke.config();
    ok.validate_for(&flow_steps()).unwrap();
    // The default journey timeout is the sum of the step timeouts, overrides included.
    let mut c = ok.clone();
    c.step_timeouts.insert("proof".into(), 60.0);
    let steps = c.resolve_steps(&flow_steps());
    assert_eq!(c.journey_timeout(&steps), Duration::from_secs(260));
    assert_eq!(steps[2].timeout, Duration::from_secs(60));
    // An unknown step name is refused, naming the field and the known steps.
    let mut c = ok.clone();
    c.step_timeouts.insert("prof".into(), 1.0);
    let e = c.validate_for(&flow_steps()).unwrap_err().to_string();
    assert!(
        e.contains("stepTimeouts.prof") && e.contains("upload, register, proof"),
        "{e}"
    );
    let mut c = ok.clone();
    c.step_components.insert("regster".into(), "x".into());
    let e = c.validate_for(&flow_steps()).unwrap_err().to_string();
    assert!(e.contains("stepComponents.regster"), "{e}");
    // A misspelt threshold metric is refused by name.
    let mut c = ok.clone();
    c.thresholds = vec![vana_load_engine::ThresholdSpec::new(
        "p95(regster) < 10s",
        false,
    )];
    c.validate().unwrap();
    let e = c.validate_for(&flow_steps()).unwrap_err().to_string();
    assert!(e.contains("unknown metric `regster`"), "{e}");
    // A journey timeout below the sum of the step timeouts is refused, saying why.
    let mut c = ok.clone();
    c.journey_timeout_secs = Some(400.0);
    let e = c.validate_for(&flow_steps()).unwrap_err().to_string();
    assert!(
        e.contains("journeyTimeoutSecs") && e.contains("500 s"),
        "{e}"
    );
    c.journey_timeout_secs = Some(500.0);
    c.validate_for(&flow_steps()).unwrap();
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn field_of(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("expected an Invalid error, got {other}"),
    }
}

#[test]
fn burst_is_the_plans_default_config() {
    let c = Preset::Burst.config();
    assert_eq!(c, LoadTestConfig::default());
    assert_eq!(
        (c.total_users, c.max_concurrent_users, c.max_wallets),
        (12_500, 1000, 15_000)
    );
    assert_eq!(
        (
            c.ramp_up_minutes,
            c.sustain_minutes,
            c.ramp_down_minutes,
            c.test_duration_minutes
        ),
        (30.0, 120.0, 30.0, 180.0)
    );
    assert_eq!(c.wallet_funding_amount, "0.1");
    assert_eq!(c.metrics_interval, 30.0);
    assert!(!c.fail_fast && !c.enable_debug_logs);
    for p in Preset::ALL {
        p.config()
            .validate()
            .unwrap_or_else(|e| panic!("preset {} invalid: {e}", p.name()));
    }
    let c = Preset::Conservative.config();
    assert_eq!(
        (
            c.total_users,
            c.max_concurrent_users,
            c.ramp_up_minutes,
            c.sustain_minutes,
            c.ramp_down_minutes
        ),
        (5000, 200, 10.0, 40.0, 10.0)
    );
    let s = Preset::Smoke.config();
    assert!((50..=70).contains(&s.total_users) && s.test_duration_minutes <= 2.0);
    let d = Preset::Debug.config();
    assert_eq!(d.total_users, 1);
    assert!(d.enable_debug_logs);
}

#[test]
fn layers_apply_in_order_later_wins() {
    let profile = ConfigPatch::from_toml_str(
        r#"
        preset = "conservative"
        totalUsers = 4000
        maxConcurrentUsers = 300
        txMode = "direct"
        rpcEndpoint = "http://127.0.0.1:8545"
        thresholds = ["p99(register) < 10s", { expr = "rate(errors) < 0.05", abortOnFail = true }]
        [stepTimeouts]
        infer_wait = 120
        [dataMix]
        small = 1.0
        medium = 0.0
        large = 0.0
        "#,
        "p.toml",
    )
    .unwrap();
    let envp = ConfigPatch::from_env(env(&[
        ("LOAD_TEST_MAX_CONCURRENT", "250"),
        ("LOAD_TEST_RPC_ENDPOINTS", "http://a:1, http://b:2"),
        ("LOAD_TEST_FAIL_FAST", "true"),
        ("LOAD_TEST_WALLET_FUNDING_AMOUNT", "0.5"),
    ]))
    .unwrap();
    let cli = ConfigPatch {
        max_concurrent_users: Some(500),
        time_scale: Some(0.1),
        ..Default::default()
    };
    let c = LoadTestConfig::layered(Preset::Burst, Some(&profile), &envp, &cli).unwrap();
    assert_eq!(c.profile, "conservative");
    assert_eq!(c.total_users, 4000); // profile over preset
    assert_eq!(c.max_concurrent_users, 500); // CLI over env over profile
    assert_eq!(c.rpc_endpoints, vec!["http://a:1", "http://b:2"]); // env over profile
    assert!(c.fail_fast);
    assert_eq!(c.wallet_funding_amount, "0.5");
    assert_eq!(c.tx_mode, TxMode::Direct);
    assert_eq!(c.ramp_up_minutes, 10.0); // from the conservative preset the profile named
    assert_eq!(c.step_timeouts["infer_wait"], 120.0);
    // Only overrides are held: the flow's own deadlines stay its own.
    assert!(!c.step_timeouts.contains_key("register"));
    assert_eq!(c.thresholds.len(), 2);
    assert!(c.thresholds[1].abort_on_fail);
    assert_eq!(c.time_scale, 0.1);
}

#[test]
fn duration_env_rescales_phases_and_cli_phases_recompute_total() {
    let envp = ConfigPatch::from_env(env(&[("LOAD_TEST_DURATION_MINUTES", "60")])).unwrap();
    let c = LoadTestConfig::layered(Preset::Burst, None, &envp, &ConfigPatch::default()).unwrap();
    assert_eq!(
        (c.ramp_up_minutes, c.sustain_minutes, c.ramp_down_minutes),
        (10.0, 40.0, 10.0)
    );
    let cli = ConfigPatch {
        sustain_minutes: Some(20.0),
        ..Default::default()
    };
    let c = LoadTestConfig::layered(Preset::Burst, None, &ConfigPatch::default(), &cli).unwrap();
    assert_eq!(c.test_duration_minutes, 80.0);
}

#[test]
fn invalid_configs_are_refused_naming_the_field() {
    let none = ConfigPatch::default();
    let layered = |p: ConfigPatch| LoadTestConfig::layered(Preset::Burst, Some(&p), &none, &none);
    let e = layered(ConfigPatch {
        total_users: Some(20_000),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(field_of(e), "totalUsers");
    let e = layered(ConfigPatch {
        test_duration_minutes: Some(100.0),
        ramp_up_minutes: Some(30.0),
        ..Default::default()
    })
    .unwrap_err();
    let msg = e.to_string();
    assert_eq!(field_of(e), "testDurationMinutes", "{msg}");
    let e = layered(ConfigPatch {
        max_concurrent_users: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(field_of(e), "maxConcurrentUsers");
    let e = layered(ConfigPatch {
        time_scale: Some(0.0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(field_of(e), "timeScale");
    let e = layered(ConfigPatch {
        wallet_funding_amount: Some("lots".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(field_of(e), "walletFundingAmount");
    let e = layered(ConfigPatch {
        rpc_endpoints: Some(vec!["rpc.moksha.vana.org".into()]),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(field_of(e), "rpcEndpoints");
    let p = ConfigPatch::from_toml_str(r#"thresholds = ["p95(e2e) < banana"]"#, "x.toml").unwrap();
    let e = layered(p).unwrap_err();
    assert_eq!(field_of(e), "thresholds[0]");
    // Unknown keys in a profile are named.
    let e = ConfigPatch::from_toml_str("totalUser = 5", "typo.toml").unwrap_err();
    assert!(e.to_string().contains("totalUser"), "{e}");
    // Env values are checked and named.
    let e = ConfigPatch::from_env(env(&[("LOAD_TEST_TOTAL_USERS", "many")])).unwrap_err();
    assert_eq!(field_of(e), "LOAD_TEST_TOTAL_USERS");
    let e = ConfigPatch::from_env(env(&[("LOAD_TEST_FAIL_FAST", "maybe")])).unwrap_err();
    assert_eq!(field_of(e), "LOAD_TEST_FAIL_FAST");
    assert!(matches!(
        "nope".parse::<Preset>(),
        Err(ConfigError::UnknownPreset(_))
    ));
}

#[test]
fn redacted_config_hides_credentials() {
    let mut c = Preset::Smoke.config();
    c.rpc_endpoints = vec![
        "https://user:secret@rpc.example.org/v2/abcdef0123456789abcdef".into(),
        "http://127.0.0.1:8545".into(),
    ];
    let j = c.redacted_json().to_string();
    assert!(
        !j.contains("secret") && !j.contains("abcdef0123456789"),
        "{j}"
    );
    assert!(
        j.contains("https://rpc.example.org/<redacted>") && j.contains("http://127.0.0.1:8545"),
        "{j}"
    );
}

#[test]
fn error_messages_lose_tokens_before_they_reach_results() {
    use vana_load_engine::redact::redact_text;
    let m = redact_text(
        "401 from https://api.pinata.cloud: header Authorization: Bearer abc.def-123 rejected (token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl)",
    );
    assert!(!m.contains("abc.def-123") && !m.contains("eyJhbGci"), "{m}");
    assert!(
        m.starts_with("401 from https://api.pinata.cloud") && m.contains("Bearer <redacted>"),
        "{m}"
    );
}
