//! The JSON-RPC calls `Chain` makes per transaction, counted by a recording
//! proxy in front of anvil: a user's own transaction is never polled for its
//! receipt (its waiter is registered before the broadcast), sends at one
//! head share one fee estimate (and estimate gas at the latest block), a
//! relayed transaction's wait asks for its receipt once, and no waiter
//! outlives its wait.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vana_load_client::chain::{Call, Chain};
use vana_load_client::errors::ErrorKind;

mod support;
use support::{DEV_KEYS, anvil, recording_proxy, target, until};

/// Sends 1 wei from dev account `key` in a task, as a journey would.
fn transfer(
    chain: &Chain,
    key: usize,
) -> tokio::task::JoinHandle<Result<B256, vana_load_client::errors::JourneyError>> {
    let chain = chain.clone();
    let signer: PrivateKeySigner = DEV_KEYS[key].parse().unwrap();
    tokio::spawn(async move {
        let call =
            Call::new("transfer", Address::repeat_byte(0x77), Vec::new()).value(U256::from(1));
        let (receipt, _) = chain
            .send(key as u64, &signer, call, Duration::from_secs(20))
            .await?;
        assert!(receipt.status());
        Ok(receipt.transaction_hash)
    })
}

async fn mine(anvil_url: &str) {
    let rpc: RootProvider = RootProvider::new_http(anvil_url.parse().unwrap());
    rpc.raw_request::<_, Value>("evm_mine".into(), ())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_sends_share_the_fee_estimate_of_a_head_and_never_poll_receipts() {
    // Blocks only on request, so that both sends see the same head.
    let (_anvil, anvil_url) = anvil(&["--no-mining"]).await;
    let (proxy_url, calls) = recording_proxy(&anvil_url).await;
    let stop = CancellationToken::new();
    let chain = Chain::connect(&target(&proxy_url, Duration::from_millis(50)), stop.clone())
        .await
        .unwrap();
    let calls = &calls;
    let sent = |n| move || calls.count("eth_sendRawTransaction") >= n;

    let a = transfer(&chain, 0);
    until("the first broadcast", sent(1)).await;
    let b = transfer(&chain, 1);
    until("the second broadcast", sent(2)).await;
    assert_eq!(
        calls.count("eth_feeHistory"),
        1,
        "one estimate for the head"
    );

    mine(&anvil_url).await;
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_ne!(a, b);
    assert_eq!(chain.receipts.head(), 1, "the hub saw the block");

    // A new head: a new estimate.
    let c = transfer(&chain, 2);
    until("the third broadcast", sent(3)).await;
    assert_eq!(
        calls.count("eth_feeHistory"),
        2,
        "a new head, a new estimate"
    );
    mine(&anvil_url).await;
    c.await.unwrap().unwrap();

    assert_eq!(
        calls.count("eth_getTransactionReceipt"),
        0,
        "receipts came from the block stream only"
    );
    assert_eq!(calls.count("eth_sendRawTransaction"), 3);
    // Gas is estimated at the latest block, as the SDK's viem does: at
    // `pending` anvil would first execute every transaction in its pool.
    let estimates = calls.params("eth_estimateGas");
    assert_eq!(estimates.len(), 3, "one estimate per send");
    for p in &estimates {
        assert_eq!(p[1], "latest", "estimated at {p}");
    }
    assert_eq!(chain.receipts.waiting(), 0, "no waiter left behind");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_wait_asks_once_and_no_waiter_outlives_its_wait() {
    let (_anvil, anvil_url) = anvil(&[]).await;
    let (proxy_url, calls) = recording_proxy(&anvil_url).await;
    let stop = CancellationToken::new();
    let chain = Chain::connect(&target(&proxy_url, Duration::from_millis(50)), stop.clone())
        .await
        .unwrap();
    let hub = &chain.receipts;

    // A relayed transaction that never comes: one direct look, then the stream, then a timeout.
    let never = B256::repeat_byte(0xab);
    let err = hub
        .wait(never, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    assert_eq!(calls.count("eth_getTransactionReceipt"), 1);
    assert_eq!(hub.waiting(), 0, "a timed-out waiter is removed");

    // Two waiters for one hash: dropping one leaves the other registered.
    let first = hub.watch(never);
    let second = hub.watch(never);
    assert_eq!(hub.waiting(), 1);
    drop(first);
    assert_eq!(hub.waiting(), 1, "the other waiter stays");
    assert_eq!(second.hash(), never);
    drop(second);
    assert_eq!(hub.waiting(), 0, "a dropped waiter is removed");

    // A relayed transaction mined before the wait: found by the one direct look.
    let hash = transfer(&chain, 0).await.unwrap().unwrap();
    let before = calls.count("eth_getTransactionReceipt");
    let receipt = hub.wait(hash, Duration::from_secs(5)).await.unwrap();
    assert_eq!(receipt.transaction_hash, hash);
    assert_eq!(calls.count("eth_getTransactionReceipt"), before + 1);
    assert_eq!(hub.waiting(), 0);
    stop.cancel();
}

/// Runtime `LOG2(0, 0, calldata[0..32], calldata[32..64])`, behind an init
/// code that returns it: a contract that logs the two topics it is sent.
const LOGGER_INIT: &str = "6b60203560003560006000a200600052600c6014f3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_waiter_gets_its_log_from_the_block_stream_alone() {
    use alloy::network::{EthereumWallet, TransactionBuilder};
    use alloy::providers::ProviderBuilder;
    use alloy::rpc::types::TransactionRequest;
    use vana_load_client::chain::LogMatch;

    let (_anvil, anvil_url) = anvil(&[]).await;
    let deployer: PrivateKeySigner = DEV_KEYS[2].parse().unwrap();
    let wallet = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(anvil_url.parse().unwrap());
    let deploy = TransactionRequest::default().with_deploy_code(hex::decode(LOGGER_INIT).unwrap());
    let logger = wallet
        .send_transaction(deploy)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .contract_address
        .expect("deployed");

    let (proxy_url, calls) = recording_proxy(&anvil_url).await;
    let stop = CancellationToken::new();
    let chain = Chain::connect(&target(&proxy_url, Duration::from_millis(50)), stop.clone())
        .await
        .unwrap();
    let hub = &chain.receipts;
    let (event, wanted, other) = (
        B256::repeat_byte(0xe0),
        B256::repeat_byte(0x01),
        B256::repeat_byte(0x02),
    );
    let m = LogMatch {
        address: logger,
        event,
        topic1: wanted,
    };
    let waiter = hub.watch_log(m);
    assert_eq!(hub.waiting_logs(), 1);
    let signer: PrivateKeySigner = DEV_KEYS[0].parse().unwrap();
    let emit = |topic1: B256| {
        let input = [event.as_slice(), topic1.as_slice()].concat();
        chain.send(
            0,
            &signer,
            Call::new("log", logger, input),
            Duration::from_secs(20),
        )
    };
    // Another file's log first: not ours.
    emit(other).await.unwrap();
    let (ours, _) = emit(wanted).await.unwrap();
    let log = tokio::time::timeout(Duration::from_secs(10), waiter.log())
        .await
        .expect("the log arrives")
        .unwrap();
    assert_eq!(log.address(), logger);
    assert_eq!(log.topics(), &[event, wanted]);
    assert_eq!(log.transaction_hash, Some(ours.transaction_hash));
    assert_eq!(hub.waiting_logs(), 0, "a delivered waiter is gone");

    // A dropped waiter is removed; nothing was asked of the node but blocks.
    drop(hub.watch_log(LogMatch { topic1: other, ..m }));
    assert_eq!(hub.waiting_logs(), 0);
    assert_eq!(calls.count("eth_getLogs"), 0);
    assert_eq!(calls.count("eth_call"), 0);
    stop.cancel();
}
