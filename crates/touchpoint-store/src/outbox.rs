//! Reading the outbox after commit: durable cursors, at least once.
//!
//! A consumer (webhooks, e-mail, campaigns) calls [`Store::outbox_poll`] for
//! the events after its cursor, handles them, then [`Store::outbox_ack`]s the
//! last one it handled. A crash between handling and acknowledging hands the
//! same events out again, so consumers deduplicate by [`OutboxEvent::id`]
//! (delivery keys in later capabilities are built from it).
//!
//! **No event is skipped.** On SQLite one transaction writes at a time, so
//! outbox ids are in commit order and the cursor is the last id. On
//! PostgreSQL ids are taken when a transaction inserts, not when it commits:
//! a transaction that took id 10 may commit after one that took id 11. Each
//! row therefore carries the id of the transaction that wrote it (`tx`), and
//! a poll only returns events of transactions older than every transaction
//! still running (`pg_snapshot_xmin`), ordered by (`tx`, `id`). Every
//! transaction below that horizon has finished, so nothing can later appear
//! behind the cursor.

use touchpoint_core::domain::DomainEvent;

use crate::db::Val;
use crate::{now_ms, Store, StoreError};

/// An event read from the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Outbox id: unique, the key consumers deduplicate by.
    pub id: i64,
    /// The writing transaction's order key (0 on SQLite).
    pub tx: i64,
    /// When it was recorded, UTC milliseconds.
    pub at: i64,
    /// The event.
    pub event: DomainEvent,
}

impl Store {
    /// Up to `limit` events after `consumer`'s cursor, oldest first. A new
    /// consumer starts at the beginning.
    pub async fn outbox_poll(
        &self,
        consumer: &str,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let (tx, pos) = c
            .fetch_opt(
                "SELECT tx, position FROM outbox_cursors WHERE consumer = $1",
                &[consumer.into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?
            .unwrap_or((i64::MIN, 0));
        let limit = Val::I(limit.clamp(1, 10_000) as i64);
        let sql = match &self.db {
            crate::Db::Sqlite(..) => {
                "SELECT id, tx, at, payload FROM outbox WHERE id > $2 AND $1 = $1 ORDER BY id LIMIT $3"
            }
            crate::Db::Postgres(_) => {
                "SELECT id, tx, at, payload FROM outbox \
                 WHERE (tx, id) > ($1, $2) AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY tx, id LIMIT $3"
            }
        };
        c.fetch(sql, &[tx.into(), pos.into(), limit], |r| {
            let payload = r.text(3)?;
            let event = serde_json::from_str(&payload).map_err(|e| {
                StoreError::Corrupt(format!("outbox event {}: {e}", r.i64(0).unwrap_or(0)))
            })?;
            Ok(OutboxEvent {
                id: r.i64(0)?,
                tx: r.i64(1)?,
                at: r.i64(2)?,
                event,
            })
        })
        .await
    }

    /// Move `consumer`'s cursor past `last` (never backwards).
    pub async fn outbox_ack(&self, consumer: &str, last: &OutboxEvent) -> Result<(), StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .exec(
                "INSERT INTO outbox_cursors (consumer, tx, position, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (consumer) DO UPDATE SET tx = excluded.tx, position = excluded.position, \
                 updated_at = excluded.updated_at \
                 WHERE (outbox_cursors.tx < excluded.tx) \
                    OR (outbox_cursors.tx = excluded.tx AND outbox_cursors.position < excluded.position)",
                &[
                    consumer.into(),
                    last.tx.into(),
                    last.id.into(),
                    now_ms().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Events recorded in total, for status pages and tests.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        let mut h = self.acquire().await?;
        Ok(h.conn()
            .fetch_opt("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox", &[], |r| {
                r.i64(0)
            })
            .await?
            .unwrap_or(0))
    }
}
