//! `touchpoint serve`: the HTTP server (JSON API and Segment-compatible
//! ingest), the loyalty jobs, and the campaign scheduler: every
//! `--campaigns-interval` seconds the same tick as `touchpoint campaigns run`
//! ([`crate::campaigns_cmd::tick`]).

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
    /// Seconds between campaign scheduler ticks (decide and deliver, as `campaigns run`); 0 turns it off.
    #[arg(long, env = "TOUCHPOINT_CAMPAIGNS_INTERVAL", default_value_t = 60)]
    pub campaigns_interval: u64,
    /// Delivery settings of the campaign scheduler.
    #[command(flatten)]
    pub delivery: crate::campaigns_cmd::DeliveryArgs,
}

/// The campaign scheduler: a tick every `every`, the first at once. Ticks
/// never overlap within a process; across processes the store's unique
/// send keys and claims keep each message to one delivery.
pub fn spawn_campaign_scheduler(
    store: touchpoint_store::Store,
    tz: chrono_tz::Tz,
    every: Duration,
    delivery: touchpoint_store::delivery::DeliverySettings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            let now = touchpoint_store::now_ms();
            match crate::campaigns_cmd::tick(&store, tz, now, Some(&delivery)).await {
                Ok(out) => {
                    let queued: u64 = out.campaigns.iter().map(|c| c.queued).sum();
                    let d = out.delivery.unwrap_or_default();
                    tracing::info!(
                        queued,
                        sent = d.sent,
                        retrying = d.retrying,
                        dead_letters = d.failed,
                        waiting = d.waiting,
                        "campaign scheduler tick"
                    );
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "campaign scheduler tick failed")
                }
            }
        }
    })
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
    let referral_grants = crate::loyalty_cmd::spawn_referral_grant_job(store.clone());
    let scheduler = if args.campaigns_interval > 0 {
        let delivery = args.delivery.settings(None)?;
        eprintln!(
            "campaign scheduler: a tick every {} s (--campaigns-interval; 0 turns it off)",
            args.campaigns_interval
        );
        Some(spawn_campaign_scheduler(
            store.clone(),
            settings.timezone,
            Duration::from_secs(args.campaigns_interval),
            delivery,
        ))
    } else {
        None
    };
    server
        .run(listener, touchpoint_server::shutdown_signal())
        .await?;
    expiry.abort();
    sweep.abort();
    referral_grants.abort();
    if let Some(s) = scheduler {
        s.abort();
    }
    store.close().await;
    eprintln!("touchpoint stopped");
    Ok(ExitCode::SUCCESS)
}
