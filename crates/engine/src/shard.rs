//! Shards: one run split over n load-generator processes.
//!
//! Shard `i/n` (1-based) takes the users whose schedule index `k` satisfies
//! `k mod n = i − 1`. This is k6's execution-segment striping for n equal
//! segments (the sequence `0, 1/n, …, 1`): every shard computes the *whole*
//! schedule (the same config and seed give the same offsets) and keeps its
//! stripe, so
//! - the union of the n stripes is the single-process schedule, user by user,
//!   with the same intended starts;
//! - every prefix of the schedule is split as evenly as it can be: by any
//!   time t, each shard has `⌊m/n⌋` or `⌈m/n⌉` of the m arrivals due, so each
//!   shard offers 1/n of the rate curve all along (a contiguous block of
//!   users per shard would instead give one shard the ramp-up and another the
//!   ramp-down);
//! - a user keeps its global index, so everything derived from it (its
//!   wallet, its data) is what the single-process run gives the same user, and
//!   the shards' wallet sets are disjoint.
//!
//! The concurrency cap is split the same way: shard i gets `⌊C/n⌋`, plus one
//! for the first `C mod n` shards; the slices sum to C. Split caps behave
//! like the single cap only while the cap does not bind (a full shard cannot
//! lend a slot to an idle one), which the even striping makes the common case.
//!
//! Kubernetes' Indexed Jobs number their pods from 0 (`JOB_COMPLETION_INDEX`
//! = 0 … n−1, `JOB_COMPLETIONS` = n): [`Shard::from_job_index`] adds one.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{E2e, RunStatus, Verdict};

/// A shard spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard `{0}`: expected i/n with 1 <= i <= n, e.g. 2/3")]
    Syntax(String),
    #[error("shard {index}/{count}: i must be between 1 and n")]
    OutOfRange { index: u32, count: u32 },
    #[error("JOB_COMPLETION_INDEX `{0}` is not a number from 0 to JOB_COMPLETIONS - 1")]
    JobIndex(String),
    #[error("JOB_COMPLETIONS `{0}` is not a positive number")]
    JobCompletions(String),
    #[error(
        "{count} shards for {what} {have}: every shard needs at least one (use at most {have} shards)"
    )]
    TooMany {
        count: u32,
        what: &'static str,
        have: u64,
    },
}

/// Shard `index` of `count` (1-based: `1/3`, `2/3`, `3/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard of an Indexed Job's pod: `JOB_COMPLETION_INDEX` is 0-based.
    pub fn from_job_index(index0: &str, completions: &str) -> Result<Shard, ShardError> {
        let count: u32 = completions
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ShardError::JobCompletions(completions.to_string()))?;
        let index0: u32 = index0
            .trim()
            .parse()
            .ok()
            .filter(|i| *i < count)
            .ok_or_else(|| ShardError::JobIndex(index0.to_string()))?;
        Shard::new(index0 + 1, count)
    }

    /// Whether schedule index `user` belongs to this shard.
    pub fn contains(&self, user: u64) -> bool {
        user % self.count as u64 == self.stripe()
    }

    /// This shard's users among `total`, ascending.
    pub fn users(&self, total: u64) -> impl Iterator<Item = u64> + use<> {
        (self.stripe()..total).step_by(self.count as usize)
    }

    /// How many of the first `m` schedule indices are this shard's.
    pub fn count_below(&self, m: u64) -> u64 {
        m.saturating_sub(self.stripe()).div_ceil(self.count as u64)
    }

    /// This shard's share of the concurrency cap `total` (the shares sum to it).
    pub fn cap(&self, total: u64) -> u64 {
        let n = self.count as u64;
        total / n + u64::from(self.stripe() < total % n)
    }

    /// Refuses a split that would leave a shard without users or without a slot.
    pub fn check(&self, total_users: u64, cap: u64) -> Result<(), ShardError> {
        for (what, have) in [("users", total_users), ("a concurrency cap of", cap)] {
            if (self.count as u64) > have {
                return Err(ShardError::TooMany {
                    count: self.count,
                    what,
                    have,
                });
            }
        }
        Ok(())
    }

    fn stripe(&self) -> u64 {
        (self.index - 1) as u64
    }

    /// Every shard of this run, 1 to n.
    pub fn all(count: u32) -> impl Iterator<Item = Shard> {
        (1..=count).map(move |index| Shard { index, count })
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| ShardError::Syntax(s.to_string()))?;
        let parse = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| ShardError::Syntax(s.to_string()))
        };
        Shard::new(parse(i)?, parse(n)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `run.json` of a shard: which slice of the run it took.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct ShardInfo {
    /// 1-based: shard `index` of `count`.
    pub index: u32,
    pub count: u32,
    /// This shard's users (the schedule indices `k` with `k mod count = index − 1`).
    pub users: u64,
    /// This shard's slice of the concurrency cap.
    pub max_concurrent_users: u64,
    /// The whole run's cap (the slices of all shards sum to it).
    pub total_max_concurrent_users: u64,
}

/// `run.json` of a merged run: the shards it was made from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct MergeInfo {
    /// Shards the run was split into.
    pub count: u32,
    /// Indices (1-based) of the shards merged.
    pub merged: Vec<u32>,
    /// Indices of the shards missing from the merge (`--allow-partial`).
    pub missing: Vec<u32>,
}

/// `details.json` of a merged run: one shard as it ran.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct ShardRow {
    pub index: u32,
    pub count: u32,
    /// The shard's results directory, as given to `merge`.
    pub dir: String,
    pub status: RunStatus,
    pub planned: u64,
    pub succeeded: u64,
    /// Failed, dropped and cancelled users.
    pub not_succeeded: u64,
    /// How late the shard's schedule started after `--start-at` (0 when on time;
    /// `None` without `--start-at`). Every user it made late is in its schedule lag.
    pub start_lag_ms: Option<f64>,
    /// The shard's own schedule lag (dispatch − intended start) over its arrivals.
    pub schedule_lag_ms: E2e,
    /// The shard's own verdict, for reference only: the merged verdict is
    /// judged on the merged data, never by a vote of the shards.
    pub verdict: Verdict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings_and_refuses_nonsense_by_name() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert_eq!(
            Shard::from_job_index("0", "3").unwrap(),
            Shard { index: 1, count: 3 },
            "JOB_COMPLETION_INDEX is 0-based"
        );
        assert_eq!(Shard::from_job_index("2", "3").unwrap().to_string(), "3/3");
        for bad in ["3", "0/3", "4/3", "a/3", "1/0", "1/-2"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("shard"), "{bad}: {e}");
        }
        assert!(matches!(
            Shard::from_job_index("3", "3"),
            Err(ShardError::JobIndex(_))
        ));
        assert!(matches!(
            Shard::from_job_index("0", "0"),
            Err(ShardError::JobCompletions(_))
        ));
    }

    #[test]
    fn caps_sum_to_the_whole_and_small_runs_are_refused() {
        for n in 1..=9u32 {
            for cap in [n as u64, 10, 11, 50, 1000] {
                let sum: u64 = Shard::all(n).map(|s| s.cap(cap)).sum();
                assert_eq!(sum, cap, "{n} shards of cap {cap}");
                assert!(Shard::all(n).all(|s| s.cap(cap) >= 1));
            }
        }
        let s = Shard::new(1, 4).unwrap();
        assert!(s.check(4, 4).is_ok());
        let e = s.check(3, 10).unwrap_err().to_string();
        assert!(e.contains("4 shards for users 3"), "{e}");
        let e = s.check(10, 2).unwrap_err().to_string();
        assert!(e.contains("concurrency cap of 2"), "{e}");
    }

    #[test]
    fn count_below_matches_the_stripe() {
        for n in 1..=7u32 {
            for shard in Shard::all(n) {
                for m in 0..40u64 {
                    let direct = (0..m).filter(|u| shard.contains(*u)).count() as u64;
                    assert_eq!(shard.count_below(m), direct, "{shard} below {m}");
                    assert_eq!(shard.users(m).count() as u64, direct);
                }
            }
        }
    }
}
