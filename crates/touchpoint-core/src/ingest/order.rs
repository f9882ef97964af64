//! The one normaliser for orders that arrive as JSON: `POST /api/orders` and
//! the Segment `Order Completed` / `Order Refunded` events build an
//! [`OrderInput`] from their own field names and call [`normalise_order`],
//! which applies the same rules as the file readers:
//!
//! - **Times** go through the file readers' parser (RFC 3339 with an offset,
//!   `2024-11-11 10:00:00`, `2024/11/11 10:00`, `2024-11-11`), or are epoch
//!   milliseconds (seconds below 10^11). A time *without an offset* is read in
//!   the zone the door names ([`Offsetless`]): files and `POST /api/orders`
//!   read it in the business time zone, the Segment door as UTC (the Segment
//!   spec's convention; its libraries always send an offset).
//! - **Money** is parsed from its decimal text, never through a float: JSON
//!   numbers are read from their shortest decimal form, and digits past the
//!   second decimal (what JavaScript arithmetic leaves, `0.30000000000000004`)
//!   are rounded half away from zero.
//! - **Statuses** use the canonical names ([`OrderStatus::parse`]); absent is
//!   `paid`. Status `refunded` without a refunded amount is a full refund, as
//!   in the canonical files. Refunds only grow: the store never lowers an
//!   order's refunded amount (see `touchpoint_store` writes).
//! - **Totals**: when a door gives the order total (Segment's `total` or
//!   `revenue`), the order discount is what makes the lines add up to it.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::ingest::{Customer, OrderLine, OrderRecord};
use crate::types::{ChannelName, Currency, Email, Identifier, Money, OrderStatus, Phone};

/// How a door reads a time written without an offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offsetless {
    /// As a local time in this zone (files, `POST /api/orders`).
    Local(chrono_tz::Tz),
    /// As UTC (the Segment door).
    Utc,
}

/// The settings a door normalises with.
#[derive(Debug, Clone)]
pub struct NormaliseOptions {
    /// How to read offset-less times.
    pub offsetless: Offsetless,
    /// Currency when the order does not name one.
    pub default_currency: Currency,
    /// Calling code for national phone numbers.
    pub default_country: String,
}

/// Who bought, as the door gives it. Raw fields are parsed and checked;
/// `identifiers` are ones the door has already resolved (a Segment `userId`).
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    /// Member number.
    pub member_no: Option<Value>,
    /// Phone, any common form.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// The buyer's id on the order's channel.
    pub platform_user_id: Option<Value>,
    /// WeChat unionid.
    pub wechat_unionid: Option<String>,
    /// Identifiers the door resolved itself, added after the fields above.
    pub identifiers: Vec<Identifier>,
    /// Name (never joins records).
    pub name: Option<String>,
}

/// One line as the door gives it.
#[derive(Debug, Clone, Default)]
pub struct LineInput {
    /// SKU (a string or a number).
    pub sku: Option<Value>,
    /// Units; absent is 1.
    pub quantity: Option<Value>,
    /// Price per unit before discount.
    pub unit_price: Option<Value>,
    /// Cost per unit.
    pub unit_cost: Option<Value>,
    /// Discount on the line.
    pub discount: Option<Value>,
    /// Product name.
    pub name: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Category.
    pub category: Option<String>,
}

/// An order as a JSON door gives it, before any check.
#[derive(Debug, Clone, Default)]
pub struct OrderInput {
    /// Channel name.
    pub channel: String,
    /// Order id (a string or a number).
    pub order_id: Option<Value>,
    /// When it was placed.
    pub ordered_at: Option<Value>,
    /// When it was paid, if known (absent stays unknown, as in the files).
    pub paid_at: Option<Value>,
    /// Status name; absent is `paid`.
    pub status: Option<String>,
    /// Currency code.
    pub currency: Option<String>,
    /// Discount on the whole order (ignored when `total` is given).
    pub order_discount: Option<Value>,
    /// The order's total after discounts; the order discount is derived from it.
    pub total: Option<Value>,
    /// Refunded so far.
    pub refunded: Option<Value>,
    /// Who bought.
    pub customer: CustomerInput,
    /// The lines.
    pub lines: Vec<LineInput>,
    /// Whether an order without lines becomes one line `order` worth the total
    /// (Segment events often carry only a total).
    pub allow_total_only: bool,
    /// Coupon codes used: a string (codes separated by commas) or a list.
    pub coupon: Option<Value>,
}

/// One problem with one field of an order sent as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's path, e.g. `lines[1].unit_price`.
    pub field: String,
    /// The value as sent (JSON text).
    pub value: String,
    /// The accepted form.
    pub expected: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: expected {}",
            self.field, self.value, self.expected
        )
    }
}

/// Every problem of one order; `Display` joins them with `; `.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderErrors(pub Vec<FieldError>);

impl std::fmt::Display for OrderErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OrderErrors {}

const TIME_FORMS: &str = "an RFC 3339 time such as 2024-11-11T10:00:00+08:00, a local time 2024-11-11 10:00:00, a date 2024-11-11, or epoch milliseconds";
const MONEY_FORMS: &str = "an amount such as 129 or 129.90 (a number or a string)";

/// A string field: strings trimmed, numbers as their decimal text; null,
/// empty and other types are absent.
pub fn str_value(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn shown(v: &Value) -> String {
    v.to_string()
}

/// A time from JSON under the door's offset rule (see the module doc).
pub fn time_value(v: &Value, offsetless: Offsetless) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return t.parse::<f64>().ok().and_then(epoch);
            }
            match offsetless {
                Offsetless::Local(tz) => super::common::parse_datetime(t, tz),
                Offsetless::Utc => super::common::parse_datetime(t, chrono_tz::UTC),
            }
            .or_else(|| fractional_seconds(t, offsetless))
        }
        Value::Number(n) => n.as_f64().and_then(epoch),
        _ => None,
    }
}

/// `2024-11-11T10:00:00.123` (fractional seconds without an offset).
fn fractional_seconds(t: &str, offsetless: Offsetless) -> Option<DateTime<Utc>> {
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return match offsetless {
                Offsetless::Utc => Some(n.and_utc()),
                Offsetless::Local(tz) => tz
                    .from_local_datetime(&n)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc)),
            };
        }
    }
    None
}

fn epoch(x: f64) -> Option<DateTime<Utc>> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let ms = if x < 1e11 { x * 1000.0 } else { x };
    Utc.timestamp_millis_opt(ms as i64).single()
}

/// Money from JSON (a number or a string), through its decimal text.
pub fn money_value(v: &Value) -> Option<Money> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    Money::parse(&text).ok().or_else(|| round_decimal(&text))
}

/// A decimal with more than two decimals, rounded half away from zero at the
/// second, without a float.
fn round_decimal(text: &str) -> Option<Money> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (int, frac) = t.split_once('.')?;
    if int.is_empty() && frac.is_empty()
        || int.len() > 15
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() <= 2
    {
        return None;
    }
    let i: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let cents: i64 = frac[..2].parse().ok()?;
    let up = frac.as_bytes()[2] >= b'5';
    let v = i * 100 + cents + i64::from(up);
    Some(Money::from_minor(if neg { -v } else { v }))
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: &str, value: String, expected: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            value,
            expected: expected.into(),
        });
    }

    fn money(&mut self, field: &str, v: Option<&Value>) -> Money {
        match v {
            None | Some(Value::Null) => Money::ZERO,
            Some(x) => money_value(x).unwrap_or_else(|| {
                self.push(field, shown(x), MONEY_FORMS);
                Money::ZERO
            }),
        }
    }

    fn opt_money(&mut self, field: &str, v: Option<&Value>) -> Option<Money> {
        match v {
            None | Some(Value::Null) => None,
            Some(x) => {
                let m = money_value(x);
                if m.is_none() {
                    self.push(field, shown(x), MONEY_FORMS);
                }
                m
            }
        }
    }
}

/// Check and normalise an order from a JSON door; every problem is reported.
pub fn normalise_order(
    input: OrderInput,
    opts: &NormaliseOptions,
) -> Result<OrderRecord, OrderErrors> {
    let mut errs = Errors(Vec::new());
    let channel = match ChannelName::parse(&input.channel) {
        Ok(c) => Some(c),
        Err(e) => {
            errs.push("channel", format!("{:?}", input.channel), e.to_string());
            None
        }
    };
    let order_id = str_value(input.order_id.as_ref());
    if order_id.is_none() {
        errs.push(
            "order_id",
            input.order_id.as_ref().map_or("null".into(), shown),
            "a non-empty string or number",
        );
    }
    let time = |errs: &mut Errors, field: &str, v: Option<&Value>| -> Option<DateTime<Utc>> {
        match v {
            None | Some(Value::Null) => None,
            Some(x) => {
                let t = time_value(x, opts.offsetless);
                if t.is_none() {
                    errs.push(field, shown(x), TIME_FORMS);
                }
                t
            }
        }
    };
    let ordered_at = time(&mut errs, "ordered_at", input.ordered_at.as_ref());
    if input.ordered_at.as_ref().is_none_or(Value::is_null) {
        errs.push("ordered_at", "null".into(), TIME_FORMS);
    }
    let paid_at = time(&mut errs, "paid_at", input.paid_at.as_ref());
    let status = match input.status.as_deref().map(str::trim) {
        None | Some("") => OrderStatus::Paid,
        Some(s) => OrderStatus::parse(s).unwrap_or_else(|e| {
            errs.push("status", format!("{s:?}"), e.to_string());
            OrderStatus::Paid
        }),
    };
    let currency = match input.currency.as_deref().map(str::trim) {
        None | Some("") => opts.default_currency.clone(),
        Some(c) => Currency::parse(c).unwrap_or_else(|e| {
            errs.push("currency", format!("{c:?}"), e.to_string());
            opts.default_currency.clone()
        }),
    };
    let ids = customer_identifiers(&input.customer, channel.as_ref(), opts, &mut errs);

    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        let sku = str_value(l.sku.as_ref()).unwrap_or_else(|| {
            errs.push(
                &f("sku"),
                l.sku.as_ref().map_or("null".into(), shown),
                "a non-empty string or number",
            );
            String::new()
        });
        let quantity = match &l.quantity {
            None | Some(Value::Null) => 1,
            Some(q) => match q.as_i64().or_else(|| str_value(Some(q))?.parse().ok()) {
                Some(n) if n >= 1 => n,
                _ => {
                    errs.push(&f("quantity"), shown(q), "a whole number, at least 1");
                    1
                }
            },
        };
        if l.unit_price.as_ref().is_none_or(Value::is_null) {
            errs.push(&f("unit_price"), "null".into(), MONEY_FORMS);
        }
        lines.push(OrderLine {
            sku,
            product_name: l.name.clone().filter(|s| !s.trim().is_empty()),
            brand: l.brand.clone().filter(|s| !s.trim().is_empty()),
            category: l.category.clone().filter(|s| !s.trim().is_empty()),
            quantity,
            unit_price: errs.money(&f("unit_price"), l.unit_price.as_ref()),
            unit_cost: errs.opt_money(&f("unit_cost"), l.unit_cost.as_ref()),
            discount: errs.money(&f("discount"), l.discount.as_ref()),
        });
    }
    let total = errs.opt_money("total", input.total.as_ref());
    if lines.is_empty() {
        match (input.allow_total_only, total) {
            (true, Some(t)) => lines.push(OrderLine {
                sku: "order".into(),
                product_name: None,
                brand: None,
                category: None,
                quantity: 1,
                unit_price: t,
                unit_cost: None,
                discount: Money::ZERO,
            }),
            (true, None) => errs.push(
                "products",
                "[]".into(),
                "at least one product, or a total (or revenue)",
            ),
            (false, _) => errs.push("lines", "[]".into(), "at least one line"),
        }
    }
    let line_sum: i64 = lines.iter().map(|l| l.net_amount().minor()).sum();
    let order_discount = match total {
        Some(t) => Money::from_minor(line_sum - t.minor()),
        None => errs.money("order_discount", input.order_discount.as_ref()),
    };
    let refunded = errs.money("refunded", input.refunded.as_ref());
    let gross = line_sum - order_discount.minor();
    if refunded.minor() < 0 || refunded.minor() > gross.max(0) {
        errs.push(
            "refunded",
            refunded.to_decimal_string(),
            format!(
                "an amount from 0 to the order's total {}",
                Money::from_minor(gross.max(0))
            ),
        );
    }
    // As in the canonical files: `refunded` without an amount is a full refund.
    let refunded = if status == OrderStatus::Refunded && refunded == Money::ZERO {
        Money::from_minor(gross.max(0))
    } else {
        refunded
    };
    let coupon_codes = match &input.coupon {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => crate::coupons::parse_codes(s),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .flat_map(crate::coupons::parse_codes)
            .collect(),
        Some(v) => {
            errs.0.push(FieldError {
                field: "coupon".into(),
                value: v.to_string(),
                expected: "a coupon code or a list of codes".into(),
            });
            Vec::new()
        }
    };
    if !errs.0.is_empty() {
        return Err(OrderErrors(errs.0));
    }
    let ordered_at = ordered_at.expect("checked above");
    let paid_at = paid_at.or(
        (status != OrderStatus::Pending && status != OrderStatus::Cancelled).then_some(ordered_at),
    );
    Ok(OrderRecord {
        channel: channel.expect("checked above"),
        order_id: order_id.expect("checked above"),
        ordered_at,
        paid_at,
        status,
        currency,
        order_discount,
        refunded,
        customer: Customer {
            identifiers: ids,
            name: input.customer.name.filter(|s| !s.trim().is_empty()),
            ..Customer::default()
        },
        lines,
        campaign: None,
        source_line: 0,
        coupon_codes,
        referral_code: None,
    })
}

fn customer_identifiers(
    c: &CustomerInput,
    channel: Option<&ChannelName>,
    opts: &NormaliseOptions,
    errs: &mut Errors,
) -> Vec<Identifier> {
    let errors_before = errs.0.len();
    let mut ids: Vec<Identifier> = Vec::new();
    let mut add = |id: Identifier| {
        if !ids.contains(&id) {
            ids.push(id);
        }
    };
    if let Some(m) = str_value(c.member_no.as_ref()) {
        match Identifier::member_no(&m) {
            Ok(id) => add(id),
            Err(e) => errs.push("customer.member_no", format!("{m:?}"), e.to_string()),
        }
    }
    if let Some(p) = c.phone.as_deref().filter(|s| !s.trim().is_empty()) {
        match Phone::parse(p, &opts.default_country) {
            Ok(p) => add(Identifier::phone(&p)),
            Err(e) => errs.push("customer.phone", format!("{p:?}"), e.to_string()),
        }
    }
    if let Some(e) = c.email.as_deref().filter(|s| !s.trim().is_empty()) {
        match Email::parse(e) {
            Ok(x) => add(Identifier::email(&x)),
            Err(x) => errs.push("customer.email", format!("{e:?}"), x.to_string()),
        }
    }
    if let (Some(p), Some(ch)) = (str_value(c.platform_user_id.as_ref()), channel) {
        match Identifier::platform_user_id(ch, &p) {
            Ok(id) => add(id),
            Err(e) => errs.push("customer.platform_user_id", format!("{p:?}"), e.to_string()),
        }
    }
    if let Some(w) = c.wechat_unionid.as_deref().filter(|s| !s.trim().is_empty()) {
        match Identifier::wechat_unionid(w) {
            Ok(id) => add(id),
            Err(e) => errs.push("customer.wechat_unionid", format!("{w:?}"), e.to_string()),
        }
    }
    for id in &c.identifiers {
        add(id.clone());
    }
    // A customer whose only identifiers were refused has its errors already.
    if ids.is_empty() && errs.0.len() == errors_before {
        errs.push(
            "customer",
            "{}".into(),
            "at least one of member_no, phone, email, platform_user_id, wechat_unionid",
        );
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> NormaliseOptions {
        NormaliseOptions {
            offsetless: Offsetless::Local(chrono_tz::Asia::Shanghai),
            default_currency: Currency::parse("CNY").unwrap(),
            default_country: "86".into(),
        }
    }

    fn input() -> OrderInput {
        OrderInput {
            channel: "web".into(),
            order_id: Some(json!(1001)),
            ordered_at: Some(json!("2024-11-11 10:00:00")),
            customer: CustomerInput {
                phone: Some("13800000001".into()),
                ..Default::default()
            },
            lines: vec![LineInput {
                sku: Some(json!("A")),
                quantity: Some(json!(2)),
                unit_price: Some(json!(10.5)),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn money_never_goes_through_a_float() {
        assert_eq!(money_value(&json!(0.1)), Some(Money::from_minor(10)));
        assert_eq!(
            money_value(&json!(0.30000000000000004)),
            Some(Money::from_minor(30))
        );
        assert_eq!(money_value(&json!("19.995")), Some(Money::from_minor(2000)));
        assert_eq!(money_value(&json!("-1.005")), Some(Money::from_minor(-101)));
        assert_eq!(
            money_value(&json!(12345678901.23)),
            Some(Money::from_minor(1_234_567_890_123))
        );
        assert_eq!(money_value(&json!("12,50 EUR")), None);
    }

    #[test]
    fn offsetless_times_follow_the_door() {
        let local = time_value(
            &json!("2024-11-11 10:00:00"),
            Offsetless::Local(chrono_tz::Asia::Shanghai),
        )
        .unwrap();
        assert_eq!(local.to_rfc3339(), "2024-11-11T02:00:00+00:00");
        let utc = time_value(&json!("2024-11-11T10:00:00.250"), Offsetless::Utc).unwrap();
        assert_eq!(utc.timestamp_millis() % 1000, 250);
        assert_eq!(
            time_value(&json!(1731290400000i64), Offsetless::Utc).unwrap(),
            time_value(&json!("2024-11-11T10:00:00+08:00"), Offsetless::Utc).unwrap()
        );
    }

    #[test]
    fn refunded_without_an_amount_is_a_full_refund() {
        let mut i = input();
        i.status = Some("refunded".into());
        let r = normalise_order(i.clone(), &opts()).unwrap();
        assert_eq!(r.refunded, Money::from_minor(2100));
        i.refunded = Some(json!("25"));
        let e = normalise_order(i, &opts()).unwrap_err();
        assert_eq!(e.0[0].field, "refunded");
    }

    #[test]
    fn every_bad_field_is_reported_with_its_accepted_form() {
        let mut i = input();
        i.ordered_at = Some(json!("yesterday"));
        i.lines[0].unit_price = Some(json!("ten"));
        i.customer.phone = Some("12".into());
        let e = normalise_order(i, &opts()).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["ordered_at", "customer.phone", "lines[0].unit_price"]
        );
        assert!(
            e.to_string().contains("expected an amount such as 129"),
            "{e}"
        );
    }

    #[test]
    fn a_total_sets_the_order_discount() {
        let mut i = input();
        i.total = Some(json!(19));
        let r = normalise_order(i, &opts()).unwrap();
        assert_eq!(r.order_discount, Money::from_minor(200));
        assert_eq!(r.gross_amount(), Money::from_minor(1900));
    }
}
