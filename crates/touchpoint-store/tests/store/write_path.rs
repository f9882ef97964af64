//! The write path: units of work, the outbox and the analytics model, on
//! every configured backend.

use chrono::{TimeZone, Utc};
use rand::{Rng, SeedableRng};
use touchpoint_core::analytics::date_to_day;
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{Customer, OrderLine, OrderRecord};
use touchpoint_core::{ChannelName, Currency, Identifier, Money, OrderStatus, Phone};
use touchpoint_store::analytics::Scope;
use touchpoint_store::import::Writer;
use touchpoint_store::Store;

use crate::common::backends;

const SHANGHAI_MS: i64 = 8 * 3_600_000;

fn order(channel: &str, id: &str, phone: &str, day: i64, price: i64, brand: &str) -> OrderRecord {
    OrderRecord {
        channel: ChannelName::parse(channel).unwrap(),
        order_id: id.into(),
        ordered_at: Utc
            .timestamp_millis_opt(1_700_000_000_000 + day * 86_400_000)
            .unwrap(),
        paid_at: None,
        status: OrderStatus::Paid,
        currency: Currency::parse("CNY").unwrap(),
        order_discount: Money::from_minor(price / 10),
        refunded: Money::ZERO,
        customer: Customer {
            identifiers: vec![Identifier::phone(&Phone::parse(phone, "86").unwrap())],
            ..Customer::default()
        },
        lines: vec![
            OrderLine {
                sku: format!("SKU-{brand}"),
                product_name: None,
                brand: Some(brand.into()),
                category: None,
                quantity: 2,
                unit_price: Money::from_minor(price),
                unit_cost: Some(Money::from_minor(price / 3)),
                discount: Money::from_minor(7),
            },
            OrderLine {
                sku: "SKU-PLAIN".into(),
                product_name: None,
                brand: None,
                category: None,
                quantity: 1,
                unit_price: Money::from_minor(999),
                unit_cost: None,
                discount: Money::ZERO,
            },
        ],
        campaign: None,
        source_line: 0,
        coupon_codes: Vec::new(),
        referral_code: None,
    }
}

/// Every event in the outbox, read through a cursor. On PostgreSQL an event
/// becomes readable once every older transaction of the server has ended
/// (tests of other databases run at the same time), so this waits for the
/// count the table holds.
async fn all_events(store: &Store) -> Vec<DomainEvent> {
    let total = store.outbox_len().await.unwrap() as usize;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while out.len() < total {
        let batch = store.outbox_poll("test-reader", 100).await.unwrap();
        match batch.last().cloned() {
            Some(last) => {
                out.extend(batch.into_iter().map(|e| e.event));
                store.outbox_ack("test-reader", &last).await.unwrap();
            }
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "outbox events never became readable"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    out
}

#[tokio::test]
async fn a_rolled_back_unit_of_work_leaves_no_event_and_no_row() {
    for db in backends().await {
        let mut w = Writer::new(IdentityConfig::default());
        let mut uow = db.store.unit_of_work().await.unwrap();
        let r = w
            .write_orders_in(&mut uow, &[order("web", "R1", "13800000001", 1, 1000, "a")])
            .await
            .unwrap();
        assert_eq!(r.orders.inserted, 1, "{}", db.name);
        assert!(!uow.events().is_empty(), "{}", db.name);
        uow.rollback().await.unwrap();
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM outbox").await,
            0,
            "{}",
            db.name
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM orders").await,
            0,
            "{}",
            db.name
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM order_facts").await,
            0,
            "{}",
            db.name
        );
        // The writer's identity index ran ahead of the rolled-back transaction:
        // the next write must not believe member 1 exists.
        let r = w
            .write_orders(
                &db.store,
                &[order("web", "R2", "13800000002", 1, 1000, "a")],
            )
            .await
            .unwrap();
        assert_eq!(r.orders.inserted, 1);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM members").await,
            1,
            "{}",
            db.name
        );
        let kinds: Vec<&str> = all_events(&db.store)
            .await
            .iter()
            .map(|e| e.kind())
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        assert_eq!(kinds, ["member_created", "order_placed"], "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_caller_extends_the_unit_of_work_and_everything_commits_together() {
    for db in backends().await {
        let mut w = Writer::new(IdentityConfig::default());
        let mut uow = db.store.unit_of_work().await.unwrap();
        w.write_orders_in(&mut uow, &[order("web", "X1", "13800000001", 1, 1000, "a")])
            .await
            .unwrap();
        // A consequence of the caller's own, in the same transaction.
        uow.conn()
            .exec(
                "INSERT INTO outbox_cursors (consumer, tx, position, updated_at) VALUES ('mine', 0, 0, 0)",
                &[],
            )
            .await
            .unwrap();
        uow.emit(DomainEvent::IdentifierShared {
            identifier: "phone +8613800000009".into(),
        });
        let committed = uow.commit().await.unwrap();
        assert_eq!(committed.event_ids.len(), 3, "{}", db.name);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM outbox_cursors WHERE consumer = 'mine'")
                .await,
            1
        );
        let events = all_events(&db.store).await;
        assert_eq!(events.len(), 3, "{}", db.name);
        assert!(matches!(
            &events[1],
            DomainEvent::OrderPlaced { order_id, net_amount, .. } if order_id == "X1" && *net_amount == 2 * 1000 - 7 + 999 - 100
        ));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn outbox_consumers_read_every_event_once_per_cursor_and_again_after_a_crash() {
    for db in backends().await {
        let store = db.store.clone();
        // Writers in parallel: on PostgreSQL their transactions interleave and
        // commit out of id order; the cursor must still see every event.
        let mut tasks = Vec::new();
        for t in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    let mut uow = store.unit_of_work().await.unwrap();
                    uow.emit(DomainEvent::IdentifierShared {
                        identifier: format!("t{t} e{i}"),
                    });
                    if i % 3 == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                    uow.commit().await.unwrap();
                }
            }));
        }
        let mut seen = Vec::new();
        let mut done = false;
        while !done {
            done = tasks.iter().all(|t| t.is_finished());
            let batch = store.outbox_poll("reader", 7).await.unwrap();
            if let Some(last) = batch.last().cloned() {
                seen.extend(batch.into_iter().map(|e| e.id));
                store.outbox_ack("reader", &last).await.unwrap();
                done = false;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        seen.extend(all_events_ids(&store, "reader").await);
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "{}: an event read twice", db.name);
        assert_eq!(seen.len(), 120, "{}: every event read", db.name);

        // At least once: a consumer that polls and dies before acknowledging
        // gets the same events again.
        let first = store.outbox_poll("crashy", 5).await.unwrap();
        let again = store.outbox_poll("crashy", 5).await.unwrap();
        assert_eq!(first, again, "{}", db.name);
        store.outbox_ack("crashy", &first[4]).await.unwrap();
        // Acknowledging an older event never moves the cursor back.
        store.outbox_ack("crashy", &first[0]).await.unwrap();
        let next = store.outbox_poll("crashy", 1).await.unwrap();
        assert_eq!(
            next[0].id,
            again_after(&store, first[4].id).await,
            "{}",
            db.name
        );
        db.cleanup().await;
    }
}

/// The ids of every event not yet read by `consumer`, waiting for them to be
/// readable (see [`all_events`]).
async fn all_events_ids(store: &Store, consumer: &str) -> Vec<i64> {
    let read_before = {
        let mut h = store.acquire().await.unwrap();
        h.conn()
            .fetch_opt(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox o JOIN outbox_cursors c ON c.consumer = $1 \
                 WHERE (o.tx < c.tx) OR (o.tx = c.tx AND o.id <= c.position)",
                &[consumer.into()],
                |r| r.i64(0),
            )
            .await
            .unwrap()
            .unwrap_or(0) as usize
    };
    let total = store.outbox_len().await.unwrap() as usize;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while read_before + out.len() < total {
        let batch = store.outbox_poll(consumer, 100).await.unwrap();
        match batch.last().cloned() {
            Some(last) => {
                out.extend(batch.iter().map(|e| e.id));
                store.outbox_ack(consumer, &last).await.unwrap();
            }
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "outbox events never became readable"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    out
}

/// The id of the event a fresh reader gets right after `id`.
async fn again_after(store: &Store, id: i64) -> i64 {
    let all = all_events_ids(store, &format!("fresh-{id}")).await;
    let i = all.iter().position(|x| *x == id).unwrap();
    all[i + 1]
}

/// Random orders, re-sent changes, refunds, status changes, merges through a
/// shared identifier, products gaining a cost or a brand later: the model
/// kept by the write path equals a rebuild from the orders and the SQL
/// aggregation, for every scope.
#[tokio::test]
async fn incremental_model_equals_rebuild_and_sql_on_random_data() {
    for db in backends().await {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut w = Writer::new(IdentityConfig::default());
        let channels = ["tmall", "jd", "web", "pos"];
        let brands = ["a", "b", "c"];
        let mut written: Vec<OrderRecord> = Vec::new();
        for batch in 0..12 {
            let mut orders = Vec::new();
            for i in 0..40 {
                let n = batch * 40 + i;
                let roll: f64 = rng.gen();
                if roll < 0.2 && !written.is_empty() {
                    // Change an earlier order: refund part, cancel, or re-send.
                    let mut o = written[rng.gen_range(0..written.len())].clone();
                    match rng.gen_range(0..3) {
                        0 => {
                            o.refunded = Money::from_minor(o.gross_amount().minor() / 3);
                            o.status = OrderStatus::PartiallyRefunded;
                        }
                        1 => o.status = OrderStatus::Cancelled,
                        _ => o.lines[0].quantity += 1,
                    }
                    orders.push(o);
                    continue;
                }
                let person = rng.gen_range(0..120);
                let mut o = order(
                    channels[rng.gen_range(0..channels.len())],
                    &format!("O{n}"),
                    &format!("1380000{person:04}"),
                    rng.gen_range(0..400),
                    rng.gen_range(100..20_000),
                    brands[rng.gen_range(0..brands.len())],
                );
                if rng.gen_bool(0.15) {
                    // A second identifier joins two people's records.
                    let other = rng.gen_range(0..120);
                    o.customer
                        .identifiers
                        .push(Identifier::member_no(&format!("VIP{}", other % 40)).unwrap());
                }
                if rng.gen_bool(0.1) {
                    o.lines[1].unit_cost = Some(Money::from_minor(400));
                    o.lines[1].brand = Some("late".into());
                }
                if rng.gen_bool(0.1) {
                    o.status = OrderStatus::Pending;
                }
                orders.push(o.clone());
                written.push(o);
            }
            w.write_orders(&db.store, &orders).await.unwrap();
            if batch == 5 {
                // A snapshot in the middle: later writes are applied on top of it.
                db.store.compact_facts().await.unwrap();
            }
        }
        let st = db.store.analytics_state().await.unwrap();
        assert!(
            st.snapshot_seq >= 0 && st.snapshot_seq < st.fact_seq,
            "{st:?}"
        );
        let day = |y, m, d| date_to_day(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let scopes = [
            Scope::default(),
            Scope {
                channel: Some("jd".into()),
                ..Scope::default()
            },
            Scope {
                brand: Some("b".into()),
                ..Scope::default()
            },
            Scope {
                brand: Some("late".into()),
                channel: Some("pos".into()),
                ..Scope::default()
            },
            Scope {
                since_day: Some(day(2024, 3, 1)),
                as_of_day: Some(day(2024, 9, 30)),
                ..Scope::default()
            },
            Scope {
                from_day: Some(day(2023, 12, 1)),
                to_day: Some(day(2024, 2, 29)),
                channel: Some("tmall".into()),
                ..Scope::default()
            },
        ]
        .map(|s| Scope {
            utc_offset_ms: SHANGHAI_MS,
            ..s
        });
        let mut incremental = Vec::new();
        for s in &scopes {
            let d = db.store.member_dataset(s).await.unwrap();
            assert_eq!(
                d,
                db.store.member_dataset_sql(s).await.unwrap(),
                "{}: model and SQL differ for {s:?}",
                db.name
            );
            incremental.push(d);
            // The product report's inputs: computed once, then read from the
            // cache, equal to the SQL either way.
            let sql = db.store.product_data_sql(s).await.unwrap();
            assert_eq!(db.store.product_data(s).await.unwrap(), sql, "{}", db.name);
            assert_eq!(db.store.product_data(s).await.unwrap(), sql, "{}", db.name);
        }
        // A new order changes the cached product data.
        let before = db.store.product_data(&scopes[0]).await.unwrap();
        w.write_orders(
            &db.store,
            &[order("web", "NEW-1", "13800009999", 500, 50_000, "a")],
        )
        .await
        .unwrap();
        let after = db.store.product_data(&scopes[0]).await.unwrap();
        assert_ne!(before, after, "{}", db.name);
        assert_eq!(after, db.store.product_data_sql(&scopes[0]).await.unwrap());
        let mut incremental = Vec::new();
        let mut products = Vec::new();
        for s in &scopes {
            incremental.push(db.store.member_dataset(s).await.unwrap());
            products.push(db.store.product_data(s).await.unwrap());
        }
        let acquisition = db.store.acquisition_data().await.unwrap().members;
        assert!(
            incremental[0].members.len() > 30,
            "{}",
            incremental[0].members.len()
        );
        assert!(incremental[0].members_without_purchases > 0);
        db.store.rebuild_facts().await.unwrap();
        for (s, d) in scopes.iter().zip(&incremental) {
            assert_eq!(
                &db.store.member_dataset(s).await.unwrap(),
                d,
                "{}: rebuild differs for {s:?}",
                db.name
            );
        }
        // The product values and first orders kept in the facts, too.
        for (s, p) in scopes.iter().zip(&products) {
            assert_eq!(&db.store.product_data(s).await.unwrap(), p, "{}", db.name);
            assert_eq!(
                &db.store.product_data_sql(s).await.unwrap(),
                p,
                "{}",
                db.name
            );
        }
        assert_eq!(
            db.store.acquisition_data().await.unwrap().members,
            acquisition,
            "{}: first orders after a rebuild",
            db.name
        );
        // A new person's order is seen by the acquisition data kept in memory
        // (a new identity version), an existing member's order by its facts.
        w.write_orders(
            &db.store,
            &[order("web", "NEW-2", "13800009998", 600, 20_000, "a")],
        )
        .await
        .unwrap();
        let after = db.store.acquisition_data().await.unwrap().members;
        assert_eq!(after.len(), acquisition.len() + 1, "{}", db.name);
        let new = after
            .iter()
            .find(|m| !acquisition.iter().any(|a| a.member_id == m.member_id))
            .unwrap();
        assert!(new.valid && new.first_paying_at.is_some(), "{new:?}");
        assert_eq!(new.touch.channel, "web");
        db.cleanup().await;
    }
}

/// Regression: an `Order Completed` re-sent under a new messageId after
/// `Order Refunded` overwrote the refund. Refunds only grow in the write path.
#[tokio::test]
async fn order_resent_as_paid_after_a_refund_keeps_the_refund() {
    for db in backends().await {
        let mut w = Writer::new(IdentityConfig::default());
        let o = order("web", "F1", "13800000001", 1, 1000, "a");
        w.write_orders(&db.store, std::slice::from_ref(&o))
            .await
            .unwrap();
        let mut refunded = o.clone();
        refunded.refunded = Money::from_minor(500);
        refunded.status = OrderStatus::PartiallyRefunded;
        let r = w.write_orders(&db.store, &[refunded]).await.unwrap();
        assert_eq!(r.orders.updated, 1);
        // The same paid order again: nothing changes.
        let r = w
            .write_orders(&db.store, std::slice::from_ref(&o))
            .await
            .unwrap();
        assert_eq!(r.orders.unchanged, 1, "{}", db.name);
        let stored = db.store.order_record("web", "F1").await.unwrap().unwrap();
        assert_eq!(stored.refunded, Money::from_minor(500), "{}", db.name);
        assert_eq!(stored.status, OrderStatus::PartiallyRefunded, "{}", db.name);
        let kinds: Vec<&str> = all_events(&db.store)
            .await
            .iter()
            .map(|e| e.kind())
            .collect();
        assert_eq!(
            kinds,
            ["member_created", "order_placed", "order_refunded"],
            "{}",
            db.name
        );
        db.cleanup().await;
    }
}

/// The analytics model kept in memory by a store follows every change:
/// writes through the same store (applied on top of what it holds, not
/// reloaded), writes through another connection to the same database (as
/// the CLI importing while `touchpoint serve` runs), and a rebuild; a
/// report computed before and kept in memory changes with the data.
#[tokio::test]
async fn the_model_in_memory_follows_writes_from_any_connection_and_rebuilds() {
    use touchpoint_store::reports::{Report, ReportRequest};
    for db in backends().await {
        let other = Store::connect(&db.url).await.unwrap();
        let mut w = Writer::new(IdentityConfig::default());
        let batch = |from: usize, n: usize| -> Vec<OrderRecord> {
            (from..from + n)
                .map(|i| {
                    order(
                        ["tmall", "jd", "web"][i % 3],
                        &format!("O{i}"),
                        &format!("1390000{:04}", i % 37),
                        (i % 300) as i64,
                        // One price per product: its cost stays the same
                        // (a change of cost would rewrite its orders' facts).
                        [1_000, 2_500][i % 2],
                        ["a", "b"][i % 2],
                    )
                })
                .collect()
        };
        let scope = Scope {
            utc_offset_ms: SHANGHAI_MS,
            ..Scope::default()
        };
        let tz = chrono_tz::Asia::Shanghai;
        let rfm = ReportRequest::parse("rfm", [], tz).unwrap();
        let buyers = |r: &Report| match r {
            Report::Rfm(r) => r.members,
            other => panic!("not RFM: {other:?}"),
        };
        w.write_orders(&db.store, &batch(0, 60)).await.unwrap();
        let (facts, first) = db.store.order_facts().await.unwrap();
        assert_eq!(facts.facts.len(), 60, "{}", db.name);
        let (again, load) = db.store.order_facts().await.unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&facts, &again),
            "{}: unchanged data is not loaded again",
            db.name
        );
        assert_eq!(load.seq, first.seq);
        let before = db.store.report(&rfm).await.unwrap();
        assert_eq!(buyers(&before), 37, "{}", db.name);

        // This store writes: the 10 new facts are applied on top.
        w.write_orders(&db.store, &batch(60, 10)).await.unwrap();
        let (_, load) = db.store.order_facts().await.unwrap();
        assert_eq!(
            (load.snapshot_rows, load.delta_rows),
            (60, 10),
            "{}",
            db.name
        );
        assert_eq!(
            db.store.member_dataset(&scope).await.unwrap(),
            db.store.member_dataset_sql(&scope).await.unwrap(),
            "{}",
            db.name
        );

        // Another connection writes new members and changes an order.
        let mut w2 = Writer::new(IdentityConfig::default());
        let mut more: Vec<OrderRecord> = (0..5)
            .map(|i| {
                order(
                    "pos",
                    &format!("P{i}"),
                    &format!("1370000{i:04}"),
                    310,
                    1_000,
                    "a",
                )
            })
            .collect();
        let mut refunded = batch(0, 1).remove(0);
        refunded.status = OrderStatus::Cancelled;
        more.push(refunded);
        w2.write_orders(&other, &more).await.unwrap();
        let (_, load) = db.store.order_facts().await.unwrap();
        assert_eq!(
            (load.snapshot_rows, load.delta_rows),
            (70, 6),
            "{}",
            db.name
        );
        assert_eq!(
            db.store.member_dataset(&scope).await.unwrap(),
            db.store.member_dataset_sql(&scope).await.unwrap(),
            "{}: another connection's writes are seen",
            db.name
        );
        let after = db.store.report(&rfm).await.unwrap();
        assert_eq!(
            buyers(&after),
            42,
            "{}: the kept report is not served",
            db.name
        );

        // A rebuild (here by the other connection) rewrites every fact.
        other.rebuild_facts().await.unwrap();
        let (facts, load) = db.store.order_facts().await.unwrap();
        assert_eq!(facts.facts.len(), 75, "{}: {load:?}", db.name);
        assert_eq!(
            db.store.member_dataset(&scope).await.unwrap(),
            db.store.member_dataset_sql(&scope).await.unwrap(),
            "{}: after a rebuild",
            db.name
        );
        other.close().await;
        db.cleanup().await;
    }
}
