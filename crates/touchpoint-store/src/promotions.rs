//! Discount rules (promotions): the rule file, stored in versions like the
//! points program, and the evaluation of an order against the rules and the
//! coupons it carries, with no side effect. The rules and the stacking order
//! are in [`touchpoint_core::promotions`]; see docs/promotions.md.
//!
//! An evaluation reads, on one connection: the current rule file, the
//! member's purchases since the start of the longest cumulative period (one
//! query over `orders`, `order_lines` and `products`), and each code through
//! the coupons' own checks ([`crate::coupons`]: code, member, window, uses).
//! What a coupon gives is decided by the core on the amounts the rules left.

use serde::Serialize;
use touchpoint_core::coupons::normalise_code;
use touchpoint_core::promotions::{
    self as rules, CouponIn, Evaluation, OrderIn, PastLine, Promotions,
};

use crate::db::Conn;
use crate::{Store, StoreError};

/// A stored version of the rule file.
#[derive(Debug, Clone, Serialize)]
pub struct PromotionsVersion {
    /// 1, 2, ...
    pub version: i64,
    /// When it was set, UTC ms.
    pub created_at: i64,
    /// The file as given.
    pub body: String,
    /// Parsed.
    pub rules: Promotions,
}

/// An evaluation and the rule version it used.
#[derive(Debug, Clone, Serialize)]
pub struct PromotionsEvaluation {
    /// The rule file version (None: no rules are set; coupons only).
    pub rules_version: Option<i64>,
    /// The discounts.
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

async fn current(conn: &mut Conn<'_>) -> Result<Option<PromotionsVersion>, StoreError> {
    let row = conn
        .fetch_opt(
            "SELECT version, created_at, body FROM promotion_rules ORDER BY version DESC LIMIT 1",
            &[],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.text(2)?)),
        )
        .await?;
    let Some((version, created_at, body)) = row else {
        return Ok(None);
    };
    let rules = Promotions::parse(&body)
        .map_err(|e| StoreError::Corrupt(format!("promotions version {version}: {e}")))?;
    Ok(Some(PromotionsVersion {
        version,
        created_at,
        body,
        rules,
    }))
}

/// The member's purchase lines (paid or partially refunded orders) placed in
/// `[from, to)`: one query.
async fn history(
    conn: &mut Conn<'_>,
    member: i64,
    from: i64,
    to: i64,
) -> Result<Vec<PastLine>, StoreError> {
    conn.fetch(
        "SELECT o.channel, l.sku, p.brand, p.category, o.ordered_at, l.quantity, \
         l.quantity * l.unit_price - l.discount \
         FROM orders o JOIN order_lines l ON l.channel = o.channel AND l.order_id = o.order_id \
         LEFT JOIN products p ON p.sku = l.sku \
         WHERE o.member_id = $1 AND o.ordered_at >= $2 AND o.ordered_at < $3 \
         AND o.status IN ('paid', 'partially_refunded')",
        &[member.into(), from.into(), to.into()],
        |r| {
            Ok(PastLine {
                channel: r.text(0)?,
                sku: r.text(1)?,
                brand: r.opt_text(2)?,
                category: r.opt_text(3)?,
                ordered_at: r.i64(4)?,
                units: r.i64(5)?,
                spend: r.i64(6)?,
            })
        },
    )
    .await
}

impl Store {
    /// Store a new version of the rule file (checked first). The same text
    /// as the current version changes nothing.
    pub async fn promotions_set(&self, body: &str) -> Result<PromotionsVersion, StoreError> {
        let parsed =
            Promotions::parse(body).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        let mut uow = self.unit_of_work().await?;
        let cur = current(&mut uow.conn()).await?;
        if let Some(c) = cur.as_ref().filter(|c| c.body == body) {
            let c = c.clone();
            uow.rollback().await?;
            return Ok(c);
        }
        let version = cur.map_or(1, |c| c.version + 1);
        let now = uow.now();
        uow.conn()
            .exec(
                "INSERT INTO promotion_rules (version, body, created_at) VALUES ($1, $2, $3)",
                &[version.into(), body.into(), now.into()],
            )
            .await?;
        uow.commit().await?;
        Ok(PromotionsVersion {
            version,
            created_at: now,
            body: body.to_string(),
            rules: parsed,
        })
    }

    /// The current rule file, if one is set.
    pub async fn promotions(&self) -> Result<Option<PromotionsVersion>, StoreError> {
        let mut h = self.acquire().await?;
        current(&mut h.conn()).await
    }

    /// What the rules and `codes` give for a member's order, with no side
    /// effect. Coupons are checked at `order.ordered_at`; a code that cannot
    /// be used, or gives nothing for the basket, refuses the evaluation
    /// ([`StoreError::CouponCode`]).
    pub async fn promotions_evaluate(
        &self,
        member: i64,
        order: &OrderIn,
        codes: &[String],
    ) -> Result<PromotionsEvaluation, StoreError> {
        if order.lines.is_empty() {
            return Err(StoreError::InvalidInput(
                "lines: expected at least one line {sku, brand, category, quantity, unit_price}"
                    .into(),
            ));
        }
        if let Some((i, _)) = order
            .lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.quantity < 1 || l.unit_price < 0 || l.sku.trim().is_empty())
        {
            return Err(StoreError::InvalidInput(format!(
                "lines[{i}]: expected a sku, a quantity of 1 or more and a unit_price of 0 or more minor units"
            )));
        }
        if order.paid_at.is_some_and(|p| p < order.ordered_at) {
            return Err(StoreError::InvalidInput(
                "paid_at: expected a time at or after ordered_at".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in codes {
            if !seen.insert(normalise_code(c)) {
                return Err(StoreError::InvalidInput(format!(
                    "codes: {c:?} is given twice; send each code once"
                )));
            }
        }
        let mut h = self.acquire().await?;
        let mut conn = h.conn();
        let version = current(&mut conn).await?;
        let empty = Promotions::parse("").map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let p = version.as_ref().map_or(&empty, |v| &v.rules);
        let past = match p.history_from(order.ordered_at) {
            Some(from) => history(&mut conn, member, from, order.ordered_at).await?,
            None => Vec::new(),
        };
        let mut coupons = Vec::with_capacity(codes.len());
        for code in codes {
            let (c, def) = crate::coupons::usable(&mut conn, code, member, order.ordered_at)
                .await
                .map_err(|e| match e {
                    StoreError::Coupon(refusal) => StoreError::CouponCode {
                        code: normalise_code(code),
                        refusal,
                    },
                    e => e,
                })?;
            coupons.push(CouponIn {
                code: c.code,
                coupon_id: c.id,
                definition_id: def.id,
                rules: def.rules,
            });
        }
        let evaluation =
            rules::evaluate(p, order, &past, &coupons).map_err(|e| StoreError::CouponCode {
                code: e.code,
                refusal: e.refusal,
            })?;
        Ok(PromotionsEvaluation {
            rules_version: version.map(|v| v.version),
            evaluation,
        })
    }
}
