//! Campaigns over the API (docs/campaigns.md, docs/API.md): the same store
//! calls as `touchpoint campaigns create|list|show|report|dead-letters|retry`.
//! Writes are admin-only and take an `Idempotency-Key`
//! ([`crate::api::Idempotent`]); reads are for admin and analyst keys.
//! Deciding and delivering is the scheduler's (`touchpoint serve
//! --campaigns-interval`, or `touchpoint campaigns run` from cron).

use crate::api::{json_response, to_json};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use touchpoint_store::delivery::RetrySelection;
use touchpoint_store::StoreError;

use crate::api::{Idempotent, Path, Query};
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
const NAME: Param = param("name", In::Path, "string", true, "campaign name");

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
            tag: "campaigns",
            summary,
            description,
            access,
            params,
            body,
            response: (
                "application/json",
                "JSON, see the description and docs/campaigns.md",
            ),
        },
        handler,
    }
}

/// The campaign routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        route("post", "/api/campaigns", "Store a campaign file (admin)", "The body is the campaign file (TOML, docs/campaigns.md). It is checked whole (400 `invalid_request` with the line, the field and the accepted form; nothing is stored) and stored as the next version of its name; the same text again changes nothing. 201 `{name, version, created_at, body, campaign}`.", Access::Admin, vec![IDEM], Some((&["application/toml", "text/plain"], "the campaign file")), post(create)),
        route("get", "/api/campaigns", "The campaigns", "`{campaigns: [{name, version, created_at, body, campaign}]}`, the current version of each, by name.", Access::Reader, vec![], None, get(list)),
        route("get", "/api/campaigns/dead-letters", "Sends that will not be tried again by themselves", "`{dead_letters: [{id, campaign, member_id, channel, address, attempts, reason, decided_at, last_attempt_at}]}`: sends refused for good or still failing 24 h after their first try, as `touchpoint campaigns dead-letters -o json`.", Access::Reader, vec![], None, get(dead_letters)),
        route("post", "/api/campaigns/retry", "Queue dead letters again (admin)", "Body `{ids: [send id, ...]}` or `{all: true}`. `{queued: N}`; the next scheduler tick delivers them, with the same Message-ID / webhook-id.", Access::Admin, vec![IDEM], Some((&["application/json"], "which dead letters")), post(retry)),
        route("get", "/api/campaigns/{name}", "One campaign", "`{name, version, created_at, body, campaign}`, its current version; 404 `not_found`.", Access::Reader, vec![NAME], None, get(show)),
        route("get", "/api/campaigns/{name}/report", "A campaign's report", "The JSON of `touchpoint campaigns report NAME -o json`: `{campaign, version, sent, queued, failed, control, skipped: {reason: n}, conversion_days, conversion: {treated, treated_converted, treated_rate, control, control_converted, control_rate, lift, ci95, ...}}`.", Access::Reader, vec![NAME, param("days", In::Query, "integer", false, "days after a send in which a purchase counts (default the campaign's conversion_days)")], None, get(report)),
    ]
}

fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        other => ApiError::Store(other),
    }
}

async fn create(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let text = std::str::from_utf8(&idem.body)
        .map_err(|_| ApiError::InvalidRequest("the campaign file is not UTF-8 text".into()))?;
    let c = state.store.campaign_create(text).await.map_err(err)?;
    idem.respond(&state, StatusCode::CREATED, to_json(&c)?)
        .await
}

async fn list(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let list = state.store.campaigns().await.map_err(err)?;
    Ok(json_response(
        StatusCode::OK,
        to_json(&json!({ "campaigns": list }))?,
    ))
}

fn no_campaign(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no campaign named {name:?} (GET /api/campaigns lists them)"
    ))
}

async fn show(
    State(state): State<AppState>,
    _k: Reader,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let Some(c) = state.store.campaign(&name).await.map_err(err)? else {
        return Err(no_campaign(&name));
    };
    Ok(json_response(StatusCode::OK, to_json(&c)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    #[serde(default)]
    days: Option<u32>,
}

async fn report(
    State(state): State<AppState>,
    _k: Reader,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    if state.store.campaign(&name).await.map_err(err)?.is_none() {
        return Err(no_campaign(&name));
    }
    if q.days.is_some_and(|d| d == 0 || d > 3650) {
        return Err(ApiError::InvalidRequest(
            "days: expected a whole number from 1 to 3650".into(),
        ));
    }
    let r = state
        .store
        .campaign_report(&name, q.days)
        .await
        .map_err(err)?;
    Ok(json_response(StatusCode::OK, to_json(&r)?))
}

async fn dead_letters(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let list = state.store.campaign_dead_letters().await.map_err(err)?;
    Ok(json_response(
        StatusCode::OK,
        to_json(&json!({ "dead_letters": list }))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryIn {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
}

async fn retry(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let i: RetryIn = idem.json("`{ids: [send id, ...]}` or `{all: true}`")?;
    let which = match (i.all, i.ids.is_empty()) {
        (true, true) => RetrySelection::All,
        (false, false) => RetrySelection::Ids(i.ids),
        _ => {
            return Err(ApiError::InvalidRequest(
                "give either ids: [send id, ...] or all: true".into(),
            ))
        }
    };
    let n = state.store.campaign_retry(&which).await.map_err(err)?;
    idem.respond(&state, StatusCode::OK, json!({ "queued": n }).to_string())
        .await
}
