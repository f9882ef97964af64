//! Cohorts by month of first purchase (optionally by first channel).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{month_label, month_of_day, ratio, Dataset};

/// One cohort in one month since its first purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortCell {
    /// Months since the cohort month (0 = the month of first purchase).
    pub months_since: i32,
    /// Cohort members with a purchase in that month.
    pub active_members: u64,
    /// `active_members / cohort members`.
    pub active_share: f64,
    /// Net revenue of the cohort in that month, minor units.
    pub revenue: i64,
    /// `revenue / cohort members`, minor units.
    pub revenue_per_member: f64,
    /// Revenue of months 0..=this per original member, minor units.
    pub cumulative_revenue_per_member: f64,
}

/// One cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// Month of first purchase, `YYYY-MM`.
    pub cohort: String,
    /// First channel (with `--by channel`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub channel: Option<String>,
    /// Members whose first purchase is in that month (and channel).
    pub members: u64,
    /// Months 0 .. the as-of month.
    pub cells: Vec<CohortCell>,
}

/// The cohort report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// `month` or `channel`.
    pub by: String,
    /// Cohorts, oldest first (then by channel).
    pub cohorts: Vec<CohortRow>,
}

/// The cohort report; `by_channel` splits each month by first channel.
pub fn cohorts(data: &Dataset, by_channel: bool) -> CohortReport {
    let as_of_month = month_of_day(data.as_of_day);
    // (cohort month, channel) -> (members, per month offset: (active, revenue)).
    type Acc = (u64, Vec<(u64, i64)>);
    let mut acc: BTreeMap<(i32, Option<u16>), Acc> = BTreeMap::new();
    for m in &data.members {
        let cm = month_of_day(m.first_day);
        let key = (cm, by_channel.then_some(m.first_channel));
        let width = (as_of_month - cm + 1).max(1) as usize;
        let e = acc.entry(key).or_insert_with(|| (0, vec![(0, 0); width]));
        e.0 += 1;
        let mut last_offset = -1;
        for a in &m.activity {
            let off = month_of_day(a.day) - cm;
            if off < 0 || off as usize >= e.1.len() {
                continue;
            }
            let cell = &mut e.1[off as usize];
            cell.1 += a.net_revenue;
            if off != last_offset {
                cell.0 += 1;
                last_offset = off;
            }
        }
    }
    let cohorts = acc
        .into_iter()
        .map(|((month, ch), (members, cells))| {
            let n = members as f64;
            let mut cum = 0i64;
            CohortRow {
                cohort: month_label(month),
                channel: ch.map(|c| data.channels[c as usize].clone()),
                members,
                cells: cells
                    .into_iter()
                    .enumerate()
                    .map(|(i, (active, revenue))| {
                        cum += revenue;
                        CohortCell {
                            months_since: i as i32,
                            active_members: active,
                            active_share: ratio(active as f64, n),
                            revenue,
                            revenue_per_member: ratio(revenue as f64, n),
                            cumulative_revenue_per_member: ratio(cum as f64, n),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    CohortReport {
        as_of: data.as_of(),
        by: if by_channel { "channel" } else { "month" }.to_string(),
        cohorts,
    }
}
