//! Where the virtual user goes: a [`Target`].
//!
//! A target is read from a TOML file (`targets/moksha.toml`, or any path) or
//! built from a running twin's manifest ([`Target::from_manifest`]). It names
//! the RPC endpoints, the chain id, the contract addresses, the storage
//! provider, the relayer, personal server, subgraph and TEE URLs, and where
//! the funder, app (grantee) and user keys come from.
//!
//! Secrets never live in the file: string values may contain `${VAR}` or
//! `${VAR:-default}`, resolved from the environment when the file is loaded;
//! an unset variable without default leaves the field unset and is recorded,
//! so [`Target::require`] can list every missing variable before a run starts.
//! Types holding secrets ([`Secret`], [`KeySource`]) print redacted.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256, utils::parse_ether};
use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use url::Url;

use crate::steps::StepTimeouts;

mod file;

use file::*;

/// First HD index of user wallets (`m/44'/60'/0'/0/{USER_INDEX_OFFSET + i}`).
pub const DEFAULT_USER_INDEX_OFFSET: u32 = protocol::keys::USER_INDEX_OFFSET;
/// HD index of the app (grantee) key in a twin.
pub const APP_KEY_INDEX: u32 = protocol::keys::APP_INDEX;
/// HD index of the deployer/funder key in a twin.
pub const FUNDER_KEY_INDEX: u32 = protocol::keys::DEPLOYER_INDEX;
/// `proof_url` sent to the twin's TEE (it runs a built-in scorer, not the image).
pub const TWIN_PROOF_URL: &str = "https://vana-load.invalid/poc/proof-of-contribution.tar.gz";
/// anvil's default test mnemonic, the default for local runs.
pub const DEFAULT_TEST_MNEMONIC: &str =
    "test test test test test test test test test test test junk";

pub use crate::keys::Secret;

/// Where a private key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A hex private key (from an environment variable, or a twin in memory).
    PrivateKey(Secret),
    /// HD index of the run's mnemonic (`m/44'/60'/0'/0/{index}`).
    Hd(u32),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::PrivateKey(_) => f.write_str("PrivateKey(<redacted>)"),
            KeySource::Hd(i) => write!(f, "Hd({i})"),
        }
    }
}

impl KeySource {
    /// The signer, deriving from `mnemonic` for [`KeySource::Hd`].
    pub fn signer(
        &self,
        mnemonic: Option<&Secret>,
        what: &str,
    ) -> Result<PrivateKeySigner, TargetError> {
        match self {
            KeySource::PrivateKey(s) => {
                PrivateKeySigner::from_str(s.expose().trim()).map_err(|_| {
                    TargetError::Invalid(format!(
                        "{what}: not a valid hex private key (32 bytes, optional 0x)"
                    ))
                })
            }
            KeySource::Hd(index) => {
                let m = mnemonic.ok_or_else(|| {
                    TargetError::Invalid(format!(
                        "{what}: HD index {index} needs a mnemonic (set VANA_LOAD_MNEMONIC)"
                    ))
                })?;
                crate::keys::derive_one(m, *index).map_err(|e| {
                    TargetError::Invalid(format!("{what}: cannot derive HD index {index}: {e}"))
                })
            }
        }
    }
}

/// Which storage API uploads go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// `POST {api_url}/pinning/pinFileToIPFS` with a bearer JWT.
    Pinata,
    /// `POST {api_url}/api/v0/add` (a Kubo node).
    Ipfs,
}

/// The storage provider.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// `https://api.pinata.cloud` or `http://127.0.0.1:5001`; without trailing slash.
    pub api_url: Url,
    /// The Pinata JWT (required for [`StorageKind::Pinata`]).
    pub jwt: Option<Secret>,
    /// Gateway prefix for downloads: `{gateway}/{cid}` (e.g. `https://gateway.pinata.cloud/ipfs`).
    pub gateway: Url,
}

/// Contract proxies the journey touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contracts {
    pub data_registry: Address,
    pub permissions: Address,
    pub servers: Address,
    pub grantees: Address,
    pub tee_pool: Address,
    /// The DataLiquidityPool receiving contributions (needed by `proof`/`claim`).
    pub dlp: Option<Address>,
    /// The batch funder (needed by `wallets prepare`).
    pub batch_funder: Option<Address>,
}

/// Wallet funding parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Funding {
    /// Each funded wallet is topped up to this balance (`walletFundingAmount`, default 0.1).
    pub amount: U256,
    /// Wallets at or above this balance are left alone (default: half of `amount`).
    pub threshold: U256,
    /// Wallets paid per batch transaction.
    pub batch_size: usize,
}

impl Default for Funding {
    fn default() -> Self {
        let amount = parse_ether("0.1").expect("constant");
        Funding {
            amount,
            threshold: amount / U256::from(2),
            batch_size: 500,
        }
    }
}

/// A resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub chain_id: u64,
    /// At least one; wallets are spread over them deterministically ([`Target::rpc_order`]).
    pub rpc_urls: Vec<Url>,
    pub contracts: Contracts,
    pub storage: StorageConfig,
    pub relayer_url: Option<Url>,
    pub personal_server_url: Option<Url>,
    pub subgraph_url: Option<Url>,
    /// Overrides the TEE URL read from `TeePool.tees(addr).url`.
    pub tee_url: Option<Url>,
    /// The proof-of-contribution image (`….tar.gz`) sent as `proof_url` in `RunProof`.
    pub proof_url: Option<String>,
    /// Schema id for registered files (0 = none).
    pub schema_id: u64,
    /// The mnemonic user wallets (and HD key sources) derive from.
    pub mnemonic: Option<Secret>,
    pub user_index_offset: u32,
    pub funder_key: Option<KeySource>,
    pub app_key: Option<KeySource>,
    pub funding: Funding,
    pub timeouts: StepTimeouts,
    pub poll: PollConfig,
    /// Environment variables referenced by the file and not set, with the field using each.
    pub missing_env: Vec<MissingEnv>,
}

/// How often the client polls: new blocks (for receipts), the indexer (every
/// `index`, doubling up to `index_max`; `_meta` answers are shared for
/// `index`) and the operation status (the personal server's documented backoff: every
/// `infer_initial` for `infer_fast_phase`, then doubling up to `infer_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    pub block: Duration,
    pub index: Duration,
    pub index_max: Duration,
    pub infer_initial: Duration,
    pub infer_fast_phase: Duration,
    pub infer_max: Duration,
}

impl Default for PollConfig {
    /// Moksha-like: blocks every second, the SDK's 2 s indexer poll, 1 s → 5 s operations.
    fn default() -> Self {
        PollConfig {
            block: Duration::from_secs(1),
            index: Duration::from_secs(2),
            index_max: Duration::from_secs(2),
            infer_initial: Duration::from_secs(1),
            infer_fast_phase: Duration::from_secs(10),
            infer_max: Duration::from_secs(5),
        }
    }
}

impl PollConfig {
    /// For a loopback twin: blocks polled every 50 ms, the indexer every
    /// 100 ms backing off to the SDK's 2 s.
    pub fn local() -> Self {
        PollConfig {
            block: Duration::from_millis(50),
            index: Duration::from_millis(100),
            ..Default::default()
        }
    }

    /// The wait before operation poll number `n` (0-based) after `elapsed`.
    pub fn infer_delay(&self, elapsed: Duration, n: u32) -> Duration {
        if elapsed < self.infer_fast_phase {
            return self.infer_initial;
        }
        let fast_polls =
            (self.infer_fast_phase.as_millis() / self.infer_initial.as_millis().max(1)) as u32;
        let k = n.saturating_sub(fast_polls).min(16);
        self.infer_initial
            .saturating_mul(1u32 << k)
            .min(self.infer_max)
    }
}

/// An unset environment variable and the target field that needed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingEnv {
    pub var: String,
    pub field: String,
}

/// What a command is about to do, to decide which settings it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `wallets prepare`: RPC, mnemonic, funder key, batch funder.
    FundWallets,
    /// A journey in relayer mode (`relayer = true`) or direct mode.
    Journey { relayer: bool },
    /// The pure-HTTP flow: storage and the subgraph only (no chain, no keys).
    Http,
}

/// A target that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot read target file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("target file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("target: {0}")]
    Invalid(String),
    #[error("target {target}: missing settings: {}", .missing.join("; "))]
    Missing {
        target: String,
        missing: Vec<String>,
    },
}

impl Target {
    /// Reads a target file, resolving `${VAR}` from the process environment.
    pub fn from_file(path: &Path) -> Result<Self, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &|k| std::env::var(k).ok()).map_err(|message| {
            TargetError::Parse {
                path: path.display().to_string(),
                message,
            }
        })
    }

    /// Parses a target from TOML text with an explicit environment (for tests).
    pub fn from_toml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let f: FileTarget = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut missing = Vec::new();
        let mut opt = |field: &str, raw: &Option<String>| -> Result<Option<String>, String> {
            match raw {
                Some(r) => interpolate(r, field, env, &mut missing),
                None => Ok(None),
            }
        };

        let mut rpc_urls = Vec::new();
        for (i, raw) in f.rpc.urls.iter().enumerate() {
            let field = format!("rpc.urls[{i}]");
            if let Some(list) = opt(&field, &Some(raw.clone()))? {
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    rpc_urls.push(parse_url(&field, part)?);
                }
            }
        }
        let req_addr = |field: &str, v: Option<String>| -> Result<Address, String> {
            parse_address(field, &v.ok_or_else(|| format!("{field}: unset"))?)
        };
        let c = &f.contracts;
        let contracts = Contracts {
            data_registry: req_addr(
                "contracts.data_registry",
                opt("contracts.data_registry", &Some(c.data_registry.clone()))?,
            )?,
            permissions: req_addr(
                "contracts.permissions",
                opt("contracts.permissions", &Some(c.permissions.clone()))?,
            )?,
            servers: req_addr(
                "contracts.servers",
                opt("contracts.servers", &Some(c.servers.clone()))?,
            )?,
            grantees: req_addr(
                "contracts.grantees",
                opt("contracts.grantees", &Some(c.grantees.clone()))?,
            )?,
            tee_pool: req_addr(
                "contracts.tee_pool",
                opt("contracts.tee_pool", &Some(c.tee_pool.clone()))?,
            )?,
            dlp: opt("contracts.dlp", &c.dlp)?
                .map(|s| parse_address("contracts.dlp", &s))
                .transpose()?,
            batch_funder: opt("contracts.batch_funder", &c.batch_funder)?
                .map(|s| parse_address("contracts.batch_funder", &s))
                .transpose()?,
        };
        let api_url = opt("storage.api_url", &Some(f.storage.api_url.clone()))?
            .ok_or("storage.api_url: unset")
            .map_err(str::to_string)?;
        let gateway = opt("storage.gateway", &Some(f.storage.gateway.clone()))?
            .ok_or("storage.gateway: unset")
            .map_err(str::to_string)?;
        let storage = StorageConfig {
            kind: f.storage.kind,
            api_url: parse_url("storage.api_url", api_url.trim_end_matches('/'))?,
            jwt: opt("storage.jwt", &f.storage.jwt)?.map(Secret::new),
            gateway: parse_url("storage.gateway", gateway.trim_end_matches('/'))?,
        };
        let url_opt = |field: &str, v: Option<String>| v.map(|s| parse_url(field, &s)).transpose();
        let relayer_url = url_opt(
            "services.relayer",
            opt("services.relayer", &f.services.relayer)?,
        )?;
        let personal_server_url = url_opt(
            "services.personal_server",
            opt("services.personal_server", &f.services.personal_server)?,
        )?;
        let subgraph_url = url_opt(
            "services.subgraph",
            opt("services.subgraph", &f.services.subgraph)?,
        )?;
        let tee_url = url_opt("services.tee", opt("services.tee", &f.services.tee)?)?;
        let mnemonic = opt("keys.mnemonic", &f.keys.mnemonic)?.map(Secret::new);
        let funder_key = opt("keys.funder", &f.keys.funder)?
            .map(|s| parse_key_source("keys.funder", s))
            .transpose()?;
        let app_key = opt("keys.app", &f.keys.app)?
            .map(|s| parse_key_source("keys.app", s))
            .transpose()?;
        let proof_url = opt("journey.proof_url", &f.journey.proof_url)?;

        let mut funding = Funding::default();
        if let Some(a) = &f.funding.amount {
            let a = match a {
                toml::Value::String(s) => toml::Value::String(
                    opt("funding.amount", &Some(s.clone()))?.unwrap_or_default(),
                ),
                v => v.clone(),
            };
            funding.amount = parse_vana("funding.amount", &a)?;
            funding.threshold = funding.amount / U256::from(2);
        }
        if let Some(t) = &f.funding.threshold {
            funding.threshold = parse_vana("funding.threshold", t)?;
        }
        if funding.threshold > funding.amount {
            return Err("funding.threshold: must not exceed funding.amount".into());
        }
        if let Some(b) = f.funding.batch_size {
            if b == 0 || b > 2000 {
                return Err(format!("funding.batch_size: {b} is out of range 1..=2000"));
            }
            funding.batch_size = b;
        }
        let timeouts = StepTimeouts::from_secs_table(&f.timeouts)?;
        Ok(Target {
            name: f.name.unwrap_or_else(|| "custom".into()),
            chain_id: f.chain_id,
            rpc_urls,
            contracts,
            storage,
            relayer_url,
            personal_server_url,
            subgraph_url,
            tee_url,
            proof_url,
            schema_id: f.journey.schema_id.unwrap_or(0),
            mnemonic,
            user_index_offset: f
                .keys
                .user_index_offset
                .unwrap_or(DEFAULT_USER_INDEX_OFFSET),
            funder_key,
            app_key,
            funding,
            timeouts,
            poll: f.poll.resolve()?,
            missing_env: missing,
        })
    }

    /// The target of a running twin: its manifest's RPC, contracts and
    /// services; keys are HD indices of `mnemonic` (funder 0, app 1); storage
    /// is the twin's IPFS API (no JWT); polling is tuned for loopback.
    pub fn from_manifest(
        manifest: &protocol::manifest::Manifest,
        mnemonic: Secret,
    ) -> Result<Self, TargetError> {
        let bad = |e: protocol::manifest::ManifestError| TargetError::Invalid(e.to_string());
        let url = |name: &str, path: &str| -> Result<Url, TargetError> {
            let base = &manifest.service(name).map_err(bad)?.url;
            parse_url(
                &format!("manifest.services.{name}"),
                &format!("{}{path}", base.trim_end_matches('/')),
            )
            .map_err(TargetError::Invalid)
        };
        let opt_url = |name: &str, path: &str| {
            manifest
                .services
                .contains_key(name)
                .then(|| url(name, path))
                .transpose()
        };
        let storage_url = url("storage", "")?;
        let contracts = Contracts {
            data_registry: manifest.contract("DataRegistry").map_err(bad)?,
            permissions: manifest
                .contract("DataPortabilityPermissions")
                .map_err(bad)?,
            servers: manifest.contract("DataPortabilityServers").map_err(bad)?,
            grantees: manifest.contract("DataPortabilityGrantees").map_err(bad)?,
            tee_pool: manifest.contract("TeePoolPhala").map_err(bad)?,
            dlp: manifest.contracts.get("DataLiquidityPool").copied(),
            batch_funder: manifest.contracts.get("BatchFunder").copied(),
        };
        Ok(Target {
            name: "local".into(),
            chain_id: manifest.chain_id,
            rpc_urls: vec![
                parse_url("manifest.rpc_url", &manifest.rpc_url).map_err(TargetError::Invalid)?,
            ],
            contracts,
            storage: StorageConfig {
                kind: StorageKind::Ipfs,
                gateway: parse_url(
                    "manifest.services.storage",
                    &format!("{}/ipfs", storage_url.as_str().trim_end_matches('/')),
                )
                .map_err(TargetError::Invalid)?,
                api_url: storage_url,
                jwt: None,
            },
            relayer_url: opt_url("relayer", protocol::api::relayer::RELAY_PATH)?,
            personal_server_url: opt_url("personal_server", "")?,
            subgraph_url: opt_url("indexer", protocol::api::subgraph::SUBGRAPH_PATH)?,
            // The twin's TEE URL is known from the manifest; chain discovery
            // (`tees(addr).url`) is used when the manifest has none.
            tee_url: opt_url("tee", "")?,
            proof_url: Some(TWIN_PROOF_URL.into()),
            schema_id: 0,
            mnemonic: Some(mnemonic),
            user_index_offset: DEFAULT_USER_INDEX_OFFSET,
            funder_key: Some(KeySource::Hd(FUNDER_KEY_INDEX)),
            app_key: Some(KeySource::Hd(APP_KEY_INDEX)),
            funding: Funding::default(),
            timeouts: StepTimeouts::default(),
            poll: PollConfig::local(),
            missing_env: Vec::new(),
        })
    }

    /// Checks that everything `purpose` needs is set; the error lists every
    /// missing setting with the environment variable that would provide it.
    pub fn require(&self, purpose: Purpose) -> Result<(), TargetError> {
        let mut missing = Vec::new();
        let mut need = |ok: bool, field: &str| {
            if !ok {
                let vars: Vec<_> = self
                    .missing_env
                    .iter()
                    .filter(|m| m.field.starts_with(field))
                    .map(|m| m.var.as_str())
                    .collect();
                missing.push(if vars.is_empty() {
                    format!("{field} is not set (in the target file or twin manifest)")
                } else {
                    format!("{field} needs env {}", vars.join(", "))
                });
            }
        };
        if purpose != Purpose::Http {
            need(!self.rpc_urls.is_empty(), "rpc.urls");
            need(self.mnemonic.is_some(), "keys.mnemonic");
        }
        match purpose {
            Purpose::FundWallets => {
                need(self.funder_key.is_some(), "keys.funder");
                need(
                    self.contracts.batch_funder.is_some(),
                    "contracts.batch_funder",
                );
            }
            Purpose::Journey { relayer } => {
                need(self.app_key.is_some(), "keys.app");
                need(self.contracts.dlp.is_some(), "contracts.dlp");
                need(
                    self.personal_server_url.is_some(),
                    "services.personal_server",
                );
                need(self.subgraph_url.is_some(), "services.subgraph");
                need(self.proof_url.is_some(), "journey.proof_url");
                if relayer {
                    need(self.relayer_url.is_some(), "services.relayer");
                }
                if self.storage.kind == StorageKind::Pinata {
                    need(self.storage.jwt.is_some(), "storage.jwt");
                }
            }
            Purpose::Http => {
                need(self.subgraph_url.is_some(), "services.subgraph");
                if self.storage.kind == StorageKind::Pinata {
                    need(self.storage.jwt.is_some(), "storage.jwt");
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Missing {
                target: self.name.clone(),
                missing,
            })
        }
    }

    /// The RPC endpoints to use for user `user_index`, in order: its home
    /// endpoint (`user_index % n`) first, then the others as failover.
    pub fn rpc_order(&self, user_index: u64) -> Vec<usize> {
        let n = self.rpc_urls.len();
        if n == 0 {
            return Vec::new();
        }
        let home = (user_index % n as u64) as usize;
        (0..n).map(|k| (home + k) % n).collect()
    }

    /// `{gateway}/{cid}` for an `ipfs://cid` URL; other URLs are returned as they are.
    pub fn fetch_url(&self, url: &str) -> String {
        match url.strip_prefix("ipfs://") {
            Some(cid) => format!(
                "{}/{}",
                self.storage.gateway.as_str().trim_end_matches('/'),
                cid
            ),
            None => url.to_string(),
        }
    }
}

/// Resolves `--target local|moksha|PATH` to a file for the non-local names.
pub fn shipped_target_path(name: &str) -> Option<std::path::PathBuf> {
    if name.contains('/') || name.ends_with(".toml") {
        return Some(std::path::PathBuf::from(name));
    }
    let file = format!("targets/{name}.toml");
    // From the current directory upwards, then from this crate's source tree.
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let p = d.join(&file);
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(&file);
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests;
