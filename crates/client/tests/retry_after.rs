//! `Retry-After` is honoured: a 429 (or a 503 with `Retry-After`) is sent
//! again after the wait the service asked for, within the step's deadline;
//! an answer that stays rate-limited is classified `<service>_rate_limited`,
//! and a wait the step cannot afford ends it at once with that class rather
//! than with a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use vana_load_client::errors::with_timeout;
use vana_load_client::services::server::ServerClient;
use vana_load_client::services::{http_client, tee::TeeClient};

/// Serves `limited` rate-limit answers (status, Retry-After seconds), then
/// the identity JSON; counts requests.
async fn service(limited: u32, status: u16, retry_after: u64) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let app = Router::new().fallback(any(move || {
        let seen = seen.clone();
        async move {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut headers = HeaderMap::new();
            if n < limited {
                headers.insert("retry-after", retry_after.into());
                let status = StatusCode::from_u16(status).unwrap();
                return (status, headers, r#"{"error":"slow down","code":"X"}"#.to_owned());
            }
            let body = r#"{"kind":"Identity","user_address":"0x0000000000000000000000000000000000000001","personal_server":{"kind":"PersonalServer","address":"0x0000000000000000000000000000000000000002","public_key":"0x04"}}"#;
            (StatusCode::OK, headers, body.to_owned())
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn server(url: &str) -> ServerClient {
    ServerClient::new(http_client(), &url.parse().unwrap())
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let (url, calls) = service(1, 429, 1).await;
    let started = Instant::now();
    let who = alloy::primitives::Address::ZERO;
    let r = with_timeout(
        "identity",
        Duration::from_secs(10),
        server(&url).identity(who),
    )
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as asked"
    );
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_and_a_persistent_one_is_a_rate_limit() {
    let (url, calls) = service(1, 503, 1).await;
    let who = alloy::primitives::Address::ZERO;
    let r = with_timeout(
        "identity",
        Duration::from_secs(10),
        server(&url).identity(who),
    )
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (url, calls) = service(u32::MAX, 503, 1).await;
    let r = with_timeout(
        "identity",
        Duration::from_secs(30),
        server(&url).identity(who),
    )
    .await;
    let e = r.unwrap_err();
    assert_eq!(e.class(), "server_rate_limited", "{e}");
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    // The first answer and the bounded retries, no more.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_wait_the_step_cannot_afford_ends_it_with_the_rate_limit_not_a_timeout() {
    let (url, calls) = service(u32::MAX, 429, 30).await;
    let started = Instant::now();
    let tee = TeeClient::new(http_client());
    let req: protocol::api::tee::RunProofRequest = serde_json::from_value(
        serde_json::json!({"job_id": 1, "file_id": 1, "encryption_key": "k", "proof_url": "x"}),
    )
    .unwrap();
    let r = with_timeout("proof", Duration::from_secs(5), tee.run_proof(&url, &req)).await;
    let e = r.unwrap_err();
    assert_eq!(e.class(), "tee_rate_limited", "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}
