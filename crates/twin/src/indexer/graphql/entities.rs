//! The subgraph's entity types (`File`, `User`, `Permission`, `Grantee`,
//! `Server`, `UserServer`, `DataRegistryProof`, `Dlp`, `Epoch`, `_Meta_`):
//! each with its SQL columns, its row mapping and its derived fields.

use async_graphql::{ComplexObject, Context, ID, SimpleObject};
use rusqlite::Row;

use super::inputs::*;
use super::reader::db;
use super::scalars::{BigInt, Bytes};
use super::sql::{Where, by_id, limit_sql, list};

pub(super) const FILE_COLS: &str =
    "id, owner, url, schema_id, added_at_block, added_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "File", complex)]
pub struct File {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) owner_id: String,
    pub(super) url: String,
    pub(super) schema_id: BigInt,
    pub(super) added_at_block: BigInt,
    pub(super) added_at_timestamp: BigInt,
    pub(super) transaction_hash: Bytes,
}

impl File {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(File {
            id: ID(r.get(0)?),
            owner_id: r.get(1)?,
            url: r.get(2)?,
            schema_id: BigInt(r.get(3)?),
            added_at_block: BigInt(r.get::<_, i64>(4)?.to_string()),
            added_at_timestamp: BigInt(r.get::<_, i64>(5)?.to_string()),
            transaction_hash: Bytes(r.get(6)?),
        })
    }
}

#[ComplexObject]
impl File {
    async fn owner(&self) -> User {
        User {
            id: ID(self.owner_id.clone()),
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "User", complex)]
pub struct User {
    pub(super) id: ID,
}

#[ComplexObject]
impl User {
    async fn files(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<FileOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<FileFilter>,
    ) -> async_graphql::Result<Vec<File>> {
        let mut w = Where::default();
        w.eq("owner", Some(self.id.0.clone()));
        filter.unwrap_or_default().build(&mut w);
        list(
            ctx,
            "files",
            FILE_COLS,
            w,
            order_by.map(FileOrderBy::col),
            order_direction,
            first,
            skip,
            File::from_row,
        )
        .await
    }

    async fn permissions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<PermissionOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<PermissionFilter>,
    ) -> async_graphql::Result<Vec<Permission>> {
        let mut w = Where::default();
        w.eq("grantor", Some(self.id.0.clone()));
        filter.unwrap_or_default().build(&mut w);
        list(
            ctx,
            "permissions",
            PERMISSION_COLS,
            w,
            order_by.map(PermissionOrderBy::col),
            order_direction,
            first,
            skip,
            Permission::from_row,
        )
        .await
    }

    async fn server_trusts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<UserServerOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<UserServerFilter>,
    ) -> async_graphql::Result<Vec<UserServer>> {
        let mut w = Where::default();
        w.eq("user", Some(self.id.0.clone()));
        filter.unwrap_or_default().build(&mut w);
        list(
            ctx,
            "user_servers",
            USER_SERVER_COLS,
            w,
            order_by.map(UserServerOrderBy::col),
            order_direction,
            first,
            skip,
            UserServer::from_row,
        )
        .await
    }

    async fn file_contributions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<ProofOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<ProofFilter>,
    ) -> async_graphql::Result<Vec<DataRegistryProof>> {
        let mut w = Where::default();
        w.eq("user", Some(self.id.0.clone()));
        filter.unwrap_or_default().build(&mut w);
        list(
            ctx,
            "proofs",
            PROOF_COLS,
            w,
            order_by.map(ProofOrderBy::col),
            order_direction,
            first,
            skip,
            DataRegistryProof::from_row,
        )
        .await
    }
}

pub(super) const PERMISSION_COLS: &str = "id, grantor, grantee, grant_url, nonce, signature, start_block, end_block, added_at_block, added_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Permission", complex)]
pub struct Permission {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) grantor_id: String,
    #[graphql(skip)]
    pub(super) grantee_id: String,
    pub(super) grant: String,
    pub(super) nonce: BigInt,
    pub(super) signature: Bytes,
    pub(super) start_block: BigInt,
    pub(super) end_block: Option<BigInt>,
    pub(super) added_at_block: BigInt,
    pub(super) added_at_timestamp: BigInt,
    pub(super) transaction_hash: Bytes,
}

impl Permission {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Permission {
            id: ID(r.get(0)?),
            grantor_id: r.get(1)?,
            grantee_id: r.get(2)?,
            grant: r.get(3)?,
            nonce: BigInt(r.get(4)?),
            signature: Bytes(r.get(5)?),
            start_block: BigInt(r.get(6)?),
            end_block: r.get::<_, Option<String>>(7)?.map(BigInt),
            added_at_block: BigInt(r.get::<_, i64>(8)?.to_string()),
            added_at_timestamp: BigInt(r.get::<_, i64>(9)?.to_string()),
            transaction_hash: Bytes(r.get(10)?),
        })
    }
}

#[ComplexObject]
impl Permission {
    async fn grantor(&self) -> User {
        User {
            id: ID(self.grantor_id.clone()),
        }
    }

    async fn grantee(&self, ctx: &Context<'_>) -> async_graphql::Result<Grantee> {
        by_id(
            ctx,
            "grantees",
            GRANTEE_COLS,
            self.grantee_id.clone(),
            Grantee::from_row,
        )
        .await?
        .ok_or_else(|| {
            format!(
                "Grantee {} referenced by Permission {} is missing",
                self.grantee_id, self.id.0
            )
            .into()
        })
    }

    async fn file_permissions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
    ) -> async_graphql::Result<Vec<PermissionFile>> {
        let limit = limit_sql(first, skip)?;
        let perm = self.id.0.clone();
        db(ctx)?
            .run(move |c| {
                let sql = format!(
                    "SELECT pf.id, pf.permission, f.id, f.owner, f.url, f.schema_id, f.added_at_block, f.added_at_timestamp, f.transaction_hash
                     FROM permission_files pf JOIN files f ON f.id = pf.file
                     WHERE pf.permission = ?1 ORDER BY pf.id ASC {limit}"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map([perm], |r| {
                    Ok(PermissionFile {
                        id: ID(r.get(0)?),
                        permission_id: r.get(1)?,
                        file: File {
                            id: ID(r.get(2)?),
                            owner_id: r.get(3)?,
                            url: r.get(4)?,
                            schema_id: BigInt(r.get(5)?),
                            added_at_block: BigInt(r.get::<_, i64>(6)?.to_string()),
                            added_at_timestamp: BigInt(r.get::<_, i64>(7)?.to_string()),
                            transaction_hash: Bytes(r.get(8)?),
                        },
                    })
                })?;
                rows.collect()
            })
            .await
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "PermissionFile", complex)]
pub struct PermissionFile {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) permission_id: String,
    pub(super) file: File,
}

#[ComplexObject]
impl PermissionFile {
    async fn permission(&self, ctx: &Context<'_>) -> async_graphql::Result<Permission> {
        by_id(
            ctx,
            "permissions",
            PERMISSION_COLS,
            self.permission_id.clone(),
            Permission::from_row,
        )
        .await?
        .ok_or_else(|| "permission missing".into())
    }
}

pub(super) const GRANTEE_COLS: &str = "id, owner, address, public_key, registered_at_block, registered_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Grantee", complex)]
pub struct Grantee {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) owner_id: String,
    pub(super) address: Bytes,
    pub(super) public_key: String,
    pub(super) registered_at_block: BigInt,
    pub(super) registered_at_timestamp: BigInt,
    pub(super) transaction_hash: Bytes,
}

impl Grantee {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Grantee {
            id: ID(r.get(0)?),
            owner_id: r.get(1)?,
            address: Bytes(r.get(2)?),
            public_key: r.get(3)?,
            registered_at_block: BigInt(r.get::<_, i64>(4)?.to_string()),
            registered_at_timestamp: BigInt(r.get::<_, i64>(5)?.to_string()),
            transaction_hash: Bytes(r.get(6)?),
        })
    }
}

#[ComplexObject]
impl Grantee {
    async fn owner(&self) -> User {
        User {
            id: ID(self.owner_id.clone()),
        }
    }

    async fn permissions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<PermissionOrderBy>,
        order_direction: Option<OrderDirection>,
    ) -> async_graphql::Result<Vec<Permission>> {
        let mut w = Where::default();
        w.eq("grantee", Some(self.id.0.clone()));
        list(
            ctx,
            "permissions",
            PERMISSION_COLS,
            w,
            order_by.map(PermissionOrderBy::col),
            order_direction,
            first,
            skip,
            Permission::from_row,
        )
        .await
    }
}

pub(super) const SERVER_COLS: &str = "id, owner, server_address, public_key, url, registered_at_block, registered_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Server", complex)]
pub struct Server {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) owner_id: String,
    pub(super) server_address: Bytes,
    /// The key string as registered (the real schema declares `Bytes`; the
    /// value the SDK reads is the same hex string).
    pub(super) public_key: String,
    pub(super) url: String,
    pub(super) registered_at_block: BigInt,
    pub(super) registered_at_timestamp: BigInt,
    pub(super) transaction_hash: Bytes,
}

impl Server {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Server {
            id: ID(r.get(0)?),
            owner_id: r.get(1)?,
            server_address: Bytes(r.get(2)?),
            public_key: r.get(3)?,
            url: r.get(4)?,
            registered_at_block: BigInt(r.get::<_, i64>(5)?.to_string()),
            registered_at_timestamp: BigInt(r.get::<_, i64>(6)?.to_string()),
            transaction_hash: Bytes(r.get(7)?),
        })
    }
}

#[ComplexObject]
impl Server {
    async fn owner(&self) -> User {
        User {
            id: ID(self.owner_id.clone()),
        }
    }

    async fn user_trusts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<UserServerOrderBy>,
        order_direction: Option<OrderDirection>,
    ) -> async_graphql::Result<Vec<UserServer>> {
        let mut w = Where::default();
        w.eq("server", Some(self.id.0.clone()));
        list(
            ctx,
            "user_servers",
            USER_SERVER_COLS,
            w,
            order_by.map(UserServerOrderBy::col),
            order_direction,
            first,
            skip,
            UserServer::from_row,
        )
        .await
    }
}

pub(super) const USER_SERVER_COLS: &str =
    "id, user, server, trusted_at, trusted_at_block, untrusted_at_block, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UserServer", complex)]
pub struct UserServer {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) user_id: String,
    #[graphql(skip)]
    pub(super) server_id: String,
    pub(super) trusted_at: BigInt,
    pub(super) trusted_at_block: BigInt,
    pub(super) untrusted_at_block: Option<BigInt>,
    pub(super) transaction_hash: Bytes,
}

impl UserServer {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(UserServer {
            id: ID(r.get(0)?),
            user_id: r.get(1)?,
            server_id: r.get(2)?,
            trusted_at: BigInt(r.get::<_, i64>(3)?.to_string()),
            trusted_at_block: BigInt(r.get::<_, i64>(4)?.to_string()),
            untrusted_at_block: r.get::<_, Option<i64>>(5)?.map(|n| BigInt(n.to_string())),
            transaction_hash: Bytes(r.get(6)?),
        })
    }
}

#[ComplexObject]
impl UserServer {
    async fn user(&self) -> User {
        User {
            id: ID(self.user_id.clone()),
        }
    }

    async fn server(&self, ctx: &Context<'_>) -> async_graphql::Result<Server> {
        by_id(
            ctx,
            "servers",
            SERVER_COLS,
            self.server_id.clone(),
            Server::from_row,
        )
        .await?
        .ok_or_else(|| {
            format!(
                "Server {} referenced by UserServer {} is missing",
                self.server_id, self.id.0
            )
            .into()
        })
    }
}

pub(super) const PROOF_COLS: &str =
    "id, user, dlp, epoch, file_id, proof_index, created_at, created_at_block, created_tx_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "DataRegistryProof", complex)]
pub struct DataRegistryProof {
    pub(super) id: ID,
    #[graphql(skip)]
    pub(super) user_id: Option<String>,
    #[graphql(skip)]
    pub(super) dlp_id: Option<String>,
    #[graphql(skip)]
    pub(super) epoch_id: String,
    pub(super) file_id: BigInt,
    pub(super) proof_index: BigInt,
    pub(super) created_at: BigInt,
    pub(super) created_at_block: BigInt,
    pub(super) created_tx_hash: Bytes,
    pub(super) attestor: Option<Bytes>,
}

impl DataRegistryProof {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(DataRegistryProof {
            id: ID(r.get(0)?),
            user_id: r.get(1)?,
            dlp_id: r.get(2)?,
            epoch_id: r.get(3)?,
            file_id: BigInt(r.get(4)?),
            proof_index: BigInt(r.get(5)?),
            created_at: BigInt(r.get::<_, i64>(6)?.to_string()),
            created_at_block: BigInt(r.get::<_, i64>(7)?.to_string()),
            created_tx_hash: Bytes(r.get(8)?),
            attestor: None,
        })
    }
}

#[ComplexObject]
impl DataRegistryProof {
    async fn user(&self) -> Option<User> {
        self.user_id.clone().map(|id| User { id: ID(id) })
    }

    async fn dlp(&self) -> Option<Dlp> {
        self.dlp_id.clone().map(|id| Dlp { id: ID(id) })
    }

    async fn epoch(&self) -> Epoch {
        Epoch {
            id: ID(self.epoch_id.clone()),
        }
    }
}

/// A DLP, known here only by id (DLPRegistry is not indexed by the twin).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Dlp")]
pub struct Dlp {
    pub(super) id: ID,
}

/// The single epoch that covers every block.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Epoch")]
pub struct Epoch {
    pub(super) id: ID,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "_Block_")]
pub struct MetaBlock {
    pub(super) number: i64,
    pub(super) timestamp: Option<i64>,
    pub(super) hash: Option<Bytes>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "_Meta_")]
pub struct Meta {
    pub(super) block: MetaBlock,
    pub(super) deployment: String,
    pub(super) has_indexing_errors: bool,
}
