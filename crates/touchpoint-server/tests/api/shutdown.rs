//! Graceful shutdown answers the requests in flight, with their events committed.

use serde_json::json;

use crate::helpers::{basic, post_raw, spawn_app};

#[tokio::test]
async fn every_event_answered_200_during_shutdown_is_stored() {
    let mut app = spawn_app().await;
    let auth = basic(&app.ingest);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let auth = auth.clone();
        let url = format!("{}/v1/batch", app.url);
        tasks.push(tokio::spawn(async move {
            let events: Vec<_> = (0..50)
                .map(|j| json!({"type": "track", "event": "e", "anonymousId": "a", "messageId": format!("{i}-{j}")}))
                .collect();
            post_raw(&url, &auth, json!({"batch": events}).to_string()).await
        }));
    }
    // Shutdown begins while the requests are in flight (or not yet connected).
    tokio::task::yield_now().await;
    app.begin_shutdown();
    let mut ok = 0i64;
    for t in tasks {
        if t.await.unwrap() == Some(200) {
            ok += 1;
        }
    }
    app.wait_stopped().await;
    let (events, distinct) = app.store.event_totals(None).await.unwrap();
    assert_eq!(events, ok * 50, "every answered event is stored, no other");
    assert_eq!(distinct, events);
    app.finish().await;
}
