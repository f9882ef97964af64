//! Profiles, tags, consent and segments (docs/campaigns.md): the same store
//! calls as `touchpoint members tag|untag|consent|profile` and `touchpoint
//! segments ...`. Every profile change goes through the store's one door
//! ([`touchpoint_store::profiles::apply_in`], via `Store::update_profile`).
//!
//! Writes are admin-only and take an `Idempotency-Key` through
//! [`crate::api::Idempotent`]: a retry with the same key and body gets the
//! first answer; a consent write also carries the key into the store, so a
//! retry that races the first request records the choice once. Reads are
//! for admin and analyst keys. A segment expression that does not parse
//! answers 422 `invalid_expression` with `line`, `column` and `suggestion`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_core::segments::{parse, Expr};
use touchpoint_core::MemberId;
use touchpoint_store::profiles::{
    Attributes, ConsentChoice, Profile, ProfileChange, ProfileOutcome, ProfileSource,
};
use touchpoint_store::segments::{export_csv, NewSegment, Preview, SegmentContext, ShownMember};
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
const MEMBER: Param = param("id", In::Path, "string", true, "member id (M-123 or 123)");
const NAME: Param = param("name", In::Path, "string", true, "segment name");

#[allow(clippy::too_many_arguments)]
fn route(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
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
            tag,
            summary,
            description,
            access,
            params,
            body: body.then_some((&["application/json"][..], "JSON, see the description")),
            response: (
                "application/json",
                "JSON, see the description and docs/campaigns.md",
            ),
        },
        handler,
    }
}

/// The profile and segment routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        route("get", "/api/members/{id}/profile", "profiles", "A member's profile", "`{member_id, attributes: {name, gender, birthday, region, city, language}, tags: [{tag, source: manual|rule}], consent: [{channel, topic, granted, at, source}]}`. A merged id answers for the member it was merged into.", Access::Reader, vec![MEMBER], false, get(show_profile)),
        route("patch", "/api/members/{id}/profile", "profiles", "Set profile attributes (admin)", "Body: any of `{name, gender, birthday: \"YYYY-MM-DD\", region, city, language}` (texts of 1 to 200 characters); fields left out are kept. `{changed: {member_id, attributes, tags_added, tags_removed, consent}, profile}`.", Access::Admin, vec![MEMBER, IDEM], true, patch(patch_profile)),
        route("post", "/api/members/{id}/tags", "profiles", "Add tags (admin)", "Body `{tags: [\"vip\", ...]}`: 1 to 64 letters, digits, spaces or `- _ : .`, stored in lower case. `{changed, profile}`; a tag the member has already changes nothing.", Access::Admin, vec![MEMBER, IDEM], true, post(add_tags)),
        route("delete", "/api/members/{id}/tags/{tag}", "profiles", "Remove a tag set by hand (admin)", "`{changed, profile}`; `changed.tags_removed` is empty when the member did not have the tag. Rule tags are kept by `segments refresh`.", Access::Admin, vec![MEMBER, param("tag", In::Path, "string", true, "the tag"), IDEM], false, delete(remove_tag)),
        route("post", "/api/members/{id}/consent", "profiles", "Record a consent choice (admin)", "Body `{channel: email|sms|wechat|webhook, topic: newsletter|promotions (omit for every topic), granted: true|false, at: UTC ms when the person chose (default now; not in the future), detail: where (optional)}`. The latest choice by `at` is the current one. `{changed, current: [...]}`.", Access::Admin, vec![MEMBER, IDEM], true, post(record_consent)),
        route("get", "/api/members/{id}/consent", "profiles", "A member's consent: current and history", "`{member_id, current: [{channel, topic, granted, at, source}], history: [{channel, topic, granted, at, recorded_at, source, detail}]}` (history oldest first). A channel and topic never recorded means no consent.", Access::Reader, vec![MEMBER], false, get(show_consent)),
        route("post", "/api/segments/preview", "segments", "Evaluate an expression (no side effect)", "Body `{expression, as_of: \"YYYY-MM-DD\" (default today in the business time zone), sample: 0 to 1000 (default 10)}`. `{expression, as_of, size, considered, elapsed_ms, sample: [...]}`, the JSON of `touchpoint segments preview -o json`. 422 `invalid_expression` with `line`, `column`, `suggestion`.", Access::Reader, vec![], true, post(preview)),
        route("post", "/api/segments", "segments", "Save a segment (admin)", "Body `{name, expression, description, rule_tag: false}`. 201 with the saved segment `{name, expression, description, is_tag, created_at, updated_at, sizes}`; 409 `segment_exists` when the name is taken; 422 `invalid_expression`.", Access::Admin, vec![IDEM], true, post(create_segment)),
        route("get", "/api/segments", "segments", "Saved segments", "`{segments: [...]}`, by name, each with its latest size only.", Access::Reader, vec![], false, get(list_segments)),
        route("get", "/api/segments/{name}", "segments", "One saved segment", "With its daily size history `sizes: [[day, members], ...]`.", Access::Reader, vec![NAME], false, get(show_segment)),
        route("get", "/api/segments/{name}/members", "segments", "The members of a saved segment now", "Paged JSON `{segment, as_of, size, members: [{member_id, ...every field}], next_cursor}`; with `Accept: text/csv` every member as the CSV of `touchpoint segments export`.", Access::Reader, vec![NAME, param("after", In::Query, "string", false, "cursor: next_cursor of the previous page"), param("limit", In::Query, "integer", false, "page size, 1 to 1000 (default 100)"), param("as_of", In::Query, "string", false, "YYYY-MM-DD (default today in the business time zone)")], false, get(segment_members)),
        route("post", "/api/segments/refresh", "segments", "Record today's sizes and update rule tags (admin)", "Body `{name, as_of}` (both optional; an empty body refreshes every segment today). `{refreshed: [{name, members, tagged, untagged}]}`.", Access::Admin, vec![IDEM], true, post(refresh)),
    ]
}

/// Map the store's errors to the API's codes.
fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        StoreError::SegmentExists(n) => {
            ApiError::SegmentExists(format!("a segment named {n:?} exists; choose another name"))
        }
        other => ApiError::Store(other),
    }
}

fn member(s: &str) -> Result<MemberId, ApiError> {
    MemberId::parse(s)
        .map_err(|e| ApiError::InvalidRequest(format!("member id {s:?}: expected {e}")))
}

fn to_json(v: &Value) -> String {
    v.to_string()
}

fn profile_json(p: &Profile) -> Value {
    json!({
        "member_id": MemberId::from_i64(p.member_id),
        "attributes": p.attributes,
        "tags": p.tags.iter().map(|(t, s)| json!({"tag": t, "source": s})).collect::<Vec<_>>(),
        "consent": p.consent,
    })
}

fn outcome_json(o: &ProfileOutcome) -> Value {
    json!({
        "member_id": MemberId::from_i64(o.member_id),
        "attributes": o.attributes,
        "tags_added": o.tags_added,
        "tags_removed": o.tags_removed,
        "consent": o.consent.iter().map(|(c, t, g)| json!({"channel": c, "topic": t, "granted": g})).collect::<Vec<_>>(),
    })
}

async fn show_profile(
    State(state): State<AppState>,
    _k: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = state.store.profile(member(&id)?).await.map_err(err)?;
    Ok(Json(profile_json(&p)))
}

/// Apply a change and answer `{changed, profile}`.
async fn change(
    state: &AppState,
    idem: &Idempotent,
    id: MemberId,
    change: ProfileChange,
) -> Result<Response, ApiError> {
    let done = state.store.update_profile(id, &change).await.map_err(err)?;
    let p = state.store.profile(id).await.map_err(err)?;
    let body = json!({"changed": outcome_json(&done), "profile": profile_json(&p)});
    idem.respond(state, StatusCode::OK, to_json(&body)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributesIn {
    name: Option<String>,
    gender: Option<String>,
    birthday: Option<String>,
    region: Option<String>,
    city: Option<String>,
    language: Option<String>,
}

fn text(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => {
            let t = s.trim();
            if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
                Err(ApiError::InvalidRequest(format!(
                    "{field} {s:?}: expected a text of 1 to 200 characters without control characters"
                )))
            } else {
                Ok(Some(t.to_string()))
            }
        }
    }
}

async fn patch_profile(
    State(state): State<AppState>,
    _k: Admin,
    Path(id): Path<String>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let id = member(&id)?;
    let i: AttributesIn =
        idem.json("a profile `{name, gender, birthday, region, city, language}` (any of them)")?;
    let birthday = match &i.birthday {
        None => None,
        Some(b) => Some(
            NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d").map_err(|_| {
                ApiError::InvalidRequest(format!(
                    "birthday {b:?}: expected a date YYYY-MM-DD, e.g. 1990-05-17"
                ))
            })?,
        ),
    };
    let mut c = ProfileChange::new(ProfileSource::Api);
    c.attributes = Attributes {
        name: text("name", i.name)?,
        gender: text("gender", i.gender)?,
        birthday,
        region: text("region", i.region)?,
        city: text("city", i.city)?,
        language: text("language", i.language)?,
    };
    change(&state, &idem, id, c).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsIn {
    tags: Vec<String>,
}

async fn add_tags(
    State(state): State<AppState>,
    _k: Admin,
    Path(id): Path<String>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let id = member(&id)?;
    let i: TagsIn = idem.json("`{tags: [...]}`")?;
    if i.tags.is_empty() {
        return Err(ApiError::InvalidRequest(
            "tags []: expected at least one tag, e.g. {\"tags\": [\"vip\"]}".into(),
        ));
    }
    let mut c = ProfileChange::new(ProfileSource::Api);
    c.add_tags = i.tags;
    change(&state, &idem, id, c).await
}

async fn remove_tag(
    State(state): State<AppState>,
    _k: Admin,
    Path((id, tag)): Path<(String, String)>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let mut c = ProfileChange::new(ProfileSource::Api);
    c.remove_tags.push(tag);
    change(&state, &idem, member(&id)?, c).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentIn {
    channel: String,
    topic: Option<String>,
    granted: bool,
    at: Option<i64>,
    detail: Option<String>,
}

async fn record_consent(
    State(state): State<AppState>,
    Admin(key): Admin,
    Path(id): Path<String>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let id = member(&id)?;
    let i: ConsentIn = idem.json("a consent choice `{channel, topic, granted, at, detail}`")?;
    // A choice dated in the future would outrank every later one.
    if let Some(at) = i.at {
        if at < 0 || at > touchpoint_store::now_ms() + 5 * 60 * 1000 {
            return Err(ApiError::InvalidRequest(format!(
                "at {at}: expected when the person chose, in UTC milliseconds, not in the future"
            )));
        }
    }
    let detail = text("detail", i.detail)?;
    let mut c = ProfileChange::new(ProfileSource::Api);
    c.detail = Some(detail.unwrap_or_else(|| format!("api key {}", key.key_id)));
    c.at = i.at;
    c.idempotency_key = idem.key().map(|_| idem.write_key());
    c.consent.push(ConsentChoice {
        channel: i.channel,
        topic: i.topic,
        granted: i.granted,
    });
    let done = state.store.update_profile(id, &c).await.map_err(err)?;
    let p = state.store.profile(id).await.map_err(err)?;
    let body = json!({"changed": outcome_json(&done), "current": p.consent});
    idem.respond(&state, StatusCode::OK, to_json(&body)).await
}

async fn show_consent(
    State(state): State<AppState>,
    _k: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = member(&id)?;
    let p = state.store.profile(id).await.map_err(err)?;
    let history = state.store.consent_history(id).await.map_err(err)?;
    Ok(Json(json!({
        "member_id": MemberId::from_i64(p.member_id),
        "current": p.consent,
        "history": history,
    })))
}

fn expression(text: &str) -> Result<Expr, ApiError> {
    parse(text).map_err(ApiError::InvalidExpression)
}

fn as_of_day(v: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    v.map(|s| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
            ApiError::InvalidRequest(format!(
                "as_of {s:?}: expected a date YYYY-MM-DD, e.g. 2025-11-11"
            ))
        })
    })
    .transpose()
}

fn context(state: &AppState, as_of: Option<NaiveDate>) -> SegmentContext {
    SegmentContext {
        as_of,
        ..SegmentContext::new(state.config.business_tz)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewIn {
    expression: String,
    as_of: Option<String>,
    sample: Option<usize>,
}

async fn preview(
    State(state): State<AppState>,
    _k: Reader,
    body: axum::body::Bytes,
) -> Result<Json<Preview>, ApiError> {
    let i: PreviewIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidJson(format!(
            "the body is not a preview `{{expression, as_of, sample}}`: {e}"
        ))
    })?;
    let sample = i.sample.unwrap_or(10);
    if sample > 1000 {
        return Err(ApiError::InvalidRequest(format!(
            "sample {sample}: expected 0 to 1000"
        )));
    }
    let expr = expression(&i.expression)?;
    let cx = context(&state, as_of_day(i.as_of.as_deref())?);
    let ev = state
        .store
        .evaluate_segment(&expr, &cx)
        .await
        .map_err(err)?;
    Ok(Json(Preview::of(&i.expression, ev, sample)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentIn {
    name: String,
    expression: String,
    description: Option<String>,
    #[serde(default)]
    rule_tag: bool,
}

async fn create_segment(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let i: SegmentIn = idem.json("a segment `{name, expression, description, rule_tag}`")?;
    expression(&i.expression)?;
    touchpoint_store::segments::check_name(&i.name).map_err(err)?;
    if state.store.segment(&i.name).await.map_err(err)?.is_some() {
        return Err(err(StoreError::SegmentExists(i.name)));
    }
    let saved = state
        .store
        .save_segment(&NewSegment {
            name: i.name,
            expression: i.expression,
            description: i.description,
            is_tag: i.rule_tag,
            replace: false,
        })
        .await
        .map_err(err)?;
    let body = serde_json::to_string(&saved).map_err(|e| ApiError::Internal(e.to_string()))?;
    idem.respond(&state, StatusCode::CREATED, body).await
}

async fn list_segments(State(state): State<AppState>, _k: Reader) -> Result<Json<Value>, ApiError> {
    let list = state.store.list_segments().await.map_err(err)?;
    Ok(Json(json!({ "segments": list })))
}

fn no_segment(name: &str) -> ApiError {
    ApiError::NotFound(format!("no saved segment named {name:?}"))
}

async fn show_segment(
    State(state): State<AppState>,
    _k: Reader,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = state
        .store
        .segment(&name)
        .await
        .map_err(err)?
        .ok_or_else(|| no_segment(&name))?;
    Ok(Json(json!(s)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersQuery {
    after: Option<String>,
    limit: Option<String>,
    as_of: Option<String>,
}

async fn segment_members(
    State(state): State<AppState>,
    _k: Reader,
    Path(name): Path<String>,
    Query(q): Query<MembersQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = q
        .after
        .as_deref()
        .map(|a| {
            MemberId::parse(a).map_err(|_| {
                ApiError::InvalidRequest(format!(
                    "after {a:?}: expected the next_cursor of the previous page, e.g. M-123"
                ))
            })
        })
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit {l:?}: expected 1 to 1000")))?,
    };
    let as_of = as_of_day(q.as_of.as_deref())?;
    let s = state
        .store
        .segment(&name)
        .await
        .map_err(err)?
        .ok_or_else(|| no_segment(&name))?;
    let expr = parse(&s.expression)
        .map_err(|e| ApiError::Internal(format!("stored segment {name:?}: {e}")))?;
    let cx = SegmentContext {
        all_fields: true,
        ..context(&state, as_of)
    };
    let ev = state
        .store
        .evaluate_segment(&expr, &cx)
        .await
        .map_err(err)?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let mut out = Vec::new();
        export_csv(&ev.members, &mut out).map_err(err)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"segment-{}.csv\"", s.name),
                ),
            ],
            out,
        )
            .into_response());
    }
    let start = match after {
        Some(a) => ev.members.partition_point(|m| m.member_id <= a.get()),
        None => 0,
    };
    let page: Vec<ShownMember> = ev.members[start..]
        .iter()
        .take(limit)
        .cloned()
        .map(ShownMember)
        .collect();
    let next = (start + page.len() < ev.members.len())
        .then(|| page.last().map(|m| MemberId::from_i64(m.0.member_id)))
        .flatten();
    let mut body = json!({
        "segment": s.name,
        "as_of": ev.as_of,
        "size": ev.members.len(),
        "members": page,
    });
    if let Some(n) = next {
        body["next_cursor"] = json!(n);
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshIn {
    name: Option<String>,
    as_of: Option<String>,
}

async fn refresh(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(stored) = idem.replay(&state).await? {
        return Ok(stored);
    }
    let i: RefreshIn = if idem.body.iter().all(u8::is_ascii_whitespace) {
        RefreshIn::default()
    } else {
        idem.json("`{name, as_of}` (both optional)")?
    };
    let cx = context(&state, as_of_day(i.as_of.as_deref())?);
    let done = match &i.name {
        Some(n) => vec![state
            .store
            .refresh_segment(n, &cx)
            .await
            .map_err(err)?
            .ok_or_else(|| no_segment(n))?],
        None => state.store.refresh_segments(&cx).await.map_err(err)?,
    };
    idem.respond(
        &state,
        StatusCode::OK,
        to_json(&json!({ "refreshed": done })),
    )
    .await
}
