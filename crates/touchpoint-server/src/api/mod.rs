//! The JSON API, one module per resource: members (search, member 360,
//! events), orders (read, write with an Idempotency-Key), imports, tracking
//! events, reports, and system endpoints. This module holds the shared extractors and
//! helpers and the list of the API's routes ([`routes`]), which
//! [`crate::routes::all`] puts into the one route table.
//!
//! Lists are cursor-paginated: each page has `next_cursor`, passed back as
//! `after` (or `before` for newest-first lists), absent on the last page.

mod clv;
mod events;
mod idempotency;
mod imports;
mod members;
mod orders;
mod reports;
mod system;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use touchpoint_core::MemberId;

use crate::error::{rejection, ApiError};
use crate::routes::{param, In, Param, Route};
use crate::AppState;

pub use idempotency::Idempotent;
pub(crate) use idempotency::{json_response, to_json};
pub(crate) use system::system_routes;

/// A path extractor whose rejections use the API's error shape.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| rejection(e.body_text(), "path"))
    }
}

/// A query-string extractor whose rejections use the API's error shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| rejection(e.body_text(), "query string"))
    }
}

const LIMIT: Param = param(
    "limit",
    In::Query,
    "integer",
    false,
    "page size, 1 to 1000 (default 100)",
);

/// The API's routes, in document order.
pub(crate) fn routes() -> Vec<Route> {
    let mut v = Vec::new();
    v.extend(members::routes());
    v.extend(orders::routes());
    v.extend(imports::routes());
    v.extend(events::routes());
    v.extend(reports::routes());
    v.extend(clv::routes());
    v
}

/// The `Idempotency-Key` header of a write, if sent: 1 to 200 visible
/// characters. Every write endpoint reads it through [`Idempotent`], which
/// calls this.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "Idempotency-Key: expected 1 to 200 visible ASCII characters".into(),
                    )
                })
        })
        .transpose()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn member_id(s: &str) -> Result<MemberId, ApiError> {
    MemberId::parse(s)
        .map_err(|e| ApiError::InvalidRequest(format!("member id {s:?}: expected {e}")))
}

fn bad(field: &str, value: impl std::fmt::Display, expected: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidRequest(format!("{field} {value}: expected {expected}"))
}
