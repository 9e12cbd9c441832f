//! Storage: Pinata `pinFileToIPFS` or an IPFS node's `/api/v0/add` for
//! uploads (both give `ipfs://<cid>`), and the gateway for downloads.

use protocol::api::storage::{
    IPFS_ADD_PATH, IpfsAddResponse, PIN_FILE_PATH, PinFileResponse, PinataMetadata,
};
use reqwest::multipart::{Form, Part};

use super::{send, snippet};
use crate::errors::{JourneyError, Service};
use crate::target::{StorageConfig, StorageKind};

/// Uploads and downloads through the target's storage provider.
#[derive(Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    cfg: StorageConfig,
}

impl StorageClient {
    pub fn new(http: reqwest::Client, cfg: StorageConfig) -> Self {
        StorageClient { http, cfg }
    }

    /// Uploads `bytes` as `name` and returns `ipfs://<cid>`.
    pub async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, JourneyError> {
        let base = self.cfg.api_url.as_str().trim_end_matches('/');
        let part = |b: Vec<u8>| {
            Part::bytes(b)
                .file_name(name.to_string())
                .mime_str(content_type)
                .map_err(|e| {
                    JourneyError::storage(None, format!("content type {content_type:?}: {e}"))
                })
        };
        let url = match self.cfg.kind {
            StorageKind::Pinata => format!("{base}{PIN_FILE_PATH}"),
            StorageKind::Ipfs => format!("{base}{IPFS_ADD_PATH}"),
        };
        // Built anew for each attempt: a multipart body is sent once.
        let request = || -> Result<reqwest::RequestBuilder, JourneyError> {
            Ok(match self.cfg.kind {
                StorageKind::Pinata => {
                    let now =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    let meta = serde_json::to_string(&PinataMetadata::sdk(name, &now))
                        .map_err(|e| JourneyError::storage(None, format!("pinataMetadata: {e}")))?;
                    let form = Form::new()
                        .part("file", part(bytes.clone())?)
                        .text("pinataMetadata", meta);
                    let jwt = self.cfg.jwt.as_ref().ok_or_else(|| {
                        JourneyError::storage(Some(401), "storage.jwt is not set (PINATA_JWT)")
                    })?;
                    self.http
                        .post(&url)
                        .bearer_auth(jwt.expose())
                        .multipart(form)
                }
                StorageKind::Ipfs => self
                    .http
                    .post(&url)
                    .multipart(Form::new().part("file", part(bytes.clone())?)),
            })
        };
        let a = send(Service::Storage, &url, request).await?;
        if let Some(e) = a.rate_limit(Service::Storage, &format!("POST {url}")) {
            return Err(e);
        }
        let (status, b) = (a.status, a.body);
        if !(200..300).contains(&status) {
            return Err(JourneyError::storage(
                Some(status),
                format!("POST {url}: {status}: {}", snippet(&b)),
            ));
        }
        let cid = match self.cfg.kind {
            StorageKind::Pinata => {
                serde_json::from_slice::<PinFileResponse>(&b).map(|r| r.ipfs_hash)
            }
            StorageKind::Ipfs => serde_json::from_slice::<IpfsAddResponse>(&b).map(|r| r.hash),
        }
        .map_err(|e| {
            JourneyError::storage(
                Some(status),
                format!("POST {url}: unexpected body ({e}): {}", snippet(&b)),
            )
        })?;
        Ok(format!("ipfs://{cid}"))
    }

    /// The HTTP URL to download `url` from (`ipfs://cid` through the gateway).
    pub fn fetch_url(&self, url: &str) -> String {
        match url.strip_prefix("ipfs://") {
            Some(cid) => format!("{}/{cid}", self.cfg.gateway.as_str().trim_end_matches('/')),
            None => url.to_string(),
        }
    }

    /// Downloads `url` (`ipfs://…` or http(s)).
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, JourneyError> {
        let http_url = self.fetch_url(url);
        let a = send(Service::Storage, &http_url, || Ok(self.http.get(&http_url))).await?;
        if let Some(e) = a.rate_limit(Service::Storage, &format!("GET {http_url}")) {
            return Err(e);
        }
        let (status, b) = (a.status, a.body);
        if status != 200 {
            return Err(JourneyError::storage(
                Some(status),
                format!("GET {http_url}: {status}"),
            ));
        }
        Ok(b)
    }
}
