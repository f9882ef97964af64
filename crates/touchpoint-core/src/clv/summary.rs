//! From transactions to the per-customer summaries the models use:
//! frequency, recency, age (T), mean repeat spend, and holdout counts.
//!
//! The log is columnar, with customer ids interned to `u32` once while
//! reading, so building summaries for ten million transactions allocates no
//! per-transaction strings. Parsing and summarising run on all cores (rayon).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ClvError;

/// One purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Customer id as written in the source.
    pub customer: String,
    /// Purchase date.
    pub date: NaiveDate,
    /// Amount spent (currency units, e.g. dollars).
    pub amount: f64,
}

/// The time unit in which recency, T and horizons are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Days.
    Day,
    /// Weeks of 7 days (the unit of the CDNOW literature).
    Week,
    /// Months of 365.25 / 12 = 30.4375 days.
    Month,
}

impl TimeUnit {
    /// Length of one unit in days.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.25 / 12.0,
        }
    }

    /// Number of units in a month of 365.25 / 12 days.
    pub fn per_month(self) -> f64 {
        TimeUnit::Month.days() / self.days()
    }

    /// Parse `day`, `week` or `month` (plural and short forms accepted).
    pub fn parse(s: &str) -> Result<Self, ClvError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" | "days" | "d" => Ok(TimeUnit::Day),
            "week" | "weeks" | "w" => Ok(TimeUnit::Week),
            "month" | "months" | "m" => Ok(TimeUnit::Month),
            other => Err(ClvError::Invalid(format!(
                "unknown time unit {other:?}: use day, week or month"
            ))),
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
            TimeUnit::Month => "month",
        }
    }
}

/// Days since 1970-01-01 of a date.
pub fn epoch_day(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - 719_163
}

/// The date of a day number from [`epoch_day`].
pub fn date_of_epoch_day(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + 719_163).expect("day number in range")
}

/// A fast non-cryptographic hasher for interning ids: the Fx hash of rustc
/// with a final avalanche step.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(FX_SEED);
        }
        for &b in chunks.remainder() {
            self.hash = (self.hash.rotate_left(5) ^ b as u64).wrapping_mul(FX_SEED);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(FX_SEED);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    /// Finalised with murmur3's fmix64 so that bytes which only reach the
    /// high bits of the product (e.g. the last characters of `C0000001`)
    /// still spread over the low bits hashbrown uses for buckets.
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A columnar transaction log: customer ids interned to indices into `ids`.
#[derive(Debug, Clone, Default)]
pub struct TransactionLog {
    /// Distinct customer ids, in order of first appearance.
    pub ids: Vec<String>,
    /// Index into `ids` of each transaction's customer.
    pub customer: Vec<u32>,
    /// Day of each transaction (days since 1970-01-01, see [`epoch_day`]).
    pub day: Vec<i32>,
    /// Amount of each transaction.
    pub amount: Vec<f64>,
    index: HashMap<String, u32>,
}

impl TransactionLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build from transactions.
    pub fn from_transactions<'a>(txs: impl IntoIterator<Item = &'a Transaction>) -> Self {
        let mut log = Self::new();
        for t in txs {
            log.push(&t.customer, t.date, t.amount);
        }
        log
    }

    /// Build from columns: transaction `i` belongs to `ids[customer[i]]`, on
    /// day `day[i]` (see [`epoch_day`]), for `amount[i]`. Ids must be
    /// distinct; every index must be in range and the columns equally long.
    pub fn from_columns(
        ids: Vec<String>,
        customer: Vec<u32>,
        day: Vec<i32>,
        amount: Vec<f64>,
    ) -> Result<Self, ClvError> {
        if customer.len() != day.len() || customer.len() != amount.len() {
            return Err(ClvError::Invalid(format!(
                "transaction columns differ in length: {} customers, {} days, {} amounts",
                customer.len(),
                day.len(),
                amount.len()
            )));
        }
        if let Some(c) = customer.iter().find(|&&c| c as usize >= ids.len()) {
            return Err(ClvError::Invalid(format!(
                "customer index {c} out of range ({} ids)",
                ids.len()
            )));
        }
        let mut log = TransactionLog {
            ids,
            customer,
            day,
            amount,
            index: HashMap::new(),
        };
        log.rebuild_index();
        if log.index.len() != log.ids.len() {
            return Err(ClvError::Invalid("customer ids are not distinct".into()));
        }
        Ok(log)
    }

    /// Add one transaction.
    pub fn push(&mut self, customer: &str, date: NaiveDate, amount: f64) {
        if self.index.len() != self.ids.len() {
            self.rebuild_index();
        }
        let id = match self.index.get(customer) {
            Some(&i) => i,
            None => {
                let i = self.ids.len() as u32;
                self.ids.push(customer.to_string());
                self.index.insert(customer.to_string(), i);
                i
            }
        };
        self.customer.push(id);
        self.day.push(epoch_day(date));
        self.amount.push(amount);
    }

    fn rebuild_index(&mut self) {
        self.index = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    /// True when there are no transactions.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    /// Date of the last transaction.
    pub fn last_date(&self) -> Option<NaiveDate> {
        self.day.par_iter().copied().max().map(date_of_epoch_day)
    }

    /// Date of the first transaction.
    pub fn first_date(&self) -> Option<NaiveDate> {
        self.day.par_iter().copied().min().map(date_of_epoch_day)
    }
}

/// Layout of a transaction file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionFormat {
    /// Comma-separated with a header naming `customer_id`, `date`, `amount`
    /// (any order, extra columns ignored); dates `YYYY-MM-DD` or `YYYYMMDD`.
    Csv,
    /// The CDNOW logs: whitespace-separated, optional header; 4 columns
    /// (id, date, cds, dollars) or 5 (master id, sample id, date, cds,
    /// dollars). The first column is the customer id.
    Cdnow,
}

const DATE_FORM: &str = "a date YYYY-MM-DD or YYYYMMDD, e.g. 2024-03-31";
const AMOUNT_FORM: &str = "a decimal number such as 29.33";

/// Parse a date `YYYY-MM-DD` or `YYYYMMDD` into a day number.
pub fn parse_day(s: &[u8]) -> Option<i32> {
    let digits = |b: &[u8]| -> Option<u32> {
        let mut v = 0u32;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    let (y, m, d) = match s.len() {
        8 => (digits(&s[0..4])?, digits(&s[4..6])?, digits(&s[6..8])?),
        10 if s[4] == b'-' && s[7] == b'-' => {
            (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?)
        }
        _ => return None,
    };
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m as usize - 1];
    if d > dim {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm).
    let (y, m, d) = (y as i64, m as i64, d as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) as i32)
}

/// Powers of ten that are exact in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parse a decimal amount. Plain decimals (`-12.34`: at most 15 digits)
/// take Clinger's fast path: the digits as an exact integer divided by an
/// exact power of ten, one correctly rounded division, so the result is
/// the same as `str::parse`. Anything else (exponents, spaces, long
/// numbers) goes through `str::parse`.
fn parse_amount(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let mut mantissa = 0u64;
    let mut n_digits = 0usize;
    let mut frac = None;
    let mut plain = !digits.is_empty() && digits.len() <= 16;
    if plain {
        for (i, &b) in digits.iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + (b - b'0') as u64;
                    n_digits += 1;
                }
                b'.' if frac.is_none() => frac = Some(digits.len() - i - 1),
                _ => {
                    plain = false;
                    break;
                }
            }
        }
    }
    if plain && n_digits > 0 && n_digits <= 15 {
        let v = mantissa as f64 / POW10[frac.unwrap_or(0)];
        return Some(if neg { -v } else { v });
    }
    let s = std::str::from_utf8(s).ok()?.trim();
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A chunk of the file, parsed straight into its part of the final
/// columns (customers as chunk-local ids until merged).
struct Chunk<'a, 'o> {
    ids: Vec<&'a [u8]>,
    /// Local id -> index into `ids`.
    map: FxMap<&'a [u8], u32>,
    customer: &'o mut [u32],
    day: &'o mut [i32],
    amount: &'o mut [f64],
    /// Rows written.
    n: usize,
}

impl Chunk<'_, '_> {
    #[inline]
    fn push(&mut self, customer: u32, day: i32, amount: f64) {
        self.customer[self.n] = customer;
        self.day[self.n] = day;
        self.amount[self.n] = amount;
        self.n += 1;
    }
}

/// Split a CSV line without quotes, returning the id, date and amount
/// fields (or `None` when the line has too few fields).
#[inline]
fn fields_fast(line: &[u8], cols: Columns) -> Option<[&[u8]; 3]> {
    let need = cols.id.max(cols.date).max(cols.amount);
    let mut out: [&[u8]; 3] = [&[], &[], &[]];
    let mut field = 0;
    let mut start = 0;
    for i in 0..=line.len() {
        if i == line.len() || line[i] == b',' {
            let f = &line[start..i];
            if field == cols.id {
                out[0] = f;
            }
            if field == cols.date {
                out[1] = f;
            }
            if field == cols.amount {
                out[2] = f;
            }
            if field == need {
                return Some(out);
            }
            field += 1;
            start = i + 1;
        }
    }
    None
}

/// Split a `customer_id,date,amount` line without quotes: the id up to the
/// first comma, then the date (the comma after a 10-byte `YYYY-MM-DD` is
/// looked at first), then the rest. A line with more fields gives an amount
/// that does not parse, and goes through the general path.
#[inline]
fn fields_simple(line: &[u8]) -> Option<[&[u8]; 3]> {
    let c1 = memchr::memchr(b',', line)?;
    let rest = &line[c1 + 1..];
    let c2 = if rest.len() > 10 && rest[10] == b',' {
        10
    } else {
        memchr::memchr(b',', rest)?
    };
    Some([&line[..c1], &rest[..c2], &rest[c2 + 1..]])
}

struct LocalError {
    line_in_chunk: usize,
    field: &'static str,
    expected: &'static str,
    got: String,
}

/// Split a CSV line into fields; handles double-quoted fields.
fn split_csv<'a>(line: &'a [u8], out: &mut Vec<&'a [u8]>) {
    out.clear();
    if !line.contains(&b'"') {
        out.extend(line.split(|&b| b == b','));
        return;
    }
    let mut i = 0;
    while i <= line.len() {
        if i < line.len() && line[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < line.len() && line[j] != b'"' {
                j += 1;
            }
            out.push(&line[start..j.min(line.len())]);
            // Skip to the next comma.
            while j < line.len() && line[j] != b',' {
                j += 1;
            }
            i = j + 1;
        } else {
            let start = i;
            let mut j = i;
            while j < line.len() && line[j] != b',' {
                j += 1;
            }
            out.push(&line[start..j]);
            i = j + 1;
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[derive(Clone, Copy)]
struct Columns {
    id: usize,
    date: usize,
    amount: usize,
    csv: bool,
    /// The header is exactly `customer_id,date,amount` (in this order).
    simple: bool,
}

/// Parse `text` into the output slices, which must hold at least one row
/// per line.
fn parse_chunk<'a, 'o>(
    text: &'a [u8],
    cols: Columns,
    (customer, day, amount): (&'o mut [u32], &'o mut [i32], &'o mut [f64]),
) -> Result<Chunk<'a, 'o>, LocalError> {
    let est = text.len() / 24 + 1;
    let mut chunk = Chunk {
        ids: Vec::with_capacity(est / 8),
        map: FxMap::with_capacity_and_hasher(est / 8, Default::default()),
        customer,
        day,
        amount,
        n: 0,
    };
    let mut fields: Vec<&'a [u8]> = Vec::with_capacity(8);
    let mut last: Option<(&'a [u8], u32)> = None;
    // Plain CSV (no quotes anywhere in the chunk): fields by position, no
    // per-line vector; anything unusual on a line falls back to the general
    // path below, which also produces the error messages.
    let quoted = cols.csv && text.contains(&b'"');
    let text_end = text.strip_suffix(b"\n").unwrap_or(text);
    let lines = memchr::memchr_iter(b'\n', text_end)
        .chain(std::iter::once(text_end.len()))
        .scan(0usize, |start, end| {
            let line = &text_end[*start..end];
            *start = end + 1;
            Some(line)
        });
    for (n, raw) in lines.enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if cols.csv && !quoted {
            let split = if cols.simple {
                fields_simple(line)
            } else {
                fields_fast(line, cols)
            };
            if let Some([id, date, amount]) = split {
                let clean_id = matches!((id.first(), id.last()),
                    (Some(f), Some(l)) if !f.is_ascii_whitespace() && !l.is_ascii_whitespace());
                if let (true, Some(day), Some(amount)) =
                    (clean_id, parse_day(date), parse_amount(amount))
                {
                    let cid = match last {
                        Some((prev, c)) if prev == id => c,
                        _ => {
                            let next = chunk.ids.len() as u32;
                            let c = *chunk.map.entry(id).or_insert_with(|| {
                                chunk.ids.push(id);
                                next
                            });
                            last = Some((id, c));
                            c
                        }
                    };
                    chunk.push(cid, day, amount);
                    continue;
                }
            }
        }
        if trim(line).is_empty() {
            continue;
        }
        if cols.csv {
            split_csv(line, &mut fields);
        } else {
            fields.clear();
            fields.extend(
                line.split(|b| b.is_ascii_whitespace())
                    .filter(|f| !f.is_empty()),
            );
        }
        let need = cols.id.max(cols.date).max(cols.amount);
        if fields.len() <= need {
            return Err(LocalError {
                line_in_chunk: n,
                field: "row",
                expected: if cols.csv {
                    "customer_id,date,amount"
                } else {
                    "id date cds dollars (4 or 5 columns)"
                },
                got: String::from_utf8_lossy(line).into_owned(),
            });
        }
        let id = trim(fields[cols.id]);
        if id.is_empty() {
            return Err(LocalError {
                line_in_chunk: n,
                field: "customer_id",
                expected: "a non-empty customer id",
                got: String::new(),
            });
        }
        let day = parse_day(trim(fields[cols.date])).ok_or_else(|| LocalError {
            line_in_chunk: n,
            field: "date",
            expected: DATE_FORM,
            got: String::from_utf8_lossy(fields[cols.date]).into_owned(),
        })?;
        let amount = parse_amount(fields[cols.amount]).ok_or_else(|| LocalError {
            line_in_chunk: n,
            field: "amount",
            expected: AMOUNT_FORM,
            got: String::from_utf8_lossy(fields[cols.amount]).into_owned(),
        })?;
        // Consecutive rows usually belong to the same customer.
        let cid = match last {
            Some((prev, c)) if prev == id => c,
            _ => {
                let next = chunk.ids.len() as u32;
                let c = *chunk.map.entry(id).or_insert_with(|| {
                    chunk.ids.push(id);
                    next
                });
                last = Some((id, c));
                c
            }
        };
        chunk.push(cid, day, amount);
    }
    Ok(chunk)
}

/// Read transactions from the bytes of a file.
///
/// Errors name the 1-based line, the field and the accepted form.
pub fn read_transactions(
    bytes: &[u8],
    format: TransactionFormat,
) -> Result<TransactionLog, ClvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Header handling.
    let first_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let first = bytes[..first_end]
        .strip_suffix(b"\r")
        .unwrap_or(&bytes[..first_end]);
    let (cols, body_start) = match format {
        TransactionFormat::Csv => {
            let mut fields = Vec::new();
            split_csv(first, &mut fields);
            let names: Vec<String> = fields
                .iter()
                .map(|f| String::from_utf8_lossy(trim(f)).to_ascii_lowercase())
                .collect();
            let find = |name: &'static str| {
                names
                    .iter()
                    .position(|n| n == name)
                    .ok_or(ClvError::MissingColumn(name))
            };
            (
                Columns {
                    id: find("customer_id")?,
                    date: find("date")?,
                    amount: find("amount")?,
                    csv: true,
                    simple: names.len() == 3
                        && (find("customer_id")?, find("date")?, find("amount")?) == (0, 1, 2),
                },
                (first_end + 1).min(bytes.len()),
            )
        }
        TransactionFormat::Cdnow => {
            let fields: Vec<&[u8]> = first
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty())
                .collect();
            let header = fields
                .first()
                .map(|f| !f.iter().all(u8::is_ascii_digit))
                .unwrap_or(false);
            let ncols = if header {
                fields.len()
            } else {
                fields.len().max(4)
            };
            let cols = if ncols >= 5 {
                Columns {
                    id: 0,
                    date: 2,
                    amount: 4,
                    csv: false,
                    simple: false,
                }
            } else {
                Columns {
                    id: 0,
                    date: 1,
                    amount: 3,
                    csv: false,
                    simple: false,
                }
            };
            (
                cols,
                if header {
                    (first_end + 1).min(bytes.len())
                } else {
                    0
                },
            )
        }
    };
    let header_lines = usize::from(body_start > 0);
    let body = &bytes[body_start..];
    // Split into chunks at line boundaries.
    // Two chunks per thread: ids are merged by looking them up in earlier
    // chunks' maps, so fewer chunks means less merging.
    let target = (rayon::current_num_threads() * 2).max(1);
    let size = (body.len() / target).max(1 << 16);
    let mut bounds = vec![0usize];
    let mut pos = 0;
    while pos < body.len() {
        let mut end = (pos + size).min(body.len());
        while end < body.len() && body[end - 1] != b'\n' {
            end += 1;
        }
        bounds.push(end);
        pos = end;
    }
    // One row per line at most: size the columns by counting line ends, and
    // let every chunk parse straight into its part of them.
    let caps: Vec<usize> = bounds
        .par_windows(2)
        .map(|w| memchr::memchr_iter(b'\n', &body[w[0]..w[1]]).count() + 1)
        .collect();
    let cap_total: usize = caps.iter().sum();
    let mut customer = vec![0u32; cap_total];
    let mut day = vec![0i32; cap_total];
    let mut amount = vec![0f64; cap_total];
    let mut outs = Vec::with_capacity(caps.len());
    {
        let (mut cs, mut ds, mut am) = (&mut customer[..], &mut day[..], &mut amount[..]);
        for &n in &caps {
            let (c0, c1) = cs.split_at_mut(n);
            let (d0, d1) = ds.split_at_mut(n);
            let (a0, a1) = am.split_at_mut(n);
            outs.push((c0, d0, a0));
            (cs, ds, am) = (c1, d1, a1);
        }
    }
    let chunks: Vec<Result<Chunk<'_, '_>, LocalError>> = bounds
        .par_windows(2)
        .zip(outs.into_par_iter())
        .map(|(w, out)| parse_chunk(&body[w[0]..w[1]], cols, out))
        .collect();
    let mut parsed = Vec::with_capacity(chunks.len());
    for (i, c) in chunks.into_iter().enumerate() {
        match c {
            Ok(c) => parsed.push(c),
            Err(e) => {
                let before = body[..bounds[i]].iter().filter(|&&b| b == b'\n').count();
                return Err(ClvError::Parse {
                    line: header_lines + before + e.line_in_chunk + 1,
                    field: e.field,
                    expected: e.expected,
                    got: e.got,
                });
            }
        }
    }
    // Merge chunk-local ids into global ones, in order of first appearance:
    // an id seen in an earlier chunk gets that chunk's index (looked up in
    // parallel in the earlier chunks' maps); new ids are numbered after.
    let found: Vec<Vec<Option<(u32, u32)>>> = parsed
        .par_iter()
        .enumerate()
        .map(|(k, c)| {
            c.ids
                .iter()
                .map(|id| {
                    parsed[..k]
                        .iter()
                        .enumerate()
                        .find_map(|(j, p)| p.map.get(id).map(|&l| (j as u32, l)))
                })
                .collect()
        })
        .collect();
    let mut remaps: Vec<Vec<u32>> = Vec::with_capacity(parsed.len());
    let mut n_ids = 0u32;
    let mut new_ids: Vec<Vec<usize>> = Vec::with_capacity(parsed.len());
    for f in &found {
        let mut remap = Vec::with_capacity(f.len());
        let mut fresh = Vec::new();
        for (l, hit) in f.iter().enumerate() {
            remap.push(match hit {
                Some((j, jl)) => remaps[*j as usize][*jl as usize],
                None => {
                    fresh.push(l);
                    n_ids += 1;
                    n_ids - 1
                }
            });
        }
        remaps.push(remap);
        new_ids.push(fresh);
    }
    let ids: Vec<String> = parsed
        .par_iter()
        .zip(new_ids.par_iter())
        .map(|(c, fresh)| {
            fresh
                .iter()
                .map(|&l| match std::str::from_utf8(c.ids[l]) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(c.ids[l]).into_owned(),
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    let rows: Vec<usize> = parsed.iter().map(|c| c.n).collect();
    parsed
        .par_iter_mut()
        .zip(remaps.par_iter())
        .for_each(|(c, r)| {
            for v in c.customer[..c.n].iter_mut() {
                *v = r[*v as usize];
            }
        });
    drop(parsed);
    // Close the gaps left by blank lines (none in a well-formed file).
    let mut write = 0;
    let mut read = 0;
    for (k, &n) in rows.iter().enumerate() {
        if write != read {
            customer.copy_within(read..read + n, write);
            day.copy_within(read..read + n, write);
            amount.copy_within(read..read + n, write);
        }
        write += n;
        read += caps[k];
    }
    customer.truncate(write);
    day.truncate(write);
    amount.truncate(write);
    Ok(TransactionLog {
        ids,
        customer,
        day,
        amount,
        index: HashMap::new(),
    })
}

/// How to cut transactions into summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Unit of recency and T.
    pub unit: TimeUnit,
    /// Last day (inclusive) of the calibration period; `None` = no holdout.
    pub calibration_end: Option<NaiveDate>,
    /// Last day (inclusive) observed; `None` = the last transaction's date.
    pub observation_end: Option<NaiveDate>,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            unit: TimeUnit::Week,
            calibration_end: None,
            observation_end: None,
        }
    }
}

/// One customer's summary, in the chosen time unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    /// Repeat purchases: distinct purchase days after the first (same-day
    /// purchases merged), within the calibration period.
    pub frequency: u32,
    /// Recency t_x: time from the first to the last purchase.
    pub recency: f64,
    /// Age T: time from the first purchase to the end of the calibration
    /// period (or of the observation).
    pub t: f64,
    /// Mean spend per repeat purchase day (the first day's spend excluded,
    /// as lifetimes computes it); 0 when `frequency` is 0.
    pub monetary: f64,
    /// Distinct purchase days in the holdout period (0 without one).
    pub holdout_frequency: u32,
    /// Total spend in the holdout period (0 without one).
    pub holdout_spend: f64,
}

/// Summaries of all customers whose first purchase falls in the calibration
/// period.
#[derive(Debug, Clone, Default)]
pub struct Summaries {
    /// Index into the log's `ids` of each row's customer.
    pub customer: Vec<u32>,
    /// One row per customer.
    pub rows: Vec<CustomerSummary>,
    /// Length of the holdout period in units (0 without one).
    pub holdout_length: f64,
    /// `holdout_daily[k]`: purchase days of these customers on the
    /// `k+1`-th day after the calibration end (a customer buying twice on
    /// one day counts once); empty without a holdout period.
    pub holdout_daily: Vec<u64>,
}

/// Build per-customer summaries (parallel over customers).
pub fn summarize(log: &TransactionLog, opts: &SummaryOptions) -> Result<Summaries, ClvError> {
    if log.is_empty() {
        return Err(ClvError::NoData("no transactions".into()));
    }
    let obs_end = match opts.observation_end {
        Some(d) => epoch_day(d),
        None => log.day.par_iter().copied().max().unwrap_or(0),
    };
    let cal_end = opts.calibration_end.map(epoch_day).unwrap_or(obs_end);
    if cal_end > obs_end {
        return Err(ClvError::Invalid(
            "the calibration end is after the end of the observation period".into(),
        ));
    }
    let unit = opts.unit.days();
    let n_cust = log.ids.len();
    // Counting sort of (day, amount) by customer.
    let mut offsets = vec![0usize; n_cust + 1];
    for &c in &log.customer {
        offsets[c as usize + 1] += 1;
    }
    for i in 0..n_cust {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut items = vec![(0i32, 0f64); log.len()];
    for ((&c, &d), &a) in log.customer.iter().zip(&log.day).zip(&log.amount) {
        let slot = &mut fill[c as usize];
        items[*slot] = (d, a);
        *slot += 1;
    }
    drop(fill);
    let rows: Vec<Option<CustomerSummary>> = (0..n_cust)
        .into_par_iter()
        .map_init(Vec::new, |buf: &mut Vec<(i32, f64)>, c| {
            buf.clear();
            buf.extend_from_slice(&items[offsets[c]..offsets[c + 1]]);
            buf.retain(|&(d, _)| d <= obs_end);
            if buf.is_empty() {
                return None;
            }
            buf.sort_unstable_by_key(|&(d, _)| d);
            let first = buf[0].0;
            if first > cal_end {
                return None;
            }
            let mut freq = 0u32;
            let mut last = first;
            let mut repeat_spend = 0.0;
            let mut day_spend = 0.0;
            let mut prev = first;
            let mut h_freq = 0u32;
            let mut h_spend = 0.0;
            let mut h_prev = i32::MIN;
            for &(d, a) in buf.iter() {
                if d <= cal_end {
                    if d != prev {
                        freq += 1;
                        last = d;
                        prev = d;
                        repeat_spend += day_spend;
                        day_spend = 0.0;
                    }
                    if d != first {
                        day_spend += a;
                    }
                } else {
                    if d != h_prev {
                        h_freq += 1;
                        h_prev = d;
                    }
                    h_spend += a;
                }
            }
            repeat_spend += day_spend;
            Some(CustomerSummary {
                frequency: freq,
                recency: (last - first) as f64 / unit,
                t: (cal_end - first) as f64 / unit,
                monetary: if freq > 0 {
                    repeat_spend / freq as f64
                } else {
                    0.0
                },
                holdout_frequency: h_freq,
                holdout_spend: h_spend,
            })
        })
        .collect();
    let h_days = (obs_end - cal_end).max(0) as usize;
    let holdout_daily = if h_days > 0 {
        (0..n_cust)
            .into_par_iter()
            .filter(|&c| rows[c].is_some())
            .fold(
                || (vec![0u64; h_days], Vec::new()),
                |(mut acc, mut days): (Vec<u64>, Vec<i32>), c| {
                    days.clear();
                    days.extend(
                        items[offsets[c]..offsets[c + 1]]
                            .iter()
                            .map(|&(d, _)| d)
                            .filter(|&d| d > cal_end && d <= obs_end),
                    );
                    days.sort_unstable();
                    days.dedup();
                    for &d in &days {
                        acc[(d - cal_end - 1) as usize] += 1;
                    }
                    (acc, days)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(
                || vec![0u64; h_days],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            )
    } else {
        Vec::new()
    };
    let mut out = Summaries {
        customer: Vec::with_capacity(n_cust),
        rows: Vec::with_capacity(n_cust),
        holdout_length: (obs_end - cal_end) as f64 / unit,
        holdout_daily,
    };
    for (c, r) in rows.into_iter().enumerate() {
        if let Some(r) = r {
            out.customer.push(c as u32);
            out.rows.push(r);
        }
    }
    if out.rows.is_empty() {
        return Err(ClvError::NoData(
            "no customer made a first purchase in the calibration period".into(),
        ));
    }
    Ok(out)
}

/// Frequency, recency and T of identical customers compressed into weighted
/// rows: the input of the purchase models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RfmData {
    /// Frequency x.
    pub x: Vec<f64>,
    /// Recency t_x.
    pub t_x: Vec<f64>,
    /// Age T.
    pub t: Vec<f64>,
    /// Number of customers with this (x, t_x, T).
    pub weight: Vec<f64>,
}

impl RfmData {
    /// Compress summaries: one row per distinct (x, t_x, T).
    pub fn from_summaries(rows: &[CustomerSummary]) -> Self {
        Self::from_triples(rows.iter().map(|r| (r.frequency as f64, r.recency, r.t)))
    }

    /// Compress arbitrary (x, t_x, T) triples.
    pub fn from_triples(triples: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        let mut map: FxMap<(u64, u64, u64), usize> = FxMap::default();
        let mut d = RfmData::default();
        for (x, tx, t) in triples {
            let key = (x.to_bits(), tx.to_bits(), t.to_bits());
            let next = d.x.len();
            let i = *map.entry(key).or_insert(next);
            if i == next {
                d.x.push(x);
                d.t_x.push(tx);
                d.t.push(t);
                d.weight.push(0.0);
            }
            d.weight[i] += 1.0;
        }
        d
    }

    /// Number of distinct rows.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Every `step`-th row (with its weight), starting at the first.
    pub fn every(&self, step: usize) -> Self {
        let step = step.max(1);
        let pick = |v: &[f64]| v.iter().step_by(step).copied().collect();
        Self {
            x: pick(&self.x),
            t_x: pick(&self.t_x),
            t: pick(&self.t),
            weight: pick(&self.weight),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Number of customers (sum of weights).
    pub fn customers(&self) -> f64 {
        self.weight.iter().sum()
    }

    /// Check that the data can be fitted: finite, 0 <= t_x <= T, T > 0.
    pub fn validate(&self) -> Result<(), ClvError> {
        if self.is_empty() {
            return Err(ClvError::NoData("no customers to fit".into()));
        }
        for i in 0..self.len() {
            let (x, tx, t, w) = (self.x[i], self.t_x[i], self.t[i], self.weight[i]);
            if !(x >= 0.0 && tx >= 0.0 && t >= tx && w > 0.0 && t.is_finite())
                || (x > 0.0 && tx <= 0.0)
            {
                return Err(ClvError::Invalid(format!(
                    "bad customer row x={x}, t_x={tx}, T={t}, weight={w}: need 0 <= t_x <= T, t_x > 0 when x > 0"
                )));
            }
        }
        Ok(())
    }
}

/// Frequency and mean repeat spend of customers with at least one repeat
/// purchase and positive spend, compressed: the input of Gamma-Gamma.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendData {
    /// Frequency x (> 0).
    pub x: Vec<f64>,
    /// Mean repeat spend m (> 0).
    pub m: Vec<f64>,
    /// Number of customers with this (x, m).
    pub weight: Vec<f64>,
}

impl SpendData {
    /// From summaries, keeping rows with frequency > 0 and monetary > 0.
    pub fn from_summaries(rows: &[CustomerSummary]) -> Self {
        Self::from_pairs(
            rows.iter()
                .filter(|r| r.frequency > 0 && r.monetary > 0.0)
                .map(|r| (r.frequency as f64, r.monetary)),
        )
    }

    /// Compress (x, m) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let mut map: FxMap<(u64, u64), usize> = FxMap::default();
        let mut d = SpendData::default();
        for (x, m) in pairs {
            let next = d.x.len();
            let i = *map.entry((x.to_bits(), m.to_bits())).or_insert(next);
            if i == next {
                d.x.push(x);
                d.m.push(m);
                d.weight.push(0.0);
            }
            d.weight[i] += 1.0;
        }
        d
    }

    /// Number of distinct rows.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Every `step`-th row (with its weight), starting at the first.
    pub fn every(&self, step: usize) -> Self {
        let step = step.max(1);
        let pick = |v: &[f64]| v.iter().step_by(step).copied().collect();
        Self {
            x: pick(&self.x),
            m: pick(&self.m),
            weight: pick(&self.weight),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Number of customers (sum of weights).
    pub fn customers(&self) -> f64 {
        self.weight.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_amounts_as_str_parse_does() {
        for t in [
            "29.33",
            "0.01",
            "-3.5",
            "12",
            "1234567.89",
            "0.1",
            "7.",
            ".5",
            "1e3",
            " 4.25 ",
            "123456789012345",
            "1234567890123456.5",
            "0.30000000000000004",
        ] {
            let want: f64 = t.trim().parse().unwrap();
            assert_eq!(parse_amount(t.as_bytes()), Some(want), "{t}");
        }
        assert_eq!(parse_amount(b"abc"), None);
        assert_eq!(parse_amount(b"-"), None);
        assert_eq!(parse_amount(b"1.2.3"), None);
    }

    #[test]
    fn ids_spanning_chunks_keep_first_appearance_order() {
        // Enough rows for several chunks; customer ids recur across chunks.
        let mut text = String::from("customer_id,date,amount\n");
        for i in 0..60_000 {
            text.push_str(&format!(
                "c{},2024-01-{:02},{}.5\n",
                (i * 7) % 1000,
                1 + i % 28,
                i % 50
            ));
        }
        let log = read_transactions(text.as_bytes(), TransactionFormat::Csv).unwrap();
        assert_eq!(log.len(), 60_000);
        assert_eq!(log.ids.len(), 1000);
        for i in [0usize, 1, 999, 31_337, 59_999] {
            assert_eq!(
                log.ids[log.customer[i] as usize],
                format!("c{}", (i * 7) % 1000)
            );
            assert_eq!(log.amount[i], (i % 50) as f64 + 0.5);
        }
        let mut seen = std::collections::HashSet::new();
        let order: Vec<u32> = log
            .customer
            .iter()
            .copied()
            .filter(|c| seen.insert(*c))
            .collect();
        assert_eq!(order, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn the_plain_layout_reads_like_the_general_one() {
        // Header exactly customer_id,date,amount: the split by position, with
        // compact dates, extra fields and short lines still handled.
        let text =
            b"customer_id,date,amount\nA,20240101,1.5\nB,2024-01-02,2,extra\nA,2024-01-03,3\n";
        let log = read_transactions(text, TransactionFormat::Csv).unwrap();
        assert_eq!(log.ids, vec!["A".to_string(), "B".to_string()]);
        assert_eq!(log.customer, vec![0, 1, 0]);
        assert_eq!(log.amount, vec![1.5, 2.0, 3.0]);
        let d = |y, m, dd| epoch_day(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        assert_eq!(log.day, vec![d(2024, 1, 1), d(2024, 1, 2), d(2024, 1, 3)]);
        match read_transactions(
            b"customer_id,date,amount\nA,2024-01-01\n",
            TransactionFormat::Csv,
        ) {
            Err(ClvError::Parse { line, field, .. }) => assert_eq!((line, field), (2, "row")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blank_lines_leave_no_gaps() {
        let text = b"customer_id,date,amount\n\nA,2024-01-01,1\r\n\n  \nB,2024-01-02,2\nA,2024-01-03,3\n\n";
        let log = read_transactions(text, TransactionFormat::Csv).unwrap();
        assert_eq!(log.ids, vec!["A".to_string(), "B".to_string()]);
        assert_eq!(log.customer, vec![0, 1, 0]);
        assert_eq!(log.amount, vec![1.0, 2.0, 3.0]);
        assert_eq!(log.day.len(), 3);
    }

    #[test]
    fn parses_dates() {
        let d = |y, m, dd| epoch_day(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        assert_eq!(parse_day(b"19970101"), Some(d(1997, 1, 1)));
        assert_eq!(parse_day(b"2024-02-29"), Some(d(2024, 2, 29)));
        assert_eq!(parse_day(b"1969-12-31"), Some(-1));
        assert_eq!(parse_day(b"2023-02-29"), None);
        assert_eq!(parse_day(b"2023-13-01"), None);
        assert_eq!(parse_day(b"2023/01/01"), None);
    }

    #[test]
    fn summary_merges_same_day_and_excludes_first_spend() {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let txs = vec![
            Transaction {
                customer: "a".into(),
                date: date("2024-01-01"),
                amount: 100.0,
            },
            Transaction {
                customer: "a".into(),
                date: date("2024-01-08"),
                amount: 10.0,
            },
            Transaction {
                customer: "a".into(),
                date: date("2024-01-08"),
                amount: 20.0,
            },
            Transaction {
                customer: "a".into(),
                date: date("2024-01-15"),
                amount: 6.0,
            },
            Transaction {
                customer: "a".into(),
                date: date("2024-01-29"),
                amount: 7.0,
            },
            Transaction {
                customer: "b".into(),
                date: date("2024-01-22"),
                amount: 5.0,
            },
        ];
        let log = TransactionLog::from_transactions(&txs);
        let s = summarize(
            &log,
            &SummaryOptions {
                unit: TimeUnit::Week,
                calibration_end: Some(date("2024-01-22")),
                observation_end: Some(date("2024-01-29")),
            },
        )
        .unwrap();
        let a = s.rows[0];
        assert_eq!(a.frequency, 2);
        assert_eq!(a.recency, 2.0);
        assert_eq!(a.t, 3.0);
        assert_eq!(a.monetary, 18.0);
        assert_eq!(a.holdout_frequency, 1);
        assert_eq!(a.holdout_spend, 7.0);
        let b = s.rows[1];
        assert_eq!(
            (b.frequency, b.recency, b.t, b.monetary),
            (0, 0.0, 0.0, 0.0)
        );
        assert_eq!(s.holdout_length, 1.0);
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let text = b"customer_id,date,amount\nA,2024-01-01,3.5\nB,2024-13-01,2\n";
        match read_transactions(text, TransactionFormat::Csv) {
            Err(ClvError::Parse { line, field, .. }) => {
                assert_eq!((line, field), (3, "date"));
            }
            other => panic!("{other:?}"),
        }
        let ok = read_transactions(
            b"date,amount,customer_id\r\n20240101,1,\"x\"\r\n",
            TransactionFormat::Csv,
        )
        .unwrap();
        assert_eq!(ok.ids, vec!["x".to_string()]);
    }
}
