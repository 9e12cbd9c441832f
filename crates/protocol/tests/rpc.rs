//! `protocol::rpc` against a scripted JSON-RPC node on loopback: anvil's
//! stale-head answer is asked again, every other error reaches the caller
//! after one request.

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
