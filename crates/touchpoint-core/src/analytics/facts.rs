//! The analytics model: one compact fact per order, and the member data set
//! of any report scope computed from it in one pass.
//!
//! The store keeps one fact per order current in every write transaction and
//! loads them as [`OrderFacts`]; [`OrderFacts::dataset`] then answers any
//! filter (channel, brand, since, a date range, an as-of day) without going
//! back to the database. The arithmetic is the report SQL's (docs/metrics.md):
//! an order's net revenue is gross less refunds; with a brand filter an order
//! counts with the share of its value on that brand's lines, each line's share
//! rounded toward zero as integer SQL does.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Dataset, DayActivity, MemberSummary, ProductData, ProductFacts};

const DAY_MS: i64 = 86_400_000;

/// An order's value on the lines of one brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandPart {
    /// Index into [`OrderFacts::brands`].
    pub brand: u32,
    /// Net revenue allocated to the brand's lines, minor units.
    pub net: i64,
    /// Discounts allocated to them.
    pub disc: i64,
    /// Cost of goods of them.
    pub cogs: i64,
}

/// An order's lines of one product (SKU), summed: what the product report
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuPart {
    /// Index into [`OrderFacts::skus`].
    pub sku: u32,
    /// Units.
    pub units: i64,
    /// Net revenue allocated to these lines (each line rounded toward zero).
    pub net: i64,
    /// Cost of goods of them.
    pub cogs: i64,
}

/// What the product report needs of a product from the catalogue (read when
/// the report runs, so a renamed product or category shows at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Product name (the SKU when unknown).
    pub name: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
}

/// One order's fact, as the store writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// The store's fact id (stable per order).
    pub fact_id: i64,
    /// The member who owns the order.
    pub member_id: i64,
    /// When it was placed, UTC milliseconds.
    pub ordered_at: i64,
    /// Index into [`OrderFacts::channels`].
    pub channel: u16,
    /// A purchase (status paid or partially refunded).
    pub purchase: bool,
    /// Net revenue (gross less refunds), minor units.
    pub net: i64,
    /// Line and order discounts.
    pub disc: i64,
    /// Cost of goods.
    pub cogs: i64,
    /// Value per brand (brands of its products; lines without a brand have none).
    pub parts: Vec<BrandPart>,
    /// Value per product, sorted by SKU name.
    #[serde(default)]
    pub lines: Vec<SkuPart>,
    /// The marketing campaign the order came from, if the import named one
    /// (index into [`OrderFacts::campaigns`]).
    #[serde(default)]
    pub campaign: Option<u32>,
}

/// Every order's fact, sorted by (member, time, channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFacts {
    /// Channel names, sorted (indices of [`Fact::channel`]).
    pub channels: Vec<String>,
    /// Brand names (indices of [`BrandPart::brand`]).
    pub brands: Vec<String>,
    /// SKUs (indices of [`SkuPart::sku`]).
    pub skus: Vec<String>,
    /// Campaign names (indices of [`Fact::campaign`]).
    pub campaigns: Vec<String>,
    /// The facts.
    pub facts: Vec<Fact>,
}

/// What a report covers, in local days (days since 1970-01-01 in the business
/// time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactFilter {
    /// Last day included; `None` is the day of the last order.
    pub as_of_day: Option<i32>,
    /// Only orders of this channel.
    pub channel: Option<String>,
    /// Only the lines of this brand.
    pub brand: Option<String>,
    /// Only orders on or after this day.
    pub since_day: Option<i32>,
    /// Only orders on or after this day (the dashboard's date range).
    pub from_day: Option<i32>,
    /// Only orders on or before this day.
    pub to_day: Option<i32>,
    /// Offset of the business time zone from UTC, milliseconds.
    pub utc_offset_ms: i64,
}

impl OrderFacts {
    /// Sort the facts into the order [`OrderFacts::dataset`] needs.
    pub fn sort(&mut self) {
        self.facts
            .sort_unstable_by_key(|f| (f.member_id, f.ordered_at, f.channel, f.fact_id));
    }

    /// Replace the facts with the same id and add new ones, keeping the order.
    /// Facts of `changes` with a `member_id` of 0 are removed.
    pub fn apply(&mut self, mut changes: Vec<Fact>) {
        if changes.is_empty() {
            return;
        }
        let mut ids: Vec<i64> = changes.iter().map(|f| f.fact_id).collect();
        ids.sort_unstable();
        self.facts
            .retain(|f| ids.binary_search(&f.fact_id).is_err());
        changes.retain(|f| f.member_id != 0);
        changes.sort_unstable_by_key(|f| (f.member_id, f.ordered_at, f.channel, f.fact_id));
        let old = std::mem::take(&mut self.facts);
        let mut out = Vec::with_capacity(old.len() + changes.len());
        let key = |f: &Fact| (f.member_id, f.ordered_at, f.channel, f.fact_id);
        let (mut a, mut b) = (old.into_iter().peekable(), changes.into_iter().peekable());
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => key(x) <= key(y),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            out.push(if take_a { a.next() } else { b.next() }.expect("peeked"));
        }
        self.facts = out;
    }

    /// Local day of the last order (any status).
    pub fn last_order_day(&self, utc_offset_ms: i64) -> Option<i32> {
        self.facts
            .iter()
            .map(|f| f.ordered_at)
            .max()
            .map(|t| (t + utc_offset_ms).div_euclid(DAY_MS) as i32)
    }

    /// The scope of a filter: its as-of day and the facts it includes
    /// (time and channel; the brand applies to values).
    fn scope(&self, f: &FactFilter) -> Scope {
        let off = f.utc_offset_ms;
        let last = self.last_order_day(off);
        let as_of_day = f.as_of_day.or(last).unwrap_or(0);
        // Like the SQL it replaces: no time bound when the as-of day covers every order.
        let end = if f.to_day.is_none() && last.is_none_or(|l| as_of_day >= l) {
            i64::MAX
        } else {
            let last_day = f.to_day.map_or(as_of_day, |t| t.min(as_of_day));
            (i64::from(last_day) + 1) * DAY_MS - off
        };
        let start = match (f.since_day, f.from_day) {
            (None, None) => i64::MIN,
            (a, b) => i64::from(a.unwrap_or(i32::MIN).max(b.unwrap_or(i32::MIN))) * DAY_MS - off,
        };
        let channel: Option<Option<u16>> = f
            .channel
            .as_ref()
            .map(|c| self.channels.iter().position(|x| x == c).map(|i| i as u16));
        Scope {
            as_of_day,
            start,
            end,
            channel,
        }
    }

    /// The member data set of the scope: what the member reports read.
    pub fn dataset(&self, f: &FactFilter) -> Dataset {
        let off = f.utc_offset_ms;
        let scope = self.scope(f);
        let as_of_day = scope.as_of_day;
        let brand: Option<Option<u32>> = f
            .brand
            .as_ref()
            .map(|b| self.brands.iter().position(|x| x == b).map(|i| i as u32));
        let in_scope = |x: &Fact| scope.includes(x);
        let mut members = Vec::new();
        let mut non_buyers = 0u64;
        let facts = &self.facts;
        let mut i = 0;
        while i < facts.len() {
            let member = facts[i].member_id;
            let mut j = i;
            while j < facts.len() && facts[j].member_id == member {
                j += 1;
            }
            let run = &facts[i..j];
            i = j;
            let mut any_order = false;
            let mut any_purchase = false;
            let mut m: Option<MemberSummary> = None;
            for x in run {
                if !in_scope(x) {
                    continue;
                }
                any_order = true;
                if !x.purchase {
                    continue;
                }
                any_purchase = true;
                let (net, disc, cogs) = match brand {
                    None => (x.net, x.disc, x.cogs),
                    Some(None) => continue,
                    Some(Some(b)) => match x.parts.iter().find(|p| p.brand == b) {
                        Some(p) => (p.net, p.disc, p.cogs),
                        None => continue,
                    },
                };
                let day = (x.ordered_at + off).div_euclid(DAY_MS) as i32;
                let s = m.get_or_insert_with(|| MemberSummary {
                    member_id: member,
                    first_at: x.ordered_at,
                    last_at: x.ordered_at,
                    first_day: day,
                    last_day: day,
                    purchase_days: 0,
                    orders: 0,
                    net_revenue: 0,
                    cogs: 0,
                    discounts: 0,
                    first_channel: x.channel,
                    activity: Vec::new(),
                });
                s.last_at = x.ordered_at;
                s.last_day = day;
                s.orders += 1;
                s.net_revenue += net;
                s.cogs += cogs;
                s.discounts += disc;
                match s
                    .activity
                    .iter_mut()
                    .rev()
                    .take_while(|a| a.day == day)
                    .find(|a| a.channel == x.channel)
                {
                    Some(a) => {
                        a.orders += 1;
                        a.net_revenue += net;
                    }
                    None => s.activity.push(DayActivity {
                        day,
                        channel: x.channel,
                        orders: 1,
                        net_revenue: net,
                    }),
                }
            }
            if let Some(mut s) = m {
                s.activity.sort_by_key(|a| (a.day, a.channel));
                let mut days = 0;
                let mut prev = None;
                for a in &s.activity {
                    if prev != Some(a.day) {
                        days += 1;
                        prev = Some(a.day);
                    }
                }
                s.purchase_days = days;
                members.push(s);
            } else if any_order && !any_purchase {
                non_buyers += 1;
            }
        }
        Dataset {
            channels: self.channels.clone(),
            members,
            members_without_purchases: non_buyers,
            as_of_day,
        }
    }
}

/// The time and channel bounds of a [`FactFilter`].
struct Scope {
    as_of_day: i32,
    start: i64,
    end: i64,
    channel: Option<Option<u16>>,
}

impl Scope {
    fn includes(&self, x: &Fact) -> bool {
        x.ordered_at < self.end
            && x.ordered_at >= self.start
            && self.channel.is_none_or(|c| c == Some(x.channel))
    }
}

/// Totals of one product or category while [`OrderFacts::product_data`] runs.
#[derive(Default, Clone)]
struct Acc {
    net: i64,
    units: i64,
    cogs: i64,
    orders: u64,
    first_orders: u64,
    first_order_repeaters: u64,
    /// Index of the largest product name seen (category rows).
    name: Option<u32>,
}

impl Acc {
    fn add(&mut self, net: i64, units: i64, cogs: i64, first: bool, repeater: bool) {
        self.net += net;
        self.units += units;
        self.cogs += cogs;
        self.orders += 1;
        if first {
            self.first_orders += 1;
            if repeater {
                self.first_order_repeaters += 1;
            }
        }
    }
}

impl OrderFacts {
    /// The per-product and per-category totals of the scope: the input of the
    /// product report, computed from the facts in one pass (the arithmetic of
    /// the SQL aggregation it replaces, `Store::product_data_sql`). A member's
    /// first purchase order is the earliest in scope (ties by channel name,
    /// then by the order's fact id); a repeater bought on a later local day in
    /// scope; with a brand filter only the lines of the brand's products count,
    /// the first order being still the first of any brand. `catalog` gives
    /// each SKU's current name, category and brand.
    pub fn product_data(
        &self,
        f: &FactFilter,
        catalog: &HashMap<String, CatalogEntry>,
    ) -> ProductData {
        let off = f.utc_offset_ms;
        let scope = self.scope(f);
        // Per SKU index: its name, category index and whether it is in scope.
        let mut cat_names: Vec<&str> = Vec::new();
        let mut cat_index: HashMap<&str, u32> = HashMap::new();
        let skus: Vec<(&str, u32, bool)> = self
            .skus
            .iter()
            .map(|sku| {
                let e = catalog.get(sku);
                let name = e.and_then(|e| e.name.as_deref()).unwrap_or(sku);
                let cat = e.and_then(|e| e.category.as_deref()).unwrap_or("");
                let ci = *cat_index.entry(cat).or_insert_with(|| {
                    cat_names.push(cat);
                    (cat_names.len() - 1) as u32
                });
                let keep = match &f.brand {
                    None => true,
                    Some(b) => e.and_then(|e| e.brand.as_deref()) == Some(b.as_str()),
                };
                (name, ci, keep)
            })
            .collect();
        let mut products = vec![Acc::default(); skus.len()];
        let mut categories = vec![Acc::default(); cat_names.len()];
        let mut order_cats: Vec<(u32, i64, i64, i64)> = Vec::new();
        let mut data = ProductData {
            as_of_day: scope.as_of_day,
            ..ProductData::default()
        };
        let day = |t: i64| (t + off).div_euclid(DAY_MS);
        let facts = &self.facts;
        let mut i = 0;
        while i < facts.len() {
            let member = facts[i].member_id;
            let mut j = i;
            while j < facts.len() && facts[j].member_id == member {
                j += 1;
            }
            let run = &facts[i..j];
            i = j;
            let mut bought = run.iter().filter(|x| x.purchase && scope.includes(x));
            let Some(first) = bought.next() else {
                continue;
            };
            // Sorted by time: the last purchase in scope is the latest.
            let last = bought.next_back().unwrap_or(first);
            let repeater = day(first.ordered_at) < day(last.ordered_at);
            data.total_first_orders += 1;
            for x in run.iter().filter(|x| x.purchase && scope.includes(x)) {
                data.total_orders += 1;
                let is_first = std::ptr::eq(x, first);
                order_cats.clear();
                for l in &x.lines {
                    let (_, ci, keep) = skus[l.sku as usize];
                    if !keep {
                        continue;
                    }
                    products[l.sku as usize].add(l.net, l.units, l.cogs, is_first, repeater);
                    match order_cats.iter_mut().find(|c| c.0 == ci) {
                        Some(c) => {
                            c.1 += l.net;
                            c.2 += l.units;
                            c.3 += l.cogs;
                        }
                        None => order_cats.push((ci, l.net, l.units, l.cogs)),
                    }
                    let acc = &mut categories[ci as usize];
                    if acc
                        .name
                        .is_none_or(|n| skus[n as usize].0 < skus[l.sku as usize].0)
                    {
                        acc.name = Some(l.sku);
                    }
                }
                for &(ci, net, units, cogs) in &order_cats {
                    categories[ci as usize].add(net, units, cogs, is_first, repeater);
                }
            }
        }
        let row = |key: &str, name: &str, category: &str, a: &Acc| ProductFacts {
            key: key.to_string(),
            name: name.to_string(),
            category: category.to_string(),
            net_revenue: a.net,
            units: a.units,
            cogs: a.cogs,
            orders: a.orders,
            first_orders: a.first_orders,
            first_order_members: a.first_orders,
            first_order_repeaters: a.first_order_repeaters,
        };
        for (k, a) in products.iter().enumerate() {
            if a.orders > 0 {
                let (name, ci, _) = skus[k];
                data.products
                    .push(row(&self.skus[k], name, cat_names[ci as usize], a));
            }
        }
        for (ci, a) in categories.iter().enumerate() {
            if a.orders > 0 {
                let name = a.name.map_or("", |n| skus[n as usize].0);
                let cat = cat_names[ci];
                data.categories.push(row(cat, name, cat, a));
            }
        }
        data.products.sort_by(|a, b| a.key.cmp(&b.key));
        data.categories.sort_by(|a, b| a.key.cmp(&b.key));
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: i64, member: i64, day: i64, channel: u16, net: i64) -> Fact {
        Fact {
            fact_id: id,
            member_id: member,
            ordered_at: day * DAY_MS + 3_600_000,
            channel,
            purchase: true,
            net,
            disc: 0,
            cogs: net / 2,
            parts: vec![BrandPart {
                brand: (id % 2) as u32,
                net: net / 2,
                disc: 0,
                cogs: 1,
            }],
            lines: vec![
                SkuPart {
                    sku: 0,
                    units: 1,
                    net: net / 2,
                    cogs: 1,
                },
                SkuPart {
                    sku: (1 + id % 2) as u32,
                    units: 2,
                    net: net - net / 2,
                    cogs: net / 2 - 1,
                },
            ],
            campaign: None,
        }
    }

    fn facts() -> OrderFacts {
        let mut f = OrderFacts {
            channels: vec!["pos".into(), "tmall".into()],
            brands: vec!["a".into(), "b".into()],
            skus: vec!["S0".into(), "S1".into(), "S2".into()],
            campaigns: Vec::new(),
            facts: vec![
                fact(1, 7, 100, 1, 1000),
                fact(2, 7, 100, 0, 500),
                fact(3, 7, 130, 1, 200),
                fact(4, 9, 120, 0, 300),
                Fact {
                    purchase: false,
                    ..fact(5, 11, 125, 1, 900)
                },
            ],
        };
        f.sort();
        f
    }

    #[test]
    fn a_member_summary_counts_days_channels_and_first_channel() {
        let d = facts().dataset(&FactFilter::default());
        assert_eq!(d.as_of_day, 130);
        assert_eq!(d.members.len(), 2);
        assert_eq!(d.members_without_purchases, 1);
        let m = &d.members[0];
        assert_eq!((m.member_id, m.orders, m.purchase_days), (7, 3, 2));
        assert_eq!(m.net_revenue, 1700);
        // Two orders at the same instant: the first channel is the first by name.
        assert_eq!(m.first_channel, 0);
        assert_eq!(
            m.activity
                .iter()
                .map(|a| (a.day, a.channel))
                .collect::<Vec<_>>(),
            [(100, 0), (100, 1), (130, 1)]
        );
    }

    #[test]
    fn filters_select_channel_brand_and_days() {
        let f = facts();
        let d = f.dataset(&FactFilter {
            channel: Some("tmall".into()),
            ..FactFilter::default()
        });
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.members[0].net_revenue, 1200);
        // Member 11's only tmall order is not a purchase.
        assert_eq!(d.members_without_purchases, 1);
        let d = f.dataset(&FactFilter {
            brand: Some("b".into()),
            ..FactFilter::default()
        });
        assert_eq!(d.members.len(), 1, "facts 1 and 3 are brand b");
        assert_eq!(d.members[0].net_revenue, 600);
        let d = f.dataset(&FactFilter {
            from_day: Some(101),
            to_day: Some(125),
            ..FactFilter::default()
        });
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.members[0].member_id, 9);
        let d = f.dataset(&FactFilter {
            brand: Some("nope".into()),
            ..FactFilter::default()
        });
        assert!(d.members.is_empty());
    }

    #[test]
    fn applying_changes_replaces_and_keeps_the_order() {
        let mut f = facts();
        f.apply(vec![
            Fact {
                member_id: 9,
                ..fact(1, 9, 100, 1, 1000)
            },
            fact(6, 8, 90, 0, 50),
            Fact {
                member_id: 0,
                ..fact(5, 0, 0, 0, 0)
            },
        ]);
        let ids: Vec<(i64, i64)> = f.facts.iter().map(|x| (x.member_id, x.fact_id)).collect();
        assert_eq!(ids, [(7, 2), (7, 3), (8, 6), (9, 1), (9, 4)]);
    }

    #[test]
    fn product_totals_count_orders_first_orders_and_repeaters() {
        let f = facts();
        let catalog: HashMap<String, CatalogEntry> =
            [("S0", "Cream", "skin", "a"), ("S1", "Zinc", "skin", "b")]
                .into_iter()
                .map(|(k, n, c, b)| {
                    (
                        k.to_string(),
                        CatalogEntry {
                            name: Some(n.into()),
                            category: Some(c.into()),
                            brand: Some(b.into()),
                        },
                    )
                })
                .collect();
        let p = f.product_data(&FactFilter::default(), &catalog);
        // Purchases: member 7 (facts 1, 2 on day 100, fact 3 on day 130), member 9 (fact 4).
        assert_eq!((p.total_orders, p.total_first_orders), (4, 2));
        let by = |k: &str| p.products.iter().find(|x| x.key == k).unwrap().clone();
        let s0 = by("S0");
        // Every order has S0: 500 + 250 + 100 + 150.
        assert_eq!((s0.net_revenue, s0.units, s0.orders), (1000, 4, 4));
        // Member 7's first order is fact 2 (pos sorts before tmall at the same instant).
        assert_eq!((s0.first_orders, s0.first_order_repeaters), (2, 1));
        assert_eq!(s0.name, "Cream");
        // S1 is on the even facts (2, 4: both first orders), S2 (not in the
        // catalogue) on the odd ones.
        let s1 = by("S1");
        assert_eq!((s1.orders, s1.first_orders, s1.net_revenue), (2, 2, 400));
        assert_eq!(s1.first_order_repeaters, 1);
        let s2 = by("S2");
        assert_eq!((s2.orders, s2.first_orders, s2.net_revenue), (2, 0, 600));
        assert_eq!((s2.name.as_str(), s2.category.as_str()), ("S2", ""));
        // A category counts an order once, and takes the largest product name.
        let skin = p.categories.iter().find(|c| c.key == "skin").unwrap();
        assert_eq!(
            (skin.orders, skin.units, skin.name.as_str()),
            (4, 8, "Zinc")
        );
        // A brand keeps its products' lines; the first order stays the first of any brand.
        let b = f.product_data(
            &FactFilter {
                brand: Some("b".into()),
                ..FactFilter::default()
            },
            &catalog,
        );
        assert_eq!(
            b.products
                .iter()
                .map(|x| x.key.as_str())
                .collect::<Vec<_>>(),
            ["S1"]
        );
        assert_eq!(b.products[0].first_orders, 2);
        assert_eq!(b.total_orders, 4);
        // A channel filter changes who was first: member 7's first tmall order
        // is fact 1, with S2.
        let t = f.product_data(
            &FactFilter {
                channel: Some("tmall".into()),
                ..FactFilter::default()
            },
            &catalog,
        );
        assert_eq!((t.total_orders, t.total_first_orders), (2, 1));
        assert!(t.products.iter().all(|x| x.key != "S1"));
        let s2 = t.products.iter().find(|x| x.key == "S2").unwrap();
        assert_eq!(
            (s2.orders, s2.first_orders, s2.first_order_repeaters),
            (2, 1, 1)
        );
    }
}
