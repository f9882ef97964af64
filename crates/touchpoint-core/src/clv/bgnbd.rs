//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way").
//!
//! While active, a customer buys as a Poisson process with rate
//! `λ ~ Gamma(r, α)`; after each repeat purchase they drop out for good with
//! probability `p ~ Beta(a, b)`.

use serde::{Deserialize, Serialize};

use super::special::{digamma, hyp2f1, ln_beta, ln_gamma, trigamma};
use super::{
    sum_rows, unpack_symmetric, x_table, ClvError, FitParams, Model, PurchaseModel, RfmData,
    TimeGrid,
};

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
    /// `weight`) into `g`. `ln_al_t` and `ln_al_tx` are `ln(α + T)` and
    /// `ln(α + t_x)` (looked up when the data is on a day grid).
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        c: &Consts,
        x: f64,
        tx: f64,
        t: f64,
        weight: f64,
        xt: XTerms,
        ln_al_t: f64,
        ln_al_tx: f64,
        g: &mut [f64; 4],
    ) -> f64 {
        let (r, al, a) = (self.r, self.alpha, self.a);
        let a3 = -(r + x) * ln_al_t;
        // ln(e^a3 + e^a4) and the weight w = e^a4 / (e^a3 + e^a4) with one
        // exp and one ln_1p.
        let (tail, w) = if x > 0.0 {
            let a4 = c.ln_a - xt.ln_bx1 - (r + x) * ln_al_tx;
            let d = a4 - a3;
            if d > 0.0 {
                let e = (-d).exp();
                (a4 + e.ln_1p(), 1.0 / (1.0 + e))
            } else {
                let e = d.exp();
                (a3 + e.ln_1p(), e / (1.0 + e))
            }
        } else {
            (a3, 0.0)
        };
        let ll = xt.lg + r * c.ln_al + tail;
        let dig_abx = xt.dig_abx;
        let (w_tx, w_bx) = if x > 0.0 {
            (w / (al + tx), w * xt.inv_bx1)
        } else {
            (0.0, 0.0)
        };
        g[0] += weight * (xt.dig_rx - c.dig_r + c.ln_al - (1.0 - w) * ln_al_t - w * ln_al_tx);
        g[1] += weight * (r / al - (r + x) * ((1.0 - w) / (al + t) + w_tx));
        g[2] += weight * (c.dig_ab - dig_abx + w / a);
        g[3] += weight * (xt.dig_bx - dig_abx - c.dig_b + c.dig_ab - w_bx);
        weight * ll
    }
}

/// Terms of the likelihood that depend only on the parameters.
struct Consts {
    ln_al: f64,
    ln_a: f64,
    dig_r: f64,
    dig_b: f64,
    dig_ab: f64,
}

/// The terms of a row that depend only on x.
#[derive(Clone, Copy)]
struct XTerms {
    /// ln Γ(r+x) - ln Γ(r) + ln B(..) - ln B(a, b)
    lg: f64,
    dig_rx: f64,
    dig_abx: f64,
    dig_bx: f64,
    /// ln(b + x - 1) and 1 / (b + x - 1) (0 when x = 0).
    ln_bx1: f64,
    inv_bx1: f64,
}

impl BgNbd {
    fn x_terms(&self, x: f64) -> XTerms {
        let (r, a, b) = (self.r, self.a, self.b);
        XTerms {
            lg: ln_gamma(r + x) - ln_gamma(r) + ln_beta(a, b + x) - ln_beta(a, b),
            dig_rx: digamma(r + x),
            dig_abx: digamma(a + b + x),
            dig_bx: digamma(b + x),
            ln_bx1: if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 },
            inv_bx1: if x > 0.0 { 1.0 / (b + x - 1.0) } else { 0.0 },
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
    fn subsample(data: &RfmData, step: usize) -> Option<RfmData> {
        Some(data.every(step))
    }
    fn validate(data: &RfmData) -> Result<(), ClvError> {
        data.validate()
    }
    /// Analytic Hessian. Per row, `ll = lg(x) + r ln α + ln(e^A3 + e^A4)`
    /// with `A3 = -(r+x) ln(α+T)`, `A4 = ln a - ln(b+x-1) - (r+x) ln(α+t_x)`
    /// (x > 0) and `w = e^A4 / (e^A3 + e^A4)`; the log-sum-exp's Hessian is
    /// `(1-w) ∇²A3 + w ∇²A4 + w(1-w) (∇A4 - ∇A3)(∇A4 - ∇A3)ᵀ`, and the
    /// gamma-function terms give trigammas.
    fn hessian(&self, d: &RfmData) -> Option<(f64, Vec<Vec<f64>>)> {
        let (r, al, a, b) = (self.r, self.alpha, self.a, self.b);
        let ln_al = al.ln();
        let (tg_r, tg_b, tg_ab) = (trigamma(r), trigamma(b), trigamma(a + b));
        let lg0 = ln_gamma(r) + ln_beta(a, b);
        // Per x: the constant part of ll and the trigamma terms.
        let xterm = |x: f64| {
            (
                ln_gamma(r + x) + ln_beta(a, b + x) - lg0,
                trigamma(r + x) - tg_r,
                tg_ab - trigamma(a + b + x),
                trigamma(b + x) - trigamma(a + b + x) - tg_b + tg_ab,
            )
        };
        let table = x_table(&d.x, xterm);
        let mut upper = [0.0; 10];
        let ll = sum_rows::<10, _>(
            d.len(),
            |i, h| {
                let (x, tx, t, wt) = (d.x[i], d.t_x[i], d.t[i], d.weight[i]);
                let (lg, h_rr, h_aa, h_bb) = match &table {
                    Some(tb) => tb[x as usize],
                    None => xterm(x),
                };
                let (lt, it) = ((al + t).ln(), 1.0 / (al + t));
                let a3 = -(r + x) * lt;
                let d3 = [-lt, -(r + x) * it, 0.0, 0.0];
                let mut hh = [0.0; 10];
                hh[0] = h_rr;
                hh[1] = 1.0 / al;
                hh[4] = -r / (al * al);
                hh[7] = h_aa;
                hh[8] = h_aa;
                hh[9] = h_bb;
                let tail = if x > 0.0 {
                    let (ltx, itx) = ((al + tx).ln(), 1.0 / (al + tx));
                    let bx1 = b + x - 1.0;
                    let a4 = a.ln() - bx1.ln() - (r + x) * ltx;
                    let m = a3.max(a4);
                    let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
                    let w = e4 / (e3 + e4);
                    let d4 = [-ltx, -(r + x) * itx, 1.0 / a, -1.0 / bx1];
                    // Second derivatives of A3 and A4.
                    hh[1] += (1.0 - w) * -it + w * -itx;
                    hh[4] += (1.0 - w) * (r + x) * it * it + w * (r + x) * itx * itx;
                    hh[7] -= w / (a * a);
                    hh[9] += w / (bx1 * bx1);
                    let dd = [d4[0] - d3[0], d4[1] - d3[1], d4[2] - d3[2], d4[3] - d3[3]];
                    let ww = w * (1.0 - w);
                    let mut n = 0;
                    for p in 0..4 {
                        for q in p..4 {
                            hh[n] += ww * dd[p] * dd[q];
                            n += 1;
                        }
                    }
                    m + (e3 + e4).ln()
                } else {
                    hh[1] += -it;
                    hh[4] += (r + x) * it * it;
                    a3
                };
                for (acc, v) in h.iter_mut().zip(hh) {
                    *acc += wt * v;
                }
                wt * (lg + r * ln_al + tail)
            },
            Some(&mut upper),
        );
        Some((ll, unpack_symmetric(4, &upper)))
    }

    fn log_likelihood(&self, d: &RfmData, grad: Option<&mut [f64]>) -> f64 {
        let c = Consts {
            ln_al: self.alpha.ln(),
            ln_a: self.a.ln(),
            dig_r: digamma(self.r),
            dig_b: digamma(self.b),
            dig_ab: digamma(self.a + self.b),
        };
        let table = x_table(&d.x, |x| self.x_terms(x));
        let ln_al = TimeGrid::new(&d.t, &d.t_x, |v| (self.alpha + v).ln());
        sum_rows::<4, _>(
            d.len(),
            |i, g| {
                let (x, tx, t) = (d.x[i], d.t_x[i], d.t[i]);
                let xt = match &table {
                    Some(t) => t[x as usize],
                    None => self.x_terms(x),
                };
                let ln_t = ln_al.get(t);
                let ln_tx = if x > 0.0 { ln_al.get(tx) } else { 0.0 };
                self.row(&c, x, tx, t, d.weight[i], xt, ln_t, ln_tx, g)
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

    /// `E[purchases] / P(alive)`: the factor of eq. 10 before its
    /// `1 / (1 + odds)`, which is P(alive).
    fn expected_purchases_if_alive(&self, horizon: f64, x: f64, t: f64) -> Option<f64> {
        if horizon <= 0.0 {
            return Some(0.0);
        }
        let (r, al, b) = (self.r, self.alpha, self.b);
        Some(avoid_a_equal_one(self.a, |a| {
            let z = horizon / (al + t + horizon);
            let term =
                (1.0 - z).powf(a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z);
            (a + b + x - 1.0) / (a - 1.0) * (1.0 - term)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::{clv_monthly, clv_monthly_many};

    fn data(scale: f64) -> RfmData {
        RfmData::from_triples((0..500).map(|i| {
            let t = (40 + i % 300) as f64 / scale;
            let x = (i % 9) as f64;
            let tx = if x > 0.0 {
                (i % 37) as f64 / scale
            } else {
                0.0
            };
            (x, tx, t)
        }))
    }

    /// The day-grid lookup of ln(α + t) must give the same log-likelihood
    /// and gradient as computing every logarithm: checked against a copy of
    /// the data nudged off the grid. Tolerance 1e-12 relative.
    #[test]
    fn day_grid_lookup_matches_direct_logarithms() {
        let m = BgNbd {
            r: 0.6,
            alpha: 4.2,
            a: 0.8,
            b: 2.5,
        };
        for scale in [1.0, 7.0] {
            let d = data(scale);
            let mut off = d.clone();
            off.t[0] += 1e-9;
            let (mut g1, mut g2) = ([0.0; 4], [0.0; 4]);
            let l1 = m.log_likelihood(&d, Some(&mut g1));
            let l2 = m.log_likelihood(&off, Some(&mut g2));
            assert!(((l1 - l2) / l1).abs() < 1e-12, "{l1} vs {l2}");
            for j in 0..4 {
                assert!((g1[j] - g2[j]).abs() <= 1e-9 * g1[j].abs().max(1.0));
            }
        }
    }

    /// The analytic Hessian equals a central difference of the analytic
    /// gradient (tolerance 1e-6 relative to the largest entry), and its
    /// log-likelihood equals `log_likelihood` (1e-12 relative).
    #[test]
    fn analytic_hessian_matches_numeric() {
        let m = BgNbd {
            r: 0.6,
            alpha: 4.2,
            a: 0.8,
            b: 2.5,
        };
        for scale in [1.0, 7.0] {
            let d = data(scale);
            let (ll, h) = m.hessian(&d).unwrap();
            let l0 = m.log_likelihood(&d, None);
            assert!(((ll - l0) / l0).abs() < 1e-12, "{ll} vs {l0}");
            let num = crate::clv::optimize::numeric_hessian(
                |p, g| {
                    BgNbd::from_params(p).log_likelihood(&d, Some(g));
                },
                &m.params(),
            );
            let big = num.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
            for i in 0..4 {
                for j in 0..4 {
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

    /// Batch CLV (shared work per frequency and age) equals per-customer
    /// CLV; tolerance 1e-12 relative.
    #[test]
    fn batch_clv_matches_per_customer() {
        let m = BgNbd {
            r: 0.51,
            alpha: 18.8,
            a: 1.11,
            b: 14.9,
        };
        let d = data(1.0);
        let spend: Vec<f64> = (0..d.len()).map(|i| 20.0 + i as f64).collect();
        let many = clv_monthly_many(&m, &d.x, &d.t_x, &d.t, &spend, 12, 30.0, 0.01);
        for i in 0..d.len() {
            let one = clv_monthly(&m, d.x[i], d.t_x[i], d.t[i], spend[i], 12, 30.0, 0.01);
            assert!(
                ((many[i] - one) / one).abs() < 1e-12,
                "row {i}: {} vs {one}",
                many[i]
            );
        }
    }
}
