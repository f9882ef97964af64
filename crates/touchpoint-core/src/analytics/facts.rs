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

use serde::{Deserialize, Serialize};

use super::{Dataset, DayActivity, MemberSummary};

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
}

/// Every order's fact, sorted by (member, time, channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFacts {
    /// Channel names, sorted (indices of [`Fact::channel`]).
    pub channels: Vec<String>,
    /// Brand names (indices of [`BrandPart::brand`]).
    pub brands: Vec<String>,
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

    /// The member data set of the scope: what the member reports read.
    pub fn dataset(&self, f: &FactFilter) -> Dataset {
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
        let brand: Option<Option<u32>> = f
            .brand
            .as_ref()
            .map(|b| self.brands.iter().position(|x| x == b).map(|i| i as u32));
        let in_scope = |x: &Fact| -> bool {
            x.ordered_at < end
                && x.ordered_at >= start
                && channel.is_none_or(|c| c == Some(x.channel))
        };
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
        }
    }

    fn facts() -> OrderFacts {
        let mut f = OrderFacts {
            channels: vec!["pos".into(), "tmall".into()],
            brands: vec!["a".into(), "b".into()],
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
}
