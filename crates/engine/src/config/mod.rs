//! `LoadTestConfig`: every parameter of the plan's `LoadTestConfig`, plus the data
//! size mix, the transaction mode, per-step timeouts and thresholds.
//!
//! A config is built in layers, later wins: a built-in preset
//! ([`Preset`]) → a profile TOML file → the plan's `LOAD_TEST_*` environment
//! variables → the CLI layer (in the binary: each flag, or its
//! `VANA_LOAD_<FLAG>` environment variable when the flag is absent, as clap
//! resolves them). Each layer is a [`ConfigPatch`] (all fields optional).
//! Field names in TOML are the plan's camelCase names (`totalUsers`, `rampUpMinutes`…).
//! `profiles/*.toml` spell out each preset (a test keeps them equal to
//! [`Preset::config`]) and document every field (`profiles/example.toml`).
//!
//! Thresholds layer by key rather than by position (see
//! [`ThresholdLayer`]): a later threshold on the same aggregation and metric
//! replaces an earlier one, k6's metric-as-key table replaces a metric's
//! list, and `resetThresholds` drops everything below. That is what makes
//! the `burst` and `conservative` presets' baselines ([`Preset::baselines`])
//! overridable.
//!
//! [`LoadTestConfig::validate`] refuses an inconsistent config, naming the field;
//! [`LoadTestConfig::validate_for`] also checks every step name the config uses
//! (`stepTimeouts`, `stepComponents`, thresholds) against the flow's own steps,
//! before anything starts. The engine holds no step names of its own.
//! `alerts` sets the limits of the plan's alerting thresholds
//! ([`crate::alert`]), which are reported during the run and never judged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::AlertLimits;
use crate::flow::StepDef;
use crate::redact::redact_url;
use crate::threshold::ThresholdSpec;

mod patch;
mod preset;

pub use patch::ConfigPatch;
pub use preset::{BASELINES, Preset};

/// A step as this run uses it: the flow's declaration with the config's overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedStep {
    pub name: String,
    pub component: String,
    /// Seconds.
    #[serde(with = "secs_f64")]
    #[schemars(with = "f64")]
    pub timeout: Duration,
    pub chain: bool,
}

/// Durations as seconds (f64) in JSON.
mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// The largest number a time or size field accepts (1e9: decades in seconds).
const MAX_NUMBER: f64 = 1e9;

/// A config problem, naming the field (its TOML / plan name).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("profile {path}: {message}")]
    Parse { path: String, message: String },
    #[error("unknown preset `{0}` (expected burst, conservative, smoke or debug)")]
    UnknownPreset(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// How user journeys submit their transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TxMode {
    /// EIP-712 signed by the user, submitted by the relayer (the default).
    #[default]
    Relayer,
    /// The user's wallet sends and pays for its own transactions.
    Direct,
}

/// Spacing of arrivals within the rate curve.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    /// Deterministic: the k-th arrival where the cumulative rate reaches k.
    #[default]
    Uniform,
    /// A seeded non-homogeneous Poisson process conditioned on exactly `totalUsers` arrivals.
    Poisson,
}

/// Relative weights of the plan's synthetic data sizes (1 KB, 10 KB, 100 KB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMix {
    pub small: f64,
    pub medium: f64,
    pub large: f64,
}

impl Default for DataMix {
    fn default() -> Self {
        DataMix {
            small: 0.6,
            medium: 0.3,
            large: 0.1,
        }
    }
}

impl DataMix {
    /// The size class for a uniform draw `u` in [0, 1).
    pub fn pick(&self, u: f64) -> &'static str {
        let total = self.small + self.medium + self.large;
        let x = u * total;
        if x < self.small {
            "small"
        } else if x < self.small + self.medium {
            "medium"
        } else {
            "large"
        }
    }
}

/// Per-component circuit breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Consecutive failed journeys attributed to a component that open its breaker.
    pub consecutive_failures: u32,
    /// Seconds (before time scaling) an open breaker sheds arrivals before one probe is let through.
    pub cooldown_secs: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 20,
            cooldown_secs: 30.0,
        }
    }
}

/// The complete, validated-able configuration of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTestConfig {
    /// Name of the preset/profile this config came from (informational).
    pub profile: String,
    pub total_users: u64,
    pub max_concurrent_users: u64,
    pub test_duration_minutes: f64,
    pub ramp_up_minutes: f64,
    pub sustain_minutes: f64,
    pub ramp_down_minutes: f64,
    pub max_wallets: u64,
    pub rpc_endpoints: Vec<String>,
    pub wallet_funding_amount: String,
    pub enable_debug_logs: bool,
    /// Seconds between metrics snapshots (before time scaling: snapshots are wall-clock).
    pub metrics_interval: f64,
    pub fail_fast: bool,
    /// Error classes that count as critical for `failFast` (prefix match); empty = every failure.
    pub critical_error_classes: Vec<String>,
    pub data_mix: DataMix,
    pub tx_mode: TxMode,
    pub arrival: Spacing,
    pub seed: u64,
    /// Every duration of the schedule is multiplied by this; rates by its inverse.
    pub time_scale: f64,
    /// Seconds an arrival over the concurrency cap may wait for a slot before it is dropped.
    pub max_queue_wait_secs: f64,
    /// Per-step timeout overrides in seconds, keyed by step name. They layer
    /// over the flow's own deadlines (for the Vana journey: the client's
    /// defaults, then the target's `[timeouts]`); the flow applies them.
    pub step_timeouts: BTreeMap<String, f64>,
    /// Whole-journey timeout in seconds, enforced by the engine. Default
    /// (`None`): the sum of the step timeouts; a smaller value is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_timeout_secs: Option<f64>,
    /// A run whose schedule-lag p99 (dispatch − intended start) exceeds this
    /// many milliseconds could not keep its own schedule: its verdict is
    /// `inconclusive`, never `pass`.
    pub max_schedule_lag_ms: f64,
    /// Fraction of planned users allowed to fail (the plan's 2 %).
    pub error_budget: f64,
    /// P95 end-to-end target in seconds (the plan's 30 s).
    pub p95_e2e_target_secs: f64,
    /// k6-style thresholds, e.g. `p99(register) < 10s`: the preset's
    /// baselines ([`Preset::baselines`]) and those the layers add.
    pub thresholds: Vec<ThresholdSpec>,
    /// Step name → component overrides (the flow declares each step's component).
    pub step_components: BTreeMap<String, String>,
    pub breaker: BreakerConfig,
    /// Journey duration in seconds assumed by `plan` for Little's law.
    pub assumed_journey_secs: f64,
    /// Seconds in-flight journeys may keep running after an abort before they are cancelled.
    pub abort_grace_secs: f64,
    /// Limits of the plan's alerting thresholds, watched live (never judged).
    #[serde(default)]
    pub alerts: AlertLimits,
}

impl Default for LoadTestConfig {
    /// The plan's `DEFAULT_CONFIG` (the `burst` preset).
    fn default() -> Self {
        LoadTestConfig {
            profile: "burst".into(),
            total_users: 12_500,
            max_concurrent_users: 1000,
            test_duration_minutes: 180.0,
            ramp_up_minutes: 30.0,
            sustain_minutes: 120.0,
            ramp_down_minutes: 30.0,
            max_wallets: 15_000,
            rpc_endpoints: vec!["https://rpc.moksha.vana.org".into()],
            wallet_funding_amount: "0.1".into(),
            enable_debug_logs: false,
            metrics_interval: 30.0,
            fail_fast: false,
            critical_error_classes: Vec::new(),
            data_mix: DataMix::default(),
            tx_mode: TxMode::Relayer,
            arrival: Spacing::Uniform,
            seed: 1,
            time_scale: 1.0,
            max_queue_wait_secs: 60.0,
            step_timeouts: BTreeMap::new(),
            journey_timeout_secs: None,
            max_schedule_lag_ms: 1000.0,
            error_budget: 0.02,
            p95_e2e_target_secs: 30.0,
            thresholds: Vec::new(),
            step_components: BTreeMap::new(),
            breaker: BreakerConfig::default(),
            assumed_journey_secs: 60.0,
            abort_grace_secs: 10.0,
            alerts: AlertLimits::default(),
        }
    }
}

impl LoadTestConfig {
    /// Applies one layer. Durations are kept consistent: a layer that sets only
    /// `testDurationMinutes` rescales the three phases proportionally; one that sets
    /// only phases recomputes the total. A layer setting both is checked by `validate`.
    pub fn apply(&mut self, p: &ConfigPatch) -> Result<(), ConfigError> {
        // A profile's `preset` is where it starts from: that preset's config,
        // its baseline thresholds included, replaces what was below.
        if let Some(name) = &p.preset {
            *self = name.parse::<Preset>()?.config();
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &p.$f { self.$f = v.clone(); } )* };
        }
        set!(
            profile,
            total_users,
            max_concurrent_users,
            max_wallets,
            rpc_endpoints,
            wallet_funding_amount,
            enable_debug_logs,
            metrics_interval,
            fail_fast,
            critical_error_classes,
            data_mix,
            tx_mode,
            arrival,
            seed,
            time_scale,
            max_queue_wait_secs,
            error_budget,
            p95_e2e_target_secs,
            breaker,
            assumed_journey_secs,
            abort_grace_secs,
            alerts
        );
        let phases_set = p.ramp_up_minutes.is_some()
            || p.sustain_minutes.is_some()
            || p.ramp_down_minutes.is_some();
        set!(ramp_up_minutes, sustain_minutes, ramp_down_minutes);
        if p.journey_timeout_secs.is_some() {
            self.journey_timeout_secs = p.journey_timeout_secs;
        }
        if let Some(v) = p.max_schedule_lag_ms {
            self.max_schedule_lag_ms = v;
        }
        match (p.test_duration_minutes, phases_set) {
            (Some(total), false) => {
                let old = self.ramp_up_minutes + self.sustain_minutes + self.ramp_down_minutes;
                if old > 0.0 && total.is_finite() && total > 0.0 {
                    let k = total / old;
                    self.ramp_up_minutes *= k;
                    self.sustain_minutes *= k;
                    self.ramp_down_minutes *= k;
                }
                self.test_duration_minutes = total;
            }
            (Some(total), true) => self.test_duration_minutes = total,
            (None, true) => {
                self.test_duration_minutes =
                    self.ramp_up_minutes + self.sustain_minutes + self.ramp_down_minutes
            }
            (None, false) => {}
        }
        if let Some(m) = &p.step_timeouts {
            self.step_timeouts
                .extend(m.iter().map(|(k, v)| (k.clone(), *v)));
        }
        if let Some(m) = &p.step_components {
            self.step_components
                .extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if p.reset_thresholds == Some(true) {
            self.thresholds.clear();
        }
        if let Some(t) = &p.thresholds {
            t.apply_to(&mut self.thresholds);
        }
        Ok(())
    }

    /// The config of `--profile NAME|FILE`: a preset by name, or a profile
    /// TOML file (a name ending in `.toml`, or an existing file) over the
    /// `burst` preset unless the file names its own `preset`; then `env`
    /// and `cli`. A file that sets no `profile` is named by its file stem.
    pub fn from_profile(
        name: &str,
        env: &ConfigPatch,
        cli: &ConfigPatch,
    ) -> Result<LoadTestConfig, ConfigError> {
        let path = Path::new(name);
        if !(name.ends_with(".toml") || path.is_file()) {
            return Self::layered(name.parse()?, None, env, cli);
        }
        let file = ConfigPatch::from_file(path)?;
        let mut cfg = Self::layered(Preset::Burst, Some(&file), env, cli)?;
        if file.profile.is_none() && cli.profile.is_none() && env.profile.is_none() {
            cfg.profile = path
                .file_stem()
                .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
        }
        Ok(cfg)
    }

    /// Builds the config from its layers and validates it.
    pub fn layered(
        preset: Preset,
        profile: Option<&ConfigPatch>,
        env: &ConfigPatch,
        cli: &ConfigPatch,
    ) -> Result<LoadTestConfig, ConfigError> {
        let mut c = preset.config();
        if let Some(p) = profile {
            c.apply(p)?;
        }
        c.apply(env)?;
        c.apply(cli)?;
        c.validate()?;
        Ok(c)
    }

    /// Refuses an invalid or inconsistent config, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Every number below becomes a duration or a count somewhere: one
        // beyond MAX_NUMBER (decades, in seconds) is a typo, and would not
        // fit a `Duration` (found by the config fuzzer: `1e300` panicked).
        let pos = |f: &str, v: f64| -> Result<(), ConfigError> {
            if v.is_finite() && v > 0.0 && v <= MAX_NUMBER {
                Ok(())
            } else {
                Err(invalid(
                    f,
                    format!("must be a positive number up to {MAX_NUMBER:e}, got {v}"),
                ))
            }
        };
        let nonneg = |f: &str, v: f64| -> Result<(), ConfigError> {
            if v.is_finite() && (0.0..=MAX_NUMBER).contains(&v) {
                Ok(())
            } else {
                Err(invalid(
                    f,
                    format!("must be ≥ 0 and up to {MAX_NUMBER:e}, got {v}"),
                ))
            }
        };
        if self.total_users == 0 {
            return Err(invalid("totalUsers", "must be at least 1"));
        }
        if self.max_concurrent_users == 0 {
            return Err(invalid("maxConcurrentUsers", "must be at least 1"));
        }
        if self.total_users > self.max_wallets {
            return Err(invalid(
                "totalUsers",
                format!(
                    "{} users need {} distinct wallets but maxWallets is {}",
                    self.total_users, self.total_users, self.max_wallets
                ),
            ));
        }
        nonneg("rampUpMinutes", self.ramp_up_minutes)?;
        nonneg("sustainMinutes", self.sustain_minutes)?;
        nonneg("rampDownMinutes", self.ramp_down_minutes)?;
        pos("testDurationMinutes", self.test_duration_minutes)?;
        let sum = self.ramp_up_minutes + self.sustain_minutes + self.ramp_down_minutes;
        if (sum - self.test_duration_minutes).abs() > 1e-6 * self.test_duration_minutes.max(1.0) {
            return Err(invalid(
                "testDurationMinutes",
                format!(
                    "{} does not equal rampUpMinutes + sustainMinutes + rampDownMinutes = {} + {} + {} = {}",
                    self.test_duration_minutes,
                    self.ramp_up_minutes,
                    self.sustain_minutes,
                    self.ramp_down_minutes,
                    sum
                ),
            ));
        }
        pos("metricsInterval", self.metrics_interval)?;
        pos("timeScale", self.time_scale)?;
        nonneg("maxQueueWaitSecs", self.max_queue_wait_secs)?;
        if let Some(t) = self.journey_timeout_secs {
            pos("journeyTimeoutSecs", t)?;
        }
        pos("maxScheduleLagMs", self.max_schedule_lag_ms)?;
        pos("p95E2eTargetSecs", self.p95_e2e_target_secs)?;
        pos("assumedJourneySecs", self.assumed_journey_secs)?;
        nonneg("abortGraceSecs", self.abort_grace_secs)?;
        if !(0.0..1.0).contains(&self.error_budget) {
            return Err(invalid(
                "errorBudget",
                format!("must be in [0, 1), got {}", self.error_budget),
            ));
        }
        if self.rpc_endpoints.is_empty() {
            return Err(invalid(
                "rpcEndpoints",
                "at least one RPC endpoint is needed",
            ));
        }
        for e in &self.rpc_endpoints {
            if !(e.starts_with("http://")
                || e.starts_with("https://")
                || e.starts_with("ws://")
                || e.starts_with("wss://"))
            {
                return Err(invalid(
                    "rpcEndpoints",
                    format!("`{e}` is not an http(s)/ws(s) URL"),
                ));
            }
        }
        parse_decimal(&self.wallet_funding_amount).ok_or_else(|| {
            invalid(
                "walletFundingAmount",
                format!(
                    "`{}` is not a decimal amount like \"0.1\"",
                    self.wallet_funding_amount
                ),
            )
        })?;
        let m = &self.data_mix;
        for (f, v) in [
            ("dataMix.small", m.small),
            ("dataMix.medium", m.medium),
            ("dataMix.large", m.large),
        ] {
            nonneg(f, v)?;
        }
        if m.small + m.medium + m.large <= 0.0 {
            return Err(invalid("dataMix", "at least one weight must be positive"));
        }
        for (step, t) in &self.step_timeouts {
            pos(&format!("stepTimeouts.{step}"), *t)?;
        }
        if self.breaker.consecutive_failures == 0 {
            return Err(invalid("breaker.consecutiveFailures", "must be at least 1"));
        }
        nonneg("breaker.cooldownSecs", self.breaker.cooldown_secs)?;
        for (i, t) in self.thresholds.iter().enumerate() {
            t.parse()
                .map_err(|e| invalid(&format!("thresholds[{i}]"), e.to_string()))?;
        }
        for (field, v, fraction) in self.alerts.fields() {
            nonneg(field, v)?;
            if fraction && v > 1.0 {
                return Err(invalid(field, format!("is a fraction in [0, 1], got {v}")));
            }
        }
        Ok(())
    }

    /// Checks every step name the config uses against the flow's steps, and
    /// the journey timeout against the sum of the step timeouts. Run it before
    /// anything starts.
    pub fn validate_for(&self, steps: &[StepDef]) -> Result<(), ConfigError> {
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        let unknown = |field: &str, name: &str| {
            invalid(
                &format!("{field}.{name}"),
                format!("unknown step `{name}` (the steps are {})", names.join(", ")),
            )
        };
        for name in self.step_timeouts.keys() {
            if !names.contains(&name.as_str()) {
                return Err(unknown("stepTimeouts", name));
            }
        }
        for name in self.step_components.keys() {
            if !names.contains(&name.as_str()) {
                return Err(unknown("stepComponents", name));
            }
        }
        let mut components: Vec<String> = self
            .resolve_steps(steps)
            .into_iter()
            .map(|s| s.component)
            .collect();
        components.sort();
        components.dedup();
        let components: Vec<&str> = components.iter().map(String::as_str).collect();
        for (i, t) in self.thresholds.iter().enumerate() {
            let th = t
                .parse()
                .map_err(|e| invalid(&format!("thresholds[{i}]"), e.to_string()))?;
            th.check_metric(&names, &components).map_err(|e| {
                let hint = if BASELINES.contains(&t.expr.as_str()) {
                    " (a baseline of the preset: drop it with `[thresholds] <metric> = []` \
                     or `resetThresholds = true` in a profile, or --reset-thresholds)"
                } else {
                    ""
                };
                invalid(&format!("thresholds[{i}]"), format!("{e}{hint}"))
            })?;
        }
        if let Some(limit) = self.journey_timeout_secs {
            let plan = self.resolve_steps(steps);
            let sum: f64 = plan.iter().map(|s| s.timeout.as_secs_f64()).sum();
            if limit < sum {
                let parts: Vec<String> = plan
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.timeout.as_secs_f64()))
                    .collect();
                return Err(invalid(
                    "journeyTimeoutSecs",
                    format!(
                        "{limit} s is less than the sum of the step timeouts, {sum} s ({}): \
                         a journey whose every step stays within its own deadline would be \
                         cut off; raise journeyTimeoutSecs or lower stepTimeouts",
                        parts.join(" + ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The flow's steps with this config's `stepTimeouts` and `stepComponents`
    /// overrides applied.
    pub fn resolve_steps(&self, steps: &[StepDef]) -> Vec<ResolvedStep> {
        steps
            .iter()
            .map(|s| ResolvedStep {
                name: s.name.to_string(),
                component: self
                    .step_components
                    .get(s.name)
                    .cloned()
                    .unwrap_or_else(|| s.component.to_string()),
                timeout: self
                    .step_timeouts
                    .get(s.name)
                    .map_or(s.timeout, |secs| Duration::from_secs_f64(*secs)),
                chain: s.chain,
            })
            .collect()
    }

    /// The engine's journey deadline: `journeyTimeoutSecs`, or the sum of the
    /// (resolved) step timeouts.
    pub fn journey_timeout(&self, steps: &[ResolvedStep]) -> Duration {
        match self.journey_timeout_secs {
            Some(s) => Duration::from_secs_f64(s),
            None => steps.iter().map(|s| s.timeout).sum(),
        }
    }

    /// Scaled durations (seconds) of the three phases.
    pub fn scaled_phases(&self) -> (f64, f64, f64) {
        let f = self.time_scale * 60.0;
        (
            self.ramp_up_minutes * f,
            self.sustain_minutes * f,
            self.ramp_down_minutes * f,
        )
    }

    pub fn metrics_interval(&self) -> Duration {
        Duration::from_secs_f64(self.metrics_interval)
    }

    /// The config as JSON with secrets redacted (credentials in RPC URLs).
    pub fn redacted_json(&self) -> serde_json::Value {
        serde_json::to_value(self.redacted()).unwrap_or(serde_json::Value::Null)
    }

    /// The config with credentials in RPC URLs removed (what results may hold).
    pub fn redacted(&self) -> LoadTestConfig {
        let mut c = self.clone();
        c.rpc_endpoints = c.rpc_endpoints.iter().map(|u| redact_url(u)).collect();
        c
    }
}

/// Parses a non-negative decimal such as "0.1" (returns it as f64).
fn parse_decimal(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.chars().filter(|c| *c == '.').count() <= 1
        && s.chars().any(|c| c.is_ascii_digit());
    if ok { s.parse().ok() } else { None }
}
