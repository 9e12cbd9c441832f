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

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256, utils::parse_ether};
use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use url::Url;

use crate::steps::StepTimeouts;

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

// ----- the file format -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    name: Option<String>,
    chain_id: u64,
    rpc: FileRpc,
    contracts: FileContracts,
    storage: FileStorage,
    #[serde(default)]
    services: FileServices,
    #[serde(default)]
    keys: FileKeys,
    #[serde(default)]
    funding: FileFunding,
    #[serde(default)]
    journey: FileJourney,
    #[serde(default)]
    timeouts: BTreeMap<String, f64>,
    #[serde(default)]
    poll: FilePoll,
}

/// `[poll]`, in milliseconds; absent fields keep [`PollConfig::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePoll {
    block_ms: Option<u64>,
    index_ms: Option<u64>,
    index_max_ms: Option<u64>,
    infer_initial_ms: Option<u64>,
    infer_fast_phase_ms: Option<u64>,
    infer_max_ms: Option<u64>,
}

impl FilePoll {
    fn resolve(&self) -> Result<PollConfig, String> {
        let mut p = PollConfig::default();
        for (field, v, slot) in [
            ("poll.block_ms", self.block_ms, &mut p.block),
            ("poll.index_ms", self.index_ms, &mut p.index),
            ("poll.index_max_ms", self.index_max_ms, &mut p.index_max),
            (
                "poll.infer_initial_ms",
                self.infer_initial_ms,
                &mut p.infer_initial,
            ),
            (
                "poll.infer_fast_phase_ms",
                self.infer_fast_phase_ms,
                &mut p.infer_fast_phase,
            ),
            ("poll.infer_max_ms", self.infer_max_ms, &mut p.infer_max),
        ] {
            if let Some(ms) = v {
                if ms == 0 && field != "poll.infer_fast_phase_ms" {
                    return Err(format!("{field}: must be positive"));
                }
                *slot = Duration::from_millis(ms);
            }
        }
        if self.index_max_ms.is_none() {
            p.index_max = p.index_max.max(p.index);
        }
        if p.index_max < p.index {
            return Err("poll.index_max_ms: must not be below poll.index_ms".into());
        }
        if p.infer_max < p.infer_initial {
            return Err("poll.infer_max_ms: must not be below poll.infer_initial_ms".into());
        }
        Ok(p)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRpc {
    /// Each entry may itself be a comma-separated list (e.g. `${LOAD_TEST_RPC_ENDPOINTS}`).
    urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileContracts {
    data_registry: String,
    permissions: String,
    servers: String,
    grantees: String,
    tee_pool: String,
    dlp: Option<String>,
    batch_funder: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    kind: StorageKind,
    api_url: String,
    jwt: Option<String>,
    gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServices {
    relayer: Option<String>,
    personal_server: Option<String>,
    subgraph: Option<String>,
    tee: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKeys {
    mnemonic: Option<String>,
    user_index_offset: Option<u32>,
    /// A hex private key (normally `${TEST_WALLET_PRIVATE_KEY}`) or `hd:<index>`.
    funder: Option<String>,
    /// A hex private key (normally `${APP_PRIVATE_KEY}`) or `hd:<index>`.
    app: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFunding {
    /// VANA, decimal string or number (e.g. "0.1").
    amount: Option<toml::Value>,
    threshold: Option<toml::Value>,
    batch_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJourney {
    proof_url: Option<String>,
    schema_id: Option<u64>,
}

/// Resolves `${VAR}` / `${VAR:-default}` in `raw`; `Ok(None)` (and a record
/// in `missing`) when a variable without default is unset or empty.
fn interpolate(
    raw: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<MissingEnv>,
) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut unset = false;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{field}: unterminated ${{ in {raw:?}"))?;
        let expr = &after[..end];
        let (var, default) = match expr.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (expr, None),
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{field}: bad variable name {var:?} in {raw:?}"));
        }
        match (env(var).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                unset = true;
                if !missing.iter().any(|m| m.var == var && m.field == field) {
                    missing.push(MissingEnv {
                        var: var.to_string(),
                        field: field.to_string(),
                    });
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((!unset).then_some(out))
}

fn parse_url(field: &str, s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("{field}: {s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https" | "ws" | "wss") {
        return Err(format!("{field}: {s:?} must be http(s) or ws(s)"));
    }
    Ok(u)
}

fn parse_address(field: &str, s: &str) -> Result<Address, String> {
    Address::from_str(s.trim()).map_err(|_| format!("{field}: {s:?} is not a 20-byte hex address"))
}

fn parse_key_source(field: &str, s: String) -> Result<KeySource, String> {
    if let Some(i) = s.strip_prefix("hd:") {
        return i
            .parse()
            .map(KeySource::Hd)
            .map_err(|_| format!("{field}: bad HD index in \"hd:{i}\""));
    }
    let hex = s.trim().trim_start_matches("0x");
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{field}: expected a 32-byte hex private key or hd:<index> (value not shown)"
        ));
    }
    Ok(KeySource::PrivateKey(Secret::new(s)))
}

fn parse_vana(field: &str, v: &toml::Value) -> Result<U256, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        _ => return Err(format!("{field}: expected an amount of VANA like \"0.1\"")),
    };
    parse_ether(&s).map_err(|e| format!("{field}: {s:?} is not an amount of VANA: {e}"))
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
        need(!self.rpc_urls.is_empty(), "rpc.urls");
        need(self.mnemonic.is_some(), "keys.mnemonic");
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
mod tests {
    use super::*;

    const MOKSHA: &str = include_str!("../../../targets/moksha.toml");

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn moksha_has_the_real_addresses_and_lists_missing_secrets() {
        let t = Target::from_toml_str(MOKSHA, &env_of(&[])).unwrap();
        assert_eq!(t.chain_id, 14800);
        assert_eq!(t.rpc_urls[0].as_str(), "https://rpc.moksha.vana.org/");
        assert_eq!(
            t.contracts.data_registry,
            "0x8C8788f98385F6ba1adD4234e551ABba0f82Cb7C"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            t.contracts.tee_pool,
            "0xE8EC6BD73b23Ad40E6B9a6f4bD343FAc411bD99A"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            t.personal_server_url.as_ref().unwrap().as_str(),
            "https://test.server.vana.com/"
        );
        assert_eq!(
            t.subgraph_url.as_ref().unwrap().as_str(),
            "https://moksha.vanagraph.io/v7"
        );
        let err = t
            .require(Purpose::Journey { relayer: false })
            .unwrap_err()
            .to_string();
        for var in [
            "VANA_LOAD_MNEMONIC",
            "APP_PRIVATE_KEY",
            "PINATA_JWT",
            "MOKSHA_DLP_ADDRESS",
        ] {
            assert!(err.contains(var), "{var} not listed in: {err}");
        }
        let err = t.require(Purpose::FundWallets).unwrap_err().to_string();
        assert!(err.contains("TEST_WALLET_PRIVATE_KEY"), "{err}");
    }

    #[test]
    fn env_fills_secrets_and_debug_redacts_them() {
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let env = env_of(&[
            (
                "MOKSHA_RPC_URL",
                "http://a.example:8545,http://b.example:8545",
            ),
            ("VANA_LOAD_MNEMONIC", DEFAULT_TEST_MNEMONIC),
            ("APP_PRIVATE_KEY", key),
            ("TEST_WALLET_PRIVATE_KEY", key),
            ("PINATA_JWT", "jwt-secret-value"),
            (
                "MOKSHA_DLP_ADDRESS",
                "0x0000000000000000000000000000000000000042",
            ),
            ("MOKSHA_RELAYER_URL", "https://relayer.example/api/relay"),
            (
                "MOKSHA_BATCH_FUNDER",
                "0x0000000000000000000000000000000000000043",
            ),
            ("MOKSHA_PROOF_URL", "https://proofs.example/poc.tar.gz"),
        ]);
        let t = Target::from_toml_str(MOKSHA, &env).unwrap();
        t.require(Purpose::Journey { relayer: true }).unwrap();
        t.require(Purpose::FundWallets).unwrap();
        assert_eq!(t.rpc_urls.len(), 2);
        let dbg = format!("{t:?}");
        for secret in ["jwt-secret-value", &key[2..], "test test"] {
            assert!(!dbg.contains(secret), "Debug leaks a secret");
        }
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn rpc_spreading_is_deterministic_with_failover() {
        let mut t = Target::from_toml_str(
            MOKSHA,
            &env_of(&[("MOKSHA_RPC_URL", "http://a:1,http://b:1,http://c:1")]),
        )
        .unwrap();
        assert_eq!(t.rpc_order(0), vec![0, 1, 2]);
        assert_eq!(t.rpc_order(4), vec![1, 2, 0]);
        assert_eq!(t.rpc_order(5), vec![2, 0, 1]);
        t.rpc_urls.truncate(1);
        assert_eq!(t.rpc_order(7), vec![0]);
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad = MOKSHA.replace("0x8C8788f98385F6ba1adD4234e551ABba0f82Cb7C", "0x1234");
        let e = Target::from_toml_str(&bad, &env_of(&[])).unwrap_err();
        assert!(e.contains("contracts.data_registry"), "{e}");
        let e =
            Target::from_toml_str(MOKSHA, &env_of(&[("APP_PRIVATE_KEY", "nothex")])).unwrap_err();
        assert!(e.contains("keys.app") && !e.contains("nothex"), "{e}");
        let e =
            Target::from_toml_str(&format!("{MOKSHA}\n[extra]\nx=1\n"), &env_of(&[])).unwrap_err();
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn from_manifest_maps_services_and_contracts() {
        let json = r#"{
          "rpc_url": "http://127.0.0.1:8545", "chain_id": 14800, "deployer_block": 1,
          "contracts": {
            "DataRegistry": "0x0000000000000000000000000000000000000001",
            "DataPortabilityPermissions": "0x0000000000000000000000000000000000000002",
            "DataPortabilityServers": "0x0000000000000000000000000000000000000003",
            "DataPortabilityGrantees": "0x0000000000000000000000000000000000000004",
            "TeePoolPhala": "0x0000000000000000000000000000000000000005",
            "DataLiquidityPool": "0x0000000000000000000000000000000000000006",
            "BatchFunder": "0x0000000000000000000000000000000000000007"
          },
          "services": {
            "storage": {"url": "http://127.0.0.1:4001", "metrics_url": "http://127.0.0.1:4001/metrics"},
            "relayer": {"url": "http://127.0.0.1:4002", "metrics_url": "http://127.0.0.1:4002/metrics"},
            "indexer": {"url": "http://127.0.0.1:4003", "metrics_url": "http://127.0.0.1:4003/metrics"}
          },
          "started_at": "2026-11-27T21:00:00Z"
        }"#;
        let m: protocol::manifest::Manifest = serde_json::from_str(json).unwrap();
        let t = Target::from_manifest(&m, Secret::new(DEFAULT_TEST_MNEMONIC)).unwrap();
        assert_eq!(t.storage.kind, StorageKind::Ipfs);
        assert_eq!(t.storage.gateway.as_str(), "http://127.0.0.1:4001/ipfs");
        assert_eq!(
            t.relayer_url.unwrap().as_str(),
            "http://127.0.0.1:4002/api/relay"
        );
        assert_eq!(
            t.subgraph_url.unwrap().as_str(),
            "http://127.0.0.1:4003/subgraphs/name/vana"
        );
        assert!(t.personal_server_url.is_none());
        assert_eq!(t.contracts.batch_funder, Some(Address::with_last_byte(7)));
        assert_eq!(t.app_key, Some(KeySource::Hd(1)));
        let mut m2 = m.clone();
        m2.contracts.remove("TeePoolPhala");
        let e = Target::from_manifest(&m2, Secret::new(DEFAULT_TEST_MNEMONIC))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TeePoolPhala"), "{e}");
    }

    #[test]
    fn infer_backoff_is_the_documented_schedule() {
        let p = PollConfig::default();
        assert_eq!(
            p.infer_delay(Duration::from_secs(3), 3),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.infer_delay(Duration::from_secs(10), 10),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.infer_delay(Duration::from_secs(11), 11),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.infer_delay(Duration::from_secs(13), 12),
            Duration::from_secs(4)
        );
        assert_eq!(
            p.infer_delay(Duration::from_secs(17), 13),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.infer_delay(Duration::from_secs(60), 30),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn poll_section_overrides_and_validates() {
        let text = MOKSHA
            .replace("index_ms = 2000", "index_ms = 500")
            .replace("block_ms = 1000", "block_ms = 250");
        let t = Target::from_toml_str(&text, &env_of(&[])).unwrap();
        assert_eq!(t.poll.index, Duration::from_millis(500));
        assert_eq!(t.poll.block, Duration::from_millis(250));
        assert_eq!(t.poll.infer_max, Duration::from_secs(5));
        let e = Target::from_toml_str(
            &MOKSHA.replace("block_ms = 1000", "block_ms = 0"),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.contains("poll.block_ms"), "{e}");
        let e = Target::from_toml_str(
            &MOKSHA.replace("index_ms = 2000", "index_msx = 2000"),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.contains("index_msx"), "{e}");
    }

    #[test]
    fn interpolation_defaults_and_missing() {
        let mut missing = Vec::new();
        let env = env_of(&[("A", "1")]);
        assert_eq!(
            interpolate("x${A}y", "f", &env, &mut missing)
                .unwrap()
                .as_deref(),
            Some("x1y")
        );
        assert_eq!(
            interpolate("${B:-dflt}", "f", &env, &mut missing)
                .unwrap()
                .as_deref(),
            Some("dflt")
        );
        assert_eq!(interpolate("${B}", "g", &env, &mut missing).unwrap(), None);
        assert_eq!(
            missing,
            vec![MissingEnv {
                var: "B".into(),
                field: "g".into()
            }]
        );
        assert!(interpolate("${B", "h", &env, &mut missing).is_err());
    }
}
