//! The SDK's UnifiedRelayer protocol: `POST {relayer}` with a
//! [`RelayRequest`], answered by a [`RelayResponse`]. On the SDK's protocol a
//! signed request is answered `signed{hash}` once broadcast and the caller
//! waits for the receipt and its event itself, as the SDK does; the
//! extension's `pending` answers are followed with `status_check` until they
//! settle.

use std::time::{Duration, Instant};

use protocol::api::relayer::{RelayRequest, RelayResponse};

use super::{send, snippet};
use crate::errors::{ErrorKind, JourneyError, Service};

#[derive(Clone)]
pub struct RelayerClient {
    http: reqwest::Client,
    url: String,
}

impl RelayerClient {
    pub fn new(http: reqwest::Client, url: &url::Url) -> Self {
        RelayerClient {
            http,
            url: url.to_string(),
        }
    }

    /// One exchange; a non-2xx status is `relayer_<status>`, an `error`
    /// answer is classified by [`classify_error`].
    pub async fn post(&self, req: &RelayRequest) -> Result<RelayResponse, JourneyError> {
        let a = send(Service::Relayer, &self.url, || {
            Ok(self.http.post(&self.url).json(req))
        })
        .await?;
        if let Some(e) = a.rate_limit(Service::Relayer, &format!("POST {}", self.url)) {
            return Err(e);
        }
        let (status, b) = (a.status, a.body);
        let parsed: Result<RelayResponse, _> = serde_json::from_slice(&b);
        match parsed {
            Ok(RelayResponse::Error { error }) => Err(classify_error(status, &error)),
            Ok(r) if (200..300).contains(&status) => Ok(r),
            _ => Err(JourneyError::new(
                ErrorKind::Relayer(status.to_string()),
                format!("POST {}: {status}: {}", self.url, snippet(&b)),
            )),
        }
    }

    /// Submits `req` and follows `pending` with `status_check` (every
    /// `interval`) until the answer is anything else, within `limit`.
    pub async fn submit(
        &self,
        req: &RelayRequest,
        interval: Duration,
        limit: Duration,
    ) -> Result<RelayResponse, JourneyError> {
        let started = Instant::now();
        let mut resp = self.post(req).await?;
        while let RelayResponse::Pending { operation_id } = &resp {
            if started.elapsed() > limit {
                return Err(JourneyError::timeout(format!(
                    "relayer operation {operation_id} still pending after {limit:?}"
                )));
            }
            tokio::time::sleep(interval).await;
            resp = self
                .post(&RelayRequest::StatusCheck {
                    operation_id: operation_id.clone(),
                })
                .await?;
        }
        Ok(resp)
    }
}

/// An `{type:"error", error}` answer: a relayed revert (`revert(Name…)` or
/// `execution reverted…`) keeps its error name, node errors (nonce, funds)
/// their class, anything else is `relayer_<word>`: `busy`, `signature`,
/// `unsupported`, or the relayer's own upstream that failed — `storage` (its
/// upload of a grant file), `rpc` (its node refused a call or transaction),
/// `not_mined` (its transaction was given up), `timeout` — else `error`
/// (an SDK-protocol answer, HTTP 200) or the HTTP status.
pub fn classify_error(status: u16, error: &str) -> JourneyError {
    if let Some(rest) = error.strip_prefix("revert(") {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        return JourneyError::new(ErrorKind::Revert(name), format!("relayer: {error}"));
    }
    let e = JourneyError::from_rpc_message(error, None);
    if e.kind != ErrorKind::Rpc && e.kind != ErrorKind::Timeout {
        return JourneyError::new(e.kind, format!("relayer: {error}"));
    }
    let lower = error.to_ascii_lowercase();
    let code = if lower.contains("busy") || lower.contains("capacity") {
        "busy".to_string()
    } else if lower.contains("signature") || lower.contains("security verification failed") {
        "signature".to_string()
    } else if lower.starts_with("unsupported operation type") {
        "unsupported".to_string()
    } else if lower.starts_with("grant upload") {
        "storage".to_string()
    } else if lower.contains("was not mined") {
        "not_mined".to_string()
    } else if e.kind == ErrorKind::Timeout {
        "timeout".to_string()
    } else if lower.contains("the node rejected") || lower.contains("error code -32") {
        "rpc".to_string()
    } else if (200..300).contains(&status) {
        "error".to_string()
    } else {
        status.to_string()
    };
    JourneyError::new(ErrorKind::Relayer(code), format!("relayer: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayer_errors_are_classified() {
        assert_eq!(
            classify_error(200, "revert(InvalidNonce(1, 0))").class(),
            "revert(InvalidNonce)"
        );
        assert_eq!(classify_error(200, "nonce too low").class(), "nonce");
        assert_eq!(classify_error(503, "relayer busy").class(), "relayer_busy");
        assert!(classify_error(503, "relayer busy").is_retryable());
        assert_eq!(
            classify_error(400, "signature does not match expectedUserAddress").class(),
            "relayer_signature"
        );
        assert_eq!(classify_error(500, "something").class(), "relayer_500");
        // The SDK handler's own messages, answered with HTTP 200.
        assert_eq!(
            classify_error(
                200,
                "Security verification failed: Recovered signer address (0x1) does not match expected user address (0x2)"
            )
            .class(),
            "relayer_signature"
        );
        assert_eq!(
            classify_error(200, "Unsupported operation type: RegisterGrantee").class(),
            "relayer_unsupported"
        );
        // The relayer's own upstreams, as the twin's relayer words them.
        for (message, class) in [
            (
                "grant upload to http://127.0.0.1:1/pinning/pinFileToIPFS answered 503 Service Unavailable: {}",
                "relayer_storage",
            ),
            (
                "the node rejected the addFileWithPermissions transaction: server returned an error response: error code -32603: injected fault: the chain refused the call",
                "relayer_rpc",
            ),
            (
                "the addFileWithPermissions transaction was not mined after 3 replacements; its nonce was cancelled",
                "relayer_not_mined",
            ),
            ("request timed out", "relayer_timeout"),
            ("something else", "relayer_error"),
        ] {
            assert_eq!(classify_error(200, message).class(), class, "{message}");
        }
    }
}
