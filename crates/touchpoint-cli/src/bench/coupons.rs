//! `touchpoint bench coupons`: coupon validation and redemption over HTTP,
//! against the real server (the router `touchpoint serve` runs) in this
//! process on port 0, over a fresh SQLite store and, with `--postgres`, a
//! scratch PostgreSQL database. The pattern of `bench loyalty` (whose
//! keep-alive client and figures it shares).
//!
//! Seeding goes through the store: members by the order write path, one
//! coupon definition (10.00 off from 50.00), single-use member coupons
//! issued in bulk. Then three phases on N keep-alive HTTP/1.1 connections:
//!
//! - **validate**: `POST /api/coupons/validate` of random coupons for their
//!   member and a 80.00 basket; each must answer 200 with 1000 off.
//! - **redeem**: `POST /api/coupons/redeem` of fresh coupons, each for its own
//!   order, each with its own `Idempotency-Key`; one request in 20 is a
//!   replay of an earlier redeem (same key and body: it must answer the same
//!   bytes), one in 20 a second redeem of an already redeemed coupon for
//!   another order (it must be 409 `coupon_already_redeemed`).
//! - **contended**: for each of K coupons, every connection redeems it at
//!   once (a barrier per coupon), each for its own order: exactly one 200.
//!
//! Then the correctness report from the store: one redemption row per
//! coupon at most, every coupon's uses equal to its redemptions, and the
//! redemptions the store holds equal to the 200s the clients were given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use rand::{Rng, SeedableRng};
use serde_json::json;
use touchpoint_core::coupons::{CouponKind, CouponRules};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_store::import::Writer;
use touchpoint_store::keys::Role;
use touchpoint_store::Store;

use super::loyalty::{outcome, seed_order, Client, Phase};

/// `bench coupons` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCouponsArgs {
    /// PostgreSQL server to run on too, after SQLite (postgres://USER@HOST:PORT/DB: a
    /// scratch database is created on it and dropped after).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Keep-alive HTTP connections, one client task each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Validations.
    #[arg(long, default_value_t = 20_000)]
    pub validates: usize,
    /// Redeem requests (fresh redeems, replays and second redeems).
    #[arg(long, default_value_t = 10_000)]
    pub redeems: usize,
    /// Coupons that every connection redeems at once.
    #[arg(long, default_value_t = 50)]
    pub contended: usize,
    /// Members holding the coupons.
    #[arg(long, default_value_t = 1_000)]
    pub members: usize,
    /// Stop a phase after this many seconds if its requests are not all sent.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
}

/// The goal of issue 11, and the anchor it names.
const GOAL_P99_MS: f64 = 50.0;
const VOUCHERIFY_MEDIAN_MS: f64 = 100.0;
/// The definition's discount and the basket (minor units).
const OFF: i64 = 1_000;

fn basket_lines() -> serde_json::Value {
    json!([{"sku": "BENCH", "brand": "Bench", "quantity": 2, "unit_price": 4_000}])
}

/// A run on one backend.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// `SQLite` or `PostgreSQL`.
    pub backend: String,
    /// Validations.
    pub validate: Phase,
    /// Redeems, replays and second redeems.
    pub redeem: Phase,
    /// Every connection on one coupon at a time.
    pub contended: Phase,
    /// Redeems answered 200 with a new redemption.
    pub redeemed: usize,
    /// Replays answered (each identical to the first answer).
    pub replays: usize,
    /// Second redeems answered 409 `coupon_already_redeemed`.
    pub second_redeems: usize,
    /// Contended coupons with exactly one winner.
    pub contended_won: usize,
    /// Everything found wrong (empty: correct).
    pub violations: Vec<String>,
}

#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    outcomes: std::collections::BTreeMap<String, u64>,
    redeemed: usize,
    replays: usize,
    second: usize,
    violations: Vec<String>,
}

impl Seen {
    fn note(&mut self, t: Instant, o: &str) {
        self.latencies_us.push(t.elapsed().as_micros() as u64);
        *self.outcomes.entry(o.to_string()).or_default() += 1;
    }
}

fn merge(phase: &mut Phase, seen: &mut Seen) {
    phase.latencies_us.append(&mut seen.latencies_us);
    for (k, v) in std::mem::take(&mut seen.outcomes) {
        *phase.outcomes.entry(k).or_default() += v;
    }
}

fn field(body: &[u8], name: &str) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v[name].clone())
        .unwrap_or_default()
}

async fn validate_client(
    task: usize,
    addr: std::net::SocketAddr,
    key: String,
    coupons: Arc<Vec<(String, i64)>>,
    next: Arc<AtomicUsize>,
    total: usize,
    deadline: Instant,
) -> Result<Seen> {
    let mut c = Client::connect(addr, &key).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(task as u64);
    let mut seen = Seen::default();
    while next.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
        let (code, member) = &coupons[rng.gen_range(0..coupons.len())];
        let body = json!({"code": code, "member_id": format!("M-{member}"), "channel": "pos", "lines": basket_lines()})
            .to_string();
        let t = Instant::now();
        let (status, resp) = c.post("/api/coupons/validate", "", &body).await?;
        let o = outcome(status, &resp);
        seen.note(t, &o);
        if status != 200 || field(&resp, "discount") != OFF {
            seen.violations.push(format!(
                "validating {code} for M-{member} was answered {o}, discount {}",
                field(&resp, "discount")
            ));
        }
    }
    Ok(seen)
}

fn redeem_body(code: &str, member: i64, order: &str) -> String {
    json!({"code": code, "member_id": format!("M-{member}"), "order_reference": order,
        "channel": "pos", "lines": basket_lines()})
    .to_string()
}

#[allow(clippy::too_many_arguments)]
async fn redeem_client(
    task: usize,
    addr: std::net::SocketAddr,
    key: String,
    coupons: Arc<Vec<(String, i64)>>,
    next_coupon: Arc<AtomicUsize>,
    next_op: Arc<AtomicUsize>,
    total: usize,
    deadline: Instant,
) -> Result<Seen> {
    let mut c = Client::connect(addr, &key).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1_000 + task as u64);
    let mut seen = Seen::default();
    // Redeems answered 200: (key, body, answer, code, member).
    let mut done: Vec<(String, String, bytes::Bytes, String, i64)> = Vec::new();
    let mut seq = 0;
    while next_op.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
        seq += 1;
        let t = Instant::now();
        if !done.is_empty() && rng.gen_ratio(1, 20) {
            let (k, body, first, code, _) = &done[rng.gen_range(0..done.len())];
            let (status, resp) = c.post("/api/coupons/redeem", k, body).await?;
            let o = outcome(status, &resp);
            seen.note(t, &o);
            if resp != *first {
                seen.violations.push(format!(
                    "a replay of the redeem of {code} (key {k}) was answered {o} with other bytes"
                ));
            }
            seen.replays += 1;
            continue;
        }
        if !done.is_empty() && rng.gen_ratio(1, 19) {
            let (_, _, _, code, member) = done[rng.gen_range(0..done.len())].clone();
            let body = redeem_body(&code, member, &format!("again-{task}-{seq}"));
            let (status, resp) = c
                .post("/api/coupons/redeem", &format!("a{task}-{seq}"), &body)
                .await?;
            let o = outcome(status, &resp);
            seen.note(t, &o);
            if o != "409 coupon_already_redeemed" {
                seen.violations.push(format!(
                    "a second redeem of {code} for another order was answered {o}"
                ));
            }
            seen.second += 1;
            continue;
        }
        let i = next_coupon.fetch_add(1, Ordering::Relaxed);
        let Some((code, member)) = coupons.get(i).cloned() else {
            bail!("the bench ran out of coupons (issue more)");
        };
        let k = format!("r{task}-{seq}");
        let body = redeem_body(&code, member, &format!("order-{i}"));
        let (status, resp) = c.post("/api/coupons/redeem", &k, &body).await?;
        let o = outcome(status, &resp);
        seen.note(t, &o);
        if status == 200 && field(&resp, "created") == true && field(&resp, "discount") == OFF {
            seen.redeemed += 1;
            done.push((k, body, resp, code, member));
        } else {
            seen.violations
                .push(format!("the first redeem of {code} was answered {o}"));
        }
    }
    Ok(seen)
}

async fn contended_client(
    task: usize,
    addr: std::net::SocketAddr,
    key: String,
    coupons: Arc<Vec<(String, i64)>>,
    barrier: Arc<tokio::sync::Barrier>,
) -> Result<(Seen, Vec<bool>)> {
    let mut c = Client::connect(addr, &key).await?;
    let mut seen = Seen::default();
    let mut won = Vec::with_capacity(coupons.len());
    for (k, (code, member)) in coupons.iter().enumerate() {
        barrier.wait().await;
        let body = redeem_body(code, *member, &format!("hot-{k}-{task}"));
        let t = Instant::now();
        let (status, resp) = c
            .post("/api/coupons/redeem", &format!("h{k}-{task}"), &body)
            .await?;
        let o = outcome(status, &resp);
        seen.note(t, &o);
        if status != 200 && o != "409 coupon_already_redeemed" {
            seen.violations
                .push(format!("a contended redeem of {code} was answered {o}"));
        }
        won.push(status == 200);
    }
    Ok((seen, won))
}

async fn count(store: &Store, sql: &str) -> Result<i64> {
    let mut h = store.acquire().await?;
    Ok(h.conn()
        .fetch_opt(sql, &[], |r| r.i64(0))
        .await?
        .unwrap_or(0))
}

/// Seed, serve, drive the three phases and check. `url` is a fresh database.
pub(crate) async fn run_on(url: &str, backend: &str, args: &BenchCouponsArgs) -> Result<Outcome> {
    if args.connections == 0 || args.members == 0 {
        bail!("--connections and --members must be at least 1");
    }
    let store = crate::connect(url).await?;
    let at = Utc::now() - chrono::Duration::hours(1);
    let orders = (0..args.members)
        .map(|m| seed_order(&format!("C{m}"), 100, at))
        .collect::<Result<Vec<_>>>()?;
    let mut writer = Writer::new(IdentityConfig::default());
    let mut members = Vec::with_capacity(orders.len());
    for chunk in orders.chunks(5_000) {
        let r = writer.write_orders(&store, chunk).await?;
        for m in r.members {
            members.push(m.context("a seed order has no member")?.get());
        }
    }
    let def = store
        .coupon_define(
            "Bench: 10.00 off 50.00",
            &CouponRules {
                kind: CouponKind::Fixed,
                amount: OFF,
                percent: 0,
                cap: None,
                free_sku: None,
                min_spend: 5_000,
                channels: vec![],
                brands: vec![],
                categories: vec![],
                skus: vec![],
                valid_from: None,
                valid_until: None,
                valid_days: Some(30),
                stackable: false,
                priority: 0,
                return_on_refund: false,
            },
        )
        .await?;
    // One coupon per member per round (the bulk issue is keyed by member).
    let need = args.redeems + args.contended;
    let mut pool: Vec<(String, i64)> = Vec::with_capacity(need + members.len());
    let mut round = 0;
    while pool.len() < need {
        let issued = store
            .coupon_issue_bulk(def.id, &members, "bench", &format!("bench-{round}"))
            .await?;
        pool.extend(
            issued
                .into_iter()
                .map(|c| (c.code, c.member_id.unwrap_or_default())),
        );
        round += 1;
    }
    let contended: Arc<Vec<(String, i64)>> = Arc::new(pool.split_off(pool.len() - args.contended));
    let pool = Arc::new(pool);
    let key = store
        .create_key(Role::Ingest, Some("bench coupons"), Some("bench"))
        .await?
        .key;

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

    // Validate.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|t| {
            tokio::spawn(validate_client(
                t,
                addr,
                key.clone(),
                pool.clone(),
                next.clone(),
                args.validates,
                deadline,
            ))
        })
        .collect();
    for t in tasks {
        let mut s = t.await??;
        merge(&mut o.validate, &mut s);
        o.violations.extend(s.violations);
    }
    o.validate.seconds = started.elapsed().as_secs_f64();

    // Redeem.
    let next_coupon = Arc::new(AtomicUsize::new(0));
    let next_op = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|t| {
            tokio::spawn(redeem_client(
                t,
                addr,
                key.clone(),
                pool.clone(),
                next_coupon.clone(),
                next_op.clone(),
                args.redeems,
                deadline,
            ))
        })
        .collect();
    for t in tasks {
        let mut s = t.await??;
        merge(&mut o.redeem, &mut s);
        o.redeemed += s.redeemed;
        o.replays += s.replays;
        o.second_redeems += s.second;
        o.violations.extend(s.violations);
    }
    o.redeem.seconds = started.elapsed().as_secs_f64();

    // Contended.
    let barrier = Arc::new(tokio::sync::Barrier::new(args.connections));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|t| {
            tokio::spawn(contended_client(
                t,
                addr,
                key.clone(),
                contended.clone(),
                barrier.clone(),
            ))
        })
        .collect();
    let mut wins = vec![0usize; contended.len()];
    for t in tasks {
        let (mut s, won) = t.await??;
        merge(&mut o.contended, &mut s);
        o.violations.extend(s.violations);
        for (k, w) in won.into_iter().enumerate() {
            wins[k] += usize::from(w);
        }
    }
    o.contended.seconds = started.elapsed().as_secs_f64();
    for (k, w) in wins.iter().enumerate() {
        if *w == 1 {
            o.contended_won += 1;
        } else {
            o.violations.push(format!(
                "contended coupon {} was redeemed by {w} of {} connections",
                contended[k].0, args.connections
            ));
        }
    }
    for p in [&mut o.validate, &mut o.redeem, &mut o.contended] {
        p.ops = p.latencies_us.len();
        p.latencies_us.sort_unstable();
    }

    let _ = stop_tx.send(());
    handle.await??;

    // Correctness, from the store.
    let twice = count(
        &store,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT coupon_id FROM coupon_redemptions GROUP BY coupon_id HAVING COUNT(*) > 1) t",
    )
    .await?;
    if twice != 0 {
        o.violations
            .push(format!("{twice} coupons have more than one redemption"));
    }
    let off = count(
        &store,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM coupons c WHERE c.uses > c.max_uses OR c.uses <> \
         (SELECT COUNT(*) FROM coupon_redemptions r WHERE r.coupon_id = c.id AND r.returned_at IS NULL)",
    )
    .await?;
    if off != 0 {
        o.violations.push(format!(
            "{off} coupons whose uses differ from their redemptions or exceed their limit"
        ));
    }
    let stored = count(
        &store,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM coupon_redemptions",
    )
    .await?;
    let answered = (o.redeemed + o.contended_won) as i64;
    if stored != answered {
        o.violations.push(format!(
            "the store holds {stored} redemptions; the clients were given {answered} new ones"
        ));
    }
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

fn line(name: &str, p: &Phase, connections: usize) {
    println!(
        "  {name}: {} requests in {:.2} s on {connections} connections, {:.0} ops/s; p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (goal p99 < {GOAL_P99_MS:.0} ms: {}; anchor: Voucherify's published validation median {VOUCHERIFY_MEDIAN_MS:.0} ms)",
        p.ops,
        p.seconds,
        p.rate(),
        p.pct_ms(0.50),
        p.pct_ms(0.95),
        p.pct_ms(0.99),
        met(p.pct_ms(0.99) < GOAL_P99_MS)
    );
    println!("    answers: {}", p.outcomes_text());
}

fn print(o: &Outcome, connections: usize) {
    println!("\n{}:", o.backend);
    line("validate", &o.validate, connections);
    line("redeem", &o.redeem, connections);
    line("contended redeem", &o.contended, connections);
    super::print_correctness(
        &format!(
            "{} coupons redeemed once each; {} replays answered the same bytes; {} second redeems refused with 409 coupon_already_redeemed; {} contended coupons each won by exactly one of {connections} connections; the store's uses equal its redemptions",
            o.redeemed, o.replays, o.second_redeems, o.contended_won
        ),
        &o.violations,
    );
}

/// Run the benchmark on SQLite, then on PostgreSQL with `--postgres`.
pub async fn run(args: BenchCouponsArgs) -> Result<()> {
    println!(
        "bench coupons: {} members, {} validations, {} redeem requests, {} contended coupons, {} connections",
        args.members, args.validates, args.redeems, args.contended, args.connections
    );
    let mut outcomes = Vec::new();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let o = run_on(&url, "SQLite", &args).await?;
    print(&o, args.connections);
    outcomes.push(o);
    if let Some(base) = &args.postgres {
        let db = super::ScratchDb::create(base, "coupons").await?;
        let r = run_on(&db.url, "PostgreSQL", &args).await;
        db.drop().await?;
        let o = r?;
        print(&o, args.connections);
        outcomes.push(o);
    }
    if outcomes.iter().any(|o| !o.violations.is_empty()) {
        bail!("coupons were not correct under load (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_coupons_bench_checks_each_coupon_is_redeemed_once() {
        let args = BenchCouponsArgs {
            postgres: None,
            connections: 16,
            validates: 300,
            redeems: 300,
            contended: 5,
            members: 20,
            max_seconds: 600,
        };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let o = run_on(&url, "SQLite", &args).await.unwrap();
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        assert_eq!(o.validate.ops, 300);
        assert_eq!(o.redeem.ops, 300);
        assert_eq!(o.redeemed + o.replays + o.second_redeems, 300);
        assert!(o.replays > 0 && o.second_redeems > 0);
        assert_eq!(o.contended_won, 5);
        assert_eq!(o.contended.ops, 5 * 16);
    }
}
