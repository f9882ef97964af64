//! The pages. Each reads its numbers through the library calls the API uses
//! (reports through `Store::report`, members through the member 360) and
//! only lays them out.

use std::fmt::Write;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use touchpoint_core::analytics::{self as an, day_to_date};
use touchpoint_core::{Email, Identifier, MemberId, Phone};
use touchpoint_store::reports::{Report, ReportRequest};

use super::html::{self, chart, esc, f, flag, kpi, link, m, mu, n, p, t, table, Cell};
use super::session::{self, DashUser};
use super::{message_page, page_headers, server_error, CsrfForm, IdPath, PageResult};
use crate::AppState;

/// The filters of every page, all in the URL.
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct Filters {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
    brand: Option<String>,
    /// Customers: cohorts by `month` or `channel`.
    by: Option<String>,
    /// Value: the CLV model.
    model: Option<String>,
    /// Members: the search.
    q: Option<String>,
    /// A notice after a change.
    done: Option<String>,
}

/// Filters resolved to days.
struct Scope {
    period: String,
    from: NaiveDate,
    to: NaiveDate,
    channel: String,
    brand: String,
    channels: Vec<String>,
    brands: Vec<String>,
}

fn clean(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or("").to_string()
}

impl Scope {
    /// The report parameters of the period (`from`, `to`) and filters.
    fn range_params(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("from", self.from.to_string()), ("to", self.to.to_string())];
        self.push_filters(&mut v);
        v
    }

    /// The report parameters "as of the period's last day" and filters.
    fn as_of_params(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("as_of", self.to.to_string())];
        self.push_filters(&mut v);
        v
    }

    fn push_filters(&self, v: &mut Vec<(&'static str, String)>) {
        if !self.channel.is_empty() {
            v.push(("channel", self.channel.clone()));
        }
        if !self.brand.is_empty() {
            v.push(("brand", self.brand.clone()));
        }
    }

    /// The query string that keeps the filters across pages.
    fn qs(&self) -> String {
        let (from, to) = if self.period == "custom" {
            (self.from.to_string(), self.to.to_string())
        } else {
            (String::new(), String::new())
        };
        html::query(&[
            ("period", &self.period),
            ("from", &from),
            ("to", &to),
            ("channel", &self.channel),
            ("brand", &self.brand),
        ])
    }

    /// The filter bar: period, dates, channel, brand (a GET form).
    fn bar(&self, action: &str, extra: &str) -> String {
        let mut s = format!("<form class=\"filters\" method=\"get\" action=\"{action}\">");
        s.push_str("<label>Period <select name=\"period\">");
        for (v, l) in [
            ("7", "Last 7 days"),
            ("30", "Last 30 days"),
            ("90", "Last 90 days"),
            ("ytd", "This year"),
            ("custom", "Custom (from, to)"),
        ] {
            let sel = if self.period == v { " selected" } else { "" };
            let _ = write!(s, "<option value=\"{v}\"{sel}>{l}</option>");
        }
        s.push_str("</select></label>");
        let _ = write!(
            s,
            "<label>From <input type=\"date\" name=\"from\" value=\"{}\"></label><label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>",
            self.from, self.to
        );
        for (name, label, values, current) in [
            ("channel", "Channel", &self.channels, &self.channel),
            ("brand", "Brand", &self.brands, &self.brand),
        ] {
            let _ = write!(
                s,
                "<label>{label} <select name=\"{name}\"><option value=\"\">All</option>"
            );
            for v in values {
                let sel = if v == current { " selected" } else { "" };
                let _ = write!(s, "<option value=\"{}\"{sel}>{}</option>", esc(v), esc(v));
            }
            s.push_str("</select></label>");
        }
        s.push_str(extra);
        s.push_str("<button type=\"submit\">Apply</button></form>");
        let _ = write!(
            s,
            "<p class=\"scope\" data-from=\"{}\" data-to=\"{}\">{} to {}{}{}</p>",
            self.from,
            self.to,
            self.from,
            self.to,
            if self.channel.is_empty() {
                String::new()
            } else {
                format!(" · channel {}", esc(&self.channel))
            },
            if self.brand.is_empty() {
                String::new()
            } else {
                format!(" · brand {}", esc(&self.brand))
            },
        );
        s
    }
}

fn bad_request(user: &DashUser, msg: &str) -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        "A filter is not valid",
        msg,
        Some(user),
    )
}

fn date(field: &str, v: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| format!("{field} {v:?}: expected a date as YYYY-MM-DD"))
}

/// Resolve the filters: the period ends on the day of the last order (or
/// `to` for a custom period).
async fn scope(state: &AppState, user: &DashUser, q: &Filters) -> Result<Scope, Response> {
    let tz = state.config.business_tz;
    let offset = an::utc_offset_ms(&tz, touchpoint_store::now_ms());
    let last = state
        .store
        .last_order_day(offset)
        .await
        .map_err(|e| server_error(e, user))?
        .map(day_to_date)
        .unwrap_or_else(|| chrono::Utc::now().with_timezone(&tz).date_naive());
    let period = clean(&q.period);
    let period = if period.is_empty() {
        "30".to_string()
    } else {
        period
    };
    let (from, to) = match period.as_str() {
        "7" | "30" | "90" => {
            let days: i64 = period.parse().unwrap_or(30);
            (last - chrono::Duration::days(days - 1), last)
        }
        "ytd" => (
            NaiveDate::from_ymd_opt(last.year(), 1, 1).unwrap_or(last),
            last,
        ),
        "custom" => {
            let from = date("from", &clean(&q.from)).map_err(|e| bad_request(user, &e))?;
            let to = date("to", &clean(&q.to)).map_err(|e| bad_request(user, &e))?;
            if to < from {
                return Err(bad_request(
                    user,
                    &format!("to {to}: expected a date on or after from ({from})"),
                ));
            }
            (from, to)
        }
        other => {
            return Err(bad_request(
                user,
                &format!("period {other:?}: expected 7, 30, 90, ytd or custom"),
            ))
        }
    };
    let (channels, brands) = state
        .store
        .filter_values()
        .await
        .map_err(|e| server_error(e, user))?;
    let channel = clean(&q.channel);
    if !channel.is_empty() && !channels.contains(&channel) {
        return Err(bad_request(
            user,
            &format!(
                "channel {channel:?}: expected one of {}",
                channels.join(", ")
            ),
        ));
    }
    let brand = clean(&q.brand);
    if !brand.is_empty() && !brands.contains(&brand) {
        return Err(bad_request(
            user,
            &format!("brand {brand:?}: expected one of {}", brands.join(", ")),
        ));
    }
    Ok(Scope {
        period,
        from,
        to,
        channel,
        brand,
        channels,
        brands,
    })
}

/// One report through the library call the API uses; the API path of the
/// same numbers goes into the page (`data-api`).
async fn report(
    state: &AppState,
    user: &DashUser,
    kind: &str,
    params: &[(&'static str, String)],
) -> Result<(Report, String), Response> {
    let req = ReportRequest::parse(
        kind,
        params.iter().map(|(k, v)| (*k, v.as_str())),
        state.config.business_tz,
    )
    .map_err(|e| bad_request(user, &e.to_string()))?;
    let r = state
        .store
        .report(&req)
        .await
        .map_err(|e| server_error(e, user))?;
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok((r, format!("/api/reports/{kind}{}", html::query(&pairs))))
}

fn api_ref(name: &str, path: &str) -> String {
    format!(
        "<p class=\"api\" data-report=\"{}\" data-api=\"{}\">Same numbers: <code>GET {}</code></p>",
        esc(name),
        esc(path),
        esc(path)
    )
}

fn render(title: &str, user: &DashUser, qs: &str, body: &str) -> Response {
    page_headers(StatusCode::OK, html::layout(title, Some(user), qs, body))
}

fn notice(q: &Filters) -> String {
    match q.done.as_deref() {
        Some("rebuilt") => "<p class=\"notice\" role=\"status\">The analytics model was rebuilt from the orders.</p>".into(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------- Overview

pub(crate) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/overview").await?;
    let sc = scope(&state, &user, &q).await?;
    let (r, api) = report(&state, &user, "overview", &sc.range_params()).await?;
    let Report::Overview(o) = r else {
        return Err(server_error("the overview report has another kind", &user));
    };
    let (c, pv, ch) = (&o.current, &o.previous, &o.change);
    let mut b = String::from("<h1>Overview</h1>");
    b.push_str(&notice(&q));
    b.push_str(&sc.bar("/overview", ""));
    b.push_str(&api_ref("overview", &api));
    b.push_str("<section class=\"kpis\">");
    let pt = |x: f64| format!("{:+.1} pt", x * 100.0);
    b.push_str(&kpi(
        "net_revenue",
        "Net revenue",
        &html::money(c.net_revenue),
        &c.net_revenue.to_string(),
        &html::money(pv.net_revenue),
        &html::change(ch.net_revenue),
        false,
    ));
    b.push_str(&kpi(
        "orders",
        "Orders",
        &html::count(c.orders as i64),
        &c.orders.to_string(),
        &html::count(pv.orders as i64),
        &html::change(ch.orders),
        false,
    ));
    b.push_str(&kpi(
        "buyers",
        "Buyers",
        &html::count(c.buyers as i64),
        &c.buyers.to_string(),
        &html::count(pv.buyers as i64),
        &html::change(ch.buyers),
        false,
    ));
    b.push_str(&kpi(
        "new_members",
        "New members",
        &html::count(c.new_members as i64),
        &c.new_members.to_string(),
        &html::count(pv.new_members as i64),
        &html::change(ch.new_members),
        false,
    ));
    b.push_str(&kpi(
        "aov",
        "Average order value",
        &html::money(c.aov.round() as i64),
        &c.aov.to_string(),
        &html::money(pv.aov.round() as i64),
        &html::change(ch.aov),
        false,
    ));
    b.push_str(&kpi(
        "repeat_rate",
        "Repeat rate",
        &html::pct(c.repeat_rate),
        &c.repeat_rate.to_string(),
        &html::pct(pv.repeat_rate),
        &pt(ch.repeat_rate),
        false,
    ));
    b.push_str(&kpi(
        "annual_return_rate",
        &format!(
            "Annual return (target {})",
            html::pct(o.annual_return_target)
        ),
        &html::pct(c.annual_return_rate),
        &c.annual_return_rate.to_string(),
        &html::pct(pv.annual_return_rate),
        &pt(ch.annual_return_rate),
        o.annual_return_flagged,
    ));
    b.push_str("</section>");
    let _ = write!(
        b,
        "<p class=\"hint\">Previous period: {} to {}. Repeat rate: buyers of the period who had bought on two or more days by its end.</p>",
        pv.from, pv.to
    );
    // Sales per day, stacked by channel.
    let mut head: Vec<&str> = vec!["date"];
    head.extend(o.channels.iter().map(String::as_str));
    head.push("total");
    head.push("orders");
    let rows: Vec<Vec<Cell>> = o
        .days
        .iter()
        .map(|d| {
            let mut r = vec![t(d.date.to_string())];
            r.extend(d.net_revenue.iter().map(|v| m(*v)));
            r.push(m(d.net_revenue.iter().sum()));
            r.push(n(d.orders));
            r
        })
        .collect();
    let series: Vec<usize> = (1..=o.channels.len()).collect();
    b.push_str(&chart(
        "daily",
        "stacked",
        0,
        &series,
        "Net revenue per day, stacked by channel",
    ));
    b.push_str(&table(
        "daily",
        "Net revenue per day and channel",
        &head,
        &rows,
    ));
    let rows: Vec<Vec<Cell>> = o
        .brands
        .iter()
        .map(|x| vec![t(&x.brand), m(x.net_revenue), n(x.orders), n(x.buyers)])
        .collect();
    b.push_str("<div class=\"cols\">");
    b.push_str(&table(
        "brands",
        "By brand (net revenue of the brand's order lines)",
        &["brand", "net revenue", "orders", "buyers"],
        &rows,
    ));
    let (pr, papi) = report(&state, &user, "products", &sc.range_params()).await?;
    if let Report::Products(pr) = pr {
        let mut top = pr.products.clone();
        top.sort_by_key(|x| std::cmp::Reverse(x.net_revenue));
        top.truncate(10);
        let rows: Vec<Vec<Cell>> = top
            .iter()
            .map(|x| {
                vec![
                    t(&x.name),
                    t(&x.category),
                    m(x.net_revenue),
                    n(x.units.max(0) as u64),
                    t(x.role.name()),
                ]
            })
            .collect();
        b.push_str(&table(
            "top-products",
            "Top products by net revenue",
            &["product", "category", "net revenue", "units", "role"],
            &rows,
        ));
        b.push_str(&api_ref("products", &papi));
    }
    b.push_str("</div>");
    // The admin-only change: rebuild the analytics model.
    let _ = write!(
        b,
        "<section class=\"admin\"><h2>Maintenance</h2><form method=\"post\" action=\"/admin/analytics/rebuild\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\"{}>Rebuild the analytics model</button> <span class=\"hint\">{}</span></form></section>",
        esc(&user.csrf),
        if user.is_admin() { "" } else { " disabled" },
        if user.is_admin() {
            "Recomputes every order fact from the orders (touchpoint analytics rebuild)."
        } else {
            "Admins only: your key is an analyst key."
        }
    );
    Ok(render("Overview", &user, &sc.qs(), &b))
}

pub(crate) async fn rebuild_analytics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let user = session::user(&state, &headers, "/overview").await?;
    user.check_csrf(f.csrf.as_deref())?;
    user.require_admin("rebuild the analytics model")?;
    state
        .store
        .rebuild_facts()
        .await
        .map_err(|e| server_error(e, &user))?;
    Ok(Redirect::to("/overview?done=rebuilt").into_response())
}

// ---------------------------------------------------------------- Customers

pub(crate) async fn customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/customers").await?;
    let sc = scope(&state, &user, &q).await?;
    let by = match clean(&q.by).as_str() {
        "" | "month" => "month",
        "channel" => "channel",
        other => {
            return Err(bad_request(
                &user,
                &format!("by {other:?}: expected month or channel"),
            ))
        }
    };
    let extra = format!(
        "<label>Cohorts by <select name=\"by\"><option value=\"month\"{}>month of first purchase</option><option value=\"channel\"{}>first channel</option></select></label>",
        if by == "month" { " selected" } else { "" },
        if by == "channel" { " selected" } else { "" }
    );
    let mut b = String::from("<h1>Customers</h1>");
    b.push_str(&sc.bar("/customers", &extra));
    b.push_str("<p class=\"hint\">Customer reports are as of the period's last day, over all purchases up to it.</p>");
    let params = sc.as_of_params();

    // RFM segment grid.
    let (r, api) = report(&state, &user, "rfm", &params).await?;
    if let Report::Rfm(r) = r {
        b.push_str("<h2>RFM segments</h2>");
        b.push_str(&api_ref("rfm", &api));
        b.push_str("<div class=\"grid\">");
        for s in r.segments.iter().filter(|s| s.members > 0) {
            let _ = write!(
                b,
                "<div class=\"cell\" style=\"--share:{:.3}\"><b>{}</b><span>{} members · {}</span><span>{} of revenue</span></div>",
                s.revenue_share,
                esc(s.segment.name()),
                html::count(s.members as i64),
                html::pct(s.member_share),
                html::pct(s.revenue_share)
            );
        }
        b.push_str("</div>");
        let rows: Vec<Vec<Cell>> = r
            .segments
            .iter()
            .map(|s| {
                vec![
                    t(s.segment.name()),
                    n(s.members),
                    p(s.member_share),
                    m(s.revenue),
                    p(s.revenue_share),
                    f(s.avg_recency_days, 0),
                    f(s.avg_frequency, 2),
                    mu(s.avg_monetary / 100.0),
                ]
            })
            .collect();
        b.push_str(&table(
            "rfm",
            "RFM segments",
            &[
                "segment",
                "members",
                "member share",
                "revenue",
                "revenue share",
                "avg recency (days)",
                "avg frequency",
                "avg monetary",
            ],
            &rows,
        ));
    }

    // ABC and the Pareto curve.
    let (r, api) = report(&state, &user, "abc", &params).await?;
    if let Report::Abc(r) = r {
        b.push_str("<h2>A/B/C by profit contribution</h2>");
        b.push_str(&api_ref("abc", &api));
        let rows: Vec<Vec<Cell>> = r
            .classes
            .iter()
            .map(|c| {
                vec![
                    t(c.class.name()),
                    n(c.members),
                    p(c.member_share),
                    m(c.contribution),
                    p(c.contribution_share),
                    m(c.net_revenue),
                ]
            })
            .collect();
        b.push_str(&table(
            "abc",
            "Classes",
            &[
                "class",
                "members",
                "member share",
                "contribution",
                "contribution share",
                "net revenue",
            ],
            &rows,
        ));
        let rows: Vec<Vec<Cell>> = r
            .pareto
            .iter()
            .map(|x| {
                vec![
                    f(x.member_share * 100.0, 1),
                    f(x.contribution_share * 100.0, 1),
                ]
            })
            .collect();
        b.push_str(&chart(
            "pareto",
            "line",
            0,
            &[1],
            "Pareto curve: share of contribution by share of members (%)",
        ));
        b.push_str(&table(
            "pareto",
            "Pareto curve",
            &["members (%)", "contribution (%)"],
            &rows,
        ));
    }

    // Retention against thresholds.
    let (r, api) = report(&state, &user, "retention", &params).await?;
    if let Report::Retention(r) = r {
        b.push_str("<h2>Repeat purchase and inactivity</h2>");
        b.push_str(&api_ref("retention", &api));
        for fl in &r.flags {
            let _ = write!(b, "<p class=\"flag\" role=\"alert\">{}</p>", esc(fl));
        }
        let mut rows: Vec<Vec<Cell>> = r
            .repeat
            .iter()
            .map(|x| {
                vec![
                    t(format!("repeat within {} days", x.window_days)),
                    n(x.observed_members),
                    n(x.repeat_members),
                    p(x.rate),
                    x.threshold.map(p).unwrap_or_else(|| t("")),
                    flag(x.flagged),
                ]
            })
            .collect();
        let a = &r.annual_return;
        rows.push(vec![
            t("annual return"),
            n(a.previous_year_buyers),
            n(a.returned),
            p(a.rate),
            p(a.target),
            flag(a.flagged),
        ]);
        b.push_str(&table(
            "retention",
            "Rates against thresholds",
            &[
                "measure",
                "observed members",
                "members",
                "rate",
                "threshold",
                "flag",
            ],
            &rows,
        ));
        let rows: Vec<Vec<Cell>> = r
            .inactive
            .iter()
            .map(|x| {
                vec![
                    t(format!("no purchase in {} days", x.days)),
                    n(x.members),
                    p(x.share),
                ]
            })
            .collect();
        b.push_str(&table(
            "inactive",
            "Inactivity",
            &["measure", "members", "share"],
            &rows,
        ));
    }

    // Cohort heatmap.
    let mut cp = params.clone();
    cp.push(("by", by.to_string()));
    let (r, api) = report(&state, &user, "cohorts", &cp).await?;
    if let Report::Cohorts(r) = r {
        b.push_str("<h2>Cohorts</h2>");
        b.push_str(&api_ref("cohorts", &api));
        let width = r
            .cohorts
            .iter()
            .map(|c| c.cells.len())
            .max()
            .unwrap_or(0)
            .min(25);
        let mut head_s: Vec<String> = vec!["cohort".into(), "members".into()];
        head_s.extend((0..width).map(|i| format!("m{i}")));
        let head: Vec<&str> = head_s.iter().map(String::as_str).collect();
        let rows: Vec<Vec<Cell>> = r
            .cohorts
            .iter()
            .map(|c| {
                let label = match &c.channel {
                    Some(ch) => format!("{} {}", c.cohort, ch),
                    None => c.cohort.clone(),
                };
                let mut row = vec![t(label), n(c.members)];
                for i in 0..width {
                    match c.cells.iter().find(|x| x.months_since as usize == i) {
                        Some(x) => row.push(Cell {
                            text: format!(
                                "<span style=\"--v:{:.3}\">{}</span>",
                                x.active_share,
                                html::pct(x.active_share)
                            ),
                            raw: x.active_share.to_string(),
                            class: "heat",
                        }),
                        None => row.push(t("")),
                    }
                }
                row
            })
            .collect();
        b.push_str(&table(
            "cohorts",
            "Active share by months since first purchase",
            &head,
            &rows,
        ));
    }

    // Channels and overlap.
    let (r, api) = report(&state, &user, "channels", &params).await?;
    if let Report::Channels(r) = r {
        b.push_str("<h2>Channels</h2>");
        b.push_str(&api_ref("channels", &api));
        let rows: Vec<Vec<Cell>> = r
            .channels
            .iter()
            .map(|c| {
                vec![
                    t(&c.channel),
                    n(c.members),
                    n(c.new_members),
                    n(c.orders),
                    m(c.net_revenue),
                    mu(c.aov / 100.0),
                    p(c.repeat_rate),
                ]
            })
            .collect();
        b.push_str(&table(
            "channels",
            "Channels",
            &[
                "channel",
                "members",
                "new members",
                "orders",
                "net revenue",
                "AOV",
                "repeat rate",
            ],
            &rows,
        ));
        let mut head: Vec<&str> = vec!["channel"];
        head.extend(r.channels.iter().map(|c| c.channel.as_str()));
        let rows: Vec<Vec<Cell>> = r
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut row = vec![t(&c.channel)];
                row.extend(r.overlap[i].iter().map(|v| n(*v)));
                row
            })
            .collect();
        b.push_str(&table(
            "overlap",
            &format!(
                "Channel overlap: members who bought in both ({} bought in two or more)",
                html::count(r.multi_channel_members as i64)
            ),
            &head,
            &rows,
        ));
    }
    Ok(render("Customers", &user, &sc.qs(), &b))
}

// ---------------------------------------------------------------- Value

pub(crate) async fn value(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/value").await?;
    let sc = scope(&state, &user, &q).await?;
    let models = state
        .store
        .clv_models()
        .await
        .map_err(|e| server_error(e, &user))?;
    let mut b = String::from("<h1>Value</h1>");
    if models.is_empty() {
        b.push_str("<section class=\"message\"><p>No CLV predictions are stored yet. Run <code>touchpoint clv predict</code> (it fits a model and stores a prediction per member); this page then shows them.</p></section>");
        return Ok(render("Value", &user, &sc.qs(), &b));
    }
    let want = clean(&q.model);
    let model = models
        .iter()
        .find(|x| x.model.key() == want)
        .or_else(|| models.first())
        .ok_or_else(|| server_error("no model", &user))?;
    if !want.is_empty() && model.model.key() != want {
        let keys: Vec<&str> = models.iter().map(|x| x.model.key()).collect();
        return Err(bad_request(
            &user,
            &format!("model {want:?}: expected one of {}", keys.join(", ")),
        ));
    }
    let mut opts = String::from("<form class=\"filters\" method=\"get\" action=\"/value\"><label>Model <select name=\"model\">");
    for x in &models {
        let sel = if x.model == model.model {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            opts,
            "<option value=\"{}\"{sel}>{}</option>",
            x.model.key(),
            esc(&x.name)
        );
    }
    opts.push_str("</select></label><button type=\"submit\">Show</button></form>");
    b.push_str(&opts);
    let v = state
        .store
        .value_report(model, 25)
        .await
        .map_err(|e| server_error(e, &user))?;
    b.push_str("<h2>Model</h2>");
    b.push_str(&api_ref("clv-models", "/api/clv/models"));
    let mut rows = vec![
        vec![t("model"), t(&model.name)],
        vec![t("customers fitted"), n(model.n_customers)],
        vec![t("log-likelihood"), f(model.log_likelihood, 2)],
        vec![
            t("converged"),
            t(if model.converged { "yes" } else { "no" }),
        ],
        vec![
            t("calibration"),
            t(format!(
                "{} to {}",
                model.calibration_start, model.calibration_end
            )),
        ],
        vec![t("observation end"), t(model.observation_end.to_string())],
        vec![t("horizon (days)"), f(model.horizon_days, 1)],
        vec![t("annual discount rate"), p(model.annual_discount_rate)],
    ];
    for prm in &model.params {
        rows.push(vec![t(format!("parameter {}", prm.name)), f(prm.value, 4)]);
    }
    b.push_str(&table("model", "Fitted model", &["item", "value"], &rows));
    let _ = write!(
        b,
        "<section class=\"kpis\">{}{}{}{}{}{}</section>",
        kpi(
            "n_customers",
            "Customers fitted",
            &html::count(model.n_customers as i64),
            &model.n_customers.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "log_likelihood",
            "Log-likelihood",
            &format!("{:.2}", model.log_likelihood),
            &model.log_likelihood.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "members",
            "Members predicted",
            &html::count(v.members as i64),
            &v.members.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "total_clv",
            "Total CLV",
            &html::money_units(v.total_clv),
            &v.total_clv.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "mean_clv",
            "Mean CLV",
            &html::money_units(v.mean_clv),
            &v.mean_clv.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "at_risk",
            "High value at risk",
            &html::count(v.at_risk_members as i64),
            &v.at_risk_members.to_string(),
            "–",
            "",
            v.at_risk_members > 0
        ),
    );
    b.push_str("<h2>CLV distribution</h2>");
    let rows: Vec<Vec<Cell>> = v
        .distribution
        .iter()
        .map(|x| {
            vec![
                t(format!(
                    "{} – {}",
                    html::money_units(x.from),
                    html::money_units(x.to)
                )),
                n(x.members),
                mu(x.clv),
            ]
        })
        .collect();
    b.push_str(&chart("clv", "bars", 0, &[1], "Members by CLV"));
    b.push_str(&table(
        "clv",
        "Members by CLV (currency units)",
        &["CLV", "members", "their CLV"],
        &rows,
    ));
    let rows: Vec<Vec<Cell>> = v
        .alive_bands
        .iter()
        .map(|x| {
            vec![
                t(format!("{:.2} – {:.2}", x.from, x.to)),
                n(x.members),
                p(x.share),
                mu(x.clv),
            ]
        })
        .collect();
    b.push_str(&table(
        "alive",
        "P(alive) bands",
        &["P(alive)", "members", "share", "their CLV"],
        &rows,
    ));
    let rows: Vec<Vec<Cell>> = v
        .at_risk
        .iter()
        .map(|x| {
            let id = MemberId::from_i64(x.member_id).to_string();
            vec![
                link(&id, &format!("/members/{id}")),
                mu(x.clv),
                f(x.p_alive, 3),
            ]
        })
        .collect();
    b.push_str(&table(
        "at-risk",
        &format!(
            "High-value members most at risk: CLV at or above {} (top 20%) and P(alive) below 0.5",
            html::money_units(v.high_value_threshold)
        ),
        &["member", "CLV", "P(alive)"],
        &rows,
    ));
    Ok(render("Value", &user, &sc.qs(), &b))
}

// ---------------------------------------------------------------- Products

/// Rows of the "every product" table (the products with the most net revenue).
const PRODUCT_ROWS: usize = 200;
/// Rows of each product role's table.
const PRODUCT_ROWS_PER_ROLE: usize = 50;

pub(crate) async fn products(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/products").await?;
    let sc = scope(&state, &user, &q).await?;
    let (r, api) = report(&state, &user, "products", &sc.range_params()).await?;
    let Report::Products(r) = r else {
        return Err(server_error("the products report has another kind", &user));
    };
    let mut b = String::from("<h1>Products</h1>");
    b.push_str(&sc.bar("/products", ""));
    b.push_str(&api_ref("products", &api));
    let _ = write!(
        b,
        "<p class=\"hint\">Traffic drivers are over-represented in first orders; profit drivers earn above-average margin at a high margin rate; volume drivers move above-average units. Share of orders that are first orders: {}; margin rate: {}.</p>",
        html::pct(r.first_order_share),
        html::pct(r.margin_rate)
    );
    let head = [
        "key",
        "name",
        "category",
        "role",
        "net revenue",
        "units",
        "gross margin",
        "margin rate",
        "orders",
        "first-order share",
        "first-order repeat rate",
    ];
    let row = |x: &an::ProductRow| {
        vec![
            t(&x.key),
            t(&x.name),
            t(&x.category),
            t(x.role.name()),
            m(x.net_revenue),
            n(x.units.max(0) as u64),
            m(x.gross_margin),
            p(x.margin_rate),
            n(x.orders),
            p(x.first_order_share),
            p(x.first_order_repeat_rate),
        ]
    };
    // A brand with thousands of SKUs would make a page of megabytes: the
    // tables show the products with the most net revenue, and say where the
    // full list is.
    let mut ranked: Vec<&an::ProductRow> = r.products.iter().collect();
    ranked.sort_by(|a, b| b.net_revenue.cmp(&a.net_revenue).then(a.key.cmp(&b.key)));
    let top = |n: usize, of: usize, what: &str| {
        if of > n {
            format!(
                "{what}: the top {n} of {} by net revenue",
                html::count(of as i64)
            )
        } else {
            what.to_string()
        }
    };
    for (role, id) in [
        (an::ProductRole::TrafficDriver, "traffic"),
        (an::ProductRole::ProfitDriver, "profit"),
        (an::ProductRole::VolumeDriver, "volume"),
    ] {
        let all: Vec<&an::ProductRow> = ranked.iter().copied().filter(|x| x.role == role).collect();
        let rows: Vec<Vec<Cell>> = all
            .iter()
            .take(PRODUCT_ROWS_PER_ROLE)
            .map(|x| row(x))
            .collect();
        b.push_str(&table(
            id,
            &top(
                PRODUCT_ROWS_PER_ROLE,
                all.len(),
                &format!("{}s", role.name()),
            ),
            &head,
            &rows,
        ));
    }
    let rows: Vec<Vec<Cell>> = r.categories.iter().map(row).collect();
    b.push_str(&table("categories", "Categories", &head, &rows));
    let rows: Vec<Vec<Cell>> = ranked.iter().take(PRODUCT_ROWS).map(|x| row(x)).collect();
    b.push_str(&table(
        "products",
        &top(PRODUCT_ROWS, ranked.len(), "Every product"),
        &head,
        &rows,
    ));
    if ranked.len() > PRODUCT_ROWS {
        let _ = write!(
            b,
            "<p class=\"hint\" id=\"products-more\">All {} products: <code>GET {}</code> or <code>touchpoint report products -o csv</code>.</p>",
            html::count(ranked.len() as i64),
            esc(&api)
        );
    }
    Ok(render("Products", &user, &sc.qs(), &b))
}

// ---------------------------------------------------------------- Members

pub(crate) async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/members").await?;
    let text = clean(&q.q);
    let mut b = String::from("<h1>Members</h1>");
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/members\"><label>Find a member <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"phone, e-mail, member id (M-123), member number or name\"></label><button type=\"submit\">Search</button></form>",
        esc(&text)
    );
    if text.is_empty() {
        b.push_str("<p class=\"hint\">Search by phone number, e-mail address, member id (M-123), membership number or part of a name.</p>");
        return Ok(render("Members", &user, "", &b));
    }
    let store = &state.store;
    let err = |e: touchpoint_store::StoreError| server_error(e, &user);
    let mut found: Vec<MemberId> = Vec::new();
    let mut how = "name";
    if let Some(id) = text
        .strip_prefix("M-")
        .or_else(|| text.strip_prefix("m-"))
        .and_then(|_| MemberId::parse(&text).ok())
    {
        how = "member id";
        if let Some(id) = store.resolve_member_id(id).await.map_err(err)? {
            found.push(id);
        }
    } else if text.contains('@') {
        how = "e-mail";
        match Email::parse(&text) {
            Ok(e) => {
                if let Some(id) = store
                    .member_by_identifier(&Identifier::email(&e))
                    .await
                    .map_err(err)?
                {
                    found.push(id);
                }
            }
            Err(e) => {
                return Err(bad_request(
                    &user,
                    &format!("e-mail {text:?}: expected {e}"),
                ))
            }
        }
    } else {
        let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
        if digits >= 7 {
            if let Ok(ph) = Phone::parse(&text, &state.config.default_country) {
                how = "phone";
                if let Some(id) = store
                    .member_by_identifier(&Identifier::phone(&ph))
                    .await
                    .map_err(err)?
                {
                    found.push(id);
                }
            }
        }
        if found.is_empty() {
            if let Ok(no) = Identifier::member_no(&text) {
                if let Some(id) = store.member_by_identifier(&no).await.map_err(err)? {
                    how = "membership number";
                    found.push(id);
                }
            }
        }
        if found.is_empty() && digits == text.len() {
            if let Ok(id) = MemberId::parse(&text) {
                if let Some(id) = store.resolve_member_id(id).await.map_err(err)? {
                    how = "member id";
                    found.push(id);
                }
            }
        }
    }
    let rows: Vec<Vec<Cell>> = if found.is_empty() {
        how = "name";
        store
            .find_members_by_name(&text, 50)
            .await
            .map_err(err)?
            .into_iter()
            .map(|x| {
                let id = x.id.to_string();
                vec![
                    link(&id, &format!("/members/{id}")),
                    t(x.name.unwrap_or_default()),
                    t(x.channels),
                    n(x.orders.max(0) as u64),
                    m(x.net_revenue),
                ]
            })
            .collect()
    } else {
        let mut rows = Vec::new();
        for id in &found {
            if let Some(x) = store.member(*id).await.map_err(err)? {
                let ids = x.id.to_string();
                let chans: Vec<&str> = x.channels.iter().map(|c| c.channel.as_str()).collect();
                rows.push(vec![
                    link(&ids, &format!("/members/{ids}")),
                    t(x.name.clone().unwrap_or_default()),
                    t(chans.join(",")),
                    n(x.order_count.max(0) as u64),
                    m(x.channels.iter().map(|c| c.net_revenue).sum()),
                ]);
            }
        }
        rows
    };
    b.push_str(&table(
        "results",
        &format!("Members found by {how}: {}", rows.len()),
        &["member", "name", "channels", "orders", "net revenue"],
        &rows,
    ));
    Ok(render("Members", &user, "", &b))
}

fn when(tz: &chrono_tz::Tz, ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

pub(crate) async fn member(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): IdPath,
) -> PageResult {
    let user = session::user(
        &state,
        &headers,
        &format!("/members/{}", html::url_component(&id)),
    )
    .await?;
    let requested = MemberId::parse(&id)
        .map_err(|e| bad_request(&user, &format!("member id {id:?}: expected {e}")))?;
    let store = &state.store;
    let err = |e: touchpoint_store::StoreError| server_error(e, &user);
    let Some(x) = store.member(requested).await.map_err(err)? else {
        return Err(message_page(
            StatusCode::NOT_FOUND,
            "No such member",
            &format!("There is no member {requested}."),
            Some(&user),
        ));
    };
    let tz = state.config.business_tz;
    let events = store.member_events(x.id, None, 50).await.map_err(err)?;
    let predictions = store.predictions_of_member(x.id).await.map_err(err)?;
    let mut b = format!(
        "<h1>Member {}</h1><p class=\"api\" data-report=\"member\" data-api=\"/api/members/{}\">Same data: <code>GET /api/members/{}</code></p>",
        x.id, x.id, x.id
    );
    if let Some(r) = x.requested_id {
        let _ = write!(
            b,
            "<p class=\"notice\">{r} was merged into {}: showing {}.</p>",
            x.id, x.id
        );
    }
    let net: i64 = x.channels.iter().map(|c| c.net_revenue).sum();
    let _ = write!(
        b,
        "<section class=\"kpis\">{}{}{}</section>",
        kpi(
            "name",
            "Name",
            x.name.as_deref().unwrap_or("–"),
            x.name.as_deref().unwrap_or(""),
            "–",
            "",
            false
        ),
        kpi(
            "orders",
            "Orders",
            &html::count(x.order_count),
            &x.order_count.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "net_revenue",
            "Net revenue",
            &html::money(net),
            &net.to_string(),
            "–",
            "",
            false
        ),
    );
    let rows: Vec<Vec<Cell>> = x
        .identifiers
        .iter()
        .map(|i| {
            vec![
                t(&i.kind),
                t(&i.value),
                t(if i.shared {
                    "shared: no longer joins records"
                } else {
                    ""
                }),
                t(format!("{} {}", i.first_channel, i.first_record_id)),
            ]
        })
        .collect();
    b.push_str("<div class=\"cols\">");
    b.push_str(&table(
        "identifiers",
        "Identifiers",
        &["kind", "value", "note", "first seen"],
        &rows,
    ));
    let rows: Vec<Vec<Cell>> = x
        .channels
        .iter()
        .map(|c| {
            vec![
                t(&c.channel),
                n(c.orders.max(0) as u64),
                m(c.net_revenue),
                t(when(&tz, c.first_order_at)),
                t(when(&tz, c.last_order_at)),
            ]
        })
        .collect();
    b.push_str(&table(
        "member-channels",
        "Channels",
        &[
            "channel",
            "orders",
            "net revenue",
            "first order",
            "last order",
        ],
        &rows,
    ));
    b.push_str("</div>");
    // Coupons and referral (member 360).
    let coupons = store.member_coupons(x.id.get()).await.map_err(err)?;
    let referral = store.referral_view(x.id.get()).await.map_err(err)?;
    let rows: Vec<Vec<Cell>> = coupons
        .iter()
        .map(|c| {
            vec![
                t(&c.code),
                t(format!("definition {}", c.definition_id)),
                t(&c.state),
                t(when(&tz, c.issued_at)),
            ]
        })
        .collect();
    b.push_str("<div class=\"cols\">");
    b.push_str(&table(
        "member-coupons",
        "Coupons",
        &["code", "definition", "state", "issued"],
        &rows,
    ));
    let mut rows: Vec<Vec<Cell>> = vec![vec![
        t("invite code"),
        t(referral.code.clone().unwrap_or_else(|| "none yet".into())),
        t(referral.link.clone().unwrap_or_default()),
    ]];
    if let Some(a) = &referral.referred_by {
        rows.push(vec![
            t("referred by"),
            t(format!("M-{}", a.advocate_id)),
            t(format!(
                "{}{}",
                a.state,
                a.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
        ]);
    }
    for a in &referral.friends {
        rows.push(vec![
            t("friend"),
            t(format!("M-{}", a.friend_id)),
            t(format!(
                "{}{}",
                a.state,
                a.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
        ]);
    }
    b.push_str(&table(
        "member-referral",
        "Referral",
        &["what", "member / code", "state"],
        &rows,
    ));
    b.push_str("</div>");
    // Timeline: orders and tracking events, newest first.
    let mut timeline: Vec<(i64, Vec<Cell>)> = Vec::new();
    for o in &x.orders {
        timeline.push((
            o.ordered_at,
            vec![
                t(when(&tz, o.ordered_at)),
                t("order"),
                t(format!(
                    "{} {} ({}, {} lines)",
                    o.channel, o.order_id, o.status, o.lines
                )),
                m(o.gross_amount - o.refunded_amount),
            ],
        ));
    }
    for e in &events.items {
        timeline.push((
            e.occurred_at,
            vec![
                t(when(&tz, e.occurred_at)),
                t(format!("event: {}", e.kind)),
                t(format!(
                    "{} from {}",
                    e.name.clone().unwrap_or_default(),
                    e.source
                )),
                t(""),
            ],
        ));
    }
    timeline.sort_by_key(|x| std::cmp::Reverse(x.0));
    let rows: Vec<Vec<Cell>> = timeline.into_iter().map(|(_, r)| r).collect();
    b.push_str(&table(
        "timeline",
        &format!(
            "Timeline: {} orders (latest 100) and the latest tracking events",
            html::count(x.order_count)
        ),
        &["when", "what", "detail", "net amount"],
        &rows,
    ));
    // Merge history in words.
    b.push_str("<h2>Identity history</h2>");
    if !x.merged_ids.is_empty() {
        let ids: Vec<String> = x.merged_ids.iter().map(|i| i.to_string()).collect();
        let _ = write!(
            b,
            "<p>Members merged into this one: {}.</p>",
            esc(&ids.join(", "))
        );
    }
    let rows: Vec<Vec<Cell>> = x
        .history
        .iter()
        .map(|h| {
            let mut words = h.detail.clone();
            if let Some(u) = &h.undone_by {
                words.push_str(&format!(" (undone on {}: {})", when(&tz, u.at), u.detail));
            }
            vec![t(when(&tz, h.at)), t(&h.kind), t(words)]
        })
        .collect();
    b.push_str(&table(
        "history",
        "How this member was put together",
        &["when", "kind", "in words"],
        &rows,
    ));
    if !predictions.is_empty() {
        let rows: Vec<Vec<Cell>> = predictions
            .iter()
            .map(|x| {
                vec![
                    t(&x.model),
                    f(x.p_alive, 3),
                    f(x.expected_purchases, 2),
                    x.clv.map(mu).unwrap_or_else(|| t("")),
                ]
            })
            .collect();
        b.push_str(&table(
            "predictions",
            "CLV predictions",
            &["model", "P(alive)", "expected purchases", "CLV"],
            &rows,
        ));
    }
    Ok(render("Members", &user, "", &b))
}

// ---------------------------------------------------------------- Acquisition

pub(crate) async fn acquisition(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Filters>,
) -> PageResult {
    let user = session::user(&state, &headers, "/acquisition").await?;
    let sc = scope(&state, &user, &q).await?;
    // The report covers the period and the channel; it has no brand (spend
    // is bought per channel and campaign).
    let mut params = vec![("from", sc.from.to_string()), ("to", sc.to.to_string())];
    if !sc.channel.is_empty() {
        params.push(("channel", sc.channel.clone()));
    }
    let (r, api) = report(&state, &user, "acquisition", &params).await?;
    let Report::Acquisition(r) = r else {
        return Err(server_error(
            "the acquisition report has another kind",
            &user,
        ));
    };
    let mut b = String::from("<h1>Acquisition</h1>");
    b.push_str(&sc.bar("/acquisition", ""));
    if !sc.brand.is_empty() {
        b.push_str("<p class=\"hint\">The brand filter does not apply here: spend is bought per channel and campaign.</p>");
    }
    b.push_str(&api_ref("acquisition", &api));
    let tot = &r.total;
    let opt_money = |v: Option<i64>| v.map(html::money).unwrap_or_else(|| "–".into());
    let opt_raw = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    let _ = write!(
        b,
        "<section class=\"kpis\">{}{}{}{}{}{}</section>",
        kpi(
            "spend",
            "Spend",
            &html::money(tot.spend),
            &tot.spend.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "new_valid_members",
            "New valid members",
            &html::count(tot.new_valid_members),
            &tot.new_valid_members.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "new_paying_customers",
            "New paying customers",
            &html::count(tot.new_paying_customers),
            &tot.new_paying_customers.to_string(),
            "–",
            "",
            false
        ),
        kpi(
            "cost_per_valid_member",
            "Cost per valid member",
            &opt_money(tot.cost_per_valid_member),
            &opt_raw(tot.cost_per_valid_member),
            "–",
            "",
            false
        ),
        kpi(
            "cost_per_paying_customer",
            "Cost per paying customer",
            &opt_money(tot.cost_per_paying_customer),
            &opt_raw(tot.cost_per_paying_customer),
            "–",
            "",
            false
        ),
        kpi(
            "clv_over_cost",
            "12-month CLV over cost",
            &tot.clv_over_cost
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "–".into()),
            &tot.clv_over_cost.map(|x| x.to_string()).unwrap_or_default(),
            "–",
            "",
            tot.clv_over_cost.is_some_and(|x| x < 1.0)
        ),
    );
    let _ = write!(
        b,
        "<p class=\"hint\">A valid member has a phone, e-mail or member number; a paying customer's first paid order is not cancelled or fully refunded. Members are attributed by first touch (docs/acquisition.md). CLV: {}.</p>",
        esc(&r.clv_note)
    );
    // Cost per paying customer per month, one column per channel.
    let mut channels: Vec<&str> = r.channels.iter().map(|x| x.channel.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut months: Vec<&str> = r.channels.iter().map(|x| x.month.as_str()).collect();
    months.sort_unstable();
    months.dedup();
    let cell = |month: &str, channel: &str| {
        r.channels
            .iter()
            .find(|x| x.month == month && x.channel == channel)
            .map(|x| &x.figures)
    };
    let mut head: Vec<&str> = vec!["month"];
    head.extend(channels.iter().copied());
    let pivot = |pick: &dyn Fn(
        &touchpoint_store::acquisition::AcquisitionFigures,
    ) -> Option<i64>|
     -> Vec<Vec<Cell>> {
        months
            .iter()
            .map(|mo| {
                let mut row = vec![t(*mo)];
                for c in &channels {
                    row.push(html::om(cell(mo, c).and_then(pick)));
                }
                row
            })
            .collect()
    };
    let series: Vec<usize> = (1..=channels.len()).collect();
    b.push_str(&html::chart_money(
        "cost-per-paying",
        0,
        &series,
        "Cost per paying customer per month, by channel",
    ));
    b.push_str(&table(
        "cost-per-paying",
        "Cost per paying customer per month and channel",
        &head,
        &pivot(&|f| f.cost_per_paying_customer),
    ));
    b.push_str(&chart(
        "spend-monthly",
        "stacked",
        0,
        &series,
        "Spend per month, stacked by channel",
    ));
    b.push_str(&table(
        "spend-monthly",
        "Spend per month and channel",
        &head,
        &pivot(&|f| Some(f.spend)),
    ));
    let figures = |f: &touchpoint_store::acquisition::AcquisitionFigures| {
        vec![
            m(f.spend),
            n(f.impressions.max(0) as u64),
            n(f.clicks.max(0) as u64),
            n(f.conversions.max(0) as u64),
            n(f.new_valid_members.max(0) as u64),
            n(f.new_paying_customers.max(0) as u64),
            html::om(f.cost_per_valid_member),
            html::om(f.cost_per_paying_customer),
            html::om(f.clv_per_paying_customer),
            f.clv_over_cost
                .map(|x| html::f(x, 2))
                .unwrap_or_else(html::none),
        ]
    };
    const FIGS: [&str; 10] = [
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "new valid members",
        "new paying customers",
        "cost per valid member",
        "cost per paying customer",
        "CLV per paying customer",
        "CLV over cost",
    ];
    let mut head = vec!["channel", "month"];
    head.extend(FIGS);
    let rows: Vec<Vec<Cell>> = r
        .channels
        .iter()
        .map(|x| {
            let mut row = vec![t(&x.channel), t(&x.month)];
            row.extend(figures(&x.figures));
            row
        })
        .collect();
    b.push_str(&table("channels", "Per channel and month", &head, &rows));
    let mut head = vec!["channel", "campaign", "month"];
    head.extend(FIGS);
    let rows: Vec<Vec<Cell>> = r
        .rows
        .iter()
        .map(|x| {
            let campaign = x.campaign.clone().unwrap_or_default();
            let mut row = vec![
                t(&x.channel),
                if campaign.is_empty() {
                    Cell {
                        text: "<span class=\"hint\">(none)</span>".into(),
                        raw: String::new(),
                        class: "",
                    }
                } else {
                    t(campaign)
                },
                t(&x.month),
            ];
            row.extend(figures(&x.figures));
            row
        })
        .collect();
    b.push_str(&table(
        "campaigns",
        "Per channel, campaign and month",
        &head,
        &rows,
    ));
    Ok(render("Acquisition", &user, &sc.qs(), &b))
}
