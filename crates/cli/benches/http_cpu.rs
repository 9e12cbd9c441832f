//! Client-side CPU per pure-HTTP flow (`--flow http`: storage upload of 1 KB,
//! gateway read, subgraph query), for comparison with general HTTP load tools.
//!
//! The twin runs in a separate process (`vana-load twin up`), so its CPU is
//! excluded: criterion's `iter_custom` is given this process's CPU time
//! (`getrusage(RUSAGE_SELF)`, user + system, all threads, tokio's workers
//! included; `RUSAGE_THREAD` would miss the workers) over the flows it asked
//! for. The users' bytes are made before the measurement, as a run makes them
//! before its clock. Two shapes: one flow after another, and 32 in flight.
//!
//! Run: `cargo bench -p vana-load --bench http_cpu`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod support;

use client::component::http::HttpComponent;
use client::data::DataSize;
use client::target::{Secret, Target};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_twin, manifest) = support::start_twin("http");
    let target = Target::from_manifest(
        &manifest,
        Secret::new(client::target::DEFAULT_TEST_MNEMONIC),
    )
    .unwrap();
    let flow = HttpComponent::new(&target, 1, "http-cpu-bench", &BTreeMap::new()).unwrap();
    let next_user = AtomicU64::new(0);
    // Prepares `n` new users (untimed) and returns them.
    let users = |n: u64| {
        let first = next_user.fetch_add(n, Ordering::Relaxed);
        flow.prepare((first..first + n).map(|u| (u, DataSize::Small)));
        first..first + n
    };
    let run_one = |u: u64| {
        let flow = &flow;
        async move {
            let r = flow.run_observed(u, &|_| {}).await;
            assert!(
                r.len() == 3 && r.iter().all(|s| s.ok),
                "flow {u} failed: {r:?}"
            );
        }
    };

    let mut g = c.benchmark_group("client");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("http_flow_cpu", |b| {
        b.iter_custom(|iters| {
            let batch = users(iters);
            let start = support::cpu_time();
            for u in batch {
                rt.block_on(run_one(u));
            }
            support::cpu_time() - start
        })
    });
    g.bench_function("http_flow_cpu_32_in_flight", |b| {
        b.iter_custom(|iters| {
            let batch = users(iters);
            let start = support::cpu_time();
            rt.block_on(
                futures::stream::iter(batch)
                    .map(run_one)
                    .buffer_unordered(32)
                    .collect::<Vec<()>>(),
            );
            support::cpu_time() - start
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
