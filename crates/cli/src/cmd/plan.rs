//! `vana-load plan`: prints what a profile will do before running it — the
//! arrival curve, the peak rate, the expected journeys in flight by Little's law —
//! and warns where the concurrency cap binds or the numbers disagree.
//!
//! [`ProfileArgs`] (the profile and its overrides) is shared with `run`
//! (`#[command(flatten)] profile: plan::ProfileArgs`), so both read a config the same way:
//! preset → profile TOML → `LOAD_TEST_*` env → these flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use engine::config::{ConfigPatch, LoadTestConfig, Preset, Spacing, TxMode};
use engine::{PlanReport, ThresholdLayer, ThresholdSpec};

/// The load profile and its CLI overrides.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ProfileArgs {
    /// A preset (burst, conservative, smoke, debug) or a profile TOML file.
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// Total users (the plan's `--total`).
    #[arg(long, value_name = "N")]
    pub total: Option<u64>,
    /// Maximum journeys in flight (the plan's `--concurrent`).
    #[arg(long, value_name = "N")]
    pub concurrent: Option<u64>,
    /// Total duration in minutes (phases are rescaled unless given).
    #[arg(long, value_name = "MIN")]
    pub duration: Option<f64>,
    /// Ramp-up minutes.
    #[arg(long, value_name = "MIN")]
    pub ramp_up: Option<f64>,
    /// Sustain minutes.
    #[arg(long, value_name = "MIN")]
    pub sustain: Option<f64>,
    /// Ramp-down minutes.
    #[arg(long, value_name = "MIN")]
    pub ramp_down: Option<f64>,
    /// Multiply every schedule duration by F (rates by 1/F): 0.1 replays 3 h in 18 min.
    #[arg(long, value_name = "F")]
    pub time_scale: Option<f64>,
    /// Arrival spacing.
    #[arg(long, value_parser = ["uniform", "poisson"])]
    pub arrival: Option<String>,
    /// Seed of the Poisson spacing.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Wallets available (users must not exceed it).
    #[arg(long, value_name = "N")]
    pub max_wallets: Option<u64>,
    /// RPC endpoints, comma-separated.
    #[arg(long, value_name = "URLS")]
    pub rpc: Option<String>,
    /// Transaction mode.
    #[arg(long, value_parser = ["relayer", "direct"])]
    pub tx_mode: Option<String>,
    /// Seconds between metric snapshots.
    #[arg(long, value_name = "SECS")]
    pub metrics_interval: Option<f64>,
    /// Seconds an arrival may wait for a slot before it is dropped.
    #[arg(long, value_name = "SECS")]
    pub max_queue_wait: Option<f64>,
    /// Stop at the first critical error.
    #[arg(long)]
    pub fail_fast: bool,
    /// Verbose logs.
    #[arg(long)]
    pub debug: bool,
    /// Extra threshold, k6-style (repeatable), e.g. 'p99(register) < 10s'. Prefix with `!` to abort on failure.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

impl ProfileArgs {
    /// The CLI layer.
    pub fn to_patch(&self) -> anyhow::Result<ConfigPatch> {
        Ok(ConfigPatch {
            total_users: self.total,
            max_concurrent_users: self.concurrent,
            test_duration_minutes: self.duration,
            ramp_up_minutes: self.ramp_up,
            sustain_minutes: self.sustain,
            ramp_down_minutes: self.ramp_down,
            time_scale: self.time_scale,
            arrival: self.arrival.as_deref().map(|a| match a {
                "poisson" => Spacing::Poisson,
                _ => Spacing::Uniform,
            }),
            seed: self.seed,
            max_wallets: self.max_wallets,
            rpc_endpoints: self.rpc.as_ref().map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
            tx_mode: self.tx_mode.as_deref().map(|m| match m {
                "direct" => TxMode::Direct,
                _ => TxMode::Relayer,
            }),
            metrics_interval: self.metrics_interval,
            max_queue_wait_secs: self.max_queue_wait,
            fail_fast: self.fail_fast.then_some(true),
            enable_debug_logs: self.debug.then_some(true),
            thresholds: (!self.thresholds.is_empty()).then(|| {
                ThresholdLayer::List(
                    self.thresholds
                        .iter()
                        .map(|t| match t.strip_prefix('!') {
                            Some(rest) => ThresholdSpec::new(rest.trim(), true),
                            None => ThresholdSpec::new(t, false),
                        })
                        .collect(),
                )
            }),
            ..Default::default()
        })
    }

    /// Builds and validates the config from all layers (default profile: `smoke`).
    pub fn load(&self) -> anyhow::Result<LoadTestConfig> {
        let name = self.profile.as_deref().unwrap_or("smoke");
        let (preset, file) = if name.ends_with(".toml") || Path::new(name).is_file() {
            let patch = ConfigPatch::from_file(Path::new(name))?;
            (Preset::Burst, Some(patch))
        } else {
            (name.parse::<Preset>()?, None)
        };
        let env = ConfigPatch::from_env(|k| std::env::var(k).ok())?;
        let mut cfg = LoadTestConfig::layered(preset, file.as_ref(), &env, &self.to_patch()?)?;
        if let Some(p) = &file
            && p.profile.is_none()
        {
            cfg.profile = name.to_string();
        }
        Ok(cfg)
    }
}

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// A preset or profile TOML (same as --profile).
    #[arg(value_name = "PROFILE", conflicts_with = "profile")]
    pub positional_profile: Option<String>,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Journey duration in seconds for Little's law (default: the profile's assumedJourneySecs).
    #[arg(long, value_name = "SECS", conflicts_with = "from_run")]
    pub journey_secs: Option<f64>,
    /// Use the median end-to-end time measured by a previous run (its results directory).
    #[arg(long, value_name = "DIR")]
    pub from_run: Option<PathBuf>,
}

fn measured(dir: &Path) -> anyhow::Result<(f64, String)> {
    let path = dir.join("summary.json");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let s: engine::Summary = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a vana-load summary", path.display()))?;
    let p50 = s
        .e2e_ms
        .p50
        .with_context(|| format!("{} has no successful journeys to measure", path.display()))?;
    Ok((p50 / 1000.0, format!("measured: p50 of {}", dir.display())))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut profile = args.profile.clone();
    if args.positional_profile.is_some() {
        profile.profile = args.positional_profile.clone();
    }
    let cfg = profile.load()?;
    let w = match (&args.from_run, args.journey_secs) {
        (Some(dir), _) => Some(measured(dir)?),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Some((s, "given (--journey-secs)".into())),
        (None, Some(s)) => {
            anyhow::bail!("--journey-secs must be a positive number of seconds, got {s}")
        }
        (None, None) => None,
    };
    let report = PlanReport::new(&cfg, w);
    print!("{}", report.render(&cfg));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        p: ProfileArgs,
    }

    #[test]
    fn plan_flags_map_onto_the_config() {
        // The plan's `npm run load-test:custom -- --concurrent=500 --total=10000`.
        let cli = Cli::parse_from([
            "x",
            "--profile",
            "burst",
            "--concurrent=500",
            "--total=10000",
            "--time-scale",
            "0.1",
            "--threshold",
            "!rate(errors) < 0.02",
            "--threshold",
            "p99(register) < 10s",
        ]);
        let c = cli.p.load().unwrap();
        assert_eq!(
            (c.total_users, c.max_concurrent_users, c.time_scale),
            (10_000, 500, 0.1)
        );
        // After the burst preset's four baselines.
        assert_eq!(c.thresholds.len(), 6);
        assert!(c.thresholds[4].abort_on_fail && c.thresholds[4].expr == "rate(errors) < 0.02");
        assert!(!c.thresholds[5].abort_on_fail);
        let bad = Cli::parse_from(["x", "--profile", "burst", "--total", "20000"]);
        assert!(bad.p.load().unwrap_err().to_string().contains("totalUsers"));
    }
}
