//! The JSON API: members (search, member 360, events), orders (read, write
//! with an Idempotency-Key), imports, tracking events, and system endpoints.
//!
//! Lists are cursor-paginated: each page has `next_cursor`, passed back as
//! `after` (or `before` for newest-first lists), absent on the last page.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{InputFormat, OrderRecord, ReadOptions};
use touchpoint_core::{ChannelName, Email, Identifier, MemberId, Phone};
use touchpoint_store::import::{self, ImportOptions};

use crate::auth::{Admin, AnyKey, Reader};
use crate::error::{rejection, ApiError};
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

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
use crate::routes::Param;

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

pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/api/overview",
                tag: "members",
                summary: "Headline numbers: members, multi-channel members, merges, per channel",
                description: "",
                access: Access::Reader,
                params: vec![],
                body: None,
                response: ("application/json", "overview"),
            },
            handler: get(overview),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/members",
                tag: "members",
                summary: "List members, or find one by phone, email or member number",
                description: "With `phone`, `email` or `member_no`: the member owning that identifier (zero or one). Otherwise active members by id.",
                access: Access::Reader,
                params: vec![
                    param("phone", In::Query, "string", false, "a phone number (normalised with the default country)"),
                    param("email", In::Query, "string", false, "an e-mail address"),
                    param("member_no", In::Query, "string", false, "a membership number (the tracking userId)"),
                    param("after", In::Query, "string", false, "cursor: next_cursor of the previous page"),
                    LIMIT,
                ],
                body: None,
                response: ("application/json", "`{\"members\": [...], \"next_cursor\": ...}`"),
            },
            handler: get(list_members),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/members/{id}",
                tag: "members",
                summary: "Member 360: identifiers, channels, orders, recent events, merge history",
                description: "A retired id (merged into another) answers the member it was merged into, with requested_id set.",
                access: Access::Reader,
                params: vec![param("id", In::Path, "string", true, "member id, M-123 or 123")],
                body: None,
                response: ("application/json", "member 360"),
            },
            handler: get(member),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/members/{id}/events",
                tag: "members",
                summary: "A member's tracking events, newest first",
                description: "Includes events sent before the person was identified (attributed through their anonymous ids).",
                access: Access::Reader,
                params: vec![
                    param("id", In::Path, "string", true, "member id"),
                    param("before", In::Query, "integer", false, "cursor: next_cursor of the previous page"),
                    LIMIT,
                ],
                body: None,
                response: ("application/json", "`{\"items\": [...], \"next_cursor\": ...}`"),
            },
            handler: get(member_events),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/orders",
                tag: "orders",
                summary: "List orders by channel and order id",
                description: "",
                access: Access::Reader,
                params: vec![
                    param("member_id", In::Query, "string", false, "only this member's orders"),
                    param("channel", In::Query, "string", false, "only this channel"),
                    param("after", In::Query, "string", false, "cursor: next_cursor of the previous page"),
                    LIMIT,
                ],
                body: None,
                response: ("application/json", "`{\"orders\": [...], \"next_cursor\": ...}`"),
            },
            handler: get(list_orders),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/orders",
                tag: "orders",
                summary: "Write an order (idempotent)",
                description: "Orders are keyed by (channel, order_id): sending one twice is one order, sending changed content updates it. With an Idempotency-Key header the first response is stored and replayed; the same key with a different body answers 409. Body: `{channel, order_id, ordered_at, status, currency, order_discount, refunded, customer: {member_no, phone, email, platform_user_id, wechat_unionid, name}, lines: [{sku, quantity, unit_price, discount, name, brand, category}]}`; amounts are decimal strings or numbers in major units.",
                access: Access::Admin,
                params: vec![param("Idempotency-Key", In::Header, "string", false, "a client-chosen key, up to 200 characters")],
                body: Some((&["application/json"], "an order")),
                response: ("application/json", "`{\"result\": \"inserted|updated|unchanged\", \"member_id\": ..., \"order\": {...}}`"),
            },
            handler: post(create_order),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/orders/{channel}/{order_id}",
                tag: "orders",
                summary: "One order with its lines",
                description: "",
                access: Access::Reader,
                params: vec![
                    param("channel", In::Path, "string", true, "channel"),
                    param("order_id", In::Path, "string", true, "order id"),
                ],
                body: None,
                response: ("application/json", "an order"),
            },
            handler: get(order),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/imports",
                tag: "imports",
                summary: "Import an order export file (same report as `touchpoint import orders --output json`)",
                description: "The file as the raw body, or as a multipart/form-data field named `file` (other fields `format` and `channel` may replace the query parameters).",
                access: Access::Admin,
                params: vec![
                    param("format", In::Query, "string", true, "canonical, shopify or taobao"),
                    param("channel", In::Query, "string", false, "the channel the orders come from"),
                ],
                body: Some((&["application/octet-stream", "text/csv", "multipart/form-data"], "the export file")),
                response: ("application/json", "the import report"),
            },
            handler: post(import_upload),
        },
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
                    param("after", In::Query, "integer", false, "cursor: next_cursor of the previous page"),
                    LIMIT,
                ],
                body: None,
                response: ("application/json", "`{\"items\": [...], \"next_cursor\": ...}`"),
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
                    param("after", In::Query, "integer", false, "cursor: next_cursor of the previous page"),
                    LIMIT,
                ],
                body: None,
                response: ("application/json", "`{\"items\": [...], \"next_cursor\": ...}`"),
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
                params: vec![param("source", In::Query, "string", false, "only this source")],
                body: None,
                response: ("application/json", "`{\"events\": n, \"distinct_message_ids\": n}`"),
            },
            handler: get(event_totals),
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

async fn overview(State(state): State<AppState>, _k: Reader) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        serde_json::to_value(state.store.overview().await?).map_err(internal)?,
    ))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn member_id(s: &str) -> Result<MemberId, ApiError> {
    MemberId::parse(s)
        .map_err(|e| ApiError::InvalidRequest(format!("member id {s:?}: expected {e}")))
}

#[derive(Debug, Deserialize)]
struct MemberQuery {
    phone: Option<String>,
    email: Option<String>,
    member_no: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_members(
    State(state): State<AppState>,
    _k: Reader,
    Query(q): Query<MemberQuery>,
) -> Result<Json<Value>, ApiError> {
    let ident = if let Some(p) = q.phone.as_deref() {
        Some(Identifier::phone(
            &Phone::parse(p, &state.config.default_country)
                .map_err(|e| ApiError::InvalidRequest(format!("phone {p:?}: expected {e}")))?,
        ))
    } else if let Some(e) = q.email.as_deref() {
        Some(Identifier::email(&Email::parse(e).map_err(|x| {
            ApiError::InvalidRequest(format!("email {e:?}: expected {x}"))
        })?))
    } else if let Some(m) = q.member_no.as_deref() {
        Some(
            Identifier::member_no(m)
                .map_err(|e| ApiError::InvalidRequest(format!("member_no {m:?}: expected {e}")))?,
        )
    } else {
        None
    };
    if let Some(ident) = ident {
        let mut members = Vec::new();
        if let Some(id) = state.store.member_by_identifier(&ident).await? {
            if let Some(m) = state.store.member(id).await? {
                members.push(json!({
                    "id": m.id,
                    "name": m.name,
                    "channels": m.channels.iter().map(|c| c.channel.as_str()).collect::<Vec<_>>().join(","),
                    "orders": m.order_count,
                    "net_revenue": m.channels.iter().map(|c| c.net_revenue).sum::<i64>(),
                    "last_order_at": m.channels.iter().map(|c| c.last_order_at).max(),
                }));
            }
        }
        return Ok(Json(json!({"members": members, "next_cursor": null})));
    }
    let after = q.after.as_deref().map(member_id).transpose()?;
    let page = state
        .store
        .list_members(after, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(serde_json::to_value(page).map_err(internal)?))
}

async fn member(
    State(state): State<AppState>,
    _k: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = member_id(&id)?;
    let Some(m) = state.store.member(id).await? else {
        return Err(ApiError::NotFound(format!("no member {id}")));
    };
    let events = state.store.member_events(m.id, None, 50).await?;
    let mut v = serde_json::to_value(&m).map_err(internal)?;
    v["events"] = serde_json::to_value(events).map_err(internal)?;
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
struct BeforeQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn member_events(
    State(state): State<AppState>,
    _k: Reader,
    Path(id): Path<String>,
    Query(q): Query<BeforeQuery>,
) -> Result<Json<Value>, ApiError> {
    let requested = member_id(&id)?;
    let Some(id) = state.store.resolve_member_id(requested).await? else {
        return Err(ApiError::NotFound(format!("no member {requested}")));
    };
    let page = state
        .store
        .member_events(id, q.before, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(serde_json::to_value(page).map_err(internal)?))
}

#[derive(Debug, Deserialize)]
struct OrdersQuery {
    member_id: Option<String>,
    channel: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_orders(
    State(state): State<AppState>,
    _k: Reader,
    Query(q): Query<OrdersQuery>,
) -> Result<Json<Value>, ApiError> {
    let member = match q.member_id.as_deref() {
        Some(m) => {
            let id = member_id(m)?;
            Some(state.store.resolve_member_id(id).await?.unwrap_or(id))
        }
        None => None,
    };
    let page = state
        .store
        .list_orders(
            member,
            q.channel.as_deref(),
            q.after.as_deref(),
            q.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(serde_json::to_value(page).map_err(internal)?))
}

async fn order(
    State(state): State<AppState>,
    _k: Reader,
    Path((channel, order_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    match state.store.order(&channel, &order_id).await? {
        Some(o) => Ok(Json(serde_json::to_value(o).map_err(internal)?)),
        None => Err(ApiError::NotFound(format!(
            "no order {order_id:?} in channel {channel:?}"
        ))),
    }
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

// ---- POST /api/orders ----

#[derive(Debug, Deserialize)]
struct OrderIn {
    channel: String,
    order_id: Value,
    ordered_at: Value,
    status: Option<String>,
    currency: Option<String>,
    paid_at: Option<Value>,
    order_discount: Option<Value>,
    refunded: Option<Value>,
    #[serde(default)]
    customer: CustomerIn,
    #[serde(default)]
    lines: Vec<LineIn>,
}

#[derive(Debug, Default, Deserialize)]
struct CustomerIn {
    member_no: Option<Value>,
    phone: Option<String>,
    email: Option<String>,
    platform_user_id: Option<Value>,
    wechat_unionid: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LineIn {
    sku: Value,
    quantity: Option<Value>,
    unit_price: Value,
    unit_cost: Option<Value>,
    discount: Option<Value>,
    name: Option<String>,
    brand: Option<String>,
    category: Option<String>,
}

fn bad(field: &str, value: impl std::fmt::Display, expected: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidRequest(format!("{field} {value}: expected {expected}"))
}

/// `POST /api/orders` through the one order normaliser of the core: a time
/// without an offset is in the business time zone.
fn order_record(o: OrderIn, state: &AppState) -> Result<OrderRecord, ApiError> {
    use touchpoint_core::ingest::order::{
        normalise_order, CustomerInput, LineInput, NormaliseOptions, Offsetless, OrderInput,
    };
    let input = OrderInput {
        channel: o.channel,
        order_id: Some(o.order_id),
        ordered_at: Some(o.ordered_at),
        paid_at: o.paid_at,
        status: o.status,
        currency: o.currency,
        order_discount: o.order_discount,
        total: None,
        refunded: o.refunded,
        customer: CustomerInput {
            member_no: o.customer.member_no,
            phone: o.customer.phone,
            email: o.customer.email,
            platform_user_id: o.customer.platform_user_id,
            wechat_unionid: o.customer.wechat_unionid,
            identifiers: Vec::new(),
            name: o.customer.name,
        },
        lines: o
            .lines
            .into_iter()
            .map(|l| LineInput {
                sku: Some(l.sku),
                quantity: l.quantity,
                unit_price: Some(l.unit_price),
                unit_cost: l.unit_cost,
                discount: l.discount,
                name: l.name,
                brand: l.brand,
                category: l.category,
            })
            .collect(),
        allow_total_only: false,
    };
    let opts = NormaliseOptions {
        offsetless: Offsetless::Local(state.config.business_tz),
        default_currency: state.config.default_currency.clone(),
        default_country: state.config.default_country.clone(),
    };
    normalise_order(input, &opts).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

async fn create_order(
    State(state): State<AppState>,
    Admin(key): Admin,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let bytes = crate::ingest::read_body(&headers, body, state.config.max_batch_bytes).await?;
    let idem = headers
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
        .transpose()?;
    let request_hash = touchpoint_store::keys::hex(&Sha256::digest(&bytes));
    let scope = format!("orders:{}", key.key_id);
    if let Some(k) = &idem {
        if let Some((hash, status, resp)) = state.store.idempotent_response(&scope, k).await? {
            if hash != request_hash {
                return Err(ApiError::IdempotencyConflict(format!(
                    "Idempotency-Key {k:?} was used with a different request; use a new key for a new request"
                )));
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Ok((status, [(header::CONTENT_TYPE, "application/json")], resp).into_response());
        }
    }
    crate::ingest::json_object(&bytes)?;
    let input: OrderIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not an order: {e}")))?;
    let record = order_record(input, &state)?;
    let started = std::time::Instant::now();
    let result = {
        let mut w = state.writer.lock().await;
        w.write_orders(&state.store, std::slice::from_ref(&record))
            .await?
    };
    state.metrics.time("order_write", started.elapsed());
    let outcome = if result.orders.inserted > 0 {
        "inserted"
    } else if result.orders.updated > 0 {
        "updated"
    } else {
        "unchanged"
    };
    let stored = state
        .store
        .order(record.channel.as_str(), &record.order_id)
        .await?;
    let body = json!({
        "result": outcome,
        "member_id": result.members.first().copied().flatten(),
        "order": stored,
    })
    .to_string();
    if let Some(k) = &idem {
        state
            .store
            .save_idempotent_response(&scope, k, &request_hash, 200, &body)
            .await?;
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

// ---- POST /api/imports ----

#[derive(Debug, Default, Deserialize)]
struct ImportQuery {
    format: Option<String>,
    channel: Option<String>,
}

async fn import_upload(
    State(state): State<AppState>,
    _k: Admin,
    Query(mut q): Query<ImportQuery>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    use std::io::Write;
    let limit = state.config.max_import_bytes;
    let mut file = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::Internal(format!("temporary file: {e}")))?;
    let mut written = 0usize;
    let mut write = |data: &[u8], file: &mut tempfile::NamedTempFile| -> Result<(), ApiError> {
        written += data.len();
        if written > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the upload is over the limit of {limit} bytes"
            )));
        }
        file.write_all(data)
            .map_err(|e| ApiError::Internal(format!("temporary file: {e}")))
    };
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::InvalidRequest(format!("multipart body: {}", e.body_text())))?;
        let mut got_file = false;
        while let Some(mut field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::InvalidRequest(format!("multipart body: {}", e.body_text())))?
        {
            match field.name().unwrap_or("") {
                "file" => {
                    got_file = true;
                    while let Some(chunk) = field.chunk().await.map_err(|e| {
                        ApiError::InvalidRequest(format!("multipart body: {}", e.body_text()))
                    })? {
                        write(&chunk, &mut file)?;
                    }
                }
                name @ ("format" | "channel") => {
                    let name = name.to_string();
                    let v = field.text().await.map_err(|e| {
                        ApiError::InvalidRequest(format!(
                            "multipart field {name}: {}",
                            e.body_text()
                        ))
                    })?;
                    if name == "format" {
                        q.format = Some(v);
                    } else {
                        q.channel = Some(v);
                    }
                }
                _ => {}
            }
        }
        if !got_file {
            return Err(ApiError::InvalidRequest(
                "multipart body: expected a field named `file`".into(),
            ));
        }
    } else {
        let mut body = req.into_body();
        use http_body_util::BodyExt;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::InvalidRequest(format!("the body could not be read: {e}"))
            })?;
            if let Ok(d) = frame.into_data() {
                write(&d, &mut file)?;
            }
        }
    }
    file.flush()
        .map_err(|e| ApiError::Internal(format!("temporary file: {e}")))?;
    let format_name = q.format.as_deref().ok_or_else(|| {
        ApiError::InvalidRequest("format: expected one of canonical, shopify, taobao".into())
    })?;
    let format = InputFormat::parse(format_name).map_err(|e| bad("format", format_name, e))?;
    let channel = q
        .channel
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| ChannelName::parse(c).map_err(|e| bad("channel", c, e)))
        .transpose()?;
    let options = ImportOptions {
        format,
        read: ReadOptions {
            channel,
            default_country: state.config.default_country.clone(),
            default_currency: state.config.default_currency.clone(),
            business_tz: state.config.business_tz,
            encoding: None,
        },
        identity: IdentityConfig {
            shared_limit: state.config.identity.shared_limit,
        },
        strict: false,
        rejects: None,
        chunk_orders: 5_000,
        refresh_analytics: true,
    };
    let started = std::time::Instant::now();
    let path = file.path().to_path_buf();
    let report = import::import_files(&state.store, &[path], &options, &|_| {}).await?;
    state.metrics.time("import", started.elapsed());
    let mut v = serde_json::to_value(&report).map_err(internal)?;
    if let Some(files) = v.get_mut("files").and_then(Value::as_array_mut) {
        for f in files {
            f["path"] = Value::String("upload".into());
        }
    }
    Ok(Json(v))
}
