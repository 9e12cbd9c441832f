//! Criterion benchmarks of the Vana encryption scheme (`protocol::crypto`).
//!
//! Run: `cargo bench -p vana-load-protocol --bench crypto`. The S2K of every
//! OpenPGP encrypt/decrypt hashes 16 MiB with SHA-256, so `sha256_16mib` is
//! the yardstick those are compared against (goal: within 1.5×).
//!
//! The `cpu/*` group measures the same comparison in *thread CPU time*
//! (`/proc/thread-self/schedstat`), so the ratio holds on a busy shared
//! machine where wall-clock medians are disturbed by other processes.

use std::hint::black_box;

use alloy::{
    primitives::U256,
    signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
    sol,
    sol_types::eip712_domain,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pgp::{crypto::hash::HashAlgorithm, types::StringToKey};
use sha2::{Digest, Sha256};
use vana_load_protocol::crypto::{
    ServerKeyring, decrypt_with_password, ecies, encrypt_with_password, server_signer, user_key,
};

sol! {
    /// Same shape as DataPortabilityPermissions' `Permission`.
    struct Permission {
        uint256 nonce;
        uint256 granteeId;
        string grant;
        uint256[] fileIds;
    }
}

fn signer() -> PrivateKeySigner {
    MnemonicBuilder::<English>::default()
        .phrase("test test test test test test test test test test test junk")
        .index(1000)
        .unwrap()
        .build()
        .unwrap()
}

fn bench_user_key(c: &mut Criterion) {
    let s = signer();
    c.bench_function("user_key_derivation", |b| {
        b.iter(|| user_key(black_box(&s)).unwrap())
    });
}

fn bench_sha256(c: &mut Criterion) {
    let data = vec![0x5au8; 16 << 20];
    let mut g = c.benchmark_group("sha256");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha256_16mib", |b| {
        b.iter(|| Sha256::digest(black_box(&data)))
    });
    g.finish();
}

/// The S2K alone (what dominates every OpenPGP encrypt/decrypt), via rPGP.
fn bench_s2k(c: &mut Criterion) {
    let k = user_key(&signer()).unwrap();
    let s2k = StringToKey::IteratedAndSalted {
        hash_alg: HashAlgorithm::Sha256,
        salt: [0x5a; 8],
        count: 224,
    };
    let mut g = c.benchmark_group("sha256");
    g.sample_size(20);
    g.bench_function("s2k_iterated_224", |b| {
        b.iter(|| {
            s2k.derive_key(black_box(k.as_str().as_bytes()), 32)
                .unwrap()
        })
    });
    g.finish();
}

fn bench_openpgp(c: &mut Criterion) {
    let k = user_key(&signer()).unwrap();
    let mut g = c.benchmark_group("openpgp");
    g.sample_size(20);
    for size in [1usize << 10, 10 << 10, 100 << 10] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let label = format!("{}KB", size >> 10);
        g.bench_with_input(BenchmarkId::new("encrypt", &label), &data, |b, d| {
            b.iter(|| encrypt_with_password(black_box(d), k.as_str()).unwrap())
        });
        let ct = encrypt_with_password(&data, k.as_str()).unwrap();
        g.bench_with_input(BenchmarkId::new("decrypt", &label), &ct, |b, ct| {
            b.iter(|| decrypt_with_password(black_box(ct), k.as_str()).unwrap())
        });
    }
    g.finish();
}

fn bench_ecies(c: &mut Criterion) {
    let k = user_key(&signer()).unwrap();
    let recipient = signer();
    let sk = recipient.to_bytes();
    let pk = recipient.public_key();
    let wire = ecies::encrypt(pk.as_slice(), k.as_str().as_bytes()).unwrap();
    c.bench_function("ecies_encrypt_k", |b| {
        b.iter(|| ecies::encrypt(black_box(pk.as_slice()), k.as_str().as_bytes()).unwrap())
    });
    c.bench_function("ecies_decrypt_k", |b| {
        b.iter(|| ecies::decrypt(black_box(sk.as_slice()), black_box(&wire)).unwrap())
    });
}

fn bench_server_key(c: &mut Criterion) {
    let user = signer().address();
    const M: &str = "test test test test test test test test test test test junk";
    let ring = ServerKeyring::new(M).unwrap();
    c.bench_function("server_key/server_signer", |b| {
        b.iter(|| server_signer(black_box(M), black_box(user)).unwrap())
    });
    c.bench_function("server_key/keyring_signer_for", |b| {
        b.iter(|| ring.signer_for(black_box(user)).unwrap())
    });
}

fn bench_eip712(c: &mut Criterion) {
    let s = signer();
    let domain = eip712_domain! {
        name: "VanaDataPortabilityPermissions",
        version: "1",
        chain_id: 14800,
        verifying_contract: alloy::primitives::address!("D54523048AdD05b4d734aFaE7C68324Ebb7373eF"),
    };
    let msg = Permission {
        nonce: U256::from(7),
        granteeId: U256::from(1),
        grant: "http://127.0.0.1:8080/grants/grant-1700000000000.json".into(),
        fileIds: vec![U256::from(42)],
    };
    c.bench_function("eip712_sign_permission", |b| {
        b.iter(|| vana_load_protocol::eip712::sign(&s, black_box(&msg), &domain).unwrap())
    });
}

/// Criterion measurement of the calling thread's on-CPU time in nanoseconds,
/// read from `/proc/thread-self/schedstat` (Linux).
mod cpu_time {
    use criterion::{
        Throughput,
        measurement::{Measurement, ValueFormatter},
    };

    pub struct ThreadCpuTime;

    fn now_ns() -> u64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat")
            .expect("thread CPU time needs Linux /proc/thread-self/schedstat");
        s.split_whitespace().next().unwrap().parse().unwrap()
    }

    impl Measurement for ThreadCpuTime {
        type Intermediate = u64;
        type Value = u64;
        fn start(&self) -> u64 {
            now_ns()
        }
        fn end(&self, start: u64) -> u64 {
            now_ns() - start
        }
        fn add(&self, a: &u64, b: &u64) -> u64 {
            a + b
        }
        fn zero(&self) -> u64 {
            0
        }
        fn to_f64(&self, v: &u64) -> f64 {
            *v as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            &CpuFormatter
        }
    }

    struct CpuFormatter;

    impl ValueFormatter for CpuFormatter {
        fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
            let (div, unit) = if typical >= 1e6 {
                (1e6, "ms cpu")
            } else if typical >= 1e3 {
                (1e3, "µs cpu")
            } else {
                (1.0, "ns cpu")
            };
            values.iter_mut().for_each(|v| *v /= div);
            unit
        }
        fn scale_throughputs(&self, _: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
            let per = match t {
                Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
                Throughput::Elements(n) => *n as f64,
            };
            values
                .iter_mut()
                .for_each(|v| *v = per / (*v / 1e9) / (1u64 << 20) as f64);
            "MiB/s cpu"
        }
        fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
            "ns"
        }
    }
}

/// SHA-256 over 16 MiB vs the OpenPGP operations, in thread CPU time.
fn bench_cpu_ratio(c: &mut Criterion<cpu_time::ThreadCpuTime>) {
    let k = user_key(&signer()).unwrap();
    let data16 = vec![0x5au8; 16 << 20];
    let mut g = c.benchmark_group("cpu");
    g.sample_size(20);
    g.bench_function("sha256_16mib", |b| {
        b.iter(|| Sha256::digest(black_box(&data16)))
    });
    for size in [1usize << 10, 100 << 10] {
        let data = vec![0x33u8; size];
        let label = format!("{}KB", size >> 10);
        g.bench_function(format!("openpgp_encrypt_{label}"), |b| {
            b.iter(|| encrypt_with_password(black_box(&data), k.as_str()).unwrap())
        });
        let ct = encrypt_with_password(&data, k.as_str()).unwrap();
        g.bench_function(format!("openpgp_decrypt_{label}"), |b| {
            b.iter(|| decrypt_with_password(black_box(&ct), k.as_str()).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(cpu_time::ThreadCpuTime);
    targets = bench_cpu_ratio
}

criterion_group!(
    benches,
    bench_user_key,
    bench_sha256,
    bench_s2k,
    bench_openpgp,
    bench_ecies,
    bench_server_key,
    bench_eip712
);
criterion_main!(benches, cpu);
