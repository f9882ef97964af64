//! Marketing spend: `POST /api/spend`, a spend CSV (docs/acquisition.md)
//! imported through the same store call as `touchpoint import spend`
//! ([`touchpoint_store::Store::import_spend`]); the answer is that command's
//! `-o json` report of the file. The acquisition report itself is
//! `GET /api/reports/acquisition` (see `api/reports.rs`).
//!
//! With an `Idempotency-Key` header (read by the shared
//! [`crate::api::idempotency_key`]), the first answer is stored and a retry
//! with the same key and body gets it again; the same key with another body
//! is 422 `idempotency_key_mismatch`. Rows are keyed by (date, channel,
//! campaign), so a retry without a key changes nothing either.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use touchpoint_store::acquisition::SpendImportError;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

/// The largest spend file accepted (a row per day, channel and campaign).
const MAX_SPEND_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn routes() -> Vec<Route> {
    vec![Route {
        doc: Doc {
            method: "post",
            path: "/api/spend",
            tag: "acquisition",
            summary: "Import marketing spend (a spend CSV; same report as `touchpoint import spend -o json`)",
            description: "Columns: date (YYYY-MM-DD), channel, campaign (may be empty), pricing_model (CPM, CPC, CPA or CPS), spend (decimal currency units), impressions, clicks, conversions. Rows are keyed by date, channel and campaign: a later import replaces a row. Bad rows are listed in `errors` with line, column, value and the accepted form; good rows beside them are imported. See docs/acquisition.md.",
            access: Access::Admin,
            params: vec![param(
                "Idempotency-Key",
                In::Header,
                "string",
                false,
                "1 to 200 visible characters; a retry with the same key and body returns the first answer",
            )],
            body: Some((&["text/csv"], "the spend CSV")),
            response: ("application/json", "`{\"rows\", \"inserted\", \"updated\", \"unchanged\", \"rejected\", \"errors\": [{\"line\", \"column\", \"value\", \"message\"}], \"first_date\", \"last_date\"}`"),
        },
        handler: post(import_spend),
    }]
}

async fn import_spend(
    State(state): State<AppState>,
    Admin(key): Admin,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let limit = state.config.max_import_bytes.min(MAX_SPEND_BYTES);
    let bytes = crate::ingest::read_body(&headers, body, limit).await?;
    let idem = crate::api::Idempotent::new(
        &key,
        crate::api::idempotency_key(&headers)?,
        "POST",
        "/api/spend",
        bytes,
    );
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let report = match state.store.import_spend(idem.body.to_vec(), None).await {
        Ok(r) => r,
        Err(SpendImportError::File(e)) => return Err(ApiError::InvalidFile(e.to_string())),
        Err(SpendImportError::Store(e)) => return Err(e.into()),
    };
    let body = serde_json::to_string(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    idem.respond(&state, StatusCode::OK, body).await
}
