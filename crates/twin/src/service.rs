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
use tokio_util::sync::CancellationToken;

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
        let result = axum::serve(listener, app)
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
