//! The journey's error taxonomy and its retry policy.
//!
//! Every failure of the virtual user is one [`ErrorKind`], whose
//! [`class`](ErrorKind::class) is the stable label used in results and
//! histograms: `rpc`, `nonce`, `revert(<ErrorName>)`, `timeout`,
//! `storage_<status>`, `relayer_<code>`, `server_<error_code>`,
//! `inference_failed`, `indexer_lag`, `insufficient_funds`, `crypto`,
//! `<service>_rate_limited`.
//! Only some kinds are retryable ([`ErrorKind::is_retryable`]);
//! [`RetryPolicy::run`] retries those, a bounded number of times, with
//! exponential backoff and full jitter — or, when the service said how long
//! to wait (`Retry-After`), after that long, and only if the step's deadline
//! ([`with_timeout`], visible to the retries as [`step_deadline`]) leaves
//! room: a wait that would outlast it ends the step with the rate-limit
//! error it got, not with a timeout that would hide it.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

/// What went wrong, as a class the results can count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The RPC endpoint failed (connection, HTTP error, JSON-RPC error that is not a revert).
    Rpc,
    /// The transaction nonce was rejected (too low, already known, underpriced replacement).
    Nonce,
    /// A contract call reverted; the payload is the custom error's name (or `0x<selector>`).
    Revert(String),
    /// A step or request ran out of time.
    Timeout,
    /// Storage answered with this HTTP status (0 when no answer was received).
    Storage(u16),
    /// The relayer answered with this error code (HTTP status or protocol code).
    Relayer(String),
    /// The personal server answered with this `error_code` (or HTTP status).
    Server(String),
    /// The TEE refused a proof request with this error code (or HTTP status).
    Tee(String),
    /// The inference operation ended `failed` or `canceled`, or its output is wrong.
    InferenceFailed,
    /// The indexer did not reach the receipt's block (or show the file) in time.
    IndexerLag,
    /// The account cannot pay for gas plus value.
    InsufficientFunds,
    /// Key derivation, signing, encryption or decryption failed.
    Crypto,
    /// The service answered 429, or 503 with `Retry-After`, and kept doing
    /// so as long as the step could wait.
    RateLimited(Service),
}

impl ErrorKind {
    /// The stable label of this kind, e.g. `revert(InvalidNonce)` or `server_AUTHENTICATION_ERROR`.
    pub fn class(&self) -> String {
        match self {
            ErrorKind::Rpc => "rpc".into(),
            ErrorKind::Nonce => "nonce".into(),
            ErrorKind::Revert(name) => format!("revert({name})"),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Storage(status) => format!("storage_{status}"),
            ErrorKind::Relayer(code) => format!("relayer_{code}"),
            ErrorKind::Server(code) => format!("server_{code}"),
            ErrorKind::Tee(code) => format!("tee_{code}"),
            ErrorKind::InferenceFailed => "inference_failed".into(),
            ErrorKind::IndexerLag => "indexer_lag".into(),
            ErrorKind::InsufficientFunds => "insufficient_funds".into(),
            ErrorKind::Crypto => "crypto".into(),
            ErrorKind::RateLimited(service) => format!("{}_rate_limited", service.label()),
        }
    }

    /// Whether trying the same call again may succeed.
    ///
    /// Transient transport failures, nonce races, rate limits and 5xx
    /// answers are retryable; reverts, validation errors, failed inference,
    /// lack of funds, crypto failures and step timeouts are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ErrorKind::Rpc | ErrorKind::Nonce | ErrorKind::RateLimited(_) => true,
            ErrorKind::Storage(status) => *status == 0 || *status == 429 || *status >= 500,
            ErrorKind::Relayer(code) => match code.parse::<u16>() {
                Ok(status) => status == 0 || status == 429 || status >= 500,
                Err(_) => matches!(code.as_str(), "network" | "rate_limited" | "busy"),
            },
            ErrorKind::Server(code) => match code.parse::<u16>() {
                Ok(status) => status == 0 || status == 429 || status >= 502,
                Err(_) => matches!(code.as_str(), "RATE_LIMIT_ERROR" | "BLOCKCHAIN_ERROR"),
            },
            ErrorKind::Tee(code) => code
                .parse::<u16>()
                .is_ok_and(|status| status == 0 || status == 429 || status >= 500),
            ErrorKind::Revert(_)
            | ErrorKind::Timeout
            | ErrorKind::InferenceFailed
            | ErrorKind::IndexerLag
            | ErrorKind::InsufficientFunds
            | ErrorKind::Crypto => false,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.class())
    }
}

/// A classified failure with a human message (never containing secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct JourneyError {
    pub kind: ErrorKind,
    pub message: String,
    /// How long the service asked to wait before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl JourneyError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A rate-limit answer of `service`, with the wait it asked for.
    pub fn rate_limited(
        service: Service,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            retry_after,
            ..Self::new(ErrorKind::RateLimited(service), message)
        }
    }

    /// Shorthand for [`ErrorKind::class`].
    pub fn class(&self) -> String {
        self.kind.class()
    }

    /// Shorthand for [`ErrorKind::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    pub fn rpc(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rpc, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    pub fn crypto(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Crypto, message)
    }

    /// Classifies a failed HTTP exchange with storage.
    pub fn storage(status: Option<u16>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage(status.unwrap_or(0)), message)
    }

    /// Classifies a reqwest transport error of a service; a timeout stays a timeout.
    pub fn from_http(service: Service, url: &str, e: &reqwest::Error) -> Self {
        let status = e.status().map(|s| s.as_u16());
        let msg = format!("{url}: {}", without_url(e));
        if e.is_timeout() {
            return Self::timeout(msg);
        }
        let code = status.unwrap_or(0);
        match service {
            Service::Storage => Self::new(ErrorKind::Storage(code), msg),
            Service::Relayer => Self::new(ErrorKind::Relayer(code.to_string()), msg),
            Service::Server => Self::new(ErrorKind::Server(code.to_string()), msg),
            Service::Tee => Self::new(ErrorKind::Tee(code.to_string()), msg),
            Service::Indexer | Service::Rpc => Self::rpc(msg),
        }
    }

    /// Classifies an error message of a JSON-RPC node (or of a relayer that
    /// forwards one): nonce races, lack of funds, reverts (with the custom
    /// error decoded from `revert_data`), the rest is `rpc`.
    pub fn from_rpc_message(message: &str, revert_data: Option<&[u8]>) -> Self {
        let lower = message.to_ascii_lowercase();
        let kind = if let Some(data) = revert_data.filter(|d| d.len() >= 4) {
            ErrorKind::Revert(revert_name(data))
        } else if lower.contains("insufficient funds")
            || lower.contains("insufficient balance for transfer")
        {
            ErrorKind::InsufficientFunds
        } else if lower.contains("nonce too low")
            || lower.contains("nonce too high")
            || lower.contains("invalid nonce")
            || lower.contains("already known")
            || lower.contains("replacement transaction underpriced")
            || lower.contains("nonce has already been used")
        {
            ErrorKind::Nonce
        } else if lower.contains("execution reverted") || lower.contains("reverted") {
            ErrorKind::Revert(revert_reason(message).unwrap_or_else(|| "unknown".into()))
        } else if lower.contains("timed out") || lower.contains("timeout") {
            ErrorKind::Timeout
        } else {
            ErrorKind::Rpc
        };
        Self::new(kind, truncate(message, 300))
    }

    /// Classifies an alloy transport error.
    pub fn from_transport(e: &alloy::transports::TransportError) -> Self {
        let data = e.as_error_resp().and_then(|p| p.as_revert_data());
        Self::from_rpc_message(&e.to_string(), data.as_ref().map(|b| b.as_ref()))
    }

    /// Classifies an alloy contract error (calls, sends, receipts).
    pub fn from_contract(e: &alloy::contract::Error) -> Self {
        let data = e.as_revert_data();
        Self::from_rpc_message(&e.to_string(), data.as_ref().map(|b| b.as_ref()))
    }
}

impl Serialize for JourneyError {
    /// Serialised as its class and message: `{"class":"timeout","message":"…"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("JourneyError", 2)?;
        st.serialize_field("class", &self.class())?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// Which service an HTTP error came from, to pick its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Rpc,
    Storage,
    Relayer,
    Server,
    Indexer,
    Tee,
}

impl Service {
    /// The prefix of its error classes (`storage`, `server`, …).
    pub fn label(self) -> &'static str {
        match self {
            Service::Rpc => "rpc",
            Service::Storage => "storage",
            Service::Relayer => "relayer",
            Service::Server => "server",
            Service::Indexer => "indexer",
            Service::Tee => "tee",
        }
    }
}

/// reqwest errors embed the URL (which may carry a key in a query string);
/// keep only the description.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<url>");
    }
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `execution reverted: Reason` → `Reason`.
fn revert_reason(message: &str) -> Option<String> {
    let idx = message.find("reverted: ")?;
    let reason = message[idx + "reverted: ".len()..].trim();
    let reason: String = reason
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!reason.is_empty()).then_some(reason)
}

/// The name of the custom error in revert data (`InvalidNonce`, via
/// [`protocol::contracts::decode_revert`]), or `0x<selector>` when unknown.
pub fn revert_name(data: &[u8]) -> String {
    if data.len() < 4 {
        return "empty".into();
    }
    protocol::contracts::decode_revert(data)
        .unwrap_or_else(|| format!("0x{}", hex::encode(&data[..4])))
}

/// Bounded retries with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay bound before the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Upper bound of any single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The delay before retry number `retry` (1-based): uniform in
    /// `[cap/2, cap]` where `cap = min(max_delay, base·2^(retry-1))`.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
        let cap = exp.min(self.max_delay);
        let half = cap / 2;
        let span = cap.saturating_sub(half).as_micros() as u64;
        let jitter = if span == 0 {
            0
        } else {
            rand::random::<u64>() % (span + 1)
        };
        half + Duration::from_micros(jitter)
    }

    /// Runs `f` until it succeeds, fails with a non-retryable kind, or the
    /// attempts are used up; returns the last error.
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, JourneyError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, JourneyError>>,
    {
        let mut attempt = 1;
        loop {
            match f(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.max_attempts.max(1) => {
                    let delay = e.retry_after.unwrap_or_else(|| self.delay(attempt));
                    if !fits_step(delay) {
                        return Err(e);
                    }
                    tracing::debug!(class = %e.class(), attempt, "retrying: {}", e.message);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

tokio::task_local! {
    static STEP_DEADLINE: Instant;
}

/// When the step running on this task must end (inside [`with_timeout`]).
pub fn step_deadline() -> Option<Instant> {
    STEP_DEADLINE.try_with(|d| *d).ok()
}

/// Whether waiting `delay` still leaves the step time to try again.
pub fn fits_step(delay: Duration) -> bool {
    step_deadline().is_none_or(|deadline| Instant::now() + delay < deadline)
}

/// Runs `fut` with a deadline; on expiry the error is `timeout` naming `what`.
/// Retries inside see the deadline ([`step_deadline`]).
pub async fn with_timeout<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, JourneyError>>,
) -> Result<T, JourneyError> {
    let deadline = Instant::now() + limit;
    match tokio::time::timeout(limit, STEP_DEADLINE.scope(deadline, fut)).await {
        Ok(r) => r,
        Err(_) => Err(JourneyError::timeout(format!(
            "{what} did not finish within {limit:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn classes_are_the_documented_labels() {
        assert_eq!(ErrorKind::Rpc.class(), "rpc");
        assert_eq!(ErrorKind::Nonce.class(), "nonce");
        assert_eq!(
            ErrorKind::Revert("InvalidNonce".into()).class(),
            "revert(InvalidNonce)"
        );
        assert_eq!(ErrorKind::Timeout.class(), "timeout");
        assert_eq!(ErrorKind::Storage(413).class(), "storage_413");
        assert_eq!(ErrorKind::Relayer("400".into()).class(), "relayer_400");
        assert_eq!(
            ErrorKind::Server("AUTHENTICATION_ERROR".into()).class(),
            "server_AUTHENTICATION_ERROR"
        );
        assert_eq!(
            ErrorKind::Tee("JOB_MISMATCH".into()).class(),
            "tee_JOB_MISMATCH"
        );
        assert!(ErrorKind::Tee("503".into()).is_retryable());
        assert!(!ErrorKind::Tee("JOB_MISMATCH".into()).is_retryable());
        assert_eq!(ErrorKind::InferenceFailed.class(), "inference_failed");
        assert_eq!(ErrorKind::IndexerLag.class(), "indexer_lag");
        assert_eq!(ErrorKind::InsufficientFunds.class(), "insufficient_funds");
        assert_eq!(ErrorKind::Crypto.class(), "crypto");
    }

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::Rpc.is_retryable());
        assert!(ErrorKind::Nonce.is_retryable());
        assert!(ErrorKind::Storage(503).is_retryable());
        assert!(ErrorKind::Storage(429).is_retryable());
        assert!(!ErrorKind::Storage(413).is_retryable());
        assert!(ErrorKind::Server("RATE_LIMIT_ERROR".into()).is_retryable());
        assert!(!ErrorKind::Server("GRANT_VALIDATION_ERROR".into()).is_retryable());
        assert!(ErrorKind::Relayer("502".into()).is_retryable());
        assert!(!ErrorKind::Relayer("400".into()).is_retryable());
        for k in [
            ErrorKind::Revert("X".into()),
            ErrorKind::Timeout,
            ErrorKind::InferenceFailed,
            ErrorKind::IndexerLag,
            ErrorKind::InsufficientFunds,
            ErrorKind::Crypto,
        ] {
            assert!(!k.is_retryable(), "{k}");
        }
    }

    #[test]
    fn revert_data_decodes_to_the_error_name() {
        // InvalidNonce(uint256,uint256) with two arguments.
        let sel = &alloy::primitives::keccak256(b"InvalidNonce(uint256,uint256)")[..4];
        let mut data = sel.to_vec();
        data.extend_from_slice(&[0u8; 64]);
        assert_eq!(revert_name(&data), "InvalidNonce");
        assert_eq!(revert_name(&[0xde, 0xad, 0xbe, 0xef]), "0xdeadbeef");
        let e = JourneyError::from_rpc_message("execution reverted", Some(&data));
        assert_eq!(e.class(), "revert(InvalidNonce)");
    }

    #[test]
    fn rpc_messages_are_classified() {
        let c = |m: &str| JourneyError::from_rpc_message(m, None).class();
        assert_eq!(
            c("server returned an error response: error code -32003: nonce too low"),
            "nonce"
        );
        assert_eq!(
            c("insufficient funds for gas * price + value: have 0 want 1000"),
            "insufficient_funds"
        );
        assert_eq!(
            c("execution reverted: FileUrlAlreadyUsed"),
            "revert(FileUrlAlreadyUsed)"
        );
        assert_eq!(c("connection refused"), "rpc");
        assert_eq!(c("request timed out"), "timeout");
    }

    #[test]
    fn delays_grow_and_stay_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.delay(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = p.delay(9);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1),
                "{d9:?}"
            );
        }
    }

    #[tokio::test]
    async fn retries_only_retryable_kinds_and_stops_at_the_bound() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(JourneyError::rpc("down")) }
            })
            .await;
        assert_eq!(r.unwrap_err().class(), "rpc");
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let r: Result<(), _> = p
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(JourneyError::new(
                        ErrorKind::Revert("EmptyGrant".into()),
                        "x",
                    ))
                }
            })
            .await;
        assert_eq!(r.unwrap_err().class(), "revert(EmptyGrant)");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let r = p
            .run(|attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 2 {
                        Err(JourneyError::storage(Some(503), "busy"))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 2);
    }

    #[tokio::test]
    async fn with_timeout_classifies_as_timeout() {
        let r: Result<(), _> = with_timeout("index", Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
        assert_eq!(r.unwrap_err().class(), "timeout");
    }

    #[test]
    fn rate_limits_have_a_class_per_service_and_are_retryable() {
        let e = JourneyError::rate_limited(Service::Storage, Some(Duration::from_secs(1)), "x");
        assert_eq!(e.class(), "storage_rate_limited");
        assert!(e.is_retryable());
        assert_eq!(
            ErrorKind::RateLimited(Service::Server).class(),
            "server_rate_limited"
        );
        assert_eq!(
            ErrorKind::RateLimited(Service::Tee).class(),
            "tee_rate_limited"
        );
    }

    #[tokio::test]
    async fn retry_after_is_the_delay_while_the_step_has_room() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
        };
        let limited =
            || JourneyError::rate_limited(Service::Server, Some(Duration::from_millis(50)), "429");
        // The service's 50 ms, not the policy's 30 s.
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r = with_timeout("step", Duration::from_secs(5), async {
            p.run(|attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 3 {
                        Err(limited())
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        assert!(started.elapsed() < Duration::from_secs(5));

        // A wait beyond the deadline ends the step with the rate limit, at once.
        let long =
            || JourneyError::rate_limited(Service::Server, Some(Duration::from_secs(60)), "429");
        calls.store(0, Ordering::SeqCst);
        let started = Instant::now();
        let r: Result<(), _> = with_timeout("step", Duration::from_secs(2), async {
            p.run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(long()) }
            })
            .await
        })
        .await;
        assert_eq!(r.unwrap_err().class(), "server_rate_limited");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
