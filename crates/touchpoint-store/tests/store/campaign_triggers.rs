//! Campaign triggers (win-back, holiday, order_placed with min_net,
//! points_expiring, tier_upgrade), caps per local day and week with
//! messages that wait in priority order and lapse, transactional messages,
//! and the dry run, on every backend. Expectations are computed by hand
//! in the comments.

use touchpoint_core::ingest::InputFormat;
use touchpoint_core::{Identifier, MemberId, Phone};
use touchpoint_store::campaigns::RunContext;
use touchpoint_store::profiles::{ConsentChoice, ProfileChange, ProfileSource};
use touchpoint_store::Store;

use crate::common::*;

/// 2025-12-01 (a Monday) 10:00 in Asia/Shanghai.
const NOW: i64 = 1_764_554_400_000;
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn cx(now: i64) -> RunContext {
    RunContext {
        now,
        time_zone: chrono_tz::Asia::Shanghai,
    }
}

/// One person per (local order time, net amount in yuan); each has an
/// e-mail address and, when `consent`, e-mail consent for promotions.
async fn buyers(store: &Store, orders: &[(&str, &str)], consent: bool) -> Vec<i64> {
    let mut csv =
        String::from("order_id,ordered_at,channel,status,sku,quantity,unit_price,phone,email\n");
    for (i, (at, price)) in orders.iter().enumerate() {
        let i = i + 1;
        csv.push_str(&format!(
            "B{i},{at},web,paid,SKU-A,1,{price},1380000{i:04},b{i}@example.com\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", csv);
    let r = import(store, &path, InputFormat::Canonical, "web").await;
    assert_eq!(r.orders.inserted, orders.len() as u64, "{r:?}");
    let mut out = Vec::new();
    for i in 1..=orders.len() {
        let phone = Phone::parse(&format!("1380000{i:04}"), "86").unwrap();
        let m = store
            .member_by_identifier(&Identifier::phone(&phone))
            .await
            .unwrap()
            .unwrap();
        if consent {
            let mut ch = ProfileChange::new(ProfileSource::Cli);
            ch.consent.push(ConsentChoice {
                channel: "email".into(),
                topic: Some("promotions".into()),
                granted: true,
            });
            store.update_profile(m, &ch).await.unwrap();
        }
        out.push(m.get());
    }
    out
}

async fn order(store: &Store, id: &str, at: &str, price: &str, buyer: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "more.csv",
        format!("order_id,ordered_at,channel,status,sku,quantity,unit_price,phone\n{id},{at},web,paid,SKU-A,1,{price},1380000{buyer:04}\n"),
    );
    import(store, &path, InputFormat::Canonical, "web").await;
}

fn campaign(name: &str, head: &str, trigger: &str, body: &str) -> String {
    format!(
        r#"name = "{name}"
channel = "email"
control_percent = 0
{head}
[audience]
expression = 'orders >= 1'

[trigger]
{trigger}

[message]
subject = "Hello"
body = "{body}"
"#
    )
}

/// Run until `campaign` has `n` sends: on PostgreSQL an outbox event is
/// read only once every older transaction of the server has ended (tests
/// run in parallel), so the orders may show up a run or two later. The
/// decisions of every run are summed.
async fn run_until(
    db: &TestDb,
    now: i64,
    campaign: &str,
    n: i64,
) -> Vec<touchpoint_store::campaigns::CampaignRun> {
    let mut total: Vec<touchpoint_store::campaigns::CampaignRun> = Vec::new();
    for _ in 0..200 {
        let r = db.store.campaigns_run(&cx(now)).await.unwrap();
        if total.is_empty() {
            total = r;
        } else {
            for (t, x) in total.iter_mut().zip(r) {
                t.candidates += x.candidates;
                t.queued += x.queued;
                t.already_decided += x.already_decided;
            }
        }
        let got = db
            .scalar(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE campaign = '{campaign}'"
            ))
            .await;
        if got >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    total
}

const ROOMY: &str = "[cap]\nper_day = 10\nper_week = 10\n";

async fn sends(db: &TestDb, campaign: &str) -> Vec<Vec<String>> {
    db.rows(
        &format!(
            "SELECT CAST(member_id AS TEXT), occurrence, status, COALESCE(reason, ''), COALESCE(body, '') \
             FROM campaign_sends WHERE campaign = '{campaign}' ORDER BY member_id, occurrence"
        ),
        5,
    )
    .await
}

#[tokio::test]
async fn win_back_is_once_per_lapse_and_holidays_once_per_date() {
    for db in backends().await {
        let s = &db.store;
        // Last purchases (local days) against 2025-12-01: 2025-06-01 is 183
        // days before, 2025-09-02 is 90, 2025-09-03 is 89, 2025-11-01 is 30.
        let m = buyers(
            s,
            &[
                ("2025-06-01 12:00:00", "100.00"),
                ("2025-09-02 23:30:00", "100.00"),
                ("2025-09-03 00:30:00", "100.00"),
                ("2025-11-01 12:00:00", "100.00"),
            ],
            true,
        )
        .await;
        s.campaign_create(&campaign(
            "winback",
            ROOMY,
            "kind = \"win_back\"\ndays = 90",
            "Quiet for {{days_since_order}} days since {{last_order_date}}",
        ))
        .await
        .unwrap();
        let r = s.campaigns_run(&cx(NOW)).await.unwrap();
        assert_eq!((r[0].candidates, r[0].queued), (2, 2), "{}: {r:?}", db.name);
        let got = sends(&db, "winback").await;
        assert_eq!(got[0][0], m[0].to_string());
        assert_eq!(got[0][1], "win_back:2025-06-01");
        assert_eq!(got[0][4], "Quiet for 183 days since 2025-06-01");
        assert_eq!(got[1][1], "win_back:2025-09-02", "{got:?}");
        // A day later the third buyer passes 90 days; the first two are
        // decided already.
        let r = s.campaigns_run(&cx(NOW + DAY)).await.unwrap();
        assert_eq!((r[0].already_decided, r[0].queued), (2, 1), "{r:?}");
        // The first buyer buys again on 2025-12-02: a new lapse 90 days
        // later, on 2026-03-02 (29 + 31 + 28 + 2 days).
        order(s, "B9", "2025-12-02 11:00:00", "50.00", 1).await;
        let march = NOW + 91 * DAY;
        let r = s.campaigns_run(&cx(march - DAY)).await.unwrap();
        assert_eq!(r[0].queued, 1, "only the fourth buyer (120 days): {r:?}");
        let r = s.campaigns_run(&cx(march)).await.unwrap();
        assert_eq!(r[0].queued, 1, "{r:?}");
        let first: Vec<String> = sends(&db, "winback")
            .await
            .into_iter()
            .filter(|x| x[0] == m[0].to_string())
            .map(|x| x[1].clone())
            .collect();
        assert_eq!(first, vec!["win_back:2025-06-01", "win_back:2025-12-02"]);

        // Holidays: an added date today, Double 12 from two days before.
        s.campaign_create(&format!(
            "{}\n[calendar]\nanniversary = [\"2025-12-01\"]\n",
            campaign(
                "holidays",
                ROOMY,
                "kind = \"holiday\"\nholidays = [\"double12\", \"anniversary\"]\ndays_before = 2",
                "{{holiday}} on {{holiday_date}}",
            )
        ))
        .await
        .unwrap();
        let run = |t| async move {
            let r = s.campaigns_run(&cx(t)).await.unwrap();
            r.into_iter().find(|x| x.campaign == "holidays").unwrap()
        };
        assert_eq!(run(NOW).await.queued, 4);
        assert_eq!(
            run(NOW + 8 * DAY).await.candidates,
            0,
            "12-09 is 3 days before"
        );
        assert_eq!(run(NOW + 9 * DAY).await.queued, 4, "12-10");
        let again = run(NOW + 10 * DAY).await;
        assert_eq!((again.queued, again.already_decided), (0, 4));
        let h = sends(&db, "holidays").await;
        assert_eq!(h.len(), 8);
        assert_eq!(h[0][1], "holiday:anniversary:2025-12-01");
        assert_eq!(h[1][1], "holiday:double12:2025-12-12");
        assert_eq!(h[1][4], "double12 on 2025-12-12");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn capped_messages_wait_in_priority_order_then_lapse() {
    for db in backends().await {
        let s = &db.store;
        let m = buyers(s, &[("2025-10-01 12:00:00", "100.00")], true).await;
        let once = |name: &str, prio: i32, at: &str, exp: &str| {
            campaign(
                name,
                &format!("priority = {prio}\nexpires_after = \"{exp}\"\n"),
                &format!("kind = \"once\"\nat = \"{at}\""),
                "Hi {{member_id}}",
            )
        };
        // Default caps: 1 a day, 3 a week (Monday to Sunday, local).
        s.campaign_create(&once("low", 1, "2025-12-01 09:00", "3d"))
            .await
            .unwrap();
        s.campaign_create(&once("high", 10, "2025-12-01 09:00", "3d"))
            .await
            .unwrap();
        s.campaign_create(&once("later", 0, "2025-12-02 09:00", "1d"))
            .await
            .unwrap();
        let r = s.campaigns_run(&cx(NOW)).await.unwrap();
        let names: Vec<&str> = r.iter().map(|x| x.campaign.as_str()).collect();
        assert_eq!(names, ["high", "low", "later"], "priority order");
        assert_eq!((r[0].queued, r[1].waiting), (1, 1), "{}: {r:?}", db.name);
        // Later the same local day: the day's slot is taken, it still waits.
        let r = s.campaigns_run(&cx(NOW + 5 * HOUR)).await.unwrap();
        assert_eq!((r[1].waiting, r[1].released), (1, 0), "{r:?}");
        // 2025-12-02 10:00: one slot; the waiting "low" (priority 1) takes it
        // before the new "later" (priority 0), which waits until 12-03 10:00.
        let r = s.campaigns_run(&cx(NOW + DAY)).await.unwrap();
        assert_eq!((r[1].released, r[1].queued), (1, 1), "{r:?}");
        assert_eq!(r[2].waiting, 1, "{r:?}");
        // 2025-12-03 10:00: "later" reached its expires_after and lapses.
        let r = s.campaigns_run(&cx(NOW + 2 * DAY)).await.unwrap();
        assert_eq!(r[2].lapsed, 1, "{r:?}");
        let l = sends(&db, "later").await;
        assert_eq!(
            (l[0][2].as_str(), l[0][3].as_str()),
            ("lapsed", "cap_wait_expired")
        );
        assert_eq!(sends(&db, "low").await[0][2], "queued");
        let rep = s.campaign_report("later", None).await.unwrap();
        assert_eq!((rep.lapsed, rep.waiting, rep.queued), (1, 0, 0));
        // The week cap: 12-01 and 12-02 used 2 of 3; a new one on 12-04 is
        // the third, one on 12-05 waits (week full) until Monday 12-08.
        s.campaign_create(&once("thu", 0, "2025-12-04 09:00", "7d"))
            .await
            .unwrap();
        s.campaign_create(&once("fri", 0, "2025-12-05 09:00", "7d"))
            .await
            .unwrap();
        s.campaigns_run(&cx(NOW + 3 * DAY)).await.unwrap();
        let r = s.campaigns_run(&cx(NOW + 4 * DAY)).await.unwrap();
        let fri = |r: &Vec<touchpoint_store::campaigns::CampaignRun>| {
            r.iter().find(|x| x.campaign == "fri").unwrap().clone()
        };
        assert_eq!(fri(&r).waiting, 1, "{r:?}");
        assert_eq!(
            fri(&s.campaigns_run(&cx(NOW + 6 * DAY)).await.unwrap()).waiting,
            1
        );
        assert_eq!(
            fri(&s.campaigns_run(&cx(NOW + 7 * DAY)).await.unwrap()).released,
            1,
            "Monday"
        );
        assert_eq!(sends(&db, "thu").await[0][2], "queued");
        assert_eq!(
            db.scalar(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE member_id = {} AND status = 'queued'",
                m[0]
            ))
            .await,
            4,
            "high, low, thu, fri; later lapsed"
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn large_orders_get_a_thank_you_after_the_delay_and_transactional_is_exempt() {
    for db in backends().await {
        let s = &db.store;
        // The campaigns read orders recorded from their creation on.
        s.campaign_create(&campaign(
            "thanks",
            ROOMY,
            "kind = \"order_placed\"\ndelay = \"1d\"\nmin_net = 100000",
            "Thank you for order {{order_id}} ({{order_net}})",
        ))
        .await
        .unwrap();
        s.campaign_create(&campaign(
            "confirm",
            "transactional = true\npriority = 100\n",
            "kind = \"order_placed\"",
            "Order {{order_id}} confirmed",
        ))
        .await
        .unwrap();
        // Buyer 1: 1,500.00 (over 1,000.00), no consent; buyer 2: 999.99.
        buyers(
            s,
            &[
                ("2025-11-30 12:00:00", "1500.00"),
                ("2025-11-30 12:00:00", "999.99"),
            ],
            false,
        )
        .await;
        let now = touchpoint_store::now_ms();
        let r = run_until(&db, now, "confirm", 2).await;
        let by = |r: &[touchpoint_store::campaigns::CampaignRun], n: &str| {
            r.iter().find(|x| x.campaign == n).unwrap().clone()
        };
        // Transactional: both confirmations queued without consent.
        assert_eq!(by(&r, "confirm").queued, 2, "{}: {r:?}", db.name);
        assert_eq!(by(&r, "thanks").candidates, 0, "the delay is a day");
        let r = s.campaigns_run(&cx(now + DAY + HOUR)).await.unwrap();
        let t = by(&r, "thanks");
        assert_eq!(t.candidates, 1, "{r:?}");
        assert_eq!(
            t.skipped.get("no_consent"),
            Some(&1),
            "marketing needs consent"
        );
        let c = sends(&db, "confirm").await;
        assert_eq!(c[0][4], "Order B1 confirmed");
        assert_eq!(
            db.scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE campaign = 'confirm' AND transactional = 1")
                .await,
            2
        );
        db.cleanup().await;
    }
}

fn program() -> &'static str {
    r#"
name = "Tiered"
starts = "2025-01-01"
pending_days = 0
tier_basis = "net_spend"
tier_window_months = 12
tier_review_months = 12

[expiry]
rule = "days"
count = 30

[[earn]]
points = 1

[[tiers]]
name = "Silver"
min_spend = 50000

[[tiers]]
name = "Gold"
min_spend = 100000
"#
}

#[tokio::test]
async fn points_expiring_and_tier_upgrades_come_from_the_loyalty_data() {
    for db in backends().await {
        let s = &db.store;
        s.loyalty_set_program(program()).await.unwrap();
        s.campaign_create(&campaign(
            "gold",
            ROOMY,
            "kind = \"tier_upgrade\"\nto = [\"Gold\"]",
            "From {{previous_tier}} to {{tier}}",
        ))
        .await
        .unwrap();
        s.campaign_create(&campaign(
            "expiring",
            ROOMY,
            "kind = \"points_expiring\"\ndays = 7\nmin_points = 300",
            "{{expiring_points}} points expire on {{expires_on}}",
        ))
        .await
        .unwrap();
        let day = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
        // 1,200.00: Gold, 1,200 points; 600.00: Silver, 600 points; 200.00:
        // no tier, 200 points (under min_points). Points expire 30 days
        // after they are earned.
        let m = buyers(
            s,
            &[
                (&format!("{day} 10:00:00"), "1200.00"),
                (&format!("{day} 10:00:00"), "600.00"),
                (&format!("{day} 10:00:00"), "200.00"),
            ],
            true,
        )
        .await;
        let now = touchpoint_store::now_ms();
        let r = s.campaigns_run(&cx(now + HOUR)).await.unwrap();
        let by = |n: &str| r.iter().find(|x| x.campaign == n).unwrap().clone();
        assert_eq!(by("gold").queued, 1, "{}: {r:?}", db.name);
        let g = sends(&db, "gold").await;
        assert_eq!(g[0][0], m[0].to_string());
        assert_eq!(g[0][4], "From  to Gold");
        assert!(g[0][1].starts_with("tier_upgrade:"), "{g:?}");
        assert_eq!(by("expiring").candidates, 0, "30 days away, not 7");
        let r = s.campaigns_run(&cx(now + 25 * DAY)).await.unwrap();
        let e = r.iter().find(|x| x.campaign == "expiring").unwrap();
        assert_eq!((e.candidates, e.queued), (2, 2), "{r:?}");
        let e = sends(&db, "expiring").await;
        assert!(e[0][4].starts_with("1200 points expire on "), "{e:?}");
        assert!(e[1][4].starts_with("600 points expire on "), "{e:?}");
        let again = s.campaigns_run(&cx(now + 26 * DAY)).await.unwrap();
        let e = again.iter().find(|x| x.campaign == "expiring").unwrap();
        assert_eq!((e.queued, e.already_decided), (0, 2));
        db.cleanup().await;
    }
}

async fn snapshot(db: &TestDb) -> Vec<i64> {
    let mut v = Vec::new();
    for t in [
        "campaign_sends",
        "campaign_state",
        "campaign_pending",
        "campaign_audience",
        "outbox_cursors",
        "coupons",
        "outbox",
    ] {
        v.push(
            db.scalar(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {t}"))
                .await,
        );
    }
    v.push(
        db.scalar("SELECT CAST(COALESCE(SUM(LENGTH(status) + decided_at % 1000), 0) AS BIGINT) FROM campaign_sends")
            .await,
    );
    v
}

#[tokio::test]
async fn the_dry_run_lists_what_a_run_decides_and_writes_nothing() {
    for db in backends().await {
        let s = &db.store;
        let m = buyers(
            s,
            &[
                ("2025-06-01 12:00:00", "100.00"),
                ("2025-07-01 12:00:00", "100.00"),
                ("2025-11-01 12:00:00", "100.00"),
            ],
            true,
        )
        .await;
        // Buyer 2 withdraws: no consent.
        let mut ch = ProfileChange::new(ProfileSource::Cli);
        ch.consent.push(ConsentChoice {
            channel: "email".into(),
            topic: None,
            granted: false,
        });
        s.update_profile(MemberId::from_i64(m[1]), &ch)
            .await
            .unwrap();
        s.campaign_create(&campaign(
            "winback",
            "priority = 5\n",
            "kind = \"win_back\"",
            "Come back",
        ))
        .await
        .unwrap();
        s.campaign_create(&campaign(
            "news",
            "",
            "kind = \"once\"\nat = \"2025-12-01 09:00\"",
            "News",
        ))
        .await
        .unwrap();
        let before = snapshot(&db).await;
        let plan = s.campaigns_dry_run(&cx(NOW)).await.unwrap();
        assert_eq!(
            snapshot(&db).await,
            before,
            "{}: the dry run wrote",
            db.name
        );
        let plan2 = s.campaigns_dry_run(&cx(NOW)).await.unwrap();
        assert_eq!(plan, plan2, "a dry run twice is the same");
        // winback (priority 5) first: buyer 1 queued, buyer 2 no consent;
        // news: buyer 1 is over the day cap (waits), buyer 2 no consent,
        // buyer 3 queued.
        assert_eq!(plan[0].campaign, "winback");
        let list = |i: usize| -> Vec<(String, String, Option<String>)> {
            plan[i]
                .decisions
                .iter()
                .map(|d| (d.member_id.clone(), d.decision.clone(), d.reason.clone()))
                .collect()
        };
        let id = |i: usize| MemberId::from_i64(m[i]).to_string();
        assert_eq!(
            list(0),
            vec![
                (id(0), "queued".into(), None),
                (id(1), "skipped".into(), Some("no_consent".into()))
            ]
        );
        assert_eq!(plan[0].decisions[0].occurrence, "win_back:2025-06-01");
        assert!(
            plan[0].decisions[0].why.contains("183 days"),
            "{:?}",
            plan[0]
        );
        assert_eq!(
            list(1),
            vec![
                (id(0), "waiting".into(), Some("capped".into())),
                (id(1), "skipped".into(), Some("no_consent".into())),
                (id(2), "queued".into(), None)
            ]
        );
        // The run decides the same.
        s.campaigns_run(&cx(NOW)).await.unwrap();
        for (i, name) in [(0, "winback"), (1, "news")] {
            let got: Vec<(String, String, Option<String>)> = sends(&db, name)
                .await
                .into_iter()
                .map(|x| {
                    (
                        MemberId::from_i64(x[0].parse().unwrap()).to_string(),
                        x[2].clone(),
                        (!x[3].is_empty()).then(|| x[3].clone()),
                    )
                })
                .collect();
            assert_eq!(got, list(i), "{name}");
        }
        // After the run, a dry run finds everything decided.
        let after = s.campaigns_dry_run(&cx(NOW + HOUR)).await.unwrap();
        assert_eq!(after[0].already_decided, 2);
        assert_eq!(
            after[1].idle.as_deref(),
            Some("done (a one-off campaign that has run)")
        );
        db.cleanup().await;
    }
}

fn fixed(amount: i64) -> touchpoint_core::coupons::CouponRules {
    touchpoint_core::coupons::CouponRules {
        kind: touchpoint_core::coupons::CouponKind::Fixed,
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

#[tokio::test]
async fn the_order_confirmation_carries_a_coupon_chosen_by_the_order_categories() {
    for db in backends().await {
        let s = &db.store;
        let related = s
            .coupon_define("remover 20 off", &fixed(2_000))
            .await
            .unwrap();
        let default = s.coupon_define("5 off", &fixed(500)).await.unwrap();
        s.campaign_create(&format!(
            "{}\n[[coupon_by_category]]\ncategory = \"skincare\"\ncoupon_definition = {}\n",
            campaign(
                "confirm",
                &format!("transactional = true\ncoupon_definition = {}\n", default.id),
                "kind = \"order_placed\"",
                "Order {{order_id}}: your coupon {{coupon}}",
            ),
            related.id,
        ))
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "o.csv",
            "order_id,ordered_at,channel,status,sku,category,quantity,unit_price,phone,email\n\
             C1,2025-11-30 10:00:00,web,paid,SKU-S,skincare,1,100.00,13900000001,c1@example.com\n\
             C2,2025-11-30 10:00:00,web,paid,SKU-H,haircare,1,100.00,13900000002,c2@example.com\n",
        );
        import(s, &path, InputFormat::Canonical, "web").await;
        let r = run_until(&db, touchpoint_store::now_ms(), "confirm", 2).await;
        assert_eq!(r[0].queued, 2, "{}: {r:?}", db.name);
        let got = db
            .rows(
                "SELECT s.occurrence, CAST(c.definition_id AS TEXT), s.body, c.code FROM campaign_sends s \
                 JOIN coupons c ON c.code = s.coupon_code AND c.member_id = s.member_id ORDER BY s.occurrence",
                4,
            )
            .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0][0], "order:web:C1");
        assert_eq!(
            got[0][1],
            related.id.to_string(),
            "skincare: the related coupon"
        );
        assert_eq!(got[1][1], default.id.to_string(), "haircare: the default");
        assert_eq!(got[0][2], format!("Order C1: your coupon {}", got[0][3]));
        db.cleanup().await;
    }
}
