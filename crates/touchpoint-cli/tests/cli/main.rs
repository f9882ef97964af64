//! The real `touchpoint` binary, as a new user runs it.

use std::path::Path;
use std::process::{Command, Output};

fn touchpoint(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .output()
        .expect("run touchpoint")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_builds_a_brand_and_members_can_be_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = touchpoint(
        &db,
        &[
            "demo",
            "--members",
            "400",
            "--export",
            &dir.path().join("files").display().to_string(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("became") && t.contains("unified under one id"),
        "{t}"
    );
    for channel in ["tmall", "jd", "shopify", "pos", "wechat"] {
        assert!(t.contains(channel), "{channel} missing: {t}");
        assert!(dir.path().join("files").read_dir().unwrap().count() >= 5);
    }
    let out = touchpoint(&db, &["members", "show", "M-1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("identifiers:"));
    let out = touchpoint(&db, &["members", "list", "--limit", "5", "-o", "json"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["members"].as_array().unwrap().len(), 5);
    assert!(page["next_cursor"].is_string());
    // Running the demo again changes nothing.
    let out = touchpoint(&db, &["demo", "--members", "400"]);
    let t = text(&out);
    assert!(t.contains(" 0 new"), "{t}");
}

#[test]
fn a_bad_row_is_reported_with_file_and_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let file = dir.path().join("pos.csv");
    std::fs::write(
        &file,
        "order_id,ordered_at,sku,quantity,unit_price,phone,email\n\
         P1,2025-03-01 10:00:00,S1,1,10.00,13800000001,a@example.com\n\
         P2,2025-03-02 10:00:00,S1,one,10.00,13800000002,\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.csv");
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &file.display().to_string(),
            "--format",
            "canonical",
            "--channel",
            "pos",
            "--rejects",
            &rejects.display().to_string(),
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("pos.csv") && t.contains("line 3") && t.contains("quantity"),
        "{t}"
    );
    assert!(std::fs::read_to_string(&rejects).unwrap().contains("P2"));
    let out = touchpoint(&db, &["members", "show", "--phone", "138 0000 0001"]);
    assert!(text(&out).contains("P1"), "{}", text(&out));
}

#[test]
fn unknown_database_scheme_fails_with_the_accepted_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .args(["--database", "mysql://localhost/x", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("sqlite://") && t.contains("postgres://"), "{t}");
}

#[test]
fn a_file_in_the_wrong_format_fails_with_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &file.display().to_string(),
            "--format",
            "shopify",
            "--channel",
            "shopify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("x.csv") && t.contains("missing required column"),
        "{t}"
    );
}
