//! `touchpoint bench loyalty`: points spends and packaging-code claims over
//! HTTP, against the real server (the router `touchpoint serve` runs) in this
//! process on port 0, over a fresh SQLite store and, with `--postgres`, a
//! scratch PostgreSQL database.
//!
//! Seeding goes through the store's write path: one order per member (the
//! program earns 1 point per CNY, available at once), and a batch of codes.
//! Then two phases on N keep-alive HTTP/1.1 connections (one per task):
//!
//! - **mixed**: spends (`POST /api/members/{id}/points/spend`) on random
//!   members and claims (`POST /api/loyalty/codes/claim`) of fresh codes, each
//!   with its own `Idempotency-Key`; one spend in 20 is a retry of an earlier
//!   one (same key and body: it must answer the same entry and debit once),
//!   one claim in 20 is a second claim of a code already claimed (it must be
//!   409 `code_already_claimed`).
//! - **hot member**: every connection spends 10 points from ONE member,
//!   more attempts than the balance covers.
//!
//! Then the correctness report: every member's balance equals its start plus
//! the successful claims less the successful spends the clients saw; the
//! ledger's invariants (entries add up to balances, lots to their draws, no
//! balance below zero); every code claimed at most once; for the hot member,
//! the final balance is the start less the successful spends, and 409
//! `insufficient_points` came only once the balance could not cover a spend
//! (no spend sent after a refusal was answered succeeded, and the refused
//! member kept less than one spend).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use serde_json::json;
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{Customer, OrderLine, OrderRecord};
use touchpoint_core::{ChannelName, Currency, Identifier, IdentifierKind, Money, OrderStatus};
use touchpoint_store::import::Writer;
use touchpoint_store::keys::Role;
use touchpoint_store::Store;

/// `bench loyalty` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchLoyaltyArgs {
    /// PostgreSQL server to run on too, after SQLite (postgres://USER@HOST:PORT/DB: a
    /// scratch database is created on it and dropped after).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Keep-alive HTTP connections, one client task each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Operations of the mixed phase (spends and claims).
    #[arg(long, default_value_t = 40_000)]
    pub ops: usize,
    /// Spends attempted on the hot member (its balance covers half of them).
    #[arg(long, default_value_t = 10_000)]
    pub hot_ops: usize,
    /// Members with points.
    #[arg(long, default_value_t = 1_000)]
    pub members: usize,
    /// Share of the mixed operations that are code claims, in percent.
    #[arg(long, default_value_t = 50)]
    pub claim_percent: u32,
    /// Stop a phase after this many seconds if its operations are not all sent.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
}

/// The goals of issue 10.
const GOAL_OPS: f64 = 5_000.0;
const GOAL_P99_MS: f64 = 50.0;
/// Points each member starts with (1 point per CNY of its seed order).
const START_POINTS: i64 = 1_000_000;
/// Points of each code of the batch.
const CODE_POINTS: i64 = 25;
/// Points of each hot-member spend.
const HOT_SPEND: i64 = 10;

const PROGRAM: &str = r#"
name = "Benchmark rewards"
starts = "2020-01-01"
pending_days = 0
refund_policy = "within_balance"
code_failures_per_hour = 1000000

[[earn]]
points = 1
"#;

/// One phase's figures.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    /// Requests answered.
    pub ops: usize,
    /// Wall time of the phase.
    pub seconds: f64,
    /// Request latencies, microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Answers by `STATUS` or `STATUS code` (e.g. `409 insufficient_points`).
    pub outcomes: BTreeMap<String, u64>,
}

impl Phase {
    pub(super) fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }

    pub(super) fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    /// Answers with this outcome.
    pub fn count(&self, outcome: &str) -> u64 {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    pub(super) fn outcomes_text(&self) -> String {
        self.outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A run on one backend.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// `SQLite` or `PostgreSQL`.
    pub backend: String,
    /// Spends and claims on many members.
    pub mixed: Phase,
    /// Spends from one member.
    pub hot: Phase,
    /// The hot member's balance before and after.
    pub hot_start: i64,
    pub hot_end: i64,
    /// Member balances compared with what the clients saw.
    pub members_checked: usize,
    /// Codes claimed (answers 200).
    pub codes_claimed: usize,
    /// Spends retried with the same key (each answered the first entry).
    pub retries: usize,
    /// Everything found wrong (empty: correct).
    pub violations: Vec<String>,
}

/// One keep-alive connection (shared with `bench coupons`).
pub(super) struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    auth: String,
}

impl Client {
    pub(super) async fn connect(addr: SocketAddr, key: &str) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            sender,
            auth: format!("Bearer {key}"),
        })
    }

    /// POST a JSON body; the status, the error code (if any) and the body.
    pub(super) async fn post(
        &mut self,
        path: &str,
        idem: &str,
        body: &str,
    ) -> Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let req = hyper::Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("authorization", &self.auth)
            .header("idempotency-key", idem)
            .body(Full::new(Bytes::from(body.to_string())))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `200`, or `STATUS code` from the API's error shape.
pub(super) fn outcome(status: u16, body: &[u8]) -> String {
    if status == 200 {
        return "200".into();
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    format!("{status} {code}").trim().to_string()
}

pub(super) fn seed_order(
    member_no: &str,
    points: i64,
    at: chrono::DateTime<Utc>,
) -> Result<OrderRecord> {
    Ok(OrderRecord {
        channel: ChannelName::parse("pos").map_err(|e| anyhow::anyhow!("{e}"))?,
        order_id: format!("seed-{member_no}"),
        ordered_at: at,
        paid_at: None,
        status: OrderStatus::Paid,
        currency: Currency::parse("CNY").map_err(|e| anyhow::anyhow!("{e}"))?,
        order_discount: Money::from_minor(0),
        refunded: Money::from_minor(0),
        campaign: None,
        coupon_codes: Vec::new(),
        referral_code: None,
        customer: Customer {
            identifiers: vec![Identifier::from_stored(
                IdentifierKind::MemberNo,
                member_no.to_string(),
            )],
            name: None,
            gender: None,
            birthday: None,
            region: None,
        },
        lines: vec![OrderLine {
            sku: "BENCH".into(),
            product_name: None,
            brand: None,
            category: None,
            quantity: 1,
            unit_price: Money::from_minor(points * 100),
            unit_cost: None,
            discount: Money::from_minor(0),
        }],
        source_line: 1,
    })
}

/// What one mixed-phase client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    credited: HashMap<i64, i64>,
    spent: HashMap<i64, i64>,
    claimed: Vec<String>,
    retries: usize,
    violations: Vec<String>,
}

fn entry_id(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["entry"]["id"].as_i64())
}

#[allow(clippy::too_many_arguments)]
async fn mixed_client(
    task: usize,
    addr: SocketAddr,
    key: String,
    members: Arc<Vec<i64>>,
    codes: Arc<Vec<String>>,
    next_code: Arc<AtomicUsize>,
    next_op: Arc<AtomicUsize>,
    args: BenchLoyaltyArgs,
    deadline: Instant,
) -> Result<Seen> {
    let mut c = Client::connect(addr, &key).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(task as u64);
    let mut seen = Seen::default();
    // Spends answered 200: (key, body, member, entry id).
    let mut sent: Vec<(String, String, i64, i64)> = Vec::new();
    let mut seq = 0u64;
    while next_op.fetch_add(1, Ordering::Relaxed) < args.ops && Instant::now() < deadline {
        seq += 1;
        let member = members[rng.gen_range(0..members.len())];
        let claim = rng.gen_range(0..100) < args.claim_percent;
        let t = Instant::now();
        if claim && !seen.claimed.is_empty() && rng.gen_ratio(1, 20) {
            // A code this client claimed already, claimed again.
            let code = seen.claimed[rng.gen_range(0..seen.claimed.len())].clone();
            let body = json!({"code": code, "member_id": format!("M-{member}")}).to_string();
            let (status, resp) = c
                .post("/api/loyalty/codes/claim", &format!("c{task}-{seq}"), &body)
                .await?;
            seen.latencies_us.push(t.elapsed().as_micros() as u64);
            let o = outcome(status, &resp);
            if o != "409 code_already_claimed" {
                seen.violations
                    .push(format!("a second claim of {code} was answered {o}"));
            }
            *seen.outcomes.entry(o).or_default() += 1;
            continue;
        }
        let fresh = if claim {
            let i = next_code.fetch_add(1, Ordering::Relaxed);
            codes.get(i).cloned()
        } else {
            None
        };
        if let Some(code) = fresh {
            let body = json!({"code": code, "member_id": format!("M-{member}")}).to_string();
            let (status, resp) = c
                .post("/api/loyalty/codes/claim", &format!("c{task}-{seq}"), &body)
                .await?;
            seen.latencies_us.push(t.elapsed().as_micros() as u64);
            let o = outcome(status, &resp);
            if status == 200 {
                *seen.credited.entry(member).or_default() += CODE_POINTS;
                seen.claimed.push(code);
            } else {
                seen.violations
                    .push(format!("the first claim of {code} was answered {o}"));
            }
            *seen.outcomes.entry(o).or_default() += 1;
        } else if !sent.is_empty() && rng.gen_ratio(1, 20) {
            // A retry: the same key and body again.
            let (k, body, m, first) = sent[rng.gen_range(0..sent.len())].clone();
            let path = format!("/api/members/M-{m}/points/spend");
            let (status, resp) = c.post(&path, &k, &body).await?;
            seen.latencies_us.push(t.elapsed().as_micros() as u64);
            let o = outcome(status, &resp);
            if status != 200 || entry_id(&resp) != Some(first) {
                seen.violations.push(format!(
                    "a retried spend (key {k}) was answered {o} with entry {:?}, not entry {first}",
                    entry_id(&resp)
                ));
            }
            seen.retries += 1;
            *seen.outcomes.entry(o).or_default() += 1;
        } else {
            let points = rng.gen_range(1..=20i64);
            let k = format!("s{task}-{seq}");
            let body = json!({"points": points, "reason": "benchmark", "reference": k}).to_string();
            let path = format!("/api/members/M-{member}/points/spend");
            let (status, resp) = c.post(&path, &k, &body).await?;
            seen.latencies_us.push(t.elapsed().as_micros() as u64);
            let o = outcome(status, &resp);
            match (status, entry_id(&resp)) {
                (200, Some(e)) => {
                    *seen.spent.entry(member).or_default() += points;
                    sent.push((k, body, member, e));
                }
                _ => seen.violations.push(format!(
                    "a spend of {points} from M-{member} was answered {o}"
                )),
            }
            *seen.outcomes.entry(o).or_default() += 1;
        }
    }
    Ok(seen)
}

/// One hot-member request: sent and answered (µs since the phase began), 200?
struct HotReq {
    sent_us: u64,
    done_us: u64,
    outcome: String,
}

#[allow(clippy::too_many_arguments)]
async fn hot_client(
    task: usize,
    addr: SocketAddr,
    key: String,
    member: i64,
    next_op: Arc<AtomicUsize>,
    total: usize,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<HotReq>> {
    let mut c = Client::connect(addr, &key).await?;
    let mut out = Vec::new();
    let path = format!("/api/members/M-{member}/points/spend");
    let mut seq = 0;
    while next_op.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
        seq += 1;
        let k = format!("h{task}-{seq}");
        let body = json!({"points": HOT_SPEND, "reason": "benchmark", "reference": k}).to_string();
        let sent_us = started.elapsed().as_micros() as u64;
        let (status, resp) = c.post(&path, &k, &body).await?;
        out.push(HotReq {
            sent_us,
            done_us: started.elapsed().as_micros() as u64,
            outcome: outcome(status, &resp),
        });
    }
    Ok(out)
}

async fn accounts(store: &Store) -> Result<HashMap<i64, i64>> {
    let mut h = store.acquire().await?;
    let rows = h
        .conn()
        .fetch(
            "SELECT member_id, available FROM points_accounts",
            &[],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
        .await?;
    Ok(rows.into_iter().collect())
}

/// The ledger's invariants, as SQL counts of rows that break them.
async fn ledger_violations(store: &Store) -> Result<Vec<String>> {
    let checks = [
        (
            "members whose entries do not add up to their balance",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM points_accounts a WHERE a.available + a.pending <> \
             (SELECT COALESCE(SUM(e.points), 0) FROM points_entries e WHERE e.member_id = a.member_id)",
        ),
        (
            "lots whose remaining is not their amount less their draws",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM points_lots l WHERE l.remaining < 0 OR l.remaining <> \
             l.amount - (SELECT COALESCE(SUM(d.points), 0) FROM points_draws d WHERE d.lot_id = l.id)",
        ),
        (
            "balances below zero",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM points_accounts WHERE available < 0 OR pending < 0",
        ),
        (
            "spends whose draws do not add up to them",
            "SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries e WHERE e.kind = 'spend' AND \
             -e.points <> (SELECT COALESCE(SUM(d.points), 0) FROM points_draws d WHERE d.entry_id = e.id)",
        ),
    ];
    let mut out = Vec::new();
    let mut h = store.acquire().await?;
    for (what, sql) in checks {
        let n = h
            .conn()
            .fetch_opt(sql, &[], |r| r.i64(0))
            .await?
            .unwrap_or(0);
        if n != 0 {
            out.push(format!("{n} {what}"));
        }
    }
    Ok(out)
}

/// Seed, serve, drive both phases and check. `url` is a fresh database.
pub(crate) async fn run_on(url: &str, backend: &str, args: &BenchLoyaltyArgs) -> Result<Outcome> {
    if args.connections == 0 || args.members == 0 {
        bail!("--connections and --members must be at least 1");
    }
    let store = crate::connect(url).await?;
    store
        .loyalty_set_program(PROGRAM)
        .await
        .context("setting the benchmark's program")?;
    // Members and their points, through the order write path.
    let at = Utc::now() - chrono::Duration::hours(1);
    let hot_points = (args.hot_ops as i64 / 2).max(1) * HOT_SPEND;
    let mut orders = Vec::with_capacity(args.members + 1);
    for m in 0..args.members {
        orders.push(seed_order(&format!("B{m}"), START_POINTS, at)?);
    }
    orders.push(seed_order("HOT", hot_points, at)?);
    let mut writer = Writer::new(IdentityConfig::default());
    let mut ids = Vec::with_capacity(orders.len());
    for chunk in orders.chunks(5_000) {
        let r = writer.write_orders(&store, chunk).await?;
        for m in r.members {
            ids.push(m.context("a seed order has no member")?.get());
        }
    }
    let hot = ids.pop().context("no hot member")?;
    let members = Arc::new(ids);
    let n_codes = args.ops * args.claim_percent as usize / 100 + 16;
    let batch = store
        .codes_create_batch("benchmark", n_codes, CODE_POINTS, None, None)
        .await?;
    let codes = Arc::new(batch.codes);
    let key = store
        .create_key(Role::Ingest, Some("bench loyalty"), Some("bench"))
        .await?
        .key;
    let start = accounts(&store).await?;

    let server = touchpoint_server::Server::build(
        store.clone(),
        touchpoint_server::ServerConfig::default(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async {
        let _ = stop_rx.await;
    }));

    let mut o = Outcome {
        backend: backend.to_string(),
        ..Outcome::default()
    };

    // Mixed phase.
    let next_code = Arc::new(AtomicUsize::new(0));
    let next_op = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut tasks = Vec::new();
    for task in 0..args.connections {
        tasks.push(tokio::spawn(mixed_client(
            task,
            addr,
            key.clone(),
            members.clone(),
            codes.clone(),
            next_code.clone(),
            next_op.clone(),
            args.clone(),
            deadline,
        )));
    }
    let mut credited: HashMap<i64, i64> = HashMap::new();
    let mut spent: HashMap<i64, i64> = HashMap::new();
    let mut claimed: HashSet<String> = HashSet::new();
    for t in tasks {
        let s = t.await??;
        o.mixed.latencies_us.extend(s.latencies_us);
        for (k, v) in s.outcomes {
            *o.mixed.outcomes.entry(k).or_default() += v;
        }
        for (m, p) in s.credited {
            *credited.entry(m).or_default() += p;
        }
        for (m, p) in s.spent {
            *spent.entry(m).or_default() += p;
        }
        for c in s.claimed {
            if !claimed.insert(c.clone()) {
                o.violations
                    .push(format!("code {c} was claimed successfully twice"));
            }
        }
        o.retries += s.retries;
        o.violations.extend(s.violations);
    }
    o.mixed.seconds = started.elapsed().as_secs_f64();
    o.mixed.ops = o.mixed.latencies_us.len();
    o.mixed.latencies_us.sort_unstable();
    o.codes_claimed = claimed.len();

    // Hot member.
    let next_op = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut tasks = Vec::new();
    for task in 0..args.connections {
        tasks.push(tokio::spawn(hot_client(
            task,
            addr,
            key.clone(),
            hot,
            next_op.clone(),
            args.hot_ops,
            started,
            deadline,
        )));
    }
    let mut reqs = Vec::new();
    for t in tasks {
        reqs.extend(t.await??);
    }
    o.hot.seconds = started.elapsed().as_secs_f64();
    o.hot.ops = reqs.len();
    for r in &reqs {
        o.hot.latencies_us.push(r.done_us - r.sent_us);
        *o.hot.outcomes.entry(r.outcome.clone()).or_default() += 1;
    }
    o.hot.latencies_us.sort_unstable();

    let _ = stop_tx.send(());
    handle.await??;

    // Correctness.
    let end = accounts(&store).await?;
    for &m in members.iter() {
        let want = start.get(&m).copied().unwrap_or(0) + credited.get(&m).copied().unwrap_or(0)
            - spent.get(&m).copied().unwrap_or(0);
        let got = end.get(&m).copied().unwrap_or(0);
        if got != want {
            o.violations.push(format!(
                "member M-{m} has {got} points; the clients saw {want} (start {} + claims {} - spends {})",
                start.get(&m).copied().unwrap_or(0),
                credited.get(&m).copied().unwrap_or(0),
                spent.get(&m).copied().unwrap_or(0)
            ));
        }
    }
    o.members_checked = members.len();
    let stored_claims = {
        let mut h = store.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM loyalty_codes WHERE claimed_by IS NOT NULL",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0)
    };
    if stored_claims != o.codes_claimed as i64 {
        o.violations.push(format!(
            "the store has {stored_claims} claimed codes; the clients were answered 200 for {}",
            o.codes_claimed
        ));
    }
    o.hot_start = start.get(&hot).copied().unwrap_or(0);
    o.hot_end = end.get(&hot).copied().unwrap_or(0);
    let ok = o.hot.count("200") as i64;
    let refused = o.hot.count("409 insufficient_points");
    if o.hot_end != o.hot_start - ok * HOT_SPEND {
        o.violations.push(format!(
            "the hot member has {} points, not its start {} less {ok} spends of {HOT_SPEND}",
            o.hot_end, o.hot_start
        ));
    }
    if o.hot.ops as u64 != ok as u64 + refused {
        o.violations.push(format!(
            "hot member spends answered other than 200 or 409 insufficient_points: {}",
            o.hot.outcomes_text()
        ));
    }
    if refused > 0 && o.hot_end >= HOT_SPEND {
        o.violations.push(format!(
            "{refused} spends were refused while the hot member kept {} points",
            o.hot_end
        ));
    }
    let first_refusal = reqs
        .iter()
        .filter(|r| r.outcome != "200")
        .map(|r| r.done_us)
        .min();
    if let Some(t) = first_refusal {
        let late = reqs
            .iter()
            .filter(|r| r.outcome == "200" && r.sent_us > t)
            .count();
        if late > 0 {
            o.violations.push(format!(
                "{late} hot-member spends sent after a refusal was answered succeeded (the refusal came too early)"
            ));
        }
    }
    o.violations.extend(ledger_violations(&store).await?);
    store.close().await;
    Ok(o)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn print(o: &Outcome, connections: usize) {
    let m = &o.mixed;
    println!(
        "\n{}: mixed spends and claims, {connections} connections: {} operations in {:.2} s",
        o.backend, m.ops, m.seconds
    );
    println!(
        "  {:.0} ops/s (goal >= {GOAL_OPS:.0}: {}); p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (goal < {GOAL_P99_MS:.0} ms: {})",
        m.rate(),
        met(m.rate() >= GOAL_OPS),
        m.pct_ms(0.50),
        m.pct_ms(0.95),
        m.pct_ms(0.99),
        met(m.pct_ms(0.99) < GOAL_P99_MS)
    );
    println!("  answers: {}", m.outcomes_text());
    let h = &o.hot;
    println!(
        "  hot member, {connections} connections spending {HOT_SPEND} points from one member: {} spends in {:.2} s, {:.0} ops/s; p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        h.ops,
        h.seconds,
        h.rate(),
        h.pct_ms(0.50),
        h.pct_ms(0.95),
        h.pct_ms(0.99)
    );
    println!(
        "  hot member: {} points at the start, {} at the end; answers: {}",
        o.hot_start,
        o.hot_end,
        h.outcomes_text()
    );
    super::print_correctness(
        &format!(
            "{} balances equal start + claims - spends as answered; {} codes claimed once each; {} retried spends debited once; ledger invariants hold; the hot member's refusals came only when its balance could not cover a spend",
            o.members_checked, o.codes_claimed, o.retries
        ),
        &o.violations,
    );
}

/// Run the benchmark on SQLite, then on PostgreSQL with `--postgres`.
pub async fn run(args: BenchLoyaltyArgs) -> Result<()> {
    println!(
        "bench loyalty: {} members, {} mixed operations ({}% claims), {} hot-member spends, {} connections",
        args.members, args.ops, args.claim_percent, args.hot_ops, args.connections
    );
    let mut outcomes = Vec::new();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let o = run_on(&url, "SQLite", &args).await?;
    print(&o, args.connections);
    outcomes.push(o);
    if let Some(base) = &args.postgres {
        let db = super::ScratchDb::create(base, "loyalty").await?;
        let r = run_on(&db.url, "PostgreSQL", &args).await;
        db.drop().await?;
        let o = r?;
        print(&o, args.connections);
        outcomes.push(o);
    }
    if outcomes.iter().any(|o| !o.violations.is_empty()) {
        bail!("the ledger was not correct under load (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BenchLoyaltyArgs {
        BenchLoyaltyArgs {
            postgres: None,
            connections: 16,
            ops: 400,
            hot_ops: 200,
            members: 20,
            claim_percent: 50,
            max_seconds: 600,
        }
    }

    fn check(o: &Outcome) {
        assert!(o.violations.is_empty(), "{}: {:?}", o.backend, o.violations);
        assert_eq!(o.mixed.ops, 400, "{}", o.backend);
        assert_eq!(o.members_checked, 20);
        assert!(o.codes_claimed > 100, "{}: {}", o.backend, o.codes_claimed);
        assert_eq!(o.hot.ops, 200);
        // The hot member's balance covers exactly 100 spends of 10: the rest are refused.
        assert_eq!(o.hot_start, 1_000);
        assert_eq!(o.hot.count("200"), 100, "{:?}", o.hot.outcomes);
        assert_eq!(o.hot.count("409 insufficient_points"), 100);
        assert_eq!(o.hot_end, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_loyalty_bench_checks_balances_over_http() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        check(&run_on(&url, "SQLite", &small()).await.unwrap());
        if let Ok(base) = std::env::var("TOUCHPOINT_TEST_POSTGRES_URL") {
            let db = format!("tp_bench_loyalty_test_{}", std::process::id());
            let (prefix, _) = base.rsplit_once('/').unwrap();
            let admin = Store::connect_without_migrating(&base).await.unwrap();
            let sql = |s: String| {
                let admin = admin.clone();
                async move { admin.acquire().await.unwrap().conn().exec(&s, &[]).await }
            };
            sql(format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
            sql(format!("CREATE DATABASE {db}")).await.unwrap();
            let r = run_on(&format!("{prefix}/{db}"), "PostgreSQL", &small()).await;
            sql(format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
            check(&r.unwrap());
        }
    }
}
