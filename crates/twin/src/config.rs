//! The twin's configuration: one TOML file, one section per part.
//!
//! ```toml
//! [chain]
//! host = "127.0.0.1"
//! port = 8545
//! chain_id = 14800
//! # block_time = 2.0        # seconds; absent = automine (one block per transaction)
//! block_gas_limit = 30000000
//! # mnemonic = "..."        # or env VANA_LOAD_MNEMONIC; default: anvil's test mnemonic
//! # anvil = "/path/to/anvil" # default: $PATH, then tools/node_modules
//!
//! [storage]
//! port = 0                  # 0 = any free port; the manifest lists the URL
//! ```
//!
//! Every field has a documented default ([`TwinConfig::default`]), so an empty
//! file is a valid config. Unknown keys are rejected (a typo is an error, not a
//! silently ignored setting). [`TwinConfig::validate`] returns errors that name
//! the field (`chain.port`, `storage.host`, ...).
//!
//! ## Adding a service's section
//! A service module defines its own config type (serde `Deserialize`,
//! `#[serde(default, deny_unknown_fields)]`, `Default`, and
//! `fn validate(&self) -> Result<(), ConfigError>`), then changes the type of
//! its field below from [`ServiceSection`] to that type and keeps its line in
//! [`TwinConfig::validate`]. Until then each service has a [`ServiceSection`]
//! (enabled flag, host, port).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use alloy::signers::local::coins_bip39::{English, Wordlist};
use serde::Deserialize;

/// Anvil's default test mnemonic, the default for the twin.
pub const DEFAULT_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// The environment variable that overrides the mnemonic.
pub const MNEMONIC_ENV: &str = "VANA_LOAD_MNEMONIC";
/// Vana's chain id (Moksha is 14800 too, so signatures made for the twin use the same domain).
pub const DEFAULT_CHAIN_ID: u64 = 14800;
/// The default anvil RPC port.
pub const DEFAULT_CHAIN_PORT: u16 = 8545;
/// The default block gas limit (anvil's own default).
pub const DEFAULT_BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// A bad setting, named by its field path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("cannot read twin config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("twin config {path}: {message}")]
    Parse { path: String, message: String },
}

impl ConfigError {
    /// A field-named validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A BIP-39 mnemonic. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Mnemonic(String);

impl Mnemonic {
    /// Wraps a phrase, normalising whitespace (not validated; see [`Mnemonic::validate`]).
    pub fn new(phrase: &str) -> Self {
        Mnemonic(phrase.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The phrase itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks word count, word list and checksum (BIP-39, English). The error
    /// never contains the phrase or any of its words.
    pub fn validate(&self) -> Result<(), String> {
        let words: Vec<&str> = self.0.split_whitespace().collect();
        if ![12, 15, 18, 21, 24].contains(&words.len()) {
            return Err(format!(
                "malformed mnemonic: {} words; a BIP-39 mnemonic has 12, 15, 18, 21 or 24",
                words.len()
            ));
        }
        if let Some(pos) = words.iter().position(|w| English::get_index(w).is_err()) {
            return Err(format!(
                "malformed mnemonic: word {} is not in the BIP-39 English word list",
                pos + 1
            ));
        }
        alloy::signers::local::coins_bip39::Mnemonic::<English>::new_from_phrase(&words.join(" "))
            .map(|_| ())
            .map_err(|_| "malformed mnemonic: the BIP-39 checksum does not match".to_string())
    }

    /// Whether this is anvil's public test mnemonic.
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_MNEMONIC
    }
}

impl std::str::FromStr for Mnemonic {
    type Err = std::convert::Infallible;

    /// Never fails: [`Mnemonic::validate`] checks the phrase with a clear error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Mnemonic::new(s))
    }
}

impl Default for Mnemonic {
    fn default() -> Self {
        Mnemonic(DEFAULT_MNEMONIC.to_string())
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            f.write_str("Mnemonic(<anvil default test mnemonic>)")
        } else {
            f.write_str("Mnemonic(<redacted>)")
        }
    }
}

impl fmt::Display for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `[chain]`: the anvil node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Listen address. Default `127.0.0.1`.
    pub host: IpAddr,
    /// RPC port. Default 8545; 0 = any free port.
    pub port: u16,
    /// Default 14800.
    pub chain_id: u64,
    /// Seconds between blocks (interval mining). `None` (the default) = automine.
    pub block_time: Option<f64>,
    /// Block gas limit. Default 30,000,000.
    pub block_gas_limit: u64,
    /// Keep only the latest state in anvil's memory (`--prune-history`).
    /// Off by default. Anvil otherwise keeps a full copy of the state for
    /// every block (megabytes each once thousands of wallets are funded), so
    /// its memory grows with every block: turn it on for long load runs.
    /// Calls at past blocks then fail with `BlockOutOfRange`; the twin's
    /// services only read the latest state. (Anvil 1.7.1 ignores a count
    /// given as `--prune-history N` and keeps every state, so there is no
    /// middle ground to offer.)
    pub prune_history: bool,
    /// Compute a state root for every block, as anvil does by default.
    /// Anvil recomputes it from the whole state (every account and storage
    /// slot, nothing cached), so the cost of a block grows with everything
    /// the run has written: at the compressed burst's rate that passes 1 s
    /// per block after ~6,000 journeys and the chain stalls. `false` runs
    /// anvil as a fork of a second, idle anvil (`--fork-url`): a forked
    /// anvil leaves the root out (every header carries a zero `stateRoot`),
    /// which nothing in the journey reads. Default `true`.
    ///
    /// Pair `false` with `addresses = "plain"` for load: in a fork, an
    /// account given code with `anvil_setCode` (the only way to a Moksha
    /// address) asks the fork source for every storage slot it has not
    /// written yet, while a `CREATE`d one knows its unwritten slots are zero.
    /// On the compressed burst those reads tripled anvil's CPU.
    pub state_root: bool,
    /// Keep the transactions (and their receipts and traces) of at most this
    /// many recent blocks in anvil's memory (`--transaction-block-keeper N`).
    /// `None` (the default) keeps them all: set it for long load runs.
    pub keep_blocks: Option<u64>,
    /// Key source for the deployer, app, TEE, relayer and user keys.
    /// Default: anvil's test mnemonic; env `VANA_LOAD_MNEMONIC` overrides the file.
    pub mnemonic: Mnemonic,
    /// The anvil binary. `None` (the default) searches `$PATH`, then the
    /// repository's `tools/node_modules` (see [`crate::tools`]).
    pub anvil: Option<PathBuf>,
    /// Where the contracts the SDK knows are deployed: `"moksha"` (the
    /// default: at the SDK's Moksha addresses, so an unmodified SDK reaches
    /// them) or `"plain"` (wherever `CREATE` puts them).
    pub addresses: crate::chain::AddressLayout,
    /// The DataLiquidityPool's reward budget, in whole reward tokens: every
    /// `requestReward` draws from it and, once it is spent, reverts as
    /// Vana's DLP does. Default 250,000 (twice a 12,500-journey burst at the
    /// highest score).
    pub dlp_reward_budget: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_CHAIN_PORT,
            chain_id: DEFAULT_CHAIN_ID,
            block_time: None,
            block_gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
            prune_history: false,
            state_root: true,
            keep_blocks: None,
            mnemonic: Mnemonic::default(),
            anvil: None,
            addresses: crate::chain::AddressLayout::default(),
            dlp_reward_budget: crate::chain::DEFAULT_REWARD_BUDGET_TOKENS,
        }
    }
}

impl ChainConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.chain_id == 0 {
            return Err(ConfigError::invalid("chain.chain_id", "must be positive"));
        }
        if let Some(bt) = self.block_time
            && !(bt.is_finite() && bt > 0.0)
        {
            return Err(ConfigError::invalid(
                "chain.block_time",
                format!(
                    "must be a positive number of seconds (got {bt}); leave it out for automine"
                ),
            ));
        }
        if self.dlp_reward_budget > 1_000_000_000_000 {
            return Err(ConfigError::invalid(
                "chain.dlp_reward_budget",
                format!(
                    "{} is above the reward token's supply of 1000000000000",
                    self.dlp_reward_budget
                ),
            ));
        }
        if self.block_gas_limit < 1_000_000 {
            return Err(ConfigError::invalid(
                "chain.block_gas_limit",
                format!(
                    "{} is too small to deploy the contracts (at least 1000000)",
                    self.block_gas_limit
                ),
            ));
        }
        if self.keep_blocks == Some(0) {
            return Err(ConfigError::invalid(
                "chain.keep_blocks",
                "must be at least 1 (leave it out to keep every block)",
            ));
        }
        self.mnemonic
            .validate()
            .map_err(|m| ConfigError::invalid("chain.mnemonic", m))
    }

    /// `http://host:port` (meaningful once the port is known, i.e. not 0).
    pub fn rpc_url(&self) -> String {
        format!("http://{}", SocketAddr::new(self.host, self.port))
    }
}

/// A service's section until its module defines its own config type:
/// whether it runs, and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSection {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1`.
    pub host: IpAddr,
    /// Default 0: any free port (the manifest lists the URL).
    pub port: u16,
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection {
            enabled: true,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

impl ServiceSection {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn validate(&self, _section: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The whole twin.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwinConfig {
    /// `[chain]`: anvil.
    pub chain: ChainConfig,
    /// `[storage]`: Pinata/IPFS-compatible storage.
    pub storage: crate::storage::Config,
    /// `[inference]`: the Replicate-style inference backend.
    pub inference: crate::inference::Config,
    /// `[relayer]`: the SDK's relayer protocol.
    pub relayer: crate::relayer::Config,
    /// `[indexer]`: the subgraph.
    pub indexer: crate::indexer::Config,
    /// `[personal_server]`: the personal server.
    pub personal_server: crate::personal_server::Config,
    /// `[tee]`: the TEE that proves contributions.
    pub tee: crate::tee::Config,
    /// `[faults]`: faults injected on purpose (absent: none, and no proxy).
    pub faults: Option<crate::faults::FaultsConfig>,
}

impl TwinConfig {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads a TOML file (without applying the environment or validating).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Applies `VANA_LOAD_MNEMONIC` if set and non-empty (it overrides the file).
    pub fn apply_env(&mut self) {
        self.apply_mnemonic_override(std::env::var(MNEMONIC_ENV).ok());
    }

    /// The override rule of [`TwinConfig::apply_env`], on an explicit value.
    pub fn apply_mnemonic_override(&mut self, value: Option<String>) {
        if let Some(m) = value
            && !m.trim().is_empty()
        {
            self.chain.mnemonic = Mnemonic::new(&m);
        }
    }

    /// The defaults with every port set to 0 (any free port), for tests that
    /// run several twins at once.
    pub fn ephemeral() -> Self {
        let mut c = TwinConfig::default();
        c.chain.port = 0;
        c.storage.port = 0;
        c.inference.port = 0;
        c.indexer.port = 0;
        c.relayer.port = 0;
        c.personal_server.port = 0;
        c.tee.port = 0;
        c
    }

    /// Checks every section; the first error names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chain.validate()?;
        self.storage.validate()?;
        self.inference.validate()?;
        self.relayer.validate()?;
        self.indexer.validate()?;
        self.personal_server.validate()?;
        self.tee.validate()?;
        if let Some(f) = &self.faults {
            f.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_documented_defaults() {
        let c = TwinConfig::from_toml_str("", "test").unwrap();
        assert_eq!(c, TwinConfig::default());
        assert_eq!(c.chain.chain_id, 14800);
        assert_eq!(c.chain.port, 8545);
        assert_eq!(c.chain.block_time, None);
        assert_eq!(c.chain.block_gas_limit, 30_000_000);
        assert_eq!(c.chain.host.to_string(), "127.0.0.1");
        assert!(c.chain.mnemonic.is_default());
        assert!(c.storage.enabled && c.inference.enabled && c.relayer.enabled);
        assert_eq!(c.storage.addr().to_string(), "127.0.0.1:0");
        assert_eq!(c.relayer.addr().to_string(), "127.0.0.1:0");
        c.validate().unwrap();
    }

    #[test]
    fn toml_sets_fields() {
        let c = TwinConfig::from_toml_str(
            "[chain]\nport = 9999\nchain_id = 7\nblock_time = 0.5\nblock_gas_limit = 60000000\n\
             [storage]\nport = 4000\n[inference]\nenabled = false\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.chain.port, 9999);
        assert_eq!(c.chain.chain_id, 7);
        assert_eq!(c.chain.block_time, Some(0.5));
        assert_eq!(c.chain.block_gas_limit, 60_000_000);
        assert_eq!(c.storage.port, 4000);
        assert!(!c.inference.enabled);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_an_error_naming_it_and_the_file() {
        let err = TwinConfig::from_toml_str("[chain]\nchainid = 1\n", "twin.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("twin.toml") && msg.contains("chainid"),
            "{msg}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = TwinConfig::load(Path::new("/nonexistent/twin.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/twin.toml"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = TwinConfig::default();
        c.chain.block_time = Some(0.0);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("chain.block_time:")
        );
        let mut c = TwinConfig::default();
        c.chain.chain_id = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("chain.chain_id:")
        );
        let mut c = TwinConfig::default();
        c.chain.block_gas_limit = 10;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("chain.block_gas_limit:")
        );
    }

    #[test]
    fn malformed_mnemonics_are_rejected_without_echoing_them() {
        for (phrase, needle) in [
            ("test test test", "3 words"),
            (
                "test test test test test test test test test test test zzzzqq",
                "word 12",
            ),
            (
                "test test test test test test test test test test test test",
                "checksum",
            ),
        ] {
            let mut c = TwinConfig::default();
            c.chain.mnemonic = Mnemonic::new(phrase);
            let msg = c.validate().unwrap_err().to_string();
            assert!(
                msg.starts_with("chain.mnemonic: malformed mnemonic"),
                "{msg}"
            );
            assert!(msg.contains(needle), "{msg}");
            assert!(!msg.contains("test") && !msg.contains("zzzzqq"), "{msg}");
        }
    }

    #[test]
    fn a_valid_other_mnemonic_passes_and_is_redacted() {
        let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        let m = Mnemonic::new(&format!("  {}  ", phrase.replace(' ', "   ")));
        assert_eq!(m.expose(), phrase);
        m.validate().unwrap();
        let mut c = TwinConfig::default();
        c.chain.mnemonic = m;
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("abandon"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn env_mnemonic_overrides_the_file_unless_empty() {
        let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        let mut c =
            TwinConfig::from_toml_str(&format!("[chain]\nmnemonic = \"{phrase}\"\n"), "t").unwrap();
        assert_eq!(c.chain.mnemonic.expose(), phrase);
        c.apply_mnemonic_override(Some("   ".into()));
        assert_eq!(c.chain.mnemonic.expose(), phrase);
        c.apply_mnemonic_override(None);
        assert_eq!(c.chain.mnemonic.expose(), phrase);
        c.apply_mnemonic_override(Some(format!(" {DEFAULT_MNEMONIC}\n")));
        assert!(c.chain.mnemonic.is_default());
    }

    #[test]
    fn ephemeral_uses_port_zero_everywhere() {
        let c = TwinConfig::ephemeral();
        assert_eq!(c.chain.port, 0);
        assert_eq!((c.storage.port, c.inference.port), (0, 0));
        assert_eq!((c.indexer.port, c.relayer.port), (0, 0));
        assert_eq!((c.personal_server.port, c.tee.port), (0, 0));
    }
}
