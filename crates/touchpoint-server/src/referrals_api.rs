//! Referrals over the API (docs/rewards.md, Referrals; docs/API.md): the
//! same store calls as `touchpoint referrals ...` and `touchpoint report
//! referrals`. Reads are for admin and analyst keys; writes are admin-only
//! and take an `Idempotency-Key` ([`crate::api::Idempotent`]). An
//! attribution is written in the request's unit of work together with its
//! stored response, so a retry replays it, refusals included.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_store::referrals::{self, Attribution, Came};
use touchpoint_store::StoreError;

use crate::api::{json_response, to_json, Idempotent, Path};
use crate::auth::{Admin, Reader};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Param, Route};
use crate::AppState;

const IDEM: Param = param(
    "Idempotency-Key",
    In::Header,
    "string",
    false,
    "1 to 200 visible characters; a retry with the same key and body returns the first answer",
);

#[allow(clippy::too_many_arguments)]
fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    description: &'static str,
    access: Access,
    params: Vec<Param>,
    body: Option<(&'static [&'static str], &'static str)>,
    handler: axum::routing::MethodRouter<AppState>,
) -> Route {
    Route {
        doc: Doc {
            method,
            path,
            tag: "referrals",
            summary,
            description,
            access,
            params,
            body,
            response: (
                "application/json",
                "JSON, see the description and docs/rewards.md (Referrals)",
            ),
        },
        handler,
    }
}

/// The referral routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        route("get", "/api/members/{id}/referral", "A member's referrals", "`{member_id, code, link, referred_by, friends: [...], rewards: [...]}`: the member's invite code (created on first use, then the same, as `touchpoint referrals code`), the invite link (`link_base` of the settings followed by the code; null without one), who referred them, the friends they referred (each `{friend_id, advocate_id, code, source, state: attributed|qualified|refused, reason, attributed_at, qualified_at, capped}`) and the rewards they received.", Access::Reader, vec![param("id", In::Path, "string", true, "member id, M-123 or 123")], None, get(member_referral)),
        route("post", "/api/referrals/attribute", "Attribute a member to an invite code (admin)", "Body `{member_id, code}`. Once per friend. 200 with the attribution when accepted (the same again returns it); 409 `referral_refused` with `reason` (`self_referral`, `not_new`, `already_attributed`) and the `attribution` as recorded (a refusal is recorded too); 404 `unknown_invite_code`; 400 `invalid_request` for a code that is not one (9 characters, check character).", Access::Admin, vec![IDEM], Some((&["application/json"], "`{member_id, code}`")), post(attribute)),
        route("get", "/api/reports/referrals", "The referral report", "The JSON of `touchpoint report referrals -o json`: `{codes_issued, codes_used, attributed, qualified, refused_self_referral, refused_not_new, capped, points_granted, coupons_granted, referred_members, referred_revenue, referred_mean_revenue, other_members, other_revenue, other_mean_revenue, referred_mean_clv, other_mean_clv}` (money in minor units; CLV in currency units, null without predictions).", Access::Reader, vec![], None, get(report)),
        route("get", "/api/referrals/program", "The referral settings", "`{version, program, created_at}`; 404 `not_found` when none are set.", Access::Reader, vec![], None, get(program)),
        route("put", "/api/referrals/program", "Set the referral settings (admin)", "The body is the settings file (TOML, docs/rewards.md, Referrals); it is checked (400 `invalid_request` naming the field) and stored as the next version. 200 `{version, program, created_at}`.", Access::Admin, vec![IDEM], Some((&["application/toml", "text/plain"], "the settings file")), put(set_program)),
    ]
}

fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        other => ApiError::Store(other),
    }
}

async fn member_referral(
    State(state): State<AppState>,
    _k: Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let requested = touchpoint_core::MemberId::parse(&id)
        .map_err(|e| ApiError::InvalidRequest(format!("member id {id:?}: expected {e}")))?;
    let Some(m) = state
        .store
        .resolve_member_id(requested)
        .await
        .map_err(err)?
    else {
        return Err(ApiError::NotFound(format!("no member {requested}")));
    };
    state.store.referral_code(m.get()).await.map_err(err)?;
    let v = state.store.referral_view(m.get()).await.map_err(err)?;
    Ok(json_response(StatusCode::OK, to_json(&v)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeIn {
    member_id: Value,
    code: String,
}

/// The body of a refused attribution (the API's error shape plus `reason`
/// and `attribution`), stored for replays like any answer.
fn refused(reason: &str, message: String, a: &Attribution) -> Result<String, ApiError> {
    to_json(&json!({
        "code": "referral_refused",
        "message": message,
        "reason": reason,
        "attribution": a,
    }))
}

async fn attribute(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let input: AttributeIn = idem.json("an attribution `{member_id, code}`")?;
    let raw = match &input.member_id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        v => v.to_string(),
    };
    let requested = touchpoint_core::MemberId::parse(&raw).map_err(|_| {
        ApiError::InvalidRequest(format!(
            "member_id {}: expected a member id such as M-123",
            input.member_id
        ))
    })?;
    let code = touchpoint_core::referrals::check_invite_code(&input.code).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "code {:?}: {e}; expected an invite code such as the one `GET /api/members/{{id}}/referral` answers",
            input.code
        ))
    })?;
    let Some(friend) = state
        .store
        .resolve_member_id(requested)
        .await
        .map_err(err)?
    else {
        return Err(ApiError::NotFound(format!("no member {requested}")));
    };
    let mut uow = state.store.unit_of_work().await?;
    let a = match referrals::attribute_in(&mut uow, friend.get(), &code, "api", Came::ByHand).await
    {
        Ok(a) => a,
        Err(StoreError::NotFound(m)) if m.contains("invite code") => {
            uow.rollback().await?;
            return Err(ApiError::UnknownInviteCode(format!(
                "no member has the invite code {code}"
            )));
        }
        Err(e) => return Err(err(e)),
    };
    let (status, body) = if a.code != code {
        (
            StatusCode::CONFLICT,
            refused(
                "already_attributed",
                format!(
                    "member M-{} came with the code {} first; a friend is attributed once",
                    a.friend_id, a.code
                ),
                &a,
            )?,
        )
    } else if a.state == "refused" {
        let reason = a.reason.clone().unwrap_or_default();
        let why = match reason.as_str() {
            "self_referral" => "the friend is the advocate, or shares or is linked to one of the advocate's identifiers",
            "not_new" => "the friend was known before they came with the code (an order older than their first identifier)",
            _ => "refused",
        };
        (
            StatusCode::CONFLICT,
            refused(&reason, format!("attribution refused: {why}"), &a)?,
        )
    } else {
        (StatusCode::OK, to_json(&a)?)
    };
    idem.commit(uow, status, body).await
}

async fn report(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let r = state.store.referral_report().await.map_err(err)?;
    Ok(json_response(StatusCode::OK, to_json(&r)?))
}

async fn program(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let Some(v) = state.store.referral_program().await.map_err(err)? else {
        return Err(ApiError::NotFound(
            "no referral settings are stored; PUT /api/referrals/program sets them".into(),
        ));
    };
    Ok(json_response(StatusCode::OK, to_json(&v)?))
}

async fn set_program(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let text = std::str::from_utf8(&idem.body)
        .map_err(|_| ApiError::InvalidRequest("the settings file is not UTF-8 text".into()))?;
    let v = state.store.referral_set_program(text).await.map_err(err)?;
    idem.respond(&state, StatusCode::OK, to_json(&v)?).await
}
