//! The TEE's `POST {teeUrl}/RunProof`.

use protocol::api::tee::{RunProofAccepted, RunProofRequest, TeeError};

use super::{send, snippet};
use crate::errors::{ErrorKind, JourneyError, Service};

#[derive(Clone)]
pub struct TeeClient {
    http: reqwest::Client,
}

impl TeeClient {
    pub fn new(http: reqwest::Client) -> Self {
        TeeClient { http }
    }

    /// Asks the TEE at `base` to prove a job; 2xx means queued.
    pub async fn run_proof(
        &self,
        base: &str,
        req: &RunProofRequest,
    ) -> Result<Option<RunProofAccepted>, JourneyError> {
        let url = format!("{}/RunProof", base.trim_end_matches('/'));
        let a = send(Service::Tee, &url, || Ok(self.http.post(&url).json(req))).await?;
        if let Some(e) = a.rate_limit(Service::Tee, &format!("TEE POST {url}")) {
            return Err(e);
        }
        let (status, b) = (a.status, a.body);
        if !(200..300).contains(&status) {
            let (code, msg) = match serde_json::from_slice::<TeeError>(&b) {
                Ok(e) => (e.code.to_string(), e.error),
                Err(_) => (status.to_string(), snippet(&b)),
            };
            return Err(JourneyError::new(
                ErrorKind::Tee(code),
                format!("TEE POST {url}: {status}: {msg}"),
            ));
        }
        Ok(serde_json::from_slice(&b).ok())
    }
}
