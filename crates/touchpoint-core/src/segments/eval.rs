//! Evaluation of a parsed expression for one member.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::{Atom, CmpOp, Expr, Field, Literal};
use crate::analytics::{AbcClass, Segment};

/// The per-member columns the language reads (everything but the atoms).
/// Money is in minor units here and compared in currency units (minor / 100).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemberFacts {
    /// The member.
    pub member_id: i64,
    /// RFM segment (members with a purchase).
    pub rfm_segment: Option<Segment>,
    /// Recency score.
    pub r: Option<u8>,
    /// Frequency score.
    pub f: Option<u8>,
    /// Monetary score.
    pub m: Option<u8>,
    /// Predicted value over 12 months, currency units.
    pub clv_12m: Option<f64>,
    /// Probability the member is still a customer.
    pub p_alive: Option<f64>,
    /// Days since the last purchase (as-of day counts as 0).
    pub last_order_days: Option<i64>,
    /// Days since the first purchase.
    pub first_order_days: Option<i64>,
    /// Purchase orders.
    pub orders: i64,
    /// Net spend, minor units.
    pub net_spend: i64,
    /// ABC class.
    pub abc_class: Option<AbcClass>,
    /// Loyalty tier.
    pub tier: Option<String>,
    /// Points available.
    pub points_available: i64,
    /// Gender.
    pub gender: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// Birthday.
    pub birthday: Option<NaiveDate>,
}

/// A field's value for a member; `None` when unknown (a member without a
/// purchase has no recency, a member without a birthday no age).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A number.
    Number(f64),
    /// A text.
    Text(&'a str),
}

impl MemberFacts {
    /// The value of `field` as of `as_of` (the business day used for ages).
    pub fn value(&self, field: Field, as_of: NaiveDate) -> Option<FieldValue<'_>> {
        use FieldValue::{Number as N, Text as T};
        let money = |minor: i64| minor as f64 / 100.0;
        match field {
            Field::RfmSegment => self.rfm_segment.map(|s| T(s.name())),
            Field::R => self.r.map(|x| N(f64::from(x))),
            Field::F => self.f.map(|x| N(f64::from(x))),
            Field::M => self.m.map(|x| N(f64::from(x))),
            Field::Clv12m => self.clv_12m.map(N),
            Field::PAlive => self.p_alive.map(N),
            Field::LastOrderDays => self.last_order_days.map(|d| N(d as f64)),
            Field::FirstOrderDays => self.first_order_days.map(|d| N(d as f64)),
            Field::Orders => Some(N(self.orders as f64)),
            Field::NetSpend => Some(N(money(self.net_spend))),
            Field::Aov => (self.orders > 0).then(|| N(money(self.net_spend) / self.orders as f64)),
            Field::AbcClass => self.abc_class.map(|c| T(c.name())),
            Field::Tier => self.tier.as_deref().map(T),
            Field::PointsAvailable => Some(N(self.points_available as f64)),
            Field::Gender => self.gender.as_deref().map(T),
            Field::Region => self.region.as_deref().map(T),
            Field::City => self.city.as_deref().map(T),
            Field::Language => self.language.as_deref().map(T),
            Field::Age => self
                .birthday
                .and_then(|b| age(b, as_of))
                .map(|a| N(a as f64)),
            Field::BirthdayMonth => self.birthday.map(|b| N(f64::from(b.month()))),
        }
    }
}

/// Whole years from `birthday` to `as_of` (`None` for a birthday after it).
pub fn age(birthday: NaiveDate, as_of: NaiveDate) -> Option<i32> {
    let mut years = as_of.year() - birthday.year();
    if (as_of.month(), as_of.day()) < (birthday.month(), birthday.day()) {
        years -= 1;
    }
    (years >= 0).then_some(years)
}

fn matches(v: &FieldValue<'_>, cmp: CmpOp, lit: &Literal) -> bool {
    match (v, lit) {
        (FieldValue::Number(a), Literal::Number(b)) => match cmp {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        },
        (FieldValue::Text(a), Literal::Text(b)) => {
            let eq = a.to_lowercase() == b.to_lowercase();
            match cmp {
                CmpOp::Eq => eq,
                CmpOp::Ne => !eq,
                _ => false,
            }
        }
        _ => false,
    }
}

impl Expr {
    /// Whether the member is in the segment. `atom` answers an atom for the
    /// member (the store computes each atom's member set once). A comparison
    /// of an unknown value is false, and so `not` of it is true.
    pub fn eval(
        &self,
        member: &MemberFacts,
        as_of: NaiveDate,
        atom: &dyn Fn(&Atom, i64) -> bool,
    ) -> bool {
        match self {
            Expr::And { left, right } => {
                left.eval(member, as_of, atom) && right.eval(member, as_of, atom)
            }
            Expr::Or { left, right } => {
                left.eval(member, as_of, atom) || right.eval(member, as_of, atom)
            }
            Expr::Not { expr } => !expr.eval(member, as_of, atom),
            Expr::Cmp { field, cmp, value } => member
                .value(*field, as_of)
                .is_some_and(|v| matches(&v, *cmp, value)),
            Expr::In {
                field,
                values,
                negated,
            } => match member.value(*field, as_of) {
                Some(v) => values.iter().any(|l| matches(&v, CmpOp::Eq, l)) != *negated,
                None => false,
            },
            Expr::Atom { atom: a } => atom(a, member.member_id),
        }
    }
}
