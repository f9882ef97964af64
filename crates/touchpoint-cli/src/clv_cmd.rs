//! `touchpoint clv ...`: parse arguments, call the CLV pipeline
//! (`touchpoint_core::clv::pipeline` for a file, `touchpoint_store::clv` for
//! the store), present the result.
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use touchpoint_core::clv::pipeline::{
    self, AnyModel, ClvOptions, Dataset, FitResult, ModelKind, Predictions, Tz,
};
use touchpoint_core::clv::{AnnualRate, Duration, FitReport, TimeUnit, TransactionFormat};
use touchpoint_store::clv::{FitRequest, PredictRequest};

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

impl ModelArg {
    fn kinds(self) -> Vec<ModelKind> {
        match self {
            ModelArg::Bgnbd => vec![ModelKind::BgNbd],
            ModelArg::Mbgnbd => vec![ModelKind::MbgNbd],
            ModelArg::Paretonbd => vec![ModelKind::ParetoNbd],
            ModelArg::All => ModelKind::ALL.to_vec(),
        }
    }
}

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputArg {
    /// Human-readable tables with explanations.
    Table,
    /// One JSON document.
    Json,
}

fn parse_date(v: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y%m%d"))
        .map_err(|_| format!("expected a date YYYY-MM-DD (or YYYYMMDD), got {v:?}"))
}

/// Where the transactions come from, how to summarise them, and what to
/// predict.
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
    /// Unit for recency, T, the parameters, and a plain-number --horizon.
    #[arg(long, value_enum, default_value = "week")]
    pub unit: UnitArg,
    /// Last day (inclusive) of the calibration period, YYYY-MM-DD. Later
    /// purchases form the holdout period used to check predictions.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub calibration_end: Option<NaiveDate>,
    /// Last day observed, YYYY-MM-DD (default: the last purchase's date).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub observation_end: Option<NaiveDate>,
    /// Prediction horizon: 365d, 52w, 12m, 12months, 1y (a month is
    /// 30.4375 days, a year 365.25), or a plain number of --unit
    /// [default: 52w].
    #[arg(long, value_name = "DURATION")]
    pub horizon: Option<Duration>,
    /// Annual discount rate for CLV: 0.1268 or 12.68% (a year); converted
    /// to a monthly rate (1 + rate)^(1/12) - 1 and applied month by month.
    #[arg(long, value_name = "RATE", default_value = "10%")]
    pub discount_rate: AnnualRate,
}

impl SourceArgs {
    fn options(&self) -> ClvOptions {
        ClvOptions {
            unit: self.unit.into(),
            calibration_end: self.calibration_end,
            observation_end: self.observation_end,
            horizon: self.horizon,
            discount_rate: self.discount_rate,
        }
    }

    fn file(&self) -> Option<(PathBuf, TransactionFormat)> {
        self.from.clone().map(|p| {
            (
                p,
                match self.format {
                    FileFormat::Csv => TransactionFormat::Csv,
                    FileFormat::Cdnow => TransactionFormat::Cdnow,
                },
            )
        })
    }
}

/// Arguments of `clv fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Purchase model(s) to fit.
    #[arg(long, value_enum, default_value = "all")]
    pub model: ModelArg,
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
    /// Output file; `.json` writes JSON, anything else CSV. Required with
    /// --from; optional with the store, where predictions are also stored
    /// in member_predictions.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the time of each stage to stderr.
    #[arg(long)]
    pub timings: bool,
}

fn timezone(settings: &Settings) -> Result<Tz> {
    Ok(settings.timezone)
}

/// Run a CLV command.
pub fn run(cmd: ClvCommand, database: &str, settings: &Settings) -> Result<()> {
    match cmd {
        ClvCommand::Fit(args) => fit(args, database, settings),
        ClvCommand::Predict(args) => predict(args, database, settings),
    }
}

fn fit(args: FitArgs, database: &str, settings: &Settings) -> Result<()> {
    let opts = args.source.options();
    let models = args.model.kinds();
    let out = match args.source.file() {
        Some((path, format)) => pipeline::fit(&Dataset::from_file(&path, format)?, &models, &opts)?,
        None => {
            let req = FitRequest {
                models,
                options: opts,
                timezone: timezone(settings)?,
            };
            crate::runtime()?.block_on(async {
                let store = crate::connect(database).await?;
                let r = store.clv_fit(&req).await;
                store.close().await;
                anyhow::Ok(r?)
            })?
        }
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

/// Stage timer for --timings.
struct Stages {
    on: bool,
    last: Instant,
    start: Instant,
}

impl Stages {
    fn new(on: bool) -> Self {
        let now = Instant::now();
        Self {
            on,
            last: now,
            start: now,
        }
    }
    fn mark(&mut self, what: &str) {
        if self.on {
            let now = Instant::now();
            eprintln!("  {:<24} {:>8.3} s", what, (now - self.last).as_secs_f64());
            self.last = now;
        }
    }
    fn total(&self) {
        if self.on {
            eprintln!(
                "  {:<24} {:>8.3} s",
                "total (in process)",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

fn predict(args: PredictArgs, database: &str, settings: &Settings) -> Result<()> {
    let Some(&kind) = args
        .model
        .kinds()
        .first()
        .filter(|_| args.model != ModelArg::All)
    else {
        bail!("clv predict needs one model: --model bgnbd, mbgnbd or paretonbd");
    };
    if args.source.from.is_some() && args.out.is_none() {
        bail!("--out FILE is required with --from (predictions from a file are written to a file)");
    }
    let opts = args.source.options();
    let mut st = Stages::new(args.timings);
    let (ds, preds) = match args.source.file() {
        Some((path, format)) => {
            let ds = Dataset::from_file(&path, format)?;
            st.mark("read");
            let p = pipeline::prepare(&ds, &opts)?;
            st.mark("summarise");
            let data = touchpoint_core::clv::RfmData::from_summaries(&p.summaries.rows);
            let model = kind.fit(&data)?;
            st.mark(&format!("fit {}", kind.name()));
            let gg = pipeline::fit_spend(&p.summaries)?;
            st.mark("fit Gamma-Gamma");
            let preds = pipeline::assemble(&p, &model, gg.as_ref(), &opts);
            st.mark("predict");
            (ds, preds)
        }
        None => {
            let req = PredictRequest {
                model: kind,
                options: opts,
                timezone: timezone(settings)?,
                store: true,
            };
            let o = crate::runtime()?.block_on(async {
                let store = crate::connect(database).await?;
                let r = store.clv_predict(&req).await;
                store.close().await;
                anyhow::Ok(r?)
            })?;
            st.mark("read, fit, predict, store");
            if let Some(w) = o.write {
                eprintln!(
                    "Stored {} predictions ({} over the next {:.1} {}s) in member_predictions (model {}): \
                     {} rows new or changed, {} removed",
                    o.predicted,
                    o.summary.name,
                    o.summary.horizon,
                    o.summary.unit.name(),
                    kind.key(),
                    w.upserted,
                    w.removed
                );
            }
            (o.dataset, o.predictions)
        }
    };
    if let Some(out) = &args.out {
        write_predictions(&preds, &ds, out)?;
        st.mark("write");
        eprintln!(
            "Wrote {} predictions ({} over the next {:.1} {}s) to {}",
            preds.len(),
            preds.summary.name,
            preds.summary.horizon,
            preds.summary.unit.name(),
            out.display()
        );
    }
    st.total();
    Ok(())
}

fn write_predictions(p: &Predictions, ds: &Dataset, out: &std::path::Path) -> Result<()> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let json = out
        .extension()
        .map(|e| e.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    if json {
        p.write_json(&ds.log.ids, &mut w)?;
    } else {
        p.write_csv(&ds.log.ids, &mut w)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
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

fn print_table<W: Write>(w: &mut W, o: &FitResult) -> Result<()> {
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
        o.unit.name()
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
        o.unit.name(),
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
        print_holdout(w, o)?;
    }
    Ok(())
}

fn print_holdout<W: Write>(w: &mut W, o: &FitResult) -> Result<()> {
    let h0 = &o.holdout[0];
    let names: Vec<&str> = o.models.iter().map(|m| m.report().model.as_str()).collect();
    writeln!(
        w,
        "Holdout check: purchases in the {:.1} {}s after the calibration end, predicted by each model",
        h0.length,
        o.unit.name()
    )?;
    writeln!(
        w,
        "from the calibration data against what customers actually did (predicted should track actual)."
    )?;
    writeln!(w, "\nIn total:")?;
    write!(w, "  {:>8} {:>10}", "", "actual")?;
    for n in &names {
        write!(w, " {:>11}", n)?;
    }
    writeln!(w)?;
    write!(w, "  {:>8} {:>10.0}", "total", h0.actual_total)?;
    for h in &o.holdout {
        write!(w, " {:>11.1}", h.predicted_total)?;
    }
    writeln!(w)?;
    write!(w, "  {:>8} {:>10}", "error", "")?;
    for h in &o.holdout {
        write!(
            w,
            " {:>10.1}%",
            100.0 * (h.predicted_total - h.actual_total) / h.actual_total.max(1.0)
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "\nBy purchases made during calibration (mean purchases per customer in the holdout):"
    )?;
    write!(w, "  {:>6} {:>9} {:>8}", "freq", "customers", "actual")?;
    for n in &names {
        write!(w, " {:>11}", n)?;
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
    if !h0.weekly.is_empty() {
        writeln!(
            w,
            "\nWeek by week (all customers; cumulative since the calibration end on the right):"
        )?;
        write!(w, "  {:>4} {:>8}", "week", "actual")?;
        for n in &names {
            write!(w, " {:>11}", n)?;
        }
        write!(w, "   {:>8}", "cum.act")?;
        for n in &names {
            write!(w, " {:>11}", n)?;
        }
        writeln!(w)?;
        for (k, wk) in h0.weekly.iter().enumerate() {
            write!(w, "  {:>4} {:>8.0}", wk.week, wk.actual)?;
            for h in &o.holdout {
                write!(w, " {:>11.1}", h.weekly[k].predicted)?;
            }
            write!(w, "   {:>8.0}", wk.actual_cumulative)?;
            for h in &o.holdout {
                write!(w, " {:>11.1}", h.weekly[k].predicted_cumulative)?;
            }
            writeln!(w)?;
        }
    }
    Ok(())
}
