//! Value types that cannot be wrong once built: parse, don't validate.
//!
//! Every type here has a private representation and a `parse` constructor that
//! normalises its input (phones to E.164, emails lower-cased, money to integer
//! minor units). Code past the parsing boundary never re-checks them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value could not be parsed: what was expected, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expected}")]
pub struct ParseError {
    /// The accepted form, e.g. "a phone number such as 13800000001 or +8613800000001".
    pub expected: String,
}

impl ParseError {
    fn new(expected: impl Into<String>) -> Self {
        Self {
            expected: expected.into(),
        }
    }
}

/// A stable member id. Shown to users as `M-<n>`; stored as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MemberId(i64);

impl MemberId {
    /// Wrap a database id. Ids are positive.
    pub fn from_i64(id: i64) -> Self {
        Self(id)
    }
    /// The database id.
    pub fn get(self) -> i64 {
        self.0
    }
    /// Parse `M-123`, `m-123` or `123`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let digits = s
            .strip_prefix("M-")
            .or_else(|| s.strip_prefix("m-"))
            .unwrap_or(s);
        match digits.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(ParseError::new("a member id such as M-123")),
        }
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "M-{}", self.0)
    }
}

impl From<MemberId> for String {
    fn from(m: MemberId) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for MemberId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

/// A channel name: lower-case ASCII letters, digits, `-` and `_`, 1 to 40 characters
/// (`tmall`, `jd`, `shopify`, `pos`, `wechat`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ChannelName(String);

impl ChannelName {
    /// Parse and lower-case a channel name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_ascii_lowercase();
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(ParseError::new(
                "a channel name of 1 to 40 letters, digits, '-' or '_' (e.g. tmall, pos-shanghai)",
            ))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl From<ChannelName> for String {
    fn from(c: ChannelName) -> String {
        c.0
    }
}
impl TryFrom<String> for ChannelName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

/// An e-mail address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Trim, lower-case and check the basic `local@domain.tld` shape.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_lowercase();
        let valid = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && s.len() <= 254
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if valid {
            Ok(Self(s))
        } else {
            Err(ParseError::new(
                "an e-mail address such as name@example.com",
            ))
        }
    }
    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form (`+8613800000001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    /// Normalise a phone number to E.164.
    ///
    /// Accepts `+CC...`, `00CC...`, and national numbers, which get
    /// `default_country` (a calling code such as `86`) prepended. Spaces, dashes,
    /// dots, parentheses and a leading apostrophe (as spreadsheet exports write it)
    /// are removed. For +86, a leading trunk `0` of a national number is dropped.
    pub fn parse(s: &str, default_country: &str) -> Result<Self, ParseError> {
        let t = s.trim().trim_start_matches('\'');
        let mut digits = String::with_capacity(t.len());
        let mut plus = false;
        for (i, c) in t.chars().enumerate() {
            match c {
                '+' if i == 0 => plus = true,
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
                _ => return Err(Self::err()),
            }
        }
        let full = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if default_country == "86" && digits.len() == 13 && digits.starts_with("86") {
            // 8613800000001 written without the plus sign
            digits
        } else {
            let national = if default_country == "86" {
                digits.trim_start_matches('0')
            } else {
                digits.strip_prefix('0').unwrap_or(&digits)
            };
            format!("{default_country}{national}")
        };
        // E.164: at most 15 digits; we ask for at least 8 so that short codes are refused.
        if !(8..=15).contains(&full.len()) || full.starts_with('0') {
            return Err(Self::err());
        }
        Ok(Self(format!("+{full}")))
    }
    fn err() -> ParseError {
        ParseError::new("a phone number such as 13800000001, +86 138 0000 0001 or +14155550100")
    }
    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An amount of money in integer minor units (fen, cents).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Money(i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);
    /// From minor units.
    pub fn from_minor(m: i64) -> Self {
        Self(m)
    }
    /// Minor units.
    pub fn minor(self) -> i64 {
        self.0
    }
    /// Parse a decimal amount with at most two decimals: `12`, `12.5`, `-3.99`,
    /// `1,234.50`, `¥12.00`, `$12.00`. Never goes through a float.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let t = t
            .trim_start_matches(['¥', '￥', '$', '€', '£'])
            .trim()
            .replace(',', "");
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t.as_str()),
        };
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        let ok = !(int.is_empty() && frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && frac.len() <= 2
            && int.len() <= 15;
        if !ok {
            return Err(ParseError::new(
                "an amount with at most two decimals, such as 129 or 129.90",
            ));
        }
        let i: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| ParseError::new("an amount"))?
        };
        let f: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().unwrap_or(0) * 10,
            _ => frac.parse::<i64>().unwrap_or(0),
        };
        let v = i * 100 + f;
        Ok(Self(if neg { -v } else { v }))
    }
    /// Format with two decimals.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal_string())
    }
}

/// A three-letter ISO 4217 currency code, upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Currency(String);

impl Currency {
    /// Parse `cny`, `CNY`, ... Three ASCII letters.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_ascii_uppercase();
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err(ParseError::new(
                "a three-letter currency code such as CNY or USD",
            ))
        }
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The state of an order. Only `paid` and `partially_refunded` orders count as purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed but not paid yet.
    Pending,
    /// Paid.
    Paid,
    /// Paid, then part of it refunded (`refunded_amount` says how much).
    PartiallyRefunded,
    /// Paid, then refunded in full.
    Refunded,
    /// Cancelled or voided before or without payment.
    Cancelled,
}

impl OrderStatus {
    /// All statuses, in the canonical spelling.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
        OrderStatus::Cancelled,
    ];
    /// The canonical spelling (`paid`, `partially_refunded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Cancelled => "cancelled",
        }
    }
    /// Parse the canonical spelling (case-insensitive; `-`, space and `_` alike).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match norm.as_str() {
            "pending" => Ok(Self::Pending),
            "paid" | "completed" => Ok(Self::Paid),
            "partially_refunded" => Ok(Self::PartiallyRefunded),
            "refunded" => Ok(Self::Refunded),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            _ => Err(ParseError::new(
                "one of pending, paid, partially_refunded, refunded, cancelled",
            )),
        }
    }
    /// Whether the order counts as a purchase in analytics.
    pub fn is_purchase(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::PartiallyRefunded)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of identifier that Touchpoint knows a person by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// The brand's own membership number.
    MemberNo,
    /// A phone number, E.164.
    Phone,
    /// An e-mail address, lower-case.
    Email,
    /// A marketplace buyer id, namespaced by channel (`tmall:buyer_nick`).
    PlatformUserId,
    /// A WeChat unionid.
    WechatUnionid,
    /// An anonymous (device/cookie) id from tracking, namespaced by source.
    AnonymousId,
}

impl IdentifierKind {
    /// All kinds.
    pub const ALL: [IdentifierKind; 6] = [
        IdentifierKind::MemberNo,
        IdentifierKind::Phone,
        IdentifierKind::Email,
        IdentifierKind::PlatformUserId,
        IdentifierKind::WechatUnionid,
        IdentifierKind::AnonymousId,
    ];
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::MemberNo => "member_no",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::PlatformUserId => "platform_user_id",
            IdentifierKind::WechatUnionid => "wechat_unionid",
            IdentifierKind::AnonymousId => "anonymous_id",
        }
    }
    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ParseError::new(
                    "one of member_no, phone, email, platform_user_id, wechat_unionid, anonymous_id",
                )
            })
    }
    /// Whether an identifier of this kind may be marked shared when it is seen with
    /// too many distinct others (a shop counter's phone, a family e-mail).
    pub fn can_be_shared(self) -> bool {
        matches!(self, IdentifierKind::Phone | IdentifierKind::Email)
    }
    /// Preference when naming the account a record belongs to within its channel:
    /// lower is preferred.
    pub fn account_rank(self) -> u8 {
        match self {
            IdentifierKind::PlatformUserId => 0,
            IdentifierKind::MemberNo => 1,
            IdentifierKind::WechatUnionid => 2,
            IdentifierKind::Email => 3,
            IdentifierKind::Phone => 4,
            IdentifierKind::AnonymousId => 5,
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed, normalised identifier. Build with the `Identifier::*` constructors,
/// which normalise; `value` is then the stored form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    kind: IdentifierKind,
    value: String,
}

impl Identifier {
    /// A phone identifier.
    pub fn phone(p: &Phone) -> Self {
        Self {
            kind: IdentifierKind::Phone,
            value: p.as_str().to_string(),
        }
    }
    /// An e-mail identifier.
    pub fn email(e: &Email) -> Self {
        Self {
            kind: IdentifierKind::Email,
            value: e.as_str().to_string(),
        }
    }
    /// A membership number (trimmed; case kept).
    pub fn member_no(s: &str) -> Result<Self, ParseError> {
        Self::plain(IdentifierKind::MemberNo, s, "a membership number")
    }
    /// A WeChat unionid (trimmed).
    pub fn wechat_unionid(s: &str) -> Result<Self, ParseError> {
        Self::plain(IdentifierKind::WechatUnionid, s, "a WeChat unionid")
    }
    /// A platform buyer id on a channel, stored as `channel:id`.
    pub fn platform_user_id(channel: &ChannelName, s: &str) -> Result<Self, ParseError> {
        let id = Self::plain(IdentifierKind::PlatformUserId, s, "a platform buyer id")?;
        Ok(Self {
            kind: IdentifierKind::PlatformUserId,
            value: format!("{}:{}", channel.as_str(), id.value),
        })
    }
    /// An anonymous id from a tracking source, stored as `source:id`.
    pub fn anonymous_id(source: &str, s: &str) -> Result<Self, ParseError> {
        let id = Self::plain(IdentifierKind::AnonymousId, s, "an anonymous id")?;
        Ok(Self {
            kind: IdentifierKind::AnonymousId,
            value: format!("{source}:{}", id.value),
        })
    }
    fn plain(kind: IdentifierKind, s: &str, what: &str) -> Result<Self, ParseError> {
        let t = s.trim().trim_start_matches('\'');
        if t.is_empty() || t.len() > 200 || t.chars().any(|c| c.is_control()) {
            return Err(ParseError::new(format!(
                "{what}: 1 to 200 printable characters"
            )));
        }
        Ok(Self {
            kind,
            value: t.to_string(),
        })
    }
    /// Rebuild from stored parts (already normalised).
    pub fn from_stored(kind: IdentifierKind, value: String) -> Self {
        Self { kind, value }
    }
    /// The kind.
    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }
    /// The normalised value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.kind {
            IdentifierKind::MemberNo => "member number",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::PlatformUserId => "platform id",
            IdentifierKind::WechatUnionid => "WeChat unionid",
            IdentifierKind::AnonymousId => "anonymous id",
        };
        write!(f, "{label} {}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones_normalise_to_e164() {
        for (raw, want) in [
            ("13800000001", "+8613800000001"),
            ("+86 138 0000 0001", "+8613800000001"),
            ("'13800000001", "+8613800000001"),
            ("8613800000001", "+8613800000001"),
            ("0086-138-0000-0001", "+8613800000001"),
            ("+1 (415) 555-0100", "+14155550100"),
        ] {
            assert_eq!(Phone::parse(raw, "86").unwrap().as_str(), want, "{raw}");
        }
        assert_eq!(
            Phone::parse("(415) 555-0100", "1").unwrap().as_str(),
            "+14155550100"
        );
        for bad in ["", "12", "abc", "138-0000-000x", "+"] {
            assert!(Phone::parse(bad, "86").is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Li.Na@Example.COM ").unwrap().as_str(),
            "li.na@example.com"
        );
        for bad in ["", "a", "a@b", "@b.com", "a b@c.com", "a@.com", "a@b.c@d"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_parses_without_floats() {
        assert_eq!(Money::parse("12").unwrap().minor(), 1200);
        assert_eq!(Money::parse("12.5").unwrap().minor(), 1250);
        assert_eq!(Money::parse("-3.99").unwrap().minor(), -399);
        assert_eq!(Money::parse("1,234.50").unwrap().minor(), 123450);
        assert_eq!(Money::parse("¥0.07").unwrap().minor(), 7);
        assert_eq!(Money::parse(".5").unwrap().minor(), 50);
        for bad in ["", "1.234", "abc", "1e3", "--1", "."] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(
            OrderStatus::parse("Partially Refunded").unwrap(),
            OrderStatus::PartiallyRefunded
        );
        assert!(OrderStatus::parse("shipped").is_err());
    }

    proptest! {
        #[test]
        fn money_round_trips(m in -10_000_000_000i64..10_000_000_000i64) {
            let s = Money::from_minor(m).to_decimal_string();
            prop_assert_eq!(Money::parse(&s).unwrap().minor(), m);
        }

        #[test]
        fn phone_parse_is_idempotent(n in 13000000000u64..19999999999u64) {
            let p = Phone::parse(&n.to_string(), "86").unwrap();
            let again = Phone::parse(p.as_str(), "86").unwrap();
            prop_assert_eq!(p, again);
        }

        #[test]
        fn email_parse_is_idempotent(local in "[a-zA-Z0-9._]{1,20}", domain in "[a-z]{1,10}\\.[a-z]{2,4}") {
            let e = Email::parse(&format!("{local}@{domain}")).unwrap();
            let again = Email::parse(e.as_str()).unwrap();
            prop_assert_eq!(e, again);
        }

        #[test]
        fn member_id_round_trips(n in 1i64..i64::MAX) {
            let m = MemberId::from_i64(n);
            prop_assert_eq!(MemberId::parse(&m.to_string()).unwrap(), m);
        }
    }
}
