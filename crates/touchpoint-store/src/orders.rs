//! Reading orders: one order with its lines, pages of orders, and an order as
//! the record it was written from (to apply a refund through the writer).

use chrono::{TimeZone, Utc};
use serde::Serialize;
use touchpoint_core::ingest::{Customer, OrderLine, OrderRecord};
use touchpoint_core::{
    ChannelName, Currency, Identifier, IdentifierKind, MemberId, Money, OrderStatus,
};

use crate::db::{Conn, Val};
use crate::{Store, StoreError};

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    /// 1-based line number.
    pub line_no: i64,
    /// Product key.
    pub sku: String,
    /// Product name, if known.
    pub product_name: Option<String>,
    /// Units.
    pub quantity: i64,
    /// Price per unit, minor units.
    pub unit_price: i64,
    /// Cost per unit, minor units.
    pub unit_cost: Option<i64>,
    /// Discount on the line, minor units.
    pub discount: i64,
}

/// An order with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderDetail {
    /// Channel.
    pub channel: String,
    /// Order id.
    pub order_id: String,
    /// The member.
    pub member_id: MemberId,
    /// Status.
    pub status: String,
    /// Placed at, UTC milliseconds.
    pub ordered_at: i64,
    /// Paid at, UTC milliseconds.
    pub paid_at: Option<i64>,
    /// Currency.
    pub currency: String,
    /// Amount before refunds, minor units.
    pub gross_amount: i64,
    /// Order-level discount, minor units.
    pub order_discount: i64,
    /// Refunded, minor units.
    pub refunded_amount: i64,
    /// Lines (empty in listings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineView>,
}

/// A page of orders.
#[derive(Debug, Clone, Serialize)]
pub struct OrderPage {
    /// Orders ordered by channel and order id.
    pub orders: Vec<OrderDetail>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const COLS: &str = "channel, order_id, member_id, status, ordered_at, paid_at, currency, gross_amount, order_discount, refunded_amount";

fn decode(r: crate::RowRef<'_>) -> Result<OrderDetail, StoreError> {
    Ok(OrderDetail {
        channel: r.text(0)?,
        order_id: r.text(1)?,
        member_id: MemberId::from_i64(r.i64(2)?),
        status: r.text(3)?,
        ordered_at: r.i64(4)?,
        paid_at: r.opt_i64(5)?,
        currency: r.text(6)?,
        gross_amount: r.i64(7)?,
        order_discount: r.i64(8)?,
        refunded_amount: r.i64(9)?,
        lines: Vec::new(),
    })
}

/// The cursor of an order in a listing: `channel:order_id`.
fn cursor(o: &OrderDetail) -> String {
    format!("{}:{}", o.channel, o.order_id)
}

impl Store {
    /// One order with its lines.
    pub async fn order(
        &self,
        channel: &str,
        order_id: &str,
    ) -> Result<Option<OrderDetail>, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let key = [Val::from(channel), order_id.into()];
        let Some(mut o) = c
            .fetch_opt(
                &format!("SELECT {COLS} FROM orders WHERE channel = $1 AND order_id = $2"),
                &key,
                decode,
            )
            .await?
        else {
            return Ok(None);
        };
        o.lines = c
            .fetch(
                "SELECT l.line_no, l.sku, p.name, l.quantity, l.unit_price, l.unit_cost, l.discount \
                 FROM order_lines l LEFT JOIN products p ON p.sku = l.sku \
                 WHERE l.channel = $1 AND l.order_id = $2 ORDER BY l.line_no",
                &key,
                |r| {
                    Ok(LineView {
                        line_no: r.i64(0)?,
                        sku: r.text(1)?,
                        product_name: r.opt_text(2)?,
                        quantity: r.i64(3)?,
                        unit_price: r.i64(4)?,
                        unit_cost: r.opt_i64(5)?,
                        discount: r.i64(6)?,
                    })
                },
            )
            .await?;
        Ok(Some(o))
    }

    /// A page of orders by channel and order id, optionally of one member (an
    /// active id) and one channel. `after` is the `next_cursor` of the previous page.
    pub async fn list_orders(
        &self,
        member: Option<MemberId>,
        channel: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<OrderPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let (ac, ao) = match after.and_then(|a| a.split_once(':')) {
            Some((c, o)) => (c.to_string(), o.to_string()),
            None => (String::new(), String::new()),
        };
        let mut h = self.acquire().await?;
        let mut rows = h
            .conn()
            .fetch(
                &format!(
                    "SELECT {COLS} FROM orders WHERE (channel > $1 OR (channel = $1 AND order_id > $2)) \
                     AND ($3 = 0 OR member_id = $3) AND ($4 = '' OR channel = $4) \
                     ORDER BY channel, order_id LIMIT $5"
                ),
                &[
                    ac.into(),
                    ao.into(),
                    member.map(|m| m.get()).unwrap_or(0).into(),
                    channel.unwrap_or("").into(),
                    i64::from(limit + 1).into(),
                ],
                decode,
            )
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(cursor) } else { None };
        Ok(OrderPage {
            orders: rows,
            next_cursor,
        })
    }

    /// A stored order as the record it was written from (identifiers, lines,
    /// amounts), to change it and write it again through the writer.
    pub async fn order_record(
        &self,
        channel: &str,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let mut h = self.acquire().await?;
        order_record_on(&mut h.conn(), channel, order_id).await
    }

    /// The stored response of an earlier request with this idempotency key:
    /// (hash of the request, status, response body).
    pub async fn idempotent_response(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<(String, u16, String)>, StoreError> {
        let mut h = self.acquire().await?;
        h.conn()
            .fetch_opt(
                "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[scope.into(), key.into()],
                |r| Ok((r.text(0)?, u16::try_from(r.i64(1)?).unwrap_or(200), r.text(2)?)),
            )
            .await
    }

    /// Remember the response of a request with an idempotency key (the first one wins).
    pub async fn save_idempotent_response(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        status: u16,
        response: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.conn()
            .exec(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
                &[
                    scope.into(),
                    key.into(),
                    request_hash.into(),
                    i64::from(status).into(),
                    response.into(),
                    crate::now_ms().into(),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`Store::order_record`] on a connection (inside a unit of work, it sees
/// what the unit of work wrote).
pub(crate) async fn order_record_on(
    c: &mut Conn<'_>,
    channel: &str,
    order_id: &str,
) -> Result<Option<OrderRecord>, StoreError> {
    let key = [Val::from(channel), order_id.into()];
    let Some((status, ordered_at, paid_at, currency, discount, refunded, nodes, campaign)) = c
        .fetch_opt(
            "SELECT status, ordered_at, paid_at, currency, order_discount, refunded_amount, identifier_ids, campaign \
             FROM orders WHERE channel = $1 AND order_id = $2",
            &key,
            |r| {
                Ok((
                    r.text(0)?,
                    r.i64(1)?,
                    r.opt_i64(2)?,
                    r.text(3)?,
                    r.i64(4)?,
                    r.i64(5)?,
                    r.text(6)?,
                    r.opt_text(7)?,
                ))
            },
        )
        .await?
    else {
        return Ok(None);
    };
    let corrupt = |what: &str, e: touchpoint_core::ParseError| {
        StoreError::Corrupt(format!("order {channel} {order_id}: {what}: {e}"))
    };
    let ids = crate::writes::parse_node_list(&nodes);
    let mut identifiers = Vec::new();
    if !ids.is_empty() {
        let sql = format!(
            "SELECT kind, value FROM identifiers WHERE id IN ({}) ORDER BY id",
            c.param_list(1, ids.len())
        );
        let vals: Vec<Val> = ids.iter().map(|i| Val::I(*i)).collect();
        for (k, v) in c
            .fetch(&sql, &vals, |r| Ok((r.text(0)?, r.text(1)?)))
            .await?
        {
            let kind = IdentifierKind::parse(&k).map_err(|e| corrupt("identifier kind", e))?;
            identifiers.push(Identifier::from_stored(kind, v));
        }
    }
    let lines = c
        .fetch(
            "SELECT l.sku, p.name, p.brand, p.category, l.quantity, l.unit_price, l.unit_cost, l.discount \
             FROM order_lines l LEFT JOIN products p ON p.sku = l.sku \
             WHERE l.channel = $1 AND l.order_id = $2 ORDER BY l.line_no",
            &key,
            |r| {
                Ok(OrderLine {
                    sku: r.text(0)?,
                    product_name: r.opt_text(1)?,
                    brand: r.opt_text(2)?,
                    category: r.opt_text(3)?,
                    quantity: r.i64(4)?,
                    unit_price: Money::from_minor(r.i64(5)?),
                    unit_cost: r.opt_i64(6)?.map(Money::from_minor),
                    discount: Money::from_minor(r.i64(7)?),
                })
            },
        )
        .await?;
    let time = |ms: i64| Utc.timestamp_millis_opt(ms).single();
    Ok(Some(OrderRecord {
        channel: ChannelName::parse(channel).map_err(|e| corrupt("channel", e))?,
        order_id: order_id.to_string(),
        ordered_at: time(ordered_at).ok_or_else(|| {
            StoreError::Corrupt(format!("order {channel} {order_id}: time {ordered_at}"))
        })?,
        paid_at: paid_at.and_then(time),
        status: OrderStatus::parse(&status).map_err(|e| corrupt("status", e))?,
        currency: Currency::parse(&currency).map_err(|e| corrupt("currency", e))?,
        order_discount: Money::from_minor(discount),
        refunded: Money::from_minor(refunded),
        customer: Customer {
            identifiers,
            ..Customer::default()
        },
        lines,
        campaign,
        source_line: 0,
        coupon_codes: Vec::new(),
        referral_code: None,
    }))
}

impl crate::UnitOfWork {
    /// [`Store::order_record`] inside this unit of work.
    pub async fn order_record(
        &mut self,
        channel: &str,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        order_record_on(&mut self.conn(), channel, order_id).await
    }
}
