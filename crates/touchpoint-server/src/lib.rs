//! Touchpoint HTTP server: the JSON API, Segment-compatible ingest, API keys,
//! metrics.
//!
//! [`Server::build`] assembles everything from a [`Store`] and a
//! [`ServerConfig`]; `touchpoint serve` and the integration tests both use it,
//! so tests drive the very server users run. Routes are declared once, with
//! their documentation, in [`routes`]: the router and the OpenAPI document
//! (`/api/openapi.json`) are both built from that table.
//!
//! # Errors
//! Handlers return [`error::ApiError`], a closed table of codes and statuses
//! with one JSON shape. Server errors answer a generic message and log the
//! cause chain.
#![warn(missing_docs)]

pub mod acquisition_api;
pub mod api;
pub mod auth;
pub mod campaigns_api;
pub mod dashboard;
pub mod error;
pub mod ingest;
pub mod loyalty_api;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod promotions_api;
pub mod referrals_api;
pub mod rewards_api;
pub mod routes;
pub mod segment;
pub mod segments_api;
pub mod unsubscribe;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::sync::{mpsc, Mutex, Semaphore};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::Currency;
use touchpoint_store::import::Writer;
use touchpoint_store::Store;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;

pub use error::ApiError;

/// The largest batch size a server may be configured to accept: 4 MB.
pub const MAX_BATCH_LIMIT: usize = 4 * 1024 * 1024;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest single event, bytes (default 32 KB).
    pub max_event_bytes: usize,
    /// Largest batch body after decompression, bytes (default 500 KB, at most 4 MB).
    pub max_batch_bytes: usize,
    /// Largest import upload, bytes.
    pub max_import_bytes: usize,
    /// Ingest requests in flight before the server answers 429.
    pub max_inflight_ingest: usize,
    /// Origins browsers may send from; empty allows any.
    pub cors_origins: Vec<String>,
    /// How long a found key is trusted without asking the database again.
    pub key_cache_ttl: Duration,
    /// Calling code for national phone numbers.
    pub default_country: String,
    /// Currency when an order does not name one.
    pub default_currency: Currency,
    /// Business time zone (imports: local times without an offset).
    pub business_tz: chrono_tz::Tz,
    /// Identity resolution settings.
    pub identity: IdentityConfig,
    /// How long a dashboard session lasts after sign-in (default 8 hours).
    pub dashboard_session_ttl: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
            max_import_bytes: 1024 * 1024 * 1024,
            max_inflight_ingest: 512,
            cors_origins: Vec::new(),
            key_cache_ttl: Duration::from_secs(5),
            default_country: "86".into(),
            default_currency: Currency::parse("CNY").expect("valid currency"),
            business_tz: chrono_tz::Asia::Shanghai,
            identity: IdentityConfig::default(),
            dashboard_session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

/// Errors building the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// Listening or serving failed.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What the handlers share.
pub struct Inner {
    /// The store.
    pub store: Store,
    /// The settings.
    pub config: ServerConfig,
    /// The one identity-aware writer of this process.
    pub writer: Arc<Mutex<Writer>>,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Recently found keys.
    pub keys: auth::KeyCache,
    /// Bounds ingest requests in flight.
    pub ingest_permits: Arc<Semaphore>,
    /// The ingest pipeline's queue.
    pub pipeline: mpsc::Sender<pipeline::Job>,
    /// Set once shutdown starts.
    pub shutting_down: AtomicBool,
    /// Dashboard sessions.
    pub dashboard: dashboard::Sessions,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish()
    }
}

/// A server ready to run.
pub struct Server {
    router: Router,
    state: AppState,
    pipeline: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Build the server over a migrated store.
    pub fn build(store: Store, config: ServerConfig) -> Result<Server, ServerError> {
        if config.max_batch_bytes > MAX_BATCH_LIMIT || config.max_batch_bytes == 0 {
            return Err(ServerError::Config(format!(
                "the batch size limit {} is out of range: expected 1 to {MAX_BATCH_LIMIT} bytes",
                config.max_batch_bytes
            )));
        }
        if config.max_event_bytes == 0 || config.max_event_bytes > config.max_batch_bytes {
            return Err(ServerError::Config(format!(
                "the event size limit {} is out of range: expected 1 to the batch limit ({} bytes)",
                config.max_event_bytes, config.max_batch_bytes
            )));
        }
        let metrics = Arc::new(metrics::Metrics::default());
        let writer = Arc::new(Mutex::new(Writer::new(config.identity)));
        let (tx, handle) = pipeline::start(store.clone(), writer.clone(), metrics.clone());
        let state = AppState(Arc::new(Inner {
            ingest_permits: Arc::new(Semaphore::new(config.max_inflight_ingest)),
            store,
            writer,
            metrics,
            keys: auth::KeyCache::default(),
            pipeline: tx,
            shutting_down: AtomicBool::new(false),
            dashboard: dashboard::Sessions::new(config.dashboard_session_ttl),
            config,
        }));
        let router = router(state.clone());
        Ok(Server {
            router,
            state,
            pipeline: handle,
        })
    }

    /// The shared state (for tests and tools in the same process).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve on `listener` until `shutdown` completes, then stop accepting
    /// connections, finish the requests in flight (their events are committed
    /// before they are answered), drain the ingest queue and return.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            router,
            state,
            pipeline,
        } = self;
        let flag = state.clone();
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            flag.shutting_down
                .store(true, std::sync::atomic::Ordering::SeqCst);
        })
        .await?;
        // Every request is answered; closing the queue lets the writer drain and stop.
        let inner = state.0;
        drop(inner);
        if let Err(e) = pipeline.await {
            tracing::error!(error = %e, "the ingest writer task failed");
        }
        Ok(())
    }
}

/// Wait for SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn router(state: AppState) -> Router {
    let cors = if state.config.cors_origins.is_empty() {
        CorsLayer::new().allow_origin(Any)
    } else {
        let list: Vec<axum::http::HeaderValue> = state
            .config
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(list))
    }
    .allow_methods(Any)
    .allow_headers(Any)
    .max_age(Duration::from_secs(3600));
    routes::build_router()
        .merge(dashboard::router())
        .fallback(|| async { ApiError::NotFound("no such path; see /api/openapi.json".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            track_metrics,
        ))
        .layer(RequestDecompressionLayer::new())
        .layer(cors)
        .with_state(state)
}

async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    state
        .metrics
        .request(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}
