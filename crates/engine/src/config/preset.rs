//! The built-in presets (`burst`, `conservative`, `smoke`, `debug`) and the
//! plan's performance baselines that `burst` and `conservative` carry as
//! thresholds. `profiles/*.toml` spell each preset out; a test keeps them equal.

use crate::threshold::ThresholdSpec;

use super::*;

/// The plan's performance baselines ([`Preset::baselines`]).
pub const BASELINES: [&str; 4] = [
    "p95(e2e) < 60s",
    "p95(tx_confirm) < 10s",
    "p95(component.inference) < 30s",
    "p95(component.storage) < 5s",
];

/// Built-in presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The plan's defaults: 12,500 users, 1,000 concurrent, 30/120/30 minutes.
    Burst,
    /// 5,000 users, 200 concurrent, 10/40/10 minutes.
    Conservative,
    /// About 60 users, finishing in about 2 minutes.
    Smoke,
    /// One user, verbose.
    Debug,
}

impl std::str::FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "burst" => Ok(Preset::Burst),
            "conservative" => Ok(Preset::Conservative),
            "smoke" => Ok(Preset::Smoke),
            "debug" => Ok(Preset::Debug),
            other => Err(ConfigError::UnknownPreset(other.to_string())),
        }
    }
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::Burst,
        Preset::Conservative,
        Preset::Smoke,
        Preset::Debug,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Burst => "burst",
            Preset::Conservative => "conservative",
            Preset::Smoke => "smoke",
            Preset::Debug => "debug",
        }
    }

    /// The plan's "Performance Baselines" as thresholds, for `burst` and
    /// `conservative` (none for `smoke` and `debug`, which check that a
    /// journey works rather than how fast): end to end < 60 s per user, a
    /// blockchain transaction < 10 s, an AI inference job < 30 s, a storage
    /// upload < 5 s, each as a p95 (the plan's statistic for its E2E target).
    ///
    /// The engine holds no step names, so these name engine metrics
    /// (`e2e`, `tx_confirm`: submission → receipt of every transaction) and
    /// two components, `storage` and `inference`: the plan's own metric
    /// categories (`LoadTestMetrics.storage`, `.ai`), which the flow maps its
    /// steps onto (`StepDef::component`, `stepComponents`). A flow without one
    /// of them is refused by [`LoadTestConfig::validate_for`], naming the
    /// threshold. Each is a criterion of the verdict; a layer replaces one by
    /// a threshold on the same aggregation and metric, drops a metric's with
    /// the table form (`[thresholds] tx_confirm = []`), or drops all with
    /// `resetThresholds = true`.
    pub fn baselines(self) -> Vec<ThresholdSpec> {
        match self {
            Preset::Burst | Preset::Conservative => BASELINES
                .iter()
                .map(|e| ThresholdSpec::new(e, false))
                .collect(),
            Preset::Smoke | Preset::Debug => Vec::new(),
        }
    }

    /// The preset's full config.
    pub fn config(self) -> LoadTestConfig {
        let base = LoadTestConfig::default();
        match self {
            Preset::Burst => LoadTestConfig {
                thresholds: self.baselines(),
                ..base
            },
            Preset::Conservative => LoadTestConfig {
                profile: "conservative".into(),
                thresholds: self.baselines(),
                total_users: 5000,
                max_concurrent_users: 200,
                test_duration_minutes: 60.0,
                ramp_up_minutes: 10.0,
                sustain_minutes: 40.0,
                ramp_down_minutes: 10.0,
                ..base
            },
            Preset::Smoke => LoadTestConfig {
                profile: "smoke".into(),
                total_users: 60,
                max_concurrent_users: 50,
                test_duration_minutes: 1.5,
                ramp_up_minutes: 0.25,
                sustain_minutes: 1.0,
                ramp_down_minutes: 0.25,
                max_wallets: 100,
                metrics_interval: 5.0,
                max_queue_wait_secs: 30.0,
                assumed_journey_secs: 20.0,
                ..base
            },
            Preset::Debug => LoadTestConfig {
                profile: "debug".into(),
                total_users: 1,
                max_concurrent_users: 1,
                test_duration_minutes: 0.1,
                ramp_up_minutes: 0.0,
                sustain_minutes: 0.1,
                ramp_down_minutes: 0.0,
                max_wallets: 10,
                enable_debug_logs: true,
                metrics_interval: 1.0,
                assumed_journey_secs: 20.0,
                ..base
            },
        }
    }
}
