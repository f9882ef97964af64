//! One way to run a query on either backend.
//!
//! SQL is written once with `$1`, `$2`, ... placeholders, which both SQLite
//! (through sqlx) and PostgreSQL accept. Values go in as [`Val`] and rows come
//! out through [`RowRef`], so code above this module does not care which
//! backend it talks to. Keep SQL portable: BIGINT for every integer, TEXT for
//! strings, explicit casts on aggregates (`CAST(SUM(x) AS BIGINT)`).

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, Row, SqliteConnection};

use crate::StoreError;

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// An integer.
    I(i64),
    /// An integer or NULL.
    OI(Option<i64>),
    /// A string.
    T(String),
    /// A string or NULL.
    OT(Option<String>),
    /// A float (bind to REAL on SQLite, DOUBLE PRECISION on PostgreSQL).
    F(f64),
    /// A float or NULL.
    OF(Option<f64>),
    /// Bytes (BLOB on SQLite, BYTEA on PostgreSQL).
    B(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OI(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::T(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::T(v.to_string())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::F(v)
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::B(v)
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Self {
        Val::OF(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OT(v)
    }
}

/// A row of either backend.
pub enum RowRef<'r> {
    /// SQLite.
    Sqlite(&'r SqliteRow),
    /// PostgreSQL.
    Pg(&'r PgRow),
}

impl RowRef<'_> {
    /// Column `i` as an integer.
    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<i64, _>(i)?,
            RowRef::Pg(r) => r.try_get::<i64, _>(i)?,
        })
    }
    /// Column `i` as an integer or NULL.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<Option<i64>, _>(i)?,
            RowRef::Pg(r) => r.try_get::<Option<i64>, _>(i)?,
        })
    }
    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<String, _>(i)?,
            RowRef::Pg(r) => r.try_get::<String, _>(i)?,
        })
    }
    /// Column `i` as text or NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<Option<String>, _>(i)?,
            RowRef::Pg(r) => r.try_get::<Option<String>, _>(i)?,
        })
    }
    /// Column `i` as bytes (BLOB on SQLite, BYTEA on PostgreSQL).
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<Vec<u8>, _>(i)?,
            RowRef::Pg(r) => r.try_get::<Vec<u8>, _>(i)?,
        })
    }
    /// Column `i` as a float (for averages; cast in SQL to a double).
    pub fn f64(&self, i: usize) -> Result<f64, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<f64, _>(i)?,
            RowRef::Pg(r) => r.try_get::<f64, _>(i)?,
        })
    }
    /// Column `i` as a float or NULL (REAL on SQLite, DOUBLE PRECISION on
    /// PostgreSQL).
    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>, StoreError> {
        Ok(match self {
            RowRef::Sqlite(r) => r.try_get::<Option<f64>, _>(i)?,
            RowRef::Pg(r) => r.try_get::<Option<f64>, _>(i)?,
        })
    }
}

macro_rules! bind_vals {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::I(x) => q.bind(*x),
                Val::OI(x) => q.bind(*x),
                Val::T(x) => q.bind(x.as_str()),
                Val::OT(x) => q.bind(x.as_deref()),
                Val::F(x) => q.bind(*x),
                Val::OF(x) => q.bind(*x),
                Val::B(x) => q.bind(x.as_slice()),
            };
        }
        q
    }};
}

/// A connection of either backend (usually inside a transaction).
pub enum Conn<'c> {
    /// SQLite.
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL.
    Pg(&'c mut PgConnection),
}

impl Conn<'_> {
    /// Run a statement; the number of rows it changed.
    pub async fn exec(&mut self, sql: &str, vals: &[Val]) -> Result<u64, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => bind_vals!(sqlx::query(sql), vals)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Pg(c) => bind_vals!(sqlx::query(sql), vals)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// Run a query and decode every row.
    pub async fn fetch<T>(
        &mut self,
        sql: &str,
        vals: &[Val],
        mut decode: impl FnMut(RowRef<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(c) => {
                let rows = bind_vals!(sqlx::query(sql), vals)
                    .fetch_all(&mut **c)
                    .await?;
                rows.iter().map(|r| decode(RowRef::Sqlite(r))).collect()
            }
            Conn::Pg(c) => {
                let rows = bind_vals!(sqlx::query(sql), vals)
                    .fetch_all(&mut **c)
                    .await?;
                rows.iter().map(|r| decode(RowRef::Pg(r))).collect()
            }
        }
    }

    /// Run a query and hand each row to `each` as it arrives, without holding
    /// the whole result in memory.
    pub async fn fetch_each<E: From<StoreError>>(
        &mut self,
        sql: &str,
        vals: &[Val],
        mut each: impl FnMut(RowRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        use futures_util::TryStreamExt;
        match self {
            Conn::Sqlite(c) => {
                let mut rows = bind_vals!(sqlx::query(sql), vals).fetch(&mut **c);
                while let Some(r) = rows.try_next().await.map_err(StoreError::from)? {
                    each(RowRef::Sqlite(&r))?;
                }
            }
            Conn::Pg(c) => {
                let mut rows = bind_vals!(sqlx::query(sql), vals).fetch(&mut **c);
                while let Some(r) = rows.try_next().await.map_err(StoreError::from)? {
                    each(RowRef::Pg(&r))?;
                }
            }
        }
        Ok(())
    }

    /// Run a query expected to return at most one row.
    pub async fn fetch_opt<T>(
        &mut self,
        sql: &str,
        vals: &[Val],
        decode: impl FnMut(RowRef<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.fetch(sql, vals, decode).await?.into_iter().next())
    }

    /// `n` comma-separated placeholders numbered from `first`. On SQLite, when
    /// the list holds all of the statement's parameters (`first == 1`), they are
    /// anonymous `?`: SQLite looks up a named `$N` linearly per parameter, and
    /// sqlx numbers anonymous `?` from 1 whatever `$N` precede them, so after
    /// `$1` they must be numbered too.
    pub fn param_list(&self, first: usize, n: usize) -> String {
        let anonymous = matches!(self, Conn::Sqlite(_)) && first == 1;
        (first..first + n)
            .map(|i| {
                if anonymous {
                    "?".to_string()
                } else {
                    format!("${i}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Insert many rows with one multi-row `INSERT` per batch.
    ///
    /// `head` is `INSERT INTO t (a, b, c)`, `tail` what follows the `VALUES`
    /// list (an `ON CONFLICT` clause or empty). Each row has `width` values.
    pub async fn insert_many(
        &mut self,
        head: &str,
        tail: &str,
        width: usize,
        vals: &[Val],
    ) -> Result<u64, StoreError> {
        if vals.is_empty() {
            return Ok(0);
        }
        debug_assert_eq!(vals.len() % width, 0);
        if let Conn::Pg(c) = self {
            return insert_unnest(c, head, tail, width, vals).await;
        }
        // Stay well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
        let rows_per_stmt = (8_000 / width).max(1);
        let mut changed = 0;
        // SQLite looks up a `$N` parameter by name in a list, which makes binding
        // thousands of them quadratic; anonymous `?` parameters bind by position.
        let anonymous = matches!(self, Conn::Sqlite(_));
        for chunk in vals.chunks(rows_per_stmt * width) {
            let sql = values_sql(head, tail, width, chunk.len() / width, anonymous);
            changed += self.exec(&sql, chunk).await?;
        }
        Ok(changed)
    }
}

/// PostgreSQL: one statement whatever the row count, with one array parameter
/// per column (`INSERT ... SELECT * FROM UNNEST($1::text[], $2::bigint[]) ...`),
/// which PostgreSQL parses and plans once instead of per row. A column's type
/// comes from its values' variant (`I`/`OI` bigint, `F`/`OF` double, `T`/`OT` text, `B` bytea).
async fn insert_unnest(
    c: &mut PgConnection,
    head: &str,
    tail: &str,
    width: usize,
    vals: &[Val],
) -> Result<u64, StoreError> {
    let rows = vals.len() / width;
    enum Column<'a> {
        Int(Vec<Option<i64>>),
        Float(Vec<Option<f64>>),
        Text(Vec<Option<&'a str>>),
        Bytes(Vec<&'a [u8]>),
    }
    let mut cols: Vec<Column<'_>> = vals[..width]
        .iter()
        .map(|v| match v {
            Val::I(_) | Val::OI(_) => Column::Int(Vec::with_capacity(rows)),
            Val::F(_) | Val::OF(_) => Column::Float(Vec::with_capacity(rows)),
            Val::T(_) | Val::OT(_) => Column::Text(Vec::with_capacity(rows)),
            Val::B(_) => Column::Bytes(Vec::with_capacity(rows)),
        })
        .collect();
    for row in vals.chunks(width) {
        for (col, v) in row.iter().enumerate() {
            match (v, &mut cols[col]) {
                (Val::I(x), Column::Int(a)) => a.push(Some(*x)),
                (Val::OI(x), Column::Int(a)) => a.push(*x),
                (Val::F(x), Column::Float(a)) => a.push(Some(*x)),
                (Val::OF(x), Column::Float(a)) => a.push(*x),
                (Val::T(x), Column::Text(a)) => a.push(Some(x.as_str())),
                (Val::OT(x), Column::Text(a)) => a.push(x.as_deref()),
                (Val::B(x), Column::Bytes(a)) => a.push(x.as_slice()),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "insert_many: column {col} mixes value types"
                    )))
                }
            }
        }
    }
    let casts: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match c {
                Column::Int(_) => "bigint",
                Column::Float(_) => "double precision",
                Column::Text(_) => "text",
                Column::Bytes(_) => "bytea",
            };
            format!("${}::{ty}[]", i + 1)
        })
        .collect();
    let sql = format!("{head} SELECT * FROM UNNEST({}) {tail}", casts.join(", "));
    let mut q = sqlx::query(&sql);
    for c in cols {
        q = match c {
            Column::Int(a) => q.bind(a),
            Column::Float(a) => q.bind(a),
            Column::Text(a) => q.bind(a),
            Column::Bytes(a) => q.bind(a),
        };
    }
    Ok(q.execute(&mut *c).await?.rows_affected())
}

/// `head VALUES ($1, $2), ($3, $4) tail`, or with `?` placeholders.
fn values_sql(head: &str, tail: &str, width: usize, rows: usize, anonymous: bool) -> String {
    let mut s = String::with_capacity(head.len() + tail.len() + rows * width * 6);
    s.push_str(head);
    s.push_str(" VALUES ");
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..width {
            if c > 0 {
                s.push(',');
            }
            if anonymous {
                s.push('?');
            } else {
                s.push('$');
                s.push_str(&n.to_string());
            }
            n += 1;
        }
        s.push(')');
    }
    s.push(' ');
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_sql_numbers_placeholders_in_order() {
        assert_eq!(
            super::values_sql("INSERT INTO t (a, b)", "", 2, 2, false),
            "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) "
        );
        assert_eq!(
            super::values_sql("INSERT INTO t (a)", "", 1, 2, true),
            "INSERT INTO t (a) VALUES (?),(?) "
        );
    }
}
