//! `touchpoint rewards ...` (the points mall) and `touchpoint coupons ...`.
//! See docs/rewards.md.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use touchpoint_core::coupons::{Basket, CouponKind, CouponRules, RewardKind};
use touchpoint_core::MemberId;
use touchpoint_store::rewards::{NewReward, RewardRedemption};
use touchpoint_store::Store;

use crate::output::{self, OutputFormat};
use crate::Settings;

/// Points-mall commands.
#[derive(Debug, clap::Subcommand)]
pub enum RewardsCommand {
    /// Add a reward to the catalogue.
    Create {
        /// Unique name.
        name: String,
        /// coupon, gift or partner_voucher.
        #[arg(long)]
        kind: String,
        /// Points it costs.
        #[arg(long)]
        points: i64,
        /// Cash paid with the points, e.g. 9.90 (major units).
        #[arg(long)]
        cash: Option<String>,
        /// Units in stock.
        #[arg(long)]
        stock: i64,
        /// Redemptions per member.
        #[arg(long)]
        limit_per_member: Option<i64>,
        /// Channels where it can be redeemed (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// A coupon reward: the coupon definition it issues (id or name).
        #[arg(long)]
        coupon: Option<String>,
        /// A partner voucher: the partner.
        #[arg(long)]
        partner: Option<String>,
        /// Redeemable from (YYYY-MM-DD, business time zone).
        #[arg(long)]
        from: Option<String>,
        /// Redeemable until, exclusive (YYYY-MM-DD, business time zone).
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// The catalogue.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// One reward.
    Show {
        /// Reward id.
        id: i64,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Redeem a reward for a member in one step (a coupon reward issues its coupon).
    Redeem {
        /// Reward id.
        id: i64,
        /// Member id (M-123 or 123).
        member: String,
        /// Channel of the redemption.
        #[arg(long)]
        channel: Option<String>,
        /// Idempotency key: the same command with it again changes nothing (default: a new one).
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Hold a reward for a member (points spent, one unit reserved) until captured or released.
    Hold {
        /// Reward id.
        id: i64,
        /// Member id.
        member: String,
        /// Channel.
        #[arg(long)]
        channel: Option<String>,
        /// How long the hold lasts, in seconds.
        #[arg(long, default_value_t = 900)]
        seconds: i64,
        /// Idempotency key.
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Capture a hold.
    Capture {
        /// Redemption (hold) id.
        hold: i64,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Release a hold: the unit back in stock, the points back to the member.
    Release {
        /// Redemption (hold) id.
        hold: i64,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Release every hold past its time (`touchpoint serve` does it every minute).
    Sweep,
}

/// Coupon commands.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)] // a command line, parsed once
pub enum CouponsCommand {
    /// Define a coupon.
    Create {
        /// Unique name.
        name: String,
        /// fixed, percent or free_item.
        #[arg(long)]
        kind: String,
        /// Fixed: the amount off, e.g. 10.00.
        #[arg(long)]
        amount: Option<String>,
        /// Percent: 1 to 100.
        #[arg(long)]
        percent: Option<i64>,
        /// Percent: the most it takes off, e.g. 50.00.
        #[arg(long)]
        cap: Option<String>,
        /// Free item: the SKU given.
        #[arg(long)]
        free_sku: Option<String>,
        /// Minimum spend, e.g. 100.00.
        #[arg(long)]
        min_spend: Option<String>,
        /// Channels (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// Brands (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        brands: Vec<String>,
        /// Categories (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// SKUs (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        skus: Vec<String>,
        /// Valid from (YYYY-MM-DD, business time zone).
        #[arg(long)]
        from: Option<String>,
        /// Valid until, exclusive (YYYY-MM-DD, business time zone).
        #[arg(long)]
        until: Option<String>,
        /// Valid this many days from issue.
        #[arg(long)]
        days: Option<i64>,
        /// Combines with other coupons.
        #[arg(long)]
        stackable: bool,
        /// Priority among stackable coupons (higher first).
        #[arg(long, default_value_t = 0)]
        priority: i64,
        /// A refunded order gives the coupon back.
        #[arg(long)]
        return_on_refund: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Coupon definitions.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// One definition and its latest coupons.
    Show {
        /// Definition id or name.
        definition: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Issue coupons: to one member, or to every member of a CSV file (a `member_id` column).
    Issue {
        /// Definition id or name.
        definition: String,
        /// Member id.
        #[arg(long, conflicts_with = "csv")]
        member: Option<String>,
        /// CSV file with a `member_id` column.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Idempotency key: issuing again with it issues nothing twice (default: a new one).
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Create a public code of a definition.
    Public {
        /// Definition id or name.
        definition: String,
        /// The code (4 to 64 letters, digits or dashes).
        code: String,
        /// Uses in all.
        #[arg(long)]
        total_limit: i64,
        /// Uses per member.
        #[arg(long)]
        limit_per_member: Option<i64>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Redeem a code for a member's order.
    Redeem {
        /// The code.
        code: String,
        /// Member id.
        member: String,
        /// The order id.
        #[arg(long)]
        order: String,
        /// The order amount, e.g. 199.00.
        #[arg(long)]
        amount: String,
        /// Channel.
        #[arg(long)]
        channel: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Usage per definition: issued, redeemed, expired, given back, revenue.
    Usage {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

fn member(s: &str) -> Result<i64> {
    MemberId::parse(s)
        .map(|m| m.get())
        .map_err(|e| anyhow::anyhow!("member {s:?}: expected {e}"))
}

fn minor(field: &str, s: &str) -> Result<i64> {
    touchpoint_core::ingest::order::money_value(&serde_json::Value::String(s.to_string()))
        .map(|m| m.minor())
        .with_context(|| format!("--{field} {s:?}: expected an amount such as 10.00"))
}

fn day(field: &str, s: &str, settings: &Settings) -> Result<i64> {
    use chrono::TimeZone;
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("--{field} {s:?}: expected a date such as 2025-11-11"))?;
    let t = settings
        .timezone
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .with_context(|| format!("--{field} {s:?}: not a time in the business time zone"))?;
    Ok(t.timestamp_millis())
}

fn key_or_new(key: Option<String>) -> String {
    key.unwrap_or_else(touchpoint_core::loyalty::generate_code)
}

fn print_redemption(r: &RewardRedemption, output: OutputFormat, settings: &Settings) -> Result<()> {
    if output == OutputFormat::Json {
        return output::print_json(r);
    }
    println!(
        "redemption {}: reward {} for M-{}, {} points, {}",
        r.id, r.reward_id, r.member_id, r.points, r.state
    );
    if let (Some(e), "held") = (r.expires_at, r.state.as_str()) {
        println!("held until {}", output::time(e, &settings.timezone));
    }
    if let Some(c) = &r.coupon {
        println!("coupon issued: {}", c.code);
    }
    Ok(())
}

/// Release lapsed holds every minute inside `touchpoint serve`.
pub fn spawn_sweep_job(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            match store.rewards_sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "lapsed reward holds released"),
                Err(e) => tracing::error!(error = %e, "reward hold sweep failed"),
            }
        }
    })
}

/// Run a `rewards` command.
pub async fn run_rewards(
    cmd: RewardsCommand,
    database: &str,
    settings: &Settings,
) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    match cmd {
        RewardsCommand::Create {
            name,
            kind,
            points,
            cash,
            stock,
            limit_per_member,
            channels,
            coupon,
            partner,
            from,
            until,
            output: out,
        } => {
            let kind = RewardKind::parse(&kind).map_err(anyhow::Error::msg)?;
            let coupon_definition_id = match coupon {
                Some(c) => Some(store.coupon_definition(&c).await?.id),
                None => None,
            };
            let r = store
                .reward_create(&NewReward {
                    name,
                    kind,
                    points_cost: points,
                    cash_part: cash.map(|c| minor("cash", &c)).transpose()?.unwrap_or(0),
                    stock,
                    per_member_limit: limit_per_member,
                    valid_from: from.map(|d| day("from", &d, settings)).transpose()?,
                    valid_until: until.map(|d| day("until", &d, settings)).transpose()?,
                    channels,
                    coupon_definition_id,
                    partner,
                })
                .await?;
            if out == OutputFormat::Json {
                output::print_json(&r)?;
            } else {
                println!(
                    "reward {} {:?}: {} points, {} in stock",
                    r.id, r.name, r.points_cost, r.stock
                );
            }
        }
        RewardsCommand::List { output: out } => {
            let rs = store.rewards().await?;
            if out == OutputFormat::Json {
                output::print_json(&rs)?;
            } else {
                println!(
                    "{:>5}  {:<28} {:<16} {:>8} {:>10} {:>11}",
                    "id", "name", "kind", "points", "cash", "left/stock"
                );
                for r in rs {
                    println!(
                        "{:>5}  {:<28} {:<16} {:>8} {:>10} {:>5}/{:<5}",
                        r.id,
                        r.name,
                        r.kind,
                        r.points_cost,
                        output::money(r.cash_part),
                        r.stock_left,
                        r.stock
                    );
                }
            }
        }
        RewardsCommand::Show { id, output: out } => {
            let r = store.reward(id).await?;
            if out == OutputFormat::Json {
                output::print_json(&r)?;
            } else {
                println!("reward {} {:?} ({})", r.id, r.name, r.kind);
                println!(
                    "points {}, cash {}",
                    r.points_cost,
                    output::money(r.cash_part)
                );
                println!("stock {} of {} left", r.stock_left, r.stock);
                if !r.channels.is_empty() {
                    println!("channels {}", r.channels.join(", "));
                }
            }
        }
        RewardsCommand::Redeem {
            id,
            member: m,
            channel,
            key,
            output: out,
        } => {
            let r = store
                .reward_redeem(
                    id,
                    member(&m)?,
                    channel.as_deref(),
                    &format!("cli:{}", key_or_new(key)),
                )
                .await?;
            print_redemption(&r, out, settings)?;
        }
        RewardsCommand::Hold {
            id,
            member: m,
            channel,
            seconds,
            key,
            output: out,
        } => {
            if !(1..=7 * 86_400).contains(&seconds) {
                bail!("--seconds {seconds}: expected 1 to 604800");
            }
            let r = store
                .reward_hold(
                    id,
                    member(&m)?,
                    channel.as_deref(),
                    Some(seconds * 1000),
                    &format!("cli:{}", key_or_new(key)),
                )
                .await?;
            print_redemption(&r, out, settings)?;
        }
        RewardsCommand::Capture { hold, output: out } => {
            let r = store.reward_capture(hold).await?;
            print_redemption(&r, out, settings)?;
        }
        RewardsCommand::Release { hold, output: out } => {
            let r = store.reward_release(hold).await?;
            print_redemption(&r, out, settings)?;
        }
        RewardsCommand::Sweep => {
            let n = store.rewards_sweep().await?;
            println!("{n} lapsed holds released");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Members of a CSV file's `member_id` column: the good ones, and one
/// message per bad row naming the file, line, field and accepted form.
fn members_of_csv(path: &PathBuf) -> Result<(Vec<i64>, Vec<String>)> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r.headers()?.clone();
    let Some(col) = headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("member_id"))
    else {
        bail!(
            "{}: no member_id column; expected a header line with member_id",
            path.display()
        );
    };
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}: line {line}", path.display()))?;
        let v = rec.get(col).unwrap_or("").trim();
        match MemberId::parse(v) {
            Ok(m) => good.push(m.get()),
            Err(e) => bad.push(format!(
                "{}: line {line}: member_id {v:?}: expected {e}",
                path.display()
            )),
        }
    }
    Ok((good, bad))
}

/// Run a `coupons` command.
pub async fn run_coupons(
    cmd: CouponsCommand,
    database: &str,
    settings: &Settings,
) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    let mut code = ExitCode::SUCCESS;
    match cmd {
        CouponsCommand::Create {
            name,
            kind,
            amount,
            percent,
            cap,
            free_sku,
            min_spend,
            channels,
            brands,
            categories,
            skus,
            from,
            until,
            days,
            stackable,
            priority,
            return_on_refund,
            output: out,
        } => {
            let rules = CouponRules {
                kind: CouponKind::parse(&kind).map_err(anyhow::Error::msg)?,
                amount: amount
                    .map(|a| minor("amount", &a))
                    .transpose()?
                    .unwrap_or(0),
                percent: percent.unwrap_or(0),
                cap: cap.map(|c| minor("cap", &c)).transpose()?,
                free_sku,
                min_spend: min_spend
                    .map(|m| minor("min-spend", &m))
                    .transpose()?
                    .unwrap_or(0),
                channels,
                brands,
                categories,
                skus,
                valid_from: from.map(|d| day("from", &d, settings)).transpose()?,
                valid_until: until.map(|d| day("until", &d, settings)).transpose()?,
                valid_days: days,
                stackable,
                priority,
                return_on_refund,
            };
            let d = store.coupon_define(&name, &rules).await?;
            if out == OutputFormat::Json {
                output::print_json(&d)?;
            } else {
                println!("coupon definition {} {:?}", d.id, d.name);
            }
        }
        CouponsCommand::List { output: out } => {
            let ds = store.coupon_definitions().await?;
            if out == OutputFormat::Json {
                output::print_json(&ds)?;
            } else {
                for d in ds {
                    println!("{:>5}  {:<28} {:?}", d.id, d.name, d.rules.kind);
                }
            }
        }
        CouponsCommand::Show {
            definition,
            output: out,
        } => {
            let d = store.coupon_definition(&definition).await?;
            let coupons = store.coupons_of(d.id, 20).await?;
            if out == OutputFormat::Json {
                output::print_json(&serde_json::json!({"definition": d, "coupons": coupons}))?;
            } else {
                println!(
                    "coupon definition {} {:?}: {}",
                    d.id,
                    d.name,
                    serde_json::to_string(&d.rules)?
                );
                for c in coupons {
                    let who = c
                        .member_id
                        .map_or("public".to_string(), |m| format!("M-{m}"));
                    println!(
                        "  {:<20} {:<10} {}/{} used  {}",
                        c.code, who, c.uses, c.max_uses, c.state
                    );
                }
            }
        }
        CouponsCommand::Issue {
            definition,
            member: m,
            csv,
            key,
            output: out,
        } => {
            let d = store.coupon_definition(&definition).await?;
            let (members, bad) = match (m, csv) {
                (Some(m), None) => (vec![member(&m)?], vec![]),
                (None, Some(path)) => members_of_csv(&path)?,
                _ => bail!("name the members: --member ID or --csv FILE (a member_id column)"),
            };
            for b in &bad {
                eprintln!("rejected: {b}");
            }
            if !bad.is_empty() {
                code = ExitCode::from(2);
            }
            let coupons = store
                .coupon_issue_bulk(d.id, &members, "cli", &format!("cli:{}", key_or_new(key)))
                .await?;
            if out == OutputFormat::Json {
                output::print_json(&serde_json::json!({"coupons": coupons, "rejected": bad}))?;
            } else {
                for c in &coupons {
                    println!("M-{}  {}", c.member_id.unwrap_or(0), c.code);
                }
                println!(
                    "{} coupons issued, {} rows rejected",
                    coupons.len(),
                    bad.len()
                );
            }
        }
        CouponsCommand::Public {
            definition,
            code: c,
            total_limit,
            limit_per_member,
            output: out,
        } => {
            let d = store.coupon_definition(&definition).await?;
            let c = store
                .coupon_public(d.id, &c, total_limit, limit_per_member)
                .await?;
            if out == OutputFormat::Json {
                output::print_json(&c)?;
            } else {
                println!(
                    "public code {} of {:?}: {} uses in all",
                    c.code, d.name, c.max_uses
                );
            }
        }
        CouponsCommand::Redeem {
            code: c,
            member: m,
            order,
            amount,
            channel,
            output: out,
        } => {
            let basket = Basket {
                channel,
                amount: minor("amount", &amount)?,
                lines: vec![],
            };
            let r = store
                .coupon_redeem(&c, member(&m)?, &order, &basket)
                .await?;
            if out == OutputFormat::Json {
                output::print_json(&r)?;
            } else {
                println!(
                    "{} redeemed on order {}: {} off",
                    r.code,
                    r.order_reference,
                    output::money(r.discount)
                );
            }
        }
        CouponsCommand::Usage { output: out } => {
            let u = store.coupon_usage().await?;
            if out == OutputFormat::Json {
                output::print_json(&u)?;
            } else {
                println!(
                    "{:<28} {:>8} {:>9} {:>8} {:>9} {:>14}",
                    "definition", "issued", "redeemed", "expired", "returned", "revenue"
                );
                for x in u {
                    println!(
                        "{:<28} {:>8} {:>9} {:>8} {:>9} {:>14}",
                        x.name,
                        x.issued,
                        x.redeemed,
                        x.expired,
                        x.returned,
                        output::money(x.revenue)
                    );
                }
            }
        }
    }
    store.close().await;
    Ok(code)
}
