//! `vana-load run`: the load test. With no arguments it runs the `smoke`
//! profile against a local twin that it starts and stops itself.
//!
//! Setup (resolving the target, starting the twin, funding every planned
//! user's wallet through the batch funder) happens before the engine's clock
//! starts, so it never dilutes the measured throughput. The engine then drives
//! [`JourneyFlow`] — the client's eleven-step journey — on the profile's open
//! arrival schedule and writes the results directory, and the end-of-run
//! summary (the engine's [`engine::report::text`]) is printed on stdout.
//!
//! With `--shard i/n` (or an Indexed Job's environment) it runs one shard of
//! the run: that shard's users only, funded and run with their own wallets
//! ([`super::shard_arg`]); `vana-load merge` joins the shards' results.
//!
//! The `burst` and `conservative` presets add the plan's performance
//! baselines to the criteria. Every flag can also be set as `VANA_LOAD_<FLAG>` (`--live` is
//! `VANA_LOAD_LIVE`); the flag wins over its variable.
//!
//! The flow hands the engine the client's JSON-RPC counts, for the RPC
//! success rate, and each journey's count of subgraph queries
//! ([`SUBGRAPH_QUERIES`]), which the reports show per journey.
//!
//! `--steps` times only some steps of the journey (component mode: each
//! user's earlier steps are prepared before the clock, by the engine's
//! [`Flow::prepare`]); `--flow http` runs the pure-HTTP flow instead
//! ([`super::flows`]).
//!
//! Exit codes: 0 when every criterion passed, 1 when a threshold failed,
//! 2 on a usage or setup error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::BoolishValueParser;
use client::component::{Component, Plan};
use client::context::{Context, RunOptions as ClientOptions};
use client::data::DataSize;
use client::journey::{self, JourneyReport, Mode, StepEvent};
use client::steps::{Step, StepTimeouts};
use engine::config::{LoadTestConfig, TxMode};
use engine::{
    Flow, FlowError, FlowResult, FlowScope, GaugeSource, PrepareError, Progress, RpcCounts,
    StepDef, StepSample, TxSample,
};

use super::flows::{FlowArgs, Selected, fit_config, load_flow};
use super::plan::ProfileArgs;
use super::shard_arg::ShardArgs;
use super::target_arg::{ResolvedTarget, TargetArgs};
use super::values::Live;
use super::wallets;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Results directory (default `runs/<UTC timestamp>`).
    #[arg(long, value_name = "DIR", env = "VANA_LOAD_OUT")]
    pub out: Option<PathBuf>,
    /// Serve the engine's Prometheus metrics on this address, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR", env = "VANA_LOAD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Live view.
    #[arg(long, value_enum, default_value_t = Live::Auto, env = "VANA_LOAD_LIVE")]
    pub live: Live,
    /// Continue the interrupted run in `--out`.
    #[arg(long, requires = "out", env = "VANA_LOAD_RESUME", value_parser = BoolishValueParser::new())]
    pub resume: bool,
    /// Skip funding the users' wallets before the run (they must already hold funds).
    #[arg(long, env = "VANA_LOAD_NO_FUND", value_parser = BoolishValueParser::new())]
    pub no_fund: bool,
    #[command(flatten)]
    pub sharding: ShardArgs,
}

pub async fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.profile.profile.is_none() {
        args.profile.profile = Some("smoke".into());
    }
    let config = args.profile.load()?;
    // Every step name the profile uses, and the journey timeout, are checked
    // against the steps the flow times before anything starts (the engine
    // checks again with the target's own timeouts once it is resolved).
    let selected = args.flow.selected()?;
    let run_config = fit_config(&config, &selected)?;
    // Shard and run id are settled before anything starts.
    let shard = args.sharding.shard()?;
    if let Some(s) = shard {
        s.check(config.total_users, config.max_concurrent_users)?;
    }
    let run_id = args.sharding.run_id(shard)?;
    if config.enable_debug_logs {
        tracing::info!(
            "debug logs enabled by the profile (set RUST_LOG=debug for the client's own)"
        );
    }
    let resolved = args.target.resolve().await?;
    let result = run_on(
        &args, &config, run_config, &selected, &resolved, shard, run_id,
    )
    .await;
    resolved.stop().await;
    result
}

/// `config` is the profile as loaded (its `stepTimeouts` set the deadlines of
/// prepared steps too); `run_config` is the one the engine runs ([`fit_config`]).
async fn run_on(
    args: &Args,
    config: &LoadTestConfig,
    run_config: LoadTestConfig,
    selected: &Selected,
    resolved: &ResolvedTarget,
    shard: Option<engine::Shard>,
    run_id: String,
) -> anyhow::Result<ExitCode> {
    let target = target_for(config, resolved)?;
    let users =
        u32::try_from(config.total_users).context("totalUsers does not fit a wallet index")?;
    if !args.no_fund && !args.resume && selected.needs_funds() {
        wallets::fund_users(&target, users, &config.wallet_funding_amount, shard)
            .await
            .context("funding the users' wallets before the run")?;
    }
    let flow = load_flow(config, target, &run_id, selected).await?;
    let config = run_config;
    let options = engine::RunOptions {
        out_dir: args.out.clone(),
        metrics_addr: args.metrics_addr,
        live: args.live.into(),
        run_id: Some(run_id),
        resume: args.resume,
        handle_signals: true,
        shard,
        start_at: args.sharding.start_at,
        ..base_options(resolved)
    };
    let outcome = match engine::run(config, flow, options).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    print!("{}", outcome.text_summary(super::color_stdout()));
    Ok(ExitCode::from(outcome.exit_code()))
}

/// The resolved target with the profile's deadlines applied: the client's
/// defaults → the target's `[timeouts]` → `stepTimeouts`.
pub fn target_for(
    config: &LoadTestConfig,
    resolved: &ResolvedTarget,
) -> anyhow::Result<client::target::Target> {
    let mut target = resolved.target.clone();
    // The journey's steps (another flow's step names are its own business).
    let journey: std::collections::BTreeMap<String, f64> = config
        .step_timeouts
        .iter()
        .filter(|(name, _)| name.parse::<Step>().is_ok())
        .map(|(name, secs)| (name.clone(), *secs))
        .collect();
    target
        .timeouts
        .apply_secs_table(&journey)
        .map_err(|e| anyhow::anyhow!("stepTimeouts: {e}"))?;
    Ok(target)
}

/// The client's journey on `target` as an engine flow (one connection for
/// every user of every run that uses it), timing the steps of `plan`.
pub async fn journey_flow(
    config: &LoadTestConfig,
    target: client::target::Target,
    run_id: &str,
    plan: Plan,
) -> anyhow::Result<JourneyFlow> {
    let mode = match config.tx_mode {
        TxMode::Relayer => Mode::Relayer,
        TxMode::Direct => Mode::Direct,
    };
    let opts = ClientOptions {
        run_seed: config.seed,
        test_run_id: run_id.to_string(),
        data_size: DataSize::Small,
        relayer: mode == Mode::Relayer,
    };
    let ctx = Context::new(target, opts)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("connecting the virtual users to the target")?;
    Ok(JourneyFlow {
        ctx,
        mode,
        mix: config.data_mix,
        seed: config.seed,
        component: (!plan.is_whole()).then(|| Component::new(plan, mode)),
        prepare_concurrency: config.max_concurrent_users.clamp(1, 64) as usize,
    })
}

/// What every run on `resolved` records and watches: its gauges, processes,
/// target, twin settings and versions.
pub fn base_options(resolved: &ResolvedTarget) -> engine::RunOptions {
    engine::RunOptions {
        gauge_sources: resolved
            .metrics_urls()
            .into_iter()
            .map(|(name, url)| GaugeSource { name, url })
            .collect(),
        processes: resolved.processes(),
        target: resolved.info(),
        twin: resolved.twin_info(),
        versions: resolved.versions(),
        ..Default::default()
    }
}

/// The client's steps as the engine sees them, with `timeouts` applied.
pub fn journey_steps(timeouts: &StepTimeouts) -> Vec<StepDef> {
    plan_steps(timeouts, &Plan::whole())
}

/// The steps `plan` times, as the engine sees them, with `timeouts` applied.
pub fn plan_steps(timeouts: &StepTimeouts, plan: &Plan) -> Vec<StepDef> {
    plan.selected()
        .iter()
        .map(|&s| StepDef::new(s.name(), s.component(), timeouts.get(s), s.touches_chain()))
        .collect()
}

/// The client's journey as an engine [`Flow`]: the whole journey, or in
/// component mode the steps of a [`Plan`] on journeys prepared before the clock.
pub struct JourneyFlow {
    ctx: Arc<Context>,
    mode: Mode,
    mix: engine::config::DataMix,
    seed: u64,
    /// `None` for the whole journey.
    component: Option<Component>,
    /// Users prepared at once before the clock.
    prepare_concurrency: usize,
}

impl JourneyFlow {
    /// The user's data size, drawn from the profile's mix.
    fn size(&self, user: u64) -> DataSize {
        data_size(&self.mix, self.seed, user)
    }

    fn plan(&self) -> Option<&Plan> {
        self.component.as_ref().map(Component::plan)
    }
}

/// A user's data size, drawn from the profile's mix, deterministic per (seed, user).
pub fn data_size(mix: &engine::config::DataMix, seed: u64, user: u64) -> DataSize {
    match mix.pick(uniform(seed, user)) {
        "medium" => DataSize::Medium,
        "large" => DataSize::Large,
        _ => DataSize::Small,
    }
}

/// A uniform draw in [0, 1) from (seed, user): splitmix64.
fn uniform(seed: u64, user: u64) -> f64 {
    let mut z = seed ^ user.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Flow for JourneyFlow {
    fn steps(&self) -> Vec<StepDef> {
        plan_steps(
            &self.ctx.target.timeouts,
            self.plan().unwrap_or(&Plan::whole()),
        )
    }

    async fn run(&self, user: u64, progress: &Progress) -> FlowResult {
        let observe = |ev: StepEvent<'_>| match ev {
            StepEvent::Begin(step) => progress.begin(step.name()),
            StepEvent::End(r) => progress.end(step_sample(r)),
        };
        match &self.component {
            None => {
                let report =
                    journey::run_observed(&self.ctx, user, self.mode, self.size(user), &observe)
                        .await;
                to_flow_result(&report, &Step::ALL)
            }
            Some(c) => {
                let report = c.run_observed(&self.ctx, user, &observe).await;
                to_flow_result(&report, c.plan().selected())
            }
        }
    }

    /// Component mode: each user's prepared steps, before the clock.
    async fn prepare(&self, users: &[u64]) -> Result<(), PrepareError> {
        let Some(c) = &self.component else {
            return Ok(());
        };
        let users = users.iter().map(|&u| (u, self.size(u)));
        Ok(c.prepare(&self.ctx, users, self.prepare_concurrency)
            .await?)
    }

    fn scope(&self) -> Option<FlowScope> {
        let plan = self.plan().cloned().unwrap_or_else(Plan::whole);
        let names =
            |s: &[Step]| -> Vec<String> { s.iter().map(|s| s.name().to_string()).collect() };
        Some(FlowScope {
            flow: if plan.is_whole() {
                "journey"
            } else {
                "component"
            }
            .into(),
            whole: plan.is_whole(),
            prepared: names(plan.prepared()),
            skipped: names(&plan.skipped()),
            description: plan.describe(),
        })
    }

    /// Every JSON-RPC call of the journeys and the receipt hub, as the
    /// client's counted providers tallied them.
    fn rpc(&self) -> Option<RpcCounts> {
        let t = self.ctx.chain.rpc_stats().tally();
        Some(RpcCounts {
            ok: t.ok,
            error: t.error,
            timeout: t.timeout,
        })
    }

    fn wallet(&self, user: u64) -> String {
        u32::try_from(user)
            .ok()
            .and_then(|u| self.ctx.users.user(u).ok())
            .map(|s| s.address().to_string())
            .unwrap_or_else(|| format!("user-{user}"))
    }
}

/// The name of the journey's count of GraphQL queries sent to the subgraph
/// (`_meta` answers served from the client's shared cache are not queries).
pub const SUBGRAPH_QUERIES: &str = "subgraph_queries";

/// Transaction kinds as the engine's static names.
fn tx_kind(kind: &str) -> &'static str {
    const KINDS: [&str; 6] = [
        "fund",
        "addServerFilesAndPermissions(relayed)",
        "addFileWithPermissionsAndSchema",
        "addPermission",
        "requestContributionProof",
        "requestReward",
    ];
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("other")
}

fn step_sample(s: &journey::StepResult) -> StepSample {
    StepSample {
        name: s.name.name(),
        duration: s.duration,
        ok: s.ok,
        error_class: s.error.as_ref().map(|e| e.class()),
    }
}

/// The engine's view of a journey that was to run `expected` (every step,
/// or a component run's timed steps).
fn to_flow_result(report: &JourneyReport, expected: &[Step]) -> FlowResult {
    let steps = report.steps.iter().map(step_sample).collect();
    let error = report.error().map(|(step, e)| FlowError {
        step: step.name(),
        class: e.class(),
        message: e.message.clone(),
    });
    // A journey that stopped early without an error step still failed.
    let error = error.or_else(|| {
        (!report.completed(expected)).then(|| FlowError {
            step: report
                .steps
                .last()
                .map_or(expected[0].name(), |s| s.name.name()),
            class: "incomplete".into(),
            message: format!("{} of {} steps ran", report.steps.len(), expected.len()),
        })
    });
    let txs = report
        .txs
        .iter()
        .map(|t| TxSample {
            kind: tx_kind(&t.kind),
            gas_used: t.gas_used,
            fee_wei: t.fee_wei,
            confirm: t.confirm,
            block: t.block,
        })
        .collect();
    FlowResult {
        steps,
        error,
        txs,
        counts: BTreeMap::from([(SUBGRAPH_QUERIES, report.subgraph_queries)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_mix_draws_are_deterministic_and_follow_the_mix() {
        let mix = engine::config::DataMix::default();
        let mut counts = [0u32; 3];
        for user in 0..10_000 {
            let u = uniform(7, user);
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, uniform(7, user));
            match mix.pick(u) {
                "small" => counts[0] += 1,
                "medium" => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
        // 60/30/10 within a few percent.
        assert!((5700..6300).contains(&counts[0]), "{counts:?}");
        assert!((2700..3300).contains(&counts[1]), "{counts:?}");
        assert!((800..1200).contains(&counts[2]), "{counts:?}");
    }

    /// The documented example profile names real steps, components and
    /// metrics of the journey.
    #[test]
    fn the_example_profile_fits_the_vana_journey() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/example.toml");
        let none = engine::ConfigPatch::default();
        let cfg = LoadTestConfig::from_profile(path, &none, &none).unwrap();
        cfg.validate_for(&journey_steps(&StepTimeouts::default()))
            .unwrap();
    }

    /// Every step the client declares, with its component: the baselines of
    /// the burst preset name two of them, so the journey must have both.
    #[test]
    fn the_burst_baselines_fit_the_vana_journey() {
        let cfg = engine::Preset::Burst.config();
        assert_eq!(cfg.thresholds.len(), 4);
        cfg.validate_for(&journey_steps(&StepTimeouts::default()))
            .unwrap();
    }

    #[test]
    fn unknown_tx_kinds_are_grouped() {
        assert_eq!(tx_kind("requestReward"), "requestReward");
        assert_eq!(tx_kind("somethingNew"), "other");
    }
}
