//! Reports: `GET /api/reports/{kind}`, the JSON of `touchpoint report KIND
//! -o json` for the same parameters (both go through
//! [`touchpoint_store::reports`]).

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use touchpoint_store::reports::{Report, ReportRequest};

use super::{Path, Query};
use crate::auth::Reader;
use crate::error::ApiError;
use crate::routes::{param, Access, Doc, In, Route};
use crate::AppState;

pub(crate) fn routes() -> Vec<Route> {
    vec![Route {
        doc: Doc {
            method: "get",
            path: "/api/reports/{kind}",
            tag: "reports",
            summary: "A customer value report (the JSON of `touchpoint report KIND -o json`)",
            description: "Kinds: rfm, abc, retention, cohorts, products, channels, summary, overview (a period against the previous one: from/to are the period, default the last 30 days), acquisition (spend and cost per new valid member and paying customer; docs/acquisition.md). The query parameters are the CLI's flags with `_` for `-`; each kind reads the options it uses and ignores the others. Dates are days of the server's business time zone. Definitions: docs/metrics.md.",
            access: Access::Reader,
            params: vec![
                param("kind", In::Path, "string", true, "rfm, abc, retention, cohorts, products, channels, summary, overview or acquisition"),
                param("as_of", In::Query, "string", false, "last day included, YYYY-MM-DD (default the day of the last order)"),
                param("channel", In::Query, "string", false, "only orders of this channel"),
                param("brand", In::Query, "string", false, "only order lines of products of this brand"),
                param("since", In::Query, "string", false, "only orders on or after this day, YYYY-MM-DD"),
                param("from", In::Query, "string", false, "a date range's first day, YYYY-MM-DD"),
                param("to", In::Query, "string", false, "a date range's last day, YYYY-MM-DD"),
                param("members", In::Query, "boolean", false, "rfm, abc: list every member (true or false, default false)"),
                param("by", In::Query, "string", false, "cohorts: month (default) or channel"),
                param("fulfilment_cost", In::Query, "string", false, "abc, summary: fulfilment cost per purchase order in currency units, e.g. 8.50 (default 0)"),
                param("channel_fee", In::Query, "string", false, "abc, summary: CHANNEL=RATE, e.g. tmall=0.05; repeatable or comma-separated"),
                param("rank_by", In::Query, "string", false, "abc: contribution (default) or score"),
                param("weights", In::Query, "string", false, "abc: score weights contribution,frequency,recency (default 0.6,0.2,0.2)"),
                param("repeat_90_min", In::Query, "number", false, "retention, summary: minimum repeat rate within 90 days, 0 to 1 (default 0.1)"),
                param("repeat_180_min", In::Query, "number", false, "retention, summary: minimum repeat rate within 180 days, 0 to 1 (default 0.2)"),
                param("annual_return_target", In::Query, "number", false, "retention, summary: annual return rate target, 0 to 1 (default 0.8)"),
            ],
            body: None,
            response: ("application/json", "the report, as `touchpoint report KIND -o json` prints it"),
        },
        handler: get(report),
    }]
}

async fn report(
    State(state): State<AppState>,
    _k: Reader,
    Path(kind): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Report>, ApiError> {
    let req = ReportRequest::parse(
        &kind,
        query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        state.config.business_tz,
    )
    .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    Ok(Json(state.store.report(&req).await?))
}
