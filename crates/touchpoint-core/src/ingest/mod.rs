//! Order export formats: parse files into normalised [`OrderRecord`]s.
//!
//! Each format reader streams: it holds one order's rows at a time, never the
//! file. A row that cannot be read becomes a [`Rejected`] value naming the file
//! line, column, value and accepted form; the reader goes on with the next
//! order. A file that is not in the format at all fails at once with a
//! [`FileError`].
//!
//! Formats: `canonical` (our own CSV and JSONL, see `docs/import.md`),
//! `shopify` (Shopify Admin "Export orders" CSV), `taobao` (Taobao/Tmall
//! seller order export, UTF-8 or GBK).
//!
//! **Rows of one order are adjacent.** The canonical and Shopify formats have
//! one row per order line; a reader groups consecutive rows with the same
//! order id into one order and never looks back. Rows of an order that are
//! split by another order's rows come out as two orders with the same id (the
//! exports we read always write them together). Rows whose fields are all
//! blank are skipped.
//!
//! **Rejected orders.** When any row of an order is bad, the whole order is
//! [`Rejected`]: one [`RowError`] per problem (1-based physical line, column,
//! value, accepted form) and the order's raw rows, so that they can be written
//! to a rejects file, fixed and imported again. Reading goes on with the next
//! order.
//!
//! **Encodings.** CSV files are read as bytes; each field is decoded in the
//! file's encoding (`ReadOptions::encoding`, else detected from the first
//! 64 KiB by [`detect_encoding`]). A row that does not decode is a row error;
//! a header that does not decode is [`FileError::Encoding`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::types::{ChannelName, Currency, Identifier, Money, OrderStatus};

/// The input formats `touchpoint import orders --format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Touchpoint's own CSV (or JSONL) format, one row per order line.
    Canonical,
    /// Shopify Admin "Export orders" CSV.
    Shopify,
    /// Taobao / Tmall seller order export (Chinese headers).
    Taobao,
}

impl InputFormat {
    /// Parse a format name.
    pub fn parse(s: &str) -> Result<Self, crate::types::ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "canonical" => Ok(Self::Canonical),
            "shopify" => Ok(Self::Shopify),
            "taobao" | "tmall" => Ok(Self::Taobao),
            _ => Err(crate::types::ParseError {
                expected: "one of canonical, shopify, taobao".into(),
            }),
        }
    }

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::Shopify => "shopify",
            Self::Taobao => "taobao",
        }
    }
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Text encodings of input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 (a byte-order mark is skipped).
    Utf8,
    /// GBK / GB18030, as Chinese Excel and Taobao exports write.
    Gbk,
}

/// Settings the readers need to normalise values.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The channel given on the command line (`--channel`). Canonical files may
    /// override it per row with a `channel` column.
    pub channel: Option<ChannelName>,
    /// Calling code for national phone numbers (`86`).
    pub default_country: String,
    /// Currency when a file does not say (`CNY`).
    pub default_currency: Currency,
    /// Time zone for local times without an offset (Taobao exports, canonical
    /// dates without offset).
    pub business_tz: chrono_tz::Tz,
    /// Force an encoding; `None` detects (UTF-8, else GBK).
    pub encoding: Option<Encoding>,
}

/// Who placed an order, as the file says. Identifiers are normalised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Customer {
    /// Strong identifiers found on the order (phone, email, member number,
    /// platform id on this channel, WeChat unionid), deduplicated.
    pub identifiers: Vec<Identifier>,
    /// Name as written (never used to join records).
    pub name: Option<String>,
    /// `f`, `m` or as written.
    pub gender: Option<String>,
    /// Birthday `YYYY-MM-DD`.
    pub birthday: Option<chrono::NaiveDate>,
    /// Region / province / city as written (never used to join records).
    pub region: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderLine {
    /// Stock keeping unit (the product key).
    pub sku: String,
    /// Product name, if the file has one.
    pub product_name: Option<String>,
    /// Brand, if the file has one (Shopify: Vendor).
    pub brand: Option<String>,
    /// Category, if the file has one.
    pub category: Option<String>,
    /// Units, at least 1.
    pub quantity: i64,
    /// Price per unit before discount.
    pub unit_price: Money,
    /// Cost per unit, if the file has one.
    pub unit_cost: Option<Money>,
    /// Discount on this line (positive reduces revenue).
    pub discount: Money,
}

impl OrderLine {
    /// quantity x unit price - discount.
    pub fn net_amount(&self) -> Money {
        Money::from_minor(self.quantity * self.unit_price.minor() - self.discount.minor())
    }
}

/// One order, with all its lines, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    /// The channel: the row's own `channel` column, else `--channel`.
    pub channel: ChannelName,
    /// The order id as the channel spells it (`#1001`, `2024111122334455`).
    pub order_id: String,
    /// When the order was placed, UTC.
    pub ordered_at: DateTime<Utc>,
    /// When it was paid, UTC, if known.
    pub paid_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: OrderStatus,
    /// Currency of all amounts.
    pub currency: Currency,
    /// Discount on the whole order not already in the lines.
    pub order_discount: Money,
    /// Amount refunded so far (0 unless refunded / partially refunded).
    pub refunded: Money,
    /// Who bought.
    pub customer: Customer,
    /// The lines, at least one.
    pub lines: Vec<OrderLine>,
    /// The marketing campaign the order came from, if the file says
    /// (canonical `campaign` column); read by the acquisition report's
    /// first-touch attribution (docs/acquisition.md).
    pub campaign: Option<String>,
    /// 1-based line of the file where this order's first row is.
    pub source_line: u64,
    /// Coupon codes the order used (canonical `coupon`, Shopify `Discount
    /// Code`, the API's and Segment's `coupon`), normalised upper case.
    pub coupon_codes: Vec<String>,
    /// The invite code the buyer came with (canonical `referral_code`
    /// column), canonical form: the order's member is attributed to it in
    /// the unit of work that writes the order (docs/rewards.md, Referrals).
    pub referral_code: Option<String>,
}

impl OrderRecord {
    /// Sum of the lines' net amounts minus the order discount: what was paid
    /// before refunds.
    pub fn gross_amount(&self) -> Money {
        let lines: i64 = self.lines.iter().map(|l| l.net_amount().minor()).sum();
        Money::from_minor(lines - self.order_discount.minor())
    }
}

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// 1-based physical line in the file (the header is line 1 in CSV files).
    pub line: u64,
    /// The column (header name) at fault, if one is.
    pub column: Option<String>,
    /// The offending value as found (may be empty).
    pub value: Option<String>,
    /// What was wrong and the accepted form, e.g. "expected a date such as 2024-11-11 10:00:00".
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c:?}")?;
        }
        if let Some(v) = &self.value {
            write!(f, ", value {v:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An order that could not be read, with its raw rows for the rejects file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// Order id if one could be read.
    pub order_id: Option<String>,
    /// Every problem found in the order's rows.
    pub errors: Vec<RowError>,
    /// The raw rows (as UTF-8 text fields) of the order, in file order, so they
    /// can be written out for fixing and re-importing. For JSONL, one field
    /// holding the raw line.
    pub raw_rows: Vec<Vec<String>>,
}

/// A file that cannot be read as the given format at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Required columns are missing. The message names the format, the
    /// missing columns and, when the header is another format's, that format.
    #[error("{}", missing_columns_message(format, missing, found, *detected))]
    MissingColumns {
        /// The format name.
        format: &'static str,
        /// What is missing.
        missing: Vec<String>,
        /// What the format reads (required, then optional); not in the message.
        expected: Vec<String>,
        /// The header found.
        found: Vec<String>,
        /// The format the header is in, when it is another one.
        detected: Option<InputFormat>,
    },
    /// No format was given and the header matches none.
    #[error(
        "cannot tell the format from {}: {}; pass --format canonical|shopify|taobao to force one",
        detect::some_columns(found, 8),
        detect::what_each_format_needs()
    )]
    UnknownFormat {
        /// The header found (empty when there is none).
        found: Vec<String>,
    },
    /// The file has no header (zero bytes or only blank lines).
    #[error("the file is empty: expected a header line with columns {expected:?}")]
    Empty {
        /// What the format needs.
        expected: Vec<String>,
    },
    /// The header itself cannot be decoded.
    #[error("cannot decode the header as {encoding}: {hint}")]
    Encoding {
        /// The encoding tried.
        encoding: &'static str,
        /// What to do.
        hint: String,
    },
    /// The format needs a channel and neither `--channel` nor (canonical
    /// CSV) a `channel` column gives one.
    #[error("no channel for {format} orders: {hint}")]
    NoChannel {
        /// The format name.
        format: &'static str,
        /// What to do.
        hint: String,
    },
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// A streaming reader of orders from one file.
pub trait OrderReader: Iterator<Item = Result<OrderRecord, Rejected>> {
    /// The header as found (written first in a rejects file); empty for JSONL.
    fn header(&self) -> &[String];
    /// Bytes consumed so far (for progress bars).
    fn bytes_read(&self) -> u64;
}

pub mod canonical;
mod common;
mod detect;
pub mod order;
pub mod shopify;
pub mod spend;
pub mod tags;
pub mod taobao;

pub use common::detect_encoding;
pub use detect::{detect_format, format_of_header, DETECT_SAMPLE_LEN};

fn missing_columns_message(
    format: &str,
    missing: &[String],
    found: &[String],
    detected: Option<InputFormat>,
) -> String {
    let mut s = format!(
        "not a {format} file: missing required column{} {}; found {}",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        detect::some_columns(found, 8)
    );
    if let Some(d) = detected {
        s.push_str(&format!(
            "; the header is a {d} file's: use --format {d}, or leave --format out to detect it"
        ));
    }
    s
}

/// Open a reader for `format` over `input`. `path_hint` (the file name) picks
/// CSV or JSONL for the canonical format (`.jsonl` / `.ndjson`); content that
/// starts with `{` is also read as JSONL.
pub fn open<'a>(
    format: InputFormat,
    input: Box<dyn std::io::Read + 'a>,
    path_hint: &str,
    options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    match format {
        InputFormat::Canonical => canonical::open(input, path_hint, options),
        InputFormat::Shopify => shopify::open(input, options),
        InputFormat::Taobao => taobao::open(input, options),
    }
}
