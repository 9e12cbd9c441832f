//! Journeys of the virtual user (`client`) against a twin started in the test.
//!
//! Every test starts its own twin (ports chosen by the OS, inference time
//! scaled by 0.01) and covers: funding (batched, idempotent, resumable), a
//! full journey in relayer and in direct mode, 20 concurrent journeys with
//! distinct wallets and no nonce error, and three injected failures that
//! must end in their error class (failed inference, indexer lag beyond the
//! index step's deadline, a wallet without gas), and journeys on the chain
//! settings of `profiles/twin-burst.toml`.

use std::sync::Arc;
use std::time::Duration;

use client::context::{Context, RunOptions};
use client::journey::{self, JourneyReport, Mode};
use client::steps::Step;
use client::target::{Secret, Target};
use client::wallets::{UserWallets, fund};
use twin::{Twin, TwinConfig};

async fn start(tweak: impl FnOnce(&mut TwinConfig)) -> (Twin, Target) {
    let mut config = TwinConfig::ephemeral();
    // Inference in tens of milliseconds instead of seconds.
    config.inference.time_scale = 0.01;
    tweak(&mut config);
    let mnemonic = Secret::new(config.chain.mnemonic.expose());
    let twin = Twin::start(config).await.expect("the twin starts");
    let mut target =
        Target::from_manifest(twin.manifest(), mnemonic).expect("target from manifest");
    // Poll operations quickly: the twin's inference is scaled down.
    target.poll.infer_initial = Duration::from_millis(50);
    target.poll.infer_max = Duration::from_millis(200);
    (twin, target)
}

async fn context(target: Target, mode: Mode) -> Arc<Context> {
    let opts = RunOptions {
        relayer: mode == Mode::Relayer,
        ..Default::default()
    };
    Context::new(target, opts)
        .await
        .unwrap_or_else(|e| panic!("context: {e}"))
}

fn assert_all_ok(r: &JourneyReport) {
    let summary: Vec<String> = r
        .steps
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s.name,
                s.error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "ok".into())
            )
        })
        .collect();
    assert!(r.ok(), "journey failed: {}", summary.join(", "));
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.name()).collect();
    assert_eq!(
        names,
        Step::ALL.iter().map(|s| s.name()).collect::<Vec<_>>()
    );
    assert!(
        r.file_url
            .as_deref()
            .is_some_and(|u| u.starts_with("ipfs://"))
    );
    assert!(r.file_id.is_some_and(|id| id >= 1));
    assert!(r.permission_id.is_some_and(|id| id >= 1));
    assert!(r.operation_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert!(
        r.proof_index.is_some_and(|i| i >= 1),
        "proof indices start at 1"
    );
    assert!(
        r.reward.is_some_and(|w| !w.is_zero()),
        "a positive reward was paid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funding_is_batched_idempotent_and_resumable() {
    let (twin, target) = start(|_| {}).await;
    let users =
        UserWallets::new(target.mnemonic.as_ref().unwrap(), target.user_index_offset).unwrap();
    let funder = target
        .funder_key
        .as_ref()
        .unwrap()
        .signer(target.mnemonic.as_ref(), "funder")
        .unwrap();
    let bf = target
        .contracts
        .batch_funder
        .expect("the twin deploys a BatchFunder");
    let mut funding = target.funding;
    funding.batch_size = 40;
    let first = users.addresses(100).unwrap();
    let r1 = fund(
        &target.rpc_urls[0],
        funder.clone(),
        bf,
        &first,
        funding,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((r1.topped_up, r1.transactions), (100, 3));
    assert_eq!(
        r1.value_sent,
        funding.amount * alloy::primitives::U256::from(100)
    );
    // Resume with more wallets: only the 50 new ones are paid.
    let more = users.addresses(150).unwrap();
    let r2 = fund(
        &target.rpc_urls[0],
        funder.clone(),
        bf,
        &more,
        funding,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((r2.topped_up, r2.transactions), (50, 2));
    let r3 = fund(&target.rpc_urls[0], funder, bf, &more, funding, |_| {})
        .await
        .unwrap();
    assert_eq!((r3.topped_up, r3.transactions), (0, 0));
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayer_journey_runs_all_eleven_steps() {
    let (twin, target) = start(|_| {}).await;
    let ctx = context(target, Mode::Relayer).await;
    let r = journey::run(&ctx, 0, Mode::Relayer).await;
    assert_all_ok(&r);
    // The user paid nothing for registration: the relayed transaction is the relayer's.
    let relayed = r
        .txs
        .iter()
        .find(|t| t.kind.contains("relayed"))
        .expect("a relayed transaction");
    // The indexer's head has passed the registration block.
    let meta = ctx.subgraph.meta().await.unwrap();
    assert!(
        meta.block.number >= relayed.block,
        "{} < {}",
        meta.block.number,
        relayed.block
    );
    assert!(!meta.has_indexing_errors);
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_journey_runs_all_eleven_steps() {
    let (twin, target) = start(|_| {}).await;
    let ctx = context(target, Mode::Direct).await;
    let r = journey::run(&ctx, 1, Mode::Direct).await;
    assert_all_ok(&r);
    let kinds: Vec<&str> = r.txs.iter().map(|t| t.kind.as_str()).collect();
    for k in [
        "addFileWithPermissionsAndSchema",
        "addPermission",
        "requestContributionProof",
        "requestReward",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_journeys_with_distinct_wallets() {
    let (twin, target) = start(|_| {}).await;
    let ctx = context(target, Mode::Relayer).await;
    let handles: Vec<_> = (100..120u64)
        .map(|user| {
            let ctx = ctx.clone();
            tokio::spawn(async move { journey::run(&ctx, user, Mode::Relayer).await })
        })
        .collect();
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.await.unwrap());
    }
    for r in &reports {
        assert!(
            !r.steps
                .iter()
                .any(|s| s.error.as_ref().is_some_and(|e| e.class() == "nonce")),
            "nonce error in {:?}",
            r.error()
        );
        assert_all_ok(r);
    }
    let mut addrs: Vec<_> = reports.iter().map(|r| r.address).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 20);
    let mut files: Vec<_> = reports.iter().map(|r| r.file_id.unwrap()).collect();
    files.sort();
    files.dedup();
    assert_eq!(files.len(), 20);
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_inference_ends_in_inference_failed() {
    let (twin, target) = start(|c| c.inference.fail_rate = 1.0).await;
    let ctx = context(target, Mode::Relayer).await;
    let r = journey::run(&ctx, 2, Mode::Relayer).await;
    let (step, err) = r.error().expect("the journey fails");
    assert_eq!(
        (step, err.class().as_str()),
        (Step::InferWait, "inference_failed"),
        "{err}"
    );
    assert!(!r.ok());
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_lag_beyond_the_timeout_ends_in_indexer_lag() {
    let (twin, mut target) = start(|c| c.indexer.lag_ms = 10_000).await;
    target.timeouts.set(Step::Index, Duration::from_secs(1));
    let ctx = context(target, Mode::Relayer).await;
    let r = journey::run(&ctx, 3, Mode::Relayer).await;
    let (step, err) = r.error().expect("the journey fails");
    assert_eq!(
        (step, err.class().as_str()),
        (Step::Index, "indexer_lag"),
        "{err}"
    );
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_without_gas_ends_in_insufficient_funds() {
    let (twin, mut target) = start(|_| {}).await;
    // Fund users with a single wei: enough to pass the wallet step's
    // threshold, never enough to pay for a transaction.
    target.funding.amount = alloy::primitives::U256::from(1);
    target.funding.threshold = alloy::primitives::U256::from(1);
    let ctx = context(target, Mode::Direct).await;
    let r = journey::run(&ctx, 4, Mode::Direct).await;
    let (step, err) = r.error().expect("the journey fails");
    assert_eq!(
        (step, err.class().as_str()),
        (Step::Register, "insufficient_funds"),
        "{err}"
    );
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_ends_in_storage_413() {
    let (twin, target) = start(|c| c.storage.max_upload_bytes = 256).await;
    let ctx = context(target, Mode::Relayer).await;
    let r = journey::run(&ctx, 5, Mode::Relayer).await;
    let (step, err) = r.error().expect("the journey fails");
    assert_eq!(
        (step, err.class().as_str()),
        (Step::Upload, "storage_413"),
        "{err}"
    );
    assert!(!err.is_retryable());
    drop(ctx);
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinata_uploads_round_trip_through_the_gateway() {
    use client::services::{http_client, storage::StorageClient};
    use client::target::StorageKind;
    let (twin, target) = start(|_| {}).await;
    let mut cfg = target.storage.clone();
    cfg.kind = StorageKind::Pinata;
    cfg.jwt = Some(Secret::new(twin::storage::DEFAULT_JWT));
    let storage = StorageClient::new(http_client(), cfg.clone());
    let bytes = b"vana-load pinata round trip".to_vec();
    let url = storage
        .upload("t.bin", bytes.clone(), "application/octet-stream")
        .await
        .unwrap();
    assert!(url.starts_with("ipfs://"), "{url}");
    assert_eq!(storage.fetch(&url).await.unwrap(), bytes);
    // A wrong JWT is refused with the storage class of its status.
    cfg.jwt = Some(Secret::new("not-the-jwt"));
    let bad = StorageClient::new(http_client(), cfg);
    let err = bad
        .upload("t.bin", bytes, "application/octet-stream")
        .await
        .unwrap_err();
    assert_eq!(err.class(), "storage_401", "{err}");
    twin.stop().await;
}

/// The chain of `profiles/twin-burst.toml` (1 s blocks, only the latest state
/// kept, no state root: a fork of a second, idle anvil) carries journeys of
/// both modes end to end, stale-head reads and past-block reads included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_run_on_the_burst_profiles_chain() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/twin-burst.toml");
    let burst = TwinConfig::load(&path).expect("profiles/twin-burst.toml loads");
    assert!(burst.chain.prune_history && !burst.chain.state_root);
    assert_eq!(burst.chain.block_time, Some(1.0));
    let (twin, target) = start(|c| c.chain = burst.chain.clone()).await;
    // One context (one funder) for both modes: direct journeys need no relayer.
    let ctx = context(target, Mode::Relayer).await;
    let handles: Vec<_> = (200..208u64)
        .map(|user| {
            let mode = if user % 4 == 0 {
                Mode::Direct
            } else {
                Mode::Relayer
            };
            let ctx = ctx.clone();
            tokio::spawn(async move { journey::run(&ctx, user, mode).await })
        })
        .collect();
    for h in handles {
        let r = h.await.unwrap();
        assert_all_ok(&r);
        assert!(r.reward.is_some(), "the claim checked the reward");
    }
    drop(ctx);
    twin.stop().await;
}
