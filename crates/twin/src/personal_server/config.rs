//! The `[personal_server]` settings and the upstreams the server talks to.
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::fetch::DEFAULT_MAX_BYTES;

/// Anvil's second well-known test mnemonic is *not* used: the server's keys
/// come from their own mnemonic so they never collide with user wallets.
pub const DEFAULT_SERVER_MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

/// Personal-server settings (the `[personal_server]` section of the twin config).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: std::net::IpAddr,
    /// Default 0: any free port (the manifest lists the URL).
    pub port: u16,
    /// Mnemonic of the per-user server keys (`WALLET_MNEMONIC` on the hosted server).
    pub server_mnemonic: String,
    /// Bearer token sent to the inference backend (empty: the twin's inference token).
    pub replicate_token: String,
    /// `owner/name` of the model the predictions run.
    pub model: String,
    pub max_tokens: u64,
    /// Largest file it downloads, in bytes.
    pub max_download_bytes: usize,
    pub download_timeout_ms: u64,
    /// Longest `operation_request_json` accepted, in characters.
    pub max_request_chars: usize,
    /// The real server's optional rate limits (off by default).
    pub rate_limits: super::RateLimits,
    /// The hosted server's public-gateway path for `ipfs://` files (off by
    /// default: no gateway listed).
    pub ipfs_fetch: crate::fetch::PublicGateways,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 0,
            server_mnemonic: DEFAULT_SERVER_MNEMONIC.into(),
            replicate_token: String::new(),
            model: "deepseek-ai/deepseek-v3".into(),
            max_tokens: 16384,
            max_download_bytes: DEFAULT_MAX_BYTES,
            download_timeout_ms: 10_000,
            max_request_chars: 100_000,
            rate_limits: super::RateLimits::default(),
            ipfs_fetch: crate::fetch::PublicGateways::default(),
        }
    }
}

impl Config {
    /// Checks the section; errors name the field.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        protocol::keys::validate_mnemonic(&self.server_mnemonic)
            .map_err(|e| ConfigError::invalid("personal_server.server_mnemonic", e.to_string()))?;
        if self.model.split('/').count() != 2 {
            return Err(ConfigError::invalid(
                "personal_server.model",
                "must be owner/name",
            ));
        }
        if self.max_download_bytes == 0 {
            return Err(ConfigError::invalid(
                "personal_server.max_download_bytes",
                "must be positive",
            ));
        }
        self.ipfs_fetch.validate("personal_server.ipfs_fetch")?;
        if self.max_request_chars < 2 {
            return Err(ConfigError::invalid(
                "personal_server.max_request_chars",
                "must be at least 2",
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_mnemonic", &"<redacted>")
            .field("replicate_token", &"<redacted>")
            .field("model", &self.model)
            .field("max_download_bytes", &self.max_download_bytes)
            .field("rate_limits", &self.rate_limits)
            .field("ipfs_fetch", &self.ipfs_fetch)
            .finish_non_exhaustive()
    }
}

/// Where the server finds the chain, the files and the inference backend.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub rpc_url: String,
    pub permissions: Address,
    pub grantees: Address,
    pub data_registry: Address,
    /// Base URL of the inference backend (`…/v1/models/{owner}/{name}/predictions`).
    pub inference_url: String,
    /// Base URL of an IPFS gateway for `ipfs://` file URLs.
    pub ipfs_gateway: String,
}
