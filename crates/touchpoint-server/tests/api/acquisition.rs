//! Acquisition cost: `POST /api/spend` (admin, Idempotency-Key), the
//! tracking pipeline keeping `context.campaign`, and
//! `GET /api/reports/acquisition` answering the JSON of `touchpoint report
//! acquisition -o json`, on SQLite and (when configured) PostgreSQL.

use hyper::Method;
use serde_json::{json, Value};
use touchpoint_server::ServerConfig;
use touchpoint_store::reports::ReportRequest;

use crate::helpers::{assert_error, basic, postgres_url, spawn_app_with, Db, TestApp};

const SPEND: &str = "\
date,channel,campaign,pricing_model,spend,impressions,clicks,conversions
2025-03-01,douyin,spring-live,CPM,600.00,100000,900,4
2025-03-02,tmall,,CPC,250.25,5000,120,1
2025-03-03,tmall,,CPZ,1,0,0,0
";

async fn post_spend(
    app: &TestApp,
    key: &str,
    idem: Option<&str>,
    body: &str,
) -> crate::helpers::Resp {
    let mut headers = vec![("content-type", "text/csv")];
    if let Some(k) = idem {
        headers.push(("idempotency-key", k));
    }
    app.send(
        Method::POST,
        "/api/spend",
        Some(key),
        &headers,
        body.to_string(),
    )
    .await
}

fn as_the_cli_prints(report: &touchpoint_store::reports::Report) -> Value {
    serde_json::from_str(&serde_json::to_string_pretty(report).unwrap()).unwrap()
}

async fn check(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;
    // Only an admin imports spend.
    let r = post_spend(&app, &app.analyst, None, SPEND).await;
    assert_error(&r, 403, "forbidden");
    let r = post_spend(&app, &app.admin, Some("spend-1"), SPEND).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["inserted"], 2, "{}", r.text);
    assert_eq!(r.body["rejected"], 1, "{}", r.text);
    assert_eq!(r.body["errors"][0]["line"], 4, "{}", r.text);
    assert_eq!(r.body["errors"][0]["column"], "pricing_model", "{}", r.text);
    // The same key and body: the first answer again; another body: 422.
    let again = post_spend(&app, &app.admin, Some("spend-1"), SPEND).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, r.body);
    let other = post_spend(
        &app,
        &app.admin,
        Some("spend-1"),
        &SPEND.replace("600.00", "601.00"),
    )
    .await;
    assert_error(&other, 422, "idempotency_key_mismatch");
    // Without a key, the keyed rows make a retry change nothing.
    let retry = post_spend(&app, &app.admin, None, SPEND).await;
    assert_eq!(
        (
            retry.body["inserted"].clone(),
            retry.body["unchanged"].clone()
        ),
        (json!(0), json!(2)),
        "{}",
        retry.text
    );
    // Not a spend file.
    let bad = post_spend(&app, &app.admin, None, "date,channel\n2025-03-01,tmall\n").await;
    assert_error(&bad, 400, "invalid_file");

    // A tracking event with context.campaign, then the person's first order.
    let r = app
        .send(
            Method::POST,
            "/v1/batch",
            None,
            &[("authorization", &basic(&app.ingest)), ("content-type", "application/json")],
            json!({"batch": [
                {"type": "page", "userId": "MN-77", "messageId": "p1", "name": "Landing",
                 "timestamp": "2025-03-01T04:00:00Z",
                 "context": {"campaign": {"name": "spring-live", "source": "Douyin", "medium": "live"}}},
                {"type": "identify", "userId": "MN-77", "messageId": "i1",
                 "timestamp": "2025-03-01T04:01:00Z", "traits": {"phone": "13900000077"}},
                {"type": "track", "userId": "MN-77", "messageId": "o1", "event": "Order Completed",
                 "timestamp": "2025-03-05T04:00:00Z",
                 "properties": {"order_id": "W-1", "total": 88.0, "currency": "CNY",
                                "products": [{"sku": "S1", "price": 88.0, "quantity": 1}]}}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut h = app.store.acquire().await.unwrap();
    let stored = h
        .conn()
        .fetch(
            "SELECT campaign, campaign_source FROM events WHERE message_id = 'p1'",
            &[],
            |x| Ok((x.opt_text(0)?, x.opt_text(1)?)),
        )
        .await
        .unwrap();
    drop(h);
    assert_eq!(
        stored,
        vec![(Some("spring-live".to_string()), Some("douyin".to_string()))]
    );

    let r = app
        .get(
            "/api/reports/acquisition?from=2025-03-01&to=2025-03-31",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let req = ReportRequest::parse(
        "acquisition",
        [("from", "2025-03-01"), ("to", "2025-03-31")],
        chrono_tz::Asia::Shanghai,
    )
    .unwrap();
    assert_eq!(
        r.body,
        as_the_cli_prints(&app.store.report(&req).await.unwrap())
    );
    // 600.00 + 250.25; the member is a new valid and paying customer of the
    // douyin campaign (first touch), 60000 each.
    assert_eq!(r.body["total"]["spend"], 85_025, "{}", r.text);
    let rows = r.body["rows"].as_array().unwrap();
    let live = rows
        .iter()
        .find(|x| x["channel"] == "douyin" && x["campaign"] == "spring-live")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(live["new_valid_members"], 1, "{}", r.text);
    assert_eq!(live["new_paying_customers"], 1, "{}", r.text);
    assert_eq!(live["cost_per_paying_customer"], 60_000, "{}", r.text);
    assert_eq!(r.body["clv_note"], "no model");
    // Parameter errors in the API's error shape.
    let e = app
        .get("/api/reports/acquisition?from=March", Some(&app.analyst))
        .await;
    assert_error(&e, 400, "invalid_request");
    app.finish().await;
}

#[tokio::test]
async fn spend_and_the_acquisition_report_over_http_sqlite() {
    check(Db::Sqlite).await;
}

#[tokio::test]
async fn spend_and_the_acquisition_report_over_http_postgres() {
    if postgres_url().is_none() {
        return;
    }
    check(Db::Postgres).await;
}
