//! `touchpoint campaigns create|list|show|preview|run|report|dead-letters|retry`
//! (docs/campaigns.md). Thin: the core parses campaign files, the store
//! decides, delivers and reports ([`Store::campaigns_run`],
//! [`Store::campaigns_deliver`], [`Store::campaign_report`],
//! [`Store::campaign_dead_letters`], [`Store::campaign_retry`]). [`tick`] is
//! the one scheduler tick, shared by `campaigns run` and `touchpoint serve`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{NaiveDateTime, TimeZone};
use serde::Serialize;
use touchpoint_core::MemberId;
use touchpoint_store::campaigns::{CampaignRun, RunContext};
use touchpoint_store::delivery::{DeliveryReport, DeliverySettings, RetrySelection, SmtpServer};
use touchpoint_store::Store;

use crate::output::{self, OutputFormat};
use crate::Settings;

/// Campaign commands.
#[derive(Debug, clap::Subcommand)]
pub enum CampaignsCommand {
    /// Store a campaign file (checked first) as the next version of its name.
    Create(CreateArgs),
    /// List the campaigns (current versions).
    List(OutArgs),
    /// Show one campaign: its current file and version.
    Show(NameArgs),
    /// Render a campaign's message for a real member (nothing is written).
    Preview(PreviewArgs),
    /// The scheduler tick (what a cron runs): decide every campaign's sends, then deliver them.
    Run(RunArgs),
    /// Sent, control, skipped by reason, and conversion of treated against control.
    Report(ReportArgs),
    /// Sends that failed for good or kept failing for 24 h.
    DeadLetters(OutArgs),
    /// Queue dead letters again (due at once, with a fresh 24 h of retries).
    Retry(RetryArgs),
}

/// `campaigns retry` arguments.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Send ids (from `campaigns dead-letters`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<i64>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// How campaign messages leave (`campaigns run` and `serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// The SMTP relay: smtp://[USER:PASS@]HOST[:PORT][?tls=none|opportunistic|required] or smtps://... (docs/campaigns.md).
    #[arg(long = "smtp", visible_alias = "smtp-url", env = "TOUCHPOINT_SMTP_URL")]
    pub smtp: Option<String>,
    /// Extra trusted root certificates (PEM) for the SMTP server, e.g. a private CA.
    #[arg(long, env = "TOUCHPOINT_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Extra trusted root certificates (PEM) for https webhook, SMS and WeChat gateways, e.g. a private CA.
    #[arg(long, env = "TOUCHPOINT_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,
    /// The From address of e-mails, e.g. "Brand <crm@brand.example>".
    #[arg(long, env = "TOUCHPOINT_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Where `touchpoint serve` is reached, for the unsubscribe link (https://crm.brand.example).
    #[arg(long, env = "TOUCHPOINT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Sends delivered at once (SMTP connections, webhook requests in flight).
    #[arg(long, default_value_t = 4)]
    pub delivery_concurrency: usize,
}

impl DeliveryArgs {
    /// The store's delivery settings (reads the CA file), for a pass as of `now`.
    pub fn settings(&self, now: Option<i64>) -> Result<DeliverySettings> {
        let mut smtp = self
            .smtp
            .as_deref()
            .map(SmtpServer::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--smtp (TOUCHPOINT_SMTP_URL) {e}"))?;
        if let Some(path) = &self.smtp_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("--smtp-ca-file: cannot read {}", path.display()))?;
            match smtp.as_mut() {
                Some(s) => s.ca_pem = Some(pem),
                None => bail!("--smtp-ca-file needs --smtp"),
            }
        }
        let webhook_ca_pem = match &self.webhook_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("--webhook-ca-file: cannot read {}", path.display())
                })?;
                touchpoint_store::delivery::ca_certificates(&pem)
                    .map_err(|e| anyhow::anyhow!("--webhook-ca-file {}: {e}", path.display()))?;
                Some(pem)
            }
            None => None,
        };
        Ok(DeliverySettings {
            smtp,
            webhook_ca_pem,
            mail_from: self.mail_from.clone(),
            public_url: self.public_url.clone(),
            backoff: Duration::from_secs(1),
            now,
            concurrency: self.delivery_concurrency.max(1),
            ..DeliverySettings::default()
        })
    }
}

/// One scheduler tick: decide every campaign as of `now`, then (unless
/// `delivery` is `None`) deliver what is due. `campaigns run` and the
/// scheduler of `touchpoint serve` both run this.
pub async fn tick(
    store: &Store,
    tz: chrono_tz::Tz,
    now: i64,
    delivery: Option<&DeliverySettings>,
) -> Result<RunOutput> {
    let campaigns = store
        .campaigns_run(&RunContext { now, time_zone: tz })
        .await?;
    let delivery = match delivery {
        Some(d) => Some(store.campaigns_deliver(d).await?),
        None => None,
    };
    Ok(RunOutput {
        now,
        campaigns,
        delivery,
    })
}

/// `campaigns create` arguments.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The campaign file (TOML, docs/campaigns.md).
    pub file: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Arguments of commands that only print.
#[derive(Debug, clap::Args)]
pub struct OutArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// A campaign by name.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The campaign's name.
    pub name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `campaigns preview` arguments.
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The campaign's name.
    pub name: String,
    /// The member (M-123 or 123).
    #[arg(long)]
    pub member: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `campaigns run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The run's time: local "YYYY-MM-DD HH:MM" in the business time zone, or RFC 3339 (default: now).
    #[arg(long, conflicts_with = "as_of")]
    pub now: Option<String>,
    /// The run's day: YYYY-MM-DD (12:00 local that day), or a time as --now takes.
    #[arg(long)]
    pub as_of: Option<String>,
    /// List who would get what and why (member, campaign, occurrence, decision, reason); write nothing, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run and the table output: at most this many decisions listed per campaign (0: all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Delivery settings.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Decide only; deliver on a later run.
    #[arg(long)]
    pub no_deliver: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `campaigns report` arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The campaign's name.
    pub name: String,
    /// Days after a send in which a purchase counts (default: the campaign's conversion_days).
    #[arg(long)]
    pub days: Option<u32>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// What one scheduler tick did.
#[derive(Debug, Serialize)]
pub struct RunOutput {
    /// The tick's time (ms since the epoch).
    pub now: i64,
    /// Per campaign, what was decided.
    pub campaigns: Vec<CampaignRun>,
    /// What delivery did, unless it was off.
    pub delivery: Option<DeliveryReport>,
}

fn parse_now(s: &str, tz: &chrono_tz::Tz) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.timestamp_millis());
    }
    let Ok(n) = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M") else {
        bail!("--now {s:?}: expected a local time \"YYYY-MM-DD HH:MM\" or RFC 3339 such as 2025-12-01T10:00:00+08:00");
    };
    tz.from_local_datetime(&n)
        .earliest()
        .map(|t| t.timestamp_millis())
        .with_context(|| format!("--now {s:?}: this local time does not exist (a clock change)"))
}

/// Run a campaigns command.
pub async fn run(cmd: CampaignsCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let store: Store = crate::connect(database).await?;
    let tz = settings.timezone;
    match cmd {
        CampaignsCommand::Create(a) => {
            let body = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let c = store
                .campaign_create(&body)
                .await
                .with_context(|| format!("{}", a.file.display()))?;
            match a.output {
                OutputFormat::Json => output::print_json(&c)?,
                OutputFormat::Table => println!("campaign {} version {}", c.name, c.version),
            }
        }
        CampaignsCommand::List(a) => {
            let list = store.campaigns().await?;
            match a.output {
                OutputFormat::Json => output::print_json(&list)?,
                OutputFormat::Table => {
                    println!(
                        "{:<24} {:>7} {:<8} {:<14} stored",
                        "name", "version", "channel", "trigger"
                    );
                    for c in &list {
                        let trigger = serde_json::to_value(&c.campaign.trigger)?["kind"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        println!(
                            "{:<24} {:>7} {:<8} {:<14} {}",
                            c.name,
                            c.version,
                            c.campaign.channel.name(),
                            trigger,
                            output::time(c.created_at, &tz)
                        );
                    }
                }
            }
        }
        CampaignsCommand::Show(a) => {
            let Some(c) = store.campaign(&a.name).await? else {
                bail!("no campaign named {:?} (touchpoint campaigns list)", a.name);
            };
            match a.output {
                OutputFormat::Json => output::print_json(&c)?,
                OutputFormat::Table => {
                    println!(
                        "campaign {} version {} (stored {})\n",
                        c.name,
                        c.version,
                        output::time(c.created_at, &tz)
                    );
                    print!("{}", c.body);
                }
            }
        }
        CampaignsCommand::Preview(a) => {
            let m =
                MemberId::parse(&a.member).with_context(|| format!("--member {:?}", a.member))?;
            let p = store.campaign_preview(&a.name, m).await?;
            match a.output {
                OutputFormat::Json => output::print_json(&p)?,
                OutputFormat::Table => {
                    println!(
                        "to: {} by {} (consent: {}, control group: {})",
                        p.address.as_deref().unwrap_or("(no e-mail address)"),
                        p.channel,
                        if p.consent { "yes" } else { "no" },
                        if p.control { "yes" } else { "no" }
                    );
                    println!("subject: {}\n\n{}", p.subject, p.body);
                }
            }
        }
        CampaignsCommand::Run(a) => {
            let now = match (&a.now, &a.as_of) {
                (Some(s), _) => parse_now(s, &tz)?,
                (None, Some(d)) => match chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
                    Ok(day) => parse_now(&format!("{day} 12:00"), &tz)?,
                    Err(_) => parse_now(d, &tz).map_err(|_| {
                        anyhow::anyhow!(
                            "--as-of {d:?}: expected a day YYYY-MM-DD (12:00 local), a local time \"YYYY-MM-DD HH:MM\" or RFC 3339 such as 2025-12-01T10:00:00+08:00"
                        )
                    })?,
                },
                (None, None) => touchpoint_store::now_ms(),
            };
            if a.dry_run {
                let plan = store
                    .campaigns_dry_run(&RunContext { now, time_zone: tz })
                    .await?;
                match a.output {
                    OutputFormat::Json => output::print_json(&serde_json::json!({
                        "now": now,
                        "dry_run": true,
                        "campaigns": plan,
                    }))?,
                    OutputFormat::Table => {
                        println!(
                            "dry run as of {} (nothing is written or sent)",
                            output::time(now, &tz)
                        );
                        for c in &plan {
                            if let Some(why) = &c.idle {
                                println!("{:<24} idle: {why}", c.campaign);
                                continue;
                            }
                            let counts: Vec<String> =
                                c.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                            println!(
                                "{:<24} priority {}, candidates {}, already decided {}: {}",
                                c.campaign,
                                c.priority,
                                c.candidates,
                                c.already_decided,
                                if counts.is_empty() {
                                    "nothing".into()
                                } else {
                                    counts.join(", ")
                                }
                            );
                            let n = if a.limit == 0 {
                                c.decisions.len()
                            } else {
                                a.limit
                            };
                            for d in c.decisions.iter().take(n) {
                                println!(
                                    "  {:<10} {:<28} {:<8} {:<18} {}",
                                    d.member_id,
                                    d.occurrence,
                                    d.decision,
                                    d.reason.as_deref().unwrap_or("-"),
                                    d.why
                                );
                            }
                            if c.decisions.len() > n {
                                println!(
                                    "  ... {} more (--limit 0 lists all)",
                                    c.decisions.len() - n
                                );
                            }
                        }
                    }
                }
                store.close().await;
                return Ok(ExitCode::SUCCESS);
            }
            let delivery = if a.no_deliver {
                None
            } else {
                Some(
                    a.delivery
                        .settings((a.now.is_some() || a.as_of.is_some()).then_some(now))?,
                )
            };
            let out = tick(&store, tz, now, delivery.as_ref()).await?;
            match a.output {
                OutputFormat::Json => output::print_json(&out)?,
                OutputFormat::Table => {
                    println!("run as of {}", output::time(now, &tz));
                    for c in &out.campaigns {
                        if let Some(why) = &c.idle {
                            println!("{:<24} idle: {why}", c.campaign);
                            continue;
                        }
                        let skipped: Vec<String> =
                            c.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
                        println!(
                            "{:<24} candidates {}, queued {}, control {}, waiting {}, released {}, lapsed {}, already decided {}, skipped: {}",
                            c.campaign,
                            c.candidates,
                            c.queued,
                            c.control,
                            c.waiting,
                            c.released,
                            c.lapsed,
                            c.already_decided,
                            if skipped.is_empty() { "none".into() } else { skipped.join(", ") }
                        );
                    }
                    if let Some(d) = &out.delivery {
                        println!(
                            "delivered {}, to retry {}, dead letters {}, waiting {}",
                            d.sent, d.retrying, d.failed, d.waiting
                        );
                        if let Some(w) = &d.waiting_reason {
                            println!("waiting: {w}");
                        }
                    }
                }
            }
        }
        CampaignsCommand::Report(a) => {
            let r = store.campaign_report(&a.name, a.days).await?;
            match a.output {
                OutputFormat::Json => output::print_json(&r)?,
                OutputFormat::Table => {
                    println!("campaign {} version {}", r.campaign, r.version);
                    println!(
                        "sent {}, queued {}, failed {}, control {}, waiting {}, lapsed {}",
                        r.sent, r.queued, r.failed, r.control, r.waiting, r.lapsed
                    );
                    for (k, v) in &r.skipped {
                        println!("skipped {k}: {v}");
                    }
                    let l = &r.conversion;
                    let pct =
                        |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
                    println!(
                        "bought within {} days: sent {}/{} ({}), control {}/{} ({})",
                        r.conversion_days,
                        l.treated_converted,
                        l.treated,
                        pct(l.treated_rate),
                        l.control_converted,
                        l.control,
                        pct(l.control_rate)
                    );
                    match (l.lift, l.ci95) {
                        (Some(d), Some((lo, hi))) => println!(
                            "lift {:+.1} points, 95% interval {:+.1} to {:+.1} (two-proportion, normal approximation)",
                            d * 100.0,
                            lo * 100.0,
                            hi * 100.0
                        ),
                        _ => println!("lift: needs sent and control members"),
                    }
                }
            }
        }
        CampaignsCommand::DeadLetters(a) => {
            let list = store.campaign_dead_letters().await?;
            match a.output {
                OutputFormat::Json => output::print_json(&list)?,
                OutputFormat::Table => {
                    println!(
                        "{:>8} {:<20} {:<10} {:<8} {:>8} {:<17} reason",
                        "id", "campaign", "member", "channel", "attempts", "last try"
                    );
                    for d in &list {
                        println!(
                            "{:>8} {:<20} {:<10} {:<8} {:>8} {:<17} {}",
                            d.id,
                            d.campaign,
                            d.member_id,
                            d.channel,
                            d.attempts,
                            d.last_attempt_at
                                .map_or("-".into(), |t| output::time(t, &tz)),
                            d.reason.as_deref().unwrap_or("")
                        );
                    }
                    println!("{} dead letters", list.len());
                }
            }
        }
        CampaignsCommand::Retry(a) => {
            let which = if a.all {
                RetrySelection::All
            } else {
                RetrySelection::Ids(a.ids.clone())
            };
            let n = store.campaign_retry(&which).await?;
            match a.output {
                OutputFormat::Json => output::print_json(&serde_json::json!({ "queued": n }))?,
                OutputFormat::Table => {
                    println!("queued {n} dead letters again; the next campaigns run delivers them")
                }
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
