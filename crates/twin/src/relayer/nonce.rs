//! The nonce allocator of one relayer key: the one place that hands out that
//! key's nonces, so that no nonce is ever left unused (the earlier load test's
//! failure: a nonce reserved for a submission that failed before broadcast was
//! never used, and every later transaction of the key stalled behind the gap).
//!
//! The rules, enforced by types and `&mut self` (one owner, one writer):
//! - [`NonceAllocator::reserve`] hands out the next nonce as a [`Reserved`];
//!   only one reservation may be outstanding, so nonces are broadcast in order.
//! - A reservation is resolved exactly once: [`NonceAllocator::consume`] when
//!   its transaction was broadcast (mined, reverted or replaced, it uses the
//!   nonce), or [`NonceAllocator::cancel`] when the submission failed first.
//! - A cancelled nonce is filled by a 0-value self-transfer
//!   ([`NonceAllocator::filled`]). Only if the node also rejects the filler,
//!   so that nothing at that nonce can be in its pool, is the nonce handed out
//!   again ([`NonceAllocator::release`]).

/// A reserved nonce that must be consumed or cancelled.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reserved nonce must be consumed or cancelled, or the key stalls"]
pub struct Reserved(u64);

impl Reserved {
    pub fn nonce(&self) -> u64 {
        self.0
    }
}

/// A cancelled nonce that must be filled (or, if the filler was rejected, released).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a cancelled nonce must be filled with a self-transfer"]
pub struct Cancelled(u64);

impl Cancelled {
    pub fn nonce(&self) -> u64 {
        self.0
    }
}

/// Misuse of the allocator (a bug in the caller, reported rather than hidden).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("nonce {0} is still reserved; resolve it before reserving another")]
    Outstanding(u64),
}

/// Counters of what happened to the nonces handed out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NonceStats {
    /// Used by an operation's transaction.
    pub consumed: u64,
    /// Used by a 0-value self-transfer after a failed submission.
    pub filled: u64,
    /// Handed out again because nothing was accepted at that nonce.
    pub released: u64,
}

/// The nonce allocator of one key.
#[derive(Debug)]
pub struct NonceAllocator {
    next: u64,
    outstanding: Option<u64>,
    stats: NonceStats,
}

impl NonceAllocator {
    /// Starts at the key's pending transaction count.
    pub fn new(next: u64) -> Self {
        NonceAllocator {
            next,
            outstanding: None,
            stats: NonceStats::default(),
        }
    }

    /// The nonce the next reservation gets.
    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn stats(&self) -> NonceStats {
        self.stats
    }

    /// Reserves the next nonce.
    pub fn reserve(&mut self) -> Result<Reserved, NonceError> {
        if let Some(n) = self.outstanding {
            return Err(NonceError::Outstanding(n));
        }
        let n = self.next;
        self.next += 1;
        self.outstanding = Some(n);
        Ok(Reserved(n))
    }

    /// The reservation's transaction was broadcast.
    pub fn consume(&mut self, r: Reserved) -> u64 {
        self.resolve(r.0);
        self.stats.consumed += 1;
        r.0
    }

    /// The submission failed before broadcast: the nonce must now be filled.
    pub fn cancel(&mut self, r: Reserved) -> Cancelled {
        Cancelled(r.0)
    }

    /// The self-transfer filling a cancelled nonce was broadcast.
    pub fn filled(&mut self, c: Cancelled) -> u64 {
        self.resolve(c.0);
        self.stats.filled += 1;
        c.0
    }

    /// The node rejected the filler too, so no transaction holds the nonce:
    /// hand it out again.
    pub fn release(&mut self, c: Cancelled) {
        self.resolve(c.0);
        self.stats.released += 1;
        self.next = c.0;
    }

    /// Takes the node's count of the key's transactions when it is ahead of
    /// ours (something else used the key); never moves backwards.
    pub fn resync(&mut self, chain_next: u64) -> bool {
        if self.outstanding.is_none() && chain_next > self.next {
            self.next = chain_next;
            true
        } else {
            false
        }
    }

    fn resolve(&mut self, n: u64) {
        debug_assert_eq!(self.outstanding, Some(n), "resolving a nonce not reserved");
        self.outstanding = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_in_order() {
        let mut a = NonceAllocator::new(5);
        let r = a.reserve().unwrap();
        assert_eq!(r.nonce(), 5);
        assert_eq!(a.consume(r), 5);
        let r = a.reserve().unwrap();
        assert_eq!(a.consume(r), 6);
        assert_eq!(a.next(), 7);
        assert_eq!(a.stats().consumed, 2);
    }

    #[test]
    fn one_reservation_at_a_time() {
        let mut a = NonceAllocator::new(0);
        let r = a.reserve().unwrap();
        assert_eq!(a.reserve().unwrap_err(), NonceError::Outstanding(0));
        let _ = a.consume(r);
        assert!(a.reserve().is_ok());
    }

    #[test]
    fn a_cancelled_nonce_is_filled_not_skipped() {
        let mut a = NonceAllocator::new(0);
        let r = a.reserve().unwrap();
        let c = a.cancel(r);
        // Still outstanding until filled: nothing can overtake the gap.
        assert!(a.reserve().is_err());
        assert_eq!(a.filled(c), 0);
        let r = a.reserve().unwrap();
        assert_eq!(r.nonce(), 1);
        let _ = a.consume(r);
        assert_eq!(
            a.stats(),
            NonceStats {
                consumed: 1,
                filled: 1,
                released: 0
            }
        );
    }

    #[test]
    fn a_rejected_filler_releases_the_nonce() {
        let mut a = NonceAllocator::new(3);
        let r = a.reserve().unwrap();
        let c = a.cancel(r);
        a.release(c);
        assert_eq!(a.next(), 3);
        let r = a.reserve().unwrap();
        assert_eq!(r.nonce(), 3);
        let _ = a.consume(r);
        assert_eq!(a.stats().released, 1);
    }

    #[test]
    fn resync_only_moves_forward_and_not_mid_reservation() {
        let mut a = NonceAllocator::new(3);
        assert!(!a.resync(2));
        assert_eq!(a.next(), 3);
        let r = a.reserve().unwrap();
        assert!(!a.resync(10));
        let _ = a.consume(r);
        assert!(a.resync(10));
        assert_eq!(a.next(), 10);
    }

    /// Any interleaving of outcomes leaves the handed-out nonces contiguous.
    #[test]
    fn no_gap_under_random_outcomes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut a = NonceAllocator::new(0);
        let mut used = Vec::new();
        for _ in 0..1000 {
            let r = a.reserve().unwrap();
            match rng.gen_range(0..3) {
                0 => used.push(a.consume(r)),
                1 => {
                    let c = a.cancel(r);
                    used.push(a.filled(c));
                }
                _ => {
                    let c = a.cancel(r);
                    a.release(c);
                }
            }
        }
        let expected: Vec<u64> = (0..used.len() as u64).collect();
        assert_eq!(used, expected);
        assert_eq!(a.next(), used.len() as u64);
    }
}
