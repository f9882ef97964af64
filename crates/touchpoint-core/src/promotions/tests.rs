//! The worked examples of docs/promotions.md, with the figures computed by
//! hand in each test's comment (minor units throughout).

use super::*;

/// UTC ms of a UTC time `YYYY-MM-DD HH:MM`.
fn utc(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn line(sku: &str, brand: &str, category: &str, quantity: i64, unit_price: i64) -> BasketLine {
    BasketLine {
        sku: sku.into(),
        brand: Some(brand.into()),
        category: Some(category.into()),
        quantity,
        unit_price,
    }
}

fn order(channel: &str, lines: Vec<BasketLine>) -> OrderIn {
    OrderIn {
        channel: Some(channel.into()),
        lines,
        // 2026-11-20 10:00 in Shanghai.
        ordered_at: utc("2026-11-20 02:00"),
        paid_at: None,
    }
}

fn past(brand: &str, at: &str, units: i64, spend: i64) -> PastLine {
    PastLine {
        channel: "shopify".into(),
        sku: format!("{brand}-X"),
        brand: Some(brand.into()),
        category: None,
        ordered_at: utc(at),
        units,
        spend,
    }
}

fn coupon(code: &str, kind: CouponKind, priority: i64, stackable: bool) -> CouponIn {
    CouponIn {
        code: code.into(),
        coupon_id: 1,
        definition_id: 1,
        rules: CouponRules {
            kind,
            amount: 0,
            percent: 0,
            cap: None,
            free_sku: None,
            min_spend: 0,
            channels: vec![],
            brands: vec![],
            categories: vec![],
            skus: vec![],
            valid_from: None,
            valid_until: None,
            valid_days: None,
            stackable,
            priority,
            return_on_refund: false,
        },
    }
}

/// The rule file of docs/promotions.md, "The rule file".
const EXAMPLE: &str = r#"
timezone = "Asia/Shanghai"

[[quantity]]
name = "Buy 3 Acme, 10% off"
brands = ["Acme"]
tiers = [{ min = 3, percent = 10 }, { min = 5, percent = 15 }]

[[quantity]]
name = "Two skincare, 1.00 off"
categories = ["Skincare"]
tiers = [{ min = 2, amount = 100 }]

[[cumulative]]
name = "Acme club"
brands = ["Acme"]
measure = "spend"
period = "month"
tiers = [{ min = 50000, percent = 5 }, { min = 100000, percent = 8 }]

[[early_payment]]
name = "Presale deposit"
channels = ["miniprogram"]
within_hours = 24
amount = 2000
"#;

fn rules() -> Promotions {
    Promotions::parse(EXAMPLE).unwrap()
}

fn applied<'a>(e: &'a Evaluation, rule: &str) -> &'a Applied {
    e.applied
        .iter()
        .find(|a| a.rule == rule)
        .unwrap_or_else(|| panic!("{rule} not applied: {e:#?}"))
}

fn not_applied<'a>(e: &'a Evaluation, rule: &str) -> &'a str {
    &e.not_applied
        .iter()
        .find(|a| a.rule == rule)
        .unwrap_or_else(|| panic!("{rule} applied: {e:#?}"))
        .why
}

#[test]
fn worked_example_1_quantity_tier_rounds_half_up_per_line() {
    // Acme A1: 3 x 3333 = 9999; Other B1: 1 x 5000. Three Acme units reach
    // the 3-unit tier (10%); five would be 15%.
    // 10% of 9999 = 999.9 -> 1000 (half up). B1 is out of scope.
    // Total 9999 + 5000 - 1000 = 13999.
    let o = order(
        "shopify",
        vec![
            line("A1", "Acme", "Tea", 3, 3333),
            line("B1", "Other", "Tea", 1, 5000),
        ],
    );
    let e = evaluate(&rules(), &o, &[], &[]).unwrap();
    let a = applied(&e, "Buy 3 Acme, 10% off");
    assert_eq!(a.amount, 1000);
    assert_eq!(
        a.lines,
        vec![LineShare {
            line: 0,
            amount: 1000
        }]
    );
    assert_eq!(e.subtotal, 14999);
    assert_eq!(e.total, 13999);
    assert!(not_applied(&e, "Two skincare, 1.00 off").contains("no line"));
    assert!(not_applied(&e, "Presale deposit").contains("miniprogram"));

    // Two units: below the first tier, nothing off.
    let o2 = order("shopify", vec![line("A1", "Acme", "Tea", 2, 3333)]);
    let e2 = evaluate(&rules(), &o2, &[], &[]).unwrap();
    assert!(not_applied(&e2, "Buy 3 Acme, 10% off").contains("first tier needs 3"));
    assert_eq!(e2.total, 6666);
    // Five units: 15% of 5 x 3333 = 16665 -> 2499.75 -> 2500.
    let o5 = order("shopify", vec![line("A1", "Acme", "Tea", 5, 3333)]);
    let e5 = evaluate(&rules(), &o5, &[], &[]).unwrap();
    assert_eq!(e5.discount, 2500);
    assert_eq!(e5.total, 14165);
}

#[test]
fn worked_example_2_an_amount_is_spread_by_largest_remainder() {
    // Three Skincare lines of 1000 each reach the 2-unit tier: 100 off.
    // 100 x 1000 / 3000 = 33.33 each -> 33, 33, 33 (99); the one minor unit
    // left goes to the first of the equal remainders: 34, 33, 33.
    // Total 3000 - 100 = 2900.
    let o = order(
        "shopify",
        vec![
            line("S1", "Glow", "Skincare", 1, 1000),
            line("S2", "Glow", "Skincare", 1, 1000),
            line("S3", "Glow", "Skincare", 1, 1000),
        ],
    );
    let e = evaluate(&rules(), &o, &[], &[]).unwrap();
    let a = applied(&e, "Two skincare, 1.00 off");
    let got: Vec<i64> = a.lines.iter().map(|s| s.amount).collect();
    assert_eq!(got, vec![34, 33, 33]);
    assert_eq!(e.total, 2900);
}

#[test]
fn worked_example_3_cumulative_spend_in_the_month_raises_the_level() {
    // Before this order, in November 2026 (Shanghai): Acme 40000 + 20000 =
    // 60000 (level 50000: 5%). Not counted: Acme 30000 in October, Other
    // 90000 in November (out of scope), Acme 99999 after the order.
    // This order: Acme C1 1 x 12345 -> 5% = 617.25 -> 617. Total 11728.
    let history = vec![
        past("Acme", "2026-11-02 03:00", 1, 40000),
        past("Acme", "2026-11-10 03:00", 2, 20000),
        past("Acme", "2026-10-15 03:00", 1, 30000),
        past("Other", "2026-11-05 03:00", 1, 90000),
        past("Acme", "2026-11-21 03:00", 1, 99999),
    ];
    let o = order("shopify", vec![line("C1", "Acme", "Tea", 1, 12345)]);
    let p = rules();
    // The store reads from the start of November in Shanghai:
    // 2026-11-01 00:00 +08:00 = 2026-10-31 16:00 UTC.
    assert_eq!(p.history_from(o.ordered_at), Some(utc("2026-10-31 16:00")));
    let e = evaluate(&p, &o, &history, &[]).unwrap();
    let a = applied(&e, "Acme club");
    assert_eq!(a.amount, 617);
    assert!(a.why.contains("60000"), "{}", a.why);
    assert_eq!(e.total, 11728);

    // With October's 30000 only, the member has nothing this month: no
    // level.
    let e2 = evaluate(&p, &o, &history[2..3], &[]).unwrap();
    assert!(not_applied(&e2, "Acme club").contains("first level needs 50000"));
}

#[test]
fn worked_example_4_early_payment_within_24_hours() {
    // A presale deposit of 30000 on the mini-program, ordered 2026-11-20
    // 02:00 UTC. Paid 23 h 59 min later: 2000 off, total 28000. Paid 24 h
    // and 1 min later: nothing. Not paid: nothing.
    let mut o = order("miniprogram", vec![line("P1", "Acme", "Presale", 1, 30000)]);
    o.lines[0].brand = Some("Presale".into());
    o.paid_at = Some(o.ordered_at + 23 * 3_600_000 + 59 * 60_000);
    let e = evaluate(&rules(), &o, &[], &[]).unwrap();
    assert_eq!(applied(&e, "Presale deposit").amount, 2000);
    assert_eq!(e.total, 28000);
    o.paid_at = Some(o.ordered_at + 24 * 3_600_000 + 60_000);
    let e = evaluate(&rules(), &o, &[], &[]).unwrap();
    assert!(not_applied(&e, "Presale deposit").contains("1441 min"));
    assert_eq!(e.total, 30000);
    o.paid_at = None;
    let e = evaluate(&rules(), &o, &[], &[]).unwrap();
    assert!(not_applied(&e, "Presale deposit").contains("not paid"));
}

#[test]
fn worked_example_5_the_whole_stack() {
    // Mini-program, paid 2 h after ordering; the member spent 60000 on Acme
    // earlier this month. Lines: Acme A1 3 x 10000 = 30000, Other B1 1 x 5000.
    // 1. Quantity, 3 Acme units: 10% of 30000 = 3000 -> A1 27000.
    // 2. Cumulative, level 5%: 5% of 27000 = 1350 -> A1 25650.
    // 3. Early payment, 2000 over A1 25650 and B1 5000 (sum 30650):
    //    2000 x 25650 / 30650 = 1673.76 -> 1673; 2000 x 5000 / 30650 = 326.26
    //    -> 326; the unit left goes to the larger remainder (A1): 1674, 326.
    //    A1 23976, B1 4674: 28650.
    // 4. Coupons, sent as FIXED50, PCT10, SOLO: PCT10 (10%, stackable) goes
    //    before FIXED50 (5000 off, stackable) at equal priority: 10% of 28650
    //    = 2865 (rounded down) -> 25785; then 5000 -> 20785. SOLO (not
    //    stackable, priority 0) does not combine.
    // Total: 35000 - 3000 - 1350 - 2000 - 2865 - 5000 = 20785.
    let mut o = order(
        "miniprogram",
        vec![
            line("A1", "Acme", "Tea", 3, 10000),
            line("B1", "Other", "Tea", 1, 5000),
        ],
    );
    o.paid_at = Some(o.ordered_at + 2 * 3_600_000);
    let history = vec![past("Acme", "2026-11-02 03:00", 2, 60000)];
    let mut fixed = coupon("FIXED50", CouponKind::Fixed, 0, true);
    fixed.rules.amount = 5000;
    let mut pct = coupon("PCT10", CouponKind::Percent, 0, true);
    pct.rules.percent = 10;
    let mut solo = coupon("SOLO", CouponKind::Fixed, 0, false);
    solo.rules.amount = 100;
    let e = evaluate(&rules(), &o, &history, &[fixed, pct, solo]).unwrap();
    let order_of: Vec<(&str, i64)> = e
        .applied
        .iter()
        .map(|a| (a.rule.as_str(), a.amount))
        .collect();
    assert_eq!(
        order_of,
        vec![
            ("Buy 3 Acme, 10% off", 3000),
            ("Acme club", 1350),
            ("Presale deposit", 2000),
            ("PCT10", 2865),
            ("FIXED50", 5000),
        ]
    );
    assert_eq!(
        applied(&e, "Presale deposit").lines,
        vec![
            LineShare {
                line: 0,
                amount: 1674
            },
            LineShare {
                line: 1,
                amount: 326
            }
        ]
    );
    assert!(not_applied(&e, "SOLO").contains("not stackable"));
    assert_eq!(e.rule_discount, 6350);
    assert_eq!(e.coupon_discount, 7865);
    assert_eq!(e.total, 20785);
    // Per line: PCT10's 2865 over 23976 : 4674 (sum 28650) is 2397.6 and
    // 467.4 -> 2398 + 467; FIXED50's 5000 over 21578 : 4207 (sum 25785) is
    // 4184.21 and 815.78 -> 4184 + 816. A1 pays 21578 - 4184 = 17394, B1
    // 4207 - 816 = 3391.
    let nets: Vec<i64> = e.lines.iter().map(|l| l.net).collect();
    assert_eq!(nets, vec![17394, 3391]);
}

#[test]
fn worked_example_6_rules_of_one_kind_exclude_each_other_and_exclusive_stops_later_stages() {
    // Two quantity rules cover A1 (Acme, Tea, 3 x 1000 = 3000): "Tea 20%"
    // (priority 5) is taken first: 600 off; "Buy 3 Acme" finds its only line
    // taken and does not apply. "Tea 20%" is exclusive, so the cumulative
    // "Acme club" does not apply either (the member has 60000 this month).
    // Total 3000 - 600 = 2400.
    let text = format!(
        "{EXAMPLE}\n[[quantity]]\nname = \"Tea 20%\"\ncategories = [\"Tea\"]\npriority = 5\nexclusive = true\ntiers = [{{ min = 1, percent = 20 }}]\n"
    );
    let p = Promotions::parse(&text).unwrap();
    let o = order("shopify", vec![line("A1", "Acme", "Tea", 3, 1000)]);
    let history = vec![past("Acme", "2026-11-02 03:00", 2, 60000)];
    let e = evaluate(&p, &o, &history, &[]).unwrap();
    assert_eq!(applied(&e, "Tea 20%").amount, 600);
    assert!(not_applied(&e, "Buy 3 Acme, 10% off").contains("tea 20%"));
    assert!(not_applied(&e, "Acme club").contains("discounted by"));
    assert_eq!(e.total, 2400);
}

#[test]
fn worked_example_7_a_coupon_sees_the_amounts_after_the_rules() {
    // A1 3 x 10000 = 30000, 10% quantity discount -> 27000. A coupon with a
    // minimum spend of 28000 is refused (below minimum spend: 27000), as it
    // would be at validation; one with 27000 applies: 1000 off -> 26000.
    // A free-item coupon for A1 gives one unit at its price after the rules:
    // 27000 / 3 = 9000.
    let o = order("shopify", vec![line("A1", "Acme", "Tea", 3, 10000)]);
    let mut c = coupon("MIN280", CouponKind::Fixed, 0, false);
    c.rules.amount = 1000;
    c.rules.min_spend = 28000;
    let err = evaluate(&rules(), &o, &[], std::slice::from_ref(&c)).unwrap_err();
    assert_eq!(
        err.refusal,
        Refusal::BelowMinimumSpend {
            min: 28000,
            eligible: 27000
        }
    );
    assert_eq!(err.refusal.code(), "coupon_below_minimum_spend");
    c.rules.min_spend = 27000;
    let e = evaluate(&rules(), &o, &[], &[c]).unwrap();
    assert_eq!(e.total, 26000);
    let mut free = coupon("FREE", CouponKind::FreeItem, 0, false);
    free.rules.free_sku = Some("A1".into());
    let e = evaluate(&rules(), &o, &[], &[free]).unwrap();
    assert_eq!(e.coupon_discount, 9000);
    assert_eq!(e.total, 18000);
    // A coupon scoped to another brand: out of scope.
    let mut other = coupon("OTHER", CouponKind::Fixed, 0, false);
    other.rules.amount = 10;
    other.rules.brands = vec!["Other".into()];
    let err = evaluate(&rules(), &o, &[], &[other]).unwrap_err();
    assert_eq!(err.refusal.code(), "coupon_out_of_scope");
}

#[test]
fn the_file_is_checked_with_the_rule_and_field_named() {
    let bad = |t: &str| match Promotions::parse(t) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted: {t}"),
    };
    assert!(bad("[[quantity]]\nname = \"q\"\ntiers = []\n").contains("`tiers` is empty"));
    assert!(
        bad("[[quantity]]\nname = \"q\"\ntiers = [{ min = 3, percent = 150 }]\n")
            .contains("percent 150")
    );
    assert!(
        bad("[[quantity]]\nname = \"q\"\ntiers = [{ min = 3, percent = 10, amount = 5 }]\n")
            .contains("exactly one")
    );
    assert!(
        bad("[[cumulative]]\nname = \"c\"\ntiers = [{ min = 3, percent = 10 }]\n")
            .contains("measure")
    );
    assert!(bad("[[early_payment]]\nname = \"e\"\npercent = 5\n").contains("within_hours"));
    assert!(
        bad("[[early_payment]]\nname = \"e\"\nwithin_hours = 2\npercent = 5\nbogus = 1\n")
            .contains("bogus")
    );
    assert!(bad("timezone = \"Mars/Base\"\n").contains("timezone"));
    assert!(bad(
        "[[quantity]]\nname = \"q\"\nfrom = \"2026-13-01\"\ntiers = [{ min = 3, percent = 10 }]\n"
    )
    .contains("YYYY-MM-DD"));
    assert!(Promotions::parse("").unwrap().quantity.is_empty());
}

#[test]
fn dates_bound_a_rule() {
    // "Double 11": from 2026-11-11 to 2026-11-12 (Shanghai). An order on
    // 2026-11-20 is after it.
    let p = Promotions::parse(
        "[[quantity]]\nname = \"Double 11\"\nfrom = \"2026-11-11\"\nuntil = \"2026-11-12\"\ntiers = [{ min = 1, percent = 11 }]\n",
    )
    .unwrap();
    let o = order("shopify", vec![line("A1", "Acme", "Tea", 1, 1000)]);
    let e = evaluate(&p, &o, &[], &[]).unwrap();
    assert!(not_applied(&e, "Double 11").contains("ended on 2026-11-12"));
    let mut o11 = o.clone();
    o11.ordered_at = utc("2026-11-11 01:00");
    let e = evaluate(&p, &o11, &[], &[]).unwrap();
    // 11% of 1000 = 110.
    assert_eq!(e.total, 890);
}

#[test]
fn allocation_never_exceeds_the_lines() {
    for total in [0, 1, 7, 99, 100, 5000] {
        let w = vec![(0, 13), (1, 29), (2, 58)];
        let s = allocate(total, &w);
        let sum: i64 = s.iter().map(|x| x.amount).sum();
        assert_eq!(sum, total.min(100));
        for (x, (_, wt)) in s.iter().zip(&w) {
            assert!(x.amount <= *wt);
        }
    }
    assert_eq!(percent_half_up(5, 10), 1); // 0.5 -> 1
    assert_eq!(percent_half_up(4, 10), 0); // 0.4 -> 0
}
