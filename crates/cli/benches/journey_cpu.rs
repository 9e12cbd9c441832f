//! Client-side CPU per journey, and the share of it spent in the OpenPGP S2K.
//!
//! The twin runs in a separate process (`vana-load twin up`, inference time
//! scaled down), so its CPU is excluded: criterion's `iter_custom` is given
//! this process's CPU time (`getrusage(RUSAGE_SELF)`, user + system, all
//! threads) over the journeys it asked for, run one after another with
//! distinct users in relayer mode. A second benchmark measures the CPU of
//! one S2K (an OpenPGP password encryption of one byte, which is the S2K plus
//! negligible work); the ratio of the two medians is the S2K share.
//!
//! Run: `cargo bench -p vana-load --bench journey_cpu`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod support;

use client::context::{Context, RunOptions};
use client::journey::{self, Mode};
use client::target::{Secret, Target};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_twin, manifest) = support::start_twin("journey");
    let mut target = Target::from_manifest(
        &manifest,
        Secret::new(client::target::DEFAULT_TEST_MNEMONIC),
    )
    .unwrap();
    target.poll.infer_initial = Duration::from_millis(50);
    target.poll.infer_max = Duration::from_millis(200);
    let ctx: Arc<Context> = rt
        .block_on(Context::new(target, RunOptions::default()))
        .expect("context");
    let next_user = AtomicU64::new(0);

    let mut g = c.benchmark_group("client");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("journey_cpu", |b| {
        b.iter_custom(|iters| {
            let start = support::cpu_time();
            for _ in 0..iters {
                let user = next_user.fetch_add(1, Ordering::Relaxed);
                let r = rt.block_on(journey::run(&ctx, user, Mode::Relayer));
                assert!(r.ok(), "journey {user} failed: {:?}", r.error());
            }
            support::cpu_time() - start
        })
    });
    g.bench_function("s2k_cpu", |b| {
        b.iter_custom(|iters| {
            let start = support::cpu_time();
            for _ in 0..iters {
                protocol::crypto::encrypt_with_password(b"x", "0x00").unwrap();
            }
            support::cpu_time() - start
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
