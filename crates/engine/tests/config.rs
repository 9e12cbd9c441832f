//! Config layering (preset → profile TOML → env → CLI) and validation errors.

use std::collections::HashMap;

use std::time::Duration;

use vana_load_engine::config::{ConfigError, ConfigPatch, LoadTestConfig, Preset, TxMode};
use vana_load_engine::{StepDef, ThresholdLayer, ThresholdSpec};

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
    // The plan's DEFAULT_CONFIG, plus its performance baselines as thresholds.
    assert_eq!(
        c,
        LoadTestConfig {
            thresholds: Preset::Burst.baselines(),
            ..LoadTestConfig::default()
        }
    );
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
    // The conservative preset's four baselines, then the profile's two.
    assert_eq!(c.thresholds.len(), 6);
    assert_eq!(c.thresholds[..4], Preset::Conservative.baselines());
    assert!(c.thresholds[5].abort_on_fail);
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
    // After the burst preset's four baselines.
    assert_eq!(field_of(e), "thresholds[4]");
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

fn exprs(c: &LoadTestConfig) -> Vec<&str> {
    c.thresholds.iter().map(|t| t.expr.as_str()).collect()
}

fn with_profile(toml: &str) -> Result<LoadTestConfig, ConfigError> {
    let none = ConfigPatch::default();
    let p = ConfigPatch::from_toml_str(toml, "p.toml")?;
    LoadTestConfig::layered(Preset::Smoke, Some(&p), &none, &none)
}

#[test]
fn the_plans_baselines_are_thresholds_of_burst_and_conservative_only() {
    let baselines = [
        "p95(e2e) < 60s",
        "p95(tx_confirm) < 10s",
        "p95(component.inference) < 30s",
        "p95(component.storage) < 5s",
    ];
    assert_eq!(exprs(&Preset::Burst.config()), baselines);
    assert_eq!(exprs(&Preset::Conservative.config()), baselines);
    assert!(Preset::Smoke.config().thresholds.is_empty());
    assert!(Preset::Debug.config().thresholds.is_empty());
    // 60 s, 10 s, 30 s and 5 s, as the plan's "Performance Baselines" say.
    let values: Vec<(String, f64)> = Preset::Burst
        .baselines()
        .iter()
        .map(|t| {
            let t = t.parse().unwrap();
            (t.metric, t.value)
        })
        .collect();
    assert_eq!(
        values,
        [
            ("e2e".to_string(), 60_000.0),
            ("tx_confirm".to_string(), 10_000.0),
            ("component.inference".to_string(), 30_000.0),
            ("component.storage".to_string(), 5_000.0),
        ]
    );
    // A flow with both components takes them; one without is refused,
    // naming the threshold and how to drop it.
    let with = [
        StepDef::new("upload", "storage", Duration::from_secs(10), false),
        StepDef::new("infer", "inference", Duration::from_secs(10), false),
    ];
    Preset::Burst.config().validate_for(&with).unwrap();
    let e = Preset::Burst
        .config()
        .validate_for(&flow_steps())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("thresholds[2]")
            && e.contains("unknown component `inference`")
            && e.contains("resetThresholds"),
        "{e}"
    );
}

#[test]
fn a_later_threshold_on_the_same_metric_replaces_a_baseline() {
    // List form: the same aggregation and metric replaces in place; others add.
    let c = with_profile(
        r#"
        preset = "burst"
        thresholds = ["p(95)(e2e) < 45s", "p99(e2e) < 90s", "p95(tx_confirm) < 2s"]
        "#,
    )
    .unwrap();
    assert_eq!(
        exprs(&c),
        [
            "p(95)(e2e) < 45s",
            "p95(tx_confirm) < 2s",
            "p95(component.inference) < 30s",
            "p95(component.storage) < 5s",
            "p99(e2e) < 90s",
        ]
    );
    // A CLI layer does the same over a profile.
    let none = ConfigPatch::default();
    let cli = ConfigPatch {
        thresholds: Some(ThresholdLayer::List(vec![ThresholdSpec::new(
            "p95(component.storage) < 8s",
            true,
        )])),
        ..Default::default()
    };
    let c = LoadTestConfig::layered(Preset::Conservative, None, &none, &cli).unwrap();
    assert_eq!(c.thresholds.len(), 4);
    assert_eq!(
        c.thresholds[3],
        ThresholdSpec::new("p95(component.storage) < 8s", true)
    );
}

#[test]
fn thresholds_can_be_dropped_one_metric_or_all() {
    // k6's table form: a metric's list replaces its thresholds; [] drops them.
    let c = with_profile(
        r#"
        preset = "conservative"
        [thresholds]
        tx_confirm = []
        component.storage = []
        "#,
    )
    .unwrap();
    assert_eq!(
        exprs(&c),
        ["p95(e2e) < 60s", "p95(component.inference) < 30s"]
    );
    // resetThresholds drops everything below, then the layer's own apply.
    let c = with_profile(
        r#"
        preset = "burst"
        resetThresholds = true
        thresholds = ["rate(errors) < 1%"]
        "#,
    )
    .unwrap();
    assert_eq!(exprs(&c), ["rate(errors) < 1%"]);
    let none = ConfigPatch::default();
    let cli = ConfigPatch {
        reset_thresholds: Some(true),
        ..Default::default()
    };
    let c = LoadTestConfig::layered(Preset::Burst, None, &none, &cli).unwrap();
    assert!(c.thresholds.is_empty());
}

#[test]
fn k6s_metric_as_key_form_reads_like_k6() {
    let c = with_profile(
        r#"
        [thresholds]
        e2e = ["p(95)<30000"]
        register = ["p(99)<10000", "rate<0.01"]
        errors = "rate<0.02"
        dropped = [{ threshold = "count==0", abortOnFail = true }]
        component.storage = ["p(95)<5000"]
        "#,
    )
    .unwrap();
    assert_eq!(
        exprs(&c),
        [
            "p(95)(component.storage) < 5000",
            "count(dropped) == 0",
            "p(95)(e2e) < 30000",
            "rate(errors) < 0.02",
            "p(99)(register) < 10000",
            "rate(register) < 0.01",
        ]
    );
    assert!(c.thresholds[1].abort_on_fail);
    let t = c.thresholds[2].parse().unwrap();
    assert_eq!((t.metric.as_str(), t.value), ("e2e", 30_000.0));
    // The flow's steps and components are checked as for the list form.
    let steps = [
        StepDef::new("register", "relayer", Duration::from_secs(10), true),
        StepDef::new("upload", "storage", Duration::from_secs(10), false),
    ];
    c.validate_for(&steps).unwrap();
    // An unknown metric key is refused by name, before anything starts.
    let c = with_profile("[thresholds]\nregster = [\"p(99)<10000\"]").unwrap();
    let e = c.validate_for(&steps).unwrap_err().to_string();
    assert!(
        e.contains("unknown metric `regster`") && e.contains("did you mean `register`?"),
        "{e}"
    );
    // An expression naming another metric than its key is refused on load.
    let e = with_profile("[thresholds]\ne2e = [\"p95(register) < 1s\"]")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("thresholds.e2e") && e.contains("names the metric `register`"),
        "{e}"
    );
    // The list form still takes complete expressions only.
    let e = with_profile(r#"thresholds = ["p(95)<30000"]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("under a metric key"), "{e}");
}

#[test]
fn a_time_too_large_for_a_duration_is_a_named_error() {
    // Found by the config fuzzer: finite but huge values passed validation
    // and panicked when the run turned them into durations.
    for (field, toml) in [
        ("metricsInterval", "metricsInterval = 1e300"),
        ("maxQueueWaitSecs", "maxQueueWaitSecs = 1e300"),
        ("stepTimeouts.proof", "[stepTimeouts]\nproof = 1e300"),
    ] {
        let patch = ConfigPatch::from_toml_str(toml, "huge.toml").unwrap();
        let none = ConfigPatch::default();
        let e = LoadTestConfig::layered(Preset::Smoke, Some(&patch), &none, &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
}
