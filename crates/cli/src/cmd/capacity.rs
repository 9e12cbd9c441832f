//! `vana-load capacity`: finds the knee by measurement.
//!
//! Thin: it loads the profile, refuses bad settings before anything starts,
//! resolves the target once (a local twin is started once for the whole
//! search), connects one flow (the journey; with `--steps` a component run of
//! some of its steps, with `--flow http` the pure-HTTP flow: [`super::flows`])
//! and hands them to [`engine::capacity::search`], which sequences the steps,
//! judges them, bisects and writes the results. Before each step's clock
//! starts its users' wallets (new ones: the index continues across steps) are
//! funded, and the engine has the flow prepare them.
//!
//! A search that starts its own twin (no `--twin-config`) runs it with the
//! chain settings for long runs ([`LONG_RUN_CHAIN`], written into the results
//! as `twin.toml`): with anvil's defaults every block recomputes its state
//! root from the whole state, so on the smoke twin each step found the chain
//! slower than the last (4/s passed, then 6/s and 5/s failed worse than 8/s)
//! and the knee depended on the order the rates were tried in.
//!
//! Exit codes: 0 when a knee was found, 1 when none was (the first step
//! failed, every step passed, or the search was interrupted), 2 on a usage
//! or setup error.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::builder::BoolishValueParser;
use engine::capacity::{Outcome, Settings, StepSetup};

use super::flows::{FlowArgs, Selected, fit_config, load_flow};
use super::plan::ProfileArgs;
use super::run::{base_options, target_for};
use super::target_arg::TargetArgs;
use super::wallets;

/// The twin config of a search that starts its own twin without
/// `--twin-config`: the default twin with the chain settings for long runs.
const LONG_RUN_CHAIN: &str = "\
# Written by `vana-load capacity`: the default twin, with the chain settings
# for long runs. A search runs hundreds of journeys; with anvil's defaults each
# block's state root is recomputed from the whole state, so the chain slows
# with every journey and later steps would measure a slower target.
[chain]
prune_history = true
state_root = false
keep_blocks = 120
addresses = \"plain\"
";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// First arrival rate, journeys/s.
    #[arg(long, value_name = "R0", default_value_t = 1.0)]
    pub from: f64,
    /// Each climbing step multiplies the rate by this factor (> 1).
    #[arg(long, value_name = "X", default_value_t = 2.0)]
    pub step: f64,
    /// Shortest hold of each step, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub hold: f64,
    /// Longest hold of a step whose statistics do not settle (default 4 × --hold).
    #[arg(long, value_name = "SECS")]
    pub max_hold: Option<f64>,
    /// Highest rate to try, journeys/s.
    #[arg(long, value_name = "R", default_value_t = 200.0)]
    pub max_rate: f64,
    /// Bisection steps between the last good and the first bad rate.
    #[arg(long = "bisect", value_name = "N", default_value_t = 2)]
    pub bisections: u32,
    /// Skip the goodput check at 1.5 × the knee.
    #[arg(long, value_parser = BoolishValueParser::new())]
    pub no_beyond: bool,
    /// Results directory (default `runs/capacity-<UTC timestamp>`).
    #[arg(long, value_name = "DIR", env = "VANA_LOAD_OUT")]
    pub out: Option<PathBuf>,
    /// Skip funding the users' wallets (they must already hold funds).
    #[arg(long, env = "VANA_LOAD_NO_FUND", value_parser = BoolishValueParser::new())]
    pub no_fund: bool,
}

impl Args {
    fn settings(&self) -> Settings {
        Settings {
            from: self.from,
            step: self.step,
            hold_secs: self.hold,
            max_hold_secs: self.max_hold.unwrap_or(4.0 * self.hold),
            max_rate: self.max_rate,
            bisections: self.bisections,
            check_beyond: !self.no_beyond,
        }
    }
}

/// Funds each step's users before its clock starts.
struct Fund {
    target: client::target::Target,
    amount: String,
    skip: bool,
}

impl StepSetup for Fund {
    async fn prepare(&self, users: Range<u64>) -> Result<(), String> {
        if self.skip {
            return Ok(());
        }
        let from = u32::try_from(users.start).map_err(|e| e.to_string())?;
        let count = u32::try_from(users.end - users.start).map_err(|e| e.to_string())?;
        let mut target = self.target.clone();
        target.user_index_offset = target
            .user_index_offset
            .checked_add(from)
            .ok_or("the user index overflows")?;
        wallets::fund_users(&target, count, &self.amount, None)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

pub async fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.profile.profile.is_none() {
        args.profile.profile = Some("smoke".into());
    }
    let config = args.profile.load()?;
    let selected = args.flow.selected()?;
    let run_config = fit_config(&config, &selected)?;
    let settings = args.settings();
    // Refused before the target (a twin) is started.
    settings.validate(&run_config)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/capacity-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    if out.join("capacity.json").exists() {
        anyhow::bail!(
            "{} already holds a capacity search (capacity.json); choose another --out",
            out.display()
        );
    }
    if args.target.target == "local"
        && args.target.manifest.is_none()
        && args.target.twin_config.is_none()
    {
        // The twin this search starts: the default one, with the chain
        // settings for long runs, written into the results (see the module doc).
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join("twin.toml");
        std::fs::write(&path, LONG_RUN_CHAIN)
            .with_context(|| format!("writing {}", path.display()))?;
        args.target.twin_config = Some(path);
    }
    let resolved = args.target.resolve().await?;
    let result = search_on(
        &args,
        (&config, &run_config),
        &selected,
        &settings,
        &resolved,
        out,
    )
    .await;
    resolved.stop().await;
    result
}

/// `config` is the profile as loaded (it sets the target's deadlines);
/// `run_config` the one each step runs ([`fit_config`]).
async fn search_on(
    args: &Args,
    (config, run_config): (&engine::LoadTestConfig, &engine::LoadTestConfig),
    selected: &Selected,
    settings: &Settings,
    resolved: &super::target_arg::ResolvedTarget,
    out: PathBuf,
) -> anyhow::Result<ExitCode> {
    let run_id = format!("cap-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let target = target_for(config, resolved)?;
    let setup = Fund {
        target: target.clone(),
        amount: config.wallet_funding_amount.clone(),
        skip: args.no_fund || !selected.needs_funds(),
    };
    let flow = load_flow(config, target, &run_id, selected).await?;
    let options = engine::RunOptions {
        run_id: Some(run_id),
        handle_signals: true,
        live: engine::LiveMode::Off,
        ..base_options(resolved)
    };
    let r = engine::capacity::search(run_config, settings, flow, &setup, &options, out.clone())
        .await
        .context("capacity search")?;
    print!("{}", r.text());
    println!(
        "results: {} (capacity.json, capacity.txt, capacity.html; one directory per step)",
        out.display()
    );
    Ok(match r.outcome {
        Outcome::KneeFound => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
