//! Downloading a file by the URL recorded on chain, as the personal server and
//! the TEE do: `ipfs://<cid>` through a gateway, anything else over plain
//! HTTP(S), with a size limit.
//!
//! [`http_client_builder`] is the start of every HTTP client the twin's
//! services use to call another service: its connect and whole-request
//! timeouts bound every call, so a peer that accepts and never answers fails
//! the call instead of holding a worker forever.
//!
//! [`public`] adds, as an option, the hosted server's public-gateway path for
//! `ipfs://` files.

pub mod public;

use std::time::Duration;

use futures::StreamExt;

pub use public::PublicGateways;

/// The hosted server's download limit.
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// How long opening a connection to another service may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest any one HTTP exchange between the twin's services may take
/// (a call can ask for less with `RequestBuilder::timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A `reqwest` client builder with the twin's bounded timeouts.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
}

/// [`http_client_builder`], built.
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("the TLS backend initialises")
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("unsupported file URL {0:?}: expected ipfs://, http:// or https://")]
    UnsupportedUrl(String),
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
}

/// Resolves file URLs and downloads them with one shared HTTP client.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    ipfs_gateway: String,
    max_bytes: usize,
    public: PublicGateways,
}

impl Fetcher {
    /// `ipfs_gateway` is a base URL such as `http://127.0.0.1:5001` (its `/ipfs/<cid>` serves bytes).
    pub fn new(http: reqwest::Client, ipfs_gateway: impl Into<String>, max_bytes: usize) -> Self {
        Self {
            http,
            ipfs_gateway: ipfs_gateway.into().trim_end_matches('/').to_owned(),
            max_bytes,
            public: PublicGateways::default(),
        }
    }

    /// Asks these public gateways for `ipfs://` files first (see [`public`]).
    pub fn with_public_gateways(mut self, public: PublicGateways) -> Self {
        self.public = public;
        self
    }

    /// The HTTP URL that serves `url`.
    pub fn resolve(&self, url: &str) -> Result<String, FetchError> {
        if let Some(cid) = url.strip_prefix("ipfs://") {
            let cid = cid.trim_start_matches("ipfs/");
            if cid.is_empty() {
                return Err(FetchError::UnsupportedUrl(url.to_owned()));
            }
            Ok(format!("{}/ipfs/{cid}", self.ipfs_gateway))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Ok(url.to_owned())
        } else {
            Err(FetchError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Downloads `url`, refusing bodies over the size limit. With public
    /// gateways configured, an `ipfs://` file is asked of each of them first
    /// (their own timeout, a growing pause after each failure), then of the
    /// twin's gateway within `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        let http_url = self.resolve(url)?;
        if let (true, Some(cid)) = (self.public.enabled(), url.strip_prefix("ipfs://")) {
            let cid = cid.trim_start_matches("ipfs/");
            let each = Duration::from_millis(self.public.timeout_ms);
            for (attempt, public_url) in self.public.urls(cid).into_iter().enumerate() {
                match self.download(public_url.clone(), each).await {
                    Ok(body) => return Ok(body),
                    Err(e) => {
                        tracing::debug!(url = %public_url, error = %e, "public gateway failed");
                        tokio::time::sleep(self.public.pause(attempt as u32)).await;
                    }
                }
            }
        }
        self.download(http_url, timeout).await
    }

    /// One GET of `http_url`, refusing bodies over the size limit.
    async fn download(&self, http_url: String, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        let transport = |source| FetchError::Transport {
            url: http_url.clone(),
            source,
        };
        let response = self
            .http
            .get(&http_url)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: http_url,
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: http_url.clone(),
            limit: self.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n as usize > self.max_bytes)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_ipfs_and_http_and_refuses_others() {
        let f = Fetcher::new(reqwest::Client::new(), "http://127.0.0.1:9/", 10);
        assert_eq!(
            f.resolve("ipfs://bafkabc").unwrap(),
            "http://127.0.0.1:9/ipfs/bafkabc"
        );
        assert_eq!(f.resolve("https://x.y/z").unwrap(), "https://x.y/z");
        assert!(matches!(
            f.resolve("ar://x"),
            Err(FetchError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            f.resolve("ipfs://"),
            Err(FetchError::UnsupportedUrl(_))
        ));
    }

    #[tokio::test]
    async fn enforces_the_size_limit() {
        use axum::{Router, routing::get};
        let router = Router::new()
            .route("/small", get(|| async { "0123456789" }))
            .route("/big", get(|| async { "x".repeat(11) }));
        let handle = crate::service::serve(
            "fetch-test",
            "127.0.0.1:0".parse().unwrap(),
            router,
            Default::default(),
        )
        .await
        .unwrap();
        let f = Fetcher::new(reqwest::Client::new(), handle.url(), 10);
        let t = Duration::from_secs(5);
        assert_eq!(
            f.get(&format!("{}/small", handle.url()), t).await.unwrap(),
            b"0123456789"
        );
        let err = f
            .get(&format!("{}/big", handle.url()), t)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
        let err = f
            .get(&format!("{}/missing", handle.url()), t)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 404, .. }),
            "{err}"
        );
    }

    /// With public gateways configured, an `ipfs://` file is asked of each of
    /// them in order (one never answers, one has no such file) before the
    /// twin's gateway serves it, and the caller pays each timeout and pause.
    #[tokio::test]
    async fn public_gateways_are_asked_first_and_their_delay_is_paid() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use axum::{Router, http::StatusCode, routing::get};
        let hits = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (h0, h1) = (hits.clone(), hits.clone());
        let silent = Router::new().route(
            "/ipfs/{cid}",
            get(move || async move {
                h0[0].fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        );
        let missing = Router::new().route(
            "/ipfs/{cid}",
            get(move || async move {
                h1[1].fetch_add(1, Ordering::SeqCst);
                StatusCode::NOT_FOUND
            }),
        );
        let own = Router::new().route("/ipfs/{cid}", get(|| async { "the file" }));
        let addr = "127.0.0.1:0".parse().unwrap();
        let serve = |name, r| crate::service::serve(name, addr, r, Default::default());
        let (silent, missing, own) = (
            serve("silent", silent).await.unwrap(),
            serve("missing", missing).await.unwrap(),
            serve("own", own).await.unwrap(),
        );
        let public = PublicGateways {
            gateways: vec![
                format!("{}/ipfs/", silent.url()),
                format!("{}/ipfs", missing.url()),
            ],
            timeout_ms: 300,
            backoff_ms: 200,
            max_backoff_ms: 8_000,
        };
        let f = Fetcher::new(reqwest::Client::new(), own.url(), 100).with_public_gateways(public);
        let started = std::time::Instant::now();
        let body = f
            .get("ipfs://bafyfile", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(body, b"the file");
        assert_eq!(
            hits[0].load(Ordering::SeqCst),
            1,
            "the silent gateway was asked"
        );
        assert_eq!(
            hits[1].load(Ordering::SeqCst),
            1,
            "the second gateway was asked"
        );
        // 300 ms timeout + 200 ms pause, then 400 ms after the 404: a lower bound.
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        // Plain HTTP URLs never take the public path.
        let direct = f
            .get(&format!("{}/ipfs/x", own.url()), Duration::from_secs(5))
            .await;
        assert_eq!(direct.unwrap(), b"the file");
        assert_eq!(hits[0].load(Ordering::SeqCst), 1);
    }
}
