//! Segments: an expression of the segment language (parsed in the core,
//! `touchpoint_core::segments`) evaluated over the analytics model, and saved
//! segments with a daily size history.
//!
//! Evaluation loads the member-level columns the expression reads once (the
//! member data set of the analytics model for behaviour and value, RFM and
//! ABC computed from it, the stored CLV predictions, the points accounts, the
//! profile attributes), computes each atom's member set with one query
//! (tags, consent, purchases of a product, channels), then decides every
//! member in Rust. Nothing is cached: a segment is as fresh as the data.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;
use touchpoint_core::analytics::{
    abc_members, date_to_day, day_to_date, facts::FactFilter, rfm_members, utc_offset_ms, AbcConfig,
};
use touchpoint_core::segments::{parse, Atom, Expr, Field, MemberFacts};
use touchpoint_core::MemberId;

use crate::db::{Conn, Val};
use crate::profiles::{apply_in, ProfileChange, ProfileSource};
use crate::{now_ms, Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct SegmentContext {
    /// The business time zone (local days).
    pub time_zone: chrono_tz::Tz,
    /// The day the expression is evaluated on; `None` = today in the time zone.
    pub as_of: Option<NaiveDate>,
    /// Load every field (for exports), not only those the expression reads.
    pub all_fields: bool,
}

impl SegmentContext {
    /// Today, in `time_zone`.
    pub fn new(time_zone: chrono_tz::Tz) -> Self {
        SegmentContext {
            time_zone,
            as_of: None,
            all_fields: false,
        }
    }

    fn offset(&self) -> i64 {
        utc_offset_ms(&self.time_zone, now_ms())
    }

    /// The as-of day.
    pub fn as_of_date(&self) -> NaiveDate {
        self.as_of
            .unwrap_or_else(|| day_to_date((now_ms() + self.offset()).div_euclid(DAY_MS) as i32))
    }
}

/// The members of a segment, with the columns read.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The as-of day.
    pub as_of: NaiveDate,
    /// Active members considered.
    pub considered: u64,
    /// The members in the segment, by id, with the fields loaded.
    pub members: Vec<MemberFacts>,
    /// Milliseconds spent.
    pub elapsed_ms: u64,
}

/// A preview of an expression: its size, a sample and the time taken
/// (`touchpoint segments preview -o json`, `POST /api/segments/preview`).
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The expression as written.
    pub expression: String,
    /// The as-of day.
    pub as_of: NaiveDate,
    /// Members in the segment.
    pub size: u64,
    /// Active members considered.
    pub considered: u64,
    /// Milliseconds spent evaluating.
    pub elapsed_ms: u64,
    /// The first `sample` members by id, with the fields the expression reads.
    pub sample: Vec<ShownMember>,
}

/// A member with the fields loaded, shown with its id as `M-123` (as every
/// other member id of the CLI's JSON and the API).
#[derive(Debug, Clone, PartialEq)]
pub struct ShownMember(pub MemberFacts);

impl Serialize for ShownMember {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        v["member_id"] =
            serde_json::Value::String(MemberId::from_i64(self.0.member_id).to_string());
        v.serialize(s)
    }
}

impl Preview {
    /// The preview of an evaluation of `expression`, keeping `sample` members.
    pub fn of(expression: &str, ev: Evaluation, sample: usize) -> Preview {
        Preview {
            expression: expression.to_string(),
            as_of: ev.as_of,
            size: ev.members.len() as u64,
            considered: ev.considered,
            elapsed_ms: ev.elapsed_ms,
            sample: ev
                .members
                .into_iter()
                .take(sample)
                .map(ShownMember)
                .collect(),
        }
    }
}

/// A saved segment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SavedSegment {
    /// Name.
    pub name: String,
    /// The expression as written.
    pub expression: String,
    /// What it is for, in words.
    pub description: Option<String>,
    /// A rule tag: `segments refresh` tags its members with the name.
    pub is_tag: bool,
    /// Created, UTC ms.
    pub created_at: i64,
    /// Last changed, UTC ms.
    pub updated_at: i64,
    /// Daily sizes, oldest first: (local day `YYYY-MM-DD`, members).
    pub sizes: Vec<(String, i64)>,
}

/// A segment to save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSegment {
    /// Name: 1 to 64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The expression.
    pub expression: String,
    /// What it is for, in words (at most 500 characters).
    pub description: Option<String>,
    /// A rule tag: `segments refresh` tags its members with the name.
    pub is_tag: bool,
    /// Replace a segment of the same name with another definition.
    pub replace: bool,
}

/// What a refresh did for one saved segment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Refreshed {
    /// Segment name.
    pub name: String,
    /// Members today.
    pub members: u64,
    /// Rule tag: members tagged.
    pub tagged: u64,
    /// Rule tag: members untagged.
    pub untagged: u64,
}

/// A segment name: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "segment name {name:?}: expected 1 to 64 letters, digits, - _ or ."
        )))
    }
}

fn needs(fields: &[Field], any: &[Field]) -> bool {
    any.iter().any(|f| fields.contains(f))
}

async fn id_set(c: &mut Conn<'_>, sql: &str, vals: &[Val]) -> Result<HashSet<i64>, StoreError> {
    let mut out = HashSet::new();
    c.fetch_each(sql, vals, |r| {
        out.insert(r.i64(0)?);
        Ok::<(), StoreError>(())
    })
    .await?;
    Ok(out)
}

const PURCHASE: &str = "o.status IN ('paid', 'partially_refunded')";

async fn atom_members(
    c: &mut Conn<'_>,
    atom: &Atom,
    as_of_end: i64,
    as_of_day: i32,
    offset: i64,
) -> Result<HashSet<i64>, StoreError> {
    match atom {
        Atom::HasTag { tag } => {
            id_set(
                c,
                "SELECT COALESCE(m.merged_into, t.member_id) FROM member_tags t \
                 JOIN members m ON m.id = t.member_id WHERE t.tag = $1",
                &[tag.as_str().into()],
            )
            .await
        }
        Atom::Consent { channel, topic } => {
            id_set(
                c,
                "SELECT COALESCE(m.merged_into, k.member_id) FROM consent k \
                 JOIN members m ON m.id = k.member_id \
                 WHERE k.channel = $1 AND k.topic = $2 AND k.granted = 1",
                &[channel.as_str().into(), topic.as_str().into()],
            )
            .await
        }
        Atom::Channel { channel } => {
            id_set(
                c,
                &format!(
                    "SELECT DISTINCT o.member_id FROM orders o WHERE o.channel = $1 AND {PURCHASE} AND o.ordered_at < $2"
                ),
                &[channel.as_str().into(), as_of_end.into()],
            )
            .await
        }
        Atom::Bought(f) => {
            let mut vals: Vec<Val> = vec![as_of_end.into()];
            let mut w = format!("{PURCHASE} AND o.ordered_at < $1");
            if let Some(d) = f.within_days {
                vals.push(((i64::from(as_of_day) - d) * DAY_MS - offset).into());
                w.push_str(&format!(" AND o.ordered_at >= ${}", vals.len()));
            }
            for (col, v) in [
                ("p.category", &f.category),
                ("p.brand", &f.brand),
                ("l.sku", &f.sku),
            ] {
                if let Some(v) = v {
                    vals.push(v.as_str().into());
                    w.push_str(&format!(" AND {col} = ${}", vals.len()));
                }
            }
            id_set(
                c,
                &format!(
                    "SELECT DISTINCT o.member_id FROM orders o \
                     JOIN order_lines l ON l.channel = o.channel AND l.order_id = o.order_id \
                     LEFT JOIN products p ON p.sku = l.sku WHERE {w}"
                ),
                &vals,
            )
            .await
        }
    }
}

impl Store {
    /// The ids of the members in the segment `expr`, sorted: what campaigns
    /// call to find their audience.
    pub async fn segment_members(
        &self,
        expr: &Expr,
        cx: &SegmentContext,
    ) -> Result<Vec<MemberId>, StoreError> {
        Ok(self
            .evaluate_segment(expr, cx)
            .await?
            .members
            .iter()
            .map(|m| MemberId::from_i64(m.member_id))
            .collect())
    }

    /// Evaluate `expr` over every active member.
    pub async fn evaluate_segment(
        &self,
        expr: &Expr,
        cx: &SegmentContext,
    ) -> Result<Evaluation, StoreError> {
        let started = Instant::now();
        let fields = if cx.all_fields {
            Field::ALL.to_vec()
        } else {
            expr.fields()
        };
        let as_of = cx.as_of_date();
        let as_of_day = date_to_day(as_of);
        let offset = cx.offset();
        let as_of_end = (i64::from(as_of_day) + 1) * DAY_MS - offset;

        // Behaviour and value: the analytics model's member data set.
        let mut rows: HashMap<i64, MemberFacts> = HashMap::new();
        let mut h = self.acquire().await?;
        let profile_fields = [
            Field::Gender,
            Field::Region,
            Field::City,
            Field::Language,
            Field::Age,
            Field::BirthdayMonth,
        ];
        let with_profile = needs(&fields, &profile_fields);
        {
            let mut c = h.conn();
            let sql = if with_profile {
                "SELECT id, gender, birthday, region, city, language FROM members WHERE merged_into IS NULL"
            } else {
                "SELECT id FROM members WHERE merged_into IS NULL"
            };
            c.fetch_each(sql, &[], |r| {
                let id = r.i64(0)?;
                let mut m = MemberFacts {
                    member_id: id,
                    ..MemberFacts::default()
                };
                if with_profile {
                    m.gender = r.opt_text(1)?;
                    m.birthday = r
                        .opt_text(2)?
                        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
                    m.region = r.opt_text(3)?;
                    m.city = r.opt_text(4)?;
                    m.language = r.opt_text(5)?;
                }
                rows.insert(id, m);
                Ok::<(), StoreError>(())
            })
            .await?;
        }
        drop(h);

        let behaviour = [
            Field::RfmSegment,
            Field::R,
            Field::F,
            Field::M,
            Field::LastOrderDays,
            Field::FirstOrderDays,
            Field::Orders,
            Field::NetSpend,
            Field::Aov,
            Field::AbcClass,
        ];
        if needs(&fields, &behaviour) {
            let (facts, _) = self.order_facts().await?;
            let data = facts.dataset(&FactFilter {
                as_of_day: Some(as_of_day),
                utc_offset_ms: offset,
                ..FactFilter::default()
            });
            drop(facts);
            for s in &data.members {
                if let Some(m) = rows.get_mut(&s.member_id) {
                    m.orders = i64::from(s.orders);
                    m.net_spend = s.net_revenue;
                    m.last_order_days = Some(i64::from(as_of_day - s.last_day));
                    m.first_order_days = Some(i64::from(as_of_day - s.first_day));
                }
            }
            if needs(&fields, &[Field::RfmSegment, Field::R, Field::F, Field::M]) {
                for x in rfm_members(&data) {
                    if let Some(m) = rows.get_mut(&x.member_id) {
                        m.rfm_segment = Some(x.segment);
                        m.r = Some(x.r);
                        m.f = Some(x.f);
                        m.m = Some(x.m);
                    }
                }
            }
            if fields.contains(&Field::AbcClass) {
                for x in abc_members(&data, &AbcConfig::default()) {
                    if let Some(m) = rows.get_mut(&x.member_id) {
                        m.abc_class = Some(x.class);
                    }
                }
            }
        }

        let mut h = self.acquire().await?;
        let mut c = h.conn();
        if needs(&fields, &[Field::Clv12m, Field::PAlive]) {
            // One prediction per member: the first model in this order that has one.
            let mut best: HashMap<i64, (usize, f64, Option<f64>)> = HashMap::new();
            c.fetch_each(
                "SELECT member_id, model, p_alive, clv, horizon FROM member_predictions",
                &[],
                |r| {
                    let id = r.i64(0)?;
                    let model = r.text(1)?;
                    let rank = ["bgnbd", "mbgnbd", "paretonbd"]
                        .iter()
                        .position(|m| *m == model)
                        .unwrap_or(3);
                    let horizon = r.f64(4)?;
                    let clv = r.opt_f64(3)?.map(|v| {
                        if horizon > 0.0 {
                            v * 365.0 / horizon
                        } else {
                            v
                        }
                    });
                    let e = best.entry(id).or_insert((usize::MAX, 0.0, None));
                    if rank < e.0 {
                        *e = (rank, r.f64(2)?, clv);
                    }
                    Ok::<(), StoreError>(())
                },
            )
            .await?;
            for (id, (_, p, clv)) in best {
                if let Some(m) = rows.get_mut(&id) {
                    m.p_alive = Some(p);
                    m.clv_12m = clv;
                }
            }
        }
        if needs(&fields, &[Field::Tier, Field::PointsAvailable]) {
            c.fetch_each(
                "SELECT member_id, available, tier FROM points_accounts",
                &[],
                |r| {
                    if let Some(m) = rows.get_mut(&r.i64(0)?) {
                        m.points_available = r.i64(1)?;
                        m.tier = r.opt_text(2)?;
                    }
                    Ok::<(), StoreError>(())
                },
            )
            .await?;
        }
        let mut sets: HashMap<Atom, HashSet<i64>> = HashMap::new();
        for a in expr.atoms() {
            let s = atom_members(&mut c, &a, as_of_end, as_of_day, offset).await?;
            sets.insert(a, s);
        }
        drop(h);

        let holds = |a: &Atom, id: i64| sets.get(a).is_some_and(|s| s.contains(&id));
        let considered = rows.len() as u64;
        let mut members: Vec<MemberFacts> = rows
            .into_values()
            .filter(|m| expr.eval(m, as_of, &holds))
            .collect();
        members.sort_unstable_by_key(|m| m.member_id);
        Ok(Evaluation {
            as_of,
            considered,
            members,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Save a segment. Saving a name again with the same expression and flag
    /// changes nothing; with a different one it is an error unless `replace`.
    pub async fn create_segment(
        &self,
        name: &str,
        expression: &str,
        is_tag: bool,
        replace: bool,
    ) -> Result<SavedSegment, StoreError> {
        self.save_segment(&NewSegment {
            name: name.to_string(),
            expression: expression.to_string(),
            description: None,
            is_tag,
            replace,
        })
        .await
    }

    /// Save a segment with its description. The same definition again
    /// (expression, flag and description) changes nothing; another one is
    /// [`StoreError::SegmentExists`] unless `replace`.
    pub async fn save_segment(&self, new: &NewSegment) -> Result<SavedSegment, StoreError> {
        let name = new.name.as_str();
        let expression = new.expression.as_str();
        let is_tag = new.is_tag;
        check_name(name)?;
        parse(expression).map_err(|e| StoreError::InvalidInput(format!("expression {e}")))?;
        let description = new
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        if description.is_some_and(|d| d.chars().count() > 500 || d.chars().any(char::is_control)) {
            return Err(StoreError::InvalidInput(
                "description: expected at most 500 characters without control characters".into(),
            ));
        }
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let mut c = uow.conn();
        let existing = c
            .fetch_opt(
                "SELECT expression, is_tag, description FROM segments WHERE name = $1",
                &[name.into()],
                |r| Ok((r.text(0)?, r.i64(1)? != 0, r.opt_text(2)?)),
            )
            .await?;
        let vals = [
            Val::from(name),
            expression.into(),
            i64::from(is_tag).into(),
            now.into(),
            description.map(str::to_string).into(),
        ];
        match existing {
            Some((e, t, d)) if e == expression && t == is_tag && d.as_deref() == description => {}
            Some(_) if !new.replace => return Err(StoreError::SegmentExists(name.to_string())),
            Some(_) => {
                c.exec(
                    "UPDATE segments SET expression = $2, is_tag = $3, updated_at = $4, description = $5 WHERE name = $1",
                    &vals,
                )
                .await?;
            }
            None => {
                c.exec(
                    "INSERT INTO segments (name, expression, is_tag, created_at, updated_at, description) VALUES ($1, $2, $3, $4, $4, $5)",
                    &vals,
                )
                .await?;
            }
        }
        uow.commit().await?;
        self.segment(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt("segment missing after save".into()))
    }

    /// Every saved segment, by name, with its latest size only.
    pub async fn list_segments(&self) -> Result<Vec<SavedSegment>, StoreError> {
        let mut h = self.acquire().await?;
        let mut list = h
            .conn()
            .fetch(
                "SELECT name, expression, is_tag, created_at, updated_at, description FROM segments ORDER BY name",
                &[],
                saved,
            )
            .await?;
        let sizes = h
            .conn()
            .fetch(
                "SELECT s.name, s.day, s.members FROM segment_sizes s \
                 JOIN (SELECT name, MAX(day) AS day FROM segment_sizes GROUP BY name) l \
                 ON l.name = s.name AND l.day = s.day",
                &[],
                |r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?)),
            )
            .await?;
        for (n, d, m) in sizes {
            if let Some(s) = list.iter_mut().find(|s| s.name == n) {
                s.sizes.push((d, m));
            }
        }
        Ok(list)
    }

    /// One saved segment with its daily sizes.
    pub async fn segment(&self, name: &str) -> Result<Option<SavedSegment>, StoreError> {
        let mut h = self.acquire().await?;
        let Some(mut s) = h
            .conn()
            .fetch_opt(
                "SELECT name, expression, is_tag, created_at, updated_at, description FROM segments WHERE name = $1",
                &[name.into()],
                saved,
            )
            .await?
        else {
            return Ok(None);
        };
        s.sizes = h
            .conn()
            .fetch(
                "SELECT day, members FROM segment_sizes WHERE name = $1 ORDER BY day",
                &[name.into()],
                |r| Ok((r.text(0)?, r.i64(1)?)),
            )
            .await?;
        Ok(Some(s))
    }

    /// The daily job: evaluate every saved segment, record today's size, and
    /// bring each rule tag's members up to date (through the profile door, one
    /// unit of work per segment). Run it again the same day and it replaces
    /// the day's size and changes no tag that is already right.
    pub async fn refresh_segments(
        &self,
        cx: &SegmentContext,
    ) -> Result<Vec<Refreshed>, StoreError> {
        let mut out = Vec::new();
        for s in self.list_segments().await? {
            out.push(self.refresh_saved(&s, cx).await?);
        }
        Ok(out)
    }

    /// [`Store::refresh_segments`] for one saved segment; `None` when no
    /// segment has this name.
    pub async fn refresh_segment(
        &self,
        name: &str,
        cx: &SegmentContext,
    ) -> Result<Option<Refreshed>, StoreError> {
        match self.segment(name).await? {
            Some(s) => self.refresh_saved(&s, cx).await.map(Some),
            None => Ok(None),
        }
    }

    async fn refresh_saved(
        &self,
        s: &SavedSegment,
        cx: &SegmentContext,
    ) -> Result<Refreshed, StoreError> {
        let expr = parse(&s.expression)
            .map_err(|e| StoreError::Corrupt(format!("stored segment {:?}: {e}", s.name)))?;
        let ev = self.evaluate_segment(&expr, cx).await?;
        let day = ev.as_of.to_string();
        let mut uow = self.unit_of_work().await?;
        let now = uow.now();
        let mut r = Refreshed {
            name: s.name.clone(),
            members: ev.members.len() as u64,
            tagged: 0,
            untagged: 0,
        };
        if s.is_tag {
            let tag = crate::profiles::normalise_tag(&s.name)?;
            let now_in: HashSet<i64> = ev.members.iter().map(|m| m.member_id).collect();
            let before: HashSet<i64> = id_set(
                &mut uow.conn(),
                "SELECT member_id FROM member_tags WHERE tag = $1 AND source = 'rule'",
                &[tag.as_str().into()],
            )
            .await?;
            let mut add: Vec<i64> = now_in.difference(&before).copied().collect();
            let mut remove: Vec<i64> = before.difference(&now_in).copied().collect();
            add.sort_unstable();
            remove.sort_unstable();
            for id in add {
                let mut ch = ProfileChange::new(ProfileSource::Rule);
                ch.detail = Some(format!("segment {}", s.name));
                ch.add_tags.push(tag.clone());
                if !apply_in(&mut uow, MemberId::from_i64(id), &ch)
                    .await?
                    .is_empty()
                {
                    r.tagged += 1;
                }
            }
            for id in remove {
                let mut ch = ProfileChange::new(ProfileSource::Rule);
                ch.detail = Some(format!("segment {}", s.name));
                ch.remove_tags.push(tag.clone());
                match apply_in(&mut uow, MemberId::from_i64(id), &ch).await {
                    Ok(o) if !o.is_empty() => r.untagged += 1,
                    Ok(_) => {}
                    // A tag left on an id that no longer exists: drop it.
                    Err(StoreError::NotFound(_)) => {
                        uow.conn()
                            .exec(
                                "DELETE FROM member_tags WHERE member_id = $1 AND tag = $2 AND source = 'rule'",
                                &[id.into(), tag.as_str().into()],
                            )
                            .await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        uow.conn()
            .exec(
                "INSERT INTO segment_sizes (name, day, members, computed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name, day) DO UPDATE SET members = excluded.members, computed_at = excluded.computed_at",
                &[
                    s.name.as_str().into(),
                    day.into(),
                    (ev.members.len() as i64).into(),
                    now.into(),
                ],
            )
            .await?;
        uow.commit().await?;
        Ok(r)
    }
}

fn saved(r: crate::RowRef<'_>) -> Result<SavedSegment, StoreError> {
    Ok(SavedSegment {
        name: r.text(0)?,
        expression: r.text(1)?,
        is_tag: r.i64(2)? != 0,
        created_at: r.i64(3)?,
        updated_at: r.i64(4)?,
        description: r.opt_text(5)?,
        sizes: Vec::new(),
    })
}

/// The CSV header of [`export_csv`].
pub const EXPORT_COLUMNS: &[&str] = &[
    "member_id",
    "rfm_segment",
    "r",
    "f",
    "m",
    "clv_12m",
    "p_alive",
    "last_order_days",
    "first_order_days",
    "orders",
    "net_spend",
    "aov",
    "abc_class",
    "tier",
    "points_available",
    "gender",
    "region",
    "city",
    "language",
    "birthday",
];

/// Write the members of an evaluation as CSV (money in currency units).
pub fn export_csv<W: std::io::Write>(members: &[MemberFacts], out: W) -> Result<(), StoreError> {
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| StoreError::InvalidInput(format!("writing CSV: {e}"));
    w.write_record(EXPORT_COLUMNS).map_err(io)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    let money = |minor: i64| {
        let sign = if minor < 0 { "-" } else { "" };
        let a = minor.unsigned_abs();
        format!("{sign}{}.{:02}", a / 100, a % 100)
    };
    for m in members {
        let rec = [
            MemberId::from_i64(m.member_id).to_string(),
            opt(m.rfm_segment.map(|s| s.name().to_string())),
            opt(m.r.map(|x| x.to_string())),
            opt(m.f.map(|x| x.to_string())),
            opt(m.m.map(|x| x.to_string())),
            opt(m.clv_12m.map(|x| format!("{x:.2}"))),
            opt(m.p_alive.map(|x| format!("{x:.4}"))),
            opt(m.last_order_days.map(|x| x.to_string())),
            opt(m.first_order_days.map(|x| x.to_string())),
            m.orders.to_string(),
            money(m.net_spend),
            if m.orders > 0 {
                format!("{:.2}", m.net_spend as f64 / 100.0 / m.orders as f64)
            } else {
                String::new()
            },
            opt(m.abc_class.map(|c| c.name().to_string())),
            opt(m.tier.clone()),
            m.points_available.to_string(),
            opt(m.gender.clone()),
            opt(m.region.clone()),
            opt(m.city.clone()),
            opt(m.language.clone()),
            opt(m.birthday.map(|d| d.to_string())),
        ];
        w.write_record(&rec).map_err(io)?;
    }
    w.flush()
        .map_err(|e| StoreError::InvalidInput(format!("writing CSV: {e}")))?;
    Ok(())
}
