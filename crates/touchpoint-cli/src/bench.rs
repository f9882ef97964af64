//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import benchmark.
    Import,
    /// CLV pipeline on synthetic data (optionally against Python lifetimes).
    Clv(crate::bench_clv::BenchClvArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, _database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import => anyhow::bail!("bench import is being built"),
        BenchCommand::Clv(args) => crate::bench_clv::run(args),
    }
}
