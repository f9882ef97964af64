//! Profiles, tags, consent, segments and the unsubscribe link over HTTP, on
//! both backends (PostgreSQL when TOUCHPOINT_TEST_POSTGRES_URL is set).

use hyper::Method;
use serde_json::{json, Value};
use touchpoint_core::MemberId;
use touchpoint_server::ServerConfig;

use crate::helpers::{assert_error, basic, postgres_url, spawn_app_with, Db, Resp, TestApp};

async fn batch(app: &TestApp, body: &Value) -> Resp {
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

async fn member_of(app: &TestApp, member_no: &str) -> String {
    let r = app
        .get(
            &format!("/api/members?member_no={member_no}"),
            Some(&app.analyst),
        )
        .await;
    r.body["members"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no member {member_no}: {}", r.text))
        .to_string()
}

async fn write(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    idem: Option<&str>,
    body: &Value,
) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(k) = idem {
        headers.push(("idempotency-key", k));
    }
    app.send(method, path, key, &headers, body.to_string())
        .await
}

async fn history_len(app: &TestApp, id: &str) -> usize {
    let r = app
        .get(&format!("/api/members/{id}/consent"), Some(&app.analyst))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["history"].as_array().unwrap().len()
}

async fn scenario(db: Db) {
    let app = spawn_app_with(db, ServerConfig::default()).await;

    // An identify with traits fills the profile, with the identity, in one unit of work.
    let r = batch(
        &app,
        &json!({"batch": [
            {"type": "identify", "userId": "VIP-1", "messageId": "i1", "traits": {
                "email": "li@example.com", "name": "Li Lei", "gender": "male",
                "birthday": "1990-05-17", "address": {"state": "浙江省", "city": "杭州"},
                "locale": "zh-CN"}},
            {"type": "identify", "userId": "VIP-2", "messageId": "i2", "traits": {"city": "杭州"}},
            {"type": "identify", "userId": "VIP-3", "messageId": "i3",
             "context": {"traits": {"city": "杭州", "firstName": "Han", "lastName": "Mei"}}},
            {"type": "identify", "userId": "VIP-4", "messageId": "i4", "traits": {"birthday": "not a date"}},
        ]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = member_of(&app, "VIP-1").await;
    let p = app
        .get(&format!("/api/members/{id}/profile"), Some(&app.analyst))
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let a = &p.body["attributes"];
    assert_eq!(
        (
            a["name"].as_str(),
            a["gender"].as_str(),
            a["birthday"].as_str()
        ),
        (Some("Li Lei"), Some("male"), Some("1990-05-17")),
        "{}",
        p.text
    );
    assert_eq!(
        (
            a["region"].as_str(),
            a["city"].as_str(),
            a["language"].as_str()
        ),
        (Some("浙江省"), Some("杭州"), Some("zh-CN"))
    );
    let id3 = member_of(&app, "VIP-3").await;
    let p3 = app
        .get(&format!("/api/members/{id3}/profile"), Some(&app.analyst))
        .await;
    assert_eq!(p3.body["attributes"]["name"], "Han Mei", "{}", p3.text);
    // A bad birthday trait is left out; the identify still joins.
    let id4 = member_of(&app, "VIP-4").await;
    let p4 = app
        .get(&format!("/api/members/{id4}/profile"), Some(&app.analyst))
        .await;
    assert!(p4.body["attributes"]["birthday"].is_null(), "{}", p4.text);
    let changed = app
        .store
        .acquire()
        .await
        .unwrap()
        .conn()
        .fetch_opt(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'profile_changed'",
            &[],
            |r| r.i64(0),
        )
        .await
        .unwrap();
    assert_eq!(
        changed,
        Some(3),
        "one profile_changed per identify that set something"
    );

    // Writes: admin only.
    let path = format!("/api/members/{id}/profile");
    let r = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.analyst),
        None,
        &json!({"city": "上海"}),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.admin),
        Some("p-1"),
        &json!({"city": "上海"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["changed"]["attributes"], json!(["city"]));
    assert_eq!(r.body["profile"]["attributes"]["city"], "上海");
    // The same key and body replays the first answer byte for byte (it would say nothing changed otherwise).
    let again = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.admin),
        Some("p-1"),
        &json!({"city": "上海"}),
    )
    .await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (r.status, r.text.as_str())
    );
    let other = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.admin),
        Some("p-1"),
        &json!({"city": "北京"}),
    )
    .await;
    assert_error(&other, 422, "idempotency_key_mismatch");
    let r = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.admin),
        None,
        &json!({"birthday": "17.05.1990"}),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert!(
        r.body["message"].as_str().unwrap().contains("YYYY-MM-DD"),
        "{}",
        r.text
    );
    let r = write(
        &app,
        Method::PATCH,
        &path,
        Some(&app.admin),
        None,
        &json!({"town": "x"}),
    )
    .await;
    assert_error(&r, 400, "invalid_json");

    // Tags.
    let tags = format!("/api/members/{id}/tags");
    let r = write(
        &app,
        Method::POST,
        &tags,
        Some(&app.admin),
        Some("t-1"),
        &json!({"tags": ["VIP", "early"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["changed"]["tags_added"], json!(["vip", "early"]));
    let r = write(
        &app,
        Method::POST,
        &tags,
        Some(&app.analyst),
        None,
        &json!({"tags": ["x"]}),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = write(
        &app,
        Method::POST,
        &tags,
        Some(&app.admin),
        None,
        &json!({"tags": ["no/slash"]}),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let r = write(
        &app,
        Method::DELETE,
        &format!("{tags}/early"),
        Some(&app.admin),
        Some("d-1"),
        &json!(null),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["changed"]["tags_removed"], json!(["early"]));
    assert_eq!(
        r.body["profile"]["tags"],
        json!([{"tag": "vip", "source": "manual"}])
    );
    let r = write(
        &app,
        Method::DELETE,
        &format!("{tags}/early"),
        Some(&app.admin),
        None,
        &json!(null),
    )
    .await;
    assert_eq!(r.body["changed"]["tags_removed"], json!([]), "{}", r.text);
    for other in ["VIP-2", "VIP-3"] {
        let m = member_of(&app, other).await;
        let r = write(
            &app,
            Method::POST,
            &format!("/api/members/{m}/tags"),
            Some(&app.admin),
            None,
            &json!({"tags": ["vip"]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // Consent: a retry with the same key records the choice once.
    let consent = format!("/api/members/{id}/consent");
    let body = json!({"channel": "email", "granted": true, "detail": "sign-up form"});
    let r = write(
        &app,
        Method::POST,
        &consent,
        Some(&app.admin),
        Some("c-1"),
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["changed"]["consent"].as_array().unwrap().len(), 2);
    let again = write(
        &app,
        Method::POST,
        &consent,
        Some(&app.admin),
        Some("c-1"),
        &body,
    )
    .await;
    assert_eq!(again.text, r.text);
    assert_eq!(history_len(&app, &id).await, 2);
    let r = write(
        &app,
        Method::POST,
        &consent,
        Some(&app.admin),
        None,
        &json!({"channel": "fax", "granted": true}),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("email, sms, wechat, webhook"));
    let r = write(
        &app,
        Method::POST,
        &consent,
        Some(&app.analyst),
        None,
        &body,
    )
    .await;
    assert_error(&r, 403, "forbidden");
    // A choice dated in the future is refused (it would outrank every later one).
    let future = json!({"channel": "email", "granted": false, "at": 4_102_444_800_000i64});
    let r = write(
        &app,
        Method::POST,
        &consent,
        Some(&app.admin),
        None,
        &future,
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    let c = app.get(&consent, Some(&app.analyst)).await;
    assert_eq!(c.body["current"].as_array().unwrap().len(), 2);
    assert!(c.body["current"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["granted"] == true));
    assert_eq!(c.body["history"][0]["detail"], "sign-up form");

    // Preview: analysts may; a bad expression says where and what was meant.
    let r = app
        .post_json(
            "/api/segments/preview",
            Some(&app.analyst),
            &json!({"expression": "has_tag(\"vip\") and city = \"杭州\"", "sample": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["size"], 2, "{}", r.text);
    assert_eq!(r.body["sample"].as_array().unwrap().len(), 1);
    assert!(
        r.body["sample"][0]["member_id"]
            .as_str()
            .unwrap()
            .starts_with("M-"),
        "{}",
        r.text
    );
    assert!(r.body["sample"][0]["city"] == "杭州", "{}", r.text);
    let r = app
        .post_json(
            "/api/segments/preview",
            Some(&app.analyst),
            &json!({"expression": "has_tag(\"vip\") and\n  cty = \"杭州\""}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_expression");
    assert_eq!(
        (r.body["line"].as_u64(), r.body["column"].as_u64()),
        (Some(2), Some(3)),
        "{}",
        r.text
    );
    assert_eq!(r.body["suggestion"], "city");

    // Saved segments.
    let seg =
        json!({"name": "vips", "expression": "has_tag(\"vip\")", "description": "tagged by hand"});
    let r = write(
        &app,
        Method::POST,
        "/api/segments",
        Some(&app.analyst),
        None,
        &seg,
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = write(
        &app,
        Method::POST,
        "/api/segments",
        Some(&app.admin),
        Some("s-1"),
        &seg,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["description"], "tagged by hand");
    let again = write(
        &app,
        Method::POST,
        "/api/segments",
        Some(&app.admin),
        Some("s-1"),
        &seg,
    )
    .await;
    assert_eq!(
        (again.status.as_u16(), again.text.as_str()),
        (201, r.text.as_str())
    );
    let taken = write(
        &app,
        Method::POST,
        "/api/segments",
        Some(&app.admin),
        None,
        &seg,
    )
    .await;
    assert_error(&taken, 409, "segment_exists");
    let bad = write(
        &app,
        Method::POST,
        "/api/segments",
        Some(&app.admin),
        None,
        &json!({"name": "x", "expression": "orders >>= 2"}),
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), &bad.body["code"]),
        (422, &json!("invalid_expression")),
        "{}",
        bad.text
    );
    let city = json!({"name": "hangzhou", "expression": "city = \"杭州\""});
    assert_eq!(
        write(
            &app,
            Method::POST,
            "/api/segments",
            Some(&app.admin),
            None,
            &city
        )
        .await
        .status,
        201
    );
    let list = app.get("/api/segments", Some(&app.analyst)).await;
    let names: Vec<&str> = list.body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hangzhou", "vips"]);
    assert_error(
        &app.get("/api/segments/nope", Some(&app.analyst)).await,
        404,
        "not_found",
    );
    let r = write(
        &app,
        Method::POST,
        "/api/segments/refresh",
        Some(&app.admin),
        Some("r-1"),
        &json!({"name": "vips", "as_of": "2025-12-01"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["refreshed"],
        json!([{"name": "vips", "members": 3, "tagged": 0, "untagged": 0}])
    );
    let r = write(
        &app,
        Method::POST,
        "/api/segments/refresh",
        Some(&app.analyst),
        None,
        &json!({}),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let s = app.get("/api/segments/vips", Some(&app.analyst)).await;
    assert_eq!(s.body["sizes"], json!([["2025-12-01", 3]]), "{}", s.text);
    assert!(
        app.get("/api/segments/hangzhou", Some(&app.analyst))
            .await
            .body["sizes"]
            == json!([])
    );

    // Members, paged and as CSV.
    let p1 = app
        .get("/api/segments/hangzhou/members?limit=2", Some(&app.analyst))
        .await;
    assert_eq!(p1.status, 200, "{}", p1.text);
    // VIP-1 moved to 上海, so VIP-2 and VIP-3 remain.
    assert_eq!(p1.body["size"], 2, "{}", p1.text);
    let p1 = app
        .get("/api/segments/vips/members?limit=2", Some(&app.analyst))
        .await;
    assert_eq!(
        (
            p1.body["size"].as_u64(),
            p1.body["members"].as_array().unwrap().len()
        ),
        (Some(3), 2)
    );
    let cursor = p1.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let p2 = app
        .get(
            &format!("/api/segments/vips/members?limit=2&after={cursor}"),
            Some(&app.analyst),
        )
        .await;
    assert_eq!(
        p2.body["members"].as_array().unwrap().len(),
        1,
        "{}",
        p2.text
    );
    assert!(p2.body.get("next_cursor").is_none(), "{}", p2.text);
    let mut seen: Vec<String> = p1.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.body["members"].as_array().unwrap())
        .map(|m| m["member_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    let csv = app
        .send(
            Method::GET,
            "/api/segments/vips/members",
            Some(&app.analyst),
            &[("accept", "text/csv")],
            "",
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(
        lines[0].starts_with("member_id,rfm_segment"),
        "{}",
        csv.text
    );
    assert_eq!(lines.len(), 4, "{}", csv.text);
    assert!(csv.text.contains(&format!("{id},")), "{}", csv.text);

    // The unsubscribe link: the page changes nothing, the one-click POST
    // withdraws e-mail consent once, a tampered token is refused.
    let member = MemberId::parse(&id).unwrap();
    let token = app.store.unsubscribe_token(member).await.unwrap();
    let page = app.get(&format!("/unsubscribe/{token}"), None).await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.text.contains("<form method=\"post\"") && page.text.contains("One-Click"),
        "{}",
        page.text
    );
    assert!(app
        .store
        .may_send_marketing(member, "email", "newsletter")
        .await
        .unwrap());
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = app
        .send(
            Method::POST,
            &format!("/unsubscribe/{token}"),
            None,
            &form,
            "List-Unsubscribe=One-Click",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("unsubscribed"));
    for topic in ["newsletter", "promotions"] {
        assert!(!app
            .store
            .may_send_marketing(member, "email", topic)
            .await
            .unwrap());
    }
    assert_eq!(history_len(&app, &id).await, 4);
    let h = app.get(&consent, Some(&app.analyst)).await;
    assert_eq!(h.body["history"][3]["source"], "unsubscribe");
    assert_eq!(h.body["history"][3]["detail"], "one-click");
    let r = app
        .send(
            Method::POST,
            &format!("/unsubscribe/{token}"),
            None,
            &form,
            "List-Unsubscribe=One-Click",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        history_len(&app, &id).await,
        4,
        "a second POST records nothing"
    );
    let tampered = tamper(&token);
    let r = app.get(&format!("/unsubscribe/{tampered}"), None).await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("not valid"), "{}", r.text);
    let other = member_of(&app, "VIP-2").await;
    let forged = format!(
        "{}-{}",
        MemberId::parse(&other).unwrap().get(),
        token.split_once('-').unwrap().1
    );
    let r = app
        .send(
            Method::POST,
            &format!("/unsubscribe/{forged}"),
            None,
            &form,
            "List-Unsubscribe=One-Click",
        )
        .await;
    assert_eq!(
        r.status, 404,
        "another member's id with this MAC is refused"
    );
    assert_eq!(history_len(&app, &other).await, 0);
    let r = app
        .send(
            Method::POST,
            &format!("/unsubscribe/{token}"),
            None,
            &form,
            "",
        )
        .await;
    assert_eq!(r.status, 400);

    app.finish().await;
}

/// The token with its last hex digit changed.
fn tamper(token: &str) -> String {
    let last = if token.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &token[..token.len() - 1])
}

#[tokio::test]
async fn profiles_tags_consent_segments_and_unsubscribe_on_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn profiles_tags_consent_segments_and_unsubscribe_on_postgres() {
    if postgres_url().is_none() {
        eprintln!("TOUCHPOINT_TEST_POSTGRES_URL not set; skipped");
        return;
    }
    scenario(Db::Postgres).await;
}
