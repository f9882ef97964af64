//! The points mall and coupons over HTTP, on SQLite and PostgreSQL: a hold
//! captured into a coupon, the validation refusals, 64 concurrent redeems of
//! one coupon, an order that carries a public code.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{json, Value};
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, postgres_url, spawn_app_with, Db, TestApp};

const PROGRAM: &str =
    "name = \"Rewards\"\nstarts = \"2025-01-01\"\npending_days = 0\n[[earn]]\npoints = 1\n";

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

async fn mall_and_coupons(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;
    let r = app
        .send(
            Method::PUT,
            "/api/loyalty/program",
            Some(&app.admin),
            &[],
            PROGRAM,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order = json!({"channel": "pos", "order_id": "P1", "ordered_at": "2025-05-01 10:00:00", "status": "paid",
        "customer": {"phone": "13800000001"}, "lines": [{"sku": "S1", "quantity": 1, "unit_price": "200.00"}]});
    let r = app.post_json("/api/orders", Some(&app.admin), &order).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let member = r.body["member_id"].as_str().unwrap().to_string();

    // Management is for admins.
    let def = json!({"name": "10 off 50", "rules": {"kind": "fixed", "amount": 1000, "min_spend": 5000, "return_on_refund": true}});
    let r = write(&app, "/api/coupons/definitions", &app.analyst, "d0", &def).await;
    assert_error(&r, 403, "forbidden");
    let r = write(&app, "/api/coupons/definitions", &app.admin, "d1", &def).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let def_id = r.body["id"].as_i64().unwrap();
    let reward = json!({"name": "Voucher", "kind": "coupon", "points_cost": 50, "stock": 2, "coupon_definition_id": def_id});
    let r = write(&app, "/api/rewards", &app.admin, "r1", &reward).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let reward_id = r.body["id"].as_i64().unwrap();

    // Hold; the retry is the same hold.
    let hold_path = format!("/api/rewards/{reward_id}/hold");
    let body = json!({"member_id": member, "channel": "pos", "hold_seconds": 600});
    let h = write(&app, &hold_path, &app.ingest, "h1", &body).await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.body["state"], "held");
    let again = write(&app, &hold_path, &app.ingest, "h1", &body).await;
    assert_eq!(again.body["id"], h.body["id"]);
    let other = write(
        &app,
        &hold_path,
        &app.ingest,
        "h1",
        &json!({"member_id": member}),
    )
    .await;
    assert_error(&other, 422, "idempotency_key_mismatch");
    let points = app
        .get(&format!("/api/members/{member}/points"), Some(&app.analyst))
        .await;
    assert_eq!(points.body["available"], 150, "{}", points.text);
    let hold_id = h.body["id"].as_i64().unwrap();
    let c = write(
        &app,
        &format!("/api/rewards/holds/{hold_id}/capture"),
        &app.ingest,
        "c1",
        &json!({}),
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["state"], "captured");
    let code = c.body["coupon"]["code"].as_str().unwrap().to_string();
    let rel = write(
        &app,
        &format!("/api/rewards/holds/{hold_id}/release"),
        &app.ingest,
        "x1",
        &json!({}),
    )
    .await;
    assert_error(&rel, 409, "hold_not_active");
    // The member 360 lists the coupon.
    let m = app
        .get(&format!("/api/members/{member}"), Some(&app.analyst))
        .await;
    assert_eq!(m.body["coupons"][0]["code"], code.as_str(), "{}", m.text);

    // Validation, with no side effect.
    let v = |amount: i64, code: &str| json!({"code": code, "member_id": member, "amount": amount});
    let r = app
        .post_json("/api/coupons/validate", Some(&app.ingest), &v(4_000, &code))
        .await;
    assert_error(&r, 422, "coupon_below_minimum_spend");
    let r = app
        .post_json(
            "/api/coupons/validate",
            Some(&app.ingest),
            &v(4_000, "NOSUCHCODE"),
        )
        .await;
    assert_error(&r, 404, "unknown_coupon");
    let r = app
        .post_json("/api/coupons/validate", Some(&app.ingest), &v(6_000, &code))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["discount"], 1000);

    // 64 concurrent redeems of the one coupon: exactly one succeeds.
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (app, code, member) = (app.clone(), code.clone(), member.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"code": code, "member_id": member, "order_reference": format!("W{i}"), "amount": 6000});
            let r = write(&app, "/api/coupons/redeem", &app.ingest, &format!("redeem-{i}"), &body).await;
            if r.status != 200 {
                assert_error(&r, 409, "coupon_already_redeemed");
            } else {
                assert_eq!(r.body["discount"], 1000);
            }
            r.status == 200
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1, "{db:?}");

    // A public code carried by an order is marked redeemed by the order.
    let r = write(
        &app,
        &format!("/api/coupons/definitions/{def_id}/public"),
        &app.admin,
        "p1",
        &json!({"code": "WELCOME", "total_limit": 100, "per_member_limit": 1}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut order2 = order.clone();
    order2["order_id"] = json!("P2");
    order2["coupon"] = json!("welcome");
    let r = app
        .post_json("/api/orders", Some(&app.admin), &order2)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = app.get("/api/coupons/usage", Some(&app.analyst)).await;
    assert_eq!(u.body["usage"][0]["issued"], 2, "{}", u.text);
    assert_eq!(u.body["usage"][0]["redeemed"], 2, "{}", u.text);
    let r = app
        .post_json(
            "/api/coupons/validate",
            Some(&app.ingest),
            &v(6_000, "WELCOME"),
        )
        .await;
    assert_error(&r, 409, "coupon_limit_reached");
    Arc::try_unwrap(app)
        .ok()
        .expect("no other owner")
        .finish()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mall_and_coupons_over_http_on_sqlite() {
    mall_and_coupons(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mall_and_coupons_over_http_on_postgres() {
    if postgres_url().is_none() {
        return;
    }
    mall_and_coupons(Db::Postgres).await;
}
