//! Loyalty: the points program, and the pure rules of the points ledger.
//!
//! * [`Program`]: the program file (TOML, documented in docs/loyalty.md):
//!   earning rules by channel and brand, bonuses, tiers, the pending period,
//!   expiry, the refund policy and the money value of a point.
//! * [`Program::points_for`]: points earned by one order (rounding: floor, once
//!   per order, after the tier multiplier).
//! * [`allocate`]: which lots a spend draws from (earliest expiry first).
//! * [`reversal_target`]: how much of an order's lot a refund takes back.
//! * [`generate_code`], [`check_code`], [`code_hash`]: packaging codes.
//!
//! The store applies these inside one transaction per change; nothing here
//! does I/O.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What is wrong with a program file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    /// Not TOML, or not the fields expected.
    #[error("the program file is not valid: {0}")]
    Parse(String),
    /// A field has a value that makes no sense.
    #[error("the program file is not valid: {0}")]
    Invalid(String),
}

/// How points expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryRule {
    /// Points never expire.
    Never,
    /// `count` days after they were earned.
    Days,
    /// At the end of the `count`-th calendar month after the month earned
    /// (0: the end of that month).
    EndOfMonth,
    /// At the end of the `count`-th calendar quarter after the quarter earned.
    EndOfQuarter,
    /// At the end of the `count`-th calendar year after the year earned.
    EndOfYear,
}

/// The expiry setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// The rule.
    pub rule: ExpiryRule,
    /// Days or periods, see [`ExpiryRule`].
    #[serde(default)]
    pub count: u32,
}

impl Default for Expiry {
    fn default() -> Self {
        Expiry {
            rule: ExpiryRule::Never,
            count: 0,
        }
    }
}

/// What a refund does to points that cannot be taken back from the order's
/// own lot (they were spent already) nor from other available lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// Take back what the balance holds and stop at zero; the rest is
    /// forgiven (recorded on the entry as `uncovered`).
    #[default]
    WithinBalance,
    /// The balance goes negative by the rest; later earnings pay it off first.
    AllowNegative,
}

/// One earning rule: `points` per `per` currency units of the net paid
/// amount, for lines matching `channel` and `brand` (absent: any). The most
/// specific matching rule applies to a line: channel and brand, then brand,
/// then channel, then neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarnRule {
    /// Channel name, or any.
    #[serde(default)]
    pub channel: Option<String>,
    /// Brand, or any.
    #[serde(default)]
    pub brand: Option<String>,
    /// Points...
    pub points: u32,
    /// ...per this many currency units (default 1).
    #[serde(default = "one")]
    pub per: u32,
}

fn one() -> u32 {
    1
}

/// Kinds of bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusKind {
    /// The member's first order earning points.
    FirstOrder,
    /// An order placed in the member's birthday month.
    BirthdayMonth,
}

/// A bonus: fixed points added to an order's points when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusRule {
    /// When it applies.
    pub kind: BonusKind,
    /// Points added.
    pub points: u32,
}

/// A tier: reached when the member's qualifying figure in the rolling
/// window (see [`TierBasis`]) reaches `min_points` or `min_spend`; its
/// multiplier applies to purchase points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Name (Silver, Gold, ...).
    pub name: String,
    /// Points earned in the window to qualify (basis `points_earned`).
    #[serde(default)]
    pub min_points: i64,
    /// Net spend in the window to qualify, minor units (basis `net_spend`).
    #[serde(default)]
    pub min_spend: i64,
    /// Multiplier in percent (100: none).
    #[serde(default = "hundred")]
    pub multiplier_percent: u32,
}

fn hundred() -> u32 {
    100
}

/// What tiers qualify by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// Purchase points earned in the window (not the balance: spending does
    /// not lower it; refunds do, by the points they reversed).
    #[default]
    PointsEarned,
    /// Net spend in the window: paid orders' net amounts less refunds,
    /// minor units.
    NetSpend,
}

/// What a review does to a member whose figure no longer qualifies for
/// the tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierDowngrade {
    /// One level down, whatever the figure qualifies for.
    #[default]
    OneLevel,
    /// Straight to the tier the figure qualifies for (or none).
    ToQualified,
}

/// The program file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Name shown to people.
    pub name: String,
    /// Orders placed on or after this day (business time zone) earn points.
    pub starts: NaiveDate,
    /// Business time zone for days, months, quarters, years.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Minor units per currency unit (100 for CNY fen).
    #[serde(default = "default_minor")]
    pub minor_per_unit: u32,
    /// The money value of one point, minor units per 100 points (100: a
    /// point is worth one minor unit), for the liability figure.
    #[serde(default = "hundred_i64")]
    pub value_minor_per_100_points: i64,
    /// Days purchase points stay pending (the return window).
    #[serde(default = "default_pending")]
    pub pending_days: u32,
    /// Expiry.
    #[serde(default)]
    pub expiry: Expiry,
    /// An `points_expiring_soon` event this many days before a lot expires.
    #[serde(default = "default_soon")]
    pub expiring_soon_days: u32,
    /// Refund policy.
    #[serde(default)]
    pub refund_policy: RefundPolicy,
    /// Wrong codes allowed per person and per client IP per hour.
    #[serde(default = "default_failures")]
    pub code_failures_per_hour: u32,
    /// Earning rules.
    #[serde(default)]
    pub earn: Vec<EarnRule>,
    /// Bonuses.
    #[serde(default)]
    pub bonus: Vec<BonusRule>,
    /// Tiers, lowest first.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// What tiers qualify by (default `points_earned`).
    #[serde(default)]
    pub tier_basis: TierBasis,
    /// The tiers' qualification window in days (the older setting; give
    /// this or `tier_window_months`, default 12 months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_window_days: Option<u32>,
    /// The tiers' qualification window in calendar months (default 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_window_months: Option<u32>,
    /// Months after a member reached a tier (or was last reviewed) until the
    /// review that may downgrade them (default 12; 0 with no
    /// `tier_review_date`: never downgrade).
    #[serde(default = "twelve")]
    pub tier_review_months: u32,
    /// A calendar day `MM-DD`: the review is on the first such day after
    /// `tier_review_months` have passed (e.g. `"01-01"`: status held for
    /// the rest of the year after the review period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_review_date: Option<String>,
    /// What a review does below the tier (default `one_level`).
    #[serde(default)]
    pub tier_downgrade: TierDowngrade,
}

fn twelve() -> u32 {
    12
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn default_minor() -> u32 {
    100
}
fn hundred_i64() -> i64 {
    100
}
fn default_pending() -> u32 {
    7
}
fn default_soon() -> u32 {
    30
}
fn default_failures() -> u32 {
    10
}

/// What the earning of one order depends on besides the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnInput<'a> {
    /// The order's channel.
    pub channel: &'a str,
    /// Each line's brand and net amount (minor units, after line discounts).
    pub lines: Vec<(Option<&'a str>, i64)>,
    /// The net paid amount of the order (lines less the order discount,
    /// before refunds), minor units.
    pub paid: i64,
    /// The member has no earned order yet.
    pub first_order: bool,
    /// The order is in the member's birthday month.
    pub birthday_month: bool,
    /// The member's tier multiplier, percent.
    pub multiplier_percent: u32,
}

/// A member's lot as allocation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotView {
    /// Lot id.
    pub id: i64,
    /// Points left.
    pub remaining: i64,
    /// Spendable from (UTC ms).
    pub available_from: i64,
    /// Expires at (UTC ms), if ever.
    pub expires_at: Option<i64>,
}

impl LotView {
    /// Spendable at `now`.
    pub fn spendable(&self, now: i64) -> bool {
        self.remaining > 0 && self.available_from <= now && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Not enough points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{needed} points needed, {available} available")]
pub struct Insufficient {
    /// Asked for.
    pub needed: i64,
    /// Spendable.
    pub available: i64,
}

/// Which lots a draw of `points` takes from, and how much from each: the
/// spendable lots, earliest expiry first (never-expiring last), then earliest
/// available, then lowest id. All or nothing.
pub fn allocate(lots: &[LotView], now: i64, points: i64) -> Result<Vec<(i64, i64)>, Insufficient> {
    let mut open: Vec<&LotView> = lots.iter().filter(|l| l.spendable(now)).collect();
    let available: i64 = open.iter().map(|l| l.remaining).sum();
    if points > available {
        return Err(Insufficient {
            needed: points,
            available,
        });
    }
    open.sort_by_key(|l| (l.expires_at.unwrap_or(i64::MAX), l.available_from, l.id));
    let mut left = points;
    let mut out = Vec::new();
    for l in open {
        if left <= 0 {
            break;
        }
        let take = l.remaining.min(left);
        out.push((l.id, take));
        left -= take;
    }
    Ok(out)
}

/// How many points of a lot of `amount` earned on an order of `gross` are
/// reversed in total once `refunded` of it has been refunded: in proportion,
/// rounded down, and the whole lot for a full refund. The store reverses the
/// difference between this and what it reversed before, so partial refunds
/// in steps add up to the same total as one refund.
pub fn reversal_target(amount: i64, gross: i64, refunded: i64) -> i64 {
    if gross <= 0 || refunded >= gross {
        return amount;
    }
    if refunded <= 0 {
        return 0;
    }
    (i128::from(amount) * i128::from(refunded) / i128::from(gross)) as i64
}

impl Program {
    /// Read and check a program file.
    pub fn parse(text: &str) -> Result<Program, ProgramError> {
        let p: Program = toml::from_str(text).map_err(|e| ProgramError::Parse(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Check the values.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let bad = |m: String| Err(ProgramError::Invalid(m));
        if self.name.trim().is_empty() {
            return bad("`name` is empty".into());
        }
        if self.tz().is_none() {
            return bad(format!(
                "`timezone` {:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                self.timezone
            ));
        }
        if self.minor_per_unit == 0 {
            return bad("`minor_per_unit` must be at least 1".into());
        }
        if self.value_minor_per_100_points < 0 {
            return bad("`value_minor_per_100_points` must not be negative".into());
        }
        for (i, r) in self.earn.iter().enumerate() {
            if r.per == 0 || r.per > 10_000 {
                return bad(format!("earn rule {}: `per` must be 1..=10000", i + 1));
            }
        }
        if self.expiry.rule != ExpiryRule::Never
            && self.expiry.rule != ExpiryRule::Days
            && self.expiry.count > 100
        {
            return bad("`expiry.count` must be at most 100 periods".into());
        }
        if self.expiry.rule == ExpiryRule::Days && self.expiry.count == 0 {
            return bad("`expiry.count` must be at least 1 day with rule = \"days\"".into());
        }
        let field = match self.tier_basis {
            TierBasis::PointsEarned => "min_points",
            TierBasis::NetSpend => "min_spend",
        };
        for w in self.tiers.windows(2) {
            if self.threshold(&w[1]) <= self.threshold(&w[0]) {
                return bad(format!(
                    "tiers must be listed lowest first, with growing `{field}` (tier_basis = {:?})",
                    match self.tier_basis {
                        TierBasis::PointsEarned => "points_earned",
                        TierBasis::NetSpend => "net_spend",
                    }
                ));
            }
        }
        for t in &self.tiers {
            if t.name.trim().is_empty() || t.min_points < 0 || t.min_spend < 0 {
                return bad(format!(
                    "tier {:?}: a tier needs a name and thresholds of 0 or more",
                    t.name
                ));
            }
        }
        if self.tier_window_days.is_some() && self.tier_window_months.is_some() {
            return bad("give `tier_window_days` or `tier_window_months`, not both".into());
        }
        if self.tier_window_days == Some(0) || self.tier_window_months == Some(0) {
            return bad("the tier window must be at least 1 day or 1 month".into());
        }
        if self.tier_window_months.is_some_and(|m| m > 120) || self.tier_review_months > 120 {
            return bad("tier windows and review periods are at most 120 months".into());
        }
        if let Some(d) = &self.tier_review_date {
            if review_day(d).is_none() {
                return bad(format!(
                    "`tier_review_date` {d:?}: expected a calendar day MM-DD such as \"01-01\" (not 02-29)"
                ));
            }
        }
        Ok(())
    }

    /// The business time zone.
    pub fn tz(&self) -> Option<chrono_tz::Tz> {
        self.timezone.parse().ok()
    }

    /// The program start, UTC ms (midnight of `starts` in the time zone).
    pub fn starts_at(&self) -> i64 {
        local_midnight(self.tz().unwrap_or(chrono_tz::Asia::Shanghai), self.starts)
    }

    /// When purchase points earned at `at` become spendable.
    pub fn available_from(&self, at: i64) -> i64 {
        at + i64::from(self.pending_days) * 86_400_000
    }

    /// When points earned at `at` expire (UTC ms), if ever.
    pub fn expires_at(&self, at: i64) -> Option<i64> {
        expires_at(
            self.expiry,
            self.tz().unwrap_or(chrono_tz::Asia::Shanghai),
            at,
        )
    }

    /// The rule that applies to a line.
    fn rule_for(&self, channel: &str, brand: Option<&str>) -> Option<&EarnRule> {
        let matches = |r: &&EarnRule| {
            r.channel.as_deref().is_none_or(|c| c == channel)
                && r.brand.as_deref().is_none_or(|b| Some(b) == brand)
        };
        self.earn.iter().filter(matches).max_by_key(|r| {
            (
                u8::from(r.channel.is_some() && r.brand.is_some()),
                u8::from(r.brand.is_some()),
                u8::from(r.channel.is_some()),
            )
        })
    }

    /// Points an order earns: each line at its rule's rate on its share of
    /// the paid amount (the order discount spread over the lines by their
    /// net amounts), times the tier multiplier, rounded down once for the
    /// order; plus bonuses (not multiplied).
    pub fn points_for(&self, o: &EarnInput<'_>) -> i64 {
        if o.paid <= 0 {
            return 0;
        }
        // Rate of a line as a fraction points / (per * minor_per_unit); bring
        // them to one denominator D = L * minor_per_unit where L = lcm(per).
        let l = self
            .earn
            .iter()
            .fold(1i128, |a, r| lcm(a, i128::from(r.per)));
        let lines_total: i128 = o.lines.iter().map(|(_, n)| i128::from((*n).max(0))).sum();
        let mut weighted: i128 = 0; // sum(net_i * rate_i * D), rates times L
        for (brand, net) in &o.lines {
            if let Some(r) = self.rule_for(o.channel, *brand) {
                weighted +=
                    i128::from((*net).max(0)) * i128::from(r.points) * (l / i128::from(r.per));
            }
        }
        let mut points = 0i128;
        if lines_total > 0 {
            // paid * (weighted / lines_total) / (L * minor) * multiplier / 100
            let num = i128::from(o.paid) * weighted * i128::from(o.multiplier_percent);
            let den = lines_total * l * i128::from(self.minor_per_unit) * 100;
            points = num / den;
        }
        for b in &self.bonus {
            let applies = match b.kind {
                BonusKind::FirstOrder => o.first_order,
                BonusKind::BirthdayMonth => o.birthday_month,
            };
            if applies {
                points += i128::from(b.points);
            }
        }
        points.min(i128::from(i64::MAX)) as i64
    }

    /// The tier qualified by `figure` in the window (points earned or net
    /// spend, by [`Program::tier_basis`]); None: below the lowest.
    pub fn tier_for(&self, figure: i64) -> Option<&Tier> {
        self.tiers
            .iter()
            .rev()
            .find(|t| figure >= self.threshold(t))
    }

    /// A tier's threshold under the program's basis.
    pub fn threshold(&self, t: &Tier) -> i64 {
        match self.tier_basis {
            TierBasis::PointsEarned => t.min_points,
            TierBasis::NetSpend => t.min_spend,
        }
    }

    /// The level of a tier by name (0: the lowest); None if not in the program.
    pub fn tier_rank(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// The start (UTC ms) of the qualification window ending at `at`.
    pub fn tier_window_start(&self, at: i64) -> i64 {
        if let Some(d) = self.tier_window_days {
            return at - i64::from(d) * 86_400_000;
        }
        let months = self.tier_window_months.unwrap_or(12);
        shift_months(self.tz_or_default(), at, -(months as i32))
    }

    /// The window, in words, for reasons and reports.
    pub fn tier_window_text(&self) -> String {
        match (self.tier_window_days, self.tier_window_months) {
            (Some(d), _) => format!("{d} days"),
            (None, m) => format!("{} months", m.unwrap_or(12)),
        }
    }

    /// When a member who reached (or was last reviewed in) a tier at
    /// `since` is next reviewed (UTC ms): `tier_review_months` later, then
    /// on the first `tier_review_date` after that, if set. None: never.
    pub fn tier_review_after(&self, since: i64) -> Option<i64> {
        let day = self.tier_review_date.as_deref().and_then(review_day);
        if self.tier_review_months == 0 && day.is_none() {
            return None;
        }
        let tz = self.tz_or_default();
        let t = shift_months(tz, since, self.tier_review_months as i32);
        let Some((m, d)) = day else { return Some(t) };
        let year = DateTime::<Utc>::from_timestamp_millis(t)?
            .with_timezone(&tz)
            .year();
        (year..year + 2)
            .filter_map(|y| NaiveDate::from_ymd_opt(y, m, d))
            .map(|date| local_midnight(tz, date))
            .find(|&at| at > t)
    }

    /// Review a member holding `current` (a tier name) with `figure` in the
    /// window: the tier they keep or move to. At or above the tier: kept
    /// (or raised to the qualified one); below: down by the downgrade rule.
    pub fn review_tier(&self, current: Option<&str>, figure: i64) -> Option<&Tier> {
        let q = self.tier_for(figure);
        let qr = q.and_then(|t| self.tier_rank(&t.name));
        let Some(cr) = current.and_then(|c| self.tier_rank(c)) else {
            // No tier, or one the program no longer has: the qualified one.
            return q;
        };
        if qr.is_some_and(|q| q >= cr) {
            return q;
        }
        match self.tier_downgrade {
            TierDowngrade::ToQualified => q,
            TierDowngrade::OneLevel => cr.checked_sub(1).map(|r| &self.tiers[r]),
        }
    }

    fn tz_or_default(&self) -> chrono_tz::Tz {
        self.tz().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The multiplier of a tier by name, percent (100 without one).
    pub fn multiplier_of(&self, tier: Option<&str>) -> u32 {
        tier.and_then(|n| self.tiers.iter().find(|t| t.name == n))
            .map_or(100, |t| t.multiplier_percent)
    }

    /// The money value of `points`, minor units (rounded down).
    pub fn value_of(&self, points: i64) -> i64 {
        (i128::from(points) * i128::from(self.value_minor_per_100_points) / 100) as i64
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
fn lcm(a: i128, b: i128) -> i128 {
    a / gcd(a, b) * b
}

/// `MM-DD` as (month, day), in every year (so not 02-29).
fn review_day(s: &str) -> Option<(u32, u32)> {
    let (m, d) = s.split_once('-')?;
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    NaiveDate::from_ymd_opt(2025, m, d).map(|_| (m, d))
}

/// `at` moved by `months` calendar months in `tz` (the day clamped to the
/// month's last day), UTC ms.
fn shift_months(tz: chrono_tz::Tz, at: i64, months: i32) -> i64 {
    let Some(local) = DateTime::<Utc>::from_timestamp_millis(at).map(|t| t.with_timezone(&tz))
    else {
        return at;
    };
    let naive = local.naive_local();
    let moved = if months >= 0 {
        naive.checked_add_months(chrono::Months::new(months as u32))
    } else {
        naive.checked_sub_months(chrono::Months::new(months.unsigned_abs()))
    };
    moved
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map_or(at, |t| t.with_timezone(&Utc).timestamp_millis())
}

fn local_midnight(tz: chrono_tz::Tz, d: NaiveDate) -> i64 {
    let naive = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        // A midnight skipped by a DST change: an hour later exists.
        .unwrap_or_else(|| (naive + Duration::hours(1)).and_utc().timestamp_millis())
}

/// When points earned at `at` expire under `e` in the time zone `tz`: the
/// start of the first day after the period (UTC ms).
pub fn expires_at(e: Expiry, tz: chrono_tz::Tz, at: i64) -> Option<i64> {
    let local = DateTime::<Utc>::from_timestamp_millis(at)?.with_timezone(&tz);
    let (y, m) = (local.year(), local.month());
    let first_of = |y: i32, m0: u32| NaiveDate::from_ymd_opt(y + (m0 / 12) as i32, m0 % 12 + 1, 1);
    let n = e.count;
    let next = match e.rule {
        ExpiryRule::Never => return None,
        ExpiryRule::Days => return Some(at + i64::from(n) * 86_400_000),
        // Month index from 0; the period after the N-th next one starts at
        // month (m - 1) + N + 1.
        ExpiryRule::EndOfMonth => first_of(y, (m - 1) + n + 1)?,
        ExpiryRule::EndOfQuarter => first_of(y, ((m - 1) / 3) * 3 + 3 * (n + 1))?,
        ExpiryRule::EndOfYear => NaiveDate::from_ymd_opt(y + n as i32 + 1, 1, 1)?,
    };
    Some(local_midnight(tz, next))
}

// ---- packaging codes ----

/// Crockford's base32 alphabet: no I, L, O, U.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random symbols in a code (16 x 5 = 80 random bits).
pub const CODE_RANDOM_CHARS: usize = 16;
/// Characters in a code: the random ones and a check character.
pub const CODE_LEN: usize = CODE_RANDOM_CHARS + 1;

/// Why a typed code is not a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Wrong length or a character outside the alphabet.
    #[error("not a code: a code has {CODE_LEN} characters of 0-9 and A-Z (no I, L, O, U)")]
    Malformed,
    /// The check character does not match: a typing mistake.
    #[error("the code is mistyped (its check character does not match); check it and try again")]
    BadCheck,
}

pub(crate) fn value_of(c: u8) -> Option<u32> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        b'I' | b'L' => b'1',
        b'O' => b'0',
        _ => c,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character of `symbols` (values 0..32): Luhn mod 32, which
/// catches every single wrong character and most swaps of neighbours.
pub(crate) fn check_value(symbols: &[u32]) -> u32 {
    let n = 32;
    let mut factor = 2;
    let mut sum = 0;
    for &v in symbols.iter().rev() {
        let mut addend = factor * v;
        factor = if factor == 2 { 1 } else { 2 };
        addend = addend / n + addend % n;
        sum += addend;
    }
    (n - sum % n) % n
}

/// A new code from the operating system's CSPRNG: 80 random bits and a
/// check character.
pub fn generate_code() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    code_from_bytes(bytes)
}

/// The code of 10 random bytes.
pub fn code_from_bytes(bytes: [u8; 10]) -> String {
    let mut acc: u128 = 0;
    for b in bytes {
        acc = acc << 8 | u128::from(b);
    }
    let mut symbols = [0u32; CODE_RANDOM_CHARS];
    for (i, s) in symbols.iter_mut().enumerate() {
        *s = ((acc >> (5 * (CODE_RANDOM_CHARS - 1 - i))) & 31) as u32;
    }
    let mut out = String::with_capacity(CODE_LEN);
    for s in symbols {
        out.push(ALPHABET[s as usize] as char);
    }
    out.push(ALPHABET[check_value(&symbols) as usize] as char);
    out
}

/// Read a typed code: case and look-alikes forgiven (I, L read as 1, O as
/// 0), spaces and hyphens ignored. Returns the canonical code.
pub fn check_code(input: &str) -> Result<String, CodeError> {
    let mut symbols = Vec::with_capacity(CODE_LEN);
    for c in input.bytes() {
        if c == b'-' || c == b' ' {
            continue;
        }
        symbols.push(value_of(c).ok_or(CodeError::Malformed)?);
    }
    if symbols.len() != CODE_LEN {
        return Err(CodeError::Malformed);
    }
    let (body, check) = symbols.split_at(CODE_RANDOM_CHARS);
    if check_value(body) != check[0] {
        return Err(CodeError::BadCheck);
    }
    Ok(symbols
        .iter()
        .map(|&v| ALPHABET[v as usize] as char)
        .collect())
}

/// The stored form of a canonical code: its SHA-256. 80 random bits cannot
/// be searched, so the hash needs no secret and no slow KDF.
pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"
name = "Rewards"
starts = "2025-01-01"
pending_days = 7
refund_policy = "allow_negative"
value_minor_per_100_points = 50

[expiry]
rule = "end_of_year"
count = 1

[[earn]]
points = 1

[[earn]]
channel = "miniapp"
brand = "X"
points = 2

[[earn]]
channel = "tmall"
points = 1
per = 10

[[bonus]]
kind = "first_order"
points = 100

[[tiers]]
name = "Silver"
min_points = 0

[[tiers]]
name = "Gold"
min_points = 1000
multiplier_percent = 150
"#;

    fn program() -> Program {
        Program::parse(EXAMPLE).unwrap()
    }

    fn input<'a>(channel: &'a str, lines: Vec<(Option<&'a str>, i64)>, paid: i64) -> EarnInput<'a> {
        EarnInput {
            channel,
            lines,
            paid,
            first_order: false,
            birthday_month: false,
            multiplier_percent: 100,
        }
    }

    #[test]
    fn parses_defaults_and_rejects_nonsense() {
        let p = program();
        assert_eq!(p.pending_days, 7);
        assert_eq!(p.code_failures_per_hour, 10);
        assert_eq!(p.refund_policy, RefundPolicy::AllowNegative);
        assert!(matches!(
            Program::parse("name = \"x\"\nstarts = \"2025-01-01\"\nbogus = 1"),
            Err(ProgramError::Parse(_))
        ));
        assert!(matches!(
            Program::parse("name = \"x\"\nstarts = \"2025-01-01\"\ntimezone = \"Mars/Base\""),
            Err(ProgramError::Invalid(_))
        ));
        let min = Program::parse("name = \"x\"\nstarts = \"2025-01-01\"").unwrap();
        assert_eq!(min.pending_days, 7);
        assert_eq!(min.expiry.rule, ExpiryRule::Never);
    }

    #[test]
    fn earning_uses_the_most_specific_rule_and_floors_once() {
        let p = program();
        // 1 per CNY everywhere: 123.45 CNY -> 123.
        assert_eq!(
            p.points_for(&input("pos", vec![(None, 12_345)], 12_345)),
            123
        );
        // Brand X in the mini-program earns 2 per CNY, other lines 1.
        assert_eq!(
            p.points_for(&input(
                "miniapp",
                vec![(Some("X"), 10_050), (Some("Y"), 10_000)],
                20_050
            )),
            201 + 100
        );
        // Tmall: 1 per 10 CNY: 99.99 CNY -> 9.
        assert_eq!(p.points_for(&input("tmall", vec![(None, 9_999)], 9_999)), 9);
        // An order discount is spread over the lines.
        assert_eq!(
            p.points_for(&input(
                "miniapp",
                vec![(Some("X"), 10_000), (Some("Y"), 10_000)],
                10_000
            )),
            150
        );
        let mut i = input("pos", vec![(None, 10_000)], 10_000);
        i.first_order = true;
        i.multiplier_percent = 150;
        assert_eq!(p.points_for(&i), 150 + 100);
        assert_eq!(p.points_for(&input("pos", vec![(None, 100)], 0)), 0);
    }

    #[test]
    fn expiry_ends_at_the_period_boundary_in_the_time_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        let at = local_midnight(tz, NaiveDate::from_ymd_opt(2025, 3, 10).unwrap()) + 3_600_000;
        let day = |y, m, d| local_midnight(tz, NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let e = |rule, count| expires_at(Expiry { rule, count }, tz, at);
        assert_eq!(e(ExpiryRule::EndOfYear, 1), Some(day(2027, 1, 1)));
        assert_eq!(e(ExpiryRule::EndOfYear, 0), Some(day(2026, 1, 1)));
        assert_eq!(e(ExpiryRule::EndOfQuarter, 0), Some(day(2025, 4, 1)));
        assert_eq!(e(ExpiryRule::EndOfQuarter, 3), Some(day(2026, 1, 1)));
        assert_eq!(e(ExpiryRule::EndOfMonth, 0), Some(day(2025, 4, 1)));
        assert_eq!(e(ExpiryRule::EndOfMonth, 10), Some(day(2026, 2, 1)));
        assert_eq!(e(ExpiryRule::Days, 30), Some(at + 30 * 86_400_000));
        assert_eq!(e(ExpiryRule::Never, 0), None);
    }

    #[test]
    fn spends_draw_earliest_expiring_first() {
        let lots = [
            LotView {
                id: 1,
                remaining: 50,
                available_from: 0,
                expires_at: None,
            },
            LotView {
                id: 2,
                remaining: 30,
                available_from: 0,
                expires_at: Some(500),
            },
            LotView {
                id: 3,
                remaining: 40,
                available_from: 0,
                expires_at: Some(200),
            },
            LotView {
                id: 4,
                remaining: 99,
                available_from: 1_000,
                expires_at: None,
            },
            LotView {
                id: 5,
                remaining: 99,
                available_from: 0,
                expires_at: Some(10),
            },
        ];
        assert_eq!(allocate(&lots, 100, 60), Ok(vec![(3, 40), (2, 20)]));
        assert_eq!(
            allocate(&lots, 100, 120),
            Ok(vec![(3, 40), (2, 30), (1, 50)])
        );
        assert_eq!(
            allocate(&lots, 100, 121),
            Err(Insufficient {
                needed: 121,
                available: 120
            })
        );
    }

    #[test]
    fn refunds_reverse_in_proportion_and_add_up() {
        assert_eq!(reversal_target(100, 10_000, 0), 0);
        assert_eq!(reversal_target(100, 10_000, 3_333), 33);
        assert_eq!(reversal_target(100, 10_000, 10_000), 100);
        assert_eq!(reversal_target(7, 0, 0), 7);
    }

    #[test]
    fn codes_check_and_tell_typos_from_garbage() {
        let c = generate_code();
        assert_eq!(c.len(), CODE_LEN);
        assert_eq!(check_code(&c), Ok(c.clone()));
        assert_eq!(check_code(&c.to_lowercase()), Ok(c.clone()));
        let spaced = format!("{}-{} {}", &c[..4], &c[4..8], &c[8..]);
        assert_eq!(check_code(&spaced), Ok(c.clone()));
        assert_eq!(check_code("ABC"), Err(CodeError::Malformed));
        assert_eq!(
            check_code(&format!("{}U", &c[..16])),
            Err(CodeError::Malformed)
        );
        assert_ne!(generate_code(), c);
        assert_eq!(code_hash(&c).len(), 32);
        assert_ne!(code_hash(&c), c.as_bytes());
    }

    #[test]
    fn tier_reviews_fall_after_the_period_and_on_the_calendar_day() {
        let tz = chrono_tz::Asia::Shanghai;
        let day = |y, m, d| local_midnight(tz, NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let mut p = program();
        let reached = day(2025, 3, 10) + 3_600_000;
        // Default: 12 months after reaching the tier, to the hour.
        assert_eq!(
            p.tier_review_after(reached),
            Some(day(2026, 3, 10) + 3_600_000)
        );
        // With a calendar day: the first 1 January after those 12 months.
        p.tier_review_date = Some("01-01".into());
        assert_eq!(p.tier_review_after(reached), Some(day(2027, 1, 1)));
        p.tier_review_months = 0;
        assert_eq!(p.tier_review_after(reached), Some(day(2026, 1, 1)));
        p.tier_review_date = None;
        assert_eq!(p.tier_review_after(reached), None, "reviews off");
        // The window: 12 calendar months by default, or the days given.
        assert_eq!(p.tier_window_start(day(2026, 3, 10)), day(2025, 3, 10));
        p.tier_window_days = Some(30);
        assert_eq!(
            p.tier_window_start(day(2026, 3, 10)),
            day(2026, 3, 10) - 30 * 86_400_000
        );
        assert!(Program::parse(&format!("tier_review_date = \"02-29\"\n{EXAMPLE}")).is_err());
        assert!(Program::parse(&format!("tier_review_date = \"12-31\"\n{EXAMPLE}")).is_ok());
        assert!(Program::parse(&format!(
            "tier_window_days = 10\ntier_window_months = 1\n{EXAMPLE}"
        ))
        .is_err());
    }

    #[test]
    fn a_review_keeps_or_downgrades_by_the_rule() {
        let mut p = program();
        p.tiers.push(Tier {
            name: "Platinum".into(),
            min_points: 5000,
            min_spend: 0,
            multiplier_percent: 200,
        });
        p.tiers[0].min_points = 100;
        let name = |t: Option<&Tier>| t.map(|t| t.name.clone());
        // Still qualified: kept; more than qualified: raised.
        assert_eq!(name(p.review_tier(Some("Gold"), 1200)), Some("Gold".into()));
        assert_eq!(
            name(p.review_tier(Some("Gold"), 6000)),
            Some("Platinum".into())
        );
        // Below: one level down whatever the figure, or to the qualified tier.
        assert_eq!(
            name(p.review_tier(Some("Platinum"), 0)),
            Some("Gold".into())
        );
        assert_eq!(name(p.review_tier(Some("Silver"), 0)), None);
        p.tier_downgrade = TierDowngrade::ToQualified;
        assert_eq!(name(p.review_tier(Some("Platinum"), 0)), None);
        assert_eq!(
            name(p.review_tier(Some("Platinum"), 150)),
            Some("Silver".into())
        );
        // Net spend uses min_spend.
        let spend = Program::parse(
            "name = \"x\"\nstarts = \"2025-01-01\"\ntier_basis = \"net_spend\"\n[[tiers]]\nname = \"A\"\nmin_spend = 100\n[[tiers]]\nname = \"B\"\nmin_spend = 500\n",
        )
        .unwrap();
        assert_eq!(name(spend.tier_for(499)), Some("A".into()));
        assert_eq!(name(spend.tier_for(500)), Some("B".into()));
        assert!(Program::parse(
            "name = \"x\"\nstarts = \"2025-01-01\"\ntier_basis = \"net_spend\"\n[[tiers]]\nname = \"A\"\nmin_points = 100\n[[tiers]]\nname = \"B\"\nmin_points = 500\n",
        )
        .is_err(), "net_spend tiers need growing min_spend");
    }

    proptest! {
        #[test]
        fn every_single_wrong_character_is_caught(bytes in any::<[u8; 10]>(), pos in 0usize..CODE_LEN, delta in 1u32..32) {
            let c = code_from_bytes(bytes);
            prop_assert_eq!(check_code(&c), Ok(c.clone()));
            let mut b = c.clone().into_bytes();
            let v = value_of(b[pos]).unwrap();
            b[pos] = ALPHABET[((v + delta) % 32) as usize];
            let typo = String::from_utf8(b).unwrap();
            prop_assert_eq!(check_code(&typo), Err(CodeError::BadCheck));
        }

        #[test]
        fn allocation_takes_exactly_what_is_asked(
            lots in proptest::collection::vec((0i64..100, 0i64..10, proptest::option::of(0i64..20)), 0..12),
            now in 0i64..20,
            points in 0i64..600,
        ) {
            let lots: Vec<LotView> = lots.iter().enumerate().map(|(i, (r, a, e))| LotView {
                id: i as i64, remaining: *r, available_from: *a, expires_at: *e,
            }).collect();
            let spendable: i64 = lots.iter().filter(|l| l.spendable(now)).map(|l| l.remaining).sum();
            match allocate(&lots, now, points) {
                Ok(draws) => {
                    prop_assert!(points <= spendable);
                    prop_assert_eq!(draws.iter().map(|d| d.1).sum::<i64>(), points);
                    for (id, take) in &draws {
                        let l = lots.iter().find(|l| l.id == *id).unwrap();
                        prop_assert!(l.spendable(now) && *take > 0 && *take <= l.remaining);
                    }
                    // Earliest expiry first: every lot drawn from except the
                    // last was drawn in full.
                    for (id, take) in draws.iter().take(draws.len().saturating_sub(1)) {
                        prop_assert_eq!(lots[*id as usize].remaining, *take);
                    }
                }
                Err(e) => {
                    prop_assert!(points > spendable);
                    prop_assert_eq!(e.available, spendable);
                }
            }
        }

        #[test]
        fn stepwise_refunds_reverse_the_same_as_one(amount in 0i64..100_000, gross in 1i64..1_000_000, steps in proptest::collection::vec(0i64..1_000_000, 1..5)) {
            let mut refunded = 0;
            let mut reversed = 0;
            for s in steps {
                refunded = (refunded + s).min(gross);
                let t = reversal_target(amount, gross, refunded);
                prop_assert!(t >= reversed && t <= amount);
                reversed = t;
            }
            prop_assert_eq!(reversed, reversal_target(amount, gross, refunded));
        }

        #[test]
        fn points_never_exceed_the_top_rate(paid in 0i64..10_000_000, n in 1usize..5) {
            let p = program();
            let lines = vec![(Some("X"), paid / n as i64 + 1); n];
            let pts = p.points_for(&input("miniapp", lines, paid));
            prop_assert!(pts <= paid * 2 / 100);
        }
    }
}
