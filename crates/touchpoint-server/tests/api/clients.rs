//! The real tracking libraries against the real server: segment-analytics-python
//! 2.4 and 2.3.6, rudder-sdk-python 2.1, @segment/analytics-node. Each sends
//! identify + track + Order Completed twice with the same messageIds; the test
//! checks through the API that the member was joined, the order exists once and
//! the retry added nothing. A test is skipped (with a notice) only when its
//! client is not installed (`scripts/install-test-clients.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use touchpoint_server::ServerConfig;

use crate::helpers::{postgres_url, spawn_app_with, Db, TestApp};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn check(app: &TestApp, prefix: &str, channels: &[&str]) {
    let m = app
        .get(
            &format!("/api/members?member_no={prefix}-user"),
            Some(&app.analyst),
        )
        .await;
    let id = m.body["members"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("member for {prefix}: {}", m.text))
        .to_string();
    let m360 = app
        .get(&format!("/api/members/{id}"), Some(&app.analyst))
        .await;
    let ids: Vec<String> = m360.body["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["kind"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ids.contains(&format!("anonymous_id web:{prefix}-anon")),
        "{ids:?}"
    );
    assert!(
        ids.contains(&format!("email {prefix}@example.com")),
        "{ids:?}"
    );
    assert!(ids.iter().any(|i| i.starts_with("phone +86")), "{ids:?}");
    for c in channels {
        assert!(
            ids.contains(&format!("platform_user_id {c}:{prefix}-tb")),
            "{ids:?}"
        );
    }
    // The anonymous page view is attributed; each event stored once.
    let events = m360.body["events"]["items"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{}", m360.text);
    let orders = app
        .get(&format!("/api/orders?member_id={id}"), Some(&app.analyst))
        .await;
    let list = orders.body["orders"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", orders.text);
    assert_eq!(list[0]["order_id"], format!("{prefix}-order").as_str());
    assert_eq!(list[0]["gross_amount"], 4998);
    let t = app.get("/api/events/totals", Some(&app.analyst)).await;
    assert_eq!(t.body["events"], t.body["distinct_message_ids"]);
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run the client");
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn python_client(db: Db, venv: &str, lib: &str) {
    let python = root().join(".venv-clients").join(venv).join("bin/python");
    if !python.exists() {
        eprintln!(
            "skipped: {} not installed (run scripts/install-test-clients.sh)",
            python.display()
        );
        return;
    }
    if db == Db::Postgres && postgres_url().is_none() {
        eprintln!(
            "skipped: set TOUCHPOINT_TEST_POSTGRES_URL to run the client tests on PostgreSQL"
        );
        return;
    }
    let app = spawn_app_with(db, ServerConfig::default()).await;
    let prefix = venv.to_string();
    let script = root().join("tests/clients/python/send_events.py");
    let (url, key) = (app.url.clone(), app.ingest.clone());
    let py = python.clone();
    let lib = lib.to_string();
    let p = prefix.clone();
    tokio::task::spawn_blocking(move || {
        run(Command::new(py).arg(script).args([&lib, &url, &key, &p]))
    })
    .await
    .unwrap();
    check(&app, &prefix, &["tmall"]).await;
    app.finish().await;
}

async fn node_client(db: Db) {
    let dir = root().join("tests/clients/node");
    if !Path::new(&dir.join("node_modules/@segment/analytics-node")).exists() {
        eprintln!(
            "skipped: @segment/analytics-node not installed (run scripts/install-test-clients.sh)"
        );
        return;
    }
    if db == Db::Postgres && postgres_url().is_none() {
        eprintln!(
            "skipped: set TOUCHPOINT_TEST_POSTGRES_URL to run the client tests on PostgreSQL"
        );
        return;
    }
    let app = spawn_app_with(db, ServerConfig::default()).await;
    let (url, key) = (app.url.clone(), app.ingest.clone());
    let d = dir.clone();
    tokio::task::spawn_blocking(move || {
        run(Command::new("node")
            .current_dir(&d)
            .args(["send.js", &url, &key, "node"]))
    })
    .await
    .unwrap();
    check(&app, "node", &[]).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_2_4() {
    python_client(Db::Sqlite, "segment24", "segment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_2_3_6_sends_the_write_key_in_the_body() {
    python_client(Db::Sqlite, "segment236", "segment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudder_python_2_1_sends_gzip_and_basic_auth() {
    python_client(Db::Sqlite, "rudder", "rudder").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_node() {
    node_client(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_2_4_on_postgres() {
    python_client(Db::Postgres, "segment24", "segment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudder_python_on_postgres() {
    python_client(Db::Postgres, "rudder", "rudder").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_node_on_postgres() {
    node_client(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_2_3_6_on_postgres() {
    python_client(Db::Postgres, "segment236", "segment").await;
}
