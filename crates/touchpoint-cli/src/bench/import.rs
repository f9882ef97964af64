//! `touchpoint bench import`: 1M canonical order lines into SQLite and
//! PostgreSQL through the real import (normalising and resolving identities),
//! next to the raw bulk loaders (`sqlite3 .import`, `psql \copy`) on the same
//! file. Each import runs as a child `touchpoint import orders` process so that
//! its peak memory (VmHWM) is its own.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};

/// `bench import` arguments.
#[derive(Debug, clap::Args)]
pub struct BenchImportArgs {
    /// Order lines to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// PostgreSQL server to benchmark too (a fresh database is created on it and dropped after).
    #[arg(long, env = "TOUCHPOINT_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Keep the generated file and databases in this folder (default: a temp folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Write `lines` canonical order lines: ~3 lines per order, ~10 orders per
/// person, people known by phone, e-mail or member number, some by two.
pub fn generate(path: &Path, lines: usize, seed: u64) -> Result<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        w,
        "order_id,ordered_at,status,sku,product_name,brand,category,quantity,unit_price,unit_cost,member_no,phone,email"
    )?;
    let people = (lines / 30).max(1);
    let start = 1_704_067_200i64; // 2024-01-01T00:00:00Z
    let mut written = 0;
    let mut order = 0u64;
    while written < lines {
        order += 1;
        let p = rng.gen_range(0..people) as u64;
        let t = start + rng.gen_range(0..(2 * 365 * 86_400));
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let status = match rng.gen_range(0..100) {
            0..=3 => "refunded",
            4 => "cancelled",
            _ => "paid",
        };
        // Identifiers: phone always for two thirds, e-mail for half, member number for a third.
        let phone = if !p.is_multiple_of(3) {
            format!("13{:09}", p)
        } else {
            String::new()
        };
        let email = if p.is_multiple_of(2) || phone.is_empty() {
            format!("user{p}@example.com")
        } else {
            String::new()
        };
        let member_no = if p % 3 == 1 {
            format!("VIP{p:08}")
        } else {
            String::new()
        };
        let n = rng.gen_range(1..=5).min(lines - written);
        for _ in 0..n {
            let sku = rng.gen_range(0..500);
            let price = rng.gen_range(900..50_000);
            writeln!(
                w,
                "O{order},{ts},{status},SKU-{sku:04},Product {sku},Brand {},Category {},{},{}.{:02},{}.{:02},{member_no},{phone},{email}",
                sku % 3,
                sku % 12,
                rng.gen_range(1..4),
                price / 100,
                price % 100,
                price * 2 / 5 / 100,
                price * 2 / 5 % 100,
            )?;
        }
        written += n;
    }
    w.flush()?;
    Ok(written)
}

/// Run a child process and return (wall time, peak RSS in KiB read from /proc).
/// Its output goes to files, so a chatty child never blocks on a full pipe.
fn run_measured(cmd: &mut Command) -> Result<(Duration, u64, std::process::Output)> {
    let out_file = tempfile::tempfile()?;
    let err_file = tempfile::tempfile()?;
    let started = Instant::now();
    let mut child = cmd
        .stdout(out_file.try_clone()?)
        .stderr(err_file.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait()?;
    let elapsed = started.elapsed();
    let read = |mut f: std::fs::File| -> Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0))?;
        f.read_to_end(&mut v)?;
        Ok(v)
    };
    let out = std::process::Output {
        status,
        stdout: read(out_file)?,
        stderr: read(err_file)?,
    };
    Ok((elapsed, peak, out))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

struct Row {
    what: String,
    secs: f64,
    rows: usize,
    peak_kib: u64,
}

/// Run the benchmark.
pub fn run(args: BenchImportArgs) -> Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let file = dir.join("orders.csv");
    let t = Instant::now();
    let lines = generate(&file, args.lines, args.seed)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "generated {lines} canonical order lines ({:.0} MB) in {:.1} s: {}",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        file.display()
    );
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();

    // SQLite: raw loader, then Touchpoint.
    let raw_db = dir.join("raw.db");
    let _ = std::fs::remove_file(&raw_db);
    if have("sqlite3") {
        let script = format!(
            "PRAGMA journal_mode=WAL;\nCREATE TABLE bare (order_id TEXT, ordered_at TEXT, status TEXT, sku TEXT, product_name TEXT, brand TEXT, category TEXT, quantity TEXT, unit_price TEXT, unit_cost TEXT, member_no TEXT, phone TEXT, email TEXT);\n.mode csv\n.import --skip 1 {} bare\n",
            file.display()
        );
        let script_path = dir.join("raw.sql");
        std::fs::write(&script_path, script)?;
        let (d, peak, out) = run_measured(
            Command::new("sqlite3")
                .arg(&raw_db)
                .arg(format!(".read {}", script_path.display())),
        )?;
        if !out.status.success() {
            bail!(
                "sqlite3 .import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        rows.push(Row {
            what: "sqlite3 .import into a bare table".into(),
            secs: d.as_secs_f64(),
            rows: lines,
            peak_kib: peak,
        });
    } else {
        println!("sqlite3 not found: the raw SQLite loader is skipped (apt-get install sqlite3)");
    }
    let tp_db = dir.join("touchpoint.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", tp_db.display()));
    }
    let url = format!("sqlite://{}", tp_db.display());
    rows.push(import_row(
        "touchpoint import (SQLite)",
        &exe,
        &url,
        &file,
        lines,
    )?);

    if let Some(base) = &args.postgres {
        let db = format!("tp_bench_{}", std::process::id());
        let (prefix, _) = base
            .rsplit_once('/')
            .context("--postgres must end with /DATABASE")?;
        let url = format!("{prefix}/{db}");
        psql(base, &format!("CREATE DATABASE {db}"))?;
        let result = (|| -> Result<()> {
            if have("psql") {
                psql(&url, "CREATE TABLE bare (order_id TEXT, ordered_at TEXT, status TEXT, sku TEXT, product_name TEXT, brand TEXT, category TEXT, quantity TEXT, unit_price TEXT, unit_cost TEXT, member_no TEXT, phone TEXT, email TEXT)")?;
                let (d, peak, out) =
                    run_measured(Command::new("psql").arg(&url).arg("-c").arg(format!(
                        "\\copy bare FROM '{}' WITH (FORMAT csv, HEADER true)",
                        file.display()
                    )))?;
                if !out.status.success() {
                    bail!(
                        "psql \\copy failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                rows.push(Row {
                    what: "psql \\copy into a bare table".into(),
                    secs: d.as_secs_f64(),
                    rows: lines,
                    peak_kib: peak,
                });
            }
            rows.push(import_row(
                "touchpoint import (PostgreSQL)",
                &exe,
                &url,
                &file,
                lines,
            )?);
            Ok(())
        })();
        let _ = psql(base, &format!("DROP DATABASE IF EXISTS {db}"));
        result?;
    } else {
        println!("no --postgres URL: PostgreSQL is skipped");
    }

    println!();
    println!(
        "{:<40} {:>8} {:>12} {:>10}",
        "loader", "seconds", "rows/s", "peak MiB"
    );
    for r in &rows {
        println!(
            "{:<40} {:>8.2} {:>12.0} {:>10.0}",
            r.what,
            r.secs,
            r.rows as f64 / r.secs,
            r.peak_kib as f64 / 1024.0
        );
    }
    for (raw, ours) in [("sqlite3", "(SQLite)"), ("psql", "(PostgreSQL)")] {
        let a = rows.iter().find(|r| r.what.starts_with(raw));
        let b = rows.iter().find(|r| r.what.ends_with(ours));
        if let (Some(a), Some(b)) = (a, b) {
            println!(
                "touchpoint {ours} reaches {:.0}% of the raw loader's rows/s",
                100.0 * a.secs / b.secs
            );
        }
    }
    Ok(())
}

fn import_row(what: &str, exe: &Path, url: &str, file: &Path, lines: usize) -> Result<Row> {
    let (d, peak, out) = run_measured(
        Command::new(exe)
            .args(["--database", url, "import", "orders"])
            .arg(file)
            .args(["--format", "canonical", "--channel", "web", "-o", "json"]),
    )?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let inserted = report["lines"]["inserted"].as_u64().unwrap_or(0) as usize;
    if inserted != lines {
        bail!("{what}: {inserted} lines inserted, expected {lines}");
    }
    let id = &report["identity"];
    println!(
        "{what}: {} lines, {} members created, {} merges, {} links in {:.2} s",
        inserted,
        id["members_created"],
        id["merges"],
        id["links"],
        d.as_secs_f64()
    );
    Ok(Row {
        what: what.into(),
        secs: d.as_secs_f64(),
        rows: lines,
        peak_kib: peak,
    })
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
