//! `touchpoint bench clv`: time the CLV pipeline on synthetic data, and
//! optionally the same pipeline in Python lifetimes 0.11.3.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use touchpoint_core::clv::synth::SynthConfig;
use touchpoint_core::clv::{
    clv_monthly_many, read_transactions, summarize, BgNbd, GammaGamma, RfmData, SpendData,
    SummaryOptions, TimeUnit, TransactionFormat,
};

/// Arguments of `bench clv`.
#[derive(Debug, clap::Args)]
pub struct BenchClvArgs {
    /// Synthetic customers (about 10 transactions each with the defaults).
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also run benches/clv/lifetimes_bench.py on the same file.
    #[arg(long)]
    pub compare_lifetimes: bool,
    /// Python interpreter with lifetimes 0.11.3 and pandas 2.2 installed.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The lifetimes script (default: the one in this repository).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Keep the generated CSV at this path (default: a temporary file).
    #[arg(long, value_name = "FILE")]
    pub keep: Option<PathBuf>,
}

/// The whole command both sides run (see benches/clv/lifetimes_predict.py).
const WHOLE_ARGS: [&str; 10] = [
    "--model",
    "bgnbd",
    "--unit",
    "day",
    "--horizon",
    "365",
    "--discount-rate",
    "0.1268",
    "--out",
    "",
];

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}

/// Run a child process, returning its wall time and stdout.
fn timed(cmd: &mut std::process::Command) -> Result<(f64, Vec<u8>, Vec<u8>)> {
    let t = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((secs, out.stdout, out.stderr))
}

/// Largest relative difference per prediction column between two CSVs of
/// `customer_id,...` (rows matched by customer id; `|a-b| / max(|b|, 1e-12)`).
fn compare_predictions(
    ours: &std::path::Path,
    theirs: &std::path::Path,
) -> Result<Vec<(String, f64)>> {
    let cols = ["p_alive", "expected_purchases", "expected_spend", "clv"];
    let read = |p: &std::path::Path| -> Result<std::collections::HashMap<String, [f64; 4]>> {
        let mut r = csv::Reader::from_path(p)?;
        let h = r.headers()?.clone();
        let idx: Vec<usize> = cols
            .iter()
            .map(|c| h.iter().position(|x| x == *c).context("missing column"))
            .collect::<Result<_>>()?;
        let mut m = std::collections::HashMap::new();
        for rec in r.records() {
            let rec = rec?;
            let mut v = [0.0; 4];
            for (k, &i) in idx.iter().enumerate() {
                v[k] = rec[i].parse().unwrap_or(f64::NAN);
            }
            m.insert(rec[0].to_string(), v);
        }
        Ok(m)
    };
    let (a, b) = (read(ours)?, read(theirs)?);
    if a.len() != b.len() {
        bail!("{} customers predicted against {}", a.len(), b.len());
    }
    let mut worst = [0.0f64; 4];
    for (id, va) in &a {
        let vb = b
            .get(id)
            .with_context(|| format!("customer {id} missing"))?;
        for k in 0..4 {
            let d = (va[k] - vb[k]).abs() / vb[k].abs().max(1e-12);
            worst[k] = worst[k].max(if d.is_nan() { f64::INFINITY } else { d });
        }
    }
    Ok(cols.iter().map(|c| c.to_string()).zip(worst).collect())
}

/// Months of CLV and the monthly discount rate (lifetimes' defaults are
/// 12 months and 0.01), with days as the unit and 30 days a month, as
/// lifetimes' `customer_lifetime_value(..., freq="D")` counts them.
const MONTHS: u32 = 12;
const MONTHLY_DISCOUNT: f64 = 0.01;
const DAYS_PER_MONTH: f64 = 30.0;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Run the benchmark.
pub fn run(args: BenchClvArgs) -> Result<()> {
    if args.customers == 0 {
        bail!("--customers must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let path = args
        .keep
        .clone()
        .unwrap_or_else(|| dir.path().join("transactions.csv"));
    let cfg = SynthConfig {
        customers: args.customers,
        seed: args.seed,
        ..SynthConfig::default()
    };
    let t0 = Instant::now();
    let rows = {
        let file = std::fs::File::create(&path)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let n = cfg.write_csv(&mut w)?;
        std::io::Write::flush(&mut w)?;
        n
    };
    let gen_s = t0.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
    println!(
        "Generated {} customers, {} transactions ({:.0} MB CSV) in {:.2} s; {} threads.",
        args.customers,
        rows,
        size_mb,
        gen_s,
        rayon::current_num_threads()
    );

    let mut stages: Vec<(&str, f64)> = Vec::new();
    let t = Instant::now();
    let bytes = std::fs::read(&path)?;
    let log = read_transactions(&bytes, TransactionFormat::Csv)?;
    drop(bytes);
    stages.push(("read CSV", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let s = summarize(
        &log,
        &SummaryOptions {
            unit: TimeUnit::Day,
            calibration_end: None,
            observation_end: Some(cfg.end_date),
        },
    )?;
    stages.push(("build summaries", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let data = RfmData::from_summaries(&s.rows);
    let bg = BgNbd::params().check()?.fit(&data)?;
    stages.push(("fit BG/NBD", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let gg = GammaGamma::params()
        .check()?
        .fit(&SpendData::from_summaries(&s.rows))?;
    stages.push(("fit Gamma-Gamma", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let x: Vec<f64> = s.rows.par_iter().map(|r| r.frequency as f64).collect();
    let tx: Vec<f64> = s.rows.par_iter().map(|r| r.recency).collect();
    let tt: Vec<f64> = s.rows.par_iter().map(|r| r.t).collect();
    let spend: Vec<f64> = s
        .rows
        .par_iter()
        .map(|r| gg.expected_spend(r.frequency as f64, r.monetary))
        .collect();
    let clv = clv_monthly_many(
        &bg.model,
        &x,
        &tx,
        &tt,
        &spend,
        MONTHS,
        DAYS_PER_MONTH,
        MONTHLY_DISCOUNT,
    );
    stages.push(("12-month CLV", t.elapsed().as_secs_f64()));
    let total: f64 = stages.iter().map(|s| s.1).sum();
    let mean_clv = clv.iter().sum::<f64>() / clv.len() as f64;
    if clv.iter().any(|v| !v.is_finite()) {
        bail!("non-finite CLV");
    }

    println!(
        "\nBG/NBD (days): r {:.6} alpha {:.6} a {:.6} b {:.6}; {} customers in {} rows, {} iterations",
        bg.r, bg.alpha, bg.a, bg.b, bg.report.n_customers, bg.report.n_rows, bg.report.iterations
    );
    println!(
        "Gamma-Gamma: p {:.6} q {:.6} gamma {:.6}; mean 12-month CLV {:.4}",
        gg.p, gg.q, gg.gamma, mean_clv
    );
    let peak = peak_rss_mib();

    let lifetimes = if args.compare_lifetimes {
        let script = args
            .script
            .clone()
            .unwrap_or_else(|| repo_file("benches/clv/lifetimes_bench.py"));
        println!(
            "\nRunning lifetimes: {} {} ...",
            args.python,
            script.display()
        );
        let out = std::process::Command::new(&args.python)
            .arg(&script)
            .arg(&path)
            .arg(cfg.end_date.to_string())
            .output()
            .with_context(|| format!("cannot run {}", args.python))?;
        if !out.status.success() {
            bail!(
                "lifetimes benchmark failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("lifetimes script output is not JSON")?;
        Some(v)
    } else {
        None
    };

    println!(
        "\n{:<18} {:>12} {:>14} {:>8}",
        "stage", "touchpoint s", "lifetimes s", "ratio"
    );
    let keys = ["read", "summary", "fit_bgnbd", "fit_gg", "clv"];
    let mut lt_total = 0.0;
    for (i, (name, secs)) in stages.iter().enumerate() {
        match lifetimes
            .as_ref()
            .and_then(|v| v["seconds"][keys[i]].as_f64())
        {
            Some(lt) => {
                lt_total += lt;
                println!(
                    "{:<18} {:>12.3} {:>14.3} {:>7.0}x",
                    name,
                    secs,
                    lt,
                    lt / secs
                );
            }
            None => println!("{:<18} {:>12.3}", name, secs),
        }
    }
    if lifetimes.is_some() {
        println!(
            "{:<18} {:>12.3} {:>14.3} {:>7.0}x",
            "total",
            total,
            lt_total,
            lt_total / total
        );
    } else {
        println!("{:<18} {:>12.3}", "total", total);
    }
    if let Some(p) = peak {
        println!("peak memory (VmHWM): {p:.0} MiB");
    }
    if let Some(v) = &lifetimes {
        if let Some(m) = v["peak_mib"].as_f64() {
            println!("lifetimes peak memory (ru_maxrss): {m:.0} MiB");
        }
        println!("\nParameters, relative difference |touchpoint - lifetimes| / lifetimes:");
        let ours = [
            ("r", bg.r),
            ("alpha", bg.alpha),
            ("a", bg.a),
            ("b", bg.b),
            ("p", gg.p),
            ("q", gg.q),
            ("v", gg.gamma),
        ];
        for (name, val) in ours {
            if let Some(lt) = v["params"][name].as_f64() {
                println!(
                    "  {:<6} {:>14.8} {:>14.8} {:>10.2e}",
                    name,
                    val,
                    lt,
                    ((val - lt) / lt).abs()
                );
            }
        }
        if let Some(lt) = v["mean_clv"].as_f64() {
            println!(
                "  mean CLV {:>12.6} {:>14.6} {:>10.2e}",
                mean_clv,
                lt,
                ((mean_clv - lt) / lt).abs()
            );
        }
    }

    // The whole command, as a child process on both sides.
    let ours_out = dir.path().join("touchpoint-predictions.csv");
    let mut whole: Vec<String> = WHOLE_ARGS.iter().map(|s| s.to_string()).collect();
    *whole.last_mut().expect("args") = ours_out.display().to_string();
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["clv", "predict", "--from"])
        .arg(&path)
        .args(&whole);
    println!(
        "\nWhole command: touchpoint clv predict --from FILE {}",
        WHOLE_ARGS[..9].join(" ")
    );
    cmd.arg("--timings");
    let (tp_whole, _, stderr) = timed(&mut cmd)?;
    println!("  touchpoint (whole process)        {tp_whole:>8.3} s; its stages:");
    for line in String::from_utf8_lossy(&stderr)
        .lines()
        .filter(|l| l.starts_with("  "))
    {
        println!("    {}", line.trim());
    }
    if args.compare_lifetimes {
        let theirs_out = dir.path().join("lifetimes-predictions.csv");
        let script = repo_file("benches/clv/lifetimes_predict.py");
        let (lt_whole, stdout, _) = timed(
            std::process::Command::new(&args.python)
                .arg(&script)
                .arg(&path)
                .arg(cfg.end_date.to_string())
                .arg(&theirs_out),
        )?;
        let v: serde_json::Value =
            serde_json::from_slice(&stdout).context("lifetimes script output is not JSON")?;
        let after = v["after_imports"].as_f64().unwrap_or(f64::NAN);
        let imports = v["imports"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  lifetimes (whole process)         {lt_whole:>8.3} s  ({imports:.3} s of it imports)"
        );
        println!("  lifetimes (after its imports)     {after:>8.3} s");
        if let Some(st) = v["seconds"].as_object() {
            let parts: Vec<String> = st
                .iter()
                .map(|(k, s)| format!("{k} {:.3}", s.as_f64().unwrap_or(f64::NAN)))
                .collect();
            println!("    lifetimes stages: {}", parts.join(", "));
        }
        println!(
            "  ratio: {:.1}x whole process against whole process; {:.1}x against lifetimes after its imports",
            lt_whole / tp_whole,
            after / tp_whole
        );
        println!("  predictions, largest relative difference per column (matched by customer id):");
        for (c, d) in compare_predictions(&ours_out, &theirs_out)? {
            println!("    {c:<20} {d:.2e}");
        }
    }
    Ok(())
}
