//! `touchpoint bench campaigns`: planning a birthday and a win-back run
//! (the dry run: candidates, consent, addresses, caps and control groups,
//! nothing written) over the generated brand of `bench reports` (1M
//! members by default), with birthdays, e-mail addresses and consent added
//! by SQL. Goal: under 5 s each (issue 12).

use std::time::Instant;

use anyhow::Result;
use touchpoint_store::campaigns::RunContext;
use touchpoint_store::Store;

/// `bench campaigns` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchCampaignsArgs {
    /// Members.
    #[arg(long, default_value_t = 1_000_000)]
    pub members: i64,
    /// Orders (about 2.5 lines each).
    #[arg(long, default_value_t = 4_000_000)]
    pub orders: i64,
    /// Working folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

const BIRTHDAY: &str = r#"name = "bench-birthday"
channel = "email"

[audience]
expression = 'orders >= 1'

[trigger]
kind = "birthday"
days_before = 7

[message]
subject = "Happy birthday, {{name}}"
body = "Your birthday is on {{birthday}}; you have {{points}} points."
"#;

const WINBACK: &str = r#"name = "bench-winback"
channel = "email"

[audience]
expression = 'orders >= 1'

[trigger]
kind = "win_back"
days = 90

[message]
subject = "We miss you"
body = "{{days_since_order}} days since {{last_order_date}}."
"#;

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Birthdays (every day of the year), e-mail addresses for 70% of the
/// members and e-mail consent for promotions for half, by SQL.
async fn profiles(store: &Store) -> Result<()> {
    let mut tx = store.begin().await?;
    let mut c = tx.conn();
    c.exec(
        "UPDATE members SET birthday = printf('%04d-%02d-%02d', 1960 + id % 40, 1 + (id / 28) % 12, 1 + id % 28)",
        &[],
    )
    .await?;
    c.exec(
        "INSERT INTO identifiers (id, kind, value, member_id, origin_member_id, shared, first_channel, first_record_id, created_at) \
         SELECT 100000000 + id, 'email', 'm' || id || '@example.com', id, id, 0, 'pos', 'bench', 0 FROM members WHERE id % 10 < 7",
        &[],
    )
    .await?;
    c.exec(
        "INSERT INTO consent (member_id, channel, topic, granted, at, source) \
         SELECT id, 'email', 'promotions', 1, 0, 'csv' FROM members WHERE id % 2 = 0",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Run the benchmark.
pub fn run(args: BenchCampaignsArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let db = dir.join("bench-campaigns.db");
    let _ = std::fs::remove_file(&db);
    let url = format!("sqlite://{}", db.display());
    println!(
        "bench campaigns: {} members, {} orders, SQLite, load average {}",
        args.members,
        args.orders,
        loadavg()
    );
    rt.block_on(async {
        let store = crate::connect(&url).await?;
        let t = Instant::now();
        super::reports::generate(&store, args.members, args.orders).await?;
        profiles(&store).await?;
        store.rebuild_facts().await?;
        println!(
            "  generate and rebuild_facts: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // The day after the generated orders end (2026-06-30), 12:00 local.
        let cx = RunContext {
            now: 1_782_878_400_000,
            time_zone: chrono_tz::Asia::Shanghai,
        };
        for body in [BIRTHDAY, WINBACK] {
            let c = store.campaign_create(body).await?;
            for round in 1..=2 {
                let t = Instant::now();
                let plan = store.campaigns_dry_run_of(&cx, Some(&c.name)).await?;
                let s = t.elapsed().as_secs_f64();
                let p = &plan[0];
                let counts: Vec<String> =
                    p.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!(
                    "  plan {:<15} round {round}: {s:>6.2} s  {} candidates: {}  (goal < 5 s: {}; load {})",
                    c.name,
                    p.candidates,
                    counts.join(", "),
                    if s < 5.0 { "met" } else { "NOT met" },
                    loadavg()
                );
            }
        }
        store.close().await;
        anyhow::Ok(())
    })?;
    Ok(())
}
