//! The points mall and coupons API: the catalogue, holds, captures and
//! releases, one-step redemptions; coupon definitions, issues, public codes,
//! validation, redemption and usage. See docs/rewards.md.
//!
//! Every write takes an `Idempotency-Key` header (read through
//! [`crate::api::idempotency_key`]): the first response is stored and
//! replayed for the same key and body; a different body is 422
//! `idempotency_key_mismatch`. The change itself is idempotent in the store
//! too (a hold's key is derived from the header; a coupon redemption is
//! unique per code and order), so a retry that races the first request, or
//! follows a crash before its answer was stored, changes nothing twice.

use crate::api::to_json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_core::coupons::{Basket, BasketLine, CouponRules, RewardKind};
use touchpoint_store::keys::{ApiKey, Role};
use touchpoint_store::rewards::NewReward;
use touchpoint_store::StoreError;

use crate::auth::{require, Admin, AnyKey, Reader};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Param, Route};
use crate::AppState;

const IDEM: Param = param(
    "Idempotency-Key",
    In::Header,
    "string",
    false,
    "a client-chosen key, up to 200 characters: a retry with it returns the stored response",
);
const ID: Param = param("id", In::Path, "integer", true, "id");

#[allow(clippy::too_many_arguments)]
fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    description: &'static str,
    access: Access,
    params: Vec<Param>,
    body: bool,
    handler: axum::routing::MethodRouter<AppState>,
) -> Route {
    Route {
        doc: Doc {
            method,
            path,
            tag: "rewards",
            summary,
            description,
            access,
            params,
            body: body.then_some((&["application/json"][..], "JSON, see the description")),
            response: ("application/json", "JSON, see docs/rewards.md"),
        },
        handler,
    }
}

/// The mall and coupon routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        route("get", "/api/rewards", "The points mall's catalogue", "`{rewards: [...]}`: each with `id, name, kind, points_cost, cash_part, stock, stock_left, per_member_limit, valid_from, valid_until, channels, coupon_definition_id, partner`.", Access::AnyKey, vec![], false, get(list_rewards)),
        route("post", "/api/rewards", "Add a reward (admin)", "Body `{name, kind: coupon|gift|partner_voucher, points_cost, cash_part, stock, per_member_limit, valid_from, valid_until, channels: [...], coupon_definition_id, partner}` (money in minor units, times in UTC ms). 201 with the reward.", Access::Admin, vec![IDEM], true, post(create_reward)),
        route("get", "/api/rewards/{id}", "One reward", "The reward; holds past their time are released first.", Access::AnyKey, vec![ID], false, get(show_reward)),
        route("post", "/api/rewards/{id}/hold", "Hold a reward", "Body `{member_id, channel, hold_seconds}` (default 900). Spends the points and reserves one unit until the hold ends; capture or release it before. 409 `out_of_stock`, `insufficient_points`, `reward_limit_reached`; 422 `reward_unavailable`. Admin or ingest keys.", Access::Ingest, vec![ID, IDEM], true, post(hold)),
        route("post", "/api/rewards/{id}/redeem", "Redeem a reward in one step", "Body `{member_id, channel}`: held and captured at once; a coupon reward returns its `coupon`. Errors as for a hold. Admin or ingest keys.", Access::Ingest, vec![ID, IDEM], true, post(redeem_reward)),
        route("post", "/api/rewards/holds/{id}/capture", "Capture a hold", "The reward is the member's (a coupon reward issues its coupon). Capturing again returns the capture; 409 `hold_not_active` when it was released or lapsed. Admin or ingest keys.", Access::Ingest, vec![ID, IDEM], false, post(capture)),
        route("post", "/api/rewards/holds/{id}/release", "Release a hold", "The unit goes back in stock and the points back to the member. 409 `hold_not_active` when it was captured. Admin or ingest keys.", Access::Ingest, vec![ID, IDEM], false, post(release)),
        route("get", "/api/coupons/definitions", "Coupon definitions", "`{definitions: [{id, name, rules, created_at}]}`.", Access::Reader, vec![], false, get(list_definitions)),
        route("post", "/api/coupons/definitions", "Define a coupon (admin)", "Body `{name, rules: {kind: fixed|percent|free_item, amount, percent, cap, free_sku, min_spend, channels, brands, categories, skus, valid_from, valid_until, valid_days, stackable, priority, return_on_refund}}`. 201 with the definition.", Access::Admin, vec![IDEM], true, post(create_definition)),
        route("post", "/api/coupons/definitions/{id}/issue", "Issue coupons to members (admin)", "Body `{member_id}` or `{member_ids: [...]}`: one unique code per member. `{coupons: [...]}`.", Access::Admin, vec![ID, IDEM], true, post(issue)),
        route("post", "/api/coupons/definitions/{id}/public", "Create a public code (admin)", "Body `{code, total_limit, per_member_limit}`. 201 with the coupon.", Access::Admin, vec![ID, IDEM], true, post(public_code)),
        route("get", "/api/coupons/usage", "Usage per coupon definition", "`{usage: [{definition_id, name, issued, redeemed, expired, returned, revenue, discount}]}` (money in minor units).", Access::Reader, vec![], false, get(usage)),
        route("post", "/api/coupons/validate", "What a code gives (no side effect)", "Body `{code, member_id, channel, amount, lines: [{sku, brand, category, quantity, unit_price}]}` (minor units). 200 `{code, coupon_id, definition_id, discount, eligible, free_sku, stackable, priority}`; or the refusal: 404 `unknown_coupon`; 422 `coupon_not_yet_valid`, `coupon_expired`, `coupon_wrong_member`, `coupon_out_of_scope`, `coupon_below_minimum_spend`; 409 `coupon_limit_reached`, `coupon_already_redeemed`.", Access::AnyKey, vec![], true, post(validate)),
        route("post", "/api/coupons/redeem", "Redeem a code for an order", "Body `{code, member_id, order_reference, channel, amount, lines}`. Redeems once and returns the `discount`; the same code and order again returns the same redemption. Of concurrent redeems of a single-use coupon exactly one succeeds; the others answer 409 `coupon_already_redeemed`. Other refusals as for validate. Admin or ingest keys.", Access::Ingest, vec![IDEM], true, post(redeem_coupon)),
        route("get", "/api/members/{id}/coupons", "A member's coupons and mall redemptions", "`{coupons: [...], redemptions: [...]}`.", Access::AnyKey, vec![param("id", In::Path, "string", true, "member id (M-123 or 123)")], false, get(member_coupons)),
    ]
}

/// Map the store's errors to the API's codes.
fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::Coupon(r) => ApiError::Coupon(r),
        StoreError::OutOfStock => ApiError::OutOfStock,
        StoreError::RewardUnavailable(m) => ApiError::RewardUnavailable(m),
        e @ StoreError::RewardLimitReached { .. } => ApiError::RewardLimitReached(e.to_string()),
        StoreError::HoldNotActive(m) => ApiError::HoldNotActive(m),
        e @ StoreError::InsufficientPoints { .. } => ApiError::InsufficientPoints(e.to_string()),
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        other => ApiError::Store(other),
    }
}

fn member_id(v: &Value) -> Result<i64, ApiError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    touchpoint_core::MemberId::parse(&s)
        .map(|m| m.get())
        .map_err(|_| {
            ApiError::InvalidRequest(format!("member_id {v}: expected a member id such as M-123"))
        })
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not {what}: {e}")))
}

fn respond(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An Idempotency-Key request: the shared [`crate::api::Idempotent`]
/// rule (same key and body: the stored response; another body: 422), keyed
/// by the logical path of the write.
struct Idem(crate::api::Idempotent);

impl Idem {
    fn new(headers: &HeaderMap, k: &ApiKey, path: &str, bytes: &[u8]) -> Result<Self, ApiError> {
        Ok(Idem(crate::api::Idempotent::new(
            k,
            crate::api::idempotency_key(headers)?,
            "POST",
            path,
            Bytes::copy_from_slice(bytes),
        )))
    }

    async fn replay(&self, state: &AppState) -> Result<Option<Response>, ApiError> {
        self.0.replay(state).await
    }

    /// The store-level key of this request (a fresh one without a header).
    fn store_key(&self) -> String {
        self.0.write_key()
    }

    /// Store the response in the write's own unit of work and commit both.
    async fn commit(
        &self,
        uow: touchpoint_store::unit_of_work::UnitOfWork,
        status: StatusCode,
        body: String,
    ) -> Result<Response, ApiError> {
        self.0.commit(uow, status, body).await
    }

    async fn done(
        &self,
        state: &AppState,
        status: StatusCode,
        body: String,
    ) -> Result<Response, ApiError> {
        self.0.respond(state, status, body).await
    }
}

// ---- the mall ----

async fn list_rewards(State(state): State<AppState>, _k: AnyKey) -> Result<Response, ApiError> {
    let r = state.store.rewards().await.map_err(err)?;
    Ok(respond(StatusCode::OK, json!({"rewards": r}).to_string()))
}

async fn show_reward(
    State(state): State<AppState>,
    _k: AnyKey,
    crate::api::Path(id): crate::api::Path<i64>,
) -> Result<Response, ApiError> {
    let r = state.store.reward(id).await.map_err(err)?;
    Ok(respond(StatusCode::OK, to_json(&r)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardIn {
    name: String,
    kind: String,
    points_cost: i64,
    #[serde(default)]
    cash_part: i64,
    stock: i64,
    #[serde(default)]
    per_member_limit: Option<i64>,
    #[serde(default)]
    valid_from: Option<i64>,
    #[serde(default)]
    valid_until: Option<i64>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    coupon_definition_id: Option<i64>,
    #[serde(default)]
    partner: Option<String>,
}

async fn create_reward(
    State(state): State<AppState>,
    Admin(key): Admin,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&headers, &key, "rewards", &bytes)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: RewardIn = json_body(&bytes, "a reward")?;
    let kind = RewardKind::parse(&i.kind).map_err(ApiError::InvalidRequest)?;
    let r = state
        .store
        .reward_create(&NewReward {
            name: i.name,
            kind,
            points_cost: i.points_cost,
            cash_part: i.cash_part,
            stock: i.stock,
            per_member_limit: i.per_member_limit,
            valid_from: i.valid_from,
            valid_until: i.valid_until,
            channels: i.channels,
            coupon_definition_id: i.coupon_definition_id,
            partner: i.partner,
        })
        .await
        .map_err(err)?;
    idem.done(&state, StatusCode::CREATED, to_json(&r)?).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldIn {
    member_id: Value,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    hold_seconds: Option<i64>,
}

async fn hold(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    take(state, key, id, headers, bytes, true).await
}

async fn redeem_reward(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    take(state, key, id, headers, bytes, false).await
}

async fn take(
    state: AppState,
    key: ApiKey,
    id: i64,
    headers: HeaderMap,
    bytes: Bytes,
    is_hold: bool,
) -> Result<Response, ApiError> {
    require(&key, &[Role::Admin, Role::Ingest], "redeem rewards")?;
    let path = format!("rewards/{id}/{}", if is_hold { "hold" } else { "redeem" });
    let idem = Idem::new(&headers, &key, &path, &bytes)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: HoldIn = json_body(&bytes, "a redemption `{member_id, channel, hold_seconds}`")?;
    let member = member_id(&i.member_id)?;
    let store_key = idem.store_key();
    let r = if is_hold {
        let ms = match i.hold_seconds {
            Some(s) if !(1..=7 * 86_400).contains(&s) => {
                return Err(ApiError::InvalidRequest(format!(
                    "hold_seconds {s}: expected 1 to 604800"
                )))
            }
            s => s.map(|s| s * 1000),
        };
        state
            .store
            .reward_hold(id, member, i.channel.as_deref(), ms, &store_key)
            .await
    } else {
        if i.hold_seconds.is_some() {
            return Err(ApiError::InvalidRequest(
                "hold_seconds: a one-step redemption has no hold; use /hold".into(),
            ));
        }
        state
            .store
            .reward_redeem(id, member, i.channel.as_deref(), &store_key)
            .await
    }
    .map_err(err)?;
    idem.done(&state, StatusCode::OK, to_json(&r)?).await
}

async fn capture(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    settle(state, key, id, headers, bytes, true).await
}

async fn release(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    settle(state, key, id, headers, bytes, false).await
}

async fn settle(
    state: AppState,
    key: ApiKey,
    id: i64,
    headers: HeaderMap,
    bytes: Bytes,
    is_capture: bool,
) -> Result<Response, ApiError> {
    require(&key, &[Role::Admin, Role::Ingest], "settle holds")?;
    let what = if is_capture { "capture" } else { "release" };
    let idem = Idem::new(&headers, &key, &format!("holds/{id}/{what}"), &bytes)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let r = if is_capture {
        state.store.reward_capture(id).await
    } else {
        state.store.reward_release(id).await
    }
    .map_err(err)?;
    idem.done(&state, StatusCode::OK, to_json(&r)?).await
}

// ---- coupons ----

async fn list_definitions(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let d = state.store.coupon_definitions().await.map_err(err)?;
    Ok(respond(
        StatusCode::OK,
        json!({"definitions": d}).to_string(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionIn {
    name: String,
    rules: CouponRules,
}

async fn create_definition(
    State(state): State<AppState>,
    Admin(key): Admin,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let idem = Idem::new(&headers, &key, "coupons/definitions", &bytes)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: DefinitionIn = json_body(&bytes, "a coupon definition `{name, rules}`")?;
    let d = state
        .store
        .coupon_define(&i.name, &i.rules)
        .await
        .map_err(err)?;
    idem.done(&state, StatusCode::CREATED, to_json(&d)?).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueIn {
    #[serde(default)]
    member_id: Option<Value>,
    #[serde(default)]
    member_ids: Vec<Value>,
}

async fn issue(
    State(state): State<AppState>,
    Admin(key): Admin,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let idem = Idem::new(
        &headers,
        &key,
        &format!("coupons/definitions/{id}/issue"),
        &bytes,
    )?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: IssueIn = json_body(&bytes, "an issue `{member_id}` or `{member_ids: [...]}`")?;
    let mut members = Vec::new();
    for v in i.member_id.iter().chain(&i.member_ids) {
        members.push(member_id(v)?);
    }
    if members.is_empty() || members.len() > 10_000 {
        return Err(ApiError::InvalidRequest(
            "member_id or member_ids: expected 1 to 10,000 members".into(),
        ));
    }
    let c = state
        .store
        .coupon_issue_bulk(
            id,
            &members,
            &format!("admin {}", key.key_id),
            &idem.store_key(),
        )
        .await
        .map_err(err)?;
    idem.done(&state, StatusCode::OK, json!({"coupons": c}).to_string())
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicIn {
    code: String,
    total_limit: i64,
    #[serde(default)]
    per_member_limit: Option<i64>,
}

async fn public_code(
    State(state): State<AppState>,
    Admin(key): Admin,
    crate::api::Path(id): crate::api::Path<i64>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let idem = Idem::new(
        &headers,
        &key,
        &format!("coupons/definitions/{id}/public"),
        &bytes,
    )?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: PublicIn = json_body(
        &bytes,
        "a public code `{code, total_limit, per_member_limit}`",
    )?;
    let c = state
        .store
        .coupon_public(id, &i.code, i.total_limit, i.per_member_limit)
        .await
        .map_err(err)?;
    idem.done(&state, StatusCode::CREATED, to_json(&c)?).await
}

async fn usage(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let u = state.store.coupon_usage().await.map_err(err)?;
    Ok(respond(StatusCode::OK, json!({"usage": u}).to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasketIn {
    code: String,
    member_id: Value,
    #[serde(default)]
    order_reference: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    lines: Vec<BasketLine>,
}

impl BasketIn {
    fn basket(&self) -> Result<Basket, ApiError> {
        if self.amount < 0
            || self
                .lines
                .iter()
                .any(|l| l.quantity < 1 || l.unit_price < 0)
        {
            return Err(ApiError::InvalidRequest(
                "amount and lines: expected amounts of 0 or more minor units and quantities of 1 or more".into(),
            ));
        }
        Ok(Basket {
            channel: self.channel.clone(),
            amount: self.amount,
            lines: self.lines.clone(),
        })
    }
}

async fn validate(
    State(state): State<AppState>,
    _k: AnyKey,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let i: BasketIn = json_body(&bytes, "`{code, member_id, channel, amount, lines}`")?;
    let member = member_id(&i.member_id)?;
    let started = std::time::Instant::now();
    let v = state
        .store
        .coupon_validate(&i.code, member, &i.basket()?)
        .await
        .map_err(err)?;
    state.metrics.time("coupon_validate", started.elapsed());
    Ok(respond(StatusCode::OK, to_json(&v)?))
}

async fn redeem_coupon(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    require(&key, &[Role::Admin, Role::Ingest], "redeem coupons")?;
    let idem = Idem::new(&headers, &key, "coupons/redeem", &bytes)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: BasketIn = json_body(
        &bytes,
        "`{code, member_id, order_reference, amount, lines}`",
    )?;
    let member = member_id(&i.member_id)?;
    let Some(order) = i.order_reference.clone().filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError::InvalidRequest(
            "order_reference: expected the order's id".into(),
        ));
    };
    let basket = i.basket()?;
    let started = std::time::Instant::now();
    // The redemption and its stored response commit in one transaction.
    let mut uow = state.store.unit_of_work().await?;
    let r = touchpoint_store::coupons::redeem_in(&mut uow, &i.code, member, &order, &basket)
        .await
        .map_err(err)?;
    let resp = idem.commit(uow, StatusCode::OK, to_json(&r)?).await?;
    state.metrics.time("coupon_redeem", started.elapsed());
    Ok(resp)
}

async fn member_coupons(
    State(state): State<AppState>,
    _k: AnyKey,
    crate::api::Path(id): crate::api::Path<String>,
) -> Result<Response, ApiError> {
    let m = touchpoint_core::MemberId::parse(&id)
        .map(|m| m.get())
        .map_err(|_| {
            ApiError::InvalidRequest(format!("{id:?} is not a member id such as M-123"))
        })?;
    let coupons = state.store.member_coupons(m).await.map_err(err)?;
    let redemptions = state.store.member_redemptions(m).await.map_err(err)?;
    Ok(respond(
        StatusCode::OK,
        json!({"coupons": coupons, "redemptions": redemptions}).to_string(),
    ))
}
