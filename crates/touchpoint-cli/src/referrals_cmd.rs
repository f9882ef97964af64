//! `touchpoint referrals ...`: member-gets-member settings, invite codes,
//! attribution by hand, the grant step and the report. See docs/rewards.md,
//! Referrals.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{NaiveDate, TimeZone};
use touchpoint_core::MemberId;
use touchpoint_store::referrals::Attribution;

use crate::output::{self, OutputFormat};
use crate::Settings;

/// Referral commands.
#[derive(Debug, clap::Subcommand)]
pub enum ReferralsCommand {
    /// The referral settings: `set FILE` stores a new version, `show` prints the current one.
    #[command(subcommand)]
    Program(ProgramCommand),
    /// A member's invite code (created on first use, then the same).
    Code {
        /// Member id (M-123 or 123).
        member: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// A member's referrals: code, who referred them, their friends, rewards.
    Show {
        /// Member id.
        member: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Attribute a new member to an invite code by hand (once per friend; the new-person and self-referral rules apply).
    Attribute {
        /// The friend's member id.
        #[arg(long)]
        member: String,
        /// The invite code they came with.
        #[arg(long)]
        code: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Grant the rewards of friends whose first paid order is past the return window (idempotent; run it daily).
    Grant {
        /// Grant as of this day (YYYY-MM-DD, end of the day in the business time zone; default now).
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Invites, conversions, rewards, refusals, and referred members' revenue and CLV against the others' (the same as `touchpoint report referrals`).
    Report {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Settings commands.
#[derive(Debug, clap::Subcommand)]
pub enum ProgramCommand {
    /// Store a new version of the settings file (TOML, docs/rewards.md).
    Set {
        /// The file.
        file: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Print the settings in force.
    Show {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

fn member(flag: &str, s: &str) -> Result<i64> {
    Ok(MemberId::parse(s)
        .with_context(|| format!("{flag} {s:?}: expected a member id such as M-123"))?
        .get())
}

fn print_attribution(a: &Attribution, tz: &chrono_tz::Tz) {
    println!(
        "M-{} referred by M-{} with {} ({}), {}{}{}, {}",
        a.friend_id,
        a.advocate_id,
        a.code,
        a.source,
        a.state,
        a.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default(),
        if a.capped { ", advocate capped" } else { "" },
        output::time(a.attributed_at, tz)
    );
}

/// Run a referrals command.
pub async fn run(cmd: ReferralsCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let tz: chrono_tz::Tz = settings.timezone;
    let store = crate::connect(database).await?;
    let result = run_inner(cmd, &store, &tz).await;
    store.close().await;
    result
}

async fn run_inner(
    cmd: ReferralsCommand,
    store: &touchpoint_store::Store,
    tz: &chrono_tz::Tz,
) -> Result<ExitCode> {
    match cmd {
        ReferralsCommand::Program(ProgramCommand::Set { file, output }) => {
            let body = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let v = store
                .referral_set_program(&body)
                .await
                .with_context(|| file.display().to_string())?;
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => {
                    println!("referral settings stored as version {}", v.version)
                }
            }
        }
        ReferralsCommand::Program(ProgramCommand::Show { output }) => {
            let Some(v) = store.referral_program().await? else {
                bail!("no referral settings are stored; set them with `touchpoint referrals program set FILE` (docs/rewards.md, Referrals)");
            };
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => {
                    println!(
                        "version {}, set {}",
                        v.version,
                        output::time(v.created_at, tz)
                    );
                    println!("{}", serde_json::to_string_pretty(&v.program)?);
                }
            }
        }
        ReferralsCommand::Code { member: m, output } => {
            let id = member("member", &m)?;
            let code = store.referral_code(id).await?;
            match output {
                OutputFormat::Json => output::print_json(&serde_json::json!({
                    "member_id": format!("M-{id}"),
                    "code": code,
                }))?,
                OutputFormat::Table => println!("{code}"),
            }
        }
        ReferralsCommand::Show { member: m, output } => {
            let v = store.referral_view(member("member", &m)?).await?;
            match output {
                OutputFormat::Json => output::print_json(&v)?,
                OutputFormat::Table => {
                    println!("member M-{}", v.member_id);
                    println!("code   {}", v.code.as_deref().unwrap_or("(none yet)"));
                    if let Some(l) = &v.link {
                        println!("link   {l}");
                    }
                    match &v.referred_by {
                        Some(a) => print_attribution(a, tz),
                        None => println!("not referred"),
                    }
                    println!("friends: {}", v.friends.len());
                    for a in &v.friends {
                        print!("  ");
                        print_attribution(a, tz);
                    }
                    for r in &v.rewards {
                        println!(
                            "reward as {} for M-{}: {} points{}, {}",
                            r.role,
                            r.friend_id,
                            output::count(r.points),
                            r.coupon_id
                                .map(|c| format!(", coupon {c}"))
                                .unwrap_or_default(),
                            output::time(r.granted_at, tz)
                        );
                    }
                }
            }
        }
        ReferralsCommand::Attribute {
            member: m,
            code,
            output,
        } => {
            let a = store
                .referral_attribute(member("--member", &m)?, &code, "manual")
                .await?;
            match output {
                OutputFormat::Json => output::print_json(&a)?,
                OutputFormat::Table => print_attribution(&a, tz),
            }
            if a.state == "refused" {
                return Ok(ExitCode::from(1));
            }
        }
        ReferralsCommand::Grant { as_of, output } => {
            let at = match as_of {
                None => touchpoint_store::now_ms(),
                Some(s) => {
                    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").with_context(|| {
                        format!("--as-of {s:?}: expected a date such as 2025-12-31")
                    })?;
                    let next = d.succ_opt().context("--as-of: date out of range")?;
                    tz.from_local_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight"))
                        .earliest()
                        .context("--as-of: no midnight in the business time zone")?
                        .timestamp_millis()
                        - 1
                }
            };
            let r = store.referrals_grant(at).await?;
            match output {
                OutputFormat::Json => output::print_json(&r)?,
                OutputFormat::Table => println!(
                    "qualified {}, advocate rewards {}, friend rewards {}, capped {}, points {}, coupons {}",
                    r.qualified,
                    r.advocate_rewards,
                    r.friend_rewards,
                    r.capped,
                    output::count(r.points),
                    r.coupons
                ),
            }
        }
        ReferralsCommand::Report { output } => {
            return report(store, output == OutputFormat::Json).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `touchpoint report referrals` and `touchpoint referrals report`: one
/// code path, the JSON of `GET /api/reports/referrals`.
pub async fn report(store: &touchpoint_store::Store, json: bool) -> Result<ExitCode> {
    let r = store.referral_report().await?;
    if json {
        output::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    for line in report_lines(&r) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text lines (also the demo's summary).
pub fn report_lines(r: &touchpoint_store::referrals::ReferralReport) -> Vec<String> {
    let money = |m: i64| format!("{:.2}", m as f64 / 100.0);
    let clv = |c: Option<f64>| c.map_or("-".into(), |v| format!("{v:.2}"));
    vec![
        format!("invite codes issued   {}", r.codes_issued),
        format!("codes used            {}", r.codes_used),
        format!("friends attributed    {}", r.attributed),
        format!("friends qualified     {}", r.qualified),
        format!(
            "refused               self-referral {}, not new {}",
            r.refused_self_referral, r.refused_not_new
        ),
        format!("advocates capped      {}", r.capped),
        format!(
            "rewards               {} points, {} coupons",
            output::count(r.points_granted),
            r.coupons_granted
        ),
        format!(
            "referred members      {} (revenue {}, {} per member, mean CLV {})",
            r.referred_members,
            money(r.referred_revenue),
            money(r.referred_mean_revenue),
            clv(r.referred_mean_clv)
        ),
        format!(
            "other members         {} (revenue {}, {} per member, mean CLV {})",
            r.other_members,
            money(r.other_revenue),
            money(r.other_mean_revenue),
            clv(r.other_mean_clv)
        ),
    ]
}

/// A member's referral in a few lines, for `touchpoint members show`:
/// code (and link), who referred them, their friends.
pub fn member_lines(v: &touchpoint_store::referrals::ReferralView) -> Vec<String> {
    let mut out = vec![format!(
        "referral code: {}{}",
        v.code.as_deref().unwrap_or("(none yet)"),
        v.link
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    )];
    if let Some(a) = &v.referred_by {
        out.push(format!(
            "referred by: M-{} ({}{})",
            a.advocate_id,
            a.state,
            a.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    let friends: Vec<String> = v
        .friends
        .iter()
        .map(|a| format!("M-{} ({})", a.friend_id, a.state))
        .collect();
    out.push(format!(
        "friends referred: {}{}",
        friends.len(),
        if friends.is_empty() {
            String::new()
        } else {
            format!(": {}", friends.join(", "))
        }
    ));
    out
}
