//! Recency, frequency, monetary scores and named segments.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ratio, Dataset};

/// The eleven named RFM segments, in rule order (first match wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Segment {
    /// R 4-5, F 4-5, M 4-5.
    Champions,
    /// R 3-5, F 3-5, M 3-5.
    Loyal,
    /// R 1, F 4-5, M 4-5.
    #[serde(rename = "Can't Lose Them")]
    CantLoseThem,
    /// R 1-2, F 3-5.
    #[serde(rename = "At Risk")]
    AtRisk,
    /// R 5, F 1.
    New,
    /// R 4, F 1.
    Promising,
    /// R 4-5, F 2-5.
    #[serde(rename = "Potential Loyalist")]
    PotentialLoyalist,
    /// R 3.
    #[serde(rename = "Need Attention")]
    NeedAttention,
    /// R 2, F 1-2.
    #[serde(rename = "About To Sleep")]
    AboutToSleep,
    /// R 1, F 1-2, M 2-5.
    Hibernating,
    /// Everything else (R 1, F 1-2, M 1).
    Lost,
}

/// One segment rule: inclusive score ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SegmentRule {
    /// The segment.
    pub segment: Segment,
    /// Recency score range.
    pub r: (u8, u8),
    /// Frequency score range.
    pub f: (u8, u8),
    /// Monetary score range.
    pub m: (u8, u8),
}

/// The segment rules, in order; the first rule whose three ranges contain the
/// member's scores wins, and the last rule matches everything.
pub const SEGMENT_RULES: [SegmentRule; 11] = [
    rule(Segment::Champions, (4, 5), (4, 5), (4, 5)),
    rule(Segment::Loyal, (3, 5), (3, 5), (3, 5)),
    rule(Segment::CantLoseThem, (1, 1), (4, 5), (4, 5)),
    rule(Segment::AtRisk, (1, 2), (3, 5), (1, 5)),
    rule(Segment::New, (5, 5), (1, 1), (1, 5)),
    rule(Segment::Promising, (4, 4), (1, 1), (1, 5)),
    rule(Segment::PotentialLoyalist, (4, 5), (2, 5), (1, 5)),
    rule(Segment::NeedAttention, (3, 3), (1, 5), (1, 5)),
    rule(Segment::AboutToSleep, (2, 2), (1, 2), (1, 5)),
    rule(Segment::Hibernating, (1, 1), (1, 2), (2, 5)),
    rule(Segment::Lost, (1, 5), (1, 5), (1, 5)),
];

const fn rule(segment: Segment, r: (u8, u8), f: (u8, u8), m: (u8, u8)) -> SegmentRule {
    SegmentRule { segment, r, f, m }
}

impl Segment {
    /// All segments in rule order.
    pub fn all() -> impl Iterator<Item = Segment> {
        SEGMENT_RULES.iter().map(|r| r.segment)
    }

    /// The segment of a score triple.
    pub fn of(r: u8, f: u8, m: u8) -> Segment {
        let inside = |x: u8, (lo, hi): (u8, u8)| x >= lo && x <= hi;
        SEGMENT_RULES
            .iter()
            .find(|s| inside(r, s.r) && inside(f, s.f) && inside(m, s.m))
            .map(|s| s.segment)
            .unwrap_or(Segment::Lost)
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "Champions",
            Segment::Loyal => "Loyal",
            Segment::CantLoseThem => "Can't Lose Them",
            Segment::AtRisk => "At Risk",
            Segment::New => "New",
            Segment::Promising => "Promising",
            Segment::PotentialLoyalist => "Potential Loyalist",
            Segment::NeedAttention => "Need Attention",
            Segment::AboutToSleep => "About To Sleep",
            Segment::Hibernating => "Hibernating",
            Segment::Lost => "Lost",
        }
    }

    fn index(self) -> usize {
        SEGMENT_RULES
            .iter()
            .position(|r| r.segment == self)
            .expect("every segment has a rule")
    }
}

/// Quintile scores 1..5 with the tie rule: a member's score is
/// `1 + floor(5 * w / n)` where `w` is the number of members with a strictly
/// worse value and `n` the number of members. Equal values always get equal
/// scores, and the result does not depend on input order.
pub fn quintile_scores(values: &[i64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_unstable_by_key(|&i| values[i as usize]);
    if !higher_is_better {
        idx.reverse();
    }
    // Walk from worst to best; `w` = members before the current group.
    let mut scores = vec![0u8; n];
    let mut start = 0;
    while start < n {
        let v = values[idx[start] as usize];
        let mut end = start;
        while end < n && values[idx[end] as usize] == v {
            end += 1;
        }
        let score = 1 + (5 * start / n) as u8;
        for &i in &idx[start..end] {
            scores[i as usize] = score;
        }
        start = end;
    }
    scores
}

/// One member's RFM values, scores and segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmMember {
    /// Member id.
    pub member_id: i64,
    /// Days from the last purchase day to the as-of day.
    pub recency_days: i32,
    /// Distinct purchase days.
    pub frequency: u32,
    /// Net revenue, minor units.
    pub monetary: i64,
    /// Recency score (5 = most recent).
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
    /// Segment.
    pub segment: Segment,
}

/// One segment's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmSegmentRow {
    /// Segment.
    pub segment: Segment,
    /// Members in it.
    pub members: u64,
    /// `members / all scored members`.
    pub member_share: f64,
    /// Net revenue of its members, minor units.
    pub revenue: i64,
    /// `revenue / all revenue` (0 when total revenue is 0).
    pub revenue_share: f64,
    /// Mean recency days.
    pub avg_recency_days: f64,
    /// Mean frequency.
    pub avg_frequency: f64,
    /// Mean monetary, minor units.
    pub avg_monetary: f64,
}

/// The RFM report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// Members with a purchase (scored).
    pub members: u64,
    /// Members with orders but no purchase (not scored).
    pub members_without_purchases: u64,
    /// Net revenue of scored members, minor units.
    pub revenue: i64,
    /// Every segment, in rule order (empty segments included).
    pub segments: Vec<RfmSegmentRow>,
    /// Per-member scores (only when asked for), by member id.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub member_scores: Vec<RfmMember>,
}

/// Score every member of the data set, by member id.
pub fn rfm_members(data: &Dataset) -> Vec<RfmMember> {
    let recency: Vec<i64> = data
        .members
        .iter()
        .map(|m| i64::from(data.as_of_day - m.last_day))
        .collect();
    let freq: Vec<i64> = data
        .members
        .iter()
        .map(|m| i64::from(m.purchase_days))
        .collect();
    let money: Vec<i64> = data.members.iter().map(|m| m.net_revenue).collect();
    let rs = quintile_scores(&recency, false);
    let fs = quintile_scores(&freq, true);
    let ms = quintile_scores(&money, true);
    let mut out: Vec<RfmMember> = data
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| RfmMember {
            member_id: m.member_id,
            recency_days: recency[i] as i32,
            frequency: m.purchase_days,
            monetary: m.net_revenue,
            r: rs[i],
            f: fs[i],
            m: ms[i],
            segment: Segment::of(rs[i], fs[i], ms[i]),
        })
        .collect();
    out.sort_unstable_by_key(|m| m.member_id);
    out
}

/// The RFM report; `with_members` keeps the per-member rows.
pub fn rfm(data: &Dataset, with_members: bool) -> RfmReport {
    let scored = rfm_members(data);
    let n = scored.len() as f64;
    let total: i64 = scored.iter().map(|m| m.monetary).sum();
    let mut acc = vec![(0u64, 0i64, 0i64, 0u64); Segment::all().count()];
    for m in &scored {
        let a = &mut acc[m.segment.index()];
        a.0 += 1;
        a.1 += m.monetary;
        a.2 += i64::from(m.recency_days);
        a.3 += u64::from(m.frequency);
    }
    let segments = Segment::all()
        .zip(acc)
        .map(|(segment, (members, revenue, rec, freq))| {
            let k = members as f64;
            RfmSegmentRow {
                segment,
                members,
                member_share: ratio(k, n),
                revenue,
                revenue_share: ratio(revenue as f64, total as f64),
                avg_recency_days: ratio(rec as f64, k),
                avg_frequency: ratio(freq as f64, k),
                avg_monetary: ratio(revenue as f64, k),
            }
        })
        .collect();
    RfmReport {
        as_of: data.as_of(),
        members: scored.len() as u64,
        members_without_purchases: data.members_without_purchases,
        revenue: total,
        segments,
        member_scores: if with_members { scored } else { Vec::new() },
    }
}
