//! Reading members: the member 360 view, paging, shared identifiers, overview counts.

use serde::Serialize;
use touchpoint_core::{Identifier, MemberId};

use touchpoint_core::identity::NO_MEMBER_ID;

use crate::db::Val;
use crate::{Store, StoreError};

/// An identifier of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierView {
    /// Kind (`phone`, `email`, ...).
    pub kind: String,
    /// Normalised value.
    pub value: String,
    /// Marked shared: it no longer joins records.
    pub shared: bool,
    /// Channel of the record where it was first seen.
    pub first_channel: String,
    /// That record's id.
    pub first_record_id: String,
}

/// A member's activity in one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelView {
    /// Channel.
    pub channel: String,
    /// Orders of any status.
    pub orders: i64,
    /// Sum of paid amounts of paid and partially refunded orders, less refunds, minor units.
    pub net_revenue: i64,
    /// First order time, UTC milliseconds.
    pub first_order_at: i64,
    /// Last order time, UTC milliseconds.
    pub last_order_at: i64,
}

/// An order, as listed on a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// Channel.
    pub channel: String,
    /// Order id.
    pub order_id: String,
    /// Status.
    pub status: String,
    /// Placed at, UTC milliseconds.
    pub ordered_at: i64,
    /// Currency.
    pub currency: String,
    /// Amount before refunds, minor units.
    pub gross_amount: i64,
    /// Refunded, minor units.
    pub refunded_amount: i64,
    /// Number of lines.
    pub lines: i64,
}

/// An entry of the identity audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    /// Sequence number.
    pub id: i64,
    /// When it was recorded, UTC milliseconds.
    pub at: i64,
    /// `link`, `merge`, `shared` or `split`.
    pub kind: String,
    /// The member it happened to.
    pub member_id: MemberId,
    /// The other member involved.
    pub other_member_id: Option<MemberId>,
    /// The identifier that caused it, `kind value`.
    pub identifier: String,
    /// The record being processed, `channel order`.
    pub record: String,
    /// Where the identifier had been seen before.
    pub prior_record: Option<String>,
    /// In words.
    pub detail: String,
    /// A `link` or `merge` through an identifier that was later marked shared:
    /// the split that followed undid it, so it no longer holds.
    pub superseded: bool,
    /// The split that undid it, when `superseded`.
    pub undone_by: Option<UndoneBy>,
}

/// The split that undid an earlier link or merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndoneBy {
    /// Sequence number of the split entry.
    pub event_id: i64,
    /// When it was recorded, UTC milliseconds.
    pub at: i64,
    /// The split, in words.
    pub detail: String,
}

/// Everything known of one member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// The member id.
    pub id: MemberId,
    /// When asked for a retired id: the id asked for.
    pub requested_id: Option<MemberId>,
    /// Created at, UTC milliseconds.
    pub created_at: i64,
    /// Name (first seen).
    pub name: Option<String>,
    /// Gender.
    pub gender: Option<String>,
    /// Birthday, YYYY-MM-DD.
    pub birthday: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Identifiers.
    pub identifiers: Vec<IdentifierView>,
    /// Channels.
    pub channels: Vec<ChannelView>,
    /// Orders, newest first (at most 100; `order_count` has the total).
    pub orders: Vec<OrderView>,
    /// Number of orders.
    pub order_count: i64,
    /// Member ids merged into this one.
    pub merged_ids: Vec<MemberId>,
    /// The identity history, oldest first.
    pub history: Vec<EventView>,
}

/// A member in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    /// The id.
    pub id: MemberId,
    /// Name.
    pub name: Option<String>,
    /// Channels, comma-separated, alphabetical.
    pub channels: String,
    /// Orders of any status.
    pub orders: i64,
    /// Net revenue, minor units.
    pub net_revenue: i64,
    /// Last order, UTC milliseconds.
    pub last_order_at: Option<i64>,
}

/// A page of members.
#[derive(Debug, Clone, Serialize)]
pub struct MemberPage {
    /// The members.
    pub members: Vec<MemberRow>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<MemberId>,
}

/// A shared identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedIdentifier {
    /// Kind.
    pub kind: String,
    /// Value.
    pub value: String,
    /// Distinct identifiers it was seen with.
    pub linked_identifiers: i64,
    /// When and why, in words.
    pub detail: String,
}

/// Headline numbers of the customer base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Active members (not merged away).
    pub members: i64,
    /// Members with orders in two or more channels.
    pub multi_channel_members: i64,
    /// Identity merges logged.
    pub merges: i64,
    /// Channel accounts joined to an existing member.
    pub links: i64,
    /// Identifiers marked shared.
    pub shared_identifiers: i64,
    /// Per channel.
    pub channels: Vec<ChannelTotals>,
}

/// Totals of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelTotals {
    /// Channel.
    pub channel: String,
    /// Distinct members who ordered there.
    pub members: i64,
    /// Orders of any status.
    pub orders: i64,
    /// Net revenue of paid orders, minor units.
    pub net_revenue: i64,
}

/// Net revenue of an order, as SQL: paid amount less refunds for orders that count as purchases.
pub const NET_REVENUE_SQL: &str = "CASE WHEN status IN ('paid', 'partially_refunded') THEN gross_amount - refunded_amount ELSE 0 END";

impl Store {
    /// Follow `merged_into` to the active member id.
    pub async fn resolve_member_id(&self, id: MemberId) -> Result<Option<MemberId>, StoreError> {
        let mut h = self.acquire().await?;
        let row = h
            .conn()
            .fetch_opt(
                "SELECT id, merged_into FROM members WHERE id = $1",
                &[id.get().into()],
                |r| Ok((r.i64(0)?, r.opt_i64(1)?)),
            )
            .await?;
        Ok(row.map(|(id, into)| MemberId::from_i64(into.unwrap_or(id))))
    }

    /// The member that owns an identifier; `None` when the identifier is unknown
    /// or belongs to no member (a shared identifier released by a split: see
    /// [`Store::shared_identifiers`]).
    pub async fn member_by_identifier(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<MemberId>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT member_id FROM identifiers WHERE kind = $1 AND value = $2 AND member_id <> $3",
                &[
                    identifier.kind().as_str().into(),
                    identifier.value().into(),
                    NO_MEMBER_ID.into(),
                ],
                |r| Ok(MemberId::from_i64(r.i64(0)?)),
            )
            .await
    }

    /// Everything known of a member. A retired id (merged into another) shows the
    /// member it was merged into, with `requested_id` set.
    pub async fn member(&self, requested: MemberId) -> Result<Option<MemberView>, StoreError> {
        let Some(id) = self.resolve_member_id(requested).await? else {
            return Ok(None);
        };
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let m = Val::I(id.get());
        let Some((created_at, name, gender, birthday, region)) = c
            .fetch_opt(
                "SELECT created_at, name, gender, birthday, region FROM members WHERE id = $1",
                std::slice::from_ref(&m),
                |r| {
                    Ok((
                        r.i64(0)?,
                        r.opt_text(1)?,
                        r.opt_text(2)?,
                        r.opt_text(3)?,
                        r.opt_text(4)?,
                    ))
                },
            )
            .await?
        else {
            return Ok(None);
        };
        let identifiers = c
            .fetch(
                "SELECT kind, value, shared, first_channel, first_record_id FROM identifiers WHERE member_id = $1 ORDER BY id",
                std::slice::from_ref(&m),
                |r| {
                    Ok(IdentifierView {
                        kind: r.text(0)?,
                        value: r.text(1)?,
                        shared: r.i64(2)? != 0,
                        first_channel: r.text(3)?,
                        first_record_id: r.text(4)?,
                    })
                },
            )
            .await?;
        let channels = c
            .fetch(
                &format!(
                    "SELECT channel, COUNT(*), CAST(COALESCE(SUM({NET_REVENUE_SQL}), 0) AS BIGINT), MIN(ordered_at), MAX(ordered_at) \
                     FROM orders WHERE member_id = $1 GROUP BY channel ORDER BY channel"
                ),
                std::slice::from_ref(&m),
                |r| {
                    Ok(ChannelView {
                        channel: r.text(0)?,
                        orders: r.i64(1)?,
                        net_revenue: r.i64(2)?,
                        first_order_at: r.i64(3)?,
                        last_order_at: r.i64(4)?,
                    })
                },
            )
            .await?;
        let order_count = channels.iter().map(|c| c.orders).sum();
        let orders = c
            .fetch(
                "SELECT channel, order_id, status, ordered_at, currency, gross_amount, refunded_amount, line_count \
                 FROM orders WHERE member_id = $1 ORDER BY ordered_at DESC, channel, order_id LIMIT 100",
                std::slice::from_ref(&m),
                |r| {
                    Ok(OrderView {
                        channel: r.text(0)?,
                        order_id: r.text(1)?,
                        status: r.text(2)?,
                        ordered_at: r.i64(3)?,
                        currency: r.text(4)?,
                        gross_amount: r.i64(5)?,
                        refunded_amount: r.i64(6)?,
                        lines: r.i64(7)?,
                    })
                },
            )
            .await?;
        let merged_ids = c
            .fetch(
                "SELECT id FROM members WHERE merged_into = $1 ORDER BY id",
                std::slice::from_ref(&m),
                |r| Ok(MemberId::from_i64(r.i64(0)?)),
            )
            .await?;
        // History of this member and of every id merged into it (merges are logged
        // on the kept member, so this includes the merge that retired each one).
        let mut ids: Vec<Val> = vec![m.clone()];
        ids.extend(merged_ids.iter().map(|x| Val::I(x.get())));
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let list = placeholders.join(",");
        let mut history = c
            .fetch(
                &format!(
                    "SELECT id, at, kind, member_id, other_member_id, identifier_kind, identifier_value, channel, record_id, prior_channel, prior_record_id, detail \
                     FROM identity_events WHERE member_id IN ({list}) ORDER BY id"
                ),
                &ids,
                decode_event,
            )
            .await?;
        // Links and merges through an identifier marked shared later were undone
        // by the split that followed the marking: mark them superseded.
        let splits = c
            .fetch(
                &format!(
                    "SELECT s.identifier_kind, s.identifier_value, s.id, \
                       (SELECT MIN(p.id) FROM identity_events p WHERE p.kind = 'split' AND p.id > s.id \
                          AND p.identifier_kind = s.identifier_kind AND p.identifier_value = s.identifier_value) \
                     FROM identity_events s WHERE s.kind = 'shared' AND EXISTS (\
                       SELECT 1 FROM identity_events e WHERE e.member_id IN ({list}) AND e.kind IN ('link', 'merge') \
                         AND e.identifier_kind = s.identifier_kind AND e.identifier_value = s.identifier_value AND e.id < s.id) \
                     ORDER BY s.id"
                ),
                &ids,
                |r| Ok((format!("{} {}", r.text(0)?, r.text(1)?), r.i64(2)?, r.opt_i64(3)?)),
            )
            .await?;
        for (identifier, shared_at_id, split_id) in splits {
            let Some(split_id) = split_id else { continue };
            let undone = c
                .fetch_opt(
                    "SELECT at, detail FROM identity_events WHERE id = $1",
                    &[split_id.into()],
                    |r| {
                        Ok(UndoneBy {
                            event_id: split_id,
                            at: r.i64(0)?,
                            detail: r.text(1)?,
                        })
                    },
                )
                .await?;
            for e in history.iter_mut() {
                if (e.kind == "link" || e.kind == "merge")
                    && e.identifier == identifier
                    && e.id < shared_at_id
                    && !e.superseded
                {
                    e.superseded = true;
                    e.undone_by = undone.clone();
                }
            }
        }
        Ok(Some(MemberView {
            id,
            requested_id: (requested != id).then_some(requested),
            created_at,
            name,
            gender,
            birthday,
            region,
            identifiers,
            channels,
            orders,
            order_count,
            merged_ids,
            history,
        }))
    }

    /// A page of active members ordered by id, starting after `after`.
    pub async fn list_members(
        &self,
        after: Option<MemberId>,
        limit: u32,
    ) -> Result<MemberPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut h = self.acquire().await?;
        let ids = h
            .conn()
            .fetch(
                "SELECT id, name FROM members WHERE merged_into IS NULL AND id > $1 ORDER BY id LIMIT $2",
                &[after.map(|a| a.get()).unwrap_or(0).into(), i64::from(limit + 1).into()],
                |r| Ok((r.i64(0)?, r.opt_text(1)?)),
            )
            .await?;
        let more = ids.len() > limit as usize;
        let ids = &ids[..ids.len().min(limit as usize)];
        let mut members = Vec::with_capacity(ids.len());
        if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
            let rows = h
                .conn()
                .fetch(
                    &format!(
                        "SELECT member_id, channel, COUNT(*), CAST(COALESCE(SUM({NET_REVENUE_SQL}), 0) AS BIGINT), MAX(ordered_at) \
                         FROM orders WHERE member_id >= $1 AND member_id <= $2 GROUP BY member_id, channel"
                    ),
                    &[first.0.into(), last.0.into()],
                    |r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?, r.i64(3)?, r.i64(4)?)),
                )
                .await?;
            for (id, name) in ids {
                let mine: Vec<_> = rows.iter().filter(|r| r.0 == *id).collect();
                let mut chans: Vec<&str> = mine.iter().map(|r| r.1.as_str()).collect();
                chans.sort_unstable();
                members.push(MemberRow {
                    id: MemberId::from_i64(*id),
                    name: name.clone(),
                    channels: chans.join(","),
                    orders: mine.iter().map(|r| r.2).sum(),
                    net_revenue: mine.iter().map(|r| r.3).sum(),
                    last_order_at: mine.iter().map(|r| r.4).max(),
                });
            }
        }
        let next_cursor = if more {
            members.last().map(|m| m.id)
        } else {
            None
        };
        Ok(MemberPage {
            members,
            next_cursor,
        })
    }

    /// Active members whose name contains `text` (case-insensitive for
    /// ASCII), by id, at most `limit` (1 to 1000), with their order totals.
    pub async fn find_members_by_name(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<MemberRow>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut h = self.acquire().await?;
        let ids = h
            .conn()
            .fetch(
                "SELECT id, name FROM members WHERE merged_into IS NULL AND LOWER(name) LIKE $1 ESCAPE '\\' ORDER BY id LIMIT $2",
                &[pattern.into(), i64::from(limit).into()],
                |r| Ok((r.i64(0)?, r.opt_text(1)?)),
            )
            .await?;
        let mut members = Vec::with_capacity(ids.len());
        for (id, name) in ids {
            let rows = h
                .conn()
                .fetch(
                    &format!(
                        "SELECT channel, COUNT(*), CAST(COALESCE(SUM({NET_REVENUE_SQL}), 0) AS BIGINT), MAX(ordered_at) \
                         FROM orders WHERE member_id = $1 GROUP BY channel ORDER BY channel"
                    ),
                    &[id.into()],
                    |r| Ok((r.text(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?)),
                )
                .await?;
            members.push(MemberRow {
                id: MemberId::from_i64(id),
                name,
                channels: rows
                    .iter()
                    .map(|r| r.0.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                orders: rows.iter().map(|r| r.1).sum(),
                net_revenue: rows.iter().map(|r| r.2).sum(),
                last_order_at: rows.iter().map(|r| r.3).max(),
            });
        }
        Ok(members)
    }

    /// Identifiers marked shared, with why.
    pub async fn shared_identifiers(&self) -> Result<Vec<SharedIdentifier>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch(
                "SELECT i.kind, i.value, \
                   (SELECT COUNT(*) FROM identifier_links l WHERE l.a_id = i.id OR l.b_id = i.id), \
                   COALESCE((SELECT MIN(e.detail) FROM identity_events e WHERE e.kind = 'shared' AND e.identifier_kind = i.kind AND e.identifier_value = i.value), '') \
                 FROM identifiers i WHERE i.shared = 1 ORDER BY i.kind, i.value",
                &[],
                |r| {
                    Ok(SharedIdentifier {
                        kind: r.text(0)?,
                        value: r.text(1)?,
                        linked_identifiers: r.i64(2)?,
                        detail: r.text(3)?,
                    })
                },
            )
            .await
    }

    /// Headline numbers of the customer base.
    pub async fn overview(&self) -> Result<Overview, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let one = |sql: &'static str| sql;
        let members = c
            .fetch_opt(
                one("SELECT COUNT(*) FROM members WHERE merged_into IS NULL"),
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        let multi_channel_members = c
            .fetch_opt(
                "SELECT COUNT(*) FROM (SELECT member_id FROM orders GROUP BY member_id HAVING COUNT(DISTINCT channel) > 1) t",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        let counts = c
            .fetch(
                "SELECT kind, COUNT(*) FROM identity_events GROUP BY kind",
                &[],
                |r| Ok((r.text(0)?, r.i64(1)?)),
            )
            .await?;
        let count = |k: &str| counts.iter().find(|x| x.0 == k).map(|x| x.1).unwrap_or(0);
        let shared_identifiers = c
            .fetch_opt(
                "SELECT COUNT(*) FROM identifiers WHERE shared = 1",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        let channels = c
            .fetch(
                &format!(
                    "SELECT channel, COUNT(DISTINCT member_id), COUNT(*), CAST(COALESCE(SUM({NET_REVENUE_SQL}), 0) AS BIGINT) \
                     FROM orders GROUP BY channel ORDER BY channel"
                ),
                &[],
                |r| {
                    Ok(ChannelTotals {
                        channel: r.text(0)?,
                        members: r.i64(1)?,
                        orders: r.i64(2)?,
                        net_revenue: r.i64(3)?,
                    })
                },
            )
            .await?;
        Ok(Overview {
            members,
            multi_channel_members,
            merges: count("merge"),
            links: count("link"),
            shared_identifiers,
            channels,
        })
    }
}

fn decode_event(r: crate::RowRef<'_>) -> Result<EventView, StoreError> {
    let prior = match (r.opt_text(9)?, r.opt_text(10)?) {
        (Some(c), Some(o)) => Some(format!("{c} {o}")),
        _ => None,
    };
    Ok(EventView {
        id: r.i64(0)?,
        at: r.i64(1)?,
        kind: r.text(2)?,
        member_id: MemberId::from_i64(r.i64(3)?),
        other_member_id: r.opt_i64(4)?.map(MemberId::from_i64),
        identifier: format!("{} {}", r.text(5)?, r.text(6)?),
        record: format!("{} {}", r.text(7)?, r.text(8)?),
        prior_record: prior,
        detail: r.text(11)?,
        superseded: false,
        undone_by: None,
    })
}
