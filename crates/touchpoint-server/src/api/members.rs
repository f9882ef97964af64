//! Members: overview, search and listing, member 360, a member's events.

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_core::{Email, Identifier, Phone};

use super::{internal, member_id, Path, Query, LIMIT};
use crate::auth::Reader;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

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
                summary: "Member 360: identifiers, channels, orders, recent events, merge history, CLV predictions, points, coupons, referral",
                description: "A retired id (merged into another) answers the member it was merged into, with requested_id set. `predictions` lists the CLV predictions stored by `touchpoint clv predict`, one per model (empty before the first run). `coupons` lists the member's coupons (`code, definition_id, state, uses, ...`); `referral` is the body of `GET /api/members/{id}/referral` (`code` is null until one is created).",
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
    ]
}

async fn overview(State(state): State<AppState>, _k: Reader) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        serde_json::to_value(state.store.overview().await?).map_err(internal)?,
    ))
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
    let predictions = state.store.predictions_of_member(m.id).await?;
    let points = state.store.points_balance(m.id.get(), 10).await?;
    let mut v = serde_json::to_value(&m).map_err(internal)?;
    v["events"] = serde_json::to_value(events).map_err(internal)?;
    v["predictions"] = serde_json::to_value(predictions).map_err(internal)?;
    // The points account: available, pending, tier, open lots, latest entries.
    v["points"] = serde_json::to_value(points).map_err(internal)?;
    // Coupons and points-mall redemptions.
    let coupons = state.store.member_coupons(m.id.get()).await?;
    let redemptions = state.store.member_redemptions(m.id.get()).await?;
    v["coupons"] = serde_json::to_value(coupons).map_err(internal)?;
    v["reward_redemptions"] = serde_json::to_value(redemptions).map_err(internal)?;
    // Referrals: code and link, who referred them, their friends, rewards.
    let referral = state.store.referral_view(m.id.get()).await?;
    v["referral"] = serde_json::to_value(referral).map_err(internal)?;
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
