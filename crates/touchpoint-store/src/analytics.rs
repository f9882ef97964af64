//! Reads for the analytics reports: the per-member purchase summary and the
//! per-product summary.
//!
//! Both are built by one aggregation that runs inside the database (portable
//! SQL: CTEs, `ROW_NUMBER()`, `STRING_AGG`). Unfiltered reports read the
//! materialised tables `member_summary` / `product_summary`, which
//! [`Store::refresh_member_summary`] rebuilds and which are refreshed
//! automatically when stale (every order write bumps `analytics_state.data_version`).
//! A report with a filter (channel, brand, since) or an as-of date before the
//! last order runs the same aggregation live with the filter applied.
//!
//! Purchases are orders with status `paid` or `partially_refunded`; net
//! revenue is `gross_amount - refunded_amount`. Local days are
//! `(ordered_at + utc_offset_ms) / 86400000`.

use std::collections::HashMap;

use touchpoint_core::analytics::{Dataset, DayActivity, MemberSummary, ProductData, ProductFacts};

use crate::db::{Conn, Val};
use crate::{Store, StoreError};

const DAY_MS: i64 = 86_400_000;
const PURCHASE: &str = "o.status IN ('paid', 'partially_refunded')";

/// What a report covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Last local day included (days since 1970-01-01); `None` = the day of the last order.
    pub as_of_day: Option<i32>,
    /// Only orders of this channel.
    pub channel: Option<String>,
    /// Only order lines of products of this brand (order revenue is allocated
    /// to lines in proportion to line value).
    pub brand: Option<String>,
    /// Only orders on or after this local day.
    pub since_day: Option<i32>,
    /// Offset of the business time zone from UTC, milliseconds (Asia/Shanghai: 8 h).
    pub utc_offset_ms: i64,
}

impl Scope {
    fn filtered(&self) -> bool {
        self.channel.is_some() || self.brand.is_some() || self.since_day.is_some()
    }
}

/// The state of the materialised summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AnalyticsState {
    /// Bumped by every order write.
    pub data_version: i64,
    /// The data version the summaries were built from.
    pub summary_version: i64,
    /// The UTC offset they were built with.
    pub tz_offset_ms: i64,
    /// When they were built, UTC milliseconds (0 = never).
    pub refreshed_at: i64,
}

impl AnalyticsState {
    /// True when the summaries reflect every order write.
    pub fn is_current(&self, utc_offset_ms: i64) -> bool {
        self.summary_version == self.data_version && self.tz_offset_ms == utc_offset_ms
    }
}

/// Numbered placeholders for a statement being built.
struct Params {
    vals: Vec<Val>,
}

impl Params {
    fn push(&mut self, v: impl Into<Val>) -> String {
        self.vals.push(v.into());
        format!("${}", self.vals.len())
    }
}

/// `WHERE` conditions on `orders o` for the scope (without the status test).
/// An `as_of_end` of `i64::MAX` (the refresh) adds no time bound: the always
/// true `ordered_at < MAX` made SQLite walk every order through the
/// `ordered_at` index instead of scanning the table.
fn scope_sql(scope: &Scope, as_of_end: i64, p: &mut Params) -> String {
    let mut w = if as_of_end == i64::MAX {
        "1 = 1".to_string()
    } else {
        format!("o.ordered_at < {}", p.push(as_of_end))
    };
    if let Some(c) = &scope.channel {
        w.push_str(&format!(" AND o.channel = {}", p.push(c.as_str())));
    }
    if let Some(d) = scope.since_day {
        w.push_str(&format!(
            " AND o.ordered_at >= {}",
            p.push(i64::from(d) * DAY_MS - scope.utc_offset_ms)
        ));
    }
    w
}

/// Divisor of a line's share of its order: the sum of line values, never 0.
const LINE_TOTAL: &str = "(CASE WHEN o.gross_amount + o.order_discount = 0 THEN 1 ELSE o.gross_amount + o.order_discount END)";

/// The CTE `f`: one row per purchase order in scope with member_id, channel,
/// order_id, ordered_at, day, net, disc, cogs.
fn order_facts_cte(scope: &Scope, as_of_end: i64, p: &mut Params) -> String {
    let w = scope_sql(scope, as_of_end, p);
    let off = p.push(scope.utc_offset_ms);
    match &scope.brand {
        None => format!(
            "lc AS (SELECT l.channel AS channel, l.order_id AS order_id, SUM(l.discount) AS disc, \
               SUM(l.quantity * COALESCE(l.unit_cost, pr.unit_cost, 0)) AS cogs \
               FROM order_lines l LEFT JOIN products pr ON pr.sku = l.sku GROUP BY l.channel, l.order_id), \
             f AS (SELECT o.member_id AS member_id, o.channel AS channel, o.order_id AS order_id, o.ordered_at AS ordered_at, \
               (o.ordered_at + {off}) / {DAY_MS} AS day, o.gross_amount - o.refunded_amount AS net, \
               o.order_discount + COALESCE(lc.disc, 0) AS disc, COALESCE(lc.cogs, 0) AS cogs \
               FROM orders o LEFT JOIN lc ON lc.channel = o.channel AND lc.order_id = o.order_id \
               WHERE {PURCHASE} AND {w})"
        ),
        Some(b) => {
            let brand = p.push(b.as_str());
            format!(
                "f AS (SELECT o.member_id AS member_id, o.channel AS channel, o.order_id AS order_id, o.ordered_at AS ordered_at, \
                   (o.ordered_at + {off}) / {DAY_MS} AS day, \
                   SUM((o.gross_amount - o.refunded_amount) * (l.quantity * l.unit_price - l.discount) / {LINE_TOTAL}) AS net, \
                   SUM(l.discount + o.order_discount * (l.quantity * l.unit_price - l.discount) / {LINE_TOTAL}) AS disc, \
                   SUM(l.quantity * COALESCE(l.unit_cost, pr.unit_cost, 0)) AS cogs \
                   FROM orders o JOIN order_lines l ON l.channel = o.channel AND l.order_id = o.order_id \
                   JOIN products pr ON pr.sku = l.sku \
                   WHERE {PURCHASE} AND {w} AND pr.brand = {brand} \
                   GROUP BY o.member_id, o.channel, o.order_id, o.ordered_at)"
            )
        }
    }
}

const SUMMARY_COLUMNS: &str = "member_id, first_at, last_at, first_day, last_day, purchase_days, orders, net_revenue, cogs, discounts, first_channel, activity";

/// The per-member aggregation (a full `SELECT` producing [`SUMMARY_COLUMNS`]).
fn member_summary_sql(scope: &Scope, as_of_end: i64, p: &mut Params) -> String {
    let f = order_facts_cte(scope, as_of_end, p);
    format!(
        "WITH {f}, \
         fr AS (SELECT member_id, channel, ordered_at, day, net, disc, cogs, \
                ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY ordered_at, channel, order_id) AS rn FROM f), \
         dc AS (SELECT member_id, day, channel, COUNT(*) AS n, SUM(net) AS net FROM f GROUP BY member_id, day, channel), \
         act AS (SELECT member_id, COUNT(DISTINCT day) AS purchase_days, \
                 STRING_AGG(CAST(day AS TEXT) || ':' || channel || ':' || CAST(n AS TEXT) || ':' || CAST(CAST(net AS BIGINT) AS TEXT), ';') AS activity \
                 FROM dc GROUP BY member_id), \
         tot AS (SELECT member_id, MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at, MIN(day) AS first_day, MAX(day) AS last_day, \
                 COUNT(*) AS orders, CAST(SUM(net) AS BIGINT) AS net_revenue, CAST(SUM(cogs) AS BIGINT) AS cogs, \
                 CAST(SUM(disc) AS BIGINT) AS discounts, MAX(CASE WHEN rn = 1 THEN channel END) AS first_channel \
                 FROM fr GROUP BY member_id) \
         SELECT tot.member_id, tot.first_at, tot.last_at, CAST(tot.first_day AS BIGINT), CAST(tot.last_day AS BIGINT), \
                CAST(act.purchase_days AS BIGINT), CAST(tot.orders AS BIGINT), tot.net_revenue, tot.cogs, tot.discounts, \
                tot.first_channel, act.activity \
         FROM tot JOIN act ON act.member_id = tot.member_id"
    )
}

/// Members with orders in scope but no purchase.
fn non_buyers_sql(scope: &Scope, as_of_end: i64, p: &mut Params) -> String {
    let w = scope_sql(scope, as_of_end, p);
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT o.member_id FROM orders o WHERE {w} GROUP BY o.member_id \
         HAVING SUM(CASE WHEN {PURCHASE} THEN 1 ELSE 0 END) = 0) x"
    )
}

const PRODUCT_COLUMNS: &str = "kind, key, name, category, net_revenue, units, cogs, orders, first_orders, first_order_members, first_order_repeaters";

/// The per-product and per-category aggregation (a full `SELECT` producing
/// [`PRODUCT_COLUMNS`]).
fn product_summary_sql(scope: &Scope, as_of_end: i64, p: &mut Params) -> String {
    let w = scope_sql(scope, as_of_end, p);
    let off = p.push(scope.utc_offset_ms);
    let brand = match &scope.brand {
        Some(b) => format!(" AND pr.brand = {}", p.push(b.as_str())),
        None => String::new(),
    };
    let level = |kind: &str, key: &str| {
        format!(
            "SELECT '{kind}' AS kind, k AS key, MAX(name) AS name, MAX(category) AS category, \
               CAST(SUM(net) AS BIGINT) AS net_revenue, CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(cogs) AS BIGINT) AS cogs, \
               CAST(COUNT(*) AS BIGINT) AS orders, CAST(SUM(CASE WHEN rn = 1 THEN 1 ELSE 0 END) AS BIGINT) AS first_orders, \
               CAST(SUM(CASE WHEN rn = 1 THEN 1 ELSE 0 END) AS BIGINT) AS first_order_members, \
               CAST(SUM(CASE WHEN rn = 1 THEN repeater ELSE 0 END) AS BIGINT) AS first_order_repeaters \
             FROM (SELECT {key} AS k, channel, order_id, MAX(name) AS name, MAX(category) AS category, MAX(rn) AS rn, \
                     MAX(repeater) AS repeater, SUM(net) AS net, SUM(quantity) AS units, SUM(cogs) AS cogs \
                   FROM li GROUP BY {key}, channel, order_id) po \
             GROUP BY k"
        )
    };
    format!(
        "WITH f AS (SELECT o.member_id, o.channel, o.order_id, o.gross_amount, o.refunded_amount, o.order_discount, \
                 ROW_NUMBER() OVER (PARTITION BY o.member_id ORDER BY o.ordered_at, o.channel, o.order_id) AS rn, \
                 CASE WHEN MIN(o.ordered_at + {off}) OVER (PARTITION BY o.member_id) / {DAY_MS} \
                         < MAX(o.ordered_at + {off}) OVER (PARTITION BY o.member_id) / {DAY_MS} THEN 1 ELSE 0 END AS repeater \
                 FROM orders o WHERE {PURCHASE} AND {w}), \
         li AS (SELECT o.channel AS channel, o.order_id AS order_id, o.rn AS rn, o.repeater AS repeater, l.sku AS sku, \
                 COALESCE(pr.name, l.sku) AS name, COALESCE(pr.category, '') AS category, l.quantity AS quantity, \
                 (o.gross_amount - o.refunded_amount) * (l.quantity * l.unit_price - l.discount) / {LINE_TOTAL} AS net, \
                 l.quantity * COALESCE(l.unit_cost, pr.unit_cost, 0) AS cogs \
                 FROM f o JOIN order_lines l ON l.channel = o.channel AND l.order_id = o.order_id \
                 LEFT JOIN products pr ON pr.sku = l.sku WHERE 1 = 1{brand}) \
         {} UNION ALL {}",
        level("product", "sku"),
        level("category", "category"),
    )
}

fn parse_activity(
    s: &str,
    channels: &mut Vec<String>,
    index: &mut HashMap<String, u16>,
) -> Result<Vec<DayActivity>, StoreError> {
    let bad = || StoreError::Corrupt(format!("member_summary.activity entry {s:?}"));
    let mut out = Vec::new();
    for e in s.split(';').filter(|e| !e.is_empty()) {
        let (day, rest) = e.split_once(':').ok_or_else(bad)?;
        let mut it = rest.rsplitn(3, ':');
        let net = it.next().ok_or_else(bad)?;
        let n = it.next().ok_or_else(bad)?;
        let ch = it.next().ok_or_else(bad)?;
        out.push(DayActivity {
            day: day.parse().map_err(|_| bad())?,
            channel: intern(ch, channels, index),
            orders: n.parse().map_err(|_| bad())?,
            net_revenue: net.parse().map_err(|_| bad())?,
        });
    }
    out.sort_unstable_by_key(|a| (a.day, a.channel));
    Ok(out)
}

fn intern(ch: &str, channels: &mut Vec<String>, index: &mut HashMap<String, u16>) -> u16 {
    if let Some(i) = index.get(ch) {
        return *i;
    }
    let i = channels.len() as u16;
    channels.push(ch.to_string());
    index.insert(ch.to_string(), i);
    i
}

async fn read_members(
    conn: &mut Conn<'_>,
    sql: &str,
    vals: &[Val],
    channels: &mut Vec<String>,
) -> Result<Vec<MemberSummary>, StoreError> {
    let mut index: HashMap<String, u16> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i as u16))
        .collect();
    let mut out = Vec::new();
    conn.fetch_each(sql, vals, |r| {
        let first_channel = r.text(10)?;
        let activity = parse_activity(&r.text(11)?, channels, &mut index)?;
        out.push(MemberSummary {
            member_id: r.i64(0)?,
            first_at: r.i64(1)?,
            last_at: r.i64(2)?,
            first_day: r.i64(3)? as i32,
            last_day: r.i64(4)? as i32,
            purchase_days: r.i64(5)? as u32,
            orders: r.i64(6)? as u32,
            net_revenue: r.i64(7)?,
            cogs: r.i64(8)?,
            discounts: r.i64(9)?,
            first_channel: intern(&first_channel, channels, &mut index),
            activity,
        });
        Ok::<(), StoreError>(())
    })
    .await?;
    Ok(out)
}

/// Marks the start of a member snapshot stream (format version 1).
const SNAPSHOT_MAGIC: &[u8; 8] = b"TPMSNAP1";
/// Size of one `member_snapshot` part.
const SNAPSHOT_PART_BYTES: usize = 8 << 20;

/// Encode the member summaries as the `member_snapshot` byte stream:
/// magic, summary version, UTC offset, channel names, then one fixed-layout record per
/// member followed by its activity entries (all little-endian).
fn encode_snapshot(
    version: i64,
    utc_offset_ms: i64,
    channels: &[String],
    members: &[MemberSummary],
) -> Vec<u8> {
    let act: usize = members.iter().map(|m| m.activity.len()).sum();
    let mut b = Vec::with_capacity(64 + members.len() * 72 + act * 18);
    b.extend_from_slice(SNAPSHOT_MAGIC);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&utc_offset_ms.to_le_bytes());
    b.extend_from_slice(&(channels.len() as u32).to_le_bytes());
    for c in channels {
        b.extend_from_slice(&(c.len() as u32).to_le_bytes());
        b.extend_from_slice(c.as_bytes());
    }
    b.extend_from_slice(&(members.len() as u64).to_le_bytes());
    for m in members {
        for v in [m.member_id, m.first_at, m.last_at] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [m.first_day, m.last_day] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [m.purchase_days, m.orders] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [m.net_revenue, m.cogs, m.discounts] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&m.first_channel.to_le_bytes());
        b.extend_from_slice(&(m.activity.len() as u32).to_le_bytes());
        for a in &m.activity {
            b.extend_from_slice(&a.day.to_le_bytes());
            b.extend_from_slice(&a.channel.to_le_bytes());
            b.extend_from_slice(&a.orders.to_le_bytes());
            b.extend_from_slice(&a.net_revenue.to_le_bytes());
        }
    }
    b
}

/// A reader over a snapshot stream.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or_else(|| StoreError::Corrupt("member_snapshot is truncated".into()))?;
        self.buf = rest;
        Ok(*head)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt("member_snapshot is truncated".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, StoreError> {
        Ok(i32::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
}

/// Decode a snapshot stream built from `version` at `utc_offset_ms`, with channel indices mapped
/// onto `channels` (names not in it are appended). `None` when the stream
/// was built from another summary version or offset.
fn decode_snapshot(
    buf: &[u8],
    version: i64,
    utc_offset_ms: i64,
    channels: &mut Vec<String>,
) -> Result<Option<Vec<MemberSummary>>, StoreError> {
    let mut c = Cursor { buf };
    if &c.take::<8>()? != SNAPSHOT_MAGIC {
        return Err(StoreError::Corrupt(
            "member_snapshot has an unknown format".into(),
        ));
    }
    if c.i64()? != version || c.i64()? != utc_offset_ms {
        return Ok(None);
    }
    let mut index: HashMap<String, u16> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i as u16))
        .collect();
    let n_channels = c.u32()? as usize;
    let mut map = Vec::with_capacity(n_channels);
    for _ in 0..n_channels {
        let len = c.u32()? as usize;
        let name = std::str::from_utf8(c.bytes(len)?)
            .map_err(|_| StoreError::Corrupt("member_snapshot channel name".into()))?;
        map.push(intern(name, channels, &mut index));
    }
    // Activity is sorted by (day, channel index); a non-monotonic remapping
    // of indices needs a re-sort to keep that order.
    let monotonic = map.windows(2).all(|w| w[0] < w[1]);
    let ch = |i: u16| -> Result<u16, StoreError> {
        map.get(usize::from(i))
            .copied()
            .ok_or_else(|| StoreError::Corrupt("member_snapshot channel index".into()))
    };
    let n = usize::try_from(u64::from_le_bytes(c.take()?))
        .map_err(|_| StoreError::Corrupt("member_snapshot member count".into()))?;
    let mut members = Vec::with_capacity(n.min(buf.len() / 72));
    for _ in 0..n {
        let member_id = c.i64()?;
        let first_at = c.i64()?;
        let last_at = c.i64()?;
        let first_day = c.i32()?;
        let last_day = c.i32()?;
        let purchase_days = c.u32()?;
        let orders = c.u32()?;
        let net_revenue = c.i64()?;
        let cogs = c.i64()?;
        let discounts = c.i64()?;
        let first_channel = ch(c.u16()?)?;
        let k = c.u32()? as usize;
        let mut activity = Vec::with_capacity(k.min(c.buf.len() / 18));
        for _ in 0..k {
            activity.push(DayActivity {
                day: c.i32()?,
                channel: ch(c.u16()?)?,
                orders: c.u32()?,
                net_revenue: c.i64()?,
            });
        }
        if !monotonic {
            activity.sort_unstable_by_key(|a| (a.day, a.channel));
        }
        members.push(MemberSummary {
            member_id,
            first_at,
            last_at,
            first_day,
            last_day,
            purchase_days,
            orders,
            net_revenue,
            cogs,
            discounts,
            first_channel,
            activity,
        });
    }
    if !c.buf.is_empty() {
        return Err(StoreError::Corrupt(
            "member_snapshot has trailing bytes".into(),
        ));
    }
    Ok(Some(members))
}

/// The channel names in their canonical order (the indices of a [`Dataset`]).
async fn channel_names(c: &mut Conn<'_>) -> Result<Vec<String>, StoreError> {
    c.fetch("SELECT name FROM channels ORDER BY name", &[], |r| {
        r.text(0)
    })
    .await
}

fn product_row(r: crate::RowRef<'_>) -> Result<(String, ProductFacts), StoreError> {
    Ok((
        r.text(0)?,
        ProductFacts {
            key: r.text(1)?,
            name: r.text(2)?,
            category: r.text(3)?,
            net_revenue: r.i64(4)?,
            units: r.i64(5)?,
            cogs: r.i64(6)?,
            orders: r.i64(7)? as u64,
            first_orders: r.i64(8)? as u64,
            first_order_members: r.i64(9)? as u64,
            first_order_repeaters: r.i64(10)? as u64,
        },
    ))
}

impl Store {
    /// The state of the materialised summaries.
    pub async fn analytics_state(&self) -> Result<AnalyticsState, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT data_version, summary_version, tz_offset_ms, refreshed_at FROM analytics_state WHERE id = 1",
                &[],
                |r| {
                    Ok(AnalyticsState {
                        data_version: r.i64(0)?,
                        summary_version: r.i64(1)?,
                        tz_offset_ms: r.i64(2)?,
                        refreshed_at: r.i64(3)?,
                    })
                },
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("analytics_state has no row".into()))
    }

    /// The local day of the last order (any status), if there is one.
    pub async fn last_order_day(&self, utc_offset_ms: i64) -> Result<Option<i32>, StoreError> {
        let mut h = self.acquire().await?;
        let max = h
            .conn()
            .fetch_opt("SELECT MAX(ordered_at) FROM orders", &[], |r| r.opt_i64(0))
            .await?
            .flatten();
        Ok(max.map(|t| (t + utc_offset_ms).div_euclid(DAY_MS) as i32))
    }

    /// Rebuild `member_summary` and `product_summary` from the orders, in one
    /// transaction, with days bucketed at `utc_offset_ms`.
    pub async fn refresh_member_summary(&self, utc_offset_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        let version = c
            .fetch_opt(
                "SELECT data_version FROM analytics_state WHERE id = 1",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        let scope = Scope {
            utc_offset_ms,
            ..Scope::default()
        };
        c.exec("DELETE FROM member_summary", &[]).await?;
        c.exec("DELETE FROM product_summary", &[]).await?;
        let mut p = Params { vals: Vec::new() };
        let sql = member_summary_sql(&scope, i64::MAX, &mut p);
        c.exec(
            &format!("INSERT INTO member_summary ({SUMMARY_COLUMNS}) {sql}"),
            &p.vals,
        )
        .await?;
        let mut p = Params { vals: Vec::new() };
        let sql = product_summary_sql(&scope, i64::MAX, &mut p);
        c.exec(
            &format!("INSERT INTO product_summary ({PRODUCT_COLUMNS}) {sql}"),
            &p.vals,
        )
        .await?;
        let mut p = Params { vals: Vec::new() };
        let sql = non_buyers_sql(&scope, i64::MAX, &mut p);
        let non_buyers = c.fetch_opt(&sql, &p.vals, |r| r.i64(0)).await?.unwrap_or(0);
        let mut channels = channel_names(&mut c).await?;
        let members = read_members(
            &mut c,
            &format!("SELECT {SUMMARY_COLUMNS} FROM member_summary"),
            &[],
            &mut channels,
        )
        .await?;
        let snapshot = encode_snapshot(version, utc_offset_ms, &channels, &members);
        drop(members);
        c.exec("DELETE FROM member_snapshot", &[]).await?;
        for (i, part) in snapshot.chunks(SNAPSHOT_PART_BYTES).enumerate() {
            c.exec(
                "INSERT INTO member_snapshot (part, data) VALUES ($1, $2)",
                &[(i as i64).into(), part.to_vec().into()],
            )
            .await?;
        }
        c.exec(
            "UPDATE analytics_state SET summary_version = $1, tz_offset_ms = $2, refreshed_at = $3, non_buyers = $4 WHERE id = 1",
            &[version.into(), utc_offset_ms.into(), crate::now_ms().into(), non_buyers.into()],
        )
        .await?;
        tx.commit().await
    }

    /// Refresh the summaries if an order write happened since they were built
    /// (or they were built with another time zone offset). Returns true if it refreshed.
    pub async fn refresh_member_summary_if_stale(
        &self,
        utc_offset_ms: i64,
    ) -> Result<bool, StoreError> {
        if self.analytics_state().await?.is_current(utc_offset_ms) {
            return Ok(false);
        }
        self.refresh_member_summary(utc_offset_ms).await?;
        Ok(true)
    }

    /// Resolve the scope's as-of day and whether the materialised summaries
    /// answer it (refreshing them first when stale).
    async fn plan(&self, scope: &Scope) -> Result<(i32, i64, bool), StoreError> {
        let last = self.last_order_day(scope.utc_offset_ms).await?;
        let as_of_day = scope.as_of_day.or(last).unwrap_or(0);
        let as_of_end = (i64::from(as_of_day) + 1) * DAY_MS - scope.utc_offset_ms;
        let covers_all = last.is_none_or(|l| as_of_day >= l);
        let materialised = !scope.filtered() && covers_all;
        if materialised {
            self.refresh_member_summary_if_stale(scope.utc_offset_ms)
                .await?;
        }
        Ok((as_of_day, as_of_end, materialised))
    }

    /// The per-member purchase summaries of the scope: the input of the RFM,
    /// ABC, retention, cohort and channel reports.
    pub async fn member_dataset(&self, scope: &Scope) -> Result<Dataset, StoreError> {
        let (as_of_day, as_of_end, materialised) = self.plan(scope).await?;
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let mut channels = channel_names(&mut c).await?;
        let (members, non_buyers) = if materialised {
            let (nb, version) = c
                .fetch_opt(
                    "SELECT non_buyers, summary_version, tz_offset_ms FROM analytics_state WHERE id = 1",
                    &[],
                    |r| Ok((r.i64(0)?, (r.i64(1)?, r.i64(2)?))),
                )
                .await?
                .unwrap_or((0, (0, 0)));
            let mut snapshot = Vec::new();
            c.fetch_each("SELECT data FROM member_snapshot ORDER BY part", &[], |r| {
                snapshot.extend_from_slice(&r.bytes(0)?);
                Ok::<(), StoreError>(())
            })
            .await?;
            let decoded = if snapshot.is_empty() {
                None
            } else {
                decode_snapshot(&snapshot, version.0, version.1, &mut channels)?
            };
            let members = match decoded {
                Some(m) => m,
                // Built by a version without snapshots: read the rows.
                None => {
                    read_members(
                        &mut c,
                        &format!("SELECT {SUMMARY_COLUMNS} FROM member_summary"),
                        &[],
                        &mut channels,
                    )
                    .await?
                }
            };
            (members, nb)
        } else {
            let mut p = Params { vals: Vec::new() };
            let sql = member_summary_sql(scope, as_of_end, &mut p);
            let members = read_members(&mut c, &sql, &p.vals, &mut channels).await?;
            let mut p = Params { vals: Vec::new() };
            let sql = non_buyers_sql(scope, as_of_end, &mut p);
            let nb = c.fetch_opt(&sql, &p.vals, |r| r.i64(0)).await?.unwrap_or(0);
            (members, nb)
        };
        Ok(Dataset {
            channels,
            members,
            members_without_purchases: non_buyers as u64,
            as_of_day,
        })
    }

    /// The per-product and per-category summaries of the scope: the input of
    /// the product report.
    pub async fn product_data(&self, scope: &Scope) -> Result<ProductData, StoreError> {
        let (as_of_day, as_of_end, materialised) = self.plan(scope).await?;
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let rows = if materialised {
            c.fetch(
                &format!("SELECT {PRODUCT_COLUMNS} FROM product_summary"),
                &[],
                product_row,
            )
            .await?
        } else {
            let mut p = Params { vals: Vec::new() };
            let sql = product_summary_sql(scope, as_of_end, &mut p);
            c.fetch(&sql, &p.vals, product_row).await?
        };
        let mut p = Params { vals: Vec::new() };
        let totals = if materialised {
            "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM member_summary"
                .to_string()
        } else {
            let w = scope_sql(scope, as_of_end, &mut p);
            format!(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT o.member_id) AS BIGINT) FROM orders o WHERE {PURCHASE} AND {w}"
            )
        };
        let (orders, buyers) = c
            .fetch_opt(&totals, &p.vals, |r| Ok((r.i64(0)?, r.i64(1)?)))
            .await?
            .unwrap_or((0, 0));
        let mut data = ProductData {
            total_orders: orders as u64,
            total_first_orders: buyers as u64,
            as_of_day,
            ..ProductData::default()
        };
        for (kind, f) in rows {
            if kind == "product" {
                data.products.push(f);
            } else {
                data.categories.push(f);
            }
        }
        data.products.sort_by(|a, b| a.key.cmp(&b.key));
        data.categories.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(data)
    }
}

/// Mark the summaries stale: called inside every transaction that writes
/// orders or moves them between members.
pub(crate) async fn bump_data_version(conn: &mut Conn<'_>) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE analytics_state SET data_version = data_version + 1 WHERE id = 1",
        &[],
    )
    .await?;
    Ok(())
}
