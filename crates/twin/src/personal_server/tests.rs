//! Handler tests of the personal server's routes through `oneshot` (no port
//! bound, no chain: these requests are answered before any upstream call).

use alloy::primitives::Address;
use axum::body::Body;
use axum::http::Request;

use super::{Config, RateLimits, Upstreams, router, start};
use crate::service::oneshot::{get, post_json, send};

fn app() -> axum::Router {
    app_with(Config::default())
}

fn app_with(config: Config) -> axum::Router {
    let upstreams = Upstreams {
        rpc_url: "http://127.0.0.1:9".into(),
        permissions: Address::ZERO,
        grantees: Address::ZERO,
        data_registry: Address::ZERO,
        inference_url: "http://127.0.0.1:9".into(),
        ipfs_gateway: "http://127.0.0.1:9/ipfs/".into(),
    };
    let (state, _registry) = start(config, upstreams).expect("state");
    router(state)
}

#[tokio::test]
async fn identity_derives_the_users_server_key_and_names_a_bad_address() {
    let app = app();
    let user = "0x1111111111111111111111111111111111111111";
    let ok = send(
        app.clone(),
        get(&format!("/api/v1/identity?address={user}")),
    )
    .await;
    assert_eq!(ok.status, 200);
    let keys = protocol::crypto::ServerKeyring::new(super::DEFAULT_SERVER_MNEMONIC).unwrap();
    let expected = keys.signer_for(user.parse().unwrap()).unwrap().address();
    let body = ok.json().to_string();
    assert!(body.contains(&expected.to_checksum(None)), "{body}");

    let bad = send(app, get("/api/v1/identity?address=0x12")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["detail"]["error_code"],
        "VALIDATION_ERROR_ADDRESS"
    );
}

#[tokio::test]
async fn a_malformed_operation_is_fastapis_422() {
    let r = send(
        app(),
        post_json(
            "/api/v1/operations",
            &serde_json::json!({"app_signature": 1}),
        ),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json()["detail"].is_array(), "{}", r.json());
}

/// A signed `POST /operations` from `ip` (permission 0: refused with 400 by
/// validation, after the rate limits have counted it, as at the real server).
fn operation(app_key: &alloy::signers::local::PrivateKeySigner, ip: &str) -> Request<Body> {
    use alloy::signers::SignerSync;
    let json = r#"{"permission_id":0}"#;
    let sig = app_key.sign_message_sync(json.as_bytes()).unwrap();
    let body = serde_json::json!({
        "app_signature": alloy::primitives::hex::encode_prefixed(sig.as_bytes()),
        "operation_request_json": json,
    });
    Request::post("/api/v1/operations")
        .header("content-type", "application/json")
        .header("x-forwarded-for", ip)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn with_rate_limits_the_101st_operation_of_a_signer_is_429_and_another_signer_is_not() {
    let config = Config {
        rate_limits: RateLimits {
            enabled: true,
            ..RateLimits::default()
        },
        ..Config::default()
    };
    let app = app_with(config);
    let a = alloy::signers::local::PrivateKeySigner::random();
    let b = alloy::signers::local::PrivateKeySigner::random();
    for i in 0..100 {
        let r = send(app.clone(), operation(&a, "10.0.0.1")).await;
        assert_eq!(r.status, 400, "operation {i}: {}", r.json());
    }
    let refused = send(app.clone(), operation(&a, "10.0.0.1")).await;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(
        refused.json(),
        serde_json::json!({"detail": {
            "detail": format!("Rate limit exceeded. Try again in {retry} seconds"),
            "error_code": "RATE_LIMIT_ERROR",
        }})
    );
    assert_eq!(refused.headers["x-ratelimit-limit"], "100");
    // The same signer from another address: its own window is full.
    let r = send(app.clone(), operation(&a, "10.0.0.3")).await;
    assert_eq!(r.status, 429);
    // Another signer from another address is served.
    let r = send(app.clone(), operation(&b, "10.0.0.2")).await;
    assert_eq!(r.status, 400, "{}", r.json());
    // Identity has its own bucket.
    let user = "0x1111111111111111111111111111111111111111";
    let r = send(app, get(&format!("/api/v1/identity?address={user}"))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn without_the_option_nothing_is_limited() {
    let app = app();
    let a = alloy::signers::local::PrivateKeySigner::random();
    for _ in 0..101 {
        assert_eq!(
            send(app.clone(), operation(&a, "10.0.0.1")).await.status,
            400
        );
    }
}
