//! Handler tests of the inference routes through `oneshot` (no port bound).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::{Config, DEFAULT_TOKEN, router, start};
use crate::service::oneshot::send;

fn predictions(model: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(format!("/v1/models/{model}/predictions"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn create_checks_token_model_and_input() {
    let (backend, _registry) = start(Config::default()).expect("inference state");
    let app = router(backend);
    let model = protocol::api::replicate::DEFAULT_MODEL;
    let ok_body = r#"{"input":{"prompt":"hi"}}"#;

    let anonymous = send(app.clone(), predictions(model, None, ok_body)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers["content-type"],
        "application/problem+json"
    );

    let unknown = send(
        app.clone(),
        predictions("no/such", Some(DEFAULT_TOKEN), ok_body),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["title"], "Model not found");

    let no_input = send(app.clone(), predictions(model, Some(DEFAULT_TOKEN), "{}")).await;
    assert_eq!(no_input.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_input.json()["invalid_fields"][0]["field"], "input");
}
