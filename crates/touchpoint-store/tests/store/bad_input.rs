//! Bad input: every malformed-file class reports its line, and good rows go in.

use touchpoint_core::ingest::{Encoding, InputFormat};
use touchpoint_store::import::{import_files, ImportError};

use crate::common::*;

const HEADER: &str = "order_id,ordered_at,status,sku,quantity,unit_price,phone";

/// A canonical file with `bad` as its third data row (line 4) between good ones.
fn canonical_with(bad: &str) -> String {
    format!(
        "{HEADER}\n\
         A1,2025-01-01 10:00:00,paid,S1,1,10.00,13800000001\n\
         A2,2025-01-02 10:00:00,paid,S1,2,10.00,13800000002\n\
         {bad}\n\
         A4,2025-01-04 10:00:00,paid,S2,1,5.50,13800000004\n"
    )
}

/// Import `content`; expect orders A1, A2, A4 in and one rejected order whose
/// first error is on `line` and names `column`.
async fn expect_rejected(content: &str, line: u64, column: Option<&str>, message_has: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", content);
    for db in backends().await {
        let r = import(&db.store, &path, InputFormat::Canonical, "web").await;
        assert_eq!(r.orders.inserted, 3, "{}: good rows went in", db.name);
        assert_eq!(r.orders.rejected, 1, "{}", db.name);
        let e = &r.files[0].rejected[0].errors[0];
        assert_eq!(e.line, line, "{}: {e}", db.name);
        assert_eq!(e.column.as_deref(), column, "{}: {e}", db.name);
        assert!(e.message.contains(message_has), "{}: {e}", db.name);
        assert_eq!(r.files[0].path, path.display().to_string());
        let ids = db
            .rows("SELECT order_id FROM orders ORDER BY order_id", 1)
            .await;
        assert_eq!(ids, [["A1"], ["A2"], ["A4"]]);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn bad_date_is_rejected_with_its_line_and_column() {
    expect_rejected(
        &canonical_with("A3,11/01/2025,paid,S1,1,10.00,13800000003"),
        4,
        Some("ordered_at"),
        "expected a date",
    )
    .await;
}

#[tokio::test]
async fn bad_number_is_rejected_with_its_line_and_column() {
    expect_rejected(
        &canonical_with("A3,2025-01-03 10:00:00,paid,S1,1,ten,13800000003"),
        4,
        Some("unit_price"),
        "amount",
    )
    .await;
}

#[tokio::test]
async fn unknown_status_is_rejected_with_the_accepted_values() {
    expect_rejected(
        &canonical_with("A3,2025-01-03 10:00:00,shipped,S1,1,10.00,13800000003"),
        4,
        Some("status"),
        "partially_refunded",
    )
    .await;
}

#[tokio::test]
async fn ragged_row_is_rejected_with_its_line() {
    expect_rejected(
        &canonical_with("A3,2025-01-03 10:00:00,paid,S1"),
        4,
        None,
        "fields",
    )
    .await;
}

#[tokio::test]
async fn wrong_encoding_rejects_the_row_and_suggests_gbk() {
    let mut bytes =
        canonical_with("A3,2025-01-03 10:00:00,paid,SKU,1,10.00,13800000003").into_bytes();
    // Put GBK bytes for "精华" into the sku of line 4 (not valid UTF-8).
    let (gbk, _, _) = encoding_rs::GBK.encode("精华");
    let pos = bytes.windows(3).position(|w| w == b"SKU").unwrap();
    bytes.splice(pos..pos + 3, gbk.iter().copied());
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", &bytes);
    for db in backends().await {
        let mut o = options(InputFormat::Canonical, "web");
        o.read.encoding = Some(Encoding::Utf8);
        let r = import_with(&db.store, &path, &o).await;
        assert_eq!(
            (r.orders.inserted, r.orders.rejected),
            (3, 1),
            "{}",
            db.name
        );
        let e = &r.files[0].rejected[0].errors[0];
        assert_eq!(e.line, 4);
        assert!(e.message.contains("gbk"), "{e}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn missing_column_fails_at_once_listing_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "orders.csv",
        "order_id,ordered_at,sku,quantity,phone\nA1,2025-01-01,S1,1,13800000001\n",
    );
    for db in backends().await {
        let err = import_files(
            &db.store,
            std::slice::from_ref(&path),
            &options(InputFormat::Canonical, "web"),
            &|_| {},
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ImportError::File { .. }), "{msg}");
        assert!(
            msg.contains("orders.csv") && msg.contains("unit_price"),
            "{msg}"
        );
        assert!(msg.contains("found"), "{msg}");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_wrong_file_stops_the_import_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.csv",
        canonical_with("A3,2025-01-03 10:00:00,paid,S1,1,10.00,13800000003"),
    );
    let bad = write(dir.path(), "bad.csv", "x,y\n1,2\n");
    for db in backends().await {
        let err = import_files(
            &db.store,
            &[good.clone(), bad.clone()],
            &options(InputFormat::Canonical, "web"),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("bad.csv"), "{err}");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn empty_file_fails_and_header_only_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.csv", "");
    let header_only = write(dir.path(), "header.csv", format!("{HEADER}\n"));
    for db in backends().await {
        let err = import_files(
            &db.store,
            std::slice::from_ref(&empty),
            &options(InputFormat::Canonical, "web"),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let r = import(&db.store, &header_only, InputFormat::Canonical, "web").await;
        assert_eq!((r.orders.inserted, r.orders.rejected), (0, 0));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn strict_imports_nothing_and_rejects_file_reimports_after_fixing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "orders.csv",
        canonical_with("A3,2025-13-03 10:00:00,paid,S1,1,10.00,13800000003"),
    );
    let rejects = dir.path().join("rejects.csv");
    for db in backends().await {
        let mut o = options(InputFormat::Canonical, "web");
        o.strict = true;
        let r = import_with(&db.store, &path, &o).await;
        assert!(r.strict_aborted);
        assert_eq!(r.orders.rejected, 1);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);

        let mut o = options(InputFormat::Canonical, "web");
        o.rejects = Some(rejects.clone());
        let r = import_with(&db.store, &path, &o).await;
        assert_eq!((r.orders.inserted, r.orders.rejected), (3, 1));
        let written = std::fs::read_to_string(&rejects).unwrap();
        assert_eq!(
            written,
            format!("{HEADER}\nA3,2025-13-03 10:00:00,paid,S1,1,10.00,13800000003\n")
        );
        // Fix the month and import the rejects file: the missing order goes in.
        let fixed = write(
            dir.path(),
            "fixed.csv",
            written.replace("2025-13-03", "2025-01-03"),
        );
        let r = import(&db.store, &fixed, InputFormat::Canonical, "web").await;
        assert_eq!((r.orders.inserted, r.orders.rejected), (1, 0));
        assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 4);
        db.cleanup().await;
    }
}
