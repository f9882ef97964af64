//! The points ledger on every backend: purchases earn once, refunds reverse,
//! expiry runs once, codes are claimed once and stored as hashes, and the
//! ledger's invariants hold under 64 concurrent clients.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{Customer, InputFormat, OrderLine, OrderRecord};
use touchpoint_core::{ChannelName, Currency, Identifier, IdentifierKind, Money, OrderStatus};
use touchpoint_store::import::Writer;
use touchpoint_store::{Store, StoreError};

use crate::common::{backends, import, write, TestDb};

pub(crate) const PROGRAM: &str = r#"
name = "Test rewards"
starts = "2025-01-01"
pending_days = 0
refund_policy = "within_balance"

[[earn]]
points = 1
"#;

pub(crate) const HEADER: &str =
    "channel,order_id,ordered_at,status,sku,brand,quantity,unit_price,refunded,member_no\n";

async fn available(db: &TestDb, member: i64) -> i64 {
    db.store.points_balance(member, 10).await.unwrap().available
}

pub(crate) async fn member_of(db: &TestDb, member_no: &str) -> i64 {
    db.scalar(&format!(
        "SELECT member_id FROM identifiers WHERE kind = 'member_no' AND value = '{member_no}'"
    ))
    .await
}

/// The ledger's invariants, for every member and lot.
pub(crate) async fn assert_invariants(db: &TestDb, allow_negative: bool) {
    let bad_sum = db
        .rows(
            "SELECT CAST(a.member_id AS TEXT), CAST(a.available + a.pending AS TEXT), \
             CAST((SELECT COALESCE(SUM(e.points), 0) FROM points_entries e WHERE e.member_id = a.member_id) AS TEXT) \
             FROM points_accounts a WHERE a.available + a.pending <> \
             (SELECT COALESCE(SUM(e.points), 0) FROM points_entries e WHERE e.member_id = a.member_id)",
            3,
        )
        .await;
    assert!(
        bad_sum.is_empty(),
        "{}: entries do not add up to balances: {bad_sum:?}",
        db.name
    );
    let bad_lots = db
        .rows(
            "SELECT CAST(l.id AS TEXT), CAST(l.amount AS TEXT), CAST(l.remaining AS TEXT) FROM points_lots l \
             WHERE l.remaining <> l.amount - (SELECT COALESCE(SUM(d.points), 0) FROM points_draws d WHERE d.lot_id = l.id) \
             OR l.remaining < 0",
            3,
        )
        .await;
    assert!(
        bad_lots.is_empty(),
        "{}: lots disagree with draws: {bad_lots:?}",
        db.name
    );
    if !allow_negative {
        let negative = db
            .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_accounts WHERE available < 0 OR pending < 0")
            .await;
        assert_eq!(negative, 0, "{}: a balance below zero", db.name);
    }
    // Entries that draw have draws that add up to them.
    let bad_draws = db
        .rows(
            "SELECT CAST(e.id AS TEXT), e.kind FROM points_entries e WHERE e.points < 0 AND \
             -e.points <> (SELECT COALESCE(SUM(d.points), 0) FROM points_draws d WHERE d.entry_id = e.id) \
             AND NOT (e.kind = 'reverse')",
            2,
        )
        .await;
    assert!(
        bad_draws.is_empty(),
        "{}: debits without their draws: {bad_draws:?}",
        db.name
    );
}

#[tokio::test]
async fn purchases_earn_once_and_refunds_reverse_in_proportion() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        // Before a program, orders earn nothing.
        let early = write(
            dir.path(),
            "early.csv",
            format!("{HEADER}pos,E1,2024-12-01,paid,S1,,1,80.00,0,V1\n"),
        );
        import(&db.store, &early, InputFormat::Canonical, "pos").await;
        db.store.loyalty_set_program(PROGRAM).await.unwrap();
        let v = member_of(&db, "V1").await;
        assert_eq!(available(&db, v).await, 0, "{}", db.name);

        let paid = format!(
            "{HEADER}pos,A1,2025-03-01,paid,S1,,1,100.50,0,V1\npos,A2,2025-03-02,paid,S2,,2,25.00,0,V1\n"
        );
        let f = write(dir.path(), "paid.csv", &paid);
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        assert_eq!(
            available(&db, v).await,
            150,
            "{}: 100.50 -> 100 and 50",
            db.name
        );
        // Re-importing earns nothing.
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        assert_eq!(available(&db, v).await, 150, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE kind = 'earn'")
                .await,
            2
        );

        // Spend 120: A1's lot (100) and 20 of A2's.
        let w = db
            .store
            .points_spend(v, 120, "voucher", Some("R1"), "test", "k1")
            .await
            .unwrap();
        assert_eq!(w.available, 30);
        // The same key again credits and debits nothing.
        let again = db
            .store
            .points_spend(v, 120, "voucher", Some("R1"), "test", "k1")
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.entry.id, w.entry.id);
        assert_eq!(available(&db, v).await, 30);
        match db
            .store
            .points_spend(v, 31, "voucher", None, "test", "k2")
            .await
        {
            Err(StoreError::InsufficientPoints {
                needed: 31,
                available: 30,
            }) => {}
            other => panic!("{}: expected insufficient points, got {other:?}", db.name),
        }

        // A2 refunded by 40%: 20 of its 50 points go back; 30 of A2's lot are left.
        let partial = write(
            dir.path(),
            "partial.csv",
            format!("{HEADER}pos,A2,2025-03-02,partially_refunded,S2,,2,25.00,20.00,V1\n"),
        );
        import(&db.store, &partial, InputFormat::Canonical, "pos").await;
        assert_eq!(available(&db, v).await, 10, "{}", db.name);
        // A2 refunded in full: the other 30 are due but only 10 are left;
        // within_balance stops at zero and records the rest as uncovered.
        let full = write(
            dir.path(),
            "full.csv",
            format!("{HEADER}pos,A2,2025-03-02,refunded,S2,,2,25.00,50.00,V1\n"),
        );
        import(&db.store, &full, InputFormat::Canonical, "pos").await;
        assert_eq!(available(&db, v).await, 0, "{}", db.name);
        let rev = db
            .rows(
                "SELECT CAST(points AS TEXT), CAST(uncovered AS TEXT) FROM points_entries WHERE kind = 'reverse' ORDER BY id",
                2,
            )
            .await;
        assert_eq!(
            rev,
            vec![vec!["-20", "0"], vec!["-10", "20"]],
            "{}",
            db.name
        );
        import(&db.store, &full, InputFormat::Canonical, "pos").await;
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE kind = 'reverse'")
                .await,
            2
        );

        // Backfill earns the early order, once.
        let since = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        db.store.loyalty_backfill(since).await.unwrap();
        db.store.loyalty_backfill(since).await.unwrap();
        assert_eq!(available(&db, v).await, 80, "{}", db.name);
        let events = db
            .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE kind = 'points_reversed'")
            .await;
        assert_eq!(events, 2);
        assert_invariants(&db, false).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn allow_negative_owes_points_that_later_earnings_pay() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store
            .loyalty_set_program(&PROGRAM.replace("within_balance", "allow_negative"))
            .await
            .unwrap();
        let f = write(
            dir.path(),
            "a.csv",
            format!("{HEADER}pos,A1,2025-03-01,paid,S1,,1,100.00,0,V1\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let v = member_of(&db, "V1").await;
        db.store
            .points_spend(v, 100, "gift", None, "t", "s")
            .await
            .unwrap();
        let r = write(
            dir.path(),
            "r.csv",
            format!("{HEADER}pos,A1,2025-03-01,refunded,S1,,1,100.00,100.00,V1\n"),
        );
        import(&db.store, &r, InputFormat::Canonical, "pos").await;
        let b = db.store.points_balance(v, 10).await.unwrap();
        assert_eq!((b.available, b.debt), (-100, 100), "{}", db.name);
        let f2 = write(
            dir.path(),
            "b.csv",
            format!("{HEADER}pos,A2,2025-04-01,paid,S1,,1,130.00,0,V1\n"),
        );
        import(&db.store, &f2, InputFormat::Canonical, "pos").await;
        let b = db.store.points_balance(v, 10).await.unwrap();
        assert_eq!((b.available, b.debt), (30, 0), "{}", db.name);
        assert_invariants(&db, true).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn expiry_run_twice_expires_once() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store
            .loyalty_set_program(&format!(
                "{PROGRAM}\n[expiry]\nrule = \"days\"\ncount = 30\n"
            ))
            .await
            .unwrap();
        let f = write(
            dir.path(),
            "a.csv",
            format!("{HEADER}pos,A1,2025-01-10,paid,S1,,1,100.00,0,V1\npos,A2,2025-02-20,paid,S1,,1,40.00,0,V1\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let v = member_of(&db, "V1").await;
        let as_of = Utc
            .with_ymd_and_hms(2025, 3, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        let r1 = db.store.points_expire(as_of).await.unwrap();
        assert_eq!((r1.lots, r1.points), (1, 100), "{}", db.name);
        assert_eq!(
            r1.reminders, 1,
            "{}: A2's lot expires within 30 days",
            db.name
        );
        let r2 = db.store.points_expire(as_of).await.unwrap();
        assert_eq!((r2.lots, r2.points, r2.reminders), (0, 0, 0), "{}", db.name);
        // Stored as of the run: A2's 40 are left; read as of now (2026),
        // A2's lot is past its expiry too, so nothing is available.
        assert_eq!(
            db.scalar(&format!(
                "SELECT available FROM points_accounts WHERE member_id = {v}"
            ))
            .await,
            40
        );
        assert_eq!(available(&db, v).await, 0, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE kind = 'expire'")
                .await,
            1
        );
        assert_eq!(
            db.scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE kind = 'points_expiring_soon'"
            )
            .await,
            1
        );
        assert_invariants(&db, false).await;
        let report = db
            .store
            .loyalty_report(chrono_tz::Asia::Shanghai)
            .await
            .unwrap();
        assert_eq!(report.outstanding_points, 40, "{}", db.name);
        assert_eq!(report.liability.len(), 1);
        assert_eq!(report.liability[0].expires, "2025-03");
        assert!((report.breakage - 100.0 / 140.0).abs() < 1e-9);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_code_is_claimed_once_also_after_reconnecting_and_never_stored_in_clear() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store.loyalty_set_program(PROGRAM).await.unwrap();
        let f = write(dir.path(), "a.csv", format!("{HEADER}pos,A1,2025-03-01,paid,S1,,1,1.00,0,V1\npos,B1,2025-03-01,paid,S1,,1,1.00,0,V2\n"));
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let (v1, v2) = (member_of(&db, "V1").await, member_of(&db, "V2").await);
        let batch = db
            .store
            .codes_create_batch("box-1", 50, 20, Some("S1"), None)
            .await
            .unwrap();
        assert_eq!(batch.codes.len(), 50);
        let code = batch.codes[0].clone();
        let c = db
            .store
            .code_claim(&code.to_lowercase(), v1, Some("10.0.0.1"))
            .await
            .unwrap();
        assert_eq!((c.points, c.available, c.member_id), (20, 21, v1));
        assert!(matches!(
            db.store.code_claim(&code, v2, None).await,
            Err(StoreError::CodeAlreadyClaimed)
        ));
        // Reconnect: a new pool on the same database.
        let url = db.url.clone();
        db.store.close().await;
        let store = Store::connect(&url).await.unwrap();
        assert!(matches!(
            store.code_claim(&code, v2, None).await,
            Err(StoreError::CodeAlreadyClaimed)
        ));
        assert_eq!(store.points_balance(v2, 10).await.unwrap().available, 1);
        // A typo (wrong last character) is told apart from an unknown code.
        let last = code.chars().last().unwrap();
        let other = if last == '0' { '1' } else { '0' };
        let typo = format!("{}{other}", &code[..code.len() - 1]);
        assert!(matches!(
            store.code_claim(&typo, v2, None).await,
            Err(StoreError::InvalidCode(_))
        ));
        let unknown = touchpoint_core::loyalty::generate_code();
        assert!(matches!(
            store.code_claim(&unknown, v2, None).await,
            Err(StoreError::UnknownCode)
        ));
        // Ten failures an hour, then 429.
        for _ in 0..8 {
            let _ = store.code_claim(&unknown, v2, None).await;
        }
        assert!(matches!(
            store.code_claim(&batch.codes[1], v2, None).await,
            Err(StoreError::TooManyAttempts { .. })
        ));
        // Another person may still claim it.
        store.code_claim(&batch.codes[1], v1, None).await.unwrap();
        let report = store
            .loyalty_report(chrono_tz::Asia::Shanghai)
            .await
            .unwrap();
        assert_eq!(
            report.joined_by_scan,
            Vec::<(String, i64)>::new(),
            "both had points before"
        );
        // The store holds hashes only.
        let mut h = store.acquire().await.unwrap();
        let hashes: HashSet<Vec<u8>> = h
            .conn()
            .fetch("SELECT hash FROM loyalty_codes", &[], |r| r.bytes(0))
            .await
            .unwrap()
            .into_iter()
            .collect();
        drop(h);
        let expected: HashSet<Vec<u8>> = batch
            .codes
            .iter()
            .map(|c| touchpoint_core::loyalty::code_hash(c))
            .collect();
        assert_eq!(hashes, expected);
        if let Some(path) = url.strip_prefix("sqlite://") {
            store.close().await;
            let dir = std::path::Path::new(path).parent().unwrap();
            for entry in std::fs::read_dir(dir).unwrap() {
                // The -wal and -shm files may go away as the pool closes
                // (checkpointed into the main file, which is read).
                let Ok(bytes) = std::fs::read(entry.unwrap().path()) else {
                    continue;
                };
                for c in &batch.codes {
                    assert!(
                        !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                        "a code in clear in the database files"
                    );
                }
            }
        } else {
            assert_eq!(store.backend(), touchpoint_store::Backend::Postgres);
            // No text column anywhere holds a code.
            let mut h = store.acquire().await.unwrap();
            let n = h
                .conn()
                .fetch_opt(
                    &format!(
                        "SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE idempotency_key LIKE '%{}%' OR source LIKE '%{}%'",
                        batch.codes[0], batch.codes[0]
                    ),
                    &[],
                    |r| r.i64(0),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 0);
            drop(h);
            store.close().await;
        }
        db.cleanup().await;
    }
}

fn order(member_no: &str, id: &str, gross_minor: i64, refunded: i64) -> OrderRecord {
    let status = if refunded >= gross_minor {
        OrderStatus::Refunded
    } else if refunded > 0 {
        OrderStatus::PartiallyRefunded
    } else {
        OrderStatus::Paid
    };
    OrderRecord {
        channel: ChannelName::parse("pos").unwrap(),
        order_id: id.to_string(),
        ordered_at: Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap(),
        paid_at: None,
        status,
        currency: Currency::parse("CNY").unwrap(),
        order_discount: Money::from_minor(0),
        refunded: Money::from_minor(refunded),
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
            sku: "S1".into(),
            product_name: None,
            brand: None,
            category: None,
            quantity: 1,
            unit_price: Money::from_minor(gross_minor),
            unit_cost: None,
            discount: Money::from_minor(0),
        }],
        campaign: None,
        source_line: 1,
        coupon_codes: Vec::new(),
        referral_code: None,
    }
}

/// 64 clients, mixed operations; `TOUCHPOINT_LOYALTY_OPS` operations each
/// (default 50; the issue's full run is 1000).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_keep_the_ledger_consistent() {
    use rand::{Rng, SeedableRng};
    let ops: usize = std::env::var("TOUCHPOINT_LOYALTY_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    const CLIENTS: usize = 64;
    const MEMBERS: usize = 16;
    for db in backends().await {
        db.store
            .loyalty_set_program(&format!(
                "{PROGRAM}\n[expiry]\nrule = \"days\"\ncount = 400\n"
            ))
            .await
            .unwrap();
        let writer = Arc::new(tokio::sync::Mutex::new(Writer::new(
            IdentityConfig::default(),
        )));
        // Each member: 3 orders of 100..400 CNY.
        let mut orders = Vec::new();
        for m in 0..MEMBERS {
            for k in 0..3 {
                orders.push(order(
                    &format!("V{m}"),
                    &format!("O{m}-{k}"),
                    10_000 * (k as i64 + 1) + 1_234,
                    0,
                ));
            }
        }
        writer
            .lock()
            .await
            .write_orders(&db.store, &orders)
            .await
            .unwrap();
        let mut members = Vec::new();
        for m in 0..MEMBERS {
            members.push(member_of(&db, &format!("V{m}")).await);
        }
        let batch = db
            .store
            .codes_create_batch("load", 400, 15, None, None)
            .await
            .unwrap();
        let codes = Arc::new(batch.codes);
        let orders = Arc::new(orders);
        let members = Arc::new(members);
        let refunded: Arc<tokio::sync::Mutex<HashMap<String, i64>>> = Default::default();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let store = db.store.clone();
            let (codes, orders, members, writer, refunded) = (
                codes.clone(),
                orders.clone(),
                members.clone(),
                writer.clone(),
                refunded.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
                let mut claimed: Vec<String> = Vec::new();
                let mut spends: Vec<(String, i64)> = Vec::new();
                let mut keys: Vec<(i64, String, i64)> = Vec::new();
                for i in 0..ops {
                    let m = members[rng.gen_range(0..members.len())];
                    match rng.gen_range(0..100) {
                        0..=34 => {
                            let code = &codes[rng.gen_range(0..codes.len())];
                            match store.code_claim(code, m, None).await {
                                Ok(_) => claimed.push(code.clone()),
                                Err(StoreError::CodeAlreadyClaimed) => {}
                                Err(e) => panic!("claim: {e}"),
                            }
                        }
                        35..=69 => {
                            // A retry: the same key and request again.
                            let (member, key, points) = if !keys.is_empty() && rng.gen_bool(0.3) {
                                keys[rng.gen_range(0..keys.len())].clone()
                            } else {
                                (m, format!("c{client}-{i}"), rng.gen_range(1..60))
                            };
                            match store
                                .points_spend(member, points, "test", None, "load", &key)
                                .await
                            {
                                Ok(w) => {
                                    if w.created {
                                        spends.push((key.clone(), points));
                                    }
                                    keys.push((member, key, points));
                                }
                                Err(StoreError::InsufficientPoints { .. }) => {}
                                Err(e) => panic!("spend: {e}"),
                            }
                        }
                        70..=89 => {
                            let o = &orders[rng.gen_range(0..orders.len())];
                            let gross = o.gross_amount().minor();
                            let mut r = refunded.lock().await;
                            let now = r.get(&o.order_id).copied().unwrap_or(0);
                            let next = (now + rng.gen_range(1_000..gross / 2)).min(gross);
                            let mut changed = order(
                                &format!("V{}", o.order_id[1..].split('-').next().unwrap()),
                                &o.order_id,
                                gross,
                                next,
                            );
                            changed.ordered_at = o.ordered_at;
                            writer
                                .lock()
                                .await
                                .write_orders(&store, &[changed])
                                .await
                                .unwrap();
                            r.insert(o.order_id.clone(), next);
                        }
                        _ => {
                            // Past the purchase lots' expiry (2025-06-01 + 400 days).
                            let as_of = Utc
                                .with_ymd_and_hms(2026, 7, 10, 0, 0, 0)
                                .unwrap()
                                .timestamp_millis();
                            store.points_expire(as_of).await.unwrap();
                        }
                    }
                }
                (claimed, spends)
            }));
        }
        let mut claimed = Vec::new();
        let mut spends = Vec::new();
        for t in tasks {
            let (c, s) = t.await.unwrap();
            claimed.extend(c);
            spends.extend(s);
        }
        let elapsed = started.elapsed();
        eprintln!(
            "{}: {} clients x {ops} operations in {elapsed:?}",
            db.name, CLIENTS
        );
        // Every code claimed at most once, and each success credited once.
        let unique: HashSet<&String> = claimed.iter().collect();
        assert_eq!(
            unique.len(),
            claimed.len(),
            "{}: a code was claimed twice",
            db.name
        );
        let stored = db
            .scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM loyalty_codes WHERE claimed_by IS NOT NULL",
            )
            .await;
        assert_eq!(stored as usize, claimed.len(), "{}", db.name);
        let code_entries = db
            .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE reason = 'code'")
            .await;
        assert_eq!(code_entries as usize, claimed.len(), "{}", db.name);
        // A retried spend debits once: one entry per key, as many as succeeded.
        let spend_entries = db
            .scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM points_entries WHERE kind = 'spend'")
            .await;
        assert_eq!(spend_entries as usize, spends.len(), "{}", db.name);
        let spent = db
            .scalar("SELECT CAST(COALESCE(SUM(-points), 0) AS BIGINT) FROM points_entries WHERE kind = 'spend'")
            .await;
        assert_eq!(
            spent,
            spends.iter().map(|s| s.1).sum::<i64>(),
            "{}",
            db.name
        );
        assert!(
            spend_entries > 0 && !claimed.is_empty(),
            "{}: the mix did nothing",
            db.name
        );
        assert_invariants(&db, false).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn points_follow_a_merge_into_the_kept_member() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store.loyalty_set_program(PROGRAM).await.unwrap();
        let h = "channel,order_id,ordered_at,status,sku,quantity,unit_price,member_no,phone\n";
        let f = write(
            dir.path(),
            "a.csv",
            format!("{h}pos,A1,2025-03-01,paid,S1,1,100.00,V1,\nweb,B1,2025-03-02,paid,S1,1,30.00,,13800000001\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let v1 = member_of(&db, "V1").await;
        let v2 = db
            .scalar("SELECT member_id FROM identifiers WHERE kind = 'phone'")
            .await;
        assert_ne!(v1, v2);
        db.store
            .points_spend(v2, 10, "x", None, "t", "s1")
            .await
            .unwrap();
        assert_eq!(available(&db, v2).await, 20);
        // One order naming both joins them; the older id is kept.
        let g = write(
            dir.path(),
            "b.csv",
            format!("{h}pos,C1,2025-03-03,paid,S1,1,5.00,V1,13800000001\n"),
        );
        import(&db.store, &g, InputFormat::Canonical, "pos").await;
        let kept = v1.min(v2);
        let absorbed = v1.max(v2);
        assert_eq!(available(&db, kept).await, 100 + 20 + 5, "{}", db.name);
        assert_eq!(
            db.scalar(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM points_accounts WHERE member_id = {absorbed}"
            ))
            .await,
            0
        );
        assert!(matches!(
            db.store.points_balance(absorbed, 5).await,
            Err(StoreError::NotFound(_))
        ));
        assert_invariants(&db, false).await;
        db.cleanup().await;
    }
}
