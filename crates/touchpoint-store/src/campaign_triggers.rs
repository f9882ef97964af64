//! Campaign triggers beyond the first four (holiday, win-back, points
//! expiring, tier upgrade), frequency caps per local day and week with
//! messages that wait for a free slot in priority order, and the dry run
//! (`touchpoint campaigns run --dry-run`): who would get what and why,
//! with nothing written. See docs/campaigns.md.
//!
//! **Waiting.** A marketing message over its cap is recorded `waiting`
//! (reason `capped`) with `expires_at` = decided + `expires_after`. Every
//! run, before a campaign's new candidates, its waiting messages are tried
//! again (oldest first) and campaigns go in priority order (higher first),
//! so a free slot goes to the highest priority. A waiting message past
//! `expires_at` becomes `lapsed`, reason `cap_wait_expired`.
//!
//! **The dry run** computes the same decisions as a run from bulk reads
//! (consent, addresses, the sends that fill caps) with the cap slots a run
//! would take reserved in memory, so it scales to a million members; it
//! opens no unit of work.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{NaiveDate, TimeZone};
use serde::Serialize;
use touchpoint_core::campaigns::{self, Campaign, Trigger};
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::MemberId;

use crate::campaigns::{local, CampaignRun, RunContext, StoredCampaign};
use crate::{Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// With `TOUCHPOINT_PLAN_TIMINGS=1`, print how long each stage of a dry run
/// took (to standard error), for `touchpoint bench campaigns`.
fn stage(t: &mut std::time::Instant, what: &str) {
    if std::env::var_os("TOUCHPOINT_PLAN_TIMINGS").is_some() {
        eprintln!("    {what}: {:.3} s", t.elapsed().as_secs_f64());
    }
    *t = std::time::Instant::now();
}

/// One member the trigger found, with its occurrence (part of the send's
/// unique key), the trigger's template fields and why it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The member.
    pub member: i64,
    /// `birthday:2025`, `win_back:2025-08-01`, ...
    pub occurrence: String,
    /// The trigger's template fields.
    pub fields: Vec<(&'static str, String)>,
    /// The order's product categories (order_placed), for coupon_by_category.
    pub categories: Vec<String>,
    /// Why: `birthday on 2025-12-03`, `last purchase 2025-08-01, 122 days ago`.
    pub why: String,
}

impl Candidate {
    /// A candidate without fields.
    pub fn new(member: i64, occurrence: String, why: &str) -> Candidate {
        Candidate {
            member,
            occurrence,
            fields: Vec::new(),
            categories: Vec::new(),
            why: why.to_string(),
        }
    }
}

/// Campaigns in the order a run decides them: priority, higher first, then
/// name.
pub fn by_priority(mut v: Vec<StoredCampaign>) -> Vec<StoredCampaign> {
    v.sort_by(|a, b| {
        b.campaign
            .priority
            .cmp(&a.campaign.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

/// The coupon definition of a send: the first `coupon_by_category` rule
/// whose category is among the order's, else `coupon_definition`.
pub fn coupon_for(c: &Campaign, categories: &[String]) -> Option<i64> {
    c.coupon_by_category
        .iter()
        .find(|(cat, _)| categories.iter().any(|x| x == cat))
        .map(|(_, d)| *d)
        .or(c.coupon_definition)
}

/// The fields as JSON, kept while a message waits.
pub fn fields_json(c: &Candidate) -> String {
    let m: BTreeMap<&str, &str> = c.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serde_json::json!({ "fields": m, "categories": c.categories, "why": c.why }).to_string()
}

fn from_json(member: i64, occurrence: String, s: Option<&str>) -> Candidate {
    let mut c = Candidate::new(member, occurrence, "");
    let Some(v) = s.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return c;
    };
    let kinds = [
        "birthday",
        "holiday",
        "holiday_date",
        "order_id",
        "order_net",
        "days_since_order",
        "last_order_date",
        "expiring_points",
        "expires_on",
        "previous_tier",
    ];
    if let Some(f) = v["fields"].as_object() {
        for k in kinds {
            if let Some(x) = f.get(k).and_then(|x| x.as_str()) {
                c.fields.push((k, x.to_string()));
            }
        }
    }
    if let Some(a) = v["categories"].as_array() {
        c.categories = a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
    }
    c.why = v["why"].as_str().unwrap_or("").to_string();
    c
}

/// Money in minor units as currency units with two decimals.
fn units(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// Fill an order candidate's fields (`order_id`, `order_net`) and
/// categories from its occurrence `order:CHANNEL:ORDER`.
pub(crate) async fn order_details(
    c: &mut crate::Conn<'_>,
    cand: &mut Candidate,
) -> Result<(), StoreError> {
    let Some((channel, order)) = cand
        .occurrence
        .strip_prefix("order:")
        .and_then(|r| r.split_once(':'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
    else {
        return Ok(());
    };
    let net = c
        .fetch_opt(
            "SELECT gross_amount - refunded_amount FROM orders WHERE channel = $1 AND order_id = $2",
            &[channel.as_str().into(), order.as_str().into()],
            |r| r.i64(0),
        )
        .await?
        .unwrap_or(0);
    cand.categories = c
        .fetch(
            "SELECT DISTINCT p.category FROM order_lines l JOIN products p ON p.sku = l.sku \
             WHERE l.channel = $1 AND l.order_id = $2 AND p.category IS NOT NULL ORDER BY p.category",
            &[channel.as_str().into(), order.as_str().into()],
            |r| r.text(0),
        )
        .await?;
    cand.fields.push(("order_id", order.clone()));
    cand.fields.push(("order_net", units(net)));
    cand.why = format!("order {channel}:{order}, net {}", units(net));
    Ok(())
}

/// Whether a marketing message of `c` fits the member's caps at `cx.now`:
/// for each window, the member's queued and sent marketing messages (of
/// every campaign; per channel for the calendar caps) counted from its
/// start are fewer than its limit. Run in the deciding transaction (on
/// PostgreSQL under the member's advisory lock), so a slot is checked and
/// taken atomically.
pub(crate) async fn cap_fits(
    conn: &mut crate::Conn<'_>,
    c: &Campaign,
    member: i64,
    cx: &RunContext,
) -> Result<bool, StoreError> {
    for (start, limit, per_channel) in c.cap.windows(cx.now, cx.time_zone) {
        let n = if per_channel {
            conn.fetch_opt(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE member_id = $1 \
                 AND status IN ('queued', 'sent') AND transactional = 0 AND decided_at >= $2 AND channel = $3",
                &[member.into(), start.into(), c.channel.name().into()],
                |r| r.i64(0),
            )
            .await?
        } else {
            conn.fetch_opt(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE member_id = $1 \
                 AND status IN ('queued', 'sent') AND transactional = 0 AND decided_at > $2",
                &[member.into(), start.into()],
                |r| r.i64(0),
            )
            .await?
        }
        .unwrap_or(0);
        if n >= i64::from(limit) {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Store {
    /// Candidates of the holiday, win-back, points-expiring and tier-upgrade
    /// triggers (read only).
    pub(crate) async fn trigger_candidates(
        &self,
        sc: &StoredCampaign,
        cx: &RunContext,
        today: NaiveDate,
    ) -> Result<Vec<Candidate>, StoreError> {
        let c = &sc.campaign;
        let audience: HashSet<i64> = self
            .audience(c, cx)
            .await?
            .into_iter()
            .map(|m| m.get())
            .collect();
        let mut sorted: Vec<i64> = audience.iter().copied().collect();
        sorted.sort_unstable();
        // Win-back reads each member's last purchase from the analytics
        // model in memory (one pass over the facts, no GROUP BY over them).
        let last_purchases = match &c.trigger {
            Trigger::WinBack { .. } => {
                let end = cx
                    .time_zone
                    .from_local_datetime(
                        &(today + chrono::Days::new(1))
                            .and_hms_opt(0, 0, 0)
                            .unwrap_or_default(),
                    )
                    .earliest()
                    .map_or(cx.now, |t| t.timestamp_millis());
                let (facts, _) = self.order_facts().await?;
                let mut last: Vec<(i64, i64)> = Vec::new();
                for f in facts
                    .facts
                    .iter()
                    .filter(|f| f.purchase && f.ordered_at < end)
                {
                    match last.last_mut() {
                        Some((m, at)) if *m == f.member_id => *at = (*at).max(f.ordered_at),
                        _ => last.push((f.member_id, f.ordered_at)),
                    }
                }
                last
            }
            _ => Vec::new(),
        };
        let mut h = self.acquire().await?;
        let mut conn = h.conn();
        let mut out = Vec::new();
        match &c.trigger {
            Trigger::Holiday {
                holidays,
                days_before,
                calendar,
            } => {
                for (name, date) in calendar.upcoming(holidays, today, *days_before) {
                    for m in &sorted {
                        let mut cand = Candidate::new(
                            *m,
                            format!("holiday:{name}:{date}"),
                            &format!("holiday {name} on {date}"),
                        );
                        cand.fields.push(("holiday", name.clone()));
                        cand.fields.push(("holiday_date", date.to_string()));
                        out.push(cand);
                    }
                }
            }
            Trigger::WinBack { days } => {
                for &(m, at) in &last_purchases {
                    if !audience.contains(&m) {
                        continue;
                    }
                    let day = local(at, &cx.time_zone).date_naive();
                    let quiet = (today - day).num_days();
                    if quiet >= i64::from(*days) {
                        let mut cand = Candidate::new(
                            m,
                            format!("win_back:{day}"),
                            &format!("last purchase {day}, {quiet} days ago"),
                        );
                        cand.fields.push(("days_since_order", quiet.to_string()));
                        cand.fields.push(("last_order_date", day.to_string()));
                        out.push(cand);
                    }
                }
            }
            Trigger::PointsExpiring { days, min_points } => {
                let until = cx.now + i64::from(*days) * DAY_MS;
                let lots = conn
                    .fetch(
                        "SELECT member_id, id, remaining, expires_at FROM points_lots \
                         WHERE matured = 1 AND expired = 0 AND remaining > 0 AND expires_at IS NOT NULL \
                         AND expires_at > $1 AND expires_at <= $2 ORDER BY member_id, expires_at, id",
                        &[cx.now.into(), until.into()],
                        |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?)),
                    )
                    .await?;
                let mut i = 0;
                while i < lots.len() {
                    let (m, first_lot, _, first_at) = lots[i];
                    let mut total = 0;
                    while i < lots.len() && lots[i].0 == m {
                        total += lots[i].2;
                        i += 1;
                    }
                    if total < *min_points || !audience.contains(&m) {
                        continue;
                    }
                    let on = local(first_at, &cx.time_zone).date_naive();
                    let mut cand = Candidate::new(
                        m,
                        format!("points_expiring:{first_lot}"),
                        &format!("{total} points expiring from {on}"),
                    );
                    cand.fields.push(("expiring_points", total.to_string()));
                    cand.fields.push(("expires_on", on.to_string()));
                    out.push(cand);
                }
            }
            Trigger::TierUpgrade { to } => {
                let program = crate::loyalty::current_program(&mut conn).await?;
                let Some(p) = program else {
                    return Ok(out);
                };
                let rows = conn
                    .fetch(
                        "SELECT id, member_id, from_tier, to_tier FROM points_tier_history \
                         WHERE at >= $1 AND at <= $2 AND to_tier IS NOT NULL ORDER BY id",
                        &[sc.first_created_at.into(), cx.now.into()],
                        |r| Ok((r.i64(0)?, r.i64(1)?, r.opt_text(2)?, r.text(3)?)),
                    )
                    .await?;
                for (id, m, from, to_tier) in rows {
                    let rank = |t: &Option<String>| -> i64 {
                        t.as_deref()
                            .and_then(|n| p.program.tier_rank(n))
                            .map_or(-1, |r| r as i64)
                    };
                    let higher = rank(&Some(to_tier.clone())) > rank(&from);
                    if !higher || (!to.is_empty() && !to.contains(&to_tier)) {
                        continue;
                    }
                    let id_now = crate::profiles::current_member(&mut conn, MemberId::from_i64(m))
                        .await
                        .map(|x| x.get())
                        .unwrap_or(m);
                    if !audience.contains(&id_now) {
                        continue;
                    }
                    let prev = from.clone().unwrap_or_default();
                    let mut cand = Candidate::new(
                        id_now,
                        format!("tier_upgrade:{id}"),
                        &format!(
                            "tier {} -> {to_tier}",
                            if prev.is_empty() { "none" } else { &prev }
                        ),
                    );
                    cand.fields.push(("previous_tier", prev));
                    out.push(cand);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Orders still in the outbox for an order_placed campaign (read only):
    /// (occurrence, member, due).
    pub(crate) async fn uncollected_orders(
        &self,
        sc: &StoredCampaign,
        delay: i64,
        min_net: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let events = self
            .outbox_poll(&format!("campaign:{}", sc.name), 10_000)
            .await?;
        let mut out = Vec::new();
        for e in events {
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
                if *net_amount >= min_net {
                    out.push((
                        format!("order:{channel}:{order_id}"),
                        *member_id,
                        e.at + delay * 60_000,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Try a campaign's waiting messages again, oldest first: lapsed when
    /// past `expires_at`; skipped when consent was withdrawn; else, when the
    /// cap has room now, control or queued (coupon issued, rendered).
    pub(crate) async fn retry_waiting(
        &self,
        sc: &StoredCampaign,
        cx: &RunContext,
        run: &mut CampaignRun,
    ) -> Result<(), StoreError> {
        let c = &sc.campaign;
        let rows = {
            let mut h = self.acquire().await?;
            h.conn()
                .fetch(
                    "SELECT id, member_id, occurrence, expires_at, fields FROM campaign_sends \
                     WHERE campaign = $1 AND status = 'waiting' ORDER BY decided_at, id",
                    &[sc.name.as_str().into()],
                    |r| {
                        Ok((
                            r.i64(0)?,
                            r.i64(1)?,
                            r.text(2)?,
                            r.opt_i64(3)?,
                            r.opt_text(4)?,
                        ))
                    },
                )
                .await?
        };
        for (id, member, occ, expires_at, fields) in rows {
            let mut uow = self.unit_of_work().await?;
            if self.backend() == crate::Backend::Postgres {
                uow.conn()
                    .exec("SELECT pg_advisory_xact_lock($1)", &[member.into()])
                    .await?;
            }
            let cand = from_json(member, occ, fields.as_deref());
            let mut conn = uow.conn();
            let set = if expires_at.is_some_and(|e| cx.now >= e) {
                run.lapsed += 1;
                ("lapsed", Some("cap_wait_expired"), None, None, None, None)
            } else if !crate::campaigns::consented(&mut conn, member, c.channel.name(), &c.topic)
                .await?
            {
                *run.skipped.entry("no_consent".into()).or_default() += 1;
                ("skipped", Some("no_consent"), None, None, None, None)
            } else if !cap_fits(&mut conn, c, member, cx).await? {
                run.waiting += 1;
                uow.rollback().await?;
                continue;
            } else if c.is_control(member) {
                run.released += 1;
                run.control += 1;
                ("control", None, None, None, None, None)
            } else {
                let r = self.render_send(&mut uow, sc, member, &cand).await?;
                run.released += 1;
                run.queued += 1;
                (
                    "queued",
                    None,
                    Some(r.subject),
                    Some(r.body),
                    r.coupon,
                    r.data,
                )
            };
            uow.conn()
                .exec(
                    "UPDATE campaign_sends SET status = $2, reason = $3, subject = $4, body = $5, coupon_code = $6, \
                     decided_at = $7, data = $8 WHERE id = $1 AND status = 'waiting'",
                    &[
                        id.into(),
                        set.0.into(),
                        set.1.map(str::to_string).into(),
                        set.2.into(),
                        set.3.into(),
                        set.4.into(),
                        cx.now.into(),
                        set.5.into(),
                    ],
                )
                .await?;
            uow.commit().await?;
        }
        Ok(())
    }

    /// The dry run: what [`Store::campaigns_run`] would decide as of
    /// `cx.now`, campaign by campaign in priority order, with who, the
    /// occurrence, the decision and why. Nothing is written.
    pub async fn campaigns_dry_run(&self, cx: &RunContext) -> Result<Vec<DryRun>, StoreError> {
        self.campaigns_dry_run_of(cx, None).await
    }

    /// [`Store::campaigns_dry_run`] of one campaign only (`only`), or of all.
    pub async fn campaigns_dry_run_of(
        &self,
        cx: &RunContext,
        only: Option<&str>,
    ) -> Result<Vec<DryRun>, StoreError> {
        let mut campaigns = by_priority(self.campaigns().await?);
        if let Some(n) = only {
            campaigns.retain(|c| c.name == n);
        }
        let mut ledger = CapLedger::load(self, cx, &campaigns).await?;
        // Members with an address, by channel (and WeChat openid channel).
        let mut addresses: HashMap<String, Option<HashSet<i64>>> = HashMap::new();
        let mut out = Vec::new();
        for sc in &campaigns {
            let c = &sc.campaign;
            let mut dr = DryRun {
                campaign: sc.name.clone(),
                priority: c.priority,
                ..DryRun::default()
            };
            let hour = chrono::Timelike::hour(&local(cx.now, &cx.time_zone));
            if !c.in_window(hour) {
                dr.idle = Some(format!(
                    "outside its send window ({}:00-{}:00 local)",
                    c.window.0, c.window.1
                ));
                out.push(dr);
                continue;
            }
            let mut t = std::time::Instant::now();
            let mut h = self.acquire().await?;
            let mut conn = h.conn();
            let consent: HashSet<i64> = conn
                .fetch(
                    "SELECT member_id FROM consent WHERE channel = $1 AND topic = $2 AND granted = 1",
                    &[c.channel.name().into(), c.topic.as_str().into()],
                    |r| r.i64(0),
                )
                .await?
                .into_iter()
                .collect();
            let key = format!(
                "{}:{}",
                c.channel.name(),
                c.wechat
                    .as_ref()
                    .and_then(|w| w.openid_channel.as_deref())
                    .unwrap_or("")
            );
            if !addresses.contains_key(&key) {
                let found = crate::campaigns::members_with_address(&mut conn, c).await?;
                addresses.insert(key.clone(), found);
            }
            stage(&mut t, "consent and addresses");
            let decided: HashSet<(i64, String)> = conn
                .fetch(
                    "SELECT member_id, occurrence FROM campaign_sends WHERE campaign = $1",
                    &[sc.name.as_str().into()],
                    |r| Ok((r.i64(0)?, r.text(1)?)),
                )
                .await?
                .into_iter()
                .collect();
            let waiting = conn
                .fetch(
                    "SELECT member_id, occurrence, expires_at, fields FROM campaign_sends \
                     WHERE campaign = $1 AND status = 'waiting' ORDER BY decided_at, id",
                    &[sc.name.as_str().into()],
                    |r| Ok((r.i64(0)?, r.text(1)?, r.opt_i64(2)?, r.opt_text(3)?)),
                )
                .await?;
            drop(h);
            let has_address = |m: i64| match &addresses[&key] {
                None => true,
                Some(a) => a.contains(&m),
            };
            for (m, occ, exp, f) in waiting {
                let cand = from_json(m, occ, f.as_deref());
                let (d, r) = if exp.is_some_and(|e| cx.now >= e) {
                    ("lapsed", Some("cap_wait_expired"))
                } else if !consent.contains(&m) {
                    ("skipped", Some("no_consent"))
                } else if !ledger.fits(c, m) {
                    ("waiting", Some("capped"))
                } else {
                    let control = c.is_control(m);
                    if !control {
                        ledger.take(c, m, cx.now);
                    }
                    if control {
                        ("control", Some("released from waiting"))
                    } else {
                        ("queued", Some("released from waiting"))
                    }
                };
                dr.push(sc, &cand, d, r);
            }
            stage(&mut t, "decided and waiting");
            let (cands, _) = match self.candidates(sc, cx, true).await? {
                Ok(x) => x,
                Err(idle) => {
                    dr.idle = Some(idle);
                    out.push(dr);
                    continue;
                }
            };
            stage(&mut t, "candidates");
            dr.candidates = cands.len() as u64;
            for cand in &cands {
                let m = cand.member;
                if decided.contains(&(m, cand.occurrence.clone())) {
                    dr.already_decided += 1;
                    continue;
                }
                let under = c.transactional || ledger.fits(c, m);
                let (d, r) = campaigns::decide(
                    c.transactional,
                    consent.contains(&m),
                    has_address(m),
                    under,
                    c.is_control(m),
                );
                if d == "queued" && !c.transactional {
                    ledger.take(c, m, cx.now);
                }
                dr.push(sc, cand, d, r);
            }
            out.push(dr);
        }
        Ok(out)
    }
}

impl Store {
    /// Members with an e-mail address of their own (not shared), by id.
    pub async fn members_with_email(&self) -> Result<Vec<MemberId>, StoreError> {
        let mut h = self.acquire().await?;
        Ok(h.conn()
            .fetch(
                "SELECT DISTINCT i.member_id FROM identifiers i JOIN members m ON m.id = i.member_id \
                 WHERE i.kind = 'email' AND i.shared = 0 AND m.merged_into IS NULL ORDER BY i.member_id",
                &[],
                |r| r.i64(0),
            )
            .await?
            .into_iter()
            .map(MemberId::from_i64)
            .collect())
    }

    /// Record the same profile change for many members through the profile
    /// door ([`crate::profiles::apply_in`]), 500 per unit of work.
    pub async fn update_profiles(
        &self,
        members: &[MemberId],
        change: &crate::profiles::ProfileChange,
    ) -> Result<(), StoreError> {
        for chunk in members.chunks(500) {
            let mut uow = self.unit_of_work().await?;
            for m in chunk {
                crate::profiles::apply_in(&mut uow, *m, change).await?;
            }
            uow.commit().await?;
        }
        Ok(())
    }
}

/// What a dry run found for one campaign.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DryRun {
    /// The campaign.
    pub campaign: String,
    /// Its priority.
    pub priority: i32,
    /// Why it would decide nothing, if so.
    pub idle: Option<String>,
    /// Candidates the trigger found.
    pub candidates: u64,
    /// Decided before: nothing new.
    pub already_decided: u64,
    /// Decisions by kind (`queued`, `control`, `waiting`, `skipped`, `lapsed`).
    pub counts: BTreeMap<String, u64>,
    /// Every decision.
    pub decisions: Vec<DryDecision>,
}

/// One decision a run would make.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DryDecision {
    /// `M-123`.
    pub member_id: String,
    /// The campaign.
    pub campaign: String,
    /// The occurrence (the send's key).
    pub occurrence: String,
    /// `queued`, `control`, `waiting`, `skipped` or `lapsed`.
    pub decision: String,
    /// `no_consent`, `no_address`, `capped`, `cap_wait_expired`, ...
    pub reason: Option<String>,
    /// Why the trigger chose the member.
    pub why: String,
}

impl DryRun {
    fn push(&mut self, sc: &StoredCampaign, c: &Candidate, d: &str, r: Option<&str>) {
        *self.counts.entry(d.to_string()).or_default() += 1;
        self.decisions.push(DryDecision {
            member_id: MemberId::from_i64(c.member).to_string(),
            campaign: sc.name.clone(),
            occurrence: c.occurrence.clone(),
            decision: d.to_string(),
            reason: r.map(str::to_string),
            why: c.why.clone(),
        });
    }
}

/// The marketing sends that fill caps, per member, with the slots a dry
/// run takes added in memory.
struct CapLedger {
    tz: chrono_tz::Tz,
    now: i64,
    sends: HashMap<i64, Vec<(String, i64)>>,
}

impl CapLedger {
    async fn load(
        store: &Store,
        cx: &RunContext,
        campaigns: &[StoredCampaign],
    ) -> Result<CapLedger, StoreError> {
        let since = campaigns
            .iter()
            .flat_map(|c| c.campaign.cap.windows(cx.now, cx.time_zone))
            .map(|w| w.0)
            .min()
            .unwrap_or(cx.now);
        let mut h = store.acquire().await?;
        let rows = h
            .conn()
            .fetch(
                "SELECT member_id, channel, decided_at FROM campaign_sends \
                 WHERE status IN ('queued', 'sent') AND transactional = 0 AND decided_at >= $1",
                &[since.into()],
                |r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?)),
            )
            .await?;
        let mut sends: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for (m, ch, at) in rows {
            sends.entry(m).or_default().push((ch, at));
        }
        Ok(CapLedger {
            tz: cx.time_zone,
            now: cx.now,
            sends,
        })
    }

    fn fits(&self, c: &Campaign, m: i64) -> bool {
        let Some(v) = self.sends.get(&m) else {
            return true;
        };
        c.cap
            .windows(self.now, self.tz)
            .into_iter()
            .all(|(start, limit, per_channel)| {
                let n = v
                    .iter()
                    .filter(|(ch, at)| {
                        if per_channel {
                            *at >= start && ch == c.channel.name()
                        } else {
                            *at > start
                        }
                    })
                    .count();
                n < limit as usize
            })
    }

    fn take(&mut self, c: &Campaign, m: i64, now: i64) {
        self.sends
            .entry(m)
            .or_default()
            .push((c.channel.name().to_string(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_in_units_and_fields_survive_waiting() {
        assert_eq!(units(123_456), "1234.56");
        assert_eq!(units(5), "0.05");
        let mut c = Candidate::new(7, "win_back:2025-08-01".into(), "why");
        c.fields.push(("days_since_order", "122".into()));
        c.categories.push("skincare".into());
        let back = from_json(7, "win_back:2025-08-01".into(), Some(&fields_json(&c)));
        assert_eq!(back, c);
    }
}
