//! Lifetime value: `GET /api/clv/models`, the models behind the stored
//! predictions (written by `touchpoint clv predict` on the store; each
//! member's predictions are on `GET /api/members/{id}`).

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Reader;
use crate::error::ApiError;
use crate::routes::{Access, Doc, Route};
use crate::AppState;

pub(crate) fn routes() -> Vec<Route> {
    vec![Route {
        doc: Doc {
            method: "get",
            path: "/api/clv/models",
            tag: "clv",
            summary: "The fitted lifetime value models behind the stored predictions",
            description: "One entry per model `touchpoint clv predict` last fitted on the store: its parameters, log-likelihood, customers, calibration window, horizon and discount rate. Empty until the first prediction run. See docs/clv.md.",
            access: Access::Reader,
            params: vec![],
            body: None,
            response: ("application/json", "`{\"models\": [...]}`"),
        },
        handler: get(models),
    }]
}

async fn models(State(state): State<AppState>, _k: Reader) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "models": state.store.clv_models().await? })))
}
