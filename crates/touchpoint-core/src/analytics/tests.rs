//! Reports on a small data set worked out by hand.
//!
//! As-of day 1000 (1972-09-27). Channels: 0 = jd, 1 = tmall.
//!
//! | member | purchases (day channel net)               | cogs | R days | F | M    |
//! |--------|--------------------------------------------|------|--------|---|------|
//! | 1      | 990 tmall 300, 1000 tmall 500              | 300  | 0      | 2 | 800  |
//! | 2      | 900 jd 1000                                | 1200 | 100    | 1 | 1000 |
//! | 3      | 1000 jd 100                                | 0    | 0      | 1 | 100  |
//! | 4      | 500 jd 200, 550 jd 200, 600 tmall 200      | 100  | 400    | 3 | 600  |
//! | 5      | 1000 jd 200                                | 50   | 0      | 1 | 200  |
//!
//! Member 6 has only refunded orders: it is not in `members` and is counted
//! in `members_without_purchases`.

use super::*;

fn act(day: i32, channel: u16, net: i64) -> DayActivity {
    DayActivity {
        day,
        channel,
        orders: 1,
        net_revenue: net,
    }
}

fn data() -> Dataset {
    let m = |id, a, cogs| Dataset::summarise(id, a, cogs, 0).expect("has purchases");
    Dataset {
        channels: vec!["jd".into(), "tmall".into()],
        members: vec![
            m(1, vec![act(1000, 1, 500), act(990, 1, 300)], 300),
            m(2, vec![act(900, 0, 1000)], 1200),
            m(3, vec![act(1000, 0, 100)], 0),
            m(
                4,
                vec![act(500, 0, 200), act(550, 0, 200), act(600, 1, 200)],
                100,
            ),
            m(5, vec![act(1000, 0, 200)], 50),
        ],
        members_without_purchases: 1,
        as_of_day: 1000,
    }
}

#[test]
fn quintile_ties_share_the_lowest_position_score() {
    // 5 values; w = members strictly worse; score = 1 + floor(5 w / 5) = 1 + w.
    // Ties: the three 7s all have w = 1 -> 2; the 9 has w = 4 -> 5.
    assert_eq!(quintile_scores(&[7, 3, 7, 9, 7], true), vec![2, 1, 2, 5, 2]);
    // Lower is better: 9 is worst (w=0 -> 1); 7s have w=1 -> 2; 3 has w=4 -> 5.
    assert_eq!(
        quintile_scores(&[7, 3, 7, 9, 7], false),
        vec![2, 5, 2, 1, 2]
    );
    // 10 distinct values: two per quintile.
    let v: Vec<i64> = (0..10).collect();
    assert_eq!(
        quintile_scores(&v, true),
        vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    );
}

#[test]
fn rfm_scores_and_segments_by_hand() {
    let r = rfm(&data(), true);
    // Recency worst->best: 400 (m4, w0 -> 1), 100 (m2, w1 -> 2), 0 x3 (w2 -> 3).
    // Frequency: 1 x3 (w0 -> 1), 2 (m1, w3 -> 4), 3 (m4, w4 -> 5).
    // Monetary: 100 m3 -> 1, 200 m5 -> 2, 600 m4 -> 3, 800 m1 -> 4, 1000 m2 -> 5.
    let s: Vec<(i64, u8, u8, u8, Segment)> = r
        .member_scores
        .iter()
        .map(|m| (m.member_id, m.r, m.f, m.m, m.segment))
        .collect();
    assert_eq!(
        s,
        vec![
            (1, 3, 4, 4, Segment::Loyal),         // R3-5 F3-5 M3-5
            (2, 2, 1, 5, Segment::AboutToSleep),  // R2 F1-2
            (3, 3, 1, 1, Segment::NeedAttention), // R3
            (4, 1, 5, 3, Segment::AtRisk),        // R1-2 F3-5 (M3: not Can't Lose)
            (5, 3, 1, 2, Segment::NeedAttention), // R3
        ]
    );
    assert_eq!(r.members, 5);
    assert_eq!(r.members_without_purchases, 1);
    assert_eq!(r.revenue, 2700);
    let na = r
        .segments
        .iter()
        .find(|x| x.segment == Segment::NeedAttention)
        .unwrap();
    // m3 + m5: 2 members of 5, revenue 300 of 2700, mean R 0, F 1, M 150.
    assert_eq!(na.members, 2);
    assert!((na.member_share - 0.4).abs() < 1e-12);
    assert_eq!(na.revenue, 300);
    assert!((na.revenue_share - 300.0 / 2700.0).abs() < 1e-12);
    assert_eq!(
        (na.avg_recency_days, na.avg_frequency, na.avg_monetary),
        (0.0, 1.0, 150.0)
    );
    assert_eq!(r.segments.len(), 11);
    assert_eq!(r.segments.iter().map(|s| s.members).sum::<u64>(), 5);
}

#[test]
fn abc_classes_by_hand() {
    let cfg = AbcConfig {
        fulfilment_cost: 50,
        channel_fees: vec![("tmall".into(), 0.10)],
        ..AbcConfig::default()
    };
    // Contribution = net - cogs - 50 x orders - 10% of tmall revenue:
    // m1: 800 - 300 - 100 - 80 = 320    m2: 1000 - 1200 - 50 = -250 (loss)
    // m3: 100 - 0 - 50 = 50             m4: 600 - 100 - 150 - 20 = 330
    // m5: 200 - 50 - 50 = 100           positive total = 800
    // Ranked: m4 (cum before 0 -> A), m1 (330/800 = 0.4125 -> A),
    // m5 (650/800 = 0.8125 -> B), m3 (750/800 = 0.9375 -> B), m2 loss-making.
    let r = abc(&data(), &cfg, true);
    let order: Vec<(i64, i64, AbcClass)> = r
        .member_classes
        .iter()
        .map(|m| (m.member_id, m.contribution, m.class))
        .collect();
    assert_eq!(
        order,
        vec![
            (4, 330, AbcClass::A),
            (1, 320, AbcClass::A),
            (5, 100, AbcClass::B),
            (3, 50, AbcClass::B),
            (2, -250, AbcClass::LossMaking),
        ]
    );
    assert_eq!(r.positive_contribution, 800);
    assert_eq!(r.total_contribution, 550);
    let a = &r.classes[0];
    assert_eq!((a.members, a.contribution), (2, 650));
    assert!((a.member_share - 0.4).abs() < 1e-12);
    assert!((a.contribution_share - 0.8125).abs() < 1e-12);
    assert_eq!(r.classes[2].members, 0);
    assert_eq!(r.classes[3].members, 1);
    assert!((r.classes[3].contribution_share + 0.3125).abs() < 1e-12);
    // Pareto over [330, 320, 100, 50]: 25% -> 1 member -> 330/800; 50% -> 2 -> 650/800.
    assert!((r.pareto[25].contribution_share - 0.4125).abs() < 1e-12);
    assert!((r.pareto[50].contribution_share - 0.8125).abs() < 1e-12);
    assert!((r.pareto[100].contribution_share - 1.0).abs() < 1e-12);
    assert_eq!(r.loss_making.len(), 1);
}

#[test]
fn abc_ties_and_score_ranking() {
    // Two members with equal contribution: the lower member id ranks first.
    let d = Dataset {
        channels: vec!["jd".into()],
        members: vec![
            Dataset::summarise(9, vec![act(10, 0, 100)], 0, 0).unwrap(),
            Dataset::summarise(8, vec![act(5, 0, 100)], 0, 0).unwrap(),
        ],
        members_without_purchases: 0,
        as_of_day: 10,
    };
    let r = abc(&d, &AbcConfig::default(), true);
    assert_eq!(r.member_classes[0].member_id, 8);
    // Ranked by score (0.6 contribution + 0.2 frequency + 0.2 recency): both
    // contributions and frequencies are equal (normalised 0); recency 0 days
    // (m9) -> 1, 5 days (m8) -> 0. m9 scores 0.2 and ranks first.
    let cfg = AbcConfig {
        rank_by: RankBy::Score,
        ..AbcConfig::default()
    };
    let r = abc(&d, &cfg, true);
    assert_eq!(r.member_classes[0].member_id, 9);
    assert!((r.member_classes[0].score - 0.2).abs() < 1e-12);
    // Cum before m9 = 0 -> A; before m8 = 100/200 = 0.5 -> A.
    assert!(r.member_classes.iter().all(|m| m.class == AbcClass::A));
}

#[test]
fn retention_by_hand() {
    let r = retention(&data(), &RetentionThresholds::default());
    // Observed 90 days: first day <= 910: m2 (900, no second day), m4 (500, second 550 <= 590).
    // m1 (first day 990) is observed for only 10 days and is left out.
    assert_eq!(
        (r.repeat[0].observed_members, r.repeat[0].repeat_members),
        (2, 1)
    );
    assert!((r.repeat[0].rate - 0.5).abs() < 1e-12 && !r.repeat[0].flagged);
    // 180 and 365 days: only m4 (first day 500 <= 820, <= 635), who repeated.
    assert_eq!(
        (r.repeat[1].observed_members, r.repeat[1].repeat_members),
        (1, 1)
    );
    assert_eq!(
        (r.repeat[2].observed_members, r.repeat[2].repeat_members),
        (1, 1)
    );
    // No purchase in 90 days: m2 (100), m4 (400) -> 2/5; in 180 days: m4 -> 1/5.
    assert_eq!((r.inactive[0].members, r.inactive[1].members), (2, 1));
    assert!((r.inactive[0].share - 0.4).abs() < 1e-12);
    // Previous year = days 271..=635: m4. Last year = 636..=1000: m4 last bought 600 -> not returned.
    assert_eq!(
        (
            r.annual_return.previous_year_buyers,
            r.annual_return.returned
        ),
        (1, 0)
    );
    assert!(r.annual_return.flagged);
    assert_eq!(r.flags.len(), 1);
}

#[test]
fn cohorts_by_hand() {
    let r = cohorts(&data(), false);
    // Day 500 = 1971-05-16 (m4), 900 = 1972-06-19 (m2), 990 and 1000 = 1972-09 (m1, m3, m5).
    let names: Vec<(&str, u64, usize)> = r
        .cohorts
        .iter()
        .map(|c| (c.cohort.as_str(), c.members, c.cells.len()))
        .collect();
    // 1971-05 .. 1972-09 is 17 months; 1972-06 .. 1972-09 is 4.
    assert_eq!(
        names,
        vec![("1971-05", 1, 17), ("1972-06", 1, 4), ("1972-09", 3, 1)]
    );
    let m4 = &r.cohorts[0].cells;
    // m4 bought in May (offset 0), July (2: 1971-07-05), August (3: 1971-08-24), 200 each.
    assert_eq!(
        m4.iter()
            .map(|c| c.active_members)
            .take(4)
            .collect::<Vec<_>>(),
        vec![1, 0, 1, 1]
    );
    assert_eq!(m4[3].cumulative_revenue_per_member, 600.0);
    let sep = &r.cohorts[2].cells[0];
    // m1 800 + m3 100 + m5 200 = 1100 over 3 members.
    assert_eq!((sep.active_members, sep.revenue), (3, 1100));
    assert!((sep.revenue_per_member - 1100.0 / 3.0).abs() < 1e-9);
    let by = cohorts(&data(), true);
    // 1972-09 splits into jd (m3, m5) and tmall (m1).
    assert_eq!(by.cohorts.len(), 4);
    assert_eq!(by.cohorts[2].channel.as_deref(), Some("jd"));
    assert_eq!(by.cohorts[2].members, 2);
}

#[test]
fn channels_by_hand() {
    let r = channels(&data());
    let jd = &r.channels[0];
    // jd buyers m2, m3, m4, m5; all four started in jd; orders 1+1+2+1 = 5;
    // revenue 1000+100+400+200 = 1700; AOV 340; repeaters: m4 (days 500, 550) -> 1/4.
    assert_eq!(
        (jd.members, jd.new_members, jd.orders, jd.net_revenue),
        (4, 4, 5, 1700)
    );
    assert_eq!(jd.aov, 340.0);
    assert_eq!(jd.repeat_rate, 0.25);
    let tm = &r.channels[1];
    // tmall buyers m1 (2 days), m4 (1 day); new: m1; orders 3, revenue 1000.
    assert_eq!(
        (tm.members, tm.new_members, tm.orders, tm.net_revenue),
        (2, 1, 3, 1000)
    );
    assert_eq!(tm.repeat_rate, 0.5);
    assert_eq!(r.overlap, vec![vec![4, 1], vec![1, 2]]);
    assert_eq!(r.multi_channel_members, 1);
}

#[test]
fn product_roles_by_hand() {
    let f = |key: &str, rev, units, cogs, orders, first, rep| ProductFacts {
        key: key.into(),
        name: key.into(),
        category: "c".into(),
        net_revenue: rev,
        units,
        cogs,
        orders,
        first_orders: first,
        first_order_members: first,
        first_order_repeaters: rep,
    };
    // 10 orders, 4 first orders: base first-order share 0.4.
    // A: 4 of 5 orders first (0.8 >= 1.2 x 0.4 = 0.48) -> traffic driver.
    // B: margin 600/1000 = 0.6 >= level rate (1000/2200 = 0.4545), margin 600 >= mean 333.3 -> profit.
    // C: margin 300/1000 = 0.3 < level rate; units 10 >= mean (2+1+10)/3 = 4.33 -> volume.
    let d = ProductData {
        products: vec![
            f("A", 200, 2, 100, 5, 4, 1),
            f("B", 1000, 1, 400, 2, 0, 0),
            f("C", 1000, 10, 700, 3, 0, 0),
        ],
        categories: vec![],
        total_orders: 10,
        total_first_orders: 4,
        as_of_day: 0,
    };
    let r = products(&d);
    let roles: Vec<(&str, ProductRole)> = r
        .products
        .iter()
        .map(|p| (p.key.as_str(), p.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("B", ProductRole::ProfitDriver),
            ("C", ProductRole::VolumeDriver),
            ("A", ProductRole::TrafficDriver)
        ]
    );
    let a = &r.products[2];
    assert_eq!((a.gross_margin, a.first_order_share), (100, 0.8));
    assert_eq!(a.first_order_repeat_rate, 0.25);
}
