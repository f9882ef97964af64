//! The CLV pipeline as library calls, independent of where the
//! transactions come from: a [`Dataset`] (a file, or members' purchases
//! handed over by the store) and [`ClvOptions`] in, a typed, serialisable
//! [`FitResult`] or [`Predictions`] out. The CLI and the HTTP server call
//! these (through `touchpoint_store::clv` for the store); they only parse
//! arguments and present.
//!
//! ```
//! use touchpoint_core::clv::pipeline::{self, ClvOptions, Dataset, ModelKind};
//! use touchpoint_core::clv::{TimeUnit, TransactionFormat};
//! let csv = b"customer_id,date,amount\na,2024-01-01,10\na,2024-02-01,12\nb,2024-01-15,8\n\
//!             b,2024-03-01,9\nb,2024-03-20,7\nc,2024-02-10,30\nd,2024-01-03,5\nd,2024-01-20,6\n";
//! let ds = Dataset::from_bytes(csv, TransactionFormat::Csv).unwrap();
//! let opts = ClvOptions { unit: TimeUnit::Day, horizon: Some("12months".parse().unwrap()),
//!     ..ClvOptions::default() };
//! let p = pipeline::predict(&ds, ModelKind::BgNbd, &opts).unwrap();
//! assert_eq!(p.len(), 4);
//! assert_eq!(p.summary.horizon_days, 365.25);
//! ```

use std::io::Write;
use std::path::Path;

use chrono::{NaiveDate, TimeZone};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use chrono_tz::Tz;

use super::duration::{AnnualRate, Duration};
use super::summary::{epoch_day, FxMap};
use super::{
    clv_monthly, holdout_report, read_transactions, summarize, BgNbd, ClvError, FitReport, Fitted,
    GammaGamma, HoldoutFit, MbgNbd, ParetoNbd, PurchaseModel, RfmData, SpendData, Summaries,
    SummaryOptions, TimeUnit, TransactionFormat, TransactionLog,
};

/// A purchase model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// BG/NBD (Fader, Hardie & Lee 2005).
    #[serde(rename = "bgnbd")]
    BgNbd,
    /// MBG/NBD (Batislam et al. 2007).
    #[serde(rename = "mbgnbd")]
    MbgNbd,
    /// Pareto/NBD (Schmittlein et al. 1987).
    #[serde(rename = "paretonbd")]
    ParetoNbd,
}

impl ModelKind {
    /// All purchase models.
    pub const ALL: [ModelKind; 3] = [ModelKind::BgNbd, ModelKind::MbgNbd, ModelKind::ParetoNbd];

    /// The key stored with predictions: `bgnbd`, `mbgnbd`, `paretonbd`.
    pub fn key(self) -> &'static str {
        match self {
            ModelKind::BgNbd => "bgnbd",
            ModelKind::MbgNbd => "mbgnbd",
            ModelKind::ParetoNbd => "paretonbd",
        }
    }

    /// Display name: `BG/NBD`, ...
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::BgNbd => "BG/NBD",
            ModelKind::MbgNbd => "MBG/NBD",
            ModelKind::ParetoNbd => "Pareto/NBD",
        }
    }

    /// Parse a key (`bgnbd`, `mbgnbd`, `paretonbd`).
    pub fn parse(s: &str) -> Result<Self, ClvError> {
        Self::ALL
            .into_iter()
            .find(|k| k.key().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                ClvError::Invalid(format!(
                    "unknown model {s:?}: use bgnbd, mbgnbd or paretonbd"
                ))
            })
    }

    /// Fit this model to the data.
    pub fn fit(self, data: &RfmData) -> Result<AnyModel, ClvError> {
        Ok(match self {
            ModelKind::BgNbd => AnyModel::Bg(BgNbd::params().check()?.fit(data)?),
            ModelKind::MbgNbd => AnyModel::Mbg(MbgNbd::params().check()?.fit(data)?),
            ModelKind::ParetoNbd => AnyModel::Pareto(ParetoNbd::params().check()?.fit(data)?),
        })
    }
}

/// A fitted purchase model of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyModel {
    /// BG/NBD.
    Bg(Fitted<BgNbd>),
    /// MBG/NBD.
    Mbg(Fitted<MbgNbd>),
    /// Pareto/NBD.
    Pareto(Fitted<ParetoNbd>),
}

impl AnyModel {
    /// The fit report.
    pub fn report(&self) -> &FitReport {
        match self {
            AnyModel::Bg(m) => &m.report,
            AnyModel::Mbg(m) => &m.report,
            AnyModel::Pareto(m) => &m.report,
        }
    }

    /// Which model this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            AnyModel::Bg(_) => ModelKind::BgNbd,
            AnyModel::Mbg(_) => ModelKind::MbgNbd,
            AnyModel::Pareto(_) => ModelKind::ParetoNbd,
        }
    }
}

impl PurchaseModel for AnyModel {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            AnyModel::Bg(m) => m.p_alive(x, t_x, t),
            AnyModel::Mbg(m) => m.p_alive(x, t_x, t),
            AnyModel::Pareto(m) => m.p_alive(x, t_x, t),
        }
    }
    fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            AnyModel::Bg(m) => m.expected_purchases(h, x, t_x, t),
            AnyModel::Mbg(m) => m.expected_purchases(h, x, t_x, t),
            AnyModel::Pareto(m) => m.expected_purchases(h, x, t_x, t),
        }
    }
    fn expected_purchases_if_alive(&self, h: f64, x: f64, t: f64) -> Option<f64> {
        match self {
            AnyModel::Bg(m) => m.expected_purchases_if_alive(h, x, t),
            AnyModel::Mbg(m) => m.expected_purchases_if_alive(h, x, t),
            AnyModel::Pareto(m) => m.expected_purchases_if_alive(h, x, t),
        }
    }
}

/// How to summarise, and what to predict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvOptions {
    /// Unit of recency, T and plain-number horizons.
    pub unit: TimeUnit,
    /// Last day (inclusive) of the calibration period; later purchases are
    /// the holdout. `None`: fit on everything.
    pub calibration_end: Option<NaiveDate>,
    /// Last day observed; `None`: the last purchase's date.
    pub observation_end: Option<NaiveDate>,
    /// Prediction horizon; `None`: 52 weeks.
    pub horizon: Option<Duration>,
    /// Annual discount rate for CLV (default 10% a year).
    pub discount_rate: AnnualRate,
}

impl Default for ClvOptions {
    fn default() -> Self {
        Self {
            unit: TimeUnit::Week,
            calibration_end: None,
            observation_end: None,
            horizon: None,
            discount_rate: AnnualRate(0.10),
        }
    }
}

impl ClvOptions {
    /// The horizon in units (default 52 weeks).
    pub fn horizon_units(&self) -> f64 {
        self.horizon
            .unwrap_or(Duration {
                amount: 52.0,
                unit: Some(super::duration::DurationUnit::Week),
            })
            .in_units(self.unit)
    }
}

/// Transactions to model, with the member id of each customer when they
/// come from the store.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The transactions.
    pub log: TransactionLog,
    /// `member_ids[i]` is the member of customer `i` (`log.ids[i]`); `None`
    /// for a file.
    pub member_ids: Option<Vec<i64>>,
}

impl Dataset {
    /// Read a transaction file; errors name the file, line, field and the
    /// accepted form.
    pub fn from_file(path: &Path, format: TransactionFormat) -> Result<Self, ClvError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ClvError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        read_transactions(&bytes, format)
            .map(|log| Dataset {
                log,
                member_ids: None,
            })
            .map_err(|e| match e {
                ClvError::Parse { .. } => ClvError::Invalid(format!("{}:{e}", path.display())),
                other => ClvError::Invalid(format!("{}: {other}", path.display())),
            })
    }

    /// Parse the bytes of a transaction file.
    pub fn from_bytes(bytes: &[u8], format: TransactionFormat) -> Result<Self, ClvError> {
        Ok(Dataset {
            log: read_transactions(bytes, format)?,
            member_ids: None,
        })
    }

    /// Members' purchases (member id, UTC milliseconds, net minor units):
    /// the member id becomes the customer id, the date is the purchase's
    /// date in the business time zone `tz`, and the amount is in currency
    /// units (minor units / 100).
    pub fn from_member_purchases(
        member_id: &[i64],
        ordered_at_ms: &[i64],
        net_minor: &[i64],
        tz: Tz,
    ) -> Result<Self, ClvError> {
        let n = member_id.len();
        if ordered_at_ms.len() != n || net_minor.len() != n {
            return Err(ClvError::Invalid(
                "purchase columns differ in length".into(),
            ));
        }
        let mut members: Vec<i64> = Vec::new();
        let mut index: FxMap<i64, u32> = FxMap::default();
        let customer: Vec<u32> = member_id
            .iter()
            .map(|&m| {
                let next = members.len() as u32;
                *index.entry(m).or_insert_with(|| {
                    members.push(m);
                    next
                })
            })
            .collect();
        let day: Vec<i32> = (0..n)
            .into_par_iter()
            .map(|i| {
                let at = ordered_at_ms[i];
                chrono::Utc
                    .timestamp_millis_opt(at)
                    .single()
                    .map(|t| epoch_day(t.with_timezone(&tz).date_naive()))
                    .ok_or_else(|| {
                        ClvError::Invalid(format!(
                            "member {}: order time {at} ms is out of range",
                            member_id[i]
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let amount: Vec<f64> = net_minor.par_iter().map(|&a| a as f64 / 100.0).collect();
        let ids = members.iter().map(|m| m.to_string()).collect();
        Ok(Dataset {
            log: TransactionLog::from_columns(ids, customer, day, amount)?,
            member_ids: Some(members),
        })
    }
}

/// Summaries and the resolved periods of a run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Per-customer summaries.
    pub summaries: Summaries,
    /// First purchase date in the data.
    pub first_date: NaiveDate,
    /// The calibration end, if any.
    pub calibration_end: Option<NaiveDate>,
    /// The observation end (given or the last purchase's date).
    pub observation_end: NaiveDate,
}

/// Summarise a data set for the options.
pub fn prepare(ds: &Dataset, opts: &ClvOptions) -> Result<Prepared, ClvError> {
    let log = &ds.log;
    let first_date = log
        .first_date()
        .ok_or_else(|| ClvError::NoData("no transactions".into()))?;
    let observation_end = match opts.observation_end {
        Some(d) => d,
        None => log
            .last_date()
            .ok_or_else(|| ClvError::NoData("no transactions".into()))?,
    };
    let summaries = summarize(
        log,
        &SummaryOptions {
            unit: opts.unit,
            calibration_end: opts.calibration_end,
            observation_end: Some(observation_end),
        },
    )?;
    Ok(Prepared {
        summaries,
        first_date,
        calibration_end: opts.calibration_end,
        observation_end,
    })
}

/// Fit Gamma-Gamma on the repeat customers (`None` when there are none).
pub fn fit_spend(s: &Summaries) -> Result<Option<Fitted<GammaGamma>>, ClvError> {
    let spend = SpendData::from_summaries(&s.rows);
    if spend.is_empty() {
        Ok(None)
    } else {
        Ok(Some(GammaGamma::params().check()?.fit(&spend)?))
    }
}

/// What `clv fit` found: every model, the spend model, mean predictions,
/// and (with a calibration end) the holdout check.
#[derive(Debug, Clone, Serialize)]
pub struct FitResult {
    /// Customers summarised.
    pub customers: usize,
    /// Transactions read.
    pub transactions: usize,
    /// Customers with at least one repeat purchase.
    pub repeat_customers: usize,
    /// Time unit.
    pub unit: TimeUnit,
    /// First purchase date.
    pub first_date: NaiveDate,
    /// Calibration end, if any.
    pub calibration_end: Option<NaiveDate>,
    /// Observation end.
    pub observation_end: NaiveDate,
    /// Horizon in units.
    pub horizon: f64,
    /// Annual discount rate.
    pub annual_discount_rate: f64,
    /// The same rate per month, as applied.
    pub monthly_discount_rate: f64,
    /// Fitted purchase models.
    pub models: Vec<AnyModel>,
    /// Fitted spend model (`None` without repeat buyers).
    pub gamma_gamma: Option<Fitted<GammaGamma>>,
    /// Mean expected purchases per customer over the horizon, per model.
    pub mean_expected_purchases: Vec<f64>,
    /// Mean CLV per customer over the horizon, per model.
    pub mean_clv: Vec<f64>,
    /// Per model, predicted against actual purchases in the holdout period
    /// (empty without a calibration end).
    pub holdout: Vec<HoldoutFit>,
}

/// Fit the given models (and Gamma-Gamma) and check them.
pub fn fit(ds: &Dataset, models: &[ModelKind], opts: &ClvOptions) -> Result<FitResult, ClvError> {
    if models.is_empty() {
        return Err(ClvError::Invalid("choose at least one model".into()));
    }
    let p = prepare(ds, opts)?;
    let rows = &p.summaries.rows;
    let data = RfmData::from_summaries(rows);
    let fitted: Vec<AnyModel> = models
        .iter()
        .map(|k| k.fit(&data))
        .collect::<Result<_, _>>()?;
    let gg = fit_spend(&p.summaries)?;
    let spend = customers_spend(gg.as_ref(), &p.summaries);
    let horizon = opts.horizon_units();
    let months = months_of(horizon, opts.unit);
    let monthly = opts.discount_rate.monthly();
    let mut mean_e = Vec::new();
    let mut mean_clv = Vec::new();
    for m in &fitted {
        let s = score(m, &p.summaries, &spend, horizon, months, opts.unit, monthly);
        let n = rows.len() as f64;
        mean_e.push(s.expected_purchases.par_iter().sum::<f64>() / n);
        mean_clv.push(s.clv.par_iter().sum::<f64>() / n);
    }
    let holdout = if p.calibration_end.is_some() && p.summaries.holdout_length > 0.0 {
        fitted
            .iter()
            .map(|m| holdout_report(m, &p.summaries, opts.unit))
            .collect()
    } else {
        Vec::new()
    };
    Ok(FitResult {
        customers: rows.len(),
        transactions: ds.log.len(),
        repeat_customers: rows.iter().filter(|r| r.frequency > 0).count(),
        unit: opts.unit,
        first_date: p.first_date,
        calibration_end: p.calibration_end,
        observation_end: p.observation_end,
        horizon,
        annual_discount_rate: opts.discount_rate.0,
        monthly_discount_rate: monthly,
        models: fitted,
        gamma_gamma: gg,
        mean_expected_purchases: mean_e,
        mean_clv,
        holdout,
    })
}

/// Months of monthly CLV discounting for a horizon: `round(horizon /
/// units per month)`, at least 1.
pub fn months_of(horizon: f64, unit: TimeUnit) -> u32 {
    (horizon / unit.per_month()).round().max(1.0) as u32
}

/// Gamma-Gamma expected spend per purchase of every summarised customer
/// (NaN without a spend model).
pub fn customers_spend(gg: Option<&Fitted<GammaGamma>>, s: &Summaries) -> Vec<f64> {
    s.rows
        .par_iter()
        .map(|r| {
            gg.map(|g| g.expected_spend(r.frequency as f64, r.monetary))
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// Per-customer scores of one model.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// P(alive).
    pub p_alive: Vec<f64>,
    /// Expected purchases over the horizon.
    pub expected_purchases: Vec<f64>,
    /// CLV over the horizon, discounted monthly.
    pub clv: Vec<f64>,
}

/// P(alive), expected purchases over `horizon` and monthly-discounted CLV
/// over `months` months of every customer. When the model factorises
/// (`E = P(alive) × E[· | alive, x, T]`, BG/NBD), the hypergeometric work is
/// done once per distinct (frequency, age), not per customer.
pub fn score<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    s: &Summaries,
    spend: &[f64],
    horizon: f64,
    months: u32,
    unit: TimeUnit,
    monthly_discount: f64,
) -> Scores {
    let rows = &s.rows;
    let ppm = unit.per_month();
    if rows.is_empty() {
        return Scores::default();
    }
    let r0 = rows[0];
    if model
        .expected_purchases_if_alive(1.0, r0.frequency as f64, r0.t)
        .is_none()
    {
        let per: Vec<(f64, f64, f64)> = rows
            .par_iter()
            .zip(spend.par_iter())
            .map(|(r, &sp)| {
                let (x, tx, t) = (r.frequency as f64, r.recency, r.t);
                (
                    model.p_alive(x, tx, t),
                    model.expected_purchases(horizon, x, tx, t),
                    clv_monthly(model, x, tx, t, sp, months, ppm, monthly_discount),
                )
            })
            .collect();
        return Scores {
            p_alive: per.par_iter().map(|v| v.0).collect(),
            expected_purchases: per.par_iter().map(|v| v.1).collect(),
            clv: per.par_iter().map(|v| v.2).collect(),
        };
    }
    let mut keys: FxMap<(u32, u64), u32> = FxMap::default();
    let mut distinct: Vec<(f64, f64)> = Vec::new();
    let idx: Vec<u32> = rows
        .iter()
        .map(|r| {
            let next = distinct.len() as u32;
            *keys.entry((r.frequency, r.t.to_bits())).or_insert_with(|| {
                distinct.push((r.frequency as f64, r.t));
                next
            })
        })
        .collect();
    drop(keys);
    // Per (x, T): E[purchases | alive] over the horizon, and the discounted
    // sum of monthly increments.
    let per_key: Vec<(f64, f64)> = distinct
        .par_iter()
        .map(|&(x, t)| {
            let e = model
                .expected_purchases_if_alive(horizon, x, t)
                .unwrap_or(f64::NAN);
            let mut prev = 0.0;
            let mut total = 0.0;
            let mut disc = 1.0;
            for m in 1..=months {
                let cum = model
                    .expected_purchases_if_alive(m as f64 * ppm, x, t)
                    .unwrap_or(f64::NAN);
                disc *= 1.0 + monthly_discount;
                total += (cum - prev) / disc;
                prev = cum;
            }
            (e, total)
        })
        .collect();
    let p_alive: Vec<f64> = rows
        .par_iter()
        .map(|r| model.p_alive(r.frequency as f64, r.recency, r.t))
        .collect();
    let expected_purchases = (0..rows.len())
        .into_par_iter()
        .map(|i| p_alive[i] * per_key[idx[i] as usize].0)
        .collect();
    let clv = (0..rows.len())
        .into_par_iter()
        .map(|i| spend[i] * p_alive[i] * per_key[idx[i] as usize].1)
        .collect();
    Scores {
        p_alive,
        expected_purchases,
        clv,
    }
}

/// A named parameter estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Name (`r`, `alpha`, ...).
    pub name: String,
    /// Estimate.
    pub value: f64,
    /// Standard error (`None` when the Hessian is singular).
    pub std_error: Option<f64>,
}

fn params_of(r: &FitReport) -> Vec<Param> {
    r.names
        .iter()
        .zip(&r.params)
        .zip(&r.std_errors)
        .map(|((n, &v), &e)| Param {
            name: n.clone(),
            value: v,
            std_error: e.is_finite().then_some(e),
        })
        .collect()
}

/// The spend model's part of a [`ModelSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// Gamma-Gamma `p`, `q`, `gamma`.
    pub params: Vec<Param>,
    /// Its log-likelihood.
    pub log_likelihood: f64,
    /// Repeat customers it was fitted on.
    pub n_customers: u64,
}

/// What a prediction run fitted, as stored with its predictions (table
/// `clv_models`) and served to the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model key.
    pub model: ModelKind,
    /// Display name.
    pub name: String,
    /// Parameter estimates.
    pub params: Vec<Param>,
    /// Maximised log-likelihood.
    pub log_likelihood: f64,
    /// Customers fitted.
    pub n_customers: u64,
    /// Whether the optimiser converged.
    pub converged: bool,
    /// The Gamma-Gamma spend model (`None` without repeat buyers).
    pub spend: Option<SpendSummary>,
    /// Time unit of the parameters.
    pub unit: TimeUnit,
    /// First purchase date of the data (start of calibration).
    pub calibration_start: NaiveDate,
    /// Last day of the calibration period (the observation end without a
    /// holdout).
    pub calibration_end: NaiveDate,
    /// Last day observed.
    pub observation_end: NaiveDate,
    /// Prediction horizon in units.
    pub horizon: f64,
    /// Prediction horizon in days.
    pub horizon_days: f64,
    /// Annual discount rate of the CLV.
    pub annual_discount_rate: f64,
    /// When it was fitted, UTC milliseconds.
    pub fitted_at: i64,
}

/// Per-customer predictions of one model, as columns; customer `i` is
/// `dataset.log.ids[customer[i]]` (and `member_ids[customer[i]]`).
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    /// What was fitted.
    pub summary: ModelSummary,
    /// Index of each row's customer in the data set.
    pub customer: Vec<u32>,
    /// Repeat purchases (calibration).
    pub frequency: Vec<u32>,
    /// Recency.
    pub recency: Vec<f64>,
    /// Age T.
    pub t: Vec<f64>,
    /// P(alive).
    pub p_alive: Vec<f64>,
    /// Expected purchases over the horizon.
    pub expected_purchases: Vec<f64>,
    /// Gamma-Gamma expected spend per purchase (NaN without a spend model).
    pub expected_spend: Vec<f64>,
    /// Discounted CLV over the horizon (NaN without a spend model).
    pub clv: Vec<f64>,
}

/// One prediction row (for JSON output).
#[derive(Debug, Clone, Serialize)]
pub struct PredictionRow<'a> {
    /// Customer id.
    pub customer_id: &'a str,
    /// Frequency.
    pub frequency: u32,
    /// Recency.
    pub recency: f64,
    /// Age.
    #[serde(rename = "T")]
    pub t: f64,
    /// P(alive).
    pub p_alive: f64,
    /// Expected purchases.
    pub expected_purchases: f64,
    /// Expected spend per purchase.
    pub expected_spend: f64,
    /// CLV.
    pub clv: f64,
}

/// Current UTC time in milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Fit one model and Gamma-Gamma and predict for every customer.
pub fn predict(ds: &Dataset, kind: ModelKind, opts: &ClvOptions) -> Result<Predictions, ClvError> {
    let p = prepare(ds, opts)?;
    let s = &p.summaries;
    let model = kind.fit(&RfmData::from_summaries(&s.rows))?;
    let gg = fit_spend(s)?;
    Ok(assemble(&p, &model, gg.as_ref(), opts))
}

/// Predictions of a fitted model on prepared summaries.
pub fn assemble(
    p: &Prepared,
    model: &AnyModel,
    gg: Option<&Fitted<GammaGamma>>,
    opts: &ClvOptions,
) -> Predictions {
    let s = &p.summaries;
    let spend = customers_spend(gg, s);
    let horizon = opts.horizon_units();
    let sc = score(
        model,
        s,
        &spend,
        horizon,
        months_of(horizon, opts.unit),
        opts.unit,
        opts.discount_rate.monthly(),
    );
    let r = model.report();
    Predictions {
        summary: ModelSummary {
            model: model.kind(),
            name: r.model.clone(),
            params: params_of(r),
            log_likelihood: r.log_likelihood,
            n_customers: r.n_customers as u64,
            converged: r.converged,
            spend: gg.map(|g| SpendSummary {
                params: params_of(&g.report),
                log_likelihood: g.report.log_likelihood,
                n_customers: g.report.n_customers as u64,
            }),
            unit: opts.unit,
            calibration_start: p.first_date,
            calibration_end: p.calibration_end.unwrap_or(p.observation_end),
            observation_end: p.observation_end,
            horizon,
            horizon_days: horizon * opts.unit.days(),
            annual_discount_rate: opts.discount_rate.0,
            fitted_at: now_ms(),
        },
        customer: s.customer.clone(),
        frequency: s.rows.par_iter().map(|r| r.frequency).collect(),
        recency: s.rows.par_iter().map(|r| r.recency).collect(),
        t: s.rows.par_iter().map(|r| r.t).collect(),
        p_alive: sc.p_alive,
        expected_purchases: sc.expected_purchases,
        expected_spend: spend,
        clv: sc.clv,
    }
}

impl Predictions {
    /// Number of customers predicted.
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    /// Row `i` (for JSON output), with its customer id from `ids`.
    pub fn row<'a>(&self, i: usize, ids: &'a [String]) -> PredictionRow<'a> {
        PredictionRow {
            customer_id: &ids[self.customer[i] as usize],
            frequency: self.frequency[i],
            recency: self.recency[i],
            t: self.t[i],
            p_alive: self.p_alive[i],
            expected_purchases: self.expected_purchases[i],
            expected_spend: self.expected_spend[i],
            clv: self.clv[i],
        }
    }

    /// Write as CSV with the header `customer_id,frequency,recency,T,
    /// p_alive,expected_purchases,expected_spend,clv`, floats in their
    /// shortest round-trip form (as the `csv` crate writes them). Rows are
    /// formatted in parallel blocks.
    pub fn write_csv<W: Write>(&self, ids: &[String], w: &mut W) -> std::io::Result<()> {
        w.write_all(
            b"customer_id,frequency,recency,T,p_alive,expected_purchases,expected_spend,clv\n",
        )?;
        const BLOCK: usize = 16_384;
        let n = self.len();
        let blocks: Vec<usize> = (0..n.div_ceil(BLOCK)).collect();
        // Format a few blocks per round so memory stays bounded.
        for round in blocks.chunks(rayon::current_num_threads().max(1) * 4) {
            let bufs: Vec<Vec<u8>> = round
                .par_iter()
                .map(|&b| {
                    let mut out = Vec::with_capacity(BLOCK * 96);
                    let mut f = ryu::Buffer::new();
                    let mut num = |out: &mut Vec<u8>, v: f64| {
                        out.extend_from_slice(f.format(v).as_bytes());
                    };
                    for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                        write_id(&mut out, &ids[self.customer[i] as usize]);
                        out.push(b',');
                        write_u32(&mut out, self.frequency[i]);
                        for v in [
                            self.recency[i],
                            self.t[i],
                            self.p_alive[i],
                            self.expected_purchases[i],
                            self.expected_spend[i],
                            self.clv[i],
                        ] {
                            out.push(b',');
                            num(&mut out, v);
                        }
                        out.push(b'\n');
                    }
                    out
                })
                .collect();
            for b in bufs {
                w.write_all(&b)?;
            }
        }
        Ok(())
    }

    /// Write as one JSON array of rows.
    pub fn write_json<W: Write>(&self, ids: &[String], w: &mut W) -> std::io::Result<()> {
        let rows: Vec<PredictionRow<'_>> = (0..self.len()).map(|i| self.row(i, ids)).collect();
        serde_json::to_writer(&mut *w, &rows).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    }
}

/// Decimal digits of `v` (as `write!(out, "{v}")` writes them).
fn write_u32(out: &mut Vec<u8>, mut v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn write_id(out: &mut Vec<u8>, id: &str) {
    if id.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || id.is_empty() {
        out.push(b'"');
        for b in id.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(id.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_output_is_what_the_csv_crate_writes() {
        let ids: Vec<String> = vec!["a".into(), "b,c".into(), "d\"e".into()];
        let p = Predictions {
            summary: ModelSummary {
                model: ModelKind::BgNbd,
                name: "BG/NBD".into(),
                params: vec![],
                log_likelihood: 0.0,
                n_customers: 3,
                converged: true,
                spend: None,
                unit: TimeUnit::Day,
                calibration_start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                calibration_end: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                observation_end: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                horizon: 1.0,
                horizon_days: 1.0,
                annual_discount_rate: 0.1,
                fitted_at: 0,
            },
            customer: vec![0, 1, 2],
            frequency: vec![3, 0, 12],
            recency: vec![1.5, 0.0, 1e-20],
            t: vec![30.0, 2.0 / 7.0, 1e21],
            p_alive: vec![0.123456789, 1.0, 0.0],
            expected_purchases: vec![2.0, 0.1 + 0.2, 7.0],
            expected_spend: vec![f64::NAN, 12.25, 3.0],
            clv: vec![f64::NAN, -0.0, 1e300],
        };
        for v in [0u32, 7, 10, 99, 12_345, u32::MAX] {
            let mut out = Vec::new();
            write_u32(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        let mut ours = Vec::new();
        p.write_csv(&ids, &mut ours).unwrap();
        let mut theirs = csv::Writer::from_writer(Vec::new());
        for i in 0..p.len() {
            theirs.serialize(p.row(i, &ids)).unwrap();
        }
        let theirs = theirs.into_inner().unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }
}
