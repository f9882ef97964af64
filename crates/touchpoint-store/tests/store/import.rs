//! The import path end to end: formats, identity, idempotency, bad input.

use touchpoint_core::ingest::InputFormat;

use crate::common::*;

fn three_files(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    // Li bought on Tmall with her phone...
    let taobao = format!(
        "{TAOBAO_HEADER}\n\
         =\"2024111100001\",li_na88,258.00,交易成功,李娜,浙江省 杭州市 西湖区,'13800000001,2024-11-11 00:01:23,2024-11-11 00:01:30,山茶花精华,2,0.00,SKU-A-0001\n\
         =\"2024111100002\",wang_fang,99.00,交易成功,王芳,上海 上海市,'13900000002,2024-11-11 09:00:00,2024-11-11 09:00:10,洗衣液,1,0.00,SKU-C-0001\n"
    );
    // ...in a store with the same phone, where the till also took her e-mail...
    let pos = "channel,order_id,ordered_at,status,sku,product_name,brand,category,quantity,unit_price,unit_cost,member_no,phone,email,name\n\
               pos,P-77,2024-12-01T10:00:00+08:00,paid,SKU-A-0001,山茶花精华,青岚,skincare,1,129.00,40.00,,13800000001,Li.Na@Example.com,李娜\n\
               pos,P-77,2024-12-01T10:00:00+08:00,paid,SKU-B-0002,龙井,山茶集,tea,2,50.00,20.00,,13800000001,Li.Na@Example.com,李娜\n\
               pos,P-78,2024-12-02T11:00:00+08:00,paid,SKU-B-0002,龙井,山茶集,tea,1,50.00,20.00,VIP001,,,\n";
    // ...and on the web shop with that e-mail.
    let shopify = format!(
        "{}\n{}\n{}\n",
        shopify_header(),
        shopify_row(&[
            ("Name", "#1001"),
            ("Email", "li.na@example.com"),
            ("Financial Status", "paid"),
            ("Paid at", "2025-01-05 10:00:00 +0800"),
            ("Currency", "CNY"),
            ("Discount Amount", "10.00"),
            ("Created at", "2025-01-05 09:59:00 +0800"),
            ("Lineitem quantity", "1"),
            ("Lineitem name", "山茶花精华"),
            ("Lineitem price", "129.00"),
            ("Lineitem sku", "SKU-A-0001"),
            ("Vendor", "青岚"),
        ]),
        shopify_row(&[
            ("Name", "#1001"),
            ("Lineitem quantity", "1"),
            ("Lineitem name", "龙井"),
            ("Lineitem price", "50.00"),
            ("Lineitem sku", "SKU-B-0002"),
            ("Vendor", "山茶集"),
        ]),
    );
    [
        write(dir, "tmall.csv", taobao),
        write(dir, "pos.csv", pos),
        write(dir, "shopify.csv", shopify),
    ]
}

async fn import_three(db: &TestDb, files: &[std::path::PathBuf; 3]) {
    let r = import(&db.store, &files[0], InputFormat::Taobao, "tmall").await;
    assert_eq!(r.orders.inserted, 2, "{}", db.name);
    let r = import(&db.store, &files[1], InputFormat::Canonical, "pos").await;
    assert_eq!(r.orders.inserted, 2, "{}", db.name);
    let r = import(&db.store, &files[2], InputFormat::Shopify, "shopify").await;
    assert_eq!(r.orders.inserted, 1, "{}", db.name);
}

/// Members, orders and the identity log, as text, in a stable order.
async fn snapshot(db: &TestDb) -> Vec<Vec<String>> {
    let mut out = db
        .rows(
            "SELECT CAST(id AS TEXT), CAST(merged_into AS TEXT), name FROM members ORDER BY id",
            3,
        )
        .await;
    out.extend(
        db.rows(
            "SELECT kind, value, CAST(member_id AS TEXT), CAST(shared AS TEXT) FROM identifiers ORDER BY id",
            4,
        )
        .await,
    );
    out.extend(
        db.rows(
            "SELECT channel, order_id, CAST(member_id AS TEXT), status, CAST(ordered_at AS TEXT), CAST(gross_amount AS TEXT), CAST(refunded_amount AS TEXT) FROM orders ORDER BY channel, order_id",
            7,
        )
        .await,
    );
    out.extend(
        db.rows(
            "SELECT channel, order_id, CAST(line_no AS TEXT), sku, CAST(quantity AS TEXT), CAST(unit_price AS TEXT), CAST(discount AS TEXT) FROM order_lines ORDER BY channel, order_id, line_no",
            7,
        )
        .await,
    );
    out.extend(
        db.rows(
            "SELECT kind, CAST(member_id AS TEXT), CAST(other_member_id AS TEXT), identifier_kind, identifier_value, detail FROM identity_events ORDER BY id",
            6,
        )
        .await,
    );
    out
}

/// Acceptance: a person who bought on Taobao with a phone number, in a store
/// with the same phone, and on the web shop with an e-mail that the store also
/// recorded, is one member with three channels and two logged merges. And the
/// same three files give the same members, orders and merges on every backend.
#[tokio::test]
async fn three_formats_one_person_same_result_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_files(dir.path());
    let mut snapshots = Vec::new();
    for db in backends().await {
        import_three(&db, &files).await;
        let li = db
            .store
            .member_by_identifier(&touchpoint_core::Identifier::email(
                &touchpoint_core::Email::parse("li.na@example.com").unwrap(),
            ))
            .await
            .unwrap()
            .unwrap();
        let view = db.store.member(li).await.unwrap().unwrap();
        let channels: Vec<&str> = view.channels.iter().map(|c| c.channel.as_str()).collect();
        assert_eq!(channels, ["pos", "shopify", "tmall"], "{}", db.name);
        assert_eq!(view.order_count, 3, "{}", db.name);
        let joins: Vec<&str> = view
            .history
            .iter()
            .filter(|e| e.kind == "link" || e.kind == "merge")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            joins,
            [
                "pos order P-77 joined M-1 because phone +8613800000001 appeared in tmall order 2024111100001",
                "shopify order #1001 joined M-1 because email li.na@example.com appeared in pos order P-77",
            ],
            "{}",
            db.name
        );
        // Wang (other phone) and the VIP001 buyer (no shared identifier) stay apart.
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL")
                .await,
            3,
            "{}",
            db.name
        );
        // Amounts in minor units: Shopify 129 + 50 - 10 discount.
        assert_eq!(
            db.scalar("SELECT gross_amount FROM orders WHERE order_id = '#1001'")
                .await,
            16900
        );
        snapshots.push((db.name, snapshot(&db).await));
        db.cleanup().await;
    }
    for (name, s) in &snapshots[1..] {
        assert_eq!(s, &snapshots[0].1, "{name} differs from sqlite");
    }
}

/// Re-importing changes nothing; a later export where an order became refunded
/// updates exactly that order.
#[tokio::test]
async fn reimport_changes_nothing_and_a_refund_updates_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_files(dir.path());
    for db in backends().await {
        import_three(&db, &files).await;
        let before = snapshot(&db).await;
        let r = import(&db.store, &files[0], InputFormat::Taobao, "tmall").await;
        assert_eq!(
            (r.orders.inserted, r.orders.updated, r.orders.unchanged),
            (0, 0, 2)
        );
        let r = import(&db.store, &files[1], InputFormat::Canonical, "pos").await;
        assert_eq!((r.orders.unchanged, r.lines.unchanged), (2, 3));
        let r = import(&db.store, &files[2], InputFormat::Shopify, "shopify").await;
        assert_eq!(r.orders.unchanged, 1);
        assert_eq!(r.identity, Default::default(), "{}", db.name);
        assert_eq!(
            snapshot(&db).await,
            before,
            "{}: re-import changed the store",
            db.name
        );

        // The next Tmall export: order 2 was refunded in full.
        let later = std::fs::read_to_string(&files[0])
            .unwrap()
            .replace(
                "99.00,交易成功,王芳,上海 上海市,'13900000002,2024-11-11 09:00:00,2024-11-11 09:00:10,洗衣液,1,0.00",
                "99.00,交易关闭,王芳,上海 上海市,'13900000002,2024-11-11 09:00:00,2024-11-11 09:00:10,洗衣液,1,99.00",
            );
        let later = write(dir.path(), "tmall-later.csv", later);
        let r = import(&db.store, &later, InputFormat::Taobao, "tmall").await;
        assert_eq!(
            (r.orders.inserted, r.orders.updated, r.orders.unchanged),
            (0, 1, 1)
        );
        let row = db
            .rows(
                "SELECT status, CAST(refunded_amount AS TEXT) FROM orders WHERE order_id = '2024111100002'",
                2,
            )
            .await;
        assert_eq!(row, [["refunded", "9900"]]);
        db.cleanup().await;
    }
}

/// An import stopped half way (the first chunks committed) and run again ends
/// exactly where one whole import ends.
#[tokio::test]
async fn an_interrupted_import_finishes_on_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let files = three_files(dir.path());
    let pos = std::fs::read_to_string(&files[1]).unwrap();
    let first_half: String = pos.lines().take(3).map(|l| format!("{l}\n")).collect();
    let half = write(dir.path(), "pos-half.csv", first_half);
    for (resumed_db, straight_db) in backends().await.into_iter().zip(backends().await) {
        import(&resumed_db.store, &files[0], InputFormat::Taobao, "tmall").await;
        import(&resumed_db.store, &half, InputFormat::Canonical, "pos").await;
        let r = import(&resumed_db.store, &files[1], InputFormat::Canonical, "pos").await;
        assert_eq!((r.orders.inserted, r.orders.unchanged), (1, 1));
        import(
            &resumed_db.store,
            &files[2],
            InputFormat::Shopify,
            "shopify",
        )
        .await;
        import_three(&straight_db, &files).await;
        assert_eq!(
            snapshot(&resumed_db).await,
            snapshot(&straight_db).await,
            "{}",
            resumed_db.name
        );
        resumed_db.cleanup().await;
        straight_db.cleanup().await;
    }
}
