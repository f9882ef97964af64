//! The segment language: a small rule language over profile, behaviour and
//! value, parsed and evaluated here (no I/O).
//!
//! ```text
//! rfm_segment in ("At Risk", "Can't Lose Them") and clv_12m > 500
//!   and last_order_days >= 90 and has_tag("vip")
//!   and bought(category = "skincare", within = 180d) and not consent(email, newsletter)
//! ```
//!
//! [`parse`] turns a text into an [`Expr`] or a [`ParseError`] with the line
//! and column and, for a misspelt name, the name meant. [`Expr::eval`] decides
//! one member from its [`MemberFacts`] (the per-member columns the store loads
//! once) and the member sets of the expression's [`Atom`]s (tags, consent,
//! purchases of a product, channels), which the store computes once per
//! expression. The grammar and every field are documented in docs/campaigns.md.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use eval::*;
pub use parse::*;

use serde::Serialize;

/// A field of the language: one value per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// RFM segment name (`"At Risk"`, ...).
    RfmSegment,
    /// Recency score 1..5.
    R,
    /// Frequency score 1..5.
    F,
    /// Monetary score 1..5.
    M,
    /// Predicted value over 12 months, currency units.
    Clv12m,
    /// Probability the member is still a customer.
    PAlive,
    /// Days since the last purchase.
    LastOrderDays,
    /// Days since the first purchase.
    FirstOrderDays,
    /// Purchase orders.
    Orders,
    /// Net spend (gross less refunds), currency units.
    NetSpend,
    /// Average order value, currency units.
    Aov,
    /// ABC class (`A`, `B`, `C`, `loss-making`).
    AbcClass,
    /// Loyalty tier.
    Tier,
    /// Points available now.
    PointsAvailable,
    /// Gender as recorded.
    Gender,
    /// Region (province, state).
    Region,
    /// City.
    City,
    /// Preferred language.
    Language,
    /// Age in whole years.
    Age,
    /// Month of the birthday, 1..12.
    BirthdayMonth,
}

/// Whether a field holds a number or a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Compared as a number (`>`, `<`, ...).
    Number,
    /// Compared as a text, ignoring case (`=`, `!=`, `in`).
    Text,
}

impl Field {
    /// Every field, in documentation order.
    pub const ALL: [Field; 20] = [
        Field::RfmSegment,
        Field::R,
        Field::F,
        Field::M,
        Field::Clv12m,
        Field::PAlive,
        Field::LastOrderDays,
        Field::FirstOrderDays,
        Field::Orders,
        Field::NetSpend,
        Field::Aov,
        Field::AbcClass,
        Field::Tier,
        Field::PointsAvailable,
        Field::Gender,
        Field::Region,
        Field::City,
        Field::Language,
        Field::Age,
        Field::BirthdayMonth,
    ];

    /// The name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Field::RfmSegment => "rfm_segment",
            Field::R => "r",
            Field::F => "f",
            Field::M => "m",
            Field::Clv12m => "clv_12m",
            Field::PAlive => "p_alive",
            Field::LastOrderDays => "last_order_days",
            Field::FirstOrderDays => "first_order_days",
            Field::Orders => "orders",
            Field::NetSpend => "net_spend",
            Field::Aov => "aov",
            Field::AbcClass => "abc_class",
            Field::Tier => "tier",
            Field::PointsAvailable => "points_available",
            Field::Gender => "gender",
            Field::Region => "region",
            Field::City => "city",
            Field::Language => "language",
            Field::Age => "age",
            Field::BirthdayMonth => "birthday_month",
        }
    }

    /// The field of a name (exact, lower case).
    pub fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Number or text.
    pub fn kind(self) -> FieldKind {
        match self {
            Field::RfmSegment
            | Field::AbcClass
            | Field::Tier
            | Field::Gender
            | Field::Region
            | Field::City
            | Field::Language => FieldKind::Text,
            _ => FieldKind::Number,
        }
    }

    /// Whether a duration (`90d`) is accepted as its value (day counts).
    pub fn takes_duration(self) -> bool {
        matches!(self, Field::LastOrderDays | Field::FirstOrderDays)
    }
}

/// The functions of the language.
pub const FUNCTIONS: [&str; 4] = ["consent", "has_tag", "bought", "channel"];

/// Consent channels.
pub const CONSENT_CHANNELS: [&str; 4] = ["email", "sms", "wechat", "webhook"];

/// Consent topics.
pub const CONSENT_TOPICS: [&str; 2] = ["newsletter", "promotions"];

/// What `bought(...)` asks for: a purchase of a product matching every given
/// filter, within the last `within_days` days when given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BoughtFilter {
    /// Product category (exact).
    pub category: Option<String>,
    /// Product brand (exact).
    pub brand: Option<String>,
    /// Product SKU (exact).
    pub sku: Option<String>,
    /// Only purchases of the last N days (the as-of day counts as day 0).
    pub within_days: Option<i64>,
}

/// A condition answered by a set of members the store computes once per
/// expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Atom {
    /// Current consent to marketing on `channel` about `topic`.
    Consent {
        /// `email`, `sms`, `wechat`, `webhook`.
        channel: String,
        /// `newsletter`, `promotions`.
        topic: String,
    },
    /// The member has this tag (set by hand or by a rule), compared ignoring case.
    HasTag {
        /// The tag, lower case.
        tag: String,
    },
    /// A purchase matching the filter.
    Bought(BoughtFilter),
    /// A purchase in this sales channel.
    Channel {
        /// The channel name.
        channel: String,
    },
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Literal {
    /// A number (durations are numbers of days).
    Number(f64),
    /// A text.
    Text(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Expr {
    /// Both.
    And {
        /// Left.
        left: Box<Expr>,
        /// Right.
        right: Box<Expr>,
    },
    /// Either.
    Or {
        /// Left.
        left: Box<Expr>,
        /// Right.
        right: Box<Expr>,
    },
    /// Negation.
    Not {
        /// The negated expression.
        expr: Box<Expr>,
    },
    /// `field OP value`.
    Cmp {
        /// Field.
        field: Field,
        /// Operator.
        cmp: CmpOp,
        /// Value.
        value: Literal,
    },
    /// `field [not] in (values)`.
    In {
        /// Field.
        field: Field,
        /// Values.
        values: Vec<Literal>,
        /// `not in`.
        negated: bool,
    },
    /// A function call answered by a member set.
    Atom {
        /// The condition.
        atom: Atom,
    },
}

impl Expr {
    /// The atoms of the expression, each once, sorted.
    pub fn atoms(&self) -> Vec<Atom> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Atom { atom } = e {
                out.push(atom.clone());
            }
        });
        out.sort();
        out.dedup();
        out
    }

    /// The fields the expression reads, each once, sorted.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Expr::Cmp { field, .. } | Expr::In { field, .. } => out.push(*field),
            _ => {}
        });
        out.sort();
        out.dedup();
        out
    }

    fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::And { left, right } | Expr::Or { left, right } => {
                left.walk(f);
                right.walk(f);
            }
            Expr::Not { expr } => expr.walk(f),
            _ => {}
        }
    }
}

/// A tag as stored: trimmed, lower case, 1 to 64 characters of letters,
/// digits, `-`, `_`, `:`, `.` or spaces. `Err` says the accepted form.
pub fn normalise_tag(tag: &str) -> Result<String, String> {
    let t = tag.trim().to_lowercase();
    let ok = !t.is_empty()
        && t.chars().count() <= 64
        && t.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '));
    if ok {
        Ok(t)
    } else {
        Err(TAG_FORM.to_string())
    }
}

/// The accepted form of a tag, as error messages say it.
pub const TAG_FORM: &str = "expected 1 to 64 letters, digits, spaces or - _ : .";

/// Edit distance (Levenshtein) of two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` by edit distance (ignoring case), if close
/// enough to be what was meant: at most 2 edits, or a third of the word.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
