//! `touchpoint import orders FILE... [--format canonical|shopify|taobao] [--channel NAME]`
//!
//! Without `--format`, each file's format is detected from its header
//! ([`ingest::detect_format`]); the report says which format was used and
//! whether it was detected.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use touchpoint_core::ingest::{self, Encoding, InputFormat, ReadOptions};
use touchpoint_core::ChannelName;
use touchpoint_store::import::{self, ImportOptions, ImportReport, Progress};
use touchpoint_store::profiles::TagImport;

use crate::output::{self, OutputFormat};
use crate::Settings;

/// What to import.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Import order exports (one or more files of one format and channel).
    Orders(OrdersArgs),
    /// Import marketing spend per day, channel and campaign (docs/acquisition.md).
    Spend(crate::acquisition_cmd::SpendArgs),
    /// Import tags set by hand: a CSV of member,tag[,action] (action add or remove; docs/campaigns.md).
    Tags(TagsArgs),
}

/// `import tags` arguments.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// Tag CSV files: member (M-12 or 12), tag, and optionally action (add, the default, or remove).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Force the text encoding (default: detect UTF-8, else GBK).
    #[arg(long, value_enum)]
    pub encoding: Option<EncodingArg>,
    /// Report format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// One file's tag import, as `-o json` prints it.
#[derive(Debug, Serialize)]
pub struct FileTagImport {
    /// The file.
    pub file: String,
    /// What was done.
    #[serde(flatten)]
    pub report: TagImport,
}

/// `touchpoint import tags`: 0 when every row went in, 2 when some were rejected.
async fn import_tags(args: TagsArgs, database: &str) -> Result<ExitCode> {
    let encoding = args.encoding.map(|e| match e {
        EncodingArg::Utf8 => Encoding::Utf8,
        EncodingArg::Gbk => Encoding::Gbk,
    });
    let store = crate::connect(database).await?;
    let mut done = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let r = match std::fs::read(path) {
            Ok(bytes) => store
                .import_tags(bytes, encoding)
                .await
                .map_err(|e| anyhow::anyhow!("{shown}: {e}")),
            Err(e) => Err(anyhow::anyhow!("{shown}: {e}")),
        };
        match r {
            Ok(report) => done.push(FileTagImport {
                file: shown,
                report,
            }),
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
            const SHOWN: usize = 20;
            for f in &done {
                let r = &f.report;
                println!(
                    "{}: tag rows {} added, {} removed, {} unchanged, {} rejected",
                    f.file, r.added, r.removed, r.unchanged, r.rejected
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
        }
    }
    Ok(if done.iter().any(|f| f.report.rejected > 0) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Input formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Touchpoint's canonical CSV or JSONL (docs/import.md).
    Canonical,
    /// Shopify Admin "Export orders" CSV.
    Shopify,
    /// Taobao / Tmall seller order export.
    Taobao,
}

/// Encodings on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    /// UTF-8.
    Utf8,
    /// GBK / GB18030.
    Gbk,
}

/// `import orders` arguments.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// Files to import.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The channel the orders come from (tmall, jd, shopify, pos, ...). Canonical
    /// files may name it per row in a `channel` column instead.
    #[arg(long)]
    pub channel: Option<String>,
    /// Input format; detected from each file's header when left out.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Force the text encoding (default: detect UTF-8, else GBK).
    #[arg(long, value_enum)]
    pub encoding: Option<EncodingArg>,
    /// Write rejected rows here, for fixing and re-importing.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Import nothing if any row is bad.
    #[arg(long)]
    pub strict: bool,
    /// Report format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Build import options from arguments and settings.
pub fn options(
    format: InputFormat,
    channel: Option<&str>,
    encoding: Option<Encoding>,
    settings: &Settings,
) -> Result<ImportOptions> {
    let channel = channel
        .map(|c| ChannelName::parse(c).with_context(|| format!("--channel {c:?}")))
        .transpose()?;
    Ok(ImportOptions {
        format,
        read: ReadOptions {
            channel,
            default_country: settings.default_country.to_string(),
            default_currency: settings.default_currency.clone(),
            business_tz: settings.timezone,
            encoding,
        },
        identity: settings.identity(),
        strict: false,
        rejects: None,
        chunk_orders: 5_000,
        refresh_analytics: true,
    })
}

/// Run an import command.
pub async fn run(cmd: ImportCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let args = match cmd {
        ImportCommand::Orders(args) => args,
        ImportCommand::Spend(args) => {
            return crate::acquisition_cmd::import_spend(args, database, settings).await
        }
        ImportCommand::Tags(args) => return import_tags(args, database).await,
    };
    let (format, detected) = match args.format {
        Some(FormatArg::Canonical) => (InputFormat::Canonical, false),
        Some(FormatArg::Shopify) => (InputFormat::Shopify, false),
        Some(FormatArg::Taobao) => (InputFormat::Taobao, false),
        None => (detect_files(&args.files)?, true),
    };
    let encoding = args.encoding.map(|e| match e {
        EncodingArg::Utf8 => Encoding::Utf8,
        EncodingArg::Gbk => Encoding::Gbk,
    });
    let mut opts = options(format, args.channel.as_deref(), encoding, settings)?;
    opts.strict = args.strict;
    opts.rejects = args.rejects.clone();
    let store = crate::connect(database).await?;
    let bar = progress_bar(args.output == OutputFormat::Table);
    let report = import::import_files(&store, &args.files, &opts, &|p| bar.update(p)).await;
    bar.finish();
    store.close().await;
    let report = report?;
    let shown = ShownReport {
        report: &report,
        format_detected: detected,
    };
    match args.output {
        OutputFormat::Json => output::print_json(&shown)?,
        OutputFormat::Table => {
            println!(
                "format: {}{}",
                report.format.name(),
                if detected {
                    " (detected from the header; --format forces one)"
                } else {
                    " (--format)"
                }
            );
            print_report(&report)
        }
    }
    Ok(exit_code(&report))
}

/// The import report as `-o json` prints it: the store's report and whether
/// the format was detected.
#[derive(Serialize)]
struct ShownReport<'a> {
    #[serde(flatten)]
    report: &'a ImportReport,
    /// The format was detected from the files' headers (no `--format`).
    format_detected: bool,
}

/// The format of every file, detected from its header; all must agree.
fn detect_files(files: &[PathBuf]) -> Result<InputFormat> {
    let mut found: Vec<(String, InputFormat)> = Vec::new();
    for path in files {
        let format = detect_file(path)?;
        found.push((path.display().to_string(), format));
    }
    let first = found[0].1;
    if found.iter().any(|(_, f)| *f != first) {
        let each: Vec<String> = found.iter().map(|(p, f)| format!("{p} is {f}")).collect();
        anyhow::bail!(
            "the files are in different formats ({}); import them separately, or force one with --format",
            each.join(", ")
        );
    }
    Ok(first)
}

fn detect_file(path: &Path) -> Result<InputFormat> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let mut sample = Vec::with_capacity(8192);
    file.take(ingest::DETECT_SAMPLE_LEN as u64)
        .read_to_end(&mut sample)
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    ingest::detect_format(&sample, &shown.to_string()).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
}

/// 0 when every row went in, 2 when some were rejected, 1 when `--strict` refused the import.
pub fn exit_code(report: &ImportReport) -> ExitCode {
    if report.strict_aborted {
        ExitCode::from(1)
    } else if report.has_rejects() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// A progress bar on a terminal; nothing otherwise.
pub struct Bar(Option<ProgressBar>);

/// A progress bar for imports, shown only on a terminal.
pub fn progress_bar(wanted: bool) -> Bar {
    if wanted && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Bar(Some(ProgressBar::new(0)))
    } else {
        Bar(None)
    }
}

impl Bar {
    /// Show import progress.
    pub fn update(&self, p: Progress) {
        let Some(b) = &self.0 else { return };
        match p {
            Progress::File { path, bytes } => {
                b.reset();
                b.set_length(bytes);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                let name = std::path::Path::new(&path)
                    .file_name()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or(path);
                b.set_message(name);
            }
            Progress::Read(n) => b.set_position(n),
        }
    }
    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Print the import report for people.
pub fn print_report(r: &ImportReport) {
    for f in &r.files {
        println!(
            "{}: orders {} inserted, {} updated, {} unchanged, {} rejected; lines {} inserted, {} updated, {} unchanged, {} rejected",
            f.path,
            f.orders.inserted,
            f.orders.updated,
            f.orders.unchanged,
            f.orders.rejected,
            f.lines.inserted,
            f.lines.updated,
            f.lines.unchanged,
            f.lines.rejected
        );
        const SHOWN: usize = 20;
        let errors: Vec<_> = f.rejected.iter().flat_map(|o| o.errors.iter()).collect();
        for e in errors.iter().take(SHOWN) {
            println!("  rejected: {}: {e}", f.path);
        }
        if errors.len() > SHOWN {
            println!(
                "  ... and {} more errors (use --output json for all of them)",
                errors.len() - SHOWN
            );
        }
        if let Some(p) = &f.rejects_file {
            println!("  rejected rows written to {p}: fix them and import that file again");
        }
    }
    let id = &r.identity;
    println!(
        "identity: {} new members, {} channel accounts joined to existing members, {} merges, {} identifiers marked shared, {} splits",
        id.members_created, id.links, id.merges, id.shared_marked, id.splits
    );
    for s in &r.shared_identifiers {
        println!("  shared (no longer joins records): {s}");
    }
    if r.strict_aborted {
        println!("--strict: nothing was imported because some rows are bad (see above)");
    }
}
