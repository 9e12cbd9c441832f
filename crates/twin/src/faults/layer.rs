//! The generic fault layer: an axum middleware around a service's router
//! that, per request, adds the component's latency and may answer with an
//! injected error status, a 429 with `Retry-After`, or never (a stall).
//! Requests it lets through reach the service untouched.
//!
//! The storage service serves two components: its API (`storage`) and its
//! gateway (`/ipfs/…`, `gateway`), each with its own faults.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Faults, HttpFault};

/// The body of an injected failure: the TEE's error shape (`error`, `code`),
/// which other clients read as an opaque body.
pub const INJECTED_CODE: &str = "INJECTED_FAULT";

#[derive(Clone)]
struct LayerState {
    faults: Faults,
    service: &'static str,
}

/// Wraps `router` (call it before adding routes that must not fail, such as
/// `/metrics`) in the faults of `service`.
pub fn wrap(router: Router, faults: Faults, service: &'static str) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        LayerState { faults, service },
        inject,
    ))
}

/// The component whose faults apply to a request to `service` at `path`.
pub fn component(service: &'static str, path: &str) -> &'static str {
    if service == crate::storage::NAME && path.starts_with("/ipfs/") {
        "gateway"
    } else {
        service
    }
}

async fn inject(State(s): State<LayerState>, request: Request, next: Next) -> Response {
    let component = component(s.service, request.uri().path());
    let (latency, fault) = s.faults.draw_http(component);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None => next.run(request).await,
        Some(fault) => injected(component, fault).await,
    }
}

/// The answer to a request an [`HttpFault`] hit (after a stall, 504).
pub async fn injected(component: &str, fault: HttpFault) -> Response {
    let body = |status: StatusCode, what: String| {
        (
            status,
            axum::Json(serde_json::json!({"error": what, "code": INJECTED_CODE})),
        )
            .into_response()
    };
    match fault {
        HttpFault::Error(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            body(
                status,
                format!("injected fault: {component} answered {code}"),
            )
        }
        HttpFault::RateLimited(secs) => {
            let mut r = body(
                StatusCode::TOO_MANY_REQUESTS,
                format!("injected fault: {component} is rate limiting; retry after {secs} s"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        HttpFault::Stall(hold) => {
            tokio::time::sleep(hold).await;
            body(
                StatusCode::GATEWAY_TIMEOUT,
                format!("injected fault: {component} stalled for {hold:?}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultsConfig;
    use axum::routing::get;
    use std::time::Duration;

    async fn serve(faults: Faults, service: &'static str) -> crate::service::ServiceHandle {
        let router = Router::new()
            .route("/ipfs/{cid}", get(|| async { "bytes" }))
            .route("/api", get(|| async { "ok" }));
        crate::service::serve(
            service,
            "127.0.0.1:0".parse().unwrap(),
            wrap(router, faults, service),
            Default::default(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn errors_rate_limits_and_stalls_are_injected_and_changeable() {
        let faults = Faults::new(FaultsConfig::default());
        faults.arm();
        let h = serve(faults.clone(), "storage").await;
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("{}{path}", h.url())).send();
        assert_eq!(get("/api").await.unwrap().status(), 200);

        let mut c = faults.get();
        c.storage.error_rate = 1.0;
        c.gateway.rate_limit_rate = 1.0;
        c.gateway.retry_after_s = 7;
        faults.set(c.clone()).unwrap();
        let r = get("/api").await.unwrap();
        assert_eq!(r.status(), 503);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], INJECTED_CODE);
        let r = get("/ipfs/x").await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        // /metrics never fails.
        assert_eq!(get("/metrics").await.unwrap().status(), 200);

        c.storage.error_rate = 0.0;
        c.storage.stall_rate = 1.0;
        c.storage.stall_ms = 60_000;
        faults.set(c).unwrap();
        let stalled = tokio::time::timeout(Duration::from_millis(500), get("/api")).await;
        assert!(stalled.is_err(), "a stalled request is never answered");
        faults.set(FaultsConfig::default()).unwrap();
        assert_eq!(get("/api").await.unwrap().status(), 200);
        // Not `stop`: it would wait for the stalled request.
        drop(h);
    }
}
