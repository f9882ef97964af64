//! API keys on requests: `Authorization: Bearer KEY`, HTTP Basic with the key
//! as user name (Segment and RudderStack libraries), or `writeKey` in a
//! tracking body. Keys are found by their SHA-256 hash and the hashes compared
//! again in constant time. Found keys are cached for `key_cache_ttl` (so a
//! revoked key stops working within that time).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use subtle::ConstantTimeEq;
use touchpoint_store::keys::{hash_key, ApiKey, Role};

use crate::error::ApiError;
use crate::AppState;

/// Keys found recently, by hash.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

/// The key from the Authorization header, if any (Bearer, or Basic user name).
pub fn header_key(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let user = s.split_once(':').map(|(u, _)| u).unwrap_or(&s);
        return (!user.is_empty()).then(|| user.to_string());
    }
    None
}

impl AppState {
    /// The active key for a presented secret; 401 when unknown or revoked.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<ApiKey, ApiError> {
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return Err(ApiError::Unauthorized(
                "an API key is required: send `Authorization: Bearer KEY` (create one with `touchpoint keys create`)".into(),
            ));
        };
        let hash = hash_key(presented);
        let ttl = self.config.key_cache_ttl;
        let cached = {
            let map = self.keys.entries.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&hash)
                .filter(|(_, at)| at.elapsed() < ttl)
                .map(|(k, _)| k.clone())
        };
        let key = match cached {
            Some(k) => Some(k),
            None => {
                let found = self.store.key_by_hash(&hash).await?;
                if let Some(k) = &found {
                    if ttl > Duration::ZERO {
                        let mut map = self.keys.entries.lock().unwrap_or_else(|p| p.into_inner());
                        if map.len() > 10_000 {
                            map.clear();
                        }
                        map.insert(hash.clone(), (k.clone(), Instant::now()));
                    }
                }
                found
            }
        };
        match key {
            Some(k)
                if bool::from(k.key_hash.as_bytes().ct_eq(hash.as_bytes()))
                    && k.revoked_at.is_none() =>
            {
                Ok(k)
            }
            _ => Err(ApiError::Unauthorized("unknown or revoked API key".into())),
        }
    }
}

/// Check a key's role.
pub fn require(key: &ApiKey, allowed: &[Role], what: &str) -> Result<(), ApiError> {
    if allowed.contains(&key.role) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "a key with role {} may not {what}; it needs one of: {}",
            key.role.as_str(),
            names.join(", ")
        )))
    }
}

/// An admin or analyst key (the read API).
#[derive(Debug, Clone)]
pub struct Reader(pub ApiKey);

/// An admin key.
#[derive(Debug, Clone)]
pub struct Admin(pub ApiKey);

/// Any valid key.
#[derive(Debug, Clone)]
pub struct AnyKey(pub ApiKey);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = state
            .authenticate(header_key(&parts.headers).as_deref())
            .await?;
        require(&key, &[Role::Admin, Role::Analyst], "read the API")?;
        parts.extensions.insert(key.clone());
        Ok(Reader(key))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = state
            .authenticate(header_key(&parts.headers).as_deref())
            .await?;
        require(&key, &[Role::Admin], "write through the API")?;
        parts.extensions.insert(key.clone());
        Ok(Admin(key))
    }
}

impl FromRequestParts<AppState> for AnyKey {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = state
            .authenticate(header_key(&parts.headers).as_deref())
            .await?;
        parts.extensions.insert(key.clone());
        Ok(AnyKey(key))
    }
}
