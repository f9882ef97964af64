//! `touchpoint clv ...`
use anyhow::Result;

/// CLV commands.
#[derive(Debug, clap::Subcommand)]
pub enum ClvCommand {
    /// Fit models.
    Fit,
}

/// Run a CLV command.
pub fn run(cmd: ClvCommand, _database: &str) -> Result<()> {
    match cmd {
        ClvCommand::Fit => anyhow::bail!("clv fit is being built"),
    }
}
