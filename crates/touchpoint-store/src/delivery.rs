//! Delivery of decided campaign sends, after the deciding units of work
//! commit: e-mail over SMTP and webhooks signed per Standard Webhooks.
//!
//! **Each send once.** A sender claims a queued send with one conditional
//! `UPDATE` (`claimed_at`, only when unclaimed or its claim is older than
//! [`CLAIM_LEASE_MS`]) before talking to the outside world, then marks it
//! `sent` or `failed`. Two senders never both claim it. A sender killed
//! after the receiver accepted but before marking leaves the claim, and the
//! send is retried when the lease ends: delivery is at least once there,
//! and the receiver can drop the repeat by its stable id (the e-mail's
//! `Message-ID: <campaign-send-ID@touchpoint>`, the webhook's `webhook-id:
//! send_ID`).
//!
//! **SMTP** is a small hand-written client (EHLO, MAIL FROM, RCPT TO, DATA,
//! QUIT; no TLS, no AUTH): the workspace has no TLS stack and the relay is
//! expected on the local network. The body is UTF-8 text, base64-encoded;
//! the subject an RFC 2047 encoded word when it is not ASCII. Every e-mail
//! carries `List-Unsubscribe` and `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058) from
//! [`Store::list_unsubscribe_headers`].
//!
//! **Webhooks** POST JSON (docs/API.md, Campaign webhooks) with
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,BASE64`
//! (HMAC-SHA256 of `id.timestamp.body` with the base64-decoded part of the
//! `whsec_` secret). A 5xx answer, a timeout or a refused connection is
//! retried with exponential backoff; a 4xx fails at once.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use touchpoint_core::campaigns::{Campaign, WebhookTarget};
use touchpoint_core::MemberId;

use crate::{now_ms, Store, StoreError};

/// A claim older than this is taken to be of a sender that died.
pub const CLAIM_LEASE_MS: i64 = 10 * 60 * 1000;

/// Where the SMTP relay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl SmtpServer {
    /// Parse `smtp://HOST:PORT` (port 25 when left out).
    pub fn parse(url: &str) -> Result<SmtpServer, String> {
        let rest = url.strip_prefix("smtp://").ok_or_else(|| {
            format!("{url:?}: expected smtp://HOST:PORT (such as smtp://127.0.0.1:2525)")
        })?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('@') {
            return Err(format!(
                "{url:?}: SMTP user names and passwords are not supported yet; use a relay that accepts the host"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>().map_err(|_| {
                    format!("{url:?}: the port {p:?} is not a number from 1 to 65535")
                })?,
            ),
            None => (rest, 25),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: expected smtp://HOST:PORT"));
        }
        Ok(SmtpServer {
            host: host.to_string(),
            port,
        })
    }
}

/// How to deliver.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The SMTP relay (`--smtp-url`); without it e-mails stay queued.
    pub smtp: Option<SmtpServer>,
    /// The From address (`--mail-from`).
    pub mail_from: Option<String>,
    /// Where `touchpoint serve` is reached, for the unsubscribe link
    /// (`--public-url`); e-mails need it.
    pub public_url: Option<String>,
    /// Tries per webhook send (first included).
    pub webhook_attempts: u32,
    /// The wait before the second try; doubled for each further one.
    pub backoff: Duration,
    /// Per connection or request.
    pub timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            smtp: None,
            mail_from: None,
            public_url: None,
            webhook_attempts: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a delivery pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered.
    pub sent: u64,
    /// Failed (after retries for webhooks); the reason is kept on the send.
    pub failed: u64,
    /// Left queued: e-mails without `--smtp-url`, `--mail-from` and
    /// `--public-url`, or sends another sender holds.
    pub waiting: u64,
    /// Why sends wait, when they do.
    pub waiting_reason: Option<String>,
}

struct Queued {
    id: i64,
    campaign: String,
    version: i64,
    member: i64,
    occurrence: String,
    channel: String,
    address: Option<String>,
    subject: String,
    body: String,
    coupon: Option<String>,
}

impl Store {
    /// Deliver every queued send (see the module doc).
    pub async fn campaigns_deliver(
        &self,
        s: &DeliverySettings,
    ) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        let mut bodies: HashMap<(String, i64), Campaign> = HashMap::new();
        let mut after = 0i64;
        loop {
            let batch = {
                let mut h = self.acquire().await?;
                h.conn()
                    .fetch(
                        "SELECT id, campaign, version, member_id, occurrence, channel, address, subject, body, coupon_code \
                         FROM campaign_sends WHERE status = 'queued' AND id > $1 ORDER BY id LIMIT 200",
                        &[after.into()],
                        |r| {
                            Ok(Queued {
                                id: r.i64(0)?,
                                campaign: r.text(1)?,
                                version: r.i64(2)?,
                                member: r.i64(3)?,
                                occurrence: r.text(4)?,
                                channel: r.text(5)?,
                                address: r.opt_text(6)?,
                                subject: r.opt_text(7)?.unwrap_or_default(),
                                body: r.opt_text(8)?.unwrap_or_default(),
                                coupon: r.opt_text(9)?,
                            })
                        },
                    )
                    .await?
            };
            let Some(last) = batch.last() else {
                return Ok(report);
            };
            after = last.id;
            for q in batch {
                if q.channel == "email" {
                    let (Some(smtp), Some(from), Some(base)) =
                        (&s.smtp, &s.mail_from, &s.public_url)
                    else {
                        report.waiting += 1;
                        report.waiting_reason =
                            Some("e-mails need --smtp-url, --mail-from and --public-url".into());
                        continue;
                    };
                    if !self.claim(q.id).await? {
                        report.waiting += 1;
                        continue;
                    }
                    let (lu, lup) = self
                        .list_unsubscribe_headers(MemberId::from_i64(q.member), base)
                        .await?;
                    let to = q.address.clone().unwrap_or_default();
                    let msg = email_message(q.id, from, &to, &q.subject, &q.body, &lu, &lup);
                    let r = smtp_send(smtp, from, &to, &msg, s.timeout).await;
                    self.mark(q.id, r, &mut report).await?;
                } else {
                    let key = (q.campaign.clone(), q.version);
                    if !bodies.contains_key(&key) {
                        let body = {
                            let mut h = self.acquire().await?;
                            h.conn()
                                .fetch_opt(
                                    "SELECT body FROM campaigns WHERE name = $1 AND version = $2",
                                    &[q.campaign.as_str().into(), q.version.into()],
                                    |r| r.text(0),
                                )
                                .await?
                                .ok_or_else(|| {
                                    StoreError::Corrupt(format!(
                                        "campaign {} version {} is missing",
                                        q.campaign, q.version
                                    ))
                                })?
                        };
                        let c = Campaign::parse(&body).map_err(|e| {
                            StoreError::Corrupt(format!("campaign {}: {e}", q.campaign))
                        })?;
                        bodies.insert(key.clone(), c);
                    }
                    let Some(target) = bodies[&key].webhook.clone() else {
                        return Err(StoreError::Corrupt(format!(
                            "campaign {} sends by webhook without a [webhook] table",
                            q.campaign
                        )));
                    };
                    if !self.claim(q.id).await? {
                        report.waiting += 1;
                        continue;
                    }
                    let unsubscribe_url = match &s.public_url {
                        Some(base) => Some(
                            crate::profiles::list_unsubscribe_values(
                                base,
                                &self.unsubscribe_token(MemberId::from_i64(q.member)).await?,
                            )
                            .0
                            .trim_matches(|c| c == '<' || c == '>')
                            .to_string(),
                        ),
                        None => None,
                    };
                    let payload = serde_json::json!({
                        "type": "campaign.message",
                        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "data": {
                            "send_id": q.id,
                            "campaign": q.campaign,
                            "occurrence": q.occurrence,
                            "member_id": MemberId::from_i64(q.member).to_string(),
                            "email": q.address,
                            "subject": q.subject,
                            "body": q.body,
                            "coupon": q.coupon,
                            "unsubscribe_url": unsubscribe_url,
                        }
                    });
                    let r =
                        webhook_send(&target, &format!("send_{}", q.id), &payload.to_string(), s)
                            .await;
                    self.mark(q.id, r, &mut report).await?;
                }
            }
        }
    }

    async fn claim(&self, id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut h = self.acquire().await?;
        Ok(h.conn()
            .exec(
                "UPDATE campaign_sends SET claimed_at = $2, attempts = attempts + 1 \
                 WHERE id = $1 AND status = 'queued' AND (claimed_at IS NULL OR claimed_at < $3)",
                &[id.into(), now.into(), (now - CLAIM_LEASE_MS).into()],
            )
            .await?
            == 1)
    }

    async fn mark(
        &self,
        id: i64,
        r: Result<(), String>,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let mut h = self.acquire().await?;
        match r {
            Ok(()) => {
                report.sent += 1;
                h.conn()
                    .exec(
                        "UPDATE campaign_sends SET status = 'sent', sent_at = $2, reason = NULL WHERE id = $1",
                        &[id.into(), now_ms().into()],
                    )
                    .await?;
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(send = id, error = %e, "campaign send failed");
                h.conn()
                    .exec(
                        "UPDATE campaign_sends SET status = 'failed', reason = $2 WHERE id = $1",
                        &[id.into(), e.into()],
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn encode_subject(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    if clean.is_ascii() && clean.len() <= 900 {
        return clean;
    }
    // Encoded words of at most 45 bytes of text each (75 characters encoded).
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut words = Vec::new();
    let mut cur = String::new();
    for ch in clean.chars() {
        if cur.len() + ch.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64.encode(&cur)));
            cur.clear();
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64.encode(&cur)));
    }
    words.join("\r\n ")
}

/// The message text (headers and base64 body, CRLF line ends).
pub fn email_message(
    id: i64,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    list_unsubscribe: &str,
    list_unsubscribe_post: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body.replace('\n', "\r\n"));
    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\nTo: {to}\r\n"));
    m.push_str(&format!("Subject: {}\r\n", encode_subject(subject)));
    m.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    m.push_str(&format!("Message-ID: <campaign-send-{id}@touchpoint>\r\n"));
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n");
    m.push_str(&format!("List-Unsubscribe: {list_unsubscribe}\r\n"));
    m.push_str(&format!(
        "List-Unsubscribe-Post: {list_unsubscribe_post}\r\n\r\n"
    ));
    for chunk in b64.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m
}

async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<(u16, String), String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| format!("SMTP read: {e}"))?;
        if n == 0 {
            return Err("SMTP server closed the connection".into());
        }
        text.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            let code = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("SMTP: unexpected reply {line:?}"))?;
            return Ok((code, text.trim_end().to_string()));
        }
    }
}

async fn smtp_send(
    server: &SmtpServer,
    from: &str,
    to: &str,
    message: &str,
    timeout: Duration,
) -> Result<(), String> {
    tokio::time::timeout(timeout, smtp_session(server, from, to, message))
        .await
        .map_err(|_| format!("SMTP {}:{}: timed out", server.host, server.port))?
}

async fn smtp_session(
    server: &SmtpServer,
    from: &str,
    to: &str,
    message: &str,
) -> Result<(), String> {
    let stream = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .map_err(|e| format!("SMTP connect {}:{}: {e}", server.host, server.port))?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let expect = |got: (u16, String), want: u16, what: &str| -> Result<(), String> {
        if got.0 / 100 == want / 100 {
            Ok(())
        } else {
            Err(format!("SMTP {what}: {}", got.1))
        }
    };
    expect(reply(&mut rd).await?, 220, "greeting")?;
    write(&mut wr, "EHLO touchpoint\r\n").await?;
    expect(reply(&mut rd).await?, 250, "EHLO")?;
    write(&mut wr, format!("MAIL FROM:<{}>\r\n", bare(from))).await?;
    expect(reply(&mut rd).await?, 250, "MAIL FROM")?;
    write(&mut wr, format!("RCPT TO:<{}>\r\n", bare(to))).await?;
    expect(reply(&mut rd).await?, 250, "RCPT TO")?;
    write(&mut wr, "DATA\r\n").await?;
    expect(reply(&mut rd).await?, 354, "DATA")?;
    let mut data = String::with_capacity(message.len() + 8);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    // `message` ends with CRLF, so the split's last piece is empty.
    data.truncate(data.len() - 2);
    data.push_str(".\r\n");
    write(&mut wr, data).await?;
    expect(reply(&mut rd).await?, 250, "message")?;
    write(&mut wr, "QUIT\r\n").await?;
    let _ = reply(&mut rd).await;
    Ok(())
}

async fn write(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    cmd: impl AsRef<str>,
) -> Result<(), String> {
    w.write_all(cmd.as_ref().as_bytes())
        .await
        .map_err(|e| format!("SMTP write: {e}"))
}

/// `Name <a@b>` -> `a@b`.
fn bare(addr: &str) -> &str {
    match (addr.rfind('<'), addr.rfind('>')) {
        (Some(a), Some(b)) if a < b => &addr[a + 1..b],
        _ => addr.trim(),
    }
}

/// The Standard Webhooks signature header value for a message.
pub fn webhook_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|e| format!("webhook secret is not base64 after whsec_: {e}"))?;
    let mut m = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    m.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", b64.encode(m.finalize().into_bytes())))
}

async fn webhook_send(
    target: &WebhookTarget,
    id: &str,
    body: &str,
    s: &DeliverySettings,
) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut last_error = String::new();
    for attempt in 0..s.webhook_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(s.backoff * 2u32.saturating_pow(attempt - 1)).await;
        }
        let ts = chrono::Utc::now().timestamp();
        let sig = webhook_signature(&target.secret, id, ts, body)?;
        let req = hyper::Request::post(target.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|e| format!("webhook {}: {e}", target.url))?;
        match tokio::time::timeout(s.timeout, client.request(req)).await {
            Err(_) => last_error = format!("webhook {}: timed out", target.url),
            Ok(Err(e)) => last_error = format!("webhook {}: {e}", target.url),
            Ok(Ok(resp)) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                if status.is_success() {
                    return Ok(());
                }
                last_error = format!("webhook {}: HTTP {status}", target.url);
                if !status.is_server_error() {
                    return Err(last_error);
                }
            }
        }
    }
    Err(format!(
        "{last_error} (after {} tries)",
        s.webhook_attempts.max(1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_and_bad_ones_say_the_form() {
        assert_eq!(
            SmtpServer::parse("smtp://127.0.0.1:2525").unwrap(),
            SmtpServer {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        assert_eq!(SmtpServer::parse("smtp://mail").unwrap().port, 25);
        assert!(SmtpServer::parse("http://x")
            .unwrap_err()
            .contains("smtp://HOST:PORT"));
    }

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let sig = webhook_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words() {
        let s = encode_subject("生日快乐");
        assert!(s.starts_with("=?UTF-8?B?"), "{s}");
        assert_eq!(encode_subject("Hi\r\nBcc: x"), "HiBcc: x");
    }
}
