//! Handler tests of the personal server's routes through `oneshot` (no port
//! bound, no chain: these requests are answered before any upstream call).

use alloy::primitives::Address;

use super::{Config, Upstreams, router, start};
use crate::service::oneshot::{get, post_json, send};

fn app() -> axum::Router {
    let upstreams = Upstreams {
        rpc_url: "http://127.0.0.1:9".into(),
        permissions: Address::ZERO,
        grantees: Address::ZERO,
        data_registry: Address::ZERO,
        inference_url: "http://127.0.0.1:9".into(),
        ipfs_gateway: "http://127.0.0.1:9/ipfs/".into(),
    };
    let (state, _registry) = start(Config::default(), upstreams).expect("state");
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
