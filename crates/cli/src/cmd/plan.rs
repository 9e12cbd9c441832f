//! `vana-load plan`: prints what a profile will do before running it — the
//! arrival curve, the peak rate, the expected journeys in flight by Little's law —
//! and warns where the concurrency cap binds or the numbers disagree.
//!
//! [`ProfileArgs`] (the profile and its overrides) is shared with `run`
//! (`#[command(flatten)] profile: plan::ProfileArgs`), so both read a config
//! the same way, later winning: preset → profile TOML → the plan's
//! `LOAD_TEST_*` variables → these flags. Every flag can also be set as
//! `VANA_LOAD_<FLAG>` (`--ramp-up` is `VANA_LOAD_RAMP_UP`); clap reads the
//! variable only when the flag is absent, so a flag beats its variable, and
//! both beat `LOAD_TEST_*` (they form the last layer).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use engine::config::{ConfigPatch, LoadTestConfig};
use engine::{PlanReport, ThresholdLayer, ThresholdSpec};

use super::values::{Arrival, TxMode};

/// The load profile and its CLI overrides.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ProfileArgs {
    /// A preset (burst, conservative, smoke, debug) or a profile TOML file
    /// (see profiles/example.toml).
    #[arg(long, value_name = "NAME|FILE", env = "VANA_LOAD_PROFILE")]
    pub profile: Option<String>,
    /// Total users (the plan's `--total`).
    #[arg(long, value_name = "N", env = "VANA_LOAD_TOTAL")]
    pub total: Option<u64>,
    /// Maximum journeys in flight (the plan's `--concurrent`).
    #[arg(long, value_name = "N", env = "VANA_LOAD_CONCURRENT")]
    pub concurrent: Option<u64>,
    /// Total duration in minutes (phases are rescaled unless given).
    #[arg(long, value_name = "MIN", env = "VANA_LOAD_DURATION")]
    pub duration: Option<f64>,
    /// Ramp-up minutes.
    #[arg(long, value_name = "MIN", env = "VANA_LOAD_RAMP_UP")]
    pub ramp_up: Option<f64>,
    /// Sustain minutes.
    #[arg(long, value_name = "MIN", env = "VANA_LOAD_SUSTAIN")]
    pub sustain: Option<f64>,
    /// Ramp-down minutes.
    #[arg(long, value_name = "MIN", env = "VANA_LOAD_RAMP_DOWN")]
    pub ramp_down: Option<f64>,
    /// Multiply every schedule duration by F (rates by 1/F): 0.1 replays 3 h in 18 min.
    #[arg(long, value_name = "F", env = "VANA_LOAD_TIME_SCALE")]
    pub time_scale: Option<f64>,
    /// Arrival spacing.
    #[arg(long, value_enum, env = "VANA_LOAD_ARRIVAL")]
    pub arrival: Option<Arrival>,
    /// Seed of the Poisson spacing.
    #[arg(long, env = "VANA_LOAD_SEED")]
    pub seed: Option<u64>,
    /// Wallets available (users must not exceed it).
    #[arg(long, value_name = "N", env = "VANA_LOAD_MAX_WALLETS")]
    pub max_wallets: Option<u64>,
    /// RPC endpoints, comma-separated.
    #[arg(long, value_name = "URLS", env = "VANA_LOAD_RPC")]
    pub rpc: Option<String>,
    /// Transaction mode.
    #[arg(long, value_enum, env = "VANA_LOAD_TX_MODE")]
    pub tx_mode: Option<TxMode>,
    /// Seconds between metric snapshots.
    #[arg(long, value_name = "SECS", env = "VANA_LOAD_METRICS_INTERVAL")]
    pub metrics_interval: Option<f64>,
    /// Seconds an arrival may wait for a slot before it is dropped.
    #[arg(long, value_name = "SECS", env = "VANA_LOAD_MAX_QUEUE_WAIT")]
    pub max_queue_wait: Option<f64>,
    /// Stop at the first critical error.
    #[arg(long, env = "VANA_LOAD_FAIL_FAST", value_parser = BoolishValueParser::new())]
    pub fail_fast: bool,
    /// Verbose logs.
    #[arg(long, env = "VANA_LOAD_DEBUG", value_parser = BoolishValueParser::new())]
    pub debug: bool,
    /// Threshold, k6-style (repeatable), e.g. 'p99(register) < 10s' or
    /// 'p(95)(e2e)<30000' (milliseconds). Prefix with `!` to abort on failure.
    /// One on the same aggregation and metric as a threshold of the profile
    /// (a preset baseline, say) replaces it. In VANA_LOAD_THRESHOLD, separate
    /// several with `;`.
    #[arg(
        long = "threshold",
        value_name = "EXPR",
        env = "VANA_LOAD_THRESHOLD",
        value_delimiter = ';'
    )]
    pub thresholds: Vec<String>,
    /// Drop the thresholds of the preset (its baselines), the profile and
    /// the environment; only --threshold flags apply.
    #[arg(long, env = "VANA_LOAD_RESET_THRESHOLDS", value_parser = BoolishValueParser::new())]
    pub reset_thresholds: bool,
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
            arrival: self.arrival.map(Into::into),
            seed: self.seed,
            max_wallets: self.max_wallets,
            rpc_endpoints: self.rpc.as_ref().map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
            tx_mode: self.tx_mode.map(Into::into),
            metrics_interval: self.metrics_interval,
            max_queue_wait_secs: self.max_queue_wait,
            fail_fast: self.fail_fast.then_some(true),
            enable_debug_logs: self.debug.then_some(true),
            reset_thresholds: self.reset_thresholds.then_some(true),
            thresholds: (!self.thresholds.is_empty()).then(|| {
                ThresholdLayer::List(
                    self.thresholds
                        .iter()
                        .map(|t| match t.trim().strip_prefix('!') {
                            Some(rest) => ThresholdSpec::new(rest.trim(), true),
                            None => ThresholdSpec::new(t.trim(), false),
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
        let env = ConfigPatch::from_env(|k| std::env::var(k).ok())?;
        Ok(LoadTestConfig::from_profile(name, &env, &self.to_patch()?)?)
    }
}

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// A preset or profile TOML (same as --profile, which it overrides).
    #[arg(value_name = "PROFILE")]
    pub positional_profile: Option<String>,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Journey duration in seconds for Little's law (default: the profile's assumedJourneySecs).
    #[arg(
        long,
        value_name = "SECS",
        conflicts_with = "from_run",
        env = "VANA_LOAD_JOURNEY_SECS"
    )]
    pub journey_secs: Option<f64>,
    /// Use the median end-to-end time measured by a previous run (its results directory).
    #[arg(long, value_name = "DIR", env = "VANA_LOAD_FROM_RUN")]
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
    // As strict as `run`: step names and threshold metrics are checked
    // against the journey's steps and components.
    cfg.validate_for(&super::run::journey_steps(
        &client::steps::StepTimeouts::default(),
    ))?;
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
