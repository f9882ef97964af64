//! `spawn_app()`: a server on port 0 with a fresh database, and an HTTP client.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use touchpoint_server::{Server, ServerConfig};
use touchpoint_store::keys::Role;
use touchpoint_store::Store;

/// A running server with keys of every role.
pub struct TestApp {
    pub url: String,
    pub addr: SocketAddr,
    pub store: Store,
    pub admin: String,
    pub analyst: String,
    /// An ingest key of source `web`.
    pub ingest: String,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), touchpoint_server::ServerError>>>,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

/// A response: status, headers, body parsed as JSON (or a JSON string of the text).
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TOUCHPOINT_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Db::Sqlite, ServerConfig::default()).await
}

/// A server on `db` (PostgreSQL needs TOUCHPOINT_TEST_POSTGRES_URL; the caller checks).
pub async fn spawn_app_with(db: Db, mut config: ServerConfig) -> TestApp {
    config.key_cache_ttl = std::time::Duration::ZERO;
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, pg) = match db {
        Db::Sqlite => (
            format!("sqlite://{}", dir.path().join("test.db").display()),
            None,
        ),
        Db::Postgres => {
            let base = postgres_url().expect("TOUCHPOINT_TEST_POSTGRES_URL");
            let name = format!("tp_test_{:016x}", rand::random::<u64>());
            let admin = Store::connect_without_migrating(&base)
                .await
                .expect("connect to PostgreSQL");
            let mut h = admin.acquire().await.expect("connection");
            h.conn()
                .exec(&format!("CREATE DATABASE {name}"), &[])
                .await
                .expect("create database");
            drop(h);
            admin.close().await;
            let (head, _) = base.rsplit_once('/').expect("database URL with a path");
            (format!("{head}/{name}"), Some((base.clone(), name)))
        }
    };
    let store = Store::connect(&url).await.expect("connect and migrate");
    let admin = store
        .create_key(Role::Admin, Some("test admin"), None)
        .await
        .unwrap()
        .key;
    let analyst = store
        .create_key(Role::Analyst, None, None)
        .await
        .unwrap()
        .key;
    let ingest = store
        .create_key(Role::Ingest, None, Some("web"))
        .await
        .unwrap()
        .key;
    let server = Server::build(store.clone(), config).expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    TestApp {
        url: format!("http://{addr}"),
        addr,
        store,
        admin,
        analyst,
        ingest,
        client: Client::builder(TokioExecutor::new()).build_http(),
        stop: Some(tx),
        handle: Some(handle),
        _dir: dir,
        pg,
    }
}

impl TestApp {
    /// Send a request; `key` as a Bearer token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        self.try_send(method, path, key, headers, body)
            .await
            .expect("request")
    }

    /// Start a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Send a request; `None` when the connection fails.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Option<Resp> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .client
            .request(b.body(Full::new(body.into())).unwrap())
            .await
            .ok()?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(text.clone()));
        Some(Resp {
            status,
            headers,
            body,
            text,
        })
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Resp {
        self.send(Method::GET, path, key, &[], Bytes::new()).await
    }

    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Resp {
        self.send(
            Method::POST,
            path,
            key,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    /// Wait until the server has stopped (after `begin_shutdown`).
    pub async fn wait_stopped(&mut self) {
        self.begin_shutdown();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Stop the server gracefully, then drop a PostgreSQL test database.
    pub async fn finish(mut self) {
        self.wait_stopped().await;
        self.store.close().await;
        if let Some((base, name)) = self.pg.take() {
            let admin = Store::connect_without_migrating(&base).await.unwrap();
            let mut h = admin.acquire().await.unwrap();
            h.conn()
                .exec(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &[])
                .await
                .unwrap();
            drop(h);
            admin.close().await;
        }
    }
}

/// Assert an error response: status and the JSON error shape with this code.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.body["code"], code, "body: {}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message missing: {}",
        r.text
    );
    assert_eq!(
        r.body.as_object().map(|o| o.len()),
        Some(2),
        "only code and message: {}",
        r.text
    );
    assert!(
        r.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "JSON content type"
    );
}

/// HTTP Basic with the key as user name and an empty password.
pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// POST a body with an Authorization header on a new client; the status, or
/// `None` when the connection fails.
pub async fn post_raw(url: &str, auth: &str, body: String) -> Option<u16> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::post(url)
        .header("authorization", auth)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    let resp = client.request(req).await.ok()?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await.ok()?;
    Some(status)
}
