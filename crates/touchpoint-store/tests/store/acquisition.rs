//! Acquisition cost (docs/acquisition.md): spend imports and the report,
//! with figures computed by hand, on every configured backend.

use touchpoint_core::domain::DomainEvent;
use touchpoint_core::ingest::InputFormat;
use touchpoint_store::acquisition::{AcquisitionFigures, AcquisitionReport, AcquisitionRow};
use touchpoint_store::clv::MemberPrediction;
use touchpoint_store::events::NewEvent;
use touchpoint_store::reports::{Report, ReportRequest};

use crate::common::{backends, import, write, TestDb};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Two channels (tmall, douyin) over two months (January and February 2025,
/// Shanghai time). Who is who:
///
/// - A  phone,          tmall  2025-01-05 paid 100.00
/// - B  e-mail,         tmall  2025-01-20 refunded in full (valid, never paying)
/// - C  tmall buyer id, tmall  2025-01-25 paid (paying, not valid: no phone,
///   e-mail or member number)
/// - D  phone,          douyin 2025-02-01 07:00 local (2025-01-31 23:00 UTC:
///   February in Shanghai) paid, `campaign` column cny-live
/// - E  member number,  tmall  2025-02-10 paid, but first touched by a
///   tracking event of campaign cny-live (source douyin) on 2025-02-01
/// - F  phone,          tmall  2025-01-30 cancelled, then 2025-02-14 paid
///   (a valid member of January, a paying customer of February)
/// - G  phone,          douyin 2025-01-15 paid, no campaign
const ORDERS: &str = "\
order_id,channel,ordered_at,status,sku,quantity,unit_price,phone,email,member_no,platform_user_id,campaign
T1,tmall,2025-01-05 10:00:00,paid,S1,1,100.00,13800000001,,,,
T2,tmall,2025-01-20 10:00:00,refunded,S1,1,50.00,,b@example.com,,,
T3,tmall,2025-01-25 10:00:00,paid,S1,1,80.00,,,,nick-c,
D1,douyin,2025-02-01 07:00:00,paid,S1,1,120.00,13800000004,,,,cny-live
T5,tmall,2025-02-10 10:00:00,paid,S1,1,60.00,,,MN-5,,
T6,tmall,2025-01-30 10:00:00,cancelled,S1,1,70.00,13800000006,,,,
T7,tmall,2025-02-14 10:00:00,paid,S1,1,70.00,13800000006,,,,
D2,douyin,2025-01-15 10:00:00,paid,S1,1,90.00,13800000007,,,,
";

const SPEND: &str = "\
date,channel,campaign,pricing_model,spend,impressions,clicks,conversions
2025-01-10,tmall,,CPC,300.00,10000,200,2
2025-01-20,tmall,,CPC,200.50,8000,150,1
2025-02-05,tmall,,CPC,400,12000,260,3
2025-01-15,douyin,,CPM,90.00,90000,300,1
2025-02-01,douyin,cny-live,CPM,1000.00,500000,4000,5
2025-02-02,douyin,cny-live,cpm,500.00,250000,2100,2
";

fn figures(
    spend: i64,
    valid: i64,
    paying: i64,
    per_valid: Option<i64>,
    per_paying: Option<i64>,
) -> (i64, i64, i64, Option<i64>, Option<i64>) {
    (spend, valid, paying, per_valid, per_paying)
}

fn got(f: &AcquisitionFigures) -> (i64, i64, i64, Option<i64>, Option<i64>) {
    (
        f.spend,
        f.new_valid_members,
        f.new_paying_customers,
        f.cost_per_valid_member,
        f.cost_per_paying_customer,
    )
}

fn row<'a>(
    r: &'a AcquisitionReport,
    channel: &str,
    campaign: &str,
    month: &str,
) -> &'a AcquisitionRow {
    r.rows
        .iter()
        .find(|x| {
            x.channel == channel && x.campaign.as_deref() == Some(campaign) && x.month == month
        })
        .unwrap_or_else(|| panic!("no row {channel}/{campaign}/{month} in {:#?}", r.rows))
}

async fn member_of(db: &TestDb, kind: &str, value: &str) -> i64 {
    db.scalar(&format!(
        "SELECT member_id FROM identifiers WHERE kind = '{kind}' AND value = '{value}'"
    ))
    .await
}

async fn acquisition(db: &TestDb, params: &[(&str, &str)]) -> AcquisitionReport {
    let req = ReportRequest::parse("acquisition", params.iter().copied(), TZ).unwrap();
    match db.store.report(&req).await.unwrap() {
        Report::Acquisition(r) => *r,
        other => panic!("not an acquisition report: {other:?}"),
    }
}

#[tokio::test]
async fn acquisition_figures_match_the_hand_computed_case() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let orders = write(dir.path(), "orders.csv", ORDERS);
        let rep = import(&db.store, &orders, InputFormat::Canonical, "tmall").await;
        assert_eq!(rep.orders.rejected, 0, "{}: {:?}", db.name, rep.files);
        // E's first touch: a tracking event of the cny-live campaign on
        // douyin, before E's first order (on tmall).
        let occurred = chrono::DateTime::parse_from_rfc3339("2025-02-01T12:00:00+08:00")
            .unwrap()
            .timestamp_millis();
        let member_no = touchpoint_core::Identifier::member_no("MN-5").unwrap();
        db.store
            .write_events(
                &[NewEvent {
                    source: "web".into(),
                    message_id: "m-1".into(),
                    kind: "page".into(),
                    name: Some("Landing".into()),
                    user_id: Some(member_no.value().to_string()),
                    anon_key: None,
                    occurred_at: occurred,
                    received_at: occurred,
                    ip: None,
                    payload: "{}".into(),
                    campaign: Some("cny-live".into()),
                    campaign_source: Some("douyin".into()),
                }],
                &[],
            )
            .await
            .unwrap();

        let spend = db
            .store
            .import_spend(SPEND.as_bytes().to_vec(), None)
            .await
            .unwrap();
        assert_eq!(
            (
                spend.rows,
                spend.inserted,
                spend.updated,
                spend.unchanged,
                spend.rejected
            ),
            (6, 6, 0, 0, 0),
            "{}",
            db.name
        );

        let r = acquisition(&db, &[]).await;
        assert_eq!(r.clv_note, "no model", "{}", db.name);
        assert!(r.clv_model.is_none());
        // tmall, no campaign, January: spend 300.00 + 200.50 = 500.50 (50050);
        // valid members A, B, F = 3 (C has only a tmall buyer id); paying
        // customers A, C = 2 (B's only order was refunded in full, F's first
        // paying order is in February); 50050 / 3 = 16683.33 -> 16683;
        // 50050 / 2 = 25025.
        assert_eq!(
            got(&row(&r, "tmall", "", "2025-01").figures),
            figures(50_050, 3, 2, Some(16_683), Some(25_025)),
            "{}",
            db.name
        );
        // tmall, February: spend 400.00; no new valid member (E was first
        // touched by the douyin campaign); paying F = 1; 40000 / 1.
        assert_eq!(
            got(&row(&r, "tmall", "", "2025-02").figures),
            figures(40_000, 0, 1, None, Some(40_000)),
            "{}",
            db.name
        );
        // douyin, no campaign, January: spend 90.00; valid G = 1; paying G = 1.
        assert_eq!(
            got(&row(&r, "douyin", "", "2025-01").figures),
            figures(9_000, 1, 1, Some(9_000), Some(9_000)),
            "{}",
            db.name
        );
        // douyin, cny-live, February: spend 1000.00 + 500.00 = 150000; valid
        // D (order campaign column, February in Shanghai) and E (tracking
        // campaign) = 2; paying D, E = 2; 150000 / 2 = 75000 each.
        assert_eq!(
            got(&row(&r, "douyin", "cny-live", "2025-02").figures),
            figures(150_000, 2, 2, Some(75_000), Some(75_000)),
            "{}",
            db.name
        );
        assert_eq!(r.rows.len(), 4, "{}: {:#?}", db.name, r.rows);
        let cny = &row(&r, "douyin", "cny-live", "2025-02").figures;
        assert_eq!(
            (cny.impressions, cny.clicks, cny.conversions),
            (750_000, 6_100, 7)
        );
        // Per channel and month: the campaigns together (here one each).
        assert_eq!(r.channels.len(), 4);
        // Total: spend 50050 + 40000 + 9000 + 150000 = 249050; valid A, B, F,
        // G, D, E = 6; paying A, C, F, G, D, E = 6; 249050 / 6 = 41508.33 -> 41508.
        assert_eq!(
            got(&r.total),
            figures(249_050, 6, 6, Some(41_508), Some(41_508)),
            "{}",
            db.name
        );

        // Filters: one channel; a date range (February only).
        let d = acquisition(&db, &[("channel", "douyin")]).await;
        assert_eq!(
            got(&d.total),
            figures(159_000, 3, 3, Some(53_000), Some(53_000))
        );
        let feb = acquisition(&db, &[("from", "2025-02-01"), ("to", "2025-02-28")]).await;
        // 40000 + 150000 = 190000; valid D, E = 2; paying F, D, E = 3;
        // 190000 / 3 = 63333.33 -> 63333.
        assert_eq!(
            got(&feb.total),
            figures(190_000, 2, 3, Some(95_000), Some(63_333))
        );

        // With stored CLV predictions: A 120.00 and D 300.00 (C, E, ... none).
        let a = member_of(&db, "phone", "+8613800000001").await;
        let dm = member_of(&db, "phone", "+8613800000004").await;
        let pred = |member_id: i64, clv: f64| MemberPrediction {
            member_id,
            p_alive: 0.9,
            expected_purchases: 1.0,
            expected_spend: Some(clv),
            clv: Some(clv),
            horizon_days: 365.0,
            computed_at: 1_000,
        };
        db.store
            .store_predictions("bgnbd", &[pred(a, 120.0), pred(dm, 300.0)])
            .await
            .unwrap();
        let r = acquisition(&db, &[]).await;
        assert_eq!(
            r.clv_model.as_ref().map(|m| m.model.as_str()),
            Some("bgnbd")
        );
        let jan = &row(&r, "tmall", "", "2025-01").figures;
        // One of the two paying customers (A) has a prediction: 12000 each;
        // CLV over cost 12000 / 25025.
        assert_eq!(
            (jan.clv_customers, jan.clv_per_paying_customer),
            (1, Some(12_000))
        );
        assert!((jan.clv_over_cost.unwrap() - 12_000.0 / 25_025.0).abs() < 1e-9);
        let cny = &row(&r, "douyin", "cny-live", "2025-02").figures;
        // D: 30000 / 75000 = 0.4.
        assert_eq!(
            (cny.clv_customers, cny.clv_per_paying_customer),
            (1, Some(30_000))
        );
        assert!((cny.clv_over_cost.unwrap() - 0.4).abs() < 1e-9);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn spend_imports_are_idempotent_and_bad_rows_do_not_stop_good_ones() {
    for db in backends().await {
        let first = db
            .store
            .import_spend(SPEND.as_bytes().to_vec(), None)
            .await
            .unwrap();
        assert_eq!(first.inserted, 6);
        let events_after_first = db.store.outbox_len().await.unwrap();
        let again = db
            .store
            .import_spend(SPEND.as_bytes().to_vec(), None)
            .await
            .unwrap();
        assert_eq!(
            (again.inserted, again.updated, again.unchanged),
            (0, 0, 6),
            "{}",
            db.name
        );
        assert_eq!(db.store.outbox_len().await.unwrap(), events_after_first);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM ad_spend").await, 6);

        // A changed figure replaces its row; a bad row is reported with its
        // line, column and accepted form, and the good rows beside it load.
        let text = "\
date,channel,campaign,pricing_model,spend,impressions,clicks,conversions
2025-01-10,tmall,,CPC,310.00,10000,200,2
2025-03-01,tmall,,CPX,10,0,0,0
2025-03-02,tmall,spring,CPA,55.5,,,
";
        let r = db
            .store
            .import_spend(text.as_bytes().to_vec(), None)
            .await
            .unwrap();
        assert_eq!(
            (r.rows, r.inserted, r.updated, r.unchanged, r.rejected),
            (3, 1, 1, 0, 1),
            "{}",
            db.name
        );
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, 3);
        assert_eq!(r.errors[0].column.as_deref(), Some("pricing_model"));
        assert!(
            r.errors[0].message.contains("CPM, CPC, CPA, CPS"),
            "{:?}",
            r.errors
        );
        assert_eq!(
            db.scalar("SELECT spend FROM ad_spend WHERE spend_date = '2025-01-10' AND channel = 'tmall' AND campaign = ''")
                .await,
            31_000
        );
        assert_eq!(
            db.scalar("SELECT spend FROM ad_spend WHERE spend_date = '2025-03-02' AND campaign = 'spring'")
                .await,
            5_550
        );
        // The change and the new row each emitted spend_recorded.
        let mut h = db.store.acquire().await.unwrap();
        let kinds = h
            .conn()
            .fetch("SELECT kind, payload FROM outbox ORDER BY id", &[], |x| {
                Ok((x.text(0)?, x.text(1)?))
            })
            .await
            .unwrap();
        drop(h);
        let spends: Vec<DomainEvent> = kinds
            .iter()
            .filter(|(k, _)| k == "spend_recorded")
            .map(|(_, p)| serde_json::from_str(p).unwrap())
            .collect();
        assert_eq!(spends.len(), 8, "{}", db.name);
        assert!(spends.contains(&DomainEvent::SpendRecorded {
            date: "2025-01-10".into(),
            channel: "tmall".into(),
            campaign: String::new(),
            spend: 31_000,
            previous_spend: Some(30_000),
        }));

        // A file that is not a spend file fails as a whole.
        let e = db
            .store
            .import_spend(b"date,channel,spend\n2025-01-01,tmall,1\n".to_vec(), None)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("missing required columns campaign, pricing_model"),
            "{e}"
        );
        db.cleanup().await;
    }
}
