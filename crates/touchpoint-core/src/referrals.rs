//! Member-gets-member referrals: invite codes and the referral settings.
//!
//! An invite code is 8 Crockford base32 characters of 40 random bits and a
//! check character (Luhn mod 32, the packaging-code check): short enough to
//! read aloud, checked before any lookup. The settings are their own TOML
//! file (`touchpoint referrals program FILE`), versioned in the store like
//! the loyalty program. See docs/rewards.md, "Referrals".

use chrono::{Datelike, TimeZone};
use serde::{Deserialize, Serialize};

use crate::loyalty::{check_value, value_of, ALPHABET};

/// Random characters of an invite code.
pub const INVITE_RANDOM_CHARS: usize = 8;
/// Characters of an invite code, with its check character.
pub const INVITE_LEN: usize = INVITE_RANDOM_CHARS + 1;

/// Why a typed invite code is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteCodeError {
    /// Wrong length or characters.
    #[error("not an invite code: it has {INVITE_LEN} characters of 0-9 and A-Z (no I, L, O, U)")]
    Malformed,
    /// The check character does not match: a typo.
    #[error("the invite code's check character does not match (a typo?)")]
    BadCheck,
}

/// The invite code of 5 random bytes.
pub fn invite_code_from_bytes(bytes: [u8; 5]) -> String {
    let mut acc: u64 = 0;
    for b in bytes {
        acc = acc << 8 | u64::from(b);
    }
    let mut symbols = [0u32; INVITE_RANDOM_CHARS];
    for (i, s) in symbols.iter_mut().enumerate() {
        *s = ((acc >> (5 * (INVITE_RANDOM_CHARS - 1 - i))) & 31) as u32;
    }
    let mut out = String::with_capacity(INVITE_LEN);
    for s in symbols {
        out.push(ALPHABET[s as usize] as char);
    }
    out.push(ALPHABET[check_value(&symbols) as usize] as char);
    out
}

/// A new invite code from the operating system's CSPRNG.
pub fn generate_invite_code() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 5];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    invite_code_from_bytes(bytes)
}

/// Read a typed invite code (case, look-alikes, spaces and hyphens
/// forgiven); the canonical code.
pub fn check_invite_code(input: &str) -> Result<String, InviteCodeError> {
    let mut symbols = Vec::with_capacity(INVITE_LEN);
    for c in input.trim().bytes() {
        if c == b'-' || c == b' ' {
            continue;
        }
        symbols.push(value_of(c).ok_or(InviteCodeError::Malformed)?);
    }
    if symbols.len() != INVITE_LEN {
        return Err(InviteCodeError::Malformed);
    }
    let (body, check) = symbols.split_at(INVITE_RANDOM_CHARS);
    if check_value(body) != check[0] {
        return Err(InviteCodeError::BadCheck);
    }
    Ok(symbols
        .iter()
        .map(|&v| ALPHABET[v as usize] as char)
        .collect())
}

/// The referral settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralProgram {
    /// Points for the advocate per qualified friend.
    #[serde(default)]
    pub advocate_points: i64,
    /// Points for the friend when they qualify.
    #[serde(default)]
    pub friend_points: i64,
    /// A coupon definition (by id) issued to the advocate per qualified friend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advocate_coupon: Option<i64>,
    /// A coupon definition (by id) issued to the friend when they qualify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend_coupon: Option<i64>,
    /// Advocate rewards per advocate per calendar month (business time
    /// zone); 0: no cap.
    #[serde(default)]
    pub monthly_cap: u32,
    /// Days after the friend's first paid order before it qualifies (the
    /// return window). None: the loyalty program's `pending_days` (7 with no
    /// program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_window_days: Option<u32>,
    /// Business time zone for the cap's months.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// The start of every invite link (`https://brand.example/r/`): a
    /// member's link is this followed by their code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_base: Option<String>,
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}

/// Why a referral settings file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralProgramError {
    /// Not valid TOML for the settings.
    #[error("referral settings: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("referral settings: {0}")]
    Invalid(String),
}

impl ReferralProgram {
    /// Parse and check a settings file.
    pub fn parse(body: &str) -> Result<ReferralProgram, ReferralProgramError> {
        let p: ReferralProgram =
            toml::from_str(body).map_err(|e| ReferralProgramError::Parse(e.to_string()))?;
        if p.advocate_points < 0 || p.friend_points < 0 {
            return Err(ReferralProgramError::Invalid(
                "points rewards cannot be negative".into(),
            ));
        }
        p.tz()?;
        if let Some(b) = &p.link_base {
            let ok = (b.starts_with("https://") || b.starts_with("http://"))
                && b.len() <= 200
                && !b.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(ReferralProgramError::Invalid(format!(
                    "link_base {b:?}: expected an http(s) URL without spaces, such as \"https://brand.example/r/\""
                )));
            }
        }
        Ok(p)
    }

    /// The invite link of `code` (None without `link_base`).
    pub fn link(&self, code: &str) -> Option<String> {
        self.link_base.as_ref().map(|b| format!("{b}{code}"))
    }

    /// The business time zone.
    pub fn tz(&self) -> Result<chrono_tz::Tz, ReferralProgramError> {
        self.timezone.parse().map_err(|_| {
            ReferralProgramError::Invalid(format!("unknown time zone {}", self.timezone))
        })
    }

    /// The calendar month (business time zone) of `at` (UTC ms) as
    /// `YYYY-MM`, the cap's bucket.
    pub fn month_of(&self, at: i64) -> String {
        let tz = self.tz().unwrap_or(chrono_tz::Asia::Shanghai);
        let t = tz
            .timestamp_millis_opt(at)
            .single()
            .unwrap_or_else(|| tz.timestamp_millis_opt(0).unwrap());
        format!("{:04}-{:02}", t.year(), t.month())
    }
}

/// Why an attribution was refused (recorded with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The friend is the advocate, or shares or is linked to one of the
    /// advocate's identifiers.
    SelfReferral,
    /// The friend was known before the attribution (an order or an
    /// identifier older than the code's use).
    NotNew,
}

impl RefusalReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::SelfReferral => "self_referral",
            RefusalReason::NotNew => "not_new",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes_round_trip_and_catch_typos() {
        let c = invite_code_from_bytes([1, 2, 3, 4, 5]);
        assert_eq!(c.len(), INVITE_LEN);
        assert_eq!(check_invite_code(&c.to_lowercase()).unwrap(), c);
        let mut bad: Vec<u8> = c.clone().into_bytes();
        bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            check_invite_code(std::str::from_utf8(&bad).unwrap()),
            Err(InviteCodeError::BadCheck)
        );
        assert_eq!(check_invite_code("ABC"), Err(InviteCodeError::Malformed));
        let g = generate_invite_code();
        assert_eq!(check_invite_code(&g).unwrap(), g);
    }

    #[test]
    fn settings_parse_and_month_in_business_zone() {
        let p = ReferralProgram::parse(
            "advocate_points = 500\nfriend_points = 200\nmonthly_cap = 2\ntimezone = \"Asia/Shanghai\"\n",
        )
        .unwrap();
        assert_eq!(p.monthly_cap, 2);
        // 2026-01-31 17:00 UTC is 2026-02-01 01:00 in Shanghai.
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 1, 31, 17, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(p.month_of(at), "2026-02");
        assert!(ReferralProgram::parse("advocate_points = -1").is_err());
        assert!(ReferralProgram::parse("bogus = 1").is_err());
        assert_eq!(p.link("ABC"), None);
        let l = ReferralProgram::parse("link_base = \"https://brand.example/r/\"").unwrap();
        assert_eq!(
            l.link("7K3M9Q2XH").as_deref(),
            Some("https://brand.example/r/7K3M9Q2XH")
        );
        assert!(ReferralProgram::parse("link_base = \"brand.example/r/\"").is_err());
        assert!(ReferralProgram::parse("link_base = \"https://a b/\"").is_err());
    }
}
