//! One small client per HTTP service the journey talks to, all sharing one
//! keep-alive `reqwest::Client`. Each turns the service's failures into the
//! error taxonomy: storage → `storage_<status>`, relayer → `relayer_<code>`
//! (or the relayed revert), personal server → `server_<error_code>`.
//!
//! Every exchange goes through [`send`]: a 429, or a 503 with `Retry-After`,
//! is sent again after the wait the service asked for while the step's
//! deadline leaves room ([`crate::errors::fits_step`]), and an answer that
//! stays rate-limited becomes `<service>_rate_limited` ([`Answer::rate_limit`]).

pub mod relayer;
pub mod server;
pub mod storage;
pub mod subgraph;
pub mod tee;

use std::time::Duration;

use crate::errors::{JourneyError, Service, fits_step};

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

/// Sent again after a rate-limit answer at most this many times per call.
pub const RATE_LIMIT_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured (a longer one is a refusal).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A service's answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After`, in delta-seconds (HTTP dates are not honoured).
    pub retry_after: Option<Duration>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A 429, or a 503 that says when to come back.
    pub fn is_rate_limited(&self) -> bool {
        self.status == 429 || (self.status == 503 && self.retry_after.is_some())
    }

    /// The rate-limit error of this answer, when it is one.
    pub fn rate_limit(&self, service: Service, what: &str) -> Option<JourneyError> {
        self.is_rate_limited().then(|| {
            JourneyError::rate_limited(
                service,
                self.retry_after,
                format!(
                    "{what}: {} (Retry-After {:?}): {}",
                    self.status,
                    self.retry_after,
                    snippet(&self.body)
                ),
            )
        })
    }
}

/// Reads `Retry-After` as delta-seconds.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Sends the request `make` builds and reads the answer; a rate-limit answer
/// is sent again after the service's `Retry-After` (at most
/// [`RATE_LIMIT_RETRIES`] times, and only while the step has room). Only
/// rate limits are retried here: the service did not act on those.
pub(crate) async fn send(
    service: Service,
    url: &str,
    make: impl Fn() -> Result<reqwest::RequestBuilder, JourneyError>,
) -> Result<Answer, JourneyError> {
    let mut retries = 0;
    loop {
        let resp = make()?
            .send()
            .await
            .map_err(|e| JourneyError::from_http(service, url, &e))?;
        let answer = body(service, url, resp).await?;
        let wait = answer
            .retry_after
            .filter(|_| answer.is_rate_limited())
            .filter(|d| *d <= MAX_RETRY_AFTER);
        match wait {
            Some(wait) if retries < RATE_LIMIT_RETRIES && fits_step(wait) => {
                tracing::debug!(service = service.label(), ?wait, "rate limited; retrying");
                tokio::time::sleep(wait).await;
                retries += 1;
            }
            _ => return Ok(answer),
        }
    }
}

/// Reads a response body, classifying transport failures for `service`.
pub(crate) async fn body(
    service: Service,
    url: &str,
    resp: reqwest::Response,
) -> Result<Answer, JourneyError> {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| JourneyError::from_http(service, url, &e))?;
    Ok(Answer {
        status,
        body: bytes.to_vec(),
        retry_after,
    })
}

/// The first 200 characters of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(200).collect()
}
