//! `--target local|moksha|PATH` (and `--manifest PATH`), shared by the
//! commands that act as the virtual user. `local` starts a twin (and
//! [`ResolvedTarget::stop`] stops it); `--manifest` uses a twin already
//! running (`vana-load twin up`); a name or path reads a target TOML file,
//! whose secrets come from the environment. Each flag can also be set as
//! `VANA_LOAD_<FLAG>` (`VANA_LOAD_TARGET`, `VANA_LOAD_MANIFEST`,
//! `VANA_LOAD_TWIN_CONFIG`); the flag wins over its variable.

use std::path::PathBuf;

use anyhow::Context as _;
use client::target::{Secret, Target, shipped_target_path};
use twin::config::{Mnemonic, TwinConfig};

#[derive(clap::Args, Debug, Default, Clone)]
pub struct TargetArgs {
    /// `local` (start a twin, the default), `moksha`, or a target TOML file.
    #[arg(
        long,
        value_name = "local|moksha|PATH",
        default_value = "local",
        env = "VANA_LOAD_TARGET"
    )]
    pub target: String,
    /// Use the twin already running that wrote this manifest instead of starting one.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "twin_config",
        env = "VANA_LOAD_MANIFEST"
    )]
    pub manifest: Option<PathBuf>,
    /// Twin config (TOML) for `--target local`.
    #[arg(long, value_name = "PATH", env = "VANA_LOAD_TWIN_CONFIG")]
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
    /// The `--twin-config` file as JSON, secrets redacted (for `run.json`).
    twin_config: serde_json::Value,
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

    /// What the run is aimed at, for `run.json` and the report (no credentials).
    pub fn info(&self) -> engine::TargetInfo {
        let url = self.target.rpc_urls.first();
        let rpc_host = url
            .map(|u| match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            })
            .unwrap_or_default();
        let (kind, name) = match (&self.twin, self.local) {
            (Some(_), _) => (engine::TargetKind::Twin, "local twin".to_string()),
            (None, true) => (engine::TargetKind::Twin, "twin from --manifest".to_string()),
            (None, false) => (engine::TargetKind::Network, self.target.name.clone()),
        };
        engine::TargetInfo {
            kind,
            name,
            rpc_host,
            chain_id: Some(self.target.chain_id),
        }
    }

    /// The settings of the twin this process started.
    pub fn twin_info(&self) -> Option<engine::TwinInfo> {
        let (block_gas_limit, block_time_s) = self.chain?;
        Some(engine::TwinInfo {
            block_gas_limit,
            block_time_s,
            config: self.twin_config.clone(),
        })
    }

    /// Versions of what the run drives besides vana-load (the twin's anvil).
    pub fn versions(&self) -> std::collections::BTreeMap<String, String> {
        let mut v = std::collections::BTreeMap::new();
        if let Some(t) = &self.twin
            && let Ok(o) = std::process::Command::new(&t.anvil().path)
                .arg("--version")
                .output()
            && let Some(line) = String::from_utf8_lossy(&o.stdout).lines().next()
        {
            v.insert("anvil".to_string(), line.trim().to_string());
        }
        v
    }

    /// The twin's processes (name, pid) whose CPU and memory the run records.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.twin
            .as_ref()
            .map(|t| t.processes())
            .unwrap_or_default()
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
                twin_config: serde_json::Value::Null,
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
            let twin_config = match &self.twin_config {
                Some(p) => twin_config_json(p),
                None => serde_json::json!({}),
            };
            return Ok(ResolvedTarget {
                target,
                twin: Some(twin),
                local: true,
                metrics,
                chain,
                twin_config,
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
            twin_config: serde_json::Value::Null,
        })
    }
}

/// A `--twin-config` file as JSON, with every value under a secret-looking
/// key (mnemonic, token, JWT, secret, private or API key, password) replaced by `<redacted>`.
fn twin_config_json(path: &std::path::Path) -> serde_json::Value {
    fn redact(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    let k = k.to_ascii_lowercase();
                    if [
                        "mnemonic", "token", "jwt", "secret", "private", "api_key", "apikey",
                        "password",
                    ]
                    .iter()
                    .any(|s| k.contains(s))
                        && !v.is_object()
                    {
                        *v = serde_json::Value::String("<redacted>".into());
                    } else {
                        redact(v);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
            _ => {}
        }
    }
    let parsed = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
        .and_then(|t| serde_json::to_value(t).ok());
    let mut v = parsed.unwrap_or(serde_json::Value::Null);
    redact(&mut v);
    serde_json::json!({ "file": path.display().to_string(), "settings": v })
}

fn metrics_of(m: &protocol::manifest::Manifest) -> Vec<(String, String)> {
    m.services
        .iter()
        .map(|(name, s)| (name.clone(), s.metrics_url.clone()))
        .collect()
}
