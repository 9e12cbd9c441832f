//! One layer of configuration ([`ConfigPatch`]): a profile TOML file, the
//! plan's `LOAD_TEST_*` environment variables, or the CLI's flags, every field
//! optional. [`LoadTestConfig::apply`](super::LoadTestConfig::apply) lays them over a preset.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::alert::AlertLimits;
use crate::threshold::ThresholdLayer;

use super::*;

/// One layer of configuration: every field optional. Used for profile files,
/// environment variables and CLI overrides alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigPatch {
    /// In a profile file: the preset this profile starts from.
    pub preset: Option<String>,
    pub profile: Option<String>,
    pub total_users: Option<u64>,
    pub max_concurrent_users: Option<u64>,
    pub test_duration_minutes: Option<f64>,
    pub ramp_up_minutes: Option<f64>,
    pub sustain_minutes: Option<f64>,
    pub ramp_down_minutes: Option<f64>,
    pub max_wallets: Option<u64>,
    /// The plan's single `rpcEndpoint` is accepted too.
    #[serde(alias = "rpcEndpoint", default, deserialize_with = "one_or_many")]
    pub rpc_endpoints: Option<Vec<String>>,
    pub wallet_funding_amount: Option<String>,
    pub enable_debug_logs: Option<bool>,
    pub metrics_interval: Option<f64>,
    pub fail_fast: Option<bool>,
    pub critical_error_classes: Option<Vec<String>>,
    pub data_mix: Option<DataMix>,
    pub tx_mode: Option<TxMode>,
    pub arrival: Option<Spacing>,
    pub seed: Option<u64>,
    pub time_scale: Option<f64>,
    pub max_queue_wait_secs: Option<f64>,
    /// Merged into the current map (only the named steps change).
    pub step_timeouts: Option<BTreeMap<String, f64>>,
    pub journey_timeout_secs: Option<f64>,
    pub max_schedule_lag_ms: Option<f64>,
    pub error_budget: Option<f64>,
    pub p95_e2e_target_secs: Option<f64>,
    /// Drops every threshold of the layers below (the preset's baselines
    /// among them) before this layer's `thresholds` apply.
    pub reset_thresholds: Option<bool>,
    /// A list (each added, replacing one on the same aggregation and metric)
    /// or k6's metric-as-key table (each metric's list replaces it): see
    /// [`ThresholdLayer`].
    pub thresholds: Option<ThresholdLayer>,
    /// Merged into the current map.
    pub step_components: Option<BTreeMap<String, String>>,
    pub breaker: Option<BreakerConfig>,
    pub assumed_journey_secs: Option<f64>,
    pub abort_grace_secs: Option<f64>,
    /// Replaces the current limits; fields not given take the plan's values.
    pub alerts: Option<AlertLimits>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => split_list(&s),
        OneOrMany::Many(v) => v,
    }))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

impl ConfigPatch {
    /// Parses a profile TOML; unknown keys are refused with their name.
    pub fn from_toml_str(text: &str, path: &str) -> Result<ConfigPatch, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads a profile TOML file.
    pub fn from_file(path: &Path) -> Result<ConfigPatch, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// The plan's environment variables, read through `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ConfigPatch, ConfigError> {
        fn num<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            key: &str,
        ) -> Result<Option<T>, ConfigError> {
            match get(key) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| invalid(key, format!("`{v}` is not a valid number"))),
            }
        }
        fn boolean(
            get: &impl Fn(&str) -> Option<String>,
            key: &str,
        ) -> Result<Option<bool>, ConfigError> {
            match get(key).as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some("1" | "true" | "TRUE" | "True" | "yes") => Ok(Some(true)),
                Some("0" | "false" | "FALSE" | "False" | "no") => Ok(Some(false)),
                Some(v) => Err(invalid(key, format!("`{v}` is not true/false"))),
            }
        }
        Ok(ConfigPatch {
            total_users: num(&get, "LOAD_TEST_TOTAL_USERS")?,
            max_concurrent_users: num(&get, "LOAD_TEST_MAX_CONCURRENT")?,
            test_duration_minutes: num(&get, "LOAD_TEST_DURATION_MINUTES")?,
            rpc_endpoints: get("LOAD_TEST_RPC_ENDPOINTS")
                .filter(|s| !s.trim().is_empty())
                .map(|s| split_list(&s)),
            wallet_funding_amount: get("LOAD_TEST_WALLET_FUNDING_AMOUNT")
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().to_string()),
            enable_debug_logs: boolean(&get, "LOAD_TEST_ENABLE_DEBUG")?,
            fail_fast: boolean(&get, "LOAD_TEST_FAIL_FAST")?,
            ..Default::default()
        })
    }
}
