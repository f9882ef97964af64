//! Tiers on every backend: upgrade at once by net spend, the multiplier on
//! later earnings, downgrade only at the review date (one level, or to the
//! qualified tier), reruns that change nothing and one `tier_changed` event
//! per change; packaging-code batches with a pending period; the sliding
//! hour of the claim-failure limit.

use chrono::{Duration, Months, Utc};
use touchpoint_core::ingest::InputFormat;
use touchpoint_store::loyalty::{self as ledger, BatchSpec};
use touchpoint_store::StoreError;

use crate::common::{backends, import, write, TestDb};

const HEADER: &str =
    "channel,order_id,ordered_at,status,sku,brand,quantity,unit_price,refunded,member_no\n";

fn program(downgrade: &str) -> String {
    format!(
        r#"
name = "Tiered"
starts = "2025-01-01"
pending_days = 0
tier_basis = "net_spend"
tier_window_months = 12
tier_review_months = 12
tier_downgrade = "{downgrade}"

[[earn]]
points = 1

[[tiers]]
name = "Silver"
min_spend = 50000

[[tiers]]
name = "Gold"
min_spend = 100000
multiplier_percent = 150

[[tiers]]
name = "Platinum"
min_spend = 200000
multiplier_percent = 200
"#
    )
}

async fn member_of(db: &TestDb, member_no: &str) -> i64 {
    db.scalar(&format!(
        "SELECT member_id FROM identifiers WHERE kind = 'member_no' AND value = '{member_no}'"
    ))
    .await
}

async fn tier(db: &TestDb, member: i64) -> Option<String> {
    db.store.points_balance(member, 0).await.unwrap().tier
}

async fn tier_events(db: &TestDb, member: i64) -> i64 {
    db.scalar(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE kind = 'tier_changed' AND member_id = {member}"
    ))
    .await
}

/// Upgrade by net spend, the multiplier, and the review under `downgrade`:
/// a Platinum member who bought nothing since lands on `expected`.
async fn review_with(downgrade: &str, expected: Option<&str>) {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store
            .loyalty_set_program(&program(downgrade))
            .await
            .unwrap();
        let day = (Utc::now() - Duration::days(2)).format("%Y-%m-%d");
        // 2,500.00 of net spend (a 100.00 line refunded): Platinum at once.
        let f = write(
            dir.path(),
            "a.csv",
            format!("{HEADER}pos,T1,{day},partially_refunded,S1,,1,2600.00,100.00,V1\npos,T2,{day},paid,S1,,1,100.00,0,V2\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let (v1, v2) = (member_of(&db, "V1").await, member_of(&db, "V2").await);
        assert_eq!(
            tier(&db, v1).await.as_deref(),
            Some("Platinum"),
            "{}",
            db.name
        );
        assert_eq!(
            tier(&db, v2).await,
            None,
            "{}: 100.00 is below Silver",
            db.name
        );
        assert_eq!(tier_events(&db, v1).await, 1, "{}", db.name);
        // The tier's multiplier applies to the next purchase: 100.00 -> 200.
        let before = db.store.points_balance(v1, 0).await.unwrap().available;
        let g = write(
            dir.path(),
            "b.csv",
            format!("{HEADER}pos,T3,{day},paid,S1,,1,100.00,0,V1\n"),
        );
        import(&db.store, &g, InputFormat::Canonical, "pos").await;
        let after = db.store.points_balance(v1, 0).await.unwrap().available;
        assert_eq!(after - before, 200, "{}: Platinum earns double", db.name);

        // Not before the review date (12 months after reaching the tier).
        let now = Utc::now();
        let early = (now + Months::new(11)).timestamp_millis();
        let r = db.store.loyalty_tier_reviews(early).await.unwrap();
        assert!(r.changes.is_empty(), "{}: {r:?}", db.name);
        assert_eq!(tier(&db, v1).await.as_deref(), Some("Platinum"));

        // At the review: nothing bought in the 12 months before it.
        let due = (now + Months::new(13)).timestamp_millis();
        let r = db.store.loyalty_tier_reviews(due).await.unwrap();
        assert_eq!(r.reviews, 1, "{}: {r:?}", db.name);
        assert_eq!(r.changes.len(), 1, "{}: {r:?}", db.name);
        assert_eq!(r.changes[0].from.as_deref(), Some("Platinum"));
        assert_eq!(r.changes[0].to.as_deref(), expected, "{}", db.name);
        assert!(
            r.changes[0].reason.contains(downgrade),
            "{}: {}",
            db.name,
            r.changes[0].reason
        );
        assert_eq!(tier(&db, v1).await.as_deref(), expected, "{}", db.name);
        // Run again: nothing changes, and the change is in the outbox once.
        let again = db.store.loyalty_tier_reviews(due).await.unwrap();
        assert_eq!(again.changes, Vec::new(), "{}", db.name);
        assert_eq!(again.reviews, 0, "{}", db.name);
        assert_eq!(
            tier_events(&db, v1).await,
            2,
            "{}: up once, down once",
            db.name
        );
        let history = db
            .rows(
                &format!("SELECT COALESCE(from_tier, '-'), COALESCE(to_tier, '-'), reason FROM points_tier_history WHERE member_id = {v1} ORDER BY id"),
                3,
            )
            .await;
        assert_eq!(history.len(), 2, "{}: {history:?}", db.name);
        assert_eq!(history[0][1], "Platinum");
        assert!(
            history[0][2].starts_with("upgrade: net spend 250000"),
            "{history:?}"
        );
        assert_eq!(history[1][1], expected.unwrap_or("-"));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn net_spend_upgrades_at_once_and_the_review_downgrades_one_level() {
    review_with("one_level", Some("Gold")).await;
}

#[tokio::test]
async fn the_review_can_downgrade_to_the_qualified_tier() {
    review_with("to_qualified", None).await;
}

#[tokio::test]
async fn a_batch_with_a_pending_period_keeps_claimed_points_pending() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        db.store
            .loyalty_set_program(&program("one_level"))
            .await
            .unwrap();
        let f = write(
            dir.path(),
            "a.csv",
            format!("{HEADER}pos,A1,2025-03-01,paid,S1,,1,1.00,0,V1\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let v1 = member_of(&db, "V1").await;
        let mut codes = Vec::new();
        db.store
            .codes_generate(
                &BatchSpec {
                    name: "tea",
                    count: 3,
                    points: 30,
                    sku: None,
                    expires_at: None,
                    pending_days: 7,
                },
                &mut |c| {
                    codes.extend_from_slice(c);
                    Ok(())
                },
            )
            .await
            .unwrap();
        let c = db
            .store
            .code_claim(&codes[0], v1, Some("10.0.0.1"))
            .await
            .unwrap();
        assert_eq!(c.points, 30);
        let b = db.store.points_balance(v1, 0).await.unwrap();
        assert_eq!((b.available, b.pending), (1, 30), "{}", db.name);
        assert!(matches!(
            db.store.points_spend(v1, 30, "x", None, "t", "k1").await,
            Err(StoreError::InsufficientPoints { .. })
        ));
        // Six days on it is still pending; after seven it is available.
        let day = 86_400_000;
        db.store
            .points_expire(touchpoint_store::now_ms() + 6 * day)
            .await
            .unwrap();
        let sql = format!("SELECT available FROM points_accounts WHERE member_id = {v1}");
        assert_eq!(db.scalar(&sql).await, 1, "{}", db.name);
        let r = db
            .store
            .points_expire(touchpoint_store::now_ms() + 7 * day + 60_000)
            .await
            .unwrap();
        assert_eq!(r.matured, 1, "{}", db.name);
        assert_eq!(db.scalar(&sql).await, 31, "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn wrong_codes_count_in_a_sliding_hour() {
    for db in backends().await {
        db.store
            .loyalty_set_program(&program("one_level"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.csv",
            format!("{HEADER}pos,A1,2025-03-01,paid,S1,,1,1.00,0,V1\npos,B1,2025-03-01,paid,S1,,1,1.00,0,V2\n"),
        );
        import(&db.store, &f, InputFormat::Canonical, "pos").await;
        let (v1, v2) = (member_of(&db, "V1").await, member_of(&db, "V2").await);
        let batch = db
            .store
            .codes_create_batch("box", 2, 10, None, None)
            .await
            .unwrap();
        // Nine failures 45 minutes ago (in another clock hour, often): they
        // still count.
        let now = touchpoint_store::now_ms();
        let then = (now - 45 * 60_000) - (now - 45 * 60_000).rem_euclid(60_000);
        let subject = format!("person:member:{v1}");
        let mut h = db.store.acquire().await.unwrap();
        h.conn()
            .exec(
                "INSERT INTO loyalty_claim_failure_minutes (subject, minute_start, failures) VALUES ($1, $2, 9)",
                &[subject.as_str().into(), then.into()],
            )
            .await
            .unwrap();
        drop(h);
        let unknown = touchpoint_core::loyalty::generate_code();
        assert!(matches!(
            db.store.code_claim(&unknown, v1, Some("10.0.0.1")).await,
            Err(StoreError::UnknownCode)
        ));
        // The 11th attempt is refused, even with a right code, until the
        // nine leave the window 60 minutes after they were counted.
        match db
            .store
            .code_claim(&batch.codes[0], v1, Some("10.0.0.1"))
            .await
        {
            Err(StoreError::TooManyAttempts { retry_after_secs }) => {
                let leaves = (then + 3_600_000 - touchpoint_store::now_ms()) / 1000;
                assert!(
                    retry_after_secs as i64 >= leaves && retry_after_secs as i64 <= leaves + 2,
                    "{}: {retry_after_secs} s, the nine leave in {leaves} s",
                    db.name
                );
            }
            other => panic!("{}: expected too many attempts, got {other:?}", db.name),
        }
        // Another person under the limit, from another address, still claims.
        let c = db
            .store
            .code_claim(&batch.codes[0], v2, Some("10.0.0.2"))
            .await
            .unwrap();
        assert_eq!(c.member_id, v2);
        db.cleanup().await;
    }
}

#[test]
fn retry_after_waits_until_enough_failures_leave_the_window() {
    let m = 60_000;
    let now = 100 * m + 30_000;
    // 4 failures 50 minutes ago, 6 at 20 minutes ago: 10 in the window.
    let b = [(now - 30_000 - 50 * m, 4), (now - 30_000 - 20 * m, 6)];
    // One must leave: the oldest bucket leaves in 10 minutes (less 30 s).
    assert_eq!(ledger::retry_after_secs(&b, 10, now), Some(570));
    // Under a limit of 11 nothing waits; with 6 allowed, the six must go too.
    assert_eq!(ledger::retry_after_secs(&b, 11, now), None);
    assert_eq!(ledger::retry_after_secs(&b, 5, now), Some(40 * 60 - 30));
    // Buckets older than an hour do not count.
    assert_eq!(
        ledger::retry_after_secs(&[(now - 61 * m, 100)], 10, now),
        None
    );
}
