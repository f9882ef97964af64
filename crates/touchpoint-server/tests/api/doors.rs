//! One door for orders: the same order sent as a canonical file, to
//! `POST /api/orders` and as a Segment `Order Completed` event is stored as
//! identical rows, on SQLite and PostgreSQL.

use hyper::Method;
use serde_json::json;
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{InputFormat, ReadOptions};
use touchpoint_core::{ChannelName, Currency};
use touchpoint_server::ServerConfig;
use touchpoint_store::import::{import_files, ImportOptions};

use crate::helpers::{basic, postgres_url, spawn_app_with, Db, TestApp};

/// The stored order and its lines, without the write times.
async fn stored(app: &TestApp) -> Vec<Vec<String>> {
    let mut h = app.store.acquire().await.unwrap();
    let mut rows = h
        .conn()
        .fetch(
            "SELECT channel, order_id, CAST(member_id AS TEXT), status, CAST(ordered_at AS TEXT), \
             CAST(paid_at AS TEXT), currency, CAST(gross_amount AS TEXT), CAST(order_discount AS TEXT), \
             CAST(refunded_amount AS TEXT), CAST(line_count AS TEXT), CAST(content_hash AS TEXT) FROM orders",
            &[],
            |r| (0..12).map(|i| Ok(r.opt_text(i)?.unwrap_or_default())).collect(),
        )
        .await
        .unwrap();
    rows.extend(
        h.conn()
            .fetch(
                "SELECT l.sku, CAST(l.quantity AS TEXT), CAST(l.unit_price AS TEXT), \
                 CAST(l.unit_cost AS TEXT), CAST(l.discount AS TEXT), p.name, p.brand, p.category \
                 FROM order_lines l JOIN products p ON p.sku = l.sku ORDER BY l.line_no",
                &[],
                |r| {
                    (0..8)
                        .map(|i| Ok(r.opt_text(i)?.unwrap_or_default()))
                        .collect()
                },
            )
            .await
            .unwrap(),
    );
    rows.extend(
        h.conn()
            .fetch(
                "SELECT kind, value FROM identifiers ORDER BY kind",
                &[],
                |r| Ok(vec![r.text(0)?, r.text(1)?]),
            )
            .await
            .unwrap(),
    );
    rows
}

async fn three_doors(db: Db) {
    // 1. A canonical file (local times in the business time zone, Asia/Shanghai).
    let file_app = spawn_app_with(db, ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    std::fs::write(
        &path,
        "order_id,ordered_at,paid_at,member_no,sku,product_name,category,brand,quantity,unit_price,order_discount,currency\n\
         W-100,2024-11-11 10:00:00,2024-11-11 10:00:00,VIP-1,S1,Tea,drinks,Leaf,2,20.25,5,CNY\n\
         W-100,2024-11-11 10:00:00,2024-11-11 10:00:00,VIP-1,S2,,,,1,10,5,CNY\n",
    )
    .unwrap();
    let options = ImportOptions {
        format: InputFormat::Canonical,
        read: ReadOptions {
            channel: Some(ChannelName::parse("web").unwrap()),
            default_country: "86".into(),
            default_currency: Currency::parse("CNY").unwrap(),
            business_tz: chrono_tz::Asia::Shanghai,
            encoding: None,
        },
        identity: IdentityConfig::default(),
        strict: false,
        rejects: None,
        chunk_orders: 100,
        refresh_analytics: true,
    };
    let r = import_files(&file_app.store, &[path], &options, &|_| {})
        .await
        .unwrap();
    assert_eq!(r.orders.inserted, 1, "{:?}", r.files[0].rejected);
    let from_file = stored(&file_app).await;
    file_app.finish().await;

    // 2. POST /api/orders (a time with an offset; amounts as numbers and strings).
    let api_app = spawn_app_with(db, ServerConfig::default()).await;
    let r = api_app
        .post_json(
            "/api/orders",
            Some(&api_app.admin),
            &json!({"channel": "web", "order_id": "W-100",
                "ordered_at": "2024-11-11T10:00:00+08:00", "paid_at": "2024-11-11 10:00:00",
                "currency": "CNY", "order_discount": 5, "customer": {"member_no": "VIP-1"},
                "lines": [{"sku": "S1", "name": "Tea", "category": "drinks", "brand": "Leaf", "quantity": 2, "unit_price": 20.25},
                          {"sku": "S2", "quantity": 1, "unit_price": "10"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let from_api = stored(&api_app).await;
    api_app.finish().await;

    // 3. Segment `Order Completed` (UTC timestamp; the total sets the discount).
    let seg_app = spawn_app_with(db, ServerConfig::default()).await;
    let r = seg_app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[
                ("authorization", &basic(&seg_app.ingest)),
                ("content-type", "application/json"),
            ],
            json!({"batch": [{"type": "track", "event": "Order Completed", "userId": "VIP-1", "messageId": "o1",
                "timestamp": "2024-11-11T02:00:00Z",
                "properties": {"order_id": "W-100", "total": 45.5, "currency": "cny",
                    "products": [{"sku": "S1", "name": "Tea", "price": 20.25, "quantity": 2, "category": "drinks", "brand": "Leaf"},
                                 {"product_id": "S2", "price": "10", "quantity": 1}]}}]})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let from_segment = stored(&seg_app).await;
    seg_app.finish().await;

    assert_eq!(from_file, from_api, "file and API doors differ");
    assert_eq!(from_file, from_segment, "file and Segment doors differ");
    // And the row is what the order says: 2 x 20.25 + 10 - 5 = 45.50 CNY.
    assert_eq!(from_file[0][7], "4550");
    assert_eq!(from_file[0][4], "1731290400000");
}

#[tokio::test]
async fn one_order_through_three_doors_is_stored_identically_on_sqlite() {
    three_doors(Db::Sqlite).await;
}

#[tokio::test]
async fn one_order_through_three_doors_is_stored_identically_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("skipped: set TOUCHPOINT_TEST_POSTGRES_URL to run the PostgreSQL case");
        return;
    }
    three_doors(Db::Postgres).await;
}
