//! `vana-load wallets prepare --count N`: derive the user wallets and fund
//! those below the threshold through the batch funder, with progress.
//! Idempotent and resumable: a second run funds only what is still missing.

use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::utils::{format_ether, parse_ether};
use client::target::Purpose;
use client::wallets::{FundProgress, UserWallets, fund};
use indicatif::{ProgressBar, ProgressStyle};

use super::target_arg::TargetArgs;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Derive N user wallets and top up those below the threshold (batched, idempotent).
    Prepare(PrepareArgs),
}

#[derive(clap::Args, Debug)]
pub struct PrepareArgs {
    /// How many user wallets (users 0..N, HD indices offset..offset+N).
    #[arg(long, value_name = "N")]
    pub count: u32,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Balance each funded wallet is topped up to, in VANA (walletFundingAmount; default 0.1).
    #[arg(long, value_name = "VANA")]
    pub amount: Option<String>,
    /// Wallets at or above this balance are skipped (default: half the amount).
    #[arg(long, value_name = "VANA")]
    pub threshold: Option<String>,
    /// Wallets per BatchFunder transaction.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Prepare(args) => prepare(args).await,
    }
}

async fn prepare(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    if args.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let resolved = args.target.resolve().await?;
    let result = prepare_on(&args, &resolved.target, None).await;
    resolved.stop().await;
    result
}

/// Funds users `0..count` of `target` to `amount` VANA (those below half of
/// it), as `wallets prepare` does; `vana-load run` calls it before its clock
/// starts. With a shard, only that shard's users among `0..count` are funded.
///
/// Shards fund at the same time from the one funder key, so one shard's
/// transaction can take a nonce another counted on: the funding is then
/// retried (it is idempotent, so a retry funds only what is still missing).
pub async fn fund_users(
    target: &client::target::Target,
    count: u32,
    amount: &str,
    shard: Option<engine::Shard>,
) -> anyhow::Result<()> {
    let args = PrepareArgs {
        count,
        target: TargetArgs::default(),
        amount: Some(amount.to_owned()),
        threshold: None,
        batch_size: None,
    };
    let Some(shard) = shard else {
        return prepare_on(&args, target, None).await.map(|_| ());
    };
    const ATTEMPTS: u32 = 6;
    let mut attempt = 1;
    loop {
        match prepare_on(&args, target, Some(shard)).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                // Shards back off by different amounts so they stop colliding.
                let wait = Duration::from_millis(400 * attempt as u64 + 150 * shard.index as u64);
                eprintln!(
                    "shard {shard}: funding attempt {attempt} failed ({e:#}); retrying in {:.1} s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The addresses of `shard`'s users among `0..count`, derived on all cores.
fn shard_addresses(
    wallets: &UserWallets,
    shard: engine::Shard,
    count: u32,
) -> anyhow::Result<Vec<alloy::primitives::Address>> {
    let users: Vec<u32> = shard.users(count as u64).map(|u| u as u32).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = users.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = users
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|u| wallets.user(*u).map(|k| k.address()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(users.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("wallet derivation panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

async fn prepare_on(
    args: &PrepareArgs,
    target: &client::target::Target,
    shard: Option<engine::Shard>,
) -> anyhow::Result<ExitCode> {
    let mut funding = target.funding;
    if let Some(a) = &args.amount {
        funding.amount = parse_ether(a).map_err(|e| anyhow::anyhow!("--amount {a:?}: {e}"))?;
        funding.threshold = funding.amount / alloy::primitives::U256::from(2);
    }
    if let Some(t) = &args.threshold {
        funding.threshold =
            parse_ether(t).map_err(|e| anyhow::anyhow!("--threshold {t:?}: {e}"))?;
    }
    if funding.threshold > funding.amount {
        anyhow::bail!("--threshold must not exceed --amount");
    }
    if let Some(b) = args.batch_size {
        if b == 0 {
            anyhow::bail!("--batch-size must be at least 1");
        }
        funding.batch_size = b;
    }
    target.require(Purpose::FundWallets)?;
    let mnemonic = target.mnemonic.as_ref().expect("checked");
    let funder = target
        .funder_key
        .as_ref()
        .expect("checked")
        .signer(Some(mnemonic), "keys.funder")?;
    let started = std::time::Instant::now();
    let wallets = UserWallets::new(mnemonic, target.user_index_offset)?;
    let (addresses, which) = match shard {
        None => (
            wallets.addresses(args.count)?,
            format!(
                "HD {}..{}",
                target.user_index_offset,
                target.user_index_offset + args.count
            ),
        ),
        Some(s) => (
            shard_addresses(&wallets, s, args.count)?,
            format!(
                "shard {s}: users k < {} with k mod {} = {}",
                args.count,
                s.count,
                s.index - 1
            ),
        ),
    };
    let derived = started.elapsed();
    eprintln!(
        "derived {} wallets ({which}) in {:.2} s; funding to {} VANA those below {} VANA, {} per transaction",
        addresses.len(),
        derived.as_secs_f64(),
        format_ether(funding.amount),
        format_ether(funding.threshold),
        funding.batch_size
    );
    let bar = ProgressBar::new(addresses.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let rpc = target.rpc_urls.first().expect("checked").clone();
    let batch_funder = target.contracts.batch_funder.expect("checked");
    let report = fund(
        &rpc,
        funder,
        batch_funder,
        &addresses,
        funding,
        |p| match p {
            FundProgress::Checked { done, total } => {
                bar.set_message("checked");
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            FundProgress::Funded { done, total } => {
                bar.set_message("funded");
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        },
    )
    .await;
    bar.finish_and_clear();
    let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} wallets ready: {} topped up in {} transactions ({} VANA, {} gas); total {:.2} s (derivation {:.2} s)",
        report.wallets,
        report.topped_up,
        report.transactions,
        format_ether(report.value_sent),
        report.gas_used,
        started.elapsed().as_secs_f64(),
        derived.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
