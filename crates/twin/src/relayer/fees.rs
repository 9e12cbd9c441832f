//! EIP-1559 fees: the current suggestion from `eth_feeHistory`, refreshed once
//! per new block by the block stream, and the bump rule for replacing a
//! transaction that was not mined in time.

use std::sync::Mutex;

/// The two fee fields of an EIP-1559 transaction, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

/// Replacement bump, in per-mille: +12.5 %, above the 10 % nodes require.
pub const BUMP_PERMILLE: u128 = 1125;

impl Fees {
    /// From a fee history: `next_base_fee` is the last entry of
    /// `baseFeePerGas` (the next block's), `rewards` the chosen percentile of
    /// the recent blocks' tips. Tip = median of the rewards, at least
    /// `min_priority`; max fee = 2 × next base fee + tip, so the transaction
    /// stays includable through six consecutive full blocks.
    pub fn from_history(next_base_fee: u128, rewards: &[u128], min_priority: u128) -> Fees {
        let mut r: Vec<u128> = rewards.to_vec();
        r.sort_unstable();
        let median = if r.is_empty() { 0 } else { r[r.len() / 2] };
        let tip = median.max(min_priority);
        Fees {
            max_fee_per_gas: next_base_fee.saturating_mul(2).saturating_add(tip),
            max_priority_fee_per_gas: tip,
        }
    }

    /// Fees for a replacement of a transaction sent with `self`: each field at
    /// least +12.5 % (rounded up) and at least the `current` suggestion,
    /// capped at `cap` (`None` if the cap does not allow a valid bump).
    pub fn bumped(self, current: Fees, cap: u128) -> Option<Fees> {
        let up = |v: u128| v.saturating_mul(BUMP_PERMILLE).div_ceil(1000).max(v + 1);
        let tip = up(self.max_priority_fee_per_gas).max(current.max_priority_fee_per_gas);
        let max_fee = up(self.max_fee_per_gas)
            .max(current.max_fee_per_gas)
            .max(tip);
        if max_fee > cap {
            return None;
        }
        Some(Fees {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
        })
    }
}

/// The latest fee suggestion, shared by every key's sender.
#[derive(Debug)]
pub struct FeeOracle {
    current: Mutex<Fees>,
}

impl FeeOracle {
    pub fn new(initial: Fees) -> Self {
        FeeOracle {
            current: Mutex::new(initial),
        }
    }

    pub fn get(&self) -> Fees {
        *self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, fees: Fees) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fees;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_is_twice_base_plus_median_tip() {
        let f = Fees::from_history(100, &[5, 1, 9], 0);
        assert_eq!(f.max_priority_fee_per_gas, 5);
        assert_eq!(f.max_fee_per_gas, 205);
        let f = Fees::from_history(100, &[], 3);
        assert_eq!(f.max_priority_fee_per_gas, 3);
        assert_eq!(f.max_fee_per_gas, 203);
    }

    #[test]
    fn bump_is_at_least_twelve_and_a_half_percent() {
        let old = Fees {
            max_fee_per_gas: 1000,
            max_priority_fee_per_gas: 8,
        };
        let low = Fees {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
        };
        let b = old.bumped(low, u128::MAX).unwrap();
        assert_eq!(b.max_fee_per_gas, 1125);
        assert_eq!(b.max_priority_fee_per_gas, 9);
        assert!(b.max_fee_per_gas * 1000 >= old.max_fee_per_gas * 1125);
        assert!(b.max_priority_fee_per_gas * 1000 >= old.max_priority_fee_per_gas * 1125);
        // A zero tip still goes up.
        let z = Fees {
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
        };
        let b = z.bumped(z, u128::MAX).unwrap();
        assert_eq!(b.max_priority_fee_per_gas, 1);
    }

    #[test]
    fn bump_follows_a_higher_market_and_respects_the_cap() {
        let old = Fees {
            max_fee_per_gas: 1000,
            max_priority_fee_per_gas: 10,
        };
        let market = Fees {
            max_fee_per_gas: 5000,
            max_priority_fee_per_gas: 50,
        };
        assert_eq!(old.bumped(market, u128::MAX), Some(market));
        assert_eq!(old.bumped(market, 4000), None);
    }
}
