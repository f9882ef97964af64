//! The loyalty API over HTTP: spends with Idempotency-Key, the error codes,
//! code batches downloaded once, claims by member and by phone.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

const PROGRAM: &str =
    "name = \"Rewards\"\nstarts = \"2025-01-01\"\npending_days = 0\n[[earn]]\npoints = 1\n";

#[tokio::test]
async fn spends_codes_and_claims_over_http() {
    let app = spawn_app().await;
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
    assert_eq!(r.body["version"], 1);
    let order = json!({"channel": "pos", "order_id": "P1", "ordered_at": "2025-05-01 10:00:00", "status": "paid",
        "customer": {"phone": "13800000001"}, "lines": [{"sku": "S1", "quantity": 1, "unit_price": "200.00"}]});
    let r = app.post_json("/api/orders", Some(&app.admin), &order).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let member = r.body["member_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| r.body["member_id"].to_string());
    let points = app
        .get(&format!("/api/members/{member}/points"), Some(&app.analyst))
        .await;
    assert_eq!(points.body["available"], 200, "{}", points.text);

    // Spend with a key; the retry returns the stored answer and debits nothing.
    let spend = |body: serde_json::Value, key: &'static str| {
        let app = &app;
        let member = member.clone();
        async move {
            app.send(
                Method::POST,
                &format!("/api/members/{member}/points/spend"),
                Some(&app.ingest),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", key),
                ],
                body.to_string(),
            )
            .await
        }
    };
    let a = spend(
        json!({"points": 150, "reason": "voucher", "reference": "T1"}),
        "k1",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["available"], 50);
    let b = spend(
        json!({"points": 150, "reason": "voucher", "reference": "T1"}),
        "k1",
    )
    .await;
    assert_eq!(b.text, a.text);
    let c = spend(json!({"points": 10, "reason": "voucher"}), "k1").await;
    assert_error(&c, 422, "idempotency_key_mismatch");
    let d = spend(json!({"points": 51}), "k2").await;
    assert_error(&d, 409, "insufficient_points");
    let points = app
        .get(&format!("/api/members/{member}/points"), Some(&app.analyst))
        .await;
    assert_eq!(points.body["available"], 50);
    // The member 360 carries the same points account.
    let m360 = app
        .get(&format!("/api/members/{member}"), Some(&app.analyst))
        .await;
    assert_eq!(m360.body["points"]["available"], 50, "{}", m360.text);
    assert_eq!(m360.body["points"]["entries"], points.body["entries"]);

    // A batch: created, downloaded once.
    let r = app
        .post_json(
            "/api/loyalty/codes/batches",
            Some(&app.admin),
            &json!({"name": "box", "count": 3, "points": 25}),
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
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "code,url");
    assert_eq!(lines.len(), 4);
    let codes: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let again = app
        .get(
            &format!("/api/loyalty/codes/batches/{id}/codes.csv"),
            Some(&app.admin),
        )
        .await;
    assert_error(&again, 404, "not_found");

    let claim = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.post_json("/api/loyalty/codes/claim", Some(&app.ingest), &body)
                .await
        }
    };
    let ok = claim(json!({"code": codes[0], "member_id": member})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        (ok.body["points"].as_i64(), ok.body["available"].as_i64()),
        (Some(25), Some(75))
    );
    assert_error(
        &claim(json!({"code": codes[0], "member_id": member})).await,
        409,
        "code_already_claimed",
    );
    // By phone: a new person becomes a member.
    let new = claim(json!({"code": codes[1], "phone": "13900000009"})).await;
    assert_eq!(new.status, 200, "{}", new.text);
    assert_ne!(new.body["member_id"].as_str(), Some(member.as_str()));
    let mut typo = codes[2].clone();
    let last = typo.pop().unwrap();
    typo.push(if last == '0' { '1' } else { '0' });
    assert_error(
        &claim(json!({"code": typo, "member_id": member})).await,
        400,
        "invalid_code",
    );
    let unknown = touchpoint_core::loyalty::generate_code();
    for _ in 0..9 {
        assert_error(
            &claim(json!({"code": unknown, "member_id": member})).await,
            404,
            "unknown_code",
        );
    }
    let limited = claim(json!({"code": codes[2], "member_id": member})).await;
    assert_error(&limited, 429, "too_many_attempts");
    // A sliding hour: the ten leave 60 minutes after the minute they were
    // counted in, not at the next clock hour.
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3_540..=3_600).contains(&wait), "Retry-After {wait}");
    app.finish().await;
}
