//! Coupons and the points mall: the pure rules. What a coupon definition
//! gives for a basket (or why it gives nothing), its validity window, and the
//! checks of a mall reward. The store applies them under its locks
//! (`touchpoint_store::coupons`, `touchpoint_store::rewards`); see
//! docs/rewards.md.
//!
//! Money is in integer minor units, times in UTC milliseconds.

use serde::{Deserialize, Serialize};

/// A code as stored and compared: trimmed, upper case.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The codes of an order's coupon field: separated by commas, semicolons or
/// spaces; empty parts dropped.
pub fn parse_codes(field: &str) -> Vec<String> {
    field
        .split([',', ';', ' '])
        .map(normalise_code)
        .filter(|c| !c.is_empty())
        .collect()
}

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponKind {
    /// A fixed amount (`amount`, minor units), at most the eligible amount.
    Fixed,
    /// A percentage (`percent`, 1 to 100) of the eligible amount, rounded
    /// down to the minor unit, at most `cap` when one is set.
    Percent,
    /// One unit of `free_sku`, when the basket has it.
    FreeItem,
}

impl CouponKind {
    /// Parse `fixed`, `percent` or `free_item`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(CouponKind::Fixed),
            "percent" => Ok(CouponKind::Percent),
            "free_item" => Ok(CouponKind::FreeItem),
            _ => Err(format!(
                "coupon kind {s:?}: expected fixed, percent or free_item"
            )),
        }
    }
}

/// A coupon definition's rules (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponRules {
    /// Fixed, percent or free item.
    pub kind: CouponKind,
    /// Fixed: the amount off, minor units.
    #[serde(default)]
    pub amount: i64,
    /// Percent: 1 to 100.
    #[serde(default)]
    pub percent: i64,
    /// Percent: the most it takes off, minor units.
    #[serde(default)]
    pub cap: Option<i64>,
    /// Free item: the SKU given.
    #[serde(default)]
    pub free_sku: Option<String>,
    /// The eligible amount must reach this, minor units (0: none).
    #[serde(default)]
    pub min_spend: i64,
    /// Channels where it can be used (empty: all).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Brands whose lines it applies to (empty: all).
    #[serde(default)]
    pub brands: Vec<String>,
    /// Categories whose lines it applies to (empty: all).
    #[serde(default)]
    pub categories: Vec<String>,
    /// SKUs it applies to (empty: all).
    #[serde(default)]
    pub skus: Vec<String>,
    /// Valid from, UTC ms.
    #[serde(default)]
    pub valid_from: Option<i64>,
    /// Valid until (exclusive), UTC ms.
    #[serde(default)]
    pub valid_until: Option<i64>,
    /// Valid this many days from issue (instead of, or within, the window).
    #[serde(default)]
    pub valid_days: Option<i64>,
    /// Whether it combines with other coupons on one order.
    #[serde(default)]
    pub stackable: bool,
    /// Higher applies first among stackable coupons.
    #[serde(default)]
    pub priority: i64,
    /// A refunded order gives the coupon back.
    #[serde(default)]
    pub return_on_refund: bool,
}

impl CouponRules {
    /// Check the rules; the message names the field and the accepted form.
    pub fn check(&self) -> Result<(), String> {
        match self.kind {
            CouponKind::Fixed if self.amount <= 0 => {
                return Err(format!(
                    "amount {}: expected a positive amount in minor units for a fixed coupon",
                    self.amount
                ))
            }
            CouponKind::Percent if !(1..=100).contains(&self.percent) => {
                return Err(format!(
                    "percent {}: expected 1 to 100 for a percent coupon",
                    self.percent
                ))
            }
            CouponKind::FreeItem if self.free_sku.as_deref().is_none_or(str::is_empty) => {
                return Err("free_sku: expected the SKU given by a free_item coupon".into())
            }
            _ => {}
        }
        if self.cap.is_some_and(|c| c <= 0) {
            return Err("cap: expected a positive amount in minor units".into());
        }
        if self.min_spend < 0 {
            return Err("min_spend: expected 0 or more minor units".into());
        }
        if self.valid_days.is_some_and(|d| d <= 0) {
            return Err("valid_days: expected a positive number of days".into());
        }
        if let (Some(f), Some(u)) = (self.valid_from, self.valid_until) {
            if u <= f {
                return Err("valid_until: expected a time after valid_from".into());
            }
        }
        Ok(())
    }

    /// The validity window of a coupon issued at `issued_at`: the
    /// definition's window, narrowed to `valid_days` from issue.
    pub fn window(&self, issued_at: i64) -> (Option<i64>, Option<i64>) {
        let until = match (self.valid_until, self.valid_days) {
            (u, None) => u,
            (None, Some(d)) => Some(issued_at + d * 86_400_000),
            (Some(u), Some(d)) => Some(u.min(issued_at + d * 86_400_000)),
        };
        (self.valid_from, until)
    }
}

/// One line of a basket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketLine {
    /// SKU.
    pub sku: String,
    /// Brand, when known.
    #[serde(default)]
    pub brand: Option<String>,
    /// Category, when known.
    #[serde(default)]
    pub category: Option<String>,
    /// Units.
    #[serde(default = "one")]
    pub quantity: i64,
    /// Price per unit, minor units.
    pub unit_price: i64,
}

fn one() -> i64 {
    1
}

/// A basket as a checkout describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Basket {
    /// The channel of the checkout, when given.
    pub channel: Option<String>,
    /// The order amount, minor units (used when there are no lines).
    pub amount: i64,
    /// The lines (may be empty).
    pub lines: Vec<BasketLine>,
}

/// Why a coupon gives nothing. Each has its own API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// No such code.
    #[error("unknown coupon code; check it and try again")]
    UnknownCode,
    /// Before its window.
    #[error("this coupon is not valid yet (from {from} UTC ms)")]
    NotYetValid {
        /// Valid from.
        from: i64,
    },
    /// After its window.
    #[error("this coupon expired (at {until} UTC ms)")]
    Expired {
        /// Valid until.
        until: i64,
    },
    /// Bound to another member.
    #[error("this coupon belongs to another member")]
    WrongMember,
    /// Nothing in the basket (or the channel) is in its scope.
    #[error("{reason}")]
    OutOfScope {
        /// What does not match.
        reason: String,
    },
    /// The eligible amount is below the minimum spend.
    #[error("the eligible amount {eligible} is below this coupon's minimum spend of {min} (minor units)")]
    BelowMinimumSpend {
        /// The minimum.
        min: i64,
        /// The eligible amount.
        eligible: i64,
    },
    /// A public code's total or per-member limit is used up.
    #[error("{reason}")]
    LimitReached {
        /// Which limit.
        reason: String,
    },
    /// A single-use coupon was redeemed already.
    #[error("this coupon was redeemed already")]
    AlreadyRedeemed,
}

impl Refusal {
    /// The API code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownCode => "unknown_coupon",
            Refusal::NotYetValid { .. } => "coupon_not_yet_valid",
            Refusal::Expired { .. } => "coupon_expired",
            Refusal::WrongMember => "coupon_wrong_member",
            Refusal::OutOfScope { .. } => "coupon_out_of_scope",
            Refusal::BelowMinimumSpend { .. } => "coupon_below_minimum_spend",
            Refusal::LimitReached { .. } => "coupon_limit_reached",
            Refusal::AlreadyRedeemed => "coupon_already_redeemed",
        }
    }
}

/// What a coupon gives for a basket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discount {
    /// The amount off, minor units.
    pub discount: i64,
    /// The amount the coupon applied to, minor units.
    pub eligible: i64,
    /// The free SKU, for a free-item coupon.
    pub free_sku: Option<String>,
}

/// Whether `at` is inside the window.
pub fn check_window(from: Option<i64>, until: Option<i64>, at: i64) -> Result<(), Refusal> {
    if let Some(f) = from.filter(|f| at < *f) {
        return Err(Refusal::NotYetValid { from: f });
    }
    if let Some(u) = until.filter(|u| at >= *u) {
        return Err(Refusal::Expired { until: u });
    }
    Ok(())
}

/// Whether `v` is in a scope list (an empty list: everything; compared
/// without regard to ASCII case). Shared with the discount rules
/// (`crate::promotions`).
pub fn in_list(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
}

impl CouponRules {
    /// Whether a basket line is in the coupon's brands, categories and SKUs.
    pub fn line_in_scope(&self, l: &BasketLine) -> bool {
        in_list(&self.brands, l.brand.as_deref())
            && in_list(&self.categories, l.category.as_deref())
            && in_list(&self.skus, Some(&l.sku))
    }
}

/// What the rules give for the basket (the window and the member are checked
/// apart, see [`check_window`]).
pub fn discount(rules: &CouponRules, basket: &Basket) -> Result<Discount, Refusal> {
    if !rules.channels.is_empty() {
        let Some(ch) = basket.channel.as_deref() else {
            return Err(Refusal::OutOfScope {
                reason: format!(
                    "this coupon is for the channels {}; the request names none",
                    rules.channels.join(", ")
                ),
            });
        };
        if !in_list(&rules.channels, Some(ch)) {
            return Err(Refusal::OutOfScope {
                reason: format!(
                    "this coupon is for the channels {}, not {ch}",
                    rules.channels.join(", ")
                ),
            });
        }
    }
    let scoped = !(rules.brands.is_empty() && rules.categories.is_empty() && rules.skus.is_empty());
    let eligible = if basket.lines.is_empty() {
        if scoped {
            return Err(Refusal::OutOfScope {
                reason: "this coupon applies to some brands, categories or SKUs only; send the basket's lines".into(),
            });
        }
        basket.amount
    } else {
        let matching: Vec<&BasketLine> = basket
            .lines
            .iter()
            .filter(|l| rules.line_in_scope(l))
            .collect();
        if matching.is_empty() {
            return Err(Refusal::OutOfScope {
                reason: "no line of the basket is in this coupon's brands, categories or SKUs"
                    .into(),
            });
        }
        matching.iter().map(|l| l.quantity * l.unit_price).sum()
    };
    if eligible < rules.min_spend {
        return Err(Refusal::BelowMinimumSpend {
            min: rules.min_spend,
            eligible,
        });
    }
    let (off, free) = match rules.kind {
        CouponKind::Fixed => (rules.amount.min(eligible), None),
        CouponKind::Percent => {
            let p = eligible * rules.percent / 100;
            (rules.cap.map_or(p, |c| p.min(c)), None)
        }
        CouponKind::FreeItem => {
            let sku = rules.free_sku.clone().unwrap_or_default();
            let Some(line) = basket.lines.iter().find(|l| l.sku == sku) else {
                return Err(Refusal::OutOfScope {
                    reason: format!("the free item {sku} is not in the basket"),
                });
            };
            (line.unit_price, Some(sku))
        }
    };
    Ok(Discount {
        discount: off.max(0),
        eligible,
        free_sku: free,
    })
}

/// A reward's kind in the points mall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// Issues a coupon of a named definition on redemption.
    Coupon,
    /// A physical gift.
    Gift,
    /// A partner's voucher.
    PartnerVoucher,
}

impl RewardKind {
    /// Parse `coupon`, `gift` or `partner_voucher`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "coupon" => Ok(RewardKind::Coupon),
            "gift" => Ok(RewardKind::Gift),
            "partner_voucher" => Ok(RewardKind::PartnerVoucher),
            _ => Err(format!(
                "reward kind {s:?}: expected coupon, gift or partner_voucher"
            )),
        }
    }
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::Coupon => "coupon",
            RewardKind::Gift => "gift",
            RewardKind::PartnerVoucher => "partner_voucher",
        }
    }
}

/// The default hold time of a two-step redemption: 15 minutes.
pub const DEFAULT_HOLD_MS: i64 = 15 * 60 * 1000;

/// Whether a reward can be redeemed on `channel` at `at`; the reason if not.
pub fn reward_available(
    channels: &[String],
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    channel: Option<&str>,
    at: i64,
) -> Result<(), String> {
    if valid_from.is_some_and(|f| at < f) {
        return Err("this reward cannot be redeemed yet".into());
    }
    if valid_until.is_some_and(|u| at >= u) {
        return Err("this reward can no longer be redeemed".into());
    }
    if !channels.is_empty() && !in_list(channels, channel) {
        return Err(format!(
            "this reward is for the channels {}; the request names {}",
            channels.join(", "),
            channel.unwrap_or("none")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(kind: CouponKind) -> CouponRules {
        CouponRules {
            kind,
            amount: 0,
            percent: 0,
            cap: None,
            free_sku: None,
            min_spend: 0,
            channels: vec![],
            brands: vec![],
            categories: vec![],
            skus: vec![],
            valid_from: None,
            valid_until: None,
            valid_days: None,
            stackable: false,
            priority: 0,
            return_on_refund: false,
        }
    }

    fn line(sku: &str, brand: &str, qty: i64, price: i64) -> BasketLine {
        BasketLine {
            sku: sku.into(),
            brand: Some(brand.into()),
            category: None,
            quantity: qty,
            unit_price: price,
        }
    }

    #[test]
    fn percent_is_capped_and_scoped_to_brand_lines() {
        let mut r = rules(CouponKind::Percent);
        r.percent = 20;
        r.cap = Some(1_500);
        r.brands = vec!["Acme".into()];
        let b = Basket {
            channel: None,
            amount: 0,
            lines: vec![line("A", "Acme", 2, 5_000), line("B", "Other", 1, 9_000)],
        };
        let d = discount(&r, &b).unwrap();
        assert_eq!(d.eligible, 10_000);
        assert_eq!(d.discount, 1_500);
        r.cap = None;
        assert_eq!(discount(&r, &b).unwrap().discount, 2_000);
    }

    #[test]
    fn each_refusal_is_told_apart() {
        let mut r = rules(CouponKind::Fixed);
        r.amount = 1_000;
        r.min_spend = 5_000;
        let small = Basket {
            channel: Some("pos".into()),
            amount: 4_999,
            lines: vec![],
        };
        assert_eq!(
            discount(&r, &small).unwrap_err(),
            Refusal::BelowMinimumSpend {
                min: 5_000,
                eligible: 4_999
            }
        );
        r.channels = vec!["shopify".into()];
        assert!(matches!(
            discount(&r, &small).unwrap_err(),
            Refusal::OutOfScope { .. }
        ));
        assert_eq!(
            check_window(Some(10), Some(20), 5),
            Err(Refusal::NotYetValid { from: 10 })
        );
        assert_eq!(
            check_window(Some(10), Some(20), 20),
            Err(Refusal::Expired { until: 20 })
        );
        assert_eq!(check_window(Some(10), Some(20), 19), Ok(()));
    }

    #[test]
    fn fixed_never_exceeds_the_basket_and_free_item_needs_the_sku() {
        let mut r = rules(CouponKind::Fixed);
        r.amount = 9_999;
        let b = Basket {
            channel: None,
            amount: 3_000,
            lines: vec![],
        };
        assert_eq!(discount(&r, &b).unwrap().discount, 3_000);
        let mut f = rules(CouponKind::FreeItem);
        f.free_sku = Some("GIFT".into());
        assert!(discount(&f, &b).is_err());
        let b2 = Basket {
            channel: None,
            amount: 0,
            lines: vec![line("GIFT", "x", 3, 700)],
        };
        assert_eq!(discount(&f, &b2).unwrap().discount, 700);
    }

    #[test]
    fn days_from_issue_narrow_the_window() {
        let mut r = rules(CouponKind::Fixed);
        r.valid_days = Some(2);
        assert_eq!(r.window(1_000), (None, Some(1_000 + 2 * 86_400_000)));
        r.valid_until = Some(5_000);
        assert_eq!(r.window(1_000), (None, Some(5_000)));
    }
}
