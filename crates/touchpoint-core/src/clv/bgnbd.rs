//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way").
//!
//! While active, a customer buys as a Poisson process with rate
//! `λ ~ Gamma(r, α)`; after each repeat purchase they drop out for good with
//! probability `p ~ Beta(a, b)`.

use serde::{Deserialize, Serialize};

use super::special::{digamma, hyp2f1, ln_beta, ln_gamma, log_add_exp};
use super::{sum_rows, x_table, ClvError, FitParams, Model, PurchaseModel, RfmData};

/// BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale (in time units) of the purchase-rate distribution.
    pub alpha: f64,
    /// Drop-out Beta parameter a.
    pub a: f64,
    /// Drop-out Beta parameter b.
    pub b: f64,
}

impl BgNbd {
    /// Fitting settings with defaults (see [`FitParams`]).
    pub fn params() -> FitParams<Self> {
        FitParams::new()
    }

    /// Log-likelihood of one customer, with its gradient added (times
    /// `weight`) into `g`.
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
        let a3 = -(r + x) * ln_al_t;
        let (tail, w, ln_al_tx) = if x > 0.0 {
            let ln_al_tx = (al + tx).ln();
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * ln_al_tx;
            let m = log_add_exp(a3, a4);
            (m, (a4 - m).exp(), ln_al_tx)
        } else {
            (a3, 0.0, 0.0)
        };
        let ll = xt.lg + r * al.ln() + tail;
        let dig_abx = xt.dig_abx;
        g[0] += weight * (xt.dig_rx - dig_r + al.ln() - (1.0 - w) * ln_al_t - w * ln_al_tx);
        g[1] += weight
            * (r / al
                - (r + x) * ((1.0 - w) / (al + t) + if x > 0.0 { w / (al + tx) } else { 0.0 }));
        g[2] += weight * (dig_ab - dig_abx + w / a);
        g[3] += weight
            * (xt.dig_bx - dig_abx - dig_b + dig_ab
                - if x > 0.0 { w / (b + x - 1.0) } else { 0.0 });
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

impl BgNbd {
    fn x_terms(&self, x: f64) -> XTerms {
        let (r, a, b) = (self.r, self.a, self.b);
        XTerms {
            lg: ln_gamma(r + x) - ln_gamma(r) + ln_beta(a, b + x) - ln_beta(a, b),
            dig_rx: digamma(r + x),
            dig_abx: digamma(a + b + x),
            dig_bx: digamma(b + x),
        }
    }
}

impl Model for BgNbd {
    type Data = RfmData;
    const NAME: &'static str = "BG/NBD";
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

/// A starting scale for α: mean age over mean frequency (so r/α starts near
/// the observed purchase rate when r = 1).
pub(crate) fn rate_scale(d: &RfmData) -> f64 {
    let n = d.customers();
    let mx: f64 = d.x.iter().zip(&d.weight).map(|(x, w)| x * w).sum::<f64>() / n;
    let mt: f64 = d.t.iter().zip(&d.weight).map(|(t, w)| t * w).sum::<f64>() / n;
    (mt / (mx + 0.1)).clamp(1e-3, 1e6)
}

/// Evaluate `f(a)` for a model quantity with `a - 1` in a denominator: at
/// `a` within 1e-7 of 1 average the two sides (the limit exists).
pub(crate) fn avoid_a_equal_one(a: f64, f: impl Fn(f64) -> f64) -> f64 {
    if (a - 1.0).abs() < 1e-7 {
        0.5 * (f(1.0 - 1e-7) + f(1.0 + 1e-7))
    } else {
        f(a)
    }
}

impl PurchaseModel for BgNbd {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let ln_odds = self.a.ln() - (self.b + x - 1.0).ln()
            + (self.r + x) * ((self.alpha + t).ln() - (self.alpha + t_x).ln());
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Fader, Hardie & Lee (2005) eq. 10, with Euler's transformation
    /// `((α+T)/(α+T+h))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) =
    /// (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`, `z = h/(α+T+h)`, which
    /// keeps every term small for large x.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let (r, al, b) = (self.r, self.alpha, self.b);
        avoid_a_equal_one(self.a, |a| {
            let z = horizon / (al + t + horizon);
            let term =
                (1.0 - z).powf(a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z);
            let num = (a + b + x - 1.0) / (a - 1.0) * (1.0 - term);
            let odds = if x > 0.0 {
                (a.ln() - (b + x - 1.0).ln() + (r + x) * ((al + t).ln() - (al + t_x).ln())).exp()
            } else {
                0.0
            };
            num / (1.0 + odds)
        })
    }
}
