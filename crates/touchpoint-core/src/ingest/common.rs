//! Helpers shared by the format readers.
use super::Encoding;

/// Detect the encoding of a sample: UTF-8 if it decodes, else GBK.
pub fn detect_encoding(sample: &[u8]) -> Encoding {
    if std::str::from_utf8(sample).is_ok() {
        Encoding::Utf8
    } else {
        Encoding::Gbk
    }
}
