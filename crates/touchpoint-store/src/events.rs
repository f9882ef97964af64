//! Tracking events: deduplicated, durable writes and reads.
//!
//! An event is keyed by (source, messageId) in `event_ids`, which keeps each
//! key at least 7 days ([`DEDUP_RETENTION_MS`]) so that a client retrying a
//! batch adds nothing. Accepted events go to `events` in the same
//! transaction; events that cannot be attributed go to `rejected_events` with
//! the reason. Events are attributed to members at read time through the
//! identifiers table, so events sent before a person was identified show up
//! on the member once they are.

use std::collections::HashSet;

use serde::Serialize;
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::MemberId;

use crate::db::Val;
use crate::{Store, StoreError, UnitOfWork};

/// How long a (source, messageId) key is kept for deduplication: 7 days.
pub const DEDUP_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The source (channel) of the write key.
    pub source: String,
    /// The client's messageId (or one generated on receipt).
    pub message_id: String,
    /// `identify`, `track`, `page`, `screen`, `group` or `alias`.
    pub kind: String,
    /// The event name (track), page or screen name.
    pub name: Option<String>,
    /// The userId (a member number).
    pub user_id: Option<String>,
    /// The anonymous_id identifier value, `source:anonymousId`.
    pub anon_key: Option<String>,
    /// When it happened (corrected for client clock skew), UTC milliseconds.
    pub occurred_at: i64,
    /// When the server received it, UTC milliseconds.
    pub received_at: i64,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The normalised event, JSON.
    pub payload: String,
    /// The campaign it came from (Segment `context.campaign.name`), for
    /// first-touch attribution (docs/acquisition.md).
    pub campaign: Option<String>,
    /// The campaign's source (`context.campaign.source`, the utm_source),
    /// lower-cased: the channel the campaign ran on.
    pub campaign_source: Option<String>,
}

/// An event refused, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRejected {
    /// The source.
    pub source: String,
    /// Its messageId if it had one.
    pub message_id: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// When it was received, UTC milliseconds.
    pub received_at: i64,
    /// The event as received, JSON.
    pub payload: String,
}

/// What a write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventWriteCounts {
    /// New events stored.
    pub accepted: u64,
    /// Events already stored (same source and messageId).
    pub duplicates: u64,
    /// Events refused and kept in the rejected table.
    pub rejected: u64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    /// Sequence number (the cursor).
    pub id: i64,
    /// Source.
    pub source: String,
    /// messageId.
    pub message_id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Event, page or screen name.
    pub name: Option<String>,
    /// userId.
    pub user_id: Option<String>,
    /// When it happened, UTC milliseconds.
    pub occurred_at: i64,
    /// When it was received, UTC milliseconds.
    pub received_at: i64,
    /// The normalised event.
    pub payload: serde_json::Value,
}

/// A rejected event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedRow {
    /// Sequence number (the cursor).
    pub id: i64,
    /// Source.
    pub source: String,
    /// messageId, if it had one.
    pub message_id: Option<String>,
    /// Why.
    pub reason: String,
    /// Received at, UTC milliseconds.
    pub received_at: i64,
    /// The event as received.
    pub payload: serde_json::Value,
}

/// A page of rows with the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

fn page<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(id) } else { None };
    Page {
        items: rows,
        next_cursor,
    }
}

fn json(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))
}

fn decode_event(r: crate::RowRef<'_>) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        id: r.i64(0)?,
        source: r.text(1)?,
        message_id: r.text(2)?,
        kind: r.text(3)?,
        name: r.opt_text(4)?,
        user_id: r.opt_text(5)?,
        occurred_at: r.i64(6)?,
        received_at: r.i64(7)?,
        payload: json(r.text(8)?),
    })
}

const EVENT_COLS: &str =
    "id, source, message_id, type, name, user_id, occurred_at, received_at, payload";

impl Store {
    /// Which of these (source, messageId) keys are already stored.
    pub async fn known_event_ids(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let mut found = HashSet::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let mut sources: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        for s in sources {
            let ids: Vec<&str> = keys
                .iter()
                .filter(|k| k.0 == s)
                .map(|k| k.1.as_str())
                .collect();
            for chunk in ids.chunks(2_000) {
                let sql = format!(
                    "SELECT message_id FROM event_ids WHERE source = $1 AND message_id IN ({})",
                    c.param_list(2, chunk.len())
                );
                let mut vals: Vec<Val> = vec![s.into()];
                vals.extend(chunk.iter().map(|x| Val::from(*x)));
                for id in c.fetch(&sql, &vals, |r| r.text(0)).await? {
                    found.insert((s.to_string(), id));
                }
            }
        }
        Ok(found)
    }

    /// Store events and rejected events in one transaction, skipping events whose
    /// (source, messageId) is already stored (or repeated within `events`).
    /// Returns, for each event, whether it was new, and the counts.
    pub async fn write_events(
        &self,
        events: &[NewEvent],
        rejected: &[NewRejected],
    ) -> Result<(Vec<bool>, EventWriteCounts), StoreError> {
        let mut uow = self.unit_of_work().await?;
        let r = write_events_in(&mut uow, events, rejected).await?;
        uow.commit().await?;
        Ok(r)
    }

    /// Forget deduplication keys received before `before` (UTC ms); returns how many.
    pub async fn prune_event_ids(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx
            .conn()
            .exec(
                "DELETE FROM event_ids WHERE received_at < $1",
                &[before.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A page of events in arrival order, optionally of one source.
    pub async fn list_events(
        &self,
        source: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<EventRow>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut h = self.acquire().await?;
        let rows = h
            .conn()
            .fetch(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE id > $1 AND ($2 = '' OR source = $2) ORDER BY id LIMIT $3"
                ),
                &[
                    after.unwrap_or(0).into(),
                    source.unwrap_or("").into(),
                    i64::from(limit + 1).into(),
                ],
                decode_event,
            )
            .await?;
        Ok(page(rows, limit, |e| e.id))
    }

    /// A page of a member's events, newest first: events whose userId is one of
    /// the member's member numbers or whose anonymousId is one of its anonymous ids.
    pub async fn member_events(
        &self,
        member: MemberId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<EventRow>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut h = self.acquire().await?;
        let rows = h
            .conn()
            .fetch(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE id < $1 AND ( \
                       user_id IN (SELECT value FROM identifiers WHERE member_id = $2 AND kind = 'member_no') \
                       OR anon_key IN (SELECT value FROM identifiers WHERE member_id = $2 AND kind = 'anonymous_id')) \
                     ORDER BY id DESC LIMIT $3"
                ),
                &[
                    before.unwrap_or(i64::MAX).into(),
                    member.get().into(),
                    i64::from(limit + 1).into(),
                ],
                decode_event,
            )
            .await?;
        Ok(page(rows, limit, |e| e.id))
    }

    /// A page of rejected events in arrival order.
    pub async fn rejected_events(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page<RejectedRow>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut h = self.acquire().await?;
        let rows = h
            .conn()
            .fetch(
                "SELECT id, source, message_id, reason, received_at, payload FROM rejected_events \
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[after.unwrap_or(0).into(), i64::from(limit + 1).into()],
                |r| {
                    Ok(RejectedRow {
                        id: r.i64(0)?,
                        source: r.text(1)?,
                        message_id: r.opt_text(2)?,
                        reason: r.text(3)?,
                        received_at: r.i64(4)?,
                        payload: json(r.text(5)?),
                    })
                },
            )
            .await?;
        Ok(page(rows, limit, |e| e.id))
    }

    /// Number of stored events and of distinct (source, messageId) among them.
    pub async fn event_totals(&self, source: Option<&str>) -> Result<(i64, i64), StoreError> {
        let mut h = self.acquire().await?;
        let row = h
            .conn()
            .fetch_opt(
                "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM events WHERE ($1 = '' OR source = $1)",
                &[source.unwrap_or("").into()],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?;
        Ok(row.unwrap_or((0, 0)))
    }
}

/// [`Store::write_events`] inside a unit of work: the claims of the
/// (source, messageId) keys, the events and the rejected events commit with
/// whatever else the unit of work writes (the identity and order effects of
/// the events), and each new event is recorded as an `event_tracked` domain
/// event.
pub async fn write_events_in(
    uow: &mut UnitOfWork,
    events: &[NewEvent],
    rejected: &[NewRejected],
) -> Result<(Vec<bool>, EventWriteCounts), StoreError> {
    let mut counts = EventWriteCounts::default();
    let mut c = uow.conn();
    let mut fresh = vec![false; events.len()];
    // Claim the keys; RETURNING names the keys this statement inserted.
    let mut claimed: HashSet<(String, String)> = HashSet::new();
    let rows_per_stmt = 2_000;
    for chunk in events.chunks(rows_per_stmt) {
        let mut sql =
            String::from("INSERT INTO event_ids (source, message_id, received_at) VALUES ");
        let mut vals = Vec::with_capacity(chunk.len() * 3);
        let anonymous = matches!(c, crate::Conn::Sqlite(_));
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            if anonymous {
                sql.push_str("(?,?,?)");
            } else {
                let n = i * 3;
                sql.push_str(&format!("(${},${},${})", n + 1, n + 2, n + 3));
            }
            vals.extend([
                Val::from(e.source.as_str()),
                e.message_id.as_str().into(),
                e.received_at.into(),
            ]);
        }
        sql.push_str(" ON CONFLICT (source, message_id) DO NOTHING RETURNING source, message_id");
        for k in c
            .fetch(&sql, &vals, |r| Ok((r.text(0)?, r.text(1)?)))
            .await?
        {
            claimed.insert(k);
        }
    }
    let mut vals = Vec::new();
    for (i, e) in events.iter().enumerate() {
        // The first event with a newly claimed key is stored; later ones are duplicates.
        if claimed.remove(&(e.source.clone(), e.message_id.clone())) {
            fresh[i] = true;
            counts.accepted += 1;
            vals.extend([
                Val::from(e.source.as_str()),
                e.message_id.as_str().into(),
                e.kind.as_str().into(),
                e.name.clone().into(),
                e.user_id.clone().into(),
                e.anon_key.clone().into(),
                e.occurred_at.into(),
                e.received_at.into(),
                e.ip.clone().into(),
                e.payload.as_str().into(),
                e.campaign.clone().into(),
                e.campaign_source.clone().into(),
            ]);
        } else {
            counts.duplicates += 1;
        }
    }
    c.insert_many(
        "INSERT INTO events (source, message_id, type, name, user_id, anon_key, occurred_at, received_at, ip, payload, campaign, campaign_source)",
        "",
        12,
        &vals,
    )
    .await?;
    let mut vals = Vec::new();
    for r in rejected {
        vals.extend([
            Val::from(r.source.as_str()),
            r.message_id.clone().into(),
            r.reason.as_str().into(),
            r.received_at.into(),
            r.payload.as_str().into(),
        ]);
    }
    counts.rejected = rejected.len() as u64;
    c.insert_many(
        "INSERT INTO rejected_events (source, message_id, reason, received_at, payload)",
        "",
        5,
        &vals,
    )
    .await?;
    for (e, _) in events.iter().zip(&fresh).filter(|(_, f)| **f) {
        uow.emit(DomainEvent::EventTracked {
            source: e.source.clone(),
            message_id: e.message_id.clone(),
            event_type: e.kind.clone(),
            name: e.name.clone(),
            member_id: None,
        });
    }
    Ok((fresh, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, received_at: i64) -> NewEvent {
        NewEvent {
            source: "web".into(),
            message_id: id.into(),
            kind: "track".into(),
            name: Some("Viewed".into()),
            user_id: None,
            anon_key: Some("web:a".into()),
            occurred_at: received_at,
            received_at,
            ip: None,
            payload: "{}".into(),
            campaign: None,
            campaign_source: None,
        }
    }

    #[tokio::test]
    async fn duplicates_are_skipped_until_their_keys_are_pruned() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let now = crate::now_ms();
        let old = now - DEDUP_RETENTION_MS - 1;
        let (fresh, c) = store
            .write_events(&[event("a", old), event("b", now), event("b", now)], &[])
            .await
            .unwrap();
        assert_eq!(fresh, [true, true, false]);
        assert_eq!((c.accepted, c.duplicates), (2, 1));
        let (fresh, _) = store
            .write_events(&[event("a", now), event("b", now)], &[])
            .await
            .unwrap();
        assert_eq!(fresh, [false, false]);
        // Keys older than 7 days are forgotten; newer ones still deduplicate.
        assert_eq!(
            store
                .prune_event_ids(now - DEDUP_RETENTION_MS)
                .await
                .unwrap(),
            1
        );
        let (fresh, _) = store
            .write_events(&[event("a", now), event("b", now)], &[])
            .await
            .unwrap();
        assert_eq!(fresh, [true, false]);
        let known = store
            .known_event_ids(&[("web".into(), "a".into()), ("web".into(), "zz".into())])
            .await
            .unwrap();
        assert_eq!(known.len(), 1);
    }
}
