//! Marketing spend files: what each channel and campaign cost per day (see
//! `docs/acquisition.md`).
//!
//! One CSV row per day, channel and campaign:
//!
//! ```text
//! date,channel,campaign,pricing_model,spend,impressions,clicks,conversions
//! 2025-11-01,douyin,double11-live,CPM,1200.50,300000,4200,35
//! ```
//!
//! `date`, `channel`, `campaign`, `pricing_model` and `spend` are required
//! columns; `impressions`, `clicks` and `conversions` are optional columns
//! (an empty value is 0). A `campaign` value may be empty: spend on the
//! channel as a whole. The reader follows the order readers' rules: a bad
//! row becomes a [`Rejected`] naming the line, column, value and the accepted
//! form, and reading goes on; a header without the required columns fails
//! the file at once. A second row for the same (date, channel, campaign) in
//! one file is rejected (the first one stands); across files and imports the
//! later import replaces the earlier row, so importing a file again changes
//! nothing.

use std::collections::HashMap;
use std::io::Read;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::common::{field, missing_columns, CsvRows, Errs};
use super::{Encoding, FileError, Rejected, RowError};
use crate::types::{ChannelName, Money};

/// The columns a spend file must have.
pub const REQUIRED: &[&str] = &["date", "channel", "campaign", "pricing_model", "spend"];
/// The columns a spend file may have.
pub const OPTIONAL: &[&str] = &["impressions", "clicks", "conversions"];

/// The longest campaign name accepted.
pub const MAX_CAMPAIGN_LEN: usize = 200;

/// How the traffic was bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PricingModel {
    /// Cost per thousand impressions.
    Cpm,
    /// Cost per click.
    Cpc,
    /// Cost per action (a sign-up, a lead).
    Cpa,
    /// Cost per sale (a commission on sales).
    Cps,
}

impl PricingModel {
    /// `CPM`, `CPC`, `CPA` or `CPS`.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Cpm => "CPM",
            PricingModel::Cpc => "CPC",
            PricingModel::Cpa => "CPA",
            PricingModel::Cps => "CPS",
        }
    }

    /// Parse a model name, case-insensitively.
    pub fn parse(s: &str) -> Option<PricingModel> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CPM" => Some(PricingModel::Cpm),
            "CPC" => Some(PricingModel::Cpc),
            "CPA" => Some(PricingModel::Cpa),
            "CPS" => Some(PricingModel::Cps),
            _ => None,
        }
    }
}

/// One day's spend on one channel and campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendRow {
    /// The day, in the business time zone.
    pub date: NaiveDate,
    /// The channel the traffic was bought on (`douyin`, `tmall`, ...).
    pub channel: ChannelName,
    /// The campaign; empty for spend on the channel as a whole.
    pub campaign: String,
    /// How it was bought.
    pub pricing_model: PricingModel,
    /// What it cost, minor units.
    pub spend: Money,
    /// Impressions bought or served.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Conversions as the ad platform counts them.
    pub conversions: i64,
    /// 1-based line of the file.
    pub source_line: u64,
}

/// A streaming reader of spend rows.
pub struct SpendReader<'a> {
    rows: CsvRows<'a>,
    cols: [Option<usize>; 8],
    seen: HashMap<(NaiveDate, String, String), u64>,
}

/// Open a spend file (UTF-8 or GBK, detected unless `encoding` forces one).
/// Fails when the header lacks a required column.
pub fn open<'a>(
    input: Box<dyn Read + 'a>,
    encoding: Option<Encoding>,
) -> Result<SpendReader<'a>, FileError> {
    let rows = CsvRows::open(input, encoding, REQUIRED)?;
    let header = rows.header().to_vec();
    missing_columns("spend", REQUIRED, OPTIONAL, &header, |c| {
        rows.column(c).is_some()
    })?;
    let mut cols = [None; 8];
    for (i, c) in REQUIRED.iter().chain(OPTIONAL).enumerate() {
        cols[i] = rows.column(c);
    }
    Ok(SpendReader {
        rows,
        cols,
        seen: HashMap::new(),
    })
}

impl SpendReader<'_> {
    /// The header as found.
    pub fn header(&self) -> &[String] {
        self.rows.header()
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.rows.bytes_read()
    }
}

fn count(e: &mut Errs, column: &str, v: Option<&str>) -> Option<i64> {
    let Some(v) = v else { return Some(0) };
    let t = v.trim();
    let t = match t.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.bytes().all(|b| b == b'0') => i,
        Some(_) => "x",
        None => t,
    };
    match t.replace(',', "").parse::<i64>() {
        Ok(n) if n >= 0 && t.len() <= 15 => Some(n),
        _ => {
            e.push(
                column,
                v,
                "expected a whole number of 0 or more, such as 0 or 12000 (or an empty value for 0)",
            );
            None
        }
    }
}

impl Iterator for SpendReader<'_> {
    type Item = Result<SpendRow, Rejected>;

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
        let date = e
            .required("date", field(&row, c[0]), "a date such as 2025-11-01")
            .and_then(|v| {
                let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok();
                if d.is_none() {
                    e.push("date", v, "expected a date YYYY-MM-DD, such as 2025-11-01");
                }
                d
            });
        let channel = e
            .required(
                "channel",
                field(&row, c[1]),
                "a channel name such as douyin or tmall",
            )
            .and_then(|v| match ChannelName::parse(v) {
                Ok(ch) => Some(ch),
                Err(err) => {
                    e.push("channel", v, format!("expected {err}"));
                    None
                }
            });
        let campaign = field(&row, c[2]).unwrap_or("").to_string();
        if campaign.chars().count() > MAX_CAMPAIGN_LEN || campaign.chars().any(char::is_control) {
            e.push(
                "campaign",
                &campaign,
                format!(
                    "expected a campaign name of at most {MAX_CAMPAIGN_LEN} characters without control characters (or empty for the whole channel)"
                ),
            );
        }
        let model = e
            .required(
                "pricing_model",
                field(&row, c[3]),
                "one of CPM, CPC, CPA, CPS",
            )
            .and_then(|v| {
                let m = PricingModel::parse(v);
                if m.is_none() {
                    e.push("pricing_model", v, "expected one of CPM, CPC, CPA, CPS");
                }
                m
            });
        let spend = e
            .required(
                "spend",
                field(&row, c[4]),
                "an amount of 0 or more with at most two decimals, such as 1200 or 1200.50",
            )
            .and_then(|v| e.money_nonneg("spend", v));
        let impressions = count(&mut e, "impressions", field(&row, c[5]));
        let clicks = count(&mut e, "clicks", field(&row, c[6]));
        let conversions = count(&mut e, "conversions", field(&row, c[7]));
        if let (Some(d), Some(ch)) = (date, &channel) {
            let key = (d, ch.as_str().to_string(), campaign.clone());
            if let Some(first) = self.seen.get(&key) {
                e.push_row(format!(
                    "a second row for date {d}, channel {ch}, campaign {campaign:?} (the first is on line {first}); expected one row per date, channel and campaign"
                ));
            } else if e.list.is_empty() {
                self.seen.insert(key, row.line);
            }
        }
        if !e.list.is_empty() {
            return Some(Err(reject(e.list, &row.fields)));
        }
        Some(Ok(SpendRow {
            date: date?,
            channel: channel?,
            campaign,
            pricing_model: model?,
            spend: spend?,
            impressions: impressions?,
            clicks: clicks?,
            conversions: conversions?,
            source_line: row.line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "date,channel,campaign,pricing_model,spend,impressions,clicks,conversions\n";

    fn read(text: &str) -> (Vec<SpendRow>, Vec<Rejected>) {
        let r = open(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            None,
        )
        .unwrap();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for x in r {
            match x {
                Ok(s) => ok.push(s),
                Err(e) => bad.push(e),
            }
        }
        (ok, bad)
    }

    #[test]
    fn good_rows_parse_to_minor_units() {
        let (ok, bad) = read(&format!(
            "{HEADER}2025-11-01,douyin,double11-live,cpm,1200.50,300000,4200,35\n2025-11-01,tmall,,CPC,80,,,\n"
        ));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].spend.minor(), 120_050);
        assert_eq!(ok[0].pricing_model, PricingModel::Cpm);
        assert_eq!(ok[0].impressions, 300_000);
        assert_eq!(ok[0].source_line, 2);
        assert_eq!(ok[1].campaign, "");
        assert_eq!(ok[1].spend.minor(), 8_000);
        assert_eq!(
            (ok[1].impressions, ok[1].clicks, ok[1].conversions),
            (0, 0, 0)
        );
    }

    #[test]
    fn each_bad_field_is_named_with_its_line_and_the_accepted_form() {
        let text = format!(
            "{HEADER}\
             2025-11-01,douyin,a,CPM,10,1,1,1\n\
             11/01/2025,douyin,b,CPM,10,1,1,1\n\
             2025-11-01,Dou Yin!,c,CPM,10,1,1,1\n\
             2025-11-01,douyin,d,CPX,10,1,1,1\n\
             2025-11-01,douyin,e,CPM,-5,1,1,1\n\
             2025-11-01,douyin,f,CPM,10.123,1,1,1\n\
             2025-11-01,douyin,g,CPM,10,many,1,1\n\
             2025-11-01,douyin,h,CPM,10,1,-2,1\n\
             2025-11-01,douyin,i,CPM,10,1,1,1.5\n\
             2025-11-01,douyin,a,CPM,11,1,1,1\n\
             ,douyin,j,CPM,10,1,1,1\n\
             2025-11-01,douyin,k,,10,1,1,1\n\
             2025-11-01,douyin,l,CPM,,1,1,1\n\
             2025-11-01,douyin,m,CPM,10,1,1\n\
             2025-11-02,douyin,a,CPS,12,0,0,0\n"
        );
        let (ok, bad) = read(&text);
        assert_eq!(
            ok.iter().map(|r| r.source_line).collect::<Vec<_>>(),
            vec![2, 16],
            "good rows beside bad ones still load"
        );
        let got: Vec<(u64, Option<String>, String)> = bad
            .iter()
            .map(|r| {
                assert_eq!(r.errors.len(), 1, "{r:?}");
                let e = &r.errors[0];
                (e.line, e.column.clone(), e.to_string())
            })
            .collect();
        let want: &[(u64, Option<&str>, &str)] = &[
            (3, Some("date"), "expected a date YYYY-MM-DD"),
            (4, Some("channel"), "expected a channel name of 1 to 40"),
            (
                5,
                Some("pricing_model"),
                "expected one of CPM, CPC, CPA, CPS",
            ),
            (6, Some("spend"), "expected an amount of 0 or more"),
            (7, Some("spend"), "at most two decimals"),
            (
                8,
                Some("impressions"),
                "expected a whole number of 0 or more",
            ),
            (9, Some("clicks"), "expected a whole number of 0 or more"),
            (
                10,
                Some("conversions"),
                "expected a whole number of 0 or more",
            ),
            (11, None, "(the first is on line 2)"),
            (12, Some("date"), "date is required but empty"),
            (
                13,
                Some("pricing_model"),
                "pricing_model is required but empty",
            ),
            (14, Some("spend"), "spend is required but empty"),
            (15, None, "the row has 7 fields but the header has 8"),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((line, col, msg), (wl, wc, wm)) in got.iter().zip(want) {
            assert_eq!(line, wl, "{msg}");
            assert_eq!(col.as_deref(), *wc, "{msg}");
            assert!(
                msg.contains(wm),
                "line {line}: {msg:?} should contain {wm:?}"
            );
            assert!(msg.starts_with(&format!("line {line}")), "{msg}");
        }
    }

    #[test]
    fn a_header_without_required_columns_fails_the_file() {
        let Err(e) = open(
            Box::new(std::io::Cursor::new(b"date,channel,spend\n".to_vec())),
            None,
        ) else {
            panic!("expected a file error");
        };
        let m = e.to_string();
        assert!(m.contains("not a spend file"), "{m}");
        assert!(m.contains("campaign, pricing_model"), "{m}");
    }
}
