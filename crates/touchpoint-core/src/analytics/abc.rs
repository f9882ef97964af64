//! ABC classification by profit contribution.

use serde::{Deserialize, Serialize};

use super::{ratio, Dataset};

/// How members are ranked before the cumulative cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    /// Profit contribution, highest first.
    Contribution,
    /// The weighted multi-factor score, highest first.
    Score,
}

/// Weights of the multi-factor score (each factor is normalised to 0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AbcWeights {
    /// Weight of the normalised contribution.
    pub contribution: f64,
    /// Weight of the normalised frequency (distinct purchase days).
    pub frequency: f64,
    /// Weight of the normalised recency (1 = bought on the as-of day).
    pub recency: f64,
}

impl Default for AbcWeights {
    fn default() -> Self {
        Self {
            contribution: 0.6,
            frequency: 0.2,
            recency: 0.2,
        }
    }
}

/// Cost-to-serve and ranking configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbcConfig {
    /// Fulfilment cost per purchase order, minor units.
    pub fulfilment_cost: i64,
    /// Channel fee rates as a share of the channel's net revenue (`tmall`, 0.05).
    pub channel_fees: Vec<(String, f64)>,
    /// Ranking.
    pub rank_by: RankBy,
    /// Score weights (used when ranking by score).
    pub weights: AbcWeights,
    /// Cumulative share of positive contribution that closes class A (0.80).
    pub a_share: f64,
    /// Cumulative share that closes class B (0.95).
    pub b_share: f64,
}

impl Default for AbcConfig {
    fn default() -> Self {
        Self {
            fulfilment_cost: 0,
            channel_fees: Vec::new(),
            rank_by: RankBy::Contribution,
            weights: AbcWeights::default(),
            a_share: 0.80,
            b_share: 0.95,
        }
    }
}

/// A member's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbcClass {
    /// The top members that together make the first 80% of positive contribution.
    A,
    /// The next 15%.
    B,
    /// The rest of the members with a contribution of zero or more.
    C,
    /// Negative contribution.
    #[serde(rename = "loss-making")]
    LossMaking,
}

impl AbcClass {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            AbcClass::A => "A",
            AbcClass::B => "B",
            AbcClass::C => "C",
            AbcClass::LossMaking => "loss-making",
        }
    }
}

/// One member's contribution and class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbcMember {
    /// Member id.
    pub member_id: i64,
    /// Rank (1 = best) among members with contribution >= 0; loss-making
    /// members are ranked after them, least negative first.
    pub rank: u64,
    /// Net revenue, minor units.
    pub net_revenue: i64,
    /// Cost of goods, minor units.
    pub cogs: i64,
    /// Discounts (already deducted in net revenue; shown for reference), minor units.
    pub discounts: i64,
    /// Fulfilment cost plus channel fees, minor units.
    pub cost_to_serve: i64,
    /// `net_revenue - cogs - cost_to_serve`, minor units.
    pub contribution: i64,
    /// The multi-factor score (0..1).
    pub score: f64,
    /// Class.
    pub class: AbcClass,
}

/// One class's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbcClassRow {
    /// Class.
    pub class: AbcClass,
    /// Members.
    pub members: u64,
    /// `members / all members with a purchase`.
    pub member_share: f64,
    /// Contribution, minor units.
    pub contribution: i64,
    /// `contribution / total positive contribution` (negative for loss-making).
    pub contribution_share: f64,
    /// Net revenue, minor units.
    pub net_revenue: i64,
}

/// A point of the Pareto curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoPoint {
    /// Share of ranked non-loss-making members (0..1).
    pub member_share: f64,
    /// Their share of total positive contribution (0..1).
    pub contribution_share: f64,
}

/// The ABC report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbcReport {
    /// As-of date.
    pub as_of: chrono::NaiveDate,
    /// The configuration used.
    pub config: AbcConfig,
    /// Members with a purchase.
    pub members: u64,
    /// Sum of all contributions, minor units.
    pub total_contribution: i64,
    /// Sum of positive contributions, minor units.
    pub positive_contribution: i64,
    /// A, B, C and loss-making.
    pub classes: Vec<AbcClassRow>,
    /// The Pareto curve: 0%, 1%, ..., 100% of ranked non-loss-making members.
    pub pareto: Vec<ParetoPoint>,
    /// Loss-making members, most negative first (at most 20 unless all members are asked for).
    pub loss_making: Vec<AbcMember>,
    /// Every member by rank (only when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub member_classes: Vec<AbcMember>,
}

fn normalise(x: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        (x - lo) / (hi - lo)
    } else {
        0.0
    }
}

/// Contribution, score and class of every member, by rank.
pub fn abc_members(data: &Dataset, config: &AbcConfig) -> Vec<AbcMember> {
    let fees: Vec<f64> = data
        .channels
        .iter()
        .map(|c| {
            config
                .channel_fees
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, r)| *r)
                .unwrap_or(0.0)
        })
        .collect();
    let mut rows: Vec<(AbcMember, i64, i32)> = data
        .members
        .iter()
        .map(|m| {
            let fee: f64 = m
                .activity
                .iter()
                .map(|a| fees[a.channel as usize] * a.net_revenue as f64)
                .sum();
            let cost_to_serve = config.fulfilment_cost * i64::from(m.orders) + fee.round() as i64;
            let contribution = m.net_revenue - m.cogs - cost_to_serve;
            (
                AbcMember {
                    member_id: m.member_id,
                    rank: 0,
                    net_revenue: m.net_revenue,
                    cogs: m.cogs,
                    discounts: m.discounts,
                    cost_to_serve,
                    contribution,
                    score: 0.0,
                    class: AbcClass::C,
                },
                i64::from(m.purchase_days),
                data.as_of_day - m.last_day,
            )
        })
        .collect();
    let (mut cl, mut ch, mut fl, mut fh, mut rl, mut rh) =
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (m, f, r) in &rows {
        cl = cl.min(m.contribution as f64);
        ch = ch.max(m.contribution as f64);
        fl = fl.min(*f as f64);
        fh = fh.max(*f as f64);
        rl = rl.min(f64::from(*r));
        rh = rh.max(f64::from(*r));
    }
    let w = config.weights;
    for (m, f, r) in &mut rows {
        m.score = w.contribution * normalise(m.contribution as f64, cl, ch)
            + w.frequency * normalise(*f as f64, fl, fh)
            + w.recency * (1.0 - normalise(f64::from(*r), rl, rh));
    }
    let mut members: Vec<AbcMember> = rows.into_iter().map(|(m, _, _)| m).collect();
    // Non-negative members first, ranked; ties by member id.
    members.sort_by(|a, b| {
        let neg = (a.contribution < 0).cmp(&(b.contribution < 0));
        let key = match config.rank_by {
            RankBy::Contribution => b.contribution.cmp(&a.contribution),
            RankBy::Score => b.score.total_cmp(&a.score),
        };
        neg.then(key)
            .then(b.contribution.cmp(&a.contribution))
            .then(a.member_id.cmp(&b.member_id))
    });
    let positive: i64 = members.iter().map(|m| m.contribution.max(0)).sum();
    let mut cum = 0i64;
    for (i, m) in members.iter_mut().enumerate() {
        m.rank = i as u64 + 1;
        m.class = if m.contribution < 0 {
            AbcClass::LossMaking
        } else {
            let before = ratio(cum as f64, positive as f64);
            cum += m.contribution;
            if positive > 0 && before < config.a_share {
                AbcClass::A
            } else if positive > 0 && before < config.b_share {
                AbcClass::B
            } else {
                AbcClass::C
            }
        };
    }
    members
}

/// The ABC report; `with_members` keeps every member's row.
pub fn abc(data: &Dataset, config: &AbcConfig, with_members: bool) -> AbcReport {
    let members = abc_members(data, config);
    let n = members.len() as f64;
    let positive: i64 = members.iter().map(|m| m.contribution.max(0)).sum();
    let total: i64 = members.iter().map(|m| m.contribution).sum();
    let classes = [AbcClass::A, AbcClass::B, AbcClass::C, AbcClass::LossMaking]
        .into_iter()
        .map(|class| {
            let (mut k, mut c, mut r) = (0u64, 0i64, 0i64);
            for m in members.iter().filter(|m| m.class == class) {
                k += 1;
                c += m.contribution;
                r += m.net_revenue;
            }
            AbcClassRow {
                class,
                members: k,
                member_share: ratio(k as f64, n),
                contribution: c,
                contribution_share: ratio(c as f64, positive as f64),
                net_revenue: r,
            }
        })
        .collect();
    let ranked: Vec<i64> = members
        .iter()
        .filter(|m| m.contribution >= 0)
        .map(|m| m.contribution)
        .collect();
    let mut prefix = Vec::with_capacity(ranked.len() + 1);
    prefix.push(0i64);
    for c in &ranked {
        prefix.push(prefix.last().copied().unwrap_or(0) + c);
    }
    let pareto = (0..=100)
        .map(|p| {
            let k = (ranked.len() * p).div_ceil(100);
            ParetoPoint {
                member_share: p as f64 / 100.0,
                contribution_share: ratio(prefix[k] as f64, positive as f64),
            }
        })
        .collect();
    let mut loss: Vec<AbcMember> = members
        .iter()
        .filter(|m| m.class == AbcClass::LossMaking)
        .cloned()
        .collect();
    loss.sort_by(|a, b| {
        a.contribution
            .cmp(&b.contribution)
            .then(a.member_id.cmp(&b.member_id))
    });
    if !with_members {
        loss.truncate(20);
    }
    AbcReport {
        as_of: data.as_of(),
        config: config.clone(),
        members: members.len() as u64,
        total_contribution: total,
        positive_contribution: positive,
        classes,
        pareto,
        loss_making: loss,
        member_classes: if with_members { members } else { Vec::new() },
    }
}
