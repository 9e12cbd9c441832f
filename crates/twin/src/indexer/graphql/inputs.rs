//! The schema's input types: `OrderDirection`, the `<Type>_orderBy` enums
//! (each naming its SQL column), the `<Type>_filter` inputs (each adding its
//! clauses to a [`Where`]) and `Block_height`.

use async_graphql::{Enum, ID, InputObject};

use super::scalars::{BigInt, Bytes};
use super::sql::{Col, Where};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
#[graphql(name = "OrderDirection", rename_items = "lowercase")]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "File_orderBy", rename_items = "camelCase")]
pub enum FileOrderBy {
    Id,
    Owner,
    #[graphql(name = "owner__id")]
    OwnerId,
    Url,
    SchemaId,
    AddedAtBlock,
    AddedAtTimestamp,
    TransactionHash,
}

impl FileOrderBy {
    pub(super) fn col(self) -> Col {
        match self {
            Self::Id => Col::Text("id"),
            Self::Owner | Self::OwnerId => Col::Text("owner"),
            Self::Url => Col::Text("url"),
            Self::SchemaId => Col::Big("schema_id"),
            Self::AddedAtBlock => Col::Int("added_at_block"),
            Self::AddedAtTimestamp => Col::Int("added_at_timestamp"),
            Self::TransactionHash => Col::Text("transaction_hash"),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Permission_orderBy", rename_items = "camelCase")]
pub enum PermissionOrderBy {
    Id,
    Grantor,
    #[graphql(name = "grantor__id")]
    GrantorId,
    Grantee,
    #[graphql(name = "grantee__id")]
    GranteeId,
    Grant,
    Nonce,
    StartBlock,
    EndBlock,
    AddedAtBlock,
    AddedAtTimestamp,
    TransactionHash,
}

impl PermissionOrderBy {
    pub(super) fn col(self) -> Col {
        match self {
            Self::Id => Col::Text("id"),
            Self::Grantor | Self::GrantorId => Col::Text("grantor"),
            Self::Grantee | Self::GranteeId => Col::Text("grantee"),
            Self::Grant => Col::Text("grant_url"),
            Self::Nonce => Col::Big("nonce"),
            Self::StartBlock => Col::Big("start_block"),
            Self::EndBlock => Col::Big("end_block"),
            Self::AddedAtBlock => Col::Int("added_at_block"),
            Self::AddedAtTimestamp => Col::Int("added_at_timestamp"),
            Self::TransactionHash => Col::Text("transaction_hash"),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "UserServer_orderBy", rename_items = "camelCase")]
pub enum UserServerOrderBy {
    Id,
    User,
    #[graphql(name = "user__id")]
    UserId,
    Server,
    #[graphql(name = "server__id")]
    ServerId,
    TrustedAt,
    TrustedAtBlock,
    UntrustedAtBlock,
    TransactionHash,
}

impl UserServerOrderBy {
    pub(super) fn col(self) -> Col {
        match self {
            Self::Id => Col::Text("id"),
            Self::User | Self::UserId => Col::Text("user"),
            Self::Server | Self::ServerId => Col::Text("server"),
            Self::TrustedAt => Col::Int("trusted_at"),
            Self::TrustedAtBlock => Col::Int("trusted_at_block"),
            Self::UntrustedAtBlock => Col::Int("untrusted_at_block"),
            Self::TransactionHash => Col::Text("transaction_hash"),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "DataRegistryProof_orderBy", rename_items = "camelCase")]
pub enum ProofOrderBy {
    Id,
    FileId,
    ProofIndex,
    CreatedAt,
    CreatedAtBlock,
}

impl ProofOrderBy {
    pub(super) fn col(self) -> Col {
        match self {
            Self::Id => Col::Text("id"),
            Self::FileId => Col::Big("file_id"),
            Self::ProofIndex => Col::Big("proof_index"),
            Self::CreatedAt => Col::Int("created_at"),
            Self::CreatedAtBlock => Col::Int("created_at_block"),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Grantee_orderBy", rename_items = "camelCase")]
pub enum GranteeOrderBy {
    Id,
    Address,
    RegisteredAtBlock,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Server_orderBy", rename_items = "camelCase")]
pub enum ServerOrderBy {
    Id,
    ServerAddress,
    Url,
    RegisteredAtBlock,
}

pub(super) fn ids(v: Option<Vec<ID>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().map(|i| i.0).collect())
}

pub(super) fn bigs(v: Option<Vec<BigInt>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().map(|b| b.0).collect())
}

#[derive(InputObject, Default)]
#[graphql(name = "File_filter")]
pub struct FileFilter {
    id: Option<ID>,
    #[graphql(name = "id_in")]
    id_in: Option<Vec<ID>>,
    owner: Option<String>,
    url: Option<String>,
}

impl FileFilter {
    pub(super) fn build(self, w: &mut Where) {
        w.eq("id", self.id.map(|i| i.0));
        w.any("id", ids(self.id_in));
        w.eq("owner", self.owner.map(|s| s.to_ascii_lowercase()));
        w.eq("url", self.url);
    }
}

#[derive(InputObject, Default)]
#[graphql(name = "Permission_filter")]
pub struct PermissionFilter {
    id: Option<ID>,
    #[graphql(name = "id_in")]
    id_in: Option<Vec<ID>>,
    grantor: Option<String>,
    grantee: Option<String>,
}

impl PermissionFilter {
    pub(super) fn build(self, w: &mut Where) {
        w.eq("id", self.id.map(|i| i.0));
        w.any("id", ids(self.id_in));
        w.eq("grantor", self.grantor.map(|s| s.to_ascii_lowercase()));
        w.eq("grantee", self.grantee);
    }
}

#[derive(InputObject, Default)]
#[graphql(name = "UserServer_filter")]
pub struct UserServerFilter {
    id: Option<ID>,
    user: Option<String>,
    server: Option<String>,
}

impl UserServerFilter {
    pub(super) fn build(self, w: &mut Where) {
        w.eq("id", self.id.map(|i| i.0));
        w.eq("user", self.user.map(|s| s.to_ascii_lowercase()));
        w.eq("server", self.server);
    }
}

#[derive(InputObject, Default)]
#[graphql(name = "DataRegistryProof_filter")]
pub struct ProofFilter {
    id: Option<ID>,
    #[graphql(name = "fileId")]
    file_id: Option<BigInt>,
    #[graphql(name = "fileId_in")]
    file_id_in: Option<Vec<BigInt>>,
    user: Option<String>,
    dlp: Option<String>,
}

impl ProofFilter {
    pub(super) fn build(self, w: &mut Where) {
        w.eq("id", self.id.map(|i| i.0));
        w.eq("file_id", self.file_id.map(|b| b.0));
        w.any("file_id", bigs(self.file_id_in));
        w.eq("user", self.user.map(|s| s.to_ascii_lowercase()));
        w.eq("dlp", self.dlp);
    }
}

/// `block: {number}` as graph-node takes it.
#[derive(InputObject)]
#[graphql(name = "Block_height")]
pub struct BlockHeight {
    pub(super) number: Option<i64>,
    pub(super) hash: Option<Bytes>,
    pub(super) number_gte: Option<i64>,
}
