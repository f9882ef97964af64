//! The report pipeline as a library call: a typed [`ReportRequest`] (the
//! kind, the scope filters, the kind's options, the business time zone) in,
//! a typed, serde-serialisable [`Report`] out.
//!
//! `touchpoint report KIND` and `GET /api/reports/{kind}` both go through
//! [`ReportRequest::parse`] (named parameters, the names of the query
//! parameters; the CLI's flags are the same names in kebab case) and
//! [`Store::report`], so the same parameters give the same JSON. Definitions
//! of every number: docs/metrics.md.

use chrono::NaiveDate;
use serde::Serialize;
use touchpoint_core::analytics::{
    self as an, AbcConfig, AbcWeights, Dataset, ProductData, RankBy, RetentionThresholds,
};

use crate::analytics::Scope;
use crate::{Store, StoreError};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// Recency, frequency, monetary scores and the 11 named segments.
    Rfm,
    /// A/B/C classes by profit contribution, loss-making members, Pareto curve.
    Abc,
    /// Repeat purchase, inactivity and annual return against thresholds.
    Retention,
    /// Members by month (or channel) of first purchase x months since.
    Cohorts,
    /// Products and categories: revenue, margin, first orders, roles.
    Products,
    /// Channels: members, orders, revenue, AOV, repeat rate, overlap.
    Channels,
    /// Headline numbers of every report.
    Summary,
    /// A period against the previous one: headline numbers, net revenue per
    /// day and channel, per brand (the dashboard's overview).
    Overview,
    /// Spend, new valid members, new paying customers and their costs per
    /// channel, campaign and month (docs/acquisition.md).
    Acquisition,
}

impl ReportKind {
    /// Every kind, in documentation order.
    pub const ALL: [ReportKind; 9] = [
        ReportKind::Rfm,
        ReportKind::Abc,
        ReportKind::Retention,
        ReportKind::Cohorts,
        ReportKind::Products,
        ReportKind::Channels,
        ReportKind::Summary,
        ReportKind::Overview,
        ReportKind::Acquisition,
    ];

    /// The name (`rfm`, `abc`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Rfm => "rfm",
            ReportKind::Abc => "abc",
            ReportKind::Retention => "retention",
            ReportKind::Cohorts => "cohorts",
            ReportKind::Products => "products",
            ReportKind::Channels => "channels",
            ReportKind::Summary => "summary",
            ReportKind::Overview => "overview",
            ReportKind::Acquisition => "acquisition",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Result<ReportKind, ReportError> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                ReportError::invalid(
                    "kind",
                    s,
                    "one of rfm, abc, retention, cohorts, products, channels, summary, overview, acquisition",
                )
            })
    }
}

/// Cohort grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CohortBy {
    /// Month of first purchase.
    #[default]
    Month,
    /// Month and channel of first purchase.
    Channel,
}

/// What a report covers (dates are local days of the business time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilters {
    /// Last day included; `None` = the day of the last order.
    pub as_of: Option<NaiveDate>,
    /// Only orders of this channel.
    pub channel: Option<String>,
    /// Only order lines of products of this brand.
    pub brand: Option<String>,
    /// Only orders on or after this day.
    pub since: Option<NaiveDate>,
    /// A date range's first day.
    pub from: Option<NaiveDate>,
    /// A date range's last day.
    pub to: Option<NaiveDate>,
}

/// The options of the report kinds (each kind reads its own).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// rfm, abc: list every member with scores / class.
    pub members: bool,
    /// cohorts: grouping.
    pub by: CohortBy,
    /// abc, summary: costs, fees, ranking.
    pub abc: AbcConfig,
    /// retention, summary: thresholds.
    pub thresholds: RetentionThresholds,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            members: false,
            by: CohortBy::Month,
            abc: AbcConfig::default(),
            thresholds: RetentionThresholds {
                repeat_90_min: 0.10,
                repeat_180_min: 0.20,
                annual_return_target: 0.80,
            },
        }
    }
}

/// A report to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// Which report.
    pub kind: ReportKind,
    /// What it covers.
    pub filters: ReportFilters,
    /// The kind's options.
    pub options: ReportOptions,
    /// The business time zone (local days and months).
    pub time_zone: chrono_tz::Tz,
}

/// Errors of a report request.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A parameter has a wrong value.
    #[error("{field} {value:?}: expected {expected}")]
    Invalid {
        /// The parameter's name (`channel_fee`; the CLI flag is `--channel-fee`).
        field: String,
        /// The value given.
        value: String,
        /// The accepted form.
        expected: String,
    },
    /// A parameter no report knows.
    #[error("unknown parameter {field:?}: expected one of {}", PARAMETERS.join(", "))]
    Unknown {
        /// The name given.
        field: String,
    },
}

impl ReportError {
    fn invalid(field: &str, value: &str, expected: impl Into<String>) -> Self {
        ReportError::Invalid {
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// The parameter the error is about.
    pub fn field(&self) -> &str {
        match self {
            ReportError::Invalid { field, .. } | ReportError::Unknown { field } => field,
        }
    }

    /// The message with the parameter named as a command-line flag
    /// (`--channel-fee "x": expected ...`).
    pub fn cli_message(&self) -> String {
        match self {
            ReportError::Invalid {
                field,
                value,
                expected,
            } if field != "kind" => {
                format!(
                    "--{} {value:?}: expected {expected}",
                    field.replace('_', "-")
                )
            }
            other => other.to_string(),
        }
    }
}

/// The parameters [`ReportRequest::parse`] accepts (besides the kind).
pub const PARAMETERS: &[&str] = &[
    "as_of",
    "channel",
    "brand",
    "since",
    "from",
    "to",
    "members",
    "by",
    "fulfilment_cost",
    "channel_fee",
    "rank_by",
    "weights",
    "repeat_90_min",
    "repeat_180_min",
    "annual_return_target",
];

fn date(field: &str, v: &str) -> Result<NaiveDate, ReportError> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| ReportError::invalid(field, v, "a date YYYY-MM-DD, e.g. 2025-11-11"))
}

fn text(field: &str, v: &str) -> Result<String, ReportError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(ReportError::invalid(field, v, "a non-empty name"));
    }
    Ok(t.to_string())
}

fn share(field: &str, v: &str) -> Result<f64, ReportError> {
    match v.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ReportError::invalid(
            field,
            v,
            "a number from 0 to 1, e.g. 0.2",
        )),
    }
}

/// An amount in currency units (`8.50`) as minor units.
fn money(field: &str, v: &str) -> Result<i64, ReportError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok((x * 100.0).round() as i64),
        _ => Err(ReportError::invalid(
            field,
            v,
            "a non-negative amount in currency units, e.g. 8.50",
        )),
    }
}

fn channel_fees(v: &str, out: &mut Vec<(String, f64)>) -> Result<(), ReportError> {
    let expected =
        "CHANNEL=RATE with a rate from 0 to 1, e.g. tmall=0.05 (repeatable or comma-separated)";
    for f in v.split(',').filter(|f| !f.trim().is_empty()) {
        let (c, r) = f
            .split_once('=')
            .ok_or_else(|| ReportError::invalid("channel_fee", f, expected))?;
        let r: f64 = r
            .trim()
            .parse()
            .map_err(|_| ReportError::invalid("channel_fee", f, expected))?;
        if !(0.0..=1.0).contains(&r) || c.trim().is_empty() {
            return Err(ReportError::invalid("channel_fee", f, expected));
        }
        out.push((c.trim().to_string(), r));
    }
    Ok(())
}

fn weights(v: &str) -> Result<AbcWeights, ReportError> {
    let expected = "three non-negative numbers contribution,frequency,recency, e.g. 0.6,0.2,0.2";
    let w: Vec<f64> = v
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ReportError::invalid("weights", v, expected))?;
    if w.len() != 3 || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(ReportError::invalid("weights", v, expected));
    }
    Ok(AbcWeights {
        contribution: w[0],
        frequency: w[1],
        recency: w[2],
    })
}

impl ReportRequest {
    /// A request with no filters and the default options.
    pub fn new(kind: ReportKind, time_zone: chrono_tz::Tz) -> Self {
        Self {
            kind,
            filters: ReportFilters::default(),
            options: ReportOptions::default(),
            time_zone,
        }
    }

    /// Parse a request from named parameters (query parameters, or the
    /// CLI's flags with `-` as `_`): [`PARAMETERS`]. `channel_fee` may be
    /// repeated and comma-separated; a later value of another parameter
    /// replaces an earlier one. Errors name the parameter and the accepted form.
    pub fn parse<'a>(
        kind: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        time_zone: chrono_tz::Tz,
    ) -> Result<ReportRequest, ReportError> {
        let mut r = ReportRequest::new(ReportKind::parse(kind)?, time_zone);
        let (f, o) = (&mut r.filters, &mut r.options);
        for (k, v) in params {
            match k {
                "as_of" => f.as_of = Some(date(k, v)?),
                "channel" => f.channel = Some(text(k, v)?),
                "brand" => f.brand = Some(text(k, v)?),
                "since" => f.since = Some(date(k, v)?),
                "from" => f.from = Some(date(k, v)?),
                "to" => f.to = Some(date(k, v)?),
                "members" => {
                    o.members = match v.trim() {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(ReportError::invalid(k, v, "true or false")),
                    }
                }
                "by" => {
                    o.by = match v.trim() {
                        "month" => CohortBy::Month,
                        "channel" => CohortBy::Channel,
                        _ => return Err(ReportError::invalid(k, v, "month or channel")),
                    }
                }
                "fulfilment_cost" => o.abc.fulfilment_cost = money(k, v)?,
                "channel_fee" => channel_fees(v, &mut o.abc.channel_fees)?,
                "rank_by" => {
                    o.abc.rank_by = match v.trim() {
                        "contribution" => RankBy::Contribution,
                        "score" => RankBy::Score,
                        _ => return Err(ReportError::invalid(k, v, "contribution or score")),
                    }
                }
                "weights" => o.abc.weights = weights(v)?,
                "repeat_90_min" => o.thresholds.repeat_90_min = share(k, v)?,
                "repeat_180_min" => o.thresholds.repeat_180_min = share(k, v)?,
                "annual_return_target" => o.thresholds.annual_return_target = share(k, v)?,
                other => {
                    return Err(ReportError::Unknown {
                        field: other.to_string(),
                    })
                }
            }
        }
        r.validate()?;
        Ok(r)
    }

    /// Check what a typed request can still get wrong: a date range that
    /// ends before it starts.
    pub fn validate(&self) -> Result<(), ReportError> {
        if let (Some(from), Some(to)) = (self.filters.from, self.filters.to) {
            if to < from {
                return Err(ReportError::invalid(
                    "to",
                    &to.to_string(),
                    format!("a date on or after from ({from})"),
                ));
            }
        }
        Ok(())
    }

    /// The scope the store reads: local days, and the time zone's offset at
    /// the as-of day (noon) or now.
    pub fn scope(&self) -> Scope {
        if self.kind == ReportKind::Overview {
            // The overview reads everything up to the period's last day: the
            // previous period and first purchases come from the same data.
            let mut r = self.clone();
            r.kind = ReportKind::Summary;
            r.filters.as_of = self.filters.to.or(self.filters.as_of);
            r.filters.from = None;
            r.filters.to = None;
            r.filters.since = None;
            return r.scope();
        }
        let f = &self.filters;
        let at = f
            .as_of
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_else(crate::now_ms);
        Scope {
            as_of_day: f.as_of.map(an::date_to_day),
            channel: f.channel.clone(),
            brand: f.brand.clone(),
            since_day: f.since.map(an::date_to_day),
            from_day: f.from.map(an::date_to_day),
            to_day: f.to.map(an::date_to_day),
            utc_offset_ms: an::utc_offset_ms(&self.time_zone, at),
        }
    }

    /// The overview's period as local days: `from`..=`to` (or `since`), by
    /// default the 30 days ending at the data set's as-of day.
    pub fn overview_period(&self, data: &Dataset) -> (i32, i32) {
        let f = &self.filters;
        an::period_days(
            data,
            f.from.or(f.since).map(an::date_to_day),
            f.to.or(f.as_of).map(an::date_to_day),
        )
    }

    /// Whether the report reads the per-member data set.
    pub fn needs_members(&self) -> bool {
        self.kind != ReportKind::Products && self.kind != ReportKind::Acquisition
    }

    /// What the acquisition report covers: `from` (else `since`) to `to`
    /// (else `as_of`), and `channel`; it ignores `brand`.
    pub fn acquisition_filter(&self) -> crate::acquisition::AcquisitionFilter {
        let f = &self.filters;
        crate::acquisition::AcquisitionFilter {
            from: f.from.or(f.since),
            to: f.to.or(f.as_of),
            channel: f.channel.clone(),
        }
    }

    /// Whether the report reads the per-product data.
    pub fn needs_products(&self) -> bool {
        matches!(self.kind, ReportKind::Products | ReportKind::Summary)
    }
}

/// A computed report; serialised as the report itself (the JSON of
/// `touchpoint report KIND -o json`, documented in docs/metrics.md).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// RFM.
    Rfm(an::RfmReport),
    /// ABC.
    Abc(an::AbcReport),
    /// Retention.
    Retention(an::RetentionReport),
    /// Cohorts.
    Cohorts(an::CohortReport),
    /// Products.
    Products(an::ProductReport),
    /// Channels.
    Channels(an::ChannelReport),
    /// Summary.
    Summary(Box<an::SummaryReport>),
    /// Overview.
    Overview(Box<an::OverviewReport>),
    /// Acquisition.
    Acquisition(Box<crate::acquisition::AcquisitionReport>),
}

/// Compute a report from loaded inputs (pure; the data sets a request needs
/// are those of [`ReportRequest::needs_members`] and
/// [`ReportRequest::needs_products`]). The acquisition report reads inputs
/// of its own ([`Store::acquisition_data`]), which [`Store::report`] loads;
/// here it is computed over none (no spend, no members).
pub fn compute(req: &ReportRequest, data: &Dataset, pdata: &ProductData) -> Report {
    let o = &req.options;
    match req.kind {
        ReportKind::Rfm => Report::Rfm(an::rfm(data, o.members)),
        ReportKind::Abc => Report::Abc(an::abc(data, &o.abc, o.members)),
        ReportKind::Retention => Report::Retention(an::retention(data, &o.thresholds)),
        ReportKind::Cohorts => Report::Cohorts(an::cohorts(data, o.by == CohortBy::Channel)),
        ReportKind::Products => Report::Products(an::products(pdata)),
        ReportKind::Channels => Report::Channels(an::channels(data)),
        ReportKind::Summary => {
            Report::Summary(Box::new(an::summary(data, pdata, &o.abc, &o.thresholds)))
        }
        ReportKind::Overview => {
            let (from, to) = req.overview_period(data);
            Report::Overview(Box::new(an::overview(
                data,
                Some(from),
                Some(to),
                o.thresholds.annual_return_target,
            )))
        }
        ReportKind::Acquisition => Report::Acquisition(Box::new(crate::acquisition::compute(
            &crate::acquisition::AcquisitionData::default(),
            &req.acquisition_filter(),
            &req.time_zone,
        ))),
    }
}

impl Store {
    /// Load the inputs of a report and compute it. A report computed before
    /// from the same data (the same analytics model version) is answered
    /// from memory (see [`crate::model_cache`]); reports that list members
    /// (`members=true`) are always computed.
    pub async fn report(&self, req: &ReportRequest) -> Result<Report, StoreError> {
        if req.kind == ReportKind::Acquisition {
            let r = self
                .acquisition_report(&req.acquisition_filter(), &req.time_zone)
                .await?;
            return Ok(Report::Acquisition(Box::new(r)));
        }
        if req.options.members {
            return self.compute_report(req).await;
        }
        let key = format!("{}|{req:?}", self.analytics_state().await?.fact_seq);
        if let Some(r) = self.cache.reports.get(&key) {
            return Ok((*r).clone());
        }
        let r = self.compute_report(req).await?;
        self.cache.reports.put(key, std::sync::Arc::new(r.clone()));
        Ok(r)
    }

    async fn compute_report(&self, req: &ReportRequest) -> Result<Report, StoreError> {
        let scope = req.scope();
        if req.kind == ReportKind::Overview {
            return self.overview_report(req, &scope).await;
        }
        let data = if req.needs_members() {
            self.member_dataset_shared(&scope).await?
        } else {
            std::sync::Arc::new(Dataset::default())
        };
        let pdata = if req.needs_products() {
            self.product_data(&scope).await?
        } else {
            ProductData::default()
        };
        Ok(compute(req, &data, &pdata))
    }

    /// The overview, with one data set per brand (a brand's revenue is that
    /// of its order lines), all from one read of the analytics model.
    async fn overview_report(
        &self,
        req: &ReportRequest,
        scope: &Scope,
    ) -> Result<Report, StoreError> {
        let (facts, _) = self.order_facts().await?;
        let data = facts.dataset(&scope.fact_filter());
        let mut report = compute(req, &data, &ProductData::default());
        if let Report::Overview(o) = &mut report {
            let (from, to) = req.overview_period(&data);
            let mut brands = facts.brands.clone();
            brands.sort();
            for b in brands {
                let mut s = scope.clone();
                s.brand = Some(b.clone());
                let d = facts.dataset(&s.fact_filter());
                o.brands.push(an::brand_row(&b, &d, from, to));
            }
            o.brands.sort_by(|a, b| {
                b.net_revenue
                    .cmp(&a.net_revenue)
                    .then(a.brand.cmp(&b.brand))
            });
        }
        Ok(report)
    }

    /// The channel names and product brands, sorted (the values the
    /// `channel` and `brand` filters accept).
    pub async fn filter_values(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut h = self.acquire().await?;
        let mut c = h.conn();
        let channels = c
            .fetch("SELECT name FROM channels ORDER BY name", &[], |r| {
                r.text(0)
            })
            .await?;
        let brands = c
            .fetch(
                "SELECT DISTINCT brand FROM products WHERE brand IS NOT NULL AND brand <> '' ORDER BY brand",
                &[],
                |r| r.text(0),
            )
            .await?;
        Ok((channels, brands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn parameters_parse_into_the_typed_request() {
        let r = ReportRequest::parse(
            "abc",
            [
                ("channel", "tmall"),
                ("from", "2025-01-01"),
                ("to", "2025-06-30"),
                ("fulfilment_cost", "8.50"),
                ("channel_fee", "tmall=0.05,jd=0.04"),
                ("channel_fee", "pos=0"),
                ("rank_by", "score"),
                ("weights", "0.5,0.3,0.2"),
                ("members", "true"),
            ],
            TZ,
        )
        .unwrap();
        assert_eq!(r.kind, ReportKind::Abc);
        assert_eq!(r.filters.channel.as_deref(), Some("tmall"));
        assert_eq!(r.options.abc.fulfilment_cost, 850);
        assert_eq!(r.options.abc.channel_fees.len(), 3);
        assert_eq!(r.options.abc.rank_by, RankBy::Score);
        assert_eq!(r.options.abc.weights.contribution, 0.5);
        assert!(r.options.members);
        let s = r.scope();
        assert_eq!(s.from_day, Some(an::date_to_day(r.filters.from.unwrap())));
        assert_eq!(s.utc_offset_ms, 8 * 3_600_000);
    }

    #[test]
    fn errors_name_the_parameter_and_the_accepted_form() {
        let e = ReportRequest::parse("rfmx", [], TZ).unwrap_err();
        assert!(e.to_string().contains("kind \"rfmx\""), "{e}");
        assert!(e.to_string().contains("rfm, abc"), "{e}");
        let e = ReportRequest::parse("abc", [("channel_fee", "tmall")], TZ).unwrap_err();
        assert_eq!(e.field(), "channel_fee");
        assert!(e
            .cli_message()
            .starts_with("--channel-fee \"tmall\": expected CHANNEL=RATE"));
        let e = ReportRequest::parse("rfm", [("since", "11/11/2025")], TZ).unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        let e = ReportRequest::parse("rfm", [("chanel", "tmall")], TZ).unwrap_err();
        assert!(matches!(e, ReportError::Unknown { .. }));
        assert!(e.to_string().contains("channel"), "{e}");
        let e = ReportRequest::parse("rfm", [("from", "2025-02-01"), ("to", "2025-01-01")], TZ)
            .unwrap_err();
        assert_eq!(e.field(), "to");
        for (k, v) in [
            ("weights", "1,2"),
            ("repeat_90_min", "1.5"),
            ("fulfilment_cost", "-1"),
            ("rank_by", "profit"),
            ("by", "week"),
            ("members", "yes"),
        ] {
            let e = ReportRequest::parse("abc", [(k, v)], TZ).unwrap_err();
            assert_eq!(e.field(), k, "{e}");
        }
    }
}
