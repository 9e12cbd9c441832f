//! The twin's personal server with its rate limits on, seen through
//! vana-load's own client: the 101st operation of one app key is refused
//! with 429 and classified `server_rate_limited` (its Retry-After, up to an
//! hour, is longer than the client waits), while another app key is not.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use client::errors::ErrorKind;
use client::services::http_client;
use client::services::server::ServerClient;
use twin::personal_server::{Config, RateLimits, Upstreams, router, start};

#[tokio::test]
async fn the_101st_operation_of_an_app_is_classified_rate_limited() {
    let config = Config {
        rate_limits: RateLimits {
            enabled: true,
            // Both app keys call from 127.0.0.1: count per signer only.
            by_ip: false,
            ..RateLimits::default()
        },
        ..Config::default()
    };
    let upstreams = Upstreams {
        rpc_url: "http://127.0.0.1:9".into(),
        permissions: Address::ZERO,
        grantees: Address::ZERO,
        data_registry: Address::ZERO,
        inference_url: "http://127.0.0.1:9".into(),
        ipfs_gateway: "http://127.0.0.1:9/ipfs/".into(),
    };
    let (state, _registry) = start(config, upstreams).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let client = ServerClient::new(http_client(), &url.parse().unwrap());

    // The limits are fixed windows aligned to the clock hour: 101 requests
    // that straddle an hour's end would start a fresh count (seen once, at
    // 02:00 UTC under the full suite's load). Near the end of an hour, start
    // in the next one (a wait of at most 90 s).
    let into_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if into_hour > 3600 - 90 {
        tokio::time::sleep(std::time::Duration::from_secs(3600 - into_hour + 1)).await;
    }
    let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    // Permission 0 is refused by validation (400), after the limits counted it.
    for _ in 0..100 {
        let e = client.create_operation(&a, 0).await.unwrap_err();
        assert!(!matches!(e.kind, ErrorKind::RateLimited(_)), "{e:?}");
    }
    let e = client.create_operation(&a, 0).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::RateLimited(_)), "{e:?}");
    assert_eq!(e.kind.class(), "server_rate_limited");
    assert!(e.retry_after.is_some_and(|d| d.as_secs() >= 1));
    assert!(e.message.contains("RATE_LIMIT_ERROR"), "{}", e.message);

    let e = client.create_operation(&b, 0).await.unwrap_err();
    assert!(!matches!(e.kind, ErrorKind::RateLimited(_)), "{e:?}");
}
