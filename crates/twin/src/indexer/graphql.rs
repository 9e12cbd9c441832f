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

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_graphql::{
    ComplexObject, Context, EmptyMutation, EmptySubscription, Enum, ID, InputObject,
    InputValueError, InputValueResult, Object, Scalar, ScalarType, Schema, SimpleObject, Value,
};
use protocol::api::subgraph::{BigInt as WireBigInt, DEFAULT_FIRST, MAX_FIRST, MAX_SKIP};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row};

use super::store;

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

// ---- read transactions ----

/// Read connections to the store, reused across requests.
pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

const MAX_IDLE_READERS: usize = 16;

impl ReaderPool {
    pub fn new(path: PathBuf) -> Self {
        ReaderPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection with an open read transaction (a consistent snapshot).
    pub async fn begin(self: &Arc<Self>) -> Result<ReadTx, String> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                Some(c) => c,
                None => {
                    let c = Connection::open(&pool.path).map_err(|e| e.to_string())?;
                    c.busy_timeout(std::time::Duration::from_secs(5))
                        .map_err(|e| e.to_string())?;
                    c
                }
            };
            conn.execute_batch("BEGIN")
                .map_err(|e| format!("indexer store: {e}"))?;
            // The snapshot is taken at the first read.
            conn.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get::<_, i64>(0))
                .map_err(|e| format!("indexer store: {e}"))?;
            Ok(ReadTx(Arc::new(Mutex::new(Some(conn)))))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Ends the transaction and keeps the connection for the next request.
    pub async fn finish(self: &Arc<Self>, tx: ReadTx) {
        let pool = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let conn = tx.0.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(conn) = conn
                && conn.execute_batch("ROLLBACK").is_ok()
            {
                let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(conn);
                }
            }
        })
        .await;
    }
}

/// The request's read transaction, in the GraphQL context data.
#[derive(Clone)]
pub struct ReadTx(Arc<Mutex<Option<Connection>>>);

impl ReadTx {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> async_graphql::Result<T> {
        let cell = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let guard = cell.lock().unwrap_or_else(|p| p.into_inner());
            let conn = guard
                .as_ref()
                .ok_or_else(|| async_graphql::Error::new("read transaction already closed"))?;
            f(conn).map_err(|e| async_graphql::Error::new(format!("indexer store: {e}")))
        })
        .await
        .map_err(|e| async_graphql::Error::new(e.to_string()))?
    }
}

fn db<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a ReadTx> {
    ctx.data::<ReadTx>()
}

// ---- scalars ----

/// The Graph's `BigInt`: a decimal string in JSON; input also as an `Int`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigInt(pub String);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        let s = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        let n: WireBigInt = s
            .parse()
            .map_err(|e: protocol::api::subgraph::BigIntError| {
                InputValueError::custom(e.to_string())
            })?;
        Ok(BigInt(n.to_string()))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// The Graph's `Bytes`: a `0x` hex string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub String);

#[Scalar(name = "Bytes")]
impl ScalarType for Bytes {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s)
                if s.starts_with("0x")
                    && s.len() % 2 == 0
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Bytes(s.to_ascii_lowercase()))
            }
            _ => Err(InputValueError::custom(format!(
                "invalid Bytes {value}: expected an even-length 0x hex string"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

// ---- ordering and paging ----

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
#[graphql(name = "OrderDirection", rename_items = "lowercase")]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(Clone, Copy)]
enum Col {
    /// Text, compared as text (ids, addresses, strings).
    Text(&'static str),
    /// An integer column.
    Int(&'static str),
    /// A BigInt as decimal text: ordered by (length, text).
    Big(&'static str),
}

fn order_sql(col: Option<Col>, dir: Option<OrderDirection>) -> String {
    let d = match dir.unwrap_or_default() {
        OrderDirection::Asc => "ASC",
        OrderDirection::Desc => "DESC",
    };
    match col {
        None | Some(Col::Text("id")) => format!("ORDER BY id {d}"),
        Some(Col::Text(c)) | Some(Col::Int(c)) => format!("ORDER BY {c} {d}, id {d}"),
        Some(Col::Big(c)) => format!("ORDER BY length({c}) {d}, {c} {d}, id {d}"),
    }
}

fn limit_sql(first: Option<i32>, skip: Option<i32>) -> async_graphql::Result<String> {
    let first = first.unwrap_or(DEFAULT_FIRST);
    let skip = skip.unwrap_or(0);
    if !(0..=MAX_FIRST).contains(&first) {
        return Err(format!(
            "The `first` argument must be between 0 and {MAX_FIRST}, but is {first}"
        )
        .into());
    }
    if !(0..=MAX_SKIP).contains(&skip) {
        return Err(
            format!("The `skip` argument must be between 0 and {MAX_SKIP}, but is {skip}").into(),
        );
    }
    Ok(format!("LIMIT {first} OFFSET {skip}"))
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
    fn col(self) -> Col {
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
    fn col(self) -> Col {
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
    fn col(self) -> Col {
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
    fn col(self) -> Col {
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

// ---- filters ----

/// A `WHERE` clause under construction.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Where {
    fn eq(&mut self, col: &str, v: Option<String>) {
        if let Some(v) = v {
            self.params.push(SqlValue::Text(v));
            self.clauses.push(format!("{col} = ?{}", self.params.len()));
        }
    }

    fn any(&mut self, col: &str, vs: Option<Vec<String>>) {
        let Some(vs) = vs else { return };
        if vs.is_empty() {
            self.clauses.push("0".into());
            return;
        }
        let mut ph = Vec::with_capacity(vs.len());
        for v in vs {
            self.params.push(SqlValue::Text(v));
            ph.push(format!("?{}", self.params.len()));
        }
        self.clauses.push(format!("{col} IN ({})", ph.join(", ")));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn ids(v: Option<Vec<ID>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().map(|i| i.0).collect())
}

fn bigs(v: Option<Vec<BigInt>>) -> Option<Vec<String>> {
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
    fn build(self, w: &mut Where) {
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
    fn build(self, w: &mut Where) {
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
    fn build(self, w: &mut Where) {
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
    fn build(self, w: &mut Where) {
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
    number: Option<i64>,
    hash: Option<Bytes>,
    number_gte: Option<i64>,
}

// ---- entities ----

const FILE_COLS: &str =
    "id, owner, url, schema_id, added_at_block, added_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "File", complex)]
pub struct File {
    id: ID,
    #[graphql(skip)]
    owner_id: String,
    url: String,
    schema_id: BigInt,
    added_at_block: BigInt,
    added_at_timestamp: BigInt,
    transaction_hash: Bytes,
}

impl File {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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
    id: ID,
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

const PERMISSION_COLS: &str = "id, grantor, grantee, grant_url, nonce, signature, start_block, end_block, added_at_block, added_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Permission", complex)]
pub struct Permission {
    id: ID,
    #[graphql(skip)]
    grantor_id: String,
    #[graphql(skip)]
    grantee_id: String,
    grant: String,
    nonce: BigInt,
    signature: Bytes,
    start_block: BigInt,
    end_block: Option<BigInt>,
    added_at_block: BigInt,
    added_at_timestamp: BigInt,
    transaction_hash: Bytes,
}

impl Permission {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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
    id: ID,
    #[graphql(skip)]
    permission_id: String,
    file: File,
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

const GRANTEE_COLS: &str = "id, owner, address, public_key, registered_at_block, registered_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Grantee", complex)]
pub struct Grantee {
    id: ID,
    #[graphql(skip)]
    owner_id: String,
    address: Bytes,
    public_key: String,
    registered_at_block: BigInt,
    registered_at_timestamp: BigInt,
    transaction_hash: Bytes,
}

impl Grantee {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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

const SERVER_COLS: &str = "id, owner, server_address, public_key, url, registered_at_block, registered_at_timestamp, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Server", complex)]
pub struct Server {
    id: ID,
    #[graphql(skip)]
    owner_id: String,
    server_address: Bytes,
    /// The key string as registered (the real schema declares `Bytes`; the
    /// value the SDK reads is the same hex string).
    public_key: String,
    url: String,
    registered_at_block: BigInt,
    registered_at_timestamp: BigInt,
    transaction_hash: Bytes,
}

impl Server {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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

const USER_SERVER_COLS: &str =
    "id, user, server, trusted_at, trusted_at_block, untrusted_at_block, transaction_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UserServer", complex)]
pub struct UserServer {
    id: ID,
    #[graphql(skip)]
    user_id: String,
    #[graphql(skip)]
    server_id: String,
    trusted_at: BigInt,
    trusted_at_block: BigInt,
    untrusted_at_block: Option<BigInt>,
    transaction_hash: Bytes,
}

impl UserServer {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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

const PROOF_COLS: &str =
    "id, user, dlp, epoch, file_id, proof_index, created_at, created_at_block, created_tx_hash";

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "DataRegistryProof", complex)]
pub struct DataRegistryProof {
    id: ID,
    #[graphql(skip)]
    user_id: Option<String>,
    #[graphql(skip)]
    dlp_id: Option<String>,
    #[graphql(skip)]
    epoch_id: String,
    file_id: BigInt,
    proof_index: BigInt,
    created_at: BigInt,
    created_at_block: BigInt,
    created_tx_hash: Bytes,
    attestor: Option<Bytes>,
}

impl DataRegistryProof {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
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
    id: ID,
}

/// The single epoch that covers every block.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Epoch")]
pub struct Epoch {
    id: ID,
}

// ---- _meta ----

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "_Block_")]
pub struct MetaBlock {
    number: i64,
    timestamp: Option<i64>,
    hash: Option<Bytes>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "_Meta_")]
pub struct Meta {
    block: MetaBlock,
    deployment: String,
    has_indexing_errors: bool,
}

// ---- helpers ----

#[allow(clippy::too_many_arguments)]
async fn list<T: Send + 'static>(
    ctx: &Context<'_>,
    table: &'static str,
    cols: &'static str,
    w: Where,
    order: Option<Col>,
    dir: Option<OrderDirection>,
    first: Option<i32>,
    skip: Option<i32>,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> async_graphql::Result<Vec<T>> {
    let sql = format!(
        "SELECT {cols} FROM {table} {} {} {}",
        w.sql(),
        order_sql(order, dir),
        limit_sql(first, skip)?
    );
    let params = w.params;
    db(ctx)?
        .run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params), map)?;
            rows.collect()
        })
        .await
}

async fn by_id<T: Send + 'static>(
    ctx: &Context<'_>,
    table: &'static str,
    cols: &'static str,
    id: String,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> async_graphql::Result<Option<T>> {
    db(ctx)?
        .run(move |c| {
            c.prepare_cached(&format!("SELECT {cols} FROM {table} WHERE id = ?1"))?
                .query_row([id], map)
                .optional()
        })
        .await
}

// ---- the root ----

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
