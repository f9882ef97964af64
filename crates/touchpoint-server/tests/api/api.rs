//! The JSON API: orders (idempotent writes), imports, members, pagination.

use hyper::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn posting_an_order_twice_is_one_order_and_the_key_replays() {
    let app = spawn_app().await;
    let body = json!({"channel": "pos", "order_id": "T-1", "ordered_at": "2024-11-11 10:00:00",
        "currency": "CNY", "customer": {"phone": "13800000002", "name": "Wang"},
        "lines": [{"sku": "S1", "quantity": 2, "unit_price": "12.50"}]})
    .to_string();
    let h = [
        ("idempotency-key", "abc"),
        ("content-type", "application/json"),
    ];
    let first = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &h,
            body.clone(),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["result"], "inserted");
    assert_eq!(first.body["order"]["gross_amount"], 2500);
    // Local time in the business time zone (Asia/Shanghai): 02:00 UTC.
    assert_eq!(first.body["order"]["ordered_at"], 1731290400000i64);
    let replay = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &h,
            body.clone(),
        )
        .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, first.body);
    // Without the key, the (channel, order id) still makes it idempotent.
    let again = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(again.body["result"], "unchanged");
    let list = app.get("/api/orders", Some(&app.analyst)).await;
    assert_eq!(list.body["orders"].as_array().unwrap().len(), 1);
    let bad = json!({"channel": "pos", "order_id": "T-2", "ordered_at": "yesterday", "customer": {"phone": "1380"}, "lines": []});
    let r = app.post_json("/api/orders", Some(&app.admin), &bad).await;
    crate::helpers::assert_error(&r, 400, "invalid_request");
    assert!(
        r.body["message"].as_str().unwrap().contains("ordered_at"),
        "{}",
        r.text
    );
    app.finish().await;
}

const CSV: &str = "order_id,ordered_at,status,phone,email,sku,quantity,unit_price\n\
A1,2024-11-11 10:00:00,paid,13800000003,,S1,1,10.00\n\
A2,2024-11-12 10:00:00,paid,13800000003,,S2,2,5.00\n\
A3,2024-11-13 10:00:00,paid,,,S3,1,1.00\n";

#[tokio::test]
async fn imports_accept_raw_and_multipart_bodies() {
    let app = spawn_app().await;
    let r = app
        .send(
            Method::POST,
            "/api/imports?format=canonical&channel=shopify",
            Some(&app.admin),
            &[("content-type", "text/csv")],
            CSV,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["orders"]["inserted"], 2, "{}", r.text);
    assert_eq!(r.body["orders"]["rejected"], 1, "{}", r.text);
    assert_eq!(r.body["files"][0]["rejected"][0]["order_id"], "A3");
    let boundary = "XyZ";
    let mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\ncanonical\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nshopify\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"o.csv\"\r\nContent-Type: text/csv\r\n\r\n{CSV}\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = app
        .send(
            Method::POST,
            "/api/imports",
            Some(&app.admin),
            &[("content-type", &ct)],
            mp,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["orders"]["unchanged"], 2, "{}", r.text);
    let m = app
        .get("/api/members?phone=13800000003", Some(&app.analyst))
        .await;
    assert_eq!(m.body["members"][0]["orders"], 2, "{}", m.text);
    let ov = app.get("/api/overview", Some(&app.analyst)).await;
    assert_eq!(ov.body["members"], 1, "{}", ov.text);
    let m = app.get("/metrics", Some(&app.analyst)).await;
    assert!(m.text.contains("op=\"import\""), "{}", m.text);
    app.finish().await;
}

#[tokio::test]
async fn lists_are_cursor_paginated() {
    let app = spawn_app().await;
    for i in 0..5 {
        let body = json!({"channel": "pos", "order_id": format!("P-{i}"), "ordered_at": 1700000000000i64 + i,
            "customer": {"member_no": format!("N{i}")}, "lines": [{"sku": "S", "unit_price": 1}]});
        assert_eq!(
            app.post_json("/api/orders", Some(&app.admin), &body)
                .await
                .status,
            200
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/orders?limit=2&after={a}"),
            None => "/api/orders?limit=2".to_string(),
        };
        let r = app.get(&path, Some(&app.analyst)).await;
        for o in r.body["orders"].as_array().unwrap() {
            seen.push(o["order_id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["P-0", "P-1", "P-2", "P-3", "P-4"]);
    let r = app.get("/api/members?limit=2", Some(&app.analyst)).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let next = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/api/members?limit=10&after={next}"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    assert!(r.body["next_cursor"].is_null());
    app.finish().await;
}
