//! The real `touchpoint` binary, as a new user runs it.

use std::path::Path;
use std::process::{Command, Output};

mod channels;

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
    // The birthday and win-back campaigns, their audiences and a dry run.
    assert!(
        t.contains("demo-birthday (version 1): audience")
            && t.contains("demo-winback would decide")
            && t.contains("win_back:"),
        "{t}"
    );
    for channel in ["tmall", "jd", "shopify", "pos", "wechat"] {
        assert!(t.contains(channel), "{channel} missing: {t}");
        assert!(dir.path().join("files").read_dir().unwrap().count() >= 5);
    }
    // The mall, a coupon in use and a referral chain, granted.
    assert!(
        t.contains("mall: reward") && t.contains("granted now: 2 qualified"),
        "{t}"
    );
    assert!(
        t.contains("report referrals: 2 codes, 2 attributed, 2 qualified"),
        "{t}"
    );
    let out = touchpoint(&db, &["members", "show", "M-1"]);
    assert!(out.status.success(), "{}", text(&out));
    let m = text(&out);
    assert!(m.contains("identifiers:"));
    // Member 360: coupons (one used on the demo order) and the referral.
    assert!(m.contains("redeemed (1 of 1 uses)"), "{m}");
    assert!(
        m.contains("referral code: ") && m.contains("friends referred: 1"),
        "{m}"
    );
    let out = touchpoint(&db, &["members", "show", "M-1", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["referral"]["friends"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
    assert!(
        v["coupons"].as_array().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
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

/// The demo writes its channel files in their real formats (Taobao in GBK,
/// Shopify, canonical CSV and JSONL); imported without `--format`, each is
/// detected and the report says so, in text and in JSON.
#[test]
fn import_without_format_detects_each_real_format_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let out = touchpoint(
        &dir.path().join("demo.db"),
        &[
            "demo",
            "--members",
            "200",
            "--export",
            &files.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let tmall = std::fs::read(files.join("tmall.csv")).unwrap();
    assert!(
        std::str::from_utf8(&tmall).is_err(),
        "the Taobao file is GBK"
    );
    let db = dir.path().join("t.db");
    for (file, channel, format) in [
        ("tmall.csv", "tmall", "taobao"),
        ("shopify.csv", "shopify", "shopify"),
        ("jd.csv", "jd", "canonical"),
        ("wechat.jsonl", "wechat", "canonical"),
    ] {
        let path = files.join(file).display().to_string();
        let out = touchpoint(
            &db,
            &[
                "import",
                "orders",
                &path,
                "--channel",
                channel,
                "-o",
                "json",
            ],
        );
        assert!(out.status.success(), "{file}: {}", text(&out));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["format"], format, "{file}");
        assert_eq!(r["format_detected"], true, "{file}");
        assert!(r["orders"]["inserted"].as_u64().unwrap() > 0, "{file}");
    }
    // Text: the detected format is named. --format still forces one.
    let path = files.join("pos.csv").display().to_string();
    let out = touchpoint(&db, &["import", "orders", &path, "--channel", "pos"]);
    assert!(
        text(&out).contains("format: canonical (detected from the header"),
        "{}",
        text(&out)
    );
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &path,
            "--channel",
            "pos",
            "--format",
            "shopify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("not a shopify file") && t.contains("use --format canonical"),
        "{t}"
    );
    assert!(!t.contains("Billing Province"), "{t}");
}

#[test]
fn import_without_format_refuses_a_header_no_format_has() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let out = touchpoint(
        &dir.path().join("t.db"),
        &["import", "orders", &file.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("x.csv: cannot tell the format")
            && t.contains("order_id")
            && t.contains("Lineitem price")
            && t.contains("订单编号"),
        "{t}"
    );
}

/// `error: nope.csv: No such file or directory (os error 2): No such file or
/// directory (os error 2)` said the cause twice.
#[test]
fn cli_errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let missing = dir.path().join("nope.csv").display().to_string();
    for args in [
        vec![
            "import",
            "orders",
            &missing,
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
        vec!["import", "orders", &missing, "--channel", "pos"],
    ] {
        let out = touchpoint(&db, &args);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains("nope.csv"), "{err}");
        let cause = if cfg!(windows) {
            "os error"
        } else {
            "No such file or directory"
        };
        assert_eq!(err.matches(cause).count(), 1, "{err}");
    }
}

#[test]
fn a_bad_setting_is_refused_once_with_the_accepted_form() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    for cmd in [vec!["members", "list"], vec!["report", "summary"]] {
        let mut args = vec!["--timezone", "Mars/Olympus"];
        args.extend(cmd);
        let out = touchpoint(&db, &args);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(err.matches("Mars/Olympus").count(), 1, "{err}");
        assert!(
            err.contains("--timezone") && err.contains("Asia/Shanghai"),
            "{err}"
        );
    }
    let out = touchpoint(&db, &["--shared-limit", "0", "members", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("at least 1"), "{}", text(&out));
}

/// A counter phone typed in for six customers: members list shows the six
/// people and no member for the phone; the phone's lookup says it is shared;
/// the links it made before the split read as undone.
#[test]
fn shared_phone_is_no_member_and_its_old_links_read_as_undone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let file = dir.path().join("pos.csv");
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone,email\n");
    for k in 0..6 {
        csv.push_str(&format!(
            "P{k},2025-03-0{} 10:00:00,S1,1,10.00,021-50001234,c{k}@example.com\n",
            k + 1
        ));
    }
    std::fs::write(&file, csv).unwrap();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &file.display().to_string(),
            "--channel",
            "pos",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(&db, &["members", "list", "-o", "json"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members = page["members"].as_array().unwrap();
    assert_eq!(members.len(), 6, "{page}");
    assert!(members.iter().all(|m| m["orders"] == 1), "{page}");
    let out = touchpoint(&db, &["members", "show", "--phone", "021-50001234"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("is shared and belongs to no member"),
        "{}",
        text(&out)
    );
    let out = touchpoint(&db, &["members", "show", "M-1"]);
    let t = text(&out);
    let undone: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("(undone by the split on "))
        .collect();
    assert_eq!(undone.len(), 4, "{t}");
    assert!(undone
        .iter()
        .all(|l| l.contains("joined M-1 because phone +862150001234")));
    let out = touchpoint(&db, &["members", "show", "M-1", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let superseded = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["superseded"] == true && e["undone_by"]["event_id"].is_i64())
        .count();
    assert_eq!(superseded, 4, "{v}");
}

/// `touchpoint report rfm --channel tmall -o json` prints exactly the body of
/// `GET /api/reports/rfm?channel=tmall` from the real server (port 0) over
/// the same database.
#[test]
fn report_json_equals_the_api_body() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = touchpoint(&db, &["demo", "--members", "300"]);
    assert!(out.status.success(), "{}", text(&out));
    let cases: [(&[&str], &str); 4] = [
        (&["rfm", "--channel", "tmall"], "rfm?channel=tmall"),
        (
            &["abc", "--channel-fee", "tmall=0.05,jd=0.04", "--members"],
            "abc?channel_fee=tmall%3D0.05,jd%3D0.04&members=true",
        ),
        (
            &[
                "cohorts",
                "--by",
                "channel",
                "--from",
                "2024-03-01",
                "--to",
                "2024-12-31",
            ],
            "cohorts?by=channel&from=2024-03-01&to=2024-12-31",
        ),
        (
            &["acquisition", "--channel", "tmall", "--from", "2025-01-01"],
            "acquisition?channel=tmall&from=2025-01-01",
        ),
    ];
    let mut cli = Vec::new();
    for (args, _) in &cases {
        let mut a = vec!["report"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = touchpoint(&db, &a);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        cli.push(v);
    }
    assert!(cli[0]["members"].as_u64().unwrap() > 0, "{}", cli[0]);
    // The demo's spend file was imported: the acquisition report has data.
    assert!(cli[3]["total"]["spend"].as_i64().unwrap() > 0, "{}", cli[3]);
    assert!(
        cli[3]["total"]["new_valid_members"].as_i64().unwrap() > 0,
        "{}",
        cli[3]
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use http_body_util::BodyExt;
        let store = touchpoint_store::Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let key = store
            .create_key(touchpoint_store::keys::Role::Analyst, None, None)
            .await
            .unwrap()
            .key;
        let server = touchpoint_server::Server::build(
            store.clone(),
            touchpoint_server::ServerConfig::default(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        for ((_, query), expected) in cases.iter().zip(&cli) {
            let req = hyper::Request::get(format!("http://{addr}/api/reports/{query}"))
                .header("authorization", format!("Bearer {key}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
            let api: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(&api, expected, "{query}");
        }
        let _ = tx.send(());
        handle.await.unwrap().unwrap();
        store.close().await;
    });
}

#[test]
fn coupons_issued_from_a_csv_report_bad_rows_and_the_mall_redeems_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let orders = dir.path().join("o.csv");
    std::fs::write(
        &orders,
        "channel,order_id,ordered_at,sku,quantity,unit_price,member_no\npos,A1,2025-03-01,S1,1,300.00,V1\npos,A2,2025-03-01,S1,1,10.00,V2\n",
    )
    .unwrap();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            "--format",
            "canonical",
            orders.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(
        &db,
        &[
            "coupons",
            "create",
            "Ten off",
            "--kind",
            "fixed",
            "--amount",
            "10.00",
            "--min-spend",
            "50.00",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let list = dir.path().join("members.csv");
    std::fs::write(&list, "member_id\nM-1\nnot-a-member\nM-2\n").unwrap();
    let out = touchpoint(
        &db,
        &[
            "coupons",
            "issue",
            "Ten off",
            "--csv",
            list.to_str().unwrap(),
            "--key",
            "spring",
            "-o",
            "json",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("members.csv: line 3: member_id \"not-a-member\""),
        "{t}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["coupons"].as_array().unwrap().len(), 2, "{t}");
    // The same key again issues nothing new.
    let again = touchpoint(
        &db,
        &[
            "coupons",
            "issue",
            "Ten off",
            "--csv",
            list.to_str().unwrap(),
            "--key",
            "spring",
            "-o",
            "json",
        ],
    );
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(w["coupons"], v["coupons"]);
    let code = v["coupons"][0]["code"].as_str().unwrap();
    let out = touchpoint(
        &db,
        &[
            "coupons", "redeem", code, "M-1", "--order", "X1", "--amount", "40.00",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("minimum spend"), "{}", text(&out));
    let out = touchpoint(
        &db,
        &[
            "coupons", "redeem", code, "M-1", "--order", "X1", "--amount", "60.00", "-o", "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(&db, &["members", "show", "M-1", "-o", "json"]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["coupons"][0]["state"], "redeemed", "{}", text(&out));
    let out = touchpoint(&db, &["coupons", "usage", "-o", "json"]);
    let u: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (u[0]["issued"].as_i64(), u[0]["redeemed"].as_i64()),
        (Some(2), Some(1))
    );
}

#[test]
fn import_spend_reports_bad_rows_with_file_and_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let file = dir.path().join("spend.csv");
    std::fs::write(
        &file,
        "date,channel,campaign,pricing_model,spend,impressions,clicks,conversions\n\
         2025-11-01,douyin,live,CPM,1200.50,300000,4200,35\n\
         2025-11-02,douyin,live,CPM,12.345,1,1,1\n",
    )
    .unwrap();
    let out = touchpoint(&db, &["import", "spend", &file.display().to_string()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("1 inserted") && t.contains("1 rejected"), "{t}");
    assert!(
        t.contains(&format!(
            "{}: line 3, column \"spend\", value \"12.345\"",
            file.display()
        )),
        "{t}"
    );
    let out = touchpoint(&db, &["report", "acquisition", "-o", "csv"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("campaign,douyin,live,2025-11,120050,"), "{t}");
}

/// The demo sets the points program, earns on its orders, claims packaging
/// codes (one for a new person, on the channel `scan`) and prints the
/// liability, which is the figure of `report loyalty -o json`.
#[test]
fn demo_prints_the_points_liability_of_report_loyalty() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = touchpoint(&db, &["demo", "--members", "300"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(t.matches("  claimed ").count(), 4, "{t}");
    assert!(t.contains("for a new person"), "{t}");
    let line = t
        .lines()
        .find(|l| l.contains("points liability:"))
        .unwrap_or_else(|| panic!("no liability line: {t}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |w: &str| w.replace(',', "");
    let points: i64 = number(words[2]).parse().unwrap();
    let value = number(words[6]);
    let out = touchpoint(&db, &["report", "loyalty", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(points > 0, "{line}");
    assert_eq!(r["outstanding_points"].as_i64(), Some(points), "{line}");
    let minor = r["outstanding_value"].as_i64().unwrap();
    assert_eq!(
        value,
        format!("{}.{:02}", minor / 100, minor % 100),
        "{line}"
    );
    let joined = r["joined_by_scan"].as_array().unwrap();
    assert!(
        joined.iter().map(|j| j[1].as_i64().unwrap()).sum::<i64>() >= 1,
        "the new person joined by scanning: {r}"
    );

    // A batch with a pending period, and the tier job (run twice: the second
    // run changes nothing).
    let csv = dir.path().join("codes.csv");
    let out = touchpoint(
        &db,
        &[
            "loyalty",
            "codes",
            "generate",
            "--batch",
            "later",
            "--count",
            "5",
            "--points",
            "10",
            "--pending-days",
            "3",
            "--out",
            &csv.display().to_string(),
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["pending_days"], 3, "{g}");
    let tiers = || {
        let out = touchpoint(
            &db,
            &["loyalty", "tiers", "--as-of", "2029-01-02", "-o", "json"],
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = tiers();
    assert!(first["reviews"].as_u64().unwrap() > 0, "{first}");
    let again = tiers();
    assert_eq!(again["reviews"], 0, "{again}");
    assert_eq!(
        again["changes"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
}

#[test]
fn segments_tags_consent_and_profiles_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let orders = dir.path().join("pos.csv");
    std::fs::write(
        &orders,
        "order_id,ordered_at,sku,quantity,unit_price,phone\n\
         P1,2025-03-01 10:00:00,S1,1,10.00,13800000001\n\
         P2,2025-03-02 10:00:00,S1,2,10.00,13800000002\n\
         P3,2025-06-02 10:00:00,S1,3,10.00,13800000002\n",
    )
    .unwrap();
    let f = orders.display().to_string();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &f,
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A bad expression: position, the expression with a caret, the name meant; exit 1.
    let out = touchpoint(
        &db,
        &["segments", "preview", "orders >= 2 and last_ordr_days > 3"],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("1:17") && t.contains("did you mean last_order_days?"),
        "{t}"
    );
    assert!(t.contains("\n                  ^"), "{t}");

    let out = touchpoint(
        &db,
        &[
            "segments",
            "preview",
            "orders >= 2",
            "--as-of",
            "2025-07-01",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (p["size"].as_u64(), p["considered"].as_u64()),
        (Some(1), Some(2)),
        "{p}"
    );
    assert_eq!(p["sample"][0]["member_id"], "M-2");

    // Tags, consent and attributes.
    let out = touchpoint(
        &db,
        &["members", "tag", "M-1", "VIP", "early", "-o", "json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["changed"]["tags_added"],
        serde_json::json!(["vip", "early"])
    );
    let out = touchpoint(&db, &["members", "untag", "M-1", "early"]);
    assert!(text(&out).contains("untagged early"), "{}", text(&out));
    let out = touchpoint(&db, &["members", "tag", "M-1", "bad/tag"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("expected 1 to 64 letters"),
        "{}",
        text(&out)
    );
    let out = touchpoint(
        &db,
        &[
            "members",
            "consent",
            "M-2",
            "--channel",
            "email",
            "--topic",
            "newsletter",
            "--grant",
            "--source",
            "paper form",
        ],
    );
    assert!(
        text(&out).contains("consent granted for email newsletter"),
        "{}",
        text(&out)
    );
    let out = touchpoint(&db, &["members", "consent", "M-2", "--channel", "email"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap: --grant or --withdraw is required"
    );
    let out = touchpoint(
        &db,
        &[
            "members",
            "profile",
            "M-2",
            "--set",
            "city=杭州",
            "--set",
            "birthday=1990-05-17",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(
        &db,
        &["members", "profile", "M-2", "--set", "birthday=17.05.1990"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("YYYY-MM-DD"), "{}", text(&out));
    let out = touchpoint(&db, &["members", "profile", "M-2", "-o", "json"]);
    let prof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(prof["attributes"]["city"], "杭州");
    assert_eq!(prof["consent"][0]["granted"], true);

    // A tag CSV: bad rows with file, line, column, value and form; good rows applied; exit 2.
    let tags = dir.path().join("tags.csv");
    std::fs::write(
        &tags,
        "member,tag,action\nM-2,vip,\nM-2,bad/tag,add\n99,vip,add\n",
    )
    .unwrap();
    let out = touchpoint(&db, &["import", "tags", &tags.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("1 added") && t.contains("2 rejected"), "{t}");
    assert!(
        t.contains("tags.csv: line 3, column \"tag\", value \"bad/tag\""),
        "{t}"
    );
    assert!(
        t.contains("line 4, column \"member\", value \"M-99\""),
        "{t}"
    );

    // Saved segments: create, refuse another definition, list, refresh, export.
    let out = touchpoint(
        &db,
        &[
            "segments",
            "create",
            "vips",
            "has_tag(\"vip\")",
            "--description",
            "tagged by hand",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(&db, &["segments", "create", "vips", "orders >= 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--replace"), "{}", text(&out));
    let out = touchpoint(
        &db,
        &[
            "segments",
            "refresh",
            "vips",
            "--as-of",
            "2025-07-01",
            "-o",
            "json",
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["members"], 2, "{r}");
    let out = touchpoint(&db, &["segments", "list", "-o", "json"]);
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l[0]["description"], "tagged by hand");
    assert_eq!(l[0]["sizes"], serde_json::json!([["2025-07-01", 2]]));
    let out = touchpoint(&db, &["segments", "show", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let csv = dir.path().join("vips.csv");
    let out = touchpoint(
        &db,
        &[
            "segments",
            "export",
            "vips",
            "--as-of",
            "2025-07-01",
            "--out",
            &csv.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let body = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert!(
        lines[0].starts_with("member_id,") && lines[2].starts_with("M-2,"),
        "{body}"
    );
    assert!(lines[2].contains("杭州"), "{body}");
}

#[test]
fn campaigns_are_created_previewed_run_twice_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let orders = dir.path().join("o.csv");
    std::fs::write(
        &orders,
        "order_id,ordered_at,sku,quantity,unit_price,phone,email\n\
         P1,2025-03-01 10:00:00,S1,1,10.00,13800000001,a@example.com\n\
         P2,2025-03-02 10:00:00,S1,2,10.00,13800000002,b@example.com\n",
    )
    .unwrap();
    let f = orders.display().to_string();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &f,
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(
        &db,
        &[
            "members",
            "consent",
            "M-1",
            "--channel",
            "email",
            "--topic",
            "promotions",
            "--grant",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let file = "name = \"winback\"\nchannel = \"email\"\ncontrol_percent = 0\n\n\
                [audience]\nexpression = 'last_order_days >= 90'\n\n\
                [trigger]\nkind = \"segment_entry\"\n\n\
                [message]\nsubject = \"We miss you, {{name}}\"\nbody = \"\"\"\n\
                Hello {{member_id}},\nyou have {{ponits}} points.\n\"\"\"\n";
    let path = dir.path().join("winback.toml");
    // An unknown field is refused at load, with its line.
    std::fs::write(&path, file).unwrap();
    let p = path.display().to_string();
    let out = touchpoint(&db, &["campaigns", "create", &p]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("line 15") && t.contains("{{ponits}}") && t.contains("did you mean {{points}}"),
        "{t}"
    );
    std::fs::write(&path, file.replace("ponits", "points")).unwrap();
    let out = touchpoint(&db, &["campaigns", "create", &p]);
    assert!(
        text(&out).contains("campaign winback version 1"),
        "{}",
        text(&out)
    );
    let out = touchpoint(&db, &["campaigns", "list"]);
    assert!(text(&out).contains("segment_entry"), "{}", text(&out));
    let out = touchpoint(&db, &["campaigns", "preview", "winback", "--member", "M-1"]);
    let t = text(&out);
    assert!(
        t.contains("to: a@example.com") && t.contains("Hello M-1,"),
        "{t}"
    );
    // Decided once (no SMTP given: queued, waiting), then nothing more.
    let run = |now: &str| {
        let out = touchpoint(&db, &["campaigns", "run", "--now", now, "-o", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let r = run("2025-12-01 10:00");
    assert_eq!(r["campaigns"][0]["queued"], 1, "{r}");
    assert_eq!(r["campaigns"][0]["skipped"]["no_consent"], 1, "{r}");
    assert_eq!(r["delivery"]["waiting"], 1, "{r}");
    let r = run("2025-12-01 11:00");
    assert_eq!(r["campaigns"][0]["queued"], 0, "{r}");
    let out = touchpoint(&db, &["campaigns", "report", "winback", "-o", "json"]);
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            rep["queued"].as_u64(),
            rep["skipped"]["no_consent"].as_u64()
        ),
        (Some(1), Some(1)),
        "{rep}"
    );
    let out = touchpoint(&db, &["campaigns", "report", "winback"]);
    assert!(
        text(&out).contains("lift: needs sent and control members"),
        "{}",
        text(&out)
    );
}

#[test]
fn campaigns_run_dry_run_lists_who_would_get_what_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let orders = dir.path().join("o.csv");
    // M-1 last bought 2025-08-01 (122 days before 2025-12-01), M-2 on
    // 2025-11-01 (30 days).
    std::fs::write(
        &orders,
        "order_id,ordered_at,sku,quantity,unit_price,phone,email\n\
         P1,2025-08-01 10:00:00,S1,1,10.00,13800000001,a@example.com\n\
         P2,2025-11-01 10:00:00,S1,2,10.00,13800000002,b@example.com\n",
    )
    .unwrap();
    let f = orders.display().to_string();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &f,
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for m in ["M-1", "M-2"] {
        let out = touchpoint(
            &db,
            &["members", "consent", m, "--channel", "email", "--grant"],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let path = dir.path().join("winback.toml");
    std::fs::write(
        &path,
        "name = \"winback\"\nchannel = \"email\"\ncontrol_percent = 0\n\n\
         [audience]\nexpression = 'orders >= 1'\n\n\
         [trigger]\nkind = \"win_back\"\n\n\
         [message]\nsubject = \"We miss you\"\nbody = \"{{days_since_order}} days\"\n",
    )
    .unwrap();
    let out = touchpoint(&db, &["campaigns", "create", &path.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let dry = || {
        let out = touchpoint(
            &db,
            &[
                "campaigns",
                "run",
                "--as-of",
                "2025-12-01",
                "--dry-run",
                "-o",
                "json",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let r = dry();
    let d = &r["campaigns"][0]["decisions"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(d[0]["member_id"], "M-1");
    assert_eq!(d[0]["occurrence"], "win_back:2025-08-01");
    assert_eq!(d[0]["decision"], "queued");
    assert_eq!(d[0]["why"], "last purchase 2025-08-01, 122 days ago");
    // The database file and its write-ahead log are byte for byte the same.
    let wal = dir.path().join("t.db-wal");
    let files = || (std::fs::read(&db).unwrap(), std::fs::read(&wal).ok());
    let before = files();
    assert_eq!(dry(), r, "a dry run twice gives the same");
    assert_eq!(files(), before, "the dry run wrote");
    let out = touchpoint(
        &db,
        &["campaigns", "run", "--as-of", "2025-12-01", "--dry-run"],
    );
    let t = text(&out);
    assert!(
        t.contains("nothing is written or sent") && t.contains("M-1") && t.contains("122 days ago"),
        "{t}"
    );
    // The real run decides what the dry run listed.
    let out = touchpoint(
        &db,
        &[
            "campaigns",
            "run",
            "--as-of",
            "2025-12-01",
            "--no-deliver",
            "-o",
            "json",
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["campaigns"][0]["queued"], 1, "{r}");
}

/// A webhook receiver on a thread: answers each request 200 after `delay`,
/// and records each request's `webhook-id` when it has read the request.
fn slow_receiver(
    delay: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let g = g.clone();
            std::thread::spawn(move || loop {
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let (mut id, mut len) = (None, 0usize);
                let mut first = true;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end();
                    if l.is_empty() && !first {
                        break;
                    }
                    first = false;
                    let lower = l.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("webhook-id:") {
                        id = Some(v.trim().to_string());
                    }
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                g.lock().unwrap().push(id.unwrap_or_default());
                std::thread::sleep(delay);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .is_err()
                {
                    return;
                }
            });
        }
    });
    (url, got)
}

#[test]
fn a_sender_killed_mid_delivery_and_restarted_delivers_each_message_once_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let n = 12;
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone\n");
    for i in 1..=n {
        csv.push_str(&format!(
            "P{i},2025-03-01 10:00:00,S1,1,10.00,138000000{i:02}\n"
        ));
    }
    let orders = dir.path().join("o.csv");
    std::fs::write(&orders, csv).unwrap();
    let f = orders.display().to_string();
    let out = touchpoint(
        &db,
        &[
            "import",
            "orders",
            &f,
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for i in 1..=n {
        let m = format!("M-{i}");
        let out = touchpoint(
            &db,
            &[
                "members",
                "consent",
                &m,
                "--channel",
                "webhook",
                "--topic",
                "promotions",
                "--grant",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let (url, got) = slow_receiver(std::time::Duration::from_millis(300));
    let file = format!(
        "name = \"slow\"\nchannel = \"webhook\"\ncontrol_percent = 0\n\n\
         [webhook]\nurl = \"{url}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\n\
         [audience]\nexpression = 'last_order_days >= 90'\n\n\
         [trigger]\nkind = \"segment_entry\"\n\n\
         [message]\nsubject = \"Hi\"\nbody = \"{{{{member_id}}}}\"\n"
    );
    let path = dir.path().join("slow.toml");
    std::fs::write(&path, file).unwrap();
    let out = touchpoint(&db, &["campaigns", "create", &path.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    // The sender, one message at a time, killed after the receiver has 3.
    let mut child = Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args([
            "campaigns",
            "run",
            "--now",
            "2025-12-01 10:00",
            "--delivery-concurrency",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while got.lock().unwrap().len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = got.lock().unwrap().len();
    assert!(before < n, "killed mid-way: {before}");
    // Restarted within the claim's lease: the message in flight waits.
    let run = |now: &str| {
        let out = touchpoint(&db, &["campaigns", "run", "--now", now, "-o", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    run("2025-12-01 10:05");
    // After the lease (10 min), the claimed one is delivered again, with its id.
    run("2025-12-01 10:20");
    let ids = got.lock().unwrap().clone();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), n, "every message arrived: {ids:?}");
    assert!(
        ids.len() <= n + 1,
        "at most the one in flight at the kill is repeated, with the same webhook-id: {ids:?}"
    );
    assert!(distinct.iter().all(|i| i.starts_with("send_")), "{ids:?}");
    let out = touchpoint(&db, &["campaigns", "report", "slow", "-o", "json"]);
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (rep["sent"].as_u64(), rep["queued"].as_u64()),
        (Some(n as u64), Some(0)),
        "{rep}"
    );
    let out = touchpoint(&db, &["campaigns", "dead-letters", "-o", "json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "{}",
        text(&out)
    );
    let out = touchpoint(&db, &["campaigns", "retry", "--all"]);
    assert!(
        text(&out).contains("queued 0 dead letters"),
        "{}",
        text(&out)
    );
}

#[test]
fn referrals_from_the_command_line_code_attribute_grant_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let import = |name: &str, csv: String| {
        let f = dir.path().join(name);
        std::fs::write(&f, csv).unwrap();
        let out = touchpoint(
            &db,
            &[
                "import",
                "orders",
                &f.display().to_string(),
                "--format",
                "canonical",
                "--channel",
                "pos",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    import(
        "a.csv",
        "order_id,ordered_at,sku,quantity,unit_price,phone\n\
         A1,2025-03-01 10:00:00,S1,1,10.00,13800000001\n"
            .into(),
    );
    let settings = dir.path().join("referrals.toml");
    std::fs::write(&settings, "advocate_points = 500\nfriend_points = 200\n").unwrap();
    let out = touchpoint(
        &db,
        &[
            "referrals",
            "program",
            "set",
            &settings.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = touchpoint(&db, &["referrals", "code", "M-1"]);
    assert!(out.status.success(), "{}", text(&out));
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(code.len(), 9, "8 characters and a check character: {code}");
    // A friend first seen after the code, with a first order tomorrow.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    import(
        "f.csv",
        format!(
            "order_id,ordered_at,sku,quantity,unit_price,phone\n\
             F1,{tomorrow} 10:00:00,S1,2,10.00,13800000002\n"
        ),
    );
    let out = touchpoint(
        &db,
        &["referrals", "attribute", "--member", "M-2", "--code", &code],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("referred by M-1"), "{}", text(&out));
    // The advocate cannot refer themself: refused, said, exit 1.
    let out = touchpoint(
        &db,
        &["referrals", "attribute", "--member", "M-1", "--code", &code],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("self_referral"), "{}", text(&out));
    // A mistyped code is told apart.
    let out = touchpoint(
        &db,
        &["referrals", "attribute", "--member", "M-2", "--code", "ABC"],
    );
    assert!(!out.status.success());
    let later = (tomorrow + chrono::Days::new(30)).to_string();
    let grant = || {
        let out = touchpoint(
            &db,
            &["referrals", "grant", "--as-of", &later, "-o", "json"],
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let g = grant();
    assert_eq!(
        (g["qualified"].as_u64(), g["points"].as_i64()),
        (Some(1), Some(700)),
        "{g}"
    );
    assert_eq!(grant()["qualified"], 0, "a second run grants nothing");
    let out = touchpoint(&db, &["referrals", "report", "-o", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The name: one code path, the same JSON.
    let out = touchpoint(&db, &["report", "referrals", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let same: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(same, r);
    let out = touchpoint(&db, &["report", "referrals"]);
    assert!(
        text(&out).contains("friends qualified     1"),
        "{}",
        text(&out)
    );
    assert_eq!(
        (
            r["attributed"].as_i64(),
            r["qualified"].as_i64(),
            r["points_granted"].as_i64()
        ),
        (Some(1), Some(1), Some(700)),
        "{r}"
    );
    assert_eq!(r["refused_self_referral"], 1, "{r}");
    // 2 x 10.00 for the friend, 10.00 for the advocate.
    assert_eq!(
        (r["referred_revenue"].as_i64(), r["other_revenue"].as_i64()),
        (Some(2000), Some(1000)),
        "{r}"
    );
    let out = touchpoint(&db, &["loyalty", "balance", "M-2", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["available"], 200, "{b}");
}

#[test]
fn a_bad_as_of_is_refused_once_with_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = touchpoint(
        &db,
        &["campaigns", "run", "--as-of", "2026-13-01", "--dry-run"],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert_eq!(t.matches("error").count(), 1, "{t}");
    assert!(
        t.contains("--as-of \"2026-13-01\"") && t.contains("YYYY-MM-DD") && !t.contains("--now"),
        "{t}"
    );
}

/// `touchpoint serve` runs the referral grant (once at start, then daily):
/// a friend whose first order is past the return window qualifies without
/// `referrals grant`. The wait is a safety limit, not a timed assertion.
#[test]
fn serve_runs_the_referral_grant() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let f = dir.path().join("o.csv");
    std::fs::write(
        &f,
        "order_id,ordered_at,sku,quantity,unit_price,member_no\n\
         A1,2025-03-01 10:00:00,S1,1,10.00,ADV\n",
    )
    .unwrap();
    let import = |f: &Path| {
        let out = touchpoint(
            &db,
            &[
                "import",
                "orders",
                &f.display().to_string(),
                "--format",
                "canonical",
                "--channel",
                "pos",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    import(&f);
    let settings = dir.path().join("r.toml");
    std::fs::write(
        &settings,
        "advocate_points = 500\nfriend_points = 200\nreturn_window_days = 7\n",
    )
    .unwrap();
    let out = touchpoint(
        &db,
        &[
            "referrals",
            "program",
            "set",
            &settings.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let code = String::from_utf8_lossy(&touchpoint(&db, &["referrals", "code", "M-1"]).stdout)
        .trim()
        .to_string();
    // A new person whose first order, 30 days ago, carries the code.
    let day = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d");
    let g = dir.path().join("f.csv");
    std::fs::write(
        &g,
        format!(
            "order_id,ordered_at,sku,quantity,unit_price,member_no,referral_code\n\
             F1,{day} 10:00:00,S1,1,10.00,FRIEND,{code}\n"
        ),
    )
    .unwrap();
    import(&g);
    let out = touchpoint(&db, &["referrals", "show", "M-2", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["referred_by"]["state"], "attributed", "{v}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--campaigns-interval",
            "0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start serve");
    let mut state = String::new();
    for _ in 0..120 {
        let out = touchpoint(&db, &["referrals", "show", "M-2", "-o", "json"]);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            state = v["referred_by"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if state == "qualified" {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(state, "qualified");
    let out = touchpoint(&db, &["loyalty", "balance", "M-1", "-o", "json"]);
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["available"], 500, "{b}");
}
