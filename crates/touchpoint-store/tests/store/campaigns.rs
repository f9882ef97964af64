//! Campaigns on both backends with real delivery: a real SMTP server
//! (aiosmtpd, read back from its maildir) and a webhook receiver (axum) that
//! verifies the Standard Webhooks signature.
//!
//! The SMTP test needs `python3 -m pip install aiosmtpd`; without it the test
//! prints why and returns, unless `TOUCHPOINT_TEST_SMTP=1` (set by .ci/run),
//! where it fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use touchpoint_core::campaigns::is_control;
use touchpoint_core::ingest::InputFormat;
use touchpoint_core::{Identifier, MemberId, Phone};
use touchpoint_store::campaigns::RunContext;
use touchpoint_store::delivery::{DeliveryReport, DeliverySettings, RetrySelection, SmtpServer};
use touchpoint_store::profiles::{ConsentChoice, ProfileChange, ProfileSource};
use touchpoint_store::Store;

use crate::common::*;

/// 2025-12-01 10:00 in Asia/Shanghai.
const NOW: i64 = 1_764_554_400_000;
const DAY: i64 = 86_400_000;

fn cx(now: i64) -> RunContext {
    RunContext {
        now,
        time_zone: chrono_tz::Asia::Shanghai,
    }
}

/// `n` people P1..Pn, each with one order in June 2025; people with an odd
/// number have an e-mail address. Returns their member ids.
async fn people(store: &Store, n: usize) -> Vec<MemberId> {
    let mut csv =
        String::from("order_id,ordered_at,channel,status,sku,quantity,unit_price,phone,email\n");
    for i in 1..=n {
        let email = if i % 2 == 1 {
            format!("p{i}@example.com")
        } else {
            String::new()
        };
        csv.push_str(&format!(
            "O{i},2025-06-01 10:00:00,web,paid,SKU-A,1,100.00,1390000{i:04},{email}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", csv);
    let r = import(store, &path, InputFormat::Canonical, "web").await;
    assert_eq!(r.orders.inserted, n as u64, "{r:?}");
    let mut out = Vec::new();
    for i in 1..=n {
        let phone = Phone::parse(&format!("1390000{i:04}"), "86").unwrap();
        out.push(
            store
                .member_by_identifier(&Identifier::phone(&phone))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    out
}

async fn consent(store: &Store, m: MemberId, channel: &str) {
    let mut ch = ProfileChange::new(ProfileSource::Cli);
    ch.consent.push(ConsentChoice {
        channel: channel.into(),
        topic: Some("promotions".into()),
        granted: true,
    });
    store.update_profile(m, &ch).await.unwrap();
}

fn once(name: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
channel = "email"
{extra}
[audience]
expression = 'last_order_days >= 30'

[trigger]
kind = "once"
at = "2025-12-01 09:00"

[window]
start_hour = 9
end_hour = 21

[message]
subject = "Hello {{{{name}}}}"
body = "Dear {{{{member_id}}}}, you have {{{{points}}}} points."
"#
    )
}

/// A CA made here with the openssl CLI (`ca.pem`, `ca.key`) and a
/// certificate it signed for 127.0.0.1 and localhost (`leaf.pem`,
/// `leaf.key`), in `d`.
fn private_ca(d: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("the openssl CLI");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Touchpoint test CA",
            ][..],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec[..],
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ][..],
        ]
        .concat(),
    );
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

struct Smtp {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_importable() -> bool {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        if std::env::var("TOUCHPOINT_TEST_SMTP").as_deref() == Ok("1") {
            panic!("TOUCHPOINT_TEST_SMTP=1 but aiosmtpd is not importable (python3 -m pip install aiosmtpd)");
        }
        eprintln!("skipped: aiosmtpd is not importable (python3 -m pip install aiosmtpd)");
    }
    importable
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtp {
    /// aiosmtpd on a free loopback port, or `None` (with the reason printed)
    /// when it is not installed and the test is not required.
    // The child is killed and waited for in `Drop`, which the lint cannot see.
    #[allow(clippy::zombie_processes)]
    async fn start() -> Option<Smtp> {
        if !aiosmtpd_importable() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Some(Smtp::wait(child, dir, port).await)
    }

    /// aiosmtpd requiring STARTTLS and AUTH (`smtp_tls_server.py`), with a
    /// certificate for 127.0.0.1 signed by a CA made here with the openssl
    /// CLI; returns the server and the CA's PEM.
    #[allow(clippy::zombie_processes)]
    async fn start_tls(user: &str, password: &str) -> Option<(Smtp, Vec<u8>)> {
        if !aiosmtpd_importable() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        private_ca(d);
        let port = free_port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/store/smtp_tls_server.py"
        );
        let child = std::process::Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &port.to_string()])
            .arg(d.join("mail"))
            .arg(d.join("leaf.pem"))
            .arg(d.join("leaf.key"))
            .args([user, password])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ca = std::fs::read(d.join("ca.pem")).unwrap();
        Some((Smtp::wait(child, dir, port).await, ca))
    }

    async fn wait(child: std::process::Child, dir: tempfile::TempDir, port: u16) -> Smtp {
        let smtp = Smtp { child, dir, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return smtp;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Every message in the maildir: (headers, decoded body).
    fn messages(&self) -> Vec<(String, String)> {
        let new = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let text = text.replace("\r\n", "\n");
            let (head, body) = text.split_once("\n\n").unwrap();
            let b: String = body.split_whitespace().collect();
            let body = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map(|v| String::from_utf8(v).unwrap())
                .unwrap_or(body.to_string());
            out.push((head.to_string(), body));
        }
        out
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn email_is_sent_once_with_consent_and_a_working_unsubscribe_link() {
    for db in backends().await {
        let Some(smtp) = Smtp::start().await else {
            db.cleanup().await;
            return;
        };
        let s = &db.store;
        let p = people(s, 4).await;
        // P1: consent and an address; P2: consent, no address; P3: an
        // address, no consent; P4: nothing.
        consent(s, p[0], "email").await;
        consent(s, p[1], "email").await;
        s.campaign_create(&once("hello", "control_percent = 0"))
            .await
            .unwrap();
        let settings = DeliverySettings {
            smtp: Some(SmtpServer::parse(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap()),
            mail_from: Some("Brand <crm@brand.test>".into()),
            public_url: Some("http://crm.brand.test".into()),
            ..DeliverySettings::default()
        };
        // Before its time, nothing; then decided and delivered; then a run
        // twice sends nothing more.
        let r = s.campaigns_run(&cx(NOW - 3 * 3_600_000)).await.unwrap();
        assert!(r[0].idle.is_some(), "{r:?}");
        let r = s.campaigns_run(&cx(NOW)).await.unwrap();
        assert_eq!((r[0].candidates, r[0].queued), (4, 1), "{}: {r:?}", db.name);
        assert_eq!(r[0].skipped.get("no_consent"), Some(&2), "{r:?}");
        assert_eq!(r[0].skipped.get("no_address"), Some(&1), "{r:?}");
        let d = s.campaigns_deliver(&settings).await.unwrap();
        assert_eq!((d.sent, d.failed), (1, 0), "{d:?}");
        let r = s.campaigns_run(&cx(NOW + 60_000)).await.unwrap();
        assert!(r[0].idle.as_deref().unwrap().contains("done"), "{r:?}");
        assert_eq!(s.campaigns_deliver(&settings).await.unwrap().sent, 0);
        let mail = smtp.messages();
        assert_eq!(mail.len(), 1, "{}: {mail:?}", db.name);
        let (head, body) = &mail[0];
        assert_eq!(header(head, "To"), Some("p1@example.com"));
        assert!(body.contains(&format!("Dear {}", p[0])), "{body}");
        assert_eq!(
            header(head, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        let link = header(head, "List-Unsubscribe").expect("List-Unsubscribe");
        let token = link
            .trim_matches(|c| c == '<' || c == '>')
            .strip_prefix("http://crm.brand.test/unsubscribe/")
            .unwrap();
        assert!(s
            .may_send_marketing(p[0], "email", "promotions")
            .await
            .unwrap());
        assert!(s.unsubscribe(token, "one-click").await.unwrap().is_some());
        assert!(!s
            .may_send_marketing(p[0], "email", "promotions")
            .await
            .unwrap());
        // The report counts what was decided.
        let rep = s.campaign_report("hello", None).await.unwrap();
        assert_eq!((rep.sent, rep.control, rep.failed), (1, 0, 0));
        assert_eq!(rep.skipped.get("no_consent"), Some(&2));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn caps_hold_across_campaigns_and_control_members_are_recorded_not_sent() {
    for db in backends().await {
        let s = &db.store;
        let p = people(s, 60).await;
        for m in &p {
            consent(s, *m, "email").await;
        }
        // First campaign: every member with an address (30), 50% control.
        s.campaign_create(&once(
            "first",
            "control_percent = 50\n[cap]\nmessages = 1\ndays = 7",
        ))
        .await
        .unwrap();
        let r = s.campaigns_run(&cx(NOW)).await.unwrap();
        let with_address: Vec<i64> = p.iter().step_by(2).map(|m| m.get()).collect();
        let control: Vec<i64> = with_address
            .iter()
            .copied()
            .filter(|m| is_control("first", *m, 50))
            .collect();
        assert!(!control.is_empty() && control.len() < 30, "{control:?}");
        assert_eq!(r[0].control, control.len() as u64, "{}: {r:?}", db.name);
        assert_eq!(r[0].queued, 30 - control.len() as u64);
        // Second campaign, a day later, cap 1 per 7 days: those sent to are
        // capped (their message waits for a free slot); control members got
        // nothing, so they are not.
        s.campaign_create(&once(
            "second",
            "control_percent = 0\n[cap]\nmessages = 1\ndays = 7",
        ))
        .await
        .unwrap();
        let r = s.campaigns_run(&cx(NOW + DAY)).await.unwrap();
        let second = r.iter().find(|x| x.campaign == "second").unwrap();
        assert_eq!(second.waiting, 30 - control.len() as u64, "{second:?}");
        assert_eq!(second.skipped.get("capped"), None, "{second:?}");
        assert_eq!(second.queued, control.len() as u64);
        // Control members of the first campaign have no message of it.
        let queued_control = db
            .scalar(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE campaign = 'first' \
                 AND status IN ('queued', 'sent') AND member_id IN ({})",
                control
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .await;
        assert_eq!(queued_control, 0);
        // A purchase by one treated member after the send is a conversion.
        let treated = with_address
            .iter()
            .find(|m| !control.contains(m))
            .copied()
            .unwrap();
        let i = p.iter().position(|m| m.get() == treated).unwrap() + 1;
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "later.csv",
            format!("order_id,ordered_at,channel,status,sku,quantity,unit_price,phone\nL1,2025-12-05 10:00:00,web,paid,SKU-A,1,100.00,1390000{i:04}\n"),
        );
        import(s, &path, InputFormat::Canonical, "web").await;
        let rep = s.campaign_report("first", None).await.unwrap();
        assert_eq!(rep.control, control.len() as u64);
        assert_eq!(rep.conversion.treated, 0, "nothing was delivered yet");
        assert_eq!(rep.queued, 30 - control.len() as u64);
        // Mark the queued as sent (as delivery does) to read the lift.
        let mut h = s.acquire().await.unwrap();
        h.conn()
            .exec(
                "UPDATE campaign_sends SET status = 'sent' WHERE campaign = 'first' AND status = 'queued'",
                &[],
            )
            .await
            .unwrap();
        drop(h);
        let rep = s.campaign_report("first", None).await.unwrap();
        assert_eq!(rep.conversion.treated_converted, 1, "{:?}", rep.conversion);
        assert_eq!(rep.conversion.control_converted, 0);
        assert!(rep.conversion.ci95.is_some());
        db.cleanup().await;
    }
}

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver that answers 503 to the first request and 200 after, and
/// keeps every request whose signature verifies.
async fn receiver(secret: &str) -> (String, Received, Arc<Mutex<u32>>) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let calls = Arc::new(Mutex::new(0u32));
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let (g, c) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, c, key) = (g.clone(), c.clone(), key.clone());
            async move {
                let n = {
                    let mut c = c.lock().unwrap();
                    *c += 1;
                    *c
                };
                let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_string();
                let signed = format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body);
                let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                m.update(signed.as_bytes());
                let want = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
                );
                if h("webhook-signature") != want {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                if n == 1 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().push((headers.clone(), body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got, calls)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_after_a_5xx() {
    for db in backends().await {
        let s = &db.store;
        let p = people(s, 2).await;
        consent(s, p[0], "webhook").await;
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (url, got, calls) = receiver(secret).await;
        let file = format!(
            r#"name = "hook"
channel = "webhook"
control_percent = 0

[webhook]
url = "{url}"
secret = "{secret}"

[audience]
expression = 'last_order_days >= 1'

[trigger]
kind = "segment_entry"

[message]
subject = "Points"
body = "{{{{member_id}}}} has {{{{points}}}} points"
"#
        );
        s.campaign_create(&file).await.unwrap();
        let r = s.campaigns_run(&cx(NOW)).await.unwrap();
        assert_eq!(r[0].queued, 1, "{r:?}");
        assert_eq!(r[0].skipped.get("no_consent"), Some(&1));
        let settings = DeliverySettings {
            backoff: Duration::from_millis(50),
            ..DeliverySettings::default()
        };
        let d = s.campaigns_deliver(&settings).await.unwrap();
        assert_eq!((d.sent, d.failed), (1, 0), "{d:?}");
        assert_eq!(*calls.lock().unwrap(), 2, "one 503, then accepted");
        // Entered already: a second run decides nothing.
        let r = s.campaigns_run(&cx(NOW + 3_600_000)).await.unwrap();
        assert_eq!(r[0].queued + r[0].already_decided, 0, "{r:?}");
        s.campaigns_deliver(&settings).await.unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
        assert_eq!(v["type"], "campaign.message");
        assert_eq!(v["data"]["member_id"], p[0].to_string());
        assert_eq!(v["data"]["body"], format!("{} has 0 points", p[0]));
        assert!(got[0]
            .0
            .get("webhook-id")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("send_"));
        db.cleanup().await;
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A webhook receiver that checks signatures, answers 503 while `fail` is
/// above 0 (counting it down; `u32::MAX` stays), and keeps every request
/// it accepted.
struct Hook {
    url: String,
    got: Received,
    calls: Arc<Mutex<u32>>,
    fail: Arc<Mutex<u32>>,
}

async fn hook(fail: u32) -> Hook {
    use axum::routing::post;
    let got: Received = Arc::default();
    let calls = Arc::new(Mutex::new(0u32));
    let fail = Arc::new(Mutex::new(fail));
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let (g, c, f) = (got.clone(), calls.clone(), fail.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, c, f, key) = (g.clone(), c.clone(), f.clone(), key.clone());
            async move {
                *c.lock().unwrap() += 1;
                let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_string();
                let signed = format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body);
                let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                m.update(signed.as_bytes());
                let want = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
                );
                if h("webhook-signature") != want {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                {
                    let mut f = f.lock().unwrap();
                    if *f > 0 {
                        if *f != u32::MAX {
                            *f -= 1;
                        }
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                g.lock().unwrap().push((headers.clone(), body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook {
        url: format!("http://{addr}/hook"),
        got,
        calls,
        fail,
    }
}

fn hook_campaign(name: &str, url: &str) -> String {
    format!(
        r#"name = "{name}"
channel = "webhook"
control_percent = 0

[webhook]
url = "{url}"
secret = "{SECRET}"

[audience]
expression = 'last_order_days >= 1'

[trigger]
kind = "segment_entry"

[message]
subject = "Points"
body = "{{{{member_id}}}} has {{{{points}}}} points"
"#
    )
}

/// One try per pass, as of `now`.
fn pass_at(now: i64) -> DeliverySettings {
    DeliverySettings {
        webhook_attempts: 1,
        now: Some(now),
        ..DeliverySettings::default()
    }
}

const MINUTE: i64 = 60_000;

#[tokio::test]
async fn a_failing_webhook_is_tried_again_later_with_backoff_then_delivered_once() {
    for db in backends().await {
        let s = &db.store;
        let p = people(s, 1).await;
        consent(s, p[0], "webhook").await;
        let h = hook(3).await;
        s.campaign_create(&hook_campaign("retry", &h.url))
            .await
            .unwrap();
        assert_eq!(s.campaigns_run(&cx(NOW)).await.unwrap()[0].queued, 1);
        let d = s.campaigns_deliver(&pass_at(NOW)).await.unwrap();
        assert_eq!(
            (d.sent, d.retrying, d.failed),
            (0, 1, 0),
            "{}: {d:?}",
            db.name
        );
        // Not due before 1 minute: nothing is tried.
        let d = s
            .campaigns_deliver(&pass_at(NOW + MINUTE - 1))
            .await
            .unwrap();
        assert_eq!(d, DeliveryReport::default(), "{d:?}");
        assert_eq!(*h.calls.lock().unwrap(), 1);
        // Due after 1 minute (fails), then 2 more (fails), then 4 more: accepted.
        let d = s.campaigns_deliver(&pass_at(NOW + MINUTE)).await.unwrap();
        assert_eq!(d.retrying, 1, "{d:?}");
        let d = s
            .campaigns_deliver(&pass_at(NOW + 3 * MINUTE - 1))
            .await
            .unwrap();
        assert_eq!(d, DeliveryReport::default(), "the wait doubled: {d:?}");
        let d = s
            .campaigns_deliver(&pass_at(NOW + 3 * MINUTE))
            .await
            .unwrap();
        assert_eq!(d.retrying, 1, "{d:?}");
        let d = s
            .campaigns_deliver(&pass_at(NOW + 7 * MINUTE))
            .await
            .unwrap();
        assert_eq!((d.sent, d.retrying), (1, 0), "{d:?}");
        assert_eq!(*h.calls.lock().unwrap(), 4);
        let d = s.campaigns_deliver(&pass_at(NOW + DAY)).await.unwrap();
        assert_eq!(d, DeliveryReport::default());
        assert_eq!(h.got.lock().unwrap().len(), 1);
        let rep = s.campaign_report("retry", None).await.unwrap();
        assert_eq!((rep.sent, rep.failed, rep.queued), (1, 0, 0));
        assert!(s.campaign_dead_letters().await.unwrap().is_empty());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_webhook_that_always_fails_becomes_a_dead_letter_after_24_hours_and_can_be_retried() {
    for db in backends().await {
        let s = &db.store;
        let p = people(s, 1).await;
        consent(s, p[0], "webhook").await;
        let h = hook(u32::MAX).await;
        s.campaign_create(&hook_campaign("down", &h.url))
            .await
            .unwrap();
        s.campaigns_run(&cx(NOW)).await.unwrap();
        // Passes every 30 minutes for 25 hours.
        let (mut retrying, mut failed) = (0, 0);
        for step in 0..=50 {
            let d = s
                .campaigns_deliver(&pass_at(NOW + step * 30 * MINUTE))
                .await
                .unwrap();
            assert_eq!(d.sent, 0);
            retrying += d.retrying;
            failed += d.failed;
        }
        assert_eq!(failed, 1, "{}", db.name);
        let calls = *h.calls.lock().unwrap();
        assert_eq!(u64::from(calls), retrying + 1);
        // 1, 2, 4 ... 128 min, then every 4 h, the last at 24 h: backoff, not every pass.
        assert!((10..=20).contains(&calls), "{calls} tries");
        let dead = s.campaign_dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].campaign, "down");
        assert_eq!(dead[0].member_id, p[0].to_string());
        assert_eq!(dead[0].attempts, i64::from(calls));
        assert_eq!(dead[0].last_attempt_at, Some(NOW + DAY));
        let reason = dead[0].reason.clone().unwrap();
        assert!(
            reason.contains("503") && reason.contains("dead letter"),
            "{reason}"
        );
        let rep = s.campaign_report("down", None).await.unwrap();
        assert_eq!((rep.sent, rep.failed), (0, 1));
        // A dead letter is not tried by itself.
        s.campaigns_deliver(&pass_at(NOW + 2 * DAY)).await.unwrap();
        assert_eq!(*h.calls.lock().unwrap(), calls);
        // The gateway recovers; the dead letter is queued again and sent once.
        *h.fail.lock().unwrap() = 0;
        assert_eq!(
            s.campaign_retry(&RetrySelection::Ids(vec![dead[0].id + 1000]))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.campaign_retry(&RetrySelection::Ids(vec![dead[0].id]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(s.campaign_retry(&RetrySelection::All).await.unwrap(), 0);
        let d = s.campaigns_deliver(&pass_at(NOW + 2 * DAY)).await.unwrap();
        assert_eq!(d.sent, 1, "{d:?}");
        let got = h.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].0.get("webhook-id").unwrap().to_str().unwrap(),
            format!("send_{}", dead[0].id),
            "the same id as before, so a receiver can drop a repeat"
        );
        assert!(s.campaign_dead_letters().await.unwrap().is_empty());
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_at_once_deliver_each_message_once() {
    for db in backends().await {
        let s = db.store.clone();
        let p = people(&s, 30).await;
        for m in &p {
            consent(&s, *m, "webhook").await;
        }
        let h = hook(0).await;
        s.campaign_create(&hook_campaign("both", &h.url))
            .await
            .unwrap();
        let tick = |s: Store| async move {
            let run = s.campaigns_run(&cx(NOW)).await.unwrap();
            let d = s.campaigns_deliver(&pass_at(NOW)).await.unwrap();
            (run[0].queued, d.sent)
        };
        let (a, b) = tokio::join!(tokio::spawn(tick(s.clone())), tokio::spawn(tick(s.clone())));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.0 + b.0, 30, "{}: each decided once: {a:?} {b:?}", db.name);
        assert_eq!(a.1 + b.1, 30, "each delivered once: {a:?} {b:?}");
        let got = h.got.lock().unwrap().clone();
        let mut ids: Vec<String> = got
            .iter()
            .map(|(hd, _)| hd.get("webhook-id").unwrap().to_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!((got.len(), ids.len()), (30, 30));
        assert_eq!(*h.calls.lock().unwrap(), 30);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn email_goes_over_required_starttls_with_auth_trusting_a_private_ca() {
    for db in backends().await {
        let Some((smtp, ca)) = Smtp::start_tls("crm", "s3cret").await else {
            db.cleanup().await;
            return;
        };
        let s = &db.store;
        let p = people(s, 1).await;
        consent(s, p[0], "email").await;
        s.campaign_create(&once("tls", "control_percent = 0"))
            .await
            .unwrap();
        assert_eq!(s.campaigns_run(&cx(NOW)).await.unwrap()[0].queued, 1);
        let with = |url: &str, ca: Option<&Vec<u8>>, now: i64| {
            let mut server = SmtpServer::parse(url).unwrap();
            server.ca_pem = ca.cloned();
            DeliverySettings {
                smtp: Some(server),
                mail_from: Some("Brand <crm@brand.test>".into()),
                public_url: Some("http://crm.brand.test".into()),
                now: Some(now),
                ..DeliverySettings::default()
            }
        };
        let good = format!("smtp://crm:s3cret@127.0.0.1:{}", smtp.port);
        // The private CA is not trusted without --smtp-ca-file: tried again later.
        let d = s.campaigns_deliver(&with(&good, None, NOW)).await.unwrap();
        assert_eq!((d.sent, d.retrying), (0, 1), "{}: {d:?}", db.name);
        // A wrong password is refused for good (535): a dead letter.
        let bad = format!("smtp://crm:wrong@127.0.0.1:{}", smtp.port);
        let d = s
            .campaigns_deliver(&with(&bad, Some(&ca), NOW + MINUTE))
            .await
            .unwrap();
        assert_eq!(d.failed, 1, "{d:?}");
        let dead = s.campaign_dead_letters().await.unwrap();
        assert!(
            dead[0].reason.as_deref().unwrap().contains("535"),
            "{dead:?}"
        );
        assert!(smtp.messages().is_empty());
        assert_eq!(s.campaign_retry(&RetrySelection::All).await.unwrap(), 1);
        let d = s
            .campaigns_deliver(&with(&good, Some(&ca), NOW + 2 * MINUTE))
            .await
            .unwrap();
        assert_eq!(d.sent, 1, "{d:?}");
        let mail = smtp.messages();
        assert_eq!(mail.len(), 1, "{mail:?}");
        let (head, body) = &mail[0];
        assert_eq!(header(head, "To"), Some("p1@example.com"));
        let id = s.campaign_dead_letters().await.unwrap();
        assert!(id.is_empty());
        assert!(header(head, "Message-ID")
            .unwrap()
            .starts_with("<campaign-send-"));
        assert_eq!(
            header(head, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(header(head, "List-Unsubscribe")
            .unwrap()
            .starts_with("<http://crm.brand.test/unsubscribe/"));
        assert!(body.contains(&format!("Dear {}", p[0])), "{body}");
        db.cleanup().await;
    }
}

/// An https webhook receiver on loopback (rustls, one request per
/// connection) with a certificate of [`private_ca`]; keeps each request's
/// `webhook-id` and body. Returns its url, what it got and the CA's PEM.
/// (webhook-id, body) of each request received.
type Bodies = Arc<Mutex<Vec<(String, String)>>>;

fn tls_receiver(dir: &std::path::Path) -> (String, Bodies, Vec<u8>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{BufRead, BufReader, Read, Write};
    private_ca(dir);
    let certs = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let got: Bodies = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, g) = (config.clone(), g.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let (mut id, mut len) = (String::new(), 0usize);
                let mut r = BufReader::new(&mut tls);
                loop {
                    let mut line = String::new();
                    // A handshake the client refused ends here.
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("webhook-id:") {
                        id = v.trim().to_string();
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                drop(r);
                g.lock()
                    .unwrap()
                    .push((id, String::from_utf8(body).unwrap()));
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    (url, got, ca)
}

#[tokio::test]
async fn an_https_webhook_to_a_private_ca_is_refused_until_the_ca_is_trusted() {
    for db in backends().await {
        let s = &db.store;
        let p = people(s, 1).await;
        consent(s, p[0], "webhook").await;
        let dir = tempfile::tempdir().unwrap();
        let (url, got, ca) = tls_receiver(dir.path());
        s.campaign_create(&hook_campaign("tls-hook", &url))
            .await
            .unwrap();
        assert_eq!(s.campaigns_run(&cx(NOW)).await.unwrap()[0].queued, 1);
        // The Mozilla roots only: the certificate is refused, tried again later.
        let d = s.campaigns_deliver(&pass_at(NOW)).await.unwrap();
        assert_eq!((d.sent, d.retrying), (0, 1), "{}: {d:?}", db.name);
        let reason = db
            .rows("SELECT reason FROM campaign_sends", 1)
            .await
            .remove(0)
            .remove(0);
        assert!(
            reason.contains(&url) && reason.to_lowercase().contains("certificate"),
            "the cause is said: {reason}"
        );
        assert!(got.lock().unwrap().is_empty());
        // A PEM that is no certificate is refused as a setting.
        let bad = DeliverySettings {
            webhook_ca_pem: Some(b"not a certificate".to_vec()),
            ..pass_at(NOW + MINUTE)
        };
        let e = s.campaigns_deliver(&bad).await.unwrap_err().to_string();
        assert!(e.contains("--webhook-ca-file"), "{e}");
        // With the private CA trusted (--webhook-ca-file): delivered.
        let trusted = DeliverySettings {
            webhook_ca_pem: Some(ca),
            ..pass_at(NOW + MINUTE)
        };
        let d = s.campaigns_deliver(&trusted).await.unwrap();
        assert_eq!((d.sent, d.retrying), (1, 0), "{d:?}");
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].0.starts_with("send_"), "{got:?}");
        let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
        assert_eq!(v["data"]["member_id"], p[0].to_string());
        db.cleanup().await;
    }
}
