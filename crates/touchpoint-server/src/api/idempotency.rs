//! [`Idempotent`]: the one `Idempotency-Key` mechanism of every write
//! endpoint.
//!
//! The rule, for every endpoint that uses it: the same key with the same
//! request (method, path and body) returns the stored response, byte for
//! byte and with its status, and changes nothing; the same key with a
//! different request answers 422 `idempotency_key_mismatch`. Keys are
//! scoped by the API key that sent them, and live in the table
//! `idempotency_keys` (unique on scope and key, so of two concurrent
//! requests with one key exactly one stores its response; the other
//! answers with the stored one).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use touchpoint_store::keys::ApiKey;
use touchpoint_store::UnitOfWork;

use crate::error::ApiError;
use crate::AppState;

/// A write request with its optional `Idempotency-Key` header, and its body.
///
/// Use it as the last argument of a write handler, after the key
/// extractor ([`crate::auth::Admin`], [`crate::auth::AnyKey`], ...), in
/// place of `Json<T>` or `Bytes`; it reads the body (up to the server's
/// body limit). Then:
///
/// 1. [`Idempotent::replay`] first: `Some(response)` when the key was used
///    before (the stored response, or a 422 error for another request);
///    return it as is.
/// 2. Parse the body with [`Idempotent::json`] and do the work.
/// 3. Answer through [`Idempotent::commit`] when the work is in a
///    [`UnitOfWork`] (the stored response commits with the change: the
///    best choice), or [`Idempotent::respond`] when it committed on its
///    own. Both return the response to send, which is the stored one if a
///    concurrent request with the same key won.
///
/// For a ledger-style write that must happen once even when two identical
/// requests race, give the write a unique key derived from
/// [`Idempotent::write_key`].
///
/// ```ignore
/// async fn spend(
///     State(state): State<AppState>,
///     AnyKey(key): AnyKey,
///     idem: Idempotent,
/// ) -> Result<Response, ApiError> {
///     if let Some(stored) = idem.replay(&state).await? {
///         return Ok(stored);
///     }
///     let input: SpendIn = idem.json("a spend `{points, reason}`")?;
///     let mut uow = state.store.unit_of_work().await?;
///     let w = ledger::spend_in(&mut uow, member, input.points, /* ... */ &idem.write_key()).await?;
///     let body = serde_json::json!({"available": w.available}).to_string();
///     idem.commit(uow, StatusCode::OK, body).await
/// }
/// ```
#[derive(Debug)]
pub struct Idempotent {
    scope: String,
    key: Option<String>,
    hash: String,
    /// The request body.
    pub body: Bytes,
}

impl FromRequest<AppState> for Idempotent {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let key = super::idempotency_key(&parts.headers)?;
        // The key extractor of the handler ran first and left the key here;
        // otherwise authenticate (the key cache makes it cheap).
        let api_key = match parts.extensions.get::<ApiKey>() {
            Some(k) => k.clone(),
            None => {
                state
                    .authenticate(crate::auth::header_key(&parts.headers).as_deref())
                    .await?
            }
        };
        let bytes =
            crate::ingest::read_body(&parts.headers, body, state.config.max_batch_bytes).await?;
        Ok(Idempotent::new(
            &api_key,
            key,
            parts.method.as_str(),
            parts.uri.path(),
            bytes,
        ))
    }
}

impl Idempotent {
    /// A request of `api_key` with the header value `key`.
    pub fn new(
        api_key: &ApiKey,
        key: Option<String>,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        h.update([0]);
        h.update(&body);
        Idempotent {
            scope: format!("api:{}", api_key.key_id),
            key,
            hash: touchpoint_store::keys::hex(&h.finalize()),
            body,
        }
    }

    /// The `Idempotency-Key` header, if sent.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The body as JSON of type `T`; 400 `invalid_json` naming `what` otherwise.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::InvalidJson(format!("the body is not {what}: {e}")))
    }

    fn mismatch(k: &str) -> ApiError {
        ApiError::IdempotencyKeyMismatch(format!(
            "Idempotency-Key {k:?} was used with a different request; use a new key for a new request"
        ))
    }

    fn stored(&self, found: Option<(String, u16, String)>) -> Result<Option<Response>, ApiError> {
        let Some(k) = &self.key else { return Ok(None) };
        match found {
            Some((hash, _, _)) if hash != self.hash => Err(Self::mismatch(k)),
            Some((_, status, body)) => Ok(Some(json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
            ))),
            None => Ok(None),
        }
    }

    /// The stored response when this key was used before with the same
    /// request; 422 `idempotency_key_mismatch` (as an `Err`) when it was used
    /// with another; `None` without a key or when the key is new.
    pub async fn replay(&self, state: &AppState) -> Result<Option<Response>, ApiError> {
        let Some(k) = &self.key else { return Ok(None) };
        let found = state.store.idempotent_response(&self.scope, k).await?;
        self.stored(found)
    }

    /// A key for the write itself, unique per API key and Idempotency-Key
    /// (a fresh random one without the header): put it under the write's
    /// own unique constraint so racing duplicates write once.
    pub fn write_key(&self) -> String {
        match &self.key {
            Some(k) => format!("{}:{k}", self.scope),
            None => format!(
                "{}:auto:{}",
                self.scope,
                touchpoint_core::loyalty::generate_code()
            ),
        }
    }

    /// Store the response in `uow` and commit it: the change and its stored
    /// response commit together. When a concurrent request with the same key
    /// stored its response first, `uow` is rolled back and that response is
    /// returned instead.
    pub async fn commit(
        &self,
        mut uow: UnitOfWork,
        status: StatusCode,
        body: String,
    ) -> Result<Response, ApiError> {
        let Some(k) = &self.key else {
            uow.commit().await?;
            return Ok(json_response(status, body));
        };
        let saved = touchpoint_store::loyalty::save_response_in(
            &mut uow,
            &self.scope,
            k,
            &self.hash,
            status.as_u16(),
            &body,
        )
        .await?;
        if saved {
            uow.commit().await?;
            return Ok(json_response(status, body));
        }
        let found = touchpoint_store::loyalty::response_in(&mut uow, &self.scope, k).await?;
        uow.rollback().await?;
        Ok(self
            .stored(found)?
            .unwrap_or_else(|| json_response(status, body)))
    }

    /// Store the response of a write that committed on its own, and return
    /// the response to send (the stored one if a concurrent request with
    /// the same key stored first).
    pub async fn respond(
        &self,
        state: &AppState,
        status: StatusCode,
        body: String,
    ) -> Result<Response, ApiError> {
        let Some(k) = &self.key else {
            return Ok(json_response(status, body));
        };
        state
            .store
            .save_idempotent_response(&self.scope, k, &self.hash, status.as_u16(), &body)
            .await?;
        let found = state.store.idempotent_response(&self.scope, k).await?;
        Ok(self
            .stored(found)?
            .unwrap_or_else(|| json_response(status, body)))
    }
}

/// A JSON body with its content type.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A value as the JSON text of an answer.
pub(crate) fn to_json(v: &impl serde::Serialize) -> Result<String, crate::error::ApiError> {
    serde_json::to_string(v).map_err(|e| crate::error::ApiError::Internal(e.to_string()))
}
