//! `--target local|moksha|PATH` (and `--manifest PATH`), shared by the
//! commands that act as the virtual user. `local` starts a twin (and
//! [`ResolvedTarget::stop`] stops it); `--manifest` uses a twin already
//! running (`vana-load twin up`); a name or path reads a target TOML file,
//! whose secrets come from the environment.

use std::path::PathBuf;

use anyhow::Context as _;
use client::target::{Secret, Target, shipped_target_path};
use twin::config::{Mnemonic, TwinConfig};

#[derive(clap::Args, Debug, Default, Clone)]
pub struct TargetArgs {
    /// `local` (start a twin, the default), `moksha`, or a target TOML file.
    #[arg(long, value_name = "local|moksha|PATH", default_value = "local")]
    pub target: String,
    /// Use the twin already running that wrote this manifest instead of starting one.
    #[arg(long, value_name = "PATH", conflicts_with = "twin_config")]
    pub manifest: Option<PathBuf>,
    /// Twin config (TOML) for `--target local`.
    #[arg(long, value_name = "PATH")]
    pub twin_config: Option<PathBuf>,
}

/// A target, and the twin behind it when this process started one.
pub struct ResolvedTarget {
    pub target: Target,
    twin: Option<twin::Twin>,
    local: bool,
    /// The twin's services' Prometheus endpoints (name, URL), when the target is a twin.
    metrics: Vec<(String, String)>,
    /// The twin's block gas limit and block time (`None` = automine), when started here.
    chain: Option<(u64, Option<f64>)>,
}

impl ResolvedTarget {
    /// Whether the target is a twin (started here or from `--manifest`).
    pub fn is_twin(&self) -> bool {
        self.local
    }

    /// `(service, /metrics URL)` of each twin service; empty for a real network.
    pub fn metrics_urls(&self) -> Vec<(String, String)> {
        self.metrics.clone()
    }

    /// Block gas limit and block time of the twin this process started.
    pub fn twin_chain(&self) -> Option<(u64, Option<f64>)> {
        self.chain
    }

    /// Stops the twin if this process started it.
    pub async fn stop(self) {
        if let Some(t) = self.twin {
            t.stop().await;
        }
    }
}

fn mnemonic_from_env() -> anyhow::Result<Mnemonic> {
    let m = match std::env::var("VANA_LOAD_MNEMONIC") {
        Ok(s) if !s.trim().is_empty() => Mnemonic::new(&s),
        _ => Mnemonic::default(),
    };
    m.validate()
        .map_err(|e| anyhow::anyhow!("VANA_LOAD_MNEMONIC: {e}"))?;
    Ok(m)
}

impl TargetArgs {
    pub async fn resolve(&self) -> anyhow::Result<ResolvedTarget> {
        if let Some(path) = &self.manifest {
            let m = protocol::manifest::Manifest::load(path)?;
            let mnemonic = mnemonic_from_env()?;
            let target = Target::from_manifest(&m, Secret::new(mnemonic.expose()))?;
            return Ok(ResolvedTarget {
                target,
                twin: None,
                local: true,
                metrics: metrics_of(&m),
                chain: None,
            });
        }
        if self.target == "local" {
            let mut config = match &self.twin_config {
                Some(p) => TwinConfig::load(p)?,
                None => TwinConfig::ephemeral(),
            };
            config.apply_env();
            config.validate()?;
            let mnemonic = Secret::new(config.chain.mnemonic.expose());
            let chain = Some((config.chain.block_gas_limit, config.chain.block_time));
            eprintln!("starting the local twin…");
            let twin = twin::Twin::start(config)
                .await
                .context("cannot start the local twin")?;
            let target = match Target::from_manifest(twin.manifest(), mnemonic) {
                Ok(t) => t,
                Err(e) => {
                    twin.stop().await;
                    return Err(e.into());
                }
            };
            let metrics = metrics_of(twin.manifest());
            return Ok(ResolvedTarget {
                target,
                twin: Some(twin),
                local: true,
                metrics,
                chain,
            });
        }
        let path = shipped_target_path(&self.target).ok_or_else(|| {
            anyhow::anyhow!(
                "--target {}: no such target (expected local, moksha, or a path to a .toml file)",
                self.target
            )
        })?;
        let target = Target::from_file(&path)?;
        Ok(ResolvedTarget {
            target,
            twin: None,
            local: false,
            metrics: Vec::new(),
            chain: None,
        })
    }
}

fn metrics_of(m: &protocol::manifest::Manifest) -> Vec<(String, String)> {
    m.services
        .iter()
        .map(|(name, s)| (name.clone(), s.metrics_url.clone()))
        .collect()
}
