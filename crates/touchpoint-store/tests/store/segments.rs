//! Profiles, tags, consent and segments on both backends, against
//! expectations computed by hand for a four-person data set.

use chrono::NaiveDate;
use touchpoint_core::ingest::InputFormat;
use touchpoint_core::segments::parse;
use touchpoint_core::{Identifier, MemberId, Phone};
use touchpoint_store::profiles::{Attributes, ConsentChoice, ProfileChange, ProfileSource};
use touchpoint_store::segments::{export_csv, SegmentContext};
use touchpoint_store::{Store, StoreError};

use crate::common::*;

/// P1 buys skincare twice and makeup once on tmall (last 2025-08-01), P2 once
/// on the web (2025-11-20), P3 once on tmall long ago (skincare, 1,000.00),
/// P4 has only a pending order.
const ORDERS: &str = "order_id,ordered_at,channel,status,sku,category,quantity,unit_price,phone,gender,birthday,region\n\
T1,2025-06-01 10:00:00,tmall,paid,SKU-A,skincare,1,300.00,13800000001,female,1990-05-17,浙江省\n\
T2,2025-07-01 10:00:00,tmall,paid,SKU-A,skincare,1,300.00,13800000001,,,\n\
T3,2025-08-01 10:00:00,tmall,paid,SKU-B,makeup,1,100.00,13800000001,,,\n\
W1,2025-11-20 10:00:00,web,paid,SKU-B,makeup,1,50.00,13800000002,male,,\n\
T4,2024-01-10 10:00:00,tmall,paid,SKU-A,skincare,1,1000.00,13800000003,,,\n\
W2,2025-11-25 10:00:00,web,pending,SKU-B,makeup,1,50.00,13800000004,,,\n";

const AS_OF: &str = "2025-12-01";

struct People {
    p: [MemberId; 4],
}

async fn setup(store: &Store) -> People {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", ORDERS);
    let r = import(store, &path, InputFormat::Canonical, "web").await;
    assert_eq!(r.orders.inserted, 6, "{r:?}");
    let mut p = [MemberId::from_i64(0); 4];
    for (i, slot) in p.iter_mut().enumerate() {
        let phone = Phone::parse(&format!("1380000000{}", i + 1), "86").unwrap();
        *slot = store
            .member_by_identifier(&Identifier::phone(&phone))
            .await
            .unwrap()
            .unwrap();
    }
    People { p }
}

fn cx() -> SegmentContext {
    SegmentContext {
        as_of: Some(NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap()),
        ..SegmentContext::new(chrono_tz::Asia::Shanghai)
    }
}

async fn members(store: &Store, expr: &str) -> Vec<MemberId> {
    store
        .segment_members(&parse(expr).unwrap(), &cx())
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn ids(people: &People, which: &[usize]) -> Vec<MemberId> {
    let mut v: Vec<MemberId> = which.iter().map(|i| people.p[*i - 1]).collect();
    v.sort();
    v
}

#[tokio::test]
async fn segments_evaluate_to_the_hand_computed_members() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        let p = |w: &[usize]| ids(&pp, w);
        // Value and behaviour from the analytics model.
        assert_eq!(
            members(s, "last_order_days >= 90").await,
            p(&[1, 3]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "last_order_days < 90d").await,
            p(&[2]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "orders >= 2 and net_spend > 600").await,
            p(&[1]),
            "{}",
            db.name
        );
        assert_eq!(members(s, "aov >= 500").await, p(&[3]), "{}", db.name);
        assert_eq!(members(s, "orders = 0").await, p(&[4]), "{}", db.name);
        assert_eq!(
            members(s, "first_order_days > 365").await,
            p(&[3]),
            "{}",
            db.name
        );
        // Recency scores of 3 buyers: P3 (691 days) 1, P1 (122) 2, P2 (11) 4.
        assert_eq!(members(s, "r = 4").await, p(&[2]), "{}", db.name);
        assert_eq!(members(s, "r in (1, 2)").await, p(&[1, 3]), "{}", db.name);
        // P1: R2 F4 M2 is At Risk; P3: R1 F1 M4 Hibernating; P2: R4 F1 Promising.
        assert_eq!(
            members(s, "rfm_segment in (\"At Risk\", \"Can't Lose Them\")").await,
            p(&[1]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "rfm_segment = \"hibernating\"").await,
            p(&[3]),
            "{}",
            db.name
        );
        // Contribution 1000 (P3), 700 (P1), 50 (P2): A while the share before is under 80%.
        assert_eq!(
            members(s, "abc_class = \"A\"").await,
            p(&[1, 3]),
            "{}",
            db.name
        );
        // Purchases of a product, channels.
        assert_eq!(
            members(s, "bought(category = \"skincare\", within = 180d)").await,
            p(&[1]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "bought(category = \"skincare\")").await,
            p(&[1, 3]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "bought(sku = \"SKU-B\", within = 30d)").await,
            p(&[2]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "channel(\"tmall\")").await,
            p(&[1, 3]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "not channel(\"tmall\") and orders = 0").await,
            p(&[4]),
            "{}",
            db.name
        );
        // Profile attributes from the import.
        assert_eq!(
            members(
                s,
                "gender = \"female\" and age = 35 and birthday_month = 5 and region = \"浙江省\""
            )
            .await,
            p(&[1]),
            "{}",
            db.name
        );

        // Tags, points, predictions: then the example picks P1 only.
        let mut tag = ProfileChange::new(ProfileSource::Api);
        tag.add_tags.push("VIP".into());
        for m in [pp.p[0], pp.p[1]] {
            s.update_profile(m, &tag).await.unwrap();
        }
        assert_eq!(
            members(s, "has_tag(\"vip\")").await,
            p(&[1, 2]),
            "{}",
            db.name
        );
        let mut h = s.acquire().await.unwrap();
        for (m, avail, tier) in [(pp.p[0], 1500, "Gold"), (pp.p[2], 5000, "Silver")] {
            h.conn()
                .exec(
                    "INSERT INTO points_accounts (member_id, available, tier, updated_at) VALUES ($1, $2, $3, 0)",
                    &[m.get().into(), (avail as i64).into(), tier.into()],
                )
                .await
                .unwrap();
        }
        for (m, pa, clv, horizon) in [(pp.p[0], 0.3, 300.0, 182.5), (pp.p[2], 0.2, 100.0, 365.0)] {
            h.conn()
                .exec(
                    "INSERT INTO member_predictions (member_id, model, p_alive, expected_purchases, expected_spend, clv, horizon, computed_at) \
                     VALUES ($1, 'bgnbd', $2, 1.0, 10.0, $3, $4, 0)",
                    &[m.get().into(), pa.into(), clv.into(), horizon.into()],
                )
                .await
                .unwrap();
        }
        drop(h);
        // P1's 300 over half a year is 600 over 12 months.
        assert_eq!(
            members(s, "clv_12m > 500 and p_alive < 0.5").await,
            p(&[1]),
            "{}",
            db.name
        );
        assert_eq!(
            members(s, "points_available > 1000").await,
            p(&[1, 3]),
            "{}",
            db.name
        );
        assert_eq!(members(s, "tier = \"Gold\"").await, p(&[1]), "{}", db.name);
        let example = "rfm_segment in (\"At Risk\", \"Can't Lose Them\") and clv_12m > 500 and p_alive < 0.5 and last_order_days >= 90 and has_tag(\"vip\") and bought(category = \"skincare\", within = 180d) and channel(\"tmall\") and points_available > 1000 and tier = \"Gold\" and abc_class = \"A\"";
        assert_eq!(members(s, example).await, p(&[1]), "{}", db.name);
        // Without the tag P1 drops out.
        let mut untag = ProfileChange::new(ProfileSource::Cli);
        untag.remove_tags.push("vip".into());
        s.update_profile(pp.p[0], &untag).await.unwrap();
        assert!(members(s, example).await.is_empty(), "{}", db.name);

        // The export carries every field, money in currency units.
        let ev = s
            .evaluate_segment(
                &parse("channel(\"tmall\")").unwrap(),
                &SegmentContext {
                    all_fields: true,
                    ..cx()
                },
            )
            .await
            .unwrap();
        let mut csv = Vec::new();
        export_csv(&ev.members, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(
            lines[0].starts_with("member_id,rfm_segment,r,f,m,clv_12m"),
            "{csv}"
        );
        let p1 = format!("{},At Risk,2,4,2,600.00,0.3000,122,183,3,700.00,233.33,A,Gold,1500,female,浙江省,,,1990-05-17", pp.p[0]);
        assert!(lines.contains(&p1.as_str()), "{csv}\nwanted {p1}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn consent_is_opt_in_kept_as_history_and_the_latest_choice_wins() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        let m = pp.p[1];
        assert!(
            !s.may_send_marketing(m, "email", "newsletter")
                .await
                .unwrap(),
            "{}",
            db.name
        );
        let choice = |granted, topic: Option<&str>, at| {
            let mut c = ProfileChange::new(ProfileSource::Api);
            c.at = Some(at);
            c.consent.push(ConsentChoice {
                channel: "email".into(),
                topic: topic.map(str::to_string),
                granted,
            });
            c
        };
        s.update_profile(m, &choice(true, None, 1_000))
            .await
            .unwrap();
        assert!(s
            .may_send_marketing(m, "email", "newsletter")
            .await
            .unwrap());
        assert!(s
            .may_send_marketing(m, "email", "promotions")
            .await
            .unwrap());
        assert!(!s.may_send_marketing(m, "sms", "promotions").await.unwrap());
        s.update_profile(m, &choice(false, Some("promotions"), 3_000))
            .await
            .unwrap();
        // A choice made earlier that arrives later is history, not current.
        s.update_profile(m, &choice(true, Some("promotions"), 2_000))
            .await
            .unwrap();
        assert!(
            !s.may_send_marketing(m, "email", "promotions")
                .await
                .unwrap(),
            "{}",
            db.name
        );
        assert!(s
            .may_send_marketing(m, "email", "newsletter")
            .await
            .unwrap());
        let hist = s.consent_history(m).await.unwrap();
        assert_eq!(hist.len(), 4, "{hist:?}");
        assert_eq!(
            hist.iter()
                .map(|h| (h.topic.as_str(), h.granted, h.at))
                .collect::<Vec<_>>(),
            [
                ("newsletter", true, 1_000),
                ("promotions", true, 1_000),
                ("promotions", false, 3_000),
                ("promotions", true, 2_000)
            ]
        );
        assert!(hist.iter().all(|h| h.source == "api"));
        // An idempotency key makes a retried write happen once.
        let mut keyed = choice(false, Some("newsletter"), 4_000);
        keyed.idempotency_key = Some("k1".into());
        let first = s.update_profile(m, &keyed).await.unwrap();
        let again = s.update_profile(m, &keyed).await.unwrap();
        assert_eq!((first.consent.len(), again.consent.len()), (1, 0));
        assert_eq!(s.consent_history(m).await.unwrap().len(), 5);
        // Segments read the current consent.
        assert!(members(
            s,
            "consent(email, newsletter) or consent(email, promotions)"
        )
        .await
        .is_empty());
        s.update_profile(pp.p[3], &choice(true, Some("newsletter"), 1))
            .await
            .unwrap();
        assert_eq!(
            members(s, "consent(email, newsletter)").await,
            vec![pp.p[3]]
        );
        // Bad input: one clear error, nothing written.
        let mut bad = ProfileChange::new(ProfileSource::Api);
        bad.consent.push(ConsentChoice {
            channel: "fax".into(),
            topic: None,
            granted: true,
        });
        bad.add_tags.push("ok".into());
        let e = s.update_profile(m, &bad).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(msg) if msg.contains("email, sms, wechat, webhook")),
            "{e}"
        );
        assert!(s.profile(m).await.unwrap().tags.is_empty());
        // Every change emitted one profile_changed event.
        let events = db
            .scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'profile_changed'")
            .await;
        assert_eq!(events, 5, "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn attributes_and_the_unsubscribe_token() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        let m = pp.p[0];
        let mut c = ProfileChange::new(ProfileSource::Identify);
        c.attributes = Attributes {
            city: Some("杭州".into()),
            language: Some("zh-CN".into()),
            gender: Some("female".into()),
            ..Attributes::default()
        };
        let out = s.update_profile(m, &c).await.unwrap();
        // gender was already female (from the import): only city and language changed.
        assert_eq!(out.attributes, ["city", "language"], "{}", db.name);
        assert!(s.update_profile(m, &c).await.unwrap().is_empty());
        assert_eq!(
            members(s, "city = \"杭州\" and language = \"zh-cn\"").await,
            vec![m]
        );

        let token = s.unsubscribe_token(m).await.unwrap();
        assert_eq!(s.verify_unsubscribe_token(&token).await.unwrap(), Some(m));
        // Same token every time; another member's differs; a changed one is refused.
        assert_eq!(s.unsubscribe_token(m).await.unwrap(), token);
        let other = s.unsubscribe_token(pp.p[1]).await.unwrap();
        assert_ne!(other, token);
        let forged = format!("{}-{}", pp.p[1].get(), token.split_once('-').unwrap().1);
        assert_eq!(s.verify_unsubscribe_token(&forged).await.unwrap(), None);
        assert_eq!(s.verify_unsubscribe_token("garbage").await.unwrap(), None);
        let (list, post) = s
            .list_unsubscribe_headers(m, "https://crm.example.com/")
            .await
            .unwrap();
        assert_eq!(
            list,
            format!("<https://crm.example.com/unsubscribe/{token}>")
        );
        assert_eq!(post, "List-Unsubscribe=One-Click");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn saved_segments_keep_a_daily_size_and_rule_tags_follow_their_members() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        s.create_segment("lapsed", "last_order_days >= 90", true, false)
            .await
            .unwrap();
        s.create_segment("buyers", "orders >= 1", false, false)
            .await
            .unwrap();
        // Same definition again: nothing changes; another one is refused.
        s.create_segment("buyers", "orders >= 1", false, false)
            .await
            .unwrap();
        let e = s
            .create_segment("buyers", "orders >= 2", false, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        let e = s
            .create_segment("bad name!", "orders >= 2", false, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("segment name"), "{e}");
        let e = s
            .create_segment("x", "orders >>= 2", false, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("1:9"), "{e}");

        let day1 = SegmentContext {
            as_of: NaiveDate::from_ymd_opt(2025, 12, 1),
            ..cx()
        };
        let r = s.refresh_segments(&day1).await.unwrap();
        let lapsed = r.iter().find(|x| x.name == "lapsed").unwrap();
        assert_eq!(
            (lapsed.members, lapsed.tagged, lapsed.untagged),
            (2, 2, 0),
            "{}",
            db.name
        );
        assert_eq!(members(s, "has_tag(\"lapsed\")").await, ids(&pp, &[1, 3]));
        let profile = s.profile(pp.p[0]).await.unwrap();
        assert_eq!(profile.tags, [("lapsed".to_string(), "rule".to_string())]);
        // Again the same day: the size is replaced, no tag changes.
        let r = s.refresh_segments(&day1).await.unwrap();
        let lapsed = r.iter().find(|x| x.name == "lapsed").unwrap();
        assert_eq!((lapsed.tagged, lapsed.untagged), (0, 0));
        // Months later P2 has lapsed too; on 2025-11-25 nobody but P3 had.
        let later = SegmentContext {
            as_of: NaiveDate::from_ymd_opt(2026, 3, 1),
            ..cx()
        };
        let r = s.refresh_segments(&later).await.unwrap();
        let lapsed = r.iter().find(|x| x.name == "lapsed").unwrap();
        assert_eq!((lapsed.members, lapsed.tagged, lapsed.untagged), (3, 1, 0));
        let early = SegmentContext {
            as_of: NaiveDate::from_ymd_opt(2025, 8, 15),
            ..cx()
        };
        let r = s.refresh_segments(&early).await.unwrap();
        let lapsed = r.iter().find(|x| x.name == "lapsed").unwrap();
        assert_eq!(
            (lapsed.members, lapsed.tagged, lapsed.untagged),
            (1, 0, 2),
            "{}",
            db.name
        );
        assert_eq!(members(s, "has_tag(\"lapsed\")").await, ids(&pp, &[3]));

        let saved = s.segment("lapsed").await.unwrap().unwrap();
        assert_eq!(
            saved.sizes,
            [
                ("2025-08-15".to_string(), 1),
                ("2025-12-01".to_string(), 2),
                ("2026-03-01".to_string(), 3)
            ]
        );
        let list = s.list_segments().await.unwrap();
        assert_eq!(
            list.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            ["buyers", "lapsed"]
        );
        assert_eq!(list[1].sizes, [("2026-03-01".to_string(), 3)]);
        // A hand tag of the same name is separate from the rule's.
        let mut hand = ProfileChange::new(ProfileSource::Cli);
        hand.add_tags.push("lapsed".into());
        s.update_profile(pp.p[1], &hand).await.unwrap();
        s.refresh_segments(&early).await.unwrap();
        assert_eq!(members(s, "has_tag(\"lapsed\")").await, ids(&pp, &[2, 3]));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_tag_csv_applies_good_rows_and_lists_bad_ones_with_line_column_and_form() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        let (a, b) = (pp.p[0], pp.p[1]);
        let csv = format!(
            "member,tag,action\n{a},VIP,\n{b},vip,add\n{b},no/slash,add\n99999,vip,add\n{a},vip,toggle\n{b},vip,remove\n"
        );
        let r = s.import_tags(csv.clone().into_bytes(), None).await.unwrap();
        assert_eq!(
            (r.rows, r.added, r.removed, r.unchanged, r.rejected),
            (6, 2, 1, 0, 3),
            "{} {r:?}",
            db.name
        );
        let lines: Vec<(u64, Option<&str>)> = r
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [(4, Some("tag")), (5, Some("member")), (6, Some("action"))],
            "{}",
            db.name
        );
        assert_eq!(r.errors[1].value.as_deref(), Some("M-99999"));
        assert!(r.errors[0].message.contains("letters"), "{}", r.errors[0]);
        assert_eq!(
            members(s, "has_tag(\"vip\")").await,
            ids(&pp, &[1]),
            "{}",
            db.name
        );
        // Imported again: the same result, nothing more changes.
        let again = s.import_tags(csv.into_bytes(), None).await.unwrap();
        assert_eq!(
            (again.added, again.removed, again.unchanged),
            (1, 1, 1),
            "{} {again:?}",
            db.name
        );
        assert_eq!(members(s, "has_tag(\"vip\")").await, ids(&pp, &[1]));
        // A file without the tag column fails before anything is written.
        let e = s
            .import_tags(b"member,label\n1,x\n".to_vec(), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("tag"), "{e}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn segments_keep_a_description_refuse_a_taken_name_and_refresh_one_by_name() {
    use touchpoint_store::segments::NewSegment;
    for db in backends().await {
        let s = &db.store;
        setup(s).await;
        let new = NewSegment {
            name: "buyers".into(),
            expression: "orders >= 1".into(),
            description: Some("anyone who bought".into()),
            ..NewSegment::default()
        };
        let saved = s.save_segment(&new).await.unwrap();
        assert_eq!(saved.description.as_deref(), Some("anyone who bought"));
        assert_eq!(
            s.save_segment(&new).await.unwrap(),
            saved,
            "same definition: no change"
        );
        let other = NewSegment {
            expression: "orders >= 2".into(),
            ..new.clone()
        };
        assert!(matches!(
            s.save_segment(&other).await,
            Err(StoreError::SegmentExists(n)) if n == "buyers"
        ));
        let replaced = s
            .save_segment(&NewSegment {
                replace: true,
                ..other
            })
            .await
            .unwrap();
        assert_eq!(replaced.expression, "orders >= 2");
        s.create_segment("all", "orders >= 0", false, false)
            .await
            .unwrap();
        let r = s.refresh_segment("buyers", &cx()).await.unwrap().unwrap();
        assert_eq!((r.name.as_str(), r.members), ("buyers", 1), "{}", db.name);
        assert!(s.segment("all").await.unwrap().unwrap().sizes.is_empty());
        assert!(s.refresh_segment("nope", &cx()).await.unwrap().is_none());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn identify_traits_fill_the_profile_in_the_identity_unit_of_work() {
    use touchpoint_core::identity::{IdentityConfig, RecordRef};
    use touchpoint_store::import::{Identify, Writer};
    for db in backends().await {
        let s = &db.store;
        let mut w = Writer::new(IdentityConfig::default());
        let mut change = ProfileChange::new(ProfileSource::Identify);
        change.attributes = Attributes {
            city: Some("杭州".into()),
            birthday: NaiveDate::from_ymd_opt(1990, 5, 17),
            ..Attributes::default()
        };
        let record = |id: &str, no: &str| Identify {
            record: RecordRef {
                channel: "web".into(),
                record_id: id.into(),
            },
            identifiers: vec![Identifier::member_no(no).unwrap()],
            profile: Some(change.clone()),
            referral: None,
        };
        // Rolled back: neither the member nor its profile is kept.
        let mut uow = s.unit_of_work().await.unwrap();
        let m = w
            .identify_in(&mut uow, &[record("e0", "VIP-0")])
            .await
            .unwrap();
        assert!(m[0].is_some());
        uow.rollback().await.unwrap();
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM members").await,
            0,
            "{}",
            db.name
        );
        // Committed: both.
        let mut uow = s.unit_of_work().await.unwrap();
        let m = w
            .identify_in(&mut uow, &[record("e1", "VIP-1")])
            .await
            .unwrap();
        uow.commit().await.unwrap();
        let p = s.profile(m[0].unwrap()).await.unwrap();
        assert_eq!(p.attributes.city.as_deref(), Some("杭州"), "{}", db.name);
        assert_eq!(p.attributes.birthday, NaiveDate::from_ymd_opt(1990, 5, 17));
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'profile_changed'")
                .await,
            1
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_unsubscribe_link_withdraws_email_once_and_a_tampered_token_does_nothing() {
    for db in backends().await {
        let s = &db.store;
        let pp = setup(s).await;
        let m = pp.p[0];
        let mut grant = ProfileChange::new(ProfileSource::Cli);
        grant.consent.push(ConsentChoice {
            channel: "email".into(),
            topic: None,
            granted: true,
        });
        s.update_profile(m, &grant).await.unwrap();
        let token = s.unsubscribe_token(m).await.unwrap();
        let (head, mac) = token.split_once('-').unwrap();
        let forged = format!("{}-{mac}", pp.p[1].get());
        assert!(s.unsubscribe(&forged, "one-click").await.unwrap().is_none());
        let cut = &token[..token.len() - 2];
        assert!(s.unsubscribe(cut, "one-click").await.unwrap().is_none());
        assert_eq!(head, m.get().to_string());
        let first = s.unsubscribe(&token, "one-click").await.unwrap().unwrap();
        assert_eq!(first.consent.len(), 2, "{}", db.name);
        assert!(!s
            .may_send_marketing(m, "email", "promotions")
            .await
            .unwrap());
        let second = s.unsubscribe(&token, "page").await.unwrap().unwrap();
        assert!(second.is_empty(), "{second:?}");
        assert_eq!(s.consent_history(m).await.unwrap().len(), 4, "{}", db.name);
        // Granting again and unsubscribing again records the new withdrawal.
        s.update_profile(m, &grant).await.unwrap();
        let third = s.unsubscribe(&token, "page").await.unwrap().unwrap();
        assert_eq!(third.consent.len(), 2);
        db.cleanup().await;
    }
}
