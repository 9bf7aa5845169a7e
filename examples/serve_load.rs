//! Load on a running `optout serve`: N clients, each on its own keep-alive
//! connection, posting single objections (distinct subjects) for D seconds.
//! Prints one JSON line: requests, durable events/s, latency p50/p90/p99/max.
//!
//!   cargo run --release --features cli,server --example serve_load -- ADDR TOKEN [CLIENTS] [SECONDS] [--keys]
//!
//! `--keys` sends an `Idempotency-Key` with every request (a journal fsync
//! per group besides the ledger's). Run by `scripts/bench_serve.sh`.

#[path = "../tests/serve_common/http.rs"]
mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keys = args.iter().any(|a| a == "--keys");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (addr, token) = (pos[0].clone(), pos[1].clone());
    let clients: usize = pos.get(2).map_or(64, |s| s.parse().unwrap());
    let secs: f64 = pos.get(3).map_or(30.0, |s| s.parse().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let run = format!("{:x}", std::process::id());
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, token, stop, run) = (addr.clone(), token.clone(), Arc::clone(&stop), run.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {token}");
                let mut conn = http::Conn::open(&addr).expect("connect");
                let mut lat = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{run}-{c}-{i}");
                    let body = format!(
                        r#"{{"type":"objection","subject":"load-{run}-{c}-{i}@example.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}}"#
                    );
                    let mut h = vec![("Authorization", auth.as_str())];
                    if keys {
                        h.push(("Idempotency-Key", key.as_str()));
                    }
                    let t = Instant::now();
                    match conn.send("POST", "/v1/events", &h, body.as_bytes()) {
                        Ok(r) if r.status == 200 => lat.push(t.elapsed()),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            conn = http::Conn::open(&addr).expect("reconnect");
                        }
                    }
                    i += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        all.extend(l);
        errors += e;
    }
    let el = t0.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    // The server's own view: groups committed, entries, time in commits.
    let metrics = http::Conn::open(&addr)
        .and_then(|mut c| c.send("GET", "/metrics", &[], b""))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or("0")
            .to_string()
    };
    println!(
        "{{\"clients\":{clients},\"seconds\":{el:.2},\"keys\":{keys},\"acknowledged\":{},\"errors\":{errors},\"events_per_s\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"commit_groups\":{},\"entries\":{},\"commit_seconds\":{},\"journal_fsync_seconds\":{}}}",
        all.len(),
        all.len() as f64 / el,
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        metric("optout_commit_groups_total"),
        metric("optout_entries_recorded_total"),
        metric("optout_commit_seconds_sum"),
        metric("optout_journal_fsync_seconds_sum"),
    );
}
