//! The points ledger: program versions, append-only entries, lots and draws,
//! per-member accounts, packaging codes. The rules are in
//! [`touchpoint_core::loyalty`]; this module applies them inside a
//! [`UnitOfWork`] and emits the domain events.
//!
//! **Concurrency.** Every write to a member's points first locks the
//! member's `points_accounts` row (an `UPDATE` of the row: a row lock on
//! PostgreSQL; on SQLite the unit of work holds the database write lock from
//! `BEGIN IMMEDIATE`), then reads the lots, decides with the pure rules, and
//! writes entries, draws, lots and the account. Nothing is decided on data
//! read outside the lock. Only the order write path locks several accounts
//! in one transaction, and it holds the identity lock (one such transaction
//! at a time); every other write (spend, adjust, claim, each member's
//! expiry) locks one account, so lock waits never form a cycle. A code is claimed with one statement
//! (`UPDATE loyalty_codes SET claimed_by = .. WHERE hash = .. AND claimed_by
//! IS NULL`): of concurrent claims exactly one changes the row.
//!
//! **Idempotency.** Every entry carries a unique idempotency key
//! (`earn:CHANNEL:ORDER`, `reverse:CHANNEL:ORDER:REFUNDED`, `expire:LOT`,
//! `spend:SCOPE:KEY`, `adjust:SCOPE:KEY`, `code:HASH`); an insert that meets
//! the key writes nothing else.
//!
//! **Invariants** (checked by the concurrency test): for every member,
//! available + pending = the sum of the entries' points; every lot's
//! remaining = its amount less its draws; available >= 0 unless the refund
//! policy is `allow_negative`, and then available >= -debt.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::loyalty::{self as rules, LotView, Program, RefundPolicy};
use touchpoint_core::OrderStatus;

use crate::db::{Conn, Val};
use crate::import::OrderChange;
use crate::unit_of_work::UnitOfWork;
use crate::{Store, StoreError};

/// A stored program version.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramVersion {
    /// 1, 2, ...
    pub version: i64,
    /// When it was set, UTC ms.
    pub created_at: i64,
    /// The file as given.
    pub body: String,
    /// Parsed.
    pub program: Program,
}

/// A member's points.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PointsBalance {
    /// The member.
    pub member_id: i64,
    /// Spendable now (negative only under `allow_negative`).
    pub available: i64,
    /// In the return window.
    pub pending: i64,
    /// Owed after refunds (`allow_negative`), already counted in `available`.
    pub debt: i64,
    /// The tier.
    pub tier: Option<String>,
    /// Lots with points left.
    pub lots: Vec<Lot>,
    /// The latest entries, newest first.
    pub entries: Vec<Entry>,
}

/// A lot.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Lot {
    /// Id.
    pub id: i64,
    /// Credited.
    pub amount: i64,
    /// Left.
    pub remaining: i64,
    /// Spendable from, UTC ms.
    pub available_from: i64,
    /// Expires at, UTC ms.
    pub expires_at: Option<i64>,
}

/// A ledger entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// Id.
    pub id: i64,
    /// The member.
    pub member_id: i64,
    /// When, UTC ms.
    pub at: i64,
    /// earn, spend, expire, reverse, adjust.
    pub kind: String,
    /// Signed points.
    pub points: i64,
    /// Why.
    pub reason: String,
    /// Where from (`order CHANNEL ID`, `batch ID`, `admin KEY`, `api KEY`).
    pub source: String,
    /// The caller's reference.
    pub reference: Option<String>,
    /// Points a reversal could not take back.
    pub uncovered: i64,
}

/// The outcome of a spend or an adjustment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PointsWrite {
    /// The entry written (or the one written before under the same key).
    pub entry: Entry,
    /// Available after.
    pub available: i64,
    /// Whether this call wrote it (false: the idempotency key was used).
    pub created: bool,
}

/// What a claim did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Claimed {
    /// The member credited.
    pub member_id: i64,
    /// Points credited.
    pub points: i64,
    /// Available after.
    pub available: i64,
    /// The batch.
    pub batch_id: i64,
    /// The referral the claim carried (`referral_code`), accepted or
    /// refused (see docs/rewards.md, Referrals).
    pub referral: Option<crate::referrals::Attribution>,
}

/// A new batch of codes.
#[derive(Debug, Clone, Serialize)]
pub struct NewBatch {
    /// The batch id.
    pub id: i64,
    /// The codes in clear: hand them to the printer, they are not stored.
    #[serde(skip)]
    pub codes: Vec<String>,
}

/// What a new batch of codes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpec<'a> {
    /// The batch's unique name.
    pub name: &'a str,
    /// How many codes (1 to 10,000,000).
    pub count: usize,
    /// Points per code.
    pub points: i64,
    /// The product the codes are printed on.
    pub sku: Option<&'a str>,
    /// Codes cannot be claimed from this time (UTC ms).
    pub expires_at: Option<i64>,
    /// Days a claim's points stay pending (0: available at once).
    pub pending_days: u32,
}

/// Who claims a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimant {
    /// A known member.
    Member(i64),
    /// A member found (or created, on the channel `scan`) from an identifier;
    /// `member` is the id the caller resolved through the identity writer.
    Resolved {
        /// The resolved member.
        member: i64,
        /// `kind:value`, for the failure counter.
        subject: String,
    },
}

/// What the expiry run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Lots expired.
    pub lots: u64,
    /// Points expired.
    pub points: i64,
    /// Expiring-soon reminders recorded.
    pub reminders: u64,
    /// Pending lots that became available.
    pub matured: u64,
}

fn entry_of(r: crate::db::RowRef<'_>) -> Result<Entry, StoreError> {
    Ok(Entry {
        id: r.i64(0)?,
        member_id: r.i64(1)?,
        at: r.i64(2)?,
        kind: r.text(3)?,
        points: r.i64(4)?,
        reason: r.text(5)?,
        source: r.text(6)?,
        reference: r.opt_text(7)?,
        uncovered: r.i64(8)?,
    })
}

const ENTRY_COLS: &str = "id, member_id, at, kind, points, reason, source, reference, uncovered";

/// The current program, read in the caller's transaction.
pub async fn current_program(conn: &mut Conn<'_>) -> Result<Option<ProgramVersion>, StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT version, created_at, body FROM loyalty_programs ORDER BY version DESC LIMIT 1",
            &[],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.text(2)?)),
        )
        .await?;
    let Some((version, created_at, body)) = row else {
        return Ok(None);
    };
    let program = Program::parse(&body)
        .map_err(|e| StoreError::Corrupt(format!("loyalty program version {version}: {e}")))?;
    Ok(Some(ProgramVersion {
        version,
        created_at,
        body,
        program,
    }))
}

/// Create the member's account if missing and lock it for this transaction.
async fn lock_account(uow: &mut UnitOfWork, member: i64) -> Result<(), StoreError> {
    let now = uow.now();
    let mut c = uow.conn();
    c.exec(
        "INSERT INTO points_accounts (member_id, updated_at) VALUES ($1, $2) ON CONFLICT (member_id) DO NOTHING",
        &[member.into(), now.into()],
    )
    .await?;
    c.exec(
        "UPDATE points_accounts SET updated_at = $2 WHERE member_id = $1",
        &[member.into(), now.into()],
    )
    .await?;
    Ok(())
}

/// Recompute the account's available and pending from its lots and debt;
/// the available points.
async fn refresh_account(conn: &mut Conn<'_>, member: i64) -> Result<i64, StoreError> {
    conn.fetch_opt(
        "UPDATE points_accounts SET \
           available = CAST((SELECT COALESCE(SUM(remaining), 0) FROM points_lots \
                             WHERE member_id = $1 AND matured = 1 AND expired = 0) AS BIGINT) - debt, \
           pending = CAST((SELECT COALESCE(SUM(remaining), 0) FROM points_lots \
                           WHERE member_id = $1 AND matured = 0 AND expired = 0) AS BIGINT) \
         WHERE member_id = $1 RETURNING available",
        &[member.into()],
        |r| r.i64(0),
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("points account {member} is missing")))
}

/// Insert an entry unless its key exists; its id when inserted.
#[allow(clippy::too_many_arguments)]
async fn insert_entry(
    uow: &mut UnitOfWork,
    member: i64,
    kind: &str,
    points: i64,
    reason: &str,
    source: &str,
    reference: Option<&str>,
    uncovered: i64,
    version: Option<i64>,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    let now = uow.now();
    uow.conn()
        .fetch_opt(
            "INSERT INTO points_entries (member_id, at, kind, points, reason, source, reference, uncovered, program_version, idempotency_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            &[
                member.into(),
                now.into(),
                kind.into(),
                points.into(),
                reason.into(),
                source.into(),
                reference.map(str::to_string).into(),
                uncovered.into(),
                version.into(),
                key.into(),
            ],
            |r| r.i64(0),
        )
        .await
}

async fn entry_by_key(conn: &mut Conn<'_>, key: &str) -> Result<Option<Entry>, StoreError> {
    conn.fetch_opt(
        &format!("SELECT {ENTRY_COLS} FROM points_entries WHERE idempotency_key = $1"),
        &[key.into()],
        entry_of,
    )
    .await
}

/// Record draws and take them off the lots.
async fn draw(conn: &mut Conn<'_>, entry: i64, draws: &[(i64, i64)]) -> Result<(), StoreError> {
    for (lot, points) in draws {
        conn.exec(
            "INSERT INTO points_draws (entry_id, lot_id, points) VALUES ($1, $2, $3)",
            &[entry.into(), (*lot).into(), (*points).into()],
        )
        .await?;
        let n = conn
            .exec(
                "UPDATE points_lots SET remaining = remaining - $2 WHERE id = $1 AND remaining >= $2",
                &[(*lot).into(), (*points).into()],
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "lot {lot} has fewer than {points} points left"
            )));
        }
    }
    Ok(())
}

async fn member_lots(conn: &mut Conn<'_>, member: i64) -> Result<Vec<LotView>, StoreError> {
    conn.fetch(
        "SELECT id, remaining, available_from, expires_at FROM points_lots \
         WHERE member_id = $1 AND expired = 0 AND matured = 1 AND remaining > 0",
        &[member.into()],
        |r| {
            Ok(LotView {
                id: r.i64(0)?,
                remaining: r.i64(1)?,
                available_from: r.i64(2)?,
                expires_at: r.opt_i64(3)?,
            })
        },
    )
    .await
}

/// Pay a member's debt from a lot that just became available.
async fn repay_debt(conn: &mut Conn<'_>, member: i64, lot: i64) -> Result<(), StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT a.debt, l.remaining, l.entry_id FROM points_accounts a, points_lots l \
             WHERE a.member_id = $1 AND l.id = $2",
            &[member.into(), lot.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?)),
        )
        .await?;
    let Some((debt, remaining, entry)) = row else {
        return Ok(());
    };
    let pay = debt.min(remaining);
    if pay <= 0 {
        return Ok(());
    }
    draw(conn, entry, &[(lot, pay)]).await?;
    conn.exec(
        "UPDATE points_accounts SET debt = debt - $2 WHERE member_id = $1",
        &[member.into(), pay.into()],
    )
    .await?;
    Ok(())
}

/// Bring a locked member's lots up to `now`: pending lots whose time came
/// become available (paying any debt first), lots past their expiry expire.
async fn settle(
    uow: &mut UnitOfWork,
    member: i64,
    now: i64,
    report: &mut ExpiryReport,
) -> Result<(), StoreError> {
    let due = uow
        .conn()
        .fetch(
            "SELECT id FROM points_lots WHERE member_id = $1 AND matured = 0 AND expired = 0 AND available_from <= $2 ORDER BY id",
            &[member.into(), now.into()],
            |r| r.i64(0),
        )
        .await?;
    for lot in due {
        let mut c = uow.conn();
        c.exec(
            "UPDATE points_lots SET matured = 1 WHERE id = $1",
            &[lot.into()],
        )
        .await?;
        repay_debt(&mut c, member, lot).await?;
        report.matured += 1;
    }
    let expiring = uow
        .conn()
        .fetch(
            "SELECT id, remaining FROM points_lots WHERE member_id = $1 AND expired = 0 AND expires_at <= $2 ORDER BY id",
            &[member.into(), now.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
        .await?;
    for (lot, remaining) in expiring {
        if remaining > 0 {
            let key = format!("expire:{lot}");
            if let Some(entry) = insert_entry(
                uow,
                member,
                "expire",
                -remaining,
                "expiry",
                &format!("lot {lot}"),
                None,
                0,
                None,
                &key,
            )
            .await?
            {
                draw(&mut uow.conn(), entry, &[(lot, remaining)]).await?;
                uow.emit(DomainEvent::PointsExpired {
                    member_id: member,
                    points: remaining,
                    lot_id: lot,
                });
                report.points += remaining;
                report.lots += 1;
            }
        }
        uow.conn()
            .exec(
                "UPDATE points_lots SET expired = 1 WHERE id = $1",
                &[lot.into()],
            )
            .await?;
    }
    Ok(())
}

/// A new lot with its earn entry; None when the key was used already.
struct NewLot<'a> {
    member: i64,
    points: i64,
    kind: &'a str,
    reason: &'a str,
    source: String,
    reference: Option<&'a str>,
    key: String,
    earned_at: i64,
    available_from: i64,
    expires_at: Option<i64>,
    order: Option<(&'a str, &'a str, i64)>,
    version: Option<i64>,
    /// The account is known to have no debt in this transaction (no debt to
    /// repay from the new lot).
    debt_free: bool,
}

/// Write the earn entry and its lot: (lot id, entry id), None when the key
/// was used already.
async fn credit(uow: &mut UnitOfWork, l: NewLot<'_>) -> Result<Option<(i64, i64)>, StoreError> {
    let Some(entry) = insert_entry(
        uow,
        l.member,
        l.kind,
        l.points,
        l.reason,
        &l.source,
        l.reference,
        0,
        l.version,
        &l.key,
    )
    .await?
    else {
        return Ok(None);
    };
    let now = uow.now();
    let matured = l.available_from <= now;
    let (channel, order_id, gross) = match l.order {
        Some((c, o, g)) => (Some(c.to_string()), Some(o.to_string()), g),
        None => (None, None, 0),
    };
    let mut c = uow.conn();
    let lot = c
        .fetch_opt(
            "INSERT INTO points_lots (member_id, entry_id, amount, remaining, earned_at, available_from, expires_at, matured, channel, order_id, order_gross) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                l.member.into(),
                entry.into(),
                l.points.into(),
                l.earned_at.into(),
                l.available_from.into(),
                l.expires_at.into(),
                i64::from(matured).into(),
                channel.into(),
                order_id.into(),
                gross.into(),
            ],
            |r| r.i64(0),
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("lot insert returned no id".into()))?;
    if matured && !l.debt_free {
        repay_debt(&mut c, l.member, lot).await?;
    }
    uow.emit(DomainEvent::PointsEarned {
        member_id: l.member,
        points: l.points,
        entry_id: entry,
        reason: l.reason.to_string(),
        source: l.source,
        available_from: l.available_from,
        expires_at: l.expires_at,
    });
    Ok(Some((lot, entry)))
}

// ---- purchases ----

/// An order as earning sees it.
struct EarnOrder<'a> {
    channel: &'a str,
    order_id: &'a str,
    member: i64,
    status: OrderStatus,
    ordered_at: i64,
    gross: i64,
    refunded: i64,
    lines: Vec<(Option<&'a str>, i64)>,
}

/// Points for orders written in this unit of work: the one call the
/// order write path makes (after the analytics facts). New purchases at or
/// after the program's start earn (once: keyed by channel and order id);
/// refunds and cancellations reverse their lot in proportion.
pub async fn on_orders(uow: &mut UnitOfWork, changes: &[OrderChange]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let Some(pv) = current_program(&mut uow.conn()).await? else {
        return Ok(());
    };
    let orders: Vec<EarnOrder<'_>> = changes
        .iter()
        .map(|c| {
            let r = &c.record;
            EarnOrder {
                channel: r.channel.as_str(),
                order_id: r.order_id.as_str(),
                member: c.member_id,
                status: r.status,
                ordered_at: r.ordered_at.timestamp_millis(),
                gross: r.gross_amount().minor(),
                refunded: r.refunded.minor(),
                lines: r
                    .lines
                    .iter()
                    .map(|l| (l.brand.as_deref(), l.net_amount().minor()))
                    .collect(),
            }
        })
        .collect();
    apply_orders(uow, &pv, &orders, false).await
}

/// (channel, order id).
type OrderKey = (String, String);
/// A purchase lot: (lot id, member, amount, order gross, reversed so far).
type LotOfOrder = (i64, i64, i64, i64, i64);

async fn apply_orders(
    uow: &mut UnitOfWork,
    pv: &ProgramVersion,
    orders: &[EarnOrder<'_>],
    backfill: bool,
) -> Result<(), StoreError> {
    let p = &pv.program;
    let starts = p.starts_at();
    // Existing lots of these orders (their member may differ after a merge).
    let mut lots: HashMap<OrderKey, LotOfOrder> = HashMap::new();
    for o in orders {
        if let Some(l) = uow
            .conn()
            .fetch_opt(
                "SELECT id, member_id, amount, order_gross, reversed FROM points_lots WHERE channel = $1 AND order_id = $2",
                &[o.channel.into(), o.order_id.into()],
                |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?, r.i64(4)?)),
            )
            .await?
        {
            lots.insert((o.channel.to_string(), o.order_id.to_string()), l);
        }
    }
    let mut members: BTreeSet<i64> = orders.iter().map(|o| o.member).collect();
    members.extend(lots.values().map(|l| l.1));
    let now = uow.now();
    let mut report = ExpiryReport::default();
    for m in &members {
        lock_account(uow, *m).await?;
        settle(uow, *m, now, &mut report).await?;
    }
    let wants_birthday = p
        .bonus
        .iter()
        .any(|b| b.kind == rules::BonusKind::BirthdayMonth);
    let tz = p.tz().unwrap_or(chrono_tz::Asia::Shanghai);
    for o in orders {
        let key = (o.channel.to_string(), o.order_id.to_string());
        let earns = o.status.is_purchase()
            && !lots.contains_key(&key)
            && (backfill || o.ordered_at >= starts);
        if earns {
            let (earned_orders, tier) = uow
                .conn()
                .fetch_opt(
                    "SELECT earned_orders, tier FROM points_accounts WHERE member_id = $1",
                    &[o.member.into()],
                    |r| Ok((r.i64(0)?, r.opt_text(1)?)),
                )
                .await?
                .unwrap_or((0, None));
            let birthday_month = if wants_birthday {
                birthday_month(&mut uow.conn(), o.member, o.ordered_at, tz).await?
            } else {
                false
            };
            let points = p.points_for(&rules::EarnInput {
                channel: o.channel,
                lines: o.lines.clone(),
                paid: o.gross,
                first_order: earned_orders == 0,
                birthday_month,
                multiplier_percent: p.multiplier_of(tier.as_deref()),
            });
            if points > 0 {
                let lot = credit(
                    uow,
                    NewLot {
                        member: o.member,
                        points,
                        kind: "earn",
                        reason: if backfill { "backfill" } else { "purchase" },
                        source: format!("order {} {}", o.channel, o.order_id),
                        reference: None,
                        key: format!("earn:{}:{}", o.channel, o.order_id),
                        earned_at: o.ordered_at,
                        available_from: p.available_from(o.ordered_at),
                        expires_at: p.expires_at(o.ordered_at),
                        order: Some((o.channel, o.order_id, o.gross)),
                        version: Some(pv.version),
                        debt_free: false,
                    },
                )
                .await?;
                if let Some((lot, _)) = lot {
                    uow.conn()
                        .exec(
                            "UPDATE points_accounts SET earned_orders = earned_orders + 1 WHERE member_id = $1",
                            &[o.member.into()],
                        )
                        .await?;
                    lots.insert(key.clone(), (lot, o.member, points, o.gross, 0));
                    if p.tier_basis == rules::TierBasis::PointsEarned {
                        upgrade_tier(uow, p, o.member).await?;
                    }
                }
            }
        }
        if p.tier_basis == rules::TierBasis::NetSpend && o.status.is_purchase() {
            upgrade_tier(uow, p, o.member).await?;
        }
        // Refunds and cancellations: reverse to the proportional target.
        if let Some(&(lot, member, amount, gross, reversed)) = lots.get(&key) {
            let target = match o.status {
                OrderStatus::Refunded | OrderStatus::Cancelled => amount,
                _ => rules::reversal_target(amount, gross, o.refunded),
            };
            if target > reversed {
                reverse(
                    uow,
                    p,
                    member,
                    lot,
                    target - reversed,
                    &format!("{} {}", o.channel, o.order_id),
                    &format!("reverse:{}:{}:{}", o.channel, o.order_id, target),
                    now,
                )
                .await?;
                lots.insert(key, (lot, member, amount, gross, target));
            }
        }
    }
    for m in &members {
        refresh_account(&mut uow.conn(), *m).await?;
    }
    Ok(())
}

async fn birthday_month(
    conn: &mut Conn<'_>,
    member: i64,
    at: i64,
    tz: chrono_tz::Tz,
) -> Result<bool, StoreError> {
    use chrono::Datelike;
    let b = conn
        .fetch_opt(
            "SELECT birthday FROM members WHERE id = $1",
            &[member.into()],
            |r| r.opt_text(0),
        )
        .await?
        .flatten();
    let Some(b) = b.and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()) else {
        return Ok(false);
    };
    let month = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at)
        .map(|t| t.with_timezone(&tz).month());
    Ok(month == Some(b.month()))
}

/// Take `points` of a refunded order's lot back: from the lot itself, then
/// from the member's other available lots (earliest expiry first); the rest
/// follows the refund policy.
#[allow(clippy::too_many_arguments)]
async fn reverse(
    uow: &mut UnitOfWork,
    p: &Program,
    member: i64,
    lot: i64,
    points: i64,
    order: &str,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    let own = uow
        .conn()
        .fetch_opt(
            "SELECT remaining FROM points_lots WHERE id = $1",
            &[lot.into()],
            |r| r.i64(0),
        )
        .await?
        .unwrap_or(0);
    let from_own = own.min(points);
    let mut draws = Vec::new();
    if from_own > 0 {
        draws.push((lot, from_own));
    }
    let rest = points - from_own;
    let others: Vec<LotView> = member_lots(&mut uow.conn(), member)
        .await?
        .into_iter()
        .filter(|l| l.id != lot)
        .collect();
    let spendable: i64 = others
        .iter()
        .filter(|l| l.spendable(now))
        .map(|l| l.remaining)
        .sum();
    let from_others = rest.min(spendable);
    if from_others > 0 {
        draws.extend(
            rules::allocate(&others, now, from_others)
                .map_err(|e| StoreError::Corrupt(format!("reversal allocation: {e}")))?,
        );
    }
    let uncovered = rest - from_others;
    let taken = match p.refund_policy {
        RefundPolicy::WithinBalance => points - uncovered,
        RefundPolicy::AllowNegative => points,
    };
    let Some(entry) = insert_entry(
        uow,
        member,
        "reverse",
        -taken,
        "refund",
        &format!("order {order}"),
        None,
        uncovered,
        None,
        key,
    )
    .await?
    else {
        return Ok(());
    };
    let mut c = uow.conn();
    c.exec(
        "UPDATE points_lots SET reversed = reversed + $2 WHERE id = $1",
        &[lot.into(), points.into()],
    )
    .await?;
    draw(&mut c, entry, &draws).await?;
    if p.refund_policy == RefundPolicy::AllowNegative && uncovered > 0 {
        c.exec(
            "UPDATE points_accounts SET debt = debt + $2 WHERE member_id = $1",
            &[member.into(), uncovered.into()],
        )
        .await?;
    }
    uow.emit(DomainEvent::PointsReversed {
        member_id: member,
        points: taken,
        uncovered,
        order: order.to_string(),
    });
    Ok(())
}

/// The member's qualifying figure for tiers in the window ending at `at`
/// (inclusive): purchase points earned less what refunds reversed, or the
/// net spend of paid orders less refunds (minor units).
async fn tier_figure(
    conn: &mut Conn<'_>,
    p: &Program,
    member: i64,
    at: i64,
) -> Result<i64, StoreError> {
    let since = p.tier_window_start(at);
    let sql = match p.tier_basis {
        rules::TierBasis::PointsEarned => {
            "SELECT CAST(COALESCE(SUM(amount - reversed), 0) AS BIGINT) FROM points_lots \
             WHERE member_id = $1 AND earned_at > $2 AND earned_at <= $3 AND channel IS NOT NULL"
        }
        rules::TierBasis::NetSpend => {
            "SELECT CAST(COALESCE(SUM(gross_amount - refunded_amount), 0) AS BIGINT) FROM orders \
             WHERE member_id = $1 AND ordered_at > $2 AND ordered_at <= $3 AND status IN ('paid', 'partially_refunded')"
        }
    };
    Ok(conn
        .fetch_opt(sql, &[member.into(), since.into(), at.into()], |r| r.i64(0))
        .await?
        .unwrap_or(0))
}

fn figure_text(p: &Program, figure: i64) -> String {
    match p.tier_basis {
        rules::TierBasis::PointsEarned => {
            format!("{figure} points earned in {}", p.tier_window_text())
        }
        rules::TierBasis::NetSpend => format!(
            "net spend {figure} (minor units) in {}",
            p.tier_window_text()
        ),
    }
}

/// Move a member to `to` at `at`, with the history row and the
/// `tier_changed` event, in the caller's unit of work (account locked).
async fn set_tier(
    uow: &mut UnitOfWork,
    p: &Program,
    member: i64,
    from: Option<String>,
    to: Option<String>,
    at: i64,
    reason: String,
) -> Result<(), StoreError> {
    let review = to.as_ref().and_then(|_| p.tier_review_after(at));
    let mut c = uow.conn();
    c.exec(
        "UPDATE points_accounts SET tier = $2, tier_since = $3, tier_review_at = $4 WHERE member_id = $1",
        &[member.into(), to.clone().into(), at.into(), review.into()],
    )
    .await?;
    c.exec(
        "INSERT INTO points_tier_history (member_id, at, from_tier, to_tier, reason) VALUES ($1, $2, $3, $4, $5)",
        &[
            member.into(),
            at.into(),
            from.clone().into(),
            to.clone().into(),
            reason.clone().into(),
        ],
    )
    .await?;
    uow.emit(DomainEvent::TierChanged {
        member_id: member,
        from,
        to,
        reason,
    });
    Ok(())
}

/// Upgrade a member's tier at once when the figure in the window (points
/// earned or net spend) qualifies for a higher one; downgrades wait for the
/// review ([`Store::loyalty_tier_reviews`]).
async fn upgrade_tier(uow: &mut UnitOfWork, p: &Program, member: i64) -> Result<(), StoreError> {
    if p.tiers.is_empty() {
        return Ok(());
    }
    let now = uow.now();
    let figure = tier_figure(&mut uow.conn(), p, member, now).await?;
    let current = uow
        .conn()
        .fetch_opt(
            "SELECT tier FROM points_accounts WHERE member_id = $1",
            &[member.into()],
            |r| r.opt_text(0),
        )
        .await?
        .flatten();
    let Some(q) = p.tier_for(figure) else {
        return Ok(());
    };
    let rank = |name: Option<&str>| name.and_then(|n| p.tier_rank(n)).map_or(-1, |i| i as i64);
    if rank(Some(&q.name)) <= rank(current.as_deref()) {
        return Ok(());
    }
    let reason = format!("upgrade: {}", figure_text(p, figure));
    set_tier(uow, p, member, current, Some(q.name.clone()), now, reason).await
}

/// One tier change made by a review.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TierChange {
    /// The member.
    pub member_id: i64,
    /// The review's date, UTC ms.
    pub at: i64,
    /// Before.
    pub from: Option<String>,
    /// After (None: no tier).
    pub to: Option<String>,
    /// Why.
    pub reason: String,
}

/// What a tier review run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TierReviewReport {
    /// Reviews held (a member can have several when runs were missed).
    pub reviews: u64,
    /// Reviews that kept the tier.
    pub kept: u64,
    /// The changes, in order.
    pub changes: Vec<TierChange>,
}

/// Hold a member's reviews due by `as_of`, in the caller's unit of work.
async fn review_member(
    uow: &mut UnitOfWork,
    p: &Program,
    member: i64,
    as_of: i64,
    report: &mut TierReviewReport,
) -> Result<(), StoreError> {
    lock_account(uow, member).await?;
    // At most one review per period; a run after a long pause catches up.
    for _ in 0..1_000 {
        let row = uow
            .conn()
            .fetch_opt(
                "SELECT tier, tier_since, tier_review_at FROM points_accounts WHERE member_id = $1",
                &[member.into()],
                |r| Ok((r.opt_text(0)?, r.opt_i64(1)?, r.opt_i64(2)?)),
            )
            .await?;
        let Some((Some(tier), since, review_at)) = row else {
            return Ok(());
        };
        let Some(review_at) = review_at.or_else(|| p.tier_review_after(since.unwrap_or(as_of)))
        else {
            return Ok(());
        };
        if review_at > as_of {
            uow.conn()
                .exec(
                    "UPDATE points_accounts SET tier_review_at = $2 WHERE member_id = $1",
                    &[member.into(), review_at.into()],
                )
                .await?;
            return Ok(());
        }
        report.reviews += 1;
        let figure = tier_figure(&mut uow.conn(), p, member, review_at).await?;
        let to = p.review_tier(Some(&tier), figure).map(|t| t.name.clone());
        if to.as_deref() == Some(tier.as_str()) {
            report.kept += 1;
            let next = p.tier_review_after(review_at);
            uow.conn()
                .exec(
                    "UPDATE points_accounts SET tier_review_at = $2 WHERE member_id = $1",
                    &[member.into(), next.into()],
                )
                .await?;
            if next.is_none() {
                return Ok(());
            }
            continue;
        }
        let rule = match (
            p.tier_rank(&tier),
            to.as_deref().and_then(|t| p.tier_rank(t)),
        ) {
            (Some(a), b) if b.is_none_or(|b| b < a) => match p.tier_downgrade {
                rules::TierDowngrade::OneLevel => "downgrade one_level",
                rules::TierDowngrade::ToQualified => "downgrade to_qualified",
            },
            (None, _) => "the tier is no longer in the program",
            _ => "upgrade",
        };
        let day = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(review_at)
            .map(|t| {
                t.with_timezone(&p.tz().unwrap_or(chrono_tz::Asia::Shanghai))
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default();
        let reason = format!("review {day}: {}; {rule}", figure_text(p, figure));
        report.changes.push(TierChange {
            member_id: member,
            at: review_at,
            from: Some(tier.clone()),
            to: to.clone(),
            reason: reason.clone(),
        });
        set_tier(uow, p, member, Some(tier), to.clone(), review_at, reason).await?;
        if to.is_none() {
            return Ok(());
        }
    }
    Ok(())
}

// ---- spend, adjust ----

/// Spend `points` (> 0) of a member, in the caller's unit of work. `key` is
/// the idempotency key (scoped by the caller): a second call with it writes
/// nothing and returns the first entry.
pub async fn spend_in(
    uow: &mut UnitOfWork,
    member: i64,
    points: i64,
    reason: &str,
    reference: Option<&str>,
    source: &str,
    key: &str,
) -> Result<PointsWrite, StoreError> {
    if points <= 0 {
        return Err(StoreError::InvalidInput(
            "points to spend must be a positive integer".into(),
        ));
    }
    debit(
        uow,
        member,
        points,
        "spend",
        reason,
        reference,
        source,
        &format!("spend:{key}"),
    )
    .await
}

/// Take `points` from a member's available lots (soonest to expire first)
/// under `key`. On an error the caller's unit of work must be rolled back
/// (as every caller does by returning it): it may hold part of the change.
///
/// The common case is a handful of statements: lock the account of a current
/// member (one upsert), read its open lots, write the entry, draw, refresh
/// the account. Lots that matured or expired since the last write are
/// settled first, as before any write to the account.
#[allow(clippy::too_many_arguments)]
async fn debit(
    uow: &mut UnitOfWork,
    member: i64,
    points: i64,
    kind: &str,
    reason: &str,
    reference: Option<&str>,
    source: &str,
    key: &str,
) -> Result<PointsWrite, StoreError> {
    let mut debt = lock_current_account(uow, member).await?;
    let now = uow.now();
    let mut lots = open_lots(&mut uow.conn(), member).await?;
    if lots.iter().any(|l| l.needs_settling(now)) {
        settle(uow, member, now, &mut ExpiryReport::default()).await?;
        refresh_account(&mut uow.conn(), member).await?;
        lots = open_lots(&mut uow.conn(), member).await?;
        debt = account_debt(&mut uow.conn(), member).await?;
    }
    let Some(entry_id) = insert_entry(
        uow, member, kind, -points, reason, source, reference, 0, None, key,
    )
    .await?
    else {
        // Written before under this key: that entry, and the balance now.
        let entry = entry_by_key(&mut uow.conn(), key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("entry {key} is missing")))?;
        let available = refresh_account(&mut uow.conn(), member).await?;
        return Ok(PointsWrite {
            entry,
            available,
            created: false,
        });
    };
    let views: Vec<LotView> = lots.iter().filter(|l| l.matured).map(|l| l.view).collect();
    let draws = match rules::allocate(&views, now, points) {
        Ok(d) if debt == 0 => d,
        Ok(_) | Err(_) => {
            let spendable: i64 = views
                .iter()
                .filter(|l| l.spendable(now))
                .map(|l| l.remaining)
                .sum();
            return Err(StoreError::InsufficientPoints {
                needed: points,
                available: spendable - debt,
            });
        }
    };
    draw(&mut uow.conn(), entry_id, &draws).await?;
    let available = refresh_account(&mut uow.conn(), member).await?;
    uow.emit(DomainEvent::PointsSpent {
        member_id: member,
        points,
        entry_id,
        reason: reason.to_string(),
        reference: reference.map(str::to_string),
    });
    Ok(PointsWrite {
        entry: Entry {
            id: entry_id,
            member_id: member,
            at: now,
            kind: kind.to_string(),
            points: -points,
            reason: reason.to_string(),
            source: source.to_string(),
            reference: reference.map(str::to_string),
            uncovered: 0,
        },
        available,
        created: true,
    })
}

/// A lot that is not expired and has points left, as a write reads it.
struct OpenLot {
    view: LotView,
    matured: bool,
}

impl OpenLot {
    /// Whether [`settle`] has work on it at `now`: its pending time came,
    /// or it expired.
    fn needs_settling(&self, now: i64) -> bool {
        (!self.matured && self.view.available_from <= now)
            || self.view.expires_at.is_some_and(|e| e <= now)
    }
}

async fn open_lots(conn: &mut Conn<'_>, member: i64) -> Result<Vec<OpenLot>, StoreError> {
    conn.fetch(
        "SELECT id, remaining, available_from, expires_at, matured FROM points_lots \
         WHERE member_id = $1 AND expired = 0 AND remaining > 0",
        &[member.into()],
        |r| {
            Ok(OpenLot {
                view: LotView {
                    id: r.i64(0)?,
                    remaining: r.i64(1)?,
                    available_from: r.i64(2)?,
                    expires_at: r.opt_i64(3)?,
                },
                matured: r.i64(4)? == 1,
            })
        },
    )
    .await
}

async fn account_debt(conn: &mut Conn<'_>, member: i64) -> Result<i64, StoreError> {
    Ok(conn
        .fetch_opt(
            "SELECT debt FROM points_accounts WHERE member_id = $1",
            &[member.into()],
            |r| r.i64(0),
        )
        .await?
        .unwrap_or(0))
}

/// [`ensure_member`] and [`lock_account`] in one statement: create the
/// account of a current member if missing, lock it for this transaction, and
/// return its debt. A missing or merged-away member is the same error as
/// `ensure_member`'s.
async fn lock_current_account(uow: &mut UnitOfWork, member: i64) -> Result<i64, StoreError> {
    let now = uow.now();
    let mut c = uow.conn();
    let debt = c
        .fetch_opt(
            "INSERT INTO points_accounts (member_id, updated_at) \
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM members WHERE id = $1 AND merged_into IS NULL) \
             ON CONFLICT (member_id) DO UPDATE SET updated_at = excluded.updated_at \
             RETURNING debt",
            &[member.into(), now.into()],
            |r| r.i64(0),
        )
        .await?;
    match debt {
        Some(d) => Ok(d),
        None => {
            ensure_member(&mut c, member).await?;
            Err(StoreError::Corrupt(format!(
                "the points account of member {member} could not be locked"
            )))
        }
    }
}

/// Adjust a member's points by `points` (either sign, not 0): up creates a
/// lot available at once (expiring by the program); down draws like a spend.
pub async fn adjust_in(
    uow: &mut UnitOfWork,
    member: i64,
    points: i64,
    reason: &str,
    source: &str,
    key: &str,
) -> Result<PointsWrite, StoreError> {
    if points == 0 {
        return Err(StoreError::InvalidInput("an adjustment of 0 points".into()));
    }
    if reason.trim().is_empty() {
        return Err(StoreError::InvalidInput(
            "an adjustment needs a reason".into(),
        ));
    }
    let key = format!("adjust:{key}");
    if points < 0 {
        return debit(uow, member, -points, "adjust", reason, None, source, &key).await;
    }
    ensure_member(&mut uow.conn(), member).await?;
    lock_account(uow, member).await?;
    let now = uow.now();
    settle(uow, member, now, &mut ExpiryReport::default()).await?;
    let pv = current_program(&mut uow.conn()).await?;
    let created = credit(
        uow,
        NewLot {
            member,
            points,
            kind: "adjust",
            reason,
            source: source.to_string(),
            reference: None,
            key: key.clone(),
            earned_at: now,
            available_from: now,
            expires_at: pv.as_ref().and_then(|p| p.program.expires_at(now)),
            order: None,
            version: pv.as_ref().map(|p| p.version),
            debt_free: false,
        },
    )
    .await?
    .is_some();
    let available = refresh_account(&mut uow.conn(), member).await?;
    let entry = entry_by_key(&mut uow.conn(), &key)
        .await?
        .ok_or_else(|| StoreError::Corrupt("entry just written is missing".into()))?;
    Ok(PointsWrite {
        entry,
        available,
        created,
    })
}

pub(crate) async fn ensure_member(conn: &mut Conn<'_>, member: i64) -> Result<(), StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT merged_into FROM members WHERE id = $1",
            &[member.into()],
            |r| r.opt_i64(0),
        )
        .await?;
    match row {
        None => Err(StoreError::NotFound(format!("no member {member}"))),
        Some(Some(into)) => Err(StoreError::NotFound(format!(
            "member {member} was merged into {into}; use {into}"
        ))),
        Some(None) => Ok(()),
    }
}

// ---- codes ----

/// The claim-failure window: a sliding hour, counted in minute buckets.
const FAILURE_WINDOW_MS: i64 = 3_600_000;

/// Start of the minute of `at`.
fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60_000)
}

/// Seconds until a subject with these failure buckets (minute start,
/// failures), seen at `now`, has fewer than `limit` failures in the sliding
/// hour; None when it has fewer already. A bucket leaves the window 60
/// minutes after its minute started.
pub fn retry_after_secs(buckets: &[(i64, i64)], limit: u32, now: i64) -> Option<u64> {
    let mut live: Vec<(i64, i64)> = buckets
        .iter()
        .copied()
        .filter(|(m, _)| m + FAILURE_WINDOW_MS > now)
        .collect();
    live.sort_unstable();
    let total: i64 = live.iter().map(|b| b.1).sum();
    let mut excess = total - i64::from(limit) + 1;
    if excess <= 0 {
        return None;
    }
    for (m, n) in live {
        excess -= n;
        if excess <= 0 {
            let wait_ms = m + FAILURE_WINDOW_MS - now;
            return Some(((wait_ms + 999) / 1000).max(1) as u64);
        }
    }
    Some(1)
}

/// Refuse a claim when any subject has `limit` failures in the last 60
/// minutes (a sliding window, to the minute).
async fn check_limits(
    conn: &mut Conn<'_>,
    subjects: &[String],
    limit: u32,
    now: i64,
) -> Result<(), StoreError> {
    let mut wait = 0u64;
    for s in subjects {
        let buckets = conn
            .fetch(
                "SELECT minute_start, failures FROM loyalty_claim_failure_minutes WHERE subject = $1 AND minute_start > $2",
                &[s.as_str().into(), (now - FAILURE_WINDOW_MS).into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?;
        if let Some(w) = retry_after_secs(&buckets, limit, now) {
            wait = wait.max(w);
        }
    }
    if wait > 0 {
        return Err(StoreError::TooManyAttempts {
            retry_after_secs: wait,
        });
    }
    Ok(())
}

/// Count a failed claim for each subject, in its own transaction (it must
/// stay when the claim is refused); buckets older than the window go.
pub async fn record_failure(store: &Store, subjects: &[String]) -> Result<(), StoreError> {
    let mut uow = store.unit_of_work().await?;
    let now = uow.now();
    let minute = minute_of(now);
    for s in subjects {
        uow.conn()
            .exec(
                "INSERT INTO loyalty_claim_failure_minutes (subject, minute_start, failures) VALUES ($1, $2, 1) \
                 ON CONFLICT (subject, minute_start) DO UPDATE SET failures = loyalty_claim_failure_minutes.failures + 1",
                &[s.as_str().into(), minute.into()],
            )
            .await?;
        uow.conn()
            .exec(
                "DELETE FROM loyalty_claim_failure_minutes WHERE subject = $1 AND minute_start <= $2",
                &[s.as_str().into(), (now - FAILURE_WINDOW_MS).into()],
            )
            .await?;
    }
    uow.commit().await?;
    Ok(())
}

/// The subjects a claim counts against: the person and the client IP.
pub fn claim_subjects(person: &str, ip: Option<&str>) -> Vec<String> {
    let mut v = vec![format!("person:{person}")];
    if let Some(ip) = ip {
        v.push(format!("ip:{ip}"));
    }
    v
}

/// Before claiming: the limit, the code's form, and whether it exists and is
/// claimable (without writing). Returns the code's hash. Form errors and
/// unknown codes are counted as failures (committed on their own).
pub async fn precheck_claim(
    store: &Store,
    code: &str,
    subjects: &[String],
) -> Result<Vec<u8>, StoreError> {
    {
        let mut h = store.acquire().await?;
        let mut c = h.conn();
        let limit = current_program(&mut c)
            .await?
            .map_or(10, |p| p.program.code_failures_per_hour);
        check_limits(&mut c, subjects, limit, crate::now_ms()).await?;
    }
    let canonical = match rules::check_code(code) {
        Ok(c) => c,
        Err(e) => {
            record_failure(store, subjects).await?;
            return Err(StoreError::InvalidCode(e.to_string()));
        }
    };
    let hash = rules::code_hash(&canonical);
    let row = {
        let mut h = store.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT c.claimed_by, b.voided_at, b.expires_at FROM loyalty_codes c \
                 JOIN loyalty_code_batches b ON b.id = c.batch_id WHERE c.hash = $1",
                &[hash.clone().into()],
                |r| Ok((r.opt_i64(0)?, r.opt_i64(1)?, r.opt_i64(2)?)),
            )
            .await?
    };
    match row {
        None => {
            record_failure(store, subjects).await?;
            Err(StoreError::UnknownCode)
        }
        Some((Some(_), _, _)) => Err(StoreError::CodeAlreadyClaimed),
        Some((None, Some(_), _)) => Err(StoreError::UnknownCode),
        Some((None, None, Some(exp))) if exp <= crate::now_ms() => Err(StoreError::UnknownCode),
        Some(_) => Ok(hash),
    }
}

/// Claim a code for a member, in the caller's unit of work (after
/// [`precheck_claim`]): one atomic statement marks it claimed; exactly one
/// of concurrent claims succeeds.
pub async fn claim_in(
    uow: &mut UnitOfWork,
    hash: &[u8],
    member: i64,
) -> Result<Claimed, StoreError> {
    let debt = lock_current_account(uow, member).await?;
    let now = uow.now();
    let claimed = uow
        .conn()
        .fetch_opt(
            "UPDATE loyalty_codes SET claimed_by = $2, claimed_at = $3 WHERE hash = $1 AND claimed_by IS NULL \
             AND batch_id IN (SELECT id FROM loyalty_code_batches WHERE voided_at IS NULL AND (expires_at IS NULL OR expires_at > $3)) \
             RETURNING batch_id, \
               (SELECT b.points FROM loyalty_code_batches b WHERE b.id = loyalty_codes.batch_id), \
               (SELECT b.pending_days FROM loyalty_code_batches b WHERE b.id = loyalty_codes.batch_id)",
            &[hash.to_vec().into(), member.into(), now.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?)),
        )
        .await?;
    let Some((batch, points, pending_days)) = claimed else {
        let exists = uow
            .conn()
            .fetch_opt(
                "SELECT claimed_by FROM loyalty_codes WHERE hash = $1",
                &[hash.to_vec().into()],
                |r| r.opt_i64(0),
            )
            .await?;
        return Err(match exists {
            Some(Some(_)) => StoreError::CodeAlreadyClaimed,
            _ => StoreError::UnknownCode,
        });
    };
    let mut debt_free = debt == 0;
    if open_lots(&mut uow.conn(), member)
        .await?
        .iter()
        .any(|l| l.needs_settling(now))
    {
        settle(uow, member, now, &mut ExpiryReport::default()).await?;
        debt_free = account_debt(&mut uow.conn(), member).await? == 0;
    }
    let pv = current_program(&mut uow.conn()).await?;
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let (_, entry) = credit(
        uow,
        NewLot {
            member,
            points,
            kind: "earn",
            reason: "code",
            source: format!("batch {batch}"),
            reference: None,
            key: format!("code:{hex}"),
            earned_at: now,
            available_from: now + pending_days * 86_400_000,
            expires_at: pv.as_ref().and_then(|p| p.program.expires_at(now)),
            order: None,
            version: pv.as_ref().map(|p| p.version),
            debt_free,
        },
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("code {hex} was credited twice")))?;
    uow.conn()
        .exec(
            "UPDATE loyalty_codes SET entry_id = $2 WHERE hash = $1",
            &[hash.to_vec().into(), entry.into()],
        )
        .await?;
    let available = refresh_account(&mut uow.conn(), member).await?;
    uow.emit(DomainEvent::CodeClaimed {
        member_id: member,
        batch_id: batch,
        points,
    });
    Ok(Claimed {
        member_id: member,
        points,
        available,
        batch_id: batch,
        referral: None,
    })
}

/// Who a claim names: a member id, or an identifier (phone, e-mail,
/// WeChat unionid, ...) resolved like an order's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPerson {
    /// A known member.
    Member(i64),
    /// A person found, or created on the channel `scan`, by identity
    /// resolution.
    Identifier(touchpoint_core::Identifier),
}

impl ClaimPerson {
    /// The subject the failure limit counts against (with the client IP,
    /// see [`claim_subjects`]).
    pub fn subject(&self) -> String {
        match self {
            ClaimPerson::Member(m) => format!("member:{m}"),
            ClaimPerson::Identifier(i) => format!("{}:{}", i.kind().as_str(), i.value()),
        }
    }
}

/// The claim of a packaging code after [`precheck_claim`], in `uow`: the
/// person resolved (an identifier through `writer`, on the channel `scan`,
/// so an unknown person becomes a member), then the code claimed for them.
/// The one claim path: `POST /api/loyalty/codes/claim` and the demo call
/// it. `writer` is needed only for an identifier (hold the server's writer
/// lock for it: identity changes are serialised there). A `referral_code`
/// attributes the person to that invite code in the same unit of work (a
/// refusal is recorded and the claim goes through; an unknown code is
/// `NotFound` and nothing is claimed).
pub async fn claim_for(
    uow: &mut UnitOfWork,
    writer: Option<&mut crate::import::Writer>,
    hash: &[u8],
    person: &ClaimPerson,
    referral_code: Option<&str>,
) -> Result<Claimed, StoreError> {
    let member = match person {
        ClaimPerson::Member(m) => *m,
        ClaimPerson::Identifier(identifier) => {
            let Some(writer) = writer else {
                return Err(StoreError::InvalidInput(
                    "a claim by identifier needs the identity writer".into(),
                ));
            };
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            let record = touchpoint_core::identity::RecordRef {
                channel: "scan".into(),
                record_id: format!("code-{}", &hex[..16]),
            };
            let members = writer
                .resolve_in(uow, &[(record, vec![identifier.clone()])])
                .await?;
            members
                .first()
                .copied()
                .flatten()
                .ok_or_else(|| StoreError::Corrupt("identity resolution gave no member".into()))?
                .get()
        }
    };
    let mut claimed = claim_in(uow, hash, member).await?;
    if let Some(code) = referral_code {
        let at = uow.now();
        claimed.referral = Some(
            crate::referrals::attribute_in(
                uow,
                member,
                code,
                "claim",
                crate::referrals::Came::WithRecord { at },
            )
            .await?,
        );
    }
    Ok(claimed)
}

impl Store {
    /// Store a new program version (the file is checked first). Setting the
    /// same text as the current version changes nothing.
    pub async fn loyalty_set_program(&self, body: &str) -> Result<ProgramVersion, StoreError> {
        let program = Program::parse(body).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        let mut uow = self.unit_of_work().await?;
        let current = current_program(&mut uow.conn()).await?;
        if let Some(c) = current.as_ref().filter(|c| c.body == body) {
            let c = c.clone();
            uow.rollback().await?;
            return Ok(c);
        }
        let version = current.map_or(1, |c| c.version + 1);
        let now = uow.now();
        uow.conn()
            .exec(
                "INSERT INTO loyalty_programs (version, body, starts_at, created_at) VALUES ($1, $2, $3, $4)",
                &[version.into(), body.into(), program.starts_at().into(), now.into()],
            )
            .await?;
        uow.commit().await?;
        Ok(ProgramVersion {
            version,
            created_at: now,
            body: body.to_string(),
            program,
        })
    }

    /// The current program.
    pub async fn loyalty_program(&self) -> Result<Option<ProgramVersion>, StoreError> {
        let mut h = self.acquire().await?;
        current_program(&mut h.conn()).await
    }

    /// A member's points: balances, tier, open lots, latest `entries` entries.
    pub async fn points_balance(
        &self,
        member: i64,
        entries: usize,
    ) -> Result<PointsBalance, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        ensure_member(&mut c, member).await?;
        let (debt, tier) = c
            .fetch_opt(
                "SELECT debt, tier FROM points_accounts WHERE member_id = $1",
                &[member.into()],
                |r| Ok((r.i64(0)?, r.opt_text(1)?)),
            )
            .await?
            .unwrap_or((0, None));
        // As of now: lots that matured or expired since the last write or
        // expiry run count as they will once it runs (the stored account is
        // brought up to date by the next write to it).
        let now = crate::now_ms();
        let (spendable, pending) = c
            .fetch_opt(
                "SELECT CAST(COALESCE(SUM(CASE WHEN available_from <= $2 THEN remaining ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN available_from > $2 THEN remaining ELSE 0 END), 0) AS BIGINT) \
                 FROM points_lots WHERE member_id = $1 AND expired = 0 AND (expires_at IS NULL OR expires_at > $2)",
                &[member.into(), now.into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?
            .unwrap_or((0, 0));
        let available = spendable - debt;
        let lots = c
            .fetch(
                "SELECT id, amount, remaining, available_from, expires_at FROM points_lots \
                 WHERE member_id = $1 AND expired = 0 AND remaining > 0 ORDER BY COALESCE(expires_at, 9223372036854775807), id",
                &[member.into()],
                |r| {
                    Ok(Lot {
                        id: r.i64(0)?,
                        amount: r.i64(1)?,
                        remaining: r.i64(2)?,
                        available_from: r.i64(3)?,
                        expires_at: r.opt_i64(4)?,
                    })
                },
            )
            .await?;
        let entries = c
            .fetch(
                &format!("SELECT {ENTRY_COLS} FROM points_entries WHERE member_id = $1 ORDER BY id DESC LIMIT $2"),
                &[member.into(), (entries.min(10_000) as i64).into()],
                entry_of,
            )
            .await?;
        Ok(PointsBalance {
            member_id: member,
            available,
            pending,
            debt,
            tier,
            lots,
            entries,
        })
    }

    /// Spend points in a unit of work of its own.
    pub async fn points_spend(
        &self,
        member: i64,
        points: i64,
        reason: &str,
        reference: Option<&str>,
        source: &str,
        key: &str,
    ) -> Result<PointsWrite, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let w = spend_in(&mut uow, member, points, reason, reference, source, key).await?;
        uow.commit().await?;
        Ok(w)
    }

    /// Adjust points in a unit of work of its own.
    pub async fn points_adjust(
        &self,
        member: i64,
        points: i64,
        reason: &str,
        source: &str,
        key: &str,
    ) -> Result<PointsWrite, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let w = adjust_in(&mut uow, member, points, reason, source, key).await?;
        uow.commit().await?;
        Ok(w)
    }

    /// Claim a code for a known member (checks, then one unit of work).
    pub async fn code_claim(
        &self,
        code: &str,
        member: i64,
        ip: Option<&str>,
    ) -> Result<Claimed, StoreError> {
        let subjects = claim_subjects(&format!("member:{member}"), ip);
        let hash = precheck_claim(self, code, &subjects).await?;
        let mut uow = self.unit_of_work().await?;
        let c = claim_in(&mut uow, &hash, member).await?;
        uow.commit().await?;
        Ok(c)
    }

    /// Claim a code for a person, as `POST /api/loyalty/codes/claim` does
    /// ([`precheck_claim`], then [`claim_for`] in one unit of work).
    pub async fn code_claim_by(
        &self,
        writer: &mut crate::import::Writer,
        code: &str,
        person: &ClaimPerson,
        ip: Option<&str>,
    ) -> Result<Claimed, StoreError> {
        let subjects = claim_subjects(&person.subject(), ip);
        let hash = precheck_claim(self, code, &subjects).await?;
        let mut uow = self.unit_of_work().await?;
        let c = claim_for(&mut uow, Some(writer), &hash, person, None).await?;
        uow.commit().await?;
        Ok(c)
    }

    /// Create a batch of `count` codes worth `points` each. Only the hashes
    /// are stored; the codes are returned once.
    pub async fn codes_create_batch(
        &self,
        name: &str,
        count: usize,
        points: i64,
        sku: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<NewBatch, StoreError> {
        let mut codes = Vec::with_capacity(count.min(1_000_000));
        let id = self
            .codes_create_batch_with(name, count, points, sku, expires_at, &mut |chunk| {
                codes.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
        Ok(NewBatch { id, codes })
    }

    /// [`Store::codes_create_batch`] handing the codes to `sink` in chunks
    /// of 50,000 as they are stored, so that 10 million codes never sit in
    /// memory at once. The batch commits after the last chunk; a failing
    /// sink rolls it back.
    pub async fn codes_create_batch_with(
        &self,
        name: &str,
        count: usize,
        points: i64,
        sku: Option<&str>,
        expires_at: Option<i64>,
        sink: &mut (dyn FnMut(&[String]) -> Result<(), StoreError> + Send),
    ) -> Result<i64, StoreError> {
        self.codes_generate(
            &BatchSpec {
                name,
                count,
                points,
                sku,
                expires_at,
                pending_days: 0,
            },
            sink,
        )
        .await
    }

    /// Create a batch as `spec` says, handing the codes to `sink` in chunks
    /// (see [`Store::codes_create_batch_with`]); the one path every surface
    /// (CLI, API, demo) creates batches through. Returns the batch id.
    pub async fn codes_generate(
        &self,
        spec: &BatchSpec<'_>,
        sink: &mut (dyn FnMut(&[String]) -> Result<(), StoreError> + Send),
    ) -> Result<i64, StoreError> {
        let BatchSpec {
            name,
            count,
            points,
            sku,
            expires_at,
            pending_days,
        } = *spec;
        if points <= 0 || count == 0 || count > 10_000_000 || name.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "a batch needs a name, 1 to 10,000,000 codes and positive points".into(),
            ));
        }
        if pending_days > 3650 {
            return Err(StoreError::InvalidInput(
                "pending_days: expected 0 to 3650 days".into(),
            ));
        }
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let id = uow
            .conn()
            .fetch_opt(
                "INSERT INTO loyalty_code_batches (name, points, sku, expires_at, code_count, created_at, pending_days) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[
                    name.into(),
                    points.into(),
                    sku.map(str::to_string).into(),
                    expires_at.into(),
                    (count as i64).into(),
                    now.into(),
                    i64::from(pending_days).into(),
                ],
                |r| r.i64(0),
            )
            .await?
            .ok_or_else(|| StoreError::InvalidInput(format!("a batch named {name:?} exists")))?;
        let mut done = 0;
        while done < count {
            let n = (count - done).min(50_000);
            let chunk: Vec<String> = (0..n).map(|_| rules::generate_code()).collect();
            let mut vals = Vec::with_capacity(n * 2);
            for c in &chunk {
                vals.push(Val::B(rules::code_hash(c)));
                vals.push(Val::I(id));
            }
            let inserted = uow
                .conn()
                .insert_many(
                    "INSERT INTO loyalty_codes (hash, batch_id)",
                    "ON CONFLICT (hash) DO NOTHING",
                    2,
                    &vals,
                )
                .await?;
            if inserted as usize != n {
                // 80 random bits: a collision is all but impossible; refuse
                // rather than print a code that is not stored.
                return Err(StoreError::Corrupt(
                    "a generated code collided with a stored one; generate again".into(),
                ));
            }
            sink(&chunk)?;
            done += n;
        }
        uow.commit().await?;
        Ok(id)
    }

    /// Void a batch: its unclaimed codes can no longer be claimed.
    pub async fn codes_void_batch(&self, id: i64) -> Result<bool, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let n = uow
            .conn()
            .exec(
                "UPDATE loyalty_code_batches SET voided_at = $2 WHERE id = $1 AND voided_at IS NULL",
                &[id.into(), now.into()],
            )
            .await?;
        uow.commit().await?;
        Ok(n == 1)
    }

    /// Mark a batch's codes as downloaded; false when they were already.
    pub async fn codes_mark_downloaded(&self, id: i64) -> Result<bool, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let n = uow
            .conn()
            .exec(
                "UPDATE loyalty_code_batches SET downloaded_at = $2 WHERE id = $1 AND downloaded_at IS NULL",
                &[id.into(), now.into()],
            )
            .await?;
        uow.commit().await?;
        Ok(n == 1)
    }

    /// Expire every lot due at `as_of`, record expiring-soon reminders, and
    /// make due pending lots available; one entry per lot, ever.
    pub async fn points_expire(&self, as_of: i64) -> Result<ExpiryReport, StoreError> {
        let mut report = ExpiryReport::default();
        let soon = {
            let mut h = self.acquire().await?;
            current_program(&mut h.conn())
                .await?
                .map_or(30, |p| p.program.expiring_soon_days)
        };
        loop {
            let members = {
                let mut h = self.acquire().await?;
                h.conn()
                    .fetch(
                        "SELECT DISTINCT member_id FROM points_lots WHERE expired = 0 AND \
                         ((expires_at <= $1) OR (matured = 0 AND available_from <= $1)) ORDER BY member_id LIMIT 200",
                        &[as_of.into()],
                        |r| r.i64(0),
                    )
                    .await?
            };
            if members.is_empty() {
                break;
            }
            // One member per unit of work: only the order write path (under
            // the identity lock, so one at a time) ever holds several
            // account locks, so lock waits can never form a cycle.
            for m in &members {
                let mut uow = self.unit_of_work().await?;
                lock_account(&mut uow, *m).await?;
                settle(&mut uow, *m, as_of, &mut report).await?;
                refresh_account(&mut uow.conn(), *m).await?;
                uow.commit().await?;
            }
        }
        // Reminders: lots expiring within `soon` days, once each.
        let horizon = as_of + i64::from(soon) * 86_400_000;
        loop {
            let mut uow = self.unit_of_work().await?;
            let lots = uow
                .conn()
                .fetch(
                    "SELECT id, member_id, remaining, expires_at FROM points_lots \
                     WHERE expired = 0 AND reminded = 0 AND remaining > 0 AND expires_at > $1 AND expires_at <= $2 ORDER BY id LIMIT 1000",
                    &[as_of.into(), horizon.into()],
                    |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?)),
                )
                .await?;
            if lots.is_empty() {
                uow.rollback().await?;
                break;
            }
            for (lot, member, points, expires_at) in lots {
                uow.conn()
                    .exec(
                        "UPDATE points_lots SET reminded = 1 WHERE id = $1",
                        &[lot.into()],
                    )
                    .await?;
                uow.emit(DomainEvent::PointsExpiringSoon {
                    member_id: member,
                    points,
                    lot_id: lot,
                    expires_at,
                });
                report.reminders += 1;
            }
            uow.commit().await?;
        }
        Ok(report)
    }

    /// Hold the tier reviews due by `as_of` (UTC ms): each member whose
    /// review date has come keeps the tier if the figure in the window
    /// ending at the review date still qualifies, else moves down by the
    /// program's downgrade rule; each change is a history row and a
    /// `tier_changed` event in the same transaction. One member per unit of
    /// work; idempotent (a review moves the next one a period on, so a
    /// second run at the same `as_of` changes nothing).
    pub async fn loyalty_tier_reviews(&self, as_of: i64) -> Result<TierReviewReport, StoreError> {
        let mut report = TierReviewReport::default();
        let Some(pv) = self.loyalty_program().await? else {
            return Ok(report);
        };
        let p = &pv.program;
        if p.tiers.is_empty() || p.tier_review_after(as_of).is_none() {
            return Ok(report);
        }
        let mut after = i64::MIN;
        loop {
            let members = {
                let mut h = self.acquire().await?;
                h.conn()
                    .fetch(
                        "SELECT member_id FROM points_accounts WHERE tier IS NOT NULL \
                         AND (tier_review_at IS NULL OR tier_review_at <= $1) AND member_id > $2 \
                         ORDER BY member_id LIMIT 200",
                        &[as_of.into(), after.into()],
                        |r| r.i64(0),
                    )
                    .await?
            };
            let Some(&last) = members.last() else { break };
            for m in &members {
                let mut uow = self.unit_of_work().await?;
                review_member(&mut uow, p, *m, as_of, &mut report).await?;
                uow.commit().await?;
            }
            after = last;
        }
        Ok(report)
    }

    /// Earn points for stored orders placed since `since` (UTC ms), including
    /// those before the program's start; idempotent. Returns the orders seen.
    pub async fn loyalty_backfill(&self, since: i64) -> Result<u64, StoreError> {
        let Some(pv) = self.loyalty_program().await? else {
            return Err(StoreError::InvalidInput(
                "no loyalty program is set; set one with `touchpoint loyalty program set FILE`"
                    .into(),
            ));
        };
        type Row = (String, String, i64, String, i64, i64, i64);
        let mut after: (String, String) = (String::new(), String::new());
        let mut seen = 0u64;
        loop {
            let mut uow = self.unit_of_work().await?;
            // Several accounts in one transaction: take the identity lock
            // first, as the order write path does (see the module docs).
            crate::writes::lock_identity(&mut uow.conn()).await?;
            let rows: Vec<Row> = uow
                .conn()
                .fetch(
                    "SELECT channel, order_id, member_id, status, ordered_at, gross_amount, refunded_amount FROM orders \
                     WHERE ordered_at >= $1 AND (channel > $2 OR (channel = $2 AND order_id > $3)) \
                     ORDER BY channel, order_id LIMIT 500",
                    &[since.into(), after.0.clone().into(), after.1.clone().into()],
                    |r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?, r.text(3)?, r.i64(4)?, r.i64(5)?, r.i64(6)?)),
                )
                .await?;
            if rows.is_empty() {
                uow.rollback().await?;
                break;
            }
            let mut lines: HashMap<OrderKey, Vec<(Option<String>, i64)>> = HashMap::new();
            for (ch, id, ..) in &rows {
                let l = uow
                    .conn()
                    .fetch(
                        "SELECT p.brand, l.quantity * l.unit_price - l.discount FROM order_lines l \
                         LEFT JOIN products p ON p.sku = l.sku WHERE l.channel = $1 AND l.order_id = $2 ORDER BY l.line_no",
                        &[ch.as_str().into(), id.as_str().into()],
                        |r| Ok((r.opt_text(0)?, r.i64(1)?)),
                    )
                    .await?;
                lines.insert((ch.clone(), id.clone()), l);
            }
            let orders: Vec<EarnOrder<'_>> = rows
                .iter()
                .map(|(ch, id, m, st, at, gross, refunded)| EarnOrder {
                    channel: ch,
                    order_id: id,
                    member: *m,
                    status: OrderStatus::parse(st).unwrap_or(OrderStatus::Pending),
                    ordered_at: *at,
                    gross: *gross,
                    refunded: *refunded,
                    lines: lines
                        .get(&(ch.clone(), id.clone()))
                        .map(|v| v.iter().map(|(b, n)| (b.as_deref(), *n)).collect())
                        .unwrap_or_default(),
                })
                .collect();
            apply_orders(&mut uow, &pv, &orders, true).await?;
            seen += rows.len() as u64;
            let last = rows.last().expect("not empty");
            after = (last.0.clone(), last.1.clone());
            drop(orders);
            uow.commit().await?;
        }
        Ok(seen)
    }

    /// A member's entries, newest first.
    pub async fn points_history(
        &self,
        member: i64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(self.points_balance(member, limit).await?.entries)
    }
}

/// Store the response of an idempotent request inside the unit of work that
/// made the change, so the change and its stored response commit together.
/// Returns false when a response under the key exists already.
pub async fn save_response_in(
    uow: &mut UnitOfWork,
    scope: &str,
    key: &str,
    request_hash: &str,
    status: u16,
    response: &str,
) -> Result<bool, StoreError> {
    let now = uow.now();
    let n = uow
        .conn()
        .exec(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
            &[
                scope.into(),
                key.into(),
                request_hash.into(),
                i64::from(status).into(),
                response.into(),
                now.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The stored response under an idempotency key, read in the caller's unit
/// of work: (hash of the request, status, response body).
pub async fn response_in(
    uow: &mut UnitOfWork,
    scope: &str,
    key: &str,
) -> Result<Option<(String, u16, String)>, StoreError> {
    uow.conn()
        .fetch_opt(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
            &[scope.into(), key.into()],
            |r| Ok((r.text(0)?, u16::try_from(r.i64(1)?).unwrap_or(200), r.text(2)?)),
        )
        .await
}

/// `touchpoint report loyalty`: the points program's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LoyaltyReport {
    /// Per month (business time zone, `YYYY-MM`): points issued (earn and
    /// adjust up), spent (spend and adjust down), expired, reversed.
    pub months: Vec<MonthFlows>,
    /// Outstanding points (open lots) by the month they expire (`never`),
    /// with their money value, minor units.
    pub liability: Vec<Liability>,
    /// Outstanding points in total and their value, minor units.
    pub outstanding_points: i64,
    /// Value of the outstanding points, minor units.
    pub outstanding_value: i64,
    /// Expired points / issued points (0 when nothing was issued).
    pub breakage: f64,
    /// Members per tier (`none` without one).
    pub tiers: Vec<(String, i64)>,
    /// Tier changes: (from, to, count).
    pub tier_movements: Vec<(String, String, i64)>,
    /// Members whose first points came from a code, by the channel of their
    /// first earlier order (`none`: they had not bought before).
    pub joined_by_scan: Vec<(String, i64)>,
}

/// One month's flows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MonthFlows {
    /// `YYYY-MM`.
    pub month: String,
    /// Points credited.
    pub issued: i64,
    /// Points spent.
    pub spent: i64,
    /// Points expired.
    pub expired: i64,
    /// Points reversed by refunds.
    pub reversed: i64,
}

/// Outstanding points expiring in a month.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Liability {
    /// `YYYY-MM`, or `never`.
    pub expires: String,
    /// Points.
    pub points: i64,
    /// Their value, minor units.
    pub value: i64,
}

fn month_of(hour: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(hour * 3_600_000)
        .map(|t| t.with_timezone(&tz).format("%Y-%m").to_string())
        .unwrap_or_default()
}

impl Store {
    /// The loyalty report, months in the business time zone `tz`.
    pub async fn loyalty_report(&self, tz: chrono_tz::Tz) -> Result<LoyaltyReport, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let program = current_program(&mut c).await?;
        let value_of = |p: i64| program.as_ref().map_or(0, |v| v.program.value_of(p));
        let mut r = LoyaltyReport::default();
        // Hour buckets in SQL, months in Rust (time-zone aware, few rows).
        let flows = c
            .fetch(
                "SELECT kind, at / 3600000, CAST(SUM(CASE WHEN points > 0 THEN points ELSE 0 END) AS BIGINT), \
                 CAST(SUM(CASE WHEN points < 0 THEN -points ELSE 0 END) AS BIGINT) FROM points_entries GROUP BY kind, at / 3600000",
                &[],
                |row| Ok((row.text(0)?, row.i64(1)?, row.i64(2)?, row.i64(3)?)),
            )
            .await?;
        let mut months: std::collections::BTreeMap<String, MonthFlows> = Default::default();
        let (mut issued, mut expired) = (0, 0);
        for (kind, hour, up, down) in flows {
            let m = months.entry(month_of(hour, tz)).or_default();
            if kind == "release" {
                // Points of a released mall hold: a spend undone, not issued.
                m.spent -= up;
                continue;
            }
            issued += up;
            m.issued += up;
            match kind.as_str() {
                "expire" => {
                    m.expired += down;
                    expired += down;
                }
                "reverse" => m.reversed += down,
                _ => m.spent += down,
            }
        }
        r.months = months
            .into_iter()
            .map(|(month, f)| MonthFlows { month, ..f })
            .collect();
        r.breakage = if issued > 0 {
            expired as f64 / issued as f64
        } else {
            0.0
        };
        let open = c
            .fetch(
                "SELECT expires_at / 3600000, CAST(SUM(remaining) AS BIGINT) FROM points_lots \
                 WHERE expired = 0 AND remaining > 0 GROUP BY expires_at / 3600000",
                &[],
                |row| Ok((row.opt_i64(0)?, row.i64(1)?)),
            )
            .await?;
        let mut by_month: std::collections::BTreeMap<String, i64> = Default::default();
        for (hour, points) in open {
            let key = hour.map_or("never".to_string(), |h| month_of(h, tz));
            *by_month.entry(key).or_default() += points;
            r.outstanding_points += points;
        }
        r.outstanding_value = value_of(r.outstanding_points);
        r.liability = by_month
            .into_iter()
            .map(|(expires, points)| Liability {
                expires,
                points,
                value: value_of(points),
            })
            .collect();
        r.tiers = c
            .fetch(
                "SELECT COALESCE(tier, 'none'), CAST(COUNT(*) AS BIGINT) FROM points_accounts GROUP BY COALESCE(tier, 'none') ORDER BY 1",
                &[],
                |row| Ok((row.text(0)?, row.i64(1)?)),
            )
            .await?;
        r.tier_movements = c
            .fetch(
                "SELECT COALESCE(from_tier, 'none'), COALESCE(to_tier, 'none'), CAST(COUNT(*) AS BIGINT) FROM points_tier_history \
                 GROUP BY COALESCE(from_tier, 'none'), COALESCE(to_tier, 'none') ORDER BY 1, 2",
                &[],
                |row| Ok((row.text(0)?, row.text(1)?, row.i64(2)?)),
            )
            .await?;
        r.joined_by_scan = c
            .fetch(
                "SELECT ch, CAST(COUNT(*) AS BIGINT) FROM (SELECT COALESCE((SELECT o.channel FROM orders o \
                   WHERE o.member_id = e.member_id AND o.ordered_at <= e.at ORDER BY o.ordered_at LIMIT 1), 'none') AS ch \
                   FROM points_entries e WHERE e.reason = 'code' \
                   AND e.id = (SELECT MIN(x.id) FROM points_entries x WHERE x.member_id = e.member_id)) s \
                 GROUP BY ch ORDER BY ch",
                &[],
                |row| Ok((row.text(0)?, row.i64(1)?)),
            )
            .await?;
        Ok(r)
    }
}

/// Members merged in this unit of work: the absorbed member's points follow
/// it into the kept one (entries, lots and debt move, as orders do; the
/// merge itself is recorded in the identity log and as `member_merged`).
pub(crate) async fn on_merges(
    uow: &mut UnitOfWork,
    merges: &[(i64, i64)],
) -> Result<(), StoreError> {
    for &(kept, absorbed) in merges {
        let has = uow
            .conn()
            .fetch_opt(
                "SELECT debt, earned_orders FROM points_accounts WHERE member_id = $1",
                &[absorbed.into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?;
        let Some((debt, earned_orders)) = has else {
            continue;
        };
        // Lock both accounts in member order.
        let (a, b) = (kept.min(absorbed), kept.max(absorbed));
        lock_account(uow, a).await?;
        lock_account(uow, b).await?;
        let mut c = uow.conn();
        for sql in [
            "UPDATE points_entries SET member_id = $1 WHERE member_id = $2",
            "UPDATE points_lots SET member_id = $1 WHERE member_id = $2",
        ] {
            c.exec(sql, &[kept.into(), absorbed.into()]).await?;
        }
        c.exec(
            "UPDATE points_accounts SET debt = debt + $2, earned_orders = earned_orders + $3 WHERE member_id = $1",
            &[kept.into(), debt.into(), earned_orders.into()],
        )
        .await?;
        c.exec(
            "DELETE FROM points_accounts WHERE member_id = $1",
            &[absorbed.into()],
        )
        .await?;
        refresh_account(&mut c, kept).await?;
    }
    Ok(())
}

/// Give back the points of a spend (a released or lapsed points-mall hold),
/// in the caller's unit of work: one `release` entry, keyed `release:KEY`,
/// whose draws are negative and put the points back into the lots the spend
/// drew from (`spend:KEY`), so that every lot's remaining stays its amount
/// less its draws. Points of a lot that expired in the meantime are not
/// given back (they would have expired unspent). Returns the points given
/// back; 0 when the spend does not exist or was given back already.
pub async fn return_spend_in(
    uow: &mut UnitOfWork,
    member: i64,
    key: &str,
    reference: &str,
) -> Result<i64, StoreError> {
    lock_account(uow, member).await?;
    let release_key = format!("release:{key}");
    if entry_by_key(&mut uow.conn(), &release_key).await?.is_some() {
        return Ok(0);
    }
    let Some(spent) = entry_by_key(&mut uow.conn(), &format!("spend:{key}")).await? else {
        return Ok(0);
    };
    let now = uow.now();
    settle(uow, member, now, &mut ExpiryReport::default()).await?;
    let draws = uow
        .conn()
        .fetch(
            "SELECT d.lot_id, d.points FROM points_draws d JOIN points_lots l ON l.id = d.lot_id \
             WHERE d.entry_id = $1 AND l.expired = 0 AND (l.expires_at IS NULL OR l.expires_at > $2) ORDER BY d.lot_id",
            &[spent.id.into(), now.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
        .await?;
    let points: i64 = draws.iter().map(|d| d.1).sum();
    let entry = insert_entry(
        uow,
        member,
        "release",
        points,
        "release",
        reference,
        spent.reference.as_deref(),
        0,
        None,
        &release_key,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("entry {release_key} appeared under the lock")))?;
    let mut c = uow.conn();
    for (lot, p) in &draws {
        c.exec(
            "INSERT INTO points_draws (entry_id, lot_id, points) VALUES ($1, $2, $3)",
            &[entry.into(), (*lot).into(), (-*p).into()],
        )
        .await?;
        c.exec(
            "UPDATE points_lots SET remaining = remaining + $2 WHERE id = $1",
            &[(*lot).into(), (*p).into()],
        )
        .await?;
    }
    refresh_account(&mut c, member).await?;
    uow.emit(DomainEvent::PointsReturned {
        member_id: member,
        points,
        reference: reference.to_string(),
    });
    Ok(points)
}
