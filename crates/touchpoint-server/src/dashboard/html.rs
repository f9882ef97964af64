//! HTML helpers: escaping, the page layout, number formats, tables (each
//! with a CSV download) and chart placeholders (drawn by `app.js` from the
//! numbers of the table next to them).

use std::fmt::Write;

use super::session::DashUser;

/// Escape text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Percent-encode a query-string component.
pub(crate) fn url_component(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// A query string from pairs (empty values left out).
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_component(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

const PAGES: [(&str, &str); 6] = [
    ("/overview", "Overview"),
    ("/customers", "Customers"),
    ("/value", "Value"),
    ("/products", "Products"),
    ("/members", "Members"),
    ("/acquisition", "Acquisition"),
];

/// The whole page: head, navigation (with the filters' query string kept),
/// the sign-out form, `body`.
pub(crate) fn layout(title: &str, user: Option<&DashUser>, filters_qs: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 2048);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Touchpoint</title>\
         <link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/assets/uPlot.min.css\">\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script src=\"/assets/uPlot.iife.min.js\" defer></script>\
         <script src=\"/assets/app.js\" defer></script></head><body>",
        esc(title)
    );
    s.push_str("<header><a class=\"brand\" href=\"/overview\">Touchpoint</a>");
    if let Some(u) = user {
        s.push_str("<nav>");
        for (path, name) in PAGES {
            let current = if title == name {
                " aria-current=\"page\""
            } else {
                ""
            };
            let qs = if path == "/members" { "" } else { filters_qs };
            let _ = write!(s, "<a href=\"{path}{}\"{current}>{name}</a>", esc(qs));
        }
        s.push_str("</nav>");
        let _ = write!(
            s,
            "<form class=\"signout\" method=\"post\" action=\"/signout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <span class=\"who\">{} ({})</span><button type=\"submit\">Sign out</button></form>",
            esc(&u.csrf),
            esc(u.key.name.as_deref().unwrap_or(&u.key.key_id)),
            u.key.role.as_str()
        );
    }
    s.push_str("</header><main>");
    s.push_str(body);
    s.push_str("</main></body></html>");
    s
}

/// `1,234,567`.
pub(crate) fn count(n: i64) -> String {
    let neg = n < 0;
    let digits = n.unsigned_abs().to_string();
    let mut o = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    if neg {
        format!("-{o}")
    } else {
        o
    }
}

/// Minor units as `1,234.56`.
pub(crate) fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02}", count((a / 100) as i64), a % 100)
}

/// Currency units (a float) as `1,234.56`.
pub(crate) fn money_units(units: f64) -> String {
    money((units * 100.0).round() as i64)
}

/// `12.3%`.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// A relative change: `+12.3%`, or `–` without a previous value.
pub(crate) fn change(x: Option<f64>) -> String {
    match x {
        Some(v) => format!("{:+.1}%", v * 100.0),
        None => "–".into(),
    }
}

/// A table cell: shown text and the raw value (what the CSV download and the
/// browser tests read).
pub(crate) struct Cell {
    pub text: String,
    pub raw: String,
    pub class: &'static str,
}

/// Text.
pub(crate) fn t(s: impl Into<String>) -> Cell {
    let s = s.into();
    Cell {
        raw: s.clone(),
        text: esc(&s),
        class: "",
    }
}

/// A count.
pub(crate) fn n(v: u64) -> Cell {
    Cell {
        text: count(v as i64),
        raw: v.to_string(),
        class: "num",
    }
}

/// Money in minor units.
pub(crate) fn m(v: i64) -> Cell {
    Cell {
        text: money(v),
        raw: v.to_string(),
        class: "num",
    }
}

/// Money in currency units.
pub(crate) fn mu(v: f64) -> Cell {
    Cell {
        text: money_units(v),
        raw: format!("{v:.2}"),
        class: "num",
    }
}

/// A share.
pub(crate) fn p(v: f64) -> Cell {
    Cell {
        text: pct(v),
        raw: format!("{v}"),
        class: "num",
    }
}

/// A number with `d` decimals.
pub(crate) fn f(v: f64, d: usize) -> Cell {
    Cell {
        text: format!("{v:.d$}"),
        raw: format!("{v}"),
        class: "num",
    }
}

/// Money in minor units, or `–` (an empty raw value) when there is none.
pub(crate) fn om(v: Option<i64>) -> Cell {
    v.map(m).unwrap_or_else(none)
}

/// No value: `–`, an empty raw value.
pub(crate) fn none() -> Cell {
    Cell {
        text: "–".into(),
        raw: String::new(),
        class: "num",
    }
}

/// A link (HTML-escaped text and href).
pub(crate) fn link(text: &str, href: &str) -> Cell {
    Cell {
        text: format!("<a href=\"{}\">{}</a>", esc(href), esc(text)),
        raw: text.to_string(),
        class: "",
    }
}

/// A flag cell: `below target` in red, or `ok`.
pub(crate) fn flag(flagged: bool) -> Cell {
    Cell {
        text: if flagged {
            "<span class=\"flag\">below threshold</span>".into()
        } else {
            "ok".into()
        },
        raw: if flagged { "below threshold" } else { "ok" }.into(),
        class: "",
    }
}

/// A table with a caption and a CSV download (`id` names the file).
pub(crate) fn table(id: &str, caption: &str, head: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"table\"><figcaption>{}<button type=\"button\" class=\"csv\" data-table=\"{id}\">Download CSV</button></figcaption>\
         <div class=\"scroll\"><table id=\"{id}\"><thead><tr>",
        esc(caption)
    );
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let class = if c.class.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", c.class)
            };
            let _ = write!(s, "<td data-v=\"{}\"{class}>{}</td>", esc(&c.raw), c.text);
        }
        s.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            s,
            "<tr><td colspan=\"{}\" class=\"empty\">No data in this scope.</td></tr>",
            head.len().max(1)
        );
    }
    s.push_str("</tbody></table></div></figure>");
    s
}

/// A chart drawn from table `table_id`: column `x` is the x axis, the
/// columns `series` its series; `kind` is `stacked`, `line` or `bars`.
pub(crate) fn chart(table_id: &str, kind: &str, x: usize, series: &[usize], title: &str) -> String {
    let cols: Vec<String> = series.iter().map(|c| c.to_string()).collect();
    format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><div class=\"plot\" data-table=\"{table_id}\" data-kind=\"{kind}\" data-x=\"{x}\" data-series=\"{}\" role=\"img\" aria-label=\"{}\"></div></figure>",
        esc(title),
        cols.join(","),
        esc(title)
    )
}

/// A line chart of money columns (minor units in the table, drawn in
/// currency units), like [`chart`].
pub(crate) fn chart_money(table_id: &str, x: usize, series: &[usize], title: &str) -> String {
    chart(table_id, "line", x, series, title).replacen(
        "data-kind=\"line\"",
        "data-kind=\"line\" data-money=\"1\"",
        1,
    )
}

/// A headline number: value, previous, change. `key` and `raw` are what the
/// browser tests compare with the API.
pub(crate) fn kpi(
    key: &str,
    label: &str,
    value: &str,
    raw: &str,
    previous: &str,
    change: &str,
    bad: bool,
) -> String {
    // Without a previous value (`–`) and change, no change line.
    let change_line = if previous == "–" && change.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"change\">{} <span class=\"prev\">(previous {})</span></div>",
            esc(change),
            esc(previous)
        )
    };
    format!(
        "<div class=\"kpi{}\" data-kpi=\"{key}\" data-v=\"{}\"><div class=\"label\">{}</div><div class=\"value\">{}</div>{change_line}</div>",
        if bad { " bad" } else { "" },
        esc(raw),
        esc(label),
        esc(value),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(count(999), "999");
        assert_eq!(money(123456), "1,234.56");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_component("/members?q=a b"), "%2Fmembers%3Fq%3Da%20b");
        assert_eq!(
            query(&[("a", "1"), ("b", ""), ("c", "x y")]),
            "?a=1&c=x%20y"
        );
        assert_eq!(change(Some(0.1234)), "+12.3%");
        assert_eq!(change(None), "–");
    }
}
