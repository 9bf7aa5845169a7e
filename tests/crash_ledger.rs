//! Ledger-level crash consistency: a workload of ingests, events, a
//! snapshot and a training run on the in-memory twin, then a reopen from
//! that snapshot, bulk objections of subjects without records and a second
//! snapshot (the path of issue 20, finding 11), cut at every I/O operation;
//! every crash image must reopen, keep every acknowledged call, give the
//! same exclusions as a fault-free run at the same seq, and verify clean
//! (its snapshot byte-identical to a replay).

use std::path::Path;

use optout::storage::{Fault, MemIo};
use optout::{jsonl, Ledger, LedgerOptions, Manifest, Query, Seq, SubjectKeyer, Timestamp};

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([3; 32])
}

fn opts() -> LedgerOptions {
    LedgerOptions {
        segment_size: 1500,
        ledger_id: Some(*b"crash-ledger-id!"),
        ..Default::default()
    }
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Runs the workload until the first error; returns the head after each
/// acknowledged call.
fn workload(io: MemIo) -> Vec<Seq> {
    let mut acked = Vec::new();
    let Ok(mut l) = Ledger::create_with(io.clone(), Path::new("/ledger"), keyer(), opts()) else {
        return acked;
    };
    acked.push(l.index().seq());
    for i in 0..6u32 {
        let recs: String = (0..5)
            .map(|r| {
                format!(
                    r#"{{"dataset":"d","shard":"p{}","row":{},"subjects":["s{}@x.org","s{}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}}"#,
                    i % 2,
                    i * 5 + r,
                    r,
                    (r + i) % 7
                ) + "\n"
            })
            .collect();
        let b = jsonl::parse_records(recs.as_bytes(), "r", &keyer()).unwrap();
        match l.ingest(b) {
            Ok(s) => acked.push(s.seq),
            Err(_) => return acked,
        }
        let ev = format!(
            "{{\"type\":\"consent\",\"subject\":\"s{i}@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"*\"],\"method\":\"double_opt_in\",\"confirmed\":true}}\n\
             {{\"type\":\"objection\",\"subject\":\"s{}@x.org\",\"at\":\"2025-01-02T00:00:00Z\",\"purposes\":[\"ai-training\"]}}",
            (i + 3) % 7
        );
        let e = jsonl::parse_events(ev.as_bytes(), "e", &keyer()).unwrap();
        match l.apply(e) {
            Ok(s) => acked.push(s),
            Err(_) => return acked,
        }
        if i == 2 && l.snapshot().is_err() {
            return acked;
        }
        if i == 4 {
            let q = query(l.index().seq());
            let Ok(m) = l.manifest(&q) else { return acked };
            match l.register_run("run", "model", &m, t("2025-02-01T00:00:00Z")) {
                Ok(s) => acked.push(s),
                Err(_) => return acked,
            }
        }
    }
    // Reopen (from the snapshot), objections of people without records,
    // snapshot again, more of them.
    if l.snapshot().is_err() {
        return acked;
    }
    drop(l);
    let Ok(mut l) = Ledger::open_with(io, Path::new("/ledger"), Some(keyer()), opts()) else {
        return acked;
    };
    for round in 0..2 {
        let ev: String = (0..4)
            .map(|k| {
                format!(
                    "{{\"type\":\"objection\",\"subject\":\"dsr{round}-{k}@y.org\",\"at\":\"2025-01-03T00:00:00Z\",\"purposes\":[\"ai-training\"]}}\n"
                )
            })
            .collect();
        let e = jsonl::parse_events(ev.as_bytes(), "e", &keyer()).unwrap();
        match l.apply(e) {
            Ok(s) => acked.push(s),
            Err(_) => return acked,
        }
        if round == 0 && l.snapshot().is_err() {
            return acked;
        }
    }
    acked
}

fn query(seq: Seq) -> Query {
    Query {
        policy: optout::Policy::default_for(optout::Purpose::new("ai-training").unwrap()),
        seq,
        at: t("2025-03-01T00:00:00Z"),
        datasets: vec![],
    }
}

fn exclusions(l: &Ledger<MemIo>, seq: Seq) -> Vec<(String, String, Vec<u32>)> {
    let m: Manifest = l.manifest(&query(seq)).unwrap();
    m.shards
        .iter()
        .map(|s| {
            (
                s.dataset.clone(),
                s.shard.clone(),
                s.excluded.iter().collect(),
            )
        })
        .collect()
}

#[test]
fn every_crash_image_keeps_acknowledged_calls() {
    let clean = MemIo::new();
    let all = workload(clean.clone());
    assert_eq!(
        all.len(),
        1 + 6 * 2 + 1 + 2,
        "fault-free run acknowledges every call"
    );
    let v = optout::verify_ledger_with(&clean, Path::new("/ledger"), Some(&keyer()), None).unwrap();
    assert!(
        v.is_clean() && v.snapshot_checked.is_some(),
        "fault-free run verifies: {v:?}"
    );
    let total_ops = clean.op_count();
    let reference =
        Ledger::open_with(clean.fork(), Path::new("/ledger"), Some(keyer()), opts()).unwrap();
    let (mut images, mut reopened) = (0, 0);
    for k in 0..total_ops {
        let io = MemIo::new();
        io.set_fault(Some(Fault::From(k)));
        let acked = workload(io.clone());
        for img in io.crash_images(k, 4) {
            images += 1;
            let l =
                match Ledger::open_with(img.clone(), Path::new("/ledger"), Some(keyer()), opts()) {
                    Ok(l) => l,
                    Err(e) => {
                        assert!(
                            acked.is_empty(),
                            "op {k}: ledger with acknowledged calls failed to open: {e}"
                        );
                        continue;
                    }
                };
            reopened += 1;
            let head = l.index().seq();
            if let Some(&last) = acked.last() {
                assert!(
                    head >= last,
                    "op {k}: head {head} lost acknowledged seq {last}"
                );
            }
            // Whatever survived is a prefix of the fault-free history.
            assert!(head <= *all.last().unwrap());
            assert_eq!(
                l.chain_at(head).unwrap(),
                reference
                    .chain_at(head)
                    .unwrap_or_else(|_| l.chain_at(head).unwrap()),
                "op {k}: chain differs"
            );
            assert_eq!(
                exclusions(&l, head),
                exclusions(&reference, head),
                "op {k}: exclusions at {head}"
            );
            drop(l);
            let v = optout::verify_ledger_with(&img, Path::new("/ledger"), Some(&keyer()), None)
                .unwrap();
            assert!(
                v.problems.is_empty() && v.storage.first_damage().is_none(),
                "op {k}: verify after recovery: {v:?}"
            );
        }
    }
    eprintln!("{total_ops} cut points, {images} crash images, {reopened} reopened");
    assert!(
        images > 100 && reopened > 50,
        "images {images}, reopened {reopened}"
    );
}
