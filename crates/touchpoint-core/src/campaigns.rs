//! Campaign files: parsing and validation (no I/O), message templates, the
//! control-group draw and the lift statistics of the campaign report.
//!
//! A campaign file is TOML (docs/campaigns.md has an example of each
//! trigger):
//!
//! ```toml
//! name = "birthday"
//! channel = "email"            # or "webhook", "sms", "wechat" (then a [webhook],
//!                              # [sms] or [wechat] table: the gateway)
//! topic = "promotions"         # the consent topic checked before sending
//! control_percent = 10         # share of eligible members held out
//! conversion_days = 14         # purchase window of the report
//! coupon_definition = 3        # optional: a coupon issued per send
//!
//! [audience]
//! segment = "vip"              # a saved segment, or:
//! # expression = 'tier = "Gold"'
//!
//! [trigger]
//! kind = "birthday"
//! days_before = 3
//!
//! [window]
//! start_hour = 9
//! end_hour = 21
//!
//! [cap]
//! messages = 3
//! days = 7
//!
//! [message]
//! subject = "Happy birthday, {{name}}"
//! body = "Your gift: {{coupon}}. You have {{points}} points ({{tier}})."
//! ```
//!
//! Every error names the field (and the line of the file, where known) and
//! the accepted form.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar::{self, Calendar};
use crate::segments::{self, Expr};

/// The member fields a template may use.
pub const TEMPLATE_FIELDS: [&str; 5] = ["name", "member_id", "points", "tier", "coupon"];

/// The fields a trigger adds to [`TEMPLATE_FIELDS`], by trigger kind.
pub fn trigger_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "birthday" => &["birthday"],
        "holiday" => &["holiday", "holiday_date"],
        "order_placed" => &["order_id", "order_net"],
        "win_back" => &["days_since_order", "last_order_date"],
        "points_expiring" => &["expiring_points", "expires_on"],
        "tier_upgrade" => &["previous_tier"],
        _ => &[],
    }
}

/// The consent topics a campaign may name (the profile module's).
pub const TOPICS: [&str; 2] = ["newsletter", "promotions"];

/// A campaign file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct CampaignError {
    /// The line of the file, from 1, where known.
    pub line: Option<usize>,
    /// The field (`message.body`, `trigger.days_before`).
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

fn err(line: Option<usize>, field: &str, message: impl Into<String>) -> CampaignError {
    CampaignError {
        line,
        field: field.to_string(),
        message: message.into(),
    }
}

/// Who a campaign is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Audience {
    /// A saved segment, by name.
    Segment(String),
    /// An expression of the segment language.
    Expression(String, Expr),
}

/// When a campaign sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// Members who entered the audience since the last run (on the first
    /// run: every member in it).
    SegmentEntry,
    /// Members whose birthday is within `days_before` days (the day itself
    /// included); once a year.
    Birthday {
        /// Days before the birthday the message may go.
        days_before: u32,
    },
    /// Each order placed (read from the outbox) with a net amount of at least
    /// `min_net`, `delay_minutes` after it was recorded.
    OrderPlaced {
        /// The delay in minutes.
        delay_minutes: i64,
        /// The least net amount (gross less refunds), minor units; 0: any.
        min_net: i64,
    },
    /// Members `days_before` days (or fewer) before a holiday of the
    /// calendar; once per holiday date.
    Holiday {
        /// Holiday names of the calendar.
        holidays: Vec<String>,
        /// Days before the holiday the message may go.
        days_before: u32,
        /// The calendar: built in, with the file's `[calendar]` applied.
        #[serde(skip)]
        calendar: Calendar,
    },
    /// Members whose last purchase is `days` or more days ago; once per
    /// lapse (a purchase after it starts a new one).
    WinBack {
        /// Days without a purchase.
        days: u32,
    },
    /// Members with available points in lots expiring within `days` days,
    /// at least `min_points` of them; once per first expiring lot.
    PointsExpiring {
        /// Days ahead.
        days: u32,
        /// The least points expiring.
        min_points: i64,
    },
    /// A member moved to a higher tier (the loyalty tier history), from the
    /// campaign's creation on; optionally only to the named tiers.
    TierUpgrade {
        /// Only upgrades to these tiers (empty: any higher tier).
        to: Vec<String>,
    },
    /// Once, at a local time of the business time zone.
    Once {
        /// The local time.
        at: NaiveDateTime,
    },
}

/// Where messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// E-mail over SMTP.
    Email,
    /// A signed JSON POST (Standard Webhooks).
    Webhook,
    /// A text message, POSTed (signed like a webhook) to the brand's SMS
    /// gateway, to the member's phone.
    Sms,
    /// A WeChat template message, POSTed (signed like a webhook) to the
    /// brand's WeChat gateway, to the member's openid or unionid.
    Wechat,
}

impl Channel {
    /// The consent channel name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
            Channel::Wechat => "wechat",
        }
    }
}

/// Where an SMS campaign's messages go: the brand's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The gateway endpoint and its signing secret.
    pub gateway: WebhookTarget,
    /// The gateway's template code, when the provider needs one (passed on).
    pub template: Option<String>,
}

/// A WeChat template message: the brand's gateway, the template, and the
/// template's fields rendered per member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatSettings {
    /// The gateway endpoint and its signing secret.
    pub gateway: WebhookTarget,
    /// The template's id in the official account.
    pub template_id: String,
    /// The app id of the official account or mini-program (passed on).
    pub app_id: Option<String>,
    /// A sales channel whose platform buyer ids are the openids of `app_id`
    /// (`platform_user_id` `CHANNEL:OPENID`); without it, or for a member
    /// without one, the unionid is sent and the gateway maps it.
    pub openid_channel: Option<String>,
    /// The page the message opens (`url` of the template-message API).
    pub link: Option<String>,
    /// The mini-program page it opens: (appid, pagepath).
    pub miniprogram: Option<(String, String)>,
    /// The template's data fields: key and template (rendered per member).
    pub data: Vec<(String, String)>,
}

/// A webhook endpoint with its signing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://HOST:PORT/PATH`.
    pub url: String,
    /// `whsec_` followed by the base64 key.
    pub secret: String,
}

/// Frequency caps: how many marketing messages a member may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cap {
    /// Per member per channel per local calendar day and ISO week (Monday
    /// to Sunday) of the business time zone (the default: 1 a day, 3 a week).
    Calendar {
        /// Messages per local day.
        per_day: u32,
        /// Messages per local week.
        per_week: u32,
    },
    /// The earlier form: at most `messages` per member in the last `days`
    /// days, across every channel (`[cap] messages = 3, days = 7`).
    Rolling {
        /// Messages.
        messages: u32,
        /// Days.
        days: u32,
    },
}

impl Default for Cap {
    fn default() -> Self {
        Cap::Calendar {
            per_day: 1,
            per_week: 3,
        }
    }
}

impl Cap {
    /// The windows to check at `now` (UTC ms): (start UTC ms, limit, per
    /// channel). A message fits when, for each window, the member's
    /// messages counted from its start are fewer than its limit.
    pub fn windows(&self, now: i64, tz: chrono_tz::Tz) -> Vec<(i64, u32, bool)> {
        match *self {
            Cap::Rolling { messages, days } => {
                vec![(now - i64::from(days) * 86_400_000, messages, false)]
            }
            Cap::Calendar { per_day, per_week } => {
                let local = chrono::DateTime::from_timestamp_millis(now)
                    .unwrap_or_default()
                    .with_timezone(&tz);
                let today = local.date_naive();
                let monday =
                    today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
                let start = |d: NaiveDate| {
                    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                        .earliest()
                        .map_or(now, |t| t.timestamp_millis())
                };
                vec![
                    (start(today), per_day, true),
                    (start(monday), per_week, true),
                ]
            }
        }
    }
}

/// What is decided for one candidate, in this order: no consent (marketing
/// only), no address, over the cap (marketing only: it waits), the control
/// group, else queued.
pub fn decide(
    transactional: bool,
    consent: bool,
    has_address: bool,
    under_cap: bool,
    control: bool,
) -> (&'static str, Option<&'static str>) {
    if !transactional && !consent {
        ("skipped", Some("no_consent"))
    } else if !has_address {
        ("skipped", Some("no_address"))
    } else if !transactional && !under_cap {
        ("waiting", Some("capped"))
    } else if control {
        ("control", None)
    } else {
        ("queued", None)
    }
}

/// A validated campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Name: 1 to 64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// Who it is for.
    pub audience: Audience,
    /// When it sends.
    pub trigger: Trigger,
    /// Local hours `[start, end)` in which messages are decided and sent.
    pub window: (u32, u32),
    /// Subject template.
    pub subject: String,
    /// Body template.
    pub body: String,
    /// The channel.
    pub channel: Channel,
    /// The endpoint, for the webhook channel.
    pub webhook: Option<WebhookTarget>,
    /// The gateway, for the SMS channel.
    pub sms: Option<SmsSettings>,
    /// The gateway and template, for the WeChat channel.
    pub wechat: Option<WechatSettings>,
    /// The consent topic.
    pub topic: String,
    /// A coupon definition issued per send.
    pub coupon_definition: Option<i64>,
    /// The frequency cap (not applied to transactional campaigns).
    pub cap: Cap,
    /// Higher first: when a member has room for fewer messages than are
    /// due, the higher priority is decided first (default 0).
    pub priority: i32,
    /// How long a capped message waits for a free slot before it lapses,
    /// minutes (default 3 days).
    pub expires_after_minutes: i64,
    /// A transactional message (an order confirmation): sent without
    /// marketing consent and not capped, nor counted in caps.
    pub transactional: bool,
    /// Coupon definitions chosen by the order's product categories (the
    /// first rule matching a line), for `order_placed`; else
    /// `coupon_definition`.
    pub coupon_by_category: Vec<(String, i64)>,
    /// Percent of eligible members held out as the control group.
    pub control_percent: u32,
    /// Days after a send in which a purchase counts as a conversion.
    pub conversion_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    channel: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    control_percent: Option<i64>,
    #[serde(default)]
    conversion_days: Option<i64>,
    #[serde(default)]
    coupon_definition: Option<i64>,
    audience: RawAudience,
    trigger: RawTrigger,
    #[serde(default)]
    window: Option<RawWindow>,
    #[serde(default)]
    cap: Option<RawCap>,
    #[serde(default)]
    message: Option<RawMessage>,
    #[serde(default)]
    webhook: Option<RawWebhook>,
    #[serde(default)]
    sms: Option<RawSms>,
    #[serde(default)]
    wechat: Option<RawWechat>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    expires_after: Option<String>,
    #[serde(default)]
    transactional: Option<bool>,
    #[serde(default)]
    calendar: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    coupon_by_category: Option<Vec<RawCategoryCoupon>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategoryCoupon {
    category: String,
    coupon_definition: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    segment: Option<String>,
    expression: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    kind: String,
    days_before: Option<i64>,
    delay: Option<String>,
    at: Option<String>,
    min_net: Option<i64>,
    holidays: Option<Vec<String>>,
    days: Option<i64>,
    min_points: Option<i64>,
    to: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start_hour: i64,
    end_hour: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    messages: Option<i64>,
    days: Option<i64>,
    per_day: Option<i64>,
    per_week: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    #[serde(default)]
    subject: Option<toml::Spanned<String>>,
    body: toml::Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    url: String,
    secret: String,
    #[serde(default)]
    template: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWechat {
    url: String,
    secret: String,
    template_id: String,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    openid_channel: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    miniprogram: Option<RawMiniprogram>,
    #[serde(default)]
    data: BTreeMap<String, toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMiniprogram {
    appid: String,
    pagepath: String,
}

/// A gateway's url and secret, checked: `http://` or `https://`, and a
/// Standard Webhooks secret. `table` names the file's table in errors.
fn target(table: &str, url: String, secret: String) -> Result<WebhookTarget, CampaignError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        return Err(err(
            None,
            &format!("{table}.url"),
            format!("{url:?}: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH"),
        ));
    }
    if !secret.starts_with("whsec_") || secret.len() < 12 {
        return Err(err(
            None,
            &format!("{table}.secret"),
            "expected whsec_ followed by a base64 key (Standard Webhooks)",
        ));
    }
    Ok(WebhookTarget { url, secret })
}

fn line_of(src: &str, at: usize) -> usize {
    src[..at.min(src.len())].matches('\n').count() + 1
}

/// The fields a template uses, with their byte offsets, or the first
/// malformed placeholder.
fn placeholders(t: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(s) = t[i..].find("{{") {
        let start = i + s;
        match t[start + 2..].find("}}") {
            Some(e) => {
                out.push((start, t[start + 2..start + 2 + e].trim().to_string()));
                i = start + 2 + e + 2;
            }
            None => {
                out.push((start, t[start + 2..].to_string()));
                break;
            }
        }
    }
    out
}

fn check_template(
    src: &str,
    field: &str,
    value: &toml::Spanned<String>,
    has_coupon: bool,
    extra: &[&str],
) -> Result<(), CampaignError> {
    let raw = &src[value.span()];
    for (at, name) in placeholders(value.get_ref()) {
        // Where the placeholder is in the file: found in the raw text (which
        // differs from the value only by quotes and escapes).
        let needle = format!("{{{{{name}");
        let line = raw
            .find(&needle)
            .or_else(|| raw.find("{{"))
            .map(|o| line_of(src, value.span().start + o))
            .or_else(|| Some(line_of(src, value.span().start + at)));
        if !TEMPLATE_FIELDS.contains(&name.as_str()) && !extra.contains(&name.as_str()) {
            let all = TEMPLATE_FIELDS.iter().chain(extra.iter()).copied();
            let hint = segments::closest(&name, all.clone())
                .map(|s| format!(" (did you mean {{{{{s}}}}}?)"))
                .unwrap_or_default();
            return Err(err(
                line,
                field,
                format!(
                    "unknown field {{{{{name}}}}}{hint}; accepted: {}",
                    all.map(|f| format!("{{{{{f}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if name == "coupon" && !has_coupon {
            return Err(err(
                line,
                field,
                "{{coupon}} needs a coupon: set coupon_definition = ID (touchpoint coupons list)",
            ));
        }
    }
    Ok(())
}

/// A delay: `30m`, `2h`, `3d` (minutes).
pub fn parse_delay(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0)?;
    match unit {
        "m" => Some(n),
        "h" => n.checked_mul(60),
        "d" => n.checked_mul(1440),
        _ => None,
    }
}

/// A campaign name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Campaign {
    /// Parse and validate a campaign file.
    pub fn parse(src: &str) -> Result<Campaign, CampaignError> {
        let raw: RawFile = toml::from_str(src).map_err(|e| {
            let line = e.span().map(|s| line_of(src, s.start));
            err(line, "file", e.message().trim().to_string())
        })?;
        if !valid_name(&raw.name) {
            return Err(err(
                None,
                "name",
                format!("{:?}: expected 1 to 64 letters, digits, - _ or .", raw.name),
            ));
        }
        let channel = match raw.channel.as_str() {
            "email" => Channel::Email,
            "webhook" => Channel::Webhook,
            "sms" => Channel::Sms,
            "wechat" => Channel::Wechat,
            other => {
                return Err(err(
                    None,
                    "channel",
                    format!("{other:?}: expected \"email\", \"webhook\", \"sms\" or \"wechat\""),
                ))
            }
        };
        // Each channel's table, and no other channel's.
        for (table, given, wanted) in [
            ("webhook", raw.webhook.is_some(), Channel::Webhook),
            ("sms", raw.sms.is_some(), Channel::Sms),
            ("wechat", raw.wechat.is_some(), Channel::Wechat),
        ] {
            if given && channel != wanted {
                return Err(err(
                    None,
                    table,
                    format!("a [{table}] table is only for channel = \"{table}\""),
                ));
            }
            if !given && channel == wanted {
                let more = match wanted {
                    Channel::Wechat => " and template_id",
                    _ => "",
                };
                return Err(err(
                    None,
                    table,
                    format!(
                        "channel = \"{table}\" needs a [{table}] table with url and secret{more}"
                    ),
                ));
            }
        }
        let webhook = match raw.webhook {
            Some(w) => Some(target("webhook", w.url, w.secret)?),
            None => None,
        };
        let sms = match raw.sms {
            Some(w) => Some(SmsSettings {
                gateway: target("sms", w.url, w.secret)?,
                template: w.template.filter(|t| !t.trim().is_empty()),
            }),
            None => None,
        };
        let topic = raw.topic.unwrap_or_else(|| "promotions".into());
        if !TOPICS.contains(&topic.as_str()) {
            return Err(err(
                None,
                "topic",
                format!("{topic:?}: expected \"newsletter\" or \"promotions\""),
            ));
        }
        let audience = match (raw.audience.segment, raw.audience.expression) {
            (Some(s), None) => Audience::Segment(s),
            (None, Some(e)) => {
                let expr = segments::parse(e.get_ref()).map_err(|pe| {
                    err(
                        Some(line_of(src, e.span().start) + pe.line - 1),
                        "audience.expression",
                        pe.to_string(),
                    )
                })?;
                Audience::Expression(e.into_inner(), expr)
            }
            _ => {
                return Err(err(
                    None,
                    "audience",
                    "expected exactly one of segment = \"NAME\" (a saved segment) or expression = \"...\" (the segment language)",
                ))
            }
        };
        let t = raw.trigger;
        let allowed: &[&str] = match t.kind.as_str() {
            "segment_entry" => &[],
            "birthday" => &["days_before"],
            "order_placed" => &["delay", "min_net"],
            "once" => &["at"],
            "holiday" => &["holidays", "days_before"],
            "win_back" => &["days"],
            "points_expiring" => &["days", "min_points"],
            "tier_upgrade" => &["to"],
            other => {
                return Err(err(
                    None,
                    "trigger.kind",
                    format!("{other:?}: expected one of \"segment_entry\", \"birthday\", \"order_placed\", \"once\", \"holiday\", \"win_back\", \"points_expiring\", \"tier_upgrade\""),
                ))
            }
        };
        for (name, present) in [
            ("days_before", t.days_before.is_some()),
            ("delay", t.delay.is_some()),
            ("at", t.at.is_some()),
            ("min_net", t.min_net.is_some()),
            ("holidays", t.holidays.is_some()),
            ("days", t.days.is_some()),
            ("min_points", t.min_points.is_some()),
            ("to", t.to.is_some()),
        ] {
            if present && !allowed.contains(&name) {
                return Err(err(
                    None,
                    &format!("trigger.{name}"),
                    format!(
                        "not a setting of trigger kind {:?} (its settings: {})",
                        t.kind,
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                ));
            }
        }
        let days_before = || -> Result<u32, CampaignError> {
            let d = t.days_before.unwrap_or(0);
            if !(0..=60).contains(&d) {
                return Err(err(
                    None,
                    "trigger.days_before",
                    format!("{d}: expected a whole number of days from 0 to 60"),
                ));
            }
            Ok(d as u32)
        };
        if raw.calendar.is_some() && t.kind != "holiday" {
            return Err(err(
                None,
                "calendar",
                "a [calendar] table is only for trigger kind \"holiday\"",
            ));
        }
        let trigger = match t.kind.as_str() {
            "segment_entry" => Trigger::SegmentEntry,
            "birthday" => Trigger::Birthday {
                days_before: days_before()?,
            },
            "order_placed" => {
                let d = t.delay.as_deref().unwrap_or("0m");
                let Some(delay_minutes) = parse_delay(d) else {
                    return Err(err(
                        None,
                        "trigger.delay",
                        format!("{d:?}: expected minutes, hours or days such as \"30m\", \"2h\" or \"3d\""),
                    ));
                };
                let min_net = t.min_net.unwrap_or(0);
                if min_net < 0 {
                    return Err(err(
                        None,
                        "trigger.min_net",
                        format!("{min_net}: expected the least net amount in minor units (fen, cents), 0 or more"),
                    ));
                }
                Trigger::OrderPlaced {
                    delay_minutes,
                    min_net,
                }
            }
            "once" => {
                let Some(a) = t.at else {
                    return Err(err(
                        None,
                        "trigger.at",
                        "kind = \"once\" needs at = \"YYYY-MM-DD HH:MM\" (local time)",
                    ));
                };
                let Ok(at) = NaiveDateTime::parse_from_str(a.trim(), "%Y-%m-%d %H:%M") else {
                    return Err(err(
                        None,
                        "trigger.at",
                        format!("{a:?}: expected a local time \"YYYY-MM-DD HH:MM\""),
                    ));
                };
                Trigger::Once { at }
            }
            "holiday" => {
                let mut overrides = BTreeMap::new();
                for (name, dates) in raw.calendar.clone().unwrap_or_default() {
                    let mut v = Vec::new();
                    for d in &dates {
                        let Ok(day) = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") else {
                            return Err(err(
                                None,
                                &format!("calendar.{name}"),
                                format!("{d:?}: expected dates \"YYYY-MM-DD\""),
                            ));
                        };
                        v.push(day);
                    }
                    overrides.insert(name, v);
                }
                let cal = Calendar::with_overrides(&overrides);
                let holidays = t.holidays.clone().unwrap_or_default();
                if holidays.is_empty() {
                    return Err(err(
                        None,
                        "trigger.holidays",
                        format!(
                            "kind = \"holiday\" needs holidays = [\"double11\", ...]; built in: {}",
                            calendar::builtin_names().join(", ")
                        ),
                    ));
                }
                for h in &holidays {
                    if !cal.dates.contains_key(h) {
                        let names: Vec<&str> = cal.dates.keys().map(String::as_str).collect();
                        let hint = segments::closest(h, names.iter().copied())
                            .map(|s| format!(" (did you mean {s:?}?)"))
                            .unwrap_or_default();
                        return Err(err(
                            None,
                            "trigger.holidays",
                            format!(
                                "{h:?} is not in the calendar{hint}; known: {} (add dates in a [calendar] table)",
                                names.join(", ")
                            ),
                        ));
                    }
                }
                Trigger::Holiday {
                    holidays,
                    days_before: days_before()?,
                    calendar: cal,
                }
            }
            "win_back" => {
                let d = t.days.unwrap_or(90);
                if !(1..=3650).contains(&d) {
                    return Err(err(
                        None,
                        "trigger.days",
                        format!("{d}: expected days without a purchase, 1 to 3650"),
                    ));
                }
                Trigger::WinBack { days: d as u32 }
            }
            "points_expiring" => {
                let d = t.days.unwrap_or(30);
                if !(1..=365).contains(&d) {
                    return Err(err(
                        None,
                        "trigger.days",
                        format!("{d}: expected days ahead, 1 to 365"),
                    ));
                }
                let min_points = t.min_points.unwrap_or(1);
                if min_points < 1 {
                    return Err(err(
                        None,
                        "trigger.min_points",
                        format!("{min_points}: expected 1 or more points"),
                    ));
                }
                Trigger::PointsExpiring {
                    days: d as u32,
                    min_points,
                }
            }
            _ => Trigger::TierUpgrade {
                to: t.to.clone().unwrap_or_default(),
            },
        };
        let kind = t.kind.clone();
        let priority = raw.priority.unwrap_or(0);
        if !(-1000..=1000).contains(&priority) {
            return Err(err(
                None,
                "priority",
                format!(
                    "{priority}: expected a whole number from -1000 to 1000 (higher goes first)"
                ),
            ));
        }
        let ea = raw.expires_after.as_deref().unwrap_or("3d");
        let Some(expires_after_minutes) = parse_delay(ea).filter(|m| *m >= 1) else {
            return Err(err(
                None,
                "expires_after",
                format!("{ea:?}: expected how long a capped message may wait, such as \"12h\" or \"3d\""),
            ));
        };
        let transactional = raw.transactional.unwrap_or(false);
        let mut coupon_by_category = Vec::new();
        for r in raw.coupon_by_category.unwrap_or_default() {
            if r.coupon_definition < 1 || r.category.trim().is_empty() {
                return Err(err(
                    None,
                    "coupon_by_category",
                    "expected category = \"TEXT\" and coupon_definition = ID (a coupon definition)",
                ));
            }
            coupon_by_category.push((r.category, r.coupon_definition));
        }
        if !coupon_by_category.is_empty() && kind != "order_placed" {
            return Err(err(
                None,
                "coupon_by_category",
                "only for trigger kind \"order_placed\" (the order's categories choose the coupon)",
            ));
        }
        let window = match raw.window {
            None => (0, 24),
            Some(w) => {
                if !(0..24).contains(&w.start_hour)
                    || !(1..=24).contains(&w.end_hour)
                    || w.start_hour >= w.end_hour
                {
                    return Err(err(
                        None,
                        "window",
                        format!(
                            "start_hour = {}, end_hour = {}: expected local hours with 0 <= start_hour < end_hour <= 24",
                            w.start_hour, w.end_hour
                        ),
                    ));
                }
                (w.start_hour as u32, w.end_hour as u32)
            }
        };
        let cap = match raw.cap {
            None => Cap::default(),
            Some(RawCap {
                messages: None,
                days: None,
                per_day,
                per_week,
            }) => {
                let d = per_day.unwrap_or(1);
                let w = per_week.unwrap_or(3);
                if !(1..=100).contains(&d) || !(1..=700).contains(&w) {
                    return Err(err(
                        None,
                        "cap",
                        format!("per_day = {d}, per_week = {w}: expected 1 to 100 a day and 1 to 700 a week"),
                    ));
                }
                Cap::Calendar {
                    per_day: d as u32,
                    per_week: w as u32,
                }
            }
            Some(RawCap {
                messages: Some(m),
                days: Some(dd),
                per_day: None,
                per_week: None,
            }) => {
                if !(1..=100).contains(&m) || !(1..=365).contains(&dd) {
                    return Err(err(
                        None,
                        "cap",
                        format!(
                            "messages = {m}, days = {dd}: expected 1 to 100 messages per 1 to 365 days"
                        ),
                    ));
                }
                Cap::Rolling {
                    messages: m as u32,
                    days: dd as u32,
                }
            }
            Some(_) => {
                return Err(err(
                    None,
                    "cap",
                    "expected per_day and/or per_week (per local day and week, per channel), or both messages and days (rolling, across channels)",
                ))
            }
        };
        let control_percent = raw.control_percent.unwrap_or(10);
        if !(0..=90).contains(&control_percent) {
            return Err(err(
                None,
                "control_percent",
                format!("{control_percent}: expected a whole percent from 0 to 90"),
            ));
        }
        let conversion_days = raw.conversion_days.unwrap_or(14);
        if !(1..=365).contains(&conversion_days) {
            return Err(err(
                None,
                "conversion_days",
                format!("{conversion_days}: expected 1 to 365 days"),
            ));
        }
        if let Some(id) = raw.coupon_definition {
            if id < 1 {
                return Err(err(
                    None,
                    "coupon_definition",
                    format!("{id}: expected the id of a coupon definition"),
                ));
            }
        }
        let has_coupon = raw.coupon_definition.is_some() || !coupon_by_category.is_empty();
        let extra = trigger_fields(&kind);
        let (subject, body) = match raw.message {
            Some(m) => {
                if let Some(subject) = &m.subject {
                    check_template(src, "message.subject", subject, has_coupon, extra)?;
                }
                check_template(src, "message.body", &m.body, has_coupon, extra)?;
                let subject_at = m
                    .subject
                    .as_ref()
                    .map_or(m.body.span().start, |s| s.span().start);
                let subject = m.subject.map(toml::Spanned::into_inner);
                if channel == Channel::Email
                    && subject.as_deref().is_none_or(|s| s.trim().is_empty())
                {
                    return Err(err(
                        Some(line_of(src, subject_at)),
                        "message.subject",
                        "an e-mail needs a subject",
                    ));
                }
                (subject.unwrap_or_default(), m.body.into_inner())
            }
            None if channel == Channel::Wechat => (String::new(), String::new()),
            None => {
                return Err(err(
                    None,
                    "message",
                    format!(
                    "channel = \"{}\" needs a [message] table with body (and subject for e-mail)",
                    channel.name()
                ),
                ))
            }
        };
        let wechat = match raw.wechat {
            None => None,
            Some(w) => {
                let gateway = target("wechat", w.url, w.secret)?;
                let template_id = w.template_id.trim().to_string();
                if template_id.is_empty() {
                    return Err(err(
                        None,
                        "wechat.template_id",
                        "expected the template's id in the official account",
                    ));
                }
                if w.data.is_empty() {
                    return Err(err(
                        None,
                        "wechat.data",
                        "expected a [wechat.data] table: each template key and its text, e.g. first = \"Hello {{name}}\"",
                    ));
                }
                let mut data = Vec::with_capacity(w.data.len());
                for (k, v) in w.data {
                    check_template(src, &format!("wechat.data.{k}"), &v, has_coupon, extra)?;
                    data.push((k, v.into_inner()));
                }
                if let Some(l) = &w.link {
                    if !(l.starts_with("http://") || l.starts_with("https://")) {
                        return Err(err(
                            None,
                            "wechat.link",
                            format!("{l:?}: expected an http:// or https:// page"),
                        ));
                    }
                }
                let nonempty = |o: Option<String>| o.filter(|s| !s.trim().is_empty());
                Some(WechatSettings {
                    gateway,
                    template_id,
                    app_id: nonempty(w.app_id),
                    openid_channel: nonempty(w.openid_channel),
                    link: nonempty(w.link),
                    miniprogram: w.miniprogram.map(|m| (m.appid, m.pagepath)),
                    data,
                })
            }
        };
        Ok(Campaign {
            name: raw.name,
            audience,
            trigger,
            window,
            subject,
            body,
            channel,
            webhook,
            sms,
            wechat,
            topic,
            coupon_definition: raw.coupon_definition,
            cap,
            priority: priority as i32,
            expires_after_minutes,
            transactional,
            coupon_by_category,
            control_percent: control_percent as u32,
            conversion_days: conversion_days as u32,
        })
    }

    /// The HTTP endpoint a send of this campaign is POSTed to (webhook,
    /// SMS and WeChat gateways), signed per Standard Webhooks.
    pub fn http_target(&self) -> Option<&WebhookTarget> {
        match self.channel {
            Channel::Email => None,
            Channel::Webhook => self.webhook.as_ref(),
            Channel::Sms => self.sms.as_ref().map(|s| &s.gateway),
            Channel::Wechat => self.wechat.as_ref().map(|w| &w.gateway),
        }
    }

    /// Whether a local hour is inside the send window.
    pub fn in_window(&self, local_hour: u32) -> bool {
        local_hour >= self.window.0 && local_hour < self.window.1
    }

    /// Whether a member is in this campaign's control group: a fixed share,
    /// decided by SHA-256 of `campaign:member` (so the same member is always
    /// on the same side of the same campaign, and independent across
    /// campaigns).
    pub fn is_control(&self, member_id: i64) -> bool {
        is_control(&self.name, member_id, self.control_percent)
    }
}

/// See [`Campaign::is_control`].
pub fn is_control(campaign: &str, member_id: i64, percent: u32) -> bool {
    let h = Sha256::digest(format!("{campaign}:{member_id}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    n % 10_000 < u64::from(percent) * 100
}

/// The values of a message's fields for one member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageFields {
    /// The member's name (empty when unknown).
    pub name: String,
    /// `M-123`.
    pub member_id: String,
    /// Points available.
    pub points: i64,
    /// The tier (empty when none).
    pub tier: String,
    /// The coupon code (empty when the campaign has none).
    pub coupon: String,
}

/// Fill a template checked by [`Campaign::parse`].
pub fn render(template: &str, f: &MessageFields) -> String {
    render_with(template, f, &[])
}

/// [`render`] with the trigger's fields ([`trigger_fields`]) as well.
pub fn render_with(template: &str, f: &MessageFields, extra: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(s) = rest.find("{{") {
        out.push_str(&rest[..s]);
        let Some(e) = rest[s + 2..].find("}}") else {
            out.push_str(&rest[s..]);
            return out;
        };
        let name = rest[s + 2..s + 2 + e].trim();
        match name {
            "name" => out.push_str(&f.name),
            "member_id" => out.push_str(&f.member_id),
            "points" => out.push_str(&f.points.to_string()),
            "tier" => out.push_str(&f.tier),
            "coupon" => out.push_str(&f.coupon),
            other if extra.iter().any(|(k, _)| *k == other) => {
                if let Some((_, v)) = extra.iter().find(|(k, _)| *k == other) {
                    out.push_str(v);
                }
            }
            other => {
                out.push_str("{{");
                out.push_str(other);
                out.push_str("}}");
            }
        }
        rest = &rest[s + 2 + e + 2..];
    }
    out.push_str(rest);
    out
}

/// Treatment against control: the share who bought, the difference and its
/// interval (two-proportion, normal approximation, unpooled standard error:
/// `d ± z * sqrt(pt(1-pt)/nt + pc(1-pc)/nc)` with z = 1.96 for 95%).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    /// Treated members (sent).
    pub treated: u64,
    /// Treated members who bought within the window.
    pub treated_converted: u64,
    /// Control members.
    pub control: u64,
    /// Control members who bought within the window.
    pub control_converted: u64,
    /// Treated conversion rate.
    pub treated_rate: Option<f64>,
    /// Control conversion rate.
    pub control_rate: Option<f64>,
    /// Treated rate less control rate (absolute, a fraction).
    pub lift: Option<f64>,
    /// The 95% interval of the lift.
    pub ci95: Option<(f64, f64)>,
}

/// See [`Lift`]. Rates are `None` for an empty group, the lift and
/// interval when either group is empty.
pub fn lift(treated: u64, treated_converted: u64, control: u64, control_converted: u64) -> Lift {
    let rate = |x: u64, n: u64| (n > 0).then(|| x as f64 / n as f64);
    let pt = rate(treated_converted, treated);
    let pc = rate(control_converted, control);
    let (l, ci) = match (pt, pc) {
        (Some(a), Some(b)) => {
            let se = (a * (1.0 - a) / treated as f64 + b * (1.0 - b) / control as f64).sqrt();
            let d = a - b;
            (Some(d), Some((d - 1.96 * se, d + 1.96 * se)))
        }
        _ => (None, None),
    };
    Lift {
        treated,
        treated_converted,
        control,
        control_converted,
        treated_rate: pt,
        control_rate: pc,
        lift: l,
        ci95: ci,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "bday"
channel = "email"
coupon_definition = 1

[audience]
expression = 'tier = "Gold"'

[trigger]
kind = "birthday"
days_before = 3

[window]
start_hour = 9
end_hour = 21

[message]
subject = "Happy birthday, {{name}}"
body = """
Dear {{ name }},
your gift: {{coupon}}; you have {{points}} points ({{tier}}).
"""
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Campaign::parse(GOOD).unwrap();
        assert_eq!(c.trigger, Trigger::Birthday { days_before: 3 });
        assert_eq!(c.window, (9, 21));
        assert_eq!(
            c.cap,
            Cap::Calendar {
                per_day: 1,
                per_week: 3
            }
        );
        assert_eq!((c.priority, c.expires_after_minutes), (0, 3 * 1440));
        assert_eq!(c.control_percent, 10);
        assert_eq!(c.topic, "promotions");
        assert!(matches!(c.audience, Audience::Expression(..)));
        let f = MessageFields {
            name: "Li".into(),
            member_id: "M-7".into(),
            points: 120,
            tier: "Gold".into(),
            coupon: "ABC".into(),
        };
        assert_eq!(render(&c.subject, &f), "Happy birthday, Li");
        assert!(
            render(&c.body, &f).contains("Dear Li,\nyour gift: ABC; you have 120 points (Gold).")
        );
    }

    #[test]
    fn an_unknown_template_field_is_refused_with_its_line() {
        let bad = GOOD.replace("{{points}}", "{{pionts}}");
        let e = Campaign::parse(&bad).unwrap_err();
        assert_eq!(e.line, Some(20), "{e}");
        assert_eq!(e.field, "message.body");
        let text = e.to_string();
        assert!(
            text.contains("{{pionts}}") && text.contains("did you mean {{points}}"),
            "{text}"
        );
        let bad = GOOD.replace("birthday, {{name}}", "birthday, {{nme}}");
        assert_eq!(Campaign::parse(&bad).unwrap_err().line, Some(17));
    }

    #[test]
    fn bad_settings_name_the_field_and_the_accepted_form() {
        let e = Campaign::parse(&GOOD.replace("days_before = 3", "delay = \"2h\"")).unwrap_err();
        assert_eq!(e.field, "trigger.delay");
        let e = Campaign::parse(&GOOD.replace("\"birthday\"", "\"birthdays\"")).unwrap_err();
        assert!(e.to_string().contains("segment_entry"), "{e}");
        let e = Campaign::parse(&GOOD.replace("end_hour = 21", "end_hour = 8")).unwrap_err();
        assert_eq!(e.field, "window");
        let e = Campaign::parse(&GOOD.replace("coupon_definition = 1\n", "")).unwrap_err();
        assert!(e.to_string().contains("coupon_definition"), "{e}");
        let e =
            Campaign::parse(&GOOD.replace("channel = \"email\"", "channel = \"fax\"")).unwrap_err();
        assert_eq!(e.field, "channel");
        assert!(e.to_string().contains("\"sms\" or \"wechat\""), "{e}");
        let e =
            Campaign::parse(&GOOD.replace("channel = \"email\"", "channel = \"sms\"")).unwrap_err();
        assert_eq!(e.field, "sms", "an SMS campaign needs its gateway: {e}");
        let e = Campaign::parse(&GOOD.replace("[window]", "[window]\nstart = 1")).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        let e = Campaign::parse(&GOOD.replace("tier = \"Gold\"", "teir = \"Gold\"")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("audience.expression", Some(6)));
        let once = GOOD.replace(
            "kind = \"birthday\"\ndays_before = 3",
            "kind = \"once\"\nat = \"2025-12-01 10:00\"",
        );
        assert!(matches!(
            Campaign::parse(&once).unwrap().trigger,
            Trigger::Once { .. }
        ));
        let order = GOOD.replace(
            "kind = \"birthday\"\ndays_before = 3",
            "kind = \"order_placed\"\ndelay = \"2h\"",
        );
        assert_eq!(
            Campaign::parse(&order).unwrap().trigger,
            Trigger::OrderPlaced {
                delay_minutes: 120,
                min_net: 0
            }
        );
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn sms_and_wechat_campaigns_take_their_gateway_table() {
        let sms = GOOD.replace("channel = \"email\"", "channel = \"sms\"").replace(
            "[message]",
            &format!("[sms]\nurl = \"https://sms.gw.test/send\"\nsecret = \"{SECRET}\"\ntemplate = \"SMS_1\"\n\n[message]"),
        );
        let c = Campaign::parse(&sms).unwrap();
        assert_eq!(c.channel, Channel::Sms);
        let g = c.sms.as_ref().unwrap();
        assert_eq!(g.template.as_deref(), Some("SMS_1"));
        assert_eq!(c.http_target().unwrap().url, "https://sms.gw.test/send");
        // An SMS needs no subject; a bad gateway url names the field.
        let no_subject = sms.replace("subject = \"Happy birthday, {{name}}\"\n", "");
        assert_eq!(Campaign::parse(&no_subject).unwrap().subject, "");
        let e = Campaign::parse(&sms.replace("https://sms.gw.test/send", "ftp://x")).unwrap_err();
        assert_eq!(e.field, "sms.url");
        let e = Campaign::parse(&sms.replace(SECRET, "s3cret")).unwrap_err();
        assert_eq!(e.field, "sms.secret");
        // A table of another channel is refused.
        let e =
            Campaign::parse(&sms.replace("channel = \"sms\"", "channel = \"email\"")).unwrap_err();
        assert_eq!(e.field, "sms", "{e}");

        let (head, _) = GOOD.split_once("[message]").unwrap();
        let wechat = format!(
            "{}[wechat]\nurl = \"http://127.0.0.1:9/wx\"\nsecret = \"{SECRET}\"\ntemplate_id = \"TM01\"\n\
             app_id = \"wx123\"\nopenid_channel = \"wechat\"\nlink = \"https://brand.test/p\"\n\
             miniprogram = {{ appid = \"wx123\", pagepath = \"pages/gift\" }}\n\n\
             [wechat.data]\nfirst = \"Happy birthday, {{{{name}}}}\"\nkeyword1 = \"{{{{coupon}}}}\"\n",
            head.replace("channel = \"email\"", "channel = \"wechat\"")
        );
        let c = Campaign::parse(&wechat).unwrap();
        let w = c.wechat.as_ref().unwrap();
        assert_eq!(
            (
                w.template_id.as_str(),
                w.app_id.as_deref(),
                w.openid_channel.as_deref()
            ),
            ("TM01", Some("wx123"), Some("wechat"))
        );
        assert_eq!(
            w.miniprogram,
            Some(("wx123".to_string(), "pages/gift".to_string()))
        );
        assert_eq!(
            w.data,
            vec![
                ("first".to_string(), "Happy birthday, {{name}}".to_string()),
                ("keyword1".to_string(), "{{coupon}}".to_string())
            ]
        );
        assert_eq!((c.subject.as_str(), c.body.as_str()), ("", ""));
        // The data fields are templates, checked like the message's.
        let e = Campaign::parse(&wechat.replace("{{name}}", "{{nmae}}")).unwrap_err();
        assert_eq!(e.field, "wechat.data.first");
        assert!(e.to_string().contains("did you mean {{name}}"), "{e}");
        assert!(e.line.is_some(), "{e}");
        let e = Campaign::parse(&wechat.replace("template_id = \"TM01\"", "template_id = \" \""))
            .unwrap_err();
        assert_eq!(e.field, "wechat.template_id");
        let (no_data, _) = wechat.split_once("[wechat.data]").unwrap();
        assert_eq!(Campaign::parse(no_data).unwrap_err().field, "wechat.data");
        // A webhook may now be https.
        let hook = format!(
            "{}[webhook]\nurl = \"https://gw.test/hook\"\nsecret = \"{SECRET}\"\n\n[message]\nbody = \"x\"\n",
            head.replace("channel = \"email\"", "channel = \"webhook\"")
        );
        assert_eq!(
            Campaign::parse(&hook).unwrap().http_target().unwrap().url,
            "https://gw.test/hook"
        );
        let e = Campaign::parse(&hook.replace("[message]\nbody = \"x\"\n", "")).unwrap_err();
        assert_eq!(e.field, "message");
    }

    #[test]
    fn the_control_group_is_deterministic_and_near_its_share() {
        let n = (1..=20_000).filter(|m| is_control("c", *m, 10)).count();
        // 10% of 20,000 = 2,000; binomial sd ~ 42, so +-200 is ~5 sd.
        assert!((1_800..=2_200).contains(&n), "{n}");
        assert_eq!(is_control("c", 42, 10), is_control("c", 42, 10));
        assert_eq!((1..=1000).filter(|m| is_control("c", *m, 0)).count(), 0);
    }

    #[test]
    fn lift_and_interval_match_a_hand_computation() {
        // pt = 30/100, pc = 10/100: d = 0.2, se = sqrt(.21/100 + .09/100) = sqrt(.003) = 0.0547723
        let l = lift(100, 30, 100, 10);
        let (lo, hi) = l.ci95.unwrap();
        assert!((l.lift.unwrap() - 0.2).abs() < 1e-12);
        assert!((lo - (0.2 - 1.96 * 0.003f64.sqrt())).abs() < 1e-12, "{lo}");
        assert!((hi - 0.307354).abs() < 1e-6, "{hi}");
        assert_eq!(lift(10, 1, 0, 0).lift, None);
    }

    fn with_trigger(t: &str) -> String {
        GOOD.replace("kind = \"birthday\"\ndays_before = 3", t)
    }

    #[test]
    fn the_new_triggers_parse_with_their_defaults_and_fields() {
        let c = Campaign::parse(&with_trigger("kind = \"win_back\"")).unwrap();
        assert_eq!(c.trigger, Trigger::WinBack { days: 90 });
        let c = Campaign::parse(
            &with_trigger("kind = \"points_expiring\"\ndays = 14").replace(
                "{{points}} points",
                "{{expiring_points}} points on {{expires_on}}",
            ),
        )
        .unwrap();
        assert_eq!(
            c.trigger,
            Trigger::PointsExpiring {
                days: 14,
                min_points: 1
            }
        );
        // A trigger field of another kind is refused.
        let e = Campaign::parse(
            &with_trigger("kind = \"win_back\"").replace("{{points}}", "{{expiring_points}}"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("{{days_since_order}}"), "{e}");
        let c = Campaign::parse(&format!(
            "{}\n[calendar]\nanniversary = [\"2026-09-01\"]\n",
            with_trigger(
                "kind = \"holiday\"\nholidays = [\"double11\", \"anniversary\"]\ndays_before = 2"
            )
        ))
        .unwrap();
        let Trigger::Holiday { calendar, .. } = &c.trigger else {
            panic!("{:?}", c.trigger)
        };
        assert_eq!(calendar.dates["anniversary"].len(), 1);
        let e = Campaign::parse(&with_trigger(
            "kind = \"holiday\"\nholidays = [\"doubel11\"]",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("did you mean \"double11\""), "{e}");
        let c = Campaign::parse(&with_trigger(
            "kind = \"order_placed\"\ndelay = \"1d\"\nmin_net = 100000",
        ))
        .unwrap();
        assert_eq!(
            c.trigger,
            Trigger::OrderPlaced {
                delay_minutes: 1440,
                min_net: 100_000
            }
        );
        let e = Campaign::parse(&with_trigger("kind = \"win_back\"\ndays_before = 3")).unwrap_err();
        assert_eq!(e.field, "trigger.days_before");
        let c = Campaign::parse(&format!(
            "priority = 5\nexpires_after = \"12h\"\n{}",
            with_trigger("kind = \"tier_upgrade\"\nto = [\"Gold\"]")
        ))
        .unwrap();
        assert_eq!((c.priority, c.expires_after_minutes), (5, 720));
        let legacy = GOOD.replace("[window]", "[cap]\nmessages = 2\ndays = 5\n\n[window]");
        assert_eq!(
            Campaign::parse(&legacy).unwrap().cap,
            Cap::Rolling {
                messages: 2,
                days: 5
            }
        );
    }

    #[test]
    fn caps_count_from_the_local_day_and_monday() {
        // 2025-12-03 (a Wednesday) 10:00 in Shanghai = 02:00 UTC.
        let now = 1_764_727_200_000;
        let w = Cap::default().windows(now, chrono_tz::Asia::Shanghai);
        // Local midnight of the 3rd is 2025-12-02 16:00 UTC; Monday the 1st
        // is 2025-11-30 16:00 UTC.
        assert_eq!(w[0], (1_764_691_200_000, 1, true));
        assert_eq!(w[1], (1_764_518_400_000, 3, true));
        assert_eq!(
            decide(false, true, true, false, false),
            ("waiting", Some("capped"))
        );
        assert_eq!(decide(true, false, true, false, false), ("queued", None));
        assert_eq!(
            decide(false, false, true, true, false),
            ("skipped", Some("no_consent"))
        );
    }
}
