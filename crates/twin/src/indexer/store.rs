//! The indexer's SQLite store: the subgraph entities, the indexed block
//! hashes, and an undo journal that makes a reorg a matter of rolling back.
//!
//! Every entity write first records the row's previous value (or its absence)
//! in `journal`, tagged with the block being indexed. Reverting to a fork point
//! replays the journal backwards for the blocks above it. One range of blocks is
//! applied in one transaction, together with the new indexing head, so a reader
//! (in WAL mode, on its own connection) always sees whole blocks.
//!
//! Entity ids follow the subgraph (`vana-wire.md` §5): users by lowercase
//! address, files/permissions/grantees/servers by decimal id,
//! `"<permId>-<fileId>"`, `"<userLower>-<serverId>"`, `"file-<fileId>-proof-<idx>"`.
//! `BigInt` values are stored as decimal text and ordered by `(length, text)`.

use std::path::Path;

use alloy::primitives::{Address, B256, U256};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::events::{Event, EventCtx, IndexedContracts};

/// The one epoch that covers every block, so that proofs are always kept.
pub const EPOCH_ID: &str = "1";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, block INTEGER NOT NULL, tbl TEXT NOT NULL, id TEXT NOT NULL, prev TEXT);
CREATE INDEX IF NOT EXISTS journal_block ON journal(block);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, owner TEXT NOT NULL, url TEXT NOT NULL, schema_id TEXT NOT NULL,
  added_at_block INTEGER NOT NULL, added_at_timestamp INTEGER NOT NULL, transaction_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_owner ON files(owner);
CREATE TABLE IF NOT EXISTS permissions (id TEXT PRIMARY KEY, grantor TEXT NOT NULL, grantee TEXT NOT NULL, grant_url TEXT NOT NULL,
  nonce TEXT NOT NULL, signature TEXT NOT NULL, start_block TEXT NOT NULL, end_block TEXT,
  added_at_block INTEGER NOT NULL, added_at_timestamp INTEGER NOT NULL, transaction_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS permissions_grantor ON permissions(grantor);
CREATE INDEX IF NOT EXISTS permissions_grantee ON permissions(grantee);
CREATE TABLE IF NOT EXISTS permission_files (id TEXT PRIMARY KEY, permission TEXT NOT NULL, file TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS permission_files_permission ON permission_files(permission);
CREATE TABLE IF NOT EXISTS grantees (id TEXT PRIMARY KEY, owner TEXT NOT NULL, address TEXT NOT NULL, public_key TEXT NOT NULL,
  registered_at_block INTEGER NOT NULL, registered_at_timestamp INTEGER NOT NULL, transaction_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS servers (id TEXT PRIMARY KEY, owner TEXT NOT NULL, server_address TEXT NOT NULL, public_key TEXT NOT NULL,
  url TEXT NOT NULL, registered_at_block INTEGER NOT NULL, registered_at_timestamp INTEGER NOT NULL, transaction_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_servers (id TEXT PRIMARY KEY, user TEXT NOT NULL, server TEXT NOT NULL, trusted_at INTEGER NOT NULL,
  trusted_at_block INTEGER NOT NULL, untrusted_at_block INTEGER, transaction_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS user_servers_user ON user_servers(user);
CREATE INDEX IF NOT EXISTS user_servers_server ON user_servers(server);
CREATE TABLE IF NOT EXISTS proofs (id TEXT PRIMARY KEY, user TEXT, dlp TEXT, epoch TEXT NOT NULL, file_id TEXT NOT NULL,
  proof_index TEXT NOT NULL, created_at INTEGER NOT NULL, created_at_block INTEGER NOT NULL, created_tx_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS proofs_file ON proofs(file_id);
"#;

/// Entity tables and the GraphQL type each holds, for the entity-count metric.
pub const ENTITY_TABLES: &[(&str, &str)] = &[
    ("users", "User"),
    ("files", "File"),
    ("permissions", "Permission"),
    ("permission_files", "PermissionFile"),
    ("grantees", "Grantee"),
    ("servers", "Server"),
    ("user_servers", "UserServer"),
    ("proofs", "DataRegistryProof"),
];

/// The indexing head as `_meta` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub number: u64,
    pub hash: Option<String>,
    pub timestamp: Option<u64>,
    pub has_indexing_errors: bool,
}

/// A block the store knows the hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBlock {
    pub number: u64,
    pub hash: B256,
    pub timestamp: u64,
}

/// Opens (creating if needed) the database at `path` in WAL mode.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Creates the tables; if the database was written for other contracts (or
/// another start block), empties it first.
pub fn init(conn: &mut Connection, source: &IndexedContracts) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let wanted = serde_json::to_string(source).expect("contracts serialize");
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'source'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if stored.as_deref() != Some(wanted.as_str()) {
        let tx = conn.transaction()?;
        clear_all(&tx)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('source', ?1)",
            [&wanted],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn clear_all(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (table, _) in ENTITY_TABLES {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    tx.execute("DELETE FROM blocks", [])?;
    tx.execute("DELETE FROM journal", [])?;
    tx.execute(
        "DELETE FROM meta WHERE key IN ('head', 'has_indexing_errors', 'journal_floor')",
        [],
    )?;
    Ok(())
}

/// The last indexed block, if any.
pub fn last_block(conn: &Connection) -> rusqlite::Result<Option<KnownBlock>> {
    let Some(head) = head_number(conn)? else {
        return Ok(None);
    };
    block(conn, head)
}

fn head_number(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'head'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.and_then(|s| s.parse().ok()))
}

/// A stored block.
pub fn block(conn: &Connection, number: u64) -> rusqlite::Result<Option<KnownBlock>> {
    conn.query_row(
        "SELECT hash, timestamp FROM blocks WHERE number = ?1",
        [number as i64],
        |r| {
            let hash: String = r.get(0)?;
            let ts: i64 = r.get(1)?;
            Ok((hash, ts))
        },
    )
    .optional()
    .map(|o| {
        o.and_then(|(hash, ts)| {
            Some(KnownBlock {
                number,
                hash: hash.parse().ok()?,
                timestamp: ts as u64,
            })
        })
    })
}

/// Stored blocks at or below `at_or_below`, newest first (to find a fork point).
pub fn blocks_descending(
    conn: &Connection,
    at_or_below: u64,
    limit: usize,
) -> rusqlite::Result<Vec<KnownBlock>> {
    let mut stmt = conn.prepare(
        "SELECT number, hash, timestamp FROM blocks WHERE number <= ?1 ORDER BY number DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![at_or_below as i64, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (n, h, t) = row?;
        if let Ok(hash) = h.parse() {
            out.push(KnownBlock {
                number: n as u64,
                hash,
                timestamp: t as u64,
            });
        }
    }
    Ok(out)
}

/// The indexing head for `_meta`, or `None` before the first range.
pub fn head(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    let errors: bool = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'has_indexing_errors'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .is_some_and(|v| v == "true");
    let Some(number) = head_number(conn)? else {
        return Ok(None);
    };
    let b = block(conn, number)?;
    Ok(Some(Head {
        number,
        hash: b.map(|b| format!("{:#x}", b.hash)),
        timestamp: b.map(|b| b.timestamp),
        has_indexing_errors: errors,
    }))
}

/// One range of blocks, ready to be applied.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The last block of the range: becomes the indexing head.
    pub head: KnownBlock,
    /// Blocks the logs came from.
    pub blocks: Vec<KnownBlock>,
    /// Events in chain order.
    pub events: Vec<(EventCtx, Event)>,
    /// Logs of indexed topics that could not be decoded.
    pub indexing_errors: usize,
}

/// Applies a range in one transaction and moves the head.
pub fn apply(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for b in batch.blocks.iter().chain(std::iter::once(&batch.head)) {
        tx.execute(
            "INSERT OR REPLACE INTO blocks (number, hash, timestamp) VALUES (?1, ?2, ?3)",
            params![
                b.number as i64,
                format!("{:#x}", b.hash),
                b.timestamp as i64
            ],
        )?;
    }
    for (ctx, ev) in &batch.events {
        handle(&tx, ctx, ev)?;
    }
    if batch.indexing_errors > 0 {
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('has_indexing_errors', 'true')",
            [],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)",
        [batch.head.number.to_string()],
    )?;
    tx.commit()
}

/// Undoes every block above `fork` (`None`: everything) and makes `fork` the head.
pub fn revert_to(conn: &mut Connection, fork: Option<u64>) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // Below the pruned part of the journal the undo records are gone: start over.
    let floor: u64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'journal_floor'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let Some(fork) = fork.filter(|f| *f + 1 >= floor) else {
        clear_all(&tx)?;
        return tx.commit();
    };
    {
        let mut stmt = tx
            .prepare("SELECT seq, tbl, id, prev FROM journal WHERE block > ?1 ORDER BY seq DESC")?;
        let rows: Vec<(i64, String, String, Option<String>)> = stmt
            .query_map([fork as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        for (_, table, id, prev) in rows {
            restore(&tx, &table, &id, prev.as_deref())?;
        }
    }
    tx.execute("DELETE FROM journal WHERE block > ?1", [fork as i64])?;
    tx.execute("DELETE FROM blocks WHERE number > ?1", [fork as i64])?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)",
        [fork.to_string()],
    )?;
    tx.commit()
}

/// Forgets undo records and block hashes older than `keep_from` (they can no
/// longer be reorged on anvil's instant-finality chain at that depth).
pub fn prune(conn: &Connection, keep_from: u64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM journal WHERE block < ?1", [keep_from as i64])?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('journal_floor', ?1)",
        [keep_from.to_string()],
    )?;
    conn.execute(
        "DELETE FROM blocks WHERE number < ?1 AND number <> (SELECT MAX(number) FROM blocks WHERE number < ?1)",
        [keep_from as i64],
    )?;
    Ok(())
}

/// Rows per entity table.
pub fn entity_counts(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, i64)>> {
    ENTITY_TABLES
        .iter()
        .map(|(table, entity)| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .map(|n| (*entity, n))
        })
        .collect()
}

// ---- journal ----

fn snapshot(tx: &Transaction<'_>, table: &str, id: &str) -> rusqlite::Result<Option<String>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let row = stmt
        .query_row([id], |r| {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match r.get::<_, Value>(i)? {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(n) => serde_json::Value::from(n),
                    Value::Text(s) => serde_json::Value::String(s),
                    Value::Real(f) => serde_json::Value::from(f),
                    Value::Blob(b) => serde_json::Value::String(hex::encode(b)),
                };
                obj.insert(name.clone(), v);
            }
            Ok(obj)
        })
        .optional()?;
    Ok(row.map(|o| serde_json::Value::Object(o).to_string()))
}

fn restore(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    prev: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
    let Some(prev) = prev else { return Ok(()) };
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(prev) else {
        return Ok(());
    };
    let cols: Vec<&String> = obj.keys().collect();
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let values: Vec<Value> = obj
        .values()
        .map(|v| match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Number(n) => Value::Integer(n.as_i64().unwrap_or_default()),
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Text(other.to_string()),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        placeholders.join(", ")
    );
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Records the current row of `table`/`id` before it is changed at `block`.
fn journal(tx: &Transaction<'_>, block: u64, table: &str, id: &str) -> rusqlite::Result<()> {
    let prev = snapshot(tx, table, id)?;
    tx.prepare_cached("INSERT INTO journal (block, tbl, id, prev) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![block as i64, table, id, prev])?;
    Ok(())
}

fn exists(tx: &Transaction<'_>, table: &str, id: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?
        .exists([id])
}

// ---- handlers (the subgraph's mappings) ----

/// A user id: the lowercase `0x` address.
pub fn user_id(a: &Address) -> String {
    format!("{a:#x}")
}

fn hash_hex(h: &B256) -> String {
    format!("{h:#x}")
}

fn dec(v: &U256) -> String {
    v.to_string()
}

fn get_or_create_user(tx: &Transaction<'_>, block: u64, id: &str) -> rusqlite::Result<()> {
    if !exists(tx, "users", id)? {
        journal(tx, block, "users", id)?;
        tx.execute("INSERT INTO users (id) VALUES (?1)", [id])?;
    }
    Ok(())
}

fn handle(tx: &Transaction<'_>, ctx: &EventCtx, ev: &Event) -> rusqlite::Result<()> {
    let b = ctx.block;
    let ts = ctx.timestamp as i64;
    let txh = hash_hex(&ctx.tx_hash);
    match ev {
        Event::FileAdded {
            file_id,
            owner,
            url,
        } => put_file(tx, ctx, file_id, owner, url, &U256::ZERO)?,
        Event::FileAddedV2 {
            file_id,
            owner,
            url,
            schema_id,
        } => put_file(tx, ctx, file_id, owner, url, schema_id)?,
        Event::ProofAdded {
            file_id,
            owner,
            proof_index,
            dlp_id,
        } => {
            let user = user_id(owner);
            get_or_create_user(tx, b, &user)?;
            let id = format!("file-{file_id}-proof-{proof_index}");
            journal(tx, b, "proofs", &id)?;
            tx.execute(
                "INSERT OR REPLACE INTO proofs (id, user, dlp, epoch, file_id, proof_index, created_at, created_at_block, created_tx_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, user, dec(dlp_id), EPOCH_ID, dec(file_id), dec(proof_index), ts, b as i64, txh],
            )?;
        }
        Event::PermissionAdded {
            permission_id,
            user,
            grantee_id,
            grant,
            file_ids,
            state,
        } => {
            let grantor = user_id(user);
            get_or_create_user(tx, b, &grantor)?;
            let grantee = dec(grantee_id);
            if !exists(tx, "grantees", &grantee)? {
                // A placeholder, as the subgraph's getOrCreateGrantee makes.
                journal(tx, b, "grantees", &grantee)?;
                tx.execute(
                    "INSERT INTO grantees (id, owner, address, public_key, registered_at_block, registered_at_timestamp, transaction_hash)
                     VALUES (?1, ?2, ?2, '', ?3, ?4, ?5)",
                    params![grantee, user_id(&Address::ZERO), b as i64, ts, txh],
                )?;
                get_or_create_user(tx, b, &user_id(&Address::ZERO))?;
            }
            let id = dec(permission_id);
            let (nonce, start, end) = match state {
                Some(s) => (dec(&s.nonce), dec(&s.start_block), Some(dec(&s.end_block))),
                None => ("0".to_string(), b.to_string(), None),
            };
            journal(tx, b, "permissions", &id)?;
            tx.execute(
                "INSERT OR REPLACE INTO permissions (id, grantor, grantee, grant_url, nonce, signature, start_block, end_block,
                   added_at_block, added_at_timestamp, transaction_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, '0x', ?6, ?7, ?8, ?9, ?10)",
                params![id, grantor, grantee, grant, nonce, start, end, b as i64, ts, txh],
            )?;
            for file_id in file_ids {
                let fid = dec(file_id);
                let pf = format!("{id}-{fid}");
                if exists(tx, "permission_files", &pf)? {
                    continue;
                }
                if !exists(tx, "files", &fid)? {
                    // A placeholder file, as the subgraph's handler creates.
                    journal(tx, b, "files", &fid)?;
                    tx.execute(
                        "INSERT INTO files (id, owner, url, schema_id, added_at_block, added_at_timestamp, transaction_hash)
                         VALUES (?1, ?2, '', '0', ?3, ?4, ?5)",
                        params![fid, grantor, b as i64, ts, txh],
                    )?;
                }
                journal(tx, b, "permission_files", &pf)?;
                tx.execute(
                    "INSERT INTO permission_files (id, permission, file) VALUES (?1, ?2, ?3)",
                    params![pf, id, fid],
                )?;
            }
        }
        Event::PermissionRevoked { permission_id } => {
            let id = dec(permission_id);
            if exists(tx, "permissions", &id)? {
                journal(tx, b, "permissions", &id)?;
                tx.execute(
                    "UPDATE permissions SET end_block = ?2 WHERE id = ?1",
                    params![id, b.to_string()],
                )?;
            }
        }
        Event::GranteeRegistered {
            grantee_id,
            owner,
            grantee_address,
            public_key,
        } => {
            let owner = user_id(owner);
            get_or_create_user(tx, b, &owner)?;
            let id = dec(grantee_id);
            journal(tx, b, "grantees", &id)?;
            tx.execute(
                "INSERT OR REPLACE INTO grantees (id, owner, address, public_key, registered_at_block, registered_at_timestamp, transaction_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, owner, user_id(grantee_address), public_key, b as i64, ts, txh],
            )?;
        }
        Event::ServerRegistered {
            server_id,
            owner,
            server_address,
            public_key,
            url,
        } => {
            let owner = user_id(owner);
            get_or_create_user(tx, b, &owner)?;
            let id = dec(server_id);
            journal(tx, b, "servers", &id)?;
            tx.execute(
                "INSERT OR REPLACE INTO servers (id, owner, server_address, public_key, url, registered_at_block, registered_at_timestamp, transaction_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, owner, user_id(server_address), public_key, url, b as i64, ts, txh],
            )?;
        }
        Event::ServerUpdated { server_id, url } => {
            let id = dec(server_id);
            if exists(tx, "servers", &id)? {
                journal(tx, b, "servers", &id)?;
                tx.execute(
                    "UPDATE servers SET url = ?2 WHERE id = ?1",
                    params![id, url],
                )?;
            }
        }
        Event::ServerTrusted { user, server_id } => {
            let user = user_id(user);
            get_or_create_user(tx, b, &user)?;
            let server = dec(server_id);
            if !exists(tx, "servers", &server)? {
                tracing::warn!(
                    server,
                    "ServerTrusted for a server that is not indexed; skipped"
                );
                return Ok(());
            }
            let id = format!("{user}-{server}");
            journal(tx, b, "user_servers", &id)?;
            // Re-trusting keeps an earlier untrustedAtBlock, as the subgraph does.
            let untrusted: Option<i64> = tx
                .query_row(
                    "SELECT untrusted_at_block FROM user_servers WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            tx.execute(
                "INSERT OR REPLACE INTO user_servers (id, user, server, trusted_at, trusted_at_block, untrusted_at_block, transaction_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, user, server, ts, b as i64, untrusted, txh],
            )?;
        }
        Event::ServerUntrusted { user, server_id } => {
            let id = format!("{}-{}", user_id(user), dec(server_id));
            if exists(tx, "user_servers", &id)? {
                journal(tx, b, "user_servers", &id)?;
                tx.execute(
                    "UPDATE user_servers SET untrusted_at_block = ?2 WHERE id = ?1",
                    params![id, b as i64],
                )?;
            }
        }
    }
    Ok(())
}

/// `FileAdded` creates the file with schema 0; `FileAddedV2` overwrites it.
fn put_file(
    tx: &Transaction<'_>,
    ctx: &EventCtx,
    file_id: &U256,
    owner: &Address,
    url: &str,
    schema_id: &U256,
) -> rusqlite::Result<()> {
    let owner = user_id(owner);
    get_or_create_user(tx, ctx.block, &owner)?;
    let id = dec(file_id);
    journal(tx, ctx.block, "files", &id)?;
    tx.execute(
        "INSERT OR REPLACE INTO files (id, owner, url, schema_id, added_at_block, added_at_timestamp, transaction_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            owner,
            url,
            dec(schema_id),
            ctx.block as i64,
            ctx.timestamp as i64,
            hash_hex(&ctx.tx_hash)
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    fn ctx(block: u64) -> EventCtx {
        EventCtx {
            block,
            block_hash: B256::with_last_byte(block as u8),
            timestamp: 1_700_000_000 + block,
            tx_hash: B256::with_last_byte(0xa0 + block as u8),
            log_index: 0,
        }
    }

    fn kb(n: u64) -> KnownBlock {
        KnownBlock {
            number: n,
            hash: B256::with_last_byte(n as u8),
            timestamp: 1_700_000_000 + n,
        }
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("t.sqlite")).unwrap();
        let src = IndexedContracts {
            data_registry: Address::with_last_byte(1),
            permissions: Address::with_last_byte(2),
            grantees: Address::with_last_byte(3),
            servers: Address::with_last_byte(4),
            start_block: 1,
        };
        init(&mut c, &src).unwrap();
        (dir, c)
    }

    fn file_row(c: &Connection, id: &str) -> Option<(String, String, String)> {
        c.query_row(
            "SELECT owner, url, schema_id FROM files WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .unwrap()
    }

    #[test]
    fn v2_overwrites_and_revert_restores_each_step() {
        let (_d, mut c) = db();
        let owner = address!("0xAbCdEf0000000000000000000000000000000001");
        let add = |url: &str| Event::FileAdded {
            file_id: U256::from(7),
            owner,
            url: url.into(),
        };
        let v2 = Event::FileAddedV2 {
            file_id: U256::from(7),
            owner,
            url: "ipfs://b".into(),
            schema_id: U256::from(3),
        };
        apply(
            &mut c,
            &Batch {
                head: kb(2),
                blocks: vec![],
                events: vec![(ctx(2), add("ipfs://a"))],
                indexing_errors: 0,
            },
        )
        .unwrap();
        apply(
            &mut c,
            &Batch {
                head: kb(3),
                blocks: vec![],
                events: vec![(ctx(3), v2)],
                indexing_errors: 0,
            },
        )
        .unwrap();
        let lower = "0xabcdef0000000000000000000000000000000001".to_string();
        assert_eq!(
            file_row(&c, "7"),
            Some((lower.clone(), "ipfs://b".into(), "3".into()))
        );
        revert_to(&mut c, Some(2)).unwrap();
        assert_eq!(
            file_row(&c, "7"),
            Some((lower, "ipfs://a".into(), "0".into()))
        );
        assert_eq!(last_block(&c).unwrap().unwrap().number, 2);
        revert_to(&mut c, Some(1)).unwrap();
        assert_eq!(file_row(&c, "7"), None);
        let users: i64 = c
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(users, 0, "the user created at block 2 is undone too");
    }

    #[test]
    fn a_revert_below_the_pruned_journal_starts_over() {
        let (_d, mut c) = db();
        for n in 2..6u64 {
            let ev = Event::FileAdded {
                file_id: U256::from(n),
                owner: Address::with_last_byte(9),
                url: format!("ipfs://{n}"),
            };
            apply(
                &mut c,
                &Batch {
                    head: kb(n),
                    blocks: vec![],
                    events: vec![(ctx(n), ev)],
                    indexing_errors: 0,
                },
            )
            .unwrap();
        }
        prune(&c, 4).unwrap();
        // Undo records for blocks 4 and 5 remain: reverting to 3 is exact.
        revert_to(&mut c, Some(3)).unwrap();
        assert!(file_row(&c, "3").is_some() && file_row(&c, "4").is_none());
        // Blocks 2..3 lost their undo records: reverting to 1 empties the store.
        revert_to(&mut c, Some(1)).unwrap();
        assert!(file_row(&c, "2").is_none() && file_row(&c, "3").is_none());
        assert!(last_block(&c).unwrap().is_none());
    }
}
