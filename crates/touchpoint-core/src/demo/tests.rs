use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::*;
use crate::types::{Email, Money, Phone};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("touchpoint-demo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small(seed: u64) -> DemoConfig {
    DemoConfig {
        seed,
        members: 300,
        ..DemoConfig::default()
    }
}

fn file_bytes(m: &DemoManifest) -> Vec<(String, Vec<u8>)> {
    m.files
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&f.path).unwrap(),
            )
        })
        .collect()
}

fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn demo_same_seed_gives_identical_files() {
    let (a, b, c) = (
        Scratch::new("det-a"),
        Scratch::new("det-b"),
        Scratch::new("det-c"),
    );
    let ma = generate(&small(7), &a.0).unwrap();
    let mb = generate(&small(7), &b.0).unwrap();
    let mc = generate(&small(8), &c.0).unwrap();
    let (fa, fb, fc) = (file_bytes(&ma), file_bytes(&mb), file_bytes(&mc));
    assert_eq!(fa.len(), 5);
    for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between two runs with the same seed");
    }
    for ((na, ba), (_, bc)) in fa.iter().zip(&fc) {
        assert!(ba != bc, "{na} is the same for different seeds");
    }
    assert_eq!(ma.orders, mb.orders);
}

#[test]
fn demo_small_files_are_well_formed() {
    let dir = Scratch::new("small");
    let m = generate(&small(11), &dir.0).unwrap();
    assert_eq!(m.people, 300);
    let names: Vec<&str> = m.files.iter().map(|f| f.channel.as_str()).collect();
    assert_eq!(names, ["tmall", "jd", "shopify", "pos", "wechat"]);
    assert_eq!(m.orders, m.files.iter().map(|f| f.orders).sum::<usize>());
    let by_name: BTreeMap<&str, &DemoFile> =
        m.files.iter().map(|f| (f.channel.as_str(), f)).collect();

    // Tmall: GBK, not UTF-8, one row per order, Taobao header.
    let raw = std::fs::read(&by_name["tmall"].path).unwrap();
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "tmall.csv must be GBK, not UTF-8"
    );
    let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(&raw);
    assert!(!had_errors, "tmall.csv does not decode as GBK");
    let (header, rows) = read_csv(text.as_bytes());
    assert_eq!(header, data::TAOBAO_HEADER);
    assert_eq!(rows.len(), by_name["tmall"].orders);
    assert_eq!(rows.len(), by_name["tmall"].rows);
    let mut ids = BTreeSet::new();
    for r in &rows {
        let id = &r["订单编号"];
        let digits = id
            .strip_prefix("=\"")
            .and_then(|s| s.strip_suffix('"'))
            .unwrap();
        assert!((18..=19).contains(&digits.len()), "{id}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        assert!(ids.insert(digits.to_string()), "duplicate order id {id}");
        let phone = r["联系手机"].trim_start_matches('\'');
        assert_eq!(phone.len(), 11);
        Phone::parse(phone, "86").unwrap();
        assert!(Money::parse(&r["买家实际支付金额"]).is_ok());
        assert!(r["收货地址"].starts_with(|c: char| !c.is_ascii()));
        assert!(r["商家编码"].starts_with("SKU-"));
        assert!(
            chrono::NaiveDateTime::parse_from_str(&r["订单创建时间"], "%Y-%m-%d %H:%M:%S").is_ok()
        );
    }

    // Shopify: header, order-level fields on the first row only, totals add up.
    let raw = std::fs::read(&by_name["shopify"].path).unwrap();
    let (header, rows) = read_csv(&raw);
    assert_eq!(header, data::SHOPIFY_HEADER);
    assert_eq!(rows.len(), by_name["shopify"].rows);
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i];
        let mut j = i + 1;
        let mut sum = first["Lineitem quantity"].parse::<i64>().unwrap()
            * Money::parse(&first["Lineitem price"]).unwrap().minor();
        while j < rows.len() && rows[j]["Name"] == first["Name"] {
            assert!(rows[j]["Email"].is_empty() && rows[j]["Total"].is_empty());
            assert!(!rows[j]["Vendor"].is_empty());
            sum += rows[j]["Lineitem quantity"].parse::<i64>().unwrap()
                * Money::parse(&rows[j]["Lineitem price"]).unwrap().minor();
            j += 1;
        }
        Email::parse(&first["Email"]).unwrap();
        let total = Money::parse(&first["Total"]).unwrap().minor();
        let disc = Money::parse(&first["Discount Amount"]).unwrap().minor();
        assert_eq!(total, sum - disc, "order {}", first["Name"]);
        assert!(
            chrono::DateTime::parse_from_str(&first["Created at"], "%Y-%m-%d %H:%M:%S %z").is_ok()
        );
        i = j;
    }

    // Canonical CSVs: column order, RFC 3339 times, identifiers on every order.
    for ch in ["jd", "pos"] {
        let raw = std::fs::read(&by_name[ch].path).unwrap();
        let (header, rows) = read_csv(&raw);
        let pos: Vec<usize> = header
            .iter()
            .map(|h| data::CANONICAL_COLUMNS.iter().position(|c| c == h).unwrap())
            .collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]),
            "{ch} columns out of order"
        );
        assert_eq!(rows.len(), by_name[ch].rows);
        let orders: BTreeSet<&str> = rows.iter().map(|r| r["order_id"].as_str()).collect();
        assert_eq!(orders.len(), by_name[ch].orders);
        for r in &rows {
            assert_eq!(r["channel"], ch);
            let t = chrono::DateTime::parse_from_rfc3339(&r["ordered_at"]).unwrap();
            assert_eq!(t.offset().local_minus_utc(), 8 * 3600);
            OrderStatus::parse(&r["status"]).unwrap();
            Money::parse(&r["unit_price"]).unwrap();
            let ids = ["member_no", "phone", "email", "platform_user_id"]
                .iter()
                .filter(|k| r.get(**k).is_some_and(|v| !v.is_empty()))
                .count();
            assert!(ids > 0, "{ch} row without identifier: {r:?}");
            if ch == "jd" {
                assert!(r["platform_user_id"].len() > 3);
            }
            if !r["phone"].is_empty() {
                Phone::parse(&r["phone"], "86").unwrap();
            }
        }
    }

    // WeChat JSONL: unionid always, money as strings, quantity a number.
    let raw = std::fs::read_to_string(&by_name["wechat"].path).unwrap();
    let mut n = 0;
    for line in raw.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["channel"], "wechat");
        assert!(v["wechat_unionid"].as_str().unwrap().starts_with('o'));
        assert!(v["quantity"].is_i64());
        assert!(v["unit_price"].is_string());
        n += 1;
    }
    assert_eq!(n, by_name["wechat"].rows);

    // Store counter phones: each typed in for many different walk-ins.
    check_counter_phones(&m);
}

/// Each counter phone appears in pos.csv with more than 5 distinct member
/// numbers or e-mails, and is listed in E.164.
fn check_counter_phones(m: &DemoManifest) {
    let pos = m
        .files
        .iter()
        .find(|f| f.channel.as_str() == "pos")
        .unwrap();
    let (_, rows) = read_csv(&std::fs::read(&pos.path).unwrap());
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        if r["phone"].is_empty() {
            continue;
        }
        let p = Phone::parse(&r["phone"], "86")
            .unwrap()
            .as_str()
            .to_string();
        let who = if r["member_no"].is_empty() {
            r["email"].clone()
        } else {
            r["member_no"].clone()
        };
        if who.is_empty() {
            continue;
        }
        seen.entry(p).or_default().insert(who);
    }
    assert_eq!(m.shared_counter_phones.len(), 3);
    for (phone, people) in m.shared_counter_phones.iter().zip(&m.counter_phone_people) {
        assert!(phone.starts_with("+86"));
        let distinct = seen.get(phone).map_or(0, |s| s.len());
        assert!(distinct > 5, "{phone} seen with only {distinct} people");
        assert!(*people >= distinct.min(*people));
    }
    // No customer's own phone is used by more than one person.
    let shared: Vec<_> = seen
        .iter()
        .filter(|(p, s)| s.len() > 1 && !m.shared_counter_phones.contains(p))
        .collect();
    assert!(shared.is_empty(), "{shared:?}");
}

#[test]
fn demo_default_size_is_realistic() {
    let dir = Scratch::new("default");
    let t0 = std::time::Instant::now();
    let m = generate(&DemoConfig::default(), &dir.0).unwrap();
    let took = t0.elapsed();
    let per_channel: Vec<(String, usize, usize)> = m
        .files
        .iter()
        .map(|f| (f.channel.to_string(), f.orders, f.rows))
        .collect();
    eprintln!(
        "demo: {} people, {} orders, {} lines, multi-channel {} ({:.1}%), expected customers {}, \
         refunded {} partial {} cancelled {} pending {}, counter people {:?}, per channel {:?}, in {:?}",
        m.people,
        m.orders,
        m.lines,
        m.multi_channel_people,
        100.0 * m.multi_channel_people as f64 / m.people as f64,
        m.expected_customers,
        m.refunded_orders,
        m.partially_refunded_orders,
        m.cancelled_orders,
        m.pending_orders,
        m.counter_phone_people,
        per_channel,
        took
    );
    assert_eq!(m.people, 20_000);
    assert!(
        (127_500..=172_500).contains(&m.orders),
        "{} orders, want about 150,000",
        m.orders
    );
    let multi = m.multi_channel_people as f64 / m.people as f64;
    assert!(
        (0.25..=0.35).contains(&multi),
        "multi-channel share {multi}"
    );
    assert!(m.expected_customers >= m.people && m.expected_customers < m.people * 13 / 10);

    // Statuses.
    let share = |n: usize| n as f64 / m.orders as f64;
    assert!(
        (0.03..=0.05).contains(&share(m.refunded_orders)),
        "refunded {}",
        share(m.refunded_orders)
    );
    assert!(
        (0.01..=0.02).contains(&share(m.partially_refunded_orders)),
        "partial {}",
        share(m.partially_refunded_orders)
    );
    let unpaid = share(m.cancelled_orders + m.pending_orders);
    assert!((0.005..=0.015).contains(&unpaid), "unpaid {unpaid}");
    assert_eq!(
        m.orders,
        m.paid_orders
            + m.partially_refunded_orders
            + m.refunded_orders
            + m.cancelled_orders
            + m.pending_orders
    );

    // Seasonality: 11.11 and 6.18 well above the average day, Spring Festival below.
    let start = DemoConfig::default().start;
    let day = |y, mo, d| (NaiveDate::from_ymd_opt(y, mo, d).unwrap() - start).num_days() as usize;
    let avg = m.orders as f64 / m.daily_orders.len() as f64;
    let mean = |a: usize, b: usize| {
        m.daily_orders[a..=b].iter().sum::<usize>() as f64 / (b - a + 1) as f64
    };
    for y in [2024, 2025] {
        // The demo year around this 11.11: July to June.
        let year = mean(day(y, 7, 1), day(y + 1, 6, 30));
        let nov = mean(day(y, 11, 1), day(y, 11, 11));
        assert!(
            nov > 1.8 * year,
            "Nov 1-11 {y}: {nov:.0}/day vs yearly average {year:.0}"
        );
        assert!(m.daily_orders[day(y, 11, 11)] as f64 > 4.0 * year);
    }
    let june = mean(day(2025, 6, 1), day(2025, 6, 18));
    assert!(june > 1.4 * avg, "6.18: {june:.0} vs {avg:.0}");
    let cny = mean(day(2025, 1, 28), day(2025, 2, 4));
    let gifts = mean(day(2025, 1, 5), day(2025, 1, 21));
    assert!(
        cny < 0.7 * avg && gifts > cny * 2.0,
        "CNY {cny:.0}, gifts {gifts:.0}, avg {avg:.0}"
    );

    // Every channel has a decent share.
    for f in &m.files {
        assert!(
            f.orders > m.orders / 20,
            "{} has {} orders",
            f.channel,
            f.orders
        );
    }
    let tmall = std::fs::read(&m.files[0].path).unwrap();
    assert!(std::str::from_utf8(&tmall).is_err());
    assert!(!encoding_rs::GBK.decode_without_bom_handling(&tmall).1);
    for n in &m.counter_phone_people {
        assert!(*n > 10, "counter phone used by only {n} people");
    }
    check_counter_phones(&m);
}

#[test]
fn demo_rejects_bad_config() {
    let dir = Scratch::new("bad");
    let mut c = small(1);
    c.end = c.start - TimeDelta::days(1);
    assert!(generate(&c, &dir.0).is_err());
    let c = DemoConfig {
        members: 0,
        ..small(1)
    };
    assert!(generate(&c, &dir.0).is_err());
}

#[test]
fn demo_components_count_linked_groups() {
    assert_eq!(components(&[1, 2, 3]), 1);
    assert_eq!(components(&[8, 2, 8]), 2);
    assert_eq!(components(&[8, 2, 10]), 1);
    assert_eq!(components(&[8, 2, 4, 6, 14]), 1);
    assert_eq!(components(&[8, 2, 4, 6, 9]), 2);
}

#[test]
fn the_demo_program_is_valid_and_is_the_one_the_docs_show() {
    let p = crate::loyalty::Program::parse(super::LOYALTY_PROGRAM).unwrap();
    assert_eq!(p.tiers.len(), 3);
    assert!(p.starts <= super::DemoConfig::default().start);
    let docs = include_str!("../../../../docs/loyalty.md");
    assert!(
        docs.contains(&format!("```toml\n{}```", super::LOYALTY_PROGRAM)),
        "docs/loyalty.md must show crates/touchpoint-core/src/demo/loyalty_program.toml unchanged"
    );
}
