//! The served OpenAPI document equals the checked-in docs/openapi.json.

use std::path::PathBuf;

use crate::helpers::spawn_app;

#[tokio::test]
async fn served_openapi_matches_the_checked_in_file() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", Some(&app.analyst)).await;
    assert_eq!(r.status, 200);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&r.body).unwrap() + "\n";
    if std::env::var("TOUCHPOINT_UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty,
        "docs/openapi.json differs from the served document; run \
         TOUCHPOINT_UPDATE_OPENAPI=1 cargo test -p touchpoint-server --test api openapi and commit it"
    );
    // Every route is in it.
    for p in [
        "/v1/batch",
        "/api/members/{id}",
        "/api/orders",
        "/api/imports",
        "/api/reports/{kind}",
        "/healthz",
    ] {
        assert!(r.body["paths"].get(p).is_some(), "{p}");
    }
    app.finish().await;
}
