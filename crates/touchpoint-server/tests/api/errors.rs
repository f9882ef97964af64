//! Every error class answers its status and the one JSON error shape.

use hyper::Method;
use serde_json::json;
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, basic, spawn_app, spawn_app_with, Db};

#[tokio::test]
async fn missing_key_is_401_on_every_endpoint_but_healthz() {
    let app = spawn_app().await;
    for path in [
        "/metrics",
        "/api/openapi.json",
        "/api/members",
        "/api/members/M-1",
        "/api/orders",
        "/api/events",
        "/api/events/rejected",
        "/api/overview",
    ] {
        let r = app.get(path, None).await;
        assert_error(&r, 401, "unauthorized");
    }
    let r = app
        .post_json("/v1/batch", None, &json!({"batch": []}))
        .await;
    assert_error(&r, 401, "unauthorized");
    let r = app
        .post_json("/v1/track", None, &json!({"event": "x", "userId": "u"}))
        .await;
    assert_error(&r, 401, "unauthorized");
    let r = app.get("/v1/projects/not-a-key/settings", None).await;
    assert_error(&r, 401, "unauthorized");
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    app.finish().await;
}

#[tokio::test]
async fn unknown_and_revoked_keys_are_401() {
    let app = spawn_app().await;
    let r = app.get("/api/members", Some("tp_0000")).await;
    assert_error(&r, 401, "unauthorized");
    let k = app
        .store
        .create_key(touchpoint_store::keys::Role::Analyst, None, None)
        .await
        .unwrap();
    assert_eq!(app.get("/api/members", Some(&k.key)).await.status, 200);
    assert!(app.store.revoke_key(&k.info.key_id).await.unwrap());
    assert_error(
        &app.get("/api/members", Some(&k.key)).await,
        401,
        "unauthorized",
    );
    // A wrong write key in the body of a batch.
    let r = app
        .post_json(
            "/v1/batch",
            None,
            &json!({"writeKey": "tp_nope", "batch": []}),
        )
        .await;
    assert_error(&r, 401, "unauthorized");
    app.finish().await;
}

#[tokio::test]
async fn wrong_role_is_403() {
    let app = spawn_app().await;
    // Ingest keys cannot read the API.
    assert_error(
        &app.get("/api/members", Some(&app.ingest)).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get("/metrics", Some(&app.ingest)).await,
        403,
        "forbidden",
    );
    // Analysts cannot write or track.
    let r = app
        .post_json("/api/orders", Some(&app.analyst), &json!({}))
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post_json(
            "/v1/track",
            Some(&app.analyst),
            &json!({"userId": "u", "event": "e"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .send(
            Method::POST,
            "/api/imports?format=canonical",
            Some(&app.analyst),
            &[],
            "x",
        )
        .await;
    assert_error(&r, 403, "forbidden");
    app.finish().await;
}

#[tokio::test]
async fn malformed_json_is_400_in_the_api_shape() {
    let app = spawn_app().await;
    let auth = basic(&app.ingest);
    for path in ["/v1/batch", "/v1/track", "/v1/identify"] {
        let r = app
            .send(
                Method::POST,
                path,
                None,
                &[("authorization", &auth)],
                "{not json",
            )
            .await;
        assert_error(&r, 400, "invalid_json");
    }
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &auth)],
            "[1,2]",
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &auth)],
            r#"{"batch": "nope"}"#,
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &[],
            "{\"channel\":",
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    app.finish().await;
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let app = spawn_app().await;
    assert_error(
        &app.get("/api/members/abc", Some(&app.admin)).await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.get("/api/members?limit=many", Some(&app.admin)).await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.get("/api/members?phone=12", Some(&app.admin)).await,
        400,
        "invalid_request",
    );
    let r = app
        .send(
            Method::POST,
            "/api/imports?format=excel",
            Some(&app.admin),
            &[],
            "a,b\n",
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .send(
            Method::POST,
            "/api/imports?format=canonical",
            Some(&app.admin),
            &[],
            "x,y\n1,2\n",
        )
        .await;
    assert_error(&r, 400, "invalid_file");
    app.finish().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_use_the_error_shape() {
    let app = spawn_app().await;
    assert_error(&app.get("/nope", Some(&app.admin)).await, 404, "not_found");
    assert_error(
        &app.get("/api/members/M-999", Some(&app.admin)).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/orders/web/none", Some(&app.admin)).await,
        404,
        "not_found",
    );
    let r = app.send(Method::DELETE, "/healthz", None, &[], "").await;
    assert_error(&r, 405, "method_not_allowed");
    app.finish().await;
}

#[tokio::test]
async fn oversized_bodies_and_events_are_413() {
    let app = spawn_app().await;
    let auth = basic(&app.ingest);
    let big = "x".repeat(40 * 1024);
    // One event over 32 KB inside a batch under 500 KB.
    let body = json!({"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"blob": big}}]});
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &auth)],
            body.to_string(),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");
    // A single event over 32 KB.
    let body = json!({"userId": "u", "event": "e", "properties": {"blob": big}});
    let r = app
        .send(
            Method::POST,
            "/v1/track",
            None,
            &[("authorization", &auth)],
            body.to_string(),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");
    // A batch over 500 KB.
    let events: Vec<_> = (0..20)
        .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": i.to_string(), "properties": {"blob": "y".repeat(30 * 1024)}}))
        .collect();
    let body = json!({"batch": events}).to_string();
    assert!(body.len() > 500 * 1024);
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &auth)],
            body.clone(),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");
    // Gzip does not get around the limit: it applies after decompression.
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &auth), ("content-encoding", "gzip")],
            crate::helpers::gzip(body.as_bytes()),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");
    app.finish().await;
}

#[tokio::test]
async fn the_batch_limit_is_configurable_up_to_4_mb() {
    assert!(touchpoint_server::Server::build(
        touchpoint_store::Store::connect("sqlite::memory:")
            .await
            .unwrap(),
        ServerConfig {
            max_batch_bytes: 5 * 1024 * 1024,
            ..Default::default()
        }
    )
    .is_err());
    let app = spawn_app_with(
        Db::Sqlite,
        ServerConfig {
            max_batch_bytes: 4 * 1024 * 1024,
            ..Default::default()
        },
    )
    .await;
    let events: Vec<_> = (0..40)
        .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": i.to_string(), "properties": {"blob": "y".repeat(30 * 1024)}}))
        .collect();
    let body = json!({"batch": events}).to_string();
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &basic(&app.ingest))],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.finish().await;
}

#[tokio::test]
async fn shedding_load_is_429_with_retry_after() {
    let app = spawn_app_with(
        Db::Sqlite,
        ServerConfig {
            max_inflight_ingest: 0,
            ..Default::default()
        },
    )
    .await;
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &basic(&app.ingest))],
            json!({"batch": []}).to_string(),
        )
        .await;
    assert_error(&r, 429, "overloaded");
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    let m = app.get("/metrics", Some(&app.admin)).await;
    assert!(
        m.text.contains("touchpoint_ingest_shed_total 1"),
        "{}",
        m.text
    );
    app.finish().await;
}

#[tokio::test]
async fn idempotency_key_replays_the_same_order_and_refuses_another_with_422() {
    let app = spawn_app().await;
    let order = |total: &str| {
        json!({"channel": "pos", "order_id": "A-1", "ordered_at": "2024-11-11T10:00:00+08:00",
               "customer": {"phone": "13800000009"}, "lines": [{"sku": "s", "unit_price": total}]})
        .to_string()
    };
    let h = [
        ("idempotency-key", "k-1"),
        ("content-type", "application/json"),
    ];
    let r = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &h,
            order("10"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["result"], "inserted");
    // The same key and body: the stored answer, byte for byte ("inserted"
    // again, where a new request would say "unchanged").
    let again = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &h,
            order("10"),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text, r.text);
    let r = app
        .send(
            Method::POST,
            "/api/orders",
            Some(&app.admin),
            &h,
            order("11"),
        )
        .await;
    assert_error(&r, 422, "idempotency_key_mismatch");
    // One order, as the first body wrote it.
    let o = app.get("/api/orders?channel=pos", Some(&app.admin)).await;
    assert_eq!(o.status, 200, "{}", o.text);
    assert_eq!(
        o.body["orders"].as_array().map(Vec::len),
        Some(1),
        "{}",
        o.text
    );
    app.finish().await;
}

#[tokio::test]
async fn server_errors_hide_internals() {
    let app = spawn_app().await;
    // Break the store under the server: the events table is gone.
    let mut h = app.store.acquire().await.unwrap();
    h.conn().exec("DROP TABLE events", &[]).await.unwrap();
    drop(h);
    let r = app
        .send(
            Method::POST,
            "/v1/track",
            None,
            &[("authorization", &basic(&app.ingest))],
            json!({"userId": "u", "event": "e"}).to_string(),
        )
        .await;
    assert_error(&r, 500, "internal");
    assert!(!r.text.contains("events"), "no table names: {}", r.text);
    assert!(!r.text.to_lowercase().contains("sql"), "no SQL: {}", r.text);
    app.finish().await;
}
