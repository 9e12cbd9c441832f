//! The twin manifest: what a running twin publishes about itself, so that a
//! client (or a person) can find the chain, the contracts and every service.
//!
//! ```json
//! {
//!   "rpc_url": "http://127.0.0.1:8545",
//!   "chain_id": 14800,
//!   "deployer_block": 1,
//!   "contracts": { "DataRegistry": "0x…", … },
//!   "services": { "storage": { "url": "http://127.0.0.1:41234", "metrics_url": "http://127.0.0.1:41234/metrics" } },
//!   "sdk": { "relayer_url": "http://127.0.0.1:41236/api/relay", "subgraph_url": "…/subgraphs/name/vana", … },
//!   "started_at": "2026-11-27T21:00:00Z"
//! }
//! ```
//!
//! `sdk` ([`SdkEndpoints`]) carries every endpoint in the form the Vana SDK's
//! configuration takes it (full URLs with their paths) and the twin's public
//! test credentials; `vana-load twin env` prints it.
//!
//! [`Manifest::write`] replaces the file atomically (write to a temporary file
//! in the same directory, then rename), so a reader polling for the file never
//! sees half of it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A failure to read or write a manifest, or a missing entry, naming the path or entry.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read twin manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("twin manifest {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write twin manifest {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the twin manifest lists no contract named {0:?}")]
    MissingContract(String),
    #[error("the twin manifest lists no service named {0:?}")]
    MissingService(String),
}

/// One service's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEndpoint {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// Prometheus text endpoint.
    pub metrics_url: String,
}

/// Everything an app needs to point the Vana SDK at the twin, in the form
/// the SDK's configuration takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SdkEndpoints {
    /// The chain's JSON-RPC URL (a viem `http()` transport).
    pub rpc_url: String,
    pub chain_id: u64,
    /// `relayer`: the relay endpoint, `…/api/relay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayer_url: Option<String>,
    /// `subgraphUrl`: `…/subgraphs/name/vana`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgraph_url: Option<String>,
    /// `defaultPersonalServerUrl`: the personal server's base, `…/api/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_server_url: Option<String>,
    /// `ipfsGateways`: a gateway prefix, `…/ipfs/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipfs_gateway: Option<String>,
    /// `PinataStorage({apiUrl})`: the Pinata API base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinata_api_url: Option<String>,
    /// `PinataStorage({jwt})`: the twin's public test JWT (not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinata_jwt: Option<String>,
    /// The inference backend's public test token (not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicate_token: Option<String>,
}

impl SdkEndpoints {
    /// `(NAME, value)` pairs for an `.env` file: `VANA_RPC_URL`, `VANA_CHAIN_ID`,
    /// `VANA_RELAYER_URL`, … (unset ones left out).
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("VANA_RPC_URL", self.rpc_url.clone()),
            ("VANA_CHAIN_ID", self.chain_id.to_string()),
        ];
        let optional = [
            ("VANA_RELAYER_URL", &self.relayer_url),
            ("VANA_SUBGRAPH_URL", &self.subgraph_url),
            ("VANA_PERSONAL_SERVER_URL", &self.personal_server_url),
            ("VANA_IPFS_GATEWAY", &self.ipfs_gateway),
            ("PINATA_API_URL", &self.pinata_api_url),
            ("PINATA_JWT", &self.pinata_jwt),
            ("REPLICATE_API_TOKEN", &self.replicate_token),
        ];
        vars.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.clone()))),
        );
        vars
    }
}

/// What a running twin publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: String,
    pub chain_id: u64,
    /// The block of the first deployment transaction (where indexers start).
    pub deployer_block: u64,
    /// Contract name (as in `contracts/out/<Name>.json`) to address.
    pub contracts: BTreeMap<String, Address>,
    /// Service name (`storage`, `relayer`, …) to its endpoints.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceEndpoint>,
    /// The endpoints in the SDK's form (absent in manifests of older twins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkEndpoints>,
    pub started_at: DateTime<Utc>,
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| ManifestError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the manifest as pretty JSON, creating parent directories and
    /// replacing any existing file atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ManifestError> {
        let path = path.as_ref();
        let err = |source| ManifestError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        let file_name = path
            .file_name()
            .ok_or_else(|| err(std::io::Error::other("the path has no file name")))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        json.push(b'\n');
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(err)
    }

    /// The address of a contract, or an error naming it.
    pub fn contract(&self, name: &str) -> Result<Address, ManifestError> {
        self.contracts
            .get(name)
            .copied()
            .ok_or_else(|| ManifestError::MissingContract(name.to_string()))
    }

    /// A service's endpoints, or an error naming it.
    pub fn service(&self, name: &str) -> Result<&ServiceEndpoint, ManifestError> {
        self.services
            .get(name)
            .ok_or_else(|| ManifestError::MissingService(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut contracts = BTreeMap::new();
        contracts.insert(
            "DataRegistry".to_string(),
            "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
        );
        let mut services = BTreeMap::new();
        services.insert(
            "storage".to_string(),
            ServiceEndpoint {
                url: "http://127.0.0.1:4000".into(),
                metrics_url: "http://127.0.0.1:4000/metrics".into(),
            },
        );
        Manifest {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 14800,
            deployer_block: 1,
            contracts,
            services,
            sdk: None,
            started_at: "2026-11-27T21:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn write_then_load_round_trips() {
        let dir = std::env::temp_dir().join(format!("manifest-test-{}", std::process::id()));
        let path = dir.join("nested/m.json");
        let m = sample();
        m.write(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), m);
        // Overwrite in place leaves no temporary file behind.
        m.write(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m.json")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_has_the_documented_field_names() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["chain_id"], 14800);
        assert_eq!(v["rpc_url"], "http://127.0.0.1:8545");
        assert_eq!(v["deployer_block"], 1);
        assert_eq!(
            v["contracts"]["DataRegistry"],
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        );
        assert_eq!(
            v["services"]["storage"]["metrics_url"],
            "http://127.0.0.1:4000/metrics"
        );
        assert_eq!(v["started_at"], "2026-11-27T21:00:00Z");
    }

    #[test]
    fn sdk_endpoints_round_trip_and_become_env_vars() {
        let mut m = sample();
        m.sdk = Some(SdkEndpoints {
            rpc_url: m.rpc_url.clone(),
            chain_id: 14800,
            relayer_url: Some("http://127.0.0.1:4002/api/relay".into()),
            pinata_jwt: Some("jwt".into()),
            ..SdkEndpoints::default()
        });
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["sdk"]["relayer_url"], "http://127.0.0.1:4002/api/relay");
        assert!(v["sdk"].get("subgraph_url").is_none());
        assert_eq!(serde_json::from_value::<Manifest>(v).unwrap(), m);
        let vars = m.sdk.unwrap().env_vars();
        assert_eq!(
            vars,
            vec![
                ("VANA_RPC_URL", "http://127.0.0.1:8545".to_string()),
                ("VANA_CHAIN_ID", "14800".to_string()),
                (
                    "VANA_RELAYER_URL",
                    "http://127.0.0.1:4002/api/relay".to_string()
                ),
                ("PINATA_JWT", "jwt".to_string()),
            ]
        );
        // A manifest without `sdk` (an older twin's) still loads.
        let mut old = serde_json::to_value(sample()).unwrap();
        old.as_object_mut().unwrap().remove("sdk");
        assert_eq!(serde_json::from_value::<Manifest>(old).unwrap().sdk, None);
    }

    #[test]
    fn errors_name_the_path_or_entry() {
        let err = Manifest::load("/nonexistent/m.json").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/m.json"), "{err}");

        let dir = std::env::temp_dir().join(format!("manifest-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"rpc_url\": 1}").unwrap();
        let err = Manifest::load(&bad).unwrap_err();
        assert!(
            matches!(err, ManifestError::Parse { .. }) && err.to_string().contains("bad.json"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let m = sample();
        assert!(m.contract("Nope").unwrap_err().to_string().contains("Nope"));
        assert!(
            m.service("relayer")
                .unwrap_err()
                .to_string()
                .contains("relayer")
        );
        assert_eq!(m.service("storage").unwrap().url, "http://127.0.0.1:4000");
    }
}
