//! Handler tests of the storage routes through `oneshot` (no port bound).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::{Config, router, start};
use crate::service::oneshot::{get, send};

fn app() -> axum::Router {
    let (state, _registry) = start(Config::default()).expect("storage state");
    router(state)
}

#[tokio::test]
async fn an_added_file_is_served_by_the_gateway() {
    let app = app();
    let boundary = "vanaloadboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nhello twin\r\n--{boundary}--\r\n"
    );
    let add = Request::post(protocol::api::storage::IPFS_ADD_PATH)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let added = send(app.clone(), add).await;
    assert_eq!(
        added.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&added.body)
    );
    let cid = added.json()["Hash"].as_str().expect("Hash").to_string();

    let fetched = send(
        app.clone(),
        get(&format!("{}{cid}", protocol::api::storage::GATEWAY_PREFIX)),
    )
    .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, b"hello twin");
}

#[tokio::test]
async fn pinata_without_the_jwt_is_refused_and_unknown_routes_are_404() {
    let app = app();
    let pin = Request::post(protocol::api::storage::PIN_FILE_PATH)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(app.clone(), pin).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(app, get("/nope")).await.status, StatusCode::NOT_FOUND);
}
