//! SMS and WeChat campaigns through the brand's gateways, and the scheduler
//! of `touchpoint serve`, with the real binary on SQLite and (when
//! `TOUCHPOINT_TEST_POSTGRES_URL` is set) on a fresh PostgreSQL database,
//! against a real HTTP receiver on loopback that checks every request's
//! Standard Webhooks signature with its own HMAC.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::text;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A database for one test: a SQLite file, or a fresh PostgreSQL database
/// dropped at the end.
pub struct TestDb {
    pub url: String,
    pub name: &'static str,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn pg_exec(url: &str, sql: &str) {
    let admin = touchpoint_store::Store::connect_without_migrating(url)
        .await
        .expect("connect to PostgreSQL");
    let mut h = admin.acquire().await.unwrap();
    h.conn().exec(sql, &[]).await.expect(sql);
    drop(h);
    admin.close().await;
}

/// SQLite always; PostgreSQL too when `TOUCHPOINT_TEST_POSTGRES_URL` is set.
pub fn databases() -> Vec<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![TestDb {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        name: "sqlite",
        pg: None,
        _dir: Some(dir),
    }];
    if let Some(base) = std::env::var("TOUCHPOINT_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        let name = format!("tp_cli_{:016x}", rand::random::<u64>());
        block_on(pg_exec(&base, &format!("CREATE DATABASE {name}")));
        let (head, _) = base.rsplit_once('/').expect("a database URL with a path");
        out.push(TestDb {
            url: format!("{head}/{name}"),
            name: "postgres",
            pg: Some((base, name)),
            _dir: None,
        });
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            block_on(pg_exec(
                &base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        }
    }
}

/// The binary on a database URL.
pub fn tp(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .arg("--database")
        .arg(&db.url)
        .args(args)
        .output()
        .expect("run touchpoint")
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = tp(db, args);
    assert!(
        out.status.success(),
        "{}: {args:?}: {}",
        db.name,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let out = ok(db, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// One request the gateway received.
#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Whether the signature verified against [`SECRET`].
    pub signed: bool,
    /// The status answered.
    pub status: u16,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A gateway on loopback (threads, HTTP/1.1 with keep-alive): answers 401
/// to a request whose signature does not verify, 500 to the first `fail`
/// signed requests, 200 after; keeps every request.
pub struct Gateway {
    pub url: String,
    pub got: Arc<Mutex<Vec<Req>>>,
}

impl Gateway {
    pub fn start(fail: u32) -> Gateway {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Req>>> = Arc::default();
        let fail = Arc::new(Mutex::new(fail));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (g, fail) = (g.clone(), fail.clone());
                std::thread::spawn(move || serve_http(stream, &g, &fail));
            }
        });
        Gateway { url, got }
    }

    pub fn requests(&self) -> Vec<Req> {
        self.got.lock().unwrap().clone()
    }

    /// The accepted (200) requests.
    pub fn accepted(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }
}

fn signature_ok(headers: &[(String, String)], body: &str) -> bool {
    let h = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(id), Some(ts), Some(sig)) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    ) else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{ts}.{body}").as_bytes());
    let want = format!("v1,{}", b64.encode(m.finalize().into_bytes()));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    fresh && sig.split(' ').any(|s| s == want)
}

fn serve_http(stream: std::net::TcpStream, got: &Mutex<Vec<Req>>, fail: &Mutex<u32>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut first = String::new();
        if r.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let path = first.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0usize);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8(body).unwrap();
        let signed = signature_ok(&headers, &body);
        let status = if !signed {
            401
        } else {
            let mut f = fail.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                500
            } else {
                200
            }
        };
        got.lock().unwrap().push(Req {
            path,
            headers,
            body,
            signed,
            status,
        });
        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            _ => "Internal Server Error",
        };
        if w.write_all(
            format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
        )
        .is_err()
        {
            return;
        }
    }
}

/// Four people, imported from the WeChat mini-program's export (channel
/// `wechat`, whose platform buyer ids are the openids):
/// M-1 phone, unionid and openid; M-2 phone only; M-3 unionid only;
/// M-4 phone and unionid but no consent. M-1 to M-3 consent to SMS and
/// WeChat promotions.
fn four_people(db: &TestDb, dir: &std::path::Path) {
    let csv =
        "order_id,ordered_at,sku,quantity,unit_price,name,phone,wechat_unionid,platform_user_id\n\
               W1,2025-03-01 10:00:00,S1,1,10.00,Li,13800000001,uLI,oLI\n\
               W2,2025-03-01 10:00:00,S1,1,10.00,Wang,13800000002,,\n\
               W3,2025-03-01 10:00:00,S1,1,10.00,Zhang,,uZHANG,\n\
               W4,2025-03-01 10:00:00,S1,1,10.00,Zhao,13800000004,uZHAO,\n";
    let path = dir.join("wechat.csv");
    std::fs::write(&path, csv).unwrap();
    ok(
        db,
        &[
            "import",
            "orders",
            &path.display().to_string(),
            "--format",
            "canonical",
            "--channel",
            "wechat",
        ],
    );
    for m in ["M-1", "M-2", "M-3"] {
        for ch in ["sms", "wechat"] {
            ok(
                db,
                &[
                    "members",
                    "consent",
                    m,
                    "--channel",
                    ch,
                    "--topic",
                    "promotions",
                    "--grant",
                ],
            );
        }
    }
}

fn create(db: &TestDb, dir: &std::path::Path, name: &str, file: &str) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, file).unwrap();
    ok(db, &["campaigns", "create", &path.display().to_string()]);
}

fn sms_campaign(name: &str, url: &str) -> String {
    format!(
        r#"name = "{name}"
channel = "sms"
control_percent = 0

[sms]
url = "{url}/sms"
secret = "{SECRET}"
template = "SMS_0001"

[audience]
expression = 'last_order_days >= 30'

[trigger]
kind = "segment_entry"

[message]
body = "{{{{name}}}}, {{{{member_id}}}} has {{{{points}}}} points"
"#
    )
}

fn wechat_campaign(name: &str, url: &str) -> String {
    format!(
        r#"name = "{name}"
channel = "wechat"
control_percent = 0

[wechat]
url = "{url}/wechat"
secret = "{SECRET}"
template_id = "TM-BDAY-1"
app_id = "wxapp1"
openid_channel = "wechat"
link = "https://brand.test/gift"
miniprogram = {{ appid = "wxapp1", pagepath = "pages/gift/index" }}

[wechat.data]
first = "Hello {{{{name}}}}"
keyword1 = "{{{{member_id}}}}"

[audience]
expression = 'last_order_days >= 30'

[trigger]
kind = "segment_entry"
"#
    )
}

fn run_at(db: &TestDb, now: &str) -> serde_json::Value {
    json(db, &["campaigns", "run", "--now", now, "-o", "json"])
}

fn by_campaign<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign"] == name)
        .unwrap_or_else(|| panic!("{name} in {run}"))
}

#[test]
fn sms_goes_to_the_phone_signed_with_consent_and_is_retried_after_a_500() {
    for db in databases() {
        let dir = tempfile::tempdir().unwrap();
        four_people(&db, dir.path());
        let gw = Gateway::start(1);
        create(&db, dir.path(), "sms", &sms_campaign("sms-points", &gw.url));
        let run = run_at(&db, "2025-12-01 10:00");
        let c = by_campaign(&run, "sms-points");
        assert_eq!(c["queued"], 2, "{}: M-1 and M-2: {c}", db.name);
        assert_eq!(c["skipped"]["no_address"], 1, "M-3 has no phone: {c}");
        assert_eq!(c["skipped"]["no_consent"], 1, "M-4: {c}");
        assert_eq!(run["delivery"]["sent"], 2, "{run}");
        let all = gw.requests();
        assert!(all.iter().all(|r| r.signed), "{all:?}");
        assert_eq!(all.len(), 3, "one 500, then tried again: {all:?}");
        assert_eq!(all[0].status, 500);
        let retried = all[0].header("webhook-id").unwrap();
        assert_eq!(
            all.iter()
                .filter(|r| r.header("webhook-id") == Some(retried))
                .count(),
            2,
            "the retry carries the same webhook-id: {all:?}"
        );
        let mut got: Vec<serde_json::Value> = gw.accepted().iter().map(Req::json).collect();
        got.sort_by_key(|v| v["member_id"].as_str().unwrap().to_string());
        assert!(gw.accepted().iter().all(|r| r.path == "/sms"));
        assert_eq!(got[0]["to"], "+8613800000001", "{}", got[0]);
        assert_eq!(got[0]["text"], "Li, M-1 has 0 points");
        assert_eq!(got[0]["template"], "SMS_0001");
        assert_eq!(got[0]["member_id"], "M-1");
        assert_eq!(got[0]["campaign"], "sms-points");
        assert_eq!(got[1]["to"], "+8613800000002");
        for r in gw.accepted() {
            assert_eq!(
                r.json()["message_id"].as_str(),
                r.header("webhook-id"),
                "message_id is the webhook-id"
            );
        }
        // Sent once: a later run sends nothing more.
        let run = run_at(&db, "2025-12-01 11:00");
        assert_eq!(run["delivery"]["sent"], 0, "{run}");
        assert_eq!(gw.accepted().len(), 2);
        let rep = json(&db, &["campaigns", "report", "sms-points", "-o", "json"]);
        assert_eq!(
            (rep["sent"].as_u64(), rep["queued"].as_u64()),
            (Some(2), Some(0)),
            "{rep}"
        );
        // Consent withdrawn: a new campaign skips the member.
        ok(
            &db,
            &[
                "members",
                "consent",
                "M-2",
                "--channel",
                "sms",
                "--topic",
                "promotions",
                "--withdraw",
            ],
        );
        create(&db, dir.path(), "sms2", &sms_campaign("sms-again", &gw.url));
        let run = run_at(&db, "2025-12-02 10:00");
        let c = by_campaign(&run, "sms-again");
        assert_eq!(
            (c["queued"].as_u64(), c["skipped"]["no_consent"].as_u64()),
            (Some(1), Some(2)),
            "{c}"
        );
        let last = gw.accepted().last().unwrap().json();
        assert_eq!(
            (last["campaign"].as_str(), last["to"].as_str()),
            (Some("sms-again"), Some("+8613800000001"))
        );
    }
}

#[test]
fn wechat_template_messages_go_to_the_openid_else_the_unionid() {
    for db in databases() {
        let dir = tempfile::tempdir().unwrap();
        four_people(&db, dir.path());
        let gw = Gateway::start(1);
        create(&db, dir.path(), "wx", &wechat_campaign("wx-hello", &gw.url));
        // The dry run (bulk reads) decides as the run will.
        let dry = json(
            &db,
            &[
                "campaigns",
                "run",
                "--now",
                "2025-12-01 10:00",
                "--dry-run",
                "-o",
                "json",
            ],
        );
        let mut decided: Vec<(String, String, String)> = dry["campaigns"][0]["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["member_id"].as_str().unwrap().to_string(),
                    d["decision"].as_str().unwrap().to_string(),
                    d["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        decided.sort();
        let want = [
            ("M-1", "queued", ""),
            ("M-2", "skipped", "no_address"),
            ("M-3", "queued", ""),
            ("M-4", "skipped", "no_consent"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(decided, want, "{}: {dry}", db.name);
        assert!(gw.requests().is_empty(), "the dry run sent nothing");
        let run = run_at(&db, "2025-12-01 10:00");
        let c = by_campaign(&run, "wx-hello");
        assert_eq!(c["queued"], 2, "{}: M-1 and M-3: {c}", db.name);
        assert_eq!(
            c["skipped"]["no_address"], 1,
            "M-2 has neither openid nor unionid: {c}"
        );
        assert_eq!(c["skipped"]["no_consent"], 1, "M-4: {c}");
        assert_eq!(run["delivery"]["sent"], 2, "{run}");
        let all = gw.requests();
        assert!(
            all.iter().all(|r| r.signed && r.path == "/wechat"),
            "{all:?}"
        );
        assert_eq!(
            all.iter().map(|r| r.status).collect::<Vec<_>>(),
            [500, 200, 200],
            "the 500 is tried again"
        );
        let mut got: Vec<serde_json::Value> = gw.accepted().iter().map(Req::json).collect();
        got.sort_by_key(|v| v["member_id"].as_str().unwrap().to_string());
        let li = &got[0];
        assert_eq!(li["member_id"], "M-1");
        assert_eq!(
            (li["touser"].as_str(), li["touser_type"].as_str()),
            (Some("oLI"), Some("openid")),
            "the openid of the app: {li}"
        );
        assert_eq!(li["template_id"], "TM-BDAY-1");
        assert_eq!(li["appid"], "wxapp1");
        assert_eq!(li["url"], "https://brand.test/gift");
        assert_eq!(li["miniprogram"]["pagepath"], "pages/gift/index");
        assert_eq!(li["data"]["first"]["value"], "Hello Li");
        assert_eq!(li["data"]["keyword1"]["value"], "M-1");
        let zhang = &got[1];
        assert_eq!(zhang["member_id"], "M-3");
        assert_eq!(
            (zhang["touser"].as_str(), zhang["touser_type"].as_str()),
            (Some("uZHANG"), Some("unionid")),
            "no openid: the unionid: {zhang}"
        );
        assert_eq!(zhang["data"]["first"]["value"], "Hello Zhang");
        let out = json(&db, &["campaigns", "dead-letters", "-o", "json"]);
        assert_eq!(out, serde_json::json!([]));
    }
}

fn serve(db: &TestDb, interval: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_touchpoint"))
        .arg("--database")
        .arg(&db.url)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--campaigns-interval",
            interval,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start touchpoint serve")
}

/// Wait (at most two minutes: a failure, not a timing assertion) until the
/// gateway has accepted `n` distinct messages.
fn wait_for(gw: &Gateway, n: usize) {
    let start = Instant::now();
    loop {
        let ids: BTreeSet<String> = gw
            .accepted()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_string))
            .collect();
        if ids.len() >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} of {n} messages arrived: {:?}",
            ids.len(),
            gw.requests()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` people with phones and SMS consent.
fn phones(db: &TestDb, dir: &std::path::Path, n: usize) {
    let mut csv = String::from("order_id,ordered_at,sku,quantity,unit_price,phone\n");
    for i in 1..=n {
        csv.push_str(&format!(
            "S{i},2025-03-01 10:00:00,S1,1,10.00,139000000{i:02}\n"
        ));
    }
    let path = dir.join("o.csv");
    std::fs::write(&path, csv).unwrap();
    ok(
        db,
        &[
            "import",
            "orders",
            &path.display().to_string(),
            "--format",
            "canonical",
            "--channel",
            "pos",
        ],
    );
    for i in 1..=n {
        ok(
            db,
            &[
                "members",
                "consent",
                &format!("M-{i}"),
                "--channel",
                "sms",
                "--topic",
                "promotions",
                "--grant",
            ],
        );
    }
}

#[test]
fn serve_delivers_a_due_campaign_by_itself_on_its_interval() {
    for db in databases() {
        let dir = tempfile::tempdir().unwrap();
        phones(&db, dir.path(), 3);
        let gw = Gateway::start(0);
        create(&db, dir.path(), "sms", &sms_campaign("by-itself", &gw.url));
        // No `campaigns run`: only the server's scheduler.
        let mut server = serve(&db, "1");
        wait_for(&gw, 3);
        server.kill().unwrap();
        server.wait().unwrap();
        let got = gw.accepted();
        assert_eq!(got.len(), 3, "{}: {got:?}", db.name);
        let to: BTreeSet<String> = got
            .iter()
            .map(|r| r.json()["to"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(to.len(), 3, "one each: {to:?}");
        let rep = json(&db, &["campaigns", "report", "by-itself", "-o", "json"]);
        assert_eq!(rep["sent"], 3, "{rep}");
    }
}

#[test]
fn two_servers_and_a_cron_run_at_once_send_each_message_at_most_once() {
    for db in databases() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20;
        phones(&db, dir.path(), n);
        let gw = Gateway::start(0);
        create(&db, dir.path(), "sms", &sms_campaign("at-once", &gw.url));
        let mut a = serve(&db, "1");
        let mut b = serve(&db, "1");
        let cron = tp(&db, &["campaigns", "run", "-o", "json"]);
        assert!(cron.status.success(), "{}", text(&cron));
        wait_for(&gw, n);
        // Both servers tick again (and find nothing) before they stop.
        let run = run_at_now(&db);
        assert_eq!(run["delivery"]["sent"], 0, "{run}");
        std::thread::sleep(Duration::from_millis(2500));
        a.kill().unwrap();
        b.kill().unwrap();
        a.wait().unwrap();
        b.wait().unwrap();
        let got = gw.requests();
        let ids: BTreeSet<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
        assert_eq!(
            (got.len(), ids.len()),
            (n, n),
            "{}: each message once: {got:?}",
            db.name
        );
        let rep = json(&db, &["campaigns", "report", "at-once", "-o", "json"]);
        assert_eq!(
            (rep["sent"].as_u64(), rep["queued"].as_u64()),
            (Some(n as u64), Some(0)),
            "{rep}"
        );
    }
}

fn run_at_now(db: &TestDb) -> serde_json::Value {
    json(db, &["campaigns", "run", "-o", "json"])
}

#[test]
fn a_webhook_ca_file_that_is_not_pem_is_refused_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        name: "sqlite",
        pg: None,
        _dir: None,
    };
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = tp(
        &db,
        &[
            "campaigns",
            "run",
            "--webhook-ca-file",
            &bad.display().to_string(),
        ],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("--webhook-ca-file") && t.contains("no PEM certificate"),
        "{t}"
    );
}
