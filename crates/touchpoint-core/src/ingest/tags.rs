//! Tag files: tags to add to (or remove from) members, set by hand (see
//! `docs/campaigns.md`, Tags).
//!
//! One CSV row per member and tag:
//!
//! ```text
//! member,tag,action
//! M-12,vip,add
//! 13,newsletter-2025,remove
//! ```
//!
//! `member` (a member id, `M-12` or `12`) and `tag` are required columns;
//! `action` (`add` or `remove`, default `add`) is optional. The reader
//! follows the order readers' rules: a bad row becomes a [`Rejected`] naming
//! the line, column, value and the accepted form, and reading goes on; a
//! header without the required columns fails the file at once.

use std::io::Read;

use serde::Serialize;

use super::common::{field, missing_columns, CsvRows, Errs};
use super::{Encoding, FileError, Rejected, RowError};
use crate::segments::normalise_tag;
use crate::types::MemberId;

/// The columns a tag file must have.
pub const REQUIRED: &[&str] = &["member", "tag"];
/// The columns a tag file may have.
pub const OPTIONAL: &[&str] = &["action"];

/// Add or remove a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagAction {
    /// Add the tag.
    Add,
    /// Remove the tag.
    Remove,
}

/// One row of a tag file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagRow {
    /// The member as written (a merged id is followed when applied).
    pub member: MemberId,
    /// The tag, normalised (trimmed, lower case).
    pub tag: String,
    /// Add or remove.
    pub action: TagAction,
    /// 1-based line of the file.
    pub source_line: u64,
}

/// A streaming reader of tag rows.
pub struct TagReader<'a> {
    rows: CsvRows<'a>,
    cols: [Option<usize>; 3],
}

/// Open a tag file (UTF-8 or GBK, detected unless `encoding` forces one).
/// Fails when the header lacks a required column.
pub fn open<'a>(
    input: Box<dyn Read + 'a>,
    encoding: Option<Encoding>,
) -> Result<TagReader<'a>, FileError> {
    let rows = CsvRows::open(input, encoding, REQUIRED)?;
    let header = rows.header().to_vec();
    missing_columns("tags", REQUIRED, OPTIONAL, &header, |c| {
        rows.column(c).is_some()
    })?;
    let cols = [
        rows.column("member"),
        rows.column("tag"),
        rows.column("action"),
    ];
    Ok(TagReader { rows, cols })
}

impl Iterator for TagReader<'_> {
    type Item = Result<TagRow, Rejected>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        let reject = |errors: Vec<RowError>, fields: &[String]| Rejected {
            order_id: None,
            errors,
            raw_rows: vec![fields.to_vec()],
        };
        if !row.errors.is_empty() {
            return Some(Err(reject(row.errors.clone(), &row.fields)));
        }
        let c = self.cols;
        let mut e = Errs::new(row.line);
        let member = e
            .required(
                "member",
                field(&row, c[0]),
                "a member id such as M-12 or 12",
            )
            .and_then(|v| match MemberId::parse(v) {
                Ok(m) => Some(m),
                Err(err) => {
                    e.push("member", v, format!("expected {err}"));
                    None
                }
            });
        let tag = e
            .required("tag", field(&row, c[1]), "a tag such as vip")
            .and_then(|v| match normalise_tag(v) {
                Ok(t) => Some(t),
                Err(form) => {
                    e.push("tag", v, form);
                    None
                }
            });
        let action = match field(&row, c[2]) {
            None => Some(TagAction::Add),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "add" => Some(TagAction::Add),
                "remove" => Some(TagAction::Remove),
                _ => {
                    e.push(
                        "action",
                        v,
                        "expected add or remove (or an empty value for add)",
                    );
                    None
                }
            },
        };
        if !e.list.is_empty() {
            return Some(Err(reject(e.list, &row.fields)));
        }
        Some(Ok(TagRow {
            member: member?,
            tag: tag?,
            action: action?,
            source_line: row.line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<TagRow, Rejected>> {
        open(Box::new(text.as_bytes()), None).unwrap().collect()
    }

    #[test]
    fn good_rows_read_and_bad_ones_name_line_column_value_and_form() {
        let rows = read(
            "member,tag,action\nM-12,VIP ,add\n13,x,remove\n14,bad/tag,\nzz,ok,add\n15,ok,toggle\n",
        );
        assert_eq!(rows.len(), 5);
        let ok = rows[0].as_ref().unwrap();
        assert_eq!(
            (ok.member.get(), ok.tag.as_str(), ok.action),
            (12, "vip", TagAction::Add)
        );
        assert_eq!(rows[1].as_ref().unwrap().action, TagAction::Remove);
        let e = &rows[2].as_ref().unwrap_err().errors[0];
        assert_eq!(
            (e.line, e.column.as_deref(), e.value.as_deref()),
            (4, Some("tag"), Some("bad/tag"))
        );
        assert!(e.message.contains("letters"), "{e}");
        let e = &rows[3].as_ref().unwrap_err().errors[0];
        assert_eq!((e.line, e.column.as_deref()), (5, Some("member")));
        let e = &rows[4].as_ref().unwrap_err().errors[0];
        assert_eq!((e.line, e.column.as_deref()), (6, Some("action")));
        assert!(e.message.contains("add or remove"), "{e}");
    }

    #[test]
    fn a_file_without_the_tag_column_fails_at_once() {
        let e = open(Box::new("member,label\n1,x\n".as_bytes()), None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("tag"), "{e}");
    }
}
