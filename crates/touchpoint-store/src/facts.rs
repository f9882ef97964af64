//! The analytics model in the store: `order_facts`, one row per order, kept
//! current by the write path inside its transaction, and `fact_snapshot`, a
//! compact binary copy that readers load before applying the rows written
//! since (`seq` greater than the snapshot's).
//!
//! ```text
//! Writer (unit of work) --upsert--> order_facts (seq = this transaction's fact_seq)
//! reader: fact_snapshot (as of snapshot_seq) + order_facts WHERE seq > snapshot_seq
//!         -> OrderFacts (core) -> Dataset of any filter
//! compaction: when the rows since the snapshot grow large, a reader or the
//!             end of an import writes a new snapshot
//! rebuild:    `touchpoint analytics rebuild` recomputes every fact from the orders
//! ```
//!
//! A fact's values are those of the report SQL (see `analytics.rs`): net =
//! gross - refunded; discounts = order discount + line discounts; cost of
//! goods = quantity x (line cost, else the product's cost, else 0); a brand's
//! part allocates the order's net and order discount to its lines in
//! proportion to line value, each line rounded toward zero. The brand and the
//! fallback cost come from `products`, so when a write changes a product's
//! brand or cost, the facts of every order with that product are recomputed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use touchpoint_core::analytics::facts::{BrandPart, Fact, OrderFacts, SkuPart};
use touchpoint_core::OrderStatus;

use crate::db::{Conn, Val};
use crate::unit_of_work::UnitOfWork;
use crate::{Store, StoreError};

/// One line's inputs to a fact.
#[derive(Debug, Clone)]
pub(crate) struct FactLine {
    pub sku: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    /// Line cost, else the product's.
    pub unit_cost: i64,
    /// The product's brand.
    pub brand: Option<String>,
}

/// One order's inputs to a fact.
#[derive(Debug, Clone)]
pub(crate) struct FactOrder {
    pub channel: String,
    pub order_id: String,
    pub member_id: i64,
    pub ordered_at: i64,
    pub status: String,
    pub gross: i64,
    pub refunded: i64,
    pub order_discount: i64,
    /// The order's campaign; `None` keeps the stored one (as `orders` does).
    pub campaign: Option<String>,
    pub lines: Vec<FactLine>,
}

/// A computed fact row, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FactRow {
    pub channel: String,
    pub order_id: String,
    pub member_id: i64,
    pub ordered_at: i64,
    pub purchase: bool,
    pub net: i64,
    pub disc: i64,
    pub cogs: i64,
    /// (brand, net, disc, cogs), sorted by brand.
    pub parts: Vec<(String, i64, i64, i64)>,
    /// (sku, units, net, cogs), sorted by SKU.
    pub lines: Vec<(String, i64, i64, i64)>,
    pub campaign: Option<String>,
}

/// The report SQL's arithmetic for one order.
pub(crate) fn compute(o: &FactOrder) -> FactRow {
    let purchase = OrderStatus::parse(&o.status).is_ok_and(|s| s.is_purchase());
    let net = o.gross - o.refunded;
    let line_total = match o.gross + o.order_discount {
        0 => 1,
        t => t,
    };
    let mut disc = o.order_discount;
    let mut cogs = 0;
    let mut parts: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    let mut skus: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for l in &o.lines {
        disc += l.discount;
        let line_cogs = l.quantity * l.unit_cost;
        cogs += line_cogs;
        let value = l.quantity * l.unit_price - l.discount;
        let s = skus.entry(l.sku.as_str()).or_default();
        s.0 += l.quantity;
        s.1 += net * value / line_total;
        s.2 += line_cogs;
        if let Some(b) = &l.brand {
            let p = parts.entry(b.as_str()).or_default();
            p.0 += net * value / line_total;
            p.1 += l.discount + o.order_discount * value / line_total;
            p.2 += line_cogs;
        }
    }
    FactRow {
        channel: o.channel.clone(),
        order_id: o.order_id.clone(),
        member_id: o.member_id,
        ordered_at: o.ordered_at,
        purchase,
        net,
        disc,
        cogs,
        parts: parts
            .into_iter()
            .map(|(b, (n, d, c))| (b.to_string(), n, d, c))
            .collect(),
        lines: skus
            .into_iter()
            .map(|(k, (u, n, c))| (k.to_string(), u, n, c))
            .collect(),
        campaign: o.campaign.clone(),
    }
}

const PART_SEP: char = '\u{1e}';

fn encode_parts(parts: &[(String, i64, i64, i64)]) -> String {
    let mut s = String::new();
    for (i, (b, n, d, c)) in parts.iter().enumerate() {
        if i > 0 {
            s.push(PART_SEP);
        }
        s.push_str(&format!("{n},{d},{c},{b}"));
    }
    s
}

fn decode_parts(s: &str) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
    let bad = || StoreError::Corrupt(format!("order_facts.brands or .lines entry {s:?}"));
    s.split(PART_SEP)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut it = e.splitn(4, ',');
            let n = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let d = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let c = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let b = it.next().ok_or_else(bad)?.to_string();
            Ok((b, n, d, c))
        })
        .collect()
}

/// Upsert fact rows with this unit of work's sequence number.
pub(crate) async fn upsert(uow: &mut UnitOfWork, rows: Vec<FactRow>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let seq = uow.fact_seq().await?;
    // One statement may not upsert a row twice: the last computation wins.
    let mut last: HashMap<(String, String), FactRow> = HashMap::with_capacity(rows.len());
    for r in rows {
        last.insert((r.channel.clone(), r.order_id.clone()), r);
    }
    let mut vals = Vec::with_capacity(last.len() * 12);
    for (_, r) in last {
        vals.extend([
            Val::from(r.channel),
            r.order_id.into(),
            r.member_id.into(),
            r.ordered_at.into(),
            i64::from(r.purchase).into(),
            r.net.into(),
            r.disc.into(),
            r.cogs.into(),
            encode_parts(&r.parts).into(),
            encode_parts(&r.lines).into(),
            r.campaign.into(),
            seq.into(),
        ]);
    }
    uow.conn()
        .insert_many(
            "INSERT INTO order_facts (channel, order_id, member_id, ordered_at, purchase, net, disc, cogs, brands, lines, campaign, seq)",
            "ON CONFLICT (channel, order_id) DO UPDATE SET member_id = excluded.member_id, \
             ordered_at = excluded.ordered_at, purchase = excluded.purchase, net = excluded.net, \
             disc = excluded.disc, cogs = excluded.cogs, brands = excluded.brands, lines = excluded.lines, \
             campaign = COALESCE(excluded.campaign, order_facts.campaign), seq = excluded.seq",
            12,
            &vals,
        )
        .await?;
    Ok(())
}

const ORDER_INPUT_SQL: &str =
    "SELECT o.channel, o.order_id, o.member_id, o.ordered_at, o.status, o.gross_amount, \
     o.refunded_amount, o.order_discount, l.quantity, l.unit_price, l.discount, \
     COALESCE(l.unit_cost, pr.unit_cost, 0), pr.brand, l.sku, o.campaign \
     FROM orders o LEFT JOIN order_lines l ON l.channel = o.channel AND l.order_id = o.order_id \
     LEFT JOIN products pr ON pr.sku = l.sku";

/// Read the fact inputs of the orders selected by `where_sql`, grouped per order.
async fn read_inputs(
    conn: &mut Conn<'_>,
    where_sql: &str,
    vals: &[Val],
) -> Result<Vec<FactOrder>, StoreError> {
    let sql =
        format!("{ORDER_INPUT_SQL} WHERE {where_sql} ORDER BY o.channel, o.order_id, l.line_no");
    let mut out: Vec<FactOrder> = Vec::new();
    conn.fetch_each(&sql, vals, |r| {
        let channel = r.text(0)?;
        let order_id = r.text(1)?;
        let same = out
            .last()
            .is_some_and(|o| o.channel == channel && o.order_id == order_id);
        if !same {
            out.push(FactOrder {
                channel,
                order_id,
                member_id: r.i64(2)?,
                ordered_at: r.i64(3)?,
                status: r.text(4)?,
                gross: r.i64(5)?,
                refunded: r.i64(6)?,
                order_discount: r.i64(7)?,
                campaign: r.opt_text(14)?,
                lines: Vec::new(),
            });
        }
        if let Some(q) = r.opt_i64(8)? {
            out.last_mut().expect("pushed").lines.push(FactLine {
                sku: r.text(13)?,
                quantity: q,
                unit_price: r.i64(9)?,
                discount: r.i64(10)?,
                unit_cost: r.i64(11)?,
                brand: r.opt_text(12)?,
            });
        }
        Ok::<(), StoreError>(())
    })
    .await?;
    Ok(out)
}

/// Recompute the facts of these orders from the stored rows.
pub(crate) async fn refresh_orders(
    uow: &mut UnitOfWork,
    keys: &[(String, String)],
) -> Result<(), StoreError> {
    let mut by_channel: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (c, o) in keys {
        by_channel.entry(c).or_default().push(o);
    }
    let mut rows = Vec::new();
    for (channel, ids) in by_channel {
        for batch in ids.chunks(1_000) {
            let mut c = uow.conn();
            let params = c.param_list(2, batch.len());
            let mut vals: Vec<Val> = vec![channel.into()];
            vals.extend(batch.iter().map(|id| Val::from(*id)));
            let inputs = read_inputs(
                &mut c,
                &format!("o.channel = $1 AND o.order_id IN ({params})"),
                &vals,
            )
            .await?;
            rows.extend(inputs.iter().map(compute));
        }
    }
    upsert(uow, rows).await
}

/// Recompute the facts of every order of these members, and of every fact
/// row that still names one of them (orders that moved to another member).
pub(crate) async fn refresh_members(
    uow: &mut UnitOfWork,
    members: &HashSet<i64>,
) -> Result<(), StoreError> {
    if members.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = members.iter().copied().collect();
    let mut keys = Vec::new();
    for batch in ids.chunks(500) {
        let mut c = uow.conn();
        let params = c.param_list(1, batch.len());
        let vals: Vec<Val> = batch.iter().map(|m| Val::from(*m)).collect();
        for table in ["orders", "order_facts"] {
            keys.extend(
                c.fetch(
                    &format!("SELECT channel, order_id FROM {table} WHERE member_id IN ({params})"),
                    &vals,
                    |r| Ok((r.text(0)?, r.text(1)?)),
                )
                .await?,
            );
        }
    }
    keys.sort();
    keys.dedup();
    refresh_orders(uow, &keys).await
}

/// Recompute the facts of every order with one of these products (their brand
/// or cost changed).
pub(crate) async fn refresh_skus(uow: &mut UnitOfWork, skus: &[String]) -> Result<(), StoreError> {
    let mut keys = Vec::new();
    for batch in skus.chunks(500) {
        let mut c = uow.conn();
        let params = c.param_list(1, batch.len());
        let vals: Vec<Val> = batch.iter().map(|s| Val::from(s.as_str())).collect();
        keys.extend(
            c.fetch(
                &format!(
                    "SELECT DISTINCT channel, order_id FROM order_lines WHERE sku IN ({params})"
                ),
                &vals,
                |r| Ok((r.text(0)?, r.text(1)?)),
            )
            .await?,
        );
    }
    keys.sort();
    keys.dedup();
    refresh_orders(uow, &keys).await
}

// ---------------------------------------------------------------------------
// The snapshot.

const MAGIC: &[u8; 8] = b"TPFACTS2";
const PART_BYTES: usize = 8 << 20;

fn put_var(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_signed(b: &mut Vec<u8>, v: i64) {
    put_var(b, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_var(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// Encode facts (sorted) as of `seq`.
pub(crate) fn encode(seq: i64, f: &OrderFacts) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + f.facts.len() * 20);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&seq.to_le_bytes());
    put_var(&mut b, f.channels.len() as u64);
    for c in &f.channels {
        put_str(&mut b, c);
    }
    put_var(&mut b, f.brands.len() as u64);
    for c in &f.brands {
        put_str(&mut b, c);
    }
    put_var(&mut b, f.skus.len() as u64);
    for c in &f.skus {
        put_str(&mut b, c);
    }
    put_var(&mut b, f.campaigns.len() as u64);
    for c in &f.campaigns {
        put_str(&mut b, c);
    }
    put_var(&mut b, f.facts.len() as u64);
    let (mut id, mut member, mut at) = (0i64, 0i64, 0i64);
    for x in &f.facts {
        put_signed(&mut b, x.fact_id - id);
        put_signed(&mut b, x.member_id - member);
        put_signed(&mut b, x.ordered_at - at);
        (id, member, at) = (x.fact_id, x.member_id, x.ordered_at);
        put_var(&mut b, u64::from(x.channel) << 1 | u64::from(x.purchase));
        put_signed(&mut b, x.net);
        put_signed(&mut b, x.disc);
        put_signed(&mut b, x.cogs);
        put_var(&mut b, x.parts.len() as u64);
        for p in &x.parts {
            put_var(&mut b, u64::from(p.brand));
            put_signed(&mut b, p.net);
            put_signed(&mut b, p.disc);
            put_signed(&mut b, p.cogs);
        }
        put_var(&mut b, x.lines.len() as u64);
        for l in &x.lines {
            put_var(&mut b, u64::from(l.sku));
            put_signed(&mut b, l.units);
            put_signed(&mut b, l.net);
            put_signed(&mut b, l.cogs);
        }
        put_var(&mut b, x.campaign.map_or(0, |c| u64::from(c) + 1));
    }
    b
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn corrupt() -> StoreError {
        StoreError::Corrupt(
            "fact_snapshot is truncated or damaged; run `touchpoint analytics rebuild`".into(),
        )
    }
    #[inline]
    fn var(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.i).ok_or_else(Self::corrupt)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(Self::corrupt());
            }
        }
    }
    #[inline]
    fn signed(&mut self) -> Result<i64, StoreError> {
        let v = self.var()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn string(&mut self) -> Result<String, StoreError> {
        let n = self.var()? as usize;
        let s = self.b.get(self.i..self.i + n).ok_or_else(Self::corrupt)?;
        self.i += n;
        String::from_utf8(s.to_vec()).map_err(|_| Self::corrupt())
    }
}

/// Decode a snapshot; returns its seq and facts (with its own channel and
/// brand tables).
pub(crate) fn decode(b: &[u8]) -> Result<(i64, OrderFacts), StoreError> {
    if b.len() < 16 || &b[..8] != MAGIC {
        return Err(Reader::corrupt());
    }
    let seq = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    let mut r = Reader { b, i: 16 };
    let mut f = OrderFacts::default();
    for _ in 0..r.var()? {
        f.channels.push(r.string()?);
    }
    for _ in 0..r.var()? {
        f.brands.push(r.string()?);
    }
    for _ in 0..r.var()? {
        f.skus.push(r.string()?);
    }
    for _ in 0..r.var()? {
        f.campaigns.push(r.string()?);
    }
    let n = r.var()? as usize;
    f.facts.reserve(n.min(b.len()));
    let (mut id, mut member, mut at) = (0i64, 0i64, 0i64);
    for _ in 0..n {
        id += r.signed()?;
        member += r.signed()?;
        at += r.signed()?;
        let cp = r.var()?;
        let net = r.signed()?;
        let disc = r.signed()?;
        let cogs = r.signed()?;
        let k = r.var()? as usize;
        let mut parts = Vec::with_capacity(k.min(16));
        for _ in 0..k {
            parts.push(BrandPart {
                brand: r.var()? as u32,
                net: r.signed()?,
                disc: r.signed()?,
                cogs: r.signed()?,
            });
        }
        let k = r.var()? as usize;
        let mut lines = Vec::with_capacity(k.min(64));
        for _ in 0..k {
            lines.push(SkuPart {
                sku: r.var()? as u32,
                units: r.signed()?,
                net: r.signed()?,
                cogs: r.signed()?,
            });
        }
        let campaign = match r.var()? {
            0 => None,
            c => Some((c - 1) as u32),
        };
        f.facts.push(Fact {
            fact_id: id,
            member_id: member,
            ordered_at: at,
            channel: (cp >> 1) as u16,
            purchase: cp & 1 == 1,
            net,
            disc,
            cogs,
            parts,
            lines,
            campaign,
        });
    }
    if r.i != b.len() {
        return Err(Reader::corrupt());
    }
    Ok((seq, f))
}

/// Interns names onto the tables of an [`OrderFacts`].
struct Names {
    index: HashMap<String, u32>,
}

impl Names {
    fn new(names: &[String]) -> Self {
        Self {
            index: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
        }
    }
    fn get(&mut self, name: &str, names: &mut Vec<String>) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = names.len() as u32;
        names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }
}

/// What loading the model found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FactsLoad {
    /// Rows in the snapshot.
    pub snapshot_rows: usize,
    /// Rows written since it, applied on top.
    pub delta_rows: usize,
    /// The fact sequence number loaded.
    pub seq: i64,
}

/// Delta rows beyond which a reader writes a new snapshot.
fn compaction_threshold(snapshot_rows: usize) -> usize {
    (snapshot_rows / 20).max(20_000)
}

impl Store {
    /// Load the analytics model: the facts kept in memory (see
    /// [`crate::model_cache`]) brought up to date, or on the first read the
    /// snapshot plus the facts written since, with channels in name order.
    /// Builds the facts first if this database has never had them (a store
    /// from before migration 0006), and writes a new snapshot when a load
    /// from the snapshot found many facts written since it.
    pub async fn order_facts(&self) -> Result<(Arc<OrderFacts>, FactsLoad), StoreError> {
        self.ensure_facts().await?;
        let seq = self.analytics_state().await?.fact_seq;
        // One loader at a time: concurrent readers wait for its result
        // instead of each loading the same facts.
        let mut slot = self.cache.facts.lock().await;
        if let Some((cached, facts)) = slot.as_ref() {
            if *cached == seq {
                let load = FactsLoad {
                    snapshot_rows: facts.facts.len(),
                    delta_rows: 0,
                    seq,
                };
                return Ok((facts.clone(), load));
            }
        }
        let base = slot.take();
        let (facts, load, from_snapshot) = self.load_facts(base).await?;
        let facts = Arc::new(facts);
        *slot = Some((load.seq, facts.clone()));
        drop(slot);
        if from_snapshot && load.delta_rows > compaction_threshold(load.snapshot_rows) {
            self.write_snapshot(load.seq, &facts).await?;
        }
        Ok((facts, load))
    }

    /// Read the facts: on top of `base` (facts already loaded, as of its
    /// sequence number) when it is still a prefix of the stored history,
    /// else from the snapshot. The third value says which (true: the
    /// snapshot).
    async fn load_facts(
        &self,
        base: Option<(i64, Arc<OrderFacts>)>,
    ) -> Result<(OrderFacts, FactsLoad, bool), StoreError> {
        // One read transaction: the snapshot and the rows after it are of the
        // same state.
        let mut tx = self.begin_read().await?;
        let mut c = tx.conn();
        let (snapshot_seq, fact_seq) = c
            .fetch_opt(
                "SELECT snapshot_seq, fact_seq FROM analytics_state WHERE id = 1",
                &[],
                |r| Ok((r.i64(0)?, r.i64(1)?)),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("analytics_state has no row".into()))?;
        let mut base_ok = None;
        if let Some((seq, facts)) = base {
            // A rebuild rewrites every fact with a new number: then nothing
            // at or below the cached number is left, and the cache is stale.
            let kept = facts.facts.is_empty()
                || c.fetch_opt(
                    "SELECT CAST(1 AS BIGINT) FROM order_facts WHERE seq <= $1 LIMIT 1",
                    &[seq.into()],
                    |r| r.i64(0),
                )
                .await?
                .is_some();
            if seq <= fact_seq && kept {
                base_ok = Some((seq, facts));
            }
        }
        let mut channels: Vec<String> = c
            .fetch("SELECT name FROM channels", &[], |r| r.text(0))
            .await?;
        channels.sort();
        let mut facts = OrderFacts {
            channels,
            ..OrderFacts::default()
        };
        let mut snapshot_rows = 0;
        let mut from_seq = -1;
        let from_snapshot = base_ok.is_none();
        if let Some((seq, cached)) = base_ok {
            // Unshared unless a reader still holds it: then it is copied.
            let cached = Arc::try_unwrap(cached).unwrap_or_else(|shared| (*shared).clone());
            snapshot_rows = cached.facts.len();
            from_seq = seq;
            facts = remap(cached, facts.channels);
        } else if snapshot_seq >= 0 {
            let mut bytes = Vec::new();
            c.fetch_each("SELECT data FROM fact_snapshot ORDER BY part", &[], |r| {
                bytes.extend_from_slice(&r.bytes(0)?);
                Ok::<(), StoreError>(())
            })
            .await?;
            if !bytes.is_empty() {
                let (seq, snap) = decode(&bytes)?;
                drop(bytes);
                if seq == snapshot_seq {
                    snapshot_rows = snap.facts.len();
                    from_seq = seq;
                    facts = remap(snap, facts.channels);
                }
            }
        }
        let mut ch = Names::new(&facts.channels);
        let mut br = Names::new(&facts.brands);
        let mut sk = Names::new(&facts.skus);
        let mut cp = Names::new(&facts.campaigns);
        let mut delta = Vec::new();
        let mut failed = None;
        c.fetch_each(
            "SELECT fact_id, channel, member_id, ordered_at, purchase, net, disc, cogs, brands, lines, campaign FROM order_facts WHERE seq > $1",
            &[from_seq.into()],
            |r| {
                let parts = decode_parts(&r.text(8)?)?;
                let lines = decode_parts(&r.text(9)?)?;
                let channel = ch.get(&r.text(1)?, &mut facts.channels);
                if channel > u32::from(u16::MAX) {
                    failed = Some(StoreError::Corrupt("more than 65,535 channels".into()));
                }
                delta.push(Fact {
                    fact_id: r.i64(0)?,
                    member_id: r.i64(2)?,
                    ordered_at: r.i64(3)?,
                    channel: channel as u16,
                    purchase: r.i64(4)? != 0,
                    net: r.i64(5)?,
                    disc: r.i64(6)?,
                    cogs: r.i64(7)?,
                    parts: parts
                        .into_iter()
                        .map(|(b, net, disc, cogs)| BrandPart {
                            brand: br.get(&b, &mut facts.brands),
                            net,
                            disc,
                            cogs,
                        })
                        .collect(),
                    lines: lines
                        .into_iter()
                        .map(|(sku, units, net, cogs)| SkuPart {
                            sku: sk.get(&sku, &mut facts.skus),
                            units,
                            net,
                            cogs,
                        })
                        .collect(),
                    campaign: match r.opt_text(10)? {
                        Some(c) => Some(cp.get(&c, &mut facts.campaigns)),
                        None => None,
                    },
                });
                Ok::<(), StoreError>(())
            },
        )
        .await?;
        tx.commit().await?;
        if let Some(e) = failed {
            return Err(e);
        }
        let delta_rows = delta.len();
        if snapshot_rows == 0 {
            facts.facts = delta;
            facts.sort();
        } else {
            facts.apply(delta);
        }
        // A channel may have been added after the snapshot: keep name order.
        if !facts.channels.windows(2).all(|w| w[0] < w[1]) {
            let mut sorted = facts.channels.clone();
            sorted.sort();
            facts = remap(facts, sorted);
        }
        Ok((
            facts,
            FactsLoad {
                snapshot_rows,
                delta_rows,
                seq: fact_seq,
            },
            from_snapshot,
        ))
    }

    /// Write `facts` (as of `seq`) as the snapshot, unless a newer one exists.
    async fn write_snapshot(&self, seq: i64, facts: &OrderFacts) -> Result<(), StoreError> {
        let bytes = encode(seq, facts);
        let mut tx = self.begin().await?;
        let mut c = tx.conn();
        let changed = c
            .exec(
                "UPDATE analytics_state SET snapshot_seq = $1 WHERE id = 1 AND snapshot_seq < $1",
                &[seq.into()],
            )
            .await?;
        if changed == 0 {
            return Ok(());
        }
        c.exec("DELETE FROM fact_snapshot", &[]).await?;
        for (i, part) in bytes.chunks(PART_BYTES).enumerate() {
            c.exec(
                "INSERT INTO fact_snapshot (part, data) VALUES ($1, $2)",
                &[(i as i64).into(), part.to_vec().into()],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Write a snapshot of the current facts now (the end of an import).
    pub async fn compact_facts(&self) -> Result<FactsLoad, StoreError> {
        self.ensure_facts().await?;
        let (facts, load, _) = self.load_facts(None).await?;
        if load.delta_rows > 0 {
            self.write_snapshot(load.seq, &facts).await?;
        }
        Ok(load)
    }

    async fn ensure_facts(&self) -> Result<(), StoreError> {
        let mut h = self.acquire().await?;
        let built = h
            .conn()
            .fetch_opt(
                "SELECT facts_built FROM analytics_state WHERE id = 1",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0);
        drop(h);
        if built == 0 {
            self.rebuild_facts().await?;
        }
        Ok(())
    }

    /// Recompute every fact from the orders and write a new snapshot: the
    /// repair path (`touchpoint analytics rebuild`). Its result is the same as
    /// the facts the write path keeps (a test checks it).
    pub async fn rebuild_facts(&self) -> Result<FactsLoad, StoreError> {
        let mut uow = self.unit_of_work().await?;
        let seq = uow.fact_seq().await?;
        let mut c = uow.conn();
        let inputs = read_inputs(&mut c, "1 = 1", &[]).await?;
        c.exec("DELETE FROM order_facts", &[]).await?;
        c.exec("DELETE FROM fact_snapshot", &[]).await?;
        let rows: Vec<FactRow> = inputs.iter().map(compute).collect();
        drop(inputs);
        let n = rows.len();
        for chunk in rows.chunks(20_000) {
            upsert(&mut uow, chunk.to_vec()).await?;
        }
        uow.conn()
            .exec(
                "UPDATE analytics_state SET facts_built = 1, snapshot_seq = -1 WHERE id = 1",
                &[],
            )
            .await?;
        uow.commit().await?;
        let (facts, load, _) = self.load_facts(None).await?;
        self.write_snapshot(load.seq, &facts).await?;
        *self.cache.facts.lock().await = Some((load.seq, Arc::new(facts)));
        Ok(FactsLoad {
            snapshot_rows: n,
            delta_rows: 0,
            seq,
        })
    }
}

/// Re-index `f`'s channels onto `channels` (names it lacks are appended, then
/// the table is re-sorted so indices follow name order).
fn remap(mut f: OrderFacts, channels: Vec<String>) -> OrderFacts {
    let mut all = channels;
    for c in &f.channels {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    all.sort();
    let map: Vec<u16> = f
        .channels
        .iter()
        .map(|c| all.iter().position(|x| x == c).expect("added above") as u16)
        .collect();
    let monotonic = map.windows(2).all(|w| w[0] < w[1]);
    for x in &mut f.facts {
        x.channel = map[usize::from(x.channel)];
    }
    f.channels = all;
    if !monotonic {
        f.sort();
    }
    f
}
