//! Discount rules (promotions): quantity discounts per order, cumulative
//! discounts from what a member bought in a period, early-payment discounts,
//! and how they stack with coupons. Pure: the store supplies the member's
//! purchases in the period and the coupons it checked (code, member, window,
//! uses); this module decides what each gives. See docs/promotions.md.
//!
//! Money is in integer minor units, times in UTC milliseconds.
//!
//! **The stacking order** (one, fixed):
//! 1. quantity rules, 2. cumulative rules, 3. early-payment rules, 4. coupons.
//!
//! Each stage works on the line amounts left by the stages before it (the
//! discounts compound; they are never added up on list prices). Within a
//! stage, rules of that kind exclude each other line by line: rules are taken
//! by `priority` (higher first, then file order) and a line discounted by one
//! rule of the kind is not discounted by another of the same kind. A rule
//! with `exclusive = true` also keeps its lines out of the later rule stages
//! (coupons still see them). Coupons come last, on the amounts after every
//! rule, ordered by priority (higher first), then percentages before fixed
//! amounts before free items, then the order of the codes sent; a coupon
//! combines with those applied before it only when it and all of them are
//! `stackable`.
//!
//! **Rounding**: a rule percentage is taken per line and rounded half up to
//! the minor unit; an amount off is spread over the rule's lines in
//! proportion to their amounts (rounded down, the minor units left over go
//! one each to the lines with the largest remainders, earlier lines first on
//! ties) and is at most what those lines still cost. Coupons keep their own
//! rule (docs/rewards.md: a percentage of the eligible amount rounded down,
//! at most the cap), and their discount is spread over their lines the same
//! way.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::coupons::{self, in_list, Basket, BasketLine, CouponKind, CouponRules, Refusal};

/// An error in a promotions file: the rule and field, and the accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromotionsError {
    /// Not TOML, or an unknown or mistyped field.
    #[error("the promotions file is not valid: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
}

/// How a cumulative rule measures what the member bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Units of the scope.
    Units,
    /// Spend on the scope (line amounts less line discounts), minor units.
    Spend,
}

/// The period of a cumulative rule, in the file's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The calendar month.
    Month,
    /// The calendar quarter.
    Quarter,
    /// The calendar year.
    Year,
}

/// A tier: from `min` (units of the order, or units or spend in the period)
/// the rule gives `percent` off each line in scope, or `amount` off those
/// lines together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The threshold (units, or minor units of spend).
    pub min: i64,
    /// Percent off, 1 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Amount off, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

/// One discount rule. The fields that apply depend on its kind (the section
/// of the file it is in); others are refused by [`Promotions::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, shown in evaluations.
    pub name: String,
    /// Higher is taken first among rules of its kind.
    #[serde(default)]
    pub priority: i64,
    /// Its lines get no discount from later rule stages.
    #[serde(default)]
    pub exclusive: bool,
    /// Channels (empty: all).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Brands (empty: all).
    #[serde(default)]
    pub brands: Vec<String>,
    /// Categories (empty: all).
    #[serde(default)]
    pub categories: Vec<String>,
    /// SKUs (empty: all).
    #[serde(default)]
    pub skus: Vec<String>,
    /// First day it applies (`YYYY-MM-DD`, in the file's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// First day it no longer applies (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Quantity and cumulative rules: the tiers (the highest reached applies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// Cumulative rules: units or spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Measure>,
    /// Cumulative rules: month, quarter or year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Early-payment rules: paid within this many hours of ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_hours: Option<i64>,
    /// Early-payment rules: percent off each line in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Early-payment rules: amount off the lines in scope, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip)]
    window: (Option<i64>, Option<i64>),
}

/// The kind of a rule, in stacking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Units of the scope in this order.
    Quantity,
    /// Units or spend of the scope in the period, before this order.
    Cumulative,
    /// Paid within N hours of ordering.
    EarlyPayment,
    /// A coupon code.
    Coupon,
}

/// The rule file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotions {
    /// IANA time zone of the dates and periods (default Asia/Shanghai).
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Quantity rules.
    #[serde(default)]
    pub quantity: Vec<Rule>,
    /// Cumulative rules.
    #[serde(default)]
    pub cumulative: Vec<Rule>,
    /// Early-payment rules.
    #[serde(default)]
    pub early_payment: Vec<Rule>,
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}

fn bad<T>(m: String) -> Result<T, PromotionsError> {
    Err(PromotionsError::Invalid(m))
}

fn check_off(what: &str, percent: Option<i64>, amount: Option<i64>) -> Result<(), PromotionsError> {
    match (percent, amount) {
        (Some(p), None) if (1..=100).contains(&p) => Ok(()),
        (Some(p), None) => bad(format!("{what}: percent {p}: expected 1 to 100")),
        (None, Some(a)) if a > 0 => Ok(()),
        (None, Some(a)) => bad(format!(
            "{what}: amount {a}: expected a positive amount in minor units"
        )),
        _ => bad(format!(
            "{what}: expected exactly one of `percent` or `amount`"
        )),
    }
}

impl Promotions {
    /// Parse and check a rule file (TOML). Errors name the section, the
    /// rule and the field.
    pub fn parse(text: &str) -> Result<Promotions, PromotionsError> {
        let mut p: Promotions =
            toml::from_str(text).map_err(|e| PromotionsError::Parse(e.to_string()))?;
        p.check()?;
        Ok(p)
    }

    /// The time zone.
    fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    fn check(&mut self) -> Result<(), PromotionsError> {
        let tz: chrono_tz::Tz = self.timezone.parse().map_err(|_| {
            PromotionsError::Invalid(format!(
                "timezone {:?}: expected an IANA time zone such as Asia/Shanghai",
                self.timezone
            ))
        })?;
        let mut names = std::collections::BTreeSet::new();
        for (section, kind) in [
            ("quantity", RuleKind::Quantity),
            ("cumulative", RuleKind::Cumulative),
            ("early_payment", RuleKind::EarlyPayment),
        ] {
            let rules = match kind {
                RuleKind::Quantity => &mut self.quantity,
                RuleKind::Cumulative => &mut self.cumulative,
                _ => &mut self.early_payment,
            };
            for (i, r) in rules.iter_mut().enumerate() {
                let what = format!("[[{section}]] rule {} ({:?})", i + 1, r.name);
                if r.name.trim().is_empty() {
                    return bad(format!("[[{section}]] rule {}: `name` is empty", i + 1));
                }
                if !names.insert(r.name.clone()) {
                    return bad(format!("{what}: the name is used by another rule"));
                }
                let day = |f: &str, v: &Option<String>| -> Result<Option<i64>, PromotionsError> {
                    let Some(v) = v else { return Ok(None) };
                    NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map(|d| Some(local_midnight(tz, d)))
                        .map_err(|_| {
                            PromotionsError::Invalid(format!(
                                "{what}: {f} {v:?}: expected a date YYYY-MM-DD"
                            ))
                        })
                };
                r.window = (day("from", &r.from)?, day("until", &r.until)?);
                if let (Some(f), Some(u)) = r.window {
                    if u <= f {
                        return bad(format!("{what}: `until` must be after `from`"));
                    }
                }
                match kind {
                    RuleKind::Quantity | RuleKind::Cumulative => {
                        if r.within_hours.is_some() || r.percent.is_some() || r.amount.is_some() {
                            return bad(format!("{what}: `within_hours`, `percent` and `amount` belong to early_payment rules; give the discount in `tiers`"));
                        }
                        if r.tiers.is_empty() {
                            return bad(format!(
                                "{what}: `tiers` is empty; expected tiers = [{{ min = 3, percent = 10 }}]"
                            ));
                        }
                        let mut last = 0;
                        for (j, t) in r.tiers.iter().enumerate() {
                            check_off(&format!("{what} tier {}", j + 1), t.percent, t.amount)?;
                            if t.min <= last {
                                return bad(format!("{what} tier {}: min {}: expected a positive threshold above the tier before", j + 1, t.min));
                            }
                            last = t.min;
                        }
                        if kind == RuleKind::Quantity && (r.measure.is_some() || r.period.is_some())
                        {
                            return bad(format!(
                                "{what}: `measure` and `period` belong to cumulative rules"
                            ));
                        }
                        if kind == RuleKind::Cumulative
                            && (r.measure.is_none() || r.period.is_none())
                        {
                            return bad(format!("{what}: expected `measure` (units or spend) and `period` (month, quarter or year)"));
                        }
                    }
                    _ => {
                        if !r.tiers.is_empty() || r.measure.is_some() || r.period.is_some() {
                            return bad(format!("{what}: `tiers`, `measure` and `period` belong to quantity and cumulative rules"));
                        }
                        match r.within_hours {
                            Some(h) if (1..=24 * 366).contains(&h) => {}
                            _ => {
                                return bad(format!(
                                    "{what}: within_hours: expected 1 to 8784 hours"
                                ))
                            }
                        }
                        check_off(&what, r.percent, r.amount)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The earliest time the cumulative rules look back to for an order at
    /// `ordered_at` (the start of the longest period), or None without
    /// cumulative rules: the store reads the member's purchases from then.
    pub fn history_from(&self, ordered_at: i64) -> Option<i64> {
        self.cumulative
            .iter()
            .filter_map(|r| r.period.map(|p| period_start(self.tz(), p, ordered_at)))
            .min()
    }
}

fn local_midnight(tz: chrono_tz::Tz, d: NaiveDate) -> i64 {
    let naive = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .unwrap_or_else(|| {
            (naive + chrono::Duration::hours(1))
                .and_utc()
                .timestamp_millis()
        })
}

/// The start of the period that holds `at`, UTC ms.
pub fn period_start(tz: chrono_tz::Tz, p: Period, at: i64) -> i64 {
    let Some(local) = DateTime::<Utc>::from_timestamp_millis(at).map(|t| t.with_timezone(&tz))
    else {
        return at;
    };
    let (y, m) = (local.year(), local.month());
    let first_month = match p {
        Period::Month => m,
        Period::Quarter => (m - 1) / 3 * 3 + 1,
        Period::Year => 1,
    };
    let d = NaiveDate::from_ymd_opt(y, first_month, 1).expect("first of a month exists");
    local_midnight(tz, d)
}

/// The order to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIn {
    /// The checkout's channel.
    pub channel: Option<String>,
    /// The lines (at least one).
    pub lines: Vec<BasketLine>,
    /// When the order was placed, UTC ms.
    pub ordered_at: i64,
    /// When it was paid, UTC ms (None: not yet).
    pub paid_at: Option<i64>,
}

/// A line the member bought before (the store reads them from the orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastLine {
    /// The order's channel.
    pub channel: String,
    /// SKU.
    pub sku: String,
    /// Brand (from the products table).
    pub brand: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// When the order was placed, UTC ms.
    pub ordered_at: i64,
    /// Units.
    pub units: i64,
    /// Line amount less line discount, minor units.
    pub spend: i64,
}

/// A coupon the store found usable for the member at the order's time (code,
/// member, window and uses checked); what it gives is decided here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponIn {
    /// The code.
    pub code: String,
    /// The coupon.
    pub coupon_id: i64,
    /// Its definition.
    pub definition_id: i64,
    /// The definition's rules.
    pub rules: CouponRules,
}

/// A coupon that gives nothing for the basket: the request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("coupon {code}: {refusal}")]
pub struct CouponRefused {
    /// The code.
    pub code: String,
    /// Why.
    pub refusal: Refusal,
}

/// What one rule or coupon takes off one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineShare {
    /// The line's position in the request (0-based).
    pub line: usize,
    /// Minor units.
    pub amount: i64,
}

/// A discount that applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Its stage.
    pub kind: RuleKind,
    /// The rule's name (a coupon: its code).
    pub rule: String,
    /// The coupon, for a coupon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon_id: Option<i64>,
    /// The amount off, minor units.
    pub amount: i64,
    /// Why it applies and how it was computed.
    pub why: String,
    /// What it takes off each line.
    pub lines: Vec<LineShare>,
}

/// A rule or coupon that does not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    /// Its stage.
    pub kind: RuleKind,
    /// The rule's name (a coupon: its code).
    pub rule: String,
    /// Why not.
    pub why: String,
}

/// One line after the discounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineOut {
    /// Position in the request (0-based).
    pub line: usize,
    /// SKU.
    pub sku: String,
    /// quantity x unit_price, minor units.
    pub amount: i64,
    /// All discounts on the line.
    pub discount: i64,
    /// What is left to pay.
    pub net: i64,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The sum of the lines, minor units.
    pub subtotal: i64,
    /// The discounts that apply, in stacking order.
    pub applied: Vec<Applied>,
    /// The rules and coupons that do not apply, and why.
    pub not_applied: Vec<NotApplied>,
    /// Taken off by the rules.
    pub rule_discount: i64,
    /// Taken off by the coupons.
    pub coupon_discount: i64,
    /// All discounts.
    pub discount: i64,
    /// subtotal - discount.
    pub total: i64,
    /// Per line.
    pub lines: Vec<LineOut>,
}

/// Spread `total` over lines in proportion to their weights (rounded down;
/// the minor units left go one each to the largest remainders, earlier
/// lines first on ties). `total` must not exceed the sum of the weights.
pub fn allocate(total: i64, weights: &[(usize, i64)]) -> Vec<LineShare> {
    let sum: i64 = weights.iter().map(|w| w.1).sum();
    if sum <= 0 || total <= 0 {
        return weights
            .iter()
            .map(|&(line, _)| LineShare { line, amount: 0 })
            .collect();
    }
    let total = total.min(sum);
    let mut out: Vec<(LineShare, i128)> = weights
        .iter()
        .map(|&(line, w)| {
            let p = total as i128 * w as i128;
            (
                LineShare {
                    line,
                    amount: (p / sum as i128) as i64,
                },
                p % sum as i128,
            )
        })
        .collect();
    let mut left = total - out.iter().map(|o| o.0.amount).sum::<i64>();
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| out[b].1.cmp(&out[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        out[i].0.amount += 1;
        left -= 1;
    }
    out.into_iter().map(|o| o.0).collect()
}

/// `percent` of `amount`, rounded half up.
pub fn percent_half_up(amount: i64, percent: i64) -> i64 {
    ((amount as i128 * percent as i128 + 50) / 100) as i64
}

fn off_text(percent: Option<i64>, amount: Option<i64>) -> String {
    match (percent, amount) {
        (Some(p), _) => format!("{p}% off each line in scope"),
        (_, Some(a)) => format!("{a} off the lines in scope"),
        _ => String::new(),
    }
}

fn scope_text(r: &Rule) -> String {
    let mut parts = Vec::new();
    for (label, v) in [
        ("brands", &r.brands),
        ("categories", &r.categories),
        ("SKUs", &r.skus),
    ] {
        if !v.is_empty() {
            parts.push(format!("{label} {}", v.join(", ")));
        }
    }
    if parts.is_empty() {
        "every line".into()
    } else {
        parts.join("; ")
    }
}

fn line_matches(r: &Rule, sku: &str, brand: Option<&str>, category: Option<&str>) -> bool {
    in_list(&r.brands, brand) && in_list(&r.categories, category) && in_list(&r.skus, Some(sku))
}

/// Evaluate the rules and coupons for an order. `history` holds the
/// member's purchases from [`Promotions::history_from`] up to the order
/// (later ones are ignored); `coupons` the codes in the order sent. A coupon
/// that gives nothing for the basket (out of scope, below its minimum spend)
/// refuses the whole evaluation, as validation would.
pub fn evaluate(
    p: &Promotions,
    order: &OrderIn,
    history: &[PastLine],
    coupon_list: &[CouponIn],
) -> Result<Evaluation, CouponRefused> {
    let n = order.lines.len();
    let list: Vec<i64> = order
        .lines
        .iter()
        .map(|l| l.quantity * l.unit_price)
        .collect();
    let mut running = list.clone();
    let mut locked = vec![false; n];
    let mut applied = Vec::new();
    let mut not_applied = Vec::new();
    let channel = order.channel.as_deref();
    let at = order.ordered_at;

    for (kind, rules) in [
        (RuleKind::Quantity, &p.quantity),
        (RuleKind::Cumulative, &p.cumulative),
        (RuleKind::EarlyPayment, &p.early_payment),
    ] {
        let mut claimed: Vec<Option<&str>> = vec![None; n];
        let mut sorted: Vec<&Rule> = rules.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.priority));
        for r in sorted {
            let skip = |why: String| NotApplied {
                kind,
                rule: r.name.clone(),
                why,
            };
            if let Some(f) = r.window.0.filter(|f| at < *f) {
                not_applied.push(skip(format!(
                    "it starts on {} (UTC ms {f}); the order is earlier",
                    r.from.as_deref().unwrap_or("")
                )));
                continue;
            }
            if let Some(u) = r.window.1.filter(|u| at >= *u) {
                not_applied.push(skip(format!(
                    "it ended on {} (UTC ms {u}); the order is later",
                    r.until.as_deref().unwrap_or("")
                )));
                continue;
            }
            if !r.channels.is_empty() && !in_list(&r.channels, channel) {
                not_applied.push(skip(format!(
                    "it is for the channels {}, not {}",
                    r.channels.join(", "),
                    channel.unwrap_or("(none given)")
                )));
                continue;
            }
            let in_scope: Vec<usize> = (0..n)
                .filter(|&i| {
                    let l = &order.lines[i];
                    line_matches(r, &l.sku, l.brand.as_deref(), l.category.as_deref())
                })
                .collect();
            if in_scope.is_empty() {
                not_applied.push(skip(format!(
                    "no line of the order is in its scope ({})",
                    scope_text(r)
                )));
                continue;
            }
            let free: Vec<usize> = in_scope
                .iter()
                .copied()
                .filter(|&i| claimed[i].is_none() && !locked[i] && running[i] > 0)
                .collect();
            if free.is_empty() {
                let by = in_scope
                    .iter()
                    .find_map(|&i| claimed[i])
                    .map(|b| format!("the {kind:?} rule {b:?}").to_lowercase())
                    .unwrap_or_else(|| "an exclusive rule before it".into());
                not_applied.push(skip(format!(
                    "its lines are discounted by {by} already (rules of one kind exclude each other line by line)"
                )));
                continue;
            }
            // The tier, or why none.
            let (percent, amount, why) = match kind {
                RuleKind::Quantity => {
                    let units: i64 = free.iter().map(|&i| order.lines[i].quantity).sum();
                    let Some(t) = r.tiers.iter().rev().find(|t| units >= t.min) else {
                        not_applied.push(skip(format!(
                            "{units} unit(s) of its scope ({}) in the order; the first tier needs {}",
                            scope_text(r),
                            r.tiers[0].min
                        )));
                        continue;
                    };
                    (
                        t.percent,
                        t.amount,
                        format!(
                            "{units} unit(s) of {} in the order reach the tier of {}: {}",
                            scope_text(r),
                            t.min,
                            off_text(t.percent, t.amount)
                        ),
                    )
                }
                RuleKind::Cumulative => {
                    let (Some(measure), Some(period)) = (r.measure, r.period) else {
                        continue;
                    };
                    let start = period_start(p.tz(), period, at);
                    let got: i64 = history
                        .iter()
                        .filter(|h| {
                            h.ordered_at >= start
                                && h.ordered_at < at
                                && in_list(&r.channels, Some(&h.channel))
                                && line_matches(
                                    r,
                                    &h.sku,
                                    h.brand.as_deref(),
                                    h.category.as_deref(),
                                )
                        })
                        .map(|h| match measure {
                            Measure::Units => h.units,
                            Measure::Spend => h.spend,
                        })
                        .sum();
                    let what = match measure {
                        Measure::Units => format!("{got} unit(s)"),
                        Measure::Spend => format!("{got} (minor units) spent"),
                    };
                    let per = format!("{period:?}").to_lowercase();
                    let Some(t) = r.tiers.iter().rev().find(|t| got >= t.min) else {
                        not_applied.push(skip(format!(
                            "the member has {what} on {} this {per} before this order (since UTC ms {start}); the first level needs {}",
                            scope_text(r),
                            r.tiers[0].min
                        )));
                        continue;
                    };
                    (
                        t.percent,
                        t.amount,
                        format!(
                            "the member has {what} on {} this {per} before this order (since UTC ms {start}), reaching the level of {}: {}",
                            scope_text(r),
                            t.min,
                            off_text(t.percent, t.amount)
                        ),
                    )
                }
                _ => {
                    let hours = r.within_hours.unwrap_or(0);
                    let Some(paid) = order.paid_at else {
                        not_applied.push(skip(format!(
                            "the order is not paid (no paid_at); it needs payment within {hours} h of ordering"
                        )));
                        continue;
                    };
                    let took = paid - at;
                    if took > hours * 3_600_000 {
                        not_applied.push(skip(format!(
                            "paid {} min after ordering; it needs payment within {hours} h",
                            took / 60_000
                        )));
                        continue;
                    }
                    (
                        r.percent,
                        r.amount,
                        format!(
                            "paid {} min after ordering, within {hours} h: {}",
                            took / 60_000,
                            off_text(r.percent, r.amount)
                        ),
                    )
                }
            };
            let shares: Vec<LineShare> = match (percent, amount) {
                (Some(pc), _) => free
                    .iter()
                    .map(|&i| LineShare {
                        line: i,
                        amount: percent_half_up(running[i], pc),
                    })
                    .collect(),
                (_, Some(a)) => allocate(
                    a,
                    &free.iter().map(|&i| (i, running[i])).collect::<Vec<_>>(),
                ),
                _ => continue,
            };
            let total: i64 = shares.iter().map(|s| s.amount).sum();
            for s in &shares {
                running[s.line] -= s.amount;
                claimed[s.line] = Some(&r.name);
                if r.exclusive {
                    locked[s.line] = true;
                }
            }
            applied.push(Applied {
                kind,
                rule: r.name.clone(),
                coupon_id: None,
                amount: total,
                why,
                lines: shares,
            });
        }
    }
    let rule_discount: i64 = applied.iter().map(|a| a.amount).sum();

    // Coupons, on what the rules left.
    let rank = |k: CouponKind| match k {
        CouponKind::Percent => 0,
        CouponKind::Fixed => 1,
        CouponKind::FreeItem => 2,
    };
    let mut order_c: Vec<&CouponIn> = coupon_list.iter().collect();
    order_c.sort_by(|a, b| {
        b.rules
            .priority
            .cmp(&a.rules.priority)
            .then(rank(a.rules.kind).cmp(&rank(b.rules.kind)))
    });
    let mut taken: Vec<(&str, bool)> = Vec::new();
    for c in order_c {
        if let Some(&(first, _)) = taken.first() {
            if !c.rules.stackable {
                not_applied.push(NotApplied {
                    kind: RuleKind::Coupon,
                    rule: c.code.clone(),
                    why: format!(
                        "it is not stackable and the coupon {first} applies before it (higher priority, or a percentage before an amount)"
                    ),
                });
                continue;
            }
            if let Some(&(ns, _)) = taken.iter().find(|t| !t.1) {
                not_applied.push(NotApplied {
                    kind: RuleKind::Coupon,
                    rule: c.code.clone(),
                    why: format!("the coupon {ns} applies before it and is not stackable"),
                });
                continue;
            }
        }
        let basket = Basket {
            channel: order.channel.clone(),
            amount: running.iter().sum(),
            lines: order
                .lines
                .iter()
                .zip(&running)
                .map(|(l, &r)| BasketLine {
                    sku: l.sku.clone(),
                    brand: l.brand.clone(),
                    category: l.category.clone(),
                    quantity: 1,
                    unit_price: r,
                })
                .collect(),
        };
        let d = coupons::discount(&c.rules, &basket).map_err(|refusal| CouponRefused {
            code: c.code.clone(),
            refusal,
        })?;
        let (shares, why) = if c.rules.kind == CouponKind::FreeItem {
            let sku = d.free_sku.clone().unwrap_or_default();
            let i = order
                .lines
                .iter()
                .position(|l| l.sku == sku)
                .unwrap_or_default();
            let q = order.lines[i].quantity.max(1);
            // One unit at its price after the rules, rounded half up.
            let unit = (running[i] * 2 + q) / (2 * q);
            (
                vec![LineShare {
                    line: i,
                    amount: unit,
                }],
                format!("one unit of {sku} free, at its price after the rules ({unit})"),
            )
        } else {
            let weights: Vec<(usize, i64)> = (0..n)
                .filter(|&i| c.rules.line_in_scope(&basket.lines[i]))
                .map(|i| (i, running[i]))
                .collect();
            let how = match c.rules.kind {
                CouponKind::Percent => format!(
                    "{}% of the eligible {} rounded down{}",
                    c.rules.percent,
                    d.eligible,
                    c.rules
                        .cap
                        .map(|cap| format!(", at most {cap}"))
                        .unwrap_or_default()
                ),
                _ => format!("{} off the eligible {}", c.rules.amount, d.eligible),
            };
            (allocate(d.discount, &weights), how)
        };
        let total: i64 = shares.iter().map(|s| s.amount).sum();
        if total == 0 {
            not_applied.push(NotApplied {
                kind: RuleKind::Coupon,
                rule: c.code.clone(),
                why: "nothing is left to take off its lines".into(),
            });
            continue;
        }
        for s in &shares {
            running[s.line] -= s.amount;
        }
        taken.push((&c.code, c.rules.stackable));
        applied.push(Applied {
            kind: RuleKind::Coupon,
            rule: c.code.clone(),
            coupon_id: Some(c.coupon_id),
            amount: total,
            why: format!(
                "coupon of definition {} (priority {}, {}): {why}, on the amounts after the rules and the coupons before it",
                c.definition_id,
                c.rules.priority,
                if c.rules.stackable { "stackable" } else { "not stackable" }
            ),
            lines: shares,
        });
    }
    let subtotal: i64 = list.iter().sum();
    let discount: i64 = applied.iter().map(|a| a.amount).sum();
    Ok(Evaluation {
        subtotal,
        applied,
        not_applied,
        rule_discount,
        coupon_discount: discount - rule_discount,
        discount,
        total: subtotal - discount,
        lines: order
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LineOut {
                line: i,
                sku: l.sku.clone(),
                amount: list[i],
                discount: list[i] - running[i],
                net: running[i],
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests;
