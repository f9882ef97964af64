//! Helpers shared by the format readers: encoding detection and decoding, a
//! streaming CSV row source that never fails on bad bytes, grouping of
//! adjacent rows into orders, and value parsers whose errors state the
//! accepted form.

use std::collections::HashSet;
use std::io::{Cursor, Read};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::{Encoding, FileError, Identifier, Money, RowError};

/// How many bytes are looked at to detect the encoding.
pub(crate) const SAMPLE_LEN: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Detect the encoding of the start of a file: UTF-8 if the sample decodes as
/// UTF-8 (a byte-order mark is allowed, and a sample cut in the middle of a
/// character still counts as UTF-8), else GBK.
///
/// When the sample is valid in neither (a damaged file), the encoding with
/// fewer malformed sequences wins, so that one bad byte in a UTF-8 file gives
/// a row error instead of the whole file read as GBK mojibake.
pub fn detect_encoding(sample: &[u8]) -> Encoding {
    let sample = sample.strip_prefix(UTF8_BOM).unwrap_or(sample);
    let utf8_errors = utf8_error_count(sample);
    if utf8_errors == 0 {
        return Encoding::Utf8;
    }
    let (text, _) = encoding_rs::GBK.decode_without_bom_handling(sample);
    let mut gbk_errors = text.chars().filter(|c| *c == '\u{fffd}').count();
    // A sample cut after the first byte of a two-byte character.
    if gbk_errors > 0 && text.ends_with('\u{fffd}') && sample.last().is_some_and(|b| *b >= 0x81) {
        gbk_errors -= 1;
    }
    if gbk_errors == 0 || gbk_errors <= utf8_errors {
        Encoding::Gbk
    } else {
        Encoding::Utf8
    }
}

/// Malformed UTF-8 sequences in `bytes`; a character cut at the very end is
/// not counted.
fn utf8_error_count(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => return n,
            Err(e) => match e.error_len() {
                // `None`: the input ended inside a character that was valid
                // so far (the sample was cut), not a malformed one.
                None => return n,
                Some(len) => {
                    n += 1;
                    bytes = &bytes[e.valid_up_to() + len..];
                }
            },
        }
    }
}

/// The encoding's name as shown to users.
pub(crate) fn encoding_name(enc: Encoding) -> &'static str {
    match enc {
        Encoding::Utf8 => "UTF-8",
        Encoding::Gbk => "GBK",
    }
}

/// What to tell a user whose bytes do not decode.
pub(crate) fn encoding_hint(enc: Encoding) -> &'static str {
    match enc {
        Encoding::Utf8 => "if the file is GBK use --encoding gbk",
        Encoding::Gbk => "if the file is UTF-8 use --encoding utf8",
    }
}

/// Decode bytes strictly; `None` if they are malformed in `enc`.
pub(crate) fn decode(enc: Encoding, bytes: &[u8]) -> Option<String> {
    match enc {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Encoding::Gbk => encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|c| c.into_owned()),
    }
}

/// Decode bytes, replacing malformed sequences with U+FFFD.
pub(crate) fn decode_lossy(enc: Encoding, bytes: &[u8]) -> String {
    match enc {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Gbk => encoding_rs::GBK
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The start of an input, read ahead for detection, and the whole input
/// (sample included, UTF-8 byte-order mark removed) to read from.
pub(crate) struct Peeked<'a> {
    /// Up to [`SAMPLE_LEN`] first bytes, without a byte-order mark.
    pub sample: Vec<u8>,
    /// The input from its start (after the byte-order mark).
    pub input: Box<dyn Read + 'a>,
    /// Bytes skipped at the start (the byte-order mark), for `bytes_read`.
    pub skipped: u64,
}

/// Read up to [`SAMPLE_LEN`] bytes ahead, drop a UTF-8 byte-order mark.
pub(crate) fn peek<'a>(mut input: Box<dyn Read + 'a>) -> Result<Peeked<'a>, FileError> {
    let mut sample = Vec::with_capacity(8192);
    (&mut input)
        .take(SAMPLE_LEN as u64)
        .read_to_end(&mut sample)?;
    let mut skipped = 0;
    if sample.starts_with(UTF8_BOM) {
        sample.drain(..UTF8_BOM.len());
        skipped = UTF8_BOM.len() as u64;
    }
    let input: Box<dyn Read + 'a> = Box::new(Cursor::new(sample.clone()).chain(input));
    Ok(Peeked {
        sample,
        input,
        skipped,
    })
}

/// One physical CSV record, decoded to text.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// 1-based line of the file where the record starts.
    pub line: u64,
    /// The fields as text (lossy-decoded when `errors` says they are not valid).
    pub fields: Vec<String>,
    /// Problems found before looking at values: bytes that do not decode, a
    /// wrong number of fields, a read error. Values of such a row are not
    /// interpreted further.
    pub errors: Vec<RowError>,
}

/// A streaming source of CSV rows: reads [`csv::ByteRecord`]s (so bad bytes
/// are a row error, not a crash), decodes them in the file's encoding, checks
/// the field count against the header, skips rows whose fields are all blank.
pub(crate) struct CsvRows<'a> {
    rdr: csv::Reader<Box<dyn Read + 'a>>,
    enc: Encoding,
    header: Vec<String>,
    rec: csv::ByteRecord,
    skipped: u64,
    finished: bool,
}

impl<'a> CsvRows<'a> {
    /// Open over an input: pick the encoding (`forced` or detected), read the
    /// header (the first record that is not blank), trim its names and strip a
    /// byte-order mark. `expected` is used in [`FileError::Empty`].
    pub fn open(
        input: Box<dyn Read + 'a>,
        forced: Option<Encoding>,
        expected: &[&str],
    ) -> Result<Self, FileError> {
        let peeked = peek(input)?;
        Self::from_peeked(peeked, forced, expected)
    }

    /// As [`CsvRows::open`], over an input already peeked.
    pub fn from_peeked(
        peeked: Peeked<'a>,
        forced: Option<Encoding>,
        expected: &[&str],
    ) -> Result<Self, FileError> {
        let enc = forced.unwrap_or_else(|| detect_encoding(&peeked.sample));
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(peeked.input);
        let mut me = Self {
            rdr,
            enc,
            header: Vec::new(),
            rec: csv::ByteRecord::new(),
            skipped: peeked.skipped,
            finished: false,
        };
        loop {
            let more = me.rdr.read_byte_record(&mut me.rec).map_err(csv_to_file)?;
            if !more {
                return Err(FileError::Empty {
                    expected: expected.iter().map(|s| s.to_string()).collect(),
                });
            }
            if is_blank(&me.rec) {
                continue;
            }
            let mut header = Vec::with_capacity(me.rec.len());
            for (i, f) in me.rec.iter().enumerate() {
                let Some(text) = decode(enc, f) else {
                    return Err(FileError::Encoding {
                        encoding: encoding_name(enc),
                        hint: format!(
                            "header column {} {:?} is not valid {}; {}",
                            i + 1,
                            decode_lossy(enc, f),
                            encoding_name(enc),
                            encoding_hint(enc)
                        ),
                    });
                };
                header.push(text.trim_start_matches('\u{feff}').trim().to_string());
            }
            me.header = header;
            return Ok(me);
        }
    }

    /// The header, trimmed.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.rdr.position().byte() + self.skipped
    }

    /// Index of a column, header names compared trimmed and case-insensitively.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name) || h.to_lowercase() == name.to_lowercase())
    }

    /// Index of a column whose name must match exactly (after trimming).
    pub fn column_exact(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter()
        .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}

fn csv_to_file(e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::Io(io),
        other => FileError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

impl Iterator for CsvRows<'_> {
    type Item = RawRow;

    fn next(&mut self) -> Option<RawRow> {
        loop {
            if self.finished {
                return None;
            }
            let line = self.rdr.position().line();
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(false) => {
                    self.finished = true;
                    return None;
                }
                Err(e) => {
                    // Only I/O errors can happen with byte records and
                    // flexible(true); the rest of the file is unreadable.
                    self.finished = true;
                    return Some(RawRow {
                        line,
                        fields: Vec::new(),
                        errors: vec![RowError {
                            line,
                            column: None,
                            value: None,
                            message: format!("could not read the file from here on: {e}"),
                        }],
                    });
                }
                Ok(true) => {}
            }
            if is_blank(&self.rec) {
                continue;
            }
            let line = self.rec.position().map(|p| p.line()).unwrap_or(line);
            let mut fields = Vec::with_capacity(self.rec.len());
            let mut errors = Vec::new();
            for (i, f) in self.rec.iter().enumerate() {
                match decode(self.enc, f) {
                    Some(s) => fields.push(s),
                    None => {
                        let lossy = decode_lossy(self.enc, f);
                        if errors.is_empty() {
                            errors.push(RowError {
                                line,
                                column: Some(
                                    self.header
                                        .get(i)
                                        .cloned()
                                        .unwrap_or_else(|| format!("field {}", i + 1)),
                                ),
                                value: Some(lossy.clone()),
                                message: format!(
                                    "line {line} is not valid {}; {}",
                                    encoding_name(self.enc),
                                    encoding_hint(self.enc)
                                ),
                            });
                        }
                        fields.push(lossy);
                    }
                }
            }
            if fields.len() != self.header.len() {
                errors.push(RowError {
                    line,
                    column: None,
                    value: None,
                    message: format!(
                        "the row has {} fields but the header has {}; expected one field per header column (check for an unquoted comma or a missing field)",
                        fields.len(),
                        self.header.len()
                    ),
                });
            }
            return Some(RawRow {
                line,
                fields,
                errors,
            });
        }
    }
}

/// Groups adjacent items with the same key: the rows of one order. An item
/// whose key is `None` (no order id) is a group of its own.
pub(crate) struct Adjacent<I: Iterator, F> {
    /// The underlying items.
    pub inner: I,
    pending: Option<I::Item>,
    key: F,
}

impl<I: Iterator, F: FnMut(&I::Item) -> Option<String>> Adjacent<I, F> {
    /// Group `inner` by `key`.
    pub fn new(inner: I, key: F) -> Self {
        Self {
            inner,
            pending: None,
            key,
        }
    }
}

impl<I: Iterator, F: FnMut(&I::Item) -> Option<String>> Iterator for Adjacent<I, F> {
    type Item = Vec<I::Item>;

    fn next(&mut self) -> Option<Vec<I::Item>> {
        let first = self.pending.take().or_else(|| self.inner.next())?;
        let Some(k) = (self.key)(&first) else {
            return Some(vec![first]);
        };
        let mut group = vec![first];
        for item in self.inner.by_ref() {
            if (self.key)(&item).as_deref() == Some(k.as_str()) {
                group.push(item);
            } else {
                self.pending = Some(item);
                break;
            }
        }
        Some(group)
    }
}

/// Required columns missing from `header` (found by `find`).
pub(crate) fn missing_columns(
    format: &'static str,
    required: &[&str],
    optional: &[&str],
    header: &[String],
    mut find: impl FnMut(&str) -> bool,
) -> Result<(), FileError> {
    let missing: Vec<String> = required
        .iter()
        .filter(|c| !find(c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(FileError::MissingColumns {
            format,
            missing,
            expected: required
                .iter()
                .chain(optional)
                .map(|s| s.to_string())
                .collect(),
            found: header.to_vec(),
            detected: other_format(format, header),
        })
    }
}

/// The format `header` is in, if it is not `format`.
pub(crate) fn other_format(format: &str, header: &[String]) -> Option<super::InputFormat> {
    super::format_of_header(header).filter(|f| f.name() != format)
}

/// Collects the problems of one row, each naming line, column and value.
pub(crate) struct Errs {
    /// The row's line.
    pub line: u64,
    /// Problems so far.
    pub list: Vec<RowError>,
}

impl Errs {
    /// No problems yet on `line`.
    pub fn new(line: u64) -> Self {
        Self {
            line,
            list: Vec::new(),
        }
    }

    /// Record a problem with a column's value.
    pub fn push(&mut self, column: &str, value: &str, message: impl Into<String>) {
        self.list.push(RowError {
            line: self.line,
            column: Some(column.to_string()),
            value: Some(value.to_string()),
            message: message.into(),
        });
    }

    /// Record a problem with the row as a whole.
    pub fn push_row(&mut self, message: impl Into<String>) {
        self.list.push(RowError {
            line: self.line,
            column: None,
            value: None,
            message: message.into(),
        });
    }

    /// A required value: report it if absent.
    pub fn required<'v>(
        &mut self,
        column: &str,
        v: Option<&'v str>,
        form: &str,
    ) -> Option<&'v str> {
        if v.is_none() {
            self.push(
                column,
                "",
                format!("{column} is required but empty; expected {form}"),
            );
        }
        v
    }

    /// Parse a date-time (see [`parse_datetime`]).
    pub fn datetime(
        &mut self,
        column: &str,
        v: &str,
        tz: chrono_tz::Tz,
        form: &str,
    ) -> Option<DateTime<Utc>> {
        let r = parse_datetime(v, tz);
        if r.is_none() {
            self.push(column, v, format!("expected {form}"));
        }
        r
    }

    /// Parse an amount of money.
    pub fn money(&mut self, column: &str, v: &str) -> Option<Money> {
        match Money::parse(v) {
            Ok(m) => Some(m),
            Err(e) => {
                self.push(column, v, format!("expected {e}"));
                None
            }
        }
    }

    /// Parse an amount of money that may not be negative.
    pub fn money_nonneg(&mut self, column: &str, v: &str) -> Option<Money> {
        match Money::parse(v) {
            Ok(m) if m.minor() >= 0 => Some(m),
            _ => {
                self.push(
                    column,
                    v,
                    "expected an amount of 0 or more with at most two decimals, such as 129 or 129.90",
                );
                None
            }
        }
    }

    /// Parse a quantity: a whole number of at least 1.
    pub fn quantity(&mut self, column: &str, v: &str) -> Option<i64> {
        match parse_quantity(v) {
            Some(q) => Some(q),
            None => {
                self.push(
                    column,
                    v,
                    "expected a whole number of 1 or more, such as 1 or 3",
                );
                None
            }
        }
    }
}

/// A whole number of at least 1 (`3`, ` 3 `; also `3.0`/`3.00` as spreadsheets
/// write them).
pub(crate) fn parse_quantity(v: &str) -> Option<i64> {
    let t = v.trim();
    let t = match t.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.bytes().all(|b| b == b'0') => i,
        Some(_) => return None,
        None => t,
    };
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok().filter(|q| *q >= 1)
}

/// Parse a date-time as the readers accept it:
///
/// - RFC 3339 with an offset or `Z`: `2024-11-11T10:00:00+08:00`;
/// - with a numeric offset after a space (Shopify): `2024-01-15 10:23:45 -0500`;
/// - local times in `tz`: `2024-11-11 10:00:00`, `2024-11-11T10:00:00`,
///   `2024/11/11 0:01:23`, `2024-11-11 10:00` and `2024-11-11` (midnight).
pub(crate) fn parse_datetime(v: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let t = v.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return local_to_utc(n, tz);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return local_to_utc(d.and_hms_opt(0, 0, 0)?, tz);
        }
    }
    None
}

/// A local time in `tz` to UTC. Ambiguous times (clocks going back) take the
/// earlier instant; times in a gap (clocks going forward) are read as if the
/// clock had not moved yet (one hour later on the new clock).
fn local_to_utc(n: NaiveDateTime, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&n).earliest() {
        Some(d) => Some(d.with_timezone(&Utc)),
        None => tz
            .from_local_datetime(&(n + chrono::Duration::hours(1)))
            .earliest()
            .map(|d| d.with_timezone(&Utc)),
    }
}

/// Identifiers without repeats, in first-seen order.
#[derive(Default)]
pub(crate) struct IdSet {
    seen: HashSet<Identifier>,
    /// The identifiers.
    pub list: Vec<Identifier>,
}

impl IdSet {
    /// Add if new.
    pub fn add(&mut self, id: Identifier) {
        if self.seen.insert(id.clone()) {
            self.list.push(id);
        }
    }
}

/// A trimmed, non-empty field of a row.
pub(crate) fn field(row: &RawRow, idx: Option<usize>) -> Option<&str> {
    let v = row.fields.get(idx?)?.trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_utf8_even_when_cut_mid_character() {
        let text = "订单编号,买家会员名\n".as_bytes();
        assert_eq!(detect_encoding(text), Encoding::Utf8);
        assert_eq!(detect_encoding(&text[..2]), Encoding::Utf8);
        let mut bom = UTF8_BOM.to_vec();
        bom.extend_from_slice(text);
        assert_eq!(detect_encoding(&bom), Encoding::Utf8);
        let (gbk, _, _) = encoding_rs::GBK.encode("订单编号,买家会员名\n");
        assert_eq!(detect_encoding(&gbk), Encoding::Gbk);
        assert_eq!(detect_encoding(b""), Encoding::Utf8);
        // GBK cut after a lead byte is still GBK.
        assert_eq!(detect_encoding(&gbk[..3]), Encoding::Gbk);
        // One stray byte in a UTF-8 file full of Chinese: still UTF-8.
        let mut damaged = "订单编号,买家会员名\n张三,李四\n".repeat(5).into_bytes();
        damaged.push(0xFF);
        damaged.extend_from_slice("王五\n".as_bytes());
        assert_eq!(detect_encoding(&damaged), Encoding::Utf8);
    }

    #[test]
    fn dates_in_all_accepted_forms() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let want = "2024-11-11T02:00:00Z";
        for s in [
            "2024-11-11 10:00:00",
            "2024-11-11T10:00:00",
            "2024-11-11T10:00:00+08:00",
            "2024-11-11T02:00:00Z",
            "2024-11-10 21:00:00 -0500",
            "2024-11-11 10:00:00 +0800",
            "2024/11/11 10:00:00",
            "2024-11-11 10:00",
        ] {
            assert_eq!(
                parse_datetime(s, tz)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                want,
                "{s}"
            );
        }
        assert_eq!(
            parse_datetime("2024/11/11 0:01:23", tz)
                .unwrap()
                .to_rfc3339(),
            "2024-11-10T16:01:23+00:00"
        );
        assert_eq!(
            parse_datetime("2024-11-11", tz).unwrap().to_rfc3339(),
            "2024-11-10T16:00:00+00:00"
        );
        for bad in [
            "",
            "11/11/2024",
            "2024-13-01",
            "yesterday",
            "2024-11-11 25:00:00",
        ] {
            assert!(parse_datetime(bad, tz).is_none(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("3"), Some(3));
        assert_eq!(parse_quantity(" 2.00 "), Some(2));
        for bad in ["0", "-1", "1.5", "", "x", "2."] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn adjacent_groups() {
        let items = vec![(1, "a"), (2, "a"), (3, ""), (4, "b"), (5, "a")];
        let groups: Vec<Vec<i32>> = Adjacent::new(items.into_iter(), |x: &(i32, &str)| {
            (!x.1.is_empty()).then(|| x.1.to_string())
        })
        .map(|g| g.into_iter().map(|x| x.0).collect())
        .collect();
        assert_eq!(groups, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
    }
}

/// Helpers for the readers' tests.
#[cfg(test)]
pub(crate) mod testutil {
    use super::super::*;

    /// Options as a Chinese brand would pass them.
    pub fn opts(channel: Option<&str>) -> ReadOptions {
        ReadOptions {
            channel: channel.map(|c| ChannelName::parse(c).unwrap()),
            default_country: "86".into(),
            default_currency: Currency::parse("CNY").unwrap(),
            business_tz: "Asia/Shanghai".parse().unwrap(),
            encoding: None,
        }
    }

    /// What a reader gave.
    pub struct Out {
        pub orders: Vec<OrderRecord>,
        pub rejected: Vec<Rejected>,
        pub header: Vec<String>,
        pub bytes_read: u64,
    }

    /// Read a whole input.
    pub fn read(
        format: InputFormat,
        bytes: &[u8],
        hint: &str,
        options: &ReadOptions,
    ) -> Result<Out, FileError> {
        let mut r = open(format, Box::new(bytes), hint, options)?;
        let mut orders = Vec::new();
        let mut rejected = Vec::new();
        for item in r.by_ref() {
            match item {
                Ok(o) => orders.push(o),
                Err(x) => rejected.push(x),
            }
        }
        Ok(Out {
            orders,
            rejected,
            header: r.header().to_vec(),
            bytes_read: r.bytes_read(),
        })
    }

    /// A CSV text with `columns` as header and rows given as (column, value)
    /// pairs; other columns are empty.
    pub fn csv_with(columns: &[&str], rows: &[&[(&str, &str)]]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(columns).unwrap();
        for row in rows {
            let rec: Vec<&str> = columns
                .iter()
                .map(|c| {
                    row.iter()
                        .find(|(k, _)| k == c)
                        .map(|(_, v)| *v)
                        .unwrap_or("")
                })
                .collect();
            w.write_record(rec).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    /// The ids of the orders read.
    pub fn ids(orders: &[OrderRecord]) -> Vec<&str> {
        orders.iter().map(|o| o.order_id.as_str()).collect()
    }
}
