//! One small client per HTTP service the journey talks to, all sharing one
//! keep-alive `reqwest::Client`. Each turns the service's failures into the
//! error taxonomy: storage → `storage_<status>`, relayer → `relayer_<code>`
//! (or the relayed revert), personal server → `server_<error_code>`.

pub mod relayer;
pub mod server;
pub mod storage;
pub mod subgraph;
pub mod tee;

use crate::errors::{JourneyError, Service};

/// The one HTTP client of a run: keep-alive pool, bounded timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_keepalive(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("vana-load/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initialises")
}

/// Reads a response body, classifying transport failures for `service`.
pub(crate) async fn body(
    service: Service,
    url: &str,
    resp: reqwest::Response,
) -> Result<(u16, Vec<u8>), JourneyError> {
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| JourneyError::from_http(service, url, &e))?;
    Ok((status, bytes.to_vec()))
}

/// The first 200 characters of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(200).collect()
}
