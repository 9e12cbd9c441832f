//! The users' own heavy CPU work — the `encrypt` step's K and S2K — on a
//! small pool of threads that run at a lower scheduling priority (nice +10)
//! than the rest of the process.
//!
//! Why: against the local twin, the virtual users and the network they test
//! share one host. On the real network a user's encryption runs on the
//! user's device and never competes with the personal server's or the TEE's
//! decryption; on one host it does, and past the knee the encryptions of new
//! arrivals took CPU from the journeys already in flight, so completions
//! fell instead of holding. At a lower priority the network's work (and
//! anvil's) runs first and the users' encryptions use what is left. A wait
//! for the CPU is still counted: it lands in the `encrypt` step, and latency
//! counts from each user's intended start. When the host has CPU to spare,
//! the priority changes nothing.
//!
//! rayon provides the pool; the only code here is the start hook that
//! lowers each worker's priority (Linux `setpriority` on the thread id; a
//! host that refuses it keeps the normal priority, and the pool still
//! works).

use std::sync::OnceLock;

/// The niceness of the pool's threads (0 is the default, 19 the lowest).
pub const NICE: i32 = 10;

/// Why a job on the pool gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("the users' CPU pool could not start: {0}")]
    Start(String),
    #[error("a job on the users' CPU pool panicked")]
    Panicked,
}

fn pool() -> Result<&'static rayon::ThreadPool, CpuError> {
    static POOL: OnceLock<Result<rayon::ThreadPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("user-cpu-{i}"))
            .start_handler(|_| lower_priority())
            // Without a handler rayon aborts the process on a panicking job;
            // with it the job's result channel is dropped and `run` says so.
            .panic_handler(|_| {})
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| CpuError::Start(e.clone()))
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
    };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a users' CPU thread; it keeps the normal one"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `job` on the low-priority pool and waits for its result without
/// blocking the async runtime.
pub async fn run<T, F>(job: F) -> Result<T, CpuError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool()?.spawn(move || {
        // A panic drops `tx`, which the receiver sees as an error.
        let _ = tx.send(job());
    });
    rx.await.map_err(|_| CpuError::Panicked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_the_pool_and_returns_its_value() {
        let (value, thread) = run(|| (6 * 7, std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert!(thread.is_some_and(|n| n.starts_with("user-cpu-")));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_pool_runs_below_the_normal_priority() {
        let nice =
            run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) })
                .await
                .unwrap();
        // The caller's own thread is untouched (a test run that is itself
        // niced past NICE leaves nothing to lower).
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        if own < NICE {
            assert_eq!(nice, NICE);
        } else {
            assert_eq!(nice, own);
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_hang() {
        let r = run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(r, Err(CpuError::Panicked)), "{r:?}");
    }
}
