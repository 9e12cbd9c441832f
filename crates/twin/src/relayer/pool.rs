//! Admission to the key pool: each of the K relayer keys has a window of at
//! most `window` operations in flight (accepted and not yet mined). A request
//! waits for a free slot at most `max_wait`, then is refused ("relayer busy")
//! rather than queued without bound. The slot goes to the key with the fewest
//! operations in flight, and is held until the transaction using it is mined
//! (or the submission fails), so the window also bounds each key's mempool
//! chain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// No slot became free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("relayer busy: all {keys} keys have {window} transactions in flight (waited {waited:?})")]
pub struct Busy {
    pub keys: usize,
    pub window: usize,
    pub waited: Duration,
}

/// The window of every key.
pub struct Pool {
    admission: Arc<Semaphore>,
    in_flight: Mutex<Vec<usize>>,
    window: usize,
    on_change: Box<dyn Fn(usize, usize) + Send + Sync>,
}

/// A held slot of one key; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Pool>,
    key: usize,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Index of the key (0-based within the pool).
    pub fn key(&self) -> usize {
        self.key
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = {
            let mut f = self.pool.lock();
            f[self.key] -= 1;
            f[self.key]
        };
        (self.pool.on_change)(self.key, now);
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("in_flight", &*self.lock())
            .field("window", &self.window)
            .finish()
    }
}

impl Pool {
    /// `keys` keys with `window` slots each; `on_change(key, in_flight)` is
    /// called whenever a key's count changes (for the metrics).
    pub fn new(
        keys: usize,
        window: usize,
        on_change: impl Fn(usize, usize) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Pool {
            admission: Arc::new(Semaphore::new(keys * window)),
            in_flight: Mutex::new(vec![0; keys]),
            window,
            on_change: Box::new(on_change),
        })
    }

    pub fn keys(&self) -> usize {
        self.lock().len()
    }

    /// Operations in flight per key.
    pub fn in_flight(&self) -> Vec<usize> {
        self.lock().clone()
    }

    /// Waits at most `max_wait` for a slot on the least-loaded key.
    pub async fn acquire(self: &Arc<Self>, max_wait: Duration) -> Result<Slot, Busy> {
        let busy = || Busy {
            keys: self.keys(),
            window: self.window,
            waited: max_wait,
        };
        let permit =
            match tokio::time::timeout(max_wait, self.admission.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err(busy()),
            };
        let (key, now) = {
            let mut f = self.lock();
            // The permit guarantees some key is below its window.
            let (key, _) = f
                .iter()
                .enumerate()
                .filter(|(_, n)| **n < self.window)
                .min_by_key(|(_, n)| **n)
                .expect("an admission permit implies a free slot");
            f[key] += 1;
            (key, f[key])
        };
        (self.on_change)(key, now);
        Ok(Slot {
            pool: self.clone(),
            key,
            _permit: permit,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spreads_over_keys_and_bounds_the_window() {
        let pool = Pool::new(3, 2, |_, _| {});
        let mut slots = Vec::new();
        for _ in 0..6 {
            slots.push(pool.acquire(Duration::from_millis(10)).await.unwrap());
        }
        assert_eq!(pool.in_flight(), vec![2, 2, 2]);
        let err = pool.acquire(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(err.keys, 3);
        assert!(err.to_string().starts_with("relayer busy"), "{err}");
        // Freeing a slot of key 1 lets the next request in, on key 1.
        let idx = slots.iter().position(|s| s.key() == 1).unwrap();
        slots.remove(idx);
        let s = pool.acquire(Duration::from_millis(10)).await.unwrap();
        assert_eq!(s.key(), 1);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_next_free_slot() {
        let pool = Pool::new(1, 1, |_, _| {});
        let first = pool.acquire(Duration::from_millis(10)).await.unwrap();
        let p = pool.clone();
        let waiter = tokio::spawn(async move { p.acquire(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(first);
        let second = waiter.await.unwrap().unwrap();
        assert_eq!(second.key(), 0);
        assert_eq!(pool.in_flight(), vec![1]);
    }

    #[tokio::test]
    async fn reports_changes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let pool = Pool::new(2, 1, move |k, n| s2.lock().unwrap().push((k, n)));
        let a = pool.acquire(Duration::from_millis(10)).await.unwrap();
        drop(a);
        assert_eq!(*seen.lock().unwrap(), vec![(0, 1), (0, 0)]);
    }
}
