//! The personal server (`/api/v1`): identity, and operations created with
//! the app's EIP-191 signature over `{"permission_id":N}`. Error bodies
//! `{"detail":{…,"error_code"}}` become `server_<error_code>`.

use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use protocol::api::personal_server::{
    API_PREFIX, CreateOperation, ErrorBody, Identity, OperationCreated, OperationRequest,
    OperationStatus,
};

use super::{Answer, send, snippet};
use crate::errors::{ErrorKind, JourneyError, Service};

#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: String,
}

/// A non-2xx answer: `server_<error_code>` from the body, else `server_<status>`.
pub fn classify(method: &str, url: &str, status: u16, b: &[u8]) -> JourneyError {
    match serde_json::from_slice::<ErrorBody>(b) {
        Ok(e) => JourneyError::new(
            ErrorKind::Server(e.detail.error_code.clone()),
            format!("{method} {url}: {status}: {}", e.detail.detail),
        ),
        Err(_) => JourneyError::new(
            ErrorKind::Server(status.to_string()),
            format!("{method} {url}: {status}: {}", snippet(b)),
        ),
    }
}

impl ServerClient {
    pub fn new(http: reqwest::Client, base: &url::Url) -> Self {
        ServerClient {
            http,
            base: format!("{}{API_PREFIX}", base.as_str().trim_end_matches('/')),
        }
    }

    /// Sends what `make` builds; a non-2xx answer is classified.
    async fn answer(
        &self,
        method: &str,
        url: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, JourneyError> {
        let a = send(Service::Server, url, || Ok(make())).await?;
        if let Some(e) = a.rate_limit(Service::Server, &format!("{method} {url}")) {
            return Err(e);
        }
        if !a.is_success() {
            return Err(classify(method, url, a.status, &a.body));
        }
        Ok(a)
    }

    async fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        url: String,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, JourneyError> {
        let a = self.answer(method, &url, make).await?;
        let (status, b) = (a.status, a.body);
        serde_json::from_slice(&b).map_err(|e| {
            JourneyError::new(
                ErrorKind::Server(status.to_string()),
                format!("{method} {url}: unexpected body ({e}): {}", snippet(&b)),
            )
        })
    }

    /// `GET /identity?address=` → the per-user server address and public key.
    pub async fn identity(&self, user: Address) -> Result<Identity, JourneyError> {
        let url = format!("{}/identity?address={user}", self.base);
        self.exchange("GET", url.clone(), || self.http.get(&url))
            .await
    }

    /// `POST /operations`, signed by the app key exactly as the SDK does.
    pub async fn create_operation(
        &self,
        app: &PrivateKeySigner,
        permission_id: u64,
    ) -> Result<OperationCreated, JourneyError> {
        let json = OperationRequest::sdk_json(permission_id);
        let sig = app
            .sign_message_sync(json.as_bytes())
            .map_err(|e| JourneyError::crypto(format!("app signature: {e}")))?;
        let body = CreateOperation {
            app_signature: format!("0x{}", alloy::primitives::hex::encode(sig.as_bytes())),
            operation_request_json: json,
        };
        let url = format!("{}/operations", self.base);
        self.exchange("POST", url.clone(), || self.http.post(&url).json(&body))
            .await
    }

    /// `GET /operations/{id}`.
    pub async fn operation(&self, id: &str) -> Result<OperationStatus, JourneyError> {
        let url = format!("{}/operations/{id}", self.base);
        self.exchange("GET", url.clone(), || self.http.get(&url))
            .await
    }

    /// `POST /operations/{id}/cancel` → 204.
    pub async fn cancel(&self, id: &str) -> Result<(), JourneyError> {
        let url = format!("{}/operations/{id}/cancel", self.base);
        self.answer("POST", &url, || self.http.post(&url)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_server_codes() {
        let b = br#"{"detail":{"kind":"Error","detail":"bad sig","error_code":"AUTHENTICATION_ERROR","field":null}}"#;
        assert_eq!(
            classify("POST", "u", 401, b).class(),
            "server_AUTHENTICATION_ERROR"
        );
        assert_eq!(classify("GET", "u", 502, b"<html>").class(), "server_502");
        assert!(classify("GET", "u", 502, b"<html>").is_retryable());
    }

    #[test]
    fn the_signature_recovers_to_the_app() {
        let app = PrivateKeySigner::random();
        let json = OperationRequest::sdk_json(7);
        assert_eq!(json, r#"{"permission_id":7}"#);
        let sig = app.sign_message_sync(json.as_bytes()).unwrap();
        assert_eq!(
            sig.recover_address_from_msg(json.as_bytes()).unwrap(),
            app.address()
        );
    }
}
