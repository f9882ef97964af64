//! The unit of work: one transaction that carries a change and its
//! consequences, and records what happened as domain events.
//!
//! ```text
//! any door -> normaliser (core) -> UnitOfWork: BEGIN
//!                                    rows (orders, identities, ...)
//!                                    in-transaction handlers (analytics model, ...)
//!                                    outbox rows for the events emitted
//!                                  COMMIT
//!          -> outbox consumers after commit (crate::outbox)
//! ```
//!
//! Callers extend a unit of work: the [`crate::import::Writer`] writes orders
//! and identity changes into one, and a caller may write more of its own rows
//! into the same transaction before [`UnitOfWork::commit`]. Events are
//! buffered in memory and inserted at commit, in the same transaction, so a
//! unit of work that is dropped or rolled back leaves no event.
//!
//! On SQLite a unit of work waits its turn for the store's one writing
//! connection ([`crate::WriteQueue`]), then starts with `BEGIN IMMEDIATE`: it takes the write lock at once, so two
//! units of work never deadlock upgrading a read lock. A unit of work must
//! not open another one before it ends (it would wait for itself).

use touchpoint_core::domain::DomainEvent;

use crate::db::{Conn, Val};
use crate::{now_ms, Store, StoreError, Tx};

/// One transaction with its buffered domain events.
pub struct UnitOfWork {
    tx: Tx,
    events: Vec<DomainEvent>,
    now: i64,
    /// The identity version locked in this transaction, once locked.
    pub(crate) identity_version: Option<i64>,
    /// The fact sequence number taken by this transaction, once taken.
    pub(crate) fact_seq: Option<i64>,
    /// Identifiers created in this transaction (the referral rule: a friend
    /// is new when every identifier of theirs was created in the unit of
    /// work that carries the invite code).
    pub(crate) new_identifiers: std::collections::HashSet<i64>,
}

/// What a committed unit of work recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Outbox ids of the events, in emission order.
    pub event_ids: Vec<i64>,
}

impl Store {
    /// Start a unit of work.
    pub async fn unit_of_work(&self) -> Result<UnitOfWork, StoreError> {
        let tx = match &self.db {
            crate::Db::Sqlite(_, w) => Tx::Sqlite(w.writer().begin_with("BEGIN IMMEDIATE").await?),
            crate::Db::Postgres(p) => Tx::Pg(p.begin().await?),
        };
        Ok(UnitOfWork {
            tx,
            events: Vec::new(),
            now: now_ms(),
            identity_version: None,
            fact_seq: None,
            new_identifiers: std::collections::HashSet::new(),
        })
    }
}

impl UnitOfWork {
    /// The connection to write on.
    pub fn conn(&mut self) -> Conn<'_> {
        self.tx.conn()
    }

    /// The time of this unit of work (UTC milliseconds), the same for every
    /// row it writes.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Record an event; it is written to the outbox at commit.
    pub fn emit(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    /// The events emitted so far.
    pub fn events(&self) -> &[DomainEvent] {
        &self.events
    }

    /// The fact sequence number of this transaction: taken on first use with
    /// a row lock on `analytics_state`, which orders the transactions that
    /// write analytics facts (see [`crate::facts`]).
    pub(crate) async fn fact_seq(&mut self) -> Result<i64, StoreError> {
        if let Some(s) = self.fact_seq {
            return Ok(s);
        }
        let mut c = self.tx.conn();
        c.exec(
            "UPDATE analytics_state SET fact_seq = fact_seq + 1, data_version = data_version + 1 WHERE id = 1",
            &[],
        )
        .await?;
        let s = c
            .fetch_opt(
                "SELECT fact_seq FROM analytics_state WHERE id = 1",
                &[],
                |r| r.i64(0),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("analytics_state row is missing".into()))?;
        self.fact_seq = Some(s);
        Ok(s)
    }

    /// Write the buffered events to the outbox and commit.
    pub async fn commit(mut self) -> Result<Committed, StoreError> {
        let mut ids = Vec::with_capacity(self.events.len());
        if !self.events.is_empty() {
            let now = self.now;
            let events = std::mem::take(&mut self.events);
            let mut c = self.tx.conn();
            // One statement per event keeps the ids in emission order and
            // returns them; events come in small numbers per change, and an
            // import chunk writes them in batches below.
            if events.len() <= 16 {
                for e in &events {
                    let id = c
                        .fetch_opt(
                            "INSERT INTO outbox (at, kind, member_id, payload) VALUES ($1, $2, $3, $4) RETURNING id",
                            &outbox_vals(now, e)?,
                            |r| r.i64(0),
                        )
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("outbox insert returned no id".into()))?;
                    ids.push(id);
                }
            } else {
                let mut vals = Vec::with_capacity(events.len() * 4);
                for e in &events {
                    vals.extend(outbox_vals(now, e)?);
                }
                c.insert_many(
                    "INSERT INTO outbox (at, kind, member_id, payload)",
                    "",
                    4,
                    &vals,
                )
                .await?;
            }
        }
        self.tx.commit().await?;
        Ok(Committed { event_ids: ids })
    }

    /// Roll back: nothing of this unit of work, and no event, remains.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Pg(t) => t.rollback().await?,
        }
        Ok(())
    }
}

fn outbox_vals(now: i64, e: &DomainEvent) -> Result<[Val; 4], StoreError> {
    let payload = serde_json::to_string(e)
        .map_err(|x| StoreError::Corrupt(format!("cannot serialise an event: {x}")))?;
    Ok([
        now.into(),
        e.kind().into(),
        e.member_id().into(),
        payload.into(),
    ])
}
