//! A seeded synthetic transaction generator: BG/NBD purchase behaviour and
//! Gamma-Gamma spend, written as `customer_id,date,amount` CSV.
//!
//! Time runs in weeks (the unit of the BG/NBD parameters). Each customer is
//! observed for a uniform 52..156 weeks (1 to 3 years) ending on
//! `end_date`; the first purchase opens the observation. Purchase times are
//! continuous and written as the day they fall on, so two purchases on one
//! day are merged by the summary step (rare with the defaults).

use std::io::Write;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};
use rayon::prelude::*;

use super::summary::{date_of_epoch_day, epoch_day};
use super::{BgNbd, ClvError, GammaGamma};

/// Settings of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of customers.
    pub customers: usize,
    /// Seed: the same seed gives the same file.
    pub seed: u64,
    /// Purchase model (rates per week). Default r 0.5, α 2.5, a 1.1, b 15.
    pub purchases: BgNbd,
    /// Spend model. Default p 6, q 4, γ 15: mean spend per transaction
    /// p γ / (q - 1) = 30.
    pub spend: GammaGamma,
    /// Shortest observation, in weeks (default 52).
    pub min_weeks: f64,
    /// Longest observation, in weeks (default 156).
    pub max_weeks: f64,
    /// Last day observed for every customer (default 2024-12-31).
    pub end_date: NaiveDate,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            customers: 10_000,
            seed: 42,
            purchases: BgNbd {
                r: 0.5,
                alpha: 2.5,
                a: 1.1,
                b: 15.0,
            },
            spend: GammaGamma {
                p: 6.0,
                q: 4.0,
                gamma: 15.0,
            },
            min_weeks: 52.0,
            max_weeks: 156.0,
            end_date: NaiveDate::from_ymd_opt(2024, 12, 31).expect("valid date"),
        }
    }
}

/// One generated customer: exact (continuous-time) summary and purchases.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthCustomer {
    /// Number of repeat purchases (continuous time).
    pub x: u32,
    /// Time of the last purchase after the first, weeks.
    pub t_x: f64,
    /// Observation length, weeks.
    pub t: f64,
    /// Purchase days (days since 1970-01-01) and amounts, first purchase
    /// included.
    pub purchases: Vec<(i32, f64)>,
}

const BLOCK: usize = 4096;

impl SynthConfig {
    fn check(&self) -> Result<(), ClvError> {
        let p = &self.purchases;
        let s = &self.spend;
        let all = [p.r, p.alpha, p.a, p.b, s.p, s.q, s.gamma];
        if all.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(ClvError::Invalid(
                "generator parameters must be positive".into(),
            ));
        }
        if !(self.min_weeks > 0.0 && self.max_weeks >= self.min_weeks) {
            return Err(ClvError::Invalid("need 0 < min_weeks <= max_weeks".into()));
        }
        Ok(())
    }

    /// Generate customers `start..end` from the block-seeded streams.
    fn block(&self, block: usize) -> Vec<SynthCustomer> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(block as u64);
        let p = &self.purchases;
        let lambda_d = Gamma::new(p.r, 1.0 / p.alpha).expect("valid gamma");
        let drop_d = Beta::new(p.a, p.b).expect("valid beta");
        let nu_d = Gamma::new(self.spend.q, 1.0 / self.spend.gamma).expect("valid gamma");
        let end = epoch_day(self.end_date);
        let start = block * BLOCK;
        let stop = ((block + 1) * BLOCK).min(self.customers);
        (start..stop)
            .map(|_| {
                let t: f64 = rng.gen_range(self.min_weeks..=self.max_weeks);
                let lambda: f64 = lambda_d.sample(&mut rng).max(1e-300);
                let drop: f64 = drop_d.sample(&mut rng);
                let nu: f64 = nu_d.sample(&mut rng).max(1e-300);
                let spend_d = Gamma::new(self.spend.p, 1.0 / nu).expect("valid gamma");
                let exp_d = Exp::new(lambda).expect("valid rate");
                let first_day = end - (t * 7.0).floor() as i32;
                let amount = |rng: &mut ChaCha8Rng| {
                    ((spend_d.sample(rng) * 100.0).round() / 100.0).max(0.01)
                };
                let mut purchases = vec![(first_day, amount(&mut rng))];
                let (mut now, mut x, mut t_x) = (0.0f64, 0u32, 0.0f64);
                loop {
                    now += exp_d.sample(&mut rng);
                    if now > t {
                        break;
                    }
                    x += 1;
                    t_x = now;
                    purchases.push((first_day + (now * 7.0).floor() as i32, amount(&mut rng)));
                    if rng.gen::<f64>() < drop {
                        break;
                    }
                }
                SynthCustomer {
                    x,
                    t_x,
                    t,
                    purchases,
                }
            })
            .collect()
    }

    /// Generate all customers (in parallel, deterministic for a seed).
    pub fn generate(&self) -> Result<Vec<SynthCustomer>, ClvError> {
        self.check()?;
        let blocks = self.customers.div_ceil(BLOCK);
        Ok((0..blocks)
            .into_par_iter()
            .flat_map_iter(|b| self.block(b))
            .collect())
    }

    /// Write `customer_id,date,amount` CSV (header included); ids are
    /// `C` followed by the customer number. Returns the number of rows.
    pub fn write_csv<W: Write>(&self, out: &mut W) -> Result<usize, ClvError> {
        self.check()?;
        let io = |e: std::io::Error| ClvError::Invalid(format!("write failed: {e}"));
        out.write_all(b"customer_id,date,amount\n").map_err(io)?;
        let blocks = self.customers.div_ceil(BLOCK);
        let mut rows = 0;
        // Generate and format a batch of blocks in parallel, then write.
        let batch = rayon::current_num_threads().max(1) * 4;
        for first in (0..blocks).step_by(batch) {
            let texts: Vec<(String, usize)> = (first..(first + batch).min(blocks))
                .into_par_iter()
                .map(|b| {
                    let mut s = String::with_capacity(BLOCK * 64);
                    let mut n = 0;
                    for (k, c) in self.block(b).iter().enumerate() {
                        let id = b * BLOCK + k + 1;
                        for &(day, amount) in &c.purchases {
                            use std::fmt::Write as _;
                            let _ = writeln!(
                                s,
                                "C{id:07},{},{amount:.2}",
                                date_of_epoch_day(day).format("%Y-%m-%d")
                            );
                            n += 1;
                        }
                    }
                    (s, n)
                })
                .collect();
            for (s, n) in texts {
                out.write_all(s.as_bytes()).map_err(io)?;
                rows += n;
            }
        }
        Ok(rows)
    }
}
