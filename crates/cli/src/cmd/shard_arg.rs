//! `--shard i/n`, `--run-id` and `--start-at` of `vana-load run`: one shard of
//! a run split over several processes ([`engine::shard`]).
//!
//! Without `--shard`, the environment of a Kubernetes Indexed Job names the
//! shard: `JOB_COMPLETION_INDEX` (0-based, so pod 0 runs shard 1/n) and
//! `JOB_COMPLETIONS` (n). The shards of one run must share `--run-id` (so
//! `merge` knows them for one run) and should share `--start-at` (so their
//! schedules start at the same instant).

use anyhow::Context as _;
use engine::Shard;

#[derive(clap::Args, Debug, Default, Clone)]
pub struct ShardArgs {
    /// Run shard I of N (1-based) of the schedule: the users k with k mod N = I-1,
    /// with their wallets and 1/N of the concurrency cap. Without it, an
    /// Indexed Job's JOB_COMPLETION_INDEX (0-based) and JOB_COMPLETIONS apply when set.
    #[arg(long, value_name = "I/N", env = "VANA_LOAD_SHARD")]
    pub shard: Option<Shard>,
    /// The run's id, shared by all its shards (default: run-<unix seconds>).
    #[arg(long, value_name = "ID", env = "VANA_LOAD_RUN_ID")]
    pub run_id: Option<String>,
    /// Start the schedule at this instant (RFC 3339, e.g. 2026-05-01T12:00:00Z).
    /// A process that starts later dispatches the users already due at once
    /// and charges them the lag.
    #[arg(long, value_name = "RFC3339", env = "VANA_LOAD_START_AT")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ShardArgs {
    /// The shard to run: `--shard`, else an Indexed Job's environment, else none.
    pub fn shard(&self) -> anyhow::Result<Option<Shard>> {
        if let Some(s) = self.shard {
            return Ok(Some(s));
        }
        match (
            std::env::var("JOB_COMPLETION_INDEX"),
            std::env::var("JOB_COMPLETIONS"),
        ) {
            (Ok(i), Ok(n)) => Ok(Some(Shard::from_job_index(&i, &n)?)),
            (Ok(_), Err(_)) => anyhow::bail!(
                "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's \
                 completions (the number of shards), or pass --shard I/N"
            ),
            _ => Ok(None),
        }
    }

    /// The run id: `--run-id` (checked), required for a shard.
    pub fn run_id(&self, shard: Option<Shard>) -> anyhow::Result<String> {
        match (&self.run_id, shard) {
            (Some(id), _) => {
                check_run_id(id).with_context(|| format!("--run-id {id:?}"))?;
                Ok(id.clone())
            }
            (None, Some(s)) => anyhow::bail!(
                "--shard {s} needs --run-id: every shard of a run must name the same run"
            ),
            (None, None) => Ok(format!(
                "run-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            )),
        }
    }
}

/// A run id goes into file names, test ids and Kubernetes labels: letters,
/// digits, `.`, `_` and `-`, at most 63 characters.
pub fn check_run_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > 63 {
        anyhow::bail!("a run id has 1 to 63 characters");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        anyhow::bail!("a run id has letters, digits, '.', '_' and '-' only, not {c:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked_and_a_shard_needs_one() {
        assert!(check_run_id("load-2026.05_01").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(64)] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
        let args = ShardArgs::default();
        let e = args
            .run_id(Some(Shard::new(1, 2).unwrap()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--shard 1/2 needs --run-id"), "{e}");
        assert!(args.run_id(None).unwrap().starts_with("run-"));
    }
}
