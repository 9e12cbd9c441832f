//! The subgraph's GraphQL schema, as graph-node exposes it for the Vana
//! subgraph's entities (`vana-wire.md` §5), answered from the SQLite store.
//!
//! Names follow graph-node: entity types and fields as in `schema.graphql`,
//! `BigInt`/`Bytes` scalars (strings in JSON), `<Type>_orderBy` and
//! `<Type>_filter` inputs with `field_in`-style filters, `OrderDirection`,
//! `first` (default 100, at most 1000) and `skip` (at most 5000), `_meta`.
//! Lists without `orderBy` are ordered by `id`, as text, like graph-node does.
//!
//! Every request runs in one SQLite read transaction ([`ReadTx`]), so `_meta`
//! and the entities of one answer describe the same indexed block.
//!
//! By job: [`reader`] (read transactions), [`scalars`], [`inputs`] (ordering
//! and filters), [`sql`] (the SQL they become), [`entities`] and [`query`]
//! (the root type).

mod entities;
mod inputs;
mod query;
mod reader;
mod scalars;
mod sql;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub use entities::{
    DataRegistryProof, Dlp, Epoch, File, Grantee, Meta, MetaBlock, Permission, PermissionFile,
    Server, User, UserServer,
};
pub use inputs::{
    BlockHeight, FileFilter, FileOrderBy, GranteeOrderBy, OrderDirection, PermissionFilter,
    PermissionOrderBy, ProofFilter, ProofOrderBy, ServerOrderBy, UserServerFilter,
    UserServerOrderBy,
};
pub use query::Query;
pub use reader::{ReadTx, ReaderPool};
pub use scalars::{BigInt, Bytes};

/// The schema type served at `/subgraphs/name/vana`.
pub type SubgraphSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Static facts `_meta` reports.
#[derive(Debug, Clone)]
pub struct MetaInfo {
    pub deployment: String,
    /// The block reported before anything is indexed (start block - 1).
    pub before_start: u64,
}

/// Builds the schema.
pub fn schema(meta: MetaInfo) -> SubgraphSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(meta)
        .limit_depth(16)
        .finish()
}
