//! Delivery of decided campaign sends, after the deciding units of work
//! commit: e-mail over SMTP (lettre, STARTTLS or implicit TLS, AUTH) and
//! webhooks signed per Standard Webhooks (http or https, rustls).
//!
//! **Each send once.** A sender claims a due queued send with one
//! conditional `UPDATE` (`claimed_at`, only when unclaimed or its claim is
//! older than [`CLAIM_LEASE_MS`]) before talking to the outside world, then
//! marks it `sent`, schedules its next try, or makes it a dead letter. Two
//! senders never both claim it. A sender killed after the receiver accepted
//! but before marking leaves the claim, and the send is retried when the
//! lease ends: delivery is at least once there, and the receiver can drop
//! the repeat by its stable id (the e-mail's `Message-ID:
//! <campaign-send-ID@touchpoint>`, the webhook's `webhook-id: send_ID`).
//!
//! **Retries** are durable: a try that fails for a reason that may pass (a
//! refused connection, a timeout, an SMTP 4xx, an HTTP 5xx) leaves the send
//! `queued` with `next_attempt_at` = now + [`retry_delay`] (1 min, doubling,
//! at most 4 h between tries) and the error in `reason`. A send still
//! failing [`DeliverySettings::retry_for`] (24 h) after its first try, or
//! failing for good (an SMTP 5xx, an HTTP 4xx, an address that does not
//! parse), becomes a dead letter: status `failed`. Dead letters are listed
//! by [`Store::campaign_dead_letters`] and queued again by
//! [`Store::campaign_retry`].
//!
//! **SMTP** is lettre's pooled async transport, built inside the runtime
//! at each delivery pass. The body is UTF-8 text; the subject an RFC 2047
//! encoded word when it is not ASCII. Every e-mail carries `List-Unsubscribe`
//! and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) from
//! [`Store::list_unsubscribe_headers`].
//!
//! **Webhooks** POST JSON (docs/API.md, Campaign webhooks) with
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,BASE64`
//! (HMAC-SHA256 of `id.timestamp.body` with the base64-decoded part of the
//! `whsec_` secret). A 5xx answer, a timeout or a refused connection is
//! tried again within the pass ([`DeliverySettings::webhook_attempts`]) and
//! then on later passes; a 4xx is a dead letter at once.
//!
//! **SMS and WeChat** go the webhook's way, to the brand's own gateway (the
//! campaign's `[sms]` / `[wechat]` url and secret): the same signing, the same
//! tries, retries and dead letters (this module's one [`webhook_send`]); only
//! the JSON differs (docs/API.md, SMS and WeChat gateways). `https://`
//! endpoints trust the Mozilla roots and [`DeliverySettings::webhook_ca_pem`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;

use touchpoint_core::campaigns::{Campaign, Channel, WebhookTarget};
use touchpoint_core::MemberId;

use crate::{now_ms, Store, StoreError};

/// A claim older than this is taken to be of a sender that died.
pub const CLAIM_LEASE_MS: i64 = 10 * 60 * 1000;

/// The longest wait between two tries of a send.
pub const MAX_RETRY_DELAY_MS: i64 = 4 * 3_600_000;

/// The wait after the `attempts`-th failed try: `base` doubled for each
/// earlier try, at most [`MAX_RETRY_DELAY_MS`].
pub fn retry_delay(attempts: i64, base: Duration) -> i64 {
    let base = base.as_millis().min(i64::MAX as u128) as i64;
    let shift = (attempts.max(1) - 1).min(30) as u32;
    base.saturating_mul(1i64 << shift).min(MAX_RETRY_DELAY_MS)
}

/// How the SMTP connection is protected (docs/campaigns.md, Delivery settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (`?tls=none`): a relay on the local network only.
    None,
    /// STARTTLS when the server offers it (`smtp://` without a login).
    Opportunistic,
    /// STARTTLS or fail (`?tls=required`, and `smtp://` with a login).
    Required,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

/// Where the SMTP relay is and how to talk to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or address (also the name the TLS certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protection of the connection.
    pub tls: SmtpTls,
    /// AUTH user name and password, when the URL has them.
    pub credentials: Option<(String, String)>,
    /// Extra trusted root certificates (PEM), for a private CA
    /// (`--smtp-ca-file`); the Mozilla roots are trusted as well.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

impl SmtpServer {
    /// Parse `smtp://[USER:PASS@]HOST[:PORT][?tls=none|opportunistic|required]`
    /// (port 25; STARTTLS when offered, required with a login) or
    /// `smtps://[USER:PASS@]HOST[:PORT]` (implicit TLS, port 465). The user
    /// and password are percent-decoded (`%40` for `@`).
    pub fn parse(url: &str) -> Result<SmtpServer, String> {
        let form = "expected smtp://[USER:PASS@]HOST[:PORT][?tls=none|opportunistic|required] or smtps://[USER:PASS@]HOST[:PORT]";
        let (implicit, rest) = if let Some(r) = url.strip_prefix("smtps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: {form}"));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').ok_or_else(|| {
                    format!("{url:?}: a login is USER:PASS@ (percent-encode : and @ in them)")
                })?;
                Some((
                    percent_decode(user).map_err(|e| format!("{url:?}: user: {e}"))?,
                    percent_decode(pass).map_err(|e| format!("{url:?}: password: {e}"))?,
                ))
            }
        };
        let default_port = if implicit { 465 } else { 25 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>().map_err(|_| {
                    format!("{url:?}: the port {p:?} is not a number from 1 to 65535")
                })?,
            ),
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: {form}"));
        }
        let mut tls = match (implicit, &credentials) {
            (true, _) => SmtpTls::Implicit,
            (false, Some(_)) => SmtpTls::Required,
            (false, None) => SmtpTls::Opportunistic,
        };
        if let Some(q) = query {
            for kv in q.split('&').filter(|kv| !kv.is_empty()) {
                match kv.split_once('=') {
                    Some(("tls", v)) if !implicit => {
                        tls = match v {
                            "none" => SmtpTls::None,
                            "opportunistic" => SmtpTls::Opportunistic,
                            "required" => SmtpTls::Required,
                            _ => {
                                return Err(format!(
                                    "{url:?}: tls={v}: accepted: none, opportunistic, required"
                                ))
                            }
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{url:?}: unknown setting {kv:?}; accepted: tls=none|opportunistic|required (smtp:// only)"
                        ))
                    }
                }
            }
        }
        if tls == SmtpTls::None && credentials.is_some() {
            return Err(format!(
                "{url:?}: a password over plain text (tls=none) is refused; use tls=required or smtps://"
            ));
        }
        Ok(SmtpServer {
            host: host.to_string(),
            port,
            tls,
            credentials,
            ca_pem: None,
        })
    }

    /// The lettre transport (call inside the Tokio runtime: the pool spawns).
    fn transport(
        &self,
        timeout: Duration,
        connections: u32,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(self.host.clone())
                .certificate_store(CertificateStore::WebpkiRoots);
            if let Some(pem) = &self.ca_pem {
                b = b.add_root_certificate(
                    Certificate::from_pem(pem)
                        .map_err(|e| format!("--smtp-ca-file: not PEM certificates: {e}"))?,
                );
            }
            b.build_rustls()
                .map_err(|e| format!("SMTP TLS settings for {}: {e}", self.host))
        };
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::Required => Tls::Required(params()?),
            SmtpTls::Implicit => Tls::Wrapper(params()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(connections.max(1)));
        if let Some((u, p)) = &self.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }
}

/// How to deliver.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The SMTP relay (`--smtp`); without it e-mails stay queued.
    pub smtp: Option<SmtpServer>,
    /// The From address (`--mail-from`).
    pub mail_from: Option<String>,
    /// Where `touchpoint serve` is reached, for the unsubscribe link
    /// (`--public-url`); e-mails need it.
    pub public_url: Option<String>,
    /// Tries per webhook send within one pass (first included).
    pub webhook_attempts: u32,
    /// The wait before the second try within a pass; doubled for each further one.
    pub backoff: Duration,
    /// Per connection or request.
    pub timeout: Duration,
    /// The pass's time, for due retries and claims (`campaigns run --now`);
    /// `None` is the clock.
    pub now: Option<i64>,
    /// The wait after the first failed pass (doubled per further try, at
    /// most [`MAX_RETRY_DELAY_MS`]).
    pub retry_base: Duration,
    /// How long after its first try a failing send is tried before it
    /// becomes a dead letter.
    pub retry_for: Duration,
    /// Sends delivered at once (SMTP connections in the pool, webhook
    /// requests in flight).
    pub concurrency: usize,
    /// Extra trusted root certificates (PEM) for `https://` webhook, SMS and
    /// WeChat endpoints (`--webhook-ca-file`); the Mozilla roots are
    /// trusted as well.
    pub webhook_ca_pem: Option<Vec<u8>>,
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
            now: None,
            retry_base: Duration::from_secs(60),
            retry_for: Duration::from_secs(24 * 3600),
            concurrency: 4,
            webhook_ca_pem: None,
        }
    }
}

/// What a delivery pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered.
    pub sent: u64,
    /// Failed tries to be tried again later (`next_attempt_at`).
    pub retrying: u64,
    /// Became dead letters in this pass (for good, or after `retry_for`);
    /// the reason is kept on the send.
    pub failed: u64,
    /// Left queued: e-mails without `--smtp`, `--mail-from` and
    /// `--public-url`, or sends another sender holds.
    pub waiting: u64,
    /// Why sends wait, when they do.
    pub waiting_reason: Option<String>,
}

/// A send that will not be tried again by itself (`campaigns dead-letters`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetter {
    /// The send's id (`campaigns retry ID`).
    pub id: i64,
    /// Its campaign.
    pub campaign: String,
    /// Its member.
    pub member_id: String,
    /// `email`, `webhook`, `sms` or `wechat`.
    pub channel: String,
    /// The e-mail address, the phone (SMS), or `openid:` / `unionid:` and
    /// the id (WeChat).
    pub address: Option<String>,
    /// Tries made.
    pub attempts: i64,
    /// The last error.
    pub reason: Option<String>,
    /// When it was decided (ms since the epoch).
    pub decided_at: i64,
    /// When it was last tried (ms since the epoch).
    pub last_attempt_at: Option<i64>,
}

/// Which dead letters to queue again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrySelection {
    /// Every dead letter.
    All,
    /// These send ids (ids that are not dead letters are left alone).
    Ids(Vec<i64>),
}

#[derive(Clone)]
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
    data: Option<String>,
}

/// The end of one try.
enum TryResult {
    Sent,
    /// May pass: try again later.
    Transient(String),
    /// Will not pass: a dead letter now.
    Permanent(String),
}

enum Outcome {
    Sent,
    Retrying,
    Failed,
    Waiting,
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

struct Pass<'a> {
    s: &'a DeliverySettings,
    now: i64,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    http: HttpsClient,
    /// The campaign versions of the pass's HTTP sends.
    targets: HashMap<(String, i64), Arc<Campaign>>,
}

/// The certificates of a PEM file (`--webhook-ca-file`), or why not.
pub fn ca_certificates(
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into());
    }
    Ok(certs)
}

/// The HTTP client of a pass: http and https (rustls, the Mozilla roots and
/// the extra PEM roots).
fn http_client(ca_pem: Option<&[u8]>) -> Result<HttpsClient, StoreError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        let bad = |e: String| StoreError::InvalidInput(format!("--webhook-ca-file: {e}"));
        for cert in ca_certificates(pem).map_err(bad)? {
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate is refused: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::InvalidInput(format!("webhook TLS settings: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

impl Store {
    /// Deliver every due queued send (see the module doc).
    pub async fn campaigns_deliver(
        &self,
        s: &DeliverySettings,
    ) -> Result<DeliveryReport, StoreError> {
        let now = s.now.unwrap_or_else(now_ms);
        let mut report = DeliveryReport::default();
        let email_ready = s.smtp.is_some() && s.mail_from.is_some() && s.public_url.is_some();
        let smtp = match (&s.smtp, email_ready) {
            (Some(server), true) => Some(
                server
                    .transport(s.timeout, s.concurrency as u32)
                    .map_err(StoreError::InvalidInput)?,
            ),
            _ => None,
        };
        let http = http_client(s.webhook_ca_pem.as_deref())?;
        let mut pass = Pass {
            s,
            now,
            smtp,
            http,
            targets: HashMap::new(),
        };
        let mut after = 0i64;
        loop {
            let batch = {
                let mut h = self.acquire().await?;
                h.conn()
                    .fetch(
                        "SELECT id, campaign, version, member_id, occurrence, channel, address, subject, body, coupon_code, data \
                         FROM campaign_sends WHERE status = 'queued' AND id > $1 \
                         AND (next_attempt_at IS NULL OR next_attempt_at <= $2) ORDER BY id LIMIT 500",
                        &[after.into(), now.into()],
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
                                data: r.opt_text(10)?,
                            })
                        },
                    )
                    .await?
            };
            let Some(last) = batch.last() else {
                return Ok(report);
            };
            after = last.id;
            for q in &batch {
                if q.channel != "email" {
                    self.load_target(&mut pass.targets, q).await?;
                }
            }
            if !email_ready && batch.iter().any(|q| q.channel == "email") {
                report.waiting_reason =
                    Some("e-mails need --smtp, --mail-from and --public-url".into());
            }
            let pass_ref = &pass;
            let mut results = futures_util::stream::iter(batch)
                .map(|q| async move { self.deliver_one(pass_ref, q).await })
                .buffer_unordered(s.concurrency.max(1));
            while let Some(r) = results.next().await {
                match r? {
                    Outcome::Sent => report.sent += 1,
                    Outcome::Retrying => report.retrying += 1,
                    Outcome::Failed => report.failed += 1,
                    Outcome::Waiting => report.waiting += 1,
                }
            }
        }
    }

    async fn load_target(
        &self,
        targets: &mut HashMap<(String, i64), Arc<Campaign>>,
        q: &Queued,
    ) -> Result<(), StoreError> {
        let key = (q.campaign.clone(), q.version);
        if targets.contains_key(&key) {
            return Ok(());
        }
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
        let c = Campaign::parse(&body)
            .map_err(|e| StoreError::Corrupt(format!("campaign {}: {e}", q.campaign)))?;
        if c.http_target().is_none() {
            return Err(StoreError::Corrupt(format!(
                "campaign {} sends by {} without its gateway table",
                q.campaign, q.channel
            )));
        }
        targets.insert(key, Arc::new(c));
        Ok(())
    }

    async fn deliver_one(&self, p: &Pass<'_>, q: Queued) -> Result<Outcome, StoreError> {
        let s = p.s;
        if q.channel == "email" {
            let (Some(smtp), Some(from), Some(base)) = (&p.smtp, &s.mail_from, &s.public_url)
            else {
                return Ok(Outcome::Waiting);
            };
            if !self.claim(q.id, p.now).await? {
                return Ok(Outcome::Waiting);
            }
            let (lu, lup) = self
                .list_unsubscribe_headers(MemberId::from_i64(q.member), base)
                .await?;
            let to = q.address.clone().unwrap_or_default();
            let r = match email_message(q.id, from, &to, &q.subject, &q.body, &lu, &lup) {
                Err(e) => TryResult::Permanent(e),
                // lettre's timeout bounds the connection; this bounds the whole
                // session, so a server that stops answering cannot hold a pass.
                Ok(msg) => match tokio::time::timeout(s.timeout * 3, smtp.send(msg)).await {
                    Err(_) => TryResult::Transient(format!(
                        "SMTP {}: no answer within {} s",
                        smtp_name(s),
                        (s.timeout * 3).as_secs()
                    )),
                    Ok(Ok(_)) => TryResult::Sent,
                    Ok(Err(e)) if e.is_permanent() => {
                        TryResult::Permanent(format!("SMTP {}: {e}", smtp_name(s)))
                    }
                    Ok(Err(e)) => TryResult::Transient(format!("SMTP {}: {e}", smtp_name(s))),
                },
            };
            self.mark(q.id, r, p).await
        } else {
            let c = p.targets[&(q.campaign.clone(), q.version)].clone();
            let Some(target) = c.http_target() else {
                return Ok(Outcome::Waiting);
            };
            if !self.claim(q.id, p.now).await? {
                return Ok(Outcome::Waiting);
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
            let payload = match gateway_payload(&c, &q, unsubscribe_url) {
                Ok(p) => p,
                Err(e) => return self.mark(q.id, TryResult::Permanent(e), p).await,
            };
            let r = webhook_send(
                &p.http,
                target,
                &format!("send_{}", q.id),
                &payload.to_string(),
                s,
            )
            .await;
            self.mark(q.id, r, p).await
        }
    }

    async fn claim(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let mut h = self.acquire().await?;
        Ok(h.conn()
            .exec(
                "UPDATE campaign_sends SET claimed_at = $2, attempts = attempts + 1, \
                 first_attempt_at = COALESCE(first_attempt_at, $2), last_attempt_at = $2 \
                 WHERE id = $1 AND status = 'queued' AND (claimed_at IS NULL OR claimed_at < $3)",
                &[id.into(), now.into(), (now - CLAIM_LEASE_MS).into()],
            )
            .await?
            == 1)
    }

    async fn mark(&self, id: i64, r: TryResult, p: &Pass<'_>) -> Result<Outcome, StoreError> {
        let mut h = self.acquire().await?;
        match r {
            TryResult::Sent => {
                h.conn()
                    .exec(
                        "UPDATE campaign_sends SET status = 'sent', sent_at = $2, reason = NULL, next_attempt_at = NULL WHERE id = $1",
                        &[id.into(), now_ms().into()],
                    )
                    .await?;
                Ok(Outcome::Sent)
            }
            TryResult::Transient(e) => {
                let (attempts, first) = h
                    .conn()
                    .fetch_opt(
                        "SELECT attempts, first_attempt_at FROM campaign_sends WHERE id = $1",
                        &[id.into()],
                        |r| Ok((r.i64(0)?, r.opt_i64(1)?)),
                    )
                    .await?
                    .unwrap_or((1, None));
                let first = first.unwrap_or(p.now);
                let give_up_at = first + p.s.retry_for.as_millis() as i64;
                if p.now >= give_up_at {
                    let reason = format!(
                        "{e} (dead letter: still failing after {attempts} tries over {} h)",
                        p.s.retry_for.as_secs() / 3600
                    );
                    tracing::warn!(send = id, error = %reason, "campaign send is a dead letter");
                    h.conn()
                        .exec(
                            "UPDATE campaign_sends SET status = 'failed', reason = $2, next_attempt_at = NULL, claimed_at = NULL WHERE id = $1",
                            &[id.into(), reason.into()],
                        )
                        .await?;
                    return Ok(Outcome::Failed);
                }
                let next = (p.now + retry_delay(attempts, p.s.retry_base)).min(give_up_at);
                tracing::info!(send = id, error = %e, next_attempt_at = next, "campaign send will be tried again");
                h.conn()
                    .exec(
                        "UPDATE campaign_sends SET reason = $2, next_attempt_at = $3, claimed_at = NULL WHERE id = $1",
                        &[id.into(), e.into(), next.into()],
                    )
                    .await?;
                Ok(Outcome::Retrying)
            }
            TryResult::Permanent(e) => {
                tracing::warn!(send = id, error = %e, "campaign send failed for good: a dead letter");
                h.conn()
                    .exec(
                        "UPDATE campaign_sends SET status = 'failed', reason = $2, next_attempt_at = NULL, claimed_at = NULL WHERE id = $1",
                        &[id.into(), e.into()],
                    )
                    .await?;
                Ok(Outcome::Failed)
            }
        }
    }

    /// The dead letters (sends with status `failed`), oldest first.
    pub async fn campaign_dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT id, campaign, member_id, channel, address, attempts, reason, decided_at, last_attempt_at \
                 FROM campaign_sends WHERE status = 'failed' ORDER BY id",
                &[],
                |r| {
                    Ok(DeadLetter {
                        id: r.i64(0)?,
                        campaign: r.text(1)?,
                        member_id: MemberId::from_i64(r.i64(2)?).to_string(),
                        channel: r.text(3)?,
                        address: r.opt_text(4)?,
                        attempts: r.i64(5)?,
                        reason: r.opt_text(6)?,
                        decided_at: r.i64(7)?,
                        last_attempt_at: r.opt_i64(8)?,
                    })
                },
            )
            .await
    }

    /// Queue dead letters again, due at once, with a fresh 24 h of retries;
    /// returns how many were queued. The send keeps its id, so its
    /// `Message-ID` / `webhook-id` stays the same.
    pub async fn campaign_retry(&self, which: &RetrySelection) -> Result<u64, StoreError> {
        let sql = "UPDATE campaign_sends SET status = 'queued', claimed_at = NULL, next_attempt_at = NULL, \
                   first_attempt_at = NULL, reason = NULL WHERE status = 'failed'";
        let mut h = self.acquire().await?;
        match which {
            RetrySelection::All => h.conn().exec(sql, &[]).await,
            RetrySelection::Ids(ids) => {
                let mut n = 0;
                for id in ids {
                    n += h
                        .conn()
                        .exec(&format!("{sql} AND id = $1"), &[(*id).into()])
                        .await?;
                }
                Ok(n)
            }
        }
    }
}

fn smtp_name(s: &DeliverySettings) -> String {
    s.smtp
        .as_ref()
        .map(|m| format!("{}:{}", m.host, m.port))
        .unwrap_or_default()
}

fn raw_header(name: &'static str, value: &str) -> Result<HeaderValue, String> {
    let n = HeaderName::new_from_ascii_str(name);
    let clean: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    Ok(HeaderValue::new(n, clean))
}

/// The message: From, To, Subject (RFC 2047 when not ASCII), Date,
/// `Message-ID: <campaign-send-ID@touchpoint>`, a UTF-8 text body, and the
/// RFC 8058 unsubscribe headers. An address that does not parse is an error.
pub fn email_message(
    id: i64,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    list_unsubscribe: &str,
    list_unsubscribe_post: &str,
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("--mail-from {from:?}: {e}"))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the address {to:?} does not parse: {e}"))?;
    let subject: String = subject
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date_now()
        .message_id(Some(format!("<campaign-send-{id}@touchpoint>")))
        .raw_header(raw_header("List-Unsubscribe", list_unsubscribe)?)
        .raw_header(raw_header("List-Unsubscribe-Post", list_unsubscribe_post)?)
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::Base64)
        .body(body.replace('\n', "\r\n"))
        .map_err(|e| format!("message {id}: {e}"))
}

/// The JSON POSTed for a send of an HTTP channel (docs/API.md): the
/// campaign webhook's `campaign.message`, the SMS gateway's `{to, text,
/// ...}`, the WeChat gateway's template message `{touser, template_id,
/// data: {KEY: {value}}, ...}`.
fn gateway_payload(
    c: &Campaign,
    q: &Queued,
    unsubscribe_url: Option<String>,
) -> Result<serde_json::Value, String> {
    let member_id = MemberId::from_i64(q.member).to_string();
    let message_id = format!("send_{}", q.id);
    Ok(match c.channel {
        Channel::Email | Channel::Webhook => serde_json::json!({
            "type": "campaign.message",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": {
                "send_id": q.id,
                "campaign": q.campaign,
                "occurrence": q.occurrence,
                "member_id": member_id,
                "email": q.address,
                "subject": q.subject,
                "body": q.body,
                "coupon": q.coupon,
                "unsubscribe_url": unsubscribe_url,
            }
        }),
        Channel::Sms => serde_json::json!({
            "to": q.address.as_deref().ok_or("an SMS send without a phone")?,
            "text": q.body,
            "template": c.sms.as_ref().and_then(|s| s.template.as_deref()),
            "message_id": message_id,
            "send_id": q.id,
            "member_id": member_id,
            "campaign": q.campaign,
            "occurrence": q.occurrence,
            "coupon": q.coupon,
            "unsubscribe_url": unsubscribe_url,
        }),
        Channel::Wechat => {
            let w = c.wechat.as_ref().ok_or("a WeChat send without [wechat]")?;
            let address = q.address.as_deref().unwrap_or_default();
            let (kind, id) = address
                .split_once(':')
                .filter(|(k, _)| *k == "openid" || *k == "unionid")
                .ok_or_else(|| {
                    format!("a WeChat send without an openid or unionid ({address:?})")
                })?;
            let fields: serde_json::Map<String, serde_json::Value> = q
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            let data: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::json!({ "value": v })))
                .collect();
            serde_json::json!({
                "touser": id,
                "touser_type": kind,
                "appid": w.app_id,
                "template_id": w.template_id,
                "url": w.link,
                "miniprogram": w.miniprogram.as_ref().map(|(appid, pagepath)| {
                    serde_json::json!({"appid": appid, "pagepath": pagepath})
                }),
                "data": data,
                "message_id": message_id,
                "send_id": q.id,
                "member_id": member_id,
                "campaign": q.campaign,
                "occurrence": q.occurrence,
                "coupon": q.coupon,
            })
        }
    })
}

/// An error with its sources (`client error (Connect): invalid peer
/// certificate: UnknownIssuer`): the outer error alone rarely says why.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        next = c.source();
    }
    out
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
    client: &HttpsClient,
    target: &WebhookTarget,
    id: &str,
    body: &str,
    s: &DeliverySettings,
) -> TryResult {
    use http_body_util::{BodyExt, Full};
    let mut last_error = String::new();
    for attempt in 0..s.webhook_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(s.backoff * 2u32.saturating_pow(attempt - 1)).await;
        }
        let ts = chrono::Utc::now().timestamp();
        let sig = match webhook_signature(&target.secret, id, ts, body) {
            Ok(sig) => sig,
            Err(e) => return TryResult::Permanent(e),
        };
        let req = match hyper::Request::post(target.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(Full::new(bytes::Bytes::from(body.to_string())))
        {
            Ok(r) => r,
            Err(e) => return TryResult::Permanent(format!("webhook {}: {e}", target.url)),
        };
        match tokio::time::timeout(s.timeout, client.request(req)).await {
            Err(_) => last_error = format!("webhook {}: timed out", target.url),
            Ok(Err(e)) => last_error = format!("webhook {}: {}", target.url, causes(&e)),
            Ok(Ok(resp)) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                if status.is_success() {
                    return TryResult::Sent;
                }
                last_error = format!("webhook {}: HTTP {status}", target.url);
                if !status.is_server_error() {
                    return TryResult::Permanent(last_error);
                }
            }
        }
    }
    TryResult::Transient(format!(
        "{last_error} (after {} tries in this pass)",
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
                port: 2525,
                tls: SmtpTls::Opportunistic,
                credentials: None,
                ca_pem: None,
            }
        );
        assert_eq!(SmtpServer::parse("smtp://mail").unwrap().port, 25);
        let s = SmtpServer::parse("smtp://crm%40brand.test:p%3Ass@mail.brand.test:587").unwrap();
        assert_eq!(
            s.credentials,
            Some(("crm@brand.test".into(), "p:ss".into()))
        );
        assert_eq!(
            (s.tls, s.port),
            (SmtpTls::Required, 587),
            "a login requires STARTTLS"
        );
        assert!(
            !format!("{s:?}").contains("p:ss"),
            "Debug hides the password"
        );
        let s = SmtpServer::parse("smtp://mail:2525?tls=required").unwrap();
        assert_eq!(s.tls, SmtpTls::Required);
        assert_eq!(
            SmtpServer::parse("smtp://mail?tls=none").unwrap().tls,
            SmtpTls::None
        );
        let s = SmtpServer::parse("smtps://u:p@mail").unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::Implicit, 465));
        assert!(SmtpServer::parse("smtp://u:p@mail?tls=none")
            .unwrap_err()
            .contains("plain text"));
        assert!(SmtpServer::parse("smtp://mail?tls=maybe")
            .unwrap_err()
            .contains("accepted: none, opportunistic, required"));
        assert!(SmtpServer::parse("http://x")
            .unwrap_err()
            .contains("smtp://[USER:PASS@]HOST[:PORT]"));
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
    fn retries_double_from_the_base_up_to_four_hours() {
        let base = Duration::from_secs(60);
        assert_eq!(retry_delay(1, base), 60_000);
        assert_eq!(retry_delay(2, base), 120_000);
        assert_eq!(retry_delay(4, base), 480_000);
        assert_eq!(retry_delay(9, base), MAX_RETRY_DELAY_MS);
        assert_eq!(retry_delay(100, base), MAX_RETRY_DELAY_MS);
    }

    #[test]
    fn messages_keep_the_headers_and_encode_a_chinese_subject() {
        let m = email_message(
            7,
            "Brand <crm@brand.test>",
            "p1@example.com",
            "生日快乐\r\nBcc: x@y",
            "Hi",
            "<http://crm/unsubscribe/T>",
            "List-Unsubscribe=One-Click",
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <campaign-send-7@touchpoint>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe: <http://crm/unsubscribe/T>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{text}"
        );
        assert!(
            text.contains("Subject: =?utf-8?b?") || text.contains("Subject: =?UTF-8?B?"),
            "{text}"
        );
        assert!(!text.contains("\r\nBcc:"), "no header injection: {text}");
        assert!(email_message(
            1,
            "Brand <crm@brand.test>",
            "not an address",
            "s",
            "b",
            "<x>",
            "y"
        )
        .is_err());
    }
}
