//! The pure-HTTP flow: three requests per user and nothing else — no chain,
//! no keys, no crypto — so its numbers compare like for like with a general
//! HTTP load tool driving the same services.
//!
//! 1. `http_upload`: `POST` the user's bytes to the storage API (Pinata
//!    `pinFileToIPFS` or IPFS `/api/v0/add`, as the journey's upload), one
//!    file, the bytes made before the clock ([`HttpComponent::prepare`]);
//! 2. `http_read`: `GET` them back through the gateway (`/ipfs/<cid>`), and
//!    check they are the bytes sent;
//! 3. `http_query`: one subgraph GraphQL query, `GetUserFilesPaginated` for
//!    an address made from the user index (no key derivation).
//!
//! Each request is sent once (no retry beyond a service's own `Retry-After`)
//! and bounded by its step's deadline. The step names are distinct from the
//! journey's (`upload` sends a file and a grant, with retries), so a result
//! of one is never read as the other's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::Address;

use crate::data::{DataGenerator, DataSize};
use crate::errors::{JourneyError, with_timeout};
use crate::services::{http_client, storage::StorageClient, subgraph::SubgraphClient};
use crate::target::{Purpose, Target, TargetError};

/// One request of the HTTP flow, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpStep {
    Upload,
    Read,
    Query,
}

impl HttpStep {
    pub const ALL: [HttpStep; 3] = [HttpStep::Upload, HttpStep::Read, HttpStep::Query];

    /// The name in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            HttpStep::Upload => "http_upload",
            HttpStep::Read => "http_read",
            HttpStep::Query => "http_query",
        }
    }

    /// The service the request goes to (the gateway is the storage service's).
    pub fn component(self) -> &'static str {
        match self {
            HttpStep::Upload | HttpStep::Read => "storage",
            HttpStep::Query => "indexer",
        }
    }

    /// The default deadline (the journey's upload deadline for the upload).
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            HttpStep::Upload => 60,
            HttpStep::Read | HttpStep::Query => 30,
        })
    }
}

/// One request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStepResult {
    pub step: HttpStep,
    pub ok: bool,
    pub duration: Duration,
    pub error: Option<JourneyError>,
}

/// What the flow tells its observer as it goes.
#[derive(Debug)]
pub enum HttpEvent<'a> {
    Begin(HttpStep),
    End(&'a HttpStepResult),
}

/// The HTTP flow on a target: its two clients, the deadlines, and each
/// prepared user's bytes.
pub struct HttpComponent {
    storage: StorageClient,
    subgraph: SubgraphClient,
    data: DataGenerator,
    timeouts: HashMap<HttpStep, Duration>,
    ready: Mutex<HashMap<u64, Vec<u8>>>,
}

impl HttpComponent {
    /// The flow on `target`, which needs only storage and the subgraph.
    /// `timeouts` overrides the default deadlines by step name.
    pub fn new(
        target: &Target,
        run_seed: u64,
        run_id: &str,
        timeouts: &std::collections::BTreeMap<String, f64>,
    ) -> Result<HttpComponent, TargetError> {
        target.require(Purpose::Http)?;
        let http = http_client();
        let subgraph = target.subgraph_url.as_ref().expect("checked by require");
        let timeouts = HttpStep::ALL
            .into_iter()
            .map(|s| {
                let t = timeouts
                    .get(s.name())
                    .and_then(|secs| Duration::try_from_secs_f64(*secs).ok())
                    .unwrap_or_else(|| s.default_timeout());
                (s, t)
            })
            .collect();
        Ok(HttpComponent {
            storage: StorageClient::new(http.clone(), target.storage.clone()),
            subgraph: SubgraphClient::new(http, subgraph),
            data: DataGenerator::new(run_seed, run_id, chrono::Utc::now().timestamp_millis()),
            timeouts,
            ready: Mutex::new(HashMap::new()),
        })
    }

    /// The deadline of `step`.
    pub fn timeout(&self, step: HttpStep) -> Duration {
        self.timeouts[&step]
    }

    /// Makes each user's bytes (the synthetic dataset of its size), before the clock.
    pub fn prepare(&self, users: impl IntoIterator<Item = (u64, DataSize)>) {
        let made: Vec<_> = users
            .into_iter()
            .map(|(u, size)| (u, self.data.bytes(u, size)))
            .collect();
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(made);
    }

    /// Runs the three requests for `user`, stopping at the first failure.
    pub async fn run_observed(
        &self,
        user: u64,
        observe: &(dyn Fn(HttpEvent<'_>) + Send + Sync),
    ) -> Vec<HttpStepResult> {
        let bytes = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user);
        let mut url = String::new();
        let mut results: Vec<HttpStepResult> = Vec::with_capacity(3);
        for step in HttpStep::ALL {
            observe(HttpEvent::Begin(step));
            let started = Instant::now();
            let limit = self.timeout(step);
            let res = match step {
                HttpStep::Upload => match &bytes {
                    Some(b) => with_timeout(step.name(), limit, self.upload(user, b))
                        .await
                        .map(|u| url = u),
                    None => Err(JourneyError::rpc(format!(
                        "user {user} was not prepared before the clock"
                    ))),
                },
                HttpStep::Read => {
                    let sent = bytes.as_deref().unwrap_or_default();
                    with_timeout(step.name(), limit, self.read(&url, sent)).await
                }
                HttpStep::Query => {
                    with_timeout(step.name(), limit, self.query(user_address(user))).await
                }
            };
            let failed = res.is_err();
            results.push(HttpStepResult {
                step,
                ok: !failed,
                duration: started.elapsed(),
                error: res.err(),
            });
            if let Some(last) = results.last() {
                observe(HttpEvent::End(last));
            }
            if failed {
                break;
            }
        }
        results
    }

    async fn upload(&self, user: u64, bytes: &[u8]) -> Result<String, JourneyError> {
        self.storage
            .upload(
                &format!("http-{user}.json"),
                bytes.to_vec(),
                "application/json",
            )
            .await
    }

    async fn read(&self, url: &str, sent: &[u8]) -> Result<(), JourneyError> {
        let got = self.storage.fetch(url).await?;
        if got != sent {
            return Err(JourneyError::storage(
                Some(200),
                format!(
                    "GET {}: {} bytes that differ from the {} uploaded",
                    self.storage.fetch_url(url),
                    got.len(),
                    sent.len()
                ),
            ));
        }
        Ok(())
    }

    async fn query(&self, user: Address) -> Result<(), JourneyError> {
        self.subgraph.user_files(user).await.map(|_| ())
    }
}

/// The address the HTTP flow queries for user `user`: the index in the low
/// bytes (no key is derived; such a user has no files, which is still one
/// indexed lookup).
pub fn user_address(user: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&user.to_be_bytes());
    Address::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_named_apart_from_the_journey() {
        for s in HttpStep::ALL {
            assert!(s.name().parse::<crate::steps::Step>().is_err(), "{s:?}");
        }
        assert_eq!(HttpStep::Query.component(), "indexer");
        assert_eq!(
            user_address(258),
            "0x0000000000000000000000000000000000000102"
                .parse::<Address>()
                .unwrap()
        );
    }
}
