//! Prometheus metrics in the text exposition format, written by hand (no
//! client library): request counts and latencies per route, events accepted,
//! deduplicated and rejected, and import and store timings.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram with fixed buckets.
#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    timings: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Events stored.
    pub events_accepted: AtomicU64,
    /// Events already stored (client retries).
    pub events_deduplicated: AtomicU64,
    /// Events refused and kept in the rejected table.
    pub events_rejected: AtomicU64,
    /// Ingest requests refused with 429.
    pub ingest_shed: AtomicU64,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Count a request and its latency.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        {
            let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *m.entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        let mut m = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((method.to_string(), route.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Record how long an operation took: `store_event_write`, `identity_write`,
    /// `order_write`, `import`.
    pub fn time(&self, op: &'static str, took: Duration) {
        let mut m = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(op).or_default().observe(took.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP touchpoint_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE touchpoint_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "touchpoint_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP touchpoint_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE touchpoint_http_request_duration_seconds histogram\n");
        for ((method, route), h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            h.write(
                &mut out,
                "touchpoint_http_request_duration_seconds",
                &labels,
            );
        }
        for (name, help, v) in [
            (
                "touchpoint_events_accepted_total",
                "Tracking events stored.",
                &self.events_accepted,
            ),
            (
                "touchpoint_events_deduplicated_total",
                "Tracking events already stored (same source and messageId).",
                &self.events_deduplicated,
            ),
            (
                "touchpoint_events_rejected_total",
                "Tracking events refused and kept in the rejected table.",
                &self.events_rejected,
            ),
            (
                "touchpoint_ingest_shed_total",
                "Ingest requests refused with 429 because too many were in flight.",
                &self.ingest_shed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP touchpoint_operation_duration_seconds Store and import operations: store_event_write, identity_write, order_write, import.\n");
        out.push_str("# TYPE touchpoint_operation_duration_seconds histogram\n");
        for (op, h) in self
            .timings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h.write(
                &mut out,
                "touchpoint_operation_duration_seconds",
                &format!("op=\"{op}\""),
            );
        }
        out
    }
}
