//! Customer value analytics: RFM, ABC (profit contribution), retention,
//! cohorts, product roles, channels, and a one-screen summary.
//!
//! Pure computations: the input is a [`Dataset`] of per-member purchase
//! summaries (built by the store in one aggregation inside the database) and,
//! for the product report, per-product rows; the output is typed report structs
//! that serialise to the documented JSON shapes. Definitions and formulas are
//! in `docs/metrics.md`.
//!
//! Days are local days in the business time zone, numbered from 1970-01-01
//! (day 0); months are calendar months of those local days.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

mod abc;
mod channels;
mod cohorts;
pub mod facts;
mod overview;
mod products;
mod retention;
mod rfm;
mod summary;
#[cfg(test)]
mod tests;
mod value;

pub use abc::*;
pub use channels::*;
pub use cohorts::*;
pub use overview::*;
pub use products::*;
pub use retention::*;
pub use rfm::*;
pub use summary::*;
pub use value::*;

/// Purchases of one member on one local day in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayActivity {
    /// Local day number (days since 1970-01-01 in the business time zone).
    pub day: i32,
    /// Index into [`Dataset::channels`].
    pub channel: u16,
    /// Purchase orders that day in that channel.
    pub orders: u32,
    /// Net revenue of those orders, minor units.
    pub net_revenue: i64,
}

/// One member's purchases (orders with status `paid` or `partially_refunded`
/// inside the report's scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: i64,
    /// First purchase, UTC milliseconds.
    pub first_at: i64,
    /// Last purchase, UTC milliseconds.
    pub last_at: i64,
    /// Local day of the first purchase.
    pub first_day: i32,
    /// Local day of the last purchase.
    pub last_day: i32,
    /// Distinct local days with a purchase.
    pub purchase_days: u32,
    /// Purchase orders.
    pub orders: u32,
    /// Net revenue (gross amount less refunds), minor units.
    pub net_revenue: i64,
    /// Cost of goods of the purchase orders, minor units.
    pub cogs: i64,
    /// Discounts given on the purchase orders (line and order discounts), minor units.
    pub discounts: i64,
    /// Channel of the first purchase (index into [`Dataset::channels`]).
    pub first_channel: u16,
    /// Purchases per (day, channel), sorted by day then channel.
    pub activity: Vec<DayActivity>,
}

/// The input of the member reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Channel names; [`DayActivity::channel`] indexes this.
    pub channels: Vec<String>,
    /// Members with at least one purchase, in any order.
    pub members: Vec<MemberSummary>,
    /// Members that have orders in scope but no purchase (only pending,
    /// cancelled or refunded orders).
    pub members_without_purchases: u64,
    /// The as-of day: nothing after it is in the data.
    pub as_of_day: i32,
}

impl Dataset {
    /// The as-of date.
    pub fn as_of(&self) -> NaiveDate {
        day_to_date(self.as_of_day)
    }

    /// Build a member summary from its purchase days (test and loader helper):
    /// `activity` need not be sorted; totals other than revenue and orders are
    /// taken from the arguments.
    pub fn summarise(
        member_id: i64,
        mut activity: Vec<DayActivity>,
        cogs: i64,
        discounts: i64,
    ) -> Option<MemberSummary> {
        activity.sort_by_key(|a| (a.day, a.channel));
        let first = activity.first()?;
        let last = activity.last()?;
        let mut days = 0u32;
        let mut prev = None;
        for a in &activity {
            if prev != Some(a.day) {
                days += 1;
                prev = Some(a.day);
            }
        }
        Some(MemberSummary {
            member_id,
            first_at: i64::from(first.day) * 86_400_000,
            last_at: i64::from(last.day) * 86_400_000,
            first_day: first.day,
            last_day: last.day,
            purchase_days: days,
            orders: activity.iter().map(|a| a.orders).sum(),
            net_revenue: activity.iter().map(|a| a.net_revenue).sum(),
            cogs,
            discounts,
            first_channel: first.channel,
            activity,
        })
    }
}

/// Local day number of a date.
pub fn date_to_day(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (d - epoch).num_days() as i32
}

/// Date of a local day number.
pub fn day_to_date(day: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    epoch + chrono::Duration::days(i64::from(day))
}

/// Month index (`year * 12 + month - 1`) of a local day number.
pub fn month_of_day(day: i32) -> i32 {
    let d = day_to_date(day);
    d.year() * 12 + d.month0() as i32
}

/// `YYYY-MM` of a month index.
pub fn month_label(month: i32) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        0.0
    } else {
        part / whole
    }
}

/// Offset of `tz` from UTC at the instant `at_ms`, milliseconds (Asia/Shanghai:
/// 28,800,000). Days are bucketed with one offset per report; in zones with
/// daylight saving time, orders within an hour of midnight on the other side
/// of a change can fall on the neighbouring day.
pub fn utc_offset_ms(tz: &chrono_tz::Tz, at_ms: i64) -> i64 {
    use chrono::{Offset, TimeZone};
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000
}
