//! Test databases on every configured backend.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{InputFormat, ReadOptions};
use touchpoint_core::{ChannelName, Currency};
use touchpoint_store::import::{import_files, ImportOptions, ImportReport};
use touchpoint_store::{Store, Val};

/// A fresh database; PostgreSQL ones are dropped by [`TestDb::cleanup`].
pub struct TestDb {
    pub name: &'static str,
    pub store: Store,
    /// The database URL (to reconnect).
    pub url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// SQLite always; PostgreSQL too when `TOUCHPOINT_TEST_POSTGRES_URL` is set.
pub async fn backends() -> Vec<TestDb> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    out.push(TestDb {
        name: "sqlite",
        store: Store::connect(&url).await.unwrap(),
        url,
        pg: None,
        _dir: Some(dir),
    });
    if let Ok(base) = std::env::var("TOUCHPOINT_TEST_POSTGRES_URL") {
        let admin = Store::connect_without_migrating(&base).await.unwrap();
        let db = format!(
            "tp_store_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        let mut h = admin.acquire().await.unwrap();
        h.conn()
            .exec(&format!("CREATE DATABASE {db}"), &[])
            .await
            .unwrap();
        drop(h);
        admin.close().await;
        let (prefix, _) = base.rsplit_once('/').expect("URL with a database path");
        let url = format!("{prefix}/{db}");
        out.push(TestDb {
            name: "postgres",
            store: Store::connect(&url).await.unwrap(),
            url,
            pg: Some((base, db)),
            _dir: None,
        });
    }
    out
}

impl TestDb {
    /// Close the pool and drop a PostgreSQL test database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((base, db)) = self.pg {
            let admin = Store::connect_without_migrating(&base).await.unwrap();
            let mut h = admin.acquire().await.unwrap();
            let _ = h
                .conn()
                .exec(&format!("DROP DATABASE IF EXISTS {db}"), &[])
                .await;
        }
    }

    /// One integer from a query.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let mut h = self.store.acquire().await.unwrap();
        h.conn()
            .fetch_opt(sql, &[], |r| r.i64(0))
            .await
            .unwrap()
            .unwrap()
    }

    /// Rows of text from a query whose columns are all cast to text.
    pub async fn rows(&self, sql: &str, n: usize) -> Vec<Vec<String>> {
        let mut h = self.store.acquire().await.unwrap();
        h.conn()
            .fetch(sql, &[] as &[Val], |r| {
                (0..n)
                    .map(|i| Ok(r.opt_text(i)?.unwrap_or_else(|| "NULL".into())))
                    .collect()
            })
            .await
            .unwrap()
    }
}

/// Import options as the CLI builds them by default.
pub fn options(format: InputFormat, channel: &str) -> ImportOptions {
    ImportOptions {
        format,
        read: ReadOptions {
            channel: Some(ChannelName::parse(channel).unwrap()),
            default_country: "86".into(),
            default_currency: Currency::parse("CNY").unwrap(),
            business_tz: chrono_tz::Asia::Shanghai,
            encoding: None,
        },
        identity: IdentityConfig::default(),
        strict: false,
        rejects: None,
        chunk_orders: 3,
        refresh_analytics: true,
    }
}

/// Import one file.
pub async fn import(
    store: &Store,
    path: &Path,
    format: InputFormat,
    channel: &str,
) -> ImportReport {
    import_with(store, path, &options(format, channel)).await
}

/// Import one file with options.
pub async fn import_with(store: &Store, path: &Path, opts: &ImportOptions) -> ImportReport {
    import_files(store, &[path.to_path_buf()], opts, &|_| {})
        .await
        .unwrap()
}

/// Write a file into a temp dir.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The Shopify export header, as Shopify writes it.
pub fn shopify_header() -> String {
    touchpoint_core::ingest::shopify::COLUMNS.join(",")
}

/// One Shopify row from (column, value) pairs; other columns empty.
pub fn shopify_row(values: &[(&str, &str)]) -> String {
    touchpoint_core::ingest::shopify::COLUMNS
        .iter()
        .map(|col| {
            values
                .iter()
                .find(|(c, _)| c == col)
                .map(|(_, v)| {
                    if v.contains(',') {
                        format!("\"{v}\"")
                    } else {
                        v.to_string()
                    }
                })
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The Taobao order report header (the columns used in tests).
pub const TAOBAO_HEADER: &str =
    "订单编号,买家会员名,买家实际支付金额,订单状态,收货人姓名,收货地址,联系手机,订单创建时间,订单付款时间,宝贝标题,宝贝总数量,退款金额,商家编码";
