//! The stored CLV predictions of one member (table `member_predictions`,
//! written by `touchpoint clv predict`), for the member 360 view.

use serde::Serialize;
use touchpoint_core::MemberId;

use crate::{Store, StoreError};

/// One model's stored prediction for a member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPrediction {
    /// The purchase model (`bgnbd`, `mbgnbd`, `paretonbd`).
    pub model: String,
    /// Probability the member is still a customer.
    pub p_alive: f64,
    /// Expected purchase days over the horizon.
    pub expected_purchases: f64,
    /// Expected spend per purchase, currency units; `null` without a spend model.
    pub expected_spend: Option<f64>,
    /// Discounted value over the horizon, currency units; `null` without a spend model.
    pub clv: Option<f64>,
    /// Horizon in days.
    pub horizon_days: f64,
    /// UTC milliseconds of the run that last changed the row.
    pub computed_at: i64,
}

impl Store {
    /// The stored predictions of one member (every model, by model name).
    /// Pass the member's current id (see [`Store::resolve_member_id`]).
    pub async fn predictions_of_member(
        &self,
        member: MemberId,
    ) -> Result<Vec<StoredPrediction>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT model, p_alive, expected_purchases, expected_spend, clv, horizon, computed_at \
                 FROM member_predictions WHERE member_id = $1 ORDER BY model",
                &[crate::Val::I(member.get())],
                |r| {
                    Ok(StoredPrediction {
                        model: r.text(0)?,
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
