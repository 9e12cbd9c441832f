//! Engine benchmarks (a plain bench binary: `cargo bench -p vana-load-engine --bench engine`).
//!
//! 1. Memory per in-flight journey at 1,000 and 5,000 in flight (target ≤ 100 KB):
//!    a counting global allocator samples live heap bytes when the first journey
//!    starts and when the N-th is in flight; the difference / (N − 1) is the
//!    engine's cost per in-flight journey (task, slot, events, bookkeeping).
//! 2. Schedule accuracy at 500 arrivals/s (target p99 lag ≤ 5 ms): the engine's
//!    own `schedule_lag` histogram (task start − intended start), with short and
//!    long journeys (≈ 25 and ≈ 1,000 in flight).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use vana_load_engine::config::{LoadTestConfig, Preset};
use vana_load_engine::{
    Flow, FlowResult, LiveMode, Progress, RunOptions, StepDef, StepSample, run,
};

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Holds every journey until all N are in flight, sampling the heap at 1 and N.
struct Hold {
    n: u64,
    started: AtomicU64,
    at_first: AtomicI64,
    at_all: AtomicI64,
    all_in: tokio::sync::Notify,
}

impl Flow for Hold {
    fn steps(&self) -> Vec<StepDef> {
        vec![StepDef::new(
            "hold",
            "hold",
            Duration::from_secs(600),
            false,
        )]
    }

    async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
        let k = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        if k == 1 {
            self.at_first
                .store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        if k == self.n {
            self.at_all
                .store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
            self.all_in.notify_waiters();
        } else {
            let wait = self.all_in.notified();
            if self.started.load(Ordering::SeqCst) < self.n {
                wait.await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        FlowResult::ok(vec![StepSample::ok("hold", Duration::from_millis(10))])
    }
}

fn cfg(users: u64, secs: f64, cap: u64) -> LoadTestConfig {
    let mut c = Preset::Smoke.config();
    c.total_users = users;
    c.max_wallets = users;
    c.max_concurrent_users = cap;
    c.ramp_up_minutes = 0.0;
    c.ramp_down_minutes = 0.0;
    c.sustain_minutes = secs / 60.0;
    c.test_duration_minutes = secs / 60.0;
    c.metrics_interval = 5.0;
    c.max_queue_wait_secs = 600.0;
    c.breaker.enabled = false;
    c
}

fn opts(dir: &std::path::Path) -> RunOptions {
    RunOptions {
        out_dir: Some(dir.to_path_buf()),
        live: LiveMode::Off,
        ..Default::default()
    }
}

async fn memory(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let flow = Arc::new(Hold {
        n,
        started: AtomicU64::new(0),
        at_first: AtomicI64::new(0),
        at_all: AtomicI64::new(0),
        all_in: tokio::sync::Notify::new(),
    });
    let out = run(cfg(n, 2.0, n), flow.clone(), opts(dir.path()))
        .await
        .unwrap();
    assert_eq!(out.summary.users.succeeded, n);
    let per = (flow.at_all.load(Ordering::SeqCst) - flow.at_first.load(Ordering::SeqCst)) as f64
        / (n - 1) as f64;
    println!(
        "memory  in_flight={n:>5}  heap_per_in_flight_journey={:.1} KB  (target <= 100 KB)",
        per / 1024.0
    );
}

struct Sleep(Duration);
impl Flow for Sleep {
    fn steps(&self) -> Vec<StepDef> {
        vec![StepDef::new(
            "sleep",
            "sleep",
            Duration::from_secs(600),
            false,
        )]
    }

    async fn run(&self, _u: u64, _p: &Progress) -> FlowResult {
        tokio::time::sleep(self.0).await;
        FlowResult::ok(vec![StepSample::ok("sleep", self.0)])
    }
}

async fn accuracy(rate: f64, secs: f64, journey: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let n = (rate * secs) as u64;
    let out = run(
        cfg(n, secs, 5000),
        Arc::new(Sleep(journey)),
        opts(dir.path()),
    )
    .await
    .unwrap();
    let lag = &out.details.schedule_lag_ms;
    println!(
        "schedule rate={rate}/s arrivals={n} journey={}ms  lag p50={:.3} ms p99={:.3} ms max={:.3} ms  (target p99 <= 5 ms)",
        journey.as_millis(),
        lag.p50.unwrap_or(0.0),
        lag.p99.unwrap_or(0.0),
        lag.max.unwrap_or(0.0)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        memory(1000).await;
        memory(5000).await;
        accuracy(500.0, 20.0, Duration::from_millis(50)).await;
        accuracy(500.0, 20.0, Duration::from_secs(2)).await;
    });
}
