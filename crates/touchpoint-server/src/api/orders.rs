//! Orders: listing, one order, writing an order (idempotent).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_core::ingest::OrderRecord;

use super::{internal, member_id, Idempotent, Path, Query, LIMIT};
use crate::auth::{Admin, Reader};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

pub(crate) fn routes() -> Vec<Route> {
    vec![
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
                description: "Orders are keyed by (channel, order_id): sending one twice is one order, sending changed content updates it. With an Idempotency-Key header the first response is stored and replayed; the same key with a different body answers 422 `idempotency_key_mismatch`. Body: `{channel, order_id, ordered_at, status, currency, order_discount, refunded, customer: {member_no, phone, email, platform_user_id, wechat_unionid, name}, lines: [{sku, quantity, unit_price, discount, name, brand, category}]}`; amounts are decimal strings or numbers in major units.",
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
    ]
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
    #[serde(default)]
    coupon: Option<Value>,
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
        coupon: o.coupon,
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
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    crate::ingest::json_object(&idem.body)?;
    let input: OrderIn = idem.json("an order")?;
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
    idem.respond(&state, StatusCode::OK, body).await
}
