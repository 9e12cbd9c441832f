//! The hosted personal server's path for `ipfs://` files, as an option: it
//! asks public IPFS gateways first, one after another, each with its own
//! timeout and a growing pause between attempts (vana-wire.md §3 "Server
//! fetch": dweb.link, ipfs.io, cloudflare-ipfs, pinata, filebase,
//! nftstorage.link, w3s.link; 10 s each; 1 → 8 s backoff). A file the twin
//! stored is only on the twin's own gateway, so with this option on a load
//! test pays the real download delay before the twin's gateway answers,
//! which it always asks last.
//!
//! The gateways are configured by URL and nothing is contacted by default:
//! tests point them at loopback listeners that answer slowly or never.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[personal_server.ipfs_fetch]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublicGateways {
    /// Gateway base URLs tried in order before the twin's own, each serving
    /// `<base>/<cid>` (e.g. `https://dweb.link/ipfs/`). Empty: the option is off.
    pub gateways: Vec<String>,
    /// How long one gateway may take (the hosted server's 10 s).
    pub timeout_ms: u64,
    /// The pause after the first failed gateway; it doubles up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for PublicGateways {
    fn default() -> Self {
        Self {
            gateways: Vec::new(),
            timeout_ms: 10_000,
            backoff_ms: 1_000,
            max_backoff_ms: 8_000,
        }
    }
}

impl PublicGateways {
    /// Whether any public gateway is configured.
    pub fn enabled(&self) -> bool {
        !self.gateways.is_empty()
    }

    /// The URL of `cid` at each public gateway, in the order they are tried.
    pub fn urls(&self, cid: &str) -> Vec<String> {
        self.gateways
            .iter()
            .map(|g| format!("{}/{cid}", g.trim_end_matches('/')))
            .collect()
    }

    /// The pause after the `attempt`-th failure (0-based): backoff · 2^attempt, capped.
    pub fn pause(&self, attempt: u32) -> Duration {
        let ms = self
            .backoff_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_backoff_ms);
        Duration::from_millis(ms)
    }

    /// Checks the section; errors name the field.
    pub fn validate(&self, section: &str) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        for g in &self.gateways {
            if !(g.starts_with("http://") || g.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    format!("{section}.gateways"),
                    format!("{g:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                format!("{section}.timeout_ms"),
                "must be positive",
            ));
        }
        if self.max_backoff_ms < self.backoff_ms {
            return Err(ConfigError::invalid(
                format!("{section}.max_backoff_ms"),
                "must be at least backoff_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_order_and_pauses_double_up_to_the_cap() {
        let p = PublicGateways {
            gateways: vec!["http://a/ipfs/".into(), "http://b/ipfs".into()],
            ..Default::default()
        };
        assert_eq!(p.urls("bafy"), ["http://a/ipfs/bafy", "http://b/ipfs/bafy"]);
        let pauses: Vec<u64> = (0..6).map(|i| p.pause(i).as_millis() as u64).collect();
        assert_eq!(pauses, [1000, 2000, 4000, 8000, 8000, 8000]);
        assert!(!PublicGateways::default().enabled());
    }

    #[test]
    fn bad_settings_are_named() {
        let p = PublicGateways {
            gateways: vec!["ftp://x".into()],
            ..Default::default()
        };
        let e = p.validate("personal_server.ipfs_fetch").unwrap_err();
        assert!(
            e.to_string()
                .contains("personal_server.ipfs_fetch.gateways"),
            "{e}"
        );
        let p = PublicGateways {
            backoff_ms: 10,
            max_backoff_ms: 5,
            ..Default::default()
        };
        let e = p.validate("s").unwrap_err();
        assert!(e.to_string().contains("s.max_backoff_ms"), "{e}");
    }
}
