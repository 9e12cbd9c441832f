//! `vana-load merge DIR... --out DIR`: one results directory, report and
//! verdict from the shards of a run (`vana-load run --shard i/n`). The work is
//! the engine's ([`engine::merge`]); this command parses the flags, can wait
//! for the shards to finish (`--wait`, for a merge Job started beside them),
//! and prints the merged summary.
//!
//! Exit codes: 0 when the merged verdict passes, 1 when it fails or is
//! inconclusive, 2 when the shards cannot be merged (named in the error).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use engine::merge::{MergeOptions, merge};
use engine::schema::{RunInfo, RunStatus};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shards' results directories (one per shard).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged results.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Merge the shards present even if some are missing or unfinished; the
    /// verdict then fails, naming them.
    #[arg(long)]
    pub allow_partial: bool,
    /// Wait up to SECS for every DIR to hold a finished shard (run.json no
    /// longer `running`) before merging.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(secs) = args.wait {
        wait_for_shards(&args.dirs, Duration::from_secs(secs)).await;
    }
    let opts = MergeOptions {
        allow_partial: args.allow_partial,
    };
    let (dirs, out) = (args.dirs.clone(), args.out.clone());
    let merged = tokio::task::spawn_blocking(move || merge(&dirs, &out, &opts)).await?;
    match merged {
        Ok(outcome) => {
            print!("{}", outcome.text_summary(super::color_stdout()));
            Ok(ExitCode::from(outcome.exit_code()))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

fn finished(dir: &Path) -> bool {
    std::fs::read(dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<RunInfo>(&b).ok())
        .is_some_and(|r| r.status != RunStatus::Running)
}

/// Polls until every directory holds a finished run, or `limit` passes (then
/// the merge says which shard is missing or unfinished).
async fn wait_for_shards(dirs: &[PathBuf], limit: Duration) {
    let start = Instant::now();
    let mut told = false;
    loop {
        let waiting: Vec<&PathBuf> = dirs.iter().filter(|d| !finished(d)).collect();
        if waiting.is_empty() {
            return;
        }
        if start.elapsed() >= limit {
            eprintln!(
                "gave up waiting after {} s for: {}",
                limit.as_secs(),
                waiting
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return;
        }
        if !told {
            eprintln!("waiting for {} shard(s) to finish…", waiting.len());
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(5).min(limit)).await;
    }
}
