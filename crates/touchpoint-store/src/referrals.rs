//! Member-gets-member referrals: invite codes, attributions (once per
//! friend, through a unit of work), the grant step (exactly once, capped
//! per advocate per business month) and the report. See docs/rewards.md,
//! "Referrals".

use serde::Serialize;
use touchpoint_core::referrals::{
    check_invite_code, generate_invite_code, ReferralProgram, RefusalReason,
};

use crate::db::Conn;
use crate::unit_of_work::UnitOfWork;
use crate::{coupons, loyalty, Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// A referral settings version.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralProgramVersion {
    /// Version (1, 2, ...).
    pub version: i64,
    /// The settings.
    pub program: ReferralProgram,
    /// Stored, UTC ms.
    pub created_at: i64,
}

/// One attribution of a friend to an advocate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The friend (the new member).
    pub friend_id: i64,
    /// The advocate (the code's owner).
    pub advocate_id: i64,
    /// The invite code used.
    pub code: String,
    /// The door: `identify`, `claim`, `import`, `manual`, ...
    pub source: String,
    /// `attributed`, `qualified` or `refused`.
    pub state: String,
    /// Why refused (`self_referral`, `not_new`).
    pub reason: Option<String>,
    /// When, UTC ms.
    pub attributed_at: i64,
    /// When it qualified, UTC ms.
    pub qualified_at: Option<i64>,
    /// The advocate's reward was not granted: monthly cap reached.
    pub capped: bool,
}

/// A member's referral page.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralView {
    /// The member.
    pub member_id: i64,
    /// Their invite code (None until created).
    pub code: Option<String>,
    /// Their invite link: the settings' `link_base` followed by the code
    /// (None without a code or a `link_base`).
    pub link: Option<String>,
    /// Who referred them.
    pub referred_by: Option<Attribution>,
    /// Friends they referred.
    pub friends: Vec<Attribution>,
    /// Referral rewards they received: (role, points, coupon id).
    pub rewards: Vec<RewardRow>,
}

/// One referral reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewardRow {
    /// The friend whose qualification paid it.
    pub friend_id: i64,
    /// The member who got it.
    pub member_id: i64,
    /// `advocate` or `friend`.
    pub role: String,
    /// Points credited.
    pub points: i64,
    /// Coupon issued.
    pub coupon_id: Option<i64>,
    /// When, UTC ms.
    pub granted_at: i64,
}

/// What a grant run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantReport {
    /// Attributions that qualified in this run.
    pub qualified: u64,
    /// Advocate rewards granted.
    pub advocate_rewards: u64,
    /// Friend rewards granted.
    pub friend_rewards: u64,
    /// Advocate rewards withheld by the monthly cap.
    pub capped: u64,
    /// Points credited.
    pub points: i64,
    /// Coupons issued.
    pub coupons: u64,
}

/// The referral report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReferralReport {
    /// Invite codes issued.
    pub codes_issued: i64,
    /// Codes used (attributions tried, accepted or refused).
    pub codes_used: i64,
    /// Friends attributed (accepted).
    pub attributed: i64,
    /// Friends qualified (converted).
    pub qualified: i64,
    /// Refused as self-referrals.
    pub refused_self_referral: i64,
    /// Refused: friend not new.
    pub refused_not_new: i64,
    /// Advocate rewards withheld by the cap.
    pub capped: i64,
    /// Points granted to advocates and friends.
    pub points_granted: i64,
    /// Coupons granted.
    pub coupons_granted: i64,
    /// Referred (attributed or qualified) members.
    pub referred_members: i64,
    /// Their paid revenue net of discounts and refunds, minor units.
    pub referred_revenue: i64,
    /// Revenue per referred member, minor units (rounded down; 0 without
    /// referred members).
    pub referred_mean_revenue: i64,
    /// All other members.
    pub other_members: i64,
    /// Their paid revenue, minor units.
    pub other_revenue: i64,
    /// Revenue per other member, minor units.
    pub other_mean_revenue: i64,
    /// Mean 12-month CLV of referred members with a prediction (currency
    /// units; None without predictions).
    pub referred_mean_clv: Option<f64>,
    /// Mean CLV of the others with a prediction.
    pub other_mean_clv: Option<f64>,
}

const ATTR_COLS: &str =
    "friend_id, advocate_id, code, source, state, reason, attributed_at, qualified_at, capped";

fn attr_of(r: crate::db::RowRef<'_>) -> Result<Attribution, StoreError> {
    Ok(Attribution {
        friend_id: r.i64(0)?,
        advocate_id: r.i64(1)?,
        code: r.text(2)?,
        source: r.text(3)?,
        state: r.text(4)?,
        reason: r.opt_text(5)?,
        attributed_at: r.i64(6)?,
        qualified_at: r.opt_i64(7)?,
        capped: r.i64(8)? != 0,
    })
}

/// The referral settings in force.
pub async fn current_referral_program(
    conn: &mut Conn<'_>,
) -> Result<Option<ReferralProgramVersion>, StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT version, body, created_at FROM referral_programs ORDER BY version DESC LIMIT 1",
            &[],
            |r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?)),
        )
        .await?;
    let Some((version, body, created_at)) = row else {
        return Ok(None);
    };
    let program = ReferralProgram::parse(&body)
        .map_err(|e| StoreError::Corrupt(format!("referral settings version {version}: {e}")))?;
    Ok(Some(ReferralProgramVersion {
        version,
        program,
        created_at,
    }))
}

/// The member exists and was not merged away (the points ledger's check).
async fn live_member(conn: &mut Conn<'_>, member: i64) -> Result<(), StoreError> {
    crate::loyalty::ensure_member(conn, member).await
}

/// The member's invite code, created on first use (stable after).
pub async fn code_in(conn: &mut Conn<'_>, member: i64, now: i64) -> Result<String, StoreError> {
    live_member(conn, member).await?;
    for _ in 0..8 {
        if let Some(c) = conn
            .fetch_opt(
                "SELECT code FROM referral_codes WHERE member_id = $1",
                &[member.into()],
                |r| r.text(0),
            )
            .await?
        {
            return Ok(c);
        }
        let code = generate_invite_code();
        // A clash of 40 random bits with another member's code, or a
        // concurrent creation for this member, inserts nothing: read again.
        conn.exec(
            "INSERT INTO referral_codes (member_id, code, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[member.into(), code.into(), now.into()],
        )
        .await?;
    }
    Err(StoreError::Corrupt(format!(
        "could not create an invite code for member {member}"
    )))
}

/// How the friend came with the invite code: what "new" is measured
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Came {
    /// With a record written in this unit of work (an `identify` call, a
    /// packaging-code claim, an imported order), the record's time being
    /// `at` (UTC ms). The friend is new when every identifier of theirs was
    /// created in this unit of work and no order of theirs is older than
    /// `at`.
    WithRecord {
        /// The record's time, UTC ms.
        at: i64,
    },
    /// By hand (`touchpoint referrals attribute`, `POST
    /// /api/referrals/attribute`): an operator states that the person came
    /// with the code when they first became known. The friend is new when no
    /// order of theirs is older than their first identifier.
    ByHand,
}

/// The owner of an invite code (followed to the survivor of a merge) and
/// the canonical code; `NotFound` for an unknown code, `InvalidInput` for
/// one that is not a code.
pub async fn code_owner(conn: &mut Conn<'_>, code: &str) -> Result<(i64, String), StoreError> {
    let code = check_invite_code(code).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
    let advocate = conn
        .fetch_opt(
            "SELECT member_id FROM referral_codes WHERE code = $1",
            &[code.clone().into()],
            |r| r.i64(0),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no invite code {code}")))?;
    // The advocate may have been merged since: follow to the survivor.
    let advocate = conn
        .fetch_opt(
            "SELECT COALESCE(merged_into, id) FROM members WHERE id = $1",
            &[advocate.into()],
            |r| r.i64(0),
        )
        .await?
        .unwrap_or(advocate);
    Ok((advocate, code))
}

/// Attribute `friend` to the owner of `code` in the caller's unit of work
/// (the one that writes the record carrying the code), once per friend: a
/// second attribution returns the first one. The friend must not be the
/// advocate (same member, or an identifier linked to one of the
/// advocate's) and must be new (see [`Came`]); otherwise the attribution is
/// recorded `refused` with its reason, and the caller's record is written
/// all the same. An unknown code is `NotFound`, a malformed one
/// `InvalidInput` (nothing is recorded).
pub async fn attribute_in(
    uow: &mut UnitOfWork,
    friend: i64,
    code: &str,
    source: &str,
    came: Came,
) -> Result<Attribution, StoreError> {
    let now = uow.now();
    let new_identifiers: Vec<i64> = uow.new_identifiers.iter().copied().collect();
    let mut c = uow.conn();
    live_member(&mut c, friend).await?;
    let (advocate, code) = code_owner(&mut c, code).await?;
    if let Some(a) = c
        .fetch_opt(
            &format!("SELECT {ATTR_COLS} FROM referral_attributions WHERE friend_id = $1"),
            &[friend.into()],
            attr_of,
        )
        .await?
    {
        return Ok(a);
    }
    let self_ref = advocate == friend
        || c.fetch_opt(
            "SELECT CAST(1 AS BIGINT) FROM identifier_links l \
             JOIN identifiers a ON a.id = l.a_id JOIN identifiers b ON b.id = l.b_id \
             WHERE (a.member_id = $1 AND b.member_id = $2) OR (a.member_id = $2 AND b.member_id = $1) \
                OR (a.origin_member_id = $1 AND b.origin_member_id = $2) OR (a.origin_member_id = $2 AND b.origin_member_id = $1) \
             LIMIT 1",
            &[friend.into(), advocate.into()],
            |r| r.i64(0),
        )
        .await?
        .is_some()
        || c.fetch_opt(
            "SELECT CAST(1 AS BIGINT) FROM identifiers WHERE (member_id = $1 AND origin_member_id = $2) \
             OR (member_id = $2 AND origin_member_id = $1) LIMIT 1",
            &[friend.into(), advocate.into()],
            |r| r.i64(0),
        )
        .await?
        .is_some();
    let identifiers: Vec<(i64, i64)> = c
        .fetch(
            "SELECT id, created_at FROM identifiers WHERE member_id = $1",
            &[friend.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
        .await?;
    let (known_identifier, orders_before) = match came {
        Came::WithRecord { at } => (
            identifiers
                .iter()
                .any(|(id, _)| !new_identifiers.contains(id)),
            at,
        ),
        Came::ByHand => (
            false,
            identifiers.iter().map(|(_, t)| *t).min().unwrap_or(now),
        ),
    };
    let not_new = !self_ref
        && (known_identifier
            || c.fetch_opt(
                "SELECT CAST(1 AS BIGINT) FROM orders WHERE member_id = $1 AND ordered_at < $2 LIMIT 1",
                &[friend.into(), orders_before.into()],
                |r| r.i64(0),
            )
            .await?
            .is_some());
    let reason = if self_ref {
        Some(RefusalReason::SelfReferral)
    } else if not_new {
        Some(RefusalReason::NotNew)
    } else {
        None
    };
    let state = if reason.is_some() {
        "refused"
    } else {
        "attributed"
    };
    c.exec(
        "INSERT INTO referral_attributions (friend_id, advocate_id, code, source, state, reason, attributed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (friend_id) DO NOTHING",
        &[
            friend.into(),
            advocate.into(),
            code.into(),
            source.to_string().into(),
            state.to_string().into(),
            reason.map(|r| r.as_str().to_string()).into(),
            now.into(),
        ],
    )
    .await?;
    c.fetch_opt(
        &format!("SELECT {ATTR_COLS} FROM referral_attributions WHERE friend_id = $1"),
        &[friend.into()],
        attr_of,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("attribution just written is missing".into()))
}

/// A door's attribution: [`attribute_in`] for the code a record carried,
/// where an unknown code is no error of the record (None). Used by the
/// `identify` trait, the order import column and the code claim.
pub async fn attribute_carried_in(
    uow: &mut UnitOfWork,
    friend: i64,
    code: &str,
    source: &str,
    at: i64,
) -> Result<Option<Attribution>, StoreError> {
    match attribute_in(uow, friend, code, source, Came::WithRecord { at }).await {
        Ok(a) => Ok(Some(a)),
        Err(StoreError::NotFound(_) | StoreError::InvalidInput(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The in-transaction handler of order writes: an order that carries an
/// invite code (the canonical `referral_code` column) attributes its member
/// to it, in the unit of work that writes the order.
pub(crate) async fn on_orders(
    uow: &mut UnitOfWork,
    changes: &[crate::writes::OrderChange],
) -> Result<(), StoreError> {
    for ch in changes {
        if let Some(code) = &ch.record.referral_code {
            let at = ch.record.ordered_at.timestamp_millis();
            attribute_carried_in(uow, ch.member_id, code, "import", at).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Store a new version of the referral settings.
    pub async fn referral_set_program(
        &self,
        body: &str,
    ) -> Result<ReferralProgramVersion, StoreError> {
        let program =
            ReferralProgram::parse(body).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let mut c = uow.conn();
        let version = c
            .fetch_opt(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM referral_programs",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(1);
        c.exec(
            "INSERT INTO referral_programs (version, body, created_at) VALUES ($1, $2, $3)",
            &[version.into(), body.to_string().into(), now.into()],
        )
        .await?;
        uow.commit().await?;
        Ok(ReferralProgramVersion {
            version,
            program,
            created_at: now,
        })
    }

    /// The referral settings in force.
    pub async fn referral_program(&self) -> Result<Option<ReferralProgramVersion>, StoreError> {
        let mut h = self.acquire().await?;
        current_referral_program(&mut h.conn()).await
    }

    /// The member's invite code (created on first call, then stable).
    pub async fn referral_code(&self, member: i64) -> Result<String, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let code = code_in(&mut uow.conn(), member, now).await?;
        uow.commit().await?;
        Ok(code)
    }

    /// The member owning an invite code (None when no member has it;
    /// `InvalidInput` when it is not a code).
    pub async fn referral_code_owner(&self, code: &str) -> Result<Option<i64>, StoreError> {
        let mut h = self.acquire().await?;
        match code_owner(&mut h.conn(), code).await {
            Ok((m, _)) => Ok(Some(m)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Attribute `friend` to `code` by hand (see [`attribute_in`],
    /// [`Came::ByHand`]).
    pub async fn referral_attribute(
        &self,
        friend: i64,
        code: &str,
        source: &str,
    ) -> Result<Attribution, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let a = attribute_in(&mut uow, friend, code, source, Came::ByHand).await?;
        uow.commit().await?;
        Ok(a)
    }

    /// A member's referrals: code, who referred them, their friends, rewards.
    pub async fn referral_view(&self, member: i64) -> Result<ReferralView, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        live_member(&mut c, member).await?;
        let code = c
            .fetch_opt(
                "SELECT code FROM referral_codes WHERE member_id = $1",
                &[member.into()],
                |r| r.text(0),
            )
            .await?;
        let referred_by = c
            .fetch_opt(
                &format!("SELECT {ATTR_COLS} FROM referral_attributions WHERE friend_id = $1"),
                &[member.into()],
                attr_of,
            )
            .await?;
        let friends = c
            .fetch(
                &format!(
                    "SELECT {ATTR_COLS} FROM referral_attributions WHERE advocate_id = $1 ORDER BY attributed_at, friend_id"
                ),
                &[member.into()],
                attr_of,
            )
            .await?;
        let rewards = c
            .fetch(
                "SELECT friend_id, member_id, role, points, coupon_id, granted_at FROM referral_rewards \
                 WHERE member_id = $1 ORDER BY id",
                &[member.into()],
                |r| {
                    Ok(RewardRow {
                        friend_id: r.i64(0)?,
                        member_id: r.i64(1)?,
                        role: r.text(2)?,
                        points: r.i64(3)?,
                        coupon_id: r.opt_i64(4)?,
                        granted_at: r.i64(5)?,
                    })
                },
            )
            .await?;
        let link = match (&code, current_referral_program(&mut c).await?) {
            (Some(code), Some(pv)) => pv.program.link(code),
            _ => None,
        };
        Ok(ReferralView {
            member_id: member,
            code,
            link,
            referred_by,
            friends,
            rewards,
        })
    }

    /// The grant step: every attributed friend whose first paid order's
    /// return window has passed by `as_of` unrefunded qualifies, and the
    /// rewards are granted exactly once (one unit of work per friend; the
    /// state change and the reward keys are conditional and unique). The
    /// advocate's reward counts against the monthly cap of the month of
    /// `as_of` (business time zone). Safe to run concurrently and again.
    pub async fn referrals_grant(&self, as_of: i64) -> Result<GrantReport, StoreError> {
        let mut report = GrantReport::default();
        let Some(pv) = self.referral_program().await? else {
            return Ok(report);
        };
        let p = pv.program;
        let window_days = match p.return_window_days {
            Some(d) => i64::from(d),
            None => self
                .loyalty_program()
                .await?
                .map(|l| i64::from(l.program.pending_days))
                .unwrap_or(7),
        };
        let cutoff = as_of - window_days * DAY_MS;
        // Candidates: attributed friends with a first paid order paid by the
        // cutoff; the first order is checked unrefunded below.
        let candidates: Vec<(i64, i64)> = {
            let mut h = self.acquire().await?;
            h.conn()
                .fetch(
                    "SELECT a.friend_id, a.advocate_id FROM referral_attributions a \
                     WHERE a.state = 'attributed' AND EXISTS (SELECT 1 FROM orders o \
                       WHERE o.member_id = a.friend_id AND (o.paid_at IS NOT NULL OR o.status <> 'pending') AND COALESCE(o.paid_at, o.ordered_at) <= $1) \
                     ORDER BY a.friend_id",
                    &[cutoff.into()],
                    |r| Ok((r.i64(0)?, r.i64(1)?)),
                )
                .await?
        };
        let month = p.month_of(as_of);
        for (friend, advocate) in candidates {
            let mut uow = self.unit_of_work().await?;
            let first = uow
                .conn()
                .fetch_opt(
                    "SELECT COALESCE(paid_at, ordered_at), refunded_amount, status FROM orders WHERE member_id = $1 \
                     AND (paid_at IS NOT NULL OR status <> 'pending') ORDER BY COALESCE(paid_at, ordered_at), order_id LIMIT 1",
                    &[friend.into()],
                    |r| Ok((r.i64(0)?, r.i64(1)?, r.text(2)?)),
                )
                .await?;
            let ok = matches!(&first, Some((paid, refunded, status))
                if *paid <= cutoff && *refunded == 0 && !status.contains("refund") && !status.contains("cancel"));
            if !ok {
                uow.rollback().await?;
                continue;
            }
            let changed = uow
                .conn()
                .exec(
                    "UPDATE referral_attributions SET state = 'qualified', qualified_at = $2 \
                     WHERE friend_id = $1 AND state = 'attributed'",
                    &[friend.into(), as_of.into()],
                )
                .await?;
            if changed == 0 {
                // Another run took it.
                uow.rollback().await?;
                continue;
            }
            report.qualified += 1;
            grant_one(&mut uow, &p, friend, friend, "friend", &mut report).await?;
            report.friend_rewards += 1;
            let allowed = if p.monthly_cap == 0 {
                true
            } else {
                uow.conn()
                    .exec(
                        "INSERT INTO referral_month_counts (advocate_id, month, granted) VALUES ($1, $2, 0) \
                         ON CONFLICT DO NOTHING",
                        &[advocate.into(), month.clone().into()],
                    )
                    .await?;
                uow.conn()
                    .exec(
                        "UPDATE referral_month_counts SET granted = granted + 1 \
                         WHERE advocate_id = $1 AND month = $2 AND granted < $3",
                        &[
                            advocate.into(),
                            month.clone().into(),
                            i64::from(p.monthly_cap).into(),
                        ],
                    )
                    .await?
                    == 1
            };
            if allowed {
                grant_one(&mut uow, &p, friend, advocate, "advocate", &mut report).await?;
                report.advocate_rewards += 1;
            } else {
                uow.conn()
                    .exec(
                        "UPDATE referral_attributions SET capped = 1 WHERE friend_id = $1",
                        &[friend.into()],
                    )
                    .await?;
                report.capped += 1;
            }
            uow.commit().await?;
        }
        Ok(report)
    }

    /// The referral report.
    pub async fn referral_report(&self) -> Result<ReferralReport, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let one = |sql: &'static str| sql;
        let mut r = ReferralReport::default();
        let counts = c
            .fetch_opt(
                one("SELECT (SELECT COUNT(*) FROM referral_codes), \
                 (SELECT COUNT(*) FROM referral_attributions), \
                 (SELECT COUNT(*) FROM referral_attributions WHERE state IN ('attributed', 'qualified')), \
                 (SELECT COUNT(*) FROM referral_attributions WHERE state = 'qualified'), \
                 (SELECT COUNT(*) FROM referral_attributions WHERE reason = 'self_referral'), \
                 (SELECT COUNT(*) FROM referral_attributions WHERE reason = 'not_new'), \
                 (SELECT COUNT(*) FROM referral_attributions WHERE capped = 1), \
                 (SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM referral_rewards), \
                 (SELECT COUNT(coupon_id) FROM referral_rewards)"),
                &[],
                |x| {
                    Ok([
                        x.i64(0)?,
                        x.i64(1)?,
                        x.i64(2)?,
                        x.i64(3)?,
                        x.i64(4)?,
                        x.i64(5)?,
                        x.i64(6)?,
                        x.i64(7)?,
                        x.i64(8)?,
                    ])
                },
            )
            .await?
            .unwrap_or_default();
        r.codes_issued = counts[0];
        r.codes_used = counts[1];
        r.attributed = counts[2];
        r.qualified = counts[3];
        r.refused_self_referral = counts[4];
        r.refused_not_new = counts[5];
        r.capped = counts[6];
        r.points_granted = counts[7];
        r.coupons_granted = counts[8];
        let groups = c
            .fetch(
                "SELECT CAST(CASE WHEN a.friend_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS referred, COUNT(*), \
                   CAST(COALESCE(SUM((SELECT COALESCE(SUM(o.gross_amount - o.order_discount - o.refunded_amount), 0) \
                     FROM orders o WHERE o.member_id = m.id AND (o.paid_at IS NOT NULL OR o.status <> 'pending'))), 0) AS BIGINT), \
                   AVG((SELECT AVG(p.clv) FROM member_predictions p WHERE p.member_id = m.id AND p.clv IS NOT NULL)) \
                 FROM members m LEFT JOIN referral_attributions a \
                   ON a.friend_id = m.id AND a.state IN ('attributed', 'qualified') \
                 WHERE m.merged_into IS NULL GROUP BY 1",
                &[],
                |x| Ok((x.i64(0)?, x.i64(1)?, x.i64(2)?, x.opt_f64(3)?)),
            )
            .await?;
        let mean = |revenue: i64, n: i64| if n > 0 { revenue / n } else { 0 };
        for (referred, n, revenue, clv) in groups {
            if referred == 1 {
                r.referred_members = n;
                r.referred_revenue = revenue;
                r.referred_mean_revenue = mean(revenue, n);
                r.referred_mean_clv = clv;
            } else {
                r.other_members = n;
                r.other_revenue = revenue;
                r.other_mean_revenue = mean(revenue, n);
                r.other_mean_clv = clv;
            }
        }
        Ok(r)
    }
}

async fn grant_one(
    uow: &mut UnitOfWork,
    p: &ReferralProgram,
    friend: i64,
    member: i64,
    role: &str,
    report: &mut GrantReport,
) -> Result<(), StoreError> {
    let (points, coupon) = if role == "friend" {
        (p.friend_points, p.friend_coupon)
    } else {
        (p.advocate_points, p.advocate_coupon)
    };
    let key = format!("referral:{role}:{friend}");
    if points > 0 {
        let w = loyalty::adjust_in(
            uow,
            member,
            points,
            &format!("referral {role} (friend {friend})"),
            "referral",
            &key,
        )
        .await?;
        if w.created {
            report.points += points;
        }
    }
    let coupon_id = match coupon {
        Some(def) => {
            let c = coupons::issue_in(uow, def, member, &format!("referral {role}"), &key).await?;
            report.coupons += 1;
            Some(c.id)
        }
        None => None,
    };
    let now = uow.now();
    uow.conn()
        .exec(
            "INSERT INTO referral_rewards (friend_id, member_id, role, points, coupon_id, granted_at, grant_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (grant_key) DO NOTHING",
            &[
                friend.into(),
                member.into(),
                role.to_string().into(),
                points.into(),
                coupon_id.into(),
                now.into(),
                key.into(),
            ],
        )
        .await?;
    Ok(())
}
