//! Durations and rates as people type them: `--horizon 12months`,
//! `--discount-rate 12.68%`.
//!
//! A duration is a number with an optional unit: `365d`, `52w`, `12m`,
//! `12months`, `1y`, `39` (a plain number counts in the fit's `--unit`).
//! Lengths in days: a day is 1, a week 7, a month 365.25 / 12 = 30.4375
//! (the same month as `--unit month`), a year 365.25, so `12m` and `1y`
//! are the same duration, `52w` is 364 days and `365d` is 365 days.
//!
//! A rate is annual: `0.1268` or `12.68%` (12.68% a year), converted to the
//! fit's unit by compounding: `(1 + rate)^(days per unit / 365.25) - 1`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TimeUnit;

/// The forms [`Duration::parse`] accepts, for error messages.
pub const DURATION_FORMS: &str = "a number with a unit: 365d, 52w, 12m, 12months, 1y (d/day/days, \
     w/wk/week/weeks, m/mo/month/months = 30.4375 days, y/yr/year/years = 365.25 days), \
     or a plain number counted in --unit";

/// The forms [`AnnualRate::parse`] accepts, for error messages.
pub const RATE_FORMS: &str =
    "an annual rate as a fraction or a percentage: 0.1268 or 12.68% (12.68% a year)";

/// The unit written after a duration's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationUnit {
    /// Days.
    Day,
    /// Weeks of 7 days.
    Week,
    /// Months of 30.4375 days.
    Month,
    /// Years of 365.25 days.
    Year,
}

impl DurationUnit {
    /// Length in days.
    pub fn days(self) -> f64 {
        match self {
            DurationUnit::Day => 1.0,
            DurationUnit::Week => 7.0,
            DurationUnit::Month => 365.25 / 12.0,
            DurationUnit::Year => 365.25,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "d" | "day" | "days" => DurationUnit::Day,
            "w" | "wk" | "wks" | "week" | "weeks" => DurationUnit::Week,
            "m" | "mo" | "mon" | "mons" | "month" | "months" => DurationUnit::Month,
            "y" | "yr" | "yrs" | "year" | "years" => DurationUnit::Year,
            _ => return None,
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Day => "d",
            DurationUnit::Week => "w",
            DurationUnit::Month => "m",
            DurationUnit::Year => "y",
        }
    }
}

/// A refused duration or rate, with the forms that are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{got:?} is not {what}; expected {expected}")]
pub struct ParseDurationError {
    /// What was given.
    pub got: String,
    /// What it should have been ("a duration", "a positive duration", ...).
    pub what: &'static str,
    /// The accepted forms.
    pub expected: &'static str,
}

/// A length of time as typed: a positive number, in a unit or (without one)
/// in the fit's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Duration {
    /// The number (finite, > 0).
    pub amount: f64,
    /// Its unit; `None` = the fit's `--unit`.
    pub unit: Option<DurationUnit>,
}

impl Duration {
    /// A duration in the fit's unit.
    pub fn units(amount: f64) -> Self {
        Self { amount, unit: None }
    }

    /// A duration in days.
    pub fn days(amount: f64) -> Self {
        Self {
            amount,
            unit: Some(DurationUnit::Day),
        }
    }

    /// Parse `365d`, `52w`, `12m`, `12months`, `1y`, `1.5 years`, `39`, ...
    /// (case-insensitive, spaces allowed between number and unit). Refuses
    /// zero, negative and non-finite lengths, and unknown units, with an
    /// error that lists the accepted forms.
    pub fn parse(s: &str) -> Result<Self, ParseDurationError> {
        let err = |what| ParseDurationError {
            got: s.to_string(),
            what,
            expected: DURATION_FORMS,
        };
        let t = s.trim().to_ascii_lowercase();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        if num.is_empty() {
            return Err(err("a duration"));
        }
        let amount: f64 = num.parse().map_err(|_| err("a duration"))?;
        let unit = if unit.is_empty() {
            None
        } else {
            Some(DurationUnit::parse(unit).ok_or_else(|| err("a duration"))?)
        };
        if !(amount.is_finite() && amount > 0.0) {
            return Err(err("a positive duration"));
        }
        Ok(Self { amount, unit })
    }

    /// Length in days, where a plain number counts in `unit`.
    pub fn in_days(&self, unit: TimeUnit) -> f64 {
        self.amount * self.unit.map(DurationUnit::days).unwrap_or(unit.days())
    }

    /// Length in `unit`s (e.g. `12m` in weeks is 52.18).
    pub fn in_units(&self, unit: TimeUnit) -> f64 {
        self.in_days(unit) / unit.days()
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Some(u) => write!(f, "{}{}", self.amount, u.suffix()),
            None => write!(f, "{}", self.amount),
        }
    }
}

/// An annual rate (e.g. a discount rate): 0.1268 = 12.68% a year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AnnualRate(pub f64);

impl AnnualRate {
    /// Parse `0.1268` or `12.68%` (optionally followed by `/y`, `/yr`,
    /// `/year`, ` a year`, `pa`, `p.a.`). Refuses rates of -100% or below,
    /// non-numbers, and plain numbers of 1 or more (`10` is refused: write
    /// `10%` or `0.10`), with an error that lists the accepted forms.
    pub fn parse(s: &str) -> Result<Self, ParseDurationError> {
        let err = |what| ParseDurationError {
            got: s.to_string(),
            what,
            expected: RATE_FORMS,
        };
        let mut t = s.trim().to_ascii_lowercase();
        for suffix in [
            "/year",
            "/yr",
            "/y",
            " a year",
            " per year",
            "p.a.",
            " pa",
            "pa",
        ] {
            if let Some(rest) = t.strip_suffix(suffix) {
                t = rest.trim_end().to_string();
                break;
            }
        }
        let (num, percent) = match t.strip_suffix('%') {
            Some(n) => (n.trim_end(), true),
            None => (t.as_str(), false),
        };
        let v: f64 = num.parse().map_err(|_| err("a rate"))?;
        if !v.is_finite() {
            return Err(err("a rate"));
        }
        if !percent && v.abs() >= 1.0 {
            return Err(err(
                "a plausible rate (a plain number is a fraction: 0.10 is 10% a year; write 10% for ten percent)",
            ));
        }
        let v = if percent { v / 100.0 } else { v };
        if v <= -1.0 {
            return Err(err("a rate above -100%"));
        }
        Ok(Self(v))
    }

    /// The rate per month of 30.4375 days: `(1 + rate)^(1/12) - 1`.
    pub fn monthly(self) -> f64 {
        (1.0 + self.0).powf(1.0 / 12.0) - 1.0
    }

    /// The rate per `unit`: `(1 + rate)^(days per unit / 365.25) - 1`.
    pub fn per_unit(self, unit: TimeUnit) -> f64 {
        (1.0 + self.0).powf(unit.days() / 365.25) - 1.0
    }
}

impl FromStr for AnnualRate {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for AnnualRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}% a year", self.0 * 100.0)
    }
}
