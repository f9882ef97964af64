//! Coupons: definitions, issued codes (member-bound or public), validation
//! without side effects, redemption, the coupons orders carry, refunds that
//! give them back, and usage per definition. The rules are in
//! [`touchpoint_core::coupons`]; see docs/rewards.md.
//!
//! **Concurrency.** A use is taken by one conditional statement
//! (`UPDATE coupons SET uses = uses + 1 WHERE id = .. AND uses < max_uses`),
//! and a member's use of a public code likewise on `coupon_member_uses`: of
//! concurrent redemptions of a single-use coupon exactly one changes the row;
//! the others are refused with [`Refusal::AlreadyRedeemed`].
//!
//! **Idempotency.** A redemption is unique per coupon and order reference:
//! redeeming the same code for the same order again returns the first
//! redemption and takes no second use. An issue has a unique key.

use serde::Serialize;
use touchpoint_core::coupons::{self as rules, Basket, BasketLine, CouponRules, Discount, Refusal};
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::OrderStatus;

use crate::db::{Conn, RowRef};
use crate::import::OrderChange;
use crate::unit_of_work::UnitOfWork;
use crate::{Store, StoreError};

/// A coupon definition.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CouponDefinition {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The rules.
    pub rules: CouponRules,
    /// Created, UTC ms.
    pub created_at: i64,
}

/// An issued coupon.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Coupon {
    /// Id.
    pub id: i64,
    /// Its definition.
    pub definition_id: i64,
    /// The code.
    pub code: String,
    /// The member it is bound to (None: a public code).
    pub member_id: Option<i64>,
    /// Uses allowed in total (1 for a member coupon).
    pub max_uses: i64,
    /// Uses allowed per member (public codes).
    pub per_member_limit: Option<i64>,
    /// Uses so far.
    pub uses: i64,
    /// Valid from, UTC ms.
    pub valid_from: Option<i64>,
    /// Valid until (exclusive), UTC ms.
    pub valid_until: Option<i64>,
    /// Issued, UTC ms.
    pub issued_at: i64,
    /// How it was issued (`mall reward N`, `admin KEY`, `bulk FILE`, `public`).
    pub source: String,
    /// `available`, `redeemed` (all uses taken) or `expired`, as of now.
    pub state: String,
}

/// What a code gives for a member and basket.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Validation {
    /// The code.
    pub code: String,
    /// The coupon.
    pub coupon_id: i64,
    /// Its definition.
    pub definition_id: i64,
    /// Whether it combines with other coupons.
    pub stackable: bool,
    /// Its priority among stackable coupons.
    pub priority: i64,
    /// What it takes off.
    #[serde(flatten)]
    pub discount: Discount,
}

/// A redemption.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Redemption {
    /// Id.
    pub id: i64,
    /// The coupon.
    pub coupon_id: i64,
    /// The code.
    pub code: String,
    /// The member.
    pub member_id: i64,
    /// The order.
    pub order_reference: String,
    /// The order amount, minor units.
    pub amount: i64,
    /// The discount, minor units.
    pub discount: i64,
    /// When, UTC ms.
    pub at: i64,
    /// Given back by a refund, UTC ms.
    pub returned_at: Option<i64>,
    /// False when this call found the order's earlier redemption.
    pub created: bool,
}

/// Usage of one definition.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CouponUsage {
    /// The definition.
    pub definition_id: i64,
    /// Its name.
    pub name: String,
    /// Coupons issued (a public code counts once).
    pub issued: i64,
    /// Redemptions (not given back).
    pub redeemed: i64,
    /// Member coupons that expired unused.
    pub expired: i64,
    /// Redemptions given back by refunds.
    pub returned: i64,
    /// Revenue of the orders that used it, minor units.
    pub revenue: i64,
    /// Discounts given, minor units.
    pub discount: i64,
}

const COUPON_COLS: &str = "id, definition_id, code, member_id, max_uses, per_member_limit, uses, valid_from, valid_until, issued_at, source";

fn coupon_of(r: RowRef<'_>, now: i64) -> Result<Coupon, StoreError> {
    let uses = r.i64(6)?;
    let max_uses = r.i64(4)?;
    let valid_until = r.opt_i64(8)?;
    let state = if uses >= max_uses {
        "redeemed"
    } else if valid_until.is_some_and(|u| u <= now) {
        "expired"
    } else {
        "available"
    };
    Ok(Coupon {
        id: r.i64(0)?,
        definition_id: r.i64(1)?,
        code: r.text(2)?,
        member_id: r.opt_i64(3)?,
        max_uses,
        per_member_limit: r.opt_i64(5)?,
        uses,
        valid_from: r.opt_i64(7)?,
        valid_until,
        issued_at: r.i64(9)?,
        source: r.text(10)?,
        state: state.to_string(),
    })
}

fn definition_of(r: RowRef<'_>) -> Result<CouponDefinition, StoreError> {
    let id = r.i64(0)?;
    let rules: CouponRules = serde_json::from_str(&r.text(2)?)
        .map_err(|e| StoreError::Corrupt(format!("coupon definition {id}: {e}")))?;
    Ok(CouponDefinition {
        id,
        name: r.text(1)?,
        rules,
        created_at: r.i64(3)?,
    })
}

async fn definition(conn: &mut Conn<'_>, id: i64) -> Result<CouponDefinition, StoreError> {
    conn.fetch_opt(
        "SELECT id, name, rules, created_at FROM coupon_definitions WHERE id = $1",
        &[id.into()],
        definition_of,
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no coupon definition {id}")))
}

async fn coupon_by_code(
    conn: &mut Conn<'_>,
    code: &str,
    now: i64,
) -> Result<Option<Coupon>, StoreError> {
    conn.fetch_opt(
        &format!("SELECT {COUPON_COLS} FROM coupons WHERE code = $1"),
        &[rules::normalise_code(code).into()],
        |r| coupon_of(r, now),
    )
    .await
}

pub(crate) async fn coupon_by_id(
    conn: &mut Conn<'_>,
    id: i64,
    now: i64,
) -> Result<Coupon, StoreError> {
    conn.fetch_opt(
        &format!("SELECT {COUPON_COLS} FROM coupons WHERE id = $1"),
        &[id.into()],
        |r| coupon_of(r, now),
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("coupon {id} is missing")))
}

/// A member coupon's code: 16 Crockford base32 characters of 80 random bits
/// and a check character (the packaging-code generator).
fn new_code() -> String {
    touchpoint_core::loyalty::generate_code()
}

/// Issue a coupon of `definition` to `member` in the caller's unit of work;
/// `key` makes it happen once (the same key returns the first coupon).
pub async fn issue_in(
    uow: &mut UnitOfWork,
    definition_id: i64,
    member: i64,
    source: &str,
    key: &str,
) -> Result<Coupon, StoreError> {
    let now = uow.now();
    let def = definition(&mut uow.conn(), definition_id).await?;
    let exists = uow
        .conn()
        .fetch_opt(
            "SELECT id FROM members WHERE id = $1 AND merged_into IS NULL",
            &[member.into()],
            |r| r.i64(0),
        )
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!(
            "no member {member} (or it was merged into another)"
        )));
    }
    let (from, until) = def.rules.window(now);
    let id = uow
        .conn()
        .fetch_opt(
            "INSERT INTO coupons (definition_id, code, member_id, max_uses, valid_from, valid_until, issued_at, source, issue_key) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8) ON CONFLICT (issue_key) DO NOTHING RETURNING id",
            &[
                definition_id.into(),
                new_code().into(),
                member.into(),
                from.into(),
                until.into(),
                now.into(),
                source.into(),
                key.into(),
            ],
            |r| r.i64(0),
        )
        .await?;
    let Some(id) = id else {
        let c = uow
            .conn()
            .fetch_opt(
                &format!("SELECT {COUPON_COLS} FROM coupons WHERE issue_key = $1"),
                &[key.into()],
                |r| coupon_of(r, now),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("coupon issue {key} is missing")))?;
        return Ok(c);
    };
    uow.emit(DomainEvent::CouponIssued {
        member_id: member,
        coupon_id: id,
        definition_id,
    });
    coupon_by_id(&mut uow.conn(), id, now).await
}

/// Check a code for a member and basket, on the caller's connection: the
/// coupon and what it gives, or why it gives nothing.
async fn check(
    conn: &mut Conn<'_>,
    code: &str,
    member: i64,
    basket: &Basket,
    now: i64,
) -> Result<(Coupon, CouponDefinition, Discount), StoreError> {
    let (c, def) = usable(conn, code, member, now).await?;
    let d = rules::discount(&def.rules, basket).map_err(StoreError::Coupon)?;
    Ok((c, def, d))
}

/// Whether a code can be used by a member at `now`, before looking at a
/// basket: it exists, is the member's (or public), is in its window and has
/// uses left (in all and for the member). The promotions evaluation uses
/// this and decides what the coupon gives on the basket after the rules.
pub(crate) async fn usable(
    conn: &mut Conn<'_>,
    code: &str,
    member: i64,
    now: i64,
) -> Result<(Coupon, CouponDefinition), StoreError> {
    let Some(c) = coupon_by_code(conn, code, now).await? else {
        return Err(StoreError::Coupon(Refusal::UnknownCode));
    };
    if c.member_id.is_some_and(|m| m != member) {
        return Err(StoreError::Coupon(Refusal::WrongMember));
    }
    rules::check_window(c.valid_from, c.valid_until, now).map_err(StoreError::Coupon)?;
    let def = definition(conn, c.definition_id).await?;
    if c.uses >= c.max_uses {
        return Err(StoreError::Coupon(if c.member_id.is_some() {
            Refusal::AlreadyRedeemed
        } else {
            Refusal::LimitReached {
                reason: format!("this code was used {} times, its total limit", c.max_uses),
            }
        }));
    }
    if let Some(limit) = c.per_member_limit {
        let used = conn
            .fetch_opt(
                "SELECT uses FROM coupon_member_uses WHERE coupon_id = $1 AND member_id = $2",
                &[c.id.into(), member.into()],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        if used >= limit {
            return Err(StoreError::Coupon(Refusal::LimitReached {
                reason: format!("this member used this code {used} times, its limit per member"),
            }));
        }
    }
    Ok((c, def))
}

fn redemption_of(r: RowRef<'_>, created: bool) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        id: r.i64(0)?,
        coupon_id: r.i64(1)?,
        code: r.text(2)?,
        member_id: r.i64(3)?,
        order_reference: r.text(4)?,
        amount: r.i64(5)?,
        discount: r.i64(6)?,
        at: r.i64(7)?,
        returned_at: r.opt_i64(8)?,
        created,
    })
}

const REDEMPTION_SELECT: &str = "SELECT r.id, r.coupon_id, c.code, r.member_id, r.order_reference, r.amount, r.discount, r.at, r.returned_at \
     FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id";

async fn earlier_redemption(
    conn: &mut Conn<'_>,
    coupon: i64,
    order_reference: &str,
) -> Result<Option<Redemption>, StoreError> {
    conn.fetch_opt(
        &format!("{REDEMPTION_SELECT} WHERE r.coupon_id = $1 AND r.order_reference = $2"),
        &[coupon.into(), order_reference.into()],
        |r| redemption_of(r, false),
    )
    .await
}

/// Take one use of a coupon (and of the member's share of a public code)
/// and record the redemption, in the caller's unit of work. The statement
/// that takes the use is conditional, so concurrent callers cannot both
/// take the last one.
async fn take_use(
    uow: &mut UnitOfWork,
    c: &Coupon,
    member: i64,
    channel: Option<&str>,
    order_reference: &str,
    amount: i64,
    discount: i64,
) -> Result<Redemption, StoreError> {
    let now = uow.now();
    let n = uow
        .conn()
        .exec(
            "UPDATE coupons SET uses = uses + 1 WHERE id = $1 AND uses < max_uses",
            &[c.id.into()],
        )
        .await?;
    if n != 1 {
        return Err(StoreError::Coupon(if c.member_id.is_some() {
            Refusal::AlreadyRedeemed
        } else {
            Refusal::LimitReached {
                reason: format!("this code was used {} times, its total limit", c.max_uses),
            }
        }));
    }
    if let Some(limit) = c.per_member_limit {
        let mut conn = uow.conn();
        conn.exec(
            "INSERT INTO coupon_member_uses (coupon_id, member_id, uses) VALUES ($1, $2, 0) ON CONFLICT (coupon_id, member_id) DO NOTHING",
            &[c.id.into(), member.into()],
        )
        .await?;
        let n = conn
            .exec(
                "UPDATE coupon_member_uses SET uses = uses + 1 WHERE coupon_id = $1 AND member_id = $2 AND uses < $3",
                &[c.id.into(), member.into(), limit.into()],
            )
            .await?;
        if n != 1 {
            undo_use(&mut conn, c.id).await?;
            return Err(StoreError::Coupon(Refusal::LimitReached {
                reason: format!("this member used this code {limit} times, its limit per member"),
            }));
        }
    }
    let id = uow
        .conn()
        .fetch_opt(
            "INSERT INTO coupon_redemptions (coupon_id, definition_id, member_id, channel, order_reference, amount, discount, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (coupon_id, order_reference) DO NOTHING RETURNING id",
            &[
                c.id.into(),
                c.definition_id.into(),
                member.into(),
                channel.map(str::to_string).into(),
                order_reference.into(),
                amount.into(),
                discount.into(),
                now.into(),
            ],
            |r| r.i64(0),
        )
        .await?;
    let Some(id) = id else {
        // A concurrent redemption of the same order got in first: its use
        // is the order's one.
        let mut conn = uow.conn();
        undo_use(&mut conn, c.id).await?;
        if c.per_member_limit.is_some() {
            conn.exec(
                "UPDATE coupon_member_uses SET uses = uses - 1 WHERE coupon_id = $1 AND member_id = $2 AND uses > 0",
                &[c.id.into(), member.into()],
            )
            .await?;
        }
        return Err(StoreError::Coupon(Refusal::AlreadyRedeemed));
    };
    uow.emit(DomainEvent::CouponRedeemed {
        member_id: member,
        coupon_id: c.id,
        order_reference: order_reference.to_string(),
        discount,
        returned: false,
    });
    Ok(Redemption {
        id,
        coupon_id: c.id,
        code: c.code.clone(),
        member_id: member,
        order_reference: order_reference.to_string(),
        amount,
        discount,
        at: now,
        returned_at: None,
        created: true,
    })
}

async fn undo_use(conn: &mut Conn<'_>, coupon: i64) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE coupons SET uses = uses - 1 WHERE id = $1 AND uses > 0",
        &[coupon.into()],
    )
    .await?;
    Ok(())
}

/// Redeem a code for a member's order in the caller's unit of work. The same
/// code and order again returns the first redemption.
pub async fn redeem_in(
    uow: &mut UnitOfWork,
    code: &str,
    member: i64,
    order_reference: &str,
    basket: &Basket,
) -> Result<Redemption, StoreError> {
    if order_reference.trim().is_empty() {
        return Err(StoreError::InvalidInput(
            "order_reference: expected the order's id".into(),
        ));
    }
    let now = uow.now();
    if let Some(c) = coupon_by_code(&mut uow.conn(), code, now).await? {
        if c.member_id.is_none_or(|m| m == member) {
            if let Some(r) = earlier_redemption(&mut uow.conn(), c.id, order_reference).await? {
                return Ok(r);
            }
        }
    }
    let (c, _def, d) = check(&mut uow.conn(), code, member, basket, now).await?;
    let amount = basket_amount(basket);
    take_use(
        uow,
        &c,
        member,
        basket.channel.as_deref(),
        order_reference,
        amount,
        d.discount,
    )
    .await
}

fn basket_amount(b: &Basket) -> i64 {
    if b.lines.is_empty() {
        b.amount
    } else {
        b.lines.iter().map(|l| l.quantity * l.unit_price).sum()
    }
}

/// Give back a redemption (a refunded order), once: the coupon's use (and
/// the member's use of a public code) is taken back.
async fn give_back(uow: &mut UnitOfWork, r: &Redemption) -> Result<bool, StoreError> {
    let now = uow.now();
    let mut c = uow.conn();
    let n = c
        .exec(
            "UPDATE coupon_redemptions SET returned_at = $2 WHERE id = $1 AND returned_at IS NULL",
            &[r.id.into(), now.into()],
        )
        .await?;
    if n != 1 {
        return Ok(false);
    }
    c.exec(
        "UPDATE coupons SET uses = uses - 1 WHERE id = $1 AND uses > 0",
        &[r.coupon_id.into()],
    )
    .await?;
    c.exec(
        "UPDATE coupon_member_uses SET uses = uses - 1 WHERE coupon_id = $1 AND member_id = $2 AND uses > 0",
        &[r.coupon_id.into(), r.member_id.into()],
    )
    .await?;
    uow.emit(DomainEvent::CouponRedeemed {
        member_id: r.member_id,
        coupon_id: r.coupon_id,
        order_reference: r.order_reference.clone(),
        discount: r.discount,
        returned: true,
    });
    Ok(true)
}

/// The coupons of orders written in this unit of work (called by the order
/// write path, like the points): a purchase carrying a code marks it
/// redeemed for the order when it was not yet (a code that is unknown, of
/// another member, or used up is left alone: the order stands); a refunded
/// or cancelled order gives back the coupons whose definition says so.
pub async fn on_orders(uow: &mut UnitOfWork, changes: &[OrderChange]) -> Result<(), StoreError> {
    let now = uow.now();
    for ch in changes {
        let r = &ch.record;
        let order = r.order_id.as_str();
        let channel = r.channel.as_str();
        if r.status.is_purchase() {
            for code in &r.coupon_codes {
                let Some(c) = coupon_by_code(&mut uow.conn(), code, now).await? else {
                    tracing::info!(code = %code, order, "an order names an unknown coupon code");
                    continue;
                };
                if c.member_id.is_some_and(|m| m != ch.member_id) {
                    continue;
                }
                if earlier_redemption(&mut uow.conn(), c.id, order)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let def = definition(&mut uow.conn(), c.definition_id).await?;
                let basket = Basket {
                    channel: Some(channel.to_string()),
                    amount: r.gross_amount().minor(),
                    lines: r
                        .lines
                        .iter()
                        .map(|l| BasketLine {
                            sku: l.sku.clone(),
                            brand: l.brand.clone(),
                            category: l.category.clone(),
                            quantity: l.quantity,
                            unit_price: l.unit_price.minor(),
                        })
                        .collect(),
                };
                let discount = rules::discount(&def.rules, &basket).map_or(0, |d| d.discount);
                let amount = r.gross_amount().minor() - r.refunded.minor();
                match take_use(
                    uow,
                    &c,
                    ch.member_id,
                    Some(channel),
                    order,
                    amount,
                    discount,
                )
                .await
                {
                    Ok(_) => {}
                    // Used up by others: the order stands, the coupon is not
                    // marked twice.
                    Err(StoreError::Coupon(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if matches!(r.status, OrderStatus::Refunded | OrderStatus::Cancelled) {
            let used = uow
                .conn()
                .fetch(
                    &format!(
                        "{REDEMPTION_SELECT} JOIN coupon_definitions d ON d.id = r.definition_id \
                         WHERE r.order_reference = $1 AND (r.channel = $2 OR r.channel IS NULL) AND r.returned_at IS NULL"
                    ),
                    &[order.into(), channel.into()],
                    |row| redemption_of(row, false),
                )
                .await?;
            for red in used {
                let def_id = coupon_by_id(&mut uow.conn(), red.coupon_id, now)
                    .await?
                    .definition_id;
                let def = definition(&mut uow.conn(), def_id).await?;
                if def.rules.return_on_refund {
                    give_back(uow, &red).await?;
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Create a coupon definition (rules checked). The same name with the
    /// same rules returns the existing one; with other rules it is refused.
    pub async fn coupon_define(
        &self,
        name: &str,
        rules: &CouponRules,
    ) -> Result<CouponDefinition, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "name: expected a coupon definition name".into(),
            ));
        }
        rules.check().map_err(StoreError::InvalidInput)?;
        let body = serde_json::to_string(rules)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialise coupon rules: {e}")))?;
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let id = uow
            .conn()
            .fetch_opt(
                "INSERT INTO coupon_definitions (name, rules, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[name.into(), body.into(), now.into()],
                |r| r.i64(0),
            )
            .await?;
        let def = match id {
            Some(id) => definition(&mut uow.conn(), id).await?,
            None => {
                let d = uow
                    .conn()
                    .fetch_opt(
                        "SELECT id, name, rules, created_at FROM coupon_definitions WHERE name = $1",
                        &[name.into()],
                        definition_of,
                    )
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("coupon definition {name:?}")))?;
                if &d.rules != rules {
                    return Err(StoreError::InvalidInput(format!(
                        "a coupon definition named {name:?} exists with other rules; use another name"
                    )));
                }
                d
            }
        };
        uow.commit().await?;
        Ok(def)
    }

    /// Every coupon definition.
    pub async fn coupon_definitions(&self) -> Result<Vec<CouponDefinition>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT id, name, rules, created_at FROM coupon_definitions ORDER BY id",
                &[],
                definition_of,
            )
            .await
    }

    /// One definition, by id or name.
    pub async fn coupon_definition(
        &self,
        id_or_name: &str,
    ) -> Result<CouponDefinition, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let found = match id_or_name.parse::<i64>() {
            Ok(id) => {
                c.fetch_opt(
                    "SELECT id, name, rules, created_at FROM coupon_definitions WHERE id = $1",
                    &[id.into()],
                    definition_of,
                )
                .await?
            }
            Err(_) => {
                c.fetch_opt(
                    "SELECT id, name, rules, created_at FROM coupon_definitions WHERE name = $1",
                    &[id_or_name.into()],
                    definition_of,
                )
                .await?
            }
        };
        found.ok_or_else(|| StoreError::NotFound(format!("no coupon definition {id_or_name:?}")))
    }

    /// Issue one coupon to a member (its own unit of work).
    pub async fn coupon_issue(
        &self,
        definition_id: i64,
        member: i64,
        source: &str,
        key: &str,
    ) -> Result<Coupon, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let c = issue_in(&mut uow, definition_id, member, source, key).await?;
        uow.commit().await?;
        Ok(c)
    }

    /// Issue one coupon to each member, in one unit of work; `key` scopes the
    /// issue keys (`KEY:MEMBER`), so running it again issues nothing twice.
    pub async fn coupon_issue_bulk(
        &self,
        definition_id: i64,
        members: &[i64],
        source: &str,
        key: &str,
    ) -> Result<Vec<Coupon>, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            out.push(issue_in(&mut uow, definition_id, *m, source, &format!("{key}:{m}")).await?);
        }
        uow.commit().await?;
        Ok(out)
    }

    /// Create a public code of a definition: `total_limit` uses in all,
    /// `per_member_limit` per member.
    pub async fn coupon_public(
        &self,
        definition_id: i64,
        code: &str,
        total_limit: i64,
        per_member_limit: Option<i64>,
    ) -> Result<Coupon, StoreError> {
        let code = rules::normalise_code(code);
        if code.len() < 4
            || code.len() > 64
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(StoreError::InvalidInput(format!(
                "code {code:?}: expected 4 to 64 letters, digits or dashes"
            )));
        }
        if total_limit <= 0 || per_member_limit.is_some_and(|l| l <= 0) {
            return Err(StoreError::InvalidInput(
                "limits: expected a positive total limit and, if given, a positive limit per member"
                    .into(),
            ));
        }
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let def = definition(&mut uow.conn(), definition_id).await?;
        let (from, until) = def.rules.window(now);
        let id = uow
            .conn()
            .fetch_opt(
                "INSERT INTO coupons (definition_id, code, member_id, max_uses, per_member_limit, valid_from, valid_until, issued_at, source, issue_key) \
                 VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, 'public', $8) ON CONFLICT DO NOTHING RETURNING id",
                &[
                    definition_id.into(),
                    code.clone().into(),
                    total_limit.into(),
                    per_member_limit.into(),
                    from.into(),
                    until.into(),
                    now.into(),
                    format!("public:{code}").into(),
                ],
                |r| r.i64(0),
            )
            .await?
            .ok_or_else(|| StoreError::InvalidInput(format!("the code {code:?} exists")))?;
        let c = coupon_by_id(&mut uow.conn(), id, now).await?;
        uow.commit().await?;
        Ok(c)
    }

    /// What a code gives for a member and basket, with no side effect.
    pub async fn coupon_validate(
        &self,
        code: &str,
        member: i64,
        basket: &Basket,
    ) -> Result<Validation, StoreError> {
        let mut h = self.acquire().await?;
        let (c, def, d) = check(&mut h.conn(), code, member, basket, crate::now_ms()).await?;
        Ok(Validation {
            code: c.code,
            coupon_id: c.id,
            definition_id: def.id,
            stackable: def.rules.stackable,
            priority: def.rules.priority,
            discount: d,
        })
    }

    /// Redeem a code for a member's order (its own unit of work).
    pub async fn coupon_redeem(
        &self,
        code: &str,
        member: i64,
        order_reference: &str,
        basket: &Basket,
    ) -> Result<Redemption, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let r = redeem_in(&mut uow, code, member, order_reference, basket).await?;
        uow.commit().await?;
        Ok(r)
    }

    /// A member's coupons, newest first.
    pub async fn member_coupons(&self, member: i64) -> Result<Vec<Coupon>, StoreError> {
        let now = crate::now_ms();
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                &format!("SELECT {COUPON_COLS} FROM coupons WHERE member_id = $1 ORDER BY id DESC LIMIT 200"),
                &[member.into()],
                |r| coupon_of(r, now),
            )
            .await
    }

    /// The coupons of a definition (newest first, at most `limit`).
    pub async fn coupons_of(
        &self,
        definition_id: i64,
        limit: usize,
    ) -> Result<Vec<Coupon>, StoreError> {
        let now = crate::now_ms();
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                &format!("SELECT {COUPON_COLS} FROM coupons WHERE definition_id = $1 ORDER BY id DESC LIMIT $2"),
                &[definition_id.into(), (limit.min(100_000) as i64).into()],
                |r| coupon_of(r, now),
            )
            .await
    }

    /// Usage per definition: issued, redeemed, expired, given back, revenue.
    pub async fn coupon_usage(&self) -> Result<Vec<CouponUsage>, StoreError> {
        let now = crate::now_ms();
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT d.id, d.name, \
                 CAST((SELECT COUNT(*) FROM coupons c WHERE c.definition_id = d.id) AS BIGINT), \
                 CAST((SELECT COUNT(*) FROM coupon_redemptions r WHERE r.definition_id = d.id AND r.returned_at IS NULL) AS BIGINT), \
                 CAST((SELECT COUNT(*) FROM coupons c WHERE c.definition_id = d.id AND c.member_id IS NOT NULL \
                       AND c.uses < c.max_uses AND c.valid_until <= $1) AS BIGINT), \
                 CAST((SELECT COUNT(*) FROM coupon_redemptions r WHERE r.definition_id = d.id AND r.returned_at IS NOT NULL) AS BIGINT), \
                 CAST((SELECT COALESCE(SUM(r.amount), 0) FROM coupon_redemptions r WHERE r.definition_id = d.id AND r.returned_at IS NULL) AS BIGINT), \
                 CAST((SELECT COALESCE(SUM(r.discount), 0) FROM coupon_redemptions r WHERE r.definition_id = d.id AND r.returned_at IS NULL) AS BIGINT) \
                 FROM coupon_definitions d ORDER BY d.id",
                &[now.into()],
                |r| {
                    Ok(CouponUsage {
                        definition_id: r.i64(0)?,
                        name: r.text(1)?,
                        issued: r.i64(2)?,
                        redeemed: r.i64(3)?,
                        expired: r.i64(4)?,
                        returned: r.i64(5)?,
                        revenue: r.i64(6)?,
                        discount: r.i64(7)?,
                    })
                },
            )
            .await
    }
}
