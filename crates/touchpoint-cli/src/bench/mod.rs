//! `touchpoint bench ...`
use anyhow::Result;

mod clv;
mod coupons;
mod dashboard;
mod import;
mod ingest;
mod loyalty;
mod reports;

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Import 1M canonical order lines into SQLite (and PostgreSQL) next to the raw bulk loaders.
    Import(import::BenchImportArgs),
    /// CLV pipeline on synthetic data (optionally against Python lifetimes).
    Clv(clv::BenchClvArgs),
    /// Tracking ingest load test: events/s and p50/p99 latency, durable writes.
    Ingest(ingest::IngestArgs),
    /// Reports over a generated 1M-member brand (optionally against pandas).
    Reports(reports::BenchReportsArgs),
    /// Dashboard pages over HTTP on the 1M-member bench brand: server time and gzipped weight per page and filter.
    Dashboard(dashboard::BenchDashboardArgs),
    /// Points spends and code claims over HTTP (64 connections), then one hot member; checks the ledger.
    Loyalty(loyalty::BenchLoyaltyArgs),
    /// Coupon validate and redeem over HTTP (64 connections), then every connection on one coupon; checks each coupon is redeemed once.
    Coupons(coupons::BenchCouponsArgs),
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, database: &str) -> Result<()> {
    match cmd {
        BenchCommand::Import(args) => import::run(args),
        BenchCommand::Clv(args) => clv::run(args),
        BenchCommand::Ingest(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(ingest::run(args, database)),
        BenchCommand::Reports(args) => reports::run(args),
        BenchCommand::Dashboard(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(dashboard::run(args)),
        BenchCommand::Loyalty(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(loyalty::run(args)),
        BenchCommand::Coupons(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(coupons::run(args)),
    }
}
