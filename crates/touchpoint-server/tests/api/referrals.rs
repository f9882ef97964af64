//! Referrals over HTTP, on SQLite and PostgreSQL: the settings, a member's
//! referral page with the invite link, attribution by hand with refusals
//! answered `referral_refused`, the code-claim door, the report (the same
//! JSON as `touchpoint report referrals -o json`), the member 360.

use axum::http::Method;
use serde_json::{json, Value};
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, postgres_url, spawn_app_with, Db, TestApp};

async fn write(
    app: &TestApp,
    path: &str,
    key: &str,
    idem: &str,
    body: &Value,
) -> crate::helpers::Resp {
    app.send(
        Method::POST,
        path,
        Some(key),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", idem),
        ],
        body.to_string(),
    )
    .await
}

async fn order(app: &TestApp, id: &str, phone: &str, day: &str) -> String {
    let o = json!({"channel": "pos", "order_id": id, "ordered_at": format!("{day} 10:00:00"), "status": "paid",
        "customer": {"phone": phone}, "lines": [{"sku": "S1", "quantity": 1, "unit_price": "20.00"}]});
    let r = app.post_json("/api/orders", Some(&app.admin), &o).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["member_id"].as_str().unwrap().to_string()
}

/// 409 `referral_refused`: the error shape plus `reason` and `attribution`.
fn refused(r: &crate::helpers::Resp) {
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "referral_refused");
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn referrals(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;
    let settings =
        "advocate_points = 500\nfriend_points = 200\nlink_base = \"https://brand.example/r/\"\n";
    let put = |key: String, idem: &'static str, body: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::PUT,
                "/api/referrals/program",
                Some(&key),
                &[("idempotency-key", idem)],
                body.to_string(),
            )
            .await
        }
    };
    assert_error(
        &put(app.analyst.clone(), "p0", settings).await,
        403,
        "forbidden",
    );
    assert_error(
        &put(app.admin.clone(), "p1", "bogus = 1").await,
        400,
        "invalid_request",
    );
    let r = put(app.admin.clone(), "p2", settings).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/api/referrals/program", Some(&app.analyst)).await;
    assert_eq!(r.body["program"]["advocate_points"], 500, "{}", r.text);

    let adv = order(&app, "A1", "13800000001", "2024-06-01").await;
    let old = order(&app, "O1", "13800000002", "2024-06-02").await;
    let r = app
        .get(&format!("/api/members/{adv}/referral"), Some(&app.analyst))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let code = r.body["code"].as_str().unwrap().to_string();
    assert_eq!(r.body["link"], format!("https://brand.example/r/{code}"));
    let again = app
        .get(&format!("/api/members/{adv}/referral"), Some(&app.analyst))
        .await;
    assert_eq!(again.body["code"], code, "stable");

    // By hand: writes are for admins; refusals have their own code.
    let body = |m: &str, c: &str| json!({"member_id": m, "code": c});
    assert_error(
        &write(
            &app,
            "/api/referrals/attribute",
            &app.analyst,
            "a0",
            &body(&old, &code),
        )
        .await,
        403,
        "forbidden",
    );
    let r = write(
        &app,
        "/api/referrals/attribute",
        &app.admin,
        "a1",
        &body(&old, &code),
    )
    .await;
    refused(&r);
    assert_eq!(r.body["reason"], "not_new", "{}", r.text);
    assert_eq!(r.body["attribution"]["state"], "refused");
    let replay = write(
        &app,
        "/api/referrals/attribute",
        &app.admin,
        "a1",
        &body(&old, &code),
    )
    .await;
    assert_eq!(
        (replay.status.as_u16(), replay.text.clone()),
        (409, r.text.clone())
    );
    let r = write(
        &app,
        "/api/referrals/attribute",
        &app.admin,
        "a2",
        &body(&adv, &code),
    )
    .await;
    refused(&r);
    assert_eq!(r.body["reason"], "self_referral");
    assert_error(
        &write(
            &app,
            "/api/referrals/attribute",
            &app.admin,
            "a3",
            &body(&adv, "ABC"),
        )
        .await,
        400,
        "invalid_request",
    );
    let unknown = touchpoint_core::referrals::invite_code_from_bytes([7, 7, 7, 7, 7]);
    assert_error(
        &write(
            &app,
            "/api/referrals/attribute",
            &app.admin,
            "a4",
            &body(&adv, &unknown),
        )
        .await,
        404,
        "unknown_invite_code",
    );

    // The code-claim door: a new person scanning a package with the code.
    let r = app
        .post_json(
            "/api/loyalty/codes/batches",
            Some(&app.admin),
            &json!({"name": "box", "count": 2, "points": 25}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let csv = app
        .get(
            &format!("/api/loyalty/codes/batches/{id}/codes.csv"),
            Some(&app.admin),
        )
        .await;
    let codes: Vec<String> = csv
        .text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let claim = |b: Value| {
        let app = &app;
        async move {
            app.post_json("/api/loyalty/codes/claim", Some(&app.ingest), &b)
                .await
        }
    };
    assert_error(
        &claim(json!({"code": codes[0], "phone": "13800000003", "referral_code": unknown})).await,
        404,
        "unknown_invite_code",
    );
    let r = claim(
        json!({"code": codes[0], "phone": "13800000003", "referral_code": code.to_lowercase()}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["referral"]["state"], "attributed", "{}", r.text);
    assert_eq!(r.body["referral"]["source"], "claim");
    let friend = r.body["member_id"].as_str().unwrap().to_string();
    // A claim by a known member with a code: refused, and the claim goes through.
    let r = claim(json!({"code": codes[1], "member_id": old, "referral_code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["points"], 25);
    assert_eq!(r.body["referral"]["reason"], "not_new");

    // The friend by hand again with the same code: the attribution is returned.
    let r = write(
        &app,
        "/api/referrals/attribute",
        &app.admin,
        "a5",
        &body(&friend, &code),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["source"], "claim");

    // The report: the same JSON as the command line's.
    let r = app.get("/api/reports/referrals", Some(&app.analyst)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cli = serde_json::to_value(app.store.referral_report().await.unwrap()).unwrap();
    assert_eq!(r.body, cli);
    assert_eq!(
        (
            r.body["attributed"].as_i64(),
            r.body["refused_not_new"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(r.body["refused_self_referral"], 1);

    // Member 360 (API and dashboard data): referral and coupons.
    let m = app
        .get(&format!("/api/members/{adv}"), Some(&app.analyst))
        .await;
    assert_eq!(m.body["referral"]["code"], code, "{}", m.text);
    assert_eq!(
        m.body["referral"]["friends"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(m.body["coupons"].is_array());
    let f = app
        .get(&format!("/api/members/{friend}"), Some(&app.analyst))
        .await;
    assert_eq!(
        f.body["referral"]["referred_by"]["advocate_id"]
            .as_i64()
            .map(|i| format!("M-{i}")),
        Some(adv.clone())
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn referrals_over_http_on_sqlite() {
    referrals(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn referrals_over_http_on_postgres() {
    if postgres_url().is_none() {
        return;
    }
    referrals(Db::Postgres).await;
}
