//! Segment-compatible ingest: `POST /v1/batch`, `/v1/{identify,track,page,
//! screen,group,alias}` and the browser's `GET /v1/projects/{writeKey}/settings`.
//!
//! The write key may come as the HTTP Basic user name (RudderStack, Segment's
//! Node library), as `Authorization: Bearer`, or as `writeKey` in the body
//! (Segment's Python library 2.3, analytics.js): all are accepted. Bodies may
//! be gzip-compressed and may be sent as `text/plain` (browsers avoiding a
//! CORS preflight). Success is exactly `200 {"success": true}`, after the
//! events are committed.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Json;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use touchpoint_core::ChannelName;
use touchpoint_store::events::EventWriteCounts;
use touchpoint_store::keys::{ApiKey, Role};

use crate::auth::{header_key, require};
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::segment::{self, Outcome, RequestCx};
use crate::AppState;

/// The source of events sent with a key that names none (an admin key).
pub const DEFAULT_SOURCE: &str = "api";

const JSON_OR_TEXT: &[&str] = &["application/json", "text/plain"];

pub(crate) fn routes() -> Vec<Route> {
    let mut v = vec![Route {
        doc: Doc {
            method: "post",
            path: "/v1/batch",
            tag: "tracking",
            summary: "Send a batch of tracking events (Segment batch format)",
            description: "Body `{\"batch\": [event, ...], \"context\": {...}, \"sentAt\": ...}`; at most 500 KB (configurable up to 4 MB), 32 KB per event; may be gzip-compressed. Events are deduplicated on (source, messageId) for at least 7 days. Events without userId or anonymousId (previousId and userId for alias) are kept as rejected events; the others are accepted. Answers 200 only after the events are committed.",
            access: Access::Ingest,
            params: vec![],
            body: Some((JSON_OR_TEXT, "a Segment batch")),
            response: ("application/json", "`{\"success\": true}`"),
        },
        handler: post(batch),
    }];
    for kind in segment::TYPES {
        let handler = post(
            move |state: State<AppState>,
                  addr: ConnectInfo<SocketAddr>,
                  headers: HeaderMap,
                  body: Body| async move {
                ingest(state, addr, headers, body, Some(kind)).await
            },
        );
        v.push(Route {
            doc: Doc {
                method: "post",
                path: match kind {
                    "identify" => "/v1/identify",
                    "track" => "/v1/track",
                    "page" => "/v1/page",
                    "screen" => "/v1/screen",
                    "group" => "/v1/group",
                    _ => "/v1/alias",
                },
                tag: "tracking",
                summary: match kind {
                    "identify" => "Identify a person (joins userId, anonymousId, traits.email/phone, context.externalIds)",
                    "track" => "Record an action (Order Completed and Order Refunded become orders)",
                    "page" => "Record a page view",
                    "screen" => "Record a screen view",
                    "group" => "Record a group membership",
                    _ => "Join previousId (an anonymous id) to userId",
                },
                description: "One Segment event as the body (at most 32 KB); see /v1/batch for the rules.",
                access: Access::Ingest,
                params: vec![],
                body: Some((JSON_OR_TEXT, "a Segment event")),
                response: ("application/json", "`{\"success\": true}`"),
            },
            handler,
        });
    }
    v.push(Route {
        doc: Doc {
            method: "get",
            path: "/v1/projects/{writeKey}/settings",
            tag: "tracking",
            summary: "Settings for analytics.js (the browser library)",
            description: "Tells analytics.js to send its events to this server (integrations.\"Segment.io\".apiHost). The write key in the path is the credential.",
            access: Access::Public,
            params: vec![param("writeKey", In::Path, "string", true, "an ingest (write) key")],
            body: None,
            response: ("application/json", "analytics.js CDN settings"),
        },
        handler: get(settings),
    });
    v
}

async fn batch(
    state: State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    ingest(state, addr, headers, body, None).await
}

/// Read a body of at most `limit` bytes (after decompression).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("the body is over the limit of {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::InvalidRequest(format!(
                "the body could not be read (check Content-Encoding; gzip is accepted): {e}"
            ))
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Parse a JSON object body.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::InvalidJson(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::InvalidJson(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

async fn ingest_key(
    state: &AppState,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<ApiKey, ApiError> {
    let presented = header_key(headers).or_else(|| segment::str_field(body.get("writeKey")));
    let key = state.authenticate(presented.as_deref()).await?;
    require(&key, &[Role::Ingest, Role::Admin], "send tracking events")?;
    Ok(key)
}

async fn ingest(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
    kind: Option<&'static str>,
) -> Result<Json<Value>, ApiError> {
    let _permit = match state.ingest_permits.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            state
                .metrics
                .ingest_shed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::Overloaded { retry_after: 1 });
        }
    };
    let limit = if kind.is_some() {
        state.config.max_event_bytes
    } else {
        state.config.max_batch_bytes
    };
    let bytes = read_body(&headers, body, limit).await?;
    let received_at = chrono::Utc::now();
    let mut body = json_object(&bytes)?;
    let key = ingest_key(&state, &headers, &body).await?;
    let source = key.source.as_deref().unwrap_or(DEFAULT_SOURCE);
    let source = ChannelName::parse(source).map_err(|e| {
        ApiError::Internal(format!(
            "key {} has an invalid source {source:?}: {e}",
            key.key_id
        ))
    })?;

    let (raw_events, batch_context, batch_sent_at): (Vec<Value>, Option<Map<String, Value>>, _) =
        match kind {
            Some(_) => (vec![Value::Object(std::mem::take(&mut body))], None, None),
            None => {
                let events = match body.remove("batch") {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => {
                        return Err(ApiError::InvalidRequest(
                            "`batch` must be an array of event objects".into(),
                        ))
                    }
                };
                let context = match body.remove("context") {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                };
                (events, context, segment::parse_time(body.get("sentAt")))
            }
        };
    let cx = RequestCx {
        source: &source,
        received_at,
        ip: Some(addr.ip().to_string()),
        batch_context: batch_context.as_ref(),
        batch_sent_at,
        default_country: &state.config.default_country,
        default_currency: &state.config.default_currency,
    };
    let mut events = Vec::with_capacity(raw_events.len());
    let mut rejected = Vec::new();
    for (i, raw) in raw_events.into_iter().enumerate() {
        let size = serde_json::to_vec(&raw).map(|v| v.len()).unwrap_or(0);
        if size > state.config.max_event_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "event {i} of the batch is {size} bytes, over the limit of {} bytes per event",
                state.config.max_event_bytes
            )));
        }
        let outcome = match raw {
            Value::Object(m) => segment::prepare(m, kind, &cx),
            other => Outcome::Reject(touchpoint_store::events::NewRejected {
                source: source.as_str().to_string(),
                message_id: None,
                reason: "the event is not a JSON object".into(),
                received_at: received_at.timestamp_millis(),
                payload: other.to_string(),
            }),
        };
        match outcome {
            Outcome::Accept(p) => events.push(*p),
            Outcome::Reject(r) => rejected.push(r),
        }
    }
    let counts = submit(&state, events, rejected).await?;
    tracing::debug!(?counts, "events written");
    Ok(Json(json!({"success": true})))
}

/// Queue events for the writer and wait until they are committed.
pub(crate) async fn submit(
    state: &AppState,
    events: Vec<segment::Prepared>,
    rejected: Vec<touchpoint_store::events::NewRejected>,
) -> Result<EventWriteCounts, ApiError> {
    if events.is_empty() && rejected.is_empty() {
        return Ok(EventWriteCounts::default());
    }
    let (tx, rx) = oneshot::channel();
    state
        .pipeline
        .send(crate::pipeline::Job {
            events,
            rejected,
            reply: tx,
        })
        .await
        .map_err(|_| ApiError::ShuttingDown)?;
    match rx.await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(msg)) => Err(ApiError::Internal(format!("writing events failed: {msg}"))),
        Err(_) => Err(ApiError::ShuttingDown),
    }
}

async fn settings(
    State(state): State<AppState>,
    crate::api::Path(write_key): crate::api::Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = state.authenticate(Some(&write_key)).await?;
    require(&key, &[Role::Ingest, Role::Admin], "send tracking events")?;
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    Ok(Json(json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{host}/v1"),
                "protocol": proto,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]}
            }
        },
        "plan": {
            "track": {"__default": {"enabled": true, "integrations": {}}},
            "identify": {"__default": {"enabled": true}},
            "group": {"__default": {"enabled": true}}
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": []
    })))
}
