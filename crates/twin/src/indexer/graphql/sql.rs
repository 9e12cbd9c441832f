//! The SQL behind the resolvers: column kinds and `ORDER BY` as graph-node
//! orders, `first`/`skip` paging with graph-node's limits, `WHERE` clauses
//! under construction, and the two query shapes (a list, one row by id).

use async_graphql::Context;
use protocol::api::subgraph::{DEFAULT_FIRST, MAX_FIRST, MAX_SKIP};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row};

use super::inputs::OrderDirection;
use super::reader::db;

#[derive(Clone, Copy)]
pub(super) enum Col {
    /// Text, compared as text (ids, addresses, strings).
    Text(&'static str),
    /// An integer column.
    Int(&'static str),
    /// A BigInt as decimal text: ordered by (length, text).
    Big(&'static str),
}

pub(super) fn order_sql(col: Option<Col>, dir: Option<OrderDirection>) -> String {
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

pub(super) fn limit_sql(first: Option<i32>, skip: Option<i32>) -> async_graphql::Result<String> {
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

/// A `WHERE` clause under construction.
#[derive(Default)]
pub(super) struct Where {
    pub(super) clauses: Vec<String>,
    pub(super) params: Vec<SqlValue>,
}

impl Where {
    pub(super) fn eq(&mut self, col: &str, v: Option<String>) {
        if let Some(v) = v {
            self.params.push(SqlValue::Text(v));
            self.clauses.push(format!("{col} = ?{}", self.params.len()));
        }
    }

    pub(super) fn any(&mut self, col: &str, vs: Option<Vec<String>>) {
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

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn list<T: Send + 'static>(
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

pub(super) async fn by_id<T: Send + 'static>(
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
