//! The root `Query` type: a single-entity and a list field per entity, and
//! `_meta` (optionally at a given block).

use async_graphql::{Context, ID, Object};

use super::MetaInfo;
use super::entities::*;
use super::inputs::*;
use super::reader::db;
use super::scalars::Bytes;
use super::sql::{Col, Where, by_id, list};
use crate::indexer::store;

/// The root `Query` type.
pub struct Query;

#[Object(name = "Query")]
impl Query {
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        by_id(ctx, "users", "id", id.0, |r| Ok(User { id: ID(r.get(0)?) })).await
    }

    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_direction: Option<OrderDirection>,
    ) -> async_graphql::Result<Vec<User>> {
        list(
            ctx,
            "users",
            "id",
            Where::default(),
            None,
            order_direction,
            first,
            skip,
            |r| Ok(User { id: ID(r.get(0)?) }),
        )
        .await
    }

    async fn file(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<File>> {
        by_id(ctx, "files", FILE_COLS, id.0, File::from_row).await
    }

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

    async fn permission(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Permission>> {
        by_id(
            ctx,
            "permissions",
            PERMISSION_COLS,
            id.0,
            Permission::from_row,
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

    async fn grantee(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Grantee>> {
        by_id(ctx, "grantees", GRANTEE_COLS, id.0, Grantee::from_row).await
    }

    async fn grantees(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<GranteeOrderBy>,
        order_direction: Option<OrderDirection>,
    ) -> async_graphql::Result<Vec<Grantee>> {
        let col = order_by.map(|o| match o {
            GranteeOrderBy::Id => Col::Text("id"),
            GranteeOrderBy::Address => Col::Text("address"),
            GranteeOrderBy::RegisteredAtBlock => Col::Int("registered_at_block"),
        });
        list(
            ctx,
            "grantees",
            GRANTEE_COLS,
            Where::default(),
            col,
            order_direction,
            first,
            skip,
            Grantee::from_row,
        )
        .await
    }

    async fn server(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Server>> {
        by_id(ctx, "servers", SERVER_COLS, id.0, Server::from_row).await
    }

    async fn servers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<ServerOrderBy>,
        order_direction: Option<OrderDirection>,
    ) -> async_graphql::Result<Vec<Server>> {
        let col = order_by.map(|o| match o {
            ServerOrderBy::Id => Col::Text("id"),
            ServerOrderBy::ServerAddress => Col::Text("server_address"),
            ServerOrderBy::Url => Col::Text("url"),
            ServerOrderBy::RegisteredAtBlock => Col::Int("registered_at_block"),
        });
        list(
            ctx,
            "servers",
            SERVER_COLS,
            Where::default(),
            col,
            order_direction,
            first,
            skip,
            Server::from_row,
        )
        .await
    }

    async fn user_server(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<UserServer>> {
        by_id(
            ctx,
            "user_servers",
            USER_SERVER_COLS,
            id.0.to_ascii_lowercase(),
            UserServer::from_row,
        )
        .await
    }

    async fn user_servers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<UserServerOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<UserServerFilter>,
    ) -> async_graphql::Result<Vec<UserServer>> {
        let mut w = Where::default();
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

    async fn data_registry_proof(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<DataRegistryProof>> {
        by_id(ctx, "proofs", PROOF_COLS, id.0, DataRegistryProof::from_row).await
    }

    async fn data_registry_proofs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        skip: Option<i32>,
        order_by: Option<ProofOrderBy>,
        order_direction: Option<OrderDirection>,
        #[graphql(name = "where")] filter: Option<ProofFilter>,
    ) -> async_graphql::Result<Vec<DataRegistryProof>> {
        let mut w = Where::default();
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

    /// The indexing status: the last indexed block (lagged as configured).
    #[graphql(name = "_meta")]
    async fn meta(
        &self,
        ctx: &Context<'_>,
        block: Option<BlockHeight>,
    ) -> async_graphql::Result<Option<Meta>> {
        let info = ctx.data::<MetaInfo>()?.clone();
        let at = block.as_ref().and_then(|b| b.number.or(b.number_gte));
        if block
            .as_ref()
            .is_some_and(|b| b.hash.is_some() && b.number.is_none())
        {
            return Err("querying _meta by block hash is not supported by the twin's indexer; use block: {number}".into());
        }
        let (head, at_block) = db(ctx)?
            .run(move |c| {
                let head = store::head(c)?;
                let at_block = match at {
                    Some(n) if n >= 0 => store::block(c, n as u64)?,
                    _ => None,
                };
                Ok((head, at_block))
            })
            .await?;
        let head_number = head.as_ref().map_or(info.before_start, |h| h.number);
        if let Some(n) = at
            && (n < 0 || n as u64 > head_number)
        {
            return Err(format!(
                "Failed to decode `block.number` value: `subgraph {} has only indexed up to block number {head_number} and data for block number {n} is therefore not yet available`",
                info.deployment
            )
            .into());
        }
        let (number, hash, timestamp, errors) = match (at, head) {
            (Some(n), h) => (
                n,
                at_block.map(|b| Bytes(format!("{:#x}", b.hash))),
                at_block.map(|b| b.timestamp as i64),
                h.is_some_and(|h| h.has_indexing_errors),
            ),
            (None, Some(h)) => (
                h.number as i64,
                h.hash.map(Bytes),
                h.timestamp.map(|t| t as i64),
                h.has_indexing_errors,
            ),
            (None, None) => (info.before_start as i64, None, None, false),
        };
        Ok(Some(Meta {
            block: MetaBlock {
                number,
                timestamp,
                hash,
            },
            deployment: info.deployment,
            has_indexing_errors: errors,
        }))
    }
}
