//! `GET /api/reports/{kind}`: the library's report, serialised as the CLI
//! does; parameter errors in the API's error shape. Member 360 predictions.

use hyper::Method;
use serde_json::Value;
use touchpoint_store::clv::MemberPrediction;
use touchpoint_store::reports::ReportRequest;

use crate::helpers::{assert_error, spawn_app, TestApp};

/// Six buyers over two channels; two of them buy in both.
fn orders_csv(prefix: &str, phones: &[&str], day: u32) -> String {
    let mut s = String::from("order_id,ordered_at,status,phone,email,sku,quantity,unit_price\n");
    for (i, p) in phones.iter().enumerate() {
        for k in 0..=(i % 3) {
            s.push_str(&format!(
                "{prefix}{i}-{k},2025-0{}-{:02} 10:00:00,paid,{p},,S{k},{},{}.50\n",
                1 + k,
                day + i as u32,
                1 + i % 2,
                10 + 7 * i
            ));
        }
    }
    s
}

async fn import(app: &TestApp, channel: &str, csv: String) {
    let r = app
        .send(
            Method::POST,
            &format!("/api/imports?format=canonical&channel={channel}"),
            Some(&app.admin),
            &[("content-type", "text/csv")],
            csv,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["orders"]["rejected"], 0, "{}", r.text);
}

/// The report as `touchpoint report KIND -o json` prints it
/// (`serde_json::to_writer_pretty`), read back as the test client reads the
/// API's body (text to value, so floats parse the same way on both sides).
fn as_the_cli_prints(report: &touchpoint_store::reports::Report) -> Value {
    serde_json::from_str(&serde_json::to_string_pretty(report).unwrap()).unwrap()
}

async fn small_brand(app: &TestApp) {
    let tmall = ["13800000001", "13800000002", "13800000003", "13800000004"];
    let jd = ["13800000003", "13800000004", "13800000005", "13800000006"];
    import(app, "tmall", orders_csv("T", &tmall, 3)).await;
    import(app, "jd", orders_csv("J", &jd, 10)).await;
}

#[tokio::test]
async fn rfm_of_a_channel_is_the_library_report_as_the_cli_prints_it() {
    let app = spawn_app().await;
    small_brand(&app).await;
    let r = app
        .get("/api/reports/rfm?channel=tmall", Some(&app.analyst))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let req =
        ReportRequest::parse("rfm", [("channel", "tmall")], chrono_tz::Asia::Shanghai).unwrap();
    let report = app.store.report(&req).await.unwrap();
    assert_eq!(r.body, as_the_cli_prints(&report));
    assert_eq!(r.body["members"], 4, "{}", r.text);
    // The filter applies: all six members without it.
    let all = app.get("/api/reports/rfm", Some(&app.analyst)).await;
    assert_eq!(all.body["members"], 6, "{}", all.text);
    // Options and the date range go through too.
    let r = app
        .get(
            "/api/reports/rfm?channel=tmall&members=true&from=2025-01-01&to=2025-01-31",
            Some(&app.analyst),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["member_scores"].as_array().map(Vec::len), Some(4));
    let r = app
        .get(
            "/api/reports/abc?channel_fee=tmall=0.05&channel_fee=jd=0.04&fulfilment_cost=1.5",
            Some(&app.admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let req = ReportRequest::parse(
        "abc",
        [
            ("channel_fee", "tmall=0.05,jd=0.04"),
            ("fulfilment_cost", "1.5"),
        ],
        chrono_tz::Asia::Shanghai,
    )
    .unwrap();
    let abc = app.store.report(&req).await.unwrap();
    assert_eq!(r.body, as_the_cli_prints(&abc));
    for kind in ["retention", "cohorts", "products", "channels", "summary"] {
        let r = app
            .get(&format!("/api/reports/{kind}"), Some(&app.analyst))
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text);
        assert!(r.body["as_of"].is_string(), "{kind}: {}", r.text);
    }
    app.finish().await;
}

#[tokio::test]
async fn bad_kinds_and_parameters_answer_invalid_request_naming_them() {
    let app = spawn_app().await;
    for (path, words) in [
        ("/api/reports/ltv", &["kind \"ltv\"", "rfm, abc"][..]),
        (
            "/api/reports/rfm?since=11.11.2025",
            &["since", "YYYY-MM-DD"],
        ),
        ("/api/reports/rfm?chanel=tmall", &["chanel", "channel"]),
        (
            "/api/reports/abc?channel_fee=tmall",
            &["channel_fee", "CHANNEL=RATE"],
        ),
        ("/api/reports/abc?weights=1,2", &["weights", "three"]),
        (
            "/api/reports/rfm?from=2025-02-01&to=2025-01-01",
            &["to", "on or after from"],
        ),
        (
            "/api/reports/retention?repeat_90_min=2",
            &["repeat_90_min", "0 to 1"],
        ),
    ] {
        let r = app.get(path, Some(&app.analyst)).await;
        assert_error(&r, 400, "invalid_request");
        let m = r.body["message"].as_str().unwrap();
        for w in words {
            assert!(m.contains(w), "{path}: {m:?} lacks {w:?}");
        }
    }
    let r = app.get("/api/reports/rfm", Some(&app.ingest)).await;
    assert_error(&r, 403, "forbidden");
    let r = app.get("/api/reports/rfm", None).await;
    assert_error(&r, 401, "unauthorized");
    app.finish().await;
}

#[tokio::test]
async fn member_360_carries_the_stored_predictions() {
    let app = spawn_app().await;
    small_brand(&app).await;
    let m = app
        .get("/api/members?phone=13800000003", Some(&app.analyst))
        .await;
    let shown = m.body["members"][0]["id"]
        .as_str()
        .expect("member id")
        .to_string();
    let id: i64 = shown.trim_start_matches("M-").parse().unwrap();
    let r = app
        .get(&format!("/api/members/{shown}"), Some(&app.analyst))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["predictions"], serde_json::json!([]), "{}", r.text);
    let p = MemberPrediction {
        member_id: id,
        p_alive: 0.75,
        expected_purchases: 1.5,
        expected_spend: Some(42.0),
        clv: None,
        horizon_days: 365.0,
        computed_at: 1_700_000_000_000,
    };
    app.store.store_predictions("bgnbd", &[p]).await.unwrap();
    app.store
        .store_predictions("paretonbd", &[MemberPrediction { p_alive: 0.5, ..p }])
        .await
        .unwrap();
    let r = app
        .get(&format!("/api/members/{shown}"), Some(&app.analyst))
        .await;
    let preds = r.body["predictions"].as_array().expect("predictions");
    assert_eq!(preds.len(), 2, "{}", r.text);
    assert_eq!(preds[0]["model"], "bgnbd");
    assert_eq!(preds[0]["p_alive"], 0.75);
    assert_eq!(preds[0]["expected_spend"], 42.0);
    assert_eq!(preds[0]["clv"], Value::Null);
    assert_eq!(preds[0]["horizon_days"], 365.0);
    assert_eq!(preds[1]["model"], "paretonbd");
    assert_eq!(preds[1]["p_alive"], 0.5);
    app.finish().await;
}

#[tokio::test]
async fn clv_models_lists_the_stored_models_to_readers() {
    let app = crate::helpers::spawn_app().await;
    let r = app.get("/api/clv/models", Some(&app.analyst)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, serde_json::json!({"models": []}));
    let r = app.get("/api/clv/models", None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    app.finish().await;
}
