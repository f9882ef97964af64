//! The overview of a period: headline numbers against the previous period of
//! the same length, and net revenue per day and channel (the dashboard's
//! first page; `touchpoint report overview`).
//!
//! The input is the member data set of everything up to the period's last
//! day, so that new members (first purchase in the period) and the previous
//! period can be told apart from the same data.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{day_to_date, ratio, Dataset};

/// Headline numbers of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodNumbers {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Net revenue of purchases in the period, minor units.
    pub net_revenue: i64,
    /// Purchase orders in the period.
    pub orders: u64,
    /// Members with a purchase in the period.
    pub buyers: u64,
    /// Buyers whose first purchase (in scope) was in the period.
    pub new_members: u64,
    /// Average order value: `net_revenue / orders`, minor units.
    pub aov: f64,
    /// Share of the period's buyers who, by the period's last day, had
    /// purchased on two or more distinct days.
    pub repeat_rate: f64,
    /// Annual return rate at the period's last day: of the members with a
    /// purchase in the 12 months before the last 12, the share who bought
    /// again in the last 12 (as in the retention report).
    pub annual_return_rate: f64,
}

/// Relative change of each headline number against the previous period
/// (`current / previous - 1`); `None` when the previous value is 0. Rates
/// change in points: `current - previous`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodChange {
    /// Net revenue, relative.
    pub net_revenue: Option<f64>,
    /// Orders, relative.
    pub orders: Option<f64>,
    /// Buyers, relative.
    pub buyers: Option<f64>,
    /// New members, relative.
    pub new_members: Option<f64>,
    /// AOV, relative.
    pub aov: Option<f64>,
    /// Repeat rate, difference.
    pub repeat_rate: f64,
    /// Annual return rate, difference.
    pub annual_return_rate: f64,
}

/// One day of the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// Date.
    pub date: NaiveDate,
    /// Net revenue per channel, in the order of [`OverviewReport::channels`].
    pub net_revenue: Vec<i64>,
    /// Purchase orders (all channels).
    pub orders: u64,
}

/// Net revenue of one brand in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrandRow {
    /// Brand.
    pub brand: String,
    /// Net revenue of the brand's order lines, minor units.
    pub net_revenue: i64,
    /// Purchase orders with a line of the brand.
    pub orders: u64,
    /// Members who bought the brand.
    pub buyers: u64,
}

/// The overview report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewReport {
    /// The period's last day.
    pub as_of: NaiveDate,
    /// The period.
    pub current: PeriodNumbers,
    /// The period of the same length just before it.
    pub previous: PeriodNumbers,
    /// Change against the previous period.
    pub change: PeriodChange,
    /// Annual return rate target.
    pub annual_return_target: f64,
    /// True when the current annual return rate is below the target.
    pub annual_return_flagged: bool,
    /// Channels, the columns of [`DayRow::net_revenue`].
    pub channels: Vec<String>,
    /// Every day of the period, oldest first.
    pub days: Vec<DayRow>,
    /// Per brand (filled by the store, which reads one data set per brand;
    /// empty when the store has no brands).
    pub brands: Vec<BrandRow>,
}

/// The period `[from_day, to_day]`, defaulting to the 30 days ending at the
/// data set's as-of day; `to_day` is capped at the as-of day.
pub fn period_days(data: &Dataset, from_day: Option<i32>, to_day: Option<i32>) -> (i32, i32) {
    let to = to_day.unwrap_or(data.as_of_day).min(data.as_of_day);
    let from = from_day.unwrap_or(to - 29).min(to);
    (from, to)
}

/// Headline numbers of `[from, to]`.
pub fn period_numbers(data: &Dataset, from: i32, to: i32) -> PeriodNumbers {
    let (mut revenue, mut orders, mut buyers, mut new_members, mut repeaters) =
        (0i64, 0u64, 0u64, 0u64, 0u64);
    let (mut prev_year, mut returned) = (0u64, 0u64);
    for m in &data.members {
        let mut bought = false;
        let mut days_to_end = 0u32;
        let mut last_day = i32::MIN;
        let (mut in_prev_year, mut in_last_year) = (false, false);
        for a in &m.activity {
            if a.day > to {
                break;
            }
            if a.day != last_day {
                days_to_end += 1;
                last_day = a.day;
            }
            if a.day >= from {
                bought = true;
                revenue += a.net_revenue;
                orders += u64::from(a.orders);
            }
            if (to - 729..=to - 365).contains(&a.day) {
                in_prev_year = true;
            }
            if (to - 364..=to).contains(&a.day) {
                in_last_year = true;
            }
        }
        if bought {
            buyers += 1;
            if m.first_day >= from {
                new_members += 1;
            }
            if days_to_end >= 2 {
                repeaters += 1;
            }
        }
        if in_prev_year {
            prev_year += 1;
            if in_last_year {
                returned += 1;
            }
        }
    }
    PeriodNumbers {
        from: day_to_date(from),
        to: day_to_date(to),
        net_revenue: revenue,
        orders,
        buyers,
        new_members,
        aov: ratio(revenue as f64, orders as f64),
        repeat_rate: ratio(repeaters as f64, buyers as f64),
        annual_return_rate: ratio(returned as f64, prev_year as f64),
    }
}

fn rel(cur: f64, prev: f64) -> Option<f64> {
    if prev == 0.0 {
        None
    } else {
        Some(cur / prev - 1.0)
    }
}

/// The overview of `[from_day, to_day]` (see [`period_days`]) against the
/// period of the same length before it.
pub fn overview(
    data: &Dataset,
    from_day: Option<i32>,
    to_day: Option<i32>,
    annual_return_target: f64,
) -> OverviewReport {
    let (from, to) = period_days(data, from_day, to_day);
    let len = to - from + 1;
    let current = period_numbers(data, from, to);
    let previous = period_numbers(data, from - len, from - 1);
    let k = data.channels.len();
    let mut days: Vec<DayRow> = (from..=to)
        .map(|d| DayRow {
            date: day_to_date(d),
            net_revenue: vec![0; k],
            orders: 0,
        })
        .collect();
    for m in &data.members {
        for a in &m.activity {
            if a.day >= from && a.day <= to {
                let row = &mut days[(a.day - from) as usize];
                row.net_revenue[a.channel as usize] += a.net_revenue;
                row.orders += u64::from(a.orders);
            }
        }
    }
    let change = PeriodChange {
        net_revenue: rel(current.net_revenue as f64, previous.net_revenue as f64),
        orders: rel(current.orders as f64, previous.orders as f64),
        buyers: rel(current.buyers as f64, previous.buyers as f64),
        new_members: rel(current.new_members as f64, previous.new_members as f64),
        aov: rel(current.aov, previous.aov),
        repeat_rate: current.repeat_rate - previous.repeat_rate,
        annual_return_rate: current.annual_return_rate - previous.annual_return_rate,
    };
    OverviewReport {
        as_of: day_to_date(to),
        annual_return_flagged: current.annual_return_rate < annual_return_target,
        annual_return_target,
        current,
        previous,
        change,
        channels: data.channels.clone(),
        days,
        brands: Vec::new(),
    }
}

/// The brand row of `[from, to]` from a data set scoped to one brand.
pub fn brand_row(brand: &str, data: &Dataset, from: i32, to: i32) -> BrandRow {
    let n = period_numbers(data, from, to);
    BrandRow {
        brand: brand.to_string(),
        net_revenue: n.net_revenue,
        orders: n.orders,
        buyers: n.buyers,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DayActivity, MemberSummary};
    use super::*;

    fn member(id: i64, days: &[(i32, u16, i64)]) -> MemberSummary {
        Dataset::summarise(
            id,
            days.iter()
                .map(|&(day, channel, net_revenue)| DayActivity {
                    day,
                    channel,
                    orders: 1,
                    net_revenue,
                })
                .collect(),
            0,
            0,
        )
        .unwrap()
    }

    #[test]
    fn period_numbers_are_hand_computed() {
        // Period: days 1000..=1009; previous 990..=999.
        let data = Dataset {
            channels: vec!["jd".into(), "tmall".into()],
            members: vec![
                // New in the period, one purchase: buyer, new, not a repeater.
                member(1, &[(1003, 0, 10_000)]),
                // Bought before and in the period: buyer, repeater, not new.
                member(2, &[(995, 1, 5_000), (1005, 1, 7_000), (1005, 0, 1_000)]),
                // Only before: a buyer of the previous period.
                member(3, &[(992, 0, 2_000)]),
                // After the period: ignored.
                member(4, &[(1011, 0, 9_999)]),
                // Bought a year and a half ago and again in the period: returned.
                member(5, &[(1009 - 500, 0, 100), (1009, 1, 300)]),
                // Bought a year and a half ago only: did not return.
                member(6, &[(1009 - 400, 0, 100)]),
            ],
            members_without_purchases: 0,
            as_of_day: 1020,
        };
        let r = overview(&data, Some(1000), Some(1009), 0.8);
        let c = &r.current;
        assert_eq!(c.net_revenue, 10_000 + 7_000 + 1_000 + 300);
        assert_eq!(c.orders, 4);
        assert_eq!(c.buyers, 3);
        assert_eq!(c.new_members, 1);
        assert!((c.aov - 18_300.0 / 4.0).abs() < 1e-9);
        assert!((c.repeat_rate - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.annual_return_rate - 0.5).abs() < 1e-9);
        assert!(r.annual_return_flagged);
        let p = &r.previous;
        assert_eq!((p.from, p.to), (day_to_date(990), day_to_date(999)));
        assert_eq!(p.net_revenue, 7_000);
        assert_eq!(p.buyers, 2);
        assert_eq!(p.new_members, 2);
        assert!((r.change.net_revenue.unwrap() - (18_300.0 / 7_000.0 - 1.0)).abs() < 1e-9);
        assert_eq!(r.days.len(), 10);
        assert_eq!(r.days[5].net_revenue, vec![1_000, 7_000]);
        assert_eq!(r.days[5].orders, 2);
        let sum: i64 = r.days.iter().flat_map(|d| d.net_revenue.iter()).sum();
        assert_eq!(sum, c.net_revenue);
    }

    #[test]
    fn the_default_period_is_the_last_30_days() {
        let data = Dataset {
            channels: vec!["pos".into()],
            members: vec![member(1, &[(100, 0, 1)])],
            members_without_purchases: 0,
            as_of_day: 130,
        };
        assert_eq!(period_days(&data, None, None), (101, 130));
        assert_eq!(period_days(&data, Some(120), Some(200)), (120, 130));
        let r = overview(&data, None, None, 0.8);
        assert_eq!(r.current.buyers, 0);
        assert_eq!(r.previous.buyers, 1);
        assert_eq!(r.change.buyers, Some(-1.0));
        assert_eq!(r.change.orders, Some(-1.0));
    }
}
