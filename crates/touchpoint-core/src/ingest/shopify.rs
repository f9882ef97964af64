//! The Shopify Admin "Export orders" CSV, read as it comes.
//!
//! One row per line item. Rows of one order are adjacent and share `Name`
//! (`#1001`, the order id); the order-level fields (Email, Financial Status,
//! Paid at, Currency, Discount Amount, Created at, phones, Billing Name,
//! Refunded Amount, ...) are read from the order's first row only, as Shopify
//! leaves them empty on the following rows. See `docs/import.md` for the
//! mapping.

use super::common::{field, missing_columns, Adjacent, CsvRows, Errs, IdSet, RawRow};
use super::*;
use crate::types::{Email, Phone};

/// The full header of a Shopify orders export, in order.
pub const COLUMNS: [&str; 79] = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Tax 2 Name",
    "Tax 2 Value",
    "Tax 3 Name",
    "Tax 3 Value",
    "Tax 4 Name",
    "Tax 4 Value",
    "Tax 5 Name",
    "Tax 5 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
];

/// Columns a Shopify file must have (matched trimmed, case-insensitively).
pub const REQUIRED_COLUMNS: [&str; 7] = [
    "Name",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Financial Status",
    "Email",
];

/// The accepted forms of `Created at` / `Paid at`.
pub const DATE_FORM: &str =
    "a date such as 2024-01-15 10:23:45 -0500, 2024-01-15 10:23:45 +0800 or 2024-01-15T10:23:45-05:00";

/// The accepted `Financial Status` values.
pub const STATUS_FORM: &str =
    "one of paid, pending, authorized, partially_paid, partially_refunded, refunded, voided, expired";

const FORMAT: &str = "shopify";

/// Map a Shopify `Financial Status`: paid -> paid; refunded -> refunded;
/// partially_refunded -> partially_refunded; voided, expired -> cancelled;
/// pending, authorized, partially_paid -> pending.
pub fn map_status(s: &str) -> Option<OrderStatus> {
    match s
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
        .as_str()
    {
        "paid" => Some(OrderStatus::Paid),
        "refunded" => Some(OrderStatus::Refunded),
        "partially_refunded" => Some(OrderStatus::PartiallyRefunded),
        "voided" | "expired" => Some(OrderStatus::Cancelled),
        "pending" | "authorized" | "partially_paid" => Some(OrderStatus::Pending),
        _ => None,
    }
}

/// Column positions in the file's header.
struct Cols {
    name: Option<usize>,
    email: Option<usize>,
    financial_status: Option<usize>,
    paid_at: Option<usize>,
    currency: Option<usize>,
    discount_amount: Option<usize>,
    created_at: Option<usize>,
    quantity: Option<usize>,
    item_name: Option<usize>,
    item_price: Option<usize>,
    item_sku: Option<usize>,
    item_discount: Option<usize>,
    vendor: Option<usize>,
    billing_name: Option<usize>,
    billing_city: Option<usize>,
    billing_province: Option<usize>,
    billing_phone: Option<usize>,
    shipping_phone: Option<usize>,
    phone: Option<usize>,
    refunded_amount: Option<usize>,
    discount_code: Option<usize>,
}

/// Picks the order key (`Name`) of a row.
type RowKey<'a> = Box<dyn FnMut(&RawRow) -> Option<String> + 'a>;

/// The Shopify reader.
pub struct ShopifyReader<'a> {
    groups: Adjacent<CsvRows<'a>, RowKey<'a>>,
    header: Vec<String>,
    cols: Cols,
    channel: ChannelName,
    options: ReadOptions,
}

/// Open a Shopify reader. The channel is `options.channel`, else `shopify`.
/// Fails at once if a required column is missing.
pub fn open<'a>(
    input: Box<dyn std::io::Read + 'a>,
    options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    let rows = CsvRows::open(input, options.encoding, &COLUMNS)?;
    let header = rows.header().to_vec();
    let optional: Vec<&str> = COLUMNS
        .into_iter()
        .filter(|c| !REQUIRED_COLUMNS.contains(c))
        .collect();
    missing_columns(FORMAT, &REQUIRED_COLUMNS, &optional, &header, |c| {
        rows.column(c).is_some()
    })?;
    let c = |n: &str| rows.column(n);
    let cols = Cols {
        name: c("Name"),
        email: c("Email"),
        financial_status: c("Financial Status"),
        paid_at: c("Paid at"),
        currency: c("Currency"),
        discount_amount: c("Discount Amount"),
        created_at: c("Created at"),
        quantity: c("Lineitem quantity"),
        item_name: c("Lineitem name"),
        item_price: c("Lineitem price"),
        item_sku: c("Lineitem sku"),
        item_discount: c("Lineitem discount"),
        vendor: c("Vendor"),
        billing_name: c("Billing Name"),
        billing_city: c("Billing City"),
        billing_province: c("Billing Province"),
        billing_phone: c("Billing Phone"),
        shipping_phone: c("Shipping Phone"),
        phone: c("Phone"),
        refunded_amount: c("Refunded Amount"),
        discount_code: c("Discount Code"),
    };
    let name_idx = cols.name;
    let key: RowKey<'a> = Box::new(move |r: &RawRow| field(r, name_idx).map(str::to_string));
    let channel = match &options.channel {
        Some(c) => c.clone(),
        None => ChannelName::parse("shopify").expect("a valid channel name"),
    };
    Ok(Box::new(ShopifyReader {
        groups: Adjacent::new(rows, key),
        header,
        cols,
        channel,
        options: options.clone(),
    }))
}

impl OrderReader for ShopifyReader<'_> {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn bytes_read(&self) -> u64 {
        self.groups.inner.bytes_read()
    }
}

impl Iterator for ShopifyReader<'_> {
    type Item = Result<OrderRecord, Rejected>;
    fn next(&mut self) -> Option<Self::Item> {
        let group = self.groups.next()?;
        Some(self.build(group))
    }
}

impl ShopifyReader<'_> {
    fn col_name(&self, idx: Option<usize>) -> &str {
        idx.and_then(|i| self.header.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn build(&self, group: Vec<RawRow>) -> Result<OrderRecord, Rejected> {
        let c = &self.cols;
        let opts = &self.options;
        let first = &group[0];
        let mut errors = Vec::new();
        let mut e = Errs::new(first.line);
        let f = |idx| field(first, idx);
        let n = |idx| self.col_name(idx);

        let order_id = e.required(n(c.name), f(c.name), "an order name such as #1001");
        let ordered_at = e
            .required(n(c.created_at), f(c.created_at), DATE_FORM)
            .and_then(|v| e.datetime(n(c.created_at), v, opts.business_tz, DATE_FORM));
        let paid_at =
            f(c.paid_at).and_then(|v| e.datetime(n(c.paid_at), v, opts.business_tz, DATE_FORM));
        let status = e
            .required(n(c.financial_status), f(c.financial_status), STATUS_FORM)
            .and_then(|v| {
                let s = map_status(v);
                if s.is_none() {
                    e.push(
                        n(c.financial_status),
                        v,
                        format!("unknown financial status; expected {STATUS_FORM}"),
                    );
                }
                s
            });
        let currency = match f(c.currency) {
            None => Some(opts.default_currency.clone()),
            Some(v) => match Currency::parse(v) {
                Ok(cur) => Some(cur),
                Err(err) => {
                    e.push(n(c.currency), v, format!("expected {err}"));
                    None
                }
            },
        };
        let discount_amount = match f(c.discount_amount) {
            None => Some(Money::ZERO),
            Some(v) => e.money_nonneg(n(c.discount_amount), v),
        };
        let refunded_amount = match f(c.refunded_amount) {
            None => Some(None),
            Some(v) => e.money_nonneg(n(c.refunded_amount), v).map(Some),
        };

        // Identifiers: Email; one phone: Phone, else Billing Phone, else Shipping Phone.
        let mut ids = IdSet::default();
        let mut any_id_value = false;
        if let Some(v) = f(c.email) {
            any_id_value = true;
            match Email::parse(v) {
                Ok(m) => ids.add(Identifier::email(&m)),
                Err(err) => e.push(n(c.email), v, format!("expected {err}")),
            }
        }
        if let Some((idx, v)) = [c.phone, c.billing_phone, c.shipping_phone]
            .into_iter()
            .find_map(|i| f(i).map(|v| (i, v)))
        {
            any_id_value = true;
            match Phone::parse(v, &opts.default_country) {
                Ok(p) => ids.add(Identifier::phone(&p)),
                Err(err) => e.push(n(idx), v, format!("expected {err}")),
            }
        }
        if !any_id_value && first.errors.is_empty() {
            e.push_row(
                "the order has no identifier; expected an Email, Phone, Billing Phone or Shipping Phone on its first row",
            );
        }
        let name = f(c.billing_name).map(str::to_string);
        let region = f(c.billing_province)
            .or(f(c.billing_city))
            .map(str::to_string);
        if first.errors.is_empty() {
            errors.append(&mut e.list);
        }

        let mut lines = Vec::with_capacity(group.len());
        let mut line_discounts = 0i64;
        for row in &group {
            if !row.errors.is_empty() {
                errors.extend(row.errors.iter().cloned());
                continue;
            }
            let mut e = Errs::new(row.line);
            let g = |idx| field(row, idx);
            let quantity = e
                .required(n(c.quantity), g(c.quantity), "a whole number of 1 or more")
                .and_then(|v| e.quantity(n(c.quantity), v));
            let item_name = e.required(n(c.item_name), g(c.item_name), "a product name");
            let price = e
                .required(n(c.item_price), g(c.item_price), "an amount such as 29.99")
                .and_then(|v| e.money_nonneg(n(c.item_price), v));
            let discount = match g(c.item_discount) {
                None => Some(Money::ZERO),
                Some(v) => e.money_nonneg(n(c.item_discount), v),
            };
            if let (Some(quantity), Some(item_name), Some(unit_price), Some(discount)) =
                (quantity, item_name, price, discount)
            {
                line_discounts += discount.minor();
                lines.push(OrderLine {
                    // Lineitem sku; Shopify leaves it empty for products
                    // without one, then the line item name is the key.
                    sku: g(c.item_sku).unwrap_or(item_name).to_string(),
                    product_name: Some(item_name.to_string()),
                    brand: g(c.vendor).map(str::to_string),
                    category: None,
                    quantity,
                    unit_price,
                    unit_cost: None,
                    discount,
                });
            }
            errors.append(&mut e.list);
        }

        if !errors.is_empty() {
            return Err(Rejected {
                order_id: field(first, c.name).map(str::to_string),
                errors,
                raw_rows: group.into_iter().map(|r| r.fields).collect(),
            });
        }
        let (
            Some(order_id),
            Some(ordered_at),
            Some(status),
            Some(currency),
            Some(discount_amount),
            Some(refunded_amount),
        ) = (
            order_id,
            ordered_at,
            status,
            currency,
            discount_amount,
            refunded_amount,
        )
        else {
            // Unreachable in practice: every `None` above pushed an error.
            return Err(Rejected {
                order_id: None,
                errors: vec![RowError {
                    line: first.line,
                    column: None,
                    value: None,
                    message: "the order could not be read".into(),
                }],
                raw_rows: group.into_iter().map(|r| r.fields).collect(),
            });
        };
        let mut order = OrderRecord {
            channel: self.channel.clone(),
            order_id: order_id.to_string(),
            ordered_at,
            paid_at,
            status,
            currency,
            // Discount Amount is the order's total discount; the part already
            // allocated to lines (Lineitem discount) is not counted twice.
            order_discount: Money::from_minor((discount_amount.minor() - line_discounts).max(0)),
            refunded: refunded_amount.unwrap_or(Money::ZERO),
            customer: Customer {
                identifiers: ids.list,
                name,
                gender: None,
                birthday: None,
                region,
            },
            lines,
            campaign: None,
            source_line: first.line,
            coupon_codes: field(first, c.discount_code)
                .map(crate::coupons::parse_codes)
                .unwrap_or_default(),
            referral_code: None,
        };
        if status == OrderStatus::Refunded && order.refunded == Money::ZERO {
            order.refunded = order.gross_amount();
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::testutil::{csv_with, ids, opts, read, Out};
    use super::*;

    fn us() -> ReadOptions {
        let mut o = opts(None);
        o.default_country = "1".into();
        o.default_currency = Currency::parse("USD").unwrap();
        o.business_tz = "America/New_York".parse().unwrap();
        o
    }

    fn shopify(rows: &[&[(&str, &str)]]) -> Out {
        let text = csv_with(&COLUMNS, rows);
        read(
            InputFormat::Shopify,
            text.as_bytes(),
            "orders_export.csv",
            &us(),
        )
        .unwrap()
    }

    /// The first row of an order, with its order-level fields.
    fn head<'a>(name: &'a str, status: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Name", name),
            ("Email", "Jane@Example.com"),
            ("Financial Status", status),
            ("Paid at", "2024-01-15 10:24:00 -0500"),
            ("Currency", "USD"),
            ("Created at", "2024-01-15 10:23:45 -0500"),
            ("Lineitem quantity", "1"),
            ("Lineitem name", "Tee - M"),
            ("Lineitem price", "25.00"),
            ("Lineitem sku", "TEE-M"),
            ("Billing Name", "Jane Doe"),
            ("Billing City", "Brooklyn"),
            ("Billing Province", "NY"),
            ("Vendor", "Acme"),
        ]
    }

    /// A following row of an order: only the line item.
    fn item<'a>(
        name: &'a str,
        qty: &'a str,
        title: &'a str,
        price: &'a str,
        sku: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Name", name),
            ("Lineitem quantity", qty),
            ("Lineitem name", title),
            ("Lineitem price", price),
            ("Lineitem sku", sku),
        ]
    }

    fn with<'a>(
        mut row: Vec<(&'a str, &'a str)>,
        k: &'a str,
        v: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        row.retain(|(c, _)| *c != k);
        row.push((k, v));
        row
    }

    #[test]
    fn reads_multi_line_orders_and_maps_fields() {
        let r1 = with(
            with(head("#1001", "paid"), "Phone", "(415) 555-0100"),
            "Discount Amount",
            "7.00",
        );
        let r1 = with(
            with(r1, "Billing Phone", "+1 212 555 0199"),
            "Lineitem discount",
            "2.00",
        );
        let r2 = item("#1001", "2", "Mug", "12.50", "");
        let r3 = with(item("#1001", "1", "Cap", "10", "CAP"), "Vendor", "Other");
        let r4 = head("#1002", "pending");
        let out = shopify(&[&r1, &r2, &r3, &r4]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(ids(&out.orders), ["#1001", "#1002"]);
        let o = &out.orders[0];
        assert_eq!(o.channel.as_str(), "shopify");
        assert_eq!(o.source_line, 2);
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(o.currency.as_str(), "USD");
        assert_eq!(o.ordered_at.to_rfc3339(), "2024-01-15T15:23:45+00:00");
        assert_eq!(o.paid_at.unwrap().to_rfc3339(), "2024-01-15T15:24:00+00:00");
        assert_eq!(o.lines.len(), 3);
        assert_eq!(o.lines[0].sku, "TEE-M");
        assert_eq!(o.lines[0].brand.as_deref(), Some("Acme"));
        assert_eq!(o.lines[0].discount.minor(), 200);
        assert_eq!(
            o.lines[1].sku, "Mug",
            "empty Lineitem sku falls back to the name"
        );
        assert_eq!(o.lines[1].quantity, 2);
        assert_eq!(o.lines[1].brand, None);
        assert_eq!(o.lines[2].brand.as_deref(), Some("Other"));
        // Discount Amount 7.00 of which 2.00 is already on a line.
        assert_eq!(o.order_discount.minor(), 500);
        assert_eq!(o.gross_amount().minor(), 2500 - 200 + 2500 + 1000 - 500);
        let idents: Vec<_> = o.customer.identifiers.iter().map(|i| i.value()).collect();
        assert_eq!(
            idents,
            ["jane@example.com", "+14155550100"],
            "Phone preferred over Billing Phone"
        );
        assert_eq!(o.customer.name.as_deref(), Some("Jane Doe"));
        assert_eq!(o.customer.region.as_deref(), Some("NY"));
        assert_eq!(out.orders[1].status, OrderStatus::Pending);
        assert_eq!(out.header.len(), 79);
    }

    #[test]
    fn refunds_and_statuses() {
        let full = head("#1", "refunded");
        let partial = with(head("#2", "partially_refunded"), "Refunded Amount", "5.50");
        let voided = with(
            head("#3", "voided"),
            "Cancelled at",
            "2024-01-16 10:00:00 -0500",
        );
        let cancelled_paid = with(
            head("#4", "paid"),
            "Cancelled at",
            "2024-01-16 10:00:00 -0500",
        );
        let authorized = head("#5", "Authorized");
        let explicit = with(head("#6", "refunded"), "Refunded Amount", "25.00");
        let second = item("#1", "1", "Sock", "5", "SOCK");
        let out = shopify(&[
            &full,
            &second,
            &partial,
            &voided,
            &cancelled_paid,
            &authorized,
            &explicit,
        ]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let st: Vec<_> = out
            .orders
            .iter()
            .map(|o| (o.status, o.refunded.minor()))
            .collect();
        assert_eq!(
            st,
            [
                (OrderStatus::Refunded, 3000),
                (OrderStatus::PartiallyRefunded, 550),
                (OrderStatus::Cancelled, 0),
                (OrderStatus::Paid, 0),
                (OrderStatus::Pending, 0),
                (OrderStatus::Refunded, 2500),
            ]
        );
    }

    #[test]
    fn identifiers_fall_back_to_billing_and_shipping_phone() {
        let a = with(
            with(head("#1", "paid"), "Email", ""),
            "Billing Phone",
            "212-555-0199",
        );
        let b = with(
            with(head("#2", "paid"), "Email", ""),
            "Shipping Phone",
            "+44 20 7946 0958",
        );
        let none = with(head("#3", "paid"), "Email", "");
        let bad = with(head("#4", "paid"), "Email", "jane at example");
        let ok = head("#5", "paid");
        let out = shopify(&[&a, &b, &none, &bad, &ok]);
        assert_eq!(ids(&out.orders), ["#1", "#2", "#5"]);
        assert_eq!(
            out.orders[0].customer.identifiers[0].value(),
            "+12125550199"
        );
        assert_eq!(
            out.orders[1].customer.identifiers[0].value(),
            "+442079460958"
        );
        let e = &out.rejected[0].errors[0];
        assert_eq!((e.line, e.column.as_deref()), (4, None));
        assert!(e.message.contains("no identifier"));
        let e = &out.rejected[1].errors[0];
        assert_eq!(
            (e.line, e.column.as_deref(), e.value.as_deref()),
            (5, Some("Email"), Some("jane at example"))
        );
    }

    #[test]
    fn missing_column_fails_at_open() {
        let text = "Name,Email,Created at,Lineitem quantity,Lineitem name\n#1,a@b.com,2024-01-15 10:23:45 -0500,1,Tee\n";
        let Err(FileError::MissingColumns {
            missing,
            expected,
            found,
            format,
            detected,
        }) = read(InputFormat::Shopify, text.as_bytes(), "x.csv", &us())
        else {
            panic!("expected MissingColumns");
        };
        assert_eq!(format, "shopify");
        assert_eq!(missing, ["Lineitem price", "Financial Status"]);
        assert_eq!(found.len(), 5);
        assert_eq!(expected.len(), 79);
        assert_eq!(detected, None);
    }

    /// A Taobao export given as Shopify: the message names the format and the
    /// missing required columns, suggests the format the header is in, and
    /// does not list all the columns Shopify reads.
    #[test]
    fn wrong_format_names_the_missing_columns_and_suggests_the_detected_format() {
        let text = "订单编号,买家会员名,买家实际支付金额,订单状态,订单创建时间,宝贝标题,宝贝总数量
";
        let Err(e) = read(InputFormat::Shopify, text.as_bytes(), "x.csv", &us()) else {
            panic!("a Taobao header read as Shopify");
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("not a shopify file: missing required columns Name, Created at,"),
            "{msg}"
        );
        assert!(msg.contains("use --format taobao"), "{msg}");
        // Optional Shopify columns are not dumped.
        assert!(!msg.contains("Billing Province"), "{msg}");
        assert!(!msg.contains("Lineitem sku"), "{msg}");
        assert!(msg.len() < 400, "{} chars: {msg}", msg.len());
    }

    #[test]
    fn header_matching_is_trimmed_and_case_insensitive() {
        let text = " name ,EMAIL,financial status,created at,lineitem quantity,lineitem name,lineitem price\n\
                    #1,a@b.com,paid,2024-01-15T10:23:45-05:00,1,Tee,9.99\n";
        let out = read(InputFormat::Shopify, text.as_bytes(), "x.csv", &us()).unwrap();
        assert_eq!(ids(&out.orders), ["#1"]);
        assert_eq!(out.orders[0].lines[0].sku, "Tee");
    }

    #[test]
    fn empty_and_header_only() {
        assert!(matches!(
            read(InputFormat::Shopify, b"", "x.csv", &us()),
            Err(FileError::Empty { .. })
        ));
        let out = shopify(&[]);
        assert!(out.orders.is_empty() && out.rejected.is_empty());
    }

    #[test]
    fn bad_date_number_and_status_reject_their_orders_only() {
        let bad_date = with(head("#2", "paid"), "Created at", "15/01/2024");
        let bad_qty = item("#3", "1.5", "Mug", "3", "");
        let bad_price = item("#3", "1", "Mug", "three", "");
        let bad_status = head("#4", "shipped");
        let out = shopify(&[
            &head("#1", "paid"),
            &bad_date,
            &head("#3", "paid"),
            &bad_qty,
            &bad_price,
            &bad_status,
            &head("#5", "paid"),
        ]);
        assert_eq!(ids(&out.orders), ["#1", "#5"]);
        type Found<'a> = (u64, Option<&'a str>, Option<&'a str>);
        let got: Vec<Vec<Found>> = out
            .rejected
            .iter()
            .map(|r| {
                r.errors
                    .iter()
                    .map(|e| (e.line, e.column.as_deref(), e.value.as_deref()))
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            vec![
                vec![(3, Some("Created at"), Some("15/01/2024"))],
                vec![
                    (5, Some("Lineitem quantity"), Some("1.5")),
                    (6, Some("Lineitem price"), Some("three"))
                ],
                vec![(7, Some("Financial Status"), Some("shipped"))],
            ]
        );
        assert!(out.rejected[0].errors[0]
            .message
            .contains("2024-01-15 10:23:45 -0500"));
        assert!(out.rejected[2].errors[0]
            .message
            .contains("partially_refunded"));
        assert_eq!(out.rejected[1].raw_rows.len(), 3);
        assert_eq!(out.rejected[1].order_id.as_deref(), Some("#3"));
    }

    #[test]
    fn ragged_row_and_bad_utf8() {
        let good = csv_with(&COLUMNS, &[&head("#1", "paid")]);
        let mut bytes = good.clone().into_bytes();
        bytes.extend_from_slice(b"#2,a@b.com,paid\n");
        let row3 = csv_with(&COLUMNS, &[&head("#3", "paid")]);
        let row3 = row3.lines().nth(1).unwrap().replace("Tee - M", "T\u{e9}e");
        // Row 4: Latin-1 "Tée" (0xE9 is not UTF-8 on its own).
        let latin1: Vec<u8> = row3.chars().map(|c| c as u32 as u8).collect();
        bytes.extend_from_slice(&latin1);
        bytes.push(b'\n');
        bytes.extend_from_slice(
            csv_with(&COLUMNS, &[&head("#5", "paid")])
                .lines()
                .nth(1)
                .unwrap()
                .as_bytes(),
        );
        bytes.push(b'\n');
        let mut o = us();
        o.encoding = Some(Encoding::Utf8);
        let out = read(InputFormat::Shopify, &bytes, "x.csv", &o).unwrap();
        assert_eq!(ids(&out.orders), ["#1", "#5"]);
        let e = &out.rejected[0].errors[0];
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("3 fields but the header has 79"),
            "{}",
            e.message
        );
        let e = &out.rejected[1].errors[0];
        assert_eq!((e.line, e.column.as_deref()), (4, Some("Lineitem name")));
        assert!(e
            .message
            .contains("not valid UTF-8; if the file is GBK use --encoding gbk"));
        assert_eq!(out.rejected[1].raw_rows[0][17], "T\u{fffd}e");
    }
}
