//! CLV over the store: members' purchases as model input, and per-member
//! predictions as output.
//!
//! Input: one transaction per purchase order (status `paid` or
//! `partially_refunded`), keyed by the member who owns it, with its UTC time
//! and net amount (gross less refunds, minor units). Output: the
//! `member_predictions` table (migration `0004_clv.sql`), one row per member
//! and model, rewritten by each prediction run: upserts that only touch rows
//! whose values changed, and deletes rows of members no longer predicted (for
//! example merged away), all in one transaction.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use sqlx::Row;

use crate::db::Val;
use crate::{Handle, Store, StoreError};

/// The SQL that selects purchases: member, UTC milliseconds, net minor
/// units. No ORDER BY: a plain scan, so the database does not sort (CLV
/// summaries sort each customer's purchases themselves).
const PURCHASES_SQL: &str = "SELECT member_id, ordered_at, gross_amount - refunded_amount \
     FROM orders WHERE status IN ('paid', 'partially_refunded')";

/// Members' purchases as columns, in no particular order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseColumns {
    /// Member id of each purchase (the active member owning the order).
    pub member_id: Vec<i64>,
    /// Order time, UTC milliseconds.
    pub ordered_at: Vec<i64>,
    /// Net amount (gross less refunds), minor units.
    pub net_amount: Vec<i64>,
}

impl PurchaseColumns {
    /// Number of purchases.
    pub fn len(&self) -> usize {
        self.member_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.member_id.is_empty()
    }
}

/// One member's prediction from a purchase model (and Gamma-Gamma for spend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemberPrediction {
    /// Member id.
    pub member_id: i64,
    /// Probability the member is still a customer.
    pub p_alive: f64,
    /// Expected purchase days over the horizon.
    pub expected_purchases: f64,
    /// Expected spend per purchase (currency units); `None` without a spend
    /// model (no repeat buyers).
    pub expected_spend: Option<f64>,
    /// Discounted value over the horizon (currency units); `None` without a
    /// spend model.
    pub clv: Option<f64>,
    /// Horizon in days.
    pub horizon_days: f64,
    /// UTC milliseconds of the run that last changed the row.
    pub computed_at: i64,
}

/// What [`Store::store_predictions`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PredictionWrite {
    /// Rows inserted or updated (rows whose values did not change are not
    /// touched and not counted).
    pub upserted: u64,
    /// Rows of this model deleted because their member was not predicted.
    pub removed: u64,
}

impl Store {
    /// All members' purchases, streamed from the database into compact
    /// columns (no per-row allocation).
    pub async fn purchase_transactions(&self) -> Result<PurchaseColumns, StoreError> {
        let mut out = PurchaseColumns::default();
        let mut h = self.acquire().await?;
        let mut push = |m: i64, t: i64, a: i64| {
            out.member_id.push(m);
            out.ordered_at.push(t);
            out.net_amount.push(a);
        };
        match &mut h {
            Handle::Sqlite(c) => {
                let mut rows = sqlx::query(PURCHASES_SQL).fetch(&mut **c);
                while let Some(r) = rows.try_next().await? {
                    push(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                }
            }
            Handle::Pg(c) => {
                let mut rows = sqlx::query(PURCHASES_SQL).fetch(&mut **c);
                while let Some(r) = rows.try_next().await? {
                    push(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                }
            }
        }
        Ok(out)
    }

    /// Replace the predictions of `model` (e.g. `bgnbd`) with `rows`, in one
    /// transaction. Idempotent: writing the same rows again changes nothing
    /// (not even `computed_at`).
    pub async fn store_predictions(
        &self,
        model: &str,
        rows: &[MemberPrediction],
    ) -> Result<PredictionWrite, StoreError> {
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        let existing: Vec<i64> = c
            .fetch(
                "SELECT member_id FROM member_predictions WHERE model = $1",
                &[model.into()],
                |r| r.i64(0),
            )
            .await?;
        let keep: HashSet<i64> = rows.iter().map(|r| r.member_id).collect();
        let stale: Vec<i64> = existing.into_iter().filter(|m| !keep.contains(m)).collect();
        let mut removed = 0;
        for chunk in stale.chunks(1000) {
            let params = c.param_list(1, chunk.len() + 1);
            let (first, rest) = params.split_once(',').expect("at least two placeholders");
            let mut vals: Vec<Val> = Vec::with_capacity(chunk.len() + 1);
            vals.push(model.into());
            vals.extend(chunk.iter().map(|&m| Val::I(m)));
            removed += c
                .exec(
                    &format!(
                        "DELETE FROM member_predictions WHERE model = {first} AND member_id IN ({rest})"
                    ),
                    &vals,
                )
                .await?;
        }
        let mut vals: Vec<Val> = Vec::with_capacity(rows.len() * 8);
        for r in rows {
            vals.extend([
                Val::I(r.member_id),
                model.into(),
                Val::F(r.p_alive),
                Val::F(r.expected_purchases),
                Val::OF(r.expected_spend),
                Val::OF(r.clv),
                Val::F(r.horizon_days),
                Val::I(r.computed_at),
            ]);
        }
        let upserted = c
            .insert_many(
                "INSERT INTO member_predictions (member_id, model, p_alive, expected_purchases, \
                 expected_spend, clv, horizon, computed_at)",
                "ON CONFLICT (member_id, model) DO UPDATE SET p_alive = excluded.p_alive, \
                 expected_purchases = excluded.expected_purchases, \
                 expected_spend = excluded.expected_spend, clv = excluded.clv, \
                 horizon = excluded.horizon, computed_at = excluded.computed_at \
                 WHERE member_predictions.p_alive IS DISTINCT FROM excluded.p_alive \
                 OR member_predictions.expected_purchases IS DISTINCT FROM excluded.expected_purchases \
                 OR member_predictions.expected_spend IS DISTINCT FROM excluded.expected_spend \
                 OR member_predictions.clv IS DISTINCT FROM excluded.clv \
                 OR member_predictions.horizon IS DISTINCT FROM excluded.horizon",
                8,
                &vals,
            )
            .await?;
        tx.commit().await?;
        Ok(PredictionWrite { upserted, removed })
    }

    /// The stored predictions of `model`, by member id.
    pub async fn member_predictions(
        &self,
        model: &str,
    ) -> Result<Vec<MemberPrediction>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT member_id, p_alive, expected_purchases, expected_spend, clv, horizon, computed_at \
                 FROM member_predictions WHERE model = $1 ORDER BY member_id",
                &[model.into()],
                |r| {
                    Ok(MemberPrediction {
                        member_id: r.i64(0)?,
                        p_alive: r.f64(1)?,
                        expected_purchases: r.f64(2)?,
                        expected_spend: r.opt_f64(3)?,
                        clv: r.opt_f64(4)?,
                        horizon_days: r.f64(5)?,
                        computed_at: r.i64(6)?,
                    })
                },
            )
            .await
    }
}
