//! What every twin service shares: binding a loopback listener with a clear
//! error, serving an axum router until shutdown, and a Prometheus `/metrics`
//! endpoint backed by the service's own registry.
//!
//! A service module exposes `pub async fn spawn(config, ...) -> Result<ServiceHandle, ServiceError>`;
//! [`crate::Twin`] keeps the handles and stops them in reverse order.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A failure to start a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "{service}: cannot listen on {addr}: {source} (is the port already in use? choose another in the twin config or use port 0)"
    )]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{service}: {message}")]
    Setup {
        service: &'static str,
        message: String,
    },
}

/// A running service: its base URL and the task serving it.
#[derive(Debug)]
pub struct ServiceHandle {
    pub name: &'static str,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Background work tied to the service (watchers, workers): dropped, and
    /// so cancelled, with the handle.
    guards: Vec<DropGuard>,
}

impl ServiceHandle {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.url())
    }

    /// A token cancelled when this service is told to stop (by [`ServiceHandle::stop`]
    /// or drop), for background tasks the service owns besides its router.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// Ties a background task's cancellation to this service's lifetime.
    pub fn with_guard(mut self, guard: DropGuard) -> Self {
        self.guards.push(guard);
        self
    }

    /// Stops accepting connections, lets in-flight requests finish and waits.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `addr` and serves `router` (plus `/metrics` from `registry`) in a task.
pub async fn serve(
    service: &'static str,
    addr: SocketAddr,
    router: Router,
    registry: Arc<Registry>,
) -> Result<ServiceHandle, ServiceError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Bind {
            service,
            addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServiceError::Bind {
        service,
        addr,
        source,
    })?;
    // With a twin's faults in scope (see `crate::faults`), every route but
    // `/metrics` goes through the fault layer.
    let router = match crate::faults::current() {
        Some(faults) => crate::faults::layer::wrap(router, faults, service),
        None => router,
    };
    let app = router.route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { render_metrics(&registry) }
        }),
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = result {
            tracing::error!(service, error = %e, "service stopped with an error");
        }
    });
    tracing::debug!(service, %addr, "service listening");
    Ok(ServiceHandle {
        name: service,
        addr,
        shutdown,
        task: Some(task),
        guards: Vec::new(),
    })
}

fn render_metrics(registry: &Registry) -> axum::response::Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Per-route HTTP metrics shared by the services: `{prefix}_http_requests_total{method,route,status}`
/// and `{prefix}_http_request_duration_seconds{method,route}` (time to response headers).
/// The route is axum's matched path (`/ipfs/{cid}`), so ids do not explode the label set.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: prometheus_client::metrics::family::Family<
        HttpStatusLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    latency: prometheus_client::metrics::family::Family<
        HttpRouteLabels,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >,
}

/// Labels of [`HttpMetrics`]' request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct HttpStatusLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of [`HttpMetrics`]' latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub method: String,
    pub route: String,
}

fn latency_histogram() -> prometheus_client::metrics::histogram::Histogram {
    // 0.25 ms … ~8 s
    prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(0.000_25, 2.0, 16),
    )
}

impl HttpMetrics {
    /// Registers the two metric families in `registry`, named after `prefix`.
    pub fn register(registry: &mut Registry, prefix: &str) -> Self {
        let m = HttpMetrics {
            requests: Default::default(),
            latency: prometheus_client::metrics::family::Family::new_with_constructor(
                latency_histogram as fn() -> _,
            ),
        };
        registry.register(
            format!("{prefix}_http_requests"),
            "HTTP requests by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            format!("{prefix}_http_request_duration_seconds"),
            "HTTP request latency to response headers, by method and route",
            m.latency.clone(),
        );
        m
    }

    /// Wraps `router` (call it after adding the routes) so that every request is counted and timed.
    pub fn layer(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            track_http,
        ))
    }
}

async fn track_http(
    axum::extract::State(m): axum::extract::State<HttpMetrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    m.latency
        .get_or_create(&HttpRouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&HttpStatusLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// A bearer token or other credential from the config. `Debug` never shows it;
/// comparison is constant-time in the length of the candidate.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret (without an early exit on the first differing byte).
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = (a.len() != b.len()) as u8;
        for (i, &y) in b.iter().enumerate() {
            diff |= a.get(i).copied().unwrap_or(!y) ^ y;
        }
        diff == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The credential of an `Authorization: <scheme> <credential>` header whose scheme is one of
/// `schemes` (case-insensitive), e.g. `&["Bearer"]`.
pub fn authorization<'a>(headers: &'a axum::http::HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credential) = value.split_once(' ')?;
    schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        .then(|| credential.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_routes_and_metrics_then_stops() {
        let mut registry = Registry::default();
        let hits = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("hits", "test counter", hits.clone());
        hits.inc();
        let router = Router::new().route("/hello", get(|| async { "hi" }));
        let handle = serve(
            "test",
            "127.0.0.1:0".parse().unwrap(),
            router,
            Arc::new(registry),
        )
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let hello = client
            .get(format!("{}/hello", handle.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(hello.text().await.unwrap(), "hi");
        let metrics = client.get(handle.metrics_url()).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        assert!(text.contains("hits_total 1"), "{text}");
        let url = handle.url();
        handle.stop().await;
        assert!(client.get(format!("{url}/hello")).send().await.is_err());
    }

    #[tokio::test]
    async fn port_in_use_is_a_named_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve(
            "storage",
            addr,
            Router::new(),
            Arc::new(Registry::default()),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("storage") && msg.contains(&addr.to_string()),
            "{msg}"
        );
    }
}

/// Handler tests: one request through a service's [`Router`] with
/// `tower::ServiceExt::oneshot`, no port bound.
#[cfg(test)]
pub(crate) mod oneshot {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode};
    use tower::ServiceExt;

    /// The answer: status, headers and the body as bytes.
    pub(crate) struct Answer {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: Vec<u8>,
    }

    impl Answer {
        /// The body as JSON (panics, naming the body, when it is not).
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
            })
        }
    }

    /// Sends `request` to `router` and reads the whole answer.
    pub(crate) async fn send(router: Router, request: Request<Body>) -> Answer {
        let response = router.oneshot(request).await.expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A `GET path` request.
    pub(crate) fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).expect("request")
    }

    /// A `POST path` request with a JSON body.
    pub(crate) fn post_json(path: &str, body: &serde_json::Value) -> Request<Body> {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    }
}
