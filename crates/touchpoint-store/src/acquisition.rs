//! Acquisition cost per valid customer (docs/acquisition.md): marketing
//! spend per day, channel and campaign (`ad_spend`), first-touch attribution
//! of members, and the acquisition report.
//!
//! **Spend** comes from one door, [`Store::import_spend`] (the CLI's
//! `touchpoint import spend` and `POST /api/spend`): the core's spend reader
//! parses the file (bad rows are rejected with their line, column and the
//! accepted form; good rows beside them load), and the rows are written in
//! units of work of [`SPEND_CHUNK`] rows, keyed by (date, channel, campaign),
//! each new or changed row emitting [`DomainEvent::SpendRecorded`].
//!
//! **First touch** is computed at read time from what is stored (nothing is
//! kept by the write path, so merges, late tracking events and re-imports
//! are reflected at once): for each member, the earliest of
//! - its first tracking event that carries a campaign (`events.campaign`,
//!   attributed through the member's member numbers and anonymous ids; the
//!   channel is the campaign's source, else the event's source), and
//! - its first order (channel of the order; campaign of the order's
//!   `campaign` column, else none),
//!
//! an event winning a tie. A member with neither is attributed to the
//! channel its first identifier was seen on, at that time.
//!
//! **The report** ([`Store::acquisition_report`], also reached through
//! [`Store::report`] with the kind `acquisition`) loads those touches, each
//! member's first paying order and the stored CLV predictions, and
//! aggregates per channel, campaign and month in [`compute`].

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate};
use serde::Serialize;
use touchpoint_core::domain::DomainEvent;
use touchpoint_core::ingest::spend::{self, SpendRow};
use touchpoint_core::ingest::{Encoding, FileError, RowError};

use crate::db::Val;
use crate::{Store, StoreError, UnitOfWork};

/// Rows written per unit of work by [`Store::import_spend`].
pub const SPEND_CHUNK: usize = 1_000;

/// Errors of a spend import.
#[derive(Debug, thiserror::Error)]
pub enum SpendImportError {
    /// The file is not a spend file (missing columns, empty, undecodable header).
    #[error("{0}")]
    File(#[from] FileError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a spend import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpendImport {
    /// Rows read (good and bad; blank rows are skipped).
    pub rows: u64,
    /// New (date, channel, campaign) rows.
    pub inserted: u64,
    /// Rows whose figures changed.
    pub updated: u64,
    /// Rows already stored with the same figures.
    pub unchanged: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// One entry per problem, with line, column, value and the accepted form.
    pub errors: Vec<RowError>,
    /// First and last day of the good rows.
    pub first_date: Option<NaiveDate>,
    /// Last day of the good rows.
    pub last_date: Option<NaiveDate>,
}

impl Store {
    /// Import a spend CSV (the whole file in memory; spend files have a row
    /// per day, channel and campaign). See the module documentation.
    pub async fn import_spend(
        &self,
        bytes: Vec<u8>,
        encoding: Option<Encoding>,
    ) -> Result<SpendImport, SpendImportError> {
        let (mut out, good) = parse_spend(bytes, encoding)?;
        for chunk in good.chunks(SPEND_CHUNK) {
            let mut uow = self.unit_of_work().await?;
            let (i, u, n) = write_spend_in(&mut uow, chunk).await?;
            uow.commit().await?;
            out.inserted += i;
            out.updated += u;
            out.unchanged += n;
        }
        Ok(out)
    }
}

/// Read a spend file: the counts and errors so far, and the good rows.
fn parse_spend(
    bytes: Vec<u8>,
    encoding: Option<Encoding>,
) -> Result<(SpendImport, Vec<SpendRow>), FileError> {
    let reader = spend::open(Box::new(std::io::Cursor::new(bytes)), encoding)?;
    let mut out = SpendImport::default();
    let mut good = Vec::new();
    for r in reader {
        out.rows += 1;
        match r {
            Ok(row) => {
                out.first_date = Some(out.first_date.map_or(row.date, |d| d.min(row.date)));
                out.last_date = Some(out.last_date.map_or(row.date, |d| d.max(row.date)));
                good.push(row);
            }
            Err(rej) => {
                out.rejected += 1;
                out.errors.extend(rej.errors);
            }
        }
    }
    Ok((out, good))
}

/// Write spend rows into a unit of work: (inserted, updated, unchanged).
pub async fn write_spend_in(
    uow: &mut UnitOfWork,
    rows: &[SpendRow],
) -> Result<(u64, u64, u64), StoreError> {
    let now = uow.now();
    let (mut inserted, mut updated, mut unchanged) = (0, 0, 0);
    for r in rows {
        let date = r.date.format("%Y-%m-%d").to_string();
        let key = [
            Val::from(date.as_str()),
            r.channel.as_str().into(),
            r.campaign.as_str().into(),
        ];
        let before = uow
            .conn()
            .fetch_opt(
                "SELECT pricing_model, spend, impressions, clicks, conversions FROM ad_spend \
                 WHERE spend_date = $1 AND channel = $2 AND campaign = $3",
                &key,
                |x| Ok((x.text(0)?, x.i64(1)?, x.i64(2)?, x.i64(3)?, x.i64(4)?)),
            )
            .await?;
        let now_vals = (
            r.pricing_model.as_str().to_string(),
            r.spend.minor(),
            r.impressions,
            r.clicks,
            r.conversions,
        );
        if before.as_ref() == Some(&now_vals) {
            unchanged += 1;
            continue;
        }
        let mut vals = key.to_vec();
        vals.extend([
            Val::from(r.pricing_model.as_str()),
            r.spend.minor().into(),
            r.impressions.into(),
            r.clicks.into(),
            r.conversions.into(),
            now.into(),
            now.into(),
        ]);
        uow.conn()
            .exec(
                "INSERT INTO ad_spend (spend_date, channel, campaign, pricing_model, spend, impressions, clicks, conversions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (spend_date, channel, campaign) DO UPDATE SET pricing_model = excluded.pricing_model, \
                 spend = excluded.spend, impressions = excluded.impressions, clicks = excluded.clicks, \
                 conversions = excluded.conversions, updated_at = excluded.updated_at",
                &vals,
            )
            .await?;
        if before.is_some() {
            updated += 1;
        } else {
            inserted += 1;
        }
        uow.emit(DomainEvent::SpendRecorded {
            date,
            channel: r.channel.as_str().to_string(),
            campaign: r.campaign.clone(),
            spend: r.spend.minor(),
            previous_spend: before.map(|b| b.1),
        });
    }
    Ok((inserted, updated, unchanged))
}

// ---- the report ----

/// What the acquisition report covers (local days of the business time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcquisitionFilter {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Only this channel.
    pub channel: Option<String>,
}

/// How a member was first touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// When, UTC milliseconds.
    pub at: i64,
    /// The channel.
    pub channel: String,
    /// The campaign, empty for none.
    pub campaign: String,
}

/// One member, as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAcquisition {
    /// The member.
    pub member_id: i64,
    /// Has a phone, e-mail or member number that is not shared.
    pub valid: bool,
    /// The first touch.
    pub touch: Touch,
    /// Time of the first paying order (paid or partially refunded, with a
    /// net amount above zero), UTC milliseconds.
    pub first_paying_at: Option<i64>,
}

/// One spend row, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSpend {
    /// The day.
    pub date: NaiveDate,
    /// The channel.
    pub channel: String,
    /// The campaign (empty: the channel as a whole).
    pub campaign: String,
    /// Minor units.
    pub spend: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Conversions.
    pub conversions: i64,
}

/// The stored CLV model the report uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvSource {
    /// The purchase model (`bgnbd`, `mbgnbd`, `paretonbd`).
    pub model: String,
    /// The prediction horizon in days (365 for a 12-month CLV).
    pub horizon_days: f64,
    /// When the predictions were computed, UTC milliseconds.
    pub computed_at: i64,
}

/// The inputs of the report.
#[derive(Debug, Clone, Default)]
pub struct AcquisitionData {
    /// Every current member.
    pub members: Vec<MemberAcquisition>,
    /// The spend rows.
    pub spend: Vec<StoredSpend>,
    /// The model of the stored CLV predictions, if any.
    pub clv_model: Option<ClvSource>,
    /// Stored CLV per member, minor units.
    pub clv: std::sync::Arc<HashMap<i64, i64>>,
}

/// What the report reads of the identity graph: each current member's first
/// identifier (the fallback touch) and the members with a valid identifier.
/// Kept in memory by identity version (every identity change sets a new one).
#[derive(Debug, Default)]
pub(crate) struct IdentityPart {
    first_id: HashMap<i64, Touch>,
    valid: HashSet<i64>,
}

/// The figures of one cell (or of a roll-up).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AcquisitionFigures {
    /// Spend, minor units.
    pub spend: i64,
    /// Impressions.
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Conversions as the ad platforms count them.
    pub conversions: i64,
    /// Members with a phone, e-mail or member number whose first touch is here.
    pub new_valid_members: i64,
    /// Members first touched here whose first paying order falls in the period.
    pub new_paying_customers: i64,
    /// spend / new_valid_members, minor units rounded half up; null without members.
    pub cost_per_valid_member: Option<i64>,
    /// spend / new_paying_customers, minor units; null without customers.
    pub cost_per_paying_customer: Option<i64>,
    /// Paying customers with a stored CLV prediction.
    pub clv_customers: i64,
    /// Mean stored CLV of those, minor units; null without a model or predictions.
    pub clv_per_paying_customer: Option<i64>,
    /// clv_per_paying_customer / cost_per_paying_customer (unrounded); null
    /// when either is missing or the spend is zero.
    pub clv_over_cost: Option<f64>,
}

/// One row: a channel, a campaign (null in the per-channel roll-up) and a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcquisitionRow {
    /// The channel.
    pub channel: String,
    /// The campaign; `""` for none; absent in `channels` rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `YYYY-MM`.
    pub month: String,
    /// The figures.
    #[serde(flatten)]
    pub figures: AcquisitionFigures,
}

/// The acquisition report (the JSON of `touchpoint report acquisition -o json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcquisitionReport {
    /// First day covered, if limited.
    pub from: Option<NaiveDate>,
    /// Last day covered, if limited.
    pub to: Option<NaiveDate>,
    /// The channel, if limited.
    pub channel: Option<String>,
    /// The CLV model used; null when none is stored.
    pub clv_model: Option<ClvSource>,
    /// `"no model"` when no CLV predictions are stored, else the model and horizon.
    pub clv_note: String,
    /// Per channel, campaign and month.
    pub rows: Vec<AcquisitionRow>,
    /// Per channel and month, campaigns together.
    pub channels: Vec<AcquisitionRow>,
    /// Everything in scope.
    pub total: AcquisitionFigures,
}

fn local_date(ms: i64, tz: &chrono_tz::Tz) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(tz)
        .date_naive()
}

fn month(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn div_round(a: i64, b: i64) -> Option<i64> {
    (b > 0).then(|| (2 * a + b) / (2 * b))
}

#[derive(Default)]
struct Acc {
    f: AcquisitionFigures,
    clv_sum: i64,
}

impl Acc {
    fn finish(mut self) -> AcquisitionFigures {
        let f = &mut self.f;
        f.cost_per_valid_member = div_round(f.spend, f.new_valid_members);
        f.cost_per_paying_customer = div_round(f.spend, f.new_paying_customers);
        f.clv_per_paying_customer = div_round(self.clv_sum, f.clv_customers);
        f.clv_over_cost = match (f.clv_customers > 0, f.spend > 0, f.new_paying_customers > 0) {
            (true, true, true) => Some(
                (self.clv_sum as f64 / f.clv_customers as f64)
                    / (f.spend as f64 / f.new_paying_customers as f64),
            ),
            _ => None,
        };
        self.f
    }

    fn add(&mut self, o: &Acc) {
        let (a, b) = (&mut self.f, &o.f);
        a.spend += b.spend;
        a.impressions += b.impressions;
        a.clicks += b.clicks;
        a.conversions += b.conversions;
        a.new_valid_members += b.new_valid_members;
        a.new_paying_customers += b.new_paying_customers;
        a.clv_customers += b.clv_customers;
        self.clv_sum += o.clv_sum;
    }
}

/// Aggregate the report from its inputs (pure). Days and months are local
/// days of `tz`; see docs/acquisition.md for each figure.
pub fn compute(
    data: &AcquisitionData,
    filter: &AcquisitionFilter,
    tz: &chrono_tz::Tz,
) -> AcquisitionReport {
    let in_scope = |d: NaiveDate, channel: &str| {
        filter.from.is_none_or(|f| d >= f)
            && filter.to.is_none_or(|t| d <= t)
            && filter.channel.as_deref().is_none_or(|c| c == channel)
    };
    let mut cells: BTreeMap<(String, String, String), Acc> = BTreeMap::new();
    for s in &data.spend {
        if !in_scope(s.date, &s.channel) {
            continue;
        }
        let c = cells
            .entry((s.channel.clone(), s.campaign.clone(), month(s.date)))
            .or_default();
        c.f.spend += s.spend;
        c.f.impressions += s.impressions;
        c.f.clicks += s.clicks;
        c.f.conversions += s.conversions;
    }
    for m in &data.members {
        let t = &m.touch;
        let touched = local_date(t.at, tz);
        if m.valid && in_scope(touched, &t.channel) {
            cells
                .entry((t.channel.clone(), t.campaign.clone(), month(touched)))
                .or_default()
                .f
                .new_valid_members += 1;
        }
        if let Some(p) = m.first_paying_at {
            let paid = local_date(p, tz);
            if in_scope(paid, &t.channel) {
                let c = cells
                    .entry((t.channel.clone(), t.campaign.clone(), month(paid)))
                    .or_default();
                c.f.new_paying_customers += 1;
                if let Some(v) = data.clv.get(&m.member_id) {
                    c.f.clv_customers += 1;
                    c.clv_sum += v;
                }
            }
        }
    }
    let mut by_channel: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let mut rows = Vec::with_capacity(cells.len());
    for ((channel, campaign, month), acc) in cells {
        by_channel
            .entry((channel.clone(), month.clone()))
            .or_default()
            .add(&acc);
        total.add(&acc);
        rows.push(AcquisitionRow {
            channel,
            campaign: Some(campaign),
            month,
            figures: acc.finish(),
        });
    }
    let channels = by_channel
        .into_iter()
        .map(|((channel, month), acc)| AcquisitionRow {
            channel,
            campaign: None,
            month,
            figures: acc.finish(),
        })
        .collect();
    let clv_note = match &data.clv_model {
        None => "no model".to_string(),
        Some(m) => format!(
            "stored {} predictions over {} days",
            m.model, m.horizon_days
        ),
    };
    AcquisitionReport {
        from: filter.from,
        to: filter.to,
        channel: filter.channel.clone(),
        clv_model: data.clv_model.clone(),
        clv_note,
        rows,
        channels,
        total: total.finish(),
    }
}

impl Store {
    /// Load the inputs of the acquisition report (see the module documentation).
    pub async fn acquisition_data(&self) -> Result<AcquisitionData, StoreError> {
        // First orders and first paying orders, from the analytics model in
        // memory: its facts are sorted by member, time and channel name, so
        // a member's first fact is the first order (ties at the same
        // millisecond and channel: the order written first).
        let (facts, _) = self.order_facts().await?;
        let mut first_order: HashMap<i64, (i64, String, String)> = HashMap::new();
        let mut paying: HashMap<i64, i64> = HashMap::new();
        for x in &facts.facts {
            first_order.entry(x.member_id).or_insert_with(|| {
                (
                    x.ordered_at,
                    facts.channels[usize::from(x.channel)].clone(),
                    x.campaign
                        .map(|c| facts.campaigns[c as usize].clone())
                        .unwrap_or_default(),
                )
            });
            if x.purchase && x.net > 0 {
                paying.entry(x.member_id).or_insert(x.ordered_at);
            }
        }
        drop(facts);
        let identities = self.acquisition_identities().await?;
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        // First tracking events with a campaign (ties: by event id).
        let mut first_event: HashMap<i64, (i64, i64, Touch)> = HashMap::new();
        for (m, at, id, campaign, channel) in c
            .fetch(
                "SELECT i.member_id, e.occurred_at, e.id, e.campaign, COALESCE(e.campaign_source, e.source) \
                 FROM events e JOIN identifiers i ON i.kind = 'member_no' AND i.value = e.user_id \
                 WHERE e.campaign IS NOT NULL \
                 UNION ALL \
                 SELECT i.member_id, e.occurred_at, e.id, e.campaign, COALESCE(e.campaign_source, e.source) \
                 FROM events e JOIN identifiers i ON i.kind = 'anonymous_id' AND i.value = e.anon_key \
                 WHERE e.campaign IS NOT NULL",
                &[],
                |r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.text(3)?, r.text(4)?)),
            )
            .await?
        {
            let t = Touch {
                at,
                channel,
                campaign,
            };
            match first_event.get(&m) {
                Some(old) if (old.0, old.1) <= (at, id) => {}
                _ => {
                    first_event.insert(m, (at, id, t));
                }
            }
        }
        let mut members: Vec<MemberAcquisition> = identities
            .first_id
            .iter()
            .map(|(&m, fallback)| {
                let mut touch = first_order.remove(&m).map(|(at, channel, campaign)| Touch {
                    at,
                    channel,
                    campaign,
                });
                if let Some((_, _, t)) = first_event.remove(&m) {
                    // An event wins a tie with an order.
                    touch = match touch {
                        Some(o) if o.at < t.at => Some(o),
                        _ => Some(t),
                    };
                }
                let touch = touch.unwrap_or_else(|| fallback.clone());
                MemberAcquisition {
                    member_id: m,
                    valid: identities.valid.contains(&m),
                    touch,
                    first_paying_at: paying.get(&m).copied(),
                }
            })
            .collect();
        members.sort_by_key(|m| m.member_id);
        let spend = c
            .fetch(
                "SELECT spend_date, channel, campaign, spend, impressions, clicks, conversions FROM ad_spend",
                &[],
                |r| {
                    let d = r.text(0)?;
                    Ok(StoredSpend {
                        date: NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
                            StoreError::Corrupt(format!("ad_spend: spend_date {d:?}"))
                        })?,
                        channel: r.text(1)?,
                        campaign: r.text(2)?,
                        spend: r.i64(3)?,
                        impressions: r.i64(4)?,
                        clicks: r.i64(5)?,
                        conversions: r.i64(6)?,
                    })
                },
            )
            .await?;
        // The CLV model: the one whose predictions (with a spend model) were computed last.
        let clv_model = c
            .fetch(
                "SELECT model, CAST(MAX(computed_at) AS BIGINT), MAX(horizon) FROM member_predictions \
                 WHERE clv IS NOT NULL GROUP BY model",
                &[],
                |r| {
                    Ok(ClvSource {
                        model: r.text(0)?,
                        computed_at: r.i64(1)?,
                        horizon_days: r.f64(2)?,
                    })
                },
            )
            .await?
            .into_iter()
            .max_by(|a, b| {
                (a.computed_at, &b.model).cmp(&(b.computed_at, &a.model))
            });
        // The predictions of that model, from memory while it is the same
        // prediction run.
        let key = format!("{clv_model:?}");
        let clv = match self.cache.acquisition_clv.get(&key) {
            Some(v) => v,
            None => {
                let mut clv = HashMap::new();
                if let Some(m) = &clv_model {
                    for (id, v) in c
                        .fetch(
                            "SELECT member_id, clv FROM member_predictions WHERE model = $1 AND clv IS NOT NULL",
                            &[Val::from(m.model.as_str())],
                            |r| Ok((r.i64(0)?, r.f64(1)?)),
                        )
                        .await?
                    {
                        clv.insert(id, (v * 100.0).round() as i64);
                    }
                }
                let clv = std::sync::Arc::new(clv);
                self.cache.acquisition_clv.put(key, clv.clone());
                clv
            }
        };
        Ok(AcquisitionData {
            members,
            spend,
            clv_model,
            clv,
        })
    }

    /// [`IdentityPart`], from memory while the identity version is unchanged.
    async fn acquisition_identities(&self) -> Result<std::sync::Arc<IdentityPart>, StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        // The version first: data read after it is at least as new, so an
        // entry is never older than its key.
        let version = c
            .fetch_opt(
                "SELECT version FROM identity_state WHERE id = 1",
                &[],
                |r| r.i64(0),
            )
            .await?
            .unwrap_or(0)
            .to_string();
        if let Some(p) = self.cache.acquisition_identities.get(&version) {
            return Ok(p);
        }
        // Every member, its first identifier (the fallback touch) and whether it is valid.
        let mut first_id: HashMap<i64, Touch> = HashMap::new();
        let mut valid: HashSet<i64> = HashSet::new();
        for (m, kind, shared, channel, at) in c
            .fetch(
                "SELECT i.member_id, i.kind, i.shared, i.first_channel, i.created_at FROM identifiers i \
                 JOIN members m ON m.id = i.member_id WHERE m.merged_into IS NULL",
                &[],
                |r| Ok((r.i64(0)?, r.text(1)?, r.i64(2)?, r.text(3)?, r.i64(4)?)),
            )
            .await?
        {
            if shared == 0 && matches!(kind.as_str(), "phone" | "email" | "member_no") {
                valid.insert(m);
            }
            let t = Touch {
                at,
                channel,
                campaign: String::new(),
            };
            let e = first_id.entry(m).or_insert_with(|| t.clone());
            if (t.at, &t.channel) < (e.at, &e.channel) {
                *e = t;
            }
        }
        let part = std::sync::Arc::new(IdentityPart { first_id, valid });
        self.cache.acquisition_identities.put(version, part.clone());
        Ok(part)
    }

    /// The acquisition report.
    pub async fn acquisition_report(
        &self,
        filter: &AcquisitionFilter,
        tz: &chrono_tz::Tz,
    ) -> Result<AcquisitionReport, StoreError> {
        let key = format!("{}|{filter:?}|{tz}", self.acquisition_version().await?);
        if let Some(r) = self.cache.acquisition.get(&key) {
            return Ok((*r).clone());
        }
        let data = self.acquisition_data().await?;
        let r = compute(&data, filter, tz);
        self.cache
            .acquisition
            .put(key, std::sync::Arc::new(r.clone()));
        Ok(r)
    }

    /// A version of everything the acquisition report reads: the data
    /// version (orders and CLV predictions), the outbox (members, identifiers and tracked events
    /// are all written with an outbox event), the spend rows and the CLV
    /// predictions (stored with their model's fit).
    async fn acquisition_version(&self) -> Result<String, StoreError> {
        let mut h = self.acquire().await?;
        let v = h
            .conn()
            .fetch_opt(
                "SELECT (SELECT data_version FROM analytics_state WHERE id = 1), \
                 (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM outbox), \
                 (SELECT CAST(COUNT(*) AS BIGINT) FROM ad_spend), \
                 (SELECT CAST(COALESCE(MAX(updated_at), 0) AS BIGINT) FROM ad_spend), \
                 (SELECT CAST(COALESCE(MAX(fitted_at), 0) AS BIGINT) FROM clv_models), \
                 (SELECT CAST(COUNT(*) AS BIGINT) FROM clv_models)",
                &[],
                |r| {
                    Ok(format!(
                        "{}.{}.{}.{}.{}.{}",
                        r.i64(0)?,
                        r.i64(1)?,
                        r.i64(2)?,
                        r.i64(3)?,
                        r.i64(4)?,
                        r.i64(5)?
                    ))
                },
            )
            .await?;
        Ok(v.unwrap_or_default())
    }
}
