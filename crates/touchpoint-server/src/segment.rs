//! The Segment tracking spec, read leniently: one raw event (a JSON object) in,
//! one event to store (and what it does to identities and orders) out.
//!
//! Tolerated: explicit nulls, unknown keys, `_metadata`, `context.traits`
//! instead of `traits`, ISO-8601 or epoch timestamps, ids sent as numbers.
//! Stamped: `receivedAt`, a `timestamp` corrected for the client's clock
//! (`timestamp + (receivedAt - sentAt)`), the request IP (kept in
//! `context.ip` when the client did not set one), a `messageId` when missing,
//! the batch-level `context` merged under the event's own.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use touchpoint_core::ingest::OrderRecord;
use touchpoint_core::{ChannelName, Currency, Email, Identifier, Money, Phone};
use touchpoint_store::events::{NewEvent, NewRejected};
use touchpoint_store::profiles::{Attributes, ProfileChange, ProfileSource};

/// The event types of the spec.
pub const TYPES: [&str; 6] = ["identify", "track", "page", "screen", "group", "alias"];

/// What an accepted event does besides being stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing (behaviour only).
    None,
    /// Join these identifiers (identify, alias, and any event with both a
    /// userId and an anonymousId), and for an `identify` with profile traits
    /// apply them to the member's profile in the same unit of work; an
    /// invite code in the `referral_code` trait attributes the member to it
    /// in that unit of work too.
    Identify(Vec<Identifier>, Option<Box<ProfileChange>>, Option<String>),
    /// Write this order (`Order Completed`).
    OrderCompleted(Box<OrderRecord>),
    /// Mark an order refunded (`Order Refunded`); `None` means in full.
    OrderRefunded {
        /// The order id.
        order_id: String,
        /// The amount refunded.
        amount: Option<Money>,
    },
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The row to store.
    pub event: NewEvent,
    /// What it does.
    pub action: Action,
}

/// The result of reading one raw event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Store it.
    Accept(Box<Prepared>),
    /// Keep it in the rejected table.
    Reject(NewRejected),
}

/// What is known about the request an event came in.
#[derive(Debug, Clone)]
pub struct RequestCx<'a> {
    /// The key's source (channel).
    pub source: &'a ChannelName,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The client's address.
    pub ip: Option<String>,
    /// The batch's `context`.
    pub batch_context: Option<&'a Map<String, Value>>,
    /// The batch's `sentAt`.
    pub batch_sent_at: Option<DateTime<Utc>>,
    /// Calling code for national phone numbers.
    pub default_country: &'a str,
    /// Currency when an order does not say.
    pub default_currency: &'a Currency,
}

/// A string field: strings as they are, numbers as decimal text; null, empty and
/// other types are absent.
pub fn str_field(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time: an ISO-8601 / RFC 3339 string (an offset-less one is UTC), or a
/// number of epoch milliseconds (seconds when below 10^11); the core's rules
/// (`touchpoint_core::ingest::order::time_value`).
pub fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    touchpoint_core::ingest::order::time_value(v?, touchpoint_core::ingest::order::Offsetless::Utc)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Money from a JSON number or string, in minor units, never through a
/// float (the core's rules: `touchpoint_core::ingest::order::money_value`).
pub fn money(v: Option<&Value>) -> Option<Money> {
    touchpoint_core::ingest::order::money_value(v?)
}

/// A random id in the UUID v4 text form.
pub fn new_message_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = touchpoint_store::keys::hex(&b);
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        (b[8] & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    )
}

fn obj<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Map<String, Value>> {
    m.get(k).and_then(Value::as_object)
}

/// A profile trait: a text of 1 to 200 characters without control
/// characters; anything else is left out (lenient reading).
fn trait_text(v: Option<&Value>) -> Option<String> {
    str_field(v).filter(|s| s.chars().count() <= 200 && !s.chars().any(char::is_control))
}

/// The profile change of an `identify` call's traits (`traits` or
/// `context.traits`): `name` (or `firstName` and `lastName`), `gender`,
/// `birthday` (a date `YYYY-MM-DD` or a date-time starting with one),
/// `region` (or `address.state`), `city` (or `address.city`), `language`
/// (or `locale`). `None` when it sets nothing. The choice is dated by the
/// event's time and names its messageId.
pub fn profile_traits(
    ev: &Map<String, Value>,
    occurred: DateTime<Utc>,
    message_id: &str,
) -> Option<ProfileChange> {
    let context = obj(ev, "context");
    let t = obj(ev, "traits").or_else(|| context.and_then(|c| obj(c, "traits")))?;
    let address = obj(t, "address");
    let name = trait_text(t.get("name")).or_else(|| {
        let parts: Vec<String> = ["firstName", "lastName"]
            .iter()
            .filter_map(|k| trait_text(t.get(*k)))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let birthday = str_field(t.get("birthday")).and_then(|b| {
        b.get(..10)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    });
    let attributes = Attributes {
        name,
        gender: trait_text(t.get("gender")),
        birthday,
        region: trait_text(t.get("region"))
            .or_else(|| address.and_then(|a| trait_text(a.get("state")))),
        city: trait_text(t.get("city")).or_else(|| address.and_then(|a| trait_text(a.get("city")))),
        language: trait_text(t.get("language")).or_else(|| trait_text(t.get("locale"))),
    };
    if attributes.is_empty() {
        return None;
    }
    let mut change = ProfileChange::new(ProfileSource::Identify);
    change.detail = Some(message_id.to_string());
    change.at = Some(occurred.timestamp_millis());
    change.attributes = attributes;
    Some(change)
}

/// The `referral_code` trait (`traits` or `context.traits`) when it is an
/// invite code (canonical form); anything else is left out (lenient
/// reading, as for the profile traits: the event is stored all the same).
pub fn referral_trait(ev: &Map<String, Value>) -> Option<String> {
    let context = obj(ev, "context");
    let t = obj(ev, "traits").or_else(|| context.and_then(|c| obj(c, "traits")))?;
    let code = trait_text(t.get("referral_code"))?;
    touchpoint_core::referrals::check_invite_code(&code).ok()
}

/// Identifiers in traits and `context.externalIds`.
fn identity_fields(ev: &Map<String, Value>, cx: &RequestCx<'_>, out: &mut Vec<Identifier>) {
    let context = obj(ev, "context");
    let traits = obj(ev, "traits").or_else(|| context.and_then(|c| obj(c, "traits")));
    if let Some(t) = traits {
        if let Some(e) = str_field(t.get("email")).and_then(|s| Email::parse(&s).ok()) {
            out.push(Identifier::email(&e));
        }
        if let Some(p) =
            str_field(t.get("phone")).and_then(|s| Phone::parse(&s, cx.default_country).ok())
        {
            out.push(Identifier::phone(&p));
        }
    }
    let ext = context
        .and_then(|c| c.get("externalIds"))
        .and_then(Value::as_array);
    for x in ext.into_iter().flatten() {
        let Some(x) = x.as_object() else { continue };
        let (Some(id), Some(kind)) = (str_field(x.get("id")), str_field(x.get("type"))) else {
            continue;
        };
        if let Some(i) = external_identifier(&kind, &id, cx.default_country) {
            out.push(i);
        }
    }
}

/// An `externalIds` entry as an identifier: `email`, `phone`, `member_no`,
/// `wechat_unionid` (or `unionid`), and `CHANNEL_buyer_id` / `CHANNEL_user_id`
/// (a platform user id on that channel, e.g. `tmall_buyer_id`). Other types
/// are not identifiers Touchpoint joins on.
pub fn external_identifier(kind: &str, id: &str, default_country: &str) -> Option<Identifier> {
    let kind = kind.trim().to_ascii_lowercase();
    match kind.as_str() {
        "email" => Email::parse(id).ok().map(|e| Identifier::email(&e)),
        "phone" => Phone::parse(id, default_country)
            .ok()
            .map(|p| Identifier::phone(&p)),
        "member_no" | "member_id" => Identifier::member_no(id).ok(),
        "wechat_unionid" | "unionid" => Identifier::wechat_unionid(id).ok(),
        _ => {
            let channel = kind
                .strip_suffix("_buyer_id")
                .or_else(|| kind.strip_suffix("_user_id"))?;
            let channel = ChannelName::parse(channel).ok()?;
            Identifier::platform_user_id(&channel, id).ok()
        }
    }
}

fn push_unique(v: &mut Vec<Identifier>, i: Identifier) {
    if !v.contains(&i) {
        v.push(i);
    }
}

/// Read one raw event. `kind` is the type from the URL (`/v1/track`), else the
/// event's own `type`.
pub fn prepare(mut ev: Map<String, Value>, kind: Option<&str>, cx: &RequestCx<'_>) -> Outcome {
    let received = cx.received_at;
    let source = cx.source.as_str();
    ev.remove("writeKey");
    let message_id = str_field(ev.get("messageId"));
    let reject = |ev: Map<String, Value>, message_id: Option<String>, reason: String| {
        Outcome::Reject(NewRejected {
            source: source.to_string(),
            message_id,
            reason,
            received_at: received.timestamp_millis(),
            payload: Value::Object(ev).to_string(),
        })
    };
    let kind = match kind
        .map(str::to_string)
        .or_else(|| str_field(ev.get("type")))
    {
        Some(k) if TYPES.contains(&k.to_ascii_lowercase().as_str()) => k.to_ascii_lowercase(),
        Some(k) => {
            return reject(
                ev,
                message_id,
                format!("unknown type {k:?}: expected one of {}", TYPES.join(", ")),
            )
        }
        None => {
            return reject(
                ev,
                message_id,
                format!("no type: expected one of {}", TYPES.join(", ")),
            )
        }
    };
    let user_id = str_field(ev.get("userId"));
    let anonymous_id = str_field(ev.get("anonymousId"));
    let previous_id = str_field(ev.get("previousId"));
    if kind == "alias" {
        if previous_id.is_none() || user_id.is_none() {
            return reject(
                ev,
                message_id,
                "an alias needs both previousId and userId".into(),
            );
        }
    } else if user_id.is_none() && anonymous_id.is_none() {
        return reject(
            ev,
            message_id,
            format!("a {kind} event needs a userId or an anonymousId"),
        );
    }
    let message_id = message_id.unwrap_or_else(new_message_id);

    // Context: the batch's under the event's own; the request IP unless the client set one.
    let mut context = match ev.remove("context") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(bc) = cx.batch_context {
        for (k, v) in bc {
            context.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if str_field(context.get("ip")).is_none() {
        if let Some(ip) = &cx.ip {
            context.insert("ip".into(), Value::String(ip.clone()));
        }
    }
    let ip = str_field(context.get("ip"));
    // The campaign (`context.campaign`, UTM parameters): kept in columns for
    // first-touch attribution (docs/acquisition.md).
    let campaign_of = |k: &str| {
        obj(&context, "campaign")
            .and_then(|c| str_field(c.get(k)))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let campaign = campaign_of("name").map(|c| {
        c.chars()
            .take(touchpoint_core::ingest::spend::MAX_CAMPAIGN_LEN)
            .collect()
    });
    let campaign_source = campaign_of("source").map(|s| s.to_lowercase());

    // Time: the client's timestamp corrected by the skew between its clock and ours.
    let client_ts =
        parse_time(ev.get("timestamp")).or_else(|| parse_time(ev.get("originalTimestamp")));
    let sent_at = parse_time(ev.get("sentAt")).or(cx.batch_sent_at);
    let occurred = match (client_ts, sent_at) {
        (Some(ts), Some(sent)) => ts + (received - sent),
        (Some(ts), None) => ts,
        (None, _) => received,
    };
    if let Some(ts) = client_ts {
        ev.entry("originalTimestamp")
            .or_insert_with(|| Value::String(iso(ts)));
    }
    ev.insert("type".into(), Value::String(kind.clone()));
    ev.insert("messageId".into(), Value::String(message_id.clone()));
    ev.insert("timestamp".into(), Value::String(iso(occurred)));
    ev.insert("receivedAt".into(), Value::String(iso(received)));
    ev.insert("context".into(), Value::Object(context));

    let anon_key = anonymous_id
        .as_deref()
        .and_then(|a| Identifier::anonymous_id(source, a).ok());
    let member_no = user_id
        .as_deref()
        .and_then(|u| Identifier::member_no(u).ok());
    let name = match kind.as_str() {
        "track" => str_field(ev.get("event")),
        "page" | "screen" => str_field(ev.get("name")),
        _ => None,
    };

    // Any event that carries both ids says they are the same person (Segment
    // links userId and anonymousId on every call, not only on identify).
    let link = match (&member_no, &anon_key) {
        (Some(m), Some(a)) => Action::Identify(vec![m.clone(), a.clone()], None, None),
        _ => Action::None,
    };
    let action = match kind.as_str() {
        "identify" => {
            let mut ids = Vec::new();
            if let Some(m) = &member_no {
                ids.push(m.clone());
            }
            if let Some(a) = &anon_key {
                ids.push(a.clone());
            }
            let mut more = Vec::new();
            identity_fields(&ev, cx, &mut more);
            for i in more {
                push_unique(&mut ids, i);
            }
            let profile = profile_traits(&ev, occurred, &message_id).map(Box::new);
            Action::Identify(ids, profile, referral_trait(&ev))
        }
        "alias" => {
            let mut ids = Vec::new();
            if let Some(p) = previous_id
                .as_deref()
                .and_then(|p| Identifier::anonymous_id(source, p).ok())
            {
                ids.push(p);
            }
            if let Some(m) = &member_no {
                push_unique(&mut ids, m.clone());
            }
            Action::Identify(ids, None, None)
        }
        "track" => {
            let event_name = name.as_deref().unwrap_or("").to_ascii_lowercase();
            let props = obj(&ev, "properties");
            match event_name.as_str() {
                "order completed" => {
                    let Some(order_id) = props.and_then(|p| str_field(p.get("order_id"))) else {
                        return reject(
                            ev,
                            Some(message_id),
                            "an Order Completed event needs properties.order_id".into(),
                        );
                    };
                    let mut ids = Vec::new();
                    if let Some(m) = &member_no {
                        ids.push(m.clone());
                    }
                    if let Some(a) = &anon_key {
                        ids.push(a.clone());
                    }
                    let mut more = Vec::new();
                    identity_fields(&ev, cx, &mut more);
                    for i in more {
                        push_unique(&mut ids, i);
                    }
                    match order_record(cx, props, order_id, occurred, ids, &ev) {
                        Ok(r) => Action::OrderCompleted(Box::new(r)),
                        Err(reason) => return reject(ev, Some(message_id), reason),
                    }
                }
                "order refunded" => {
                    let Some(order_id) = props.and_then(|p| str_field(p.get("order_id"))) else {
                        return reject(
                            ev,
                            Some(message_id),
                            "an Order Refunded event needs properties.order_id".into(),
                        );
                    };
                    let amount = props.and_then(|p| {
                        money(p.get("total"))
                            .or_else(|| money(p.get("revenue")))
                            .or_else(|| money(p.get("amount")))
                    });
                    Action::OrderRefunded { order_id, amount }
                }
                _ => link,
            }
        }
        _ => link,
    };

    Outcome::Accept(Box::new(Prepared {
        event: NewEvent {
            source: source.to_string(),
            message_id,
            kind,
            name,
            user_id: member_no.map(|m| m.value().to_string()),
            anon_key: anon_key.map(|a| a.value().to_string()),
            occurred_at: occurred.timestamp_millis(),
            received_at: received.timestamp_millis(),
            ip,
            payload: Value::Object(ev).to_string(),
            campaign,
            campaign_source,
        },
        action,
    }))
}

/// An `Order Completed` event as an order of the source's channel (Segment
/// e-commerce spec: order_id, total or revenue, discount, currency, products
/// with sku or product_id, name, price, quantity, category, brand), through
/// the one order normaliser of the core. A time without an offset is UTC,
/// the Segment convention.
fn order_record(
    cx: &RequestCx<'_>,
    props: Option<&Map<String, Value>>,
    order_id: String,
    at: DateTime<Utc>,
    identifiers: Vec<Identifier>,
    ev: &Map<String, Value>,
) -> Result<OrderRecord, String> {
    use touchpoint_core::ingest::order::{
        normalise_order, CustomerInput, LineInput, NormaliseOptions, Offsetless, OrderInput,
    };
    let empty = Map::new();
    let p = props.unwrap_or(&empty);
    let lines = p
        .get("products")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .enumerate()
        .map(|(i, item)| LineInput {
            sku: ["sku", "product_id", "id", "name"]
                .iter()
                .find_map(|k| {
                    item.get(*k)
                        .filter(|v| str_field(Some(v)).is_some())
                        .cloned()
                })
                .or_else(|| Some(Value::String(format!("line-{}", i + 1)))),
            quantity: item.get("quantity").cloned(),
            unit_price: Some(item.get("price").cloned().unwrap_or(Value::from(0))),
            unit_cost: None,
            discount: None,
            name: str_field(item.get("name")),
            brand: str_field(item.get("brand")),
            category: str_field(item.get("category")),
        })
        .collect();
    let total = p
        .get("total")
        .filter(|v| !v.is_null())
        .or_else(|| p.get("revenue").filter(|v| !v.is_null()))
        .cloned();
    let context = obj(ev, "context");
    let traits = obj(ev, "traits").or_else(|| context.and_then(|c| obj(c, "traits")));
    let input = OrderInput {
        channel: cx.source.as_str().to_string(),
        order_id: Some(Value::String(order_id)),
        ordered_at: Some(Value::from(at.timestamp_millis())),
        // An order that completed was paid when it completed.
        paid_at: Some(Value::from(at.timestamp_millis())),
        status: None,
        currency: str_field(p.get("currency")),
        order_discount: p.get("discount").cloned(),
        total,
        refunded: None,
        customer: CustomerInput {
            identifiers,
            name: traits.and_then(|t| str_field(t.get("name"))),
            ..CustomerInput::default()
        },
        lines,
        allow_total_only: true,
        coupon: p.get("coupon").cloned(),
    };
    let opts = NormaliseOptions {
        offsetless: Offsetless::Utc,
        default_currency: cx.default_currency.clone(),
        default_country: cx.default_country.to_string(),
    };
    normalise_order(input, &opts).map_err(|e| format!("properties.{e}"))
}
