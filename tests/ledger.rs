//! The ledger end to end on real files: create, ingest, apply, reopen,
//! snapshots, manifests reproducible at an old N, pinning, runs, affected.

use optout::lineage::{affected, Use};
use optout::{jsonl, Ledger, Manifest, Seq, SubjectKeyer, Timestamp};

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([9; 32])
}

fn records(n: u32, shard: &str) -> String {
    (0..n)
        .map(|r| {
            format!(
                r#"{{"dataset":"forum","shard":"{shard}","row":{r},"subjects":["u{}@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}"#,
                r % 7
            ) + "\n"
        })
        .collect()
}

fn ingest(l: &mut Ledger, text: &str) -> optout::IngestSummary {
    let b = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap();
    l.ingest(b).unwrap()
}

fn apply(l: &mut Ledger, text: &str) -> Seq {
    let e = jsonl::parse_events(text.as_bytes(), "e.jsonl", &keyer()).unwrap();
    l.apply(e).unwrap()
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

#[test]
fn reopen_replays_and_snapshots_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    let s = ingest(&mut l, &records(50, "p0"));
    assert_eq!((s.registered, s.links), (50, 50));
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u3@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#,
    );
    let q = l
        .query(None, "ai-training", t("2025-02-01T00:00:00Z"))
        .unwrap();
    let m1 = l.manifest(&q).unwrap().to_bytes();
    drop(l);

    let l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.manifest(&q).unwrap().to_bytes(), m1, "after replay");
    drop(l);

    let mut l = Ledger::open(&path, Some(keyer())).unwrap();
    l.snapshot().unwrap();
    drop(l);
    let l = Ledger::open_read_only(&path, None).unwrap();
    let m = l.manifest(&q).unwrap();
    assert_eq!(m.to_bytes(), m1, "after snapshot");
    assert_eq!(m.header.excluded, 7, "rows 3, 10, ..., 45");
}

#[test]
fn manifest_at_an_old_seq_is_byte_identical_after_more_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    ingest(&mut l, &records(30, "p0"));
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let q = l
        .query(None, "ai-training", t("2025-06-01T00:00:00Z"))
        .unwrap();
    let old = l.manifest(&q).unwrap().to_bytes();
    apply(
        &mut l,
        r#"{"type":"erasure","subject":"u2@x.org","at":"2025-01-02T00:00:00Z"}"#,
    );
    ingest(&mut l, &records(10, "p1"));
    l.snapshot().unwrap();
    drop(l);
    let l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.manifest(&q).unwrap().to_bytes(), old);
    let mut now = q.clone();
    now.seq = l.index().seq();
    assert_ne!(l.manifest(&now).unwrap().to_bytes(), old);
}

#[test]
fn reingest_is_idempotent_and_conflicts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    ingest(&mut l, &records(20, "p0"));
    let head = l.index().seq();
    let again = ingest(&mut l, &records(20, "p0"));
    assert_eq!((again.registered, again.unchanged), (0, 20));
    assert_eq!(l.index().seq(), head, "nothing written");
    let changed = records(20, "p0").replace(
        "\"row\":5,\"subjects\":[\"u5@x.org\"]",
        "\"row\":5,\"subjects\":[\"zed@x.org\"]",
    );
    let b = jsonl::parse_records(changed.as_bytes(), "r", &keyer()).unwrap();
    let err = l.ingest(b).unwrap_err().to_string();
    assert!(
        err.contains("forum/p0#5") && err.contains("replace"),
        "{err}"
    );
    assert_eq!(l.index().seq(), head, "nothing of the bad batch written");
    let replaced = changed.replace(
        "\"basis\":\"legitimate_interest\"}",
        "\"basis\":\"legitimate_interest\",\"replace\":true}",
    );
    let b = jsonl::parse_records(replaced.as_bytes(), "r", &keyer()).unwrap();
    let s = l.ingest(b).unwrap();
    assert_eq!(s.registered, 20);
}

#[test]
fn wrong_key_and_second_writer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let l = Ledger::create(&path, keyer()).unwrap();
    let err = Ledger::open(&path, Some(SubjectKeyer::from_secret([1; 32])))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lock") || err.contains("LOCK"),
        "second writer: {err}"
    );
    drop(l);
    let err = Ledger::open(&path, Some(SubjectKeyer::from_secret([1; 32])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the key"), "{err}");
    assert!(
        Ledger::create(&path, keyer()).is_err(),
        "create over an existing ledger"
    );
}

#[test]
fn manifest_from_a_forked_ledger_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let mut la = Ledger::create(&a, keyer()).unwrap();
    ingest(&mut la, &records(10, "p0"));
    let q = la
        .query(None, "ai-training", t("2025-01-01T00:00:00Z"))
        .unwrap();
    let m = la.manifest(&q).unwrap();
    la.verify_manifest(&m).unwrap();
    // A copy of the ledger that then diverges: same id, different history.
    let b = dir.path().join("b");
    std::fs::create_dir_all(b.join("log")).unwrap();
    for f in std::fs::read_dir(a.join("log")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), b.join("log").join(f.file_name())).unwrap();
    }
    std::fs::copy(a.join("HEAD"), b.join("HEAD")).unwrap();
    drop(la);
    let mut lb = Ledger::open(&b, Some(keyer())).unwrap();
    let m_b_old = lb.manifest(&q).unwrap();
    lb.verify_manifest(&m_b_old).unwrap();
    apply(
        &mut lb,
        r#"{"type":"erasure","subject":"u1@x.org","at":"2024-06-01T00:00:00Z"}"#,
    );
    let mut la = Ledger::open(&a, Some(keyer())).unwrap();
    apply(
        &mut la,
        r#"{"type":"erasure","subject":"u2@x.org","at":"2024-06-01T00:00:00Z"}"#,
    );
    let mut qa = q.clone();
    qa.seq = la.index().seq();
    let ma = la.manifest(&qa).unwrap();
    let err = lb.verify_manifest(&ma).unwrap_err().to_string();
    assert!(err.contains("rewritten"), "{err}");
    // A manifest pinning a seq past the head: rolled back.
    let mut far = ma.clone();
    far.header.seq.0 += 10;
    assert!(la
        .verify_manifest(&far)
        .unwrap_err()
        .to_string()
        .contains("rolled back"));
}

#[test]
fn late_objection_affects_runs_as_after_or_violation() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    ingest(&mut l, &records(14, "p0"));
    let q = l
        .query(None, "ai-training", t("2025-01-01T00:00:00Z"))
        .unwrap();
    let m1 = l.manifest(&q).unwrap();
    l.register_run("run-1", "model-a", &m1, t("2025-01-02T00:00:00Z"))
        .unwrap();
    // Alice (u4) objects after run 1.
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u4@x.org","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    // Run 2 trains on the *old* manifest although the objection was recorded: a violation.
    l.register_run("run-2", "model-b", &m1, t("2025-03-01T00:00:00Z"))
        .unwrap();
    // Run 3 uses a fresh manifest: honoured, so u4's records are not used.
    let mut q3 = q.clone();
    q3.seq = l.index().seq();
    q3.at = t("2025-03-01T00:00:00Z");
    let m3 = l.manifest(&q3).unwrap();
    assert_eq!(m3.header.excluded, 2);
    l.register_run("run-3", "model-c", &m3, t("2025-03-02T00:00:00Z"))
        .unwrap();
    assert!(
        l.register_run("run-3", "model-c", &m3, t("2025-03-02T00:00:00Z"))
            .is_err(),
        "duplicate run name"
    );

    let alice = l.pseudonym("u4@x.org").unwrap();
    let runs = affected(
        l.index(),
        &alice,
        l.index().seq(),
        t("2025-04-01T00:00:00Z"),
    );
    let by: Vec<(&str, Use, usize)> = runs
        .iter()
        .map(|r| (r.run.as_str(), r.status(), r.records.len()))
        .collect();
    assert_eq!(
        by,
        vec![("run-1", Use::After, 2), ("run-2", Use::Violation, 2)]
    );
    let json = serde_json::to_value(&runs[1]).unwrap();
    assert_eq!(
        json["status"], "violation",
        "the worst status is serialised"
    );
    // Bob never objected: his records were used by all three runs, cleanly.
    let bob = l.pseudonym("u5@x.org").unwrap();
    let runs = affected(l.index(), &bob, l.index().seq(), t("2025-04-01T00:00:00Z"));
    assert_eq!(
        runs.iter().map(|r| r.status()).collect::<Vec<_>>(),
        vec![Use::Used; 3]
    );
    // A manifest from another ledger cannot be registered.
    let other = tempfile::tempdir().unwrap();
    let mut lo = Ledger::create(&other.path().join("o"), keyer()).unwrap();
    ingest(&mut lo, &records(3, "p0"));
    let mo = lo
        .manifest(
            &lo.query(None, "ai-training", t("2025-01-01T00:00:00Z"))
                .unwrap(),
        )
        .unwrap();
    assert!(l
        .register_run("run-x", "m", &mo, t("2025-05-01T00:00:00Z"))
        .is_err());
    let _ = Manifest::from_bytes(&m3.to_bytes()).unwrap();
}

#[test]
fn subject_report_lists_records_events_runs_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    ingest(&mut l, &records(14, "p0"));
    let m = l
        .manifest(
            &l.query(None, "ai-training", t("2025-01-01T00:00:00Z"))
                .unwrap(),
        )
        .unwrap();
    l.register_run("run-1", "model-a", &m, t("2025-01-02T00:00:00Z"))
        .unwrap();
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u2@x.org","at":"2025-02-01T00:00:00Z","purposes":["ai-training"],"ref":"T-9"}"#,
    );
    let r = optout::report::subject_report(&l, "U2@x.org", t("2025-03-01T00:00:00Z")).unwrap();
    assert_eq!(
        r.records.iter().map(|x| x.row).collect::<Vec<_>>(),
        vec![2, 9]
    );
    assert_eq!(r.records[0].source, "forum.x.org");
    assert_eq!(r.records[0].collected_at, "2024-01-01T00:00:00Z");
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0]["ref"], "T-9");
    assert_eq!(r.runs.len(), 1);
    let ai = r
        .status
        .iter()
        .find(|s| s.purpose == "ai-training")
        .unwrap();
    assert!(ai.objection);
    assert_eq!(ai.records_excluded, 2);
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"schema_version\":1"));
}

/// G8: subject ids written through every path never reach the disk in raw,
/// hex or unkeyed-hash form.
#[test]
fn no_raw_subject_identifier_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let canary = "canary-7f3a9b@example.com";
    let admin = "admin-canary-55e1@example.com";
    let mut l = Ledger::create(&path, keyer()).unwrap();
    let rec = format!(
        r#"{{"dataset":"d","shard":"s","row":0,"subjects":["{canary}","Other@x.org"],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}}"#
    );
    ingest(&mut l, &rec);
    let mut events = String::new();
    for ty in ["objection", "objection_withdrawn", "consent_withdrawn"] {
        events += &format!(
            r#"{{"type":"{ty}","subject":"{canary}","at":"2025-01-01T00:00:00Z","purposes":["*"]}}"#
        );
        events += "\n";
    }
    events += &format!(
        r#"{{"type":"consent","subject":"{canary}","at":"2025-01-01T00:00:00Z","purposes":["*"],"method":"delegated","confirmed":true,"granted_by":"{admin}"}}"#
    );
    events += "\n";
    events += &format!(r#"{{"type":"erasure","subject":"{canary}","at":"2025-01-01T00:00:00Z"}}"#);
    events += "\n";
    events +=
        &format!(r#"{{"type":"restriction","subject":"{canary}","at":"2025-01-01T00:00:00Z"}}"#);
    apply(&mut l, &events);
    let m = l
        .manifest(
            &l.query(None, "ai-training", t("2025-02-01T00:00:00Z"))
                .unwrap(),
        )
        .unwrap();
    m.save(&dir.path().join("m.optm")).unwrap();
    l.register_run("r", "m", &m, t("2025-02-02T00:00:00Z"))
        .unwrap();
    l.snapshot().unwrap();
    drop(l);

    let mut forms: Vec<Vec<u8>> = Vec::new();
    for id in [canary, admin] {
        for s in [id.to_string(), id.to_uppercase()] {
            forms.push(s.as_bytes().to_vec());
            forms.push(
                s.bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes(),
            );
            let h = blake3::hash(s.as_bytes());
            forms.push(h.as_bytes()[..16].to_vec());
            forms.push(h.to_hex().as_bytes()[..32].to_vec());
        }
        forms.push(b"canary".to_vec());
    }
    let mut files = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for f in &forms {
                assert!(
                    !bytes.windows(f.len()).any(|w| w == f.as_slice()),
                    "{} contains a raw form {:?}",
                    p.display(),
                    String::from_utf8_lossy(f)
                );
            }
        }
    }
    assert!(files >= 4, "log segment, snapshot, manifest, lock: {files}");
}

/// The index of `path` folded from its log up to `seq` only, with a run
/// entry at `seq + 1` so that it claims to be at `seq + 1`: the state of a
/// ledger that lacks the entry at `seq + 1`.
fn forged_index(path: &std::path::Path, seq: u64) -> Vec<u8> {
    let log = optout::storage::Log::open(
        optout::storage::FsIo::new(),
        path,
        optout::storage::LogOptions::new().read_only(true),
    )
    .unwrap();
    let mut forged = optout::Index::new();
    for s in 1..=seq {
        let e: optout::Entry = optout::codec::decode(&log.read(Seq(s)).unwrap()).unwrap();
        forged.apply(Seq(s), &e).unwrap();
    }
    let purpose = optout::Purpose::new("ai-training").unwrap();
    let run = optout::TrainingRun {
        name: "x".into(),
        model: "x".into(),
        started_at: t("2025-01-01T00:00:00Z"),
        purpose: purpose.clone(),
        manifest_digest: String::new(),
        manifest_seq: Seq(0),
        manifest_at: t("2025-01-01T00:00:00Z"),
        datasets: vec![],
        policy: optout::Policy::default_for(purpose),
    };
    forged
        .apply(Seq(seq + 1), &optout::Entry::Run(run))
        .unwrap();
    forged.to_snapshot_bytes().unwrap()
}

/// Writes `payload` as the snapshot at `seq` of the ledger at `path`,
/// authenticated with `key`, pinned to the log's real chain at `seq`.
fn write_snapshot_with(path: &std::path::Path, seq: u64, payload: &[u8], key: [u8; 32]) {
    let mut log = optout::storage::Log::open(
        optout::storage::FsIo::new(),
        path,
        optout::storage::LogOptions::new()
            .create(false)
            .snapshot_key(optout::storage::SnapshotKey::from_bytes(key)),
    )
    .unwrap();
    let chain = log.chain_at(Seq(seq)).unwrap();
    log.write_snapshot(Seq(seq), chain, payload).unwrap();
}

/// Issue 20, finding 3: someone who can write the ledger directory (but
/// not read the subject key, kept outside it) replaces the newest snapshot
/// with the state of a ledger lacking the objection, sealed as well as they
/// can: with the old public digest key (format 1), or as format 2 under a
/// key of their own. No open trusts it: the objection stays in force, and
/// `verify` reports the file. A forger who does hold the key (it was
/// stolen) is caught by `verify`, which compares the snapshot with a replay.
#[test]
fn a_forged_snapshot_is_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    ingest(&mut l, &records(20, "p0"));
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#,
    );
    l.snapshot().unwrap();
    let q = l
        .query(None, "ai-training", t("2025-06-01T00:00:00Z"))
        .unwrap();
    let honest = l.manifest(&q).unwrap();
    assert!(honest.header.excluded > 0);
    drop(l);
    let v = optout::verify_ledger_with(&optout::storage::FsIo::new(), &path, Some(&keyer()), None)
        .unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!((v.entries, v.snapshot_checked), (3, Some(Seq(3))));

    let snap = path.join("snap").join(format!("{:020}.snap", 3));
    let forged = forged_index(&path, 2);
    // (a) Format 1, sealed with the key derived from the public ledger id.
    let real = std::fs::read(&snap).unwrap();
    let mut body = real[..80].to_vec();
    body[8..12].copy_from_slice(&1u32.to_le_bytes());
    body[72..80].copy_from_slice(&(forged.len() as u64).to_le_bytes());
    body.extend_from_slice(&forged);
    let id: [u8; 16] = real[16..32].try_into().unwrap();
    let k = blake3::derive_key("optout 2026-11 snapshot v1", &id);
    let digest = *blake3::keyed_hash(&k, &body).as_bytes();
    body.extend_from_slice(&digest);
    let v1 = body;
    // (b) Format 2 under the forger's own key.
    type Forge<'a> = Box<dyn Fn() + 'a>;
    let forgeries: Vec<(&str, Forge)> = vec![
        (
            "format 1, public key",
            Box::new(|| std::fs::write(&snap, &v1).unwrap()),
        ),
        (
            "format 2, wrong key",
            Box::new(|| write_snapshot_with(&path, 3, &forged, [9; 32])),
        ),
    ];
    for (what, forge) in forgeries {
        forge();
        for ro in [true, false] {
            let l = if ro {
                Ledger::open_read_only(&path, Some(keyer())).unwrap()
            } else {
                Ledger::open(&path, Some(keyer())).unwrap()
            };
            assert_eq!(
                l.manifest(&q).unwrap(),
                honest,
                "{what}: the forged state was used"
            );
            assert!(
                l.notes().iter().any(|n| n.contains("snapshot not used")),
                "{what}: {:?}",
                l.notes()
            );
        }
        // Without any key: never trusted either (nothing to authenticate with).
        let l = Ledger::open_read_only(&path, None).unwrap();
        assert_eq!(l.manifest(&q).unwrap(), honest, "{what}: keyless open");
        let v =
            optout::verify_ledger_with(&optout::storage::FsIo::new(), &path, Some(&keyer()), None)
                .unwrap();
        if what.starts_with("format 1") {
            // Harmless (no open uses it), and what every older ledger holds
            // after an upgrade: a note, not damage.
            assert!(
                v.storage.notes.iter().any(|n| n.what.contains("format 1")),
                "{what}: {v:?}"
            );
        } else {
            assert!(
                !v.is_clean(),
                "{what}: verify must report the forged snapshot"
            );
        }
    }
    // (c) The real key, stolen: the seal verifies, the replay does not match.
    let secret = [9u8; 32];
    assert_eq!(
        keyer().fingerprint(),
        SubjectKeyer::from_secret(secret).fingerprint()
    );
    let stolen = blake3::derive_key("optout 2026-11 snapshot mac v1", &secret);
    write_snapshot_with(&path, 3, &forged, stolen);
    let v = optout::verify_ledger_with(&optout::storage::FsIo::new(), &path, Some(&keyer()), None)
        .unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("differs from a replay")),
        "{:?}",
        v.problems
    );
}

#[test]
fn large_ingests_split_into_frames_and_replay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    let text: String = ["a", "b", "c"].iter().map(|s| records(40_000, s)).collect();
    let s = ingest(&mut l, &text);
    assert_eq!((s.registered, s.links), (120_000, 120_000));
    assert_eq!(l.index().seq(), Seq(1 + 3), "init + three 50k-row frames");
    drop(l);
    let mut l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.index().stats().records, 120_000);
    let again = ingest(&mut l, &text);
    assert_eq!((again.registered, again.unchanged), (0, 120_000));
    let u3 = l.pseudonym("u3@x.org").unwrap();
    let want = 3 * (0..40_000).filter(|r| r % 7 == 3).count();
    assert_eq!(l.index().subject_records(&u3, l.index().seq()).len(), want);
}

#[test]
fn a_doctored_resealed_manifest_cannot_be_registered() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    ingest(&mut l, &records(14, "p0"));
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#,
    );
    let m = l
        .manifest(
            &l.query(None, "ai-training", t("2025-02-01T00:00:00Z"))
                .unwrap(),
        )
        .unwrap();
    // Drop an excluded row from every bitmap and fix the counts: the seal
    // is recomputed on encoding, so the bytes decode fine...
    let mut bad = m.clone();
    let s = &mut bad.shards[0];
    let row = s.excluded.min().unwrap();
    s.excluded.remove(row);
    for r in s.reasons.iter_mut() {
        r.remove(row);
    }
    bad.header.excluded -= 1;
    bad.header.counts[0].1 -= 1;
    let bad = Manifest::from_bytes(&bad.to_bytes()).unwrap();
    // ...but the ledger recomputes it and refuses.
    let err = l
        .register_run("r", "m", &bad, t("2025-02-02T00:00:00Z"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("altered"), "{err}");
    l.register_run("r", "m", &m, t("2025-02-02T00:00:00Z"))
        .unwrap();
}

#[test]
fn an_in_batch_conflict_is_not_hidden_by_an_unchanged_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    let one = records(1, "p0");
    ingest(&mut l, &one);
    let replaced = one.replace("u0@x.org", "zed@x.org").replace(
        "\"legitimate_interest\"}",
        "\"legitimate_interest\",\"replace\":true}",
    );
    let text = replaced + &one;
    let b = jsonl::parse_records(text.as_bytes(), "r", &keyer()).unwrap();
    let err = l.ingest(b).unwrap_err().to_string();
    assert!(err.contains("forum/p0#0"), "{err}");
}

#[test]
fn rows_with_many_subjects_split_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    let subjects: Vec<String> = (0..100).map(|i| format!("\"m{i}@x.org\"")).collect();
    let text: String = (0..20_000)
        .map(|r| {
            format!(
                r#"{{"dataset":"chat","shard":"g0","row":{r},"subjects":[{}],"source":"chat","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}"#,
                subjects.join(",")
            ) + "\n"
        })
        .collect();
    let s = ingest(&mut l, &text);
    assert_eq!(s.links, 2_000_000);
    assert!(
        l.index().seq().0 > 2,
        "split into several frames: head {}",
        l.index().seq()
    );
    drop(l);
    let l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.index().stats().links, 2_000_000);
}

/// Issue 20, finding 12: a batch of records with many large, distinct
/// provenance profiles (a long license text per row) is split into frames
/// that each carry only their rows' profiles; on main every frame carried
/// all of them and the ingest failed with "payload is N bytes, limit is M".
#[test]
fn large_distinct_profiles_split_into_frames_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    let text: String = (0..70)
        .map(|r| {
            let license = format!("{r:04}{}", "L".repeat(1_000_000 - 8));
            format!(
                r#"{{"dataset":"d","shard":"s","row":{r},"subjects":["u{r}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"licensed","license":"{license}"}}"#
            ) + "\n"
        })
        .collect();
    let s = ingest(&mut l, &text);
    assert_eq!(s.registered, 70);
    assert!(l.index().seq() > Seq(2), "split into several frames");
    drop(l);
    let l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.index().stats().records, 70);
    assert_eq!(l.index().stats().profiles, 70);
}

/// The ledger's refusals are variants of `LedgerError` (what the Python
/// binding and the service match on) and name no CLI flag (issue 18).
#[test]
fn refusals_are_structured_and_name_no_cli_flags() {
    use optout::{Error, LedgerError};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = Ledger::create(&path, keyer()).unwrap();
    ingest(&mut l, &records(3, "s0"));
    let head = l.head().0;
    let mut q = l
        .query(None, "ai-training", t("2025-01-01T00:00:00Z"))
        .unwrap();
    q.seq = Seq(head.0 + 5);
    let past = l.manifest(&q).unwrap_err();
    assert!(
        matches!(&past, Error::Ledger(LedgerError::SeqPastHead { seq, head: h }) if *seq == q.seq && *h == head),
        "{past:?}"
    );
    q.seq = head;
    q.datasets = vec!["nope".into()];
    let unknown = l.manifest(&q).unwrap_err();
    assert!(
        matches!(&unknown, Error::Ledger(LedgerError::UnknownDataset(d)) if d == "nope"),
        "{unknown:?}"
    );
    let other_purpose = l.query(
        Some(optout::Policy::default_for(
            optout::Purpose::new("analytics").unwrap(),
        )),
        "ai-training",
        t("2025-01-01T00:00:00Z"),
    );
    assert!(
        matches!(
            other_purpose,
            Err(Error::Ledger(LedgerError::PolicyPurpose { .. }))
        ),
        "{other_purpose:?}"
    );
    drop(l);
    let mut ro = Ledger::open_read_only(&path, None).unwrap();
    let read_only = ro.snapshot().unwrap_err();
    assert!(
        matches!(read_only, Error::Ledger(LedgerError::ReadOnly)),
        "{read_only:?}"
    );
    drop(ro);
    let nokey = Ledger::open(&path, None).unwrap();
    let needs_key = nokey.pseudonym("u1@x.org").unwrap_err();
    assert!(
        matches!(&needs_key, Error::Ledger(LedgerError::NeedsKey { default_key }) if *default_key == optout::default_key_path(&path)),
        "{needs_key:?}"
    );
    drop(nokey);
    let exists = Ledger::create(&path, keyer()).map(|_| ()).unwrap_err();
    assert!(
        matches!(exists, Error::Ledger(LedgerError::Exists { .. })),
        "{exists:?}"
    );
    for e in [&past, &unknown, &read_only, &needs_key, &exists] {
        assert!(!e.to_string().contains("--"), "names a CLI flag: {e}");
    }
}

#[test]
fn run_rules_default_name_and_events_after_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer()).unwrap();
    ingest(&mut l, &records(14, "p0"));
    // Before the manifest: never counted, whatever its date.
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u1@x.org","at":"2024-12-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let q = l
        .query(None, "ai-training", t("2025-01-01T00:00:00Z"))
        .unwrap();
    let m = l.manifest(&q).unwrap();
    assert_eq!(l.default_run_name("chat"), "chat-run-1");
    assert_eq!(l.events_after_manifest(&m, t("2025-06-01T00:00:00Z")), 0);
    // After it: one in effect by June, one dated September.
    apply(
        &mut l,
        concat!(
            r#"{"type":"objection","subject":"u4@x.org","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}"#,
            "\n",
            r#"{"type":"objection","subject":"u5@x.org","at":"2025-09-01T00:00:00Z","purposes":["ai-training"]}"#,
        ),
    );
    assert_eq!(l.events_after_manifest(&m, t("2025-01-15T00:00:00Z")), 0);
    assert_eq!(l.events_after_manifest(&m, t("2025-06-01T00:00:00Z")), 1);
    assert_eq!(l.events_after_manifest(&m, t("2025-12-01T00:00:00Z")), 2);
    let name = l.default_run_name("chat");
    l.register_run(&name, "chat", &m, t("2025-06-01T00:00:00Z"))
        .unwrap();
    assert_eq!(l.default_run_name("chat"), "chat-run-2");
    assert_eq!(l.index().runs()[0].1.name, "chat-run-1");
}
