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
}

/// The Shopify reader.
pub struct ShopifyReader<'a> {
    groups: Adjacent<CsvRows<'a>, Box<dyn FnMut(&RawRow) -> Option<String> + 'a>>,
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
    };
    let name_idx = cols.name;
    let key: Box<dyn FnMut(&RawRow) -> Option<String> + 'a> =
        Box::new(move |r: &RawRow| field(r, name_idx).map(str::to_string));
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
            source_line: first.line,
        };
        if status == OrderStatus::Refunded && order.refunded == Money::ZERO {
            order.refunded = order.gross_amount();
        }
        Ok(order)
    }
}
