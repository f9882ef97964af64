//! Writers of the demo channel files, each in its real format.

use std::collections::HashMap;
use std::path::Path;

use chrono::{NaiveDateTime, TimeDelta, TimeZone};
use chrono_tz::Asia::Shanghai;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::data::*;
use super::{Catalogue, Ch, Counters, DemoFile, Order, Person, PhoneUse};
use crate::ingest::InputFormat;
use crate::types::{ChannelName, Money, OrderStatus};

/// Write the five channel files into `dir`.
pub(super) fn write_all(
    seed: u64,
    dir: &Path,
    orders: &[Order],
    people: &[Person],
    cat: &Catalogue,
    counters: &Counters,
) -> std::io::Result<Vec<DemoFile>> {
    let ctx = Ctx {
        people,
        cat,
        counters,
        end: orders.iter().map(|o| o.t).max(),
    };
    let mut files = Vec::new();
    for ch in super::CHANNELS {
        // A random stream of its own per file, for ids and cosmetic fields.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::MAX - ch as u64);
        let mine = orders.iter().filter(|o| o.ch == ch);
        let (name, format, bytes, n_orders, rows) = match ch {
            Ch::Tmall => {
                let (text, n, rows) = taobao(&ctx, &mut rng, mine);
                let (bytes, _, had_errors) = encoding_rs::GBK.encode(&text);
                if had_errors {
                    return Err(std::io::Error::other(
                        "demo Tmall text has characters GBK cannot encode",
                    ));
                }
                (
                    "tmall.csv",
                    InputFormat::Taobao,
                    bytes.into_owned(),
                    n,
                    rows,
                )
            }
            Ch::Shopify => {
                let (text, n, rows) = shopify(&ctx, &mut rng, mine);
                (
                    "shopify.csv",
                    InputFormat::Shopify,
                    text.into_bytes(),
                    n,
                    rows,
                )
            }
            Ch::Jd => {
                let (text, n, rows) = canonical(&ctx, &mut rng, ch, mine, &JD_COLUMNS, false);
                ("jd.csv", InputFormat::Canonical, text.into_bytes(), n, rows)
            }
            Ch::Pos => {
                let (text, n, rows) = canonical(&ctx, &mut rng, ch, mine, &POS_COLUMNS, false);
                (
                    "pos.csv",
                    InputFormat::Canonical,
                    text.into_bytes(),
                    n,
                    rows,
                )
            }
            Ch::Wechat => {
                let all: Vec<&str> = CANONICAL_COLUMNS.to_vec();
                let (text, n, rows) = canonical(&ctx, &mut rng, ch, mine, &all, true);
                (
                    "wechat.jsonl",
                    InputFormat::Canonical,
                    text.into_bytes(),
                    n,
                    rows,
                )
            }
        };
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        files.push(DemoFile {
            channel: ChannelName::parse(ch.name()).expect("valid channel name"),
            format,
            path,
            orders: n_orders,
            rows,
        });
    }
    Ok(files)
}

struct Ctx<'a> {
    people: &'a [Person],
    cat: &'a Catalogue,
    counters: &'a Counters,
    end: Option<NaiveDateTime>,
}

const JD_COLUMNS: [&str; 19] = [
    "channel",
    "order_id",
    "ordered_at",
    "paid_at",
    "status",
    "currency",
    "sku",
    "product_name",
    "brand",
    "category",
    "quantity",
    "unit_price",
    "unit_cost",
    "discount",
    "refunded",
    "phone",
    "platform_user_id",
    "name",
    "region",
];

const POS_COLUMNS: [&str; 22] = [
    "channel",
    "order_id",
    "ordered_at",
    "paid_at",
    "status",
    "currency",
    "sku",
    "product_name",
    "brand",
    "category",
    "quantity",
    "unit_price",
    "unit_cost",
    "discount",
    "refunded",
    "member_no",
    "phone",
    "email",
    "name",
    "gender",
    "birthday",
    "region",
];

fn money(fen: i64) -> String {
    Money::from_minor(fen).to_decimal_string()
}

fn rfc3339(t: NaiveDateTime) -> String {
    let z = Shanghai
        .from_local_datetime(&t)
        .earliest()
        .unwrap_or_else(|| Shanghai.from_utc_datetime(&(t - TimeDelta::hours(8))));
    z.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn shopify_time(t: NaiveDateTime) -> String {
    let z = Shanghai
        .from_local_datetime(&t)
        .earliest()
        .unwrap_or_else(|| Shanghai.from_utc_datetime(&(t - TimeDelta::hours(8))));
    z.format("%Y-%m-%d %H:%M:%S %z").to_string()
}

fn local_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn push_row<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f.as_ref());
    }
    out.push('\n');
}

fn digits(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// A row addressed by column name.
struct Row {
    index: HashMap<&'static str, usize>,
    vals: Vec<String>,
}

impl Row {
    fn new(header: &[&'static str]) -> Self {
        Self {
            index: header.iter().enumerate().map(|(i, h)| (*h, i)).collect(),
            vals: vec![String::new(); header.len()],
        }
    }
    fn clear(&mut self) {
        for v in &mut self.vals {
            v.clear();
        }
    }
    fn set(&mut self, col: &str, v: impl Into<String>) {
        let i = *self
            .index
            .get(col)
            .unwrap_or_else(|| panic!("unknown column {col}"));
        self.vals[i] = v.into();
    }
}

fn phone_written(ctx: &Ctx, o: &Order) -> Option<String> {
    match o.phone {
        PhoneUse::None => None,
        PhoneUse::Own => Some(ctx.people[o.person as usize].phone.clone()),
        PhoneUse::Counter(c) => Some(ctx.counters.written[c].clone()),
    }
}

fn address(p: &Person) -> String {
    let prov = &PROVINCES[p.province];
    let city = prov.cities[p.city].0;
    format!(
        "{} {} {} {}({}{:03})",
        prov.full,
        city,
        p.district,
        p.street,
        prov.zip,
        (p.city * 100 + p.street.len() % 37) % 1000
    )
}

// ---------------------------------------------------------------------------
// Canonical CSV / JSONL

fn canonical<'a>(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    ch: Ch,
    orders: impl Iterator<Item = &'a Order>,
    columns: &[&str],
    jsonl: bool,
) -> (String, usize, usize) {
    let mut out = String::with_capacity(1 << 20);
    if !jsonl {
        push_row(&mut out, columns);
    }
    let col_idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            CANONICAL_COLUMNS
                .iter()
                .position(|x| x == c)
                .expect("canonical column")
        })
        .collect();
    let mut per_day: HashMap<(usize, chrono::NaiveDate), u32> = HashMap::new();
    let (mut n, mut rows, mut seq) = (0usize, 0usize, 0u64);
    for o in orders {
        let p = &ctx.people[o.person as usize];
        seq += 1;
        let order_id = match ch {
            Ch::Jd => format!("{}", 280_000_000_000u64 + seq * 10 + rng.gen_range(0..10)),
            Ch::Pos => {
                let k = per_day.entry((p.store, o.t.date())).or_insert(0);
                *k += 1;
                format!("{}-{}-{:04}", STORES[p.store].code, o.t.format("%Y%m%d"), k)
            }
            _ => format!("WX{}{:04}", o.t.format("%Y%m%d%H%M%S"), seq % 10_000),
        };
        let mut f: [String; 24] = Default::default();
        f[0] = ch.name().to_string();
        f[1] = order_id;
        f[2] = rfc3339(o.t);
        f[3] = o.paid.map(rfc3339).unwrap_or_default();
        f[4] = o.status.as_str().to_string();
        f[5] = "CNY".to_string();
        f[14] = money(o.refunded);
        if o.member {
            f[15] = p.member_no.clone().unwrap_or_default();
        }
        f[16] = phone_written(ctx, o).unwrap_or_default();
        if o.email {
            f[17] = p.email.clone().unwrap_or_default();
        }
        match ch {
            Ch::Jd => f[18] = p.jd_pin.clone(),
            Ch::Wechat => f[19] = p.unionid.clone(),
            _ => {}
        }
        if o.named {
            f[20] = p.name.clone();
            f[23] = p.region().to_string();
        }
        if ch == Ch::Pos && o.member {
            f[21] = if p.female { "f" } else { "m" }.to_string();
            f[22] = p.birthday.format("%Y-%m-%d").to_string();
        }
        for l in &o.lines {
            let prod = &ctx.cat.products[l.product];
            f[6] = prod.sku.clone();
            f[7] = prod.name.clone();
            f[8] = BRANDS[prod.brand].name.to_string();
            f[9] = prod.category.to_string();
            f[10] = l.qty.to_string();
            f[11] = money(prod.price);
            f[12] = money(prod.cost);
            f[13] = money(l.discount);
            if jsonl {
                out.push('{');
                let mut first = true;
                for &i in &col_idx {
                    if f[i].is_empty() {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push('"');
                    out.push_str(CANONICAL_COLUMNS[i]);
                    out.push_str("\":");
                    if i == 10 {
                        out.push_str(&f[i]);
                    } else {
                        out.push_str(&serde_json::to_string(&f[i]).expect("string to JSON"));
                    }
                }
                out.push_str("}\n");
            } else {
                let row: Vec<&str> = col_idx.iter().map(|i| f[*i].as_str()).collect();
                push_row(&mut out, &row);
            }
            rows += 1;
        }
        n += 1;
    }
    (out, n, rows)
}

// ---------------------------------------------------------------------------
// Shopify

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn shopify<'a>(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    orders: impl Iterator<Item = &'a Order>,
) -> (String, usize, usize) {
    let mut out = String::with_capacity(1 << 20);
    push_row(&mut out, &SHOPIFY_HEADER);
    let mut row = Row::new(&SHOPIFY_HEADER);
    let (mut n, mut rows) = (0usize, 0usize);
    let mut id: u64 = 5_612_000_000_000;
    for o in orders {
        let p = &ctx.people[o.person as usize];
        let name = format!("#{}", 1001 + n);
        id += 1000 + rng.gen_range(0..1000);
        let total = o.total(ctx.cat);
        for (j, l) in o.lines.iter().enumerate() {
            let prod = &ctx.cat.products[l.product];
            row.clear();
            row.set("Name", name.clone());
            row.set("Lineitem quantity", l.qty.to_string());
            row.set("Lineitem name", prod.name.clone());
            row.set("Lineitem price", money(prod.price));
            row.set("Lineitem sku", prod.sku.clone());
            row.set("Lineitem requires shipping", "true");
            row.set("Lineitem taxable", "false");
            let fulfilled = matches!(o.status, OrderStatus::Paid | OrderStatus::PartiallyRefunded)
                || (o.status == OrderStatus::Refunded && o.person % 2 == 0);
            row.set(
                "Lineitem fulfillment status",
                if fulfilled { "fulfilled" } else { "pending" },
            );
            row.set("Vendor", BRANDS[prod.brand].name);
            row.set("Lineitem discount", "0.00");
            if j == 0 {
                let email = p.email.clone().unwrap_or_default();
                row.set("Email", email);
                let fin = match o.status {
                    OrderStatus::Paid => "paid",
                    OrderStatus::PartiallyRefunded => "partially_refunded",
                    OrderStatus::Refunded => "refunded",
                    OrderStatus::Cancelled => "voided",
                    OrderStatus::Pending => "pending",
                };
                row.set("Financial Status", fin);
                if let Some(paid) = o.paid {
                    row.set("Paid at", shopify_time(paid));
                }
                if fulfilled {
                    row.set("Fulfillment Status", "fulfilled");
                    let at = o.paid.unwrap_or(o.t)
                        + TimeDelta::seconds(rng.gen_range(6 * 3600..48 * 3600));
                    row.set("Fulfilled at", shopify_time(at));
                } else {
                    row.set("Fulfillment Status", "unfulfilled");
                }
                row.set(
                    "Accepts Marketing",
                    if p.accepts_marketing { "yes" } else { "no" },
                );
                row.set("Currency", "CNY");
                row.set("Subtotal", money(total));
                row.set("Shipping", "0.00");
                row.set("Taxes", "0.00");
                row.set("Total", money(total));
                if let Some(code) = o.coupon {
                    row.set("Discount Code", code);
                }
                row.set("Discount Amount", money(o.discount()));
                row.set("Shipping Method", "顺丰标快");
                row.set("Created at", shopify_time(o.t));
                let bill_name = if p.pinyin_billing {
                    format!("{} {}", capitalise(&p.given_py), capitalise(p.surname_py))
                } else {
                    p.name.clone()
                };
                let prov = &PROVINCES[p.province];
                let (city, city_py, _) = prov.cities[p.city];
                let street = format!("{}{}", p.district, p.street);
                let zip = format!("{}{:03}", prov.zip, (p.city * 100 + p.street.len()) % 1000);
                let phone = p.phone_on_shopify.then(|| format!("+86{}", p.phone));
                for side in ["Billing", "Shipping"] {
                    row.set(&format!("{side} Name"), bill_name.clone());
                    row.set(&format!("{side} Street"), street.clone());
                    row.set(&format!("{side} Address1"), street.clone());
                    row.set(
                        &format!("{side} City"),
                        if p.pinyin_billing { city_py } else { city },
                    );
                    row.set(&format!("{side} Zip"), zip.clone());
                    row.set(&format!("{side} Province"), prov.code);
                    row.set(&format!("{side} Country"), "CN");
                    if let Some(ph) = &phone {
                        row.set(&format!("{side} Phone"), ph.clone());
                    }
                    row.set(&format!("{side} Province Name"), prov.pinyin);
                }
                if let Some(ph) = &phone {
                    row.set("Phone", ph.clone());
                }
                if o.status == OrderStatus::Cancelled {
                    row.set(
                        "Cancelled at",
                        shopify_time(o.t + TimeDelta::seconds(rng.gen_range(600..7200))),
                    );
                }
                let method = *["Alipay", "WeChat Pay", "Shopify Payments"]
                    .choose(rng)
                    .expect("non-empty");
                row.set("Payment Method", method);
                let reference = format!("c{}.1", digits(rng, 11));
                if o.paid.is_some() {
                    row.set("Payment Reference", reference.clone());
                    row.set("Payment ID", format!("r{}", digits(rng, 10)));
                    row.set("Payment References", reference);
                }
                row.set("Refunded Amount", money(o.refunded));
                row.set(
                    "Outstanding Balance",
                    money(if o.status == OrderStatus::Pending {
                        total
                    } else {
                        0
                    }),
                );
                row.set("Id", id.to_string());
                let mut tags = Vec::new();
                if o.first {
                    tags.push("new-customer");
                }
                if p.member_no.is_some() {
                    tags.push("member");
                }
                row.set("Tags", tags.join(", "));
                row.set("Risk Level", "Low");
                row.set("Source", "web");
            }
            push_row(&mut out, &row.vals);
            rows += 1;
        }
        n += 1;
    }
    (out, n, rows)
}

// ---------------------------------------------------------------------------
// Taobao / Tmall

fn taobao<'a>(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    orders: impl Iterator<Item = &'a Order>,
) -> (String, usize, usize) {
    let mut out = String::with_capacity(1 << 20);
    push_row(&mut out, &TAOBAO_HEADER);
    let mut row = Row::new(&TAOBAO_HEADER);
    let shipped_until = ctx.end.map(|e| e - TimeDelta::days(10));
    let notes = [
        "请尽快发货",
        "送人的，不要放价格单",
        "麻烦包装好一点",
        "周末再送",
    ];
    let carriers = [
        ("顺丰速运", "SF", 12),
        ("圆通速递", "YT", 13),
        ("中通快递", "7845", 10),
        ("韵达快递", "4313", 9),
    ];
    let mut n = 0usize;
    for o in orders {
        let p = &ctx.people[o.person as usize];
        let l = &o.lines[0];
        let prod = &ctx.cat.products[l.product];
        let brand = &BRANDS[prod.brand];
        n += 1;
        let mut id = format!(
            "{}{:06}{:04}",
            o.t.format("%Y%m%d"),
            n % 1_000_000,
            rng.gen_range(0..10_000)
        );
        if rng.gen::<bool>() {
            id.insert(0, char::from(b'1' + rng.gen_range(0..4u8)));
        }
        row.clear();
        let subtotal = o.subtotal(ctx.cat);
        let total = o.total(ctx.cat);
        row.set("买家会员名", p.tb_nick.clone());
        let alipay = match &p.email {
            Some(e) if p.phone.ends_with(['0', '2', '4', '6', '8']) => {
                let (local, domain) = e.split_once('@').unwrap_or((e, ""));
                format!("{}***@{}", &local[..local.len().min(2)], domain)
            }
            _ => format!("{}****{}", &p.phone[..3], &p.phone[7..]),
        };
        row.set("买家支付宝账号", alipay);
        if let Some(paid) = o.paid {
            row.set(
                "支付单号",
                format!("{}22001{}", paid.format("%Y%m%d"), digits(rng, 15)),
            );
            row.set("支付详情", format!("支付宝:{}", money(total)));
            row.set("订单付款时间", local_time(paid));
        }
        row.set("买家应付货款", money(subtotal));
        row.set("买家应付邮费", "0.00");
        row.set("买家支付积分", "0");
        row.set("总金额", money(subtotal));
        row.set("返点积分", "0");
        row.set("买家实际支付金额", money(total));
        row.set("买家实际支付积分", "0");
        let shipped_late = shipped_until.is_some_and(|s| o.t >= s);
        let (state, close) = match o.status {
            OrderStatus::Paid if shipped_late => ("卖家已发货，等待买家确认", "订单未关闭"),
            OrderStatus::Paid | OrderStatus::PartiallyRefunded => ("交易成功", "订单未关闭"),
            OrderStatus::Refunded => ("交易关闭", "退款"),
            OrderStatus::Cancelled => (
                "交易关闭",
                if o.person % 2 == 0 {
                    "买家不想买了"
                } else {
                    "超时未付款，交易自动关闭"
                },
            ),
            OrderStatus::Pending => ("等待买家付款", "订单未关闭"),
        };
        row.set("订单状态", state);
        row.set("订单关闭原因", close);
        if rng.gen::<f64>() < 0.03 {
            row.set("买家留言", *notes.choose(rng).expect("non-empty"));
        }
        row.set("收货人姓名", p.name.clone());
        row.set("收货地址", address(p));
        row.set("运送方式", "快递");
        if let Some(ph) = phone_written(ctx, o) {
            row.set("联系手机", format!("'{ph}"));
        }
        row.set("订单创建时间", local_time(o.t));
        row.set("宝贝标题", prod.name.clone());
        row.set("宝贝种类", "1");
        let shipped = matches!(o.status, OrderStatus::Paid | OrderStatus::PartiallyRefunded)
            || (o.status == OrderStatus::Refunded && o.person % 2 == 0);
        if shipped {
            let (company, prefix, nd) = *carriers.choose(rng).expect("non-empty");
            row.set("物流单号", format!("{prefix}{}", digits(rng, nd)));
            row.set("物流公司", company);
        }
        row.set("宝贝总数量", l.qty.to_string());
        row.set("店铺Id", brand.tmall_shop_id);
        row.set("店铺名称", brand.tmall_store);
        row.set("卖家服务费", "0");
        row.set("买家服务费", "0.00");
        if rng.gen::<f64>() < 0.85 {
            row.set("是否手机订单", "手机订单");
        }
        row.set("是否上传合同照片", "否");
        row.set("是否上传小票", "否");
        row.set("是否代付", "否");
        row.set("天猫卡券抵扣", money(o.discount()));
        row.set("集分宝抵扣", "0.00");
        row.set("退款金额", money(o.refunded));
        row.set("商家编码", prod.sku.clone());
        // The order number is written as an Excel formula, unquoted, as Taobao does.
        out.push_str("=\"");
        out.push_str(&id);
        out.push('"');
        for v in &row.vals[1..] {
            out.push(',');
            push_field(&mut out, v);
        }
        out.push('\n');
    }
    (out, n, n)
}
