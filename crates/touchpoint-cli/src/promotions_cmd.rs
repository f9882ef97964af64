//! `touchpoint promotions ...`: the discount rules file. See
//! docs/promotions.md.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::output::{self, OutputFormat};
use crate::Settings;

/// Promotions commands.
#[derive(Debug, clap::Subcommand)]
pub enum PromotionsCommand {
    /// Check and store a rule file (TOML) as the new version.
    Set {
        /// The file.
        file: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Print the current rule file.
    Show {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Run a promotions command.
pub async fn run(cmd: PromotionsCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    let result = run_inner(cmd, &store, &settings.timezone).await;
    store.close().await;
    result
}

async fn run_inner(
    cmd: PromotionsCommand,
    store: &touchpoint_store::Store,
    tz: &chrono_tz::Tz,
) -> Result<ExitCode> {
    match cmd {
        PromotionsCommand::Set { file, output } => {
            let body = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let v = store
                .promotions_set(&body)
                .await
                .with_context(|| format!("{} was not stored", file.display()))?;
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => println!(
                    "{} stored as version {}: {} quantity, {} cumulative, {} early-payment rule(s)",
                    file.display(),
                    v.version,
                    v.rules.quantity.len(),
                    v.rules.cumulative.len(),
                    v.rules.early_payment.len()
                ),
            }
        }
        PromotionsCommand::Show { output } => {
            let Some(v) = store.promotions().await? else {
                bail!("no discount rules are set; set them with `touchpoint promotions set FILE` (docs/promotions.md)");
            };
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => {
                    println!(
                        "# version {}, set {}",
                        v.version,
                        output::time(v.created_at, tz)
                    );
                    print!("{}", v.body);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
