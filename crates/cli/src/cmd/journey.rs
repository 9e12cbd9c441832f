//! `vana-load journey`: one user journey with a fresh wallet, each step's
//! duration and outcome printed (or the report as JSON with `--json`).
//! Exit code 0 when all eleven steps succeed, 1 when a step fails, 2 on a
//! setup error (bad target, missing settings, twin that cannot start).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use client::context::{Context, RunOptions};
use client::journey::{self, JourneyReport, Mode};

use super::target_arg::{ResolvedTarget, TargetArgs};
use super::values::{Size, TxMode};

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the report as JSON (address, file_url, file_id, permission_id,
    /// operation_id, proof_index, reward, steps[{name, ok, ms, error?}]).
    #[arg(long)]
    pub json: bool,
    /// relayer: the user signs, the relayer pays; direct: the user sends and pays.
    #[arg(long, value_enum, default_value_t = TxMode::Relayer)]
    pub mode: TxMode,
    /// Synthetic data size: small (1 KB), medium (10 KB) or large (100 KB).
    #[arg(long, value_enum, default_value_t = Size::Small)]
    pub size: Size,
    /// User index (HD index offset + N); default: 0 on a fresh local twin, a
    /// random unused-looking index elsewhere.
    #[arg(long, value_name = "N")]
    pub user: Option<u64>,
    /// Seed of the synthetic data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Override a step's deadline, e.g. `--timeout index=30` (seconds; repeatable).
    #[arg(long = "timeout", value_name = "STEP=SECS")]
    pub timeouts: Vec<String>,
    /// Write the JSON report here as well.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Bad flags fail before a twin is started.
    parse_timeouts(&args.timeouts)?;
    let resolved = args.target.resolve().await?;
    let result = run_with(&args, &resolved).await;
    resolved.stop().await;
    result
}

async fn run_with(args: &Args, resolved: &ResolvedTarget) -> anyhow::Result<ExitCode> {
    let mut target = resolved.target.clone();
    for (step, limit) in parse_timeouts(&args.timeouts)? {
        target.timeouts.set(step, limit);
    }
    let user = args.user.unwrap_or_else(|| {
        if resolved.is_twin() {
            0
        } else {
            fresh_user_index()
        }
    });
    let mode = Mode::from(args.mode);
    let opts = RunOptions {
        run_seed: args.seed,
        test_run_id: format!("journey-{}", now_nanos() / 1_000_000),
        data_size: args.size.into(),
        relayer: mode == Mode::Relayer,
    };
    let ctx = Context::new(target, opts)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("setting up the journey")?;
    if !args.json {
        eprintln!(
            "journey on {} ({} mode), user {user}",
            ctx.target.name,
            mode_name(mode)
        );
    }
    let report = journey::run(&ctx, user, mode).await;
    let json = serde_json::to_string_pretty(&report.to_json())?;
    if let Some(path) = &args.out {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_human(&report);
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `STEP=SECS` pairs of `--timeout`.
fn parse_timeouts(
    raw: &[String],
) -> anyhow::Result<Vec<(client::steps::Step, std::time::Duration)>> {
    let mut out = Vec::new();
    for t in raw {
        let (step, secs) = t
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--timeout {t:?}: expected STEP=SECS, e.g. index=30"))?;
        let step: client::steps::Step = step
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--timeout: {e}"))?;
        // `try_from`: a number too large for a Duration is refused, not a panic.
        let limit = secs
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s > 0.0)
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("--timeout {t:?}: {secs:?} is not a positive number of seconds")
            })?;
        out.push((step, limit));
    }
    Ok(out)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A user index unlikely to have been used by an earlier journey on a shared network.
fn fresh_user_index() -> u64 {
    (now_nanos() % 1_000_000_000) as u64
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Relayer => "relayer",
        Mode::Direct => "direct",
    }
}

fn print_human(r: &JourneyReport) {
    println!("address      {}", r.address);
    for s in &r.steps {
        let outcome = match &s.error {
            None => "ok".to_string(),
            Some(e) => format!("FAILED {}: {}", e.class(), e.message),
        };
        println!(
            "  {:<14} {:>10.1} ms  {outcome}",
            s.name.name(),
            s.duration.as_secs_f64() * 1000.0
        );
    }
    let shown = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("file_url     {}", shown(r.file_url.clone()));
    println!("file_id      {}", shown(r.file_id.map(|v| v.to_string())));
    println!(
        "permission   {}",
        shown(r.permission_id.map(|v| v.to_string()))
    );
    println!("operation    {}", shown(r.operation_id.clone()));
    println!(
        "proof_index  {}",
        shown(r.proof_index.map(|v| v.to_string()))
    );
    println!("reward       {}", shown(r.reward.map(|v| v.to_string())));
    for t in &r.txs {
        println!(
            "  tx {:<38} gas {:>8}  fee {:>20} wei  confirm {:>7.1} ms  block {}",
            t.kind,
            t.gas_used,
            t.fee_wei,
            t.confirm.as_secs_f64() * 1000.0,
            t.block
        );
    }
    println!(
        "{} in {:.2} s",
        if r.ok() {
            "journey ok"
        } else {
            "journey FAILED"
        },
        r.total().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_a_duration_is_refused() {
        let e = parse_timeouts(&["proof=1e300".to_string()]).unwrap_err();
        assert!(e.to_string().contains("not a positive number"), "{e}");
        assert_eq!(parse_timeouts(&["proof=2.5".to_string()]).unwrap().len(), 1);
    }
}
