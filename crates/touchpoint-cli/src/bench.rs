//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import 1M canonical order lines into SQLite (and PostgreSQL) next to the raw bulk loaders.
    Import(crate::bench_import::BenchImportArgs),
    /// CLV pipeline on synthetic data (optionally against Python lifetimes).
    Clv(crate::bench_clv::BenchClvArgs),
    /// Tracking ingest load test: events/s and p50/p99 latency, durable writes.
    Ingest(crate::bench_ingest::IngestArgs),
    /// Reports over a generated 1M-member brand (optionally against pandas).
    Reports(crate::bench_reports::BenchReportsArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import(args) => crate::bench_import::run(args),
        BenchCommand::Clv(args) => crate::bench_clv::run(args),
        BenchCommand::Ingest(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::bench_ingest::run(args, database)),
        BenchCommand::Reports(args) => crate::bench_reports::run(args),
    }
}
