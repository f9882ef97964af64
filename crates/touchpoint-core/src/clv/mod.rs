//! Customer lifetime value: buy-till-you-die models (BG/NBD, MBG/NBD,
//! Pareto/NBD) and the Gamma-Gamma spend model.
//!
//! The pipeline:
//! 1. transactions -> [`summary::summarize`] -> per-customer frequency,
//!    recency, age and mean repeat spend ([`CustomerSummary`]);
//! 2. compress identical rows ([`RfmData`], [`SpendData`]);
//! 3. fit, linfa style: `BgNbd::params()` (unchecked settings) -> `.check()`
//!    -> `.fit(&data)` -> [`Fitted`] (serialisable to JSON);
//! 4. predict: [`PurchaseModel::p_alive`],
//!    [`PurchaseModel::expected_purchases`], [`GammaGamma::expected_spend`],
//!    [`clv_monthly`] / [`clv_continuous`], matrices for plotting, and
//!    [`holdout_fit`] to check predictions against a holdout period.
//!
//! ```
//! use touchpoint_core::clv::{BgNbd, PurchaseModel, RfmData};
//! let data = RfmData::from_triples([(0.0, 0.0, 30.0), (2.0, 20.0, 30.0), (5.0, 28.0, 30.0),
//!     (1.0, 3.0, 25.0), (0.0, 0.0, 12.0), (3.0, 10.0, 35.0)]);
//! let fitted = BgNbd::params().check().unwrap().fit(&data).unwrap();
//! let p = fitted.p_alive(2.0, 20.0, 30.0);
//! assert!(p > 0.0 && p <= 1.0);
//! ```

mod bgnbd;
pub mod duration;
mod gammagamma;
mod mbgnbd;
pub mod optimize;
mod paretonbd;
pub mod pipeline;
pub mod special;
pub mod summary;
pub mod synth;

use std::marker::PhantomData;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use bgnbd::BgNbd;
pub use duration::{AnnualRate, Duration, DurationUnit, ParseDurationError};
pub use gammagamma::GammaGamma;
pub use mbgnbd::MbgNbd;
pub use paretonbd::ParetoNbd;
pub use summary::{
    read_transactions, summarize, CustomerSummary, RfmData, SpendData, Summaries, SummaryOptions,
    TimeUnit, Transaction, TransactionFormat, TransactionLog,
};

/// Errors of the CLV module.
#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    /// A row of an input file could not be read.
    #[error("line {line}: field `{field}`: expected {expected}, got {got:?}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The field (column) name.
        field: &'static str,
        /// The accepted form.
        expected: &'static str,
        /// What was found.
        got: String,
    },
    /// A required header column is absent.
    #[error("missing column `{0}` in the header line (expected customer_id,date,amount)")]
    MissingColumn(&'static str),
    /// Invalid settings or data.
    #[error("{0}")]
    Invalid(String),
    /// Nothing to fit.
    #[error("no data: {0}")]
    NoData(String),
}

/// A model fitted by maximum likelihood: its parameters and the likelihood
/// of its data.
pub trait Model: Sized + Clone {
    /// The data the model is fitted to.
    type Data: Sync;
    /// Short name, e.g. `BG/NBD`.
    const NAME: &'static str;
    /// Parameter names, in the order of [`Model::params`].
    const PARAM_NAMES: &'static [&'static str];
    /// True when [`Model::log_likelihood`] computes an analytic gradient.
    const ANALYTIC_GRADIENT: bool;
    /// Build from parameters (in the order of `PARAM_NAMES`; all > 0).
    fn from_params(p: &[f64]) -> Self;
    /// The parameters.
    fn params(&self) -> Vec<f64>;
    /// A starting point for the optimiser derived from the data.
    fn default_init(data: &Self::Data) -> Vec<f64>;
    /// Number of customers in the data (sum of weights).
    fn n_customers(data: &Self::Data) -> f64;
    /// Number of distinct rows in the data.
    fn n_rows(data: &Self::Data) -> usize;
    /// Check the data before fitting.
    fn validate(data: &Self::Data) -> Result<(), ClvError>;
    /// Total (weighted) log-likelihood; writes the gradient with respect to
    /// the parameters into `grad` when given.
    fn log_likelihood(&self, data: &Self::Data, grad: Option<&mut [f64]>) -> f64;
    /// The total log-likelihood and its Hessian with respect to the
    /// parameters, computed analytically in one pass over the data; `None`
    /// when the model has no analytic Hessian (a numeric one is used).
    fn hessian(&self, _data: &Self::Data) -> Option<(f64, Vec<Vec<f64>>)> {
        None
    }
    /// Every `step`-th row of the data, to find a starting point on large
    /// data cheaply; `None` when the model does not support it.
    fn subsample(_data: &Self::Data, _step: usize) -> Option<Self::Data> {
        None
    }
}

/// Above this many distinct rows, a fit without a given start first fits
/// every k-th row (about [`WARM_START_ROWS`] of them) and starts the full
/// fit from there, with that fit's curvature as BFGS's first inverse
/// Hessian: the full data then needs a handful of iterations, not dozens.
pub const WARM_START_ABOVE: usize = 200_000;
/// Rows of the subsample used for a warm start.
pub const WARM_START_ROWS: usize = 40_000;

/// Fitting settings before validation (the "unchecked parameters" of the
/// linfa convention). Build with e.g. [`BgNbd::params`].
#[derive(Debug, Clone)]
pub struct FitParams<M> {
    init: Option<Vec<f64>>,
    max_iter: usize,
    tol: f64,
    _model: PhantomData<M>,
}

impl<M: Model> Default for FitParams<M> {
    fn default() -> Self {
        Self {
            init: None,
            max_iter: 1000,
            tol: 1e-8,
            _model: PhantomData,
        }
    }
}

impl<M: Model> FitParams<M> {
    /// Default settings: data-derived start, 1000 iterations, gradient
    /// tolerance 1e-8 (on the mean log-likelihood per customer, in
    /// log-parameters).
    pub fn new() -> Self {
        Self::default()
    }

    /// Start the optimiser at these parameter values.
    pub fn init(mut self, params: &[f64]) -> Self {
        self.init = Some(params.to_vec());
        self
    }

    /// Maximum optimiser iterations.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Gradient tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Validate the settings.
    pub fn check(self) -> Result<ValidFitParams<M>, ClvError> {
        if let Some(init) = &self.init {
            if init.len() != M::PARAM_NAMES.len() {
                return Err(ClvError::Invalid(format!(
                    "{} needs {} starting values ({}), got {}",
                    M::NAME,
                    M::PARAM_NAMES.len(),
                    M::PARAM_NAMES.join(", "),
                    init.len()
                )));
            }
            if init.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(ClvError::Invalid(format!(
                    "{} starting values must be finite and positive, got {init:?}",
                    M::NAME
                )));
            }
        }
        if self.max_iter == 0 {
            return Err(ClvError::Invalid("max_iter must be at least 1".into()));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(ClvError::Invalid("tol must be finite and positive".into()));
        }
        Ok(ValidFitParams(self))
    }
}

/// Validated fitting settings (the "checked parameters").
#[derive(Debug, Clone)]
pub struct ValidFitParams<M>(FitParams<M>);

/// What the fit found and how well it fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Model name.
    pub model: String,
    /// Parameter names.
    pub names: Vec<String>,
    /// Parameter estimates.
    pub params: Vec<f64>,
    /// Standard errors from the inverse of the observed information (the
    /// Hessian of the log-likelihood: analytic for BG/NBD and Gamma-Gamma,
    /// numeric otherwise); NaN when the Hessian is singular.
    pub std_errors: Vec<f64>,
    /// Maximised log-likelihood (sum over customers).
    pub log_likelihood: f64,
    /// Akaike information criterion, `2k - 2 LL`.
    pub aic: f64,
    /// Bayesian information criterion, `k ln n - 2 LL`.
    pub bic: f64,
    /// Customers fitted.
    pub n_customers: f64,
    /// Distinct data rows after compression.
    pub n_rows: usize,
    /// Optimiser iterations.
    pub iterations: usize,
    /// Whether the optimiser met its tolerance.
    pub converged: bool,
    /// Largest gradient component at the optimum (mean log-likelihood per
    /// customer, log-parameters).
    pub grad_norm: f64,
}

/// A fitted model with its fit report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted<M> {
    /// The model with its estimated parameters.
    pub model: M,
    /// The fit diagnostics.
    pub report: FitReport,
}

impl<M> std::ops::Deref for Fitted<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.model
    }
}

impl<M: Model> ValidFitParams<M> {
    /// Fit by maximum likelihood: BFGS on the log-parameters, from the given
    /// or default start (and, if that does not converge, from two more
    /// starts; the best is kept).
    pub fn fit(&self, data: &M::Data) -> Result<Fitted<M>, ClvError> {
        self.fit_with_hessian(data).map(|(f, _)| f)
    }

    /// [`ValidFitParams::fit`], also returning the Hessian of the total
    /// log-likelihood at the estimate (in the parameters).
    fn fit_with_hessian(&self, data: &M::Data) -> Result<(Fitted<M>, Vec<Vec<f64>>), ClvError> {
        M::validate(data)?;
        let n = M::n_customers(data);
        let k = M::PARAM_NAMES.len();
        let objective = |u: &[f64], g: &mut [f64]| -> f64 {
            let theta: Vec<f64> = u.iter().map(|v| v.exp()).collect();
            if theta.iter().any(|t| !t.is_finite() || *t <= 0.0) {
                return f64::INFINITY;
            }
            let model = M::from_params(&theta);
            let mut grad = vec![0.0; k];
            let ll = model.log_likelihood(data, Some(&mut grad));
            for j in 0..k {
                g[j] = -grad[j] * theta[j] / n;
            }
            if ll.is_finite() && g.iter().all(|v| v.is_finite()) {
                -ll / n
            } else {
                f64::INFINITY
            }
        };
        let mut warm: Option<(Vec<f64>, Vec<Vec<f64>>)> = None;
        if self.0.init.is_none() && M::n_rows(data) > WARM_START_ABOVE {
            let step = M::n_rows(data).div_ceil(WARM_START_ROWS);
            if let Some(sub) = M::subsample(data, step) {
                if let Ok((fitted, hess)) = self.fit_with_hessian(&sub) {
                    let theta = fitted.model.params();
                    // Curvature of the mean objective in log-parameters:
                    // diag(θ) (-H/n) diag(θ) (the gradient term vanishes at
                    // the optimum).
                    let n_sub = M::n_customers(&sub);
                    let hu: Vec<Vec<f64>> = (0..k)
                        .map(|i| {
                            (0..k)
                                .map(|j| -hess[i][j] * theta[i] * theta[j] / n_sub)
                                .collect()
                        })
                        .collect();
                    if fitted.report.converged {
                        if let Some(h0) = optimize::invert(&hu) {
                            if (0..k).all(|i| h0[i][i] > 0.0 && h0[i][i].is_finite()) {
                                warm = Some((theta, h0));
                            }
                        }
                    }
                }
            }
        }
        let base = self.0.init.clone().unwrap_or_else(|| M::default_init(data));
        // (start, first inverse Hessian)
        type Start = (Vec<f64>, Option<Vec<Vec<f64>>>);
        let mut starts: Vec<Start> = Vec::new();
        if let Some((theta, h0)) = warm {
            starts.push((theta, Some(h0)));
        }
        starts.push((base.clone(), None));
        if self.0.init.is_none() {
            starts.push((base.iter().map(|v| v * 0.3).collect(), None));
            starts.push((vec![1.0; k], None));
        }
        let mut best: Option<optimize::Minimum> = None;
        for (s, h0) in starts {
            let u0: Vec<f64> = s.iter().map(|v| v.ln()).collect();
            let m = optimize::bfgs_from(objective, &u0, h0, self.0.tol, self.0.max_iter);
            let better = match &best {
                None => true,
                Some(b) => {
                    (m.converged && !b.converged)
                        || (m.converged == b.converged && m.value < b.value)
                }
            };
            let done = m.converged;
            if better {
                best = Some(m);
            }
            if done {
                break;
            }
        }
        let best = best.expect("at least one start");
        if !best.value.is_finite() {
            return Err(ClvError::Invalid(format!(
                "{}: the log-likelihood is not finite at any starting point",
                M::NAME
            )));
        }
        let theta: Vec<f64> = best.x.iter().map(|v| v.exp()).collect();
        let model = M::from_params(&theta);
        let (ll, hess) = match model.hessian(data) {
            Some(v) => v,
            None => {
                let ll = model.log_likelihood(data, None);
                let hess = if M::ANALYTIC_GRADIENT {
                    optimize::numeric_hessian(
                        |p, g| {
                            M::from_params(p).log_likelihood(data, Some(g));
                        },
                        &theta,
                    )
                } else {
                    optimize::numeric_hessian_from_values(
                        |p| M::from_params(p).log_likelihood(data, None),
                        &theta,
                    )
                };
                (ll, hess)
            }
        };
        let neg: Vec<Vec<f64>> = hess
            .iter()
            .map(|r| r.iter().map(|v| -v).collect())
            .collect();
        let std_errors = match optimize::invert(&neg) {
            Some(cov) => (0..k)
                .map(|i| {
                    if cov[i][i] > 0.0 {
                        cov[i][i].sqrt()
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
            None => vec![f64::NAN; k],
        };
        let kf = k as f64;
        let fitted = Fitted {
            report: FitReport {
                model: M::NAME.to_string(),
                names: M::PARAM_NAMES.iter().map(|s| s.to_string()).collect(),
                params: theta,
                std_errors,
                log_likelihood: ll,
                aic: 2.0 * kf - 2.0 * ll,
                bic: kf * n.ln() - 2.0 * ll,
                n_customers: n,
                n_rows: M::n_rows(data),
                iterations: best.iterations,
                converged: best.converged,
                grad_norm: best.grad_norm,
            },
            model,
        };
        Ok((fitted, hess))
    }
}

/// Sum `f(i)` over rows `0..n` with a gradient of `K` components, in
/// parallel when `n` is large. `f` returns the row's weighted
/// log-likelihood and adds its weighted gradient into the array.
pub(crate) fn sum_rows<const K: usize, F>(n: usize, f: F, grad: Option<&mut [f64]>) -> f64
where
    F: Fn(usize, &mut [f64; K]) -> f64 + Sync,
{
    const CHUNK: usize = 2048;
    let (ll, g) = if n < 2 * CHUNK {
        let mut g = [0.0; K];
        let ll: f64 = (0..n).map(|i| f(i, &mut g)).sum();
        (ll, g)
    } else {
        (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut g = [0.0; K];
                let end = ((c + 1) * CHUNK).min(n);
                let ll: f64 = (c * CHUNK..end).map(|i| f(i, &mut g)).sum();
                (ll, g)
            })
            .reduce(
                || (0.0, [0.0; K]),
                |(la, mut ga), (lb, gb)| {
                    for j in 0..K {
                        ga[j] += gb[j];
                    }
                    (la + lb, ga)
                },
            )
    };
    if let Some(out) = grad {
        out.copy_from_slice(&g);
    }
    ll
}

#[allow(clippy::needless_range_loop)] // matrix indices
/// Unpack the upper triangle of a symmetric `k × k` matrix, row by row
/// (`(0,0), (0,1), .., (0,k-1), (1,1), ..`).
pub(crate) fn unpack_symmetric(k: usize, upper: &[f64]) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; k]; k];
    let mut n = 0;
    for i in 0..k {
        for j in i..k {
            m[i][j] = upper[n];
            m[j][i] = upper[n];
            n += 1;
        }
    }
    m
}

/// Tabulate `f(k)` for `k = 0..=max x` when every `x` is a whole number
/// (the usual case): the gamma-function terms of a row then cost a lookup.
pub(crate) fn x_table<T, F: Fn(f64) -> T + Sync>(xs: &[f64], f: F) -> Option<Vec<T>>
where
    T: Send,
{
    let mut max = 0.0f64;
    for &x in xs {
        if x.fract() != 0.0 || !(0.0..=1e6).contains(&x) {
            return None;
        }
        max = max.max(x);
    }
    Some((0..=max as usize).map(|k| f(k as f64)).collect())
}

/// A function of time tabulated on the grid of whole days: recency and age
/// are day counts divided by the unit's length in days (1, 7 or 30.4375),
/// so a per-row logarithm becomes a lookup. Values off the grid are
/// computed directly, so results are bit-for-bit the same either way.
pub(crate) struct TimeGrid<F> {
    f: F,
    scale: f64,
    table: Vec<f64>,
}

impl<F: Fn(f64) -> f64> TimeGrid<F> {
    /// Tabulate `f` over `0..=max(t)` when the first rows of `t` and `t_x`
    /// lie on a day grid (`t >= t_x`, as the data is validated).
    pub(crate) fn new(t: &[f64], t_x: &[f64], f: F) -> Self {
        const SCALES: [f64; 3] = [1.0, 7.0, 365.25 / 12.0];
        let on = |v: f64, s: f64| {
            let k = (v * s + 0.5) as u64;
            v >= 0.0 && k as f64 / s == v
        };
        let probe = t.len().min(64);
        let scale = SCALES.into_iter().find(|&s| {
            (0..probe).all(|i| on(t[i], s) && on(t_x.get(i).copied().unwrap_or(0.0), s))
        });
        let table = match scale {
            Some(s) => {
                let max = t.iter().copied().fold(0.0f64, f64::max) * s;
                if max < 1e6 {
                    (0..=max as usize + 1).map(|k| f(k as f64 / s)).collect()
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        Self {
            f,
            scale: scale.unwrap_or(1.0),
            table,
        }
    }

    /// `f(v)`.
    #[inline]
    pub(crate) fn get(&self, v: f64) -> f64 {
        let k = (v * self.scale + 0.5) as usize;
        match self.table.get(k) {
            Some(&y) if k as f64 / self.scale == v => y,
            _ => (self.f)(v),
        }
    }
}

/// Predictions of a purchase (transaction-count) model for one customer
/// with frequency `x`, recency `t_x` and age `t` (in the fit's time unit).
pub trait PurchaseModel {
    /// Probability that the customer is still active at `t`.
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64;
    /// Expected number of purchases in the next `horizon` periods.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64;
    /// Expected purchases in the next `horizon` periods of a customer known
    /// to be active at `t`, for models where
    /// `expected_purchases = p_alive × this` (recency only enters through
    /// P(alive)); `None` for models that do not factorise so. Lets
    /// [`clv_monthly_many`] share the work between customers with the same
    /// frequency and age.
    fn expected_purchases_if_alive(&self, _horizon: f64, _x: f64, _t: f64) -> Option<f64> {
        None
    }
}

impl<M: PurchaseModel> PurchaseModel for Fitted<M> {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        self.model.p_alive(x, t_x, t)
    }
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        self.model.expected_purchases(horizon, x, t_x, t)
    }
    fn expected_purchases_if_alive(&self, horizon: f64, x: f64, t: f64) -> Option<f64> {
        self.model.expected_purchases_if_alive(horizon, x, t)
    }
}

/// [`clv_monthly`] for many customers at once: customer `i` has frequency
/// `x[i]`, recency `t_x[i]`, age `t[i]` and spend per purchase `spend[i]`.
///
/// When the model factorises (see
/// [`PurchaseModel::expected_purchases_if_alive`]), each customer's CLV is
/// `spend × P(alive) × D(x, T)` with the discounted monthly increments
/// `D(x, T)` computed once per distinct (frequency, age): far fewer than
/// customers. Otherwise every customer is computed on its own. Parallel.
#[allow(clippy::too_many_arguments)]
pub fn clv_monthly_many<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    x: &[f64],
    t_x: &[f64],
    t: &[f64],
    spend: &[f64],
    months: u32,
    periods_per_month: f64,
    monthly_discount: f64,
) -> Vec<f64> {
    let n = x.len();
    assert!(t_x.len() == n && t.len() == n && spend.len() == n);
    if n == 0 {
        return Vec::new();
    }
    if model.expected_purchases_if_alive(1.0, x[0], t[0]).is_none() {
        return (0..n)
            .into_par_iter()
            .map(|i| {
                clv_monthly(
                    model,
                    x[i],
                    t_x[i],
                    t[i],
                    spend[i],
                    months,
                    periods_per_month,
                    monthly_discount,
                )
            })
            .collect();
    }
    let mut keys: summary::FxMap<(u64, u64), u32> = summary::FxMap::default();
    let mut distinct: Vec<(f64, f64)> = Vec::new();
    let idx: Vec<u32> = (0..n)
        .map(|i| {
            let next = distinct.len() as u32;
            *keys
                .entry((x[i].to_bits(), t[i].to_bits()))
                .or_insert_with(|| {
                    distinct.push((x[i], t[i]));
                    next
                })
        })
        .collect();
    let per_key: Vec<f64> = distinct
        .par_iter()
        .map(|&(x, t)| {
            let mut prev = 0.0;
            let mut total = 0.0;
            for m in 1..=months {
                let cum = model
                    .expected_purchases_if_alive(m as f64 * periods_per_month, x, t)
                    .unwrap_or(f64::NAN);
                total += (cum - prev) / (1.0 + monthly_discount).powi(m as i32);
                prev = cum;
            }
            total
        })
        .collect();
    (0..n)
        .into_par_iter()
        .map(|i| spend[i] * model.p_alive(x[i], t_x[i], t[i]) * per_key[idx[i] as usize])
        .collect()
}

/// CLV with per-period discounting, as lifetimes' `customer_lifetime_value`
/// computes it: for each month `m = 1..=months`, the expected purchases in
/// that month times `spend`, divided by `(1 + monthly_discount)^m`.
///
/// `periods_per_month` converts months into the fit's time unit (e.g.
/// 4.348 for weeks, see [`TimeUnit::per_month`]; lifetimes uses 4.345 for
/// weeks and 30 for days).
#[allow(clippy::too_many_arguments)]
pub fn clv_monthly<M: PurchaseModel + ?Sized>(
    model: &M,
    x: f64,
    t_x: f64,
    t: f64,
    spend: f64,
    months: u32,
    periods_per_month: f64,
    monthly_discount: f64,
) -> f64 {
    let mut prev = 0.0;
    let mut total = 0.0;
    for m in 1..=months {
        let cum = model.expected_purchases(m as f64 * periods_per_month, x, t_x, t);
        total += spend * (cum - prev) / (1.0 + monthly_discount).powi(m as i32);
        prev = cum;
    }
    total
}

/// Gauss-Legendre nodes and weights on [-1, 1] (20 points).
#[allow(clippy::excessive_precision)] // published 17-digit nodes
const GL20: [(f64, f64); 10] = [
    (0.076_526_521_133_497_33, 0.152_753_387_130_725_85),
    (0.227_785_851_141_645_08, 0.149_172_986_472_603_75),
    (0.373_706_088_715_419_56, 0.142_096_109_318_382_05),
    (0.510_867_001_950_827_1, 0.131_688_638_449_176_63),
    (0.636_053_680_726_515_0, 0.118_194_531_961_518_42),
    (0.746_331_906_460_150_8, 0.101_930_119_817_240_44),
    (0.839_116_971_822_218_8, 0.083_276_741_576_704_75),
    (0.912_234_428_251_325_9, 0.062_672_048_334_109_06),
    (0.963_971_927_277_913_8, 0.040_601_429_800_386_94),
    (0.993_128_599_185_094_9, 0.017_614_007_139_152_12),
];

/// CLV with continuous discounting over `horizon` periods:
/// `spend * ∫_0^H e^(-δ t) dE(t)`, where `E(t)` is the expected number of
/// purchases in `(0, t]` and `δ = rate` per period (continuously
/// compounded; for an annual rate `i` in weeks, `δ = ln(1 + i) / 52.18`).
///
/// Computed as `e^(-δH) E(H) + δ ∫_0^H e^(-δt) E(t) dt` (integration by
/// parts) with 20-point Gauss-Legendre on 8 equal panels; `E` is smooth, so
/// this is accurate to about 1e-10 relative. With `horizon = ∞` use a long
/// horizon (e.g. 50 / δ): this is the DERT of Fader, Hardie & Lee (2005)
/// times `spend`.
pub fn clv_continuous<M: PurchaseModel + ?Sized>(
    model: &M,
    x: f64,
    t_x: f64,
    t: f64,
    spend: f64,
    horizon: f64,
    rate: f64,
) -> f64 {
    let e_h = model.expected_purchases(horizon, x, t_x, t);
    if rate == 0.0 {
        return spend * e_h;
    }
    let panels = 8;
    let w = horizon / panels as f64;
    let mut integral = 0.0;
    for p in 0..panels {
        let mid = (p as f64 + 0.5) * w;
        for &(node, weight) in &GL20 {
            for s in [-1.0, 1.0] {
                let u = mid + s * node * w / 2.0;
                integral +=
                    weight * w / 2.0 * (-rate * u).exp() * model.expected_purchases(u, x, t_x, t);
            }
        }
    }
    spend * ((-rate * horizon).exp() * e_h + rate * integral)
}

/// A matrix of predictions over a (frequency, recency) grid for customers
/// of age `t`, e.g. to plot P(alive) as lifetimes'
/// `plot_probability_alive_matrix` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridMatrix {
    /// Row labels: frequencies 0..=max.
    pub frequencies: Vec<u32>,
    /// Column labels: recencies (0..=t in equal steps).
    pub recencies: Vec<f64>,
    /// Age T used for every cell.
    pub t: f64,
    /// `values[i][j]` for frequency i and recency j.
    pub values: Vec<Vec<f64>>,
}

fn grid<F: Fn(f64, f64) -> f64 + Sync>(
    max_frequency: u32,
    t: f64,
    steps: usize,
    f: F,
) -> GridMatrix {
    let steps = steps.max(1);
    let recencies: Vec<f64> = (0..=steps).map(|j| t * j as f64 / steps as f64).collect();
    let frequencies: Vec<u32> = (0..=max_frequency).collect();
    let values = frequencies
        .par_iter()
        .map(|&x| recencies.iter().map(|&r| f(x as f64, r)).collect())
        .collect();
    GridMatrix {
        frequencies,
        recencies,
        t,
        values,
    }
}

/// P(alive) for frequencies `0..=max_frequency` and recencies `0..=t` in
/// `steps` steps, at age `t`.
pub fn p_alive_matrix<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    max_frequency: u32,
    t: f64,
    steps: usize,
) -> GridMatrix {
    grid(max_frequency, t, steps, |x, r| model.p_alive(x, r, t))
}

/// Expected purchases in the next `horizon` periods over the same grid as
/// [`p_alive_matrix`].
pub fn expected_purchases_matrix<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    horizon: f64,
    max_frequency: u32,
    t: f64,
    steps: usize,
) -> GridMatrix {
    grid(max_frequency, t, steps, |x, r| {
        model.expected_purchases(horizon, x, r, t)
    })
}

/// One calibration-frequency bucket of [`HoldoutFit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutBucket {
    /// Bucket label: `0`, `1`, ... `7+`.
    pub label: String,
    /// Customers in the bucket.
    pub customers: usize,
    /// Mean predicted holdout purchases.
    pub predicted: f64,
    /// Mean actual holdout purchases.
    pub actual: f64,
}

/// Predicted against actual purchases in the holdout period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutFit {
    /// Length of the holdout period (units).
    pub length: f64,
    /// By calibration frequency 0..6 and 7+.
    pub buckets: Vec<HoldoutBucket>,
    /// Mean absolute error per customer.
    pub mae: f64,
    /// Mean of (predicted - actual) per customer.
    pub bias: f64,
    /// Total predicted purchases.
    pub predicted_total: f64,
    /// Total actual purchases.
    pub actual_total: f64,
    /// Week by week after the calibration end (empty from
    /// [`holdout_fit`]; filled by [`holdout_report`]).
    #[serde(default)]
    pub weekly: Vec<HoldoutWeek>,
}

/// One week of the holdout period: predicted against actual purchases of
/// all customers, in the week and cumulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutWeek {
    /// Week number, 1 = the first 7 days after the calibration end.
    pub week: u32,
    /// Days after the calibration end at the end of this week (7, 14, ...;
    /// the last week may be shorter).
    pub end_day: u32,
    /// Predicted purchases in the week (sum over customers).
    pub predicted: f64,
    /// Actual purchase days in the week.
    pub actual: f64,
    /// Predicted purchases from the calibration end to the week's end.
    pub predicted_cumulative: f64,
    /// Actual purchase days from the calibration end to the week's end.
    pub actual_cumulative: f64,
}

/// [`holdout_fit`] and, week by week, the sum of customers' conditional
/// expected purchases against their actual purchase days (as the
/// tracking plots of Fader, Hardie & Lee 2005, for the holdout period).
/// Uses `s.holdout_daily`, so `s` must come from [`summarize`] with a
/// calibration end; `unit` is the unit of the summaries.
pub fn holdout_report<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    s: &Summaries,
    unit: TimeUnit,
) -> HoldoutFit {
    let mut fit = holdout_fit(model, &s.rows, s.holdout_length);
    let days = s.holdout_daily.len();
    if days == 0 {
        return fit;
    }
    let ends: Vec<u32> = (1..=days.div_ceil(7))
        .map(|k| (7 * k).min(days) as u32)
        .collect();
    let horizons: Vec<f64> = ends.iter().map(|&d| d as f64 / unit.days()).collect();
    let r0 = s.rows[0];
    let factorises = model
        .expected_purchases_if_alive(1.0, r0.frequency as f64, r0.t)
        .is_some();
    // Group customers: by (x, T) with summed P(alive) when the model
    // factorises, else by (x, t_x, T).
    let mut keys: summary::FxMap<(u32, u64, u64), usize> = summary::FxMap::default();
    let mut groups: Vec<(f64, f64, f64, f64)> = Vec::new(); // x, t_x, T, weight
    for r in &s.rows {
        let x = r.frequency as f64;
        let (tx_key, w) = if factorises {
            (0, model.p_alive(x, r.recency, r.t))
        } else {
            (r.recency.to_bits(), 1.0)
        };
        let next = groups.len();
        let g = *keys
            .entry((r.frequency, tx_key, r.t.to_bits()))
            .or_insert(next);
        if g == next {
            groups.push((x, r.recency, r.t, 0.0));
        }
        groups[g].3 += w;
    }
    let k = horizons.len();
    let cumulative = groups
        .par_iter()
        .fold(
            || vec![0.0; k],
            |mut acc, &(x, tx, t, w)| {
                for (j, &h) in horizons.iter().enumerate() {
                    acc[j] += w * if factorises {
                        model
                            .expected_purchases_if_alive(h, x, t)
                            .unwrap_or(f64::NAN)
                    } else {
                        model.expected_purchases(h, x, tx, t)
                    };
                }
                acc
            },
        )
        .reduce(
            || vec![0.0; k],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
    let mut prev_p = 0.0;
    let mut act_cum = 0.0;
    let mut start = 0usize;
    fit.weekly = ends
        .iter()
        .enumerate()
        .map(|(j, &end)| {
            let actual: u64 = s.holdout_daily[start..end as usize].iter().sum();
            start = end as usize;
            act_cum += actual as f64;
            let w = HoldoutWeek {
                week: j as u32 + 1,
                end_day: end,
                predicted: cumulative[j] - prev_p,
                actual: actual as f64,
                predicted_cumulative: cumulative[j],
                actual_cumulative: act_cum,
            };
            prev_p = cumulative[j];
            w
        })
        .collect();
    fit
}

/// Compare each customer's expected purchases over the holdout period with
/// the purchases made in it.
pub fn holdout_fit<M: PurchaseModel + Sync + ?Sized>(
    model: &M,
    rows: &[CustomerSummary],
    length: f64,
) -> HoldoutFit {
    const B: usize = 8;
    let (sums, abs_err) = rows
        .par_iter()
        .map(|r| {
            let pred = model.expected_purchases(length, r.frequency as f64, r.recency, r.t);
            let act = r.holdout_frequency as f64;
            let mut s = [(0usize, 0.0f64, 0.0f64); B];
            let b = (r.frequency as usize).min(B - 1);
            s[b] = (1, pred, act);
            (s, (pred - act).abs())
        })
        .reduce(
            || ([(0, 0.0, 0.0); B], 0.0),
            |(mut a, ea), (b, eb)| {
                for i in 0..B {
                    a[i].0 += b[i].0;
                    a[i].1 += b[i].1;
                    a[i].2 += b[i].2;
                }
                (a, ea + eb)
            },
        );
    let n = rows.len().max(1) as f64;
    let predicted_total: f64 = sums.iter().map(|s| s.1).sum();
    let actual_total: f64 = sums.iter().map(|s| s.2).sum();
    HoldoutFit {
        length,
        buckets: sums
            .iter()
            .enumerate()
            .map(|(i, &(c, p, a))| HoldoutBucket {
                label: if i == B - 1 {
                    format!("{i}+")
                } else {
                    i.to_string()
                },
                customers: c,
                predicted: if c > 0 { p / c as f64 } else { 0.0 },
                actual: if c > 0 { a / c as f64 } else { 0.0 },
            })
            .collect(),
        mae: abs_err / n,
        bias: (predicted_total - actual_total) / n,
        predicted_total,
        actual_total,
        weekly: Vec::new(),
    }
}
