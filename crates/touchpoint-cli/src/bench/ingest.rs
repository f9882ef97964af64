//! `touchpoint bench ingest`: a small load generator for the tracking endpoint.
//!
//! Workers post Segment batches (or single events) of `track` events over
//! loopback HTTP/1.1 keep-alive connections for a bounded time and report
//! events per second and p50/p99 request latency. Every 200 means the events
//! were committed (SQLite WAL with `synchronous=NORMAL`, PostgreSQL default
//! `fsync`).
//! Without `--url` it starts the real server in this process on a fresh
//! database (a temporary SQLite file, or `--database` when it names
//! PostgreSQL). With `--retry`, a failed request is sent again with the same
//! messageIds until it succeeds (the crash test: kill the server, restart it,
//! and check with `--verify-key` that every event is stored exactly once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use touchpoint_store::keys::Role;

/// `bench ingest` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// A running server (e.g. http://127.0.0.1:8080); default: start one in this process.
    #[arg(long)]
    pub url: Option<String>,
    /// Write key for --url.
    #[arg(long)]
    pub key: Option<String>,
    /// Seconds to run each mode.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Which modes: batch, single or both.
    #[arg(long, default_value = "both")]
    pub mode: String,
    /// Stop after this many events (with --retry: send exactly this many).
    #[arg(long)]
    pub total_events: Option<u64>,
    /// Resend failed requests with the same messageIds until they succeed.
    #[arg(long)]
    pub retry: bool,
    /// After the run, check through the API (with this admin or analyst key) that
    /// the server stores exactly the events sent.
    #[arg(long)]
    pub verify_key: Option<String>,
}

/// Results of one mode.
#[derive(Debug)]
struct Run {
    events: u64,
    requests: u64,
    failures: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn body(run_id: &str, worker: usize, seq: u64, n: usize, single: bool) -> String {
    let event = |i: usize| {
        format!(
            r#"{{"type":"track","event":"Product Viewed","messageId":"{run_id}-{worker}-{seq}-{i}","anonymousId":"anon-{worker}-{}","properties":{{"product_id":"sku-{}","price":19.99,"category":"shoes"}},"context":{{"library":{{"name":"touchpoint-bench","version":"1"}},"page":{{"path":"/p/{i}"}}}},"timestamp":"2024-11-11T10:00:00.000Z"}}"#,
            seq % 1000,
            i % 50
        )
    };
    if single {
        event(0)
    } else {
        let events: Vec<String> = (0..n).map(event).collect();
        format!(
            r#"{{"batch":[{}],"sentAt":"2024-11-11T10:00:01.000Z"}}"#,
            events.join(",")
        )
    }
}

async fn run_mode(args: &IngestArgs, url: &str, key: &str, single: bool) -> Result<Run> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let endpoint = if single {
        format!("{url}/v1/track")
    } else {
        format!("{url}/v1/batch")
    };
    let per_request = if single { 1 } else { args.batch_size.max(1) };
    let auth = format!("Basic {}", base64_encode(format!("{key}:").as_bytes()));
    let run_id = format!("{:016x}", rand::random::<u64>());
    let stop = Arc::new(AtomicBool::new(false));
    let budget = Arc::new(AtomicU64::new(args.total_events.unwrap_or(u64::MAX)));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let client = client.clone();
        let endpoint = endpoint.clone();
        let auth = auth.clone();
        let run_id = run_id.clone();
        let stop = stop.clone();
        let budget = budget.clone();
        let failures = failures.clone();
        let retry = args.retry;
        let bounded = args.total_events.is_some();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut events = 0u64;
            let mut seq = 0u64;
            loop {
                if stop.load(Ordering::Relaxed) || (!bounded && Instant::now() >= deadline) {
                    break;
                }
                // Take a share of the event budget.
                let want = per_request as u64;
                let n = match budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                    (b > 0).then(|| b.saturating_sub(want))
                }) {
                    Ok(before) => before.min(want),
                    Err(_) => break,
                };
                let payload = Bytes::from(body(&run_id, w, seq, n as usize, single));
                seq += 1;
                loop {
                    let req = hyper::Request::post(&endpoint)
                        .header("content-type", "application/json")
                        .header("authorization", &auth)
                        .body(Full::new(payload.clone()))
                        .expect("valid request");
                    let t = Instant::now();
                    let ok = match client.request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            let _ = resp.into_body().collect().await;
                            status == hyper::StatusCode::OK
                        }
                        Err(_) => false,
                    };
                    if ok {
                        lat.push(t.elapsed().as_micros() as u64);
                        events += n;
                        break;
                    }
                    failures.fetch_add(1, Ordering::Relaxed);
                    if !retry {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            (lat, events)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut events = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies_us.extend(l);
        events += e;
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Ok(Run {
        events,
        requests: latencies_us.len() as u64,
        failures: failures.load(Ordering::Relaxed),
        seconds,
        latencies_us,
    })
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn verify(url: &str, key: &str, expected: u64) -> Result<()> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(format!("{url}/api/events/totals"))
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))?;
    let resp = client
        .request(req)
        .await
        .context("asking the server for event totals")?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let events = v["events"].as_u64().unwrap_or(0);
    let distinct = v["distinct_message_ids"].as_u64().unwrap_or(0);
    println!("verify: sent and acknowledged {expected} events; the server stores {events} events with {distinct} distinct messageIds");
    if events != expected || distinct != expected {
        anyhow::bail!("verify failed: events lost or duplicated");
    }
    println!("verify: OK, no event lost, none duplicated");
    Ok(())
}

fn report(label: &str, r: &Run) {
    println!(
        "{label:<28} {:>10.0} events/s  {:>7} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  failures {}  ({} events in {:.1} s)",
        r.events as f64 / r.seconds,
        r.requests,
        pct(&r.latencies_us, 0.50),
        pct(&r.latencies_us, 0.99),
        r.failures,
        r.events,
        r.seconds
    );
}

/// Run the ingest benchmark.
pub async fn run(args: IngestArgs, database: &str) -> Result<()> {
    let modes: Vec<bool> = match args.mode.as_str() {
        "batch" => vec![false],
        "single" => vec![true],
        "both" => vec![false, true],
        m => anyhow::bail!("--mode {m:?}: expected batch, single or both"),
    };
    let (url, key, server, _dir) = match &args.url {
        Some(u) => {
            let key = args
                .key
                .clone()
                .context("--url needs --key (an ingest key of that server)")?;
            (u.trim_end_matches('/').to_string(), key, None, None)
        }
        None => {
            let dir = tempfile::tempdir()?;
            let db = if database.starts_with("postgres") {
                database.to_string()
            } else {
                format!("sqlite://{}", dir.path().join("bench.db").display())
            };
            let store = crate::connect(&db).await?;
            let key = store
                .create_key(Role::Ingest, Some("bench"), Some("web"))
                .await?
                .key;
            let server = touchpoint_server::Server::build(
                store.clone(),
                touchpoint_server::ServerConfig {
                    max_inflight_ingest: 4096,
                    ..Default::default()
                },
            )?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let handle = tokio::spawn(server.run(listener, async {
                let _ = stop_rx.await;
            }));
            println!(
                "server in this process on {addr}, database {}",
                touchpoint_store::redact_url(&db)
            );
            (
                format!("http://{addr}"),
                key,
                Some((stop_tx, handle, store)),
                Some(dir),
            )
        }
    };
    let mut sent = 0;
    for single in modes {
        let label = if single {
            "single events".to_string()
        } else {
            format!("batches of {}", args.batch_size)
        };
        let r = run_mode(&args, &url, &key, single).await?;
        sent += r.events;
        report(&format!("{label}, {} conns", args.concurrency), &r);
    }
    if let Some(vk) = &args.verify_key {
        verify(&url, vk, sent).await?;
    }
    if let Some((stop, handle, store)) = server {
        let _ = stop.send(());
        handle.await??;
        store.close().await;
    }
    Ok(())
}
