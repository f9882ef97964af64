//! Campaigns over HTTP, on SQLite and PostgreSQL: a campaign file stored
//! (with its Idempotency-Key), refused with its line, listed, shown and
//! reported; the dead-letter list and retry (their content is tested in the
//! store's campaigns tests); the roles.

use axum::http::Method;
use serde_json::json;
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, postgres_url, spawn_app_with, Db, TestApp};

const FILE: &str = r#"name = "hook"
channel = "webhook"
control_percent = 0

[webhook]
url = "http://127.0.0.1:9/nowhere"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[audience]
expression = 'last_order_days >= 30'

[trigger]
kind = "segment_entry"

[message]
subject = "Points"
body = "{{member_id}} has {{points}} points"
"#;

async fn post_file(app: &TestApp, key: &str, idem: &str, body: &str) -> crate::helpers::Resp {
    app.send(
        Method::POST,
        "/api/campaigns",
        Some(key),
        &[
            ("content-type", "application/toml"),
            ("idempotency-key", idem),
        ],
        body.to_string(),
    )
    .await
}

async fn campaigns(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;
    let r = post_file(&app, &app.analyst, "a", FILE).await;
    assert_error(&r, 403, "forbidden");
    let bad = FILE.replace("{{points}}", "{{ponits}}");
    let r = post_file(&app, &app.admin, "bad", &bad).await;
    assert_error(&r, 400, "invalid_request");
    let m = r.body["message"].as_str().unwrap();
    assert!(
        m.contains("line") && m.contains("did you mean {{points}}"),
        "{m}"
    );
    let r = post_file(&app, &app.admin, "v1", FILE).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.body["name"].as_str(), r.body["version"].as_i64()),
        (Some("hook"), Some(1))
    );
    let again = post_file(&app, &app.admin, "v1", FILE).await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (r.status, r.text.as_str())
    );
    let other = post_file(&app, &app.admin, "v1", &FILE.replace("Points", "Hi")).await;
    assert_error(&other, 422, "idempotency_key_mismatch");
    let r = post_file(&app, &app.admin, "v2", &FILE.replace("Points", "Hi")).await;
    assert_eq!(r.body["version"], 2, "{}", r.text);

    let r = app.get("/api/campaigns", Some(&app.analyst)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.body["campaigns"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["version"], 2);
    let r = app.get("/api/campaigns/hook", Some(&app.analyst)).await;
    assert_eq!(r.body["version"], 2, "{}", r.text);
    assert!(r.body["body"]
        .as_str()
        .unwrap()
        .contains("subject = \"Hi\""));
    assert_error(
        &app.get("/api/campaigns/nope", Some(&app.analyst)).await,
        404,
        "not_found",
    );
    assert_error(&app.get("/api/campaigns", None).await, 401, "unauthorized");

    let r = app
        .get("/api/campaigns/hook/report?days=7", Some(&app.analyst))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["campaign"].as_str(),
            r.body["conversion_days"].as_i64()
        ),
        (Some("hook"), Some(7))
    );
    assert_error(
        &app.get("/api/campaigns/hook/report?days=0", Some(&app.analyst))
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.get("/api/campaigns/nope/report", Some(&app.analyst))
            .await,
        404,
        "not_found",
    );

    // No dead letters yet; a retry of nothing queues nothing.
    let r = app
        .get("/api/campaigns/dead-letters", Some(&app.analyst))
        .await;
    assert_eq!(r.body["dead_letters"], json!([]), "{}", r.text);
    let retry = |body: serde_json::Value, idem: &str| {
        let idem = idem.to_string();
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/campaigns/retry",
                Some(&app.admin),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", idem.as_str()),
                ],
                body.to_string(),
            )
            .await
        }
    };
    let r = retry(json!({"all": true}), "r0").await;
    assert_eq!(r.body["queued"], 0, "{}", r.text);
    assert_error(
        &retry(json!({"all": true, "ids": [1]}), "r1").await,
        400,
        "invalid_request",
    );
    assert_error(&retry(json!({}), "r2").await, 400, "invalid_request");
    app.finish().await;
}

#[tokio::test]
async fn campaigns_over_the_api_on_sqlite() {
    campaigns(Db::Sqlite).await;
}

#[tokio::test]
async fn campaigns_over_the_api_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("skipped: TOUCHPOINT_TEST_POSTGRES_URL is not set");
        return;
    }
    campaigns(Db::Postgres).await;
}
