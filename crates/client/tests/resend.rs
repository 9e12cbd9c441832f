//! A transaction whose first send got no answer is re-sent as the same
//! signed bytes (same hash), not re-signed with a fresh nonce: through a
//! proxy that passes the first `eth_sendRawTransaction` on to anvil and then
//! answers 502, `Chain::send` succeeds once, with the first hash, and the
//! sender's nonce moves by exactly one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, U256, keccak256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vana_load_client::chain::{Call, Chain};

mod support;
use support::{DEV_KEYS, anvil, relay, target};

#[derive(Clone)]
struct Proxy {
    upstream: String,
    /// Raw transactions seen, in order.
    sends: Arc<Mutex<Vec<String>>>,
}

async fn forward(State(p): State<Proxy>, body: Bytes) -> (StatusCode, String) {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let raw = (v["method"] == "eth_sendRawTransaction")
        .then(|| v["params"][0].as_str().unwrap_or_default().to_string());
    let answer = relay(&reqwest::Client::new(), &p.upstream, body).await;
    if let Some(raw) = raw {
        let mut sends = p.sends.lock().unwrap();
        sends.push(raw);
        if sends.len() == 1 {
            // It reached the node; the answer is lost.
            return (StatusCode::BAD_GATEWAY, "upstream timed out".into());
        }
    }
    (StatusCode::OK, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_without_an_answer_is_resent_with_the_same_hash() {
    let (_anvil, anvil_url) = anvil(&[]).await;
    let proxy = Proxy {
        upstream: anvil_url.clone(),
        sends: Arc::default(),
    };
    let sends = proxy.sends.clone();
    let app = Router::new().route("/", post(forward)).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let target = target(&proxy_url, Duration::from_secs(1));
    let stop = CancellationToken::new();
    let chain = Chain::connect(&target, stop.clone()).await.unwrap();

    let signer: PrivateKeySigner = DEV_KEYS[0].parse().unwrap();
    let to = Address::repeat_byte(0x77);
    let call = Call::new("transfer", to, Vec::new()).value(U256::from(1));
    let (receipt, _) = chain
        .send(0, &signer, call, Duration::from_secs(20))
        .await
        .unwrap();

    let sends = sends.lock().unwrap().clone();
    assert!(sends.len() >= 2, "no re-send: {sends:?}");
    assert!(sends.iter().all(|s| *s == sends[0]), "re-signed: {sends:?}");
    let first = keccak256(alloy::hex::decode(&sends[0]).unwrap());
    assert_eq!(receipt.transaction_hash, first);
    let rpc: RootProvider = RootProvider::new_http(anvil_url.parse().unwrap());
    let nonce = rpc.get_transaction_count(signer.address()).await.unwrap();
    assert_eq!(nonce, 1, "exactly one transaction");
    assert_eq!(rpc.get_balance(to).await.unwrap(), U256::from(1));
    stop.cancel();
}
