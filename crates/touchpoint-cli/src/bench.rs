//! `touchpoint bench ...`
use anyhow::Result;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import benchmark.
    Import,
    /// Tracking ingest load test: events/s and p50/p99 latency, durable writes.
    Ingest(crate::bench_ingest::IngestArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Ingest(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::bench_ingest::run(args, database)),
        BenchCommand::Import => anyhow::bail!("bench import is being built"),
    }
}
