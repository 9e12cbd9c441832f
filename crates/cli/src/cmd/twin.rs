//! `vana-load twin …`: the local twin of the Vana network.
//!
//! `twin up` starts the chain (anvil with the contracts deployed) and every
//! service, writes the manifest, prints a table of URLs and stays up until
//! Ctrl-C (or SIGTERM/SIGHUP), then stops everything it started.
//!
//! Settings come from, lowest to highest: the defaults, `--config twin.toml`,
//! the environment (`VANA_LOAD_MNEMONIC`), then flags.
//!
//! `twin env` prints, from a running twin's manifest, every endpoint in the
//! form the Vana SDK's configuration takes it (and the twin's public test
//! credentials), as JSON or as `export` lines for a shell or an `.env` file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use twin::config::{Mnemonic, TwinConfig};

/// Where `twin up` writes the manifest unless told otherwise.
pub const DEFAULT_MANIFEST: &str = "runs/twin/manifest.json";

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Start the twin (chain + services), write the manifest, stay up until Ctrl-C.
    Up(UpArgs),
    /// Print a running twin's endpoints in the Vana SDK's form (JSON or shell exports).
    Env(EnvArgs),
}

/// How `twin env` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvFormat {
    /// One JSON object (the manifest's `sdk` section).
    Json,
    /// `export NAME='value'` lines, for a shell or an `.env` file.
    Sh,
}

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    /// The manifest `twin up` wrote.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_MANIFEST)]
    pub manifest: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "sh")]
    pub format: EnvFormat,
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Where to write the manifest (RPC URL, chain id, contract addresses, service URLs).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_MANIFEST)]
    pub manifest: PathBuf,
    /// A twin config file (TOML, one section per part: [chain], [storage], …).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The anvil binary (default: $PATH, then tools/node_modules).
    #[arg(long, value_name = "PATH")]
    pub anvil: Option<PathBuf>,
    /// The chain's RPC port on 127.0.0.1 (default 8545; 0 = any free port).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Chain id (default 14800).
    #[arg(long, value_name = "N")]
    pub chain_id: Option<u64>,
    /// Seconds between blocks (interval mining); without it, every transaction is mined at once.
    #[arg(long, value_name = "SECS")]
    pub block_time: Option<f64>,
    /// Block gas limit (default 30000000).
    #[arg(long, value_name = "N")]
    pub gas_limit: Option<u64>,
    /// BIP-39 mnemonic for every key (default: anvil's test mnemonic).
    #[arg(
        long,
        value_name = "M",
        env = "VANA_LOAD_MNEMONIC",
        hide_env_values = true
    )]
    pub mnemonic: Option<Mnemonic>,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up(args).await,
        Command::Env(args) => {
            print!("{}", env(&args)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The text `twin env` prints.
pub fn env(args: &EnvArgs) -> anyhow::Result<String> {
    let manifest = protocol::manifest::Manifest::load(&args.manifest)?;
    let sdk = manifest.sdk.ok_or_else(|| {
        anyhow::anyhow!(
            "twin manifest {} has no `sdk` section (written by an older vana-load? restart `vana-load twin up`)",
            args.manifest.display()
        )
    })?;
    Ok(match args.format {
        EnvFormat::Json => format!("{}\n", serde_json::to_string_pretty(&sdk)?),
        EnvFormat::Sh => sdk
            .env_vars()
            .into_iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
            .collect(),
    })
}

/// Builds the twin config from the file (if any) and the flags.
pub fn build_config(args: &UpArgs) -> anyhow::Result<TwinConfig> {
    let mut config = match &args.config {
        Some(path) => TwinConfig::load(path)?,
        None => TwinConfig::default(),
    };
    // `--mnemonic` already carries VANA_LOAD_MNEMONIC (clap `env`), which thus
    // overrides the file, as documented.
    if let Some(m) = &args.mnemonic {
        m.validate()
            .map_err(|e| anyhow::anyhow!("--mnemonic (or VANA_LOAD_MNEMONIC): {e}"))?;
        config.chain.mnemonic = m.clone();
    }
    if let Some(p) = &args.anvil {
        config.chain.anvil = Some(p.clone());
    }
    if let Some(p) = args.port {
        config.chain.port = p;
    }
    if let Some(id) = args.chain_id {
        config.chain.chain_id = id;
    }
    if let Some(bt) = args.block_time {
        config.chain.block_time = Some(bt);
    }
    if let Some(g) = args.gas_limit {
        config.chain.block_gas_limit = g;
    }
    config.validate()?;
    Ok(config)
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    // Install the signal handlers before starting anything, so an early
    // Ctrl-C still stops what has started.
    let stop = stop_signal()?;
    let started = std::time::Instant::now();
    let twin = tokio::select! {
        twin = twin::Twin::start(config) => twin.context("cannot start the twin")?,
        _ = stop.wait() => {
            eprintln!("interrupted while starting; stopped");
            return Ok(ExitCode::from(130));
        }
    };
    if let Err(e) = twin.manifest().write(&args.manifest) {
        twin.stop().await;
        return Err(e.into());
    }
    print_table(&twin, &args.manifest, started.elapsed());
    stop.wait().await;
    eprintln!("stopping the twin…");
    twin.stop().await;
    eprintln!("twin stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_table(twin: &twin::Twin, manifest_path: &std::path::Path, took: std::time::Duration) {
    let m = twin.manifest();
    let mut rows: Vec<(String, String, String)> =
        vec![("chain (rpc)".into(), m.rpc_url.clone(), "-".into())];
    for (name, ep) in &m.services {
        rows.push((name.clone(), ep.url.clone(), ep.metrics_url.clone()));
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(3);
    println!(
        "vana-load twin is up in {:.1}s: chain id {}, {} contracts from block {}, {} services",
        took.as_secs_f64(),
        m.chain_id,
        m.contracts.len(),
        m.deployer_block,
        m.services.len()
    );
    println!();
    println!("  {:<w0$}  {:<w1$}  METRICS", "SERVICE", "URL");
    for (name, url, metrics) in rows {
        println!("  {name:<w0$}  {url:<w1$}  {metrics}");
    }
    println!();
    println!("manifest: {}", manifest_path.display());
    println!("anvil:    {}", twin.anvil().path.display());
    println!("Press Ctrl-C to stop.");
}

/// Resolves on the first SIGINT, SIGTERM or SIGHUP.
struct StopSignal {
    #[cfg(unix)]
    int: tokio::sync::Mutex<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: tokio::sync::Mutex<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: tokio::sync::Mutex<tokio::signal::unix::Signal>,
}

fn stop_signal() -> anyhow::Result<StopSignal> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            int: tokio::sync::Mutex::new(
                signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            ),
            term: tokio::sync::Mutex::new(
                signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            ),
            hup: tokio::sync::Mutex::new(
                signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
            ),
        })
    }
    #[cfg(not(unix))]
    {
        Ok(StopSignal {})
    }
}

impl StopSignal {
    async fn wait(&self) {
        #[cfg(unix)]
        {
            let mut int = self.int.lock().await;
            let mut term = self.term.lock().await;
            let mut hup = self.hup.lock().await;
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_file(dir: &std::path::Path, sdk: Option<serde_json::Value>) -> PathBuf {
        let mut m = serde_json::json!({
            "rpc_url": "http://127.0.0.1:8545", "chain_id": 14800, "deployer_block": 1,
            "contracts": {}, "services": {}, "started_at": "2026-11-27T21:00:00Z"
        });
        if let Some(sdk) = sdk {
            m["sdk"] = sdk;
        }
        let path = dir.join("manifest.json");
        std::fs::write(&path, m.to_string()).unwrap();
        path
    }

    #[test]
    fn env_prints_the_sdk_endpoints_as_json_or_shell_exports() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = serde_json::json!({
            "rpc_url": "http://127.0.0.1:8545", "chain_id": 14800,
            "relayer_url": "http://127.0.0.1:4002/api/relay",
            "pinata_jwt": "it's-public"
        });
        let manifest = manifest_file(dir.path(), Some(sdk.clone()));
        let json = env(&EnvArgs {
            manifest: manifest.clone(),
            format: EnvFormat::Json,
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            sdk
        );
        let sh = env(&EnvArgs {
            manifest,
            format: EnvFormat::Sh,
        })
        .unwrap();
        assert_eq!(
            sh,
            "export VANA_RPC_URL='http://127.0.0.1:8545'\n\
             export VANA_CHAIN_ID='14800'\n\
             export VANA_RELAYER_URL='http://127.0.0.1:4002/api/relay'\n\
             export PINATA_JWT='it'\\''s-public'\n"
        );
        // An older manifest without `sdk` is named.
        let old = manifest_file(dir.path(), None);
        let err = env(&EnvArgs {
            manifest: old,
            format: EnvFormat::Sh,
        })
        .unwrap_err();
        assert!(err.to_string().contains("no `sdk` section"), "{err}");
    }
}
