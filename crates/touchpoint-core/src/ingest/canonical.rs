//! The canonical format: Touchpoint's own CSV (or JSONL), one row per order
//! line. See `docs/import.md` for the column reference.
//!
//! Rows of one order must be adjacent (they are grouped by `order_id` as they
//! come); the order-level fields (channel, `ordered_at`, status, currency,
//! customer fields...) are read from the order's first row, the line fields
//! and identifiers from every row. The reader holds one order's rows at a time.

use std::io::{BufRead, BufReader, Read};

use super::common::{
    decode, decode_lossy, detect_encoding, encoding_hint, encoding_name, field, missing_columns,
    other_format, peek, Adjacent, CsvRows, Errs, IdSet, RawRow,
};
use super::*;
use crate::types::{Email, Phone};

/// Columns every canonical CSV file must have.
pub const REQUIRED_COLUMNS: [&str; 5] = ["order_id", "ordered_at", "sku", "quantity", "unit_price"];

/// Identifier columns: a CSV header must have at least one, and every order at
/// least one value among them.
pub const IDENTIFIER_COLUMNS: [&str; 5] = [
    "member_no",
    "phone",
    "email",
    "platform_user_id",
    "wechat_unionid",
];

/// Optional columns.
pub const OPTIONAL_COLUMNS: [&str; 18] = [
    "channel",
    "status",
    "paid_at",
    "currency",
    "product_name",
    "brand",
    "category",
    "unit_cost",
    "discount",
    "order_discount",
    "refunded",
    "name",
    "gender",
    "birthday",
    "region",
    "coupon",
    "campaign",
    "referral_code",
];

/// The accepted forms of `ordered_at` / `paid_at`.
pub const DATE_FORM: &str =
    "a date such as 2024-11-11 10:00:00, 2024-11-11T10:00:00+08:00 or 2024-11-11";

const FORMAT: &str = "canonical";

fn all_columns() -> impl Iterator<Item = &'static str> {
    REQUIRED_COLUMNS
        .into_iter()
        .chain(IDENTIFIER_COLUMNS)
        .chain(OPTIONAL_COLUMNS)
}

fn col_index(name: &str) -> usize {
    all_columns()
        .position(|c| c == name)
        .expect("a canonical column name")
}

/// One row (CSV record or JSONL line) with the canonical fields picked out.
struct CRow {
    line: u64,
    /// Trimmed non-empty values, indexed like `all_columns()`.
    vals: Vec<Option<String>>,
    /// Problems that make the row's values unusable (encoding, field count,
    /// JSON syntax).
    errors: Vec<RowError>,
    raw: Vec<String>,
}

impl CRow {
    fn get(&self, name: &str) -> Option<&str> {
        self.vals[col_index(name)].as_deref()
    }
}

/// Canonical CSV rows.
struct CsvSource<'a> {
    rows: CsvRows<'a>,
    idx: Vec<Option<usize>>,
}

impl Iterator for CsvSource<'_> {
    type Item = CRow;
    fn next(&mut self) -> Option<CRow> {
        let row: RawRow = self.rows.next()?;
        let vals = self
            .idx
            .iter()
            .map(|i| field(&row, *i).map(str::to_string))
            .collect();
        Some(CRow {
            line: row.line,
            vals,
            errors: row.errors,
            raw: row.fields,
        })
    }
}

/// Canonical JSONL rows: one object per line; blank lines are skipped.
struct JsonlSource<'a> {
    input: BufReader<Box<dyn Read + 'a>>,
    enc: Encoding,
    line: u64,
    bytes: u64,
    buf: Vec<u8>,
    finished: bool,
}

impl Iterator for JsonlSource<'_> {
    type Item = CRow;
    fn next(&mut self) -> Option<CRow> {
        let n = all_columns().count();
        loop {
            if self.finished {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            let line = self.line;
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.finished = true;
                    return None;
                }
                Ok(k) => self.bytes += k as u64,
                Err(e) => {
                    self.finished = true;
                    return Some(CRow {
                        line,
                        vals: vec![None; n],
                        errors: vec![RowError {
                            line,
                            column: None,
                            value: None,
                            message: format!("could not read the file from here on: {e}"),
                        }],
                        raw: Vec::new(),
                    });
                }
            }
            let bytes = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let mut row = CRow {
                line,
                vals: vec![None; n],
                errors: Vec::new(),
                raw: Vec::new(),
            };
            let Some(text) = decode(self.enc, bytes) else {
                let lossy = decode_lossy(self.enc, bytes);
                row.errors.push(RowError {
                    line,
                    column: None,
                    value: Some(lossy.clone()),
                    message: format!(
                        "line {line} is not valid {}; {}",
                        encoding_name(self.enc),
                        encoding_hint(self.enc)
                    ),
                });
                row.raw.push(lossy);
                return Some(row);
            };
            let obj = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(o)) => Some(o),
                Ok(_) => None,
                Err(e) => {
                    row.errors.push(RowError {
                        line,
                        column: None,
                        value: None,
                        message: format!(
                            "line {line} is not valid JSON ({e}); expected one object per line such as {{\"order_id\": \"A1\", \"sku\": \"S1\", ...}}"
                        ),
                    });
                    row.raw.push(text);
                    return Some(row);
                }
            };
            let Some(obj) = obj else {
                row.errors.push(RowError {
                    line,
                    column: None,
                    value: None,
                    message: "expected a JSON object such as {\"order_id\": \"A1\", ...}".into(),
                });
                row.raw.push(text);
                return Some(row);
            };
            let mut bad = Vec::new();
            for (i, name) in all_columns().enumerate() {
                let v = obj.get(name).or_else(|| {
                    obj.iter()
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                });
                row.vals[i] = match v {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => {
                        let t = s.trim();
                        (!t.is_empty()).then(|| t.to_string())
                    }
                    // The number's decimal text (serde_json prints the
                    // shortest text that reads back as the same value), so
                    // `129.9` stays "129.9"; amounts are never computed in
                    // floating point.
                    Some(serde_json::Value::Number(x)) => Some(x.to_string()),
                    Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                    Some(other) => {
                        bad.push(RowError {
                            line,
                            column: Some(name.to_string()),
                            value: Some(other.to_string()),
                            message: "expected a string or a number".into(),
                        });
                        None
                    }
                };
            }
            // Unusable values are ordinary row errors (checked with the rest),
            // but they are reported here because they never reach a field.
            row.errors.extend(bad);
            row.raw.push(text);
            return Some(row);
        }
    }
}

enum Source<'a> {
    Csv(CsvSource<'a>),
    Jsonl(JsonlSource<'a>),
}

impl Iterator for Source<'_> {
    type Item = CRow;
    fn next(&mut self) -> Option<CRow> {
        match self {
            Source::Csv(s) => s.next(),
            Source::Jsonl(s) => s.next(),
        }
    }
}

fn order_key(r: &CRow) -> Option<String> {
    r.get("order_id").map(str::to_string)
}

/// The canonical reader (CSV or JSONL).
pub struct CanonicalReader<'a> {
    groups: Adjacent<Source<'a>, fn(&CRow) -> Option<String>>,
    header: Vec<String>,
    options: ReadOptions,
}

/// Open a canonical reader. `path_hint` ending in `.jsonl` or `.ndjson`, or
/// content whose first non-blank byte is `{`, selects JSONL; otherwise CSV.
///
/// CSV fails at once if a required column is missing, if no identifier
/// column is present, or if there is neither a `channel` column nor
/// `options.channel`.
pub fn open<'a>(
    input: Box<dyn std::io::Read + 'a>,
    path_hint: &str,
    options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    let peeked = peek(input)?;
    let hint = path_hint.to_ascii_lowercase();
    let first = peeked
        .sample
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    let expected: Vec<&str> = all_columns().collect();
    let is_jsonl = hint.ends_with(".jsonl") || hint.ends_with(".ndjson") || first == Some(b'{');
    let (source, header) = if is_jsonl {
        if first.is_none() {
            return Err(FileError::Empty {
                expected: expected.iter().map(|s| s.to_string()).collect(),
            });
        }
        let enc = options
            .encoding
            .unwrap_or_else(|| detect_encoding(&peeked.sample));
        let src = JsonlSource {
            input: BufReader::new(peeked.input),
            enc,
            line: 0,
            bytes: peeked.skipped,
            buf: Vec::new(),
            finished: false,
        };
        (Source::Jsonl(src), Vec::new())
    } else {
        let rows = CsvRows::from_peeked(peeked, options.encoding, &expected)?;
        let header = rows.header().to_vec();
        let optional: Vec<&str> = IDENTIFIER_COLUMNS
            .into_iter()
            .chain(OPTIONAL_COLUMNS)
            .collect();
        missing_columns(FORMAT, &REQUIRED_COLUMNS, &optional, &header, |c| {
            rows.column(c).is_some()
        })?;
        if IDENTIFIER_COLUMNS.iter().all(|c| rows.column(c).is_none()) {
            return Err(FileError::MissingColumns {
                format: FORMAT,
                missing: vec![format!("one of {}", IDENTIFIER_COLUMNS.join(", "))],
                expected: expected.iter().map(|s| s.to_string()).collect(),
                detected: other_format(FORMAT, &header),
                found: header,
            });
        }
        if options.channel.is_none() && rows.column("channel").is_none() {
            return Err(FileError::NoChannel {
                format: FORMAT,
                hint: "pass --channel (e.g. --channel pos) or add a channel column".into(),
            });
        }
        let idx = all_columns().map(|c| rows.column(c)).collect();
        (Source::Csv(CsvSource { rows, idx }), header)
    };
    Ok(Box::new(CanonicalReader {
        groups: Adjacent::new(source, order_key as fn(&CRow) -> Option<String>),
        header,
        options: options.clone(),
    }))
}

impl OrderReader for CanonicalReader<'_> {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn bytes_read(&self) -> u64 {
        match &self.groups.inner {
            Source::Csv(s) => s.rows.bytes_read(),
            Source::Jsonl(s) => s.bytes,
        }
    }
}

impl Iterator for CanonicalReader<'_> {
    type Item = Result<OrderRecord, Rejected>;
    fn next(&mut self) -> Option<Self::Item> {
        let group = self.groups.next()?;
        Some(build(group, &self.options))
    }
}

fn text(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

fn build(group: Vec<CRow>, opts: &ReadOptions) -> Result<OrderRecord, Rejected> {
    let first = &group[0];
    let mut errors: Vec<RowError> = Vec::new();
    let mut e = Errs::new(first.line);
    let usable = first.errors.is_empty();

    // Order-level fields, from the first row.
    let order_id = e.required(
        "order_id",
        first.get("order_id"),
        "an order id such as A1001",
    );
    let channel = match first.get("channel") {
        Some(v) => match ChannelName::parse(v) {
            Ok(c) => Some(c),
            Err(err) => {
                e.push("channel", v, format!("expected {err}"));
                None
            }
        },
        None => {
            if opts.channel.is_none() {
                e.push(
                    "channel",
                    "",
                    "channel is empty and no --channel was given; expected a channel name such as tmall or pos",
                );
            }
            opts.channel.clone()
        }
    };
    let ordered_at = e
        .required("ordered_at", first.get("ordered_at"), DATE_FORM)
        .and_then(|v| e.datetime("ordered_at", v, opts.business_tz, DATE_FORM));
    let paid_at = first
        .get("paid_at")
        .and_then(|v| e.datetime("paid_at", v, opts.business_tz, DATE_FORM));
    let status = match first.get("status") {
        None => Some(OrderStatus::Paid),
        Some(v) => match OrderStatus::parse(v) {
            Ok(s) => Some(s),
            Err(err) => {
                e.push("status", v, format!("unknown status; expected {err}"));
                None
            }
        },
    };
    let currency = match first.get("currency") {
        None => Some(opts.default_currency.clone()),
        Some(v) => match Currency::parse(v) {
            Ok(c) => Some(c),
            Err(err) => {
                e.push("currency", v, format!("expected {err}"));
                None
            }
        },
    };
    let order_discount = first
        .get("order_discount")
        .map(|v| e.money("order_discount", v));
    let refunded = first.get("refunded").map(|v| e.money_nonneg("refunded", v));
    let birthday = first.get("birthday").and_then(|v| {
        let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok();
        if d.is_none() {
            e.push("birthday", v, "expected a date such as 1990-05-17");
        }
        d
    });
    let customer_fields = (
        text(first.get("name")),
        text(first.get("gender")),
        text(first.get("region")),
    );
    let campaign = text(first.get("campaign"));
    if let Some(c) = &campaign {
        if c.chars().count() > super::spend::MAX_CAMPAIGN_LEN {
            e.push(
                "campaign",
                c,
                format!(
                    "expected a campaign name of at most {} characters",
                    super::spend::MAX_CAMPAIGN_LEN
                ),
            );
        }
    }
    let referral_code =
        first
            .get("referral_code")
            .and_then(|v| match crate::referrals::check_invite_code(v) {
                Ok(c) => Some(c),
                Err(err) => {
                    e.push(
                        "referral_code",
                        v,
                        format!(
                            "expected an invite code of {} characters such as 7K3M9Q2XH ({err})",
                            crate::referrals::INVITE_LEN
                        ),
                    );
                    None
                }
            });
    if usable {
        errors.append(&mut e.list);
    }

    // Lines and identifiers, from every row.
    let mut ids = IdSet::default();
    let mut any_id_value = false;
    let mut lines = Vec::with_capacity(group.len());
    for row in &group {
        if !row.errors.is_empty() {
            errors.extend(row.errors.iter().cloned());
            continue;
        }
        let mut e = Errs::new(row.line);
        let sku = e.required("sku", row.get("sku"), "a product code such as SKU-1");
        let quantity = e
            .required(
                "quantity",
                row.get("quantity"),
                "a whole number of 1 or more",
            )
            .and_then(|v| e.quantity("quantity", v));
        let unit_price = e
            .required(
                "unit_price",
                row.get("unit_price"),
                "an amount such as 129.90",
            )
            .and_then(|v| e.money_nonneg("unit_price", v));
        let unit_cost = match row.get("unit_cost") {
            None => Ok(None),
            Some(v) => e.money_nonneg("unit_cost", v).map(Some).ok_or(()),
        };
        let discount = match row.get("discount") {
            None => Some(Money::ZERO),
            Some(v) => e.money("discount", v),
        };
        for col in IDENTIFIER_COLUMNS {
            let Some(v) = row.get(col) else { continue };
            any_id_value = true;
            let id = match col {
                "phone" => Phone::parse(v, &opts.default_country).map(|p| Identifier::phone(&p)),
                "email" => Email::parse(v).map(|m| Identifier::email(&m)),
                "member_no" => Identifier::member_no(v),
                "wechat_unionid" => Identifier::wechat_unionid(v),
                _ => match &channel {
                    Some(c) => Identifier::platform_user_id(c, v),
                    // The channel error is already reported.
                    None => continue,
                },
            };
            match id {
                Ok(id) => ids.add(id),
                Err(err) => e.push(col, v, format!("expected {err}")),
            }
        }
        if let (Some(sku), Some(quantity), Some(unit_price), Ok(unit_cost), Some(discount)) =
            (sku, quantity, unit_price, unit_cost, discount)
        {
            lines.push(OrderLine {
                sku: sku.to_string(),
                product_name: text(row.get("product_name")),
                brand: text(row.get("brand")),
                category: text(row.get("category")),
                quantity,
                unit_price,
                unit_cost,
                discount,
            });
        }
        errors.append(&mut e.list);
    }
    if !any_id_value && group.iter().all(|r| r.errors.is_empty()) {
        errors.push(RowError {
            line: first.line,
            column: None,
            value: None,
            message: format!(
                "the order has no identifier; expected a value in at least one of {}",
                IDENTIFIER_COLUMNS.join(", ")
            ),
        });
    }

    let rejected = |errors: Vec<RowError>| Rejected {
        order_id: first.get("order_id").map(str::to_string),
        errors,
        raw_rows: group.iter().map(|r| r.raw.clone()).collect(),
    };
    if !errors.is_empty() {
        return Err(rejected(errors));
    }
    match (
        order_id,
        channel,
        ordered_at,
        status,
        currency,
        order_discount.unwrap_or(Some(Money::ZERO)),
        refunded.unwrap_or(Some(Money::ZERO)),
    ) {
        (
            Some(order_id),
            Some(channel),
            Some(ordered_at),
            Some(status),
            Some(currency),
            Some(order_discount),
            Some(refunded_value),
        ) => {
            let mut order = OrderRecord {
                channel,
                order_id: order_id.to_string(),
                ordered_at,
                paid_at,
                status,
                currency,
                order_discount,
                refunded: refunded_value,
                customer: Customer {
                    identifiers: ids.list,
                    name: customer_fields.0,
                    gender: customer_fields.1,
                    birthday,
                    region: customer_fields.2,
                },
                lines,
                campaign,
                source_line: first.line,
                coupon_codes: first
                    .get("coupon")
                    .map(crate::coupons::parse_codes)
                    .unwrap_or_default(),
                referral_code,
            };
            if refunded.is_none() && status == OrderStatus::Refunded {
                order.refunded = order.gross_amount();
            }
            Ok(order)
        }
        // Every `None` above pushed an error.
        _ => Err(rejected(vec![RowError {
            line: first.line,
            column: None,
            value: None,
            message: "the order could not be read".into(),
        }])),
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::testutil::{ids, opts, read, Out};
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "order_id,ordered_at,sku,quantity,unit_price,phone,email,status,discount,refunded,currency,channel";

    fn csv(body: &str) -> Result<Out, FileError> {
        read(
            InputFormat::Canonical,
            format!("{HEADER}\n{body}").as_bytes(),
            "orders.csv",
            &opts(Some("pos")),
        )
    }

    fn only_error(out: &Out) -> &RowError {
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(
            out.rejected[0].errors.len(),
            1,
            "{:?}",
            out.rejected[0].errors
        );
        &out.rejected[0].errors[0]
    }

    #[test]
    fn reads_multi_line_orders() {
        let body = "\
A1,2024-11-11 10:00:00,S1,2,50.00,13800000001,Li@Example.com,,,,,
A1,2024-11-11 10:00:00,S2,1,30,+86 138 0000 0001,,,5,,,
A2,2024-11-12T08:00:00+08:00,S1,1,50,,b@example.com,refunded,,,usd,tmall
A3,2024-11-13,S3,3,10,13900000002,,partially_refunded,,4.50,,
";
        let out = csv(body).unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(ids(&out.orders), ["A1", "A2", "A3"]);
        let a1 = &out.orders[0];
        assert_eq!(a1.lines.len(), 2);
        assert_eq!(a1.status, OrderStatus::Paid);
        assert_eq!(a1.channel.as_str(), "pos");
        assert_eq!(a1.source_line, 2);
        assert_eq!(a1.ordered_at.to_rfc3339(), "2024-11-11T02:00:00+00:00");
        assert_eq!(a1.customer.identifiers.len(), 2, "phone deduplicated");
        assert_eq!(a1.customer.identifiers[0].value(), "+8613800000001");
        assert_eq!(a1.customer.identifiers[1].value(), "li@example.com");
        assert_eq!(a1.lines[1].discount.minor(), 500);
        assert_eq!(a1.gross_amount().minor(), 10000 + 3000 - 500);
        let a2 = &out.orders[1];
        assert_eq!(a2.channel.as_str(), "tmall");
        assert_eq!(a2.currency.as_str(), "USD");
        assert_eq!(a2.status, OrderStatus::Refunded);
        assert_eq!(
            a2.refunded.minor(),
            5000,
            "refunded defaults to the full amount"
        );
        assert_eq!(a2.ordered_at.to_rfc3339(), "2024-11-12T00:00:00+00:00");
        let a3 = &out.orders[2];
        assert_eq!(a3.refunded.minor(), 450);
        assert_eq!(a3.currency.as_str(), "CNY");
        assert_eq!(a3.ordered_at.to_rfc3339(), "2024-11-12T16:00:00+00:00");
        assert_eq!(out.bytes_read, (HEADER.len() + 1 + body.len()) as u64);
    }

    #[test]
    fn docs_example_reads() {
        let text = "\
order_id,ordered_at,channel,status,phone,email,sku,product_name,quantity,unit_price,discount
A1001,2024-11-11 10:00:00,pos,paid,13800000001,li@example.com,SKU-1,Tee,2,129.00,10
A1001,2024-11-11 10:00:00,pos,paid,13800000001,li@example.com,SKU-2,Cap,1,59.00,
A1002,2024-11-12T09:30:00+08:00,pos,refunded,13900000002,,SKU-1,Tee,1,129.00,
";
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(None),
        )
        .unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(ids(&out.orders), ["A1001", "A1002"]);
        assert_eq!(
            out.orders[0].gross_amount().minor(),
            2 * 12900 - 1000 + 5900
        );
        assert_eq!(out.orders[1].refunded.minor(), 12900);
        let line = r#"{"order_id":"A1001","ordered_at":"2024-11-11 10:00:00","channel":"pos","phone":"13800000001","sku":"SKU-1","quantity":2,"unit_price":129.0}"#;
        let out = read(
            InputFormat::Canonical,
            line.as_bytes(),
            "x.jsonl",
            &opts(None),
        )
        .unwrap();
        assert_eq!(out.orders[0].lines[0].unit_price.minor(), 12900);
    }

    #[test]
    fn header_names_are_trimmed_and_case_insensitive() {
        let text = " Order_ID ,ORDERED_AT,Sku,Quantity,Unit_Price, Member_No ,Platform_User_Id\n\
                    A1,2024-11-11,S1,1,9.9,M01,buyer1\n";
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(Some("jd")),
        )
        .unwrap();
        assert_eq!(out.orders.len(), 1);
        let idents: Vec<_> = out.orders[0]
            .customer
            .identifiers
            .iter()
            .map(|i| i.value().to_string())
            .collect();
        assert_eq!(idents, ["M01", "jd:buyer1"]);
    }

    #[test]
    fn missing_column_fails_at_open() {
        let text = "order_id,ordered_at,sku,quantity,phone\nA1,2024-11-11,S1,1,13800000001\n";
        let Err(FileError::MissingColumns {
            missing,
            found,
            expected,
            ..
        }) = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(Some("pos")),
        )
        else {
            panic!("expected MissingColumns");
        };
        assert_eq!(missing, ["unit_price"]);
        assert_eq!(
            found,
            ["order_id", "ordered_at", "sku", "quantity", "phone"]
        );
        assert!(expected.contains(&"unit_price".to_string()));

        let text = "order_id,ordered_at,sku,quantity,unit_price\n";
        let Err(FileError::MissingColumns { missing, .. }) = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(Some("pos")),
        ) else {
            panic!("expected MissingColumns for identifiers");
        };
        assert!(missing[0].contains("member_no"), "{missing:?}");
    }

    #[test]
    fn no_channel_fails_at_open_or_per_row() {
        let text = "order_id,ordered_at,sku,quantity,unit_price,phone\n";
        assert!(matches!(
            read(
                InputFormat::Canonical,
                text.as_bytes(),
                "x.csv",
                &opts(None)
            ),
            Err(FileError::NoChannel { .. })
        ));
        let text = "order_id,ordered_at,sku,quantity,unit_price,phone,channel\n\
                    A1,2024-11-11,S1,1,1,13800000001,\n\
                    A2,2024-11-11,S1,1,1,13800000001,pos\n";
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(None),
        )
        .unwrap();
        assert_eq!(ids(&out.orders), ["A2"]);
        let e = only_error(&out);
        assert_eq!((e.line, e.column.as_deref()), (2, Some("channel")));
    }

    #[test]
    fn empty_and_header_only_files() {
        for text in ["", "\n\n", "  \r\n"] {
            assert!(
                matches!(
                    read(
                        InputFormat::Canonical,
                        text.as_bytes(),
                        "x.csv",
                        &opts(Some("pos"))
                    ),
                    Err(FileError::Empty { .. })
                ),
                "{text:?}"
            );
        }
        assert!(matches!(
            read(InputFormat::Canonical, b"", "x.jsonl", &opts(Some("pos"))),
            Err(FileError::Empty { .. })
        ));
        let out = csv("").unwrap();
        assert!(out.orders.is_empty() && out.rejected.is_empty());
        assert_eq!(out.header.len(), 12);
    }

    #[test]
    fn bad_date_rejects_only_its_order() {
        let out = csv("A1,2024-11-11,S1,1,1,13800000001,,,,,,\n\
             A2,11/11/2024,S1,1,1,13800000001,,,,,,\n\
             A2,11/11/2024,S2,1,1,13800000001,,,,,,\n\
             A3,2024-11-11,S1,1,1,13800000001,,,,,,\n")
        .unwrap();
        assert_eq!(ids(&out.orders), ["A1", "A3"]);
        let e = only_error(&out);
        assert_eq!(e.line, 3);
        assert_eq!(e.column.as_deref(), Some("ordered_at"));
        assert_eq!(e.value.as_deref(), Some("11/11/2024"));
        assert!(e.message.contains("2024-11-11 10:00:00"), "{}", e.message);
        let r = &out.rejected[0];
        assert_eq!(r.order_id.as_deref(), Some("A2"));
        assert_eq!(r.raw_rows.len(), 2);
        assert_eq!(r.raw_rows[1][2], "S2");
    }

    #[test]
    fn bad_numbers_are_row_errors() {
        let out = csv("A1,2024-11-11,S1,1,1,13800000001,,,,,,\n\
             A2,2024-11-11,S1,two,1,13800000001,,,,,,\n\
             A2,2024-11-11,S2,1,1.999,13800000001,,,,,,\n\
             A3,2024-11-11,S1,0,1,13800000001,,,,,,\n\
             A4,2024-11-11,S1,1,1,13800000001,,,,,,\n")
        .unwrap();
        assert_eq!(ids(&out.orders), ["A1", "A4"]);
        assert_eq!(out.rejected.len(), 2);
        let errs = &out.rejected[0].errors;
        assert_eq!(errs.len(), 2);
        assert_eq!(
            (errs[0].line, errs[0].column.as_deref()),
            (3, Some("quantity"))
        );
        assert!(errs[0].message.contains("whole number"));
        assert_eq!(
            (errs[1].line, errs[1].column.as_deref()),
            (4, Some("unit_price"))
        );
        assert_eq!(errs[1].value.as_deref(), Some("1.999"));
        assert!(errs[1].message.contains("two decimals"));
        assert_eq!(out.rejected[1].errors[0].line, 5);
    }

    #[test]
    fn unknown_status_and_bad_identifiers() {
        let out = csv("A1,2024-11-11,S1,1,1,13800000001,,shipped,,,,\n\
             A2,2024-11-11,S1,1,1,12,,,,,,\n\
             A3,2024-11-11,S1,1,1,,not-an-email,,,,,\n\
             A4,2024-11-11,S1,1,1,,,,,,,\n\
             A5,2024-11-11,S1,1,1,13800000001,,cancelled,,,,\n")
        .unwrap();
        assert_eq!(ids(&out.orders), ["A5"]);
        assert_eq!(out.orders[0].status, OrderStatus::Cancelled);
        let e: Vec<_> = out.rejected.iter().map(|r| &r.errors[0]).collect();
        assert_eq!((e[0].line, e[0].column.as_deref()), (2, Some("status")));
        assert!(e[0].message.contains("partially_refunded"));
        assert_eq!((e[1].line, e[1].column.as_deref()), (3, Some("phone")));
        assert_eq!((e[2].line, e[2].column.as_deref()), (4, Some("email")));
        assert_eq!((e[3].line, e[3].column.as_deref()), (5, None));
        assert!(e[3].message.contains("no identifier"));
    }

    #[test]
    fn ragged_row_is_a_row_error() {
        let out = csv("A1,2024-11-11,S1,1,1,13800000001,,,,,,\n\
             A2,2024-11-11,S1,1,1,13800000001\n\
             A3,2024-11-11,S1,1,1,13800000001,,,,,,,extra\n\
             A4,2024-11-11,S1,1,1,13800000001,,,,,,\n")
        .unwrap();
        assert_eq!(ids(&out.orders), ["A1", "A4"]);
        assert_eq!(out.rejected[0].errors[0].line, 3);
        assert!(out.rejected[0].errors[0].message.contains("6 fields"));
        assert_eq!(out.rejected[1].errors[0].line, 4);
        assert_eq!(out.rejected[1].raw_rows[0].len(), 13);
    }

    #[test]
    fn quoted_fields_spanning_lines_keep_physical_line_numbers() {
        let text = "order_id,ordered_at,sku,quantity,unit_price,phone,product_name\n\
                    A1,2024-11-11,S1,1,1,13800000001,\"two\nlines\"\n\
                    A2,2024-11-11,S1,x,1,13800000001,p\n";
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(Some("pos")),
        )
        .unwrap();
        assert_eq!(
            out.orders[0].lines[0].product_name.as_deref(),
            Some("two\nlines")
        );
        assert_eq!(out.rejected[0].errors[0].line, 4);
    }

    #[test]
    fn invalid_utf8_row_names_its_line_and_suggests_gbk() {
        let mut bytes = format!("{HEADER}\nA1,2024-11-11,S1,1,1,13800000001,,,,,,\n").into_bytes();
        let (gbk, _, _) = encoding_rs::GBK.encode("A2,2024-11-11,订单,1,1,13800000001,,,,,,\n");
        bytes.extend_from_slice(&gbk);
        bytes.extend_from_slice(b"A3,2024-11-11,S1,1,1,13800000001,,,,,,\n");
        let mut o = opts(Some("pos"));
        o.encoding = Some(Encoding::Utf8);
        let out = read(InputFormat::Canonical, &bytes, "x.csv", &o).unwrap();
        assert_eq!(ids(&out.orders), ["A1", "A3"]);
        let e = only_error(&out);
        assert_eq!(e.line, 3);
        assert_eq!(e.column.as_deref(), Some("sku"));
        assert_eq!(
            e.message,
            "line 3 is not valid UTF-8; if the file is GBK use --encoding gbk"
        );
        assert_eq!(out.rejected[0].order_id.as_deref(), Some("A2"));
        // Detected: the same file is GBK (the only non-ASCII text is GBK).
        let out = read(InputFormat::Canonical, &bytes, "x.csv", &opts(Some("pos"))).unwrap();
        assert_eq!(ids(&out.orders), ["A1", "A2", "A3"]);
        assert_eq!(out.orders[1].lines[0].sku, "订单");
    }

    #[test]
    fn bom_is_stripped() {
        let text = format!("\u{feff}{HEADER}\nA1,2024-11-11,S1,1,1,13800000001,,,,,,\n");
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "x.csv",
            &opts(Some("pos")),
        )
        .unwrap();
        assert_eq!(out.header[0], "order_id");
        assert_eq!(ids(&out.orders), ["A1"]);
        assert_eq!(out.bytes_read, text.len() as u64);
    }

    #[test]
    fn jsonl_reads_numbers_as_decimal_text() {
        let text = r#"{"order_id":"J1","ordered_at":"2024-11-11 10:00:00","sku":"S1","quantity":2,"unit_price":129.9,"phone":13800000001,"channel":"tmall"}
{"order_id":"J1","ordered_at":"2024-11-11 10:00:00","sku":"S2","quantity":"1","unit_price":"0.10","email":"a@b.com"}

{"order_id":"J2","ordered_at":"2024-11-11","sku":"S1","quantity":1,"unit_price":1.234,"phone":"13800000001"}
not json
{"order_id":"J3","ordered_at":"2024-11-11","sku":"S1","quantity":1,"unit_price":1e2,"member_no":"M1","status":"pending"}
"#;
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "orders.jsonl",
            &opts(Some("pos")),
        )
        .unwrap();
        assert!(out.header.is_empty());
        assert_eq!(ids(&out.orders), ["J1", "J3"]);
        assert_eq!(out.orders[0].channel.as_str(), "tmall");
        assert_eq!(out.orders[0].lines[0].unit_price.minor(), 12990);
        assert_eq!(out.orders[1].channel.as_str(), "pos");
        assert_eq!(out.orders[1].lines[0].unit_price.minor(), 10000);
        assert_eq!(out.orders[1].status, OrderStatus::Pending);
        assert_eq!(out.rejected.len(), 2);
        assert_eq!(out.bytes_read, text.len() as u64);
        let j2 = &out.rejected[0];
        assert_eq!(j2.order_id.as_deref(), Some("J2"));
        assert_eq!(j2.errors.len(), 1);
        let e = &j2.errors[0];
        assert_eq!(
            (e.line, e.column.as_deref(), e.value.as_deref()),
            (4, Some("unit_price"), Some("1.234"))
        );
        assert_eq!(
            j2.raw_rows,
            vec![vec![text.lines().nth(3).unwrap().to_string()]]
        );
        let bad = &out.rejected[1];
        assert_eq!(bad.order_id, None);
        assert_eq!(bad.errors[0].line, 5);
        assert!(bad.errors[0].message.contains("not valid JSON"));
        assert_eq!(bad.raw_rows, vec![vec!["not json".to_string()]]);
    }

    #[test]
    fn jsonl_multi_line_order_with_row_channel() {
        let text = r#"{"order_id":"J1","ordered_at":"2024-11-11 10:00:00","sku":"S1","quantity":2,"unit_price":129.9,"phone":13800000001,"channel":"tmall","platform_user_id":"nick"}
{"order_id":"J1","ordered_at":"2024-11-11 10:00:00","sku":"S2","quantity":"1","unit_price":"0.10","email":"a@b.com"}
"#;
        // Sniffed as JSONL from the first byte, whatever the name.
        let out = read(
            InputFormat::Canonical,
            text.as_bytes(),
            "upload",
            &opts(None),
        )
        .unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let o = &out.orders[0];
        assert_eq!(o.lines[0].unit_price.minor(), 12990);
        assert_eq!(o.lines[1].unit_price.minor(), 10);
        assert_eq!(o.gross_amount().minor(), 2 * 12990 + 10);
        let idents: Vec<_> = o.customer.identifiers.iter().map(|i| i.value()).collect();
        assert_eq!(idents, ["+8613800000001", "tmall:nick", "a@b.com"]);
    }

    /// (order id, ordered_at seconds, lines (sku, qty, price, discount), status index, email local part)
    type GenOrder = (String, i64, Vec<(String, i64, i64, i64)>, u8, String);

    fn arb_order() -> impl Strategy<Value = GenOrder> {
        (
            "[A-Z][0-9]{1,6}",
            0i64..2_000_000_000,
            prop::collection::vec(
                (
                    "[A-Za-z0-9][A-Za-z0-9 ,\"-]{0,11}",
                    1i64..50,
                    0i64..10_000_000,
                    0i64..1000,
                ),
                1..4,
            ),
            0u8..5,
            "[a-z]{1,8}",
        )
    }

    proptest! {
        #[test]
        fn csv_round_trip(orders in prop::collection::vec(arb_order(), 0..8)) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["order_id", "ordered_at", "sku", "quantity", "unit_price", "discount", "status", "email", "product_name"]).unwrap();
            let mut want = Vec::new();
            for (i, (id, secs, lines, st, email)) in orders.iter().enumerate() {
                let id = format!("{id}-{i}");
                let at = chrono::DateTime::from_timestamp(*secs, 0).unwrap();
                let status = OrderStatus::ALL[*st as usize];
                for (sku, q, price, disc) in lines {
                    w.write_record([
                        id.clone(),
                        at.to_rfc3339(),
                        sku.clone(),
                        q.to_string(),
                        Money::from_minor(*price).to_decimal_string(),
                        Money::from_minor(*disc).to_decimal_string(),
                        status.as_str().to_string(),
                        format!("{email}@example.com"),
                        format!("name {sku}"),
                    ]).unwrap();
                }
                want.push((id, at, status, lines.clone()));
            }
            let bytes = w.into_inner().unwrap();
            let out = read(InputFormat::Canonical, &bytes, "x.csv", &opts(Some("pos"))).unwrap();
            prop_assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            prop_assert_eq!(out.orders.len(), want.len());
            for (o, (id, at, status, lines)) in out.orders.iter().zip(&want) {
                prop_assert_eq!(&o.order_id, id);
                prop_assert_eq!(o.ordered_at, *at);
                prop_assert_eq!(o.status, *status);
                prop_assert_eq!(o.lines.len(), lines.len());
                for (l, (sku, q, price, disc)) in o.lines.iter().zip(lines) {
                    prop_assert_eq!(&l.sku, sku.trim());
                    prop_assert_eq!(l.quantity, *q);
                    prop_assert_eq!(l.unit_price.minor(), *price);
                    prop_assert_eq!(l.discount.minor(), *disc);
                }
            }
            prop_assert_eq!(out.bytes_read, bytes.len() as u64);
        }
    }
}
