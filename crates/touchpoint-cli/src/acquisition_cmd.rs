//! `touchpoint import spend FILE...` and the presentation of `touchpoint
//! report acquisition` (docs/acquisition.md). Thin: the store parses, writes
//! and computes ([`Store::import_spend`], [`Store::report`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use touchpoint_core::ingest::Encoding;
use touchpoint_store::acquisition::{AcquisitionFigures, AcquisitionReport, SpendImport};
use touchpoint_store::Store;

use crate::import_cmd::EncodingArg;
use crate::output::{self, count, money, OutputFormat};

/// `import spend` arguments.
#[derive(Debug, clap::Args)]
pub struct SpendArgs {
    /// Spend CSV files: date, channel, campaign, pricing_model (CPM, CPC, CPA or CPS), spend, impressions, clicks, conversions.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Force the text encoding (default: detect UTF-8, else GBK).
    #[arg(long, value_enum)]
    pub encoding: Option<EncodingArg>,
    /// Report format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// One file's import, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct FileSpendImport {
    /// The file.
    pub file: String,
    /// What was done.
    #[serde(flatten)]
    pub report: SpendImport,
}

/// Import one spend file into the store (the demo calls this too).
pub async fn import_file(
    store: &Store,
    path: &std::path::Path,
    encoding: Option<Encoding>,
) -> Result<FileSpendImport> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let report = store
        .import_spend(bytes, encoding)
        .await
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    Ok(FileSpendImport {
        file: shown,
        report,
    })
}

/// `touchpoint import spend`: 0 when every row went in, 2 when some were rejected.
pub async fn import_spend(
    args: SpendArgs,
    database: &str,
    _settings: &crate::Settings,
) -> Result<ExitCode> {
    let encoding = args.encoding.map(|e| match e {
        EncodingArg::Utf8 => Encoding::Utf8,
        EncodingArg::Gbk => Encoding::Gbk,
    });
    let store = crate::connect(database).await?;
    let mut done = Vec::new();
    for f in &args.files {
        match import_file(&store, f, encoding).await {
            Ok(r) => done.push(r),
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        }
    }
    store.close().await;
    match args.output {
        OutputFormat::Json => output::print_json(&done)?,
        OutputFormat::Table => {
            for f in &done {
                print_import(f);
            }
        }
    }
    Ok(if done.iter().any(|f| f.report.rejected > 0) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Print one file's import for people.
pub fn print_import(f: &FileSpendImport) {
    const SHOWN: usize = 20;
    let r = &f.report;
    println!(
        "{}: spend rows {} inserted, {} updated, {} unchanged, {} rejected{}",
        f.file,
        r.inserted,
        r.updated,
        r.unchanged,
        r.rejected,
        match (r.first_date, r.last_date) {
            (Some(a), Some(b)) => format!(" ({a} to {b})"),
            _ => String::new(),
        }
    );
    for e in r.errors.iter().take(SHOWN) {
        println!("  rejected: {}: {e}", f.file);
    }
    if r.errors.len() > SHOWN {
        println!(
            "  ... and {} more errors (use --output json for all of them)",
            r.errors.len() - SHOWN
        );
    }
}

fn opt_money(v: Option<i64>) -> String {
    v.map(money).unwrap_or_else(|| "-".into())
}

fn opt_csv<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_record(
    level: &str,
    channel: &str,
    campaign: &str,
    month: &str,
    f: &AcquisitionFigures,
) -> Vec<String> {
    vec![
        level.to_string(),
        channel.to_string(),
        campaign.to_string(),
        month.to_string(),
        f.spend.to_string(),
        f.impressions.to_string(),
        f.clicks.to_string(),
        f.conversions.to_string(),
        f.new_valid_members.to_string(),
        f.new_paying_customers.to_string(),
        opt_csv(f.cost_per_valid_member),
        opt_csv(f.cost_per_paying_customer),
        f.clv_customers.to_string(),
        opt_csv(f.clv_per_paying_customer),
        opt_csv(f.clv_over_cost),
    ]
}

/// The report as CSV: one row per channel, campaign and month (`level`
/// campaign), per channel and month (`level` channel) and the total; money
/// in minor units, as in the JSON.
pub fn write_csv(w: &mut csv::Writer<&mut dyn Write>, r: &AcquisitionReport) -> Result<()> {
    w.write_record([
        "level",
        "channel",
        "campaign",
        "month",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "new_valid_members",
        "new_paying_customers",
        "cost_per_valid_member",
        "cost_per_paying_customer",
        "clv_customers",
        "clv_per_paying_customer",
        "clv_over_cost",
    ])?;
    for x in &r.rows {
        let campaign = x.campaign.as_deref().unwrap_or("");
        w.write_record(csv_record(
            "campaign", &x.channel, campaign, &x.month, &x.figures,
        ))?;
    }
    for x in &r.channels {
        w.write_record(csv_record("channel", &x.channel, "", &x.month, &x.figures))?;
    }
    w.write_record(csv_record("total", "", "", "", &r.total))?;
    Ok(())
}

/// The report as aligned text: per channel and month, then per campaign.
pub fn write_table(out: &mut dyn Write, r: &AcquisitionReport) -> Result<()> {
    let scope = match (r.from, r.to) {
        (None, None) => "all time".to_string(),
        (a, b) => format!(
            "{} to {}",
            a.map(|d| d.to_string()).unwrap_or_else(|| "start".into()),
            b.map(|d| d.to_string()).unwrap_or_else(|| "now".into())
        ),
    };
    let t = &r.total;
    writeln!(
        out,
        "Acquisition, {scope}{}: spend {}, {} new valid members ({} each), {} new paying customers ({} each); CLV: {}",
        r.channel.as_deref().map(|c| format!(", channel {c}")).unwrap_or_default(),
        money(t.spend),
        count(t.new_valid_members),
        opt_money(t.cost_per_valid_member),
        count(t.new_paying_customers),
        opt_money(t.cost_per_paying_customer),
        r.clv_note
    )?;
    let head = |out: &mut dyn Write, first: &str| -> std::io::Result<()> {
        writeln!(
            out,
            "{:<28} {:<7} {:>14} {:>8} {:>12} {:>8} {:>12} {:>12} {:>9}",
            first,
            "month",
            "spend",
            "valid",
            "per valid",
            "paying",
            "per paying",
            "CLV each",
            "CLV/cost"
        )
    };
    let line = |out: &mut dyn Write, name: &str, month: &str, f: &AcquisitionFigures| {
        writeln!(
            out,
            "{:<28} {:<7} {:>14} {:>8} {:>12} {:>8} {:>12} {:>12} {:>9}",
            name,
            month,
            money(f.spend),
            count(f.new_valid_members),
            opt_money(f.cost_per_valid_member),
            count(f.new_paying_customers),
            opt_money(f.cost_per_paying_customer),
            if r.clv_model.is_none() {
                "no model".to_string()
            } else {
                opt_money(f.clv_per_paying_customer)
            },
            f.clv_over_cost
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "-".into())
        )
    };
    writeln!(out)?;
    head(out, "channel")?;
    for x in &r.channels {
        line(out, &x.channel, &x.month, &x.figures)?;
    }
    writeln!(out)?;
    head(out, "channel / campaign")?;
    for x in &r.rows {
        let c = x.campaign.as_deref().unwrap_or("");
        let name = if c.is_empty() {
            format!("{} / (none)", x.channel)
        } else {
            format!("{} / {c}", x.channel)
        };
        line(out, &name, &x.month, &x.figures)?;
    }
    Ok(())
}
