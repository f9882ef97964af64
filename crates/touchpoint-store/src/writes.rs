//! Writes of the import path: the identity index, identity operations, orders.

use std::collections::{BTreeMap, HashMap, HashSet};

use touchpoint_core::identity::{
    IdentityConfig, IdentityGraph, IdentityOp, NodeId, RecordRef, StoredIdentifier, NO_MEMBER_ID,
};
use touchpoint_core::ingest::OrderRecord;
use touchpoint_core::{Identifier, IdentifierKind, MemberId, Money, OrderStatus};

use crate::db::{Conn, Val};
use crate::StoreError;

/// Take the identity write lock for this transaction and return the identity
/// version. On SQLite the first write takes the database write lock; on
/// PostgreSQL the row lock serialises identity writers.
pub(crate) async fn lock_identity(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    conn.exec(
        "UPDATE identity_state SET version = version WHERE id = 1",
        &[],
    )
    .await?;
    let v = conn
        .fetch_opt(
            "SELECT version FROM identity_state WHERE id = 1",
            &[],
            |r| r.i64(0),
        )
        .await?;
    v.ok_or_else(|| StoreError::Corrupt("identity_state row is missing".into()))
}

/// Set the identity version (a random token per change, so that an index
/// that ran ahead of a rolled-back transaction never matches a later one).
pub(crate) async fn set_identity_version(
    conn: &mut Conn<'_>,
    version: i64,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE identity_state SET version = $1 WHERE id = 1",
        &[version.into()],
    )
    .await?;
    Ok(())
}

/// Read the whole identity index into memory.
pub(crate) async fn load_identity(
    conn: &mut Conn<'_>,
    config: IdentityConfig,
) -> Result<IdentityGraph, StoreError> {
    let idents = conn
        .fetch(
            "SELECT id, kind, value, member_id, origin_member_id, shared, first_channel, first_record_id \
             FROM identifiers ORDER BY id",
            &[],
            |r| {
                let kind = IdentifierKind::parse(&r.text(1)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(StoredIdentifier {
                    id: r.i64(0)?,
                    identifier: Identifier::from_stored(kind, r.text(2)?),
                    member: MemberId::from_i64(r.i64(3)?),
                    origin_member: MemberId::from_i64(r.i64(4)?),
                    shared: r.i64(5)? != 0,
                    first_seen: RecordRef {
                        channel: r.text(6)?,
                        record_id: r.text(7)?,
                    },
                })
            },
        )
        .await?;
    let links = conn
        .fetch("SELECT a_id, b_id FROM identifier_links", &[], |r| {
            Ok((r.i64(0)?, r.i64(1)?))
        })
        .await?;
    let accounts = conn
        .fetch("SELECT channel, identifier_id FROM accounts", &[], |r| {
            Ok((r.text(0)?, r.i64(1)?))
        })
        .await?;
    let retired = conn
        .fetch(
            "SELECT id FROM members WHERE merged_into IS NOT NULL",
            &[],
            |r| Ok(MemberId::from_i64(r.i64(0)?)),
        )
        .await?;
    let max_member = conn
        .fetch_opt(
            "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM members",
            &[],
            |r| r.i64(0),
        )
        .await?
        .unwrap_or(0);
    Ok(IdentityGraph::load(
        config, idents, links, accounts, retired, max_member,
    ))
}

#[derive(Default)]
struct Pending {
    members: Vec<Val>,
    identifiers: Vec<Val>,
    links: Vec<Val>,
    accounts: Vec<Val>,
    events: Vec<Val>,
}

impl Pending {
    async fn flush(&mut self, conn: &mut Conn<'_>) -> Result<(), StoreError> {
        conn.insert_many(
            "INSERT INTO members (id, created_at)",
            "ON CONFLICT (id) DO NOTHING",
            2,
            &self.members,
        )
        .await?;
        conn.insert_many(
            "INSERT INTO identifiers (id, kind, value, member_id, origin_member_id, shared, first_channel, first_record_id, created_at)",
            "",
            9,
            &self.identifiers,
        )
        .await?;
        conn.insert_many(
            "INSERT INTO identifier_links (a_id, b_id, channel, record_id, created_at)",
            "ON CONFLICT (a_id, b_id) DO NOTHING",
            5,
            &self.links,
        )
        .await?;
        conn.insert_many(
            "INSERT INTO accounts (channel, identifier_id, member_id)",
            "ON CONFLICT (channel, identifier_id) DO NOTHING",
            3,
            &self.accounts,
        )
        .await?;
        conn.insert_many(
            "INSERT INTO identity_events (at, kind, member_id, other_member_id, identifier_kind, identifier_value, channel, record_id, prior_channel, prior_record_id, detail)",
            "",
            11,
            &self.events,
        )
        .await?;
        *self = Pending::default();
        Ok(())
    }
}

/// Persist identity operations, in order. Inserts are batched between the
/// operations that rewrite existing rows (merges, splits, shared marks).
pub(crate) async fn apply_identity_ops(
    conn: &mut Conn<'_>,
    ops: Vec<IdentityOp>,
    now: i64,
) -> Result<(), StoreError> {
    let mut p = Pending::default();
    for op in ops {
        match op {
            IdentityOp::NewMember { id } => p.members.extend([id.get().into(), now.into()]),
            IdentityOp::NewIdentifier {
                id,
                identifier,
                member,
                first_seen,
            } => p.identifiers.extend([
                id.into(),
                identifier.kind().as_str().into(),
                identifier.value().into(),
                member.get().into(),
                member.get().into(),
                0i64.into(),
                first_seen.channel.into(),
                first_seen.record_id.into(),
                now.into(),
            ]),
            IdentityOp::NewLink { a, b, evidence } => p.links.extend([
                a.into(),
                b.into(),
                evidence.channel.into(),
                evidence.record_id.into(),
                now.into(),
            ]),
            IdentityOp::NewAccount {
                channel,
                identifier,
                member,
            } => p
                .accounts
                .extend([channel.into(), identifier.into(), member.get().into()]),
            IdentityOp::Event(e) => p.events.extend([
                now.into(),
                e.kind.as_str().into(),
                e.member.get().into(),
                e.other_member.map(|m| m.get()).into(),
                e.identifier.kind().as_str().into(),
                e.identifier.value().into(),
                e.record.channel.into(),
                e.record.record_id.into(),
                e.prior.as_ref().map(|r| r.channel.clone()).into(),
                e.prior.map(|r| r.record_id).into(),
                e.detail.into(),
            ]),
            IdentityOp::Merge { kept, absorbed } => {
                p.flush(conn).await?;
                let (k, a) = (Val::I(kept.get()), Val::I(absorbed.get()));
                for sql in [
                    "UPDATE identifiers SET member_id = $1 WHERE member_id = $2",
                    "UPDATE accounts SET member_id = $1 WHERE member_id = $2",
                    "UPDATE orders SET member_id = $1 WHERE member_id = $2",
                    "UPDATE members SET merged_into = $1 WHERE merged_into = $2",
                ] {
                    conn.exec(sql, &[k.clone(), a.clone()]).await?;
                }
                conn.exec(
                    "UPDATE members SET merged_into = $1 WHERE id = $2",
                    &[k.clone(), a.clone()],
                )
                .await?;
                // The kept member takes profile fields it lacks from the absorbed one.
                conn.exec(
                    "UPDATE members SET \
                       name = COALESCE(name, (SELECT m.name FROM members m WHERE m.id = $2)), \
                       gender = COALESCE(gender, (SELECT m.gender FROM members m WHERE m.id = $2)), \
                       birthday = COALESCE(birthday, (SELECT m.birthday FROM members m WHERE m.id = $2)), \
                       region = COALESCE(region, (SELECT m.region FROM members m WHERE m.id = $2)) \
                     WHERE id = $1",
                    &[k, a],
                )
                .await?;
            }
            IdentityOp::MarkShared { id } => {
                p.flush(conn).await?;
                conn.exec(
                    "UPDATE identifiers SET shared = 1 WHERE id = $1",
                    &[id.into()],
                )
                .await?;
            }
            IdentityOp::Split {
                from,
                assignments,
                revived,
                released,
            } => {
                p.flush(conn).await?;
                apply_split(conn, from, &assignments, &revived, &released, now).await?;
            }
            IdentityOp::Claim { id, member } => {
                p.flush(conn).await?;
                conn.exec(
                    "UPDATE identifiers SET member_id = $1 WHERE id = $2",
                    &[member.get().into(), id.into()],
                )
                .await?;
            }
        }
    }
    p.flush(conn).await
}

/// Apply a split: revive retired ids, move identifiers and accounts to their
/// new members, release shared identifiers that belong to no member (owner
/// [`NO_MEMBER_ID`]: no member row stands for them, so member counts count
/// people), and move each order of `from` to the owner of its first
/// non-shared identifier.
async fn apply_split(
    conn: &mut Conn<'_>,
    from: MemberId,
    assignments: &[(NodeId, MemberId)],
    revived: &[MemberId],
    released: &[NodeId],
    now: i64,
) -> Result<(), StoreError> {
    for m in revived {
        conn.exec(
            "UPDATE members SET merged_into = NULL WHERE id = $1",
            &[m.get().into()],
        )
        .await?;
    }
    // New member ids of the split were announced by NewMember ops already.
    let owner: HashMap<NodeId, MemberId> = assignments.iter().copied().collect();
    for (node, m) in assignments {
        conn.exec(
            "UPDATE identifiers SET member_id = $1 WHERE id = $2",
            &[m.get().into(), (*node).into()],
        )
        .await?;
        conn.exec(
            "UPDATE accounts SET member_id = $1 WHERE identifier_id = $2",
            &[m.get().into(), (*node).into()],
        )
        .await?;
    }
    for node in released {
        conn.exec(
            "UPDATE identifiers SET member_id = $1 WHERE id = $2",
            &[NO_MEMBER_ID.into(), (*node).into()],
        )
        .await?;
    }
    // Orders follow their identifiers: the first non-shared one, else the first.
    let shared: HashSet<NodeId> = conn
        .fetch("SELECT id FROM identifiers WHERE shared = 1", &[], |r| {
            r.i64(0)
        })
        .await?
        .into_iter()
        .collect();
    let orders = conn
        .fetch(
            "SELECT channel, order_id, identifier_ids FROM orders WHERE member_id = $1",
            &[from.get().into()],
            |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)),
        )
        .await?;
    let mut by_member: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    for (channel, order_id, ids) in orders {
        let nodes = parse_node_list(&ids);
        let pick = nodes
            .iter()
            .find(|n| !shared.contains(n) && owner.contains_key(n))
            .or_else(|| nodes.iter().find(|n| owner.contains_key(n)));
        if let Some(m) = pick.and_then(|n| owner.get(n)) {
            if *m != from {
                by_member
                    .entry(m.get())
                    .or_default()
                    .push((channel, order_id));
            }
        }
    }
    for (m, orders) in by_member {
        for (channel, order_id) in orders {
            conn.exec(
                "UPDATE orders SET member_id = $1, updated_at = $2 WHERE channel = $3 AND order_id = $4",
                &[m.into(), now.into(), channel.into(), order_id.into()],
            )
            .await?;
        }
    }
    Ok(())
}

/// Identifier node ids of an order, stored as space-separated integers.
pub(crate) fn format_node_list(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn parse_node_list(s: &str) -> Vec<NodeId> {
    s.split_ascii_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// A stable 64-bit hash (FNV-1a) of an order's content, to tell an unchanged
/// re-import from an updated one. The file line is not part of it.
pub(crate) fn content_hash(r: &OrderRecord) -> i64 {
    struct Fnv(u64);
    impl Fnv {
        fn bytes(&mut self, b: &[u8]) {
            for &x in b {
                self.0 ^= u64::from(x);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
            // A separator, so that ("ab", "c") and ("a", "bc") differ.
            self.0 ^= 0xff;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        fn int(&mut self, v: i64) {
            self.bytes(&v.to_le_bytes());
        }
        fn opt(&mut self, v: Option<&str>) {
            match v {
                Some(s) => self.bytes(s.as_bytes()),
                None => self.bytes(&[0xfe]),
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.bytes(r.channel.as_str().as_bytes());
    h.bytes(r.order_id.as_bytes());
    h.int(r.ordered_at.timestamp_millis());
    h.int(r.paid_at.map_or(i64::MIN, |t| t.timestamp_millis()));
    h.bytes(r.status.as_str().as_bytes());
    h.bytes(r.currency.as_str().as_bytes());
    h.int(r.order_discount.minor());
    h.int(r.refunded.minor());
    let c = &r.customer;
    for i in &c.identifiers {
        h.bytes(i.kind().as_str().as_bytes());
        h.bytes(i.value().as_bytes());
    }
    h.opt(c.name.as_deref());
    h.opt(c.gender.as_deref());
    h.opt(c.birthday.map(|d| d.to_string()).as_deref());
    h.opt(c.region.as_deref());
    // Only when given, so that the hashes of orders without one stay as
    // they were before orders had campaigns.
    if let Some(campaign) = &r.campaign {
        h.bytes(b"campaign");
        h.bytes(campaign.as_bytes());
    }
    for l in &r.lines {
        h.bytes(l.sku.as_bytes());
        h.opt(l.product_name.as_deref());
        h.opt(l.brand.as_deref());
        h.opt(l.category.as_deref());
        h.int(l.quantity);
        h.int(l.unit_price.minor());
        h.int(l.unit_cost.map_or(i64::MIN, |m| m.minor()));
        h.int(l.discount.minor());
    }
    // Only when present, so that orders without codes keep their hash.
    for code in &r.coupon_codes {
        h.bytes(code.as_bytes());
    }
    if let Some(code) = &r.referral_code {
        h.bytes(b"referral");
        h.bytes(code.as_bytes());
    }
    h.0 as i64
}

/// An order ready to be written.
pub(crate) struct PreparedOrder<'a> {
    pub record: &'a OrderRecord,
    pub member: MemberId,
    pub nodes: &'a [NodeId],
}

/// What writing a chunk of orders did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriteCounts {
    /// New.
    pub inserted: u64,
    /// Existed with other content; replaced.
    pub updated: u64,
    /// Existed with the same content.
    pub unchanged: u64,
}

/// An order as it was stored before a write changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousOrder {
    /// Its status.
    pub status: OrderStatus,
    /// Its refunded amount, minor units.
    pub refunded: i64,
    /// Its gross amount, minor units.
    pub gross: i64,
    /// Its member.
    pub member_id: i64,
}

/// One order a write inserted or changed: what in-transaction handlers (the
/// analytics model, points for a purchase) and domain events are made from.
#[derive(Debug, Clone)]
pub struct OrderChange {
    /// The order as stored now (refunds merged, see [`write_orders`]).
    pub record: OrderRecord,
    /// Its member.
    pub member_id: i64,
    /// The stored order before, for an update.
    pub previous: Option<PreviousOrder>,
}

/// Stored state of the orders of `channel` among `ids` that exist.
async fn existing_orders(
    conn: &mut Conn<'_>,
    channel: &str,
    ids: &[&str],
) -> Result<Vec<(String, i64, PreviousOrder)>, StoreError> {
    const COLS: &str = "order_id, content_hash, status, refunded_amount, gross_amount, member_id";
    let decode =
        |order_id: String, hash: i64, status: String, refunded: i64, gross: i64, member: i64| {
            let status = OrderStatus::parse(&status).map_err(|_| {
                StoreError::Corrupt(format!("order {order_id} has status {status:?}"))
            })?;
            Ok((
                order_id,
                hash,
                PreviousOrder {
                    status,
                    refunded,
                    gross,
                    member_id: member,
                },
            ))
        };
    match conn {
        // One array parameter: PostgreSQL plans `= ANY($2)` as an index lookup,
        // where a generic plan over thousands of separate parameters can scan.
        Conn::Pg(c) => {
            let rows: Vec<(String, i64, String, i64, i64, i64)> = sqlx::query_as(&format!(
                "SELECT {COLS} FROM orders WHERE channel = $1 AND order_id = ANY($2)"
            ))
            .bind(channel)
            .bind(ids)
            .fetch_all(&mut **c)
            .await?;
            rows.into_iter()
                .map(|(o, h, s, r, g, m)| decode(o, h, s, r, g, m))
                .collect()
        }
        // Anonymous placeholders throughout (never mixed with `$N` on SQLite).
        Conn::Sqlite(_) => {
            let params = conn.param_list(1, ids.len() + 1);
            let (channel_param, id_params) = params.split_once(',').expect("two or more");
            let sql = format!(
                "SELECT {COLS} FROM orders WHERE channel = {channel_param} AND order_id IN ({id_params})"
            );
            let mut vals: Vec<Val> = vec![channel.into()];
            vals.extend(ids.iter().map(|id| Val::from(*id)));
            let rows = conn
                .fetch(&sql, &vals, |r| {
                    Ok((
                        r.text(0)?,
                        r.i64(1)?,
                        r.text(2)?,
                        r.i64(3)?,
                        r.i64(4)?,
                        r.i64(5)?,
                    ))
                })
                .await?;
            rows.into_iter()
                .map(|(o, h, s, r, g, m)| decode(o, h, s, r, g, m))
                .collect()
        }
    }
}

/// Refunds only grow, whatever door an order comes through: a later write
/// that carries a lower refunded amount than the stored one (an `Order
/// Completed` re-sent after `Order Refunded`, an older export imported after
/// a newer one) keeps the stored refund and its status.
fn keep_refund(record: &OrderRecord, stored: &PreviousOrder) -> Option<OrderRecord> {
    let refunded_status = matches!(
        stored.status,
        OrderStatus::Refunded | OrderStatus::PartiallyRefunded
    );
    let lowers = record.refunded.minor() < stored.refunded
        || (refunded_status && matches!(record.status, OrderStatus::Paid | OrderStatus::Pending));
    if !lowers || stored.refunded == 0 && !refunded_status {
        return None;
    }
    let mut r = record.clone();
    r.refunded = Money::from_minor(stored.refunded.max(record.refunded.minor()));
    if refunded_status && !matches!(record.status, OrderStatus::Refunded) {
        r.status = stored.status;
    }
    Some(r)
}

/// Products of the chunk as stored: sku -> (brand, unit cost).
async fn product_state(
    conn: &mut Conn<'_>,
    skus: &[&str],
) -> Result<HashMap<String, (Option<String>, Option<i64>)>, StoreError> {
    let mut out = HashMap::with_capacity(skus.len());
    for batch in skus.chunks(2_000) {
        let params = conn.param_list(1, batch.len());
        let vals: Vec<Val> = batch.iter().map(|s| Val::from(*s)).collect();
        for (sku, brand, cost) in conn
            .fetch(
                &format!("SELECT sku, brand, unit_cost FROM products WHERE sku IN ({params})"),
                &vals,
                |r| Ok((r.text(0)?, r.opt_text(1)?, r.opt_i64(2)?)),
            )
            .await?
        {
            out.insert(sku, (brand, cost));
        }
    }
    Ok(out)
}

/// What [`write_orders`] did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub orders: WriteCounts,
    pub lines: WriteCounts,
    /// Orders inserted or changed.
    pub changes: Vec<OrderChange>,
    /// The analytics facts of the changed orders.
    pub facts: Vec<crate::facts::FactRow>,
    /// Products whose brand or cost changed (orders of earlier writes that
    /// contain them need their facts recomputed).
    pub changed_skus: Vec<String>,
}

/// Upsert orders, their lines, their products and channels.
pub(crate) async fn write_orders(
    conn: &mut Conn<'_>,
    orders: &[PreparedOrder<'_>],
    now: i64,
) -> Result<Written, StoreError> {
    let mut out = Written::default();
    if orders.is_empty() {
        return Ok(out);
    }
    // Channels.
    let channels: BTreeMap<&str, ()> = orders
        .iter()
        .map(|o| (o.record.channel.as_str(), ()))
        .collect();
    let mut vals = Vec::new();
    for c in channels.keys() {
        vals.extend([Val::from(*c), now.into()]);
    }
    conn.insert_many(
        "INSERT INTO channels (name, created_at)",
        "ON CONFLICT (name) DO NOTHING",
        2,
        &vals,
    )
    .await?;

    // Stored state, per channel.
    let mut existing: HashMap<(String, String), (i64, PreviousOrder)> = HashMap::new();
    for c in channels.keys() {
        let ids: Vec<&str> = orders
            .iter()
            .filter(|o| o.record.channel.as_str() == *c)
            .map(|o| o.record.order_id.as_str())
            .collect();
        for batch in ids.chunks(2_000) {
            for (id, h, prev) in existing_orders(conn, c, batch).await? {
                existing.insert((c.to_string(), id), (h, prev));
            }
        }
    }

    // Which orders to write: new or changed ones. The same order twice in one
    // chunk (its rows were not adjacent in the file): the later one wins, and it
    // is written once, since one statement may not upsert a row twice.
    let mut to_write: Vec<OrderChange> = Vec::new();
    let mut slot: HashMap<(String, String), usize> = HashMap::new();
    let mut replaced: Vec<(String, String)> = Vec::new();
    for o in orders {
        let key = (
            o.record.channel.as_str().to_string(),
            o.record.order_id.clone(),
        );
        let lines = o.record.lines.len() as u64;
        let known = existing.get(&key).cloned();
        let record = match &known {
            Some((_, prev)) => keep_refund(o.record, prev).unwrap_or_else(|| o.record.clone()),
            None => o.record.clone(),
        };
        let hash = content_hash(&record);
        match &known {
            Some((h, _)) if *h == hash => {
                out.orders.unchanged += 1;
                out.lines.unchanged += lines;
                continue;
            }
            Some(_) => {
                out.orders.updated += 1;
                out.lines.updated += lines;
                replaced.push(key.clone());
            }
            None => {
                out.orders.inserted += 1;
                out.lines.inserted += lines;
            }
        }
        let stored_previous = known.map(|(_, p)| p);
        // Later copies in the chunk see this one as the stored state.
        let as_stored = PreviousOrder {
            status: record.status,
            refunded: record.refunded.minor(),
            gross: record.gross_amount().minor(),
            member_id: o.member.get(),
        };
        existing.insert(key.clone(), (hash, as_stored));
        let change = OrderChange {
            record,
            member_id: o.member.get(),
            previous: stored_previous,
        };
        match slot.get(&key) {
            Some(&i) => {
                replaced.push(key.clone());
                // Keep the state before the chunk as the previous one.
                let first_previous = to_write[i].previous.clone();
                to_write[i] = OrderChange {
                    previous: first_previous,
                    ..change
                };
            }
            None => {
                slot.insert(key, to_write.len());
                to_write.push(change);
            }
        }
    }

    let mut order_vals = Vec::with_capacity(to_write.len() * 15);
    let mut line_vals = Vec::new();
    let mut products: BTreeMap<&str, [Val; 4]> = BTreeMap::new();
    let node_lists: HashMap<(&str, &str), &[NodeId]> = orders
        .iter()
        .map(|o| {
            (
                (o.record.channel.as_str(), o.record.order_id.as_str()),
                o.nodes,
            )
        })
        .collect();
    for c in &to_write {
        let r = &c.record;
        let nodes = node_lists
            .get(&(r.channel.as_str(), r.order_id.as_str()))
            .copied()
            .unwrap_or(&[]);
        order_vals.extend([
            Val::from(r.channel.as_str()),
            r.order_id.as_str().into(),
            c.member_id.into(),
            r.status.as_str().into(),
            r.ordered_at.timestamp_millis().into(),
            r.paid_at.map(|t| t.timestamp_millis()).into(),
            r.currency.as_str().into(),
            r.gross_amount().minor().into(),
            r.order_discount.minor().into(),
            r.refunded.minor().into(),
            (r.lines.len() as i64).into(),
            format_node_list(nodes).into(),
            content_hash(r).into(),
            now.into(),
            now.into(),
            r.campaign.clone().into(),
        ]);
        for (n, l) in r.lines.iter().enumerate() {
            line_vals.extend([
                Val::from(r.channel.as_str()),
                r.order_id.as_str().into(),
                (n as i64 + 1).into(),
                l.sku.as_str().into(),
                l.quantity.into(),
                l.unit_price.minor().into(),
                l.unit_cost.map(|c| c.minor()).into(),
                l.discount.minor().into(),
            ]);
            products.insert(
                l.sku.as_str(),
                [
                    l.product_name.clone().into(),
                    l.brand.clone().into(),
                    l.category.clone().into(),
                    l.unit_cost.map(|c| c.minor()).into(),
                ],
            );
        }
    }

    replaced.sort();
    replaced.dedup();
    for (channel, order_id) in &replaced {
        conn.exec(
            "DELETE FROM order_lines WHERE channel = $1 AND order_id = $2",
            &[channel.as_str().into(), order_id.as_str().into()],
        )
        .await?;
    }
    conn.insert_many(
        "INSERT INTO orders (channel, order_id, member_id, status, ordered_at, paid_at, currency, gross_amount, order_discount, refunded_amount, line_count, identifier_ids, content_hash, created_at, updated_at, campaign)",
        "ON CONFLICT (channel, order_id) DO UPDATE SET member_id = excluded.member_id, status = excluded.status, \
         ordered_at = excluded.ordered_at, paid_at = excluded.paid_at, currency = excluded.currency, \
         gross_amount = excluded.gross_amount, order_discount = excluded.order_discount, \
         refunded_amount = excluded.refunded_amount, line_count = excluded.line_count, \
         identifier_ids = excluded.identifier_ids, content_hash = excluded.content_hash, updated_at = excluded.updated_at, \
         campaign = COALESCE(excluded.campaign, orders.campaign)",
        16,
        &order_vals,
    )
    .await?;
    conn.insert_many(
        "INSERT INTO order_lines (channel, order_id, line_no, sku, quantity, unit_price, unit_cost, discount)",
        "ON CONFLICT (channel, order_id, line_no) DO UPDATE SET sku = excluded.sku, quantity = excluded.quantity, \
         unit_price = excluded.unit_price, unit_cost = excluded.unit_cost, discount = excluded.discount",
        8,
        &line_vals,
    )
    .await?;
    let skus: Vec<&str> = products.keys().copied().collect();
    let before = product_state(conn, &skus).await?;
    let mut pvals = Vec::new();
    for (sku, [name, brand, category, cost]) in products {
        pvals.extend([Val::from(sku), name, brand, category, cost, now.into()]);
    }
    conn.insert_many(
        "INSERT INTO products (sku, name, brand, category, unit_cost, updated_at)",
        "ON CONFLICT (sku) DO UPDATE SET name = COALESCE(excluded.name, products.name), \
         brand = COALESCE(excluded.brand, products.brand), category = COALESCE(excluded.category, products.category), \
         unit_cost = COALESCE(excluded.unit_cost, products.unit_cost), updated_at = excluded.updated_at \
         WHERE (excluded.name IS NOT NULL AND excluded.name IS DISTINCT FROM products.name) \
            OR (excluded.brand IS NOT NULL AND excluded.brand IS DISTINCT FROM products.brand) \
            OR (excluded.category IS NOT NULL AND excluded.category IS DISTINCT FROM products.category) \
            OR (excluded.unit_cost IS NOT NULL AND excluded.unit_cost IS DISTINCT FROM products.unit_cost)",
        6,
        &pvals,
    )
    .await?;
    let after = product_state(conn, &skus).await?;
    out.changed_skus = before
        .iter()
        .filter(|(sku, b)| after.get(*sku) != Some(*b))
        .map(|(sku, _)| sku.clone())
        .collect();
    out.facts = to_write
        .iter()
        .map(|c| {
            let r = &c.record;
            crate::facts::compute(&crate::facts::FactOrder {
                channel: r.channel.as_str().to_string(),
                order_id: r.order_id.clone(),
                member_id: c.member_id,
                ordered_at: r.ordered_at.timestamp_millis(),
                status: r.status.as_str().to_string(),
                gross: r.gross_amount().minor(),
                refunded: r.refunded.minor(),
                order_discount: r.order_discount.minor(),
                campaign: r.campaign.clone(),
                lines: r
                    .lines
                    .iter()
                    .map(|l| {
                        let (brand, cost) = after.get(&l.sku).cloned().unwrap_or((None, None));
                        crate::facts::FactLine {
                            sku: l.sku.to_string(),
                            quantity: l.quantity,
                            unit_price: l.unit_price.minor(),
                            discount: l.discount.minor(),
                            unit_cost: l.unit_cost.map(|c| c.minor()).or(cost).unwrap_or(0),
                            brand,
                        }
                    })
                    .collect(),
            })
        })
        .collect();
    out.changes = to_write;
    Ok(out)
}

/// Fill empty profile fields of members from the orders of this chunk (the
/// first value seen wins; later values never overwrite).
pub(crate) async fn fill_profiles(
    conn: &mut Conn<'_>,
    orders: &[PreparedOrder<'_>],
    tried: &mut HashSet<(MemberId, u8)>,
) -> Result<(), StoreError> {
    for o in orders {
        let c = &o.record.customer;
        let mask = u8::from(c.name.is_some())
            | u8::from(c.gender.is_some()) << 1
            | u8::from(c.birthday.is_some()) << 2
            | u8::from(c.region.is_some()) << 3;
        // One attempt per member and set of fields per import is enough: the
        // first value wins and later ones never overwrite it.
        if mask == 0 || !tried.insert((o.member, mask)) {
            continue;
        }
        conn.exec(
            "UPDATE members SET name = COALESCE(name, $2), gender = COALESCE(gender, $3), \
             birthday = COALESCE(birthday, $4), region = COALESCE(region, $5) \
             WHERE id = $1 AND (name IS NULL OR gender IS NULL OR birthday IS NULL OR region IS NULL)",
            &[
                o.member.get().into(),
                c.name.clone().into(),
                c.gender.clone().into(),
                c.birthday.map(|d| d.to_string()).into(),
                c.region.clone().into(),
            ],
        )
        .await?;
    }
    Ok(())
}
