//! CLV over the store: purchases in, per-member predictions out.

use std::collections::BTreeMap;

use touchpoint_core::demo::{self, DemoConfig};
use touchpoint_store::clv::MemberPrediction;
use touchpoint_store::Val;

use crate::common::*;

/// On a small demo brand, the purchases read for CLV are exactly the paid and
/// partially refunded orders (checked against a plain query summed per
/// member); predictions are stored, read back
/// unchanged, rewriting them changes nothing, and a member no longer
/// predicted loses its row.
#[tokio::test]
async fn purchases_match_orders_and_predictions_round_trip_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let m = demo::generate(
        &DemoConfig {
            members: 1500,
            ..DemoConfig::default()
        },
        dir.path(),
    )
    .unwrap();
    for db in backends().await {
        for f in &m.files {
            let mut o = options(f.format, f.channel.as_str());
            o.chunk_orders = 1000;
            import_with(&db.store, &f.path, &o).await;
        }
        let p = db.store.purchase_transactions().await.unwrap();
        assert!(p.len() > 1000, "{}: {} purchases", db.name, p.len());

        // Independent count and totals: every order row, filtered in Rust.
        let mut h = db.store.acquire().await.unwrap();
        let all: Vec<(i64, String, i64, i64)> = h
            .conn()
            .fetch(
                "SELECT member_id, status, gross_amount, refunded_amount FROM orders",
                &[] as &[Val],
                |r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?, r.i64(3)?)),
            )
            .await
            .unwrap();
        drop(h);
        let mut want: BTreeMap<i64, (usize, i64)> = BTreeMap::new();
        for (member, status, gross, refunded) in &all {
            if status == "paid" || status == "partially_refunded" {
                let e = want.entry(*member).or_default();
                e.0 += 1;
                e.1 += gross - refunded;
            }
        }
        let mut got: BTreeMap<i64, (usize, i64)> = BTreeMap::new();
        for i in 0..p.len() {
            let e = got.entry(p.member_id[i]).or_default();
            e.0 += 1;
            e.1 += p.net_amount[i];
        }
        assert_eq!(got, want, "{}", db.name);
        assert!(
            all.len() > p.len(),
            "{}: the demo has non-purchase orders",
            db.name
        );
        let purchases = want.values().map(|v| v.0).sum::<usize>();
        assert_eq!(p.len(), purchases);
        // Predictions: store, read back, rewrite.
        let members: Vec<i64> = got.keys().copied().collect();
        let preds: Vec<MemberPrediction> = members
            .iter()
            .enumerate()
            .map(|(k, &member_id)| MemberPrediction {
                member_id,
                p_alive: 1.0 / (1.0 + k as f64 / 7.0),
                expected_purchases: k as f64 * 0.013,
                expected_spend: (k % 5 != 0).then(|| 100.0 + k as f64 / 3.0),
                clv: (k % 5 != 0).then_some(k as f64 * 0.1),
                horizon_days: 364.0,
                computed_at: 1_700_000_000_000,
            })
            .collect();
        let w = db.store.store_predictions("bgnbd", &preds).await.unwrap();
        assert_eq!(w.upserted as usize, preds.len(), "{}", db.name);
        assert_eq!(w.removed, 0);
        assert_eq!(
            db.store.member_predictions("bgnbd").await.unwrap(),
            preds,
            "{}",
            db.name
        );
        assert!(db
            .store
            .member_predictions("paretonbd")
            .await
            .unwrap()
            .is_empty());

        // The same rows again, with a later run time: nothing changes.
        let again: Vec<MemberPrediction> = preds
            .iter()
            .map(|p| MemberPrediction {
                computed_at: 1_800_000_000_000,
                ..*p
            })
            .collect();
        let w = db.store.store_predictions("bgnbd", &again).await.unwrap();
        assert_eq!((w.upserted, w.removed), (0, 0), "{}", db.name);
        assert_eq!(db.store.member_predictions("bgnbd").await.unwrap(), preds);

        // One member changes, one is no longer predicted.
        let mut next = preds.clone();
        next[0].p_alive = 0.25;
        next[0].computed_at = 1_900_000_000_000;
        let gone = next.pop().unwrap().member_id;
        let w = db.store.store_predictions("bgnbd", &next).await.unwrap();
        assert_eq!((w.upserted, w.removed), (1, 1), "{}", db.name);
        let back = db.store.member_predictions("bgnbd").await.unwrap();
        assert_eq!(back, next, "{}", db.name);
        assert!(back.iter().all(|p| p.member_id != gone));
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM member_predictions").await as usize,
            next.len()
        );
        db.cleanup().await;
    }
}

/// The store-backed pipeline: `clv_predict` fits, predicts every member,
/// stores the predictions and the model summary in one run; a second run
/// changes no prediction row; `clv_models` returns the stored summary.
#[tokio::test]
async fn clv_predict_stores_predictions_and_the_model() {
    use touchpoint_core::clv::pipeline::{ClvOptions, ModelKind};
    use touchpoint_core::clv::TimeUnit;
    use touchpoint_store::clv::{FitRequest, PredictRequest};
    let dir = tempfile::tempdir().unwrap();
    let m = demo::generate(
        &DemoConfig {
            members: 800,
            ..DemoConfig::default()
        },
        dir.path(),
    )
    .unwrap();
    for db in backends().await {
        assert!(db.store.clv_models().await.unwrap().is_empty());
        for f in &m.files {
            import_with(&db.store, &f.path, &options(f.format, f.channel.as_str())).await;
        }
        let req = PredictRequest {
            model: ModelKind::BgNbd,
            options: ClvOptions {
                unit: TimeUnit::Week,
                horizon: Some("12months".parse().unwrap()),
                ..ClvOptions::default()
            },
            timezone: chrono_tz::Asia::Shanghai,
            store: true,
        };
        let o = db.store.clv_predict(&req).await.unwrap();
        let w = o.write.unwrap();
        assert_eq!(w.upserted as usize, o.predicted, "{}", db.name);
        assert_eq!(o.summary.horizon_days, 365.25);
        let stored = db.store.member_predictions("bgnbd").await.unwrap();
        assert_eq!(stored.len(), o.predicted);
        assert!(stored
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.p_alive) && p.horizon_days == 365.25));
        let models = db.store.clv_models().await.unwrap();
        // Parameters go through JSON text, whose parser (serde_json without
        // float_roundtrip) may be one unit in the last place off: 1e-15
        // relative; everything else is exact.
        assert_eq!(models.len(), 1);
        let same = |a: &[touchpoint_core::clv::pipeline::Param],
                    b: &[touchpoint_core::clv::pipeline::Param]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    let near = |u: f64, v: f64| (u - v).abs() <= 1e-15 * v.abs();
                    x.name == y.name
                        && near(x.value, y.value)
                        && match (x.std_error, y.std_error) {
                            (Some(u), Some(v)) => near(u, v),
                            (u, v) => u == v,
                        }
                })
        };
        let mut got = models[0].clone();
        assert!(same(&got.params, &o.summary.params), "{}", db.name);
        let (gs, ws) = (
            got.spend.as_ref().unwrap(),
            o.summary.spend.as_ref().unwrap(),
        );
        assert!(same(&gs.params, &ws.params), "{}", db.name);
        got.params = o.summary.params.clone();
        got.spend = o.summary.spend.clone();
        assert_eq!(got, o.summary, "{}", db.name);
        assert_eq!(models[0].params.len(), 4);
        assert_eq!(models[0].n_customers as usize, o.predicted);
        assert!(models[0].spend.is_some());
        // Serialisable for GET /api/clv/models.
        let v = serde_json::to_value(&models).unwrap();
        assert_eq!(v[0]["model"], "bgnbd");
        assert_eq!(v[0]["params"][0]["name"], "r");

        let again = db.store.clv_predict(&req).await.unwrap();
        let w = again.write.unwrap();
        assert_eq!((w.upserted, w.removed), (0, 0), "{}", db.name);
        let models = db.store.clv_models().await.unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].fitted_at, again.summary.fitted_at);

        let fit = db
            .store
            .clv_fit(&FitRequest {
                models: vec![ModelKind::BgNbd, ModelKind::MbgNbd],
                options: req.options,
                timezone: req.timezone,
            })
            .await
            .unwrap();
        assert_eq!(fit.models.len(), 2);
        assert_eq!(fit.customers, o.predicted);
        assert_eq!(
            fit.models[0].report().params,
            o.summary.params.iter().map(|p| p.value).collect::<Vec<_>>()
        );
        db.cleanup().await;
    }
}
