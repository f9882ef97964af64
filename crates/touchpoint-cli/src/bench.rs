//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import benchmark.
    Import,
    /// Reports over a generated 1M-member brand (optionally against pandas).
    Reports(crate::bench_reports::BenchReportsArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, _database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import => anyhow::bail!("bench import is being built"),
        BenchCommand::Reports(args) => crate::bench_reports::run(args),
    }
}
