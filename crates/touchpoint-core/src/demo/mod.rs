//! Deterministic demo brand generator.
//!
//! [`generate`] invents a small brand group (a skincare, a tea and a household
//! brand), its product catalogue and about 20,000 customers who buy over two
//! years through Tmall, JD, a Shopify web shop, physical stores (POS) and a
//! WeChat mini-program, and writes each channel's order export in its real file
//! format:
//!
//! | channel   | file           | format                          |
//! |-----------|----------------|---------------------------------|
//! | `tmall`   | `tmall.csv`    | Taobao order report, GBK        |
//! | `jd`      | `jd.csv`       | canonical CSV                   |
//! | `shopify` | `shopify.csv`  | Shopify "Export orders" CSV     |
//! | `pos`     | `pos.csv`      | canonical CSV                   |
//! | `wechat`  | `wechat.jsonl` | canonical JSONL                 |
//!
//! Purchases follow a BG/NBD ("buy till you die") process per person, warped by
//! the Chinese retail calendar (11.11, 6.18, Spring Festival, 12.12, 3.8).
//! People carry overlapping identifiers across channels (the same phone on Tmall
//! and at the till, the same e-mail on the web shop and in the POS record, one
//! membership number at the till and in the mini-program), and a few store
//! counter phones are typed in for many walk-in customers, so identity
//! resolution has something real to do. The [`DemoManifest`] records the ground
//! truth.
//!
//! The same [`DemoConfig`] always produces byte-identical files (on one
//! platform: the distributions use floating-point `ln`/`exp`).
//!
//! Details of the files:
//!
//! - Rows are sorted by order time; the rows of one order are adjacent.
//! - An order's discount (a coupon such as `DOUBLE11`, a welcome coupon or the
//!   in-store member price) sits on its largest line in the canonical files
//!   (`discount` column; the other lines say `0.00`), in `Discount Amount` on
//!   Shopify, and in `天猫卡券抵扣` on Tmall, where `买家实际支付金额` =
//!   `总金额` - `天猫卡券抵扣`.
//! - `refunded` / `Refunded Amount` / `退款金额` is the order's refunded amount;
//!   a full refund equals what was paid.
//! - Tmall orders have one product (quantity 1 to 3); the order number is
//!   written unquoted as `="..."`, the mobile with a leading apostrophe.
//! - Canonical CSV files carry only the columns their channel fills, in
//!   canonical order; the JSONL file omits empty fields.

mod data;
pub mod spend;
mod write;

/// The points program the demo sets (docs/loyalty.md shows the same file).
pub const LOYALTY_PROGRAM: &str = include_str!("loyalty_program.toml");

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Weekday};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma};
use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::InputFormat;
use crate::types::{ChannelName, OrderStatus};

use data::*;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Seed of the random generator: the same seed gives byte-identical files.
    pub seed: u64,
    /// Number of people (customers) to invent; every one places at least one
    /// order. Default 20,000.
    pub members: usize,
    /// First day of the order history (Asia/Shanghai). Default 2024-07-01.
    pub start: NaiveDate,
    /// Last day of the order history, inclusive (Asia/Shanghai). Default 2026-06-30.
    pub end: NaiveDate,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 20240701,
            members: 20_000,
            start: NaiveDate::from_ymd_opt(2024, 7, 1).expect("valid date"),
            end: NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date"),
        }
    }
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoFile {
    /// The channel the file belongs to (`tmall`, `jd`, `shopify`, `pos`, `wechat`).
    pub channel: ChannelName,
    /// The format to import it with.
    pub format: InputFormat,
    /// Where it was written.
    pub path: PathBuf,
    /// Orders in the file.
    pub orders: usize,
    /// Data rows (or JSON lines) in the file, header excluded.
    pub rows: usize,
}

/// The true BG/NBD parameters the purchase process was drawn from.
///
/// Time is measured in "average days": calendar days stretched or squeezed by
/// the seasonal calendar so that a day of average traffic counts as one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbdTruth {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Rate (inverse scale, in average days) of the Gamma distribution of purchase rates.
    pub alpha: f64,
    /// First shape of the Beta distribution of dropout probabilities.
    pub a: f64,
    /// Second shape of the Beta distribution of dropout probabilities.
    pub b: f64,
}

/// The true parameters of the demo's purchase process.
pub const DEMO_BGNBD: BgNbdTruth = BgNbdTruth {
    r: 0.9,
    alpha: 9.8,
    a: 1.1,
    b: 4.0,
};

/// Ground truth about what [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoManifest {
    /// The files, in the order tmall, jd, shopify, pos, wechat.
    pub files: Vec<DemoFile>,
    /// Distinct people who placed at least one order (all invented people).
    pub people: usize,
    /// Orders over all files.
    pub orders: usize,
    /// Order lines over all files (Tmall orders have one line each).
    pub lines: usize,
    /// Products in the catalogue.
    pub products: usize,
    /// People with orders in two or more channels.
    pub multi_channel_people: usize,
    /// Store counter phones typed in for walk-in customers (E.164, `+86...`);
    /// identity resolution must treat them as shared.
    pub shared_counter_phones: Vec<String>,
    /// For each of [`shared_counter_phones`](Self::shared_counter_phones), the
    /// number of distinct people whose POS orders carry it.
    pub counter_phone_people: Vec<usize>,
    /// People whose membership number appears in the POS or WeChat files.
    pub members_seen: usize,
    /// Orders with status `paid`.
    pub paid_orders: usize,
    /// Orders with status `partially_refunded`.
    pub partially_refunded_orders: usize,
    /// Orders with status `refunded` (refunded in full).
    pub refunded_orders: usize,
    /// Orders with status `cancelled` (never paid).
    pub cancelled_orders: usize,
    /// Orders with status `pending` (placed in the last days, not paid yet).
    pub pending_orders: usize,
    /// Sum over `paid` and `partially_refunded` orders of lines minus discounts
    /// minus refunds, in fen (CNY minor units).
    pub net_revenue_fen: i64,
    /// Orders per calendar day, index 0 = `start` (all channels, by order time).
    pub daily_orders: Vec<usize>,
    /// How many customers a perfect identity resolution finds: per person, the
    /// number of groups of their orders linked by a shared identifier (phone,
    /// e-mail, member number, platform id, unionid), store counter phones
    /// excluded. Equals `people` only for people who always leave a linking
    /// identifier.
    pub expected_customers: usize,
    /// The true purchase-process parameters.
    pub bgnbd: BgNbdTruth,
}

/// Generate the demo data set into `dir` (created if missing) and return what
/// was written. Deterministic: the same `config` gives byte-identical files.
pub fn generate(config: &DemoConfig, dir: &Path) -> std::io::Result<DemoManifest> {
    if config.end < config.start {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the demo end date is before its start date",
        ));
    }
    if config.members == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the demo needs at least one person",
        ));
    }
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let calendar = Calendar::new(config.start, config.end);
    let catalogue = Catalogue::build(&mut rng);
    let (people, counters) = build_people(&mut rng, config, &calendar);
    let mut orders: Vec<Order> = people
        .par_iter()
        .enumerate()
        .map(|(i, p)| person_orders(config.seed, i, p, &calendar, &catalogue, config.end))
        .flatten_iter()
        .collect();
    orders.sort_unstable_by_key(|o| (o.t, o.person, o.seq));
    let mut manifest = summarise(&people, &orders, &counters, &calendar, &catalogue);
    manifest.files = write::write_all(config.seed, dir, &orders, &people, &catalogue, &counters)?;
    Ok(manifest)
}

// ---------------------------------------------------------------------------
// Channels

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Ch {
    Tmall = 0,
    Jd = 1,
    Shopify = 2,
    Pos = 3,
    Wechat = 4,
}

const CHANNELS: [Ch; 5] = [Ch::Tmall, Ch::Jd, Ch::Shopify, Ch::Pos, Ch::Wechat];

impl Ch {
    fn name(self) -> &'static str {
        match self {
            Ch::Tmall => "tmall",
            Ch::Jd => "jd",
            Ch::Shopify => "shopify",
            Ch::Pos => "pos",
            Ch::Wechat => "wechat",
        }
    }
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

// ---------------------------------------------------------------------------
// Calendar: seasonality as a time warp

/// Spring Festival (lunar new year's day) dates around the default range.
const SPRING_FESTIVALS: [(i32, u32, u32); 4] =
    [(2024, 2, 10), (2025, 1, 29), (2026, 2, 17), (2027, 2, 6)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    None,
    Double11,
    Mid618,
    Double12,
    /// Gift buying in the weeks before Spring Festival.
    NewYearGifts,
    /// The Spring Festival holiday itself.
    Holiday,
}

fn spring_festival_offset(date: NaiveDate) -> Option<i64> {
    SPRING_FESTIVALS
        .iter()
        .filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .map(|f| (date - f).num_days())
        .find(|k| (-30..=20).contains(k))
}

fn campaign(date: NaiveDate) -> Campaign {
    let (m, d) = (date.month(), date.day());
    if m == 11 && d <= 11 {
        return Campaign::Double11;
    }
    if m == 6 && d <= 18 {
        return Campaign::Mid618;
    }
    if m == 12 && d == 12 {
        return Campaign::Double12;
    }
    match spring_festival_offset(date) {
        Some(-24..=-2) => Campaign::NewYearGifts,
        Some(-1..=6) => Campaign::Holiday,
        _ => Campaign::None,
    }
}

/// Relative order intensity of a day (1 = ordinary weekday).
fn season(date: NaiveDate) -> f64 {
    let (m, d) = (date.month(), date.day());
    let mut w = 1.0;
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        w *= 1.08;
    }
    if m == 7 || m == 8 {
        w *= 0.9;
    }
    match (m, d) {
        (10, 20..=31) => w *= 1.25,
        (11, 1..=10) => w *= 2.5,
        (11, 11) => w *= 7.0,
        (11, 12..=14) => w *= 1.3,
        (12, 12) => w *= 2.0,
        (6, 1..=17) => w *= 1.8,
        (6, 18) => w *= 4.5,
        (3, 1..=8) => w *= 1.3,
        _ => {}
    }
    match spring_festival_offset(date) {
        Some(-24..=-8) => w *= 1.6,
        Some(-7..=-2) => w *= 1.15,
        Some(-1..=6) => w *= 0.4,
        Some(7..=13) => w *= 0.8,
        _ => {}
    }
    w
}

/// Days of the history with cumulative seasonal weights, so that a Poisson
/// process in "average days" maps to calendar days deterministically.
struct Calendar {
    days: Vec<NaiveDate>,
    /// `cum[i]` = operational time at the start of day `i`; `cum[n]` = total.
    cum: Vec<f64>,
    /// Cumulative acquisition weights (first purchases), same indexing.
    acq: Vec<f64>,
}

impl Calendar {
    fn new(start: NaiveDate, end: NaiveDate) -> Self {
        let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d <= end).collect();
        let raw: Vec<f64> = days.iter().map(|d| season(*d)).collect();
        let mean = raw.iter().sum::<f64>() / raw.len() as f64;
        let n = days.len();
        let mut cum = Vec::with_capacity(n + 1);
        let mut acq = Vec::with_capacity(n + 1);
        let (mut c, mut a) = (0.0, 0.0);
        cum.push(0.0);
        acq.push(0.0);
        for (i, w) in raw.iter().enumerate() {
            c += w / mean;
            // More people are acquired around campaigns; the brand grows slowly,
            // and many are first seen in the early months (customers of the
            // years before the history starts).
            let growth = 0.85 + 0.3 * i as f64 / n.max(1) as f64 + 2.5 * (-(i as f64) / 75.0).exp();
            a += (w / mean).powf(1.3) * growth;
            cum.push(c);
            acq.push(a);
        }
        Self { days, cum, acq }
    }
    fn total(&self) -> f64 {
        self.cum[self.days.len()]
    }
    /// Day index of operational time `u`.
    fn day_of(&self, u: f64) -> usize {
        let i = self.cum.partition_point(|c| *c <= u);
        i.saturating_sub(1).min(self.days.len() - 1)
    }
    /// Draw a first-purchase time (operational time) from the acquisition curve.
    fn draw_acquisition(&self, rng: &mut impl Rng) -> f64 {
        let n = self.days.len();
        let x = rng.gen::<f64>() * self.acq[n];
        let i = self
            .acq
            .partition_point(|c| *c <= x)
            .saturating_sub(1)
            .min(n - 1);
        self.cum[i] + rng.gen::<f64>() * (self.cum[i + 1] - self.cum[i])
    }
}

const HOURS_ONLINE: [f64; 24] = [
    3.0, 1.5, 0.8, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 4.5, 5.0, 5.0, 4.5, 4.2, 4.0, 4.0, 4.2, 4.5,
    5.5, 7.0, 8.0, 7.5, 5.5,
];
const HOURS_POS: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 3.0, 4.0, 4.0, 5.0, 5.5, 5.5, 5.0, 5.5,
    6.0, 5.0, 3.0, 0.0, 0.0,
];

fn draw_time(rng: &mut impl Rng, date: NaiveDate, ch: Ch) -> NaiveDateTime {
    let mut w = if ch == Ch::Pos {
        HOURS_POS
    } else {
        HOURS_ONLINE
    };
    let peak = matches!((date.month(), date.day()), (11, 11) | (6, 18));
    if peak && ch != Ch::Pos {
        // The midnight rush when the campaign opens, and the evening live streams.
        w[0] *= 15.0;
        w[20] *= 2.0;
    }
    let h = pick(rng, &w) as u32;
    let secs = h * 3600 + rng.gen_range(0..3600);
    date.and_hms_opt(0, 0, 0).expect("midnight") + TimeDelta::seconds(secs as i64)
}

/// Index drawn with probability proportional to `weights`.
fn pick(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Products

struct Product {
    sku: String,
    name: String,
    brand: usize,
    category: &'static str,
    price: i64,
    cost: i64,
    entry: bool,
    gift: bool,
}

struct Catalogue {
    products: Vec<Product>,
    /// Per brand: cumulative popularity weights and product indices.
    pools: Vec<(Vec<f64>, Vec<usize>)>,
    /// Per brand: entry products.
    entry: Vec<Vec<usize>>,
    /// Per brand: gift products.
    gifts: Vec<Vec<usize>>,
}

/// A price in fen between `lo` and `hi` yuan, ending in 9 (or .90 for cheap items).
fn draw_price(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
    if hi < 60 && lo < 20 {
        let cheap = [990, 1290, 1590, 1990, 2990, 3990, 4990, 5990];
        let ok: Vec<i64> = cheap
            .iter()
            .copied()
            .filter(|p| *p >= lo * 100 && *p <= hi * 100 + 90)
            .collect();
        if let Some(p) = ok.choose(rng) {
            return *p;
        }
    }
    let y = rng.gen_range(lo..=hi);
    ((y / 10) * 10 + 9).max(lo) * 100
}

impl Catalogue {
    fn build(rng: &mut ChaCha8Rng) -> Self {
        // (brand, name, category, lo, hi, entry, gift)
        let mut tpl: Vec<(usize, String, &'static str, i64, i64, bool, bool)> = Vec::new();
        let a = BRANDS[0].name;
        for act in SKIN_ACTIVES {
            for (ty, size, cat, lo, hi) in SKIN_TYPES {
                tpl.push((0, format!("{a}{act}{ty} {size}"), cat, lo, hi, false, false));
            }
        }
        for act in SKIN_ACTIVES {
            tpl.push((
                0,
                format!("{a}{act}护肤礼盒 三件套"),
                "礼盒",
                399,
                699,
                false,
                true,
            ));
            tpl.push((
                0,
                format!("{a}{act}体验装 旅行套装"),
                "体验装",
                19,
                59,
                true,
                false,
            ));
        }
        let b = BRANDS[1].name;
        for (i, (tea, cat)) in TEAS.iter().enumerate() {
            tpl.push((1, format!("{b}{tea} 罐装 100g"), cat, 89, 259, false, false));
            tpl.push((
                1,
                format!("{b}特级{tea} 罐装 50g"),
                cat,
                159,
                399,
                false,
                false,
            ));
            tpl.push((
                1,
                format!("{b}{tea} 礼盒 250g"),
                "礼盒",
                299,
                899,
                false,
                true,
            ));
            tpl.push((
                1,
                format!("{b}{tea} 袋泡茶 20包"),
                cat,
                39,
                79,
                false,
                false,
            ));
            tpl.push((
                1,
                format!("{b}{tea} 尝鲜装 3泡"),
                "尝鲜装",
                9,
                19,
                true,
                false,
            ));
            if i < 8 {
                tpl.push((1, format!("{b}{tea}冷泡茶 15包"), cat, 49, 69, false, false));
            }
            if matches!(*tea, "云南普洱熟茶" | "福鼎白毫银针" | "白牡丹") {
                tpl.push((1, format!("{b}{tea}饼茶 357g"), cat, 199, 499, false, false));
            }
        }
        for (name, lo, hi) in TEAWARE {
            tpl.push((1, format!("{b}{name}"), "茶具", lo, hi, false, false));
        }
        let c = BRANDS[2].name;
        for (item, size, cat, lo, hi, scented) in HOUSEHOLD {
            for scent in SCENTS {
                if !scented && scent == "无香" {
                    continue;
                }
                tpl.push((
                    2,
                    format!("{c}{scent}{item} {size}"),
                    cat,
                    lo,
                    hi,
                    false,
                    false,
                ));
            }
        }
        for scent in &SCENTS[..5] {
            tpl.push((
                2,
                format!("{c}{scent}香氛体验装 3件"),
                "体验装",
                9,
                19,
                true,
                false,
            ));
            tpl.push((
                2,
                format!("{c}家清囤货组合装 {scent}"),
                "组合装",
                129,
                199,
                false,
                true,
            ));
        }

        let mut products = Vec::with_capacity(tpl.len());
        let mut counters = [0usize; 3];
        for (brand, name, category, lo, hi, entry, gift) in tpl {
            counters[brand] += 1;
            let price = draw_price(rng, lo, hi);
            let cost = (price as f64 * rng.gen_range(0.25..0.60)).round() as i64;
            products.push(Product {
                sku: format!("SKU-{}-{:04}", BRANDS[brand].code, counters[brand]),
                name,
                brand,
                category,
                price,
                cost,
                entry,
                gift,
            });
        }
        let mut pools = Vec::new();
        let mut entry = Vec::new();
        let mut gifts = Vec::new();
        for brand in 0..BRANDS.len() {
            let mut idx: Vec<usize> = (0..products.len())
                .filter(|i| products[*i].brand == brand)
                .collect();
            entry.push(idx.iter().copied().filter(|i| products[*i].entry).collect());
            gifts.push(idx.iter().copied().filter(|i| products[*i].gift).collect());
            idx.shuffle(rng);
            let mut cum = Vec::with_capacity(idx.len());
            let mut total = 0.0;
            for rank in 0..idx.len() {
                total += 1.0 / (rank as f64 + 1.0).powf(0.9);
                cum.push(total);
            }
            pools.push((cum, idx));
        }
        Self {
            products,
            pools,
            entry,
            gifts,
        }
    }

    fn draw(&self, rng: &mut impl Rng, brand: usize) -> usize {
        let (cum, idx) = &self.pools[brand];
        let x = rng.gen::<f64>() * cum[cum.len() - 1];
        idx[cum.partition_point(|c| *c <= x).min(idx.len() - 1)]
    }
}

// ---------------------------------------------------------------------------
// People

struct Person {
    name: String,
    /// Pinyin given name and surname (`xiaoming`, `li`).
    given_py: String,
    surname_py: &'static str,
    female: bool,
    birthday: NaiveDate,
    province: usize,
    city: usize,
    district: &'static str,
    street: String,
    phone: String,
    email: Option<String>,
    member_no: Option<String>,
    tb_nick: String,
    jd_pin: String,
    unionid: String,
    home: Ch,
    extras: Vec<Ch>,
    store: usize,
    counter: Option<usize>,
    brand: usize,
    phone_on_shopify: bool,
    phone_on_pos: bool,
    email_on_pos: bool,
    phone_on_wechat: bool,
    accepts_marketing: bool,
    pinyin_billing: bool,
    lambda: f64,
    p: f64,
    u0: f64,
}

impl Person {
    fn region(&self) -> &'static str {
        PROVINCES[self.province].short
    }
}

/// Counter phones: (as written in pos.csv, E.164, store index).
struct Counters {
    written: Vec<String>,
    e164: Vec<String>,
    store: Vec<usize>,
}

fn digits(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn mobile(rng: &mut impl Rng) -> String {
    let p = match rng.gen_range(0..3) {
        0 => 130 + rng.gen_range(0..10),
        1 => *[150, 151, 152, 153, 155, 156, 157, 158, 159]
            .choose(rng)
            .expect("non-empty"),
        _ => 180 + rng.gen_range(0..10),
    };
    format!("{p}{}", digits(rng, 8))
}

fn unique(
    seen: &mut std::collections::HashSet<String>,
    rng: &mut impl Rng,
    mut s: String,
) -> String {
    while !seen.insert(s.clone()) {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

fn build_people(
    rng: &mut ChaCha8Rng,
    config: &DemoConfig,
    cal: &Calendar,
) -> (Vec<Person>, Counters) {
    use std::collections::HashSet;
    let mut seen: HashSet<String> = HashSet::new();
    let surname_w: Vec<f64> = (0..SURNAMES.len())
        .map(|i| 1.0 / (i as f64 + 2.0))
        .collect();
    let brand_w: Vec<f64> = BRANDS.iter().map(|b| b.weight).collect();
    let prov_w: Vec<f64> = PROVINCES.iter().map(|p| p.weight).collect();
    let store_w: Vec<f64> = STORES.iter().map(|s| s.weight).collect();
    let dom_w: Vec<f64> = EMAIL_DOMAINS.iter().map(|d| d.1).collect();
    let home_w = [0.34, 0.14, 0.12, 0.22, 0.18];
    // Extra-channel affinity by home channel (tmall, jd, shopify, pos, wechat).
    let affinity = [
        [0.0, 0.2, 0.2, 0.35, 0.25],
        [0.4, 0.0, 0.15, 0.25, 0.2],
        [0.25, 0.1, 0.0, 0.35, 0.3],
        [0.3, 0.1, 0.15, 0.0, 0.45],
        [0.3, 0.1, 0.15, 0.45, 0.0],
    ];
    let lambda_d = Gamma::new(DEMO_BGNBD.r, 1.0 / DEMO_BGNBD.alpha).expect("valid gamma");
    let p_d = Beta::new(DEMO_BGNBD.a, DEMO_BGNBD.b).expect("valid beta");

    // Counter phones first, so that no customer gets the same number.
    let mut counters = Counters {
        written: Vec::new(),
        e164: Vec::new(),
        store: Vec::new(),
    };
    for (store, prefix, n) in COUNTERS {
        let written = format!("{prefix}{}", digits(rng, n));
        let national: String = written.chars().filter(|c| c.is_ascii_digit()).collect();
        let e164 = format!("+86{}", national.trim_start_matches('0'));
        seen.insert(national);
        counters.written.push(written);
        counters.e164.push(e164);
        counters.store.push(store);
    }

    let mut member_seq: u64 = 10_000;
    let mut people = Vec::with_capacity(config.members);
    for _ in 0..config.members {
        let home = CHANNELS[pick(rng, &home_w)];
        let mut extras = Vec::new();
        if rng.gen::<f64>() < 0.33 {
            let n = if rng.gen::<f64>() < 0.75 { 1 } else { 2 };
            let mut w = affinity[home as usize];
            for _ in 0..n {
                let c = pick(rng, &w);
                w[c] = 0.0;
                extras.push(CHANNELS[c]);
            }
        }
        let has = |c: Ch| home == c || extras.contains(&c);
        let brand = pick(rng, &brand_w);
        let female = rng.gen::<f64>() < BRANDS[brand].female;
        let (sur, sur_py) = SURNAMES[pick(rng, &surname_w)];
        let given_tbl: &[(&str, &str)] = if female { &GIVEN_F } else { &GIVEN_M };
        let (g1, p1) = *given_tbl.choose(rng).expect("non-empty");
        let (given, given_py) = if rng.gen::<f64>() < 0.7 {
            let (g2, p2) = *given_tbl.choose(rng).expect("non-empty");
            (format!("{g1}{g2}"), format!("{p1}{p2}"))
        } else {
            (g1.to_string(), p1.to_string())
        };
        let name = format!("{sur}{given}");
        let full_py = format!("{sur_py}{given_py}");
        let age = match pick(rng, &[0.15, 0.40, 0.28, 0.17]) {
            0 => rng.gen_range(18..25),
            1 => rng.gen_range(25..35),
            2 => rng.gen_range(35..45),
            _ => rng.gen_range(45..61),
        };
        let birthday = NaiveDate::from_ymd_opt(2025 - age, 1, 1).expect("valid")
            + TimeDelta::days(rng.gen_range(0..365));
        let store = pick(rng, &store_w);
        let (province, city) = if has(Ch::Pos) {
            (STORES[store].province, STORES[store].city)
        } else {
            let p = pick(rng, &prov_w);
            (p, rng.gen_range(0..PROVINCES[p].cities.len()))
        };
        let district = *PROVINCES[province].cities[city]
            .2
            .choose(rng)
            .expect("non-empty");
        let street = format!(
            "{}{}号 {}{}栋{}室",
            ROADS.choose(rng).expect("non-empty"),
            rng.gen_range(1..999),
            COMPOUNDS.choose(rng).expect("non-empty"),
            rng.gen_range(1..30),
            rng.gen_range(1..33) * 100 + rng.gen_range(1..6)
        );
        let m = mobile(rng);
        let phone = unique(&mut seen, rng, m);
        let email = if has(Ch::Shopify) || rng.gen::<f64>() < 0.45 {
            let d = EMAIL_DOMAINS[pick(rng, &dom_w)].0;
            let local = if d == "qq.com" && rng.gen::<f64>() < 0.6 {
                let first = rng.gen_range(1..10);
                let len = rng.gen_range(5..10);
                format!("{first}{}", digits(rng, len))
            } else {
                match rng.gen_range(0..4) {
                    0 => format!("{full_py}{}", rng.gen_range(1975..2006)),
                    1 => format!("{given_py}.{sur_py}"),
                    2 => format!("{full_py}{}", digits(rng, 2)),
                    _ => format!("{given_py}_{sur_py}{}", rng.gen_range(1..100)),
                }
            };
            Some(unique(&mut seen, rng, format!("{local}@{d}")))
        } else {
            None
        };
        let member = (has(Ch::Pos) && rng.gen::<f64>() < 0.85)
            || (has(Ch::Wechat) && rng.gen::<f64>() < 0.55);
        let member_no = member.then(|| {
            member_seq += rng.gen_range(1..4);
            format!("VIP{member_seq:08}")
        });
        let nick = match pick(rng, &[0.40, 0.15, 0.15, 0.20, 0.10]) {
            0 => format!("tb_{full_py}{}", digits(rng, 2)),
            1 => format!("{full_py}{}", rng.gen_range(1975..2006)),
            2 => format!("tb{}", digits(rng, 9)),
            3 => {
                let g: String = given.chars().take(1).collect();
                let s = NICK_SUFFIX.choose(rng).expect("non-empty");
                if rng.gen::<bool>() {
                    format!("{g}{g}{s}")
                } else {
                    format!("小{g}{s}")
                }
            }
            _ => format!("{given_py}_{sur_py}{}", rng.gen_range(1..1000)),
        };
        let tb_nick = unique(&mut seen, rng, nick);
        let pin = if rng.gen::<f64>() < 0.7 {
            let n = rng.gen_range(6..13);
            let hex: String = (0..n)
                .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
                .collect();
            format!("jd_{hex}")
        } else {
            format!("{full_py}{}", digits(rng, 3))
        };
        let jd_pin = unique(&mut seen, rng, pin);
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let uid: String = std::iter::once('o')
            .chain((0..27).map(|_| char::from(B64[rng.gen_range(0..64)])))
            .collect();
        let unionid = unique(&mut seen, rng, uid);
        let phone_on_pos = rng.gen::<f64>() < if member { 0.9 } else { 0.75 };
        let email_on_pos = email.is_some() && rng.gen::<f64>() < 0.35;
        let lambda: f64 = lambda_d.sample(rng);
        let p: f64 = p_d.sample(rng);
        people.push(Person {
            name,
            given_py,
            surname_py: sur_py,
            female,
            birthday,
            province,
            city,
            district,
            street,
            phone,
            email,
            member_no,
            tb_nick,
            jd_pin,
            unionid,
            home,
            extras,
            store,
            counter: None,
            brand,
            phone_on_shopify: rng.gen::<f64>() < 0.35,
            phone_on_pos: phone_on_pos || (!member && !email_on_pos),
            email_on_pos,
            phone_on_wechat: rng.gen::<f64>() < 0.7,
            accepts_marketing: rng.gen::<f64>() < 0.4,
            pinyin_billing: rng.gen::<f64>() < 0.3,
            lambda,
            p,
            u0: cal.draw_acquisition(rng),
        });
    }

    // Walk-in customers at three stores whose cashier types in the counter
    // phone: people who shop in store first and leave a member number or e-mail.
    let candidates: Vec<usize> = (0..people.len())
        .filter(|i| {
            let p = &people[*i];
            p.home == Ch::Pos && (p.member_no.is_some() || p.email.is_some())
        })
        .collect();
    let want = (candidates.len() * 6 / 100)
        .max(12 * COUNTERS.len())
        .min(candidates.len());
    let mut chosen: Vec<usize> = candidates.choose_multiple(rng, want).copied().collect();
    chosen.sort_unstable();
    for (k, i) in chosen.into_iter().enumerate() {
        let c = k % COUNTERS.len();
        let p = &mut people[i];
        let store = counters.store[c];
        p.counter = Some(c);
        p.store = store;
        p.province = STORES[store].province;
        p.city = STORES[store].city;
        p.district = PROVINCES[p.province].cities[p.city].2[0];
        if p.member_no.is_none() {
            p.email_on_pos = true;
        }
    }
    (people, counters)
}

// ---------------------------------------------------------------------------
// Orders

/// Which phone an order carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhoneUse {
    None,
    Own,
    Counter(usize),
}

struct Line {
    product: usize,
    qty: i64,
    /// Discount on this line, fen.
    discount: i64,
}

struct Order {
    t: NaiveDateTime,
    person: u32,
    seq: u32,
    ch: Ch,
    paid: Option<NaiveDateTime>,
    status: OrderStatus,
    lines: Vec<Line>,
    refunded: i64,
    coupon: Option<&'static str>,
    phone: PhoneUse,
    email: bool,
    member: bool,
    /// Whether the order names a recipient (name and region).
    named: bool,
    first: bool,
}

impl Order {
    fn subtotal(&self, cat: &Catalogue) -> i64 {
        self.lines
            .iter()
            .map(|l| l.qty * cat.products[l.product].price)
            .sum()
    }
    fn discount(&self) -> i64 {
        self.lines.iter().map(|l| l.discount).sum()
    }
    fn total(&self, cat: &Catalogue) -> i64 {
        self.subtotal(cat) - self.discount()
    }
}

const MAX_ORDERS_PER_PERSON: usize = 250;

fn person_orders(
    seed: u64,
    index: usize,
    person: &Person,
    cal: &Calendar,
    cat: &Catalogue,
    end: NaiveDate,
) -> Vec<Order> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64 + 1);

    // BG/NBD in operational time: Poisson purchases at rate lambda; after each
    // repeat purchase the person drops out with probability p.
    let mut us = vec![person.u0];
    let mut u = person.u0;
    while us.len() < MAX_ORDERS_PER_PERSON {
        let e: f64 = Exp1.sample(&mut rng);
        u += e / person.lambda;
        if !u.is_finite() || u >= cal.total() {
            break;
        }
        us.push(u);
        if rng.gen::<f64>() < person.p {
            break;
        }
    }
    let days: Vec<usize> = us.iter().map(|u| cal.day_of(*u)).collect();

    // Channels: the first purchase at home, later ones mostly at home.
    let mut chs: Vec<Ch> = Vec::with_capacity(days.len());
    for (k, d) in days.iter().enumerate() {
        if k == 0 || person.extras.is_empty() {
            chs.push(person.home);
            continue;
        }
        let camp = campaign(cal.days[*d]);
        let mut w = [0.0; 5];
        w[person.home as usize] = 0.6;
        for e in &person.extras {
            w[*e as usize] = 0.4 / person.extras.len() as f64;
        }
        if matches!(camp, Campaign::Double11 | Campaign::Mid618) {
            w[Ch::Tmall as usize] *= 2.5;
            w[Ch::Jd as usize] *= 2.5;
        }
        if camp == Campaign::Holiday {
            w[Ch::Pos as usize] *= 0.5;
        }
        chs.push(CHANNELS[pick(&mut rng, &w)]);
    }
    if chs.len() >= 2 && !person.extras.is_empty() && chs.iter().all(|c| *c == person.home) {
        let k = rng.gen_range(1..chs.len());
        chs[k] = person.extras[0];
    }
    let mut events: Vec<(NaiveDateTime, Ch)> = days
        .iter()
        .zip(&chs)
        .map(|(d, c)| (draw_time(&mut rng, cal.days[*d], *c), *c))
        .collect();
    events.sort_by_key(|e| e.0);

    let last_day = end;
    let mut orders = Vec::with_capacity(events.len());
    for (k, (t, ch)) in events.into_iter().enumerate() {
        let date = t.date();
        let camp = campaign(date);
        let first = k == 0;
        // Basket.
        let nlines = if ch == Ch::Tmall {
            1
        } else {
            1 + pick(&mut rng, &[0.55, 0.25, 0.13, 0.07])
        };
        let mut lines: Vec<Line> = Vec::with_capacity(nlines);
        for j in 0..nlines {
            let brand = if rng.gen::<f64>() < 0.7 {
                person.brand
            } else {
                pick(&mut rng, &[0.45, 0.30, 0.25])
            };
            let mut product = None;
            for _ in 0..6 {
                let cand = if j == 0 && first && rng.gen::<f64>() < 0.5 {
                    *cat.entry[person.brand]
                        .choose(&mut rng)
                        .expect("entry items")
                } else if camp == Campaign::NewYearGifts && rng.gen::<f64>() < 0.35 {
                    *cat.gifts[brand].choose(&mut rng).expect("gift items")
                } else if !first && rng.gen::<f64>() < 0.04 {
                    *cat.entry[brand].choose(&mut rng).expect("entry items")
                } else {
                    cat.draw(&mut rng, brand)
                };
                if lines.iter().all(|l| l.product != cand) {
                    product = Some(cand);
                    break;
                }
            }
            let Some(product) = product else { continue };
            let qty = if cat.products[product].entry {
                if rng.gen::<f64>() < 0.9 {
                    1
                } else {
                    2
                }
            } else {
                1 + pick(&mut rng, &[0.75, 0.18, 0.07]) as i64
            };
            lines.push(Line {
                product,
                qty,
                discount: 0,
            });
        }
        // Largest line first: an order-level discount sits on it.
        lines.sort_by_key(|l| std::cmp::Reverse(l.qty * cat.products[l.product].price));
        let subtotal: i64 = lines
            .iter()
            .map(|l| l.qty * cat.products[l.product].price)
            .sum();
        let biggest = lines[0].qty * cat.products[lines[0].product].price;

        // Discounts: campaign coupons, a welcome coupon, member prices in store.
        let coupon_p = match camp {
            Campaign::Double11 | Campaign::Mid618 => 0.6,
            Campaign::Double12 | Campaign::NewYearGifts => 0.35,
            _ => 0.12,
        };
        let mut discount = 0;
        let mut coupon = None;
        if rng.gen::<f64>() < coupon_p {
            let tiers = [
                (99_900, 15_000),
                (49_900, 8_000),
                (29_900, 4_000),
                (19_900, 2_000),
            ];
            if let Some((_, off)) = tiers.iter().find(|(min, _)| subtotal >= *min) {
                discount = *off;
                coupon = Some(match camp {
                    Campaign::Double11 => "DOUBLE11",
                    Campaign::Mid618 => "SALE618",
                    Campaign::Double12 => "DOUBLE12",
                    Campaign::NewYearGifts => "CNYGIFT",
                    _ => "SAVE20",
                });
            }
        }
        if discount == 0 && first && ch != Ch::Pos && subtotal >= 10_000 && rng.gen::<f64>() < 0.3 {
            discount = 1_000;
            coupon = Some("WELCOME10");
        }
        if discount == 0 && ch == Ch::Pos && person.member_no.is_some() && rng.gen::<f64>() < 0.3 {
            discount = (subtotal as f64 * 0.05).round() as i64;
            coupon = Some("MEMBER95");
        }
        discount = discount.min(biggest * 3 / 10).min(subtotal * 3 / 10);
        if discount == 0 {
            coupon = None;
        }
        lines[0].discount = discount;
        let total = subtotal - discount;

        // Status and refunds.
        let r = rng.gen::<f64>();
        let (status, refunded) = if r < 0.010 {
            if ch != Ch::Pos && (last_day - date).num_days() < 3 {
                (OrderStatus::Pending, 0)
            } else {
                (OrderStatus::Cancelled, 0)
            }
        } else if r < 0.050 {
            (OrderStatus::Refunded, total)
        } else if r < 0.065 {
            let part = if lines.len() > 1 {
                let l = &lines[lines.len() - 1];
                l.qty * cat.products[l.product].price - l.discount
            } else if lines[0].qty > 1 {
                cat.products[lines[0].product].price
            } else {
                // Price protection: part of the price back.
                ((total as f64 * rng.gen_range(0.1..0.3)) / 100.0).round() as i64 * 100
            };
            let part = part.clamp(1, (total - 1).max(1));
            if part < total {
                (OrderStatus::PartiallyRefunded, part)
            } else {
                (OrderStatus::Paid, 0)
            }
        } else {
            (OrderStatus::Paid, 0)
        };
        let paid = match status {
            OrderStatus::Pending | OrderStatus::Cancelled => None,
            _ => {
                let delay = if ch == Ch::Pos {
                    rng.gen_range(0..30)
                } else {
                    let e: f64 = Exp1.sample(&mut rng);
                    3 + (e * 60.0).min(3000.0) as i64
                };
                Some(t + TimeDelta::seconds(delay))
            }
        };

        // Identifiers on the order.
        let (phone, email, member, named) = match ch {
            Ch::Tmall => (PhoneUse::Own, false, false, true),
            Ch::Jd => (
                if rng.gen::<f64>() < 0.6 {
                    PhoneUse::Own
                } else {
                    PhoneUse::None
                },
                false,
                false,
                true,
            ),
            Ch::Shopify => (
                if person.phone_on_shopify {
                    PhoneUse::Own
                } else {
                    PhoneUse::None
                },
                true,
                false,
                true,
            ),
            Ch::Pos => {
                let member = person.member_no.is_some();
                // A walk-in who gives neither phone nor member number gives an e-mail.
                let email = person.email_on_pos
                    && (rng.gen::<f64>() < 0.8 || (person.counter.is_some() && !member));
                let phone = if let Some(c) = person.counter {
                    PhoneUse::Counter(c)
                } else if person.phone_on_pos && rng.gen::<f64>() < 0.95 {
                    PhoneUse::Own
                } else {
                    PhoneUse::None
                };
                let phone = if phone == PhoneUse::None && !member && !email {
                    PhoneUse::Own
                } else {
                    phone
                };
                (phone, email, member, member)
            }
            Ch::Wechat => (
                if person.phone_on_wechat && rng.gen::<f64>() < 0.9 {
                    PhoneUse::Own
                } else {
                    PhoneUse::None
                },
                false,
                person.member_no.is_some(),
                rng.gen::<f64>() < 0.7,
            ),
        };
        orders.push(Order {
            t,
            person: index as u32,
            seq: k as u32,
            ch,
            paid,
            status,
            lines,
            refunded,
            coupon,
            phone,
            email,
            member,
            named,
            first,
        });
    }
    orders
}

/// Identifier kinds an order carries (bit mask), store counter phones excluded.
fn identifier_mask(o: &Order) -> u8 {
    let mut m = 0u8;
    if o.phone == PhoneUse::Own {
        m |= 1;
    }
    if o.email {
        m |= 2;
    }
    if o.member {
        m |= 4;
    }
    match o.ch {
        Ch::Tmall => m |= 8,
        Ch::Jd => m |= 16,
        Ch::Wechat => m |= 32,
        _ => {}
    }
    m
}

/// Number of groups of orders linked by shared identifier kinds.
fn components(masks: &[u8]) -> usize {
    let mut groups: Vec<u8> = Vec::new();
    for &m in masks {
        let mut merged = m;
        groups.retain(|g| {
            if g & merged != 0 {
                merged |= g;
                false
            } else {
                true
            }
        });
        // A merged group may now touch groups it did not before.
        loop {
            let before = groups.len();
            groups.retain(|g| {
                if g & merged != 0 {
                    merged |= g;
                    false
                } else {
                    true
                }
            });
            if groups.len() == before {
                break;
            }
        }
        groups.push(merged);
    }
    groups.len()
}

fn summarise(
    people: &[Person],
    orders: &[Order],
    counters: &Counters,
    cal: &Calendar,
    cat: &Catalogue,
) -> DemoManifest {
    let n = people.len();
    let mut chan_bits = vec![0u8; n];
    let mut masks: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut member_seen = vec![false; n];
    let mut counter_people: Vec<Vec<u32>> = vec![Vec::new(); counters.e164.len()];
    let mut daily = vec![0usize; cal.days.len()];
    let mut m = DemoManifest {
        files: Vec::new(),
        people: 0,
        orders: orders.len(),
        lines: 0,
        products: cat.products.len(),
        multi_channel_people: 0,
        shared_counter_phones: counters.e164.clone(),
        counter_phone_people: Vec::new(),
        members_seen: 0,
        paid_orders: 0,
        partially_refunded_orders: 0,
        refunded_orders: 0,
        cancelled_orders: 0,
        pending_orders: 0,
        net_revenue_fen: 0,
        daily_orders: Vec::new(),
        expected_customers: 0,
        bgnbd: DEMO_BGNBD,
    };
    let start = cal.days[0];
    for o in orders {
        let p = o.person as usize;
        chan_bits[p] |= o.ch.bit();
        masks[p].push(identifier_mask(o));
        member_seen[p] |= o.member;
        if let PhoneUse::Counter(c) = o.phone {
            counter_people[c].push(o.person);
        }
        daily[(o.t.date() - start).num_days() as usize] += 1;
        m.lines += o.lines.len();
        match o.status {
            OrderStatus::Paid => m.paid_orders += 1,
            OrderStatus::PartiallyRefunded => m.partially_refunded_orders += 1,
            OrderStatus::Refunded => m.refunded_orders += 1,
            OrderStatus::Cancelled => m.cancelled_orders += 1,
            OrderStatus::Pending => m.pending_orders += 1,
        }
        if o.status.is_purchase() {
            m.net_revenue_fen += o.total(cat) - o.refunded;
        }
    }
    m.people = chan_bits.iter().filter(|b| **b != 0).count();
    m.multi_channel_people = chan_bits.iter().filter(|b| b.count_ones() >= 2).count();
    m.members_seen = member_seen.iter().filter(|b| **b).count();
    m.expected_customers = masks
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| components(v))
        .sum();
    m.counter_phone_people = counter_people
        .into_iter()
        .map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v.len()
        })
        .collect();
    m.daily_orders = daily;
    m
}

#[cfg(test)]
mod tests;
