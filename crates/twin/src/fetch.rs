//! Downloading a file by the URL recorded on chain, as the personal server and
//! the TEE do: `ipfs://<cid>` through a gateway, anything else over plain
//! HTTP(S), with a size limit.
//!
//! [`http_client_builder`] is the start of every HTTP client the twin's
//! services use to call another service: its connect and whole-request
//! timeouts bound every call, so a peer that accepts and never answers fails
//! the call instead of holding a worker forever.

use std::time::Duration;

use futures::StreamExt;

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
}

impl Fetcher {
    /// `ipfs_gateway` is a base URL such as `http://127.0.0.1:5001` (its `/ipfs/<cid>` serves bytes).
    pub fn new(http: reqwest::Client, ipfs_gateway: impl Into<String>, max_bytes: usize) -> Self {
        Self {
            http,
            ipfs_gateway: ipfs_gateway.into().trim_end_matches('/').to_owned(),
            max_bytes,
        }
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

    /// Downloads `url`, refusing bodies over the size limit.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        let http_url = self.resolve(url)?;
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
}
