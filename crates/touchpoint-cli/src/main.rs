//! The `touchpoint` binary: parses arguments, then calls the library crates.

mod bench;
mod bench_clv;
mod clv_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Touchpoint: one customer system across every sales channel.
#[derive(Debug, Parser)]
#[command(name = "touchpoint", version, about)]
pub struct Cli {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://...
    #[arg(
        long,
        global = true,
        env = "TOUCHPOINT_DATABASE_URL",
        default_value = "sqlite://touchpoint.db"
    )]
    pub database: String,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Customer lifetime value models (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma).
    #[command(subcommand)]
    Clv(clv_cmd::ClvCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Clv(cmd) => clv_cmd::run(cmd, &cli.database),
        Command::Bench(cmd) => bench::run(cmd, &cli.database),
    }
}
