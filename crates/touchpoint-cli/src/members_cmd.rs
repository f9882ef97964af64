//! `touchpoint members show|list|shared|tag|untag|consent|profile`

use std::process::ExitCode;

use anyhow::{Context, Result};
use touchpoint_core::{Email, Identifier, MemberId, Phone};
use touchpoint_store::members::MemberView;
use touchpoint_store::profiles::{
    Attributes, ConsentChoice, Profile, ProfileChange, ProfileOutcome, ProfileSource,
};

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
    /// Add tags to a member (set by hand; see docs/campaigns.md).
    Tag(TagArgs),
    /// Remove tags set by hand from a member.
    Untag(TagArgs),
    /// Record a member's consent to marketing on a channel: granted or withdrawn.
    Consent(ConsentArgs),
    /// Show a member's profile (attributes, tags, consent), or set attributes with --set.
    Profile(ProfileArgs),
}

/// `members tag` / `members untag` arguments.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// Member id, e.g. M-123.
    pub member: String,
    /// Tags: 1 to 64 letters, digits, spaces or - _ : . (stored in lower case).
    #[arg(required = true)]
    pub tags: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Consent channels on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChannelArg {
    /// E-mail.
    Email,
    /// SMS.
    Sms,
    /// WeChat.
    Wechat,
    /// A webhook to the brand's own system.
    Webhook,
}

/// Consent topics on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopicArg {
    /// The newsletter.
    Newsletter,
    /// Promotions (coupons, offers).
    Promotions,
}

/// `members consent` arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("choice").required(true).args(["grant", "withdraw"])))]
pub struct ConsentArgs {
    /// Member id, e.g. M-123.
    pub member: String,
    /// The channel.
    #[arg(long, value_enum)]
    pub channel: ChannelArg,
    /// The topic (default: every topic).
    #[arg(long, value_enum)]
    pub topic: Option<TopicArg>,
    /// The member gave consent.
    #[arg(long)]
    pub grant: bool,
    /// The member withdrew consent.
    #[arg(long)]
    pub withdraw: bool,
    /// Where the member made the choice (kept with it), e.g. "paper form, store 12".
    #[arg(long)]
    pub source: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `members profile` arguments.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// Member id, e.g. M-123.
    pub member: String,
    /// Set an attribute: FIELD=VALUE with FIELD one of name, gender, birthday (YYYY-MM-DD), region, city, language. Repeatable.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Parse `--set FIELD=VALUE` pairs into attributes.
pub fn parse_sets(sets: &[String]) -> Result<Attributes> {
    let mut a = Attributes::default();
    for s in sets {
        let Some((field, value)) = s.split_once('=') else {
            anyhow::bail!("--set {s:?}: expected FIELD=VALUE, e.g. --set city=杭州");
        };
        let value = value.trim();
        if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
            anyhow::bail!(
                "--set {s:?}: expected a value of 1 to 200 characters without control characters"
            );
        }
        let v = Some(value.to_string());
        match field.trim().to_ascii_lowercase().as_str() {
            "name" => a.name = v,
            "gender" => a.gender = v,
            "birthday" => {
                a.birthday = Some(
                    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                        anyhow::anyhow!(
                            "--set {s:?}: expected a birthday YYYY-MM-DD, e.g. birthday=1990-05-17"
                        )
                    })?,
                )
            }
            "region" => a.region = v,
            "city" => a.city = v,
            "language" => a.language = v,
            other => anyhow::bail!(
                "--set {s:?}: unknown field {other:?}; expected one of name, gender, birthday, region, city, language"
            ),
        }
    }
    Ok(a)
}

fn member_arg(s: &str) -> Result<MemberId> {
    MemberId::parse(s).with_context(|| format!("member id {s:?}"))
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
    // Arguments are checked before the database is opened.
    let cmd = match plan(cmd)? {
        Plan::Change(member, change, out) => {
            let store = crate::connect(database).await?;
            let r = change_profile(&store, member, &change, out, &tz).await;
            store.close().await;
            return r.map(|()| ExitCode::SUCCESS);
        }
        Plan::ShowProfile(member, out) => {
            let store = crate::connect(database).await?;
            let profile = store.profile(member).await;
            store.close().await;
            let profile = profile?;
            match out {
                OutputFormat::Json => output::print_json(&profile)?,
                OutputFormat::Table => print_profile(&profile, &tz),
            }
            return Ok(ExitCode::SUCCESS);
        }
        Plan::Other(cmd) => cmd,
    };
    let store = crate::connect(database).await?;
    match cmd {
        // Run above, before this connection (see `plan`).
        MembersCommand::Tag(_)
        | MembersCommand::Untag(_)
        | MembersCommand::Consent(_)
        | MembersCommand::Profile(_) => {}
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
            let referral = store.referral_view(view.id.get()).await?;
            match a.output {
                OutputFormat::Json => {
                    let mut v = serde_json::to_value(&view)?;
                    v["points"] = serde_json::json!({
                        "available": points.available,
                        "pending": points.pending,
                        "tier": points.tier,
                    });
                    v["coupons"] = serde_json::to_value(&coupons)?;
                    v["referral"] = serde_json::to_value(&referral)?;
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
                            "coupon {}: definition {}, {} ({} of {} uses)",
                            c.code, c.definition_id, c.state, c.uses, c.max_uses
                        );
                    }
                    for line in crate::referrals_cmd::member_lines(&referral) {
                        println!("{line}");
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

/// What a profile command does, its arguments checked.
enum Plan {
    /// Apply a change, then show the profile.
    Change(MemberId, Box<ProfileChange>, OutputFormat),
    /// Show the profile.
    ShowProfile(MemberId, OutputFormat),
    /// Another members command.
    Other(MembersCommand),
}

fn plan(cmd: MembersCommand) -> Result<Plan> {
    Ok(match cmd {
        MembersCommand::Tag(a) => {
            let mut c = ProfileChange::new(ProfileSource::Cli);
            c.add_tags = checked_tags(&a.tags)?;
            Plan::Change(member_arg(&a.member)?, Box::new(c), a.output)
        }
        MembersCommand::Untag(a) => {
            let mut c = ProfileChange::new(ProfileSource::Cli);
            c.remove_tags = checked_tags(&a.tags)?;
            Plan::Change(member_arg(&a.member)?, Box::new(c), a.output)
        }
        MembersCommand::Consent(a) => {
            let mut c = ProfileChange::new(ProfileSource::Cli);
            c.detail = a.source.clone();
            c.consent.push(ConsentChoice {
                channel: match a.channel {
                    ChannelArg::Email => "email",
                    ChannelArg::Sms => "sms",
                    ChannelArg::Wechat => "wechat",
                    ChannelArg::Webhook => "webhook",
                }
                .to_string(),
                topic: a.topic.map(|t| {
                    match t {
                        TopicArg::Newsletter => "newsletter",
                        TopicArg::Promotions => "promotions",
                    }
                    .to_string()
                }),
                granted: a.grant,
            });
            Plan::Change(member_arg(&a.member)?, Box::new(c), a.output)
        }
        MembersCommand::Profile(a) if a.set.is_empty() => {
            Plan::ShowProfile(member_arg(&a.member)?, a.output)
        }
        MembersCommand::Profile(a) => {
            let mut c = ProfileChange::new(ProfileSource::Cli);
            c.attributes = parse_sets(&a.set)?;
            Plan::Change(member_arg(&a.member)?, Box::new(c), a.output)
        }
        other => Plan::Other(other),
    })
}

fn checked_tags(tags: &[String]) -> Result<Vec<String>> {
    tags.iter()
        .map(|t| touchpoint_store::profiles::normalise_tag(t).map_err(Into::into))
        .collect()
}

async fn change_profile(
    store: &touchpoint_store::Store,
    member: MemberId,
    change: &ProfileChange,
    out: OutputFormat,
    tz: &chrono_tz::Tz,
) -> Result<()> {
    let done = store.update_profile(member, change).await?;
    let profile = store.profile(member).await?;
    match out {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "changed": done,
            "profile": profile,
        }))?,
        OutputFormat::Table => {
            print_outcome(&done);
            print_profile(&profile, tz);
        }
    }
    Ok(())
}

fn print_outcome(o: &ProfileOutcome) {
    let id = MemberId::from_i64(o.member_id);
    if o.is_empty() {
        println!("{id}: nothing changed (already so)");
        return;
    }
    if !o.attributes.is_empty() {
        println!("{id}: set {}", o.attributes.join(", "));
    }
    if !o.tags_added.is_empty() {
        println!("{id}: tagged {}", o.tags_added.join(", "));
    }
    if !o.tags_removed.is_empty() {
        println!("{id}: untagged {}", o.tags_removed.join(", "));
    }
    for (ch, topic, granted) in &o.consent {
        println!(
            "{id}: consent {} for {ch} {topic}",
            if *granted { "granted" } else { "withdrawn" }
        );
    }
}

fn print_profile(p: &Profile, tz: &chrono_tz::Tz) {
    let a = &p.attributes;
    println!("member {}", MemberId::from_i64(p.member_id));
    let show = |label: &str, v: Option<String>| {
        println!("  {label:<9} {}", v.unwrap_or_else(|| "-".into()));
    };
    show("name", a.name.clone());
    show("gender", a.gender.clone());
    show("birthday", a.birthday.map(|d| d.to_string()));
    show("region", a.region.clone());
    show("city", a.city.clone());
    show("language", a.language.clone());
    if p.tags.is_empty() {
        println!("tags: none");
    } else {
        let tags: Vec<String> = p
            .tags
            .iter()
            .map(|(t, s)| {
                if s == "rule" {
                    format!("{t} (rule)")
                } else {
                    t.clone()
                }
            })
            .collect();
        println!("tags: {}", tags.join(", "));
    }
    if p.consent.is_empty() {
        println!("consent: none recorded (no marketing is sent without it)");
    }
    for c in &p.consent {
        println!(
            "consent {:<8} {:<11} {:<9} since {} ({})",
            c.channel,
            c.topic,
            if c.granted { "granted" } else { "withdrawn" },
            output::time(c.at, tz),
            c.source
        );
    }
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
