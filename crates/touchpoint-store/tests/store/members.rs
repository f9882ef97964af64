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
        let pm = db
            .store
            .member_by_identifier(&phone)
            .await
            .unwrap()
            .unwrap();
        assert!(!members.contains(&pm));
        // Re-import: nothing changes.
        let r = import(&db.store, &path, InputFormat::Canonical, "pos").await;
        assert_eq!(r.identity, Default::default());
        db.cleanup().await;
    }
}

/// The demo brand goes through the real import path with no rejected row, and
/// identity resolution finds the customers the generator made (plus one member
/// per shop counter phone); revenue matches to the fen.
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
        assert_eq!(
            o.members as usize,
            m.expected_customers + m.shared_counter_phones.len(),
            "{}",
            db.name
        );
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
