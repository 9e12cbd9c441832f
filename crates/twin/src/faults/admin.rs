//! The faults admin endpoint, on loopback and its own port (the manifest
//! lists it as `faults_admin`):
//!
//! - `GET /admin/faults` → `{"config": <[faults] as JSON>, "injected": {"tee.error": 3, …}}`
//! - `PUT /admin/faults` with the `[faults]` settings as JSON replaces them
//!   all (fields left out take their defaults) and answers like `GET`; an
//!   invalid body is a 400 naming the field, and changes nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{Faults, FaultsConfig};
use crate::service::{ServiceError, ServiceHandle, serve};

/// The endpoint's name in the manifest's services.
pub const NAME: &str = "faults_admin";
/// Its path.
pub const PATH: &str = "/admin/faults";

/// Serves the endpoint on `127.0.0.1:port` (0: any free port).
pub async fn spawn(port: u16, faults: Faults) -> Result<ServiceHandle, ServiceError> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    serve(NAME, addr, router(faults), Default::default()).await
}

/// The endpoint's route over `faults`: `GET`/`PUT` [`PATH`].
pub fn router(faults: Faults) -> Router {
    Router::new()
        .route(PATH, get(show).put(replace))
        .with_state(faults)
}

fn view(faults: &Faults) -> Response {
    Json(json!({"config": faults.get(), "injected": faults.injected()})).into_response()
}

async fn show(State(faults): State<Faults>) -> Response {
    view(&faults)
}

async fn replace(State(faults): State<Faults>, body: Bytes) -> Response {
    let bad = |message: String| {
        (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
    };
    let config: FaultsConfig = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad(format!("invalid faults settings: {e}")),
    };
    match faults.set(config) {
        Ok(()) => view(&faults),
        Err(e) => bad(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;

    use super::*;
    use crate::service::oneshot::{get, send};

    fn put(body: &str) -> Request<Body> {
        Request::put(PATH)
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn put_validates_and_replaces_get_shows() {
        let faults = Faults::new(FaultsConfig::default());
        faults.arm();
        let app = router(faults.clone());
        let r = send(app.clone(), put(r#"{"tee": {"error_rate": 3}}"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let v = r.json();
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("faults.tee.error_rate"),
            "{v}"
        );
        let r = send(app.clone(), put("{nope")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(faults.get(), FaultsConfig::default());

        let r = send(app.clone(), put(r#"{"tee": {"error_rate": 1}}"#)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(faults.get().tee.error_rate, 1.0);
        faults.draw_http("tee");
        let v = send(app, get(PATH)).await.json();
        assert_eq!(v["config"]["tee"]["error_rate"], 1.0);
        assert_eq!(v["injected"]["tee.error"], 1);
    }
}
