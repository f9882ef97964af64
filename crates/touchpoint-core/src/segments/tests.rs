use chrono::NaiveDate;

use super::*;
use crate::analytics::{AbcClass, Segment};

const ISSUE_EXAMPLE: &str = r#"rfm_segment in ("At Risk", "Can't Lose Them") and clv_12m > 500 and p_alive < 0.5 and last_order_days >= 90 and has_tag("vip") and bought(category = "skincare", within = 180d) and channel("tmall") and points_available > 1000 and tier = "Gold" and abc_class = "A""#;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn err(src: &str) -> ParseError {
    parse(src).expect_err(src)
}

fn at_risk_vip() -> MemberFacts {
    MemberFacts {
        member_id: 7,
        rfm_segment: Some(Segment::AtRisk),
        r: Some(2),
        f: Some(4),
        m: Some(5),
        clv_12m: Some(812.5),
        p_alive: Some(0.31),
        last_order_days: Some(120),
        first_order_days: Some(700),
        orders: 6,
        net_spend: 360_000,
        abc_class: Some(AbcClass::A),
        tier: Some("Gold".into()),
        points_available: 1500,
        gender: Some("female".into()),
        region: Some("浙江省".into()),
        city: Some("杭州".into()),
        language: Some("zh".into()),
        birthday: Some(day("1990-05-17")),
    }
}

#[test]
fn the_issue_example_parses_and_evaluates() {
    let e = parse(ISSUE_EXAMPLE).unwrap();
    let atoms = e.atoms();
    assert_eq!(atoms.len(), 3, "{atoms:?}");
    assert!(atoms.contains(&Atom::HasTag { tag: "vip".into() }));
    assert!(atoms.contains(&Atom::Channel {
        channel: "tmall".into()
    }));
    assert!(atoms.contains(&Atom::Bought(BoughtFilter {
        category: Some("skincare".into()),
        brand: None,
        sku: None,
        within_days: Some(180),
    })));
    let as_of = day("2025-12-01");
    let m = at_risk_vip();
    assert!(e.eval(&m, as_of, &|_, _| true));
    // Any atom false, or any field out of range, drops the member.
    assert!(!e.eval(&m, as_of, &|a, _| !matches!(a, Atom::Channel { .. })));
    let mut low = m.clone();
    low.points_available = 1000;
    assert!(!e.eval(&low, as_of, &|_, _| true));
    let mut champ = m.clone();
    champ.rfm_segment = Some(Segment::Champions);
    assert!(!e.eval(&champ, as_of, &|_, _| true));
    let mut lost = m;
    lost.rfm_segment = Some(Segment::CantLoseThem);
    assert!(e.eval(&lost, as_of, &|_, _| true));
}

#[test]
fn precedence_and_binds_tighter_than_or_and_parentheses_override() {
    let as_of = day("2025-12-01");
    let m = MemberFacts {
        orders: 1,
        net_spend: 10_000,
        ..MemberFacts::default()
    };
    let no = &|_: &Atom, _: i64| false;
    // orders >= 5 or (orders = 1 and net_spend = 100)
    assert!(parse("orders >= 5 or orders = 1 and net_spend = 100")
        .unwrap()
        .eval(&m, as_of, no));
    // (orders >= 5 or orders = 1) and net_spend = 200
    assert!(!parse("(orders >= 5 or orders = 1) and net_spend = 200")
        .unwrap()
        .eval(&m, as_of, no));
    assert!(parse("not orders >= 5 and not (net_spend > 100)")
        .unwrap()
        .eval(&m, as_of, no));
    assert!(parse("NOT orders > 1 AND orders != 2")
        .unwrap()
        .eval(&m, as_of, no));
}

#[test]
fn every_operator_and_literal() {
    let as_of = day("2025-12-01");
    let m = at_risk_vip();
    let yes = |s: &str| parse(s).unwrap().eval(&m, as_of, &|_, _| false);
    assert!(yes("orders = 6") && yes("orders == 6") && yes("orders != 5") && yes("orders <> 5"));
    assert!(yes("orders < 7") && yes("orders <= 6") && yes("orders > 5") && yes("orders >= 6"));
    assert!(!yes("orders < 6") && !yes("orders > 6"));
    assert!(yes("aov = 600") && yes("net_spend >= 3600") && yes("net_spend < 3600.01"));
    assert!(yes("p_alive < .5") && yes("clv_12m > -1"));
    assert!(yes("last_order_days >= 120d") && !yes("last_order_days >= 121"));
    assert!(yes("first_order_days > 1y") && yes("first_order_days < 101w"));
    assert!(yes("r in (1, 2)") && yes("f not in (1, 2, 3)") && !yes("m not in (5)"));
    assert!(
        yes("tier = 'gold'")
            && yes("gender in (\"male\", \"Female\")")
            && yes("tier != \"Silver\"")
    );
    assert!(yes(
        "region = \"浙江省\" and city = \"杭州\" and language = \"ZH\""
    ));
    assert!(yes("age = 35") && !yes("age = 36") && yes("birthday_month = 5"));
    assert!(yes("abc_class = \"a\"") && yes("rfm_segment = \"at risk\""));
    assert!(yes("tier = \"say \\\"hi\\\"\"") == (m.tier.as_deref() == Some("say \"hi\"")));
}

#[test]
fn unknown_values_are_false_and_their_negation_true() {
    let as_of = day("2025-12-01");
    let nobody = MemberFacts::default();
    let no = &|_: &Atom, _: i64| false;
    for s in [
        "p_alive < 0.5",
        "age > 0",
        "tier = \"Gold\"",
        "rfm_segment in (\"Lost\")",
        "aov >= 0",
        "last_order_days >= 0",
    ] {
        assert!(!parse(s).unwrap().eval(&nobody, as_of, no), "{s}");
    }
    assert!(parse("not p_alive < 0.5").unwrap().eval(&nobody, as_of, no));
    assert!(
        parse("orders = 0 and net_spend = 0 and points_available = 0")
            .unwrap()
            .eval(&nobody, as_of, no)
    );
}

#[test]
fn functions_and_their_arguments() {
    let e = parse("consent(email, newsletter) or consent(\"SMS\", 'promotions')").unwrap();
    assert_eq!(
        e.atoms(),
        vec![
            Atom::Consent {
                channel: "email".into(),
                topic: "newsletter".into()
            },
            Atom::Consent {
                channel: "sms".into(),
                topic: "promotions".into()
            },
        ]
    );
    let e = parse("bought(brand = \"Acme\", sku = \"SKU-1\", category = \"c\", within = 30) and has_tag(\"VIP\") and has_tag(vip)").unwrap();
    assert_eq!(
        e.atoms(),
        vec![
            Atom::HasTag { tag: "vip".into() },
            Atom::Bought(BoughtFilter {
                category: Some("c".into()),
                brand: Some("Acme".into()),
                sku: Some("SKU-1".into()),
                within_days: Some(30),
            }),
        ]
    );
    let as_of = day("2025-12-01");
    let m = MemberFacts {
        member_id: 3,
        ..MemberFacts::default()
    };
    let only_3_vip =
        |a: &Atom, id: i64| id == 3 && matches!(a, Atom::HasTag { tag } if tag == "vip");
    assert!(parse("has_tag(\"vip\")")
        .unwrap()
        .eval(&m, as_of, &only_3_vip));
    assert!(!parse("has_tag(\"vip\") and bought(sku = \"x\")")
        .unwrap()
        .eval(&m, as_of, &only_3_vip));
    assert_eq!(
        parse("bought(sku = \"x\", within = 2w)").unwrap().atoms(),
        vec![Atom::Bought(BoughtFilter {
            sku: Some("x".into()),
            within_days: Some(14),
            ..BoughtFilter::default_filter()
        })]
    );
    assert_eq!(parse("orders > 1").unwrap().fields(), vec![Field::Orders]);
}

impl BoughtFilter {
    fn default_filter() -> BoughtFilter {
        BoughtFilter {
            category: None,
            brand: None,
            sku: None,
            within_days: None,
        }
    }
}

#[test]
fn errors_give_the_line_and_column() {
    let e = err("orders > 1 and\n  clv12m > 500");
    assert_eq!((e.line, e.col), (2, 3), "{e}");
    assert_eq!(e.suggestion.as_deref(), Some("clv_12m"));
    assert!(
        e.to_string().starts_with("2:3: unknown field \"clv12m\""),
        "{e}"
    );
    assert!(e.to_string().ends_with("(did you mean clv_12m?)"), "{e}");

    let e = err("orders > ");
    assert_eq!((e.line, e.col), (1, 10), "{e}");
    let e = err("(orders > 1");
    assert_eq!(
        (e.line, e.col, e.message.contains("\")\"")),
        (1, 12, true),
        "{e}"
    );
    let e = err("orders > 1 orders");
    assert_eq!((e.line, e.col), (1, 12), "{e}");
    let e = err("tier = \"Gold");
    assert_eq!((e.line, e.col), (1, 8), "{e}");
    assert!(e.message.contains("closing"), "{e}");
    let e = err("orders # 2");
    assert_eq!((e.line, e.col), (1, 8), "{e}");
    let e = err("");
    assert_eq!((e.line, e.col), (1, 1));
}

#[test]
fn errors_suggest_the_name_meant() {
    let cases = [
        ("last_order_day >= 90", "last_order_days", (1, 1)),
        ("has_tags(\"vip\")", "has_tag", (1, 1)),
        ("orders > 1 and bougth(sku = \"x\")", "bought", (1, 16)),
        ("rfm_segment = \"At Rsk\"", "At Risk", (1, 15)),
        (
            "rfm_segment in (\"Champions\", \"Cant Lose Them\")",
            "Can't Lose Them",
            (1, 30),
        ),
        ("consent(emial, newsletter)", "email", (1, 9)),
        ("consent(email, newsleter)", "newsletter", (1, 16)),
        ("bought(categroy = \"x\")", "category", (1, 8)),
        ("last_order_days > 90x", "d", (1, 21)),
        ("abc_class = \"AA\"", "A", (1, 13)),
    ];
    for (src, want, pos) in cases {
        let e = err(src);
        assert_eq!(e.suggestion.as_deref(), Some(want), "{src}: {e}");
        assert_eq!((e.line, e.col), pos, "{src}: {e}");
    }
    assert_eq!(err("zzzzzzzz > 1").suggestion, None);
}

#[test]
fn type_errors_say_what_is_accepted() {
    let e = err("tier > \"Gold\"");
    assert!(e.message.contains("=, != or in"), "{e}");
    assert_eq!(e.col, 6);
    let e = err("tier = Gold");
    assert!(e.message.contains("quoted text"), "{e}");
    let e = err("orders >= \"2\"");
    assert!(e.message.contains("takes a number"), "{e}");
    let e = err("net_spend > 90d");
    assert!(e.message.contains("not a duration"), "{e}");
    let e = err("bought(within = 30d)");
    assert!(e.message.contains("category, brand or sku"), "{e}");
    let e = err("orders(1)");
    assert!(e.message.contains("is a field"), "{e}");
    let e = err("has_tag = 1");
    assert!(e.message.contains("is a function"), "{e}");
    let e = err("orders not > 1");
    assert!(e.message.contains("in after not"), "{e}");
    let e = err("r in (1 2)");
    assert_eq!(e.col, 9, "{e}");
}

#[test]
fn edit_distance_and_closest() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("同城", "同城"), 0);
    assert_eq!(closest("tiers", ["tier", "orders"]), Some("tier"));
    assert_eq!(closest("q", ["tier", "orders"]), None);
}

#[test]
fn ages_count_whole_years() {
    assert_eq!(age(day("1990-05-17"), day("2025-05-16")), Some(34));
    assert_eq!(age(day("1990-05-17"), day("2025-05-17")), Some(35));
    assert_eq!(age(day("2030-01-01"), day("2025-05-17")), None);
}
