//! Identity over the store: shared identifiers, paging, the demo brand.

use touchpoint_core::demo::{self, DemoConfig};
use touchpoint_core::ingest::InputFormat;
use touchpoint_core::{Email, Identifier, MemberId, Phone};

use crate::common::*;

/// A shop counter's phone typed in for every walk-in customer: after the sixth
/// distinct e-mail it is marked shared in the store, stops joining, and the
/// customers it had joined are split back with their orders.
#[tokio::test]
async fn counter_phone_is_marked_shared_and_members_split_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone,email\n");
    for k in 0..8 {
        csv.push_str(&format!(
            "P{k},2025-03-0{} 10:00:00,S1,1,10.00,021-50001234,c{k}@example.com\n",
            k + 1
        ));
    }
    let path = write(dir.path(), "pos.csv", csv);
    for db in backends().await {
        let r = import(&db.store, &path, InputFormat::Canonical, "pos").await;
        assert_eq!(r.identity.shared_marked, 1, "{}", db.name);
        assert_eq!(r.shared_identifiers, ["phone +862150001234"]);
        let shared = db.store.shared_identifiers().await.unwrap();
        assert_eq!(shared.len(), 1);
        assert!(
            shared[0].detail.contains("6 distinct email"),
            "{}",
            shared[0].detail
        );
        // Every customer is their own member, owning exactly their own order.
        let mut members = std::collections::HashSet::new();
        for k in 0..8 {
            let e = Identifier::email(&Email::parse(&format!("c{k}@example.com")).unwrap());
            let m = db.store.member_by_identifier(&e).await.unwrap().unwrap();
            let v = db.store.member(m).await.unwrap().unwrap();
            assert_eq!(v.order_count, 1, "{}: customer {k}", db.name);
            assert_eq!(v.orders[0].order_id, format!("P{k}"));
            members.insert(m);
        }
        assert_eq!(members.len(), 8, "{}", db.name);
        let phone = Identifier::phone(&Phone::parse("021-50001234", "86").unwrap());
        assert_eq!(db.store.member_by_identifier(&phone).await.unwrap(), None);
        // Re-import: nothing changes.
        let r = import(&db.store, &path, InputFormat::Canonical, "pos").await;
        assert_eq!(r.identity, Default::default());
        db.cleanup().await;
    }
}

/// The demo brand goes through the real import path with no rejected row, and
/// identity resolution finds the customers the generator made (shop counter
/// phones belong to no member); revenue matches to the fen.
#[tokio::test]
async fn demo_brand_imports_cleanly_and_resolves_its_people() {
    let dir = tempfile::tempdir().unwrap();
    let m = demo::generate(
        &DemoConfig {
            members: 1500,
            ..DemoConfig::default()
        },
        dir.path(),
    )
    .unwrap();
    for db in backends().await {
        for f in &m.files {
            let mut o = options(f.format, f.channel.as_str());
            o.chunk_orders = 1000;
            let r = import_with(&db.store, &f.path, &o).await;
            assert_eq!(
                r.orders.rejected,
                0,
                "{}: {:?}",
                db.name,
                r.files[0].rejected.first()
            );
            assert_eq!(r.orders.inserted as usize, f.orders, "{}", f.path.display());
        }
        let o = db.store.overview().await.unwrap();
        assert_eq!(o.members as usize, m.expected_customers, "{}", db.name);
        assert_eq!(o.shared_identifiers as usize, m.shared_counter_phones.len());
        let revenue: i64 = o.channels.iter().map(|c| c.net_revenue).sum();
        assert_eq!(revenue, m.net_revenue_fen, "{}", db.name);

        // Paging visits every active member once.
        let mut seen = 0;
        let mut after: Option<MemberId> = None;
        loop {
            let page = db.store.list_members(after, 500).await.unwrap();
            seen += page.members.len();
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen as i64, o.members);
        db.cleanup().await;
    }
}

/// Six customers typed in with one counter phone: after the split the phone is
/// no member of its own. Members are the six people, in the overview, in the
/// member list and in the analytics summary alike; the phone's lookup says it
/// belongs to nobody; the log still explains the split.
#[tokio::test]
async fn shared_phone_split_back_leaves_no_member_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone,email\n");
    for k in 0..6 {
        csv.push_str(&format!(
            "P{k},2025-03-0{} 10:00:00,S1,1,10.00,021-50001234,c{k}@example.com\n",
            k + 1
        ));
    }
    let path = write(dir.path(), "pos.csv", csv);
    for db in backends().await {
        let r = import(&db.store, &path, InputFormat::Canonical, "pos").await;
        assert_eq!(r.identity.splits, 1, "{}", db.name);
        let o = db.store.overview().await.unwrap();
        assert_eq!(o.members, 6, "{}", db.name);
        let page = db.store.list_members(None, 100).await.unwrap();
        assert_eq!(page.members.len(), 6, "{}", db.name);
        assert!(
            page.members
                .iter()
                .all(|m| m.orders == 1 && m.channels == "pos"),
            "{}: {:?}",
            db.name,
            page.members
        );
        let scope = touchpoint_store::analytics::Scope {
            utc_offset_ms: 8 * 3_600_000,
            ..Default::default()
        };
        assert_eq!(
            db.store.member_dataset(&scope).await.unwrap().members.len(),
            6,
            "{}",
            db.name
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM identifiers WHERE shared = 1 AND member_id = 0")
                .await,
            1,
            "{}",
            db.name
        );
        let phone = Identifier::phone(&Phone::parse("021-50001234", "86").unwrap());
        assert_eq!(db.store.member_by_identifier(&phone).await.unwrap(), None);
        // The first customer keeps M-1, and M-1's log explains the split.
        let v = db
            .store
            .member(MemberId::from_i64(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.order_count, 1);
        assert_eq!(v.orders[0].order_id, "P0");
        let split = v.history.iter().find(|e| e.kind == "split").unwrap();
        assert!(
            split
                .detail
                .contains("because phone +862150001234 was marked shared")
                && split.detail.contains("belongs to no member"),
            "{}",
            split.detail
        );
        // Reloading the index (a new writer) and importing again changes nothing.
        let r = import(&db.store, &path, InputFormat::Canonical, "pos").await;
        assert_eq!(r.identity, Default::default());
        assert_eq!(db.store.overview().await.unwrap().members, 6);
        db.cleanup().await;
    }
}

/// The links a counter phone made before it was marked shared were undone by
/// the split: the member view marks them superseded, naming the split.
#[tokio::test]
async fn links_undone_by_a_split_are_shown_as_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone,email\n");
    // M-1 is a customer with her own phone and e-mail; the counter phone joins
    // her (through her e-mail) and five walk-ins, then a sixth makes it shared.
    csv.push_str("A0,2025-03-01 09:00:00,S1,1,10.00,13800000001,li@example.com\n");
    csv.push_str("A1,2025-03-01 10:00:00,S1,1,10.00,021-50001234,li@example.com\n");
    csv.push_str("A2,2025-03-01 11:00:00,S1,1,10.00,13800000001,\n");
    for k in 1..6 {
        csv.push_str(&format!(
            "P{k},2025-03-0{} 10:00:00,S1,1,10.00,021-50001234,c{k}@example.com\n",
            k + 1
        ));
    }
    let path = write(dir.path(), "pos.csv", csv);
    for db in backends().await {
        import(&db.store, &path, InputFormat::Canonical, "pos").await;
        let v = db
            .store
            .member(MemberId::from_i64(1))
            .await
            .unwrap()
            .unwrap();
        let via_counter: Vec<_> = v
            .history
            .iter()
            .filter(|e| e.kind == "link" && e.identifier == "phone +862150001234")
            .collect();
        assert_eq!(via_counter.len(), 4, "{}: {:#?}", db.name, v.history);
        let split = v.history.iter().find(|e| e.kind == "split").unwrap();
        for e in &via_counter {
            assert!(e.superseded, "{}: {e:?}", db.name);
            let u = e.undone_by.as_ref().unwrap();
            assert_eq!(u.event_id, split.id);
            assert_eq!(u.detail, split.detail);
        }
        // Links through identifiers that still hold are not superseded.
        assert!(
            v.history
                .iter()
                .filter(|e| e.identifier != "phone +862150001234")
                .all(|e| !e.superseded && e.undone_by.is_none()),
            "{}: {:#?}",
            db.name,
            v.history
        );
        db.cleanup().await;
    }
}
