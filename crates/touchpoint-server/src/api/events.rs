//! Tracking events: in arrival order, rejected, totals.

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{internal, Query, LIMIT};
use crate::auth::Reader;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/api/events",
                tag: "events",
                summary: "Tracking events in arrival order",
                description: "",
                access: Access::Reader,
                params: vec![
                    param("source", In::Query, "string", false, "only this source"),
                    param(
                        "after",
                        In::Query,
                        "integer",
                        false,
                        "cursor: next_cursor of the previous page",
                    ),
                    LIMIT,
                ],
                body: None,
                response: (
                    "application/json",
                    "`{\"items\": [...], \"next_cursor\": ...}`",
                ),
            },
            handler: get(events),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/events/rejected",
                tag: "events",
                summary: "Tracking events refused, with the reason",
                description: "",
                access: Access::Reader,
                params: vec![
                    param(
                        "after",
                        In::Query,
                        "integer",
                        false,
                        "cursor: next_cursor of the previous page",
                    ),
                    LIMIT,
                ],
                body: None,
                response: (
                    "application/json",
                    "`{\"items\": [...], \"next_cursor\": ...}`",
                ),
            },
            handler: get(rejected_events),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/events/totals",
                tag: "events",
                summary: "Number of stored events and of distinct messageIds among them",
                description: "Equal numbers mean no event was stored twice.",
                access: Access::Reader,
                params: vec![param(
                    "source",
                    In::Query,
                    "string",
                    false,
                    "only this source",
                )],
                body: None,
                response: (
                    "application/json",
                    "`{\"events\": n, \"distinct_message_ids\": n}`",
                ),
            },
            handler: get(event_totals),
        },
    ]
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    source: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

async fn events(
    State(state): State<AppState>,
    _k: Reader,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = state
        .store
        .list_events(q.source.as_deref(), q.after, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(serde_json::to_value(page).map_err(internal)?))
}

async fn rejected_events(
    State(state): State<AppState>,
    _k: Reader,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = state
        .store
        .rejected_events(q.after, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(serde_json::to_value(page).map_err(internal)?))
}

async fn event_totals(
    State(state): State<AppState>,
    _k: Reader,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (events, distinct) = state.store.event_totals(q.source.as_deref()).await?;
    Ok(Json(
        json!({"events": events, "distinct_message_ids": distinct}),
    ))
}
