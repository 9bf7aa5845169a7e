//! SIGKILL `optout serve` 20 times under load. Clients post single
//! objections, each with its own `Idempotency-Key` and `ref`; a request
//! that got no answer (the server died) is retried with the same key once
//! the server is back. After the last restart: every request that got a
//! 2xx is in the ledger exactly once, every retried one at most once (so
//! once, since it was retried until answered), and `verify` finds no
//! damage (only the torn tails recovery quarantined, never acknowledged).
#![cfg(all(feature = "cli", feature = "server"))]

mod serve_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serve_common::*;

const KILLS: usize = 20;
const CLIENTS: usize = 24;

#[test]
fn every_acknowledged_request_survives_sigkill_once() {
    let f = Fixture::new();
    let t = f.secret("events:write").to_string();
    let addr: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(None));
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let retried = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, t, acked, retried, stop) = (
                Arc::clone(&addr),
                t.clone(),
                Arc::clone(&acked),
                Arc::clone(&retried),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let auth = format!("Bearer {t}");
                let mut conn: Option<Conn> = None;
                let mut i = 0u64;
                // The request in flight: sent again, same key, until answered.
                let mut attempts = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = format!("c{c}-{i}");
                    let Some(a) = addr.read().unwrap().clone() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    if conn.is_none() {
                        conn = Conn::open(&a).ok();
                    }
                    let Some(cn) = conn.as_mut() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let body = objection(&format!("u{c}-{i}@example.com"), &r);
                    let h = [
                        ("Authorization", auth.as_str()),
                        ("Idempotency-Key", r.as_str()),
                    ];
                    match cn.send("POST", "/v1/events", &h, body.as_bytes()) {
                        Ok(resp) if resp.status == 200 => {
                            let seq = resp.json()["first_seq"].as_u64().unwrap();
                            acked.lock().unwrap().insert(r, seq);
                            if attempts > 0 {
                                retried.fetch_add(1, Ordering::Relaxed);
                            }
                            attempts = 0;
                            i += 1;
                        }
                        Ok(resp) => panic!(
                            "unexpected answer {}: {}",
                            resp.status,
                            String::from_utf8_lossy(&resp.body)
                        ),
                        Err(_) => {
                            conn = None;
                            attempts += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for k in 0..=KILLS {
        let s = f.start(&[]);
        *addr.write().unwrap() = Some(s.addr.clone());
        if k == KILLS {
            // Let the clients finish their retries on a live server.
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::Relaxed);
            *addr.write().unwrap() = None;
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 250));
        *addr.write().unwrap() = None;
        s.kill();
    }
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = t0.elapsed();
    let acked = acked.lock().unwrap().clone();
    // Judge the log itself: a copy without the snapshots (a cache; the
    // server writes one at open after a long replay, and issue 20's finding
    // 11, a snapshot that differs from a replay after this very sequence of
    // opens and bulk objections, is not this test's subject).
    let log_only = f.path("log-only");
    copy_dir(&f.ledger, &log_only);
    std::fs::remove_dir_all(log_only.join("snap")).unwrap();
    std::fs::create_dir(log_only.join("snap")).unwrap();
    let mut count: HashMap<String, Vec<u64>> = HashMap::new();
    for (seq, _, r) in events_of(&log_only) {
        if let Some(r) = r {
            count.entry(r).or_default().push(seq);
        }
    }
    let lost: Vec<&String> = acked.keys().filter(|r| !count.contains_key(*r)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged, then lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice: Vec<(&String, &Vec<u64>)> = count.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{} recorded twice although retried with their key: {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    for (r, seq) in &acked {
        assert_eq!(
            count[r],
            vec![*seq],
            "{r}: answered seq {seq}, recorded at {:?}",
            count[r]
        );
    }
    // `verify` exits 1 while recovery's quarantine holds a torn tail a kill
    // left (never acknowledged; issue 20 adds a way to acknowledge it): the
    // only findings allowed are those, never damage.
    let o = std::process::Command::new(BIN)
        .args(["verify", log_only.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|x| x["kind"] == "quarantined"),
        "verify found damage: {v}"
    );
    assert_eq!(v["ok"], findings.is_empty(), "{v}");
    let retried = retried.load(Ordering::Relaxed);
    eprintln!(
        "{KILLS} SIGKILLs in {:.1} s: {} requests acknowledged, {retried} of them after a retry across a kill, {} entries in the ledger",
        elapsed.as_secs_f64(),
        acked.len(),
        count.len()
    );
    assert!(acked.len() > 200, "too little load: {}", acked.len());
    assert!(
        retried > 0,
        "no request was retried across a kill: the test proved nothing"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
