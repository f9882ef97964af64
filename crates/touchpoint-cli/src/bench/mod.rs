//! `touchpoint bench ...`
use anyhow::Result;

mod campaigns;
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
    /// Planning a birthday and a win-back campaign run (the dry run) over the 1M-member bench brand.
    Campaigns(campaigns::BenchCampaignsArgs),
    /// Coupon validate and redeem over HTTP (64 connections), then every connection on one coupon; checks each coupon is redeemed once.
    Coupons(coupons::BenchCouponsArgs),
}

/// A scratch PostgreSQL database for one benchmark run, created beside the
/// database `base` names and dropped after.
pub(super) struct ScratchDb {
    admin: touchpoint_store::Store,
    name: String,
    /// Its URL.
    pub url: String,
}

impl ScratchDb {
    /// Create `tp_bench_{tag}_{pid}` on the server of `base`.
    pub async fn create(base: &str, tag: &str) -> Result<Self> {
        use anyhow::Context;
        let name = format!("tp_bench_{tag}_{}", std::process::id());
        let (prefix, _) = base
            .rsplit_once('/')
            .context("--postgres must end with /DATABASE")?;
        let admin = touchpoint_store::Store::connect_without_migrating(base).await?;
        admin
            .acquire()
            .await?
            .conn()
            .exec(&format!("CREATE DATABASE {name}"), &[])
            .await?;
        Ok(ScratchDb {
            admin,
            url: format!("{prefix}/{name}"),
            name,
        })
    }

    /// Drop it.
    pub async fn drop(self) -> Result<()> {
        let r = self
            .admin
            .acquire()
            .await?
            .conn()
            .exec(&format!("DROP DATABASE IF EXISTS {}", self.name), &[])
            .await;
        self.admin.close().await;
        r?;
        Ok(())
    }
}

/// The correctness line of a load benchmark: `ok` when nothing was found,
/// else the first findings.
pub(super) fn print_correctness(ok: &str, violations: &[String]) {
    if violations.is_empty() {
        println!("  correct: {ok}");
    } else {
        println!("  INCORRECT ({} findings):", violations.len());
        for v in violations.iter().take(20) {
            println!("    {v}");
        }
    }
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
        BenchCommand::Campaigns(args) => campaigns::run(args),
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
