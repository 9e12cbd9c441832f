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

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::context::{Context, RunOptions};
use client::journey::{self, Mode};
use client::target::{Secret, Target};
use criterion::{Criterion, criterion_group, criterion_main};

fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full `rusage` into the pointer it is given.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `vana-load twin up` in a child process; killed on drop.
struct TwinProcess {
    child: Child,
    dir: PathBuf,
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        // SIGTERM lets the twin stop anvil; then reap it.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_twin() -> (TwinProcess, protocol::manifest::Manifest) {
    let dir = std::env::temp_dir().join(format!("vana-load-cpu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("twin.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(f, "[inference]\ntime_scale = 0.01").unwrap();
    let manifest = dir.join("manifest.json");
    let child = Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(["twin", "up", "--port", "0", "--config"])
        .arg(&config)
        .arg("--manifest")
        .arg(&manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn vana-load twin up");
    let proc = TwinProcess { child, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !manifest.exists() {
        assert!(
            Instant::now() < deadline,
            "the twin did not write its manifest within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = protocol::manifest::Manifest::load(&manifest).unwrap();
    (proc, m)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_twin, manifest) = start_twin();
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
            let start = cpu_time();
            for _ in 0..iters {
                let user = next_user.fetch_add(1, Ordering::Relaxed);
                let r = rt.block_on(journey::run(&ctx, user, Mode::Relayer));
                assert!(r.ok(), "journey {user} failed: {:?}", r.error());
            }
            cpu_time() - start
        })
    });
    g.bench_function("s2k_cpu", |b| {
        b.iter_custom(|iters| {
            let start = cpu_time();
            for _ in 0..iters {
                protocol::crypto::encrypt_with_password(b"x", "0x00").unwrap();
            }
            cpu_time() - start
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
