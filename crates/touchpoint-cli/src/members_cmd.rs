//! `touchpoint members show|list|shared`

use std::process::ExitCode;

use anyhow::{Context, Result};
use touchpoint_core::{Email, Identifier, MemberId, Phone};
use touchpoint_store::members::MemberView;

use crate::output::{self, count, money, OutputFormat};
use crate::Settings;

/// Member commands.
#[derive(Debug, clap::Subcommand)]
pub enum MembersCommand {
    /// Show one member: identifiers, channels, orders and the identity history in words.
    Show(ShowArgs),
    /// Page through members.
    List(ListArgs),
    /// List identifiers marked shared (they no longer join records).
    Shared(SharedArgs),
}

/// `members show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Member id, e.g. M-123.
    #[arg(required_unless_present_any = ["phone", "email"])]
    pub id: Option<String>,
    /// Find the member by phone number.
    #[arg(long, conflicts_with_all = ["id", "email"])]
    pub phone: Option<String>,
    /// Find the member by e-mail.
    #[arg(long, conflicts_with_all = ["id", "phone"])]
    pub email: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `members list` arguments.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Start after this member id (the `next` cursor of the previous page).
    #[arg(long)]
    pub after: Option<String>,
    /// Members per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `members shared` arguments.
#[derive(Debug, clap::Args)]
pub struct SharedArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Run a members command.
pub async fn run(cmd: MembersCommand, database: &str, settings: &Settings) -> Result<ExitCode> {
    let tz = settings.timezone;
    let store = crate::connect(database).await?;
    match cmd {
        MembersCommand::Show(a) => {
            let identifier = if let Some(p) = &a.phone {
                let phone = Phone::parse(p, settings.default_country.as_str())
                    .with_context(|| format!("--phone {p:?}"))?;
                Some(Identifier::phone(&phone))
            } else if let Some(e) = &a.email {
                let email = Email::parse(e).with_context(|| format!("--email {e:?}"))?;
                Some(Identifier::email(&email))
            } else {
                None
            };
            let id = match (&a.id, &identifier) {
                (Some(id), _) => {
                    Some(MemberId::parse(id).with_context(|| format!("member id {id:?}"))?)
                }
                (None, Some(i)) => store.member_by_identifier(i).await?,
                (None, None) => None,
            };
            if let (None, Some(i)) = (id, &identifier) {
                // A shared identifier belongs to no member: say so, and why.
                let shared = store.shared_identifiers().await?;
                let key = (i.kind().as_str(), i.value());
                if let Some(s) = shared
                    .iter()
                    .find(|s| (s.kind.as_str(), s.value.as_str()) == key)
                {
                    store.close().await;
                    match a.output {
                        OutputFormat::Json => output::print_json(s)?,
                        OutputFormat::Table => println!(
                            "{} {} is shared and belongs to no member: {}",
                            s.kind, s.value, s.detail
                        ),
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let view = match id {
                Some(id) => store.member(id).await?,
                None => None,
            };
            let Some(view) = view else {
                eprintln!("no such member");
                return Ok(ExitCode::from(1));
            };
            let points = store.points_balance(view.id.get(), 0).await?;
            let coupons = store.member_coupons(view.id.get()).await?;
            match a.output {
                OutputFormat::Json => {
                    let mut v = serde_json::to_value(&view)?;
                    v["points"] = serde_json::json!({
                        "available": points.available,
                        "pending": points.pending,
                        "tier": points.tier,
                    });
                    v["coupons"] = serde_json::to_value(&coupons)?;
                    output::print_json(&v)?
                }
                OutputFormat::Table => {
                    print_member(&view, &tz);
                    println!(
                        "points: {} available, {} pending; tier {}",
                        output::count(points.available),
                        output::count(points.pending),
                        points.tier.as_deref().unwrap_or("-")
                    );
                    for c in &coupons {
                        println!(
                            "coupon {}: {} ({} of {} uses)",
                            c.code, c.state, c.uses, c.max_uses
                        );
                    }
                }
            }
        }
        MembersCommand::List(a) => {
            let after = a
                .after
                .as_deref()
                .map(|s| MemberId::parse(s).with_context(|| format!("--after {s:?}")))
                .transpose()?;
            let page = store.list_members(after, a.limit).await?;
            match a.output {
                OutputFormat::Json => output::print_json(&page)?,
                OutputFormat::Table => {
                    println!(
                        "{:<10} {:<12} {:<28} {:>6} {:>14}  last order",
                        "member", "name", "channels", "orders", "net revenue"
                    );
                    for m in &page.members {
                        println!(
                            "{:<10} {:<12} {:<28} {:>6} {:>14}  {}",
                            m.id.to_string(),
                            m.name.as_deref().unwrap_or("-"),
                            m.channels,
                            m.orders,
                            money(m.net_revenue),
                            m.last_order_at
                                .map(|t| output::time(t, &tz))
                                .unwrap_or_else(|| "-".into())
                        );
                    }
                    if let Some(next) = page.next_cursor {
                        println!("next page: touchpoint members list --after {next}");
                    }
                }
            }
        }
        MembersCommand::Shared(a) => {
            let list = store.shared_identifiers().await?;
            match a.output {
                OutputFormat::Json => output::print_json(&list)?,
                OutputFormat::Table => {
                    if list.is_empty() {
                        println!("no shared identifiers");
                    }
                    for s in &list {
                        println!(
                            "{} {} (linked with {} identifiers): {}",
                            s.kind, s.value, s.linked_identifiers, s.detail
                        );
                    }
                }
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_member(v: &MemberView, tz: &chrono_tz::Tz) {
    if let Some(r) = v.requested_id {
        println!("{r} was merged into {}; showing {}", v.id, v.id);
    }
    println!("member {}", v.id);
    let profile: Vec<String> = [
        v.name.as_ref().map(|n| format!("name {n}")),
        v.gender.as_ref().map(|g| format!("gender {g}")),
        v.birthday.as_ref().map(|b| format!("birthday {b}")),
        v.region.as_ref().map(|r| format!("region {r}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !profile.is_empty() {
        println!("  {}", profile.join(", "));
    }
    println!("identifiers:");
    for i in &v.identifiers {
        println!(
            "  {:<17} {:<32} first seen in {} order {}{}",
            i.kind,
            i.value,
            i.first_channel,
            i.first_record_id,
            if i.shared {
                " (shared: does not join records)"
            } else {
                ""
            }
        );
    }
    println!("channels:");
    for c in &v.channels {
        println!(
            "  {:<10} {:>4} orders, net revenue {:>12}, {} .. {}",
            c.channel,
            c.orders,
            money(c.net_revenue),
            output::time(c.first_order_at, tz),
            output::time(c.last_order_at, tz)
        );
    }
    println!(
        "orders ({}{}):",
        count(v.order_count),
        if v.order_count > v.orders.len() as i64 {
            format!(", newest {}", v.orders.len())
        } else {
            String::new()
        }
    );
    for o in &v.orders {
        let refund = if o.refunded_amount > 0 {
            format!(" (refunded {})", money(o.refunded_amount))
        } else {
            String::new()
        };
        println!(
            "  {} {:<8} {:<22} {:<18} {} {}{}",
            output::time(o.ordered_at, tz),
            o.channel,
            o.order_id,
            o.status,
            o.currency,
            money(o.gross_amount),
            refund
        );
    }
    if !v.merged_ids.is_empty() {
        let ids: Vec<String> = v.merged_ids.iter().map(|m| m.to_string()).collect();
        println!("merged ids: {}", ids.join(", "));
    }
    println!("history:");
    if v.history.is_empty() {
        println!("  (no joins: every record of this member came through one channel account)");
    }
    for e in &v.history {
        match &e.undone_by {
            Some(u) if e.superseded => println!(
                "  {} {} (undone by the split on {})",
                output::time(e.at, tz),
                e.detail,
                output::time(u.at, tz)
            ),
            _ => println!("  {} {}", output::time(e.at, tz), e.detail),
        }
    }
}
