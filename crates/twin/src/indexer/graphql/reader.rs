//! Read transactions: a pool of SQLite read connections, and the per-request
//! transaction every resolver reads through, so one answer sees one snapshot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use rusqlite::Connection;

/// Read connections to the store, reused across requests.
pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

pub(super) const MAX_IDLE_READERS: usize = 16;

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
    pub(super) async fn run<T: Send + 'static>(
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

pub(super) fn db<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a ReadTx> {
    ctx.data::<ReadTx>()
}
