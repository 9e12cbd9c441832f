//! Faults injected on purpose, one component at a time, with journeys run
//! through each (`client` against a twin with a `[faults]` section, faults
//! changed while it runs). For every fault the accounting holds:
//!
//! - every journey ends, by itself, either succeeded or failed at the step
//!   of the faulty component with the error class that fault must produce;
//! - a failed journey has exactly one failed step, its last (nothing is
//!   counted twice);
//! - once the fault is lifted a journey succeeds again, and no account the
//!   twin or the users send from is left with a pending nonce (no gap, no
//!   stuck transaction).
//!
//! Step deadlines are shortened so that faults which end in a timeout end
//! quickly; inference runs at 1 % of its real service time. Loopback only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use client::context::{Context, RunOptions};
use client::journey::{self, JourneyReport, Mode};
use client::steps::Step;
use client::target::{Secret, Target};
use client::wallets::UserWallets;
use protocol::keys::{HdAccount, RELAYER_INDICES};
use twin::faults::{Faults, FaultsConfig};
use twin::{Twin, TwinConfig};

struct Env {
    twin: Twin,
    target: Target,
    relayed: Arc<Context>,
    faults: Faults,
}

impl Env {
    async fn start() -> Env {
        let mut config = TwinConfig::ephemeral();
        config.inference.time_scale = 0.01;
        config.tee.service_time_ms = 10;
        config.faults = Some(FaultsConfig {
            seed: 1,
            ..FaultsConfig::default()
        });
        let mnemonic = Secret::new(config.chain.mnemonic.expose());
        let twin = Twin::start(config).await.expect("the twin starts");
        let mut target = Target::from_manifest(twin.manifest(), mnemonic).unwrap();
        target.poll.infer_initial = Duration::from_millis(50);
        target.poll.infer_max = Duration::from_millis(200);
        for (step, secs) in [
            (Step::Wallet, 4),
            (Step::Upload, 6),
            (Step::Register, 8),
            // Long enough for a busy 2-core machine's indexer to catch up once the
            // chain faults are lifted; an indexer stall still fails in 10 s.
            (Step::Index, 10),
            (Step::Proof, 6),
            (Step::InferRequest, 6),
        ] {
            target.timeouts.set(step, Duration::from_secs(secs));
        }
        let faults = twin.faults().expect("the twin has faults").clone();
        let relayed = context(&target, Mode::Relayer).await;
        Env {
            twin,
            target,
            relayed,
            faults,
        }
    }

    /// Runs `users` at once with the fault `set` applies, then lifts it.
    async fn through(
        &self,
        set: impl FnOnce(&mut FaultsConfig),
        ctx: &Arc<Context>,
        mode: Mode,
        users: std::ops::Range<u64>,
    ) -> Vec<JourneyReport> {
        let mut config = FaultsConfig {
            seed: 1,
            ..FaultsConfig::default()
        };
        set(&mut config);
        self.faults.set(config).unwrap();
        let runs = users.map(|u| journey::run(ctx, u, mode));
        let reports =
            tokio::time::timeout(Duration::from_secs(90), futures::future::join_all(runs))
                .await
                .expect("journeys end by themselves");
        self.faults.set(FaultsConfig::default()).unwrap();
        reports
    }

    /// After a fault: a journey succeeds, and nothing is left pending.
    async fn recovers(&self, user: u64) {
        let r = journey::run(&self.relayed, user, Mode::Relayer).await;
        assert!(r.ok(), "after the fault: {:?}", r.error());
        self.no_pending_nonces(user + 1).await;
    }

    /// The TEE key, every relayer key and users `0..users` have no
    /// transaction pending (latest nonce = pending nonce), within 30 s.
    async fn no_pending_nonces(&self, users: u64) {
        let provider =
            ProviderBuilder::new().connect_http(self.twin.manifest().rpc_url.parse().unwrap());
        let keys = HdAccount::new(self.target.mnemonic.as_ref().unwrap().expose()).unwrap();
        let mut accounts: Vec<Address> = vec![self.twin.deployment().tee_address];
        accounts.extend(
            keys.signers(RELAYER_INDICES)
                .unwrap()
                .iter()
                .map(|s| s.address()),
        );
        let wallets = UserWallets::new(
            self.target.mnemonic.as_ref().unwrap(),
            self.target.user_index_offset,
        )
        .unwrap();
        accounts.extend(wallets.addresses(users as u32).unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        for a in accounts {
            loop {
                let latest = provider.get_transaction_count(a).latest().await.unwrap();
                let pending = provider.get_transaction_count(a).pending().await.unwrap();
                if latest == pending {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{a} still has nonces {latest}..{pending} pending"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn context(target: &Target, mode: Mode) -> Arc<Context> {
    let opts = RunOptions {
        relayer: mode == Mode::Relayer,
        ..Default::default()
    };
    Context::new(target.clone(), opts)
        .await
        .unwrap_or_else(|e| panic!("context: {e}"))
}

/// Every journey failed once, at `step`, with `class`.
fn all_failed(reports: &[JourneyReport], step: Step, class: &str) {
    for r in reports {
        let failed: Vec<_> = r.steps.iter().filter(|s| !s.ok).collect();
        assert_eq!(
            failed.len(),
            1,
            "one failed step per journey: {:?}",
            r.error()
        );
        assert!(
            !r.steps.last().unwrap().ok,
            "the failed step is the last one run"
        );
        let (at, err) = r.error().expect("the journey failed");
        assert_eq!((at, err.class().as_str()), (step, class), "{err}");
    }
}

fn all_ok(reports: &[JourneyReport]) {
    for r in reports {
        assert!(r.ok(), "{:?}", r.error());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_errors_stalls_latency_and_dropped_transactions() {
    let env = Env::start().await;
    let r = env
        .through(
            |f| f.chain.error_rate = 1.0,
            &env.relayed,
            Mode::Relayer,
            0..2,
        )
        .await;
    all_failed(&r, Step::Wallet, "rpc");
    let r = env
        .through(
            |f| {
                f.chain.stall_rate = 1.0;
                f.chain.stall_ms = 10_000;
            },
            &env.relayed,
            Mode::Relayer,
            2..4,
        )
        .await;
    all_failed(&r, Step::Wallet, "timeout");
    let r = env
        .through(
            |f| f.chain.latency_ms = 20,
            &env.relayed,
            Mode::Relayer,
            4..6,
        )
        .await;
    all_ok(&r);

    // Dropped transactions: the users' own (direct mode), already funded.
    let direct = context(&env.target, Mode::Direct).await;
    for u in 6..8 {
        let r = journey::run(&direct, u, Mode::Direct).await;
        assert!(r.ok(), "{:?}", r.error());
    }
    let r = env
        .through(|f| f.chain.drop_tx_rate = 1.0, &direct, Mode::Direct, 6..8)
        .await;
    all_failed(&r, Step::Register, "timeout");
    assert!(env.faults.injected()["chain.drop_tx"] >= 2);
    env.recovers(8).await;
    drop(direct);
    env.twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_gateway_and_relayer_faults() {
    let env = Env::start().await;
    let ctx = env.relayed.clone();
    let r = env
        .through(|f| f.storage.error_rate = 1.0, &ctx, Mode::Relayer, 0..2)
        .await;
    all_failed(&r, Step::Upload, "storage_503");
    let r = env
        .through(
            |f| f.storage.rate_limit_rate = 1.0,
            &ctx,
            Mode::Relayer,
            2..4,
        )
        .await;
    all_failed(&r, Step::Upload, "storage_rate_limited");
    let r = env
        .through(|f| f.gateway.latency_ms = 300, &ctx, Mode::Relayer, 4..6)
        .await;
    all_ok(&r);
    // The TEE cannot download the file: no proof comes, the step times out.
    let r = env
        .through(|f| f.gateway.error_rate = 1.0, &ctx, Mode::Relayer, 6..8)
        .await;
    all_failed(&r, Step::Proof, "timeout");
    let r = env
        .through(|f| f.relayer.error_rate = 1.0, &ctx, Mode::Relayer, 8..10)
        .await;
    all_failed(&r, Step::Register, "relayer_503");
    env.recovers(10).await;
    env.twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_and_personal_server_faults() {
    let env = Env::start().await;
    let ctx = env.relayed.clone();
    let r = env
        .through(|f| f.indexer.stall = true, &ctx, Mode::Relayer, 0..2)
        .await;
    all_failed(&r, Step::Index, "indexer_lag");
    // The identity lookup (in `register`) is the first personal-server call.
    let r = env
        .through(
            |f| f.personal_server.rate_limit_rate = 1.0,
            &ctx,
            Mode::Relayer,
            2..4,
        )
        .await;
    all_failed(&r, Step::Register, "server_rate_limited");
    let r = env
        .through(
            |f| f.personal_server.error_rate = 1.0,
            &ctx,
            Mode::Relayer,
            4..6,
        )
        .await;
    all_failed(&r, Step::Register, "server_503");
    let r = env
        .through(
            |f| f.personal_server.latency_ms = 100,
            &ctx,
            Mode::Relayer,
            6..8,
        )
        .await;
    all_ok(&r);
    env.recovers(8).await;
    env.twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_and_tee_faults() {
    let env = Env::start().await;
    let ctx = env.relayed.clone();
    // The backend's 429 reaches the user as the personal server's rate limit.
    let r = env
        .through(
            |f| f.inference.rate_limit_rate = 1.0,
            &ctx,
            Mode::Relayer,
            0..2,
        )
        .await;
    all_failed(&r, Step::InferRequest, "server_rate_limited");
    let r = env
        .through(|f| f.inference.fail_rate = 1.0, &ctx, Mode::Relayer, 2..4)
        .await;
    all_failed(&r, Step::InferWait, "inference_failed");
    let r = env
        .through(|f| f.tee.error_rate = 1.0, &ctx, Mode::Relayer, 4..6)
        .await;
    all_failed(&r, Step::Proof, "tee_INJECTED_FAULT");
    let r = env
        .through(|f| f.tee.silent_rate = 1.0, &ctx, Mode::Relayer, 6..8)
        .await;
    all_failed(&r, Step::Proof, "timeout");
    let injected = env.faults.injected();
    assert!(injected["tee.silent"] >= 2, "{injected:?}");
    assert!(injected["inference.failed_prediction"] >= 2, "{injected:?}");
    env.recovers(8).await;
    env.twin.stop().await;
}

/// `profiles/faults.toml` is a valid twin config that injects into every
/// component the flow names.
#[test]
fn the_faults_profile_covers_every_component() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/faults.toml");
    let config = TwinConfig::load(&path).expect("profiles/faults.toml loads");
    config.validate().expect("and validates");
    let active = config.faults.expect("it has a [faults] section").active();
    for component in [
        "chain",
        "storage",
        "gateway",
        "relayer",
        "indexer",
        "personal_server",
        "inference",
        "tee",
    ] {
        assert!(
            active.contains(&component),
            "{component} missing: {active:?}"
        );
    }
}

/// `vana-load run` on a twin with faults everywhere (`profiles/faults.toml`,
/// its rates raised so a short run meets each): it finishes by itself,
/// every user is counted once, as succeeded or failed with a class a fault
/// explains, and the report names the failing components.
#[test]
fn a_run_through_the_faults_profile_accounts_for_every_user() {
    const USERS: u64 = 24;
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut twin: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo.join("profiles/faults.toml")).unwrap())
            .unwrap();
    let faults = twin["faults"].as_table_mut().unwrap();
    for (name, section) in faults.iter_mut() {
        let Some(section) = section.as_table_mut() else {
            continue;
        };
        for (key, v) in section.iter_mut() {
            if let (true, Some(rate)) = (key.ends_with("_rate"), v.as_float()) {
                // Chain errors stay rare: every call of a journey crosses the chain.
                let scale = if name == "chain" { 2.0 } else { 4.0 };
                *v = toml::Value::Float((rate * scale).min(1.0));
            }
        }
    }
    twin.insert(
        "inference".into(),
        toml::Value::Table(toml::toml! { time_scale = 0.05 }),
    );
    let twin_path = dir.path().join("twin.toml");
    std::fs::write(&twin_path, toml::to_string(&twin).unwrap()).unwrap();
    let profile = dir.path().join("short.toml");
    std::fs::write(
        &profile,
        format!(
            "preset = \"smoke\"\ntotalUsers = {USERS}\ntestDurationMinutes = 0.5\nrampUpMinutes = 0.1\nsustainMinutes = 0.3\nrampDownMinutes = 0.1\nmetricsInterval = 2\n[stepTimeouts]\nproof = 15\nregister = 30\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_vana-load"))
        .args(["run", "--live", "off", "--profile"])
        .arg(&profile)
        .arg("--twin-config")
        .arg(&twin_path)
        .arg("--out")
        .arg(&out)
        .env("VANA_LOAD_NO_INSTALL", "1")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let users = &summary["users"];
    let (ok, failed) = (
        users["succeeded"].as_u64().unwrap(),
        users["failed"].as_u64().unwrap(),
    );
    assert_eq!(
        ok + failed + users["dropped"].as_u64().unwrap(),
        USERS,
        "{users}"
    );
    // Each user ends once in the journal.
    let journal = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let mut ended = std::collections::BTreeMap::<u64, u32>::new();
    for v in journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if matches!(
            v["event"].as_str(),
            Some("flow_complete" | "flow_failed" | "flow_dropped")
        ) {
            *ended.entry(v["user"].as_u64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(ended.len() as u64, USERS);
    assert!(ended.values().all(|n| *n == 1), "{ended:?}");
    // Every failure has a class some injected fault explains.
    let explained = [
        "rpc",
        "timeout",
        "nonce",
        "storage_503",
        "storage_rate_limited",
        "relayer_503",
        // The relayer's own upstreams under the storage and chain faults.
        "relayer_storage",
        "relayer_rpc",
        "relayer_not_mined",
        "server_503",
        "server_rate_limited",
        "tee_INJECTED_FAULT",
        "server_BLOCKCHAIN_ERROR",
        "server_COMPUTE_ERROR",
        "server_FILE_ACCESS_ERROR",
        "inference_failed",
        "indexer_lag",
    ];
    for (class, _) in summary["errors"].as_object().unwrap() {
        assert!(
            explained.contains(&class.as_str()),
            "unexplained failure class {class}"
        );
    }
    assert!(failed >= 2, "the faults made some journeys fail: {users}");
    // The report names where the failures came from.
    let sentences = summary["bottleneck"]["sentences"].to_string();
    assert!(
        sentences.contains("Errors began at") || sentences.contains("Failed steps by component"),
        "{sentences}"
    );
    assert!(stdout.contains("BOTTLENECK"), "{stdout}");
}
