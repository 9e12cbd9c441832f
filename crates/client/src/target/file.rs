//! The target file's TOML format (`targets/*.toml`): the raw sections as
//! written, `${VAR}` interpolation, and the parsers that turn a field into a
//! URL, an address, a key source or an amount, each error naming its field.
//! [`super::Target::load`] builds the validated target from these.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256, utils::parse_ether};
use serde::Deserialize;
use url::Url;

use super::{KeySource, MissingEnv, PollConfig, Secret, StorageKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTarget {
    pub(super) name: Option<String>,
    pub(super) chain_id: u64,
    pub(super) rpc: FileRpc,
    pub(super) contracts: FileContracts,
    pub(super) storage: FileStorage,
    #[serde(default)]
    pub(super) services: FileServices,
    #[serde(default)]
    pub(super) keys: FileKeys,
    #[serde(default)]
    pub(super) funding: FileFunding,
    #[serde(default)]
    pub(super) journey: FileJourney,
    #[serde(default)]
    pub(super) timeouts: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) poll: FilePoll,
}

/// `[poll]`, in milliseconds; absent fields keep [`PollConfig::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePoll {
    pub(super) block_ms: Option<u64>,
    pub(super) index_ms: Option<u64>,
    pub(super) index_max_ms: Option<u64>,
    pub(super) infer_initial_ms: Option<u64>,
    pub(super) infer_fast_phase_ms: Option<u64>,
    pub(super) infer_max_ms: Option<u64>,
}

impl FilePoll {
    pub(super) fn resolve(&self) -> Result<PollConfig, String> {
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
pub(super) struct FileRpc {
    /// Each entry may itself be a comma-separated list (e.g. `${LOAD_TEST_RPC_ENDPOINTS}`).
    pub(super) urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileContracts {
    pub(super) data_registry: String,
    pub(super) permissions: String,
    pub(super) servers: String,
    pub(super) grantees: String,
    pub(super) tee_pool: String,
    pub(super) dlp: Option<String>,
    pub(super) batch_funder: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStorage {
    pub(super) kind: StorageKind,
    pub(super) api_url: String,
    pub(super) jwt: Option<String>,
    pub(super) gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileServices {
    pub(super) relayer: Option<String>,
    pub(super) personal_server: Option<String>,
    pub(super) subgraph: Option<String>,
    pub(super) tee: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileKeys {
    pub(super) mnemonic: Option<String>,
    pub(super) user_index_offset: Option<u32>,
    /// A hex private key (normally `${TEST_WALLET_PRIVATE_KEY}`) or `hd:<index>`.
    pub(super) funder: Option<String>,
    /// A hex private key (normally `${APP_PRIVATE_KEY}`) or `hd:<index>`.
    pub(super) app: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileFunding {
    /// VANA, decimal string or number (e.g. "0.1").
    pub(super) amount: Option<toml::Value>,
    pub(super) threshold: Option<toml::Value>,
    pub(super) batch_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileJourney {
    pub(super) proof_url: Option<String>,
    pub(super) schema_id: Option<u64>,
}

/// Resolves `${VAR}` / `${VAR:-default}` in `raw`; `Ok(None)` (and a record
/// in `missing`) when a variable without default is unset or empty.
pub(super) fn interpolate(
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

pub(super) fn parse_url(field: &str, s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("{field}: {s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https" | "ws" | "wss") {
        return Err(format!("{field}: {s:?} must be http(s) or ws(s)"));
    }
    Ok(u)
}

pub(super) fn parse_address(field: &str, s: &str) -> Result<Address, String> {
    Address::from_str(s.trim()).map_err(|_| format!("{field}: {s:?} is not a 20-byte hex address"))
}

pub(super) fn parse_key_source(field: &str, s: String) -> Result<KeySource, String> {
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

pub(super) fn parse_vana(field: &str, v: &toml::Value) -> Result<U256, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        _ => return Err(format!("{field}: expected an amount of VANA like \"0.1\"")),
    };
    parse_ether(&s).map_err(|e| format!("{field}: {s:?} is not an amount of VANA: {e}"))
}
