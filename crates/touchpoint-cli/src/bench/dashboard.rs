//! `touchpoint bench dashboard`: the dashboard's pages over HTTP on the
//! large bench brand (the store `bench reports` generates: by default 1M
//! members and 4M orders, with the demo's spend file and a stored BG/NBD
//! prediction per member), served by the real server (the router `touchpoint
//! serve` runs) on a loopback port. Signs in like a browser, then asks each
//! page with several filters a few times: the first answer (after the
//! store was built or written) and the median of the others, timed from the
//! request to the last byte, and each page's weight, gzipped as the server
//! sends it, with the assets it links.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use touchpoint_store::keys::Role;
use touchpoint_store::Store;

/// `bench dashboard` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchDashboardArgs {
    /// Members.
    #[arg(long, default_value_t = 1_000_000)]
    pub members: i64,
    /// Orders (about 2.5 lines each).
    #[arg(long, default_value_t = 4_000_000)]
    pub orders: i64,
    /// Working folder; the store is `bench-dashboard.db` in it (default: a
    /// temporary folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use the store already in `--dir` instead of generating it again.
    #[arg(long)]
    pub reuse: bool,
    /// Requests per page and filter (the first, then the others' median).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Only the pages whose path contains this (repeatable; default: every page).
    #[arg(long = "page", value_name = "TEXT")]
    pub only: Vec<String>,
    /// Do not write an order and time every page again after it.
    #[arg(long)]
    pub no_write: bool,
    /// The server time goal per page, milliseconds (issue 13: 500).
    #[arg(long, default_value_t = 500)]
    pub goal_ms: u64,
}

/// The pages and filters asked, in this order.
fn pages(member: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "/overview?period=30",
        "/overview?period=90&channel=tmall",
        "/overview?period=ytd&brand=brand1",
        "/overview?period=custom&from=2025-01-01&to=2025-03-31&channel=jd&brand=brand2",
        "/customers?period=ytd",
        "/customers?period=90&channel=tmall",
        "/customers?period=ytd&brand=brand3&by=channel",
        "/value",
        "/products?period=30",
        "/products?period=90&channel=jd",
        "/products?period=ytd&brand=brand4",
        "/acquisition?period=ytd",
        "/acquisition?period=90&channel=tmall",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("/members?q={member}"));
    v.push(format!("/members/{member}"));
    v
}

/// One keep-alive connection that keeps the session cookie.
struct Browser {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    body: Bytes,
    location: Option<String>,
}

impl Browser {
    async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Browser {
            sender,
            cookies: Vec::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: hyper::Request<Full<Bytes>>) -> Result<Answer> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        for v in resp.headers().get_all(hyper::header::SET_COOKIE) {
            let v = v.to_str().unwrap_or("");
            let first = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = first.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            body,
            location,
        })
    }

    /// GET with `Accept-Encoding: gzip`: the body as sent (gzipped when the
    /// server compressed it).
    async fn get(&mut self, path: &str) -> Result<Answer> {
        let req = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .header("accept-encoding", "gzip")
            .header("cookie", self.cookie_header())
            .body(Full::new(Bytes::new()))?;
        self.send(req).await
    }

    async fn sign_in(&mut self, key: &str) -> Result<()> {
        let page = self.get("/signin").await?;
        let html = String::from_utf8_lossy(&gunzip(&page.body)).to_string();
        let at = html
            .find("name=\"csrf\" value=\"")
            .context("no CSRF token on the sign-in page")?;
        let rest = &html[at + 19..];
        let token = &rest[..rest.find('"').context("CSRF token")?];
        let form = format!("key={key}&csrf={token}&next=%2Foverview");
        let req = hyper::Request::post("/signin")
            .header("host", "127.0.0.1")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", self.cookie_header())
            .body(Full::new(Bytes::from(form)))?;
        let a = self.send(req).await?;
        if a.status != 303 && a.status != 302 {
            bail!("sign-in answered {}", a.status);
        }
        Ok(())
    }
}

/// The body, decompressed if it is gzip.
fn gunzip(b: &[u8]) -> Vec<u8> {
    if b.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    b.to_vec()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Build the bench brand: orders, the analytics facts, the demo's spend over
/// the same days, and a stored BG/NBD prediction per member.
async fn build(store: &Store, members: i64, orders: i64) -> Result<()> {
    let t = Instant::now();
    super::reports::generate(store, members, orders).await?;
    println!(
        "  generate (SQL, in the database): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    store.rebuild_facts().await?;
    println!(
        "  rebuild_facts (every fact from the orders): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut spend = Vec::new();
    let (from, to) = super::reports::date_range();
    touchpoint_core::demo::spend::write_spend(&mut spend, from, to)?;
    let r = store.import_spend(spend, None).await?;
    if r.rejected > 0 {
        bail!("the bench spend file has rejected rows: {:?}", r.errors);
    }
    println!(
        "  spend: {} rows in {:.1} s",
        r.inserted,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    use touchpoint_core::clv::pipeline::{ClvOptions, ModelKind};
    use touchpoint_core::clv::TimeUnit;
    store
        .clv_predict(&touchpoint_store::clv::PredictRequest {
            model: ModelKind::BgNbd,
            options: ClvOptions {
                unit: TimeUnit::Week,
                horizon: Some("12months".parse().map_err(anyhow::Error::msg)?),
                ..ClvOptions::default()
            },
            timezone: chrono_tz::Asia::Shanghai,
            store: true,
        })
        .await?;
    println!(
        "  clv predict --model bgnbd (stored per member): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One paid order of a new customer on the day of the last order, through
/// the one write path.
async fn write_one_order(store: &Store) -> Result<()> {
    use touchpoint_core::identity::IdentityConfig;
    use touchpoint_core::ingest::{Customer, OrderLine, OrderRecord};
    use touchpoint_core::{ChannelName, Currency, Identifier, Money, OrderStatus, Phone};
    let last = store
        .last_order_day(8 * 3_600_000)
        .await?
        .context("the bench store has no orders")?;
    let at = chrono::DateTime::from_timestamp_millis(
        i64::from(last) * 86_400_000 - 8 * 3_600_000 + 12 * 3_600_000,
    )
    .context("order time")?;
    let now = touchpoint_store::now_ms();
    let order = OrderRecord {
        channel: ChannelName::parse("tmall").map_err(anyhow::Error::msg)?,
        order_id: format!("BENCH-{now}"),
        ordered_at: at,
        paid_at: None,
        status: OrderStatus::Paid,
        currency: Currency::parse("CNY").map_err(anyhow::Error::msg)?,
        order_discount: Money::ZERO,
        refunded: Money::ZERO,
        customer: Customer {
            identifiers: vec![Identifier::phone(
                &Phone::parse(&format!("139{:08}", now % 100_000_000), "86")
                    .map_err(anyhow::Error::msg)?,
            )],
            ..Customer::default()
        },
        lines: vec![OrderLine {
            sku: "BENCH-NEW".into(),
            product_name: None,
            brand: None,
            category: None,
            quantity: 1,
            unit_price: Money::from_minor(12_900),
            unit_cost: None,
            discount: Money::ZERO,
        }],
        campaign: None,
        source_line: 0,
        coupon_codes: Vec::new(),
        referral_code: None,
    };
    touchpoint_store::import::Writer::new(IdentityConfig::default())
        .write_orders(store, &[order])
        .await?;
    Ok(())
}

/// Run the benchmark.
pub async fn run(args: BenchDashboardArgs) -> Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let db = dir.join("bench-dashboard.db");
    let reuse = args.reuse && db.exists();
    if !reuse {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    let url = format!("sqlite://{}", db.display());
    println!(
        "bench dashboard: {} members, {} orders, {} logical CPUs, {}",
        args.members,
        args.orders,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if reuse {
            "store reused"
        } else {
            "store generated"
        }
    );
    let store = crate::connect(&url).await?;
    if !reuse {
        build(&store, args.members, args.orders).await?;
    }
    let key = store
        .create_key(Role::Analyst, Some("bench dashboard"), Some("bench"))
        .await?
        .key;
    let server = touchpoint_server::Server::build(
        store.clone(),
        touchpoint_server::ServerConfig {
            business_tz: chrono_tz::Asia::Shanghai,
            ..touchpoint_server::ServerConfig::default()
        },
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async {
        let _ = stop_rx.await;
    }));

    let mut b = Browser::connect(addr).await?;
    b.sign_in(&key).await?;
    // The assets every page links, gzipped as sent (cached by the browser
    // after the first page; counted in every page's weight).
    let mut assets = 0usize;
    let first = b.get("/overview?period=30").await?;
    let html = String::from_utf8_lossy(&gunzip(&first.body)).to_string();
    let mut links: Vec<String> = html
        .match_indices("/assets/")
        .map(|(i, _)| {
            let rest = &html[i..];
            rest[..rest.find(['"', '\'', ')']).unwrap_or(rest.len())].to_string()
        })
        .collect();
    links.sort();
    links.dedup();
    for l in &links {
        let a = b.get(l).await?;
        if a.status != 200 {
            bail!("{l}: HTTP {}", a.status);
        }
        assets += a.body.len();
    }
    println!(
        "  assets: {} files, {:.1} KB as sent (gzip)",
        links.len(),
        assets as f64 / 1024.0
    );
    println!(
        "{:<78} {:>9} {:>10} {:>10} {:>6}",
        "page", "first ms", "median ms", "KB (gzip)", "goal"
    );
    let mut worst = Duration::ZERO;
    let mut met = 0;
    let list: Vec<String> = pages("M-1")
        .into_iter()
        .filter(|p| args.only.is_empty() || args.only.iter().any(|o| p.contains(o.as_str())))
        .collect();
    for path in &list {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..args.repeat.max(1) {
            let t = Instant::now();
            let a = b.get(path).await?;
            times.push(t.elapsed());
            if a.status != 200 {
                bail!(
                    "{path}: HTTP {} {}{}",
                    a.status,
                    a.location.unwrap_or_default(),
                    String::from_utf8_lossy(&gunzip(&a.body))
                        .chars()
                        .take(300)
                        .collect::<String>()
                );
            }
            size = a.body.len();
        }
        let first = times[0];
        let rest = if times.len() > 1 {
            median(times[1..].to_vec())
        } else {
            first
        };
        let slowest = first.max(rest);
        worst = worst.max(slowest);
        let ok = ms(slowest) <= args.goal_ms as f64;
        met += ok as usize;
        println!(
            "{path:<78} {:>9.0} {:>10.0} {:>10.1} {:>6}",
            ms(first),
            ms(rest),
            (size + assets) as f64 / 1024.0,
            if ok { "yes" } else { "no" }
        );
    }
    println!(
        "  {met} of {} page views under {} ms (first and median); slowest {:.0} ms",
        list.len(),
        args.goal_ms,
        ms(worst)
    );
    if !args.no_write {
        // A live store changes between views: one new order through the
        // write path, then every page once more (the analytics model kept in
        // memory takes the new fact; every result computed from it before
        // is computed again).
        let t = Instant::now();
        write_one_order(&store).await?;
        println!(
            "after one new order (written in {:.0} ms):",
            ms(t.elapsed())
        );
        println!("{:<78} {:>9}", "page", "ms");
        let mut worst = Duration::ZERO;
        let mut met = 0;
        for path in &list {
            let t = Instant::now();
            let a = b.get(path).await?;
            let d = t.elapsed();
            if a.status != 200 {
                bail!("{path}: HTTP {} after the write", a.status);
            }
            worst = worst.max(d);
            met += (ms(d) <= args.goal_ms as f64) as usize;
            println!("{path:<78} {:>9.0}", ms(d));
        }
        println!(
            "  {met} of {} page views under {} ms after the write; slowest {:.0} ms",
            list.len(),
            args.goal_ms,
            ms(worst)
        );
    }
    if let Some(kb) = super::reports::peak_rss_kb() {
        println!(
            "  peak memory of the process (server and client, VmHWM): {} MB",
            kb / 1024
        );
    }
    let _ = stop_tx.send(());
    let _ = handle.await;
    store.close().await;
    Ok(())
}
