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
//!   "started_at": "2026-11-27T21:00:00Z"
//! }
//! ```
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
