//! The business settings every command shares, in two layers (as ripgrep's
//! `LowArgs` / `HiArgs`): [`RawSettings`] is what clap parses (text, from the
//! command line or the environment), [`Settings`] the validated types the
//! commands take. `main` turns one into the other once, before any command
//! runs, so a bad value is refused once, with the accepted form, whatever the
//! command.

use std::fmt;

use anyhow::{bail, Result};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::Currency;

/// The settings as given on the command line or in the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct RawSettings {
    /// Calling code for national phone numbers (86 for China).
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_DEFAULT_COUNTRY",
        default_value = "86"
    )]
    pub default_country: String,
    /// Currency when a file does not name one.
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_DEFAULT_CURRENCY",
        default_value = "CNY"
    )]
    pub default_currency: String,
    /// Business time zone: local times without an offset, and day/week/month buckets.
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_TIMEZONE",
        default_value = "Asia/Shanghai"
    )]
    pub timezone: String,
    /// A phone or e-mail seen with more than this many distinct identifiers of one
    /// kind is marked shared and stops joining records.
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_SHARED_LIMIT",
        default_value = "5"
    )]
    pub shared_limit: String,
}

/// A telephone calling code: 1 to 3 digits (`86`, `1`, `852`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingCode(String);

impl CallingCode {
    /// Parse a calling code; a leading `+` is allowed.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.trim().trim_start_matches('+');
        (!digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(digits.to_string()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The validated settings the commands take.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Calling code for national phone numbers.
    pub default_country: CallingCode,
    /// Currency when a file does not name one.
    pub default_currency: Currency,
    /// Business time zone.
    pub timezone: chrono_tz::Tz,
    /// Distinct identifiers of one kind past which a phone or e-mail is shared (at least 1).
    pub shared_limit: u32,
}

impl Settings {
    /// Validate the raw settings. Each error names the option, its environment
    /// variable, the value and the accepted form.
    pub fn from_raw(raw: &RawSettings) -> Result<Self> {
        let Some(default_country) = CallingCode::parse(&raw.default_country) else {
            bail!(
                "--default-country (TOUCHPOINT_DEFAULT_COUNTRY) {:?}: expected a calling code of 1 to 3 digits such as 86 or 1",
                raw.default_country
            );
        };
        let Ok(default_currency) = Currency::parse(&raw.default_currency) else {
            bail!(
                "--default-currency (TOUCHPOINT_DEFAULT_CURRENCY) {:?}: expected a three-letter ISO 4217 code such as CNY or USD",
                raw.default_currency
            );
        };
        let Ok(timezone) = raw.timezone.trim().parse::<chrono_tz::Tz>() else {
            bail!(
                "--timezone (TOUCHPOINT_TIMEZONE) {:?}: expected an IANA time zone such as Asia/Shanghai, Europe/Berlin or UTC",
                raw.timezone
            );
        };
        let shared_limit = match raw.shared_limit.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => bail!(
                "--shared-limit (TOUCHPOINT_SHARED_LIMIT) {:?}: expected a whole number of at least 1, such as 5",
                raw.shared_limit
            ),
        };
        Ok(Self {
            default_country,
            default_currency,
            timezone,
            shared_limit,
        })
    }

    /// Identity resolution settings.
    pub fn identity(&self) -> IdentityConfig {
        IdentityConfig {
            shared_limit: self.shared_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            default_country: "86".into(),
            default_currency: "CNY".into(),
            timezone: "Asia/Shanghai".into(),
            shared_limit: "5".into(),
        }
    }

    #[test]
    fn defaults_validate_and_bad_values_say_the_accepted_form() {
        let s = Settings::from_raw(&raw()).unwrap();
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(s.default_country.as_str(), "86");
        assert_eq!(s.default_currency.as_str(), "CNY");
        assert_eq!(s.identity().shared_limit, 5);
        let bad = |f: fn(&mut RawSettings)| {
            let mut r = raw();
            f(&mut r);
            Settings::from_raw(&r).unwrap_err().to_string()
        };
        let e = bad(|r| r.timezone = "Mars/Olympus".into());
        assert!(
            e.contains("\"Mars/Olympus\"") && e.contains("Asia/Shanghai"),
            "{e}"
        );
        let e = bad(|r| r.default_country = "0086x".into());
        assert!(e.contains("1 to 3 digits"), "{e}");
        let e = bad(|r| r.default_currency = "yuan".into());
        assert!(e.contains("ISO 4217"), "{e}");
        let e = bad(|r| r.shared_limit = "0".into());
        assert!(e.contains("at least 1"), "{e}");
        assert_eq!(
            CallingCode::parse("+1").map(|c| c.to_string()),
            Some("1".into())
        );
    }
}
