//! `[relayer]` of the twin config: keys, windows, fees, funding and which
//! protocol answers a signed request.
//!
//! The default answers exactly as the SDK's `handleRelayerOperation` does
//! (`signed{hash}` once broadcast). `wait` (or `?wait=` per request) selects
//! vana-load's extension instead: `confirmed{hash, receipt}`,
//! `submitted{hash}` or `pending{operationId}` + `status_check`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use protocol::keys;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// First HD index of the relayer key pool (`protocol::keys::RELAYER_INDICES`).
pub const RELAYER_INDEX_START: u32 = keys::RELAYER_INDICES.start;
/// Last HD index of the relayer key pool.
pub const RELAYER_INDEX_END: u32 = keys::RELAYER_INDICES.end - 1;

/// vana-load's extension: when a signed request is answered, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitMode {
    /// Once mined: `confirmed{hash, receipt}` (or `pending` after `wait_timeout_ms`).
    Confirmed,
    /// Once broadcast: `submitted{hash}`.
    Submitted,
    /// At once: `pending{operationId}`.
    Pending,
}

/// `[relayer]` of the twin config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port.
    pub port: u16,
    /// Relayer keys K (HD indices 10..10+K). Default 4, at most 90.
    pub keys: usize,
    /// Operations in flight per key (accepted, not yet mined). Default 16.
    pub window: usize,
    /// Longest wait for a window slot before answering "relayer busy". Default 10 s.
    pub max_wait_ms: u64,
    /// Replace a transaction not mined within this, with fees +12.5 %. Default 15 s.
    pub bump_after_ms: u64,
    /// Replacements of an operation's transaction before it is given up:
    /// the operation fails ("not mined after N replacements"), its window
    /// slot is freed and its nonce is filled by a self-transfer. Default 8.
    pub max_replacements: u32,
    /// Head polling interval of the block stream. Default 50 ms.
    pub poll_interval_ms: u64,
    /// Unset (default): the SDK's protocol, `signed{hash}` once broadcast.
    /// Set: vana-load's extension answer for every signed request (a
    /// request's `?wait=` still wins).
    pub wait: Option<WaitMode>,
    /// Longest wait for a receipt in `confirmed` mode and for a direct file
    /// addition, then `pending`. Default 60 s.
    pub wait_timeout_ms: u64,
    /// Margin added to each measured gas estimate, in percent. Default 30.
    pub gas_margin_percent: u64,
    /// Lowest priority fee (tip), in wei. Default 1 gwei.
    pub min_priority_fee_wei: u64,
    /// Highest max fee per gas a bump may reach, in wei. Default 1000 gwei.
    pub max_fee_cap_wei: u64,
    /// Each key is topped up to this balance at start when below half of it,
    /// in whole ether. Default 100.
    pub fund_ether: u64,
    /// Operations remembered for `status_check`. Default 100000.
    pub operations_kept: usize,
    /// Testing only: the first N submissions fail after reserving their nonce
    /// and before broadcast. Default 0.
    pub inject_prebroadcast_failures: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            keys: 4,
            window: 16,
            max_wait_ms: 10_000,
            bump_after_ms: 15_000,
            max_replacements: 8,
            poll_interval_ms: 50,
            wait: None,
            wait_timeout_ms: 60_000,
            gas_margin_percent: 30,
            min_priority_fee_wei: 1_000_000_000,
            max_fee_cap_wei: 1_000_000_000_000,
            fund_ether: 100,
            operations_kept: 100_000,
            inject_prebroadcast_failures: 0,
        }
    }
}

impl Config {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Checks the values; the error names the field (`relayer.keys`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max_keys = (RELAYER_INDEX_END - RELAYER_INDEX_START + 1) as usize;
        if self.keys == 0 || self.keys > max_keys {
            return Err(ConfigError::invalid(
                "relayer.keys",
                format!(
                    "must be between 1 and {max_keys} (HD indices {RELAYER_INDEX_START}..={RELAYER_INDEX_END}), got {}",
                    self.keys
                ),
            ));
        }
        let positive = [
            ("relayer.window", self.window as u64),
            ("relayer.poll_interval_ms", self.poll_interval_ms),
            ("relayer.bump_after_ms", self.bump_after_ms),
            ("relayer.max_replacements", self.max_replacements.into()),
            ("relayer.operations_kept", self.operations_kept as u64),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ConfigError::invalid(field, "must be positive"));
            }
        }
        if self.min_priority_fee_wei > self.max_fee_cap_wei {
            return Err(ConfigError::invalid(
                "relayer.min_priority_fee_wei",
                format!(
                    "{} is above relayer.max_fee_cap_wei {}",
                    self.min_priority_fee_wei, self.max_fee_cap_wei
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_toml() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.addr().to_string(), "127.0.0.1:0");
        assert_eq!((c.keys, c.wait), (4, None));
        c.validate().unwrap();
        let c: Config =
            toml::from_str("keys = 8\nwindow = 4\nwait = \"pending\"\nbump_after_ms = 500")
                .unwrap();
        assert_eq!((c.keys, c.window, c.wait), (8, 4, Some(WaitMode::Pending)));
        let err = toml::from_str::<Config>("keyz = 1").unwrap_err();
        assert!(err.to_string().contains("keyz"), "{err}");
        let err = toml::from_str::<Config>("wait = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        let bad = Config {
            keys: 91,
            ..Config::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("relayer.keys")
        );
        let bad = Config {
            window: 0,
            ..Config::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("relayer.window")
        );
    }
}
