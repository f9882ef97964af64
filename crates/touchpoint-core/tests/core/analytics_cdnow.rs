//! RFM, ABC and retention on the full CDNOW transaction log (23,570
//! customers, 1997-01 .. 1998-06), as of 1998-06-30, checked against a plain
//! loop written here.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use touchpoint_core::analytics::{self as an, AbcClass, Dataset, DayActivity, Segment};

/// customer -> (day -> (orders, cents)).
type Log = BTreeMap<i64, BTreeMap<i32, (u32, i64)>>;

fn load() -> Log {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/cdnow/CDNOW_master.txt"
    );
    let text = std::fs::read_to_string(path).expect("CDNOW_master.txt");
    let mut log = Log::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let id: i64 = f[0].parse().unwrap();
        let date = NaiveDate::parse_from_str(f[1], "%Y%m%d").unwrap();
        let cents = (f[3].parse::<f64>().unwrap() * 100.0).round() as i64;
        let e = log
            .entry(id)
            .or_default()
            .entry(an::date_to_day(date))
            .or_default();
        e.0 += 1;
        e.1 += cents;
    }
    log
}

fn dataset(log: &Log, as_of: i32) -> Dataset {
    Dataset {
        channels: vec!["cdnow".into()],
        members: log
            .iter()
            .map(|(id, days)| {
                let act = days
                    .iter()
                    .map(|(d, (n, c))| DayActivity {
                        day: *d,
                        channel: 0,
                        orders: *n,
                        net_revenue: *c,
                    })
                    .collect();
                Dataset::summarise(*id, act, 0, 0).unwrap()
            })
            .collect(),
        members_without_purchases: 0,
        as_of_day: as_of,
    }
}

/// Score by counting strictly worse values with a binary search in a sorted copy.
fn scores(values: &[i64], higher_better: bool) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = values.len();
    values
        .iter()
        .map(|v| {
            let worse = if higher_better {
                sorted.partition_point(|x| x < v)
            } else {
                n - sorted.partition_point(|x| x <= v)
            };
            (1 + 5 * worse / n) as u8
        })
        .collect()
}

#[test]
fn cdnow_rfm_abc_retention_match_a_plain_loop() {
    let log = load();
    let as_of = an::date_to_day(NaiveDate::from_ymd_opt(1998, 6, 30).unwrap());
    let data = dataset(&log, as_of);
    assert_eq!(data.members.len(), 23_570);

    // --- RFM by hand.
    let ids: Vec<i64> = log.keys().copied().collect();
    let rec: Vec<i64> = log
        .values()
        .map(|d| i64::from(as_of - *d.keys().last().unwrap()))
        .collect();
    let freq: Vec<i64> = log.values().map(|d| d.len() as i64).collect();
    let mon: Vec<i64> = log
        .values()
        .map(|d| d.values().map(|x| x.1).sum())
        .collect();
    let (r, f, m) = (scores(&rec, false), scores(&freq, true), scores(&mon, true));
    let report = an::rfm(&data, true);
    let mut seg_counts: BTreeMap<Segment, u64> = BTreeMap::new();
    for (i, row) in report.member_scores.iter().enumerate() {
        assert_eq!(row.member_id, ids[i]);
        assert_eq!(i64::from(row.recency_days), rec[i]);
        assert_eq!(i64::from(row.frequency), freq[i]);
        assert_eq!(row.monetary, mon[i]);
        assert_eq!(
            (row.r, row.f, row.m),
            (r[i], f[i], m[i]),
            "member {}",
            ids[i]
        );
        // Segment rules written out again.
        let s = match (r[i], f[i], m[i]) {
            (4..=5, 4..=5, 4..=5) => Segment::Champions,
            (3..=5, 3..=5, 3..=5) => Segment::Loyal,
            (1, 4..=5, 4..=5) => Segment::CantLoseThem,
            (1..=2, 3..=5, _) => Segment::AtRisk,
            (5, 1, _) => Segment::New,
            (4, 1, _) => Segment::Promising,
            (4..=5, _, _) => Segment::PotentialLoyalist,
            (3, _, _) => Segment::NeedAttention,
            (2, 1..=2, _) => Segment::AboutToSleep,
            (1, 1..=2, 2..=5) => Segment::Hibernating,
            _ => Segment::Lost,
        };
        assert_eq!(row.segment, s);
        *seg_counts.entry(s).or_default() += 1;
    }
    for s in &report.segments {
        assert_eq!(s.members, seg_counts.get(&s.segment).copied().unwrap_or(0));
    }
    assert_eq!(report.revenue, mon.iter().sum::<i64>());

    // --- ABC with a fulfilment cost of 2.00 per order (some members lose money).
    let cfg = an::AbcConfig {
        fulfilment_cost: 200,
        ..Default::default()
    };
    let abc = an::abc(&data, &cfg, true);
    let mut contrib: Vec<(i64, i64)> = log
        .iter()
        .map(|(id, d)| {
            let orders: i64 = d.values().map(|x| i64::from(x.0)).sum();
            let rev: i64 = d.values().map(|x| x.1).sum();
            (rev - 200 * orders, *id)
        })
        .collect();
    contrib.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let positive: i64 = contrib.iter().filter(|c| c.0 > 0).map(|c| c.0).sum();
    let mut cum = 0i64;
    let mut expect = BTreeMap::new();
    for (c, id) in &contrib {
        let class = if *c < 0 {
            AbcClass::LossMaking
        } else if (cum as f64) < 0.80 * positive as f64 {
            AbcClass::A
        } else if (cum as f64) < 0.95 * positive as f64 {
            AbcClass::B
        } else {
            AbcClass::C
        };
        if *c >= 0 {
            cum += c;
        }
        expect.insert(*id, (*c, class));
    }
    for row in &abc.member_classes {
        assert_eq!(expect[&row.member_id], (row.contribution, row.class));
    }
    assert_eq!(abc.positive_contribution, positive);
    let a = abc.classes.iter().find(|c| c.class == AbcClass::A).unwrap();
    assert!(a.member_share < 0.5 && a.contribution_share >= 0.8 - 1e-9);
    assert!(abc.classes[3].members > 0);

    // --- Retention by hand.
    let ret = an::retention(&data, &an::RetentionThresholds::default());
    for (i, w) in [90, 180, 365].iter().enumerate() {
        let (mut obs, mut rep) = (0u64, 0u64);
        for d in log.values() {
            let first = *d.keys().next().unwrap();
            if first + w <= as_of {
                obs += 1;
                if d.keys().any(|&x| x > first && x <= first + w) {
                    rep += 1;
                }
            }
        }
        assert_eq!(
            (ret.repeat[i].observed_members, ret.repeat[i].repeat_members),
            (obs, rep),
            "window {w}"
        );
    }
    for (i, w) in [90, 180].iter().enumerate() {
        let n = log
            .values()
            .filter(|d| !d.keys().any(|&x| x > as_of - w))
            .count() as u64;
        assert_eq!(ret.inactive[i].members, n);
    }
    let prev: Vec<&BTreeMap<i32, (u32, i64)>> = log
        .values()
        .filter(|d| d.keys().any(|&x| x > as_of - 730 && x <= as_of - 365))
        .collect();
    let back = prev
        .iter()
        .filter(|d| d.keys().any(|&x| x > as_of - 365))
        .count() as u64;
    assert_eq!(
        (
            ret.annual_return.previous_year_buyers,
            ret.annual_return.returned
        ),
        (prev.len() as u64, back)
    );
    // CDNOW's 1997 cohort mostly stopped buying: the known picture.
    assert!(ret.annual_return.rate < 0.5 && ret.annual_return.flagged);
}
