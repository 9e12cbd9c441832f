//! The subgraph: `_meta` (the indexing head) and the user's files, with the
//! SDK's query documents.

use protocol::api::subgraph::{
    GraphQlRequest, GraphQlResponse, Meta, SubgraphMetaData, UserFilesData, UserPageVariables,
    queries,
};

use super::{send, snippet};
use crate::errors::{JourneyError, Service};

#[derive(Clone)]
pub struct SubgraphClient {
    http: reqwest::Client,
    url: String,
}

impl SubgraphClient {
    pub fn new(http: reqwest::Client, url: &url::Url) -> Self {
        SubgraphClient {
            http,
            url: url.to_string(),
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
