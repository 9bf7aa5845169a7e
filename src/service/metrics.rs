//! `GET /metrics`: counters and histograms in the Prometheus text
//! exposition format (version 0.0.4). No labels carry a subject id or a
//! request body; the route label is the route's pattern, never the path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets, seconds.
const SECONDS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Requests per commit group.
const GROUP: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

#[derive(Debug)]
struct State {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    groups: u64,
    group_size: Histogram,
    commit: Histogram,
    journal_fsync: Histogram,
    read_wait: Histogram,
    recorded: u64,
    replays: u64,
    seq: u64,
    writer_failed: bool,
}

/// The service's metrics (one per server).
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            state: Mutex::new(State {
                requests: BTreeMap::new(),
                latency: BTreeMap::new(),
                groups: 0,
                group_size: Histogram::new(&GROUP),
                commit: Histogram::new(&SECONDS),
                journal_fsync: Histogram::new(&SECONDS),
                read_wait: Histogram::new(&SECONDS),
                recorded: 0,
                replays: 0,
                seq: 0,
                writer_failed: false,
            }),
        }
    }
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// One request answered.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, took: Duration) {
        self.with(|s| {
            *s.requests.entry((route, method, status)).or_default() += 1;
            s.latency
                .entry(route)
                .or_insert_with(|| Histogram::new(&SECONDS))
                .observe(took.as_secs_f64());
        });
    }

    /// One commit group appended: how many requests, how long the ledger
    /// append took (write + fsync), entries recorded, the head after it.
    pub fn group(&self, requests: usize, commit: Duration, recorded: u64, seq: u64) {
        self.with(|s| {
            s.groups += 1;
            s.group_size.observe(requests as f64);
            s.commit.observe(commit.as_secs_f64());
            s.recorded += recorded;
            s.seq = seq;
        });
    }

    /// One journal fsync (groups with an `Idempotency-Key`).
    pub fn journal_fsync(&self, took: Duration) {
        self.with(|s| s.journal_fsync.observe(took.as_secs_f64()));
    }

    /// A read waited this long for the ledger (behind a commit).
    pub fn read_wait(&self, took: Duration) {
        self.with(|s| s.read_wait.observe(took.as_secs_f64()));
    }

    /// An answer served from the journal for a repeated key.
    pub fn replay(&self) {
        self.with(|s| s.replays += 1);
    }

    /// The writer stopped after a storage failure.
    pub fn writer_failed(&self) {
        self.with(|s| s.writer_failed = true);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(s) = self.state.lock() else {
            return out;
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let _ = writeln!(
            out,
            "# HELP optout_http_requests_total Requests answered, by route pattern, method and status.\n# TYPE optout_http_requests_total counter"
        );
        for ((route, method, status), n) in &s.requests {
            let _ = writeln!(
                out,
                "optout_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP optout_http_request_duration_seconds Time from the request's arrival to its answer.\n# TYPE optout_http_request_duration_seconds histogram"
        );
        for (route, h) in &s.latency {
            h.render(
                &mut out,
                "optout_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        counter(
            &mut out,
            "optout_commit_groups_total",
            "Atomic groups appended to the ledger.",
            s.groups,
        );
        let hist = |out: &mut String, name: &str, help: &str, h: &Histogram| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            h.render(out, name, "");
        };
        hist(
            &mut out,
            "optout_commit_group_requests",
            "Write requests per commit group.",
            &s.group_size,
        );
        hist(
            &mut out,
            "optout_commit_seconds",
            "Appending one group to the ledger: write and fsync (and folding into the index).",
            &s.commit,
        );
        hist(
            &mut out,
            "optout_journal_fsync_seconds",
            "Appending and fsyncing the request journal before a group with an Idempotency-Key.",
            &s.journal_fsync,
        );
        hist(
            &mut out,
            "optout_read_wait_seconds",
            "Time a read waited for the ledger while a group was being committed.",
            &s.read_wait,
        );
        counter(
            &mut out,
            "optout_entries_recorded_total",
            "Ledger entries appended by this server.",
            s.recorded,
        );
        counter(
            &mut out,
            "optout_idempotent_replays_total",
            "Answers repeated for a request retried with its Idempotency-Key.",
            s.replays,
        );
        gauge(
            &mut out,
            "optout_ledger_seq",
            "The ledger's head after the last commit.",
            s.seq,
        );
        gauge(
            &mut out,
            "optout_writer_failed",
            "1 once a storage failure stopped the writer (restart the server).",
            u64::from(s.writer_failed),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/v1/events", "POST", 200, Duration::from_millis(3));
        m.request("/v1/events", "POST", 200, Duration::from_millis(30));
        m.group(2, Duration::from_micros(200), 2, 9);
        let t = m.render();
        assert!(t.contains(
            "optout_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(t.contains(
            "optout_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.005\"} 1"
        ));
        assert!(t.contains(
            "optout_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.05\"} 2"
        ));
        assert!(t.contains("optout_commit_groups_total 1"));
        assert!(t.contains("optout_commit_group_requests_bucket{le=\"2\"} 1"));
        assert!(t.contains("optout_ledger_seq 9"));
        // Every sample line is `name{labels} value` or `name value`.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
