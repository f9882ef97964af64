//! MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD in which a customer
//! can also drop out right after the first purchase, so customers without
//! repeat purchases are not assumed alive.

use serde::{Deserialize, Serialize};

use super::bgnbd::{avoid_a_equal_one, rate_scale};
use super::special::{digamma, hyp2f1, ln_beta, ln_gamma, log_add_exp};
use super::{sum_rows, x_table, ClvError, FitParams, Model, PurchaseModel, RfmData};

/// MBG/NBD parameters (same meaning as in [`super::BgNbd`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MbgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution.
    pub alpha: f64,
    /// Drop-out Beta parameter a.
    pub a: f64,
    /// Drop-out Beta parameter b.
    pub b: f64,
}

impl MbgNbd {
    /// Fitting settings with defaults.
    pub fn params() -> FitParams<Self> {
        FitParams::new()
    }

    fn ln_odds(&self, x: f64, t_x: f64, t: f64) -> f64 {
        self.a.ln() - (self.b + x).ln()
            + (self.r + x) * ((self.alpha + t).ln() - (self.alpha + t_x).ln())
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        x: f64,
        tx: f64,
        t: f64,
        weight: f64,
        dig: &[f64; 3],
        xt: XTerms,
        g: &mut [f64; 4],
    ) -> f64 {
        let (r, al, a, b) = (self.r, self.alpha, self.a, self.b);
        let [dig_r, dig_b, dig_ab] = *dig;
        let ln_al_t = (al + t).ln();
        let ln_al_tx = (al + tx).ln();
        let a3 = -(r + x) * ln_al_t;
        let a4 = a.ln() - (b + x).ln() - (r + x) * ln_al_tx;
        let m = log_add_exp(a3, a4);
        let w = (a4 - m).exp();
        let ll = xt.lg + r * al.ln() + m;
        let dig_abx = xt.dig_abx;
        g[0] += weight * (xt.dig_rx - dig_r + al.ln() - (1.0 - w) * ln_al_t - w * ln_al_tx);
        g[1] += weight * (r / al - (r + x) * ((1.0 - w) / (al + t) + w / (al + tx)));
        g[2] += weight * (dig_ab - dig_abx + w / a);
        g[3] += weight * (xt.dig_bx - dig_abx - dig_b + dig_ab - w / (b + x));
        weight * ll
    }
}

/// The terms of a row that depend only on x.
#[derive(Clone, Copy)]
struct XTerms {
    /// ln Γ(r+x) - ln Γ(r) + ln B(..) - ln B(a, b)
    lg: f64,
    dig_rx: f64,
    dig_abx: f64,
    dig_bx: f64,
}

impl MbgNbd {
    fn x_terms(&self, x: f64) -> XTerms {
        let (r, a, b) = (self.r, self.a, self.b);
        XTerms {
            lg: ln_gamma(r + x) - ln_gamma(r) + ln_beta(a, b + x + 1.0) - ln_beta(a, b),
            dig_rx: digamma(r + x),
            dig_abx: digamma(a + b + x + 1.0),
            dig_bx: digamma(b + x + 1.0),
        }
    }
}

impl Model for MbgNbd {
    type Data = RfmData;
    const NAME: &'static str = "MBG/NBD";
    const PARAM_NAMES: &'static [&'static str] = &["r", "alpha", "a", "b"];
    const ANALYTIC_GRADIENT: bool = true;

    fn from_params(p: &[f64]) -> Self {
        Self {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }
    fn params(&self) -> Vec<f64> {
        vec![self.r, self.alpha, self.a, self.b]
    }
    fn default_init(data: &RfmData) -> Vec<f64> {
        vec![1.0, rate_scale(data), 1.0, 1.0]
    }
    fn n_customers(data: &RfmData) -> f64 {
        data.customers()
    }
    fn n_rows(data: &RfmData) -> usize {
        data.len()
    }
    fn subsample(data: &RfmData, step: usize) -> Option<RfmData> {
        Some(data.every(step))
    }
    fn validate(data: &RfmData) -> Result<(), ClvError> {
        data.validate()
    }
    fn log_likelihood(&self, d: &RfmData, grad: Option<&mut [f64]>) -> f64 {
        let dig = [digamma(self.r), digamma(self.b), digamma(self.a + self.b)];
        let table = x_table(&d.x, |x| self.x_terms(x));
        sum_rows::<4, _>(
            d.len(),
            |i, g| {
                let x = d.x[i];
                let xt = match &table {
                    Some(t) => t[x as usize],
                    None => self.x_terms(x),
                };
                self.row(x, d.t_x[i], d.t[i], d.weight[i], &dig, xt, g)
            },
            grad,
        )
    }
}

impl PurchaseModel for MbgNbd {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        1.0 / (1.0 + self.ln_odds(x, t_x, t).exp())
    }

    /// Batislam et al. (2007) conditional expectation (as in BTYDplus
    /// `mbgnbd.ConditionalExpectedTransactions`), with Euler's transformation
    /// `(1-z)^(r+x) 2F1(r+x, b+x+1; a+b+x; z) =
    /// (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z)`.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let (r, al, b) = (self.r, self.alpha, self.b);
        let odds = self.ln_odds(x, t_x, t).exp();
        avoid_a_equal_one(self.a, |a| {
            let z = horizon / (al + t + horizon);
            let term = (1.0 - z).powf(a - 1.0) * hyp2f1(a + b - r, a - 1.0, a + b + x, z);
            (a + b + x) / (a - 1.0) * (1.0 - term) / (1.0 + odds)
        })
    }
}
