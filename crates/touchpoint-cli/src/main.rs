//! The `touchpoint` binary: parses arguments, then calls the library crates.
//!
//! Every command takes `--database URL` (env `TOUCHPOINT_DATABASE_URL`,
//! default `sqlite://touchpoint.db`) and applies migrations on first use.
//! `--format` always names an input format and `--output`/`-o` an output
//! format. Exit status: 0 success, 1 failure, 2 some input rows rejected.

mod acquisition_cmd;
mod analytics_cmd;
mod bench;
mod campaigns_cmd;
mod clv_cmd;
mod demo_cmd;
mod import_cmd;
mod keys_cmd;
mod loyalty_cmd;
mod members_cmd;
mod output;
mod promotions_cmd;
mod referrals_cmd;
mod report_cmd;
mod rewards_cmd;
mod segments_cmd;
mod serve_cmd;
mod settings;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use touchpoint_store::Store;

pub use settings::Settings;

/// Touchpoint: one customer system across every sales channel.
#[derive(Debug, Parser)]
#[command(
    name = "touchpoint",
    version,
    about = "Touchpoint: one customer system across every sales channel (one member id per person, one view of what each customer is worth).",
    after_help = "Start with `touchpoint demo`, then `touchpoint members list`. Docs: README.md and docs/."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_DATABASE_URL",
        default_value = "sqlite://touchpoint.db"
    )]
    pub database: String,

    #[command(flatten)]
    pub settings: settings::RawSettings,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a realistic demo brand (five channels, ~20,000 people) through the real import path.
    Demo(demo_cmd::DemoArgs),
    /// Import data files.
    #[command(subcommand)]
    Import(import_cmd::ImportCommand),
    /// Look up members; their profiles, tags and consent.
    #[command(subcommand)]
    Members(members_cmd::MembersCommand),
    /// Segments: preview an expression of the segment language, save, list, export, refresh.
    #[command(subcommand)]
    Segments(segments_cmd::SegmentsCommand),
    /// Campaigns: create from a file, list, show, preview for a member, run (the scheduler tick), report.
    #[command(subcommand)]
    Campaigns(campaigns_cmd::CampaignsCommand),
    /// Apply database migrations (every command also does this on first use).
    Migrate,
    /// Customer lifetime value models (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma).
    #[command(subcommand)]
    Clv(clv_cmd::ClvCommand),
    /// Customer value reports: rfm, abc, retention, cohorts, products, channels, summary.
    Report(report_cmd::ReportArgs),
    /// The analytics model the reports read: its state, and a rebuild for repair.
    #[command(subcommand)]
    Analytics(analytics_cmd::AnalyticsCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run the HTTP server: JSON API and Segment-compatible tracking ingest.
    Serve(serve_cmd::ServeArgs),
    /// Manage API keys (admin, analyst, ingest).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Loyalty points: program, balances, adjustments, packaging codes, expiry, backfill.
    #[command(subcommand)]
    Loyalty(loyalty_cmd::LoyaltyCommand),
    /// The points mall: rewards, holds, captures, releases.
    #[command(subcommand)]
    Rewards(rewards_cmd::RewardsCommand),
    /// Coupons: definitions, issues, public codes, redemption, usage.
    #[command(subcommand)]
    Coupons(rewards_cmd::CouponsCommand),
    /// Discount rules: `set FILE` stores a new version, `show` prints the current one.
    #[command(subcommand)]
    Promotions(promotions_cmd::PromotionsCommand),
    /// Member-gets-member referrals: settings, invite codes, attribution, the grant step, the report.
    #[command(subcommand)]
    Referrals(referrals_cmd::ReferralsCommand),
}

/// Connect to the store named by `--database`, applying migrations.
pub async fn connect(url: &str) -> Result<Store> {
    Store::connect(url)
        .await
        .with_context(|| format!("cannot open database {}", touchpoint_store::redact_url(url)))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let Cli {
        database,
        settings,
        command,
    } = cli;
    // Parsed once, before any command runs: a bad value is refused here.
    let settings = Settings::from_raw(&settings)?;
    match command {
        Command::Demo(args) => runtime()?.block_on(demo_cmd::run(args, &database, &settings)),
        Command::Import(cmd) => runtime()?.block_on(import_cmd::run(cmd, &database, &settings)),
        Command::Members(cmd) => runtime()?.block_on(members_cmd::run(cmd, &database, &settings)),
        Command::Segments(cmd) => runtime()?.block_on(segments_cmd::run(cmd, &database, &settings)),
        Command::Campaigns(cmd) => {
            runtime()?.block_on(campaigns_cmd::run(cmd, &database, &settings))
        }
        Command::Migrate => runtime()?.block_on(async {
            let store = connect(&database).await?;
            store.close().await;
            println!(
                "migrations applied to {}",
                touchpoint_store::redact_url(&database)
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Clv(cmd) => clv_cmd::run(cmd, &database, &settings).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => runtime()?.block_on(report_cmd::run(args, &database, &settings)),
        Command::Analytics(cmd) => runtime()?.block_on(analytics_cmd::run(cmd, &database)),
        Command::Bench(cmd) => bench::run(cmd, &database).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => runtime()?.block_on(serve_cmd::run(args, &database, &settings)),
        Command::Keys(cmd) => runtime()?.block_on(keys_cmd::run(cmd, &database)),
        Command::Loyalty(cmd) => runtime()?.block_on(loyalty_cmd::run(cmd, &database, &settings)),
        Command::Rewards(cmd) => {
            runtime()?.block_on(rewards_cmd::run_rewards(cmd, &database, &settings))
        }
        Command::Coupons(cmd) => {
            runtime()?.block_on(rewards_cmd::run_coupons(cmd, &database, &settings))
        }
        Command::Referrals(cmd) => {
            runtime()?.block_on(referrals_cmd::run(cmd, &database, &settings))
        }
        Command::Promotions(cmd) => {
            runtime()?.block_on(promotions_cmd::run(cmd, &database, &settings))
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOUCHPOINT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes, each said once. Many error types include their
/// source in their own message (`{path}: {source}`) and also report it as
/// their source, so printing the chain as is repeats it; a cause whose text
/// is already in the message is left out.
fn error_message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(String, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = Layer("No such file or directory (os error 2)".into(), None);
        let open = Layer(
            "nope.csv: No such file or directory (os error 2)".into(),
            Some(Box::new(io)),
        );
        let e = anyhow::Error::new(open).context("importing");
        assert_eq!(
            error_message(&e),
            "importing: nope.csv: No such file or directory (os error 2)"
        );
        let plain = anyhow::anyhow!("disk full").context("cannot write x");
        assert_eq!(error_message(&plain), "cannot write x: disk full");
    }
}
