//! The subgraph: `_meta` (the indexing head) and the user's files, with the
//! SDK's query documents, and waiting for a file to be indexed the way the
//! SDK waits for a block.
//!
//! The SDK (`utils/subgraphConsistency`) compares `_meta.block.number` with the
//! block it needs, polls `_meta` every 2 s until it is reached, and caches
//! `_meta` per subgraph URL for 2 s, so that concurrent callers share one
//! query. [`SubgraphClient::wait_for_file`] does the same: the `_meta` cache is
//! shared by every journey using this client (at most one `_meta` query per
//! `ttl`, one in flight at a time), a cached head already at the block needed
//! is never asked again, and the wait between polls doubles from the first
//! interval up to a cap ([`Backoff`]). The user's files are queried only once
//! `_meta` says they can be there.

use protocol::api::subgraph::{
    GraphQlRequest, GraphQlResponse, Meta, SubgraphMetaData, UserFilesData, UserPageVariables,
    queries,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{send, snippet};
use crate::errors::{JourneyError, Service};

/// The SDK's `_meta` cache lifetime (and its poll interval).
pub const SDK_META_TTL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct SubgraphClient {
    http: reqwest::Client,
    url: String,
    meta: Arc<MetaCache>,
}

/// The last `_meta` seen and when it was asked for; the lock is held while
/// a `_meta` query is in flight, so concurrent callers wait for its answer.
struct MetaCache {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Meta, Instant)>>,
}

/// The waits between polls: `initial`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after poll number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << n.min(16))
            .min(self.max.max(self.initial))
    }

    /// How many polls a wait of `elapsed` allows at most: the first at once,
    /// then one after each delay of the schedule that fits.
    pub fn polls_within(&self, elapsed: Duration) -> u32 {
        let (mut n, mut at) = (0u32, Duration::ZERO);
        while at <= elapsed {
            at += self.delay(n);
            n += 1;
        }
        n
    }
}

impl SubgraphClient {
    /// A client whose `_meta` answers are reused for [`SDK_META_TTL`].
    pub fn new(http: reqwest::Client, url: &url::Url) -> Self {
        Self::with_meta_ttl(http, url, SDK_META_TTL)
    }

    /// A client whose `_meta` answers are reused for `ttl` (shared by clones).
    pub fn with_meta_ttl(http: reqwest::Client, url: &url::Url, ttl: Duration) -> Self {
        SubgraphClient {
            http,
            url: url.to_string(),
            meta: Arc::new(MetaCache {
                ttl,
                last: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The indexing head for a caller that needs block `min_block`: the cached
    /// `_meta` when it already reaches `min_block` or is younger than the
    /// cache's lifetime, else a fresh `GetSubgraphMeta`. Returns the head and
    /// whether this call sent a query.
    pub async fn head(&self, min_block: u64) -> Result<(u64, bool), JourneyError> {
        let mut last = self.meta.last.lock().await;
        if let Some((m, at)) = last.as_ref()
            && (m.block.number >= min_block || at.elapsed() < self.meta.ttl)
        {
            return Ok((m.block.number, false));
        }
        let asked = Instant::now();
        let m = self.meta().await?;
        let n = m.block.number;
        *last = Some((m, asked));
        Ok((n, true))
    }

    /// Keeps a `_meta` that came with another answer, if it is newer.
    async fn note(&self, m: &Meta) {
        let mut last = self.meta.last.lock().await;
        if last
            .as_ref()
            .is_none_or(|(l, _)| l.block.number < m.block.number)
        {
            *last = Some((m.clone(), Instant::now()));
        }
    }

    /// Waits until the subgraph lists file `file_id` of `user` at a head of at
    /// least `min_block`: polls the (cached) `_meta` with `backoff` until it
    /// reaches `min_block`, then asks for the user's files; a miss goes back
    /// to waiting. Transient errors are retried at the next poll; the caller
    /// bounds the wait. Every query this call sends is added to `queries`.
    pub async fn wait_for_file(
        &self,
        user: alloy::primitives::Address,
        file_id: &str,
        min_block: u64,
        backoff: Backoff,
        queries: &mut u64,
    ) -> Result<(), JourneyError> {
        let mut n = 0u32;
        loop {
            if let Ok((head, asked)) = self.head(min_block).await.inspect_err(|_| *queries += 1) {
                *queries += u64::from(asked);
                if head >= min_block {
                    *queries += 1;
                    if let Ok(d) = self.user_files(user).await {
                        self.note(&d.meta).await;
                        if d.meta.block.number >= min_block
                            && d.user
                                .as_ref()
                                .is_some_and(|u| u.files.iter().any(|f| f.id == file_id))
                        {
                            return Ok(());
                        }
                    }
                }
            }
            tokio::time::sleep(backoff.delay(n)).await;
            n = n.saturating_add(1);
        }
    }

    /// `GetSubgraphMeta`: the indexing head.
    pub async fn meta(&self) -> Result<Meta, JourneyError> {
        let req: GraphQlRequest = GraphQlRequest {
            query: queries::GET_SUBGRAPH_META.to_string(),
            variables: None,
            operation_name: Some("GetSubgraphMeta".into()),
        };
        let d: SubgraphMetaData = self.query(&req).await?;
        Ok(d.meta)
    }

    async fn query<V: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        req: &GraphQlRequest<V>,
    ) -> Result<T, JourneyError> {
        let a = send(Service::Indexer, &self.url, || {
            Ok(self.http.post(&self.url).json(req))
        })
        .await?;
        if let Some(e) = a.rate_limit(Service::Indexer, &format!("subgraph {}", self.url)) {
            return Err(e);
        }
        let (status, b) = (a.status, a.body);
        if status != 200 {
            return Err(JourneyError::rpc(format!(
                "subgraph {}: {status}: {}",
                self.url,
                snippet(&b)
            )));
        }
        let r: GraphQlResponse<T> = serde_json::from_slice(&b).map_err(|e| {
            JourneyError::rpc(format!(
                "subgraph {}: unexpected body ({e}): {}",
                self.url,
                snippet(&b)
            ))
        })?;
        r.into_result()
            .map_err(|e| JourneyError::rpc(format!("subgraph {}: {e}", self.url)))
    }

    /// `GetUserFilesPaginated` for `user` (newest first, one page), with `_meta`.
    pub async fn user_files(
        &self,
        user: alloy::primitives::Address,
    ) -> Result<UserFilesData, JourneyError> {
        let vars = UserPageVariables {
            user_id: format!("{user:#x}"),
            first: 100,
            skip: 0,
            order_by: Some("addedAtBlock".into()),
            order_direction: Some("desc".into()),
        };
        let req = GraphQlRequest {
            query: queries::GET_USER_FILES_PAGINATED.to_string(),
            variables: Some(vars),
            operation_name: Some("GetUserFilesPaginated".into()),
        };
        self.query(&req).await
    }
}
