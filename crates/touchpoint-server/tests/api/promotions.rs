//! Discount rules over HTTP, on SQLite and PostgreSQL: the rule file set and
//! read back, worked examples 1 and 5 of docs/promotions.md (the figures are
//! computed there and in the core's tests), and each refusal of a code with
//! its own error code.

use axum::http::Method;
use serde_json::{json, Value};
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, postgres_url, spawn_app_with, Db, TestApp};

/// The rule file of docs/promotions.md.
const RULES: &str = r#"
timezone = "Asia/Shanghai"

[[quantity]]
name = "Buy 3 Acme, 10% off"
brands = ["Acme"]
tiers = [{ min = 3, percent = 10 }, { min = 5, percent = 15 }]

[[quantity]]
name = "Two skincare, 1.00 off"
categories = ["Skincare"]
tiers = [{ min = 2, amount = 100 }]

[[cumulative]]
name = "Acme club"
brands = ["Acme"]
measure = "spend"
period = "month"
tiers = [{ min = 50000, percent = 5 }, { min = 100000, percent = 8 }]

[[early_payment]]
name = "Presale deposit"
channels = ["miniprogram"]
within_hours = 24
amount = 2000
"#;

/// 2026-11-20 10:00 in Shanghai.
const ORDERED_AT: i64 = 1_795_140_000_000;

async fn write(app: &TestApp, path: &str, idem: &str, body: &Value) -> crate::helpers::Resp {
    app.send(
        Method::POST,
        path,
        Some(&app.admin),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", idem),
        ],
        body.to_string(),
    )
    .await
}

async fn definition(app: &TestApp, name: &str, rules: Value) -> i64 {
    let r = write(
        app,
        "/api/coupons/definitions",
        &format!("def-{name}"),
        &json!({"name": name, "rules": rules}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn public(app: &TestApp, def: i64, code: &str) {
    let r = write(
        app,
        &format!("/api/coupons/definitions/{def}/public"),
        &format!("pub-{code}"),
        &json!({"code": code, "total_limit": 100}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn promotions(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;

    // No rules yet.
    let r = app.get("/api/promotions", Some(&app.analyst)).await;
    assert_error(&r, 404, "not_found");
    // A bad file names the rule and field.
    let put = |body: &str, key: &str| {
        let body = body.to_string();
        let key = key.to_string();
        let app = &app;
        async move {
            app.send(
                Method::PUT,
                "/api/promotions",
                Some(&app.admin),
                &[("idempotency-key", key.as_str())],
                body,
            )
            .await
        }
    };
    let r = put("[[quantity]]\nname = \"q\"\ntiers = []\n", "bad").await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("[[quantity]] rule 1"));
    let r = app
        .send(
            Method::PUT,
            "/api/promotions",
            Some(&app.analyst),
            &[],
            RULES,
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = put(RULES, "rules-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 1);
    let again = put(RULES, "rules-1").await;
    assert_eq!(again.text, r.text);
    let other = put("", "rules-1").await;
    assert_error(&other, 422, "idempotency_key_mismatch");
    let r = app.get("/api/promotions", Some(&app.analyst)).await;
    assert_eq!(r.body["version"], 1, "{}", r.text);
    assert_eq!(
        r.body["rules"]["quantity"][0]["name"],
        "Buy 3 Acme, 10% off"
    );

    // The member spent 60000 on Acme earlier in November (Shanghai), and
    // 30000 in October (not counted).
    let mut member = String::new();
    for (id, at, price) in [
        ("H1", "2026-11-02 11:00:00", "600.00"),
        ("H0", "2026-10-15 11:00:00", "300.00"),
    ] {
        let order = json!({"channel": "shopify", "order_id": id, "ordered_at": at, "status": "paid",
            "customer": {"phone": "13800000077"},
            "lines": [{"sku": "AX", "brand": "Acme", "quantity": 1, "unit_price": price}]});
        let r = app.post_json("/api/orders", Some(&app.admin), &order).await;
        assert_eq!(r.status, 200, "{}", r.text);
        member = r.body["member_id"].as_str().unwrap().to_string();
    }
    let other_order = json!({"channel": "shopify", "order_id": "O1", "ordered_at": "2026-11-02 11:00:00",
        "status": "paid", "customer": {"phone": "13800000078"},
        "lines": [{"sku": "AX", "quantity": 1, "unit_price": "1.00"}]});
    let r = app
        .post_json("/api/orders", Some(&app.admin), &other_order)
        .await;
    let other_member = r.body["member_id"].as_str().unwrap().to_string();

    let evaluate = |body: Value| {
        let app = &app;
        async move {
            app.post_json("/api/promotions/evaluate", Some(&app.ingest), &body)
                .await
        }
    };

    // Worked example 1: 10% of A1's 9999 = 999.9 -> 1000; total 13999. (This
    // member's 60000 of Acme would also give the club's 5% on A1: 5% of 8999
    // = 449.95 -> 450, so the example uses the other member, who has none.)
    let r = evaluate(json!({"member_id": other_member, "channel": "shopify", "ordered_at": ORDERED_AT,
        "lines": [{"sku": "A1", "brand": "Acme", "category": "Tea", "quantity": 3, "unit_price": 3333},
                  {"sku": "B1", "brand": "Other", "category": "Tea", "quantity": 1, "unit_price": 5000}]}))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["subtotal"], 14999);
    assert_eq!(r.body["applied"][0]["rule"], "Buy 3 Acme, 10% off");
    assert_eq!(r.body["applied"][0]["amount"], 1000);
    assert_eq!(r.body["applied"].as_array().unwrap().len(), 1, "{}", r.text);
    assert_eq!(r.body["total"], 13999);
    assert_eq!(r.body["rules_version"], 1);
    let why: Vec<&str> = r.body["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rule"].as_str().unwrap())
        .collect();
    assert!(
        why.contains(&"Acme club") && why.contains(&"Presale deposit"),
        "{why:?}"
    );

    // Worked example 5: the whole stack.
    let pct = definition(
        &app,
        "PCT10",
        json!({"kind": "percent", "percent": 10, "stackable": true}),
    )
    .await;
    public(&app, pct, "PCT10").await;
    let fixed = definition(
        &app,
        "FIXED50",
        json!({"kind": "fixed", "amount": 5000, "stackable": true}),
    )
    .await;
    let r = write(
        &app,
        &format!("/api/coupons/definitions/{fixed}/issue"),
        "issue-1",
        &json!({"member_id": member}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fixed_code = r.body["coupons"][0]["code"].as_str().unwrap().to_string();
    let solo = definition(&app, "SOLO", json!({"kind": "fixed", "amount": 100})).await;
    public(&app, solo, "SOLO").await;
    let order = |codes: Vec<&str>| {
        json!({"member_id": member, "channel": "miniprogram", "ordered_at": ORDERED_AT,
            "paid_at": ORDERED_AT + 2 * 3_600_000, "codes": codes,
            "lines": [{"sku": "A1", "brand": "Acme", "category": "Tea", "quantity": 3, "unit_price": 10000},
                      {"sku": "B1", "brand": "Other", "category": "Tea", "quantity": 1, "unit_price": 5000}]})
    };
    let r = evaluate(order(vec![&fixed_code, "pct10", "SOLO"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got: Vec<(String, i64)> = r.body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("Buy 3 Acme, 10% off".to_string(), 3000),
            ("Acme club".to_string(), 1350),
            ("Presale deposit".to_string(), 2000),
            ("PCT10".to_string(), 2865),
            (fixed_code.clone(), 5000),
        ]
    );
    assert_eq!(r.body["rule_discount"], 6350);
    assert_eq!(r.body["coupon_discount"], 7865);
    assert_eq!(r.body["total"], 20785);
    assert!(r.text.contains("not stackable"), "{}", r.text);
    // No side effect: the coupons are unused.
    let u = app.get("/api/coupons/usage", Some(&app.analyst)).await;
    assert!(
        u.body["usage"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["redeemed"] == 0),
        "{}",
        u.text
    );

    // Each refusal has its own code, naming the code.
    let r = evaluate(order(vec!["NOSUCHCODE"])).await;
    assert_error(&r, 404, "unknown_coupon");
    assert!(r.body["message"].as_str().unwrap().contains("NOSUCHCODE"));
    let r = app
        .post_json(
            "/api/promotions/evaluate",
            Some(&app.ingest),
            &json!({"member_id": other_member, "lines": [{"sku": "A1", "unit_price": 100}], "codes": [fixed_code]}),
        )
        .await;
    assert_error(&r, 422, "coupon_wrong_member");
    let old = definition(
        &app,
        "OLD",
        json!({"kind": "fixed", "amount": 100, "valid_until": ORDERED_AT - 1}),
    )
    .await;
    public(&app, old, "OLD1").await;
    let r = evaluate(order(vec!["OLD1"])).await;
    assert_error(&r, 422, "coupon_expired");
    let skin = definition(
        &app,
        "SKIN",
        json!({"kind": "fixed", "amount": 100, "categories": ["Skincare"]}),
    )
    .await;
    public(&app, skin, "SKIN1").await;
    let r = evaluate(order(vec!["SKIN1"])).await;
    assert_error(&r, 422, "coupon_out_of_scope");
    // After the rules the basket costs 28650: a minimum of 30000 is not met.
    let big = definition(
        &app,
        "BIG",
        json!({"kind": "fixed", "amount": 100, "min_spend": 30000}),
    )
    .await;
    public(&app, big, "BIG1").await;
    let r = evaluate(order(vec!["BIG1"])).await;
    assert_error(&r, 422, "coupon_below_minimum_spend");
    assert!(
        r.body["message"].as_str().unwrap().contains("28650"),
        "{}",
        r.text
    );
    // Bad requests.
    let r = evaluate(json!({"member_id": member, "lines": []})).await;
    assert_error(&r, 400, "invalid_request");
    let r = evaluate(
        json!({"member_id": member, "lines": [{"sku": "A1", "quantity": 0, "unit_price": 1}]}),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let r = evaluate(
        json!({"member_id": member, "ordered_at": ORDERED_AT, "paid_at": ORDERED_AT - 1,
        "lines": [{"sku": "A1", "unit_price": 1}]}),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let r = evaluate(json!({"member_id": member, "lines": [{"sku": "A1", "unit_price": 1}], "codes": ["SOLO", "solo"]})).await;
    assert_error(&r, 400, "invalid_request");
    let r = evaluate(json!({"member": member})).await;
    assert_error(&r, 400, "invalid_json");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotions_over_http_on_sqlite() {
    promotions(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotions_over_http_on_postgres() {
    if postgres_url().is_none() {
        return;
    }
    promotions(Db::Postgres).await;
}
