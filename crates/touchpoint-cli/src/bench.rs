//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import 1M canonical order lines into SQLite (and PostgreSQL) next to the raw bulk loaders.
    Import(crate::bench_import::BenchImportArgs),
    /// CLV pipeline on synthetic data (optionally against Python lifetimes).
    Clv(crate::bench_clv::BenchClvArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, _database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import(args) => crate::bench_import::run(args),
        BenchCommand::Clv(args) => crate::bench_clv::run(args),
    }
}
