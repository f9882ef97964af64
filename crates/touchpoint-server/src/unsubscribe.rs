//! The unsubscribe link of every marketing e-mail (RFC 8058), public: the
//! token in the path is the secret (an HMAC of the member id with the
//! store's key, [`touchpoint_store::Store::unsubscribe_token`]), so the
//! pages need no key, no session and no CSRF token.
//!
//! - `GET /unsubscribe/{token}` shows a small page with a confirm button and
//!   changes nothing (mail scanners follow links).
//! - `POST /unsubscribe/{token}` with the body `List-Unsubscribe=One-Click`
//!   (what a mail client sends for the `List-Unsubscribe-Post` header; the
//!   page's button sends it too) withdraws e-mail marketing consent for every
//!   topic through the profile door. Used again, it records nothing more.
//!
//! A token that is not valid (mistyped, tampered with) answers 404 with a
//! page that says so.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::Path;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

const TOKEN: crate::routes::Param = param(
    "token",
    In::Path,
    "string",
    true,
    "the member's unsubscribe token, from the e-mail's List-Unsubscribe header",
);

pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/unsubscribe/{token}",
                tag: "profiles",
                summary: "The unsubscribe page (no key; changes nothing)",
                description: "A small HTML page with a button that confirms (a POST to the same address). 404 with a page saying so when the token is not valid.",
                access: Access::Public,
                params: vec![TOKEN],
                body: None,
                response: ("text/html", "the confirmation page"),
            },
            handler: get(page),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/unsubscribe/{token}",
                tag: "profiles",
                summary: "Unsubscribe from marketing e-mail (RFC 8058 one-click; no key)",
                description: "Body `List-Unsubscribe=One-Click` (application/x-www-form-urlencoded or multipart/form-data, as RFC 8058 sends it). Withdraws e-mail consent for every topic; posting again records nothing more. 400 without that body; 404 when the token is not valid.",
                access: Access::Public,
                params: vec![TOKEN],
                body: Some((
                    &["application/x-www-form-urlencoded", "multipart/form-data"],
                    "List-Unsubscribe=One-Click",
                )),
                response: ("text/html", "a page saying it is done"),
            },
            handler: post(one_click),
        },
    ]
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.5rem 1rem}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

fn invalid() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "This unsubscribe link is not valid",
        "<p>The link may have been cut or changed. Open it again from the e-mail, or reply to the e-mail to unsubscribe.</p>",
    )
}

async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .store
        .verify_unsubscribe_token(&token)
        .await?
        .is_none()
    {
        return Ok(invalid());
    }
    // A valid token is digits, '-' and hex: nothing to escape.
    Ok(html(
        StatusCode::OK,
        "Unsubscribe from marketing e-mail",
        &format!(
            "<p>You will no longer receive newsletters or promotions by e-mail. Messages about your orders still arrive.</p>\
             <form method=\"post\" action=\"/unsubscribe/{token}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <input type=\"hidden\" name=\"via\" value=\"page\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
}

/// Whether a form body (URL-encoded or multipart) holds `name=value`.
fn form_has(body: &str, name: &str, value: &str) -> bool {
    let urlencoded = body
        .split('&')
        .any(|pair| pair.trim() == format!("{name}={value}"));
    let multipart = body.split(&format!("name=\"{name}\"")).skip(1).any(|rest| {
        rest.split_once("\r\n\r\n")
            .or_else(|| rest.split_once("\n\n"))
            .is_some_and(|(_, v)| v.trim_start().starts_with(value))
    });
    urlencoded || multipart
}

async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = String::from_utf8_lossy(&body);
    if !form_has(&text, "List-Unsubscribe", "One-Click") {
        return Ok(html(
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            "<p>An unsubscribe request carries the form field List-Unsubscribe=One-Click (RFC 8058). Use the button on the unsubscribe page.</p>",
        ));
    }
    let how = if form_has(&text, "via", "page") {
        "page"
    } else {
        "one-click"
    };
    match state.store.unsubscribe(&token, how).await {
        // A token made for a member no longer stored is no better.
        Ok(None) | Err(touchpoint_store::StoreError::NotFound(_)) => Ok(invalid()),
        Err(e) => Err(e.into()),
        Ok(Some(_)) => Ok(html(
            StatusCode::OK,
            "You are unsubscribed",
            "<p>You will no longer receive marketing e-mail from us. Messages about your orders still arrive.</p>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::form_has;

    #[test]
    fn one_click_bodies_are_recognised_in_both_encodings() {
        assert!(form_has(
            "List-Unsubscribe=One-Click",
            "List-Unsubscribe",
            "One-Click"
        ));
        assert!(form_has(
            "via=page&List-Unsubscribe=One-Click",
            "List-Unsubscribe",
            "One-Click"
        ));
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        assert!(form_has(multipart, "List-Unsubscribe", "One-Click"));
        assert!(!form_has(
            "List-Unsubscribe=Other",
            "List-Unsubscribe",
            "One-Click"
        ));
        assert!(!form_has("", "List-Unsubscribe", "One-Click"));
    }
}
