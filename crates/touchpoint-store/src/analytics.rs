//! Reads for the analytics reports.
//!
//! The member reports (RFM, ABC, retention, cohorts, channels, summary) read
//! the analytics model ([`crate::facts`]): one fact per order kept current by
//! the write path, loaded as a snapshot plus the facts written since, and
//! filtered in memory ([`Store::member_dataset`]). The same per-member
//! aggregation in SQL ([`Store::member_dataset_sql`]) is kept as the
//! reference that tests hold the model to. The product report runs its
//! aggregation inside the database ([`Store::product_data`]).
//!
//! Purchases are orders with status `paid` or `partially_refunded`; net
//! revenue is `gross_amount - refunded_amount`. Local days are
//! `(ordered_at + utc_offset_ms) / 86400000`.

use std::collections::HashMap;

use touchpoint_core::analytics::facts::CatalogEntry;
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
    /// Only orders on or after this local day (a date range's start; with
    /// `since_day` the later of the two applies).
    pub from_day: Option<i32>,
    /// Only orders on or before this local day (a date range's end).
    pub to_day: Option<i32>,
    /// Offset of the business time zone from UTC, milliseconds (Asia/Shanghai: 8 h).
    pub utc_offset_ms: i64,
}

impl Scope {
    /// The same scope for the analytics model.
    pub fn fact_filter(&self) -> touchpoint_core::analytics::facts::FactFilter {
        touchpoint_core::analytics::facts::FactFilter {
            as_of_day: self.as_of_day,
            channel: self.channel.clone(),
            brand: self.brand.clone(),
            since_day: self.since_day,
            from_day: self.from_day,
            to_day: self.to_day,
            utc_offset_ms: self.utc_offset_ms,
        }
    }
}

/// The state of the analytics model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AnalyticsState {
    /// Bumped by every write that changes orders or which member owns them.
    pub data_version: i64,
    /// The fact sequence number of the last write of the model.
    pub fact_seq: i64,
    /// The sequence number the snapshot covers (-1: none).
    pub snapshot_seq: i64,
    /// Whether the facts were built (false only for a store from before
    /// migration 0006 that no report has read yet).
    pub facts_built: bool,
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
    for d in [scope.since_day, scope.from_day].into_iter().flatten() {
        w.push_str(&format!(
            " AND o.ordered_at >= {}",
            p.push(i64::from(d) * DAY_MS - scope.utc_offset_ms)
        ));
    }
    if let Some(d) = scope.to_day {
        w.push_str(&format!(
            " AND o.ordered_at < {}",
            p.push((i64::from(d) + 1) * DAY_MS - scope.utc_offset_ms)
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

/// The per-member aggregation (a full `SELECT` of member_id, first_at, last_at,
/// first_day, last_day, purchase_days, orders, net_revenue, cogs, discounts,
/// first_channel, activity).
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

/// The per-product and per-category aggregation (a full `SELECT` producing
/// kind, key, name, category, net_revenue, units, cogs, orders, first_orders,
/// first_order_members, first_order_repeaters).
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
    /// The state of the analytics model.
    pub async fn analytics_state(&self) -> Result<AnalyticsState, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT data_version, fact_seq, snapshot_seq, facts_built FROM analytics_state WHERE id = 1",
                &[],
                |r| {
                    Ok(AnalyticsState {
                        data_version: r.i64(0)?,
                        fact_seq: r.i64(1)?,
                        snapshot_seq: r.i64(2)?,
                        facts_built: r.i64(3)? != 0,
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

    /// Resolve the scope's as-of day and the end of its time range.
    async fn plan(&self, scope: &Scope) -> Result<(i32, i64), StoreError> {
        let last = self.last_order_day(scope.utc_offset_ms).await?;
        let as_of_day = scope.as_of_day.or(last).unwrap_or(0);
        let as_of_end = (i64::from(as_of_day) + 1) * DAY_MS - scope.utc_offset_ms;
        Ok((as_of_day, as_of_end))
    }

    /// The per-member purchase summaries of the scope: the input of the RFM,
    /// ABC, retention, cohort and channel reports, computed from the
    /// analytics model (see [`crate::facts`]), members sorted by id.
    pub async fn member_dataset(&self, scope: &Scope) -> Result<Dataset, StoreError> {
        Ok((*self.member_dataset_shared(scope).await?).clone())
    }

    /// [`Store::member_dataset`], shared: the last two scopes read are kept
    /// in memory until the facts change (the reports of one page read the
    /// same scope).
    pub(crate) async fn member_dataset_shared(
        &self,
        scope: &Scope,
    ) -> Result<std::sync::Arc<Dataset>, StoreError> {
        let (facts, load) = self.order_facts().await?;
        let key = format!("{}|{scope:?}", load.seq);
        if let Some(d) = self.cache.datasets.get(&key) {
            return Ok(d);
        }
        let d = std::sync::Arc::new(facts.dataset(&scope.fact_filter()));
        self.cache.datasets.put(key, d.clone());
        Ok(d)
    }

    /// The per-member purchase summaries of the scope computed by one SQL
    /// aggregation inside the database: what the reports read before the
    /// analytics model, kept as the reference the model is tested against.
    pub async fn member_dataset_sql(&self, scope: &Scope) -> Result<Dataset, StoreError> {
        let (as_of_day, as_of_end) = self.plan(scope).await?;
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let mut channels = channel_names(&mut c).await?;
        channels.sort();
        let mut p = Params { vals: Vec::new() };
        let sql = member_summary_sql(scope, as_of_end, &mut p);
        let mut members = read_members(&mut c, &sql, &p.vals, &mut channels).await?;
        members.sort_by_key(|m| m.member_id);
        let mut p = Params { vals: Vec::new() };
        let sql = non_buyers_sql(scope, as_of_end, &mut p);
        let non_buyers = c.fetch_opt(&sql, &p.vals, |r| r.i64(0)).await?.unwrap_or(0);
        Ok(Dataset {
            channels,
            members,
            members_without_purchases: non_buyers as u64,
            as_of_day,
        })
    }

    /// The per-product and per-category summaries of the scope: the input of
    /// the product report, computed from the analytics model in memory (each
    /// fact keeps its value per product) with the catalogue's current names,
    /// categories and brands.
    pub async fn product_data(&self, scope: &Scope) -> Result<ProductData, StoreError> {
        let (facts, _) = self.order_facts().await?;
        let mut catalog = HashMap::new();
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_each(
                "SELECT sku, name, category, brand FROM products",
                &[],
                |r| {
                    catalog.insert(
                        r.text(0)?,
                        CatalogEntry {
                            name: r.opt_text(1)?,
                            category: r.opt_text(2)?,
                            brand: r.opt_text(3)?,
                        },
                    );
                    Ok::<(), StoreError>(())
                },
            )
            .await?;
        drop(h);
        Ok(facts.product_data(&scope.fact_filter(), &catalog))
    }

    /// [`Store::product_data`] computed by one SQL aggregation over the order
    /// lines: the reference the model is tested against.
    pub async fn product_data_sql(&self, scope: &Scope) -> Result<ProductData, StoreError> {
        let (as_of_day, as_of_end) = self.plan(scope).await?;
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let mut p = Params { vals: Vec::new() };
        let sql = product_summary_sql(scope, as_of_end, &mut p);
        let rows = c.fetch(&sql, &p.vals, product_row).await?;
        let mut p = Params { vals: Vec::new() };
        let w = scope_sql(scope, as_of_end, &mut p);
        let totals = format!(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT o.member_id) AS BIGINT) FROM orders o WHERE {PURCHASE} AND {w}"
        );
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
