//! `touchpoint analytics ...`: the state of the analytics model, and its
//! rebuild from the orders (the repair path; the write path keeps the model
//! current, so no report needs it after new data).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::output::OutputFormat;

/// Analytics model commands.
#[derive(Debug, clap::Subcommand)]
pub enum AnalyticsCommand {
    /// Show what the model holds: facts written, the snapshot, and the rows since.
    Status {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Recompute every order's fact from the orders and write a new snapshot
    /// (repair; the result equals what the write path keeps).
    Rebuild {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Run an analytics command.
pub async fn run(cmd: AnalyticsCommand, database: &str) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    let (output, value, text) = match cmd {
        AnalyticsCommand::Status { output } => {
            let st = store.analytics_state().await?;
            let text = format!(
                "analytics model: facts {}, fact sequence {}, snapshot at {}{}",
                if st.facts_built {
                    "built"
                } else {
                    "not built yet (the next report builds them)"
                },
                st.fact_seq,
                st.snapshot_seq,
                if st.snapshot_seq < st.fact_seq {
                    " (later writes are applied on top of it)"
                } else {
                    " (current)"
                },
            );
            (output, serde_json::to_value(st)?, text)
        }
        AnalyticsCommand::Rebuild { output } => {
            let started = Instant::now();
            let load = store.rebuild_facts().await?;
            let secs = started.elapsed().as_secs_f64();
            let text = format!(
                "rebuilt the analytics model: {} order facts in {secs:.1} s",
                crate::output::count(load.snapshot_rows as i64)
            );
            (
                output,
                serde_json::json!({"facts": load.snapshot_rows, "seq": load.seq, "seconds": secs}),
                text,
            )
        }
    };
    store.close().await;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        _ => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
