//! What the stored CLV predictions say, in a page: the distribution of CLV,
//! members by band of P(alive), and the high-value members most at risk
//! (the dashboard's Value page).

use serde::{Deserialize, Serialize};

use super::ratio;

/// One member's prediction, as stored by `touchpoint clv predict`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueInput {
    /// Member id.
    pub member_id: i64,
    /// Probability the member is still a customer.
    pub p_alive: f64,
    /// CLV over the model's horizon (currency units), if the model has spend.
    pub clv: Option<f64>,
}

/// A bucket of the CLV distribution: members with `from <= clv < to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvBucket {
    /// Lower bound, currency units.
    pub from: f64,
    /// Upper bound, currency units (the last bucket includes it).
    pub to: f64,
    /// Members.
    pub members: u64,
    /// Their CLV, currency units.
    pub clv: f64,
}

/// Members whose P(alive) is in `[from, to)` (the last band includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliveBand {
    /// Lower bound.
    pub from: f64,
    /// Upper bound.
    pub to: f64,
    /// Members.
    pub members: u64,
    /// Share of the predicted members.
    pub share: f64,
    /// Their CLV, currency units.
    pub clv: f64,
}

/// A high-value member at risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRisk {
    /// Member id.
    pub member_id: i64,
    /// CLV, currency units.
    pub clv: f64,
    /// P(alive).
    pub p_alive: f64,
}

/// The value summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueReport {
    /// Predicted members.
    pub members: u64,
    /// Sum of CLV, currency units.
    pub total_clv: f64,
    /// Mean CLV, currency units.
    pub mean_clv: f64,
    /// Median CLV, currency units.
    pub median_clv: f64,
    /// The CLV of the member at the 80th percentile: members at or above it are "high value".
    pub high_value_threshold: f64,
    /// 10 buckets of equal width from 0 to the 99th percentile, and one above.
    pub distribution: Vec<ClvBucket>,
    /// P(alive) in quarters.
    pub alive_bands: Vec<AliveBand>,
    /// Members with CLV at or above the threshold and P(alive) below 0.5,
    /// highest CLV first, at most `at_risk_limit`.
    pub at_risk: Vec<AtRisk>,
    /// All such members (the list above is cut).
    pub at_risk_members: u64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Summarise predictions (members without a CLV count as 0).
pub fn value_report(preds: &[ValueInput], at_risk_limit: usize) -> ValueReport {
    let clv = |p: &ValueInput| p.clv.unwrap_or(0.0).max(0.0);
    let mut sorted: Vec<f64> = preds.iter().map(clv).collect();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = sorted.iter().sum();
    let p99 = quantile(&sorted, 0.99);
    let high = quantile(&sorted, 0.80);
    let width = if p99 > 0.0 { p99 / 10.0 } else { 1.0 };
    let mut distribution: Vec<ClvBucket> = (0..10)
        .map(|i| ClvBucket {
            from: width * i as f64,
            to: width * (i + 1) as f64,
            members: 0,
            clv: 0.0,
        })
        .collect();
    distribution.push(ClvBucket {
        from: width * 10.0,
        to: sorted.last().copied().unwrap_or(0.0).max(width * 10.0),
        members: 0,
        clv: 0.0,
    });
    let mut bands: Vec<AliveBand> = (0..4)
        .map(|i| AliveBand {
            from: 0.25 * i as f64,
            to: 0.25 * (i + 1) as f64,
            members: 0,
            share: 0.0,
            clv: 0.0,
        })
        .collect();
    let mut at_risk = Vec::new();
    for p in preds {
        let v = clv(p);
        let b = ((v / width).floor() as usize).min(10);
        distribution[b].members += 1;
        distribution[b].clv += v;
        let a = ((p.p_alive.clamp(0.0, 1.0) * 4.0).floor() as usize).min(3);
        bands[a].members += 1;
        bands[a].clv += v;
        if v >= high && v > 0.0 && p.p_alive < 0.5 {
            at_risk.push(AtRisk {
                member_id: p.member_id,
                clv: v,
                p_alive: p.p_alive,
            });
        }
    }
    for b in &mut bands {
        b.share = ratio(b.members as f64, preds.len() as f64);
    }
    at_risk.sort_by(|a, b| b.clv.total_cmp(&a.clv).then(a.member_id.cmp(&b.member_id)));
    let at_risk_members = at_risk.len() as u64;
    at_risk.truncate(at_risk_limit);
    ValueReport {
        members: preds.len() as u64,
        total_clv: total,
        mean_clv: ratio(total, preds.len() as f64),
        median_clv: quantile(&sorted, 0.5),
        high_value_threshold: high,
        distribution,
        alive_bands: bands,
        at_risk,
        at_risk_members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bands_and_at_risk_are_hand_computed() {
        // CLV 0, 10, 20, ..., 90 (ids 0..10); P(alive) 0.04, 0.14, ..., 0.94.
        let preds: Vec<ValueInput> = (0..10)
            .map(|i| ValueInput {
                member_id: i,
                p_alive: 0.04 + 0.1 * i as f64,
                clv: Some(10.0 * i as f64),
            })
            .collect();
        let r = value_report(&preds, 5);
        assert_eq!(r.members, 10);
        assert!((r.total_clv - 450.0).abs() < 1e-9);
        assert!((r.mean_clv - 45.0).abs() < 1e-9);
        // Sorted index round(9 * 0.8) = 7: 70.
        assert_eq!(r.high_value_threshold, 70.0);
        assert_eq!(r.distribution.iter().map(|b| b.members).sum::<u64>(), 10);
        assert_eq!(
            r.alive_bands.iter().map(|b| b.members).collect::<Vec<_>>(),
            vec![3, 2, 3, 2]
        );
        // CLV >= 70 has P(alive) 0.74..0.94: nobody at risk.
        assert!(r.at_risk.is_empty());

        let mut flipped = preds.clone();
        for p in &mut flipped {
            p.p_alive = 1.0 - p.p_alive;
        }
        let r = value_report(&flipped, 2);
        assert_eq!(r.at_risk_members, 3);
        assert_eq!(r.at_risk.len(), 2);
        assert_eq!(r.at_risk[0].member_id, 9);
        assert_eq!(r.at_risk[1].member_id, 8);
    }

    #[test]
    fn no_predictions_is_an_empty_report() {
        let r = value_report(&[], 10);
        assert_eq!(r.members, 0);
        assert_eq!(r.distribution.len(), 11);
        assert!(r.at_risk.is_empty());
    }
}
