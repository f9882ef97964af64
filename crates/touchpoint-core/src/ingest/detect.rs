//! Telling the format of an order file from its first bytes.
//!
//! - JSONL (canonical): the name ends in `.jsonl` / `.ndjson`, or the first
//!   non-blank byte is `{`.
//! - Otherwise the header (the first non-blank CSV record, decoded as UTF-8
//!   or GBK like the readers do, a byte-order mark removed, names trimmed) is
//!   matched against each format's required columns: Taobao/Tmall (exact
//!   Chinese names), Shopify and canonical (case-insensitive; canonical also
//!   needs one identifier column).

use super::common::{decode_lossy, detect_encoding, SAMPLE_LEN};
use super::{canonical, shopify, taobao, FileError, InputFormat};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many first bytes [`detect_format`] needs (it looks at no more).
pub const DETECT_SAMPLE_LEN: usize = SAMPLE_LEN;

/// The format of a file, from its first bytes (up to [`DETECT_SAMPLE_LEN`])
/// and its name. Fails with [`FileError::UnknownFormat`] (saying what each
/// format's header needs) when the header matches none, and with
/// [`FileError::Encoding`] never: bytes that do not decode are replaced, so
/// that a damaged header still gets a useful answer.
pub fn detect_format(sample: &[u8], path_hint: &str) -> Result<InputFormat, FileError> {
    let sample = &sample[..sample.len().min(DETECT_SAMPLE_LEN)];
    let sample = sample.strip_prefix(UTF8_BOM).unwrap_or(sample);
    let hint = path_hint.to_ascii_lowercase();
    if hint.ends_with(".jsonl") || hint.ends_with(".ndjson") {
        return Ok(InputFormat::Canonical);
    }
    let first = sample.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'{') {
        return Ok(InputFormat::Canonical);
    }
    let header = sample_header(sample);
    format_of_header(&header).ok_or(FileError::UnknownFormat { found: header })
}

/// The first non-blank CSV record of a sample, decoded and trimmed.
fn sample_header(sample: &[u8]) -> Vec<String> {
    let enc = detect_encoding(sample);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(sample);
    let mut rec = csv::ByteRecord::new();
    while let Ok(true) = rdr.read_byte_record(&mut rec) {
        let fields: Vec<String> = rec
            .iter()
            .map(|f| {
                decode_lossy(enc, f)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect();
        if fields.iter().any(|f| !f.is_empty()) {
            return fields;
        }
    }
    Vec::new()
}

fn has(header: &[String], name: &str) -> bool {
    header
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name) || h.to_lowercase() == name.to_lowercase())
}

/// The format whose required columns a CSV header has (names trimmed), if any.
pub fn format_of_header(header: &[String]) -> Option<InputFormat> {
    if taobao::REQUIRED_COLUMNS
        .iter()
        .all(|c| header.iter().any(|h| h == c))
    {
        return Some(InputFormat::Taobao);
    }
    if shopify::REQUIRED_COLUMNS.iter().all(|c| has(header, c)) {
        return Some(InputFormat::Shopify);
    }
    if canonical::REQUIRED_COLUMNS.iter().all(|c| has(header, c))
        && canonical::IDENTIFIER_COLUMNS.iter().any(|c| has(header, c))
    {
        return Some(InputFormat::Canonical);
    }
    None
}

/// What each format's header needs, in words (for [`FileError::UnknownFormat`]).
pub(crate) fn what_each_format_needs() -> String {
    format!(
        "a canonical file needs the columns {} and one of {} (or is JSONL: a .jsonl file or one starting with {{); \
         a Shopify export needs {}; a Taobao/Tmall export needs {}",
        canonical::REQUIRED_COLUMNS.join(", "),
        canonical::IDENTIFIER_COLUMNS.join(", "),
        shopify::REQUIRED_COLUMNS.join(", "),
        taobao::REQUIRED_COLUMNS.join(", ")
    )
}

/// At most `n` names of a header, then how many more.
pub(crate) fn some_columns(found: &[String], n: usize) -> String {
    if found.is_empty() {
        return "no header line".into();
    }
    let shown: Vec<&str> = found.iter().take(n).map(String::as_str).collect();
    let mut s = format!("the header {}", shown.join(", "));
    if found.len() > n {
        s.push_str(&format!(" ... ({} columns in all)", found.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(s: &str) -> Vec<u8> {
        encoding_rs::GBK.encode(s).0.into_owned()
    }

    const TAOBAO: &str = "订单编号,买家会员名,买家实际支付金额,订单状态,订单创建时间,宝贝标题,宝贝总数量,联系手机\n\
                          2024111100001,lixm,128.00,交易成功,2024-11-11 00:01:23,T恤,1,13800000001\n";

    #[test]
    fn taobao_is_detected_in_utf8_gbk_and_with_a_bom() {
        assert_eq!(
            detect_format(TAOBAO.as_bytes(), "ExportOrderList.csv").unwrap(),
            InputFormat::Taobao
        );
        let g = gbk(TAOBAO);
        assert!(std::str::from_utf8(&g).is_err(), "really GBK");
        assert_eq!(detect_format(&g, "x.csv").unwrap(), InputFormat::Taobao);
        let mut bom = UTF8_BOM.to_vec();
        bom.extend_from_slice(TAOBAO.as_bytes());
        assert_eq!(detect_format(&bom, "x.csv").unwrap(), InputFormat::Taobao);
        // The header with quotes and padding, as Excel re-saves it.
        let quoted = "\"订单编号 \",\"买家会员名\",买家实际支付金额,订单状态,订单创建时间,宝贝标题,宝贝总数量\n";
        assert_eq!(
            detect_format(&gbk(quoted), "x.csv").unwrap(),
            InputFormat::Taobao
        );
    }

    #[test]
    fn shopify_is_detected_case_insensitively() {
        let text = "Name,Email,Financial Status,Paid at,Created at,Lineitem quantity,Lineitem name,Lineitem price\n#1,a@b.com,paid,,2024-01-15 10:23:45 -0500,1,Tee,9.99\n";
        assert_eq!(
            detect_format(text.as_bytes(), "orders_export.csv").unwrap(),
            InputFormat::Shopify
        );
        let lower = text.to_lowercase();
        assert_eq!(
            detect_format(lower.as_bytes(), "x.csv").unwrap(),
            InputFormat::Shopify
        );
    }

    #[test]
    fn canonical_csv_and_jsonl_are_detected() {
        let csv = "\n\norder_id,ordered_at,sku,quantity,unit_price,phone\nA1,2024-11-11,S1,1,10,13800000001\n";
        assert_eq!(
            detect_format(csv.as_bytes(), "pos.csv").unwrap(),
            InputFormat::Canonical
        );
        let jsonl = "  {\"order_id\":\"A1\"}\n";
        assert_eq!(
            detect_format(jsonl.as_bytes(), "x.txt").unwrap(),
            InputFormat::Canonical
        );
        assert_eq!(
            detect_format(b"", "events.ndjson").unwrap(),
            InputFormat::Canonical
        );
    }

    #[test]
    fn nothing_matching_says_what_each_format_needs() {
        // Canonical columns but no identifier column: not canonical.
        let e =
            detect_format(b"order_id,ordered_at,sku,quantity,unit_price\n", "x.csv").unwrap_err();
        let FileError::UnknownFormat { found } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(found.len(), 5);
        let msg = e.to_string();
        for needed in [
            "order_id",
            "member_no",
            "Lineitem price",
            "订单编号",
            "--format",
        ] {
            assert!(msg.contains(needed), "{needed} not in {msg}");
        }
        let e = detect_format(b"  \n\n", "x.csv").unwrap_err();
        assert!(e.to_string().contains("no header line"), "{e}");
    }

    #[test]
    fn the_header_of_another_format_is_recognised() {
        let h: Vec<String> = ["Name", "Created at", "Lineitem quantity", "Lineitem name"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(format_of_header(&h), None);
        let mut full = h.clone();
        full.extend(["Lineitem price", "Financial Status", "Email"].map(String::from));
        assert_eq!(format_of_header(&full), Some(InputFormat::Shopify));
    }
}
