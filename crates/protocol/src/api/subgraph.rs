//! The subgraph's GraphQL wire format (Goldsky / graph-node, `vana-wire.md` §5).
//!
//! The SDK sends `POST {subgraph}` with `{"query", "variables"}` and reads
//! `{"data", "errors"}`. This module holds the exact query texts the SDK sends
//! ([`queries`]), their variables, and the shapes of their results, so that the
//! client and the twin's indexer cannot drift apart.
//!
//! Conventions of The Graph that these types follow:
//! - `BigInt` fields are decimal strings in JSON ([`BigInt`]); `Bytes` fields are
//!   lowercase `0x` hex strings; `ID`s are strings (addresses lowercase, numeric
//!   ids in decimal, composite ids joined by `-`).
//! - `_meta.block.number` and `timestamp` are JSON numbers (`Int`), `hash` is `Bytes`.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The path the twin serves the subgraph at, as graph-node names subgraphs.
pub const SUBGRAPH_PATH: &str = "/subgraphs/name/vana";

/// The largest `first` graph-node accepts; the SDK's page size limit.
pub const MAX_FIRST: i32 = 1000;
/// The default `first` when the query gives none.
pub const DEFAULT_FIRST: i32 = 100;
/// The largest `skip` graph-node accepts by default.
pub const MAX_SKIP: i32 = 5000;

/// The SDK's query documents, byte for byte in structure (names, arguments,
/// selections); only comments and blank lines are left out.
pub mod queries {
    /// `vana.data.getUserFiles` (paginated).
    pub const GET_USER_FILES_PAGINATED: &str = r#"query GetUserFilesPaginated(
  $userId: ID!
  $first: Int!
  $skip: Int!
  $orderBy: File_orderBy
  $orderDirection: OrderDirection
) {
  user(id: $userId) {
    id
    files(
      first: $first
      skip: $skip
      orderBy: $orderBy
      orderDirection: $orderDirection
    ) {
      id
      url
      schemaId
      addedAtBlock
      addedAtTimestamp
      transactionHash
      owner {
        id
      }
    }
  }
  _meta {
    block {
      number
      timestamp
    }
    hasIndexingErrors
  }
}"#;

    /// DLP ids of the proofs of some files.
    pub const GET_FILE_PROOFS: &str = r#"query GetFileProofs($fileIds: [BigInt!]!) {
  dataRegistryProofs(where: { fileId_in: $fileIds }) {
    fileId
    dlp {
      id
    }
  }
}"#;

    /// `vana.permissions.getUserPermissions` (paginated).
    pub const GET_USER_PERMISSIONS_PAGINATED: &str = r#"query GetUserPermissionsPaginated(
  $userId: ID!
  $first: Int!
  $skip: Int!
  $orderBy: Permission_orderBy
  $orderDirection: OrderDirection
) {
  user(id: $userId) {
    id
    permissions(
      first: $first
      skip: $skip
      orderBy: $orderBy
      orderDirection: $orderDirection
    ) {
      id
      grant
      nonce
      signature
      startBlock
      endBlock
      addedAtBlock
      addedAtTimestamp
      transactionHash
      grantee {
        id
        address
      }
      filePermissions {
        file {
          id
          url
        }
      }
    }
  }
  _meta {
    block {
      number
      timestamp
    }
    hasIndexingErrors
  }
}"#;

    /// `vana.permissions.getTrustedServers` (paginated).
    pub const GET_USER_TRUSTED_SERVERS_PAGINATED: &str = r#"query GetUserTrustedServersPaginated(
  $userId: ID!
  $first: Int!
  $skip: Int!
  $orderBy: UserServer_orderBy
  $orderDirection: OrderDirection
) {
  user(id: $userId) {
    id
    serverTrusts(
      first: $first
      skip: $skip
      orderBy: $orderBy
      orderDirection: $orderDirection
    ) {
      id
      server {
        id
        serverAddress
        url
        publicKey
      }
      trustedAt
      trustedAtBlock
      untrustedAtBlock
      transactionHash
    }
  }
  _meta {
    block {
      number
      timestamp
    }
    hasIndexingErrors
  }
}"#;

    /// The indexing head, used for the SDK's consistency checks.
    pub const GET_SUBGRAPH_META: &str = r#"query GetSubgraphMeta {
  _meta {
    block {
      number
      timestamp
      hash
    }
    deployment
    hasIndexingErrors
  }
}"#;
}

/// A GraphQL request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphQlRequest<V = serde_json::Value> {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<V>,
    #[serde(
        default,
        rename = "operationName",
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_name: Option<String>,
}

/// A GraphQL response body: `data` and/or `errors`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphQlResponse<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GraphQlError>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> GraphQlResponse<T> {
    /// The data, or an error joining every GraphQL error message.
    pub fn into_result(self) -> Result<T, SubgraphError> {
        if !self.errors.is_empty() {
            return Err(SubgraphError::GraphQl(
                self.errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        self.data.ok_or(SubgraphError::NoData)
    }
}

/// One GraphQL error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphQlError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<serde_json::Value>,
}

/// A subgraph answer that carries no usable data.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SubgraphError {
    #[error("subgraph returned GraphQL errors: {0}")]
    GraphQl(String),
    #[error("subgraph response has neither data nor errors")]
    NoData,
}

/// A GraphQL `BigInt`: a decimal string in JSON, up to 2^256-1 (`endBlock` of a
/// live permission is `type(uint256).max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BigInt(pub U256);

impl BigInt {
    /// The value as a `u64`, if it fits.
    pub fn to_u64(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }
}

impl From<u64> for BigInt {
    fn from(v: u64) -> Self {
        BigInt(U256::from(v))
    }
}

impl From<U256> for BigInt {
    fn from(v: U256) -> Self {
        BigInt(v)
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A `BigInt` string that is not a non-negative decimal integer below 2^256.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("invalid BigInt {0:?}: expected a decimal integer string")]
pub struct BigIntError(pub String);

impl FromStr for BigInt {
    type Err = BigIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BigIntError(s.to_string()));
        }
        U256::from_str_radix(s, 10)
            .map(BigInt)
            .map_err(|_| BigIntError(s.to_string()))
    }
}

impl Serialize for BigInt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `{"id": …}`, a reference to another entity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdRef {
    pub id: String,
}

/// `_meta { block { number timestamp hash } deployment hasIndexingErrors }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub block: MetaBlock,
    /// Present when selected (`GetSubgraphMeta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    pub has_indexing_errors: bool,
}

/// The latest block the subgraph has indexed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetaBlock {
    pub number: u64,
    #[serde(default)]
    pub timestamp: Option<u64>,
    /// Present when selected; `null` before any block is indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Variables of the three paginated user queries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserPageVariables {
    /// The user's address, lowercase hex.
    pub user_id: String,
    pub first: i32,
    pub skip: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// `"asc"` or `"desc"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_direction: Option<String>,
}

/// Variables of `GetFileProofs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileProofsVariables {
    pub file_ids: Vec<BigInt>,
}

/// Result of `GetUserFilesPaginated`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserFilesData {
    pub user: Option<UserFiles>,
    #[serde(rename = "_meta")]
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserFiles {
    pub id: String,
    pub files: Vec<FileEntity>,
}

/// A `File` as the SDK selects it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileEntity {
    pub id: String,
    pub url: String,
    pub schema_id: BigInt,
    pub added_at_block: BigInt,
    pub added_at_timestamp: BigInt,
    pub transaction_hash: String,
    pub owner: IdRef,
}

/// Result of `GetFileProofs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileProofsData {
    pub data_registry_proofs: Vec<FileProof>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileProof {
    pub file_id: BigInt,
    pub dlp: Option<IdRef>,
}

/// Result of `GetUserPermissionsPaginated`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserPermissionsData {
    pub user: Option<UserPermissions>,
    #[serde(rename = "_meta")]
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserPermissions {
    pub id: String,
    pub permissions: Vec<PermissionEntity>,
}

/// A `Permission` as the SDK selects it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionEntity {
    pub id: String,
    pub grant: String,
    pub nonce: BigInt,
    /// Always `"0x"` on the success path of the real subgraph.
    pub signature: String,
    pub start_block: BigInt,
    pub end_block: Option<BigInt>,
    pub added_at_block: BigInt,
    pub added_at_timestamp: BigInt,
    pub transaction_hash: String,
    pub grantee: GranteeRef,
    pub file_permissions: Vec<FilePermissionRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GranteeRef {
    pub id: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FilePermissionRef {
    pub file: FileRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    pub id: String,
    pub url: String,
}

/// Result of `GetUserTrustedServersPaginated`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserTrustedServersData {
    pub user: Option<UserServerTrusts>,
    #[serde(rename = "_meta")]
    pub meta: Meta,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserServerTrusts {
    pub id: String,
    pub server_trusts: Vec<ServerTrustEntity>,
}

/// A `UserServer` as the SDK selects it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerTrustEntity {
    /// `"<userLower>-<serverId>"`.
    pub id: String,
    pub server: ServerRef,
    pub trusted_at: BigInt,
    pub trusted_at_block: BigInt,
    pub untrusted_at_block: Option<BigInt>,
    pub transaction_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerRef {
    pub id: String,
    pub server_address: String,
    pub url: String,
    pub public_key: String,
}

/// Result of `GetSubgraphMeta`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubgraphMetaData {
    #[serde(rename = "_meta")]
    pub meta: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigint_is_a_decimal_string_up_to_u256_max() {
        let max = BigInt(U256::MAX);
        let json = serde_json::to_string(&max).unwrap();
        assert_eq!(
            json,
            "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\""
        );
        assert_eq!(serde_json::from_str::<BigInt>(&json).unwrap(), max);
        assert_eq!(
            serde_json::from_str::<BigInt>("\"42\"").unwrap().to_u64(),
            Some(42)
        );
        for bad in ["\"0x10\"", "\"-1\"", "\"\"", "12", "\"1e3\""] {
            assert!(serde_json::from_str::<BigInt>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_with_errors_is_an_error_naming_them() {
        let r: GraphQlResponse<SubgraphMetaData> = serde_json::from_str(
            r#"{"errors":[{"message":"Type `Query` has no field `nope`","locations":[{"line":1,"column":3}]}]}"#,
        )
        .unwrap();
        let e = r.into_result().unwrap_err();
        assert!(e.to_string().contains("has no field `nope`"), "{e}");
    }

    #[test]
    fn user_null_parses() {
        let r: GraphQlResponse<UserFilesData> = serde_json::from_str(
            r#"{"data":{"user":null,"_meta":{"block":{"number":7,"timestamp":1700000000},"hasIndexingErrors":false}}}"#,
        )
        .unwrap();
        let d = r.into_result().unwrap();
        assert!(d.user.is_none());
        assert_eq!(d.meta.block.number, 7);
    }
}
