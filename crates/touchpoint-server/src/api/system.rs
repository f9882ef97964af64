//! System endpoints: health, metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{AnyKey, Reader};
use crate::error::ApiError;
use crate::routes::{Access, Doc, Route};
use crate::AppState;

pub(crate) fn system_routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/healthz",
                tag: "system",
                summary: "Liveness and database check",
                description: "Answers 200 when the database answers. No key needed.",
                access: Access::Public,
                params: vec![],
                body: None,
                response: ("application/json", "`{\"status\": \"ok\"}`"),
            },
            handler: get(healthz),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/metrics",
                tag: "system",
                summary: "Prometheus metrics (text exposition format)",
                description: "Requests and latencies per route, events accepted/deduplicated/rejected, ingest requests shed, store and import timings.",
                access: Access::Reader,
                params: vec![],
                body: None,
                response: ("text/plain", "Prometheus text format 0.0.4"),
            },
            handler: get(metrics),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/openapi.json",
                tag: "system",
                summary: "This API's OpenAPI 3.1 document",
                description: "Generated from the route table in the code; checked in as docs/openapi.json.",
                access: Access::AnyKey,
                params: vec![],
                body: None,
                response: ("application/json", "an OpenAPI 3.1 document"),
            },
            handler: get(openapi),
        },
    ]
}

async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut h = state.store.acquire().await?;
    h.conn()
        .fetch_opt("SELECT CAST(1 AS BIGINT)", &[], |r| r.i64(0))
        .await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn metrics(State(state): State<AppState>, _k: Reader) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi(_k: AnyKey) -> Json<Value> {
    Json(crate::openapi::document())
}
