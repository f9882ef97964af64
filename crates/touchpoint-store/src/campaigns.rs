//! Campaigns: versioned campaign files (parsed and checked in the core,
//! [`touchpoint_core::campaigns`]), the scheduler tick that decides who gets
//! what, and the report with its lift against the control group.
//!
//! **A run decides, delivery sends.** [`Store::campaigns_run`] finds each
//! campaign's candidates for its trigger, then decides every candidate in a
//! unit of work: a row in `campaign_sends` keyed by (campaign, member,
//! occurrence) with status `queued`, `control` or `skipped` (reason
//! `no_consent`, `capped`, `no_address`), the coupon issued through
//! [`crate::coupons::issue_in`] and the message rendered. The key makes a
//! run twice, a retry or a crash mid-run decide each occurrence once.
//! After commit, [`crate::delivery`] claims each queued send, delivers it and
//! marks it `sent` or `failed`.
//!
//! **Caps** count a member's `queued` and `sent` messages of every campaign
//! in the last D days, in the deciding transaction (on PostgreSQL under an
//! advisory lock on the member, so two schedulers cannot both take the last
//! slot; on SQLite the one writer serialises units of work).
//!
//! **Control groups** are drawn among the *eligible* members (consent, an
//! address, under the cap), so the report compares like with like.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike};
use serde::Serialize;
use touchpoint_core::campaigns::{self, Audience, Campaign, Channel, Lift, MessageFields, Trigger};
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::segments::{parse, Expr};
use touchpoint_core::MemberId;

use crate::campaign_triggers::Candidate;
use crate::db::Val;
use crate::segments::SegmentContext;
use crate::{Store, StoreError, UnitOfWork};

const DAY_MS: i64 = 86_400_000;
/// Candidates decided per unit of work.
const DECIDE_CHUNK: usize = 500;

/// A stored campaign version.
#[derive(Debug, Clone, Serialize)]
pub struct StoredCampaign {
    /// Name.
    pub name: String,
    /// 1, 2, ...
    pub version: i64,
    /// When this version was stored, UTC ms.
    pub created_at: i64,
    /// When the first version was stored, UTC ms (order_placed reads
    /// orders recorded from then on).
    pub first_created_at: i64,
    /// The file as given.
    pub body: String,
    /// Parsed.
    #[serde(skip)]
    pub campaign: Campaign,
}

/// The time and place of a run.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run's time, UTC ms (`campaigns run --now`).
    pub now: i64,
    /// The business time zone (send windows, birthdays, `once` times).
    pub time_zone: chrono_tz::Tz,
}

/// What a run decided for one campaign.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CampaignRun {
    /// The campaign.
    pub campaign: String,
    /// Why nothing was decided (`outside send window 9-21`, `done`), if so.
    pub idle: Option<String>,
    /// Candidates the trigger found.
    pub candidates: u64,
    /// Decided before (a run twice): nothing new.
    pub already_decided: u64,
    /// Queued for delivery.
    pub queued: u64,
    /// Over the frequency cap: waiting for a free slot (new or still).
    pub waiting: u64,
    /// Waiting messages released by this run (queued or control now).
    pub released: u64,
    /// Waiting messages that lapsed after their `expires_after`.
    pub lapsed: u64,
    /// In the control group: recorded, not sent.
    pub control: u64,
    /// Skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// A rendered message for one member, without side effects.
#[derive(Debug, Clone, Serialize)]
pub struct MessagePreview {
    /// The campaign.
    pub campaign: String,
    /// The member, `M-123`.
    pub member_id: String,
    /// The channel.
    pub channel: String,
    /// Where it would go (the e-mail address), if known.
    pub address: Option<String>,
    /// Whether the member consented to this channel and topic.
    pub consent: bool,
    /// Whether the member is in the control group.
    pub control: bool,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// Per campaign: what was decided and delivered, and the conversion of the
/// treated against the control group.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: String,
    /// Its current version.
    pub version: i64,
    /// Waiting for delivery.
    pub queued: u64,
    /// Delivered.
    pub sent: u64,
    /// Failed, after retries.
    pub failed: u64,
    /// Control group members (recorded, not sent).
    pub control: u64,
    /// Over the cap, waiting for a free slot.
    pub waiting: u64,
    /// Waited past `expires_after` and lapsed (reason `cap_wait_expired`).
    pub lapsed: u64,
    /// Skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Days after the decision in which a purchase counts.
    pub conversion_days: u32,
    /// Sent against control: members with a purchase within the window.
    pub conversion: Lift,
}

pub(crate) fn local(ms: i64, tz: &chrono_tz::Tz) -> DateTime<chrono_tz::Tz> {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(tz)
}

fn stored_of(r: crate::RowRef<'_>) -> Result<StoredCampaign, StoreError> {
    let name = r.text(0)?;
    let version = r.i64(1)?;
    let body = r.text(3)?;
    let campaign = Campaign::parse(&body)
        .map_err(|e| StoreError::Corrupt(format!("campaign {name} version {version}: {e}")))?;
    Ok(StoredCampaign {
        name,
        version,
        created_at: r.i64(2)?,
        first_created_at: r.i64(4)?,
        body,
        campaign,
    })
}

const CURRENT: &str = "SELECT c.name, c.version, c.created_at, c.body, \
     (SELECT MIN(f.created_at) FROM campaigns f WHERE f.name = c.name) \
     FROM campaigns c WHERE c.version = (SELECT MAX(v.version) FROM campaigns v WHERE v.name = c.name)";

/// What a send needs from the member.
pub(crate) struct Member {
    name: Option<String>,
    points: i64,
    tier: Option<String>,
}

pub(crate) async fn member_fields(c: &mut crate::Conn<'_>, id: i64) -> Result<Member, StoreError> {
    let name = c
        .fetch_opt(
            "SELECT name FROM members WHERE id = $1",
            &[id.into()],
            |r| r.opt_text(0),
        )
        .await?
        .flatten();
    let (points, tier) = c
        .fetch_opt(
            "SELECT available, tier FROM points_accounts WHERE member_id = $1",
            &[id.into()],
            |r| Ok((r.i64(0)?, r.opt_text(1)?)),
        )
        .await?
        .unwrap_or((0, None));
    Ok(Member { name, points, tier })
}

pub(crate) async fn email_of(
    c: &mut crate::Conn<'_>,
    id: i64,
) -> Result<Option<String>, StoreError> {
    c.fetch_opt(
        "SELECT value FROM identifiers WHERE member_id = $1 AND kind = 'email' AND shared = 0 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
        &[id.into()],
        |r| r.text(0),
    )
    .await
}

/// `s` as a LIKE pattern matching itself (escape character `\`).
fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Where a send of `campaign` goes for a member, or `None` (`no_address`):
/// the member's own (not shared) e-mail address for e-mail and webhook
/// campaigns (a webhook goes without one); the phone (E.164) for SMS; for
/// WeChat `openid:VALUE`, a platform buyer id of the campaign's
/// `openid_channel` (`CHANNEL:VALUE`), else `unionid:VALUE`. The newest
/// identifier wins.
pub(crate) async fn address_of(
    c: &mut crate::Conn<'_>,
    id: i64,
    campaign: &Campaign,
) -> Result<Option<String>, StoreError> {
    let newest = " ORDER BY created_at DESC, id DESC LIMIT 1";
    match campaign.channel {
        Channel::Email | Channel::Webhook => email_of(c, id).await,
        Channel::Sms => {
            c.fetch_opt(
                &format!(
                    "SELECT value FROM identifiers WHERE member_id = $1 AND kind = 'phone' AND shared = 0{newest}"
                ),
                &[id.into()],
                |r| r.text(0),
            )
            .await
        }
        Channel::Wechat => {
            if let Some(ch) = campaign.wechat.as_ref().and_then(|w| w.openid_channel.as_ref()) {
                let prefix = format!("{ch}:");
                let openid = c
                    .fetch_opt(
                        &format!(
                            "SELECT value FROM identifiers WHERE member_id = $1 AND kind = 'platform_user_id' \
                             AND value LIKE $2 ESCAPE '\\'{newest}"
                        ),
                        &[id.into(), format!("{}%", like_literal(&prefix)).into()],
                        |r| r.text(0),
                    )
                    .await?;
                if let Some(v) = openid.and_then(|v| v.strip_prefix(&prefix).map(str::to_string)) {
                    return Ok(Some(format!("openid:{v}")));
                }
            }
            Ok(c.fetch_opt(
                &format!(
                    "SELECT value FROM identifiers WHERE member_id = $1 AND kind = 'wechat_unionid'{newest}"
                ),
                &[id.into()],
                |r| r.text(0),
            )
            .await?
            .map(|v| format!("unionid:{v}")))
        }
    }
}

/// The members [`address_of`] finds an address for, in one query; `None`
/// when the channel needs none (webhook).
pub(crate) async fn members_with_address(
    c: &mut crate::Conn<'_>,
    campaign: &Campaign,
) -> Result<Option<HashSet<i64>>, StoreError> {
    let (sql, args): (&str, Vec<Val>) = match campaign.channel {
        Channel::Webhook => return Ok(None),
        Channel::Email => (
            "SELECT DISTINCT member_id FROM identifiers WHERE kind = 'email' AND shared = 0",
            vec![],
        ),
        Channel::Sms => (
            "SELECT DISTINCT member_id FROM identifiers WHERE kind = 'phone' AND shared = 0",
            vec![],
        ),
        Channel::Wechat => match campaign
            .wechat
            .as_ref()
            .and_then(|w| w.openid_channel.as_ref())
        {
            Some(ch) => (
                "SELECT DISTINCT member_id FROM identifiers WHERE kind = 'wechat_unionid' \
                 OR (kind = 'platform_user_id' AND value LIKE $1 ESCAPE '\\')",
                vec![format!("{}%", like_literal(&format!("{ch}:"))).into()],
            ),
            None => (
                "SELECT DISTINCT member_id FROM identifiers WHERE kind = 'wechat_unionid'",
                vec![],
            ),
        },
    };
    Ok(Some(
        c.fetch(sql, &args, |r| r.i64(0))
            .await?
            .into_iter()
            .collect(),
    ))
}

/// A decided send's rendered message.
pub(crate) struct Rendered {
    pub subject: String,
    pub body: String,
    pub coupon: Option<String>,
    /// The channel's further fields as JSON (WeChat: the template's data).
    pub data: Option<String>,
}

pub(crate) async fn consented(
    c: &mut crate::Conn<'_>,
    id: i64,
    channel: &str,
    topic: &str,
) -> Result<bool, StoreError> {
    Ok(c.fetch_opt(
        "SELECT granted FROM consent WHERE member_id = $1 AND channel = $2 AND topic = $3",
        &[id.into(), channel.into(), topic.into()],
        |r| r.i64(0),
    )
    .await?
        == Some(1))
}

pub(crate) fn fields(member: i64, m: &Member, coupon: &str) -> MessageFields {
    MessageFields {
        name: m.name.clone().unwrap_or_default(),
        member_id: MemberId::from_i64(member).to_string(),
        points: m.points,
        tier: m.tier.clone().unwrap_or_default(),
        coupon: coupon.to_string(),
    }
}

/// This year's (and next year's) birthday for a date of birth; 29 February
/// is the 28th in other years.
pub(crate) fn birthday_in(born: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, born.month(), born.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, born.month(), 28))
}

impl Store {
    /// Store a campaign file as the next version of its name (the file is
    /// checked first: the core's rules, then that its saved segment and
    /// coupon definition exist). The same text as the current version
    /// changes nothing.
    pub async fn campaign_create(&self, body: &str) -> Result<StoredCampaign, StoreError> {
        let campaign =
            Campaign::parse(body).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        if let Audience::Segment(s) = &campaign.audience {
            if self.segment(s).await?.is_none() {
                return Err(StoreError::InvalidInput(format!(
                    "audience.segment: no saved segment named {s:?}; create it with `touchpoint segments create {s} EXPR` or use expression = \"...\""
                )));
            }
        }
        let mut uow = self.unit_of_work().await?;
        if let Some(id) = campaign.coupon_definition {
            let found = uow
                .conn()
                .fetch_opt(
                    "SELECT id FROM coupon_definitions WHERE id = $1",
                    &[id.into()],
                    |r| r.i64(0),
                )
                .await?;
            if found.is_none() {
                uow.rollback().await?;
                return Err(StoreError::InvalidInput(format!(
                    "coupon_definition: no coupon definition {id} (touchpoint coupons list)"
                )));
            }
        }
        let current = uow
            .conn()
            .fetch_opt(
                &format!("{CURRENT} AND c.name = $1"),
                &[campaign.name.as_str().into()],
                stored_of,
            )
            .await?;
        if let Some(c) = current.as_ref().filter(|c| c.body == body) {
            let c = c.clone();
            uow.rollback().await?;
            return Ok(c);
        }
        let version = current.as_ref().map_or(1, |c| c.version + 1);
        let now = uow.now();
        uow.conn()
            .exec(
                "INSERT INTO campaigns (name, version, body, created_at) VALUES ($1, $2, $3, $4)",
                &[
                    campaign.name.as_str().into(),
                    version.into(),
                    body.into(),
                    now.into(),
                ],
            )
            .await?;
        uow.commit().await?;
        Ok(StoredCampaign {
            name: campaign.name.clone(),
            version,
            created_at: now,
            first_created_at: current.map_or(now, |c| c.first_created_at),
            body: body.to_string(),
            campaign,
        })
    }

    /// The current version of every campaign, by name.
    pub async fn campaigns(&self) -> Result<Vec<StoredCampaign>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(&format!("{CURRENT} ORDER BY c.name"), &[], stored_of)
            .await
    }

    /// The current version of one campaign.
    pub async fn campaign(&self, name: &str) -> Result<Option<StoredCampaign>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                &format!("{CURRENT} AND c.name = $1"),
                &[name.into()],
                stored_of,
            )
            .await
    }

    async fn campaign_or_not_found(&self, name: &str) -> Result<StoredCampaign, StoreError> {
        self.campaign(name).await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no campaign named {name:?} (touchpoint campaigns list)"
            ))
        })
    }

    /// The message a member would get, rendered, with whether they consented
    /// and whether they are in the control group. Nothing is written: the
    /// coupon shows as `<coupon code>` (a real one is issued at send).
    pub async fn campaign_preview(
        &self,
        name: &str,
        member: MemberId,
    ) -> Result<MessagePreview, StoreError> {
        let sc = self.campaign_or_not_found(name).await?;
        let c = &sc.campaign;
        let mut h = self.acquire().await?;
        let mut conn = h.conn();
        let id = crate::profiles::current_member(&mut conn, member)
            .await?
            .get();
        let m = member_fields(&mut conn, id).await?;
        let address = address_of(&mut conn, id, c).await?;
        let consent = consented(&mut conn, id, c.channel.name(), &c.topic).await?;
        let coupon = if c.coupon_definition.is_some() {
            "<coupon code>"
        } else {
            ""
        };
        let f = fields(id, &m, coupon);
        // The trigger's fields are known only at a run: shown as <field>.
        let kind = serde_json::to_value(&c.trigger)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_string))
            .unwrap_or_default();
        let extra: Vec<(&str, String)> = campaigns::trigger_fields(&kind)
            .iter()
            .map(|k| (*k, format!("<{k}>")))
            .collect();
        Ok(MessagePreview {
            campaign: sc.name.clone(),
            member_id: MemberId::from_i64(id).to_string(),
            channel: c.channel.name().to_string(),
            address,
            consent,
            control: c.is_control(id),
            subject: campaigns::render_with(&c.subject, &f, &extra),
            body: campaigns::render_with(&c.body, &f, &extra),
        })
    }

    pub(crate) async fn audience(
        &self,
        c: &Campaign,
        cx: &RunContext,
    ) -> Result<Vec<MemberId>, StoreError> {
        let expr: Expr = match &c.audience {
            Audience::Expression(_, e) => e.clone(),
            Audience::Segment(s) => {
                let saved = self.segment(s).await?.ok_or_else(|| {
                    StoreError::InvalidInput(format!(
                        "campaign {}: its audience segment {s:?} no longer exists",
                        c.name
                    ))
                })?;
                parse(&saved.expression)
                    .map_err(|e| StoreError::Corrupt(format!("saved segment {s}: {e}")))?
            }
        };
        let seg = SegmentContext {
            as_of: Some(local(cx.now, &cx.time_zone).date_naive()),
            ..SegmentContext::new(cx.time_zone)
        };
        let t = std::time::Instant::now();
        let r = self.segment_members(&expr, &seg).await;
        if std::env::var_os("TOUCHPOINT_PLAN_TIMINGS").is_some() {
            eprintln!("    audience: {:.3} s", t.elapsed().as_secs_f64());
        }
        r
    }

    /// The scheduler tick (`touchpoint campaigns run`, what a cron runs):
    /// every campaign's trigger is evaluated as of `cx.now` and each
    /// candidate decided once. Delivery is separate
    /// ([`Store::campaigns_deliver`]), after these units of work commit.
    pub async fn campaigns_run(&self, cx: &RunContext) -> Result<Vec<CampaignRun>, StoreError> {
        let mut out = Vec::new();
        for sc in crate::campaign_triggers::by_priority(self.campaigns().await?) {
            out.push(self.campaign_run(&sc, cx).await?);
        }
        Ok(out)
    }

    async fn campaign_run(
        &self,
        sc: &StoredCampaign,
        cx: &RunContext,
    ) -> Result<CampaignRun, StoreError> {
        let c = &sc.campaign;
        let mut run = CampaignRun {
            campaign: sc.name.clone(),
            ..CampaignRun::default()
        };
        // Orders are read from the outbox whatever the hour, so none is
        // missed; they wait in campaign_pending for their delay and window.
        if let Trigger::OrderPlaced {
            delay_minutes,
            min_net,
        } = c.trigger
        {
            self.collect_orders(sc, delay_minutes, min_net).await?;
        }
        let now_local = local(cx.now, &cx.time_zone);
        if !c.in_window(now_local.hour()) {
            run.idle = Some(format!(
                "outside its send window ({}:00-{}:00 local)",
                c.window.0, c.window.1
            ));
            return Ok(run);
        }
        // Messages that waited for a cap slot go before new ones.
        self.retry_waiting(sc, cx, &mut run).await?;
        let (candidates, after) = match self.candidates(sc, cx, false).await? {
            Ok(x) => x,
            Err(idle) => {
                run.idle = Some(idle);
                return Ok(run);
            }
        };
        run.candidates = candidates.len() as u64;
        let chunks: Vec<&[Candidate]> = if candidates.is_empty() {
            vec![&[]]
        } else {
            candidates.chunks(DECIDE_CHUNK).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut uow = self.unit_of_work().await?;
            for cand in chunk {
                self.decide(&mut uow, sc, cx, cand, &mut run).await?;
            }
            if i == last {
                uow.conn()
                    .exec(
                        "INSERT INTO campaign_state (name, last_run_at) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at",
                        &[sc.name.as_str().into(), cx.now.into()],
                    )
                    .await?;
                for (sql, vals) in &after {
                    uow.conn().exec(sql, vals).await?;
                }
            }
            uow.commit().await?;
        }
        Ok(run)
    }

    /// A campaign's candidates as of `cx.now` and the writes that move its
    /// trigger state once they are decided, or why it has none (a `once`
    /// campaign done or not yet due). With `dry`, nothing is read that a
    /// run would write first: orders still in the outbox are read from it.
    pub(crate) async fn candidates(
        &self,
        sc: &StoredCampaign,
        cx: &RunContext,
        dry: bool,
    ) -> Result<Result<(Vec<Candidate>, Vec<(String, Vec<Val>)>), String>, StoreError> {
        let c = &sc.campaign;
        let today = local(cx.now, &cx.time_zone).date_naive();
        let state_done = {
            let mut h = self.acquire().await?;
            h.conn()
                .fetch_opt(
                    "SELECT done_at FROM campaign_state WHERE name = $1",
                    &[sc.name.as_str().into()],
                    |r| r.opt_i64(0),
                )
                .await?
                .flatten()
        };
        let mut after: Vec<(String, Vec<Val>)> = Vec::new();
        let simple = |v: Vec<(i64, String)>, why: &str| -> Vec<Candidate> {
            v.into_iter()
                .map(|(member, occurrence)| Candidate::new(member, occurrence, why))
                .collect()
        };
        let candidates: Vec<Candidate> = match &c.trigger {
            Trigger::SegmentEntry => {
                let now_in = self.audience(c, cx).await?;
                let mut h = self.acquire().await?;
                let before: HashSet<i64> = h
                    .conn()
                    .fetch(
                        "SELECT member_id FROM campaign_audience WHERE name = $1",
                        &[sc.name.as_str().into()],
                        |r| r.i64(0),
                    )
                    .await?
                    .into_iter()
                    .collect();
                drop(h);
                let occ = format!("entry:{today}");
                after.push((
                    "DELETE FROM campaign_audience WHERE name = $1".into(),
                    vec![sc.name.as_str().into()],
                ));
                for m in &now_in {
                    after.push((
                        "INSERT INTO campaign_audience (name, member_id) VALUES ($1, $2)".into(),
                        vec![sc.name.as_str().into(), m.get().into()],
                    ));
                }
                simple(
                    now_in
                        .iter()
                        .filter(|m| !before.contains(&m.get()))
                        .map(|m| (m.get(), occ.clone()))
                        .collect(),
                    "entered the audience",
                )
            }
            Trigger::Birthday { days_before } => {
                let now_in: HashSet<i64> = self
                    .audience(c, cx)
                    .await?
                    .into_iter()
                    .map(|m| m.get())
                    .collect();
                let mut h = self.acquire().await?;
                let born = h
                    .conn()
                    .fetch(
                        "SELECT id, birthday FROM members WHERE birthday IS NOT NULL AND merged_into IS NULL ORDER BY id",
                        &[],
                        |r| Ok((r.i64(0)?, r.text(1)?)),
                    )
                    .await?;
                let mut v = Vec::new();
                for (id, b) in born {
                    let Ok(b) = NaiveDate::parse_from_str(&b, "%Y-%m-%d") else {
                        continue;
                    };
                    if !now_in.contains(&id) {
                        continue;
                    }
                    for y in [today.year(), today.year() + 1] {
                        if let Some(d) = birthday_in(b, y) {
                            let from = d - chrono::Days::new(u64::from(*days_before));
                            if from <= today && today <= d {
                                let mut cand = Candidate::new(
                                    id,
                                    format!("birthday:{y}"),
                                    &format!("birthday on {d}"),
                                );
                                cand.fields
                                    .push(("birthday", d.format("%m-%d").to_string()));
                                v.push(cand);
                            }
                        }
                    }
                }
                v
            }
            Trigger::OrderPlaced {
                delay_minutes,
                min_net,
            } => {
                let now_in: HashSet<i64> = self
                    .audience(c, cx)
                    .await?
                    .into_iter()
                    .map(|m| m.get())
                    .collect();
                let mut h = self.acquire().await?;
                let mut due = h
                    .conn()
                    .fetch(
                        "SELECT occurrence, member_id FROM campaign_pending WHERE name = $1 AND due_at <= $2 ORDER BY due_at, occurrence",
                        &[sc.name.as_str().into(), cx.now.into()],
                        |r| Ok((r.text(0)?, r.i64(1)?)),
                    )
                    .await?;
                drop(h);
                if dry {
                    for (occ, m, due_at) in self
                        .uncollected_orders(sc, *delay_minutes, *min_net)
                        .await?
                    {
                        if due_at <= cx.now && !due.iter().any(|(o, _)| *o == occ) {
                            due.push((occ, m));
                        }
                    }
                }
                let mut h = self.acquire().await?;
                let mut v = Vec::new();
                for (occ, m) in due {
                    let id = crate::profiles::current_member(&mut h.conn(), MemberId::from_i64(m))
                        .await
                        .map(|x| x.get())
                        .unwrap_or(m);
                    after.push((
                        "DELETE FROM campaign_pending WHERE name = $1 AND occurrence = $2".into(),
                        vec![sc.name.as_str().into(), occ.as_str().into()],
                    ));
                    if now_in.contains(&id) {
                        let mut cand = Candidate::new(id, occ.clone(), "");
                        crate::campaign_triggers::order_details(&mut h.conn(), &mut cand).await?;
                        v.push(cand);
                    }
                }
                v
            }
            Trigger::Once { at } => {
                let at_ms = cx
                    .time_zone
                    .from_local_datetime(at)
                    .earliest()
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(i64::MAX);
                if state_done.is_some() {
                    return Ok(Err("done (a one-off campaign that has run)".into()));
                }
                if cx.now < at_ms {
                    return Ok(Err(format!("scheduled for {at} local")));
                }
                after.push((
                    "UPDATE campaign_state SET done_at = $2 WHERE name = $1".into(),
                    vec![sc.name.as_str().into(), cx.now.into()],
                ));
                simple(
                    self.audience(c, cx)
                        .await?
                        .into_iter()
                        .map(|m| (m.get(), "once".to_string()))
                        .collect(),
                    "one-off broadcast",
                )
            }
            Trigger::Holiday { .. }
            | Trigger::WinBack { .. }
            | Trigger::PointsExpiring { .. }
            | Trigger::TierUpgrade { .. } => self.trigger_candidates(sc, cx, today).await?,
        };
        Ok(Ok((candidates, after)))
    }

    /// Read new orders of the outbox into `campaign_pending` (idempotent:
    /// keyed by order), then move the campaign's cursor.
    async fn collect_orders(
        &self,
        sc: &StoredCampaign,
        delay: i64,
        min_net: i64,
    ) -> Result<(), StoreError> {
        let consumer = format!("campaign:{}", sc.name);
        loop {
            let events = self.outbox_poll(&consumer, 1_000).await?;
            let Some(last) = events.last().cloned() else {
                return Ok(());
            };
            let mut uow = self.unit_of_work().await?;
            for e in &events {
                if e.at < sc.first_created_at {
                    continue;
                }
                if let DomainEvent::OrderPlaced {
                    channel,
                    order_id,
                    member_id,
                    net_amount,
                    ..
                } = &e.event
                {
                    if *net_amount < min_net {
                        continue;
                    }
                    uow.conn()
                        .exec(
                            "INSERT INTO campaign_pending (name, occurrence, member_id, due_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (name, occurrence) DO NOTHING",
                            &[
                                sc.name.as_str().into(),
                                format!("order:{channel}:{order_id}").into(),
                                (*member_id).into(),
                                (e.at + delay * 60_000).into(),
                            ],
                        )
                        .await?;
                }
            }
            uow.commit().await?;
            self.outbox_ack(&consumer, &last).await?;
        }
    }

    async fn decide(
        &self,
        uow: &mut UnitOfWork,
        sc: &StoredCampaign,
        cx: &RunContext,
        cand: &Candidate,
        run: &mut CampaignRun,
    ) -> Result<(), StoreError> {
        let c = &sc.campaign;
        let member = cand.member;
        let occ = cand.occurrence.as_str();
        if self.backend() == crate::Backend::Postgres {
            // Caps are per member across campaigns: one decider per member.
            uow.conn()
                .exec("SELECT pg_advisory_xact_lock($1)", &[member.into()])
                .await?;
        }
        let exists = uow
            .conn()
            .fetch_opt(
                "SELECT id FROM campaign_sends WHERE campaign = $1 AND member_id = $2 AND occurrence = $3",
                &[sc.name.as_str().into(), member.into(), occ.into()],
                |r| r.i64(0),
            )
            .await?;
        if exists.is_some() {
            run.already_decided += 1;
            return Ok(());
        }
        let mut conn = uow.conn();
        let address = address_of(&mut conn, member, c).await?;
        let consent = consented(&mut conn, member, c.channel.name(), &c.topic).await?;
        let has_address = c.channel == campaigns::Channel::Webhook || address.is_some();
        let under_cap =
            c.transactional || crate::campaign_triggers::cap_fits(&mut conn, c, member, cx).await?;
        let (status, reason) = campaigns::decide(
            c.transactional,
            consent,
            has_address,
            under_cap,
            c.is_control(member),
        );
        let (subject, body, coupon, data) = if status == "queued" {
            let r = self.render_send(uow, sc, member, cand).await?;
            (Some(r.subject), Some(r.body), r.coupon, r.data)
        } else {
            (None, None, None, None)
        };
        let (expires_at, fields_json) = if status == "waiting" {
            (
                Some(cx.now + c.expires_after_minutes * 60_000),
                Some(crate::campaign_triggers::fields_json(cand)),
            )
        } else {
            (None, None)
        };
        let inserted = uow
            .conn()
            .exec(
                "INSERT INTO campaign_sends (campaign, version, member_id, occurrence, channel, status, reason, \
                 address, subject, body, coupon_code, decided_at, expires_at, fields, transactional, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (campaign, member_id, occurrence) DO NOTHING",
                &[
                    sc.name.as_str().into(),
                    sc.version.into(),
                    member.into(),
                    occ.into(),
                    c.channel.name().into(),
                    status.into(),
                    reason.map(str::to_string).into(),
                    address.into(),
                    subject.into(),
                    body.into(),
                    coupon.into(),
                    cx.now.into(),
                    expires_at.into(),
                    fields_json.into(),
                    i64::from(c.transactional).into(),
                    data.into(),
                ],
            )
            .await?;
        if inserted == 0 {
            run.already_decided += 1;
            return Ok(());
        }
        match (status, reason) {
            ("queued", _) => run.queued += 1,
            ("control", _) => run.control += 1,
            ("waiting", _) => run.waiting += 1,
            (_, Some(r)) => *run.skipped.entry(r.to_string()).or_default() += 1,
            _ => {}
        }
        Ok(())
    }

    /// Issue the send's coupon (the first `coupon_by_category` rule matching
    /// the order's categories, else `coupon_definition`) and render the
    /// message (and a WeChat template's data) with the trigger's fields.
    pub(crate) async fn render_send(
        &self,
        uow: &mut UnitOfWork,
        sc: &StoredCampaign,
        member: i64,
        cand: &Candidate,
    ) -> Result<Rendered, StoreError> {
        let c = &sc.campaign;
        let occ = cand.occurrence.as_str();
        let def = crate::campaign_triggers::coupon_for(c, &cand.categories);
        let coupon = match def {
            Some(def) => Some(
                crate::coupons::issue_in(
                    uow,
                    def,
                    member,
                    &format!("campaign {}", sc.name),
                    &format!("campaign:{}:{member}:{occ}", sc.name),
                )
                .await?
                .code,
            ),
            None => None,
        };
        let m = member_fields(&mut uow.conn(), member).await?;
        let f = fields(member, &m, coupon.as_deref().unwrap_or(""));
        let extra: Vec<(&str, String)> = cand.fields.iter().map(|(k, v)| (*k, v.clone())).collect();
        let data = c.wechat.as_ref().map(|w| {
            let m: serde_json::Map<String, serde_json::Value> = w
                .data
                .iter()
                .map(|(k, t)| (k.clone(), campaigns::render_with(t, &f, &extra).into()))
                .collect();
            serde_json::Value::Object(m).to_string()
        });
        Ok(Rendered {
            subject: campaigns::render_with(&c.subject, &f, &extra),
            body: campaigns::render_with(&c.body, &f, &extra),
            coupon,
            data,
        })
    }

    /// A campaign's report: sends by status and skip reason, and the share
    /// of sent and of control members with a purchase within
    /// `conversion_days` (default: the campaign's) after the decision,
    /// with the lift and its 95% interval.
    pub async fn campaign_report(
        &self,
        name: &str,
        conversion_days: Option<u32>,
    ) -> Result<CampaignReport, StoreError> {
        let sc = self.campaign_or_not_found(name).await?;
        let days = conversion_days.unwrap_or(sc.campaign.conversion_days);
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let counts = c
            .fetch(
                "SELECT status, COALESCE(reason, ''), CAST(COUNT(*) AS BIGINT) FROM campaign_sends \
                 WHERE campaign = $1 GROUP BY status, COALESCE(reason, '')",
                &[name.into()],
                |r| Ok((r.text(0)?, r.text(1)?, r.i64(2)? as u64)),
            )
            .await?;
        let mut report = CampaignReport {
            campaign: sc.name.clone(),
            version: sc.version,
            queued: 0,
            sent: 0,
            failed: 0,
            control: 0,
            waiting: 0,
            lapsed: 0,
            skipped: BTreeMap::new(),
            conversion_days: days,
            conversion: campaigns::lift(0, 0, 0, 0),
        };
        for (status, reason, n) in counts {
            match status.as_str() {
                "queued" => report.queued += n,
                "sent" => report.sent += n,
                "failed" => report.failed += n,
                "control" => report.control += n,
                "waiting" => report.waiting += n,
                "lapsed" => report.lapsed += n,
                _ => *report.skipped.entry(reason).or_default() += n,
            }
        }
        let conv: HashMap<String, (u64, u64)> = c
            .fetch(
                "SELECT s.status, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN EXISTS (\
                   SELECT 1 FROM order_facts f WHERE f.member_id = s.member_id AND f.purchase = 1 \
                   AND f.ordered_at > s.decided_at AND f.ordered_at <= s.decided_at + $2) THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM campaign_sends s WHERE s.campaign = $1 AND s.status IN ('sent', 'control') GROUP BY s.status",
                &[name.into(), (i64::from(days) * DAY_MS).into()],
                |r| Ok((r.text(0)?, (r.i64(1)? as u64, r.i64(2)? as u64))),
            )
            .await?
            .into_iter()
            .collect();
        let (nt, xt) = conv.get("sent").copied().unwrap_or_default();
        let (nc, xc) = conv.get("control").copied().unwrap_or_default();
        report.conversion = campaigns::lift(nt, xt, nc, xc);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_day_birthdays_fall_on_the_28th() {
        let born = NaiveDate::from_ymd_opt(2000, 2, 29).unwrap();
        assert_eq!(
            birthday_in(born, 2025),
            NaiveDate::from_ymd_opt(2025, 2, 28)
        );
        assert_eq!(
            birthday_in(born, 2028),
            NaiveDate::from_ymd_opt(2028, 2, 29)
        );
    }
}
