//! CLV over the store: members' purchases as model input, and per-member
//! predictions as output.
//!
//! Input: one transaction per purchase order (status `paid` or
//! `partially_refunded`), keyed by the member who owns it, with its UTC time
//! and net amount (gross less refunds, minor units). Output: the
//! `member_predictions` table (migration `0004_clv.sql`), one row per member
//! and model, rewritten by each prediction run: upserts that only touch rows
//! whose values changed, and deletes rows of members no longer predicted (for
//! example merged away), all in one transaction, with the fitted model's
//! summary in `clv_models` (migration `0007_clv_models.sql`).
//!
//! The store-backed pipeline: [`Store::clv_fit`] and [`Store::clv_predict`]
//! take a typed request and return a typed, serialisable result; the CLI
//! and the HTTP server call them. The numerical work is
//! [`touchpoint_core::clv::pipeline`], run on a blocking thread.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;
use touchpoint_core::clv::pipeline::{
    self, ClvOptions, Dataset, FitResult, ModelKind, ModelSummary, Predictions, Tz,
};
use touchpoint_core::clv::ClvError;

use crate::db::{Conn, Val};
use crate::{Handle, Store, StoreError};

/// Errors of the store-backed CLV pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ClvRunError {
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The models could not be fitted (bad options, no data).
    #[error(transparent)]
    Clv(#[from] ClvError),
    /// The store has no purchases to model.
    #[error("the store has no paid orders: import orders first (touchpoint import ..., or touchpoint demo)")]
    NoPurchases,
}

/// `clv fit` on the members' purchases.
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// Purchase models to fit.
    pub models: Vec<ModelKind>,
    /// Summary and prediction options.
    pub options: ClvOptions,
    /// Business time zone deciding each purchase's date.
    pub timezone: Tz,
}

/// `clv predict` on the members' purchases.
#[derive(Debug, Clone)]
pub struct PredictRequest {
    /// Purchase model to predict with.
    pub model: ModelKind,
    /// Summary and prediction options.
    pub options: ClvOptions,
    /// Business time zone deciding each purchase's date.
    pub timezone: Tz,
    /// Store the predictions in `member_predictions` and the model in
    /// `clv_models` (false: compute only).
    pub store: bool,
}

/// What [`Store::clv_predict`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PredictOutcome {
    /// The fitted model, as stored in `clv_models`.
    pub summary: ModelSummary,
    /// Members predicted.
    pub predicted: usize,
    /// What was written (`None` when not stored).
    pub write: Option<PredictionWrite>,
    /// The data set the predictions index into (member ids as customer
    /// ids).
    #[serde(skip)]
    pub dataset: Dataset,
    /// Per-member predictions.
    #[serde(skip)]
    pub predictions: Predictions,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClvError> + Send + 'static,
) -> Result<T, ClvRunError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClvRunError::Clv(ClvError::Invalid(format!("CLV task failed: {e}"))))?
        .map_err(ClvRunError::Clv)
}

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

    /// The members' purchases as a CLV data set (dates in `tz`).
    pub async fn clv_dataset(&self, tz: Tz) -> Result<Dataset, ClvRunError> {
        let cols = self.purchase_transactions().await?;
        if cols.is_empty() {
            return Err(ClvRunError::NoPurchases);
        }
        blocking(move || {
            Dataset::from_member_purchases(&cols.member_id, &cols.ordered_at, &cols.net_amount, tz)
        })
        .await
    }

    /// Fit purchase models and Gamma-Gamma on the members' purchases.
    pub async fn clv_fit(&self, req: &FitRequest) -> Result<FitResult, ClvRunError> {
        let ds = self.clv_dataset(req.timezone).await?;
        let (models, opts) = (req.models.clone(), req.options);
        blocking(move || pipeline::fit(&ds, &models, &opts)).await
    }

    /// Fit one model on the members' purchases, predict for every member,
    /// and (with `req.store`) replace that model's stored predictions and
    /// summary in one transaction.
    pub async fn clv_predict(&self, req: &PredictRequest) -> Result<PredictOutcome, ClvRunError> {
        let ds = self.clv_dataset(req.timezone).await?;
        let (model, opts) = (req.model, req.options);
        let (ds, predictions) = blocking(move || {
            let p = pipeline::predict(&ds, model, &opts)?;
            Ok((ds, p))
        })
        .await?;
        let write = if req.store {
            let members = ds.member_ids.as_deref().unwrap_or(&[]);
            let finite = |v: f64| v.is_finite().then_some(v);
            let p = &predictions;
            let rows: Vec<MemberPrediction> = (0..p.len())
                .map(|i| MemberPrediction {
                    member_id: members[p.customer[i] as usize],
                    p_alive: p.p_alive[i],
                    expected_purchases: p.expected_purchases[i],
                    expected_spend: finite(p.expected_spend[i]),
                    clv: finite(p.clv[i]),
                    horizon_days: p.summary.horizon_days,
                    computed_at: p.summary.fitted_at,
                })
                .collect();
            Some(
                self.write_predictions(model.key(), &rows, Some(&p.summary))
                    .await?,
            )
        } else {
            None
        };
        Ok(PredictOutcome {
            summary: predictions.summary.clone(),
            predicted: predictions.len(),
            write,
            dataset: ds,
            predictions,
        })
    }

    /// The models behind the stored predictions, by model key.
    pub async fn clv_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        let mut h = self.acquire().await?;
        let corrupt =
            |what: &str, e: String| StoreError::Corrupt(format!("clv_models.{what}: {e}"));
        h.conn()
            .fetch(
                "SELECT model, name, params, log_likelihood, n_customers, converged, spend, unit, \
                 calibration_start, calibration_end, observation_end, horizon_days, \
                 annual_discount_rate, fitted_at FROM clv_models ORDER BY model",
                &[] as &[Val],
                |r| {
                    let date = |i: usize, what: &str| -> Result<chrono::NaiveDate, StoreError> {
                        chrono::NaiveDate::parse_from_str(&r.text(i)?, "%Y-%m-%d")
                            .map_err(|e| corrupt(what, e.to_string()))
                    };
                    let json = |v: String, what: &str| -> Result<serde_json::Value, StoreError> {
                        serde_json::from_str(&v).map_err(|e| corrupt(what, e.to_string()))
                    };
                    let unit_text = r.text(7)?;
                    let horizon_days = r.f64(11)?;
                    let unit = touchpoint_core::clv::TimeUnit::parse(&unit_text)
                        .map_err(|e| corrupt("unit", e.to_string()))?;
                    Ok(ModelSummary {
                        model: ModelKind::parse(&r.text(0)?)
                            .map_err(|e| corrupt("model", e.to_string()))?,
                        name: r.text(1)?,
                        params: serde_json::from_value(json(r.text(2)?, "params")?)
                            .map_err(|e| corrupt("params", e.to_string()))?,
                        log_likelihood: r.f64(3)?,
                        n_customers: r.i64(4)? as u64,
                        converged: r.i64(5)? != 0,
                        spend: match r.opt_text(6)? {
                            Some(v) => Some(
                                serde_json::from_value(json(v, "spend")?)
                                    .map_err(|e| corrupt("spend", e.to_string()))?,
                            ),
                            None => None,
                        },
                        unit,
                        calibration_start: date(8, "calibration_start")?,
                        calibration_end: date(9, "calibration_end")?,
                        observation_end: date(10, "observation_end")?,
                        horizon: horizon_days / unit.days(),
                        horizon_days,
                        annual_discount_rate: r.f64(12)?,
                        fitted_at: r.i64(13)?,
                    })
                },
            )
            .await
    }

    /// Replace the predictions of `model` (e.g. `bgnbd`) with `rows`, in one
    /// transaction. Idempotent: writing the same rows again changes nothing
    /// (not even `computed_at`).
    pub async fn store_predictions(
        &self,
        model: &str,
        rows: &[MemberPrediction],
    ) -> Result<PredictionWrite, StoreError> {
        self.write_predictions(model, rows, None).await
    }

    /// [`Store::store_predictions`], also replacing the model's row in
    /// `clv_models` when `summary` is given, in the same transaction.
    async fn write_predictions(
        &self,
        model: &str,
        rows: &[MemberPrediction],
        summary: Option<&ModelSummary>,
    ) -> Result<PredictionWrite, StoreError> {
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        if let Some(s) = summary {
            upsert_model(&mut c, s).await?;
        }
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
        if upserted > 0 || removed > 0 {
            // Last, so the row lock writers of orders also take is held for
            // the shortest time: what was computed from predictions (kept in
            // memory under this version) is computed again.
            c.exec(
                "UPDATE analytics_state SET data_version = data_version + 1 WHERE id = 1",
                &[],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(PredictionWrite { upserted, removed })
    }

    /// The value report (CLV distribution, P(alive) bands, the high-value
    /// members most at risk) of the stored predictions of `model`, with the
    /// `at_risk_limit` members most at risk. Kept in memory until the model
    /// is fitted again (its predictions are written with its `fitted_at`;
    /// [`Store::store_predictions`], which writes predictions without a
    /// model, is not seen by a value report already kept).
    pub async fn value_report(
        &self,
        model: &ModelSummary,
        at_risk_limit: usize,
    ) -> Result<std::sync::Arc<touchpoint_core::analytics::ValueReport>, StoreError> {
        // Orders do not change stored predictions: only a fit (which
        // writes them with its `fitted_at`) does.
        let key = format!("{}|{}|{at_risk_limit}", model.model.key(), model.fitted_at);
        if let Some(v) = self.cache.values.get(&key) {
            return Ok(v);
        }
        let mut h = self.acquire().await?;
        let inputs = h
            .conn()
            .fetch(
                "SELECT member_id, p_alive, clv FROM member_predictions WHERE model = $1 ORDER BY member_id",
                &[model.model.key().into()],
                |r| {
                    Ok(touchpoint_core::analytics::ValueInput {
                        member_id: r.i64(0)?,
                        p_alive: r.f64(1)?,
                        clv: r.opt_f64(2)?,
                    })
                },
            )
            .await?;
        drop(h);
        let v = std::sync::Arc::new(touchpoint_core::analytics::value_report(
            &inputs,
            at_risk_limit,
        ));
        self.cache.values.put(key, v.clone());
        Ok(v)
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

async fn upsert_model(c: &mut Conn<'_>, s: &ModelSummary) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO clv_models (model, name, params, log_likelihood, n_customers, converged, \
         spend, unit, calibration_start, calibration_end, observation_end, horizon_days, \
         annual_discount_rate, fitted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (model) DO UPDATE SET name = excluded.name, params = excluded.params, \
         log_likelihood = excluded.log_likelihood, n_customers = excluded.n_customers, \
         converged = excluded.converged, spend = excluded.spend, unit = excluded.unit, \
         calibration_start = excluded.calibration_start, calibration_end = excluded.calibration_end, \
         observation_end = excluded.observation_end, horizon_days = excluded.horizon_days, \
         annual_discount_rate = excluded.annual_discount_rate, fitted_at = excluded.fitted_at",
        &[
            s.model.key().into(),
            s.name.clone().into(),
            Val::T(to_json(&s.params)),
            Val::F(s.log_likelihood),
            Val::I(s.n_customers as i64),
            Val::I(i64::from(s.converged)),
            Val::OT(s.spend.as_ref().map(to_json)),
            s.unit.name().into(),
            Val::T(s.calibration_start.to_string()),
            Val::T(s.calibration_end.to_string()),
            Val::T(s.observation_end.to_string()),
            Val::F(s.horizon_days),
            Val::F(s.annual_discount_rate),
            Val::I(s.fitted_at),
        ],
    )
    .await?;
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}
