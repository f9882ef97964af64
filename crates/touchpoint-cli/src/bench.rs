//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import benchmark.
    Import,
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, _database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import => anyhow::bail!("bench import is being built"),
    }
}
