//! Dashboard sessions: a random token in an HttpOnly, SameSite=Strict
//! cookie; the server keeps, by the token's SHA-256, the key it was made
//! from, the session's CSRF token and its expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use subtle::ConstantTimeEq;
use touchpoint_store::keys::{hash_key, ApiKey, Role};

use super::message_page;
use crate::AppState;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "tp_session";
/// The sign-in form's double-submit CSRF cookie.
pub(crate) const SIGNIN_CSRF_COOKIE: &str = "tp_signin_csrf";

struct Session {
    key: ApiKey,
    csrf: String,
    expires: Instant,
}

/// The sessions of this server process.
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("ttl", &self.ttl).finish()
    }
}

/// A signed-in user of a page.
#[derive(Debug, Clone)]
pub struct DashUser {
    /// The key the session was made from.
    pub key: ApiKey,
    /// The session's CSRF token (in every form).
    pub csrf: String,
    /// The session token (to sign out).
    pub(crate) token: String,
}

/// 32 random bytes, URL-safe base64.
pub(crate) fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// Sessions that last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a session for `key`; returns the cookie's token.
    pub(crate) fn create(&self, key: ApiKey) -> String {
        let token = random_token();
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        map.insert(
            hash_key(&token),
            Session {
                key,
                csrf: random_token(),
                expires: now + self.ttl,
            },
        );
        token
    }

    /// End a session.
    pub(crate) fn remove(&self, token: &str) {
        self.lock().remove(&hash_key(token));
    }

    /// The live session of `token`: `Err(true)` when it expired, `Err(false)` when unknown.
    fn get(&self, token: &str) -> Result<(ApiKey, String), bool> {
        let h = hash_key(token);
        let mut map = self.lock();
        match map.get(&h) {
            Some(s) if s.expires > Instant::now() => Ok((s.key.clone(), s.csrf.clone())),
            Some(_) => {
                map.remove(&h);
                Err(true)
            }
            None => Err(false),
        }
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the request came over HTTPS: a proxy's `X-Forwarded-Proto:
/// https` or `Forwarded: proto=https` (the server itself speaks plain HTTP).
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    let xfp = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("https")
        })
        .unwrap_or(false);
    let fwd = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().contains("proto=https"))
        .unwrap_or(false);
    xfp || fwd
}

/// A `Set-Cookie` value.
pub(crate) fn cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Constant-time comparison of two present, non-empty tokens.
pub(crate) fn tokens_match(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if !a.is_empty() && a.len() == b.len() => {
            bool::from(a.as_bytes().ct_eq(b.as_bytes()))
        }
        _ => false,
    }
}

/// The page answered when a form's CSRF token is missing or wrong.
pub(crate) fn csrf_failure(user: Option<&DashUser>) -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "The form has expired",
        "This form was sent without its security token (CSRF), or with one that does not match your session. Reload the page and send it again.",
        user,
    )
}

/// The signed-in user of a request, or the response to send instead: a
/// redirect to sign-in without a session, the sign-in page saying so when
/// the session expired or its key was revoked.
pub(crate) async fn user(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<DashUser, Response> {
    let next = format!("/signin?next={}", super::html::url_component(here));
    let Some(token) = cookie_value(headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Err(Redirect::to(&next).into_response());
    };
    let (key, csrf) = match state.dashboard.get(&token) {
        Ok(s) => s,
        Err(true) => {
            return Err(message_page(
                StatusCode::UNAUTHORIZED,
                "Your session expired",
                "Dashboard sessions last a limited time. Sign in again with your API key.",
                None,
            ))
        }
        Err(false) => return Err(Redirect::to(&next).into_response()),
    };
    // A revoked key ends its sessions.
    match state.store.key_by_hash(&key.key_hash).await {
        Ok(Some(k)) if k.revoked_at.is_none() => {}
        Ok(_) => {
            state.dashboard.remove(&token);
            return Err(message_page(
                StatusCode::UNAUTHORIZED,
                "Your key was revoked",
                "The API key this session was opened with has been revoked. Sign in with another key.",
                None,
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard session check failed");
            return Err(message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering",
                "The session could not be checked; try again in a moment.",
                None,
            ));
        }
    }
    Ok(DashUser { key, csrf, token })
}

impl DashUser {
    /// Whether the user may change things.
    pub fn is_admin(&self) -> bool {
        self.key.role == Role::Admin
    }

    /// Check a form's CSRF token against the session's.
    #[allow(clippy::result_large_err)] // the page to send instead
    pub(crate) fn check_csrf(&self, sent: Option<&str>) -> Result<(), Response> {
        if tokens_match(Some(&self.csrf), sent) {
            Ok(())
        } else {
            Err(csrf_failure(Some(self)))
        }
    }

    /// Only an admin key may `what`.
    #[allow(clippy::result_large_err)] // the page to send instead
    pub(crate) fn require_admin(&self, what: &str) -> Result<(), Response> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(message_page(
                StatusCode::FORBIDDEN,
                "Only an admin can do this",
                &format!(
                    "You are signed in with a key of role {}; only an admin key may {what}. Analysts see every page but change nothing.",
                    self.key.role.as_str()
                ),
                Some(self),
            ))
        }
    }
}
