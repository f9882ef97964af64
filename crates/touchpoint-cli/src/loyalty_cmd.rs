//! `touchpoint loyalty ...`: the points program, balances, adjustments,
//! packaging codes, expiry and backfill. See docs/loyalty.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{NaiveDate, TimeZone};
use touchpoint_core::MemberId;
use touchpoint_store::loyalty::Entry;

use crate::output::{self, OutputFormat};
use crate::Settings;

/// Loyalty commands.
#[derive(Debug, clap::Subcommand)]
pub enum LoyaltyCommand {
    /// The points program: `set FILE` stores a new version, `show` prints the current one.
    #[command(subcommand)]
    Program(ProgramCommand),
    /// A member's points: available, pending, tier, open lots.
    Balance {
        /// Member id (M-123 or 123).
        member: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// A member's ledger entries, newest first.
    History {
        /// Member id.
        member: String,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Add (or with a negative number take) points, with a reason.
    #[command(allow_negative_numbers = true)]
    Adjust {
        /// Member id.
        member: String,
        /// Points, e.g. 100 or -50.
        points: i64,
        /// Why (kept on the entry).
        #[arg(long)]
        reason: String,
        /// Idempotency key: running the same command with it again changes nothing (default: a new one).
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Packaging codes.
    #[command(subcommand)]
    Codes(CodesCommand),
    /// Expire the points due at DATE (default today), once per lot; record expiring-soon reminders.
    Expire {
        /// The day (YYYY-MM-DD, business time zone): lots expiring by its start expire.
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Hold the tier reviews due by DATE (default now): downgrade members who no longer qualify, as the program says (idempotent).
    Tiers {
        /// The day (YYYY-MM-DD, business time zone): reviews due by its start are held.
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Earn points for stored orders placed since DATE, including those before the program started (idempotent).
    Backfill {
        /// YYYY-MM-DD (business time zone).
        #[arg(long)]
        since: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Program commands.
#[derive(Debug, clap::Subcommand)]
pub enum ProgramCommand {
    /// Check and store a program file (TOML) as the new version.
    Set {
        /// The file.
        file: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Print the current program.
    Show {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Code commands.
#[derive(Debug, clap::Subcommand)]
pub enum CodesCommand {
    /// Generate a batch and write the printer's file (code,url per line). Only hashes are stored.
    Generate {
        /// Batch name (unique).
        #[arg(long)]
        batch: String,
        /// How many codes (up to 10,000,000).
        #[arg(long)]
        count: usize,
        /// Points per code.
        #[arg(long)]
        points: i64,
        /// The product the codes are printed on.
        #[arg(long)]
        sku: Option<String>,
        /// Last day codes may be claimed (YYYY-MM-DD, business time zone).
        #[arg(long)]
        expires: Option<String>,
        /// Days a claim's points stay pending before they can be spent (default 0: at once).
        #[arg(long, default_value_t = 0)]
        pending_days: u32,
        /// The scan URL prefix; the code is appended.
        #[arg(long, default_value = "https://touchpoint.example/c/")]
        url_prefix: String,
        /// The CSV file to write (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Void a batch: its unclaimed codes can no longer be claimed.
    Void {
        /// Batch id.
        id: i64,
    },
}

fn member(s: &str) -> Result<i64> {
    Ok(MemberId::parse(s)
        .with_context(|| format!("member id {s:?}"))?
        .get())
}

fn day_start(s: &str, tz: &chrono_tz::Tz) -> Result<i64> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{s:?} is not a date such as 2025-12-31"))?;
    let t = tz
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .with_context(|| format!("{s} has no midnight in the time zone"))?;
    Ok(t.timestamp_millis())
}

fn print_entries(entries: &[Entry], tz: &chrono_tz::Tz) {
    println!(
        "{:>8}  {:<16}  {:<8}  {:>10}  {:<12}  source",
        "entry", "at", "kind", "points", "reason"
    );
    for e in entries {
        println!(
            "{:>8}  {:<16}  {:<8}  {:>10}  {:<12}  {}{}",
            e.id,
            output::time(e.at, tz),
            e.kind,
            output::count(e.points),
            e.reason,
            e.source,
            if e.uncovered != 0 {
                format!(" (uncovered {})", e.uncovered)
            } else {
                String::new()
            }
        );
    }
}

/// Run a loyalty command.
pub async fn run(cmd: LoyaltyCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let tz: chrono_tz::Tz = settings.timezone;
    let store = crate::connect(database).await?;
    let result = run_inner(cmd, &store, &tz).await;
    store.close().await;
    result
}

async fn run_inner(
    cmd: LoyaltyCommand,
    store: &touchpoint_store::Store,
    tz: &chrono_tz::Tz,
) -> Result<ExitCode> {
    match cmd {
        LoyaltyCommand::Program(ProgramCommand::Set { file, output }) => {
            let body = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let v = store.loyalty_set_program(&body).await?;
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => println!(
                    "program {:?} stored as version {}",
                    v.program.name, v.version
                ),
            }
        }
        LoyaltyCommand::Program(ProgramCommand::Show { output }) => {
            let Some(v) = store.loyalty_program().await? else {
                bail!("no loyalty program is set; set one with `touchpoint loyalty program set FILE` (docs/loyalty.md)");
            };
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => {
                    println!(
                        "# version {}, set {}",
                        v.version,
                        output::time(v.created_at, tz)
                    );
                    print!("{}", v.body);
                }
            }
        }
        LoyaltyCommand::Balance { member: m, output } => {
            let b = store.points_balance(member(&m)?, 10).await?;
            match output {
                OutputFormat::Json => output::print_json(&b)?,
                OutputFormat::Table => {
                    println!("member     M-{}", b.member_id);
                    println!("available  {}", output::count(b.available));
                    println!("pending    {}", output::count(b.pending));
                    if b.debt > 0 {
                        println!("owed       {}", output::count(b.debt));
                    }
                    println!("tier       {}", b.tier.as_deref().unwrap_or("-"));
                    println!();
                    println!(
                        "{:>8}  {:>10}  {:<16}  expires",
                        "lot", "remaining", "available from"
                    );
                    for l in &b.lots {
                        println!(
                            "{:>8}  {:>10}  {:<16}  {}",
                            l.id,
                            output::count(l.remaining),
                            output::time(l.available_from, tz),
                            l.expires_at.map_or("never".into(), |e| output::time(e, tz))
                        );
                    }
                }
            }
        }
        LoyaltyCommand::History {
            member: m,
            limit,
            output,
        } => {
            let entries = store.points_history(member(&m)?, limit).await?;
            match output {
                OutputFormat::Json => output::print_json(&entries)?,
                OutputFormat::Table => print_entries(&entries, tz),
            }
        }
        LoyaltyCommand::Adjust {
            member: m,
            points,
            reason,
            key,
            output,
        } => {
            let key =
                key.unwrap_or_else(|| format!("cli:{}", touchpoint_core::loyalty::generate_code()));
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let w = store
                .points_adjust(member(&m)?, points, &reason, &format!("cli {user}"), &key)
                .await?;
            match output {
                OutputFormat::Json => output::print_json(&w)?,
                OutputFormat::Table => println!(
                    "{} entry {}: {} points; available now {}",
                    if w.created {
                        "wrote"
                    } else {
                        "already written:"
                    },
                    w.entry.id,
                    output::count(w.entry.points),
                    output::count(w.available)
                ),
            }
        }
        LoyaltyCommand::Codes(CodesCommand::Generate {
            batch,
            count,
            points,
            sku,
            expires,
            pending_days,
            url_prefix,
            out,
            output,
        }) => {
            // Claimable through the whole last day.
            let expires_at = expires
                .as_deref()
                .map(|d| day_start(d, tz).map(|t| t + 86_400_000))
                .transpose()?;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
            let started = std::time::Instant::now();
            let mut w = std::io::BufWriter::new(file);
            let mut written = 0usize;
            let header = writeln!(w, "code,url");
            let mut sink = |chunk: &[String]| -> Result<(), touchpoint_store::StoreError> {
                for c in chunk {
                    writeln!(w, "{c},{url_prefix}{c}").map_err(|e| {
                        touchpoint_store::StoreError::InvalidInput(format!(
                            "cannot write the codes file: {e}"
                        ))
                    })?;
                }
                written += chunk.len();
                if written == count {
                    // Flushed before the batch commits: a stored batch always has its whole file.
                    w.flush().map_err(|e| {
                        touchpoint_store::StoreError::InvalidInput(format!(
                            "cannot write the codes file: {e}"
                        ))
                    })?;
                }
                Ok(())
            };
            let result = match header {
                Ok(()) => {
                    store
                        .codes_generate(
                            &touchpoint_store::loyalty::BatchSpec {
                                name: &batch,
                                count,
                                points,
                                sku: sku.as_deref(),
                                expires_at,
                                pending_days,
                            },
                            &mut sink,
                        )
                        .await
                }
                Err(e) => Err(touchpoint_store::StoreError::InvalidInput(format!(
                    "cannot write the codes file: {e}"
                ))),
            };
            let id = match result {
                Ok(id) => id,
                Err(e) => {
                    // Nothing is stored (the batch rolled back): no half file.
                    let _ = std::fs::remove_file(&out);
                    return Err(e.into());
                }
            };
            let secs = started.elapsed().as_secs_f64();
            match output {
                OutputFormat::Json => output::print_json(&serde_json::json!({
                    "batch_id": id, "count": written, "points": points, "pending_days": pending_days,
                    "file": out.display().to_string(), "seconds": secs,
                }))?,
                OutputFormat::Table => println!(
                    "batch {} ({batch}): {} codes of {points} points written to {} in {secs:.1} s; only their hashes are stored",
                    id,
                    output::count(written as i64),
                    out.display()
                ),
            }
        }
        LoyaltyCommand::Codes(CodesCommand::Void { id }) => {
            if store.codes_void_batch(id).await? {
                println!("batch {id} voided");
            } else {
                bail!("no batch {id}, or it was voided already");
            }
        }
        LoyaltyCommand::Expire { as_of, output } => {
            let as_of = match as_of {
                Some(d) => day_start(&d, tz)?,
                None => touchpoint_store::now_ms(),
            };
            let r = store.points_expire(as_of).await?;
            match output {
                OutputFormat::Json => output::print_json(&r)?,
                OutputFormat::Table => println!(
                    "{} lots expired ({} points); {} expiring-soon reminders; {} pending lots became available",
                    r.lots,
                    output::count(r.points),
                    r.reminders,
                    r.matured
                ),
            }
        }
        LoyaltyCommand::Tiers { as_of, output } => {
            let as_of = match as_of {
                Some(d) => day_start(&d, tz)?,
                None => touchpoint_store::now_ms(),
            };
            let r = store.loyalty_tier_reviews(as_of).await?;
            match output {
                OutputFormat::Json => output::print_json(&r)?,
                OutputFormat::Table => {
                    println!(
                        "{} reviews: {} kept, {} changed",
                        r.reviews,
                        r.kept,
                        r.changes.len()
                    );
                    for c in &r.changes {
                        println!(
                            "M-{}  {} -> {}  {}",
                            c.member_id,
                            c.from.as_deref().unwrap_or("-"),
                            c.to.as_deref().unwrap_or("-"),
                            c.reason
                        );
                    }
                }
            }
        }
        LoyaltyCommand::Backfill { since, output } => {
            let n = store.loyalty_backfill(day_start(&since, tz)?).await?;
            match output {
                OutputFormat::Json => output::print_json(&serde_json::json!({ "orders": n }))?,
                OutputFormat::Table => println!("{n} orders since {since} checked for points"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The daily jobs of `touchpoint serve`: expires due lots, records
/// expiring-soon reminders and makes due pending points available, then
/// holds the tier reviews that are due; at start and then every hour (each
/// run is idempotent, so "daily" holds however often it runs). Errors are
/// logged and retried at the next run.
pub fn spawn_expiry_job(store: touchpoint_store::Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match store.loyalty_program().await {
                Ok(Some(_)) => {
                    match store.points_expire(touchpoint_store::now_ms()).await {
                        Ok(r) => tracing::info!(
                            lots = r.lots,
                            points = r.points,
                            reminders = r.reminders,
                            "loyalty expiry run"
                        ),
                        Err(e) => tracing::error!(error = %e, "loyalty expiry run failed"),
                    }
                    match store.loyalty_tier_reviews(touchpoint_store::now_ms()).await {
                        Ok(r) => tracing::info!(
                            reviews = r.reviews,
                            changes = r.changes.len(),
                            "loyalty tier review run"
                        ),
                        Err(e) => tracing::error!(error = %e, "loyalty tier review run failed"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "loyalty expiry run failed"),
            }
        }
    })
}

/// The daily referral grant inside `touchpoint serve`: the same step as
/// `touchpoint referrals grant` (idempotent, capped), once at start and
/// then every 24 hours.
pub fn spawn_referral_grant_job(store: touchpoint_store::Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            every.tick().await;
            match store.referrals_grant(touchpoint_store::now_ms()).await {
                Ok(r) => tracing::info!(
                    qualified = r.qualified,
                    advocate_rewards = r.advocate_rewards,
                    friend_rewards = r.friend_rewards,
                    capped = r.capped,
                    "referral grant run"
                ),
                Err(e) => tracing::error!(error = %e, "referral grant run failed"),
            }
        }
    })
}

/// `touchpoint report loyalty`.
pub async fn report(
    store: &touchpoint_store::Store,
    json: bool,
    settings: &Settings,
) -> Result<ExitCode> {
    let tz: chrono_tz::Tz = settings.timezone;
    let r = store.loyalty_report(tz).await?;
    if json {
        output::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8}  {:>12}  {:>12}  {:>12}  {:>12}",
        "month", "issued", "spent", "expired", "reversed"
    );
    for m in &r.months {
        println!(
            "{:<8}  {:>12}  {:>12}  {:>12}  {:>12}",
            m.month,
            output::count(m.issued),
            output::count(m.spent),
            output::count(m.expired),
            output::count(m.reversed)
        );
    }
    println!();
    println!(
        "outstanding {} points, liability {}; breakage {:.1}%",
        output::count(r.outstanding_points),
        output::money(r.outstanding_value),
        r.breakage * 100.0
    );
    println!("{:<8}  {:>12}  {:>14}", "expires", "points", "value");
    for l in &r.liability {
        println!(
            "{:<8}  {:>12}  {:>14}",
            l.expires,
            output::count(l.points),
            output::money(l.value)
        );
    }
    println!();
    for (tier, n) in &r.tiers {
        println!("tier {tier}: {} members", output::count(*n));
    }
    for (from, to, n) in &r.tier_movements {
        println!("tier {from} -> {to}: {n}");
    }
    for (channel, n) in &r.joined_by_scan {
        println!("joined by scanning a code, first bought on {channel}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
