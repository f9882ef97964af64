//! The discount rules API: the rule file (`GET`/`PUT /api/promotions`) and
//! the evaluation of an order against the rules and its coupon codes
//! (`POST /api/promotions/evaluate`, no side effect). See docs/promotions.md.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::Value;
use touchpoint_core::coupons::BasketLine;
use touchpoint_core::promotions::OrderIn;
use touchpoint_store::StoreError;

use crate::api::Idempotent;
use crate::auth::{Admin, AnyKey, Reader};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

/// The promotions routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/api/promotions",
                tag: "promotions",
                summary: "The current discount rules",
                description: "`{version, created_at, body, rules}`; 404 `not_found` when none is set.",
                access: Access::Reader,
                params: vec![],
                body: None,
                response: ("application/json", "a rules version"),
            },
            handler: get(show),
        },
        Route {
            doc: Doc {
                method: "put",
                path: "/api/promotions",
                tag: "promotions",
                summary: "Set the discount rules (admin)",
                description: "The body is the rule file (TOML, docs/promotions.md); it is checked (400 `invalid_request` naming the rule and field) and stored as a new version (the same text again changes nothing).",
                access: Access::Admin,
                params: vec![param(
                    "Idempotency-Key",
                    In::Header,
                    "string",
                    false,
                    "a client-chosen key, up to 200 characters: a retry with it returns the stored response",
                )],
                body: Some((&["application/toml", "text/plain"], "the rule file")),
                response: ("application/json", "the stored version"),
            },
            handler: put(set),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/promotions/evaluate",
                tag: "promotions",
                summary: "The discounts an order gets (no side effect)",
                description: "Body `{member_id, channel, lines: [{sku, brand, category, quantity, unit_price}], codes: [...], ordered_at, paid_at}` (minor units; UTC ms, `ordered_at` default now, `paid_at` absent when unpaid). 200 `{rules_version, subtotal, applied: [{kind, rule, coupon_id, amount, why, lines: [{line, amount}]}], not_applied: [{kind, rule, why}], rule_discount, coupon_discount, discount, total, lines: [{line, sku, amount, discount, net}]}`, `applied` in stacking order. A code that cannot be used or gives nothing answers its coupon error (404 `unknown_coupon`; 422 `coupon_not_yet_valid`, `coupon_expired`, `coupon_wrong_member`, `coupon_out_of_scope`, `coupon_below_minimum_spend`; 409 `coupon_limit_reached`, `coupon_already_redeemed`) with the code in the message.",
                access: Access::AnyKey,
                params: vec![],
                body: Some((&["application/json"], "an order")),
                response: ("application/json", "the evaluation"),
            },
            handler: post(evaluate),
        },
    ]
}

fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::CouponCode { code, refusal } => ApiError::CouponCode { code, refusal },
        StoreError::Coupon(r) => ApiError::Coupon(r),
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        other => ApiError::Store(other),
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn to_json(v: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn show(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let Some(v) = state.store.promotions().await.map_err(err)? else {
        return Err(ApiError::NotFound(
            "no discount rules are set; PUT a rule file to /api/promotions".into(),
        ));
    };
    Ok(json_response(StatusCode::OK, to_json(&v)?))
}

async fn set(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let text = std::str::from_utf8(&idem.body)
        .map_err(|_| ApiError::InvalidRequest("the rule file is not UTF-8 text".into()))?;
    let v = state.store.promotions_set(text).await.map_err(err)?;
    idem.respond(&state, StatusCode::OK, to_json(&v)?).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateIn {
    member_id: Value,
    #[serde(default)]
    channel: Option<String>,
    lines: Vec<BasketLine>,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    ordered_at: Option<i64>,
    #[serde(default)]
    paid_at: Option<i64>,
}

async fn evaluate(
    State(state): State<AppState>,
    _k: AnyKey,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let i: EvaluateIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidJson(format!(
            "the body is not an order `{{member_id, channel, lines, codes, ordered_at, paid_at}}`: {e}"
        ))
    })?;
    let member = match &i.member_id {
        Value::String(s) => touchpoint_core::MemberId::parse(s).ok(),
        Value::Number(n) => touchpoint_core::MemberId::parse(&n.to_string()).ok(),
        _ => None,
    }
    .map(|m| m.get())
    .ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "member_id {}: expected a member id such as M-123",
            i.member_id
        ))
    })?;
    let order = OrderIn {
        channel: i.channel,
        lines: i.lines,
        ordered_at: i.ordered_at.unwrap_or_else(touchpoint_store::now_ms),
        paid_at: i.paid_at,
    };
    let started = std::time::Instant::now();
    let e = state
        .store
        .promotions_evaluate(member, &order, &i.codes)
        .await
        .map_err(err)?;
    state.metrics.time("promotions_evaluate", started.elapsed());
    Ok(json_response(StatusCode::OK, to_json(&e)?))
}
