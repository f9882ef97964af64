//! `touchpoint clv ...`: fit customer-lifetime-value models and write
//! per-customer predictions.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{NaiveDate, TimeZone};
use rayon::prelude::*;
use serde::Serialize;
use touchpoint_core::clv::{
    clv_monthly_many, holdout_fit, read_transactions, summarize, BgNbd, ClvError, CustomerSummary,
    FitReport, Fitted, GammaGamma, HoldoutFit, MbgNbd, ParetoNbd, PurchaseModel, RfmData,
    SpendData, Summaries, SummaryOptions, TimeUnit, TransactionFormat, TransactionLog,
};
use touchpoint_store::clv::{MemberPrediction, PurchaseColumns};

use crate::Settings;

/// CLV commands.
#[derive(Debug, clap::Subcommand)]
pub enum ClvCommand {
    /// Fit purchase models (BG/NBD, MBG/NBD, Pareto/NBD) and the Gamma-Gamma
    /// spend model, and print what they found.
    Fit(FitArgs),
    /// Per-customer predictions (P(alive), expected purchases, expected
    /// spend, CLV): stored per member (table member_predictions) when read
    /// from the store, and/or written to a file with --out.
    Predict(PredictArgs),
}

/// Input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Header `customer_id,date,amount`; dates YYYY-MM-DD or YYYYMMDD.
    Csv,
    /// The CDNOW logs (whitespace-separated id, date, cds, dollars).
    Cdnow,
}

/// Time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitArg {
    /// Days.
    Day,
    /// Weeks (7 days).
    Week,
    /// Months (30.4375 days).
    Month,
}

impl From<UnitArg> for TimeUnit {
    fn from(u: UnitArg) -> Self {
        match u {
            UnitArg::Day => TimeUnit::Day,
            UnitArg::Week => TimeUnit::Week,
            UnitArg::Month => TimeUnit::Month,
        }
    }
}

/// Which purchase model(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    /// BG/NBD (Fader, Hardie & Lee 2005).
    Bgnbd,
    /// MBG/NBD (Batislam et al. 2007).
    Mbgnbd,
    /// Pareto/NBD (Schmittlein et al. 1987).
    Paretonbd,
    /// All three.
    All,
}

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputArg {
    /// Human-readable tables with explanations.
    Table,
    /// One JSON document.
    Json,
}

/// Where the transactions come from and how to summarise them.
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// Transaction file. Without it, the members' purchases in the store are
    /// read: one transaction per paid or partially refunded order, on its
    /// date in the business time zone (--timezone), for its net amount.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Layout of the file.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: FileFormat,
    /// Unit for recency, T and the horizon.
    #[arg(long, value_enum, default_value = "week")]
    pub unit: UnitArg,
    /// Last day (inclusive) of the calibration period, YYYY-MM-DD. Later
    /// purchases form the holdout period used to check predictions.
    #[arg(long, value_name = "DATE")]
    pub calibration_end: Option<String>,
    /// Last day observed, YYYY-MM-DD (default: the last purchase's date).
    #[arg(long, value_name = "DATE")]
    pub observation_end: Option<String>,
}

/// Arguments of `clv fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Purchase model(s) to fit.
    #[arg(long, value_enum, default_value = "all")]
    pub model: ModelArg,
    /// Prediction horizon in units (default: 52 weeks' worth).
    #[arg(long)]
    pub horizon: Option<f64>,
    /// Annual discount rate for CLV (0.1 = 10% a year); converted to a
    /// monthly rate (1 + rate)^(1/12) - 1 and applied month by month.
    #[arg(long, default_value_t = 0.1)]
    pub discount_rate: f64,
    /// Output style.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputArg,
}

/// Arguments of `clv predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Purchase model to predict with.
    #[arg(long, value_enum, default_value = "bgnbd")]
    pub model: ModelArg,
    /// Prediction horizon in units (default: 52 weeks' worth).
    #[arg(long)]
    pub horizon: Option<f64>,
    /// Annual discount rate for CLV, as in `clv fit`.
    #[arg(long, default_value_t = 0.1)]
    pub discount_rate: f64,
    /// Output file; `.json` writes JSON, anything else CSV. Required with
    /// --from; optional with the store, where predictions are also stored
    /// in member_predictions.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// A source of transactions.
#[derive(Debug, Clone)]
pub enum TransactionSource {
    /// A file in one of the supported layouts.
    File {
        /// Path to the file.
        path: PathBuf,
        /// Its layout.
        format: TransactionFormat,
    },
    /// The members' purchases in the store.
    Store {
        /// Database URL.
        database: String,
        /// Business time zone deciding each purchase's date.
        timezone: chrono_tz::Tz,
    },
}

/// Transactions with, for the store, the member id of each customer.
pub struct Loaded {
    /// The transactions.
    pub log: TransactionLog,
    /// `member_ids[i]` is the member of `log.ids[i]` (store only).
    pub member_ids: Option<Vec<i64>>,
}

impl TransactionSource {
    /// Choose the source from the arguments.
    pub fn from_args(args: &SourceArgs, database: &str, settings: &Settings) -> Result<Self> {
        match &args.from {
            Some(path) => Ok(TransactionSource::File {
                path: path.clone(),
                format: match args.format {
                    FileFormat::Csv => TransactionFormat::Csv,
                    FileFormat::Cdnow => TransactionFormat::Cdnow,
                },
            }),
            None => Ok(TransactionSource::Store {
                database: database.to_string(),
                timezone: settings.timezone,
            }),
        }
    }

    /// Read all transactions.
    pub fn load(&self) -> Result<Loaded> {
        match self {
            TransactionSource::File { path, format } => Ok(Loaded {
                log: read_file(path, *format)?,
                member_ids: None,
            }),
            TransactionSource::Store { database, timezone } => {
                let cols = crate::runtime()?.block_on(async {
                    let store = crate::connect(database).await?;
                    let cols = store.purchase_transactions().await;
                    store.close().await;
                    anyhow::Ok(cols?)
                })?;
                if cols.is_empty() {
                    bail!(
                        "the store {} has no paid orders: import orders first (touchpoint import ..., or touchpoint demo)",
                        touchpoint_store::redact_url(database)
                    );
                }
                store_log(&cols, *timezone)
            }
        }
    }
}

/// Turn the store's purchases into a transaction log:
/// member ids as customer ids, dates in the business time zone, amounts in
/// currency units (minor units / 100).
fn store_log(cols: &PurchaseColumns, tz: chrono_tz::Tz) -> Result<Loaded> {
    let n = cols.len();
    let mut member_ids: Vec<i64> = Vec::new();
    let mut index: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    let mut customer = Vec::with_capacity(n);
    let mut day = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    for i in 0..n {
        let m = cols.member_id[i];
        let next = member_ids.len() as u32;
        customer.push(*index.entry(m).or_insert_with(|| {
            member_ids.push(m);
            next
        }));
        let at = cols.ordered_at[i];
        let local = chrono::Utc
            .timestamp_millis_opt(at)
            .single()
            .with_context(|| format!("member {m}: order time {at} ms is out of range"))?
            .with_timezone(&tz)
            .date_naive();
        day.push(touchpoint_core::clv::summary::epoch_day(local));
        amount.push(cols.net_amount[i] as f64 / 100.0);
    }
    let ids = member_ids.iter().map(|m| m.to_string()).collect();
    Ok(Loaded {
        log: TransactionLog::from_columns(ids, customer, day, amount)?,
        member_ids: Some(member_ids),
    })
}

/// Read a transaction file; errors name the file, line, field and form.
pub fn read_file(path: &Path, format: TransactionFormat) -> Result<TransactionLog> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_transactions(&bytes, format).map_err(|e| match e {
        ClvError::Parse { .. } => anyhow::anyhow!("{}:{}", path.display(), e),
        other => anyhow::anyhow!("{}: {}", path.display(), other),
    })
}

fn parse_date(s: &Option<String>, flag: &str) -> Result<Option<NaiveDate>> {
    s.as_deref()
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(v, "%Y%m%d"))
                .with_context(|| format!("{flag}: expected a date YYYY-MM-DD, got {v:?}"))
        })
        .transpose()
}

struct Prepared {
    log: TransactionLog,
    member_ids: Option<Vec<i64>>,
    source: TransactionSource,
    summaries: Summaries,
    unit: TimeUnit,
    calibration_end: Option<NaiveDate>,
    observation_end: NaiveDate,
}

fn prepare(args: &SourceArgs, database: &str, settings: &Settings) -> Result<Prepared> {
    let source = TransactionSource::from_args(args, database, settings)?;
    let Loaded { log, member_ids } = source.load()?;
    let unit: TimeUnit = args.unit.into();
    let calibration_end = parse_date(&args.calibration_end, "--calibration-end")?;
    let observation_end = match parse_date(&args.observation_end, "--observation-end")? {
        Some(d) => d,
        None => log.last_date().context("the file has no transactions")?,
    };
    let summaries = summarize(
        &log,
        &SummaryOptions {
            unit,
            calibration_end,
            observation_end: Some(observation_end),
        },
    )?;
    Ok(Prepared {
        log,
        member_ids,
        source,
        summaries,
        unit,
        calibration_end,
        observation_end,
    })
}

/// A fitted purchase model of any kind.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AnyModel {
    /// BG/NBD.
    Bg(Fitted<BgNbd>),
    /// MBG/NBD.
    Mbg(Fitted<MbgNbd>),
    /// Pareto/NBD.
    Pareto(Fitted<ParetoNbd>),
}

impl AnyModel {
    fn report(&self) -> &FitReport {
        match self {
            AnyModel::Bg(m) => &m.report,
            AnyModel::Mbg(m) => &m.report,
            AnyModel::Pareto(m) => &m.report,
        }
    }
}

impl PurchaseModel for AnyModel {
    fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            AnyModel::Bg(m) => m.p_alive(x, t_x, t),
            AnyModel::Mbg(m) => m.p_alive(x, t_x, t),
            AnyModel::Pareto(m) => m.p_alive(x, t_x, t),
        }
    }
    fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            AnyModel::Bg(m) => m.expected_purchases(h, x, t_x, t),
            AnyModel::Mbg(m) => m.expected_purchases(h, x, t_x, t),
            AnyModel::Pareto(m) => m.expected_purchases(h, x, t_x, t),
        }
    }
}

fn fit_model(kind: ModelArg, data: &RfmData) -> Result<AnyModel> {
    Ok(match kind {
        ModelArg::Bgnbd => AnyModel::Bg(BgNbd::params().check()?.fit(data)?),
        ModelArg::Mbgnbd => AnyModel::Mbg(MbgNbd::params().check()?.fit(data)?),
        ModelArg::Paretonbd => AnyModel::Pareto(ParetoNbd::params().check()?.fit(data)?),
        ModelArg::All => bail!("choose one model"),
    })
}

/// Monthly discount rate from an annual one.
fn monthly_rate(annual: f64) -> Result<f64> {
    if !(annual.is_finite() && annual > -1.0) {
        bail!("--discount-rate must be a number above -1 (0.1 = 10% a year), got {annual}");
    }
    Ok((1.0 + annual).powf(1.0 / 12.0) - 1.0)
}

fn horizon_of(h: Option<f64>, unit: TimeUnit) -> Result<f64> {
    let h = h.unwrap_or(52.0 * 7.0 / unit.days());
    if !(h.is_finite() && h > 0.0) {
        bail!(
            "--horizon must be a positive number of {}s, got {h}",
            unit.name()
        );
    }
    Ok(h)
}

/// Per-customer CLV: spend x expected purchases, month by month over
/// round(horizon / periods-per-month) months (at least 1), discounted
/// monthly as lifetimes' `customer_lifetime_value` does.
fn customers_clv<M: PurchaseModel + Sync + ?Sized>(
    m: &M,
    rows: &[CustomerSummary],
    spend: &[f64],
    horizon: f64,
    unit: TimeUnit,
    monthly: f64,
) -> Vec<f64> {
    let ppm = unit.per_month();
    let months = (horizon / ppm).round().max(1.0) as u32;
    let x: Vec<f64> = rows.iter().map(|r| r.frequency as f64).collect();
    let tx: Vec<f64> = rows.iter().map(|r| r.recency).collect();
    let t: Vec<f64> = rows.iter().map(|r| r.t).collect();
    clv_monthly_many(m, &x, &tx, &t, spend, months, ppm, monthly)
}

/// Gamma-Gamma expected spend per purchase of every customer (NaN without
/// a spend model).
fn customers_spend(gg: Option<&Fitted<GammaGamma>>, rows: &[CustomerSummary]) -> Vec<f64> {
    rows.par_iter()
        .map(|r| {
            gg.map(|g| g.expected_spend(r.frequency as f64, r.monetary))
                .unwrap_or(f64::NAN)
        })
        .collect()
}

#[derive(Serialize)]
struct FitOutput {
    customers: usize,
    transactions: usize,
    repeat_customers: usize,
    unit: &'static str,
    first_date: String,
    calibration_end: Option<String>,
    observation_end: String,
    horizon: f64,
    annual_discount_rate: f64,
    monthly_discount_rate: f64,
    models: Vec<AnyModel>,
    gamma_gamma: Option<Fitted<GammaGamma>>,
    mean_expected_purchases: Vec<f64>,
    mean_clv: Vec<f64>,
    holdout: Vec<HoldoutFit>,
}

/// Run a CLV command.
pub fn run(cmd: ClvCommand, database: &str, settings: &Settings) -> Result<()> {
    match cmd {
        ClvCommand::Fit(args) => fit(args, database, settings),
        ClvCommand::Predict(args) => predict(args, database, settings),
    }
}

fn fit(args: FitArgs, database: &str, settings: &Settings) -> Result<()> {
    let p = prepare(&args.source, database, settings)?;
    let horizon = horizon_of(args.horizon, p.unit)?;
    let monthly = monthly_rate(args.discount_rate)?;
    let rows = &p.summaries.rows;
    let data = RfmData::from_summaries(rows);
    let kinds: Vec<ModelArg> = match args.model {
        ModelArg::All => vec![ModelArg::Bgnbd, ModelArg::Mbgnbd, ModelArg::Paretonbd],
        k => vec![k],
    };
    let models: Vec<AnyModel> = kinds
        .iter()
        .map(|&k| fit_model(k, &data))
        .collect::<Result<_>>()?;
    let spend = SpendData::from_summaries(rows);
    let gg = if spend.is_empty() {
        None
    } else {
        Some(GammaGamma::params().check()?.fit(&spend)?)
    };
    let mut mean_e = Vec::new();
    let mut mean_clv = Vec::new();
    let spend = customers_spend(gg.as_ref(), rows);
    for m in &models {
        let e: f64 = rows
            .par_iter()
            .map(|r| m.expected_purchases(horizon, r.frequency as f64, r.recency, r.t))
            .sum();
        let c: f64 = customers_clv(m, rows, &spend, horizon, p.unit, monthly)
            .iter()
            .sum();
        mean_e.push(e / rows.len() as f64);
        mean_clv.push(c / rows.len() as f64);
    }
    let holdout: Vec<HoldoutFit> =
        if p.calibration_end.is_some() && p.summaries.holdout_length > 0.0 {
            models
                .iter()
                .map(|m| holdout_fit(m, rows, p.summaries.holdout_length))
                .collect()
        } else {
            Vec::new()
        };
    let out = FitOutput {
        customers: rows.len(),
        transactions: p.log.len(),
        repeat_customers: rows.iter().filter(|r| r.frequency > 0).count(),
        unit: p.unit.name(),
        first_date: p
            .log
            .first_date()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        calibration_end: p.calibration_end.map(|d| d.to_string()),
        observation_end: p.observation_end.to_string(),
        horizon,
        annual_discount_rate: args.discount_rate,
        monthly_discount_rate: monthly,
        models,
        gamma_gamma: gg,
        mean_expected_purchases: mean_e,
        mean_clv,
        holdout,
    };
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    match args.output {
        OutputArg::Json => {
            serde_json::to_writer_pretty(&mut w, &out)?;
            writeln!(w)?;
        }
        OutputArg::Table => print_table(&mut w, &out)?,
    }
    Ok(())
}

fn describe(model: &str, name: &str) -> &'static str {
    match (model, name) {
        (_, "r") => "shape of purchase rates across customers (small = very uneven)",
        (_, "alpha") => "scale of purchase rates; r/alpha = mean purchases per unit while active",
        ("Pareto/NBD", "s") => "shape of drop-out rates across customers",
        ("Pareto/NBD", "beta") => "scale of drop-out rates; s/beta = mean drop-out rate per unit",
        (_, "a") => "drop-out: a/(a+b) = mean chance of leaving after a purchase",
        (_, "b") => "drop-out Beta parameter b",
        (_, "p") => "shape of one purchase's value",
        (_, "q") => "shape of spend levels across customers (must be > 1)",
        (_, "gamma") => "scale of spend levels across customers",
        _ => "",
    }
}

fn print_report<W: Write>(w: &mut W, r: &FitReport) -> Result<()> {
    writeln!(
        w,
        "  {:<8} {:>12} {:>12}   meaning",
        "param", "estimate", "std.error"
    )?;
    for i in 0..r.params.len() {
        writeln!(
            w,
            "  {:<8} {:>12.4} {:>12.4}   {}",
            r.names[i],
            r.params[i],
            r.std_errors[i],
            describe(&r.model, &r.names[i])
        )?;
    }
    writeln!(
        w,
        "  log-likelihood {:.2}   AIC {:.2}   BIC {:.2}   (AIC/BIC: lower is better, compare models on the same data)",
        r.log_likelihood, r.aic, r.bic
    )?;
    writeln!(
        w,
        "  {} after {} iterations (largest gradient {:.1e}); {} customers in {} distinct data rows",
        if r.converged {
            "converged"
        } else {
            "DID NOT CONVERGE"
        },
        r.iterations,
        r.grad_norm,
        r.n_customers,
        r.n_rows
    )?;
    Ok(())
}

fn print_table<W: Write>(w: &mut W, o: &FitOutput) -> Result<()> {
    writeln!(
        w,
        "Data: {} customers, {} transactions from {} to {}; {} customers bought again.",
        o.customers, o.transactions, o.first_date, o.observation_end, o.repeat_customers
    )?;
    match &o.calibration_end {
        Some(c) => writeln!(
            w,
            "Models are fitted on purchases up to {c} (calibration); later ones (holdout) check the predictions."
        )?,
        None => writeln!(w, "Models are fitted on all purchases (give --calibration-end to check predictions).")?,
    }
    writeln!(
        w,
        "Time unit: {}. frequency = repeat purchase days, recency = time from first to last purchase, T = time since first purchase.\n",
        o.unit
    )?;
    for m in &o.models {
        let r = m.report();
        let what = match m {
            AnyModel::Bg(_) => "customers buy at their own steady rate; after each repeat purchase they may leave for good",
            AnyModel::Mbg(_) => "as BG/NBD, but customers may also leave right after their first purchase",
            AnyModel::Pareto(_) => "customers buy at their own steady rate and leave at a random time (not tied to purchases)",
        };
        writeln!(w, "{}: {}", r.model, what)?;
        print_report(w, r)?;
        writeln!(w)?;
    }
    if let Some(g) = &o.gamma_gamma {
        writeln!(
            w,
            "Gamma-Gamma spend model (fitted on the {} customers with repeat purchases, using their mean repeat spend)",
            g.report.n_customers
        )?;
        print_report(w, &g.report)?;
        writeln!(
            w,
            "  average spend per purchase across customers: {:.2} (p*gamma/(q-1))\n",
            g.population_mean()
        )?;
    }
    writeln!(
        w,
        "Predictions over the next {:.1} {}s (CLV discounted at {:.1}% a year = {:.3}% a month):",
        o.horizon,
        o.unit,
        o.annual_discount_rate * 100.0,
        o.monthly_discount_rate * 100.0
    )?;
    for (i, m) in o.models.iter().enumerate() {
        writeln!(
            w,
            "  {:<11} mean expected purchases per customer {:>8.3}   mean CLV {:>10.2}",
            m.report().model,
            o.mean_expected_purchases[i],
            o.mean_clv[i]
        )?;
    }
    writeln!(w)?;
    if !o.holdout.is_empty() {
        let h0 = &o.holdout[0];
        writeln!(
            w,
            "Holdout check: mean purchases per customer in the {:.1} {}s after the calibration end,",
            h0.length, o.unit
        )?;
        writeln!(
            w,
            "grouped by purchases made during calibration (predicted should track actual):"
        )?;
        write!(w, "  {:>6} {:>9} {:>8}", "freq", "customers", "actual")?;
        for m in &o.models {
            write!(w, " {:>11}", m.report().model)?;
        }
        writeln!(w)?;
        for (b, bucket) in h0.buckets.iter().enumerate() {
            write!(
                w,
                "  {:>6} {:>9} {:>8.3}",
                bucket.label, bucket.customers, bucket.actual
            )?;
            for h in &o.holdout {
                write!(w, " {:>11.3}", h.buckets[b].predicted)?;
            }
            writeln!(w)?;
        }
        write!(
            w,
            "  {:>6} {:>9} {:>8.0}",
            "total", o.customers, h0.actual_total
        )?;
        for h in &o.holdout {
            write!(w, " {:>11.0}", h.predicted_total)?;
        }
        writeln!(w)?;
        write!(w, "  MAE: mean |predicted - actual| per customer  ")?;
        for h in &o.holdout {
            write!(w, " {:>11.3}", h.mae)?;
        }
        writeln!(w)?;
        write!(w, "  bias: mean (predicted - actual), + = too high")?;
        for h in &o.holdout {
            write!(w, " {:>11.3}", h.bias)?;
        }
        writeln!(w)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Prediction<'a> {
    customer_id: &'a str,
    frequency: u32,
    recency: f64,
    #[serde(rename = "T")]
    t: f64,
    p_alive: f64,
    expected_purchases: f64,
    expected_spend: f64,
    clv: f64,
}

fn model_key(kind: ModelArg) -> &'static str {
    match kind {
        ModelArg::Bgnbd => "bgnbd",
        ModelArg::Mbgnbd => "mbgnbd",
        ModelArg::Paretonbd => "paretonbd",
        ModelArg::All => "all",
    }
}

fn predict(args: PredictArgs, database: &str, settings: &Settings) -> Result<()> {
    if args.model == ModelArg::All {
        bail!("clv predict needs one model: --model bgnbd, mbgnbd or paretonbd");
    }
    if args.source.from.is_some() && args.out.is_none() {
        bail!("--out FILE is required with --from (predictions from a file are written to a file)");
    }
    let p = prepare(&args.source, database, settings)?;
    let horizon = horizon_of(args.horizon, p.unit)?;
    let monthly = monthly_rate(args.discount_rate)?;
    let rows = &p.summaries.rows;
    let model = fit_model(args.model, &RfmData::from_summaries(rows))?;
    let spend = SpendData::from_summaries(rows);
    let gg = if spend.is_empty() {
        None
    } else {
        Some(GammaGamma::params().check()?.fit(&spend)?)
    };
    let spend = customers_spend(gg.as_ref(), rows);
    let clv = customers_clv(&model, rows, &spend, horizon, p.unit, monthly);
    let preds: Vec<Prediction<'_>> = rows
        .par_iter()
        .zip(p.summaries.customer.par_iter())
        .enumerate()
        .map(|(i, (r, &c))| {
            let (x, tx, t) = (r.frequency as f64, r.recency, r.t);
            Prediction {
                customer_id: &p.log.ids[c as usize],
                frequency: r.frequency,
                recency: r.recency,
                t,
                p_alive: model.p_alive(x, tx, t),
                expected_purchases: model.expected_purchases(horizon, x, tx, t),
                expected_spend: spend[i],
                clv: clv[i],
            }
        })
        .collect();
    if let (TransactionSource::Store { database, .. }, Some(members)) = (&p.source, &p.member_ids) {
        let now = touchpoint_store::now_ms();
        let finite = |v: f64| v.is_finite().then_some(v);
        let rows: Vec<MemberPrediction> = preds
            .iter()
            .zip(&p.summaries.customer)
            .map(|(pr, &c)| MemberPrediction {
                member_id: members[c as usize],
                p_alive: pr.p_alive,
                expected_purchases: pr.expected_purchases,
                expected_spend: finite(pr.expected_spend),
                clv: finite(pr.clv),
                horizon_days: horizon * p.unit.days(),
                computed_at: now,
            })
            .collect();
        let key = model_key(args.model);
        let w = crate::runtime()?.block_on(async {
            let store = crate::connect(database).await?;
            let w = store.store_predictions(key, &rows).await;
            store.close().await;
            anyhow::Ok(w?)
        })?;
        eprintln!(
            "Stored {} predictions ({} over the next {:.1} {}s) in member_predictions (model {key}): \
             {} rows new or changed, {} removed",
            rows.len(),
            model.report().model,
            horizon,
            p.unit.name(),
            w.upserted,
            w.removed
        );
    }
    let Some(out) = &args.out else {
        return Ok(());
    };
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let json = out
        .extension()
        .map(|e| e.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    if json {
        serde_json::to_writer(&mut w, &preds)?;
        writeln!(w)?;
    } else {
        let mut c = csv::Writer::from_writer(&mut w);
        for pr in &preds {
            c.serialize(pr)?;
        }
        c.flush()?;
    }
    w.flush()?;
    eprintln!(
        "Wrote {} predictions ({} over the next {:.1} {}s) to {}",
        preds.len(),
        model.report().model,
        horizon,
        p.unit.name(),
        out.display()
    );
    Ok(())
}
