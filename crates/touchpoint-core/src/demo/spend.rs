//! The demo brand's marketing spend: one row per day and channel for the
//! always-on traffic (no campaign, so it meets the members the demo's orders
//! attribute to each channel), plus the 6.18 and 11.11 promotions on the
//! marketplaces, in the spend file format of [`crate::ingest::spend`].

use std::io::Write;

use chrono::{Datelike, NaiveDate};

/// Channel, pricing model, daily budget (minor units), cost per click
/// (minor units) of the always-on spend.
const CHANNELS: &[(&str, &str, i64, i64)] = &[
    ("tmall", "CPC", 300_000, 150),
    ("jd", "CPC", 150_000, 120),
    ("shopify", "CPC", 80_000, 250),
    ("pos", "CPM", 20_000, 400),
    ("wechat", "CPA", 100_000, 90),
];

fn jitter(day: i64, salt: i64) -> i64 {
    // A deterministic 80..=120 % factor.
    let x = (day.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503)).rem_euclid(41);
    80 + x
}

/// Write the spend CSV for the days `start..=end` (the demo's order history).
/// Returns the number of rows.
pub fn write_spend(
    out: &mut dyn Write,
    start: NaiveDate,
    end: NaiveDate,
) -> std::io::Result<usize> {
    writeln!(
        out,
        "date,channel,campaign,pricing_model,spend,impressions,clicks,conversions"
    )?;
    let mut rows = 0;
    let mut d = start;
    let mut day = 0i64;
    while d <= end {
        for (i, (channel, model, budget, cpc)) in CHANNELS.iter().enumerate() {
            let spend = budget * jitter(day, i as i64) / 100;
            let clicks = spend / cpc;
            writeln!(
                out,
                "{d},{channel},,{model},{}.{:02},{},{clicks},{}",
                spend / 100,
                spend % 100,
                clicks * 40,
                clicks / 60
            )?;
            rows += 1;
        }
        let promo = match (d.month(), d.day()) {
            (6, 1..=18) => Some("618"),
            (11, 1..=11) => Some("double11"),
            _ => None,
        };
        if let Some(p) = promo {
            for (i, channel) in ["tmall", "jd"].iter().enumerate() {
                let spend = 500_000 * jitter(day, 10 + i as i64) / 100;
                writeln!(
                    out,
                    "{d},{channel},{p},CPM,{}.{:02},{},{},{}",
                    spend / 100,
                    spend % 100,
                    spend * 10,
                    spend / 200,
                    spend / 20_000
                )?;
                rows += 1;
            }
        }
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
        day += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::spend;

    #[test]
    fn the_demo_spend_file_reads_without_rejects() {
        let mut buf = Vec::new();
        let start = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let n = write_spend(&mut buf, start, end).unwrap();
        assert_eq!(n, 30 * 5 + 18 * 2);
        let rows: Vec<_> = spend::open(Box::new(std::io::Cursor::new(buf)), None)
            .unwrap()
            .collect();
        assert_eq!(rows.len(), n);
        assert!(
            rows.iter().all(|r| r.is_ok()),
            "{:?}",
            rows.iter().find(|r| r.is_err())
        );
    }
}
