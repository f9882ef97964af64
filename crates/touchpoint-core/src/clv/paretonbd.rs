//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader
//! & Hardie's 2005 note): Poisson purchases with rate `λ ~ Gamma(r, α)` and
//! an exponential lifetime with rate `μ ~ Gamma(s, β)`.
//!
//! The likelihood is written as a sum of two positive terms,
//! `L = Γ(r+x) α^r β^s / Γ(r) · [(r+x) J(r+x+1, s; T) + s J(r+x, s+1; t_x)]`
//! with `J(p, q; t) = ∫_t^∞ (α+y)^(-p) (β+y)^(-q) dy`
//! ([`super::special::ln_tail_integral`]). The usual form subtracts two
//! nearly equal 2F1 terms, which is where lifetimes returns NaN for
//! customers with many purchases and a last purchase near T.

use serde::{Deserialize, Serialize};

use super::bgnbd::rate_scale;
use super::special::{ln_gamma, ln_tail_integral, log_add_exp};
use super::{sum_rows, ClvError, FitParams, Model, PurchaseModel, RfmData};

/// Pareto/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution.
    pub alpha: f64,
    /// Shape of the drop-out-rate distribution.
    pub s: f64,
    /// Scale of the drop-out-rate distribution.
    pub beta: f64,
}

impl ParetoNbd {
    /// Fitting settings with defaults.
    pub fn params() -> FitParams<Self> {
        FitParams::new()
    }

    /// `(ln L - ln C, ln first)` where `first = (α+T)^-(r+x) (β+T)^-s`.
    fn parts(&self, x: f64, tx: f64, t: f64) -> (f64, f64) {
        let (r, al, s, be) = (self.r, self.alpha, self.s, self.beta);
        let alive = (r + x).ln() + ln_tail_integral(r + x + 1.0, s, al, be, t);
        let dead = s.ln() + ln_tail_integral(r + x, s + 1.0, al, be, tx);
        let first = -(r + x) * (al + t).ln() - s * (be + t).ln();
        (log_add_exp(alive, dead), first)
    }

    fn row_ll(&self, x: f64, tx: f64, t: f64) -> f64 {
        let (r, al, s, be) = (self.r, self.alpha, self.s, self.beta);
        ln_gamma(r + x) - ln_gamma(r) + r * al.ln() + s * be.ln() + self.parts(x, tx, t).0
    }
}

impl Model for ParetoNbd {
    type Data = RfmData;
    const NAME: &'static str = "Pareto/NBD";
    const PARAM_NAMES: &'static [&'static str] = &["r", "alpha", "s", "beta"];
    const ANALYTIC_GRADIENT: bool = false;

    fn from_params(p: &[f64]) -> Self {
        Self {
            r: p[0],
            alpha: p[1],
            s: p[2],
            beta: p[3],
        }
    }
    fn params(&self) -> Vec<f64> {
        vec![self.r, self.alpha, self.s, self.beta]
    }
    fn default_init(data: &RfmData) -> Vec<f64> {
        let scale = rate_scale(data);
        vec![1.0, scale, 1.0, scale]
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

    /// The gradient is by central differences in log-parameters (step
    /// 1e-6), accurate to about 1e-9 relative.
    fn log_likelihood(&self, d: &RfmData, grad: Option<&mut [f64]>) -> f64 {
        let total = |m: &ParetoNbd| {
            sum_rows::<1, _>(
                d.len(),
                |i, _| d.weight[i] * m.row_ll(d.x[i], d.t_x[i], d.t[i]),
                None,
            )
        };
        let ll = total(self);
        if let Some(g) = grad {
            let p = self.params();
            let eps: f64 = 1e-6;
            for j in 0..4 {
                let mut up = p.clone();
                let mut down = p.clone();
                up[j] = p[j] * eps.exp();
                down[j] = p[j] * (-eps).exp();
                let d_up = total(&ParetoNbd::from_params(&up));
                let d_down = total(&ParetoNbd::from_params(&down));
                g[j] = (d_up - d_down) / (2.0 * eps * p[j]);
            }
        }
        ll
    }
}

impl PurchaseModel for ParetoNbd {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let (ln_l, first) = self.parts(x, t_x, t);
        (first - ln_l).exp().min(1.0)
    }

    /// `(r+x)(β+T) / ((α+T)(s-1)) · [1 - ((β+T)/(β+T+h))^(s-1)] · P(alive)`
    /// (Schmittlein et al. 1987), with the `s -> 1` limit
    /// `(r+x)(β+T)/(α+T) · ln(1 + h/(β+T))`.
    fn expected_purchases(&self, horizon: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let (r, al, s, be) = (self.r, self.alpha, self.s, self.beta);
        let l = (horizon / (be + t)).ln_1p();
        let factor = if (s - 1.0).abs() < 1e-10 {
            l
        } else {
            -(-(s - 1.0) * l).exp_m1() / (s - 1.0)
        };
        (r + x) * (be + t) / (al + t) * factor * self.p_alive(x, t_x, t)
    }
}
