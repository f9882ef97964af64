//! `touchpoint keys create|list|revoke`: API keys.

use std::process::ExitCode;

use anyhow::{Context, Result};
use touchpoint_core::ChannelName;
use touchpoint_store::keys::Role;

use crate::output::{self, OutputFormat};

/// Key roles on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Everything.
    Admin,
    /// The read-only API.
    Analyst,
    /// Tracking endpoints only (a Segment write key).
    Ingest,
}

/// Key commands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only its hash is stored).
    Create {
        /// The role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A label.
        #[arg(long)]
        name: Option<String>,
        /// The source (channel) events sent with this key belong to (ingest keys; default "web").
        #[arg(long)]
        source: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// List keys (never the secrets).
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Revoke a key by its id (the first 8 hex digits shown by `keys list`).
    Revoke {
        /// The key id.
        key_id: String,
    },
}

/// Run a keys command.
pub async fn run(cmd: KeysCommand, database: &str) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    let result = match cmd {
        KeysCommand::Create {
            role,
            name,
            source,
            output,
        } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Analyst => Role::Analyst,
                RoleArg::Ingest => Role::Ingest,
            };
            let source = match (role, source) {
                (_, Some(s)) => Some(
                    ChannelName::parse(&s)
                        .with_context(|| format!("--source {s:?}"))?
                        .to_string(),
                ),
                (Role::Ingest, None) => Some("web".to_string()),
                _ => None,
            };
            let k = store
                .create_key(role, name.as_deref(), source.as_deref())
                .await?;
            match output {
                OutputFormat::Json => output::print_json(&k)?,
                OutputFormat::Table => {
                    println!("{}", k.key);
                    eprintln!(
                        "created {} key {}{}; this is the only time the key is shown",
                        k.info.role.as_str(),
                        k.info.key_id,
                        k.info
                            .source
                            .as_deref()
                            .map(|s| format!(" for source {s}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { output } => {
            let keys = store.list_keys().await?;
            match output {
                OutputFormat::Json => output::print_json(&keys)?,
                OutputFormat::Table => {
                    println!(
                        "{:<10} {:<8} {:<12} {:<20} status",
                        "id", "role", "source", "name"
                    );
                    for k in &keys {
                        println!(
                            "{:<10} {:<8} {:<12} {:<20} {}",
                            k.key_id,
                            k.role.as_str(),
                            k.source.as_deref().unwrap_or("-"),
                            k.name.as_deref().unwrap_or("-"),
                            if k.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { key_id } => {
            if store.revoke_key(&key_id).await? {
                println!("revoked key {key_id}");
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no active key {key_id:?}: `touchpoint keys list` shows the ids")
            }
        }
    };
    store.close().await;
    result
}
