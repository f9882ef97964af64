//! The web dashboard: sign-in with an API key for a session cookie, the
//! clear pages of a wrong key, an expired session, a form without its CSRF
//! token and an analyst trying an admin form; every page over the demo data
//! showing the API's numbers; and (with `TOUCHPOINT_TEST_BROWSER=1`) the
//! same in headless Chromium, driven by `tests/browser/dashboard.mjs`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;
use touchpoint_core::demo::{self, DemoConfig};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::ReadOptions;
use touchpoint_core::{ChannelName, Currency};
use touchpoint_server::ServerConfig;
use touchpoint_store::import::{import_files, ImportOptions};

use crate::helpers::{postgres_url, spawn_app_with, Db, Resp, TestApp};

fn backends() -> Vec<Db> {
    let mut v = vec![Db::Sqlite];
    if postgres_url().is_some() {
        v.push(Db::Postgres);
    } else {
        eprintln!("TOUCHPOINT_TEST_POSTGRES_URL is not set: dashboard tests run on SQLite only");
    }
    v
}

/// The session cookie of a response's Set-Cookie headers.
fn set_cookie<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The value of `<input ... name="NAME" value="...">` in a page.
fn form_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

async fn get_with(app: &TestApp, path: &str, cookie: &str) -> Resp {
    app.send(Method::GET, path, None, &[("cookie", cookie)], Bytes::new())
        .await
}

async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie),
    ];
    headers.extend_from_slice(extra);
    app.send(Method::POST, path, None, &headers, body.to_string())
        .await
}

/// Sign in with `key`; the session cookie (`tp_session=...`) and the
/// session's CSRF token read from the page after sign-in.
async fn sign_in(app: &TestApp, key: &str) -> (String, String) {
    let page = app.get("/signin", None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let pre = cookie_pair(set_cookie(&page, "tp_signin_csrf").expect("sign-in CSRF cookie"));
    let token = form_value(&page.text, "csrf").expect("CSRF field");
    let r = post_form(
        app,
        "/signin",
        &pre,
        &format!("csrf={token}&key={key}&next=%2Foverview"),
        &[],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.headers["location"], "/overview");
    let session = cookie_pair(set_cookie(&r, "tp_session").expect("session cookie"));
    let page = get_with(app, "/members", &session).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csrf = form_value(&page.text, "csrf").expect("sign-out form's CSRF token");
    (session, csrf)
}

#[tokio::test]
async fn sign_in_sessions_csrf_and_roles_give_clear_pages() {
    for db in backends() {
        let app = spawn_app_with(db, ServerConfig::default()).await;

        // No session: to the sign-in page, remembering where to go.
        let r = app.get("/customers?period=7", None).await;
        assert_eq!(r.status, 303, "{db:?}");
        assert_eq!(r.headers["location"], "/signin?next=%2Fcustomers");

        // A wrong key: the sign-in page again, saying so.
        let page = app.get("/signin", None).await;
        let pre = cookie_pair(set_cookie(&page, "tp_signin_csrf").unwrap());
        let token = form_value(&page.text, "csrf").unwrap();
        let r = post_form(
            &app,
            "/signin",
            &pre,
            &format!("csrf={token}&key=tp_wrong"),
            &[],
        )
        .await;
        assert_eq!(r.status, 401, "{db:?} {}", r.text);
        assert!(r.text.contains("unknown or revoked"), "{}", r.text);
        assert!(set_cookie(&r, "tp_session").is_none());

        // An ingest key cannot open the dashboard.
        let r = post_form(
            &app,
            "/signin",
            &pre,
            &format!("csrf={token}&key={}", app.ingest),
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(
            r.text.contains("needs an analyst or admin key"),
            "{}",
            r.text
        );

        // The sign-in form without its CSRF token (or with another one).
        let r = post_form(&app, "/signin", &pre, &format!("key={}", app.analyst), &[]).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(
            r.text.contains("without its security token (CSRF)"),
            "{}",
            r.text
        );
        let r = post_form(
            &app,
            "/signin",
            "",
            &format!("csrf={token}&key={}", app.analyst),
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text);

        // The session cookie: HttpOnly, SameSite=Strict; Secure behind an HTTPS proxy.
        let r = post_form(
            &app,
            "/signin",
            &pre,
            &format!("csrf={token}&key={}", app.analyst),
            &[],
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.text);
        let c = set_cookie(&r, "tp_session").unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert!(!c.contains("Secure"), "{c}");
        let r = post_form(
            &app,
            "/signin",
            &pre,
            &format!("csrf={token}&key={}", app.analyst),
            &[("x-forwarded-proto", "https")],
        )
        .await;
        assert!(set_cookie(&r, "tp_session").unwrap().contains("; Secure"));

        // An analyst sees pages, but the admin form is refused with a clear page.
        let (analyst, csrf) = sign_in(&app, &app.analyst).await;
        let r = get_with(&app, "/overview", &analyst).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.text.contains("Admins only"),
            "the form says it is for admins"
        );
        let r = post_form(
            &app,
            "/admin/analytics/rebuild",
            &analyst,
            &format!("csrf={csrf}"),
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(r.text.contains("Only an admin can do this"), "{}", r.text);
        assert!(r.text.contains("role analyst"), "{}", r.text);

        // An admin's form without the CSRF token, with another session's, then right.
        let (admin, admin_csrf) = sign_in(&app, &app.admin).await;
        let r = post_form(&app, "/admin/analytics/rebuild", &admin, "", &[]).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(r.text.contains("security token (CSRF)"), "{}", r.text);
        let r = post_form(
            &app,
            "/admin/analytics/rebuild",
            &admin,
            &format!("csrf={csrf}"),
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "another session's token: {}", r.text);
        let r = post_form(
            &app,
            "/admin/analytics/rebuild",
            &admin,
            &format!("csrf={admin_csrf}"),
            &[],
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.text);
        assert_eq!(r.headers["location"], "/overview?done=rebuilt");

        // A bad filter names the field and the accepted form.
        let r = get_with(
            &app,
            "/overview?period=custom&from=2025-13-01&to=2025-01-01",
            &admin,
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(
            r.text
                .contains("from &quot;2025-13-01&quot;: expected a date as YYYY-MM-DD"),
            "{}",
            r.text
        );

        // Sign out: the session no longer opens pages; sign-out needs the token too.
        let r = post_form(&app, "/signout", &admin, "", &[]).await;
        assert_eq!(r.status, 403);
        let r = post_form(&app, "/signout", &admin, &format!("csrf={admin_csrf}"), &[]).await;
        assert_eq!(r.status, 303);
        assert_eq!(r.headers["location"], "/signin?reason=signedout");
        let r = get_with(&app, "/overview", &admin).await;
        assert_eq!(r.status, 303);

        // A revoked key ends its sessions.
        let key = app.store.list_keys().await.unwrap();
        let analyst_id = key
            .iter()
            .find(|k| k.role == touchpoint_store::keys::Role::Analyst)
            .unwrap()
            .key_id
            .clone();
        app.store.revoke_key(&analyst_id).await.unwrap();
        let r = get_with(&app, "/overview", &analyst).await;
        assert_eq!(r.status, 401);
        assert!(r.text.contains("Your key was revoked"), "{}", r.text);
        app.finish().await;
    }
}

#[tokio::test]
async fn an_expired_session_gets_the_sign_in_page_saying_so() {
    for db in backends() {
        let app = spawn_app_with(
            db,
            ServerConfig {
                dashboard_session_ttl: Duration::ZERO,
                ..ServerConfig::default()
            },
        )
        .await;
        let page = app.get("/signin", None).await;
        let pre = cookie_pair(set_cookie(&page, "tp_signin_csrf").unwrap());
        let token = form_value(&page.text, "csrf").unwrap();
        let r = post_form(
            &app,
            "/signin",
            &pre,
            &format!("csrf={token}&key={}", app.admin),
            &[],
        )
        .await;
        assert_eq!(r.status, 303);
        let session = cookie_pair(set_cookie(&r, "tp_session").unwrap());
        let r = get_with(&app, "/overview", &session).await;
        assert_eq!(r.status, 401, "{db:?}");
        assert!(r.text.contains("Your session expired"), "{}", r.text);
        assert!(r.text.contains("href=\"/signin\""), "{}", r.text);
        app.finish().await;
    }
}

/// A small demo brand imported through the real import path, with CLV
/// predictions stored, so every page has data.
pub async fn demo_brand(app: &TestApp, dir: &Path) {
    let m = demo::generate(
        &DemoConfig {
            members: 700,
            ..DemoConfig::default()
        },
        dir,
    )
    .unwrap();
    for f in &m.files {
        let o = ImportOptions {
            format: f.format,
            read: ReadOptions {
                channel: Some(ChannelName::parse(f.channel.as_str()).unwrap()),
                default_country: "86".into(),
                default_currency: Currency::parse("CNY").unwrap(),
                business_tz: chrono_tz::Asia::Shanghai,
                encoding: None,
            },
            identity: IdentityConfig::default(),
            strict: false,
            rejects: None,
            chunk_orders: 5_000,
            refresh_analytics: true,
        };
        import_files(&app.store, std::slice::from_ref(&f.path), &o, &|_| {})
            .await
            .unwrap();
    }
    // The demo's marketing spend, as `touchpoint demo` imports it.
    let mut spend = Vec::new();
    let cfg = DemoConfig::default();
    touchpoint_core::demo::spend::write_spend(&mut spend, cfg.start, cfg.end).unwrap();
    let r = app.store.import_spend(spend, None).await.unwrap();
    assert_eq!(r.rejected, 0, "{:?}", r.errors);
    use touchpoint_core::clv::pipeline::{ClvOptions, ModelKind};
    use touchpoint_core::clv::TimeUnit;
    use touchpoint_store::clv::PredictRequest;
    app.store
        .clv_predict(&PredictRequest {
            model: ModelKind::BgNbd,
            options: ClvOptions {
                unit: TimeUnit::Week,
                horizon: Some("12months".parse().unwrap()),
                ..ClvOptions::default()
            },
            timezone: chrono_tz::Asia::Shanghai,
            store: true,
        })
        .await
        .unwrap();
}

/// `data-kpi="KEY" data-v="VALUE"` of a page.
fn kpi(html: &str, key: &str) -> f64 {
    let at = html
        .find(&format!("data-kpi=\"{key}\" data-v=\""))
        .unwrap_or_else(|| panic!("no KPI {key}"));
    let rest = &html[at + key.len() + 20..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

/// The `data-api` of the report `name` on a page.
fn api_of(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("data-report=\"{name}\" data-api=\""))
        .unwrap_or_else(|| panic!("no API reference for {name}"));
    let rest = &html[at + name.len() + 25..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

fn close(a: f64, b: &Value, what: &str) {
    let b = b.as_f64().unwrap_or_else(|| panic!("{what}: {b}"));
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{what}: page {a}, API {b}"
    );
}

#[tokio::test]
async fn every_page_shows_the_numbers_of_the_api() {
    for db in backends() {
        let app = spawn_app_with(db, ServerConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        demo_brand(&app, dir.path()).await;
        let (session, _) = sign_in(&app, &app.analyst).await;
        for path in [
            "/overview",
            "/customers",
            "/value",
            "/products",
            "/members?q=M-1",
            "/members/M-1",
            "/acquisition",
            "/customers?by=channel&period=ytd",
        ] {
            let r = get_with(&app, path, &session).await;
            assert_eq!(r.status, 200, "{db:?} {path}: {}", r.text);
            assert!(r.text.contains("Download CSV"), "{path}");
            assert!(!r.text.contains("No CLV predictions"), "{path}");
        }
        let names = app.get("/api/reports/channels", Some(&app.analyst)).await;
        let channel = names.body["channels"][0]["channel"]
            .as_str()
            .unwrap()
            .to_string();
        for qs in ["", "?period=90", &format!("?period=ytd&channel={channel}")] {
            let page = get_with(&app, &format!("/overview{qs}"), &session).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let api = app
                .get(&api_of(&page.text, "overview"), Some(&app.analyst))
                .await;
            assert_eq!(api.status, 200, "{}", api.text);
            let cur = &api.body["current"];
            for k in [
                "net_revenue",
                "orders",
                "buyers",
                "new_members",
                "aov",
                "repeat_rate",
                "annual_return_rate",
            ] {
                close(
                    kpi(&page.text, k),
                    &cur[k],
                    &format!("{db:?} overview{qs} {k}"),
                );
            }
            assert!(
                cur["orders"].as_u64().unwrap() > 0,
                "{qs}: the period has orders"
            );
        }
        // Acquisition: the headline figures are the report's totals, and a
        // channel filter narrows both the same way.
        for qs in ["?period=ytd", &format!("?period=90&channel={channel}")] {
            let page = get_with(&app, &format!("/acquisition{qs}"), &session).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let api = app
                .get(&api_of(&page.text, "acquisition"), Some(&app.analyst))
                .await;
            assert_eq!(api.status, 200, "{}", api.text);
            let tot = &api.body["total"];
            assert!(tot["spend"].as_i64().unwrap() > 0, "{qs}: spend {tot}");
            assert!(
                tot["new_valid_members"].as_i64().unwrap() > 0,
                "{qs}: {tot}"
            );
            for k in [
                "spend",
                "new_valid_members",
                "new_paying_customers",
                "cost_per_valid_member",
                "cost_per_paying_customer",
            ] {
                close(
                    kpi(&page.text, k),
                    &tot[k],
                    &format!("{db:?} acquisition{qs} {k}"),
                );
            }
            let rows = api.body["channels"].as_array().unwrap().len();
            assert!(rows > 0, "{qs}: {}", api.text);
            let shown = page.text.matches("<tr><td data-v=").count();
            assert!(
                shown >= rows,
                "{qs}: {shown} table rows for {rows} channel rows"
            );
        }
        let page = get_with(&app, "/value", &session).await;
        let models = app.get("/api/clv/models", Some(&app.analyst)).await;
        close(
            kpi(&page.text, "n_customers"),
            &models.body["models"][0]["n_customers"],
            "value n_customers",
        );
        close(
            kpi(&page.text, "log_likelihood"),
            &models.body["models"][0]["log_likelihood"],
            "value log_likelihood",
        );
        app.finish().await;
    }
}

/// In headless Chromium: sign in, open every page, change a filter, compare
/// the numbers shown with the API's, no console errors, screenshots in
/// `target/browser-screenshots/`. Runs when TOUCHPOINT_TEST_BROWSER=1.
#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    if std::env::var("TOUCHPOINT_TEST_BROWSER").ok().as_deref() != Some("1") {
        eprintln!("skipped: set TOUCHPOINT_TEST_BROWSER=1 (needs /usr/bin/chromium and `npm ci` in crates/touchpoint-server/tests/browser)");
        return;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = here.join("tests/browser/dashboard.mjs");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| here.join("../../target"));
    for db in backends() {
        let app = spawn_app_with(db, ServerConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        demo_brand(&app, dir.path()).await;
        let shots = target
            .join("browser-screenshots")
            .join(format!("{db:?}").to_lowercase());
        std::fs::create_dir_all(&shots).unwrap();
        let mut cmd = std::process::Command::new("node");
        cmd.arg(&script)
            .env("DASHBOARD_URL", &app.url)
            .env("ANALYST_KEY", &app.analyst)
            .env("ADMIN_KEY", &app.admin)
            .env("SCREENSHOTS", &shots)
            .env("PROFILE_DIR", dir.path().join("chromium-profile"))
            .current_dir(here.join("tests/browser"));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{db:?}: browser test failed\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("all pages checked"), "{stdout}\n{stderr}");
        eprintln!("{db:?}:\n{stdout}");
        app.finish().await;
    }
}
