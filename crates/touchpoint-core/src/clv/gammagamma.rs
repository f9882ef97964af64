//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV", and
//! Fader & Hardie's 2013 note): each transaction's value is
//! `Gamma(p, ν)`, and `ν ~ Gamma(q, γ)` across customers. It assumes spend is
//! independent of purchase frequency; fit it on customers with at least one
//! repeat purchase, using their mean repeat spend.

use serde::{Deserialize, Serialize};

use super::special::{digamma, ln_gamma, trigamma};
use super::{sum_rows, unpack_symmetric, ClvError, FitParams, Model, SpendData};

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of a transaction's value.
    pub p: f64,
    /// Shape of the across-customer distribution of ν.
    pub q: f64,
    /// Scale of the across-customer distribution of ν.
    pub gamma: f64,
}

impl GammaGamma {
    /// Fitting settings with defaults.
    pub fn params() -> FitParams<Self> {
        FitParams::new()
    }

    /// Expected mean spend per transaction of a customer with `x` repeat
    /// purchases of mean value `m`: `p (γ + x m) / (p x + q - 1)`, a weighted
    /// average of the population mean `p γ / (q - 1)` and `m`. With `x = 0`
    /// it is the population mean. Requires `q > 1` (else NaN).
    pub fn expected_spend(&self, x: f64, m: f64) -> f64 {
        if self.q <= 1.0 {
            return f64::NAN;
        }
        let m = if x > 0.0 { m } else { 0.0 };
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }

    /// Population mean spend per transaction, `p γ / (q - 1)`.
    pub fn population_mean(&self) -> f64 {
        self.expected_spend(0.0, 0.0)
    }
}

impl Model for GammaGamma {
    type Data = SpendData;
    const NAME: &'static str = "Gamma-Gamma";
    const PARAM_NAMES: &'static [&'static str] = &["p", "q", "gamma"];
    const ANALYTIC_GRADIENT: bool = true;

    fn from_params(v: &[f64]) -> Self {
        Self {
            p: v[0],
            q: v[1],
            gamma: v[2],
        }
    }
    fn params(&self) -> Vec<f64> {
        vec![self.p, self.q, self.gamma]
    }
    /// Method-of-moments-like start: p = 2, q = 3, γ = mean(m).
    fn default_init(d: &SpendData) -> Vec<f64> {
        let n = d.customers();
        let mean = d.m.iter().zip(&d.weight).map(|(m, w)| m * w).sum::<f64>() / n;
        vec![2.0, 3.0, mean.max(1e-6)]
    }
    fn n_customers(d: &SpendData) -> f64 {
        d.customers()
    }
    fn n_rows(d: &SpendData) -> usize {
        d.len()
    }
    fn subsample(data: &SpendData, step: usize) -> Option<SpendData> {
        Some(data.every(step))
    }
    fn validate(d: &SpendData) -> Result<(), ClvError> {
        if d.is_empty() {
            return Err(ClvError::NoData(
                "Gamma-Gamma needs customers with repeat purchases and positive spend".into(),
            ));
        }
        for i in 0..d.len() {
            if !(d.x[i] > 0.0 && d.m[i] > 0.0 && d.m[i].is_finite() && d.weight[i] > 0.0) {
                return Err(ClvError::Invalid(format!(
                    "Gamma-Gamma row x={}, m={}: need x > 0 and m > 0",
                    d.x[i], d.m[i]
                )));
            }
        }
        Ok(())
    }

    /// Analytic Hessian in (p, q, γ), one pass.
    fn hessian(&self, d: &SpendData) -> Option<(f64, Vec<Vec<f64>>)> {
        let (p, q, ga) = (self.p, self.q, self.gamma);
        let (lg_q, tg_q, ln_ga) = (ln_gamma(q), trigamma(q), ga.ln());
        let terms = |x: f64| {
            let px = p * x;
            (
                ln_gamma(px + q) - ln_gamma(px),
                trigamma(px + q),
                trigamma(px),
                x.ln(),
            )
        };
        let table = super::x_table(&d.x, terms);
        let mut upper = [0.0; 6];
        let ll = sum_rows::<6, _>(
            d.len(),
            |i, h| {
                let (x, m, w) = (d.x[i], d.m[i], d.weight[i]);
                let px = p * x;
                let s = x * m + ga;
                let (lg, tg_pxq, tg_px, ln_x) = match &table {
                    Some(t) => t[x as usize],
                    None => terms(x),
                };
                let ln_m = m.ln();
                h[0] += w * x * x * (tg_pxq - tg_px);
                h[1] += w * x * tg_pxq;
                h[2] += w * -x / s;
                h[3] += w * (tg_pxq - tg_q);
                h[4] += w * (1.0 / ga - 1.0 / s);
                h[5] += w * (-q / (ga * ga) + (px + q) / (s * s));
                w * (lg - lg_q + q * ln_ga + (px - 1.0) * ln_m + px * ln_x - (px + q) * s.ln())
            },
            Some(&mut upper),
        );
        Some((ll, unpack_symmetric(3, &upper)))
    }

    /// Per customer: `ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln m
    /// + px ln x - (px+q) ln(xm + γ)` (the density of the mean spend m).
    fn log_likelihood(&self, d: &SpendData, grad: Option<&mut [f64]>) -> f64 {
        let (p, q, ga) = (self.p, self.q, self.gamma);
        let (lg_q, dig_q, ln_ga) = (ln_gamma(q), digamma(q), ga.ln());
        // Terms depending only on x: ln Γ(px+q) - ln Γ(px), ψ(px+q), ψ(px), ln x.
        let terms = |x: f64| {
            let px = p * x;
            (
                ln_gamma(px + q) - ln_gamma(px),
                digamma(px + q),
                digamma(px),
                x.ln(),
            )
        };
        let table = super::x_table(&d.x, terms);
        sum_rows::<3, _>(
            d.len(),
            |i, g| {
                let (x, m, w) = (d.x[i], d.m[i], d.weight[i]);
                let px = p * x;
                let ln_xm_g = (x * m + ga).ln();
                let (lg, dig_pxq, dig_px, ln_x) = match &table {
                    Some(t) => t[x as usize],
                    None => terms(x),
                };
                let ln_m = m.ln();
                let ll = lg - lg_q + q * ln_ga + (px - 1.0) * ln_m + px * ln_x - (px + q) * ln_xm_g;
                g[0] += w * x * (dig_pxq - dig_px + ln_m + ln_x - ln_xm_g);
                g[1] += w * (dig_pxq - dig_q + ln_ga - ln_xm_g);
                g[2] += w * (q / ga - (px + q) / (x * m + ga));
                w * ll
            },
            grad,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The analytic Hessian equals a central difference of the analytic
    /// gradient (tolerance 1e-6 relative to the largest entry); its
    /// log-likelihood equals `log_likelihood` (1e-12 relative).
    #[test]
    fn analytic_hessian_matches_numeric() {
        let g = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let d = SpendData::from_pairs(
            (1..400).map(|i| ((1 + i % 9) as f64, 5.0 + (i % 53) as f64 * 1.7)),
        );
        let (ll, h) = g.hessian(&d).unwrap();
        let l0 = g.log_likelihood(&d, None);
        assert!(((ll - l0) / l0).abs() < 1e-12, "{ll} vs {l0}");
        let num = crate::clv::optimize::numeric_hessian(
            |p, gr| {
                GammaGamma::from_params(p).log_likelihood(&d, Some(gr));
            },
            &g.params(),
        );
        let big = num.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        for i in 0..3 {
            for j in 0..3 {
                assert!(
                    (h[i][j] - num[i][j]).abs() < 1e-6 * big,
                    "({i},{j}): {} vs {}",
                    h[i][j],
                    num[i][j]
                );
            }
        }
    }
}
