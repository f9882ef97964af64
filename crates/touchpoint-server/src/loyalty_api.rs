//! The loyalty API: points (balance, spend, adjust), the program, packaging
//! code batches and claims. See docs/loyalty.md.
//!
//! Every write takes an `Idempotency-Key` header through the shared
//! [`crate::api::Idempotent`]: the first response is stored in the same unit
//! of work as the change, so the change and its stored answer commit
//! together; the same key with the same body returns the stored answer, with
//! a different body 422 `idempotency_key_mismatch`. Each ledger entry also
//! has its own unique key (`spend:api:KEYID:KEY`), so two identical requests
//! racing each other still debit once.
//!
//! **Code downloads.** `POST /api/loyalty/codes/batches` stores only the
//! codes' hashes; the codes in clear are written once to a file in a private
//! temporary directory of the server process (mode 0700), which the first
//! `GET .../codes.csv` streams and deletes. A restart loses undownloaded
//! files: void the batch and create another (or use `touchpoint loyalty
//! codes generate`, which writes the file directly).

use crate::api::json_response;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{json, Value};
use touchpoint_core::{Email, Identifier, Phone};
use touchpoint_store::keys::Role;
use touchpoint_store::loyalty::{self as ledger, ClaimPerson};
use touchpoint_store::StoreError;

use crate::api::Idempotent;
use crate::auth::{require, Admin, AnyKey, Reader};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

const IDEM: crate::routes::Param = param(
    "Idempotency-Key",
    In::Header,
    "string",
    false,
    "a client-chosen key, up to 200 characters: a retry with it returns the stored response",
);
const MEMBER: crate::routes::Param =
    param("id", In::Path, "string", true, "member id (M-123 or 123)");

/// The loyalty routes.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route {
            doc: Doc {
                method: "get",
                path: "/api/members/{id}/points",
                tag: "loyalty",
                summary: "A member's points",
                description: "`available`, `pending`, `debt`, `tier`, the open `lots` (earliest expiry first) and the latest 20 `entries`.",
                access: Access::AnyKey,
                params: vec![MEMBER],
                body: None,
                response: ("application/json", "`{member_id, available, pending, debt, tier, lots: [...], entries: [...]}`"),
            },
            handler: get(points),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/members/{id}/points/spend",
                tag: "loyalty",
                summary: "Spend points",
                description: "Body `{\"points\": N, \"reason\": \"...\", \"reference\": \"...\"}`. Draws the earliest-expiring available lots. 409 `insufficient_points` when fewer are available. Admin or ingest keys.",
                access: Access::Ingest,
                params: vec![MEMBER, IDEM],
                body: Some((&["application/json"], "a spend")),
                response: ("application/json", "`{\"entry\": {...}, \"available\": N}`"),
            },
            handler: post(spend),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/members/{id}/points/adjust",
                tag: "loyalty",
                summary: "Adjust points (admin)",
                description: "Body `{\"points\": N, \"reason\": \"...\"}`; N may be negative (drawn like a spend; 409 `insufficient_points`). The entry's source is the admin key.",
                access: Access::Admin,
                params: vec![MEMBER, IDEM],
                body: Some((&["application/json"], "an adjustment")),
                response: ("application/json", "`{\"entry\": {...}, \"available\": N}`"),
            },
            handler: post(adjust),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/loyalty/program",
                tag: "loyalty",
                summary: "The current points program",
                description: "`{version, created_at, body, program}`; 404 when none is set.",
                access: Access::Reader,
                params: vec![],
                body: None,
                response: ("application/json", "a program version"),
            },
            handler: get(program),
        },
        Route {
            doc: Doc {
                method: "put",
                path: "/api/loyalty/program",
                tag: "loyalty",
                summary: "Set the points program (admin)",
                description: "The body is the program file (TOML, docs/loyalty.md); it is checked and stored as a new version (the same text again changes nothing).",
                access: Access::Admin,
                params: vec![IDEM],
                body: Some((&["application/toml", "text/plain"], "the program file")),
                response: ("application/json", "the stored version"),
            },
            handler: axum::routing::put(set_program),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/loyalty/codes/batches",
                tag: "loyalty",
                summary: "Create a batch of packaging codes (admin)",
                description: "Body `{\"name\": \"...\", \"count\": N, \"points\": P, \"sku\": null, \"expires_at\": null, \"pending_days\": 0, \"url_prefix\": \"https://...\"}` (`expires_at`: UTC ms after which codes cannot be claimed; `pending_days`: days a claim's points stay pending, default 0). 201 with the batch `id`. Only the codes' hashes are stored; download the codes once from `codes.csv`.",
                access: Access::Admin,
                params: vec![IDEM],
                body: Some((&["application/json"], "a batch")),
                response: ("application/json", "`{\"id\": N, \"count\": N, \"points\": P, \"download\": \"/api/loyalty/codes/batches/N/codes.csv\"}`"),
            },
            handler: post(create_batch),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/loyalty/codes/batches/{id}/codes.csv",
                tag: "loyalty",
                summary: "Download a batch's codes, once (admin)",
                description: "CSV with header `code,url`. The first download deletes the server's only copy; later ones answer 404.",
                access: Access::Admin,
                params: vec![param("id", In::Path, "integer", true, "batch id")],
                body: None,
                response: ("text/csv", "the printer's file"),
            },
            handler: get(download_codes),
        },
        Route {
            doc: Doc {
                method: "post",
                path: "/api/loyalty/codes/claim",
                tag: "loyalty",
                summary: "Claim a packaging code",
                description: "Body `{\"code\": \"...\", \"member_id\": \"...\"}`, or `phone` / `email` / `wechat_unionid` instead of `member_id` (an unknown person becomes a member on the channel `scan`). 200 `{points, available, member_id}`; 409 `code_already_claimed`; 404 `unknown_code`; 400 `invalid_code` (mistyped: bad check character); 429 `too_many_attempts` with Retry-After after 10 wrong codes an hour per person or client IP. Admin or ingest keys.",
                access: Access::Ingest,
                params: vec![IDEM],
                body: Some((&["application/json"], "a claim")),
                response: ("application/json", "`{\"points\": P, \"available\": N, \"member_id\": \"M-1\"}`"),
            },
            handler: post(claim),
        },
        Route {
            doc: Doc {
                method: "get",
                path: "/api/reports/loyalty",
                tag: "loyalty",
                summary: "The loyalty report",
                description: "Points issued, spent, expired and reversed per month (business time zone); outstanding points and their value by expiry month; breakage; members per tier and tier movements; members who joined by scanning a code, by the channel they had bought on before. Same shape as `touchpoint report loyalty -o json`.",
                access: Access::Reader,
                params: vec![],
                body: None,
                response: ("application/json", "`{months, liability, outstanding_points, outstanding_value, breakage, tiers, tier_movements, joined_by_scan}`"),
            },
            handler: get(report),
        },
    ]
}

async fn report(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let r = state.store.loyalty_report(state.config.business_tz).await?;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// Map the store's loyalty errors to the API's codes.
fn err(e: StoreError) -> ApiError {
    match e {
        StoreError::InsufficientPoints { .. } => ApiError::InsufficientPoints(e.to_string()),
        StoreError::CodeAlreadyClaimed => ApiError::CodeAlreadyClaimed,
        StoreError::UnknownCode => ApiError::UnknownCode,
        StoreError::InvalidCode(m) => ApiError::InvalidCode(m),
        StoreError::TooManyAttempts { retry_after_secs } => ApiError::TooManyAttempts {
            retry_after: retry_after_secs,
        },
        StoreError::NotFound(m) => ApiError::NotFound(m),
        StoreError::InvalidInput(m) => ApiError::InvalidRequest(m),
        other => ApiError::Store(other),
    }
}

fn member_id(s: &str) -> Result<i64, ApiError> {
    touchpoint_core::MemberId::parse(s)
        .map(|m| m.get())
        .map_err(|_| ApiError::InvalidRequest(format!("{s:?} is not a member id such as M-123")))
}

// ---- GET /api/members/{id}/points ----

async fn points(
    State(state): State<AppState>,
    _k: AnyKey,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let b = state
        .store
        .points_balance(member_id(&id)?, 20)
        .await
        .map_err(err)?;
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&b).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

// ---- POST /api/members/{id}/points/spend ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpendIn {
    points: i64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

async fn spend(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    axum::extract::Path(id): axum::extract::Path<String>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    require(&key, &[Role::Admin, Role::Ingest], "spend points")?;
    let member = member_id(&id)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let input: SpendIn = idem.json("a spend `{points, reason, reference}`")?;
    let reason = input.reason.unwrap_or_else(|| "redemption".into());
    let started = std::time::Instant::now();
    let mut uow = state.store.unit_of_work().await?;
    let w = ledger::spend_in(
        &mut uow,
        member,
        input.points,
        &reason,
        input.reference.as_deref(),
        &format!("api {}", key.key_id),
        &idem.write_key(),
    )
    .await
    .map_err(err)?;
    let body = json!({"entry": w.entry, "available": w.available}).to_string();
    let r = idem.commit(uow, StatusCode::OK, body).await?;
    state.metrics.time("points_spend", started.elapsed());
    Ok(r)
}

// ---- POST /api/members/{id}/points/adjust ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustIn {
    points: i64,
    reason: String,
}

async fn adjust(
    State(state): State<AppState>,
    Admin(key): Admin,
    axum::extract::Path(id): axum::extract::Path<String>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    let member = member_id(&id)?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let input: AdjustIn = idem.json("an adjustment `{points, reason}`")?;
    let mut uow = state.store.unit_of_work().await?;
    let w = ledger::adjust_in(
        &mut uow,
        member,
        input.points,
        &input.reason,
        &format!("admin {}", key.key_id),
        &idem.write_key(),
    )
    .await
    .map_err(err)?;
    let body = json!({"entry": w.entry, "available": w.available}).to_string();
    idem.commit(uow, StatusCode::OK, body).await
}

// ---- the program ----

async fn program(State(state): State<AppState>, _k: Reader) -> Result<Response, ApiError> {
    let Some(v) = state.store.loyalty_program().await? else {
        return Err(ApiError::NotFound(
            "no loyalty program is set; PUT one to /api/loyalty/program".into(),
        ));
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
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
        .map_err(|_| ApiError::InvalidRequest("the program file is not UTF-8 text".into()))?;
    let v = state.store.loyalty_set_program(text).await.map_err(err)?;
    let body = serde_json::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
    idem.respond(&state, StatusCode::OK, body).await
}

// ---- code batches ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchIn {
    name: String,
    count: usize,
    points: i64,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    url_prefix: Option<String>,
    #[serde(default)]
    pending_days: Option<u32>,
}

/// The private directory holding undownloaded code files.
fn code_dir() -> Result<&'static PathBuf, ApiError> {
    static DIR: OnceLock<Result<tempfile::TempDir, String>> = OnceLock::new();
    match DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("touchpoint-codes-")
            .tempdir()
            .map_err(|e| e.to_string())
    }) {
        Ok(d) => {
            static PATH: OnceLock<PathBuf> = OnceLock::new();
            Ok(PATH.get_or_init(|| d.path().to_path_buf()))
        }
        Err(e) => Err(ApiError::Internal(format!("code directory: {e}"))),
    }
}

async fn create_batch(
    State(state): State<AppState>,
    _k: Admin,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let input: BatchIn =
        idem.json("a batch `{name, count, points, sku, expires_at, pending_days}`")?;
    let prefix = input
        .url_prefix
        .unwrap_or_else(|| "https://touchpoint.example/c/".into());
    let mut codes: Vec<String> = Vec::new();
    let id = state
        .store
        .codes_generate(
            &ledger::BatchSpec {
                name: &input.name,
                count: input.count,
                points: input.points,
                sku: input.sku.as_deref(),
                expires_at: input.expires_at,
                pending_days: input.pending_days.unwrap_or(0),
            },
            &mut |chunk| {
                codes.extend_from_slice(chunk);
                Ok(())
            },
        )
        .await
        .map_err(err)?;
    let path = code_dir()?.join(format!("{id}.csv"));
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "code,url")?;
        for c in &codes {
            writeln!(w, "{c},{prefix}{c}")?;
        }
        w.flush()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("cannot write the codes file: {e}")))?;
    let body = json!({
        "id": id,
        "count": input.count,
        "points": input.points,
        "pending_days": input.pending_days.unwrap_or(0),
        "download": format!("/api/loyalty/codes/batches/{id}/codes.csv"),
    })
    .to_string();
    idem.respond(&state, StatusCode::CREATED, body).await
}

async fn download_codes(
    State(state): State<AppState>,
    _k: Admin,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<Response, ApiError> {
    let path = code_dir()?.join(format!("{id}.csv"));
    let gone = || {
        ApiError::NotFound(format!("batch {id} has no codes to download: they were downloaded already, or the server restarted since the batch was created (void it and create another)"))
    };
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(_) => return Err(gone()),
    };
    if !state.store.codes_mark_downloaded(id).await? {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(gone());
    }
    tokio::fs::remove_file(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot delete the codes file: {e}")))?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"batch-{id}.csv\""),
            ),
        ],
        data,
    )
        .into_response())
}

// ---- POST /api/loyalty/codes/claim ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimIn {
    code: String,
    #[serde(default)]
    member_id: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    wechat_unionid: Option<String>,
    #[serde(default)]
    referral_code: Option<String>,
}

async fn claim(
    State(state): State<AppState>,
    AnyKey(key): AnyKey,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    idem: Idempotent,
) -> Result<Response, ApiError> {
    require(&key, &[Role::Admin, Role::Ingest], "claim codes")?;
    if let Some(r) = idem.replay(&state).await? {
        return Ok(r);
    }
    let input: ClaimIn =
        idem.json("a claim `{code, member_id | phone | email | wechat_unionid}`")?;
    let bad = |m: String| ApiError::InvalidRequest(m);
    let person = match (
        &input.member_id,
        &input.phone,
        &input.email,
        &input.wechat_unionid,
    ) {
        (Some(m), None, None, None) => ClaimPerson::Member(member_id(m)?),
        (None, Some(p), None, None) => ClaimPerson::Identifier(Identifier::phone(
            &Phone::parse(p, &state.config.default_country)
                .map_err(|e| bad(format!("phone: {e}")))?,
        )),
        (None, None, Some(e), None) => ClaimPerson::Identifier(Identifier::email(
            &Email::parse(e).map_err(|e| bad(format!("email: {e}")))?,
        )),
        (None, None, None, Some(w)) => ClaimPerson::Identifier(
            Identifier::wechat_unionid(w).map_err(|e| bad(format!("wechat_unionid: {e}")))?,
        ),
        _ => {
            return Err(bad(
                "name the person with exactly one of member_id, phone, email, wechat_unionid"
                    .into(),
            ))
        }
    };
    // An invite code the person came with: checked before anything is
    // written (a bad code is the request's error); a refusal is not.
    let referral_code = match input.referral_code.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => {
            let code = touchpoint_core::referrals::check_invite_code(c).map_err(|e| {
                bad(format!(
                    "referral_code {c:?}: {e}; expected the invite code of the member who invited them"
                ))
            })?;
            if state
                .store
                .referral_code_owner(&code)
                .await
                .map_err(err)?
                .is_none()
            {
                return Err(ApiError::UnknownInviteCode(format!(
                    "referral_code {code}: no member has this invite code"
                )));
            }
            Some(code)
        }
    };
    let ip = addr.ip().to_string();
    let subjects = ledger::claim_subjects(&person.subject(), Some(&ip));
    let hash = ledger::precheck_claim(&state.store, &input.code, &subjects)
        .await
        .map_err(err)?;
    let started = std::time::Instant::now();
    let response = match &person {
        ClaimPerson::Member(_) => {
            let mut uow = state.store.unit_of_work().await?;
            let c = ledger::claim_for(&mut uow, None, &hash, &person, referral_code.as_deref())
                .await
                .map_err(err)?;
            idem.commit(uow, StatusCode::OK, claim_body(&c)).await?
        }
        ClaimPerson::Identifier(_) => {
            // Identity resolution on the channel `scan`, in the claim's unit
            // of work, under the writer lock.
            let mut writer = state.writer.lock().await;
            let mut uow = state.store.unit_of_work().await?;
            let c = ledger::claim_for(
                &mut uow,
                Some(&mut *writer),
                &hash,
                &person,
                referral_code.as_deref(),
            )
            .await
            .map_err(err)?;
            let r = idem.commit(uow, StatusCode::OK, claim_body(&c)).await?;
            drop(writer);
            r
        }
    };
    state.metrics.time("code_claim", started.elapsed());
    Ok(response)
}

fn claim_body(c: &ledger::Claimed) -> String {
    let v: Value = json!({
        "points": c.points,
        "available": c.available,
        "member_id": format!("M-{}", c.member_id),
        "batch_id": c.batch_id,
        "referral": c.referral,
    });
    v.to_string()
}
