//! `protocol::rpc` against a scripted JSON-RPC node on loopback: anvil's
//! stale-head answer is asked again, every other error reaches the caller
//! after one request, and a counted client tallies each call by outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::providers::Provider;
use axum::{Json, Router, extract::State, routing::post};
use serde_json::{Value, json};
use vana_load_protocol as protocol;

/// A node that answers `eth_blockNumber` with `errors_first` errors carrying
/// `message`, then with block 0x2a. Returns its URL and the request count.
async fn node(message: &'static str, errors_first: usize) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let handler =
        |State((count, message, errors_first)): State<(Arc<AtomicUsize>, &'static str, usize)>,
         Json(req): Json<Value>| async move {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let id = req["id"].clone();
            Json(if n < errors_first {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": message}})
            } else {
                json!({"jsonrpc": "2.0", "id": id, "result": "0x2a"})
            })
        };
    let app =
        Router::new()
            .route("/", post(handler))
            .with_state((count.clone(), message, errors_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

#[tokio::test]
async fn a_stale_head_answer_is_asked_again() {
    let (url, count) = node(
        "BlockOutOfRangeError: block height is 460 but requested was 459",
        2,
    )
    .await;
    let provider = protocol::rpc::provider(url.parse().unwrap());
    assert_eq!(provider.get_block_number().await.unwrap(), 42);
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "two refusals, then the answer"
    );
}

#[tokio::test]
async fn a_stale_head_that_persists_ends_in_the_error() {
    let (url, count) = node(
        "BlockOutOfRangeError: block height is 460 but requested was 459",
        usize::MAX,
    )
    .await;
    let provider = protocol::rpc::provider(url.parse().unwrap());
    let err = provider.get_block_number().await.unwrap_err();
    assert!(err.to_string().contains("BlockOutOfRange"), "{err}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1 + protocol::rpc::STALE_HEAD_RETRIES as usize
    );
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    for message in [
        "BlockOutOfRangeError: block height is 460 but requested was 100",
        "execution reverted",
    ] {
        let (url, count) = node(message, 1).await;
        let provider = protocol::rpc::provider(url.parse().unwrap());
        let err = provider.get_block_number().await.unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 1, "{message}: asked once");
    }
}

/// A node that answers by method: `eth_blockNumber` with a result,
/// `eth_chainId` with a JSON-RPC error, `eth_gasPrice` after 10 s.
async fn scripted_node() -> String {
    let handler = |Json(req): Json<Value>| async move {
        let id = req["id"].clone();
        Json(match req["method"].as_str() {
            Some("eth_blockNumber") => json!({"jsonrpc": "2.0", "id": id, "result": "0x2a"}),
            Some("eth_gasPrice") => {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                json!({"jsonrpc": "2.0", "id": id, "result": "0x1"})
            }
            _ => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "nope"}}),
        })
    };
    let app = Router::new().route("/", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Three answers, two errors, one call abandoned at its caller's deadline,
/// one refused connection: each counted once under its outcome.
#[tokio::test]
async fn a_counted_client_tallies_every_call_by_outcome() {
    use protocol::rpc::{RpcStats, RpcTally};
    let stats = RpcStats::new();
    let url = scripted_node().await;
    let p = protocol::rpc::counted_provider(url.parse().unwrap(), &stats);
    for _ in 0..3 {
        assert_eq!(p.get_block_number().await.unwrap(), 42);
    }
    assert!(p.get_chain_id().await.is_err());
    let late = tokio::time::timeout(std::time::Duration::from_millis(200), p.get_gas_price()).await;
    assert!(late.is_err(), "the caller gave up");
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = protocol::rpc::counted_provider(format!("http://{closed}").parse().unwrap(), &stats);
    assert!(down.get_block_number().await.is_err());
    let t = stats.tally();
    assert_eq!(
        t,
        RpcTally {
            ok: 3,
            error: 2,
            timeout: 1
        }
    );
    assert_eq!(t.total(), 6);
    assert_eq!(t.success_rate(), Some(0.5));
    // Clones share the counts.
    assert_eq!(stats.clone().tally().ok, 3);
}

/// A stale-head answer asked again is one call, counted once as it ended.
#[tokio::test]
async fn a_retried_call_counts_once() {
    let (url, count) = node(
        "BlockOutOfRangeError: block height is 460 but requested was 459",
        2,
    )
    .await;
    let stats = protocol::rpc::RpcStats::new();
    let p = protocol::rpc::counted_provider(url.parse().unwrap(), &stats);
    assert_eq!(p.get_block_number().await.unwrap(), 42);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let t = stats.tally();
    assert_eq!((t.ok, t.error, t.timeout), (1, 0, 0));
}
