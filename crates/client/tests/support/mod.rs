//! Shared by the client's chain tests: anvil on a free loopback port, and a
//! JSON-RPC proxy in front of it that records every call's method and params.

#![allow(dead_code)] // each test file uses part of it

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::providers::{Provider, RootProvider};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;
use vana_load_client::target::Target;

/// anvil's first dev accounts (public test keys).
pub const DEV_KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];

/// anvil on a free loopback port with `args`, killed when dropped.
pub async fn anvil(args: &[&str]) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    ))
    .args(["--port", &port.to_string(), "--silent"])
    .args(args)
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let rpc: RootProvider = RootProvider::new_http(url.parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while rpc.get_chain_id().await.is_err() {
        assert!(Instant::now() < deadline, "anvil did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, url)
}

/// The Moksha target pointed at `rpc_url` (anvil's chain id), with the
/// receipt hub polling every `block_poll`.
pub fn target(rpc_url: &str, block_poll: Duration) -> Target {
    let mut target =
        Target::from_toml_str(include_str!("../../../../targets/moksha.toml"), &|_| None).unwrap();
    target.chain_id = 31337;
    target.rpc_urls = vec![rpc_url.parse().unwrap()];
    target.poll.block = block_poll;
    target
}

/// Every JSON-RPC call that went through a [`recording_proxy`]: method, params.
#[derive(Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<(String, Value)>>>);

impl Calls {
    /// How many calls of `method` so far.
    pub fn count(&self, method: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .count()
    }

    /// The params of every call of `method` so far, in order.
    pub fn params(&self, method: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn record(&self, call: &Value) {
        let method = call["method"].as_str().unwrap_or_default().to_string();
        self.0
            .lock()
            .unwrap()
            .push((method, call["params"].clone()));
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    calls: Calls,
    http: reqwest::Client,
}

async fn forward(State(p): State<Proxy>, body: Bytes) -> String {
    match serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null) {
        Value::Array(calls) => calls.iter().for_each(|c| p.calls.record(c)),
        call => p.calls.record(&call),
    }
    relay(&p.http, &p.upstream, body).await
}

/// Posts a JSON-RPC body to `upstream` and returns its answer's text.
pub async fn relay(http: &reqwest::Client, upstream: &str, body: Bytes) -> String {
    let answer = http
        .post(upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    answer.text().await.unwrap()
}

/// A proxy to `upstream` on a free loopback port: its URL and its record.
pub async fn recording_proxy(upstream: &str) -> (String, Calls) {
    let proxy = Proxy {
        upstream: upstream.to_string(),
        calls: Calls::default(),
        http: reqwest::Client::new(),
    };
    let calls = proxy.calls.clone();
    let app = Router::new().route("/", post(forward)).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

/// Waits (up to 20 s) until `done` holds.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
