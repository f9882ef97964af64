//! `touchpoint demo`: a realistic brand, built through the real import path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use touchpoint_core::demo::{self, DemoConfig};
use touchpoint_store::import;

use crate::import_cmd;
use crate::output::{count, money};
use crate::Settings;

/// `demo` arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Random seed: the same seed builds the same brand.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    pub seed: u64,
    /// Number of people (about 7.5 orders each over two years).
    #[arg(long, default_value_t = DemoConfig::default().members)]
    pub members: usize,
    /// Keep the generated channel files in this folder.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

/// Build the demo brand.
pub async fn run(args: DemoArgs, database: &str, settings: &Settings) -> Result<ExitCode> {
    let config = DemoConfig {
        seed: args.seed,
        members: args.members,
        ..DemoConfig::default()
    };
    let tmp;
    let dir = match &args.export {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    println!(
        "Generating a demo brand: {} people, seed {}, {} .. {}",
        count(config.members as i64),
        config.seed,
        config.start,
        config.end
    );
    let cfg = config.clone();
    let d = dir.clone();
    let manifest = tokio::task::spawn_blocking(move || demo::generate(&cfg, &d))
        .await?
        .context("generating demo files")?;
    let store = crate::connect(database).await?;
    // The program is set before the orders are imported, so every order's
    // purchase points commit in the order's own transaction (no backfill).
    let program = store.loyalty_set_program(demo::LOYALTY_PROGRAM).await?;
    println!(
        "Points program {:?} set (version {}) before the import: purchase points commit with their orders",
        program.program.name, program.version
    );
    println!(
        "Importing {} channel files into {} through the real import path:",
        manifest.files.len(),
        touchpoint_store::redact_url(database)
    );
    let mut rejected = 0;
    for (i, f) in manifest.files.iter().enumerate() {
        let mut opts = import_cmd::options(f.format, Some(f.channel.as_str()), None, settings)?;
        // One summary rebuild after the last file, not one per file.
        opts.refresh_analytics = i + 1 == manifest.files.len();
        let bar = import_cmd::progress_bar(true);
        let report = import::import_files(&store, std::slice::from_ref(&f.path), &opts, &|p| {
            bar.update(p)
        })
        .await;
        bar.finish();
        let report = report?;
        rejected += report.orders.rejected;
        let name = f
            .path
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "  {:<8} {:<14} {:<10} orders: {} new, {} updated, {} unchanged, {} rejected",
            f.channel.as_str(),
            name,
            format!("{:?}", f.format).to_lowercase(),
            count(report.orders.inserted as i64),
            count(report.orders.updated as i64),
            count(report.orders.unchanged as i64),
            count(report.orders.rejected as i64)
        );
    }
    import_demo_spend(&store, &config, &dir).await?;
    let o = store.overview().await?;
    let total_orders: i64 = o.channels.iter().map(|c| c.orders).sum();
    let total_revenue: i64 = o.channels.iter().map(|c| c.net_revenue).sum();
    let channel_accounts: i64 = o.channels.iter().map(|c| c.members).sum();
    println!();
    println!("What Touchpoint built:");
    println!(
        "  {} channel customer lists ({} customer records in all) became {} members",
        o.channels.len(),
        count(channel_accounts),
        count(o.members)
    );
    println!(
        "  {} members have orders (of any status) in two or more channels, each unified under one id",
        count(o.multi_channel_members)
    );
    println!(
        "  identity log: {} channel accounts joined existing members, {} merges; {} shared identifiers (shop counter phones) stopped joining strangers",
        count(o.links),
        count(o.merges),
        count(o.shared_identifiers)
    );
    println!();
    println!(
        "  {:<10} {:>9} {:>9} {:>18}",
        "channel", "members", "orders", "net revenue (CNY)"
    );
    for c in &o.channels {
        println!(
            "  {:<10} {:>9} {:>9} {:>18}",
            c.channel,
            count(c.members),
            count(c.orders),
            money(c.net_revenue)
        );
    }
    println!(
        "  {:<10} {:>9} {:>9} {:>18}",
        "all",
        count(o.members),
        count(total_orders),
        money(total_revenue)
    );
    if let Some(d) = &args.export {
        println!("\nChannel files kept in {}", d.display());
    }
    println!();
    // Before the loyalty part: its liability line includes the points the
    // mall spends and the referral grants credit.
    referrals_part(&store, settings, &dir).await?;
    println!();
    loyalty_part(&store, settings).await?;
    println!();
    campaigns_part(&store, settings).await?;
    println!();
    crate::report_cmd::print_summary(&store, settings).await?;
    println!(
        "\nDone in {:.1} s. Try: touchpoint members list   |   touchpoint members show M-1   |   touchpoint members shared   |   touchpoint report rfm",
        started.elapsed().as_secs_f64()
    );
    println!("Dashboard: touchpoint keys create --role analyst, then touchpoint serve and open http://127.0.0.1:8080/ (sign in with the key).");
    store.close().await;
    Ok(if rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Write the demo's marketing spend (every channel, every day of the order
/// history, and the 6.18 and 11.11 promotions) and import it like
/// `touchpoint import spend`, so that `touchpoint report acquisition` has data.
async fn import_demo_spend(
    store: &touchpoint_store::Store,
    config: &DemoConfig,
    dir: &std::path::Path,
) -> Result<()> {
    let path = dir.join("spend.csv");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?,
    );
    demo::spend::write_spend(&mut file, config.start, config.end)?;
    std::io::Write::flush(&mut file)?;
    drop(file);
    let r = crate::acquisition_cmd::import_file(store, &path, None).await?;
    println!(
        "  {:<8} {:<14} {:<10} spend rows: {} new, {} updated, {} unchanged, {} rejected (touchpoint report acquisition)",
        "ads",
        "spend.csv",
        "spend",
        count(r.report.inserted as i64),
        count(r.report.updated as i64),
        count(r.report.unchanged as i64),
        count(r.report.rejected as i64)
    );
    Ok(())
}

/// The demo's mall, coupons and referrals: a coupon definition and a mall
/// reward that gives it, one redemption with points, a coupon issued to
/// M-1 and used on an order; referral settings and a chain (M-1 invites B,
/// B invites C) attributed through the order import's `referral_code`
/// column, granted as of now, and the referral report line. Running the
/// demo again on the same database changes nothing twice.
async fn referrals_part(
    store: &touchpoint_store::Store,
    settings: &Settings,
    dir: &std::path::Path,
) -> Result<()> {
    use touchpoint_core::ingest::InputFormat;
    use touchpoint_store::rewards::NewReward;
    println!("Mall, coupons and referrals:");
    let rules = serde_json::from_value(serde_json::json!({
        "kind": "fixed", "amount": 1000, "min_spend": 5000, "return_on_refund": true
    }))?;
    let def = store.coupon_define("Demo 10 off 50", &rules).await?;
    let reward = match store
        .rewards()
        .await?
        .into_iter()
        .find(|r| r.name == "Demo voucher 10 off 50")
    {
        Some(r) => r,
        None => {
            store
                .reward_create(&NewReward {
                    name: "Demo voucher 10 off 50".into(),
                    kind: touchpoint_core::coupons::RewardKind::parse("coupon")
                        .map_err(anyhow::Error::msg)?,
                    points_cost: 100,
                    cash_part: 0,
                    stock: 50,
                    per_member_limit: Some(2),
                    valid_from: None,
                    valid_until: None,
                    channels: Vec::new(),
                    coupon_definition_id: Some(def.id),
                    partner: None,
                })
                .await?
        }
    };
    let advocate = store
        .resolve_member_id(touchpoint_core::MemberId::from_i64(1))
        .await?
        .context("the demo has no member M-1")?
        .get();
    match store
        .reward_redeem(reward.id, advocate, None, "demo:mall:1")
        .await
    {
        Ok(r) => println!(
            "  mall: reward {:?} redeemed by M-{advocate} for {} points ({})",
            reward.name, reward.points_cost, r.state
        ),
        Err(e) => println!("  mall: reward {:?} not redeemed: {e}", reward.name),
    }
    let coupon = store
        .coupon_issue(def.id, advocate, "demo", "demo:coupon:1")
        .await?;
    let program = "advocate_points = 500\nfriend_points = 200\nmonthly_cap = 5\nreturn_window_days = 7\nlink_base = \"https://brand.example/r/\"\n";
    if store.referral_program().await?.is_none() {
        store.referral_set_program(program).await?;
    }
    let code_a = store.referral_code(advocate).await?;
    let day = (chrono::Utc::now() - chrono::Duration::days(30))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let header = "channel,order_id,ordered_at,status,sku,quantity,unit_price,member_no,phone,email,coupon,referral_code\n";
    // M-1's own order uses the coupon: named by one of their identifiers.
    let view = store
        .member(touchpoint_core::MemberId::from_i64(advocate))
        .await?
        .context("the demo has no member M-1")?;
    let ident = |k: &str| {
        view.identifiers
            .iter()
            .find(|i| i.kind == k)
            .map(|i| i.value.clone())
    };
    let (no, phone, email) = match (ident("member_no"), ident("phone"), ident("email")) {
        (Some(n), _, _) => (n, String::new(), String::new()),
        (None, Some(p), _) => (String::new(), p, String::new()),
        (None, None, Some(e)) => (String::new(), String::new(), e),
        _ => anyhow::bail!("the demo's M-1 has no member number, phone or e-mail"),
    };
    let import_one = |name: &'static str, body: String| async move {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        let opts = import_cmd::options(InputFormat::Canonical, Some("web"), None, settings)?;
        let r = import::import_files(store, std::slice::from_ref(&path), &opts, &|_| {}).await?;
        anyhow::Ok(r)
    };
    import_one(
        "referrals-1.csv",
        format!(
            "{header}web,DEMO-REF-A1,{day},paid,DEMO-GIFT,1,80.00,{no},{phone},{email},{},\n\
             web,DEMO-REF-B1,{day},paid,DEMO-GIFT,1,60.00,DEMO-REF-B,,,,{code_a}\n",
            coupon.code
        ),
    )
    .await?;
    let b = store
        .member_by_identifier(&touchpoint_core::Identifier::member_no("DEMO-REF-B")?)
        .await?
        .context("the referred demo member is missing")?
        .get();
    let code_b = store.referral_code(b).await?;
    import_one(
        "referrals-2.csv",
        format!("{header}web,DEMO-REF-C1,{day},paid,DEMO-GIFT,1,45.00,DEMO-REF-C,,,,{code_b}\n"),
    )
    .await?;
    let g = store.referrals_grant(touchpoint_store::now_ms()).await?;
    println!(
        "  referrals: M-{advocate} ({code_a}) invited M-{b} ({code_b}), who invited one more; granted now: {} qualified, {} points",
        g.qualified,
        count(g.points)
    );
    let r = store.referral_report().await?;
    println!(
        "  report referrals: {} codes, {} attributed, {} qualified, {} points granted; referred members' revenue {} per member against {} (touchpoint report referrals)",
        r.codes_issued,
        r.attributed,
        r.qualified,
        count(r.points_granted),
        money(r.referred_mean_revenue),
        money(r.other_mean_revenue)
    );
    Ok(())
}

/// The demo's points account: expiry and tier reviews as of now, a batch of
/// packaging codes, claims through the same store function as `POST
/// /api/loyalty/codes/claim` (three members by phone, one new person by
/// e-mail who becomes a member on the channel `scan`), and the liability.
async fn loyalty_part(store: &touchpoint_store::Store, settings: &Settings) -> Result<()> {
    use touchpoint_core::{Email, Identifier, Phone};
    use touchpoint_store::loyalty::{BatchSpec, ClaimPerson};
    let now = touchpoint_store::now_ms();
    let expired = store.points_expire(now).await?;
    let reviews = store.loyalty_tier_reviews(now).await?;
    println!("Points account:");
    println!(
        "  expiry as of now: {} lots ({} points) expired; tier reviews: {} held, {} changes",
        count(expired.lots as i64),
        count(expired.points),
        count(reviews.reviews as i64),
        count(reviews.changes.len() as i64)
    );
    let mut codes: Vec<String> = Vec::new();
    let spec = BatchSpec {
        name: "demo-packaging",
        count: 100,
        points: 20,
        sku: None,
        expires_at: None,
        pending_days: 0,
    };
    let generated = store
        .codes_generate(&spec, &mut |chunk| {
            codes.extend_from_slice(chunk);
            Ok(())
        })
        .await;
    match generated {
        Ok(id) => {
            println!(
                "  packaging codes: batch {id} ({}) of {} codes worth {} points each (only their hashes are stored)",
                spec.name, spec.count, spec.points
            );
            let mut writer = touchpoint_store::import::Writer::new(settings.identity());
            let mut people = Vec::new();
            let page = store.list_members(None, 50).await?;
            for m in &page.members {
                if people.len() == 3 {
                    break;
                }
                let Some(view) = store.member(m.id).await? else {
                    continue;
                };
                if let Some(p) = view
                    .identifiers
                    .iter()
                    .find(|i| i.kind == "phone" && !i.shared)
                {
                    let phone = Phone::parse(&p.value, settings.default_country.as_str())?;
                    people.push((
                        format!("member M-{} by phone {}", view.id.get(), p.value),
                        ClaimPerson::Identifier(Identifier::phone(&phone)),
                    ));
                }
            }
            let email = Email::parse("first.scan@example.com")?;
            people.push((
                "a new person by e-mail first.scan@example.com".to_string(),
                ClaimPerson::Identifier(Identifier::email(&email)),
            ));
            for ((who, person), code) in people.iter().zip(&codes) {
                let c = store.code_claim_by(&mut writer, code, person, None).await?;
                println!(
                    "  claimed {code} for {who}: +{} points, M-{} has {} available",
                    c.points,
                    c.member_id,
                    count(c.available)
                );
            }
        }
        Err(touchpoint_store::StoreError::InvalidInput(m)) if m.contains("exists") => {
            println!(
                "  packaging codes: batch {} exists from an earlier demo run (its codes are not stored in clear); no new claims",
                spec.name
            );
        }
        Err(e) => return Err(e.into()),
    }
    let r = store.loyalty_report(settings.timezone).await?;
    println!(
        "  points liability: {} points outstanding, worth {} CNY",
        count(r.outstanding_points),
        money(r.outstanding_value)
    );
    Ok(())
}

/// The demo's birthday campaign (a week before, members with a purchase).
pub const BIRTHDAY_CAMPAIGN: &str = r#"name = "demo-birthday"
channel = "email"
priority = 10

[audience]
expression = 'orders >= 1'

[trigger]
kind = "birthday"
days_before = 7

[window]
start_hour = 0
end_hour = 24

[message]
subject = "Happy birthday, {{name}}"
body = "Dear {{name}}, your birthday is on {{birthday}}. You have {{points}} points."
"#;

/// The demo's win-back campaign (90 quiet days, bought in the last 2 years).
pub const WINBACK_CAMPAIGN: &str = r#"name = "demo-winback"
channel = "email"
priority = 5

[audience]
expression = 'orders >= 1 and last_order_days <= 730'

[trigger]
kind = "win_back"
days = 90

[window]
start_hour = 0
end_hour = 24

[message]
subject = "We miss you, {{name}}"
body = "It has been {{days_since_order}} days since {{last_order_date}}. You have {{points}} points."
"#;

/// Set up a birthday and a win-back campaign, grant e-mail consent to every
/// other member with an address (simulated sign-up choices), and print what
/// the campaigns would send today (a dry run), with the audience sizes.
async fn campaigns_part(store: &touchpoint_store::Store, settings: &Settings) -> Result<()> {
    use touchpoint_store::profiles::{ConsentChoice, ProfileChange, ProfileSource};
    let t = Instant::now();
    let with_email = store.members_with_email().await?;
    let opted: Vec<_> = with_email
        .iter()
        .copied()
        .filter(|m| m.get() % 2 == 0)
        .collect();
    let mut change = ProfileChange::new(ProfileSource::Cli);
    change.detail = Some("demo sign-up form".into());
    change.consent.push(ConsentChoice {
        channel: "email".into(),
        topic: Some("promotions".into()),
        granted: true,
    });
    store.update_profiles(&opted, &change).await?;
    println!("Campaigns (dry run as of now: nothing is written or sent):");
    println!(
        "  e-mail consent for promotions: {} of the {} members with an address (demo sign-up choices)",
        count(opted.len() as i64),
        count(with_email.len() as i64)
    );
    let mut names = Vec::new();
    for body in [BIRTHDAY_CAMPAIGN, WINBACK_CAMPAIGN] {
        let c = store.campaign_create(body).await?;
        if let touchpoint_core::campaigns::Audience::Expression(text, expr) = &c.campaign.audience {
            let size = store
                .segment_members(
                    expr,
                    &touchpoint_store::segments::SegmentContext::new(settings.timezone),
                )
                .await?
                .len();
            println!(
                "  {} (version {}): audience '{text}': {} members",
                c.name,
                c.version,
                count(size as i64)
            );
        }
        names.push(c.name);
    }
    let plan = store
        .campaigns_dry_run(&touchpoint_store::campaigns::RunContext {
            now: touchpoint_store::now_ms(),
            time_zone: settings.timezone,
        })
        .await?;
    for c in plan.iter().filter(|c| names.contains(&c.campaign)) {
        if let Some(why) = &c.idle {
            println!("  {}: idle: {why}", c.campaign);
            continue;
        }
        let counts: Vec<String> = c
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {}", count(*v as i64)))
            .collect();
        println!(
            "  {} would decide {} candidates today: {}",
            c.campaign,
            count(c.candidates as i64),
            if counts.is_empty() {
                "nothing".into()
            } else {
                counts.join(", ")
            }
        );
        let mut shown = 0;
        for d in &c.decisions {
            // Show who would get a message first, then other decisions.
            if d.decision == "queued" && shown < 3 {
                println!(
                    "    {} {} {}: {}",
                    d.member_id, d.occurrence, d.decision, d.why
                );
                shown += 1;
            }
        }
        if let Some(d) = c.decisions.iter().find(|d| d.decision != "queued") {
            println!(
                "    {} {} {} ({}): {}",
                d.member_id,
                d.occurrence,
                d.decision,
                d.reason.as_deref().unwrap_or("-"),
                d.why
            );
        }
    }
    println!(
        "  ({:.1} s) Try: touchpoint campaigns run --dry-run   |   touchpoint campaigns run --as-of 2026-01-01 --dry-run -o json",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
