//! `touchpoint report KIND`: customer value analytics (see docs/metrics.md).
//!
//! Thin: the flags become a [`ReportRequest`] (the library's named
//! parameters, the same as the API's query parameters), the library
//! ([`Store::report`]) computes it, and this module presents it as a table,
//! JSON or CSV. `GET /api/reports/{kind}` answers the same JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use touchpoint_core::analytics::{self as an, Dataset, ProductData, RankBy};
use touchpoint_store::reports::{self, ReportKind, ReportRequest};
use touchpoint_store::Store;

pub use touchpoint_store::reports::Report;

use crate::output::{count, money};
use crate::Settings;

/// Report kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Recency, frequency, monetary scores and the 11 named segments.
    Rfm,
    /// A/B/C classes by profit contribution, loss-making members, Pareto curve.
    Abc,
    /// Repeat purchase, inactivity and annual return against thresholds.
    Retention,
    /// Members by month (or channel) of first purchase x months since.
    Cohorts,
    /// Products and categories: revenue, margin, first orders, roles.
    Products,
    /// Channels: members, orders, revenue, AOV, repeat rate, overlap.
    Channels,
    /// Headline numbers of every report.
    Summary,
    /// Loyalty points: issued, spent, expired, reversed per month; liability; breakage; tiers.
    Loyalty,
    /// A period (--from/--to, default the last 30 days) against the previous one; sales per day.
    Overview,
    /// Acquisition cost: spend, new valid members, new paying customers, costs, CLV per channel, campaign and month.
    Acquisition,
    /// Referrals: invites, conversions, rewards, refusals; revenue and CLV of referred members against the others.
    Referrals,
}

/// Output formats of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// Aligned text.
    Table,
    /// JSON (documented in docs/metrics.md).
    Json,
    /// CSV (documented in docs/metrics.md).
    Csv,
}

/// Cohort grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CohortBy {
    /// Month of first purchase.
    Month,
    /// Month and channel of first purchase.
    Channel,
}

/// ABC ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RankArg {
    /// Profit contribution.
    Contribution,
    /// Weighted score of contribution, frequency and recency.
    Score,
}

/// `report` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Last day included (YYYY-MM-DD, business time zone); default the day of the last order.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Only orders of this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only order lines of products of this brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Only orders on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<NaiveDate>,
    /// A date range: only orders on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// A date range: only orders on or before this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: ReportOutput,
    /// rfm, abc: list every member with scores / class.
    #[arg(long)]
    pub members: bool,
    /// cohorts: group by first month, or by first month and first channel.
    #[arg(long, value_enum, default_value = "month")]
    pub by: CohortBy,
    /// abc: fulfilment cost per purchase order, in currency units (e.g. 8.50).
    #[arg(long, env = "TOUCHPOINT_FULFILMENT_COST", default_value = "0")]
    pub fulfilment_cost: String,
    /// abc: channel fee as a share of the channel's net revenue, CHANNEL=RATE (repeatable or comma-separated).
    #[arg(long, env = "TOUCHPOINT_CHANNEL_FEES", value_delimiter = ',')]
    pub channel_fee: Vec<String>,
    /// abc: rank by contribution or by the weighted score.
    #[arg(
        long,
        value_enum,
        env = "TOUCHPOINT_ABC_RANK_BY",
        default_value = "contribution"
    )]
    pub rank_by: RankArg,
    /// abc: score weights contribution,frequency,recency.
    #[arg(long, env = "TOUCHPOINT_ABC_WEIGHTS", default_value = "0.6,0.2,0.2")]
    pub weights: String,
    /// retention: minimum repeat rate within 90 days.
    #[arg(long, env = "TOUCHPOINT_REPEAT_90_MIN", default_value_t = 0.10)]
    pub repeat_90_min: f64,
    /// retention: minimum repeat rate within 180 days.
    #[arg(long, env = "TOUCHPOINT_REPEAT_180_MIN", default_value_t = 0.20)]
    pub repeat_180_min: f64,
    /// retention: annual return rate target.
    #[arg(long, env = "TOUCHPOINT_ANNUAL_RETURN_TARGET", default_value_t = 0.80)]
    pub annual_return_target: f64,
}

impl ReportArgs {
    /// Defaults for a kind (used by `demo` and the benchmark).
    pub fn of(kind: Kind) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: ReportArgs,
        }
        let name = clap::ValueEnum::to_possible_value(&kind)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        W::parse_from(["report", name.as_str()]).a
    }

    /// The arguments as the library's named parameters (the flags' names
    /// with `_`, the names of the API's query parameters).
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p: Vec<(&'static str, String)> = Vec::new();
        let dates = [
            ("as_of", self.as_of),
            ("since", self.since),
            ("from", self.from),
            ("to", self.to),
        ];
        for (k, d) in dates {
            if let Some(d) = d {
                p.push((k, d.format("%Y-%m-%d").to_string()));
            }
        }
        for (k, v) in [("channel", &self.channel), ("brand", &self.brand)] {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        }
        if self.members {
            p.push(("members", "true".into()));
        }
        let by = match self.by {
            CohortBy::Month => "month",
            CohortBy::Channel => "channel",
        };
        p.push(("by", by.into()));
        p.push(("fulfilment_cost", self.fulfilment_cost.clone()));
        p.extend(self.channel_fee.iter().map(|f| ("channel_fee", f.clone())));
        let rank = match self.rank_by {
            RankArg::Contribution => "contribution",
            RankArg::Score => "score",
        };
        p.push(("rank_by", rank.into()));
        p.push(("weights", self.weights.clone()));
        p.push(("repeat_90_min", self.repeat_90_min.to_string()));
        p.push(("repeat_180_min", self.repeat_180_min.to_string()));
        p.push((
            "annual_return_target",
            self.annual_return_target.to_string(),
        ));
        p
    }

    /// The library request of these arguments in the business time zone.
    pub fn request(&self, time_zone: chrono_tz::Tz) -> Result<ReportRequest> {
        let Some(kind) = self.kind.as_library() else {
            anyhow::bail!(
                "the loyalty and referral reports read their own tables, not the order data set"
            );
        };
        let kind = kind.name();
        let params = self.params();
        ReportRequest::parse(
            kind,
            params.iter().map(|(k, v)| (*k, v.as_str())),
            time_zone,
        )
        .map_err(|e| anyhow::anyhow!(e.cli_message()))
    }
}

impl Kind {
    /// The library's kind.
    pub fn as_library(self) -> Option<ReportKind> {
        Some(match self {
            Kind::Rfm => ReportKind::Rfm,
            Kind::Abc => ReportKind::Abc,
            Kind::Retention => ReportKind::Retention,
            Kind::Cohorts => ReportKind::Cohorts,
            Kind::Products => ReportKind::Products,
            Kind::Channels => ReportKind::Channels,
            Kind::Summary => ReportKind::Summary,
            Kind::Overview => ReportKind::Overview,
            Kind::Acquisition => ReportKind::Acquisition,
            // Read from the points ledger by `touchpoint loyalty`'s report.
            Kind::Loyalty => return None,
            // Read from the referral tables (`touchpoint referrals report`).
            Kind::Referrals => return None,
        })
    }
}

/// The business time zone of `--timezone` (validated once with the settings).
pub fn time_zone(settings: &Settings) -> Result<chrono_tz::Tz> {
    Ok(settings.timezone)
}

/// Load the inputs and compute one report.
pub async fn compute(store: &Store, args: &ReportArgs, settings: &Settings) -> Result<Report> {
    let req = args.request(time_zone(settings)?)?;
    Ok(store.report(&req).await?)
}

/// Compute one report from loaded inputs (the benchmark; the time zone only
/// matters for loading, which the caller did).
pub fn compute_from(args: &ReportArgs, data: &Dataset, pdata: &ProductData) -> Result<Report> {
    let req = args.request(chrono_tz::Asia::Shanghai)?;
    Ok(reports::compute(&req, data, pdata))
}

/// `touchpoint report KIND`.
pub async fn run(args: ReportArgs, database: &str, settings: &Settings) -> Result<ExitCode> {
    let store = crate::connect(database).await?;
    if args.kind == Kind::Loyalty {
        let r =
            crate::loyalty_cmd::report(&store, args.output == ReportOutput::Json, settings).await;
        store.close().await;
        return r;
    }
    if args.kind == Kind::Referrals {
        let r = crate::referrals_cmd::report(&store, args.output == ReportOutput::Json).await;
        store.close().await;
        return r;
    }
    let req = match args.request(time_zone(settings)?) {
        Ok(r) => r,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let report = store.report(&req).await;
    store.close().await;
    let report = report?;
    let mut out = std::io::stdout().lock();
    match args.output {
        ReportOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        ReportOutput::Csv => write_csv(&mut out, &report)?,
        ReportOutput::Table => write_table(&mut out, &report)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Write a report as CSV (the documented primary table of each kind).
pub fn write_csv(out: &mut dyn Write, report: &Report) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    match report {
        Report::Rfm(r) if !r.member_scores.is_empty() => {
            w.write_record([
                "member_id",
                "recency_days",
                "frequency",
                "monetary",
                "r",
                "f",
                "m",
                "segment",
            ])?;
            for m in &r.member_scores {
                w.write_record([
                    m.member_id.to_string(),
                    m.recency_days.to_string(),
                    m.frequency.to_string(),
                    m.monetary.to_string(),
                    m.r.to_string(),
                    m.f.to_string(),
                    m.m.to_string(),
                    m.segment.name().to_string(),
                ])?;
            }
        }
        Report::Rfm(r) => {
            w.write_record([
                "segment",
                "members",
                "member_share",
                "revenue",
                "revenue_share",
                "avg_recency_days",
                "avg_frequency",
                "avg_monetary",
            ])?;
            for s in &r.segments {
                w.write_record([
                    s.segment.name().to_string(),
                    s.members.to_string(),
                    s.member_share.to_string(),
                    s.revenue.to_string(),
                    s.revenue_share.to_string(),
                    s.avg_recency_days.to_string(),
                    s.avg_frequency.to_string(),
                    s.avg_monetary.to_string(),
                ])?;
            }
        }
        Report::Abc(r) if !r.member_classes.is_empty() => {
            w.write_record([
                "member_id",
                "rank",
                "net_revenue",
                "cogs",
                "discounts",
                "cost_to_serve",
                "contribution",
                "score",
                "class",
            ])?;
            for m in &r.member_classes {
                w.write_record([
                    m.member_id.to_string(),
                    m.rank.to_string(),
                    m.net_revenue.to_string(),
                    m.cogs.to_string(),
                    m.discounts.to_string(),
                    m.cost_to_serve.to_string(),
                    m.contribution.to_string(),
                    m.score.to_string(),
                    m.class.name().to_string(),
                ])?;
            }
        }
        Report::Abc(r) => {
            w.write_record([
                "class",
                "members",
                "member_share",
                "contribution",
                "contribution_share",
                "net_revenue",
            ])?;
            for c in &r.classes {
                w.write_record([
                    c.class.name().to_string(),
                    c.members.to_string(),
                    c.member_share.to_string(),
                    c.contribution.to_string(),
                    c.contribution_share.to_string(),
                    c.net_revenue.to_string(),
                ])?;
            }
        }
        Report::Retention(r) => {
            w.write_record([
                "metric",
                "days",
                "numerator",
                "denominator",
                "value",
                "threshold",
                "flagged",
            ])?;
            for x in &r.repeat {
                w.write_record([
                    "repeat_rate".to_string(),
                    x.window_days.to_string(),
                    x.repeat_members.to_string(),
                    x.observed_members.to_string(),
                    x.rate.to_string(),
                    x.threshold.map(|t| t.to_string()).unwrap_or_default(),
                    x.flagged.to_string(),
                ])?;
            }
            for x in &r.inactive {
                w.write_record([
                    "inactive_share".to_string(),
                    x.days.to_string(),
                    x.members.to_string(),
                    r.members.to_string(),
                    x.share.to_string(),
                    String::new(),
                    "false".to_string(),
                ])?;
            }
            let a = &r.annual_return;
            w.write_record([
                "annual_return_rate".to_string(),
                "365".to_string(),
                a.returned.to_string(),
                a.previous_year_buyers.to_string(),
                a.rate.to_string(),
                a.target.to_string(),
                a.flagged.to_string(),
            ])?;
        }
        Report::Cohorts(r) => {
            w.write_record([
                "cohort",
                "channel",
                "members",
                "months_since",
                "active_members",
                "active_share",
                "revenue",
                "revenue_per_member",
                "cumulative_revenue_per_member",
            ])?;
            for c in &r.cohorts {
                for x in &c.cells {
                    w.write_record([
                        c.cohort.clone(),
                        c.channel.clone().unwrap_or_default(),
                        c.members.to_string(),
                        x.months_since.to_string(),
                        x.active_members.to_string(),
                        x.active_share.to_string(),
                        x.revenue.to_string(),
                        x.revenue_per_member.to_string(),
                        x.cumulative_revenue_per_member.to_string(),
                    ])?;
                }
            }
        }
        Report::Products(r) => {
            w.write_record([
                "level",
                "key",
                "name",
                "category",
                "net_revenue",
                "units",
                "gross_margin",
                "margin_rate",
                "orders",
                "first_order_share",
                "first_order_repeat_rate",
                "role",
            ])?;
            for (level, rows) in [("product", &r.products), ("category", &r.categories)] {
                for p in rows {
                    w.write_record([
                        level.to_string(),
                        p.key.clone(),
                        p.name.clone(),
                        p.category.clone(),
                        p.net_revenue.to_string(),
                        p.units.to_string(),
                        p.gross_margin.to_string(),
                        p.margin_rate.to_string(),
                        p.orders.to_string(),
                        p.first_order_share.to_string(),
                        p.first_order_repeat_rate.to_string(),
                        p.role.name().to_string(),
                    ])?;
                }
            }
        }
        Report::Channels(r) => {
            let mut head = vec![
                "channel",
                "members",
                "new_members",
                "orders",
                "net_revenue",
                "aov",
                "repeat_rate",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            head.extend(r.channels.iter().map(|c| format!("overlap_{}", c.channel)));
            w.write_record(&head)?;
            for (i, c) in r.channels.iter().enumerate() {
                let mut row = vec![
                    c.channel.clone(),
                    c.members.to_string(),
                    c.new_members.to_string(),
                    c.orders.to_string(),
                    c.net_revenue.to_string(),
                    c.aov.to_string(),
                    c.repeat_rate.to_string(),
                ];
                row.extend(r.overlap[i].iter().map(|x| x.to_string()));
                w.write_record(&row)?;
            }
        }
        Report::Overview(o) => {
            let mut head = vec!["date".to_string(), "orders".to_string()];
            head.extend(o.channels.iter().map(|c| format!("net_revenue_{c}")));
            w.write_record(&head)?;
            for d in &o.days {
                let mut row = vec![d.date.to_string(), d.orders.to_string()];
                row.extend(d.net_revenue.iter().map(|x| x.to_string()));
                w.write_record(&row)?;
            }
        }
        Report::Summary(s) => {
            w.write_record(["metric", "value"])?;
            for (k, v) in summary_lines(s) {
                w.write_record([k, v])?;
            }
        }
        Report::Acquisition(r) => crate::acquisition_cmd::write_csv(&mut w, r)?,
    }
    w.flush()?;
    Ok(())
}

fn summary_lines(s: &an::SummaryReport) -> Vec<(String, String)> {
    let mut v = vec![
        ("as_of".to_string(), s.as_of.to_string()),
        ("members".to_string(), s.members.to_string()),
        ("net_revenue".to_string(), s.net_revenue.to_string()),
    ];
    for seg in &s.rfm.segments {
        v.push((
            format!("rfm_members_{}", seg.segment.name()),
            seg.members.to_string(),
        ));
    }
    for c in &s.abc.classes {
        v.push((
            format!("abc_{}_member_share", c.class.name()),
            c.member_share.to_string(),
        ));
        v.push((
            format!("abc_{}_contribution_share", c.class.name()),
            c.contribution_share.to_string(),
        ));
    }
    for r in &s.retention.repeat {
        v.push((
            format!("repeat_rate_{}d", r.window_days),
            r.rate.to_string(),
        ));
    }
    for r in &s.retention.inactive {
        v.push((format!("inactive_share_{}d", r.days), r.share.to_string()));
    }
    v.push((
        "annual_return_rate".to_string(),
        s.retention.annual_return.rate.to_string(),
    ));
    v.push((
        "multi_channel_members".to_string(),
        s.channels.multi_channel_members.to_string(),
    ));
    v.push(("cohorts".to_string(), s.cohorts.to_string()));
    v.push((
        "month_3_active_share".to_string(),
        s.month_3_active_share.to_string(),
    ));
    v
}

/// Write a report as aligned text.
pub fn write_table(out: &mut dyn Write, report: &Report) -> Result<()> {
    match report {
        Report::Rfm(r) => {
            writeln!(out, "RFM as of {}: {} members with purchases ({} with orders but no purchase), net revenue {}", r.as_of, count(r.members as i64), count(r.members_without_purchases as i64), money(r.revenue))?;
            writeln!(
                out,
                "{:<20} {:>9} {:>7} {:>16} {:>7} {:>8} {:>6} {:>12}",
                "segment", "members", "share", "revenue", "rev %", "avg R", "avg F", "avg M"
            )?;
            for s in &r.segments {
                writeln!(
                    out,
                    "{:<20} {:>9} {:>7} {:>16} {:>7} {:>8.1} {:>6.2} {:>12}",
                    s.segment.name(),
                    count(s.members as i64),
                    pct(s.member_share),
                    money(s.revenue),
                    pct(s.revenue_share),
                    s.avg_recency_days,
                    s.avg_frequency,
                    money(s.avg_monetary.round() as i64)
                )?;
            }
            if !r.member_scores.is_empty() {
                writeln!(
                    out,
                    "\n{:>10} {:>8} {:>5} {:>14} {:>2} {:>2} {:>2}  segment",
                    "member", "R days", "F", "M", "r", "f", "m"
                )?;
                for m in &r.member_scores {
                    writeln!(
                        out,
                        "{:>10} {:>8} {:>5} {:>14} {:>2} {:>2} {:>2}  {}",
                        format!("M-{}", m.member_id),
                        m.recency_days,
                        m.frequency,
                        money(m.monetary),
                        m.r,
                        m.f,
                        m.m,
                        m.segment.name()
                    )?;
                }
            }
        }
        Report::Abc(r) => {
            writeln!(
                out,
                "ABC by {} as of {}: {} members, contribution {} (positive {})",
                match r.config.rank_by {
                    RankBy::Contribution => "contribution",
                    RankBy::Score => "score",
                },
                r.as_of,
                count(r.members as i64),
                money(r.total_contribution),
                money(r.positive_contribution)
            )?;
            writeln!(
                out,
                "{:<12} {:>9} {:>7} {:>16} {:>8} {:>16}",
                "class", "members", "share", "contribution", "contr %", "net revenue"
            )?;
            for c in &r.classes {
                writeln!(
                    out,
                    "{:<12} {:>9} {:>7} {:>16} {:>8} {:>16}",
                    c.class.name(),
                    count(c.members as i64),
                    pct(c.member_share),
                    money(c.contribution),
                    pct(c.contribution_share),
                    money(c.net_revenue)
                )?;
            }
            let curve: Vec<String> = r
                .pareto
                .iter()
                .filter(|p| {
                    (p.member_share * 100.0).round() as i64 % 10 == 0 && p.member_share > 0.0
                })
                .map(|p| format!("{}:{}", pct(p.member_share), pct(p.contribution_share)))
                .collect();
            writeln!(out, "Pareto (members:contribution): {}", curve.join("  "))?;
            if !r.loss_making.is_empty() {
                writeln!(out, "Loss-making members (worst first):")?;
                for m in r.loss_making.iter().take(if r.member_classes.is_empty() {
                    10
                } else {
                    usize::MAX
                }) {
                    writeln!(out, "  M-{:<10} contribution {:>12}  revenue {:>12}  cogs {:>12}  cost to serve {:>10}", m.member_id, money(m.contribution), money(m.net_revenue), money(m.cogs), money(m.cost_to_serve))?;
                }
            }
            if !r.member_classes.is_empty() {
                writeln!(
                    out,
                    "\n{:>6} {:>10} {:>14} {:>6}  class",
                    "rank", "member", "contribution", "score"
                )?;
                for m in &r.member_classes {
                    writeln!(
                        out,
                        "{:>6} {:>10} {:>14} {:>6.3}  {}",
                        m.rank,
                        format!("M-{}", m.member_id),
                        money(m.contribution),
                        m.score,
                        m.class.name()
                    )?;
                }
            }
        }
        Report::Retention(r) => {
            writeln!(
                out,
                "Retention as of {}: {} members with purchases",
                r.as_of,
                count(r.members as i64)
            )?;
            for x in &r.repeat {
                writeln!(
                    out,
                    "  repeat within {:>3} days: {:>7} of {:>9} observed members{}",
                    x.window_days,
                    pct(x.rate),
                    count(x.observed_members as i64),
                    match (x.threshold, x.flagged) {
                        (Some(t), true) => format!("  BELOW {} (value being lost)", pct(t)),
                        (Some(t), false) => format!("  (minimum {})", pct(t)),
                        _ => String::new(),
                    }
                )?;
            }
            for x in &r.inactive {
                writeln!(
                    out,
                    "  no purchase in {:>3} days: {:>7} ({} members)",
                    x.days,
                    pct(x.share),
                    count(x.members as i64)
                )?;
            }
            let a = &r.annual_return;
            writeln!(
                out,
                "  annual return rate:      {:>7} of {} previous-year buyers (target {}){}",
                pct(a.rate),
                count(a.previous_year_buyers as i64),
                pct(a.target),
                if a.flagged { "  BELOW TARGET" } else { "" }
            )?;
        }
        Report::Cohorts(r) => {
            writeln!(out, "Cohorts by {} as of {}: share still buying / cumulative revenue per member, by months since first purchase", r.by, r.as_of)?;
            for c in &r.cohorts {
                let cells: Vec<String> = c
                    .cells
                    .iter()
                    .take(13)
                    .map(|x| format!("{:>5}", pct(x.active_share)))
                    .collect();
                let cum = c
                    .cells
                    .last()
                    .map(|x| x.cumulative_revenue_per_member)
                    .unwrap_or(0.0);
                writeln!(
                    out,
                    "{} {:<8} {:>7}  {}  cum/member {}",
                    c.cohort,
                    c.channel.clone().unwrap_or_default(),
                    count(c.members as i64),
                    cells.join(" "),
                    money(cum.round() as i64)
                )?;
            }
        }
        Report::Products(r) => {
            writeln!(
                out,
                "Products as of {}: first-order share of all orders {}, margin rate {}",
                r.as_of,
                pct(r.first_order_share),
                pct(r.margin_rate)
            )?;
            for (title, rows) in [("product", &r.products), ("category", &r.categories)] {
                writeln!(
                    out,
                    "{:<16} {:>14} {:>8} {:>14} {:>7} {:>8} {:>8} {:>8}  role",
                    title,
                    "net revenue",
                    "units",
                    "gross margin",
                    "margin",
                    "orders",
                    "first %",
                    "repeat %"
                )?;
                for p in rows
                    .iter()
                    .take(if title == "product" { 30 } else { usize::MAX })
                {
                    writeln!(
                        out,
                        "{:<16} {:>14} {:>8} {:>14} {:>7} {:>8} {:>8} {:>8}  {}",
                        p.key,
                        money(p.net_revenue),
                        count(p.units),
                        money(p.gross_margin),
                        pct(p.margin_rate),
                        count(p.orders as i64),
                        pct(p.first_order_share),
                        pct(p.first_order_repeat_rate),
                        p.role.name()
                    )?;
                }
                if title == "product" && rows.len() > 30 {
                    writeln!(
                        out,
                        "({} more products: use -o json or -o csv)",
                        rows.len() - 30
                    )?;
                }
            }
        }
        Report::Channels(r) => {
            writeln!(
                out,
                "Channels as of {}: {} members bought in two or more channels",
                r.as_of,
                count(r.multi_channel_members as i64)
            )?;
            writeln!(
                out,
                "{:<10} {:>9} {:>9} {:>9} {:>16} {:>10} {:>8}",
                "channel", "members", "new", "orders", "net revenue", "AOV", "repeat"
            )?;
            for c in &r.channels {
                writeln!(
                    out,
                    "{:<10} {:>9} {:>9} {:>9} {:>16} {:>10} {:>8}",
                    c.channel,
                    count(c.members as i64),
                    count(c.new_members as i64),
                    count(c.orders as i64),
                    money(c.net_revenue),
                    money(c.aov.round() as i64),
                    pct(c.repeat_rate)
                )?;
            }
            write!(out, "\noverlap   ")?;
            for c in &r.channels {
                write!(out, " {:>9}", c.channel)?;
            }
            writeln!(out)?;
            for (i, c) in r.channels.iter().enumerate() {
                write!(out, "{:<10}", c.channel)?;
                for x in &r.overlap[i] {
                    write!(out, " {:>9}", count(*x as i64))?;
                }
                writeln!(out)?;
            }
        }
        Report::Summary(s) => write_summary(out, s)?,
        Report::Acquisition(r) => crate::acquisition_cmd::write_table(out, r)?,
        Report::Overview(o) => write_overview(out, o)?,
    }
    Ok(())
}

fn write_overview(out: &mut dyn Write, o: &an::OverviewReport) -> Result<()> {
    let (c, p) = (&o.current, &o.previous);
    writeln!(
        out,
        "{} to {} against {} to {}:",
        c.from, c.to, p.from, p.to
    )?;
    let change = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "-".into());
    let rows = [
        (
            "net revenue",
            money(c.net_revenue),
            money(p.net_revenue),
            change(o.change.net_revenue),
        ),
        (
            "orders",
            count(c.orders as i64),
            count(p.orders as i64),
            change(o.change.orders),
        ),
        (
            "buyers",
            count(c.buyers as i64),
            count(p.buyers as i64),
            change(o.change.buyers),
        ),
        (
            "new members",
            count(c.new_members as i64),
            count(p.new_members as i64),
            change(o.change.new_members),
        ),
        (
            "AOV",
            money(c.aov.round() as i64),
            money(p.aov.round() as i64),
            change(o.change.aov),
        ),
        (
            "repeat rate",
            pct(c.repeat_rate),
            pct(p.repeat_rate),
            format!("{:+.1} pt", o.change.repeat_rate * 100.0),
        ),
        (
            "annual return",
            pct(c.annual_return_rate),
            pct(p.annual_return_rate),
            format!(
                "{:+.1} pt (target {})",
                o.change.annual_return_rate * 100.0,
                pct(o.annual_return_target)
            ),
        ),
    ];
    for (k, a, b, d) in rows {
        writeln!(out, "  {k:<14} {a:>16} {b:>16} {d:>12}")?;
    }
    for b in &o.brands {
        writeln!(
            out,
            "  brand {:<20} {:>16} {:>9} orders",
            b.brand,
            money(b.net_revenue),
            count(b.orders as i64)
        )?;
    }
    Ok(())
}

fn write_summary(out: &mut dyn Write, s: &an::SummaryReport) -> Result<()> {
    writeln!(
        out,
        "Customer value as of {}: {} members with purchases, net revenue {}",
        s.as_of,
        count(s.members as i64),
        money(s.net_revenue)
    )?;
    let segs: Vec<String> = s
        .rfm
        .segments
        .iter()
        .filter(|x| x.members > 0)
        .map(|x| format!("{} {}", x.segment.name(), pct(x.member_share)))
        .collect();
    writeln!(out, "  RFM segments: {}", segs.join(", "))?;
    let a = &s.abc.classes;
    writeln!(out, "  ABC: A = {} of members make {} of contribution; B {} / {}; C {} / {}; loss-making {} ({})", pct(a[0].member_share), pct(a[0].contribution_share), pct(a[1].member_share), pct(a[1].contribution_share), pct(a[2].member_share), pct(a[2].contribution_share), count(a[3].members as i64), money(a[3].contribution))?;
    let r = &s.retention;
    writeln!(out, "  Repeat within 90/180/365 days: {} / {} / {}; no purchase in 90/180 days: {} / {}; annual return {} (target {})", pct(r.repeat[0].rate), pct(r.repeat[1].rate), pct(r.repeat[2].rate), pct(r.inactive[0].share), pct(r.inactive[1].share), pct(r.annual_return.rate), pct(r.annual_return.target))?;
    for f in &r.flags {
        writeln!(out, "  ! {f}")?;
    }
    writeln!(
        out,
        "  Cohorts: {} months of first purchase; {} of a cohort still buying in month 3",
        s.cohorts,
        pct(s.month_3_active_share)
    )?;
    let ch: Vec<String> = s
        .channels
        .channels
        .iter()
        .map(|c| {
            format!(
                "{} {} (AOV {}, repeat {})",
                c.channel,
                money(c.net_revenue),
                money(c.aov.round() as i64),
                pct(c.repeat_rate)
            )
        })
        .collect();
    writeln!(
        out,
        "  Channels: {}; {} members bought in 2+ channels",
        ch.join(", "),
        count(s.channels.multi_channel_members as i64)
    )?;
    let tp: Vec<String> = s
        .top_products
        .iter()
        .map(|(role, sku, _)| format!("{sku} ({})", an::ProductRole::name(*role)))
        .collect();
    writeln!(out, "  Product roles: {}", tp.join(", "))?;
    Ok(())
}

/// Print the summary report (used at the end of `touchpoint demo`).
pub async fn print_summary(store: &Store, settings: &Settings) -> Result<()> {
    let args = ReportArgs::of(Kind::Summary);
    let report = compute(store, &args, settings).await?;
    let mut out = std::io::stdout().lock();
    write_table(&mut out, &report)
}
