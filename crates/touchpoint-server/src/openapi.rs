//! The OpenAPI 3.1 document, assembled from the route table ([`crate::routes`])
//! with serde_json (no code generator). `docs/openapi.json` is a copy checked
//! in; a test fails when the two differ. To refresh the copy run the test with
//! `TOUCHPOINT_UPDATE_OPENAPI=1`.

use serde_json::{json, Map, Value};

use crate::error::ERROR_CODES;
use crate::routes::{docs, Access, In};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for d in docs() {
        let mut params = Vec::new();
        for p in &d.params {
            params.push(json!({
                "name": p.name,
                "in": match p.location { In::Path => "path", In::Query => "query", In::Header => "header" },
                "required": p.required,
                "description": p.description,
                "schema": {"type": p.ty},
            }));
        }
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({"description": d.response.1, "content": {d.response.0: {}}}),
        );
        let security = match d.access {
            Access::Public => json!([]),
            Access::Ingest => json!([{"basic": []}, {"bearer": []}, {"bodyWriteKey": []}]),
            Access::Reader | Access::Admin | Access::AnyKey => json!([{"bearer": []}]),
        };
        if d.access != Access::Public || d.path.contains("{writeKey}") {
            responses.insert(
                "401".into(),
                error_response("no key, or an unknown or revoked key"),
            );
        }
        if d.access != Access::Public && d.access != Access::AnyKey || d.path.contains("{writeKey}")
        {
            responses.insert(
                "403".into(),
                error_response("the key's role may not use this endpoint"),
            );
        }
        if d.body.is_some() || !d.params.is_empty() {
            responses.insert(
                "400".into(),
                error_response("invalid JSON, parameter or field"),
            );
        }
        if d.path.contains('{') || d.path.starts_with("/api/members") {
            responses.insert("404".into(), error_response("not found"));
        }
        if d.body.is_some() {
            responses.insert("413".into(), error_response("over the size limit"));
        }
        if d.access == Access::Ingest {
            responses.insert(
                "429".into(),
                error_response("too many requests in flight; see Retry-After"),
            );
        }
        if d.params.iter().any(|p| p.name == "Idempotency-Key") {
            responses.insert(
                "409".into(),
                error_response("Idempotency-Key reused with a different request"),
            );
        }
        responses.insert(
            "500".into(),
            error_response("server error (details in the server log)"),
        );
        let mut op = json!({
            "tags": [d.tag],
            "summary": d.summary,
            "operationId": format!("{}_{}", d.method, d.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": responses,
            "security": security,
        });
        if !d.description.is_empty() {
            op["description"] = Value::String(d.description.into());
        }
        if let Some((types, desc)) = d.body {
            let content: Map<String, Value> =
                types.iter().map(|t| (t.to_string(), json!({}))).collect();
            op["requestBody"] = json!({"required": true, "description": desc, "content": content});
        }
        let entry = paths.entry(d.path.to_string()).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    let codes: Vec<Value> = ERROR_CODES.iter().map(|(c, _, _)| json!(c)).collect();
    let code_doc: Vec<String> = ERROR_CODES
        .iter()
        .map(|(c, s, d)| format!("`{c}` ({s}): {d}"))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Touchpoint API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Segment-compatible tracking ingest and the Touchpoint JSON API. Every error has the shape {\"code\", \"message\"}. Times are UTC epoch milliseconds, money integer minor units.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
                "basic": {"type": "http", "scheme": "basic", "description": "the write key as user name, empty password (Segment, RudderStack libraries)"},
                "bodyWriteKey": {"type": "apiKey", "in": "query", "name": "writeKey", "description": "`writeKey` in the JSON body (Segment Python 2.3, analytics.js); declared as a query key because OpenAPI has no body key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": codes, "description": code_doc.join("; ")},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    })
}
