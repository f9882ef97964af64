//! Repeat purchase, inactivity and annual return, against thresholds.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ratio, Dataset};

/// Thresholds the retention numbers are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetentionThresholds {
    /// Repeat within 90 days below this: value is being lost (0.10).
    pub repeat_90_min: f64,
    /// Repeat within 180 days below this: value is being lost (0.20).
    pub repeat_180_min: f64,
    /// Annual return rate target (0.80).
    pub annual_return_target: f64,
}

impl Default for RetentionThresholds {
    fn default() -> Self {
        Self {
            repeat_90_min: 0.10,
            repeat_180_min: 0.20,
            annual_return_target: 0.80,
        }
    }
}

/// Repeat purchase within a window after the first purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatRow {
    /// Window, days.
    pub window_days: i32,
    /// Members observed at least that long (first purchase day + window <= as-of day).
    pub observed_members: u64,
    /// Of those, members with another purchase day within the window.
    pub repeat_members: u64,
    /// `repeat_members / observed_members`.
    pub rate: f64,
    /// Minimum rate, if one applies to this window.
    pub threshold: Option<f64>,
    /// True when the rate is below the threshold.
    pub flagged: bool,
}

/// Members without a purchase in the last N days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InactiveRow {
    /// Days.
    pub days: i32,
    /// Members whose last purchase day is at least `days` before the as-of day.
    pub members: u64,
    /// `members / all members with a purchase`.
    pub share: f64,
}

/// The annual return rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnualReturn {
    /// Members with a purchase in the previous 12 months (days as-of-729 ..= as-of-365).
    pub previous_year_buyers: u64,
    /// Of those, members with a purchase in the last 12 months (as-of-364 ..= as-of).
    pub returned: u64,
    /// `returned / previous_year_buyers`.
    pub rate: f64,
    /// Target.
    pub target: f64,
    /// True when the rate is below the target.
    pub flagged: bool,
}

/// The retention report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// Members with a purchase.
    pub members: u64,
    /// Repeat rates within 90, 180 and 365 days.
    pub repeat: Vec<RepeatRow>,
    /// No purchase in the last 90 and 180 days.
    pub inactive: Vec<InactiveRow>,
    /// Annual return rate.
    pub annual_return: AnnualReturn,
    /// The thresholds used.
    pub thresholds: RetentionThresholds,
    /// Warnings in words, one per flagged number.
    pub flags: Vec<String>,
}

/// The retention report.
pub fn retention(data: &Dataset, t: &RetentionThresholds) -> RetentionReport {
    let as_of = data.as_of_day;
    let windows = [
        (90, Some(t.repeat_90_min)),
        (180, Some(t.repeat_180_min)),
        (365, None),
    ];
    let mut observed = [0u64; 3];
    let mut repeat = [0u64; 3];
    let mut inactive = [0u64; 2];
    let (mut prev, mut returned) = (0u64, 0u64);
    for m in &data.members {
        // The first purchase day after the first one.
        let second = m.activity.iter().map(|a| a.day).find(|&d| d > m.first_day);
        for (i, (w, _)) in windows.iter().enumerate() {
            if m.first_day + w <= as_of {
                observed[i] += 1;
                if second.is_some_and(|d| d <= m.first_day + w) {
                    repeat[i] += 1;
                }
            }
        }
        for (i, d) in [90, 180].iter().enumerate() {
            if as_of - m.last_day >= *d {
                inactive[i] += 1;
            }
        }
        let bought_prev = m
            .activity
            .iter()
            .any(|a| a.day > as_of - 730 && a.day <= as_of - 365);
        if bought_prev {
            prev += 1;
            if m.last_day > as_of - 365 {
                returned += 1;
            }
        }
    }
    let mut flags = Vec::new();
    let repeat_rows = windows
        .iter()
        .enumerate()
        .map(|(i, (w, th))| {
            let rate = ratio(repeat[i] as f64, observed[i] as f64);
            let flagged = th.is_some_and(|th| observed[i] > 0 && rate < th);
            if flagged {
                flags.push(format!(
                    "repeat purchase within {w} days is {:.1}%, below {:.1}%: value is being lost",
                    rate * 100.0,
                    th.unwrap_or(0.0) * 100.0
                ));
            }
            RepeatRow {
                window_days: *w,
                observed_members: observed[i],
                repeat_members: repeat[i],
                rate,
                threshold: *th,
                flagged,
            }
        })
        .collect();
    let n = data.members.len() as f64;
    let inactive_rows = [90, 180]
        .iter()
        .enumerate()
        .map(|(i, d)| InactiveRow {
            days: *d,
            members: inactive[i],
            share: ratio(inactive[i] as f64, n),
        })
        .collect();
    let rate = ratio(returned as f64, prev as f64);
    let flagged = prev > 0 && rate < t.annual_return_target;
    if flagged {
        flags.push(format!(
            "annual return rate is {:.1}%, below the {:.1}% target",
            rate * 100.0,
            t.annual_return_target * 100.0
        ));
    }
    RetentionReport {
        as_of: data.as_of(),
        members: data.members.len() as u64,
        repeat: repeat_rows,
        inactive: inactive_rows,
        annual_return: AnnualReturn {
            previous_year_buyers: prev,
            returned,
            rate,
            target: t.annual_return_target,
            flagged,
        },
        thresholds: *t,
        flags,
    }
}
