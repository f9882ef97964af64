//! `touchpoint serve`: the HTTP server (JSON API and Segment-compatible ingest).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use touchpoint_server::{Server, ServerConfig};

use crate::Settings;

/// `serve` arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOUCHPOINT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Origins browsers may send events from (repeat or comma-separate); default any.
    #[arg(
        long = "cors-origin",
        env = "TOUCHPOINT_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Largest batch body in bytes (after decompression), at most 4 MB.
    #[arg(long, default_value_t = 500 * 1024)]
    pub max_batch_bytes: usize,
    /// Largest single event in bytes.
    #[arg(long, default_value_t = 32 * 1024)]
    pub max_event_bytes: usize,
    /// Ingest requests in flight before the server answers 429 with Retry-After.
    #[arg(long, default_value_t = 512)]
    pub max_inflight: usize,
}

/// Build the server configuration from arguments and settings.
pub fn config(args: &ServeArgs, settings: &Settings) -> Result<ServerConfig> {
    Ok(ServerConfig {
        max_event_bytes: args.max_event_bytes,
        max_batch_bytes: args.max_batch_bytes,
        max_inflight_ingest: args.max_inflight,
        cors_origins: args.cors_origins.clone(),
        default_country: settings.default_country.to_string(),
        default_currency: settings.default_currency.clone(),
        business_tz: settings.timezone,
        identity: settings.identity(),
        key_cache_ttl: Duration::from_secs(5),
        ..ServerConfig::default()
    })
}

/// Run the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, database: &str, settings: &Settings) -> Result<ExitCode> {
    let config = config(&args, settings)?;
    let store = crate::connect(database).await?;
    let server = Server::build(store.clone(), config)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "touchpoint listening on http://{} (database {}); dashboard at http://{}/",
        listener.local_addr()?,
        touchpoint_store::redact_url(database),
        listener.local_addr()?
    );
    let expiry = crate::loyalty_cmd::spawn_expiry_job(store.clone());
    let sweep = crate::rewards_cmd::spawn_sweep_job(store.clone());
    server
        .run(listener, touchpoint_server::shutdown_signal())
        .await?;
    expiry.abort();
    sweep.abort();
    store.close().await;
    eprintln!("touchpoint stopped");
    Ok(ExitCode::SUCCESS)
}
