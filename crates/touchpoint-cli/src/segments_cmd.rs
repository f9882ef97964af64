//! `touchpoint segments preview|create|list|show|export|refresh`: the segment
//! language (docs/campaigns.md). Thin: the core parses, the store evaluates
//! and saves ([`Store::evaluate_segment`], [`Store::save_segment`],
//! [`Store::refresh_segments`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use touchpoint_core::segments::{parse, ParseError};
use touchpoint_core::MemberId;
use touchpoint_store::segments::{export_csv, NewSegment, Preview, SavedSegment, SegmentContext};
use touchpoint_store::{Store, StoreError};

use crate::output::{self, count, OutputFormat};
use crate::Settings;

/// Segment commands.
#[derive(Debug, clap::Subcommand)]
pub enum SegmentsCommand {
    /// Evaluate an expression now: its size, a sample of members and the time taken.
    Preview(PreviewArgs),
    /// Save a segment under a name (its size is recorded daily by `segments refresh`).
    Create(CreateArgs),
    /// List the saved segments with their latest size.
    List(OutArgs),
    /// Show one saved segment with its daily size history.
    Show(ShowArgs),
    /// Write the members of a saved segment as CSV, with every field of the language.
    Export(ExportArgs),
    /// Record today's size of every saved segment (or one) and bring rule tags up to date.
    Refresh(RefreshArgs),
}

/// `segments preview` arguments.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The expression, e.g. 'last_order_days >= 90 and has_tag("vip")'.
    pub expression: String,
    /// Members to show.
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// Evaluate as of this day (YYYY-MM-DD; default today in the business time zone).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `segments create` arguments.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Name: 1 to 64 letters, digits, - _ or .
    pub name: String,
    /// The expression.
    pub expression: String,
    /// What the segment is for, in words.
    #[arg(long)]
    pub description: Option<String>,
    /// Make it a rule tag: `segments refresh` tags its members with the name.
    #[arg(long)]
    pub rule_tag: bool,
    /// Replace a segment of the same name that has another definition.
    #[arg(long)]
    pub replace: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Arguments of commands that only print.
#[derive(Debug, clap::Args)]
pub struct OutArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `segments show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The segment's name.
    pub name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `segments export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The segment's name.
    pub name: String,
    /// Write the CSV here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate as of this day (YYYY-MM-DD; default today in the business time zone).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
}

/// `segments refresh` arguments.
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// Only this segment (default: every saved segment).
    pub name: Option<String>,
    /// Record the size for this day (YYYY-MM-DD; default today in the business time zone).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// An expression's parse error shown under the expression, with a caret.
pub fn show_parse_error(expression: &str, e: &ParseError) -> String {
    let line = expression.lines().nth(e.line - 1).unwrap_or("");
    format!(
        "expression {e}\n  {line}\n  {}^",
        " ".repeat(e.col.saturating_sub(1))
    )
}

fn context(settings: &Settings, as_of: Option<NaiveDate>) -> SegmentContext {
    SegmentContext {
        as_of,
        ..SegmentContext::new(settings.timezone)
    }
}

fn no_segment(name: &str) -> anyhow::Error {
    anyhow::anyhow!("no saved segment named {name:?} (touchpoint segments list shows them)")
}

/// Run a segments command.
pub async fn run(cmd: SegmentsCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    // Parse before opening the database: a bad expression is refused at once.
    if let SegmentsCommand::Preview(PreviewArgs { expression, .. })
    | SegmentsCommand::Create(CreateArgs { expression, .. }) = &cmd
    {
        if let Err(e) = parse(expression) {
            eprintln!("error: {}", show_parse_error(expression, &e));
            return Ok(ExitCode::from(1));
        }
    }
    let store = crate::connect(database).await?;
    let r = run_with(&store, cmd, settings).await;
    store.close().await;
    r
}

async fn run_with(store: &Store, cmd: SegmentsCommand, settings: &Settings) -> Result<ExitCode> {
    match cmd {
        SegmentsCommand::Preview(a) => {
            let expr = parse(&a.expression).map_err(|e| anyhow::anyhow!("expression {e}"))?;
            let ev = store
                .evaluate_segment(&expr, &context(settings, a.as_of))
                .await?;
            let p = Preview::of(&a.expression, ev, a.sample);
            match a.output {
                OutputFormat::Json => output::print_json(&p)?,
                OutputFormat::Table => {
                    println!(
                        "{} of {} members as of {} ({} ms)",
                        count(p.size as i64),
                        count(p.considered as i64),
                        p.as_of,
                        p.elapsed_ms
                    );
                    let fields = expr.fields();
                    for m in &p.sample {
                        let vals: Vec<String> = fields
                            .iter()
                            .map(|f| {
                                let v = match m.0.value(*f, p.as_of) {
                                    Some(touchpoint_core::segments::FieldValue::Number(n)) => {
                                        format!("{n}")
                                    }
                                    Some(touchpoint_core::segments::FieldValue::Text(t)) => {
                                        t.to_string()
                                    }
                                    None => "-".into(),
                                };
                                format!("{}={v}", f.name())
                            })
                            .collect();
                        println!(
                            "  {:<10} {}",
                            MemberId::from_i64(m.0.member_id).to_string(),
                            vals.join(" ")
                        );
                    }
                    if p.size as usize > p.sample.len() {
                        println!(
                            "  ... and {} more (touchpoint segments create NAME EXPR, then segments export NAME)",
                            count(p.size as i64 - p.sample.len() as i64)
                        );
                    }
                }
            }
        }
        SegmentsCommand::Create(a) => {
            let saved = store
                .save_segment(&NewSegment {
                    name: a.name.clone(),
                    expression: a.expression.clone(),
                    description: a.description.clone(),
                    is_tag: a.rule_tag,
                    replace: a.replace,
                })
                .await
                .map_err(|e| match e {
                    StoreError::SegmentExists(_) => anyhow::anyhow!("{e} (--replace replaces it)"),
                    other => other.into(),
                })?;
            match a.output {
                OutputFormat::Json => output::print_json(&saved)?,
                OutputFormat::Table => {
                    println!(
                        "saved segment {}{}; touchpoint segments refresh records its size daily",
                        saved.name,
                        if saved.is_tag { " (rule tag)" } else { "" }
                    );
                }
            }
        }
        SegmentsCommand::List(a) => {
            let list = store.list_segments().await?;
            match a.output {
                OutputFormat::Json => output::print_json(&list)?,
                OutputFormat::Table => {
                    if list.is_empty() {
                        println!("no saved segments (touchpoint segments create NAME EXPR)");
                    }
                    for s in &list {
                        let size = s
                            .sizes
                            .last()
                            .map(|(d, n)| format!("{} on {d}", count(*n)))
                            .unwrap_or_else(|| "not refreshed yet".into());
                        println!(
                            "{:<24} {:<24} {}{}",
                            s.name,
                            size,
                            s.expression,
                            if s.is_tag { "  [rule tag]" } else { "" }
                        );
                    }
                }
            }
        }
        SegmentsCommand::Show(a) => {
            let s = store
                .segment(&a.name)
                .await?
                .ok_or_else(|| no_segment(&a.name))?;
            match a.output {
                OutputFormat::Json => output::print_json(&s)?,
                OutputFormat::Table => print_segment(&s, &settings.timezone),
            }
        }
        SegmentsCommand::Export(a) => {
            let s = store
                .segment(&a.name)
                .await?
                .ok_or_else(|| no_segment(&a.name))?;
            let expr = parse(&s.expression)
                .map_err(|e| anyhow::anyhow!("stored segment {:?}: expression {e}", s.name))?;
            let cx = SegmentContext {
                all_fields: true,
                ..context(settings, a.as_of)
            };
            let ev = store.evaluate_segment(&expr, &cx).await?;
            match &a.out {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    export_csv(&ev.members, std::io::BufWriter::new(f))?;
                    eprintln!(
                        "{} members of {} written to {}",
                        count(ev.members.len() as i64),
                        s.name,
                        path.display()
                    );
                }
                None => export_csv(&ev.members, std::io::stdout().lock())?,
            }
        }
        SegmentsCommand::Refresh(a) => {
            let cx = context(settings, a.as_of);
            let done = match &a.name {
                Some(n) => vec![store
                    .refresh_segment(n, &cx)
                    .await?
                    .ok_or_else(|| no_segment(n))?],
                None => store.refresh_segments(&cx).await?,
            };
            match a.output {
                OutputFormat::Json => output::print_json(&done)?,
                OutputFormat::Table => {
                    if done.is_empty() {
                        println!("no saved segments to refresh");
                    }
                    for r in &done {
                        println!(
                            "{}: {} members{}",
                            r.name,
                            count(r.members as i64),
                            if r.tagged + r.untagged > 0 {
                                format!(", {} tagged, {} untagged", r.tagged, r.untagged)
                            } else {
                                String::new()
                            }
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_segment(s: &SavedSegment, tz: &chrono_tz::Tz) {
    println!(
        "segment {}{}",
        s.name,
        if s.is_tag { " (rule tag)" } else { "" }
    );
    if let Some(d) = &s.description {
        println!("  {d}");
    }
    println!("expression: {}", s.expression);
    println!(
        "created {}, changed {}",
        output::time(s.created_at, tz),
        output::time(s.updated_at, tz)
    );
    if s.sizes.is_empty() {
        println!("no size recorded yet (touchpoint segments refresh)");
    }
    for (day, n) in &s.sizes {
        println!("  {day} {:>10}", count(*n));
    }
}
