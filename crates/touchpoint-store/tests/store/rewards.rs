//! The points mall and coupons on every backend: holds, captures and
//! releases of small stock under 64 concurrent clients; one single-use
//! coupon under 64 concurrent redeems; each validation refusal; coupons
//! carried by imported orders and given back by refunds.

use std::sync::Arc;

use touchpoint_core::coupons::{Basket, BasketLine, CouponKind, CouponRules, Refusal, RewardKind};
use touchpoint_core::ingest::InputFormat;
use touchpoint_store::rewards::NewReward;
use touchpoint_store::StoreError;

use crate::common::{backends, import, write, TestDb};
use crate::loyalty::{assert_invariants, member_of, PROGRAM};

fn fixed(amount: i64) -> CouponRules {
    CouponRules {
        kind: CouponKind::Fixed,
        amount,
        percent: 0,
        cap: None,
        free_sku: None,
        min_spend: 0,
        channels: vec![],
        brands: vec![],
        categories: vec![],
        skus: vec![],
        valid_from: None,
        valid_until: None,
        valid_days: None,
        stackable: false,
        priority: 0,
        return_on_refund: true,
    }
}

fn basket(amount: i64) -> Basket {
    Basket {
        channel: Some("pos".into()),
        amount,
        lines: vec![],
    }
}

/// Members V0..V{n}, known through an order each.
async fn members(db: &TestDb, n: usize) -> Vec<i64> {
    let dir = tempfile::tempdir().unwrap();
    let mut csv =
        String::from("channel,order_id,ordered_at,status,sku,quantity,unit_price,member_no\n");
    for m in 0..n {
        csv.push_str(&format!("pos,first-{m},2024-06-01,paid,S1,1,1.00,V{m}\n"));
    }
    let f = write(dir.path(), "members.csv", csv);
    import(&db.store, &f, InputFormat::Canonical, "pos").await;
    let mut out = Vec::new();
    for m in 0..n {
        out.push(member_of(db, &format!("V{m}")).await);
    }
    out
}

fn reward(name: &str, cost: i64, stock: i64) -> NewReward {
    NewReward {
        name: name.into(),
        kind: RewardKind::Gift,
        points_cost: cost,
        cash_part: 0,
        stock,
        per_member_limit: None,
        valid_from: None,
        valid_until: None,
        channels: vec![],
        coupon_definition_id: None,
        partner: None,
    }
}

/// Stock never below zero, sold = captured + active holds, and each
/// member's available = what was credited less what its live redemptions
/// cost.
async fn assert_mall(db: &TestDb, credited: i64) {
    let bad = db
        .rows(
            "SELECT CAST(r.id AS TEXT), CAST(r.stock_left AS TEXT) FROM rewards r WHERE r.stock_left < 0 OR \
             r.stock - r.stock_left <> (SELECT COUNT(*) FROM reward_redemptions x WHERE x.reward_id = r.id AND x.state IN ('held', 'captured'))",
            2,
        )
        .await;
    assert!(
        bad.is_empty(),
        "{}: stock disagrees with redemptions: {bad:?}",
        db.name
    );
    let off = db
        .rows(
            &format!(
                "SELECT CAST(a.member_id AS TEXT), CAST(a.available AS TEXT) FROM points_accounts a WHERE a.available <> {credited} - \
                 (SELECT COALESCE(SUM(x.points), 0) FROM reward_redemptions x WHERE x.member_id = a.member_id AND x.state IN ('held', 'captured'))"
            ),
            2,
        )
        .await;
    assert!(
        off.is_empty(),
        "{}: balances disagree with redemptions: {off:?}",
        db.name
    );
    assert_invariants(db, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_captures_and_releases_of_small_stock_under_64_clients() {
    use rand::{Rng, SeedableRng};
    const CLIENTS: usize = 64;
    const OPS: usize = 12;
    const CREDIT: i64 = 200;
    for db in backends().await {
        db.store.loyalty_set_program(PROGRAM).await.unwrap();
        let ms = members(&db, 16).await;
        for m in &ms {
            db.store
                .points_adjust(*m, CREDIT, "welcome", "test", &format!("welcome-{m}"))
                .await
                .unwrap();
        }
        let def = db
            .store
            .coupon_define("mall 5 off", &fixed(500))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (i, (cost, stock)) in [(30, 3), (50, 5), (20, 2)].into_iter().enumerate() {
            let mut r = reward(&format!("R{i}"), cost, stock);
            if i == 1 {
                r.kind = RewardKind::Coupon;
                r.coupon_definition_id = Some(def.id);
                r.per_member_limit = Some(2);
            }
            ids.push(db.store.reward_create(&r).await.unwrap().id);
        }
        let (ms, ids) = (Arc::new(ms), Arc::new(ids));
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let (store, ms, ids) = (db.store.clone(), ms.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
                let mut held: Vec<i64> = Vec::new();
                let mut captured = 0u32;
                for i in 0..OPS {
                    let m = ms[rng.gen_range(0..ms.len())];
                    let r = ids[rng.gen_range(0..ids.len())];
                    let key = format!("c{client}-{i}");
                    let res = match rng.gen_range(0..100) {
                        0..=44 => {
                            // Some holds lapse at once (released lazily or by the sweep).
                            let ms = if rng.gen_bool(0.2) { 1 } else { 60_000 };
                            store
                                .reward_hold(r, m, Some("pos"), Some(ms), &key)
                                .await
                                .map(|x| {
                                    held.push(x.id);
                                })
                        }
                        45..=59 => store
                            .reward_redeem(r, m, Some("pos"), &key)
                            .await
                            .map(|_| ()),
                        60..=79 if !held.is_empty() => {
                            let h = held.swap_remove(rng.gen_range(0..held.len()));
                            store.reward_capture(h).await.map(|_| captured += 1)
                        }
                        _ if !held.is_empty() => {
                            let h = held.swap_remove(rng.gen_range(0..held.len()));
                            store.reward_release(h).await.map(|x| {
                                assert_ne!(x.state, "captured");
                            })
                        }
                        _ => store.rewards_sweep().await.map(|_| ()),
                    };
                    match res {
                        Ok(())
                        | Err(StoreError::OutOfStock)
                        | Err(StoreError::InsufficientPoints { .. })
                        | Err(StoreError::RewardLimitReached { .. })
                        | Err(StoreError::HoldNotActive(_)) => {}
                        Err(e) => panic!("client {client}: {e}"),
                    }
                    // A retry of the same hold or redemption key takes nothing twice.
                    if i % 5 == 0 {
                        let _ = store.reward_redeem(r, m, Some("pos"), &key).await;
                    }
                }
                captured
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_mall(&db, CREDIT).await;
        // A coupon reward issued one coupon per captured redemption, and
        // nobody holds or owns it more than twice.
        let (captured_coupons, issued) = (
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM reward_redemptions WHERE state = 'captured' AND reward_id = (SELECT id FROM rewards WHERE name = 'R1')").await,
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM coupons").await,
        );
        assert_eq!(captured_coupons, issued, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT member_id FROM reward_redemptions WHERE state IN ('held', 'captured') \
                       AND reward_id = (SELECT id FROM rewards WHERE name = 'R1') GROUP BY member_id HAVING COUNT(*) > 2) s").await,
            0,
            "{}",
            db.name
        );
        // Once every hold has lapsed and been swept, only captures remain.
        db.store.rewards_sweep().await.unwrap();
        let sold = db
            .scalar("SELECT CAST(SUM(stock - stock_left) AS BIGINT) FROM rewards")
            .await;
        assert!(sold > 0, "{}: nothing was sold", db.name);
        assert_mall(&db, CREDIT).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_hold_is_captured_or_released_once_and_a_lapsed_hold_releases_itself() {
    for db in backends().await {
        db.store.loyalty_set_program(PROGRAM).await.unwrap();
        let ms = members(&db, 2).await;
        let (a, b) = (ms[0], ms[1]);
        db.store
            .points_adjust(a, 100, "gift", "test", "a")
            .await
            .unwrap();
        db.store
            .points_adjust(b, 100, "gift", "test", "b")
            .await
            .unwrap();
        let mut r = reward("Mug", 60, 1);
        r.channels = vec!["pos".into()];
        let mug = db.store.reward_create(&r).await.unwrap();
        // Wrong channel.
        assert!(matches!(
            db.store
                .reward_hold(mug.id, a, Some("web"), None, "h0")
                .await,
            Err(StoreError::RewardUnavailable(_))
        ));
        let h = db
            .store
            .reward_hold(mug.id, a, Some("pos"), None, "h1")
            .await
            .unwrap();
        assert_eq!(h.state, "held");
        assert_eq!(db.store.points_balance(a, 5).await.unwrap().available, 40);
        // The one unit is held: b cannot have it.
        assert!(matches!(
            db.store
                .reward_hold(mug.id, b, Some("pos"), None, "h2")
                .await,
            Err(StoreError::OutOfStock)
        ));
        // The same key again is the same hold.
        let again = db
            .store
            .reward_hold(mug.id, a, Some("pos"), None, "h1")
            .await
            .unwrap();
        assert_eq!((again.id, again.created), (h.id, false));
        let released = db.store.reward_release(h.id).await.unwrap();
        assert_eq!(released.state, "released");
        assert_eq!(db.store.points_balance(a, 5).await.unwrap().available, 100);
        assert!(matches!(
            db.store.reward_capture(h.id).await,
            Err(StoreError::HoldNotActive(_))
        ));
        // A hold of 1 ms lapses; the next access releases it.
        let short = db
            .store
            .reward_hold(mug.id, b, Some("pos"), Some(1), "h3")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(db.store.reward(mug.id).await.unwrap().stock_left, 1);
        assert_eq!(
            db.store.reward_redemption(short.id).await.unwrap().state,
            "lapsed"
        );
        assert_eq!(db.store.points_balance(b, 5).await.unwrap().available, 100);
        // Captured: the unit is gone, the points stay spent.
        let h = db
            .store
            .reward_hold(mug.id, b, Some("pos"), None, "h4")
            .await
            .unwrap();
        let c = db.store.reward_capture(h.id).await.unwrap();
        assert_eq!(c.state, "captured");
        assert!(matches!(
            db.store.reward_release(h.id).await,
            Err(StoreError::HoldNotActive(_))
        ));
        assert_eq!(db.store.points_balance(b, 5).await.unwrap().available, 40);
        assert_eq!(db.store.reward(mug.id).await.unwrap().stock_left, 0);
        assert_mall_for(&db).await;
        db.cleanup().await;
    }
}

async fn assert_mall_for(db: &TestDb) {
    assert_invariants(db, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_single_use_coupon_under_64_concurrent_redeems_is_redeemed_once() {
    for db in backends().await {
        let ms = members(&db, 1).await;
        let def = db
            .store
            .coupon_define("ten off", &fixed(1_000))
            .await
            .unwrap();
        let c = db
            .store
            .coupon_issue(def.id, ms[0], "test", "k")
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (store, code, m) = (db.store.clone(), c.code.clone(), ms[0]);
            tasks.push(tokio::spawn(async move {
                store
                    .coupon_redeem(&code, m, &format!("order-{i}"), &basket(5_000))
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.discount, 1_000);
                    ok += 1;
                }
                Err(StoreError::Coupon(Refusal::AlreadyRedeemed)) => {}
                Err(e) => panic!("{}: {e}", db.name),
            }
        }
        assert_eq!(ok, 1, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM coupon_redemptions")
                .await,
            1
        );
        assert_eq!(db.scalar("SELECT uses FROM coupons").await, 1);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_public_code_keeps_its_total_and_per_member_limits_under_concurrency() {
    for db in backends().await {
        let ms = Arc::new(members(&db, 8).await);
        let def = db.store.coupon_define("public", &fixed(300)).await.unwrap();
        db.store
            .coupon_public(def.id, "spring-10", 10, Some(2))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (store, ms) = (db.store.clone(), ms.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .coupon_redeem(
                        "SPRING-10",
                        ms[i % ms.len()],
                        &format!("o{i}"),
                        &basket(900),
                    )
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Coupon(Refusal::LimitReached { .. })) => {}
                Err(e) => panic!("{}: {e}", db.name),
            }
        }
        assert_eq!(ok, 10, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT member_id FROM coupon_redemptions GROUP BY member_id HAVING COUNT(*) > 2) s").await,
            0
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn validation_refuses_each_case_with_its_own_reason_and_changes_nothing() {
    for db in backends().await {
        let ms = members(&db, 2).await;
        let (a, b) = (ms[0], ms[1]);
        let now = chrono::Utc::now().timestamp_millis();
        let code = |r: Result<touchpoint_store::coupons::Validation, StoreError>| match r {
            Err(StoreError::Coupon(x)) => x.code(),
            Err(e) => panic!("{e}"),
            Ok(v) => panic!("valid: {v:?}"),
        };
        assert_eq!(
            code(db.store.coupon_validate("NOPE", a, &basket(100)).await),
            "unknown_coupon"
        );
        let mut later = fixed(100);
        later.valid_from = Some(now + 86_400_000);
        let d = db.store.coupon_define("later", &later).await.unwrap();
        let c = db
            .store
            .coupon_issue(d.id, a, "test", "later")
            .await
            .unwrap();
        assert_eq!(
            code(db.store.coupon_validate(&c.code, a, &basket(100)).await),
            "coupon_not_yet_valid"
        );
        let mut past = fixed(100);
        past.valid_until = Some(now - 1);
        let d = db.store.coupon_define("past", &past).await.unwrap();
        let c = db
            .store
            .coupon_issue(d.id, a, "test", "past")
            .await
            .unwrap();
        assert_eq!(
            code(db.store.coupon_validate(&c.code, a, &basket(100)).await),
            "coupon_expired"
        );
        let mut scoped = fixed(500);
        scoped.brands = vec!["Acme".into()];
        scoped.min_spend = 2_000;
        let d = db.store.coupon_define("acme", &scoped).await.unwrap();
        let c = db
            .store
            .coupon_issue(d.id, a, "test", "acme")
            .await
            .unwrap();
        assert_eq!(
            code(db.store.coupon_validate(&c.code, b, &basket(9_000)).await),
            "coupon_wrong_member"
        );
        let lines = |brand: &str, price: i64| Basket {
            channel: Some("pos".into()),
            amount: 0,
            lines: vec![BasketLine {
                sku: "S".into(),
                brand: Some(brand.into()),
                category: None,
                quantity: 1,
                unit_price: price,
            }],
        };
        assert_eq!(
            code(
                db.store
                    .coupon_validate(&c.code, a, &lines("Other", 9_000))
                    .await
            ),
            "coupon_out_of_scope"
        );
        assert_eq!(
            code(
                db.store
                    .coupon_validate(&c.code, a, &lines("Acme", 1_999))
                    .await
            ),
            "coupon_below_minimum_spend"
        );
        let v = db
            .store
            .coupon_validate(&c.code, a, &lines("acme", 2_000))
            .await
            .unwrap();
        assert_eq!((v.discount.discount, v.discount.eligible), (500, 2_000));
        // Validation took no use: it redeems once, then says so.
        db.store
            .coupon_redeem(&c.code, a, "X1", &lines("Acme", 2_000))
            .await
            .unwrap();
        assert_eq!(
            code(
                db.store
                    .coupon_validate(&c.code, a, &lines("Acme", 2_000))
                    .await
            ),
            "coupon_already_redeemed"
        );
        // The same order again is the same redemption, not a second use.
        let again = db
            .store
            .coupon_redeem(&c.code, a, "X1", &lines("Acme", 2_000))
            .await
            .unwrap();
        assert!(!again.created);
        let d = db.store.coupon_define("pub", &fixed(100)).await.unwrap();
        db.store.coupon_public(d.id, "ONCE", 1, None).await.unwrap();
        db.store
            .coupon_redeem("once", b, "Y1", &basket(500))
            .await
            .unwrap();
        assert_eq!(
            code(db.store.coupon_validate("ONCE", a, &basket(500)).await),
            "coupon_limit_reached"
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_imported_order_with_a_code_redeems_it_once_and_its_refund_gives_it_back() {
    for db in backends().await {
        let ms = members(&db, 1).await;
        let def = db
            .store
            .coupon_define("welcome", &fixed(1_000))
            .await
            .unwrap();
        let c = db
            .store
            .coupon_issue(def.id, ms[0], "test", "w")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let head = "channel,order_id,ordered_at,status,sku,quantity,unit_price,refunded,member_no,coupon\n";
        let paid = write(
            dir.path(),
            "paid.csv",
            format!(
                "{head}pos,C1,2025-02-01,paid,S1,1,90.00,0,V0,{}\n",
                c.code.to_lowercase()
            ),
        );
        import(&db.store, &paid, InputFormat::Canonical, "pos").await;
        let usage = |db: &TestDb| {
            let store = db.store.clone();
            async move { store.coupon_usage().await.unwrap().remove(0) }
        };
        let u = usage(&db).await;
        assert_eq!(
            (u.issued, u.redeemed, u.revenue),
            (1, 1, 9_000),
            "{}",
            db.name
        );
        assert_eq!(
            db.store.member_coupons(ms[0]).await.unwrap()[0].state,
            "redeemed"
        );
        // Re-importing changes nothing.
        import(&db.store, &paid, InputFormat::Canonical, "pos").await;
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM coupon_redemptions")
                .await,
            1
        );
        assert_eq!(db.scalar("SELECT uses FROM coupons").await, 1);
        // A refund gives it back (the definition says so), once.
        let refunded = write(
            dir.path(),
            "refund.csv",
            format!(
                "{head}pos,C1,2025-02-01,refunded,S1,1,90.00,90.00,V0,{}\n",
                c.code
            ),
        );
        import(&db.store, &refunded, InputFormat::Canonical, "pos").await;
        import(&db.store, &refunded, InputFormat::Canonical, "pos").await;
        let u = usage(&db).await;
        assert_eq!(
            (u.redeemed, u.returned, u.revenue),
            (0, 1, 0),
            "{}",
            db.name
        );
        assert_eq!(db.scalar("SELECT uses FROM coupons").await, 0);
        assert_eq!(
            db.store.member_coupons(ms[0]).await.unwrap()[0].state,
            "available"
        );
        db.cleanup().await;
    }
}
