//! Segment-compatible ingest: auth forms, encodings, normalisation,
//! deduplication, rejected events, identity and orders from events.

use hyper::Method;
use serde_json::{json, Value};
use touchpoint_server::ServerConfig;

use crate::helpers::{basic, gzip, postgres_url, spawn_app, spawn_app_with, Db, TestApp};

async fn batch(app: &TestApp, body: &Value) -> crate::helpers::Resp {
    app.send(
        Method::POST,
        "/v1/batch",
        None,
        &[
            ("authorization", &basic(&app.ingest)),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
    .await
}

async fn totals(app: &TestApp) -> (i64, i64) {
    let r = app.get("/api/events/totals", Some(&app.analyst)).await;
    (
        r.body["events"].as_i64().unwrap(),
        r.body["distinct_message_ids"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn write_key_in_header_body_bearer_gzip_and_text_plain_are_accepted() {
    let app = spawn_app().await;
    let ev = |id: &str| json!({"type": "track", "event": "Viewed", "anonymousId": "a1", "messageId": id});
    // Basic, password empty.
    let r = batch(&app, &json!({"batch": [ev("m1")]})).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body, json!({"success": true}));
    // Basic without a password separator.
    use base64::Engine;
    let no_colon = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&app.ingest)
    );
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &no_colon)],
            json!({"batch": [ev("m2")]}).to_string(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    // writeKey in the body only, sent as text/plain (browsers).
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("content-type", "text/plain")],
            json!({"writeKey": app.ingest, "batch": [ev("m3")]}).to_string(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    // Bearer and gzip.
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            Some(&app.ingest),
            &[("content-encoding", "gzip")],
            gzip(json!({"batch": [ev("m4")]}).to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    // Single-event endpoint with writeKey in the body.
    let r = app
        .send(
            Method::POST,
            "/v1/page",
            None,
            &[],
            json!({"writeKey": app.ingest, "anonymousId": "a1", "name": "Home", "messageId": "m5"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(totals(&app).await, (5, 5));
    app.finish().await;
}

#[tokio::test]
async fn events_are_normalised_on_receipt() {
    let app = spawn_app().await;
    let body = json!({
        "batch": [
            {"type": "track", "event": "Clicked", "anonymousId": "a9", "userId": null, "properties": null,
             "timestamp": "2024-01-01T00:00:00Z", "sentAt": "2024-01-01T00:01:00Z",
             "_metadata": {"bundled": []}, "somethingNew": 1},
            {"type": "identify", "userId": 12345, "context": {"traits": {"email": "A@B.com"}, "ip": "10.1.2.3"},
             "originalTimestamp": 1704067200000i64},
        ],
        "context": {"library": {"name": "batch-lib"}, "ip": "10.9.9.9"},
    });
    let r = batch(&app, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let page = app.get("/api/events", Some(&app.analyst)).await;
    let items = page.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let t = &items[0]["payload"];
    // A messageId was generated; receivedAt stamped.
    assert_eq!(t["messageId"].as_str().unwrap().len(), 36);
    assert!(t["receivedAt"].is_string());
    // timestamp corrected by (receivedAt - sentAt): the event happened 1 minute before sending.
    let received = chrono::DateTime::parse_from_rfc3339(t["receivedAt"].as_str().unwrap()).unwrap();
    let ts = chrono::DateTime::parse_from_rfc3339(t["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!((received - ts).num_seconds(), 60);
    assert_eq!(t["originalTimestamp"], "2024-01-01T00:00:00.000Z");
    // Batch context merged; the batch's ip beats the socket's; unknown keys kept.
    assert_eq!(t["context"]["library"]["name"], "batch-lib");
    assert_eq!(t["context"]["ip"], "10.9.9.9");
    assert_eq!(t["somethingNew"], 1);
    assert!(t.get("writeKey").is_none());
    // Numeric userId, the event's own ip, context.traits, epoch originalTimestamp.
    let i = &items[1];
    assert_eq!(i["user_id"], "12345");
    assert_eq!(i["payload"]["context"]["ip"], "10.1.2.3");
    assert_eq!(i["occurred_at"], 1704067200000i64);
    let m = app
        .get("/api/members?email=a@b.com", Some(&app.analyst))
        .await;
    assert_eq!(m.body["members"].as_array().unwrap().len(), 1, "{}", m.text);
    app.finish().await;
}

#[tokio::test]
async fn the_request_ip_is_kept_when_the_client_sends_none() {
    let app = spawn_app().await;
    let r = batch(
        &app,
        &json!({"batch": [{"type": "track", "event": "e", "anonymousId": "x"}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    let page = app.get("/api/events", Some(&app.analyst)).await;
    assert_eq!(
        page.body["items"][0]["payload"]["context"]["ip"],
        "127.0.0.1"
    );
    app.finish().await;
}

#[tokio::test]
async fn events_without_identity_are_rejected_and_the_rest_accepted() {
    let app = spawn_app().await;
    let body = json!({"batch": [
        {"type": "track", "event": "ok", "userId": "u1", "messageId": "good"},
        {"type": "track", "event": "no ids", "messageId": "bad1"},
        {"type": "alias", "userId": "u1", "messageId": "bad2"},
        {"type": "teleport", "userId": "u1", "messageId": "bad3"},
        "not an object",
    ]});
    let r = batch(&app, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(totals(&app).await, (1, 1));
    let rej = app.get("/api/events/rejected", Some(&app.analyst)).await;
    let items = rej.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{}", rej.text);
    assert_eq!(items[0]["message_id"], "bad1");
    assert!(items[0]["reason"]
        .as_str()
        .unwrap()
        .contains("userId or an anonymousId"));
    assert!(items[1]["reason"].as_str().unwrap().contains("previousId"));
    assert!(items[2]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown type"));
    assert_eq!(items[3]["message_id"], Value::Null);
    let m = app.get("/metrics", Some(&app.admin)).await;
    assert!(
        m.text.contains("touchpoint_events_rejected_total 4"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("touchpoint_events_accepted_total 1"),
        "{}",
        m.text
    );
    app.finish().await;
}

#[tokio::test]
async fn retried_batches_are_deduplicated() {
    let app = spawn_app().await;
    let body = json!({"batch": [
        {"type": "track", "event": "a", "anonymousId": "x", "messageId": "m1"},
        {"type": "track", "event": "a", "anonymousId": "x", "messageId": "m1"},
        {"type": "track", "event": "b", "anonymousId": "x", "messageId": "m2"},
    ]});
    assert_eq!(batch(&app, &body).await.status, 200);
    assert_eq!(batch(&app, &body).await.status, 200);
    assert_eq!(totals(&app).await, (2, 2));
    let m = app.get("/metrics", Some(&app.admin)).await;
    assert!(
        m.text.contains("touchpoint_events_deduplicated_total 4"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains(
            "touchpoint_http_requests_total{method=\"POST\",route=\"/v1/batch\",status=\"200\"} 2"
        ),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("touchpoint_operation_duration_seconds_count{op=\"store_event_write\"}"),
        "{}",
        m.text
    );
    app.finish().await;
}

#[tokio::test]
async fn deduplication_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let body = json!({"batch": [{"type": "track", "event": "a", "anonymousId": "x", "messageId": "same"}]});
    let store = touchpoint_store::Store::connect(&url).await.unwrap();
    let key = store
        .create_key(touchpoint_store::keys::Role::Ingest, None, Some("web"))
        .await
        .unwrap()
        .key;
    store.close().await;
    for _ in 0..2 {
        let store = touchpoint_store::Store::connect(&url).await.unwrap();
        let server =
            touchpoint_server::Server::build(store.clone(), ServerConfig::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let h = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let req = hyper::Request::post(format!("http://{addr}/v1/batch"))
            .header("authorization", basic(&key))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        assert_eq!(client.request(req).await.unwrap().status(), 200);
        let _ = tx.send(());
        h.await.unwrap().unwrap();
        store.close().await;
    }
    let store = touchpoint_store::Store::connect(&url).await.unwrap();
    assert_eq!(store.event_totals(None).await.unwrap(), (1, 1));
    store.close().await;
}

#[tokio::test]
async fn settings_for_analytics_js_point_at_this_server() {
    let app = spawn_app().await;
    let r = app
        .get(&format!("/v1/projects/{}/settings", app.ingest), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["integrations"]["Segment.io"]["apiHost"],
        format!("{}/v1", app.addr)
    );
    assert_eq!(r.body["integrations"]["Segment.io"]["protocol"], "http");
    // CORS: browsers may call it from any origin by default.
    let r = app
        .send(
            Method::OPTIONS,
            "/v1/batch",
            None,
            &[
                ("origin", "https://shop.example"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_some());
    assert_error_settings(&app).await;
    app.finish().await;
}

async fn assert_error_settings(app: &TestApp) {
    let r = app
        .get(&format!("/v1/projects/{}/settings", app.analyst), None)
        .await;
    crate::helpers::assert_error(&r, 403, "forbidden");
}

#[tokio::test]
async fn cors_origins_are_configurable() {
    let app = spawn_app_with(
        Db::Sqlite,
        ServerConfig {
            cors_origins: vec!["https://shop.example".into()],
            ..Default::default()
        },
    )
    .await;
    let pre = |origin: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::OPTIONS,
                "/v1/batch",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
                "",
            )
            .await
        }
    };
    let ok = pre("https://shop.example").await;
    assert_eq!(
        ok.headers.get("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    let no = pre("https://evil.example").await;
    assert!(no.headers.get("access-control-allow-origin").is_none());
    app.finish().await;
}

/// The identity and order scenario, run on SQLite and (when configured) PostgreSQL.
async fn identity_and_orders_scenario(app: &TestApp) {
    let h = app.get("/healthz", None).await;
    assert_eq!(h.status, 200, "{}", h.text);
    // Anonymous browsing, then identify: the earlier events are attributed.
    let r = batch(app, &json!({"batch": [
        {"type": "page", "name": "Home", "anonymousId": "anon-1", "messageId": "p1"},
        {"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": "p2"},
    ]}))
    .await;
    assert_eq!(r.status, 200);
    let r = batch(app, &json!({"batch": [
        {"type": "identify", "userId": "VIP-1", "anonymousId": "anon-1", "messageId": "i1",
         "traits": {"email": "Li@Example.com", "phone": "13800000001"},
         "context": {"externalIds": [{"id": "tb_li", "type": "tmall_buyer_id", "collection": "users", "encoding": "none"},
                                     {"id": "union-9", "type": "wechat_unionid"}]}},
        {"type": "alias", "previousId": "anon-2", "userId": "VIP-1", "messageId": "al1"},
        {"type": "track", "event": "Cart Viewed", "anonymousId": "anon-2", "messageId": "p3"},
    ]}))
    .await;
    assert_eq!(r.status, 200);
    let m = app
        .get("/api/members?member_no=VIP-1", Some(&app.analyst))
        .await;
    let members = m.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{}", m.text);
    let id = members[0]["id"].as_str().unwrap().to_string();
    let same = app
        .get("/api/members?phone=13800000001", Some(&app.analyst))
        .await;
    assert_eq!(same.body["members"][0]["id"], id.as_str());
    let m360 = app
        .get(&format!("/api/members/{id}"), Some(&app.analyst))
        .await;
    let kinds: Vec<String> = m360.body["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["kind"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "member_no VIP-1",
        "anonymous_id web:anon-1",
        "anonymous_id web:anon-2",
        "email li@example.com",
        "phone +8613800000001",
        "platform_user_id tmall:tb_li",
        "wechat_unionid union-9",
    ] {
        assert!(kinds.contains(&want.to_string()), "{want} in {kinds:?}");
    }
    let names: Vec<&str> = m360.body["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        5,
        "all events attributed, before and after identify: {names:?}"
    );

    // Orders from events.
    let order = json!({"type": "track", "event": "Order Completed", "userId": "VIP-1", "messageId": "o1",
        "timestamp": "2024-11-11T02:00:00Z",
        "properties": {"order_id": "W-100", "total": 45.5, "discount": 5, "currency": "cny",
            "products": [{"sku": "S1", "name": "Tea", "price": 20.25, "quantity": 2, "category": "drinks", "brand": "Leaf"},
                         {"product_id": "S2", "price": "10", "quantity": 1}]}});
    assert_eq!(
        batch(app, &json!({"batch": [order.clone()]})).await.status,
        200
    );
    // The same order again under another messageId is still one order.
    let mut again = order.clone();
    again["messageId"] = json!("o1-resent");
    assert_eq!(batch(app, &json!({"batch": [again]})).await.status, 200);
    let orders = app
        .get(&format!("/api/orders?member_id={id}"), Some(&app.analyst))
        .await;
    let list = orders.body["orders"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", orders.text);
    assert_eq!(list[0]["channel"], "web");
    assert_eq!(list[0]["gross_amount"], 4550);
    assert_eq!(list[0]["status"], "paid");
    let one = app.get("/api/orders/web/W-100", Some(&app.analyst)).await;
    assert_eq!(
        one.body["lines"].as_array().unwrap().len(),
        2,
        "{}",
        one.text
    );
    assert_eq!(one.body["lines"][0]["unit_price"], 2025);
    assert_eq!(one.body["lines"][0]["product_name"], "Tea");

    // Refunds update it; a retry of the old Order Completed does not undo that.
    let refund = json!({"type": "track", "event": "Order Refunded", "userId": "VIP-1", "messageId": "r1",
        "properties": {"order_id": "W-100", "total": 10}});
    assert_eq!(batch(app, &json!({"batch": [refund]})).await.status, 200);
    let one = app.get("/api/orders/web/W-100", Some(&app.analyst)).await;
    assert_eq!(one.body["status"], "partially_refunded");
    assert_eq!(one.body["refunded_amount"], 1000);
    assert_eq!(
        batch(app, &json!({"batch": [order.clone()]})).await.status,
        200
    );
    let full = json!({"type": "track", "event": "Order Refunded", "userId": "VIP-1", "messageId": "r2",
        "properties": {"order_id": "W-100"}});
    assert_eq!(batch(app, &json!({"batch": [full]})).await.status, 200);
    let one = app.get("/api/orders/web/W-100", Some(&app.analyst)).await;
    assert_eq!(one.body["status"], "refunded");
    assert_eq!(one.body["refunded_amount"], 4550);
    assert_eq!(one.body["member_id"], id.as_str());
}

#[tokio::test]
async fn identity_and_orders_from_events_on_sqlite() {
    let app = spawn_app().await;
    identity_and_orders_scenario(&app).await;
    app.finish().await;
}

#[tokio::test]
async fn identity_and_orders_from_events_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("skipped: set TOUCHPOINT_TEST_POSTGRES_URL to run the PostgreSQL scenario");
        return;
    }
    let app = spawn_app_with(Db::Postgres, ServerConfig::default()).await;
    identity_and_orders_scenario(&app).await;
    app.finish().await;
}

#[tokio::test]
async fn a_gzip_batch_from_another_source_keeps_its_channel() {
    let app = spawn_app().await;
    let key = app
        .store
        .create_key(touchpoint_store::keys::Role::Ingest, None, Some("miniapp"))
        .await
        .unwrap()
        .key;
    let body = json!({"batch": [{"type": "track", "event": "Order Completed", "anonymousId": "wx-1", "messageId": "1",
        "properties": {"order_id": "MP-1", "revenue": 12}}]});
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[
                ("authorization", &basic(&key)),
                ("content-encoding", "gzip"),
            ],
            gzip(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let one = app
        .get("/api/orders/miniapp/MP-1", Some(&app.analyst))
        .await;
    assert_eq!(one.body["gross_amount"], 1200, "{}", one.text);
    app.finish().await;
}

/// Segment links userId and anonymousId on every call: a track event that
/// carries both joins them, so earlier anonymous browsing is attributed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_event_with_both_ids_joins_them() {
    let app = spawn_app().await;
    let r = batch(&app, &json!({"batch": [
        {"type": "page", "name": "Home", "anonymousId": "anon-7", "messageId": "t1"},
        {"type": "track", "event": "Product Viewed", "userId": "VIP-7", "anonymousId": "anon-7", "messageId": "t2"},
    ]}))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = app
        .get("/api/members?member_no=VIP-7", Some(&app.analyst))
        .await;
    let id = m.body["members"][0]["id"]
        .as_str()
        .expect("a member")
        .to_string();
    let m360 = app
        .get(&format!("/api/members/{id}"), Some(&app.analyst))
        .await;
    let ids: Vec<&str> = m360.body["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"web:anon-7") && ids.contains(&"VIP-7"),
        "{ids:?}"
    );
    assert_eq!(m360.body["events"]["items"].as_array().unwrap().len(), 2);
    app.finish().await;
}
