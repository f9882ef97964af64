//! Imports: an order export file uploaded over HTTP.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::routing::post;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{InputFormat, ReadOptions};
use touchpoint_core::ChannelName;
use touchpoint_store::import::{self, ImportOptions};

use super::{bad, internal, Query};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

pub(crate) fn routes() -> Vec<Route> {
    vec![
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
    ]
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
