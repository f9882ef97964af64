//! Analytics reads on SQLite (and PostgreSQL when TOUCHPOINT_TEST_POSTGRES_URL
//! is set): hand-computed summaries, staleness, filters, and identical reports
//! on both backends for the demo brand.

use std::path::{Path, PathBuf};

use touchpoint_core::analytics::{self as an, AbcConfig, Dataset, RetentionThresholds};
use touchpoint_core::demo::{self, DemoConfig};
use touchpoint_core::identity::IdentityConfig;
use touchpoint_core::ingest::{InputFormat, ReadOptions};
use touchpoint_core::{ChannelName, Currency};
use touchpoint_store::analytics::Scope;
use touchpoint_store::import::{import_files, ImportOptions};
use touchpoint_store::Store;

const SHANGHAI_MS: i64 = 8 * 3_600_000;

fn options(format: InputFormat, channel: Option<&str>) -> ImportOptions {
    ImportOptions {
        format,
        read: ReadOptions {
            channel: channel.map(|c| ChannelName::parse(c).unwrap()),
            default_country: "86".into(),
            default_currency: Currency::parse("CNY").unwrap(),
            business_tz: chrono_tz::Asia::Shanghai,
            encoding: None,
        },
        identity: IdentityConfig::default(),
        strict: false,
        rejects: None,
        chunk_orders: 5_000,
        refresh_analytics: true,
    }
}

async fn import(store: &Store, path: &Path, format: InputFormat, channel: Option<&str>) {
    import_files(
        store,
        &[path.to_path_buf()],
        &options(format, channel),
        &|_| {},
    )
    .await
    .unwrap();
}

fn scope() -> Scope {
    Scope {
        utc_offset_ms: SHANGHAI_MS,
        ..Scope::default()
    }
}

const HEADER: &str = "order_id,ordered_at,channel,status,member_no,sku,product_name,category,brand,quantity,unit_price,unit_cost,discount,order_discount,refunded\n";

/// M1: A1 (tmall, 2024-01-10, paid): 2 x SKU-A @100 (cost 30) + 1 x SKU-B @50
///     (cost 20, line discount 10), order discount 20: gross 200 + 40 - 20 = 220,
///     cogs 60 + 20 = 80, discounts 10 + 20 = 30.
///     A2 (jd, 2024-03-01 23:30 local, partially refunded 40): 1 x SKU-A @100: net 60, cogs 30.
///     A3 (jd, 2024-03-02 01:00 local = 2024-03-01 17:00 UTC, paid): 1 x SKU-B @50: net 50, cogs 20.
///     -> 3 purchase orders on 3 local days (2 UTC days), net 330.00, cogs 130.00, discounts 30.00.
/// M2: B1 (jd, refunded): no purchase -> not summarised, counted as a member without purchases.
/// M3: C1 (tmall, cancelled) excluded; C2 (tmall, 2024-03-31 20:00 local, paid):
///     2 x SKU-B @50 (cost 20): net 100.00, cogs 40.00.
fn hand_csv(dir: &Path) -> PathBuf {
    let p = dir.join("hand.csv");
    let rows = [
        "A1,2024-01-10T10:00:00+08:00,tmall,paid,M1,SKU-A,Alpha,tops,acme,2,100.00,30.00,0,20.00,0",
        "A1,2024-01-10T10:00:00+08:00,tmall,paid,M1,SKU-B,Beta,socks,beta,1,50.00,20.00,10.00,20.00,0",
        "A2,2024-03-01T23:30:00+08:00,jd,partially_refunded,M1,SKU-A,Alpha,tops,acme,1,100.00,30.00,0,0,40.00",
        "A3,2024-03-02T01:00:00+08:00,jd,paid,M1,SKU-B,Beta,socks,beta,1,50.00,20.00,0,0,0",
        "B1,2024-02-01T10:00:00+08:00,jd,refunded,M2,SKU-A,Alpha,tops,acme,1,100.00,30.00,0,0,",
        "C1,2024-02-15T10:00:00+08:00,tmall,cancelled,M3,SKU-A,Alpha,tops,acme,1,100.00,30.00,0,0,0",
        "C2,2024-03-31T20:00:00+08:00,tmall,paid,M3,SKU-B,Beta,socks,beta,2,50.00,20.00,0,0,0",
    ];
    std::fs::write(&p, format!("{HEADER}{}\n", rows.join("\n"))).unwrap();
    p
}

fn by_net(d: &Dataset) -> Vec<(u32, u32, i64, i64, i64, String)> {
    let mut v: Vec<_> = d
        .members
        .iter()
        .map(|m| {
            (
                m.orders,
                m.purchase_days,
                m.net_revenue,
                m.cogs,
                m.discounts,
                d.channels[m.first_channel as usize].clone(),
            )
        })
        .collect();
    v.sort_by_key(|x| x.2);
    v
}

#[tokio::test]
async fn hand_computed_summary_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url).await.unwrap();
    import(&store, &hand_csv(dir.path()), InputFormat::Canonical, None).await;
    // The import kept the analytics model and ended with a snapshot of it.
    let st = store.analytics_state().await.unwrap();
    assert!(st.facts_built);
    assert_eq!(st.snapshot_seq, st.fact_seq);

    let d = store.member_dataset(&scope()).await.unwrap();
    assert_eq!(
        d.as_of(),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()
    );
    assert_eq!(d.members_without_purchases, 1); // M2
    assert_eq!(
        by_net(&d),
        vec![
            (1, 1, 10000, 4000, 0, "tmall".to_string()),     // M3
            (3, 3, 33000, 13000, 3000, "tmall".to_string())  // M1
        ]
    );
    // RFM over two members: M1 recency 2024-03-31 - 2024-03-02 = 29 days.
    let r = an::rfm(&d, true);
    let m1 = r
        .member_scores
        .iter()
        .find(|m| m.monetary == 33000)
        .unwrap();
    assert_eq!((m1.recency_days, m1.frequency), (29, 3));

    // Channel filter (live aggregation): M1's jd orders only: 60 + 50 = 110.00 on 2 days.
    let jd = store
        .member_dataset(&Scope {
            channel: Some("jd".into()),
            ..scope()
        })
        .await
        .unwrap();
    assert_eq!(by_net(&jd), vec![(2, 2, 11000, 5000, 0, "jd".to_string())]);
    // jd has M2's refunded order, so M2 is a member without purchases there too.
    assert_eq!(jd.members_without_purchases, 1);

    // Brand filter: acme lines only. A1: the SKU-A line is 200.00 of 240.00 of
    // line value; the order's net 220.00 allocates 22000 * 20000 / 24000 = 18333;
    // its share of the order discount is 2000 * 20000 / 24000 = 1666.
    // A2: 6000 * 10000 / 10000 = 6000. M1 acme: 24333, cogs 90.00.
    let acme = store
        .member_dataset(&Scope {
            brand: Some("acme".into()),
            ..scope()
        })
        .await
        .unwrap();
    assert_eq!(
        by_net(&acme),
        vec![(2, 2, 24333, 9000, 1666, "tmall".to_string())]
    );

    // As-of before the last order: C2 and A2/A3 are out; M1 has A1 only.
    let early = store
        .member_dataset(&Scope {
            as_of_day: Some(an::date_to_day(
                chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
            )),
            ..scope()
        })
        .await
        .unwrap();
    assert_eq!(
        by_net(&early),
        vec![(1, 1, 22000, 8000, 3000, "tmall".to_string())]
    );
    // M2 (refunded) and M3 (cancelled) have orders but no purchase by then.
    assert_eq!(early.members_without_purchases, 2);

    // Products. SKU-A: A1 (18333) + A2 (6000), 3 units, cogs 90.00, 2 orders,
    // first order of M1 (A1), M1 bought again -> repeaters 1.
    // SKU-B: A1 22000 * 4000 / 24000 = 3666, A3 5000, C2 10000 -> 18666; 4 units;
    // cogs 80.00; 3 orders; first orders A1 (M1, repeats) and C2 (M3, does not).
    let p = store.product_data(&scope()).await.unwrap();
    let row = |k: &str| p.products.iter().find(|x| x.key == k).unwrap().clone();
    let a = row("SKU-A");
    assert_eq!(
        (
            a.net_revenue,
            a.units,
            a.cogs,
            a.orders,
            a.first_orders,
            a.first_order_repeaters
        ),
        (24333, 3, 9000, 2, 1, 1)
    );
    let b = row("SKU-B");
    assert_eq!(
        (
            b.net_revenue,
            b.units,
            b.cogs,
            b.orders,
            b.first_orders,
            b.first_order_repeaters
        ),
        (18666, 4, 8000, 3, 2, 1)
    );
    assert_eq!((p.total_orders, p.total_first_orders), (4, 2));
    let socks = p.categories.iter().find(|x| x.key == "socks").unwrap();
    assert_eq!(socks.orders, 3);

    // A new order is in the model at once (a fact written after the snapshot).
    let more = dir.path().join("more.csv");
    std::fs::write(
        &more,
        format!("{HEADER}D1,2024-03-31T21:00:00+08:00,pos,paid,M4,SKU-A,Alpha,tops,acme,1,100.00,30.00,0,0,0\n"),
    )
    .unwrap();
    let before = store.analytics_state().await.unwrap();
    let mut w = touchpoint_store::import::Writer::new(IdentityConfig::default());
    let opts = options(InputFormat::Canonical, None);
    let recs: Vec<_> = touchpoint_core::ingest::open(
        InputFormat::Canonical,
        Box::new(std::fs::File::open(&more).unwrap()),
        "more.csv",
        &opts.read,
    )
    .unwrap()
    .map(|r| r.unwrap())
    .collect();
    w.write_orders(&store, &recs).await.unwrap();
    let after = store.analytics_state().await.unwrap();
    assert!(after.data_version > before.data_version);
    assert!(after.fact_seq > after.snapshot_seq);
    let d = store.member_dataset(&scope()).await.unwrap();
    assert_eq!(d.members.len(), 3);
    assert_eq!(d, store.member_dataset_sql(&scope()).await.unwrap());
    store.close().await;
}

async fn demo_store(url: &str, dir: &Path) -> Store {
    let cfg = DemoConfig {
        members: 1500,
        ..Default::default()
    };
    let manifest = demo::generate(&cfg, dir).unwrap();
    let store = Store::connect(url).await.unwrap();
    for f in &manifest.files {
        import(&store, &f.path, f.format, Some(f.channel.as_str())).await;
    }
    store
}

/// Every report as JSON, unfiltered and on filtered scopes, from the analytics
/// model (or, with `sql`, from the SQL aggregation it replaces).
async fn all_reports(store: &Store, sql: bool) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let brand = {
        let mut h = store.acquire().await.unwrap();
        h.conn()
            .fetch_opt(
                "SELECT brand FROM products WHERE brand IS NOT NULL ORDER BY brand",
                &[],
                |r| r.text(0),
            )
            .await
            .unwrap()
            .expect("the demo has brands")
    };
    let day = |y, m, d| an::date_to_day(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
    for s in [
        scope(),
        Scope {
            channel: Some("tmall".into()),
            ..scope()
        },
        Scope {
            brand: Some(brand.clone()),
            channel: Some("jd".into()),
            ..scope()
        },
        Scope {
            as_of_day: Some(day(2025, 3, 31)),
            from_day: Some(day(2024, 11, 1)),
            to_day: Some(day(2025, 1, 31)),
            ..scope()
        },
        Scope {
            since_day: Some(an::date_to_day(
                chrono::NaiveDate::from_ymd_opt(2025, 7, 1).unwrap(),
            )),
            ..scope()
        },
    ] {
        let mut d = if sql {
            store.member_dataset_sql(&s).await.unwrap()
        } else {
            store.member_dataset(&s).await.unwrap()
        };
        d.members.sort_by_key(|m| m.member_id);
        let p = store.product_data(&s).await.unwrap();
        let cfg = AbcConfig {
            fulfilment_cost: 800,
            channel_fees: vec![("tmall".into(), 0.05)],
            ..AbcConfig::default()
        };
        out.push(serde_json::to_value(&d).unwrap());
        out.push(serde_json::to_value(an::rfm(&d, true)).unwrap());
        out.push(serde_json::to_value(an::abc(&d, &cfg, true)).unwrap());
        out.push(serde_json::to_value(an::retention(&d, &RetentionThresholds::default())).unwrap());
        out.push(serde_json::to_value(an::cohorts(&d, true)).unwrap());
        out.push(serde_json::to_value(an::channels(&d)).unwrap());
        out.push(serde_json::to_value(an::products(&p)).unwrap());
    }
    out
}

#[tokio::test]
async fn sqlite_and_postgres_give_identical_reports_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = demo_store(
        &format!("sqlite://{}", dir.path().join("demo.db").display()),
        &dir.path().join("files-sqlite"),
    )
    .await;
    let a = all_reports(&sqlite, false).await;
    // The model kept by the write path, the SQL aggregation it replaces, and a
    // rebuild of the model from the orders agree.
    assert_eq!(a, all_reports(&sqlite, true).await);
    sqlite.rebuild_facts().await.unwrap();
    assert_eq!(a, all_reports(&sqlite, false).await);
    let d: Dataset = serde_json::from_value(a[0].clone()).unwrap();
    assert!(d.members.len() > 1000, "{}", d.members.len());
    sqlite.close().await;

    let Ok(base) = std::env::var("TOUCHPOINT_TEST_POSTGRES_URL") else {
        eprintln!("TOUCHPOINT_TEST_POSTGRES_URL not set: PostgreSQL half skipped");
        return;
    };
    let name = format!(
        "tp_analytics_{}_{}",
        std::process::id(),
        touchpoint_store::now_ms()
    );
    let admin = Store::connect_without_migrating(&base).await.unwrap();
    let mut h = admin.acquire().await.unwrap();
    h.conn()
        .exec(&format!("CREATE DATABASE {name}"), &[])
        .await
        .unwrap();
    drop(h);
    let url = match base.rfind('/') {
        Some(i) if i > base.find("://").unwrap() + 2 => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    let pg = demo_store(&url, &dir.path().join("files-pg")).await;
    let b = all_reports(&pg, false).await;
    assert_eq!(b, all_reports(&pg, true).await);
    pg.close().await;
    let mut h = admin.acquire().await.unwrap();
    h.conn()
        .exec(&format!("DROP DATABASE {name} WITH (FORCE)"), &[])
        .await
        .unwrap();
    drop(h);
    admin.close().await;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}
