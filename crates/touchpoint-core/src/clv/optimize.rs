//! A small BFGS minimiser with a backtracking (Armijo) line search, a numeric
//! Hessian and a dense symmetric-matrix inverse: all the fitting machinery the
//! CLV models need, without a heavy numerical dependency.

#![allow(clippy::needless_range_loop)] // index loops read better in matrix code

/// Outcome of a minimisation.
#[derive(Debug, Clone)]
pub struct Minimum {
    /// The minimiser found.
    pub x: Vec<f64>,
    /// The objective at `x`.
    pub value: f64,
    /// Infinity norm of the gradient at `x`.
    pub grad_norm: f64,
    /// Iterations used.
    pub iterations: usize,
    /// True when the gradient or objective tolerance was met.
    pub converged: bool,
}

/// Minimise `f` (which returns the value and writes the gradient) from `x0`
/// with BFGS.
///
/// Stops when the gradient's infinity norm is below `gtol`, or when the
/// objective has stopped changing (relative change below 1e-15 for 3
/// iterations in a row, the floating-point floor), or after `max_iter`
/// iterations. Non-finite objective values are treated as +infinity, so the
/// line search backs away from them.
pub fn bfgs<F>(f: F, x0: &[f64], gtol: f64, max_iter: usize) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    bfgs_from(f, x0, None, gtol, max_iter)
}

/// [`bfgs`] with a first inverse-Hessian approximation `h0` (for example
/// from a fit on a subsample); the identity when `None`.
pub fn bfgs_from<F>(
    mut f: F,
    x0: &[f64],
    h0: Option<Vec<Vec<f64>>>,
    gtol: f64,
    max_iter: usize,
) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let warm = h0.is_some();
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    if !fx.is_finite() {
        return Minimum {
            x,
            value: fx,
            grad_norm: f64::NAN,
            iterations: 0,
            converged: false,
        };
    }
    // Inverse Hessian approximation, identity to start.
    let mut h = h0.unwrap_or_else(|| identity(n));
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut stalls = 0;
    let mut iterations = 0;
    let mut converged = false;
    let mut first = !warm;
    while iterations < max_iter {
        if inf_norm(&g) < gtol {
            converged = true;
            break;
        }
        iterations += 1;
        // Direction d = -H g.
        let mut d: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
        let mut slope = dot(&d, &g);
        if slope >= 0.0 {
            // Not a descent direction: reset to steepest descent.
            h = identity(n);
            d = g.iter().map(|v| -v).collect();
            slope = dot(&d, &g);
        }
        // On the first step, keep the move modest (parameters are logs).
        let mut step = if first {
            (1.0 / inf_norm(&d)).min(1.0)
        } else {
            1.0
        };
        first = false;
        let mut accepted = false;
        let mut f_new = f64::INFINITY;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = f(&x_new, &mut g_new);
            if f_new.is_finite() && f_new <= fx + 1e-4 * step * slope {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // The line search failed: at the floating-point floor already?
            converged = inf_norm(&g) < gtol.sqrt();
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 {
            bfgs_update(&mut h, &s, &y, sy);
        }
        let rel_change = (fx - f_new).abs() / fx.abs().max(1e-300);
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
        if rel_change < 1e-15 {
            stalls += 1;
            if stalls >= 3 {
                converged = inf_norm(&g) < gtol.sqrt();
                break;
            }
        } else {
            stalls = 0;
        }
    }
    if !converged && inf_norm(&g) < gtol {
        converged = true;
    }
    Minimum {
        grad_norm: inf_norm(&g),
        x,
        value: fx,
        iterations,
        converged,
    }
}

fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], y)).collect();
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Numeric Hessian by central differences of an analytic gradient `grad`,
/// symmetrised. Step for coordinate `j`: `1e-5 * max(|x_j|, 1e-3)`.
pub fn numeric_hessian<G>(mut grad: G, x: &[f64]) -> Vec<Vec<f64>>
where
    G: FnMut(&[f64], &mut [f64]),
{
    let n = x.len();
    let mut hess = vec![vec![0.0; n]; n];
    let mut xp = x.to_vec();
    let mut gp = vec![0.0; n];
    let mut gm = vec![0.0; n];
    for j in 0..n {
        let h = 1e-5 * x[j].abs().max(1e-3);
        xp[j] = x[j] + h;
        grad(&xp, &mut gp);
        xp[j] = x[j] - h;
        grad(&xp, &mut gm);
        xp[j] = x[j];
        for i in 0..n {
            hess[i][j] = (gp[i] - gm[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (hess[i][j] + hess[j][i]);
            hess[i][j] = m;
            hess[j][i] = m;
        }
    }
    hess
}

/// Numeric Hessian by second differences of the function values `f`
/// (for objectives without an analytic gradient). Step for coordinate `j`:
/// `1e-4 * max(|x_j|, 1e-3)`.
pub fn numeric_hessian_from_values<F>(mut f: F, x: &[f64]) -> Vec<Vec<f64>>
where
    F: FnMut(&[f64]) -> f64,
{
    let n = x.len();
    let h: Vec<f64> = x.iter().map(|v| 1e-4 * v.abs().max(1e-3)).collect();
    let f0 = f(x);
    let mut hess = vec![vec![0.0; n]; n];
    let mut xp = x.to_vec();
    for i in 0..n {
        for j in 0..=i {
            let eval = |xp: &mut Vec<f64>, f: &mut F, di: f64, dj: f64| {
                xp[i] += di * h[i];
                xp[j] += dj * h[j];
                let v = f(xp);
                xp[i] = x[i];
                xp[j] = x[j];
                v
            };
            let v = if i == j {
                let fp = eval(&mut xp, &mut f, 1.0, 0.0);
                let fm = eval(&mut xp, &mut f, -1.0, 0.0);
                (fp - 2.0 * f0 + fm) / (h[i] * h[i])
            } else {
                let fpp = eval(&mut xp, &mut f, 1.0, 1.0);
                let fpm = eval(&mut xp, &mut f, 1.0, -1.0);
                let fmp = eval(&mut xp, &mut f, -1.0, 1.0);
                let fmm = eval(&mut xp, &mut f, -1.0, -1.0);
                (fpp - fpm - fmp + fmm) / (4.0 * h[i] * h[j])
            };
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    hess
}

/// Inverse of a small dense matrix by Gauss-Jordan elimination with partial
/// pivoting; `None` when it is singular.
pub fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m.to_vec();
    let mut inv = identity(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for i in 0..n {
            if i != col {
                let factor = a[i][col];
                if factor != 0.0 {
                    for j in 0..n {
                        a[i][j] -= factor * a[col][j];
                        inv[i][j] -= factor * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_minimises_rosenbrock() {
        let f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let m = bfgs(f, &[-1.2, 1.0], 1e-10, 1000);
        assert!(m.converged);
        // Tolerance: 1e-6 absolute on the known minimiser (1, 1).
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            m
        );
    }

    #[test]
    fn inverse_of_known_matrix() {
        let m = vec![vec![4.0, 1.0], vec![2.0, 3.0]];
        let inv = invert(&m).unwrap();
        // Exact inverse: [[0.3, -0.1], [-0.2, 0.4]].
        let want = [[0.3, -0.1], [-0.2, 0.4]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-12);
            }
        }
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
