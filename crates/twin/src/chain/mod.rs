//! The twin's chain: an anvil process on loopback ([`anvil`]) and the deterministic
//! deployment and wiring of the Vana contracts on it ([`deploy`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), vana_load_twin::chain::ChainError> {
//! use vana_load_twin::chain::{AnvilConfig, AnvilProcess, DeployConfig, deploy};
//! let cfg = AnvilConfig { anvil_path: "tools/node_modules/.bin/anvil".into(), ..Default::default() };
//! let anvil = AnvilProcess::spawn(&cfg).await?;
//! let deployment = deploy(&anvil.rpc_url(), &cfg.mnemonic, &DeployConfig::default()).await?;
//! println!("DataRegistry at {}", deployment.data_registry);
//! anvil.stop().await;
//! # Ok(()) }
//! ```

pub mod anvil;
pub mod deploy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use anvil::{AnvilConfig, AnvilProcess};
pub use deploy::{
    AddressLayout, DEFAULT_REWARD_BUDGET_TOKENS, DeployConfig, Deployment, IMPLEMENTATION_SLOT,
    deploy, set_tee_url, tee_public_key_hex,
};

/// What can go wrong starting the chain or deploying to it. Messages name the problem and
/// never contain the mnemonic or a key.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(
        "malformed mnemonic (word count, BIP-39 English word list or checksum); anvil was not started"
    )]
    MalformedMnemonic,
    #[error("anvil not found at {0} (install it with: npm ci --prefix tools)")]
    AnvilNotFound(PathBuf),
    #[error("anvil at {0} is not an executable file")]
    NotExecutable(PathBuf),
    #[error(
        "chain port {0} is already in use (stop what listens there, or use port 0 for a free one)"
    )]
    PortInUse(SocketAddr),
    #[error("cannot start anvil ({path}): {reason}")]
    Spawn { path: PathBuf, reason: String },
    #[error("anvil exited during startup (status {status}): {stderr}")]
    Exited { status: String, stderr: String },
    #[error("anvil did not report \"Listening on\" within {timeout:?}: {stderr}")]
    StartupTimeout { timeout: Duration, stderr: String },
    #[error("chain config: {0}")]
    Config(String),
    #[error("RPC {url}: {reason}")]
    Rpc { url: String, reason: String },
    #[error("deploy step `{step}` failed: {reason}")]
    Deploy { step: String, reason: String },
}
