//! Touchpoint store: one async API over SQLite (embedded, the default) and
//! PostgreSQL (server deployments).
//!
//! The backend is chosen once, from the URL scheme: `sqlite://PATH`,
//! `sqlite::memory:` or `postgres://...` / `postgresql://...`. Any other
//! scheme is an error that lists the accepted ones; it never creates a file.
//! Each backend has its own migrations folder with the same file names, and
//! every query is written once in portable SQL (see [`db`]).
//!
//! # Errors
//! [`StoreError`] is this layer's error type. Database errors keep their
//! source so the binary can log the whole chain; user mistakes (a bad URL, an
//! unknown member) have their own variants with a message that says what to do.
#![warn(missing_docs)]

pub mod acquisition;
pub mod analytics;
pub mod campaign_triggers;
pub mod campaigns;
pub mod clv;
pub mod coupons;
pub mod db;
pub mod delivery;
pub mod events;
pub mod facts;
pub mod import;
pub mod keys;
pub mod loyalty;
pub mod members;
pub mod model_cache;
pub mod orders;
pub mod outbox;
pub mod predictions;
pub mod profiles;
pub mod promotions;
pub mod referrals;
pub mod reports;
pub mod rewards;
pub mod segments;
pub mod unit_of_work;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, Postgres, Sqlite, SqlitePool};

pub use db::{Conn, RowRef, Val};
pub use unit_of_work::{Committed, UnitOfWork};

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error("unsupported database URL {url:?}: use sqlite://PATH (embedded; e.g. sqlite://touchpoint.db) or postgres://USER@HOST:PORT/DATABASE")]
    UnsupportedUrl {
        /// The URL as given (password removed).
        url: String,
    },
    /// The URL has a supported scheme but cannot be parsed.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (password removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Stored data that cannot be read back (a bug or a hand-edited database).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A value given is not acceptable; the message says what is.
    #[error("{0}")]
    InvalidInput(String),
    /// A spend or an adjustment down asks for more than is available.
    #[error("{needed} points needed, {available} available")]
    InsufficientPoints {
        /// Asked for.
        needed: i64,
        /// Available.
        available: i64,
    },
    /// The code was claimed already.
    #[error("this code was claimed already")]
    CodeAlreadyClaimed,
    /// No such code (or its batch was voided or has expired).
    #[error("unknown code")]
    UnknownCode,
    /// Not a code, or a mistyped one (the check character does not match).
    #[error("{0}")]
    InvalidCode(String),
    /// Too many wrong codes this hour.
    #[error("too many wrong codes; retry after {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
    /// A coupon gives nothing here; the refusal says why.
    #[error("{0}")]
    Coupon(touchpoint_core::coupons::Refusal),
    /// One of several codes gives nothing here (a promotions evaluation):
    /// which code, and why.
    #[error("coupon {code}: {refusal}")]
    CouponCode {
        /// The code, normalised.
        code: String,
        /// Why.
        refusal: touchpoint_core::coupons::Refusal,
    },
    /// A points-mall reward has no stock left.
    #[error("this reward is out of stock")]
    OutOfStock,
    /// A reward cannot be redeemed here or now; the message says why.
    #[error("{0}")]
    RewardUnavailable(String),
    /// The member redeemed this reward as many times as it allows.
    #[error("this member redeemed this reward {limit} times, its limit per member")]
    RewardLimitReached {
        /// The limit.
        limit: i64,
    },
    /// A hold that is no longer held (captured, released or lapsed).
    #[error("{0}")]
    HoldNotActive(String),
    /// A saved segment of this name exists with another definition.
    #[error(
        "a segment named {0:?} exists with another definition; choose another name or replace it"
    )]
    SegmentExists(String),
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The store: a connection pool of one backend, and the analytics model
/// loaded in memory (shared by every clone of the store; see
/// [`crate::model_cache`]).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) cache: std::sync::Arc<model_cache::ModelCache>,
}

/// The connection pools of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    /// SQLite: a pool of readers and the one writer ([`WriteQueue`]).
    Sqlite(SqlitePool, WriteQueue),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// SQLite has one write lock per database, so the store keeps one writing
/// connection in a pool of its own, beside the readers. Units of work queue
/// for it first come, first served, and a waiting writer is woken the moment
/// it is free, instead of polling in SQLite's busy handler (which backs off
/// up to 100 ms between tries; four pooled connections fighting for the lock
/// made the tail latency of concurrent writes seconds long). A writer never
/// waits behind readers for a connection. Another process writing to the same
/// file is still met by the busy timeout.
#[derive(Debug, Clone)]
pub struct WriteQueue(SqlitePool);

impl WriteQueue {
    /// The writing connection's pool (one connection).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.0
    }
}

/// How long a writer waits for SQLite's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Connect to the database named by `url` and apply pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connect without applying migrations.
    pub async fn connect_without_migrating(url: &str) -> Result<Store, StoreError> {
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl {
                        url: redact_url(url),
                        reason: e.to_string(),
                    })?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL with NORMAL: a commit is in the WAL before it
                    // returns, so it survives the process being killed;
                    // the WAL is synced at checkpoints, not on every commit
                    // (FULL cost one ~4 ms fsync per commit, under the write
                    // lock). A power loss can lose the last commits, never
                    // corrupt the database.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(BUSY_TIMEOUT)
                    .foreign_keys(true)
                    // 64 MiB page cache per connection: index inserts of bulk
                    // imports otherwise spill the cache to disk.
                    .pragma("cache_size", "-65536")
                    .pragma("temp_store", "memory")
                    .log_slow_statements(log::LevelFilter::Info, Duration::from_secs(5));
                let memory = url.contains(":memory:");
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(BUSY_TIMEOUT)
                    .connect_with(opts.clone())
                    .await?;
                // An in-memory database exists once per connection: its
                // readers are the writer.
                let readers = if memory {
                    writer.clone()
                } else {
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_with(opts)
                        .await?
                };
                Ok(Store::new(Db::Sqlite(readers, WriteQueue(writer))))
            }
            "postgres" | "postgresql" => {
                let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?;
                Ok(Store::new(Db::Postgres(pool)))
            }
            _ => Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            }),
        }
    }

    fn new(db: Db) -> Store {
        Store {
            db,
            cache: Default::default(),
        }
    }

    /// Apply pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(_, w) => sqlx::migrate!("./migrations/sqlite").run(&w.0).await?,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        match &self.db {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Start a transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(_, w) => Tx::Sqlite(w.0.begin().await?),
            Db::Postgres(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Start a read-only transaction that sees one state of the database
    /// throughout: on SQLite on a reader connection (WAL: it does not hold
    /// up the writer), on PostgreSQL at REPEATABLE READ.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(p, _) => Tx::Sqlite(p.begin().await?),
            Db::Postgres(p) => {
                let mut t = p.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await?;
                Tx::Pg(t)
            }
        })
    }

    /// Borrow a pooled connection for reads.
    pub async fn acquire(&self) -> Result<Handle, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(p, _) => Handle::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Handle::Pg(p.acquire().await?),
        })
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(p, w) => {
                p.close().await;
                w.0.close().await
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A transaction of either backend.
pub enum Tx {
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Pg(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Pg(t) => Conn::Pg(t),
        }
    }
    /// Commit.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A pooled connection of either backend.
pub enum Handle {
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    /// PostgreSQL.
    Pg(sqlx::pool::PoolConnection<Postgres>),
}

impl Handle {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Handle::Sqlite(c) => Conn::Sqlite(c),
            Handle::Pg(c) => Conn::Pg(c),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    #[tokio::test]
    async fn unknown_scheme_is_an_error_that_lists_accepted_ones() {
        let err = Store::connect("mysql://root@localhost/x")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
        assert!(
            msg.contains("sqlite://") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(!std::path::Path::new("mysql").exists());
    }
}
