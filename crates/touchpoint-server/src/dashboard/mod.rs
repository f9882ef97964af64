//! The web dashboard, served by `touchpoint serve` at `/`: server-rendered
//! HTML pages over the same library calls as the API (every report through
//! [`touchpoint_store::Store::report`]), with the chart library embedded in
//! the binary (nothing is loaded from elsewhere).
//!
//! Sign-in exchanges an analyst or admin API key for a session cookie
//! (HttpOnly, SameSite=Strict, Secure when the request came over HTTPS
//! through a proxy that says so); sessions live in the server's memory with
//! an expiry ([`crate::ServerConfig::dashboard_session_ttl`]) and end when
//! the key is revoked. Every form carries a CSRF token checked on POST: the
//! session's token, or before sign-in a double-submit cookie. An analyst
//! sees every page; changes (the analytics rebuild) need an admin key.
//!
//! Pages and assets are gzipped when the browser accepts it.
//!
//! The pages are in [`pages`]; this module holds the routes, sessions,
//! filters, layout and HTML helpers.

mod assets;
mod html;
mod pages;
mod session;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use touchpoint_store::keys::Role;

use crate::AppState;
pub use session::Sessions;
use session::{DashUser, SESSION_COOKIE, SIGNIN_CSRF_COOKIE};

/// The dashboard's routes (not part of the API's route table or OpenAPI).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/overview") }))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/overview", get(pages::overview))
        .route("/customers", get(pages::customers))
        .route("/value", get(pages::value))
        .route("/products", get(pages::products))
        .route("/members", get(pages::members))
        .route("/members/{id}", get(pages::member))
        .route("/acquisition", get(pages::acquisition))
        .route("/admin/analytics/rebuild", post(pages::rebuild_analytics))
        .route("/assets/{name}", get(assets::asset))
        // Pages and assets go out gzipped to a browser that accepts it (a
        // page and its assets stay far under 200 KB that way).
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

/// A rendered page or an error page.
pub(crate) type PageResult = Result<Response, Response>;

/// Security headers of every page.
fn page_headers(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A message page (errors: wrong key, expired session, missing CSRF token,
/// not allowed, bad filter, server error).
pub(crate) fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    user: Option<&DashUser>,
) -> Response {
    let mut body = String::new();
    body.push_str(&format!(
        "<section class=\"message\" data-status=\"{}\"><h1>{}</h1><p>{}</p>",
        status.as_u16(),
        html::esc(title),
        html::esc(message)
    ));
    if user.is_none() {
        body.push_str("<p><a href=\"/signin\">Sign in</a></p>");
    } else {
        body.push_str("<p><a href=\"/overview\">Back to the overview</a></p>");
    }
    body.push_str("</section>");
    page_headers(status, html::layout(title, user, "", &body))
}

/// An internal error: logged with its cause, answered with a generic page.
pub(crate) fn server_error(e: impl std::fmt::Display, user: &DashUser) -> Response {
    tracing::error!(error = %e, "dashboard page failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The page could not be built; the server log has the cause.",
        Some(user),
    )
}

#[derive(Debug, Deserialize, Default)]
struct SigninQuery {
    next: Option<String>,
    reason: Option<String>,
}

/// Only a path on this site (no scheme, no `//host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/overview".to_string(),
    }
}

fn signin_form(
    status: StatusCode,
    headers: &HeaderMap,
    next: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = session::random_token();
    let mut body = String::from("<section class=\"signin\"><h1>Sign in to Touchpoint</h1>");
    if let Some(e) = error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            html::esc(e)
        ));
    }
    if let Some(n) = notice {
        body.push_str(&format!("<p class=\"notice\">{}</p>", html::esc(n)));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/signin\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>API key (analyst or admin)<input type=\"password\" name=\"key\" autocomplete=\"current-password\" required autofocus></label>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Create a key with <code>touchpoint keys create --role analyst</code>.</p></section>",
        html::esc(next)
    ));
    let mut r = page_headers(status, html::layout("Sign in", None, "", &body));
    let cookie = session::cookie(
        SIGNIN_CSRF_COOKIE,
        &token,
        session::is_https(headers),
        Some(3600),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn signin_page(headers: HeaderMap, Query(q): Query<SigninQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    let notice = match q.reason.as_deref() {
        Some("expired") => Some("Your session expired: sign in again."),
        Some("signedout") => Some("You are signed out."),
        _ => None,
    };
    signin_form(StatusCode::OK, &headers, &next, None, notice)
}

#[derive(Debug, Deserialize)]
struct SigninForm {
    key: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SigninForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let cookie = session::cookie_value(&headers, SIGNIN_CSRF_COOKIE);
    if !session::tokens_match(cookie.as_deref(), f.csrf.as_deref()) {
        return session::csrf_failure(None);
    }
    let key = match state.authenticate(f.key.as_deref().map(str::trim)).await {
        Ok(k) => k,
        Err(_) => {
            return signin_form(
                StatusCode::UNAUTHORIZED,
                &headers,
                &next,
                Some("That API key is unknown or revoked. Paste an analyst or admin key (touchpoint keys list shows them)."),
                None,
            )
        }
    };
    if !matches!(key.role, Role::Admin | Role::Analyst) {
        return signin_form(
            StatusCode::FORBIDDEN,
            &headers,
            &next,
            Some(&format!(
                "A key with role {} cannot open the dashboard: it needs an analyst or admin key.",
                key.role.as_str()
            )),
            None,
        );
    }
    let token = state.dashboard.create(key);
    let mut r = Redirect::to(&next).into_response();
    let https = session::is_https(&headers);
    let ttl = state.config.dashboard_session_ttl.as_secs();
    for c in [
        session::cookie(SESSION_COOKIE, &token, https, Some(ttl)),
        session::cookie(SIGNIN_CSRF_COOKIE, "", https, Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: Option<String>,
}

async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match session::user(&state, &headers, "/overview").await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r;
    }
    state.dashboard.remove(&user.token);
    let mut r = Redirect::to("/signin?reason=signedout").into_response();
    let c = session::cookie(SESSION_COOKIE, "", session::is_https(&headers), Some(0));
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Used by pages: the id in `/members/{id}`.
pub(crate) type IdPath = Path<String>;
