//! The per-target checks shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/fuzz_replay.rs`, which includes this file with `#[path]` so
//! `cargo test` replays every seed and regression without cargo-fuzz.
//!
//! Dependencies: `optout` and crates `optout` itself depends on (`blake3`,
//! `crc32fast`), so the root package's integration tests can include it.
//! Every check returns normally for any input; a panic is a finding.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use optout::event::{
    ConsentMethod, ContentHash, Entry, Event, EventKind, RecordBatch, RowEntry, ShardRecords,
    TakedownTarget,
};
use optout::storage::{Io, Log, LogOptions, MemIo, Seq as SSeq};
use optout::{
    codec, engine, jsonl, reference, Index, Ledger, LedgerOptions, Manifest, Policy, Profile,
    Purpose, Purposes, Query, Seq, SubjectKey, SubjectKeyer, Timestamp, Visibility,
};

/// Every target, by name (the directory names under `fuzz/seeds/`).
pub const TARGETS: &[&str] = &[
    "segment",
    "snapshot",
    "manifest",
    "entry",
    "jsonl_record",
    "jsonl_event",
    "policy",
    "ops",
    "crawl",
];

/// Runs the check of target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "segment" => segment(data),
        "snapshot" => snapshot(data),
        "manifest" => manifest(data),
        "entry" => entry(data),
        "jsonl_record" => jsonl_record(data),
        "jsonl_event" => jsonl_event(data),
        "policy" => policy(data),
        "ops" => ops(data),
        "crawl" => crawl(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

pub fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

pub const ROOT: &str = "/l";
pub const SEG: &str = "/l/log/00000000000000000001.seg";
pub const LEDGER_ID: [u8; 16] = *b"fuzz-ledger-id!!";

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn day(d: u64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + d as i64 * 86_400)
}

fn ledger_opts(read_only: bool) -> LedgerOptions {
    LedgerOptions {
        segment_size: 64 << 20,
        ledger_id: Some(LEDGER_ID),
        read_only,
        ..Default::default()
    }
}

/// A small valid ledger on `MemIo` (one segment; records, events, a run).
pub fn base_ledger() -> &'static MemIo {
    static BASE: OnceLock<MemIo> = OnceLock::new();
    BASE.get_or_init(|| {
        let io = MemIo::new();
        let k = keyer();
        let mut l = Ledger::create_with(io.clone(), Path::new(ROOT), k.clone(), ledger_opts(false))
            .unwrap();
        let recs = r#"{"dataset":"d","shard":"p0","row":0,"subjects":["a@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}
{"dataset":"d","shard":"p0","row":1,"subjects":["b@x.org","a@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k1"}
{"dataset":"e","shard":"p1","row":7,"subjects":[],"source":"y.org","collected_at":"2024-01-02T00:00:00Z","basis":"contract","categories":["text"]}"#;
        l.ingest(jsonl::parse_records(recs.as_bytes(), "r", &k).unwrap())
            .unwrap();
        let evs = r#"{"type":"consent","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"],"method":"double_opt_in","confirmed":true}
{"type":"objection","subject":"b@x.org","at":"2025-01-02T00:00:00Z","purposes":["ai-training"]}
{"type":"takedown","key":"k1","at":"2025-01-03T00:00:00Z"}"#;
        l.apply(jsonl::parse_events(evs.as_bytes(), "e", &k).unwrap())
            .unwrap();
        let q = l
            .query(None, "ai-training", t("2025-02-01T00:00:00Z"))
            .unwrap();
        let m = l.manifest(&q).unwrap();
        l.register_run("run", "model", &m, t("2025-02-01T00:00:00Z"))
            .unwrap();
        l.sync().unwrap();
        drop(l);
        io.fork()
    })
}

/// The base ledger's (only) segment file.
pub fn base_segment() -> Vec<u8> {
    base_ledger().read_all(Path::new(SEG)).unwrap()
}

/// Builds a syntactically valid frame sequence (good CRCs and chain) from
/// `data`, after the base segment's 84-byte header: chunks of
/// `[flags, len_lo, len_hi, payload...]`; seqs count from 1.
pub fn frames_from(data: &[u8]) -> Vec<u8> {
    let mut out = base_segment()[..84].to_vec();
    let key = blake3::derive_key("optout 2026-11 event chain v1", &LEDGER_ID);
    let mut chain = *blake3::keyed_hash(&key, &LEDGER_ID).as_bytes();
    let mut rest = data;
    let mut seq = 1u64;
    while rest.len() >= 3 {
        let flags = u32::from(rest[0] & 0x81); // bit 0 commit, bit 7 an unknown flag
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let payload = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let mut h = blake3::Hasher::new_keyed(&key);
        h.update(&chain);
        h.update(&seq.to_le_bytes());
        h.update(&flags.to_le_bytes());
        h.update(&(payload.len() as u32).to_le_bytes());
        h.update(payload);
        chain = *h.finalize().as_bytes();
        let start = out.len();
        out.extend_from_slice(b"OOFR");
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        let hcrc = crc32fast::hash(&out[start..start + 20]);
        out.extend_from_slice(&hcrc.to_le_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&chain);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        seq += 1;
    }
    out
}

/// Inverse of [`frames_from`] for seeds: encodes payloads as its input.
pub fn frames_input(payloads: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![1u8];
    for (flags, p) in payloads {
        v.push(*flags);
        v.extend_from_slice(&(p.len() as u16).to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

/// Log frame / segment decoder, through the storage layer and the ledger.
/// `data[0] % 3` picks the mode: 0 the whole segment file is `data[1..]`;
/// 1 well-formed frames built by [`frames_from`] (reaches the entry decoder
/// and the index checks on replay); 2 byte edits `(pos_lo, pos_hi, xor)` of
/// the valid segment, then a truncation by the last byte.
pub fn segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => frames_from(rest),
        _ => {
            let mut b = base_segment();
            for e in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % b.len();
                b[at] ^= e[2];
            }
            if rest.len() % 3 != 0 {
                let cut = b.len() - usize::from(*rest.last().unwrap()).min(b.len());
                b.truncate(cut);
            }
            b
        }
    };
    let io = base_ledger().fork();
    let p = Path::new(SEG);
    io.create_file(p).unwrap();
    io.write_at(p, 0, &bytes).unwrap();
    let _ = optout::storage::verify(&io, ROOT);
    if let Ok(log) = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new().create(false).read_only(true),
    ) {
        let _ = log.latest_valid_snapshot();
        let _ = log.replay::<optout::storage::StorageError, _>(SSeq(1), |_, p| {
            let _ = codec::decode::<Entry>(p);
            Ok(())
        });
        let _ = log.chain_at(log.head().0);
    }
    if let Ok(l) = Ledger::open_with(
        io.clone(),
        Path::new(ROOT),
        Some(keyer()),
        ledger_opts(true),
    ) {
        // Whatever the replay accepted must be evaluable.
        let ix = l.index();
        for purpose in ["ai-training", "ads"] {
            if let Ok(q) = l.query(None, purpose, t("2025-06-01T00:00:00Z")) {
                if let Ok(m) = l.manifest(&q) {
                    let again = Manifest::from_bytes(&m.to_bytes()).expect("own manifest decodes");
                    assert_eq!(again, m);
                }
                let _ = engine::evaluate(ix, &q);
            }
        }
    }
}

/// Index snapshot payload decoder. What decodes must re-encode to the same
/// bytes and be evaluable.
pub fn snapshot(data: &[u8]) {
    let Ok(mut ix) = Index::from_snapshot_bytes(data) else {
        return;
    };
    let again = ix.to_snapshot_bytes().expect("a decoded index re-encodes");
    let ix2 = Index::from_snapshot_bytes(&again).expect("re-encoded index decodes");
    let _ = ix.stats();
    for p in ["ai-training", "ads"] {
        let q = Query {
            policy: Policy::default_for(Purpose::new(p).unwrap()),
            seq: ix.seq(),
            at: t("2025-06-01T00:00:00Z"),
            datasets: vec![],
        };
        let a = engine::evaluate(&ix, &q);
        let b = engine::evaluate(&ix2, &q);
        assert_eq!(
            reference::from_engine(&ix, &a),
            reference::from_engine(&ix2, &b)
        );
    }
}

/// Manifest decoder. `data[0]` odd: the digest is recomputed over
/// `data[1..]` (replacing its last 32 bytes) so the fuzzer gets past it.
/// What decodes must re-encode to exactly the input (canonical form).
pub fn manifest(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    if mode & 1 == 1 && b.len() >= 32 {
        let n = b.len() - 32;
        let key = blake3::derive_key("optout 2026-11 manifest v1", b"");
        let d = *blake3::keyed_hash(&key, &b[..n]).as_bytes();
        b[n..].copy_from_slice(&d);
    }
    if let Ok(m) = Manifest::from_bytes(&b) {
        assert_eq!(
            m.to_bytes(),
            b,
            "a decoded manifest re-encodes to its bytes"
        );
        for s in &m.shards {
            let rows: Vec<u32> = s.excluded.iter().take(64).chain([0, u32::MAX]).collect();
            let _ = s.keep_mask(&rows);
            for r in rows {
                let _ = s.reasons_of(r);
            }
        }
    }
}

/// Log entry payload decoder (bincode), then the index checks.
pub fn entry(data: &[u8]) {
    let Ok(e) = codec::decode::<Entry>(data) else {
        return;
    };
    assert_eq!(
        codec::encode(&e).unwrap(),
        data,
        "entries encode canonically"
    );
    let mut ix = Index::new();
    if ix.apply(Seq(1), &e).is_ok() {
        let q = Query {
            policy: Policy::default_for(Purpose::new("ai-training").unwrap()),
            seq: Seq(1),
            at: t("2025-06-01T00:00:00Z"),
            datasets: vec![],
        };
        let got = reference::from_engine(&ix, &engine::evaluate(&ix, &q));
        let want = reference::evaluate(&[(Seq(1), e)], &q);
        assert_eq!(got, want);
    }
}

/// One JSONL record line; what parses must pass the index checks or fail
/// cleanly, and encode/decode through the codec.
pub fn jsonl_record(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let mut b = jsonl::BatchBuilder::default();
    if jsonl::parse_record_line(&mut b, &keyer(), "fuzz", 1, &line).is_ok() {
        let e = Entry::Records(b.finish());
        let bytes = codec::encode(&e).unwrap();
        assert_eq!(codec::decode::<Entry>(&bytes).unwrap(), e);
        let _ = Index::new().apply(Seq(1), &e);
    }
    let _ = jsonl::parse_records(data, "fuzz", &keyer());
}

/// One JSONL event line.
pub fn jsonl_event(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(ev) = jsonl::parse_event_line(&keyer(), "fuzz", 1, &line) {
        let e = Entry::Event(ev);
        let bytes = codec::encode(&e).unwrap();
        assert_eq!(codec::decode::<Entry>(&bytes).unwrap(), e);
        let _ = Index::new().apply(Seq(1), &e);
    }
    let _ = jsonl::parse_events(data, "fuzz", &keyer());
}

/// Crawl metadata for `optout signals`: what parses turns into signal
/// events (against a few URL keys) that encode, decode and fold into an
/// index; a second plan over them adds nothing (idempotence).
pub fn crawl(data: &[u8]) {
    let Ok(lines) = optout::signals::parse_crawl(data, "fuzz") else {
        return;
    };
    let keys = [
        "https://example.com/",
        "https://example.com/a/b.pdf",
        "https://news.example/x?y=1",
        "not-a-url",
    ];
    let cfg = optout::signals::Config::default();
    let plan = optout::signals::plan(&lines, keys, [], &cfg);
    let mut index = Index::new();
    for (i, ev) in plan.events.iter().enumerate() {
        let e = Entry::Event(ev.clone());
        let bytes = codec::encode(&e).unwrap();
        assert_eq!(codec::decode::<Entry>(&bytes).unwrap(), e);
        index.apply(Seq(i as u64 + 1), &e).unwrap();
    }
    let again = optout::signals::plan(&lines, keys, plan.events.iter(), &cfg);
    assert!(
        again.events.is_empty(),
        "a re-run recorded {} events",
        again.events.len()
    );
}

/// The policy file. A parsed policy round-trips through its canonical JSON
/// with the same digest, and evaluates.
pub fn policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(p) = Policy::from_json(&text, "fuzz") else {
        return;
    };
    let again = Policy::from_json(&p.to_json(), "again").expect("canonical policy parses");
    assert_eq!(again.digest(), p.digest());
    assert_eq!(again, p);
    let ix = Index::new();
    let q = Query {
        policy: p,
        seq: Seq(0),
        at: t("2025-06-01T00:00:00Z"),
        datasets: vec![],
    };
    let _ = engine::evaluate(&ix, &q);
}

// ---------------------------------------------------------------- ops

/// Reads the op program's bytes; 0 once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn below(&mut self, n: u8) -> u8 {
        self.u8() % n
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

fn profiles() -> Vec<Profile> {
    let mk =
        |source: &str, basis: &str, cats: &[&str], vis, jur: Option<&str>, from: Option<&str>| {
            let mut p = Profile {
                source: source.into(),
                basis: basis.into(),
                categories: cats.iter().map(|s| s.to_string()).collect(),
                visibility: vis,
                jurisdiction: jur.map(str::to_string),
                license: None,
                obtained_from: from.map(str::to_string),
            };
            p.normalise();
            p
        };
    vec![
        mk(
            "a.com",
            "consent",
            &["text"],
            Some(Visibility::Public),
            Some("EU"),
            None,
        ),
        mk(
            "forum.a.com",
            "legitimate_interest",
            &[],
            None,
            None,
            Some("dmp:acme"),
        ),
        mk(
            "zoom",
            "contract",
            &["audio", "text"],
            Some(Visibility::Private),
            Some("US"),
            None,
        ),
    ]
}

fn subject(i: u8) -> SubjectKey {
    SubjectKey::from_bytes([i + 1; 16])
}

fn purposes(b: &mut Bytes) -> Purposes {
    match b.below(3) {
        0 => Purposes::All,
        1 => Purposes::Some(vec![Purpose::new("ads").unwrap()]),
        _ => Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
    }
}

fn op_batch(b: &mut Bytes) -> RecordBatch {
    let mut batch = RecordBatch {
        profiles: profiles(),
        shards: vec![],
    };
    for _ in 0..1 + b.below(2) {
        let mut rows = Vec::new();
        let dataset = format!("d{}", b.below(2));
        let shard = format!("s{}", b.below(3));
        for _ in 0..1 + b.below(4) {
            let flags = b.u8();
            let n = b.below(3);
            rows.push(RowEntry {
                row: u32::from(b.below(12)),
                subjects: {
                    let mut s: Vec<SubjectKey> = (0..n).map(|_| subject(b.below(5))).collect();
                    s.sort_unstable();
                    s.dedup();
                    s
                },
                profile: u32::from(b.below(3)),
                collected_at: day(u64::from(b.below(5))),
                key: (flags & 1 == 1).then(|| format!("k{}", (flags >> 4) % 3)),
                content_hash: (flags & 2 == 2).then_some(ContentHash([(flags >> 6) % 2; 32])),
                replace: flags & 4 == 4,
            });
        }
        batch.shards.push(ShardRecords {
            dataset,
            shard,
            rows,
        });
    }
    batch
}

fn op_event(b: &mut Bytes) -> Event {
    let s = subject(b.below(5));
    let kind = match b.below(8) {
        0 => EventKind::Objection {
            subject: s,
            purposes: purposes(b),
            categories: if b.below(3) == 0 {
                vec!["text".into()]
            } else {
                vec![]
            },
            sources: if b.below(4) == 0 {
                vec!["a.com".into()]
            } else {
                vec![]
            },
        },
        1 => EventKind::ObjectionWithdrawn {
            subject: s,
            purposes: purposes(b),
        },
        2 => EventKind::Consent {
            subject: s,
            purposes: purposes(b),
            method: [
                ConsentMethod::SingleOptIn,
                ConsentMethod::DoubleOptIn,
                ConsentMethod::Delegated,
            ][usize::from(b.below(3))],
            confirmed: b.below(4) != 0,
            granted_by: None,
        },
        3 => EventKind::ConsentWithdrawn {
            subject: s,
            purposes: purposes(b),
        },
        4 => EventKind::Erasure { subject: s },
        5 => EventKind::Restriction {
            subject: s,
            until: (b.below(2) == 0).then(|| day(u64::from(b.below(12)))),
        },
        6 => EventKind::Takedown {
            target: match b.below(3) {
                0 => TakedownTarget::Key(format!("k{}", b.below(3))),
                1 => TakedownTarget::ContentHash(ContentHash([b.below(2); 32])),
                _ => TakedownTarget::Record {
                    dataset: format!("d{}", b.below(2)),
                    shard: format!("s{}", b.below(3)),
                    row: u32::from(b.below(12)),
                },
            },
            reason: None,
        },
        _ => EventKind::SourceOptout {
            source: ["a.com", "forum.a.com", "zoom", "dmp:acme"][usize::from(b.below(4))].into(),
            purposes: purposes(b),
            signal: None,
        },
    };
    Event {
        at: day(u64::from(b.below(12))),
        reference: None,
        kind,
    }
}

fn op_policy(b: &mut Bytes) -> Policy {
    let flags = b.u8();
    let purpose = if flags & 1 == 0 { "ai-training" } else { "ads" };
    let mut p = Policy::default_for(Purpose::new(purpose).unwrap());
    if flags & 2 != 0 {
        p.consent_required_for.push("legitimate_interest".into());
    }
    p.require_double_opt_in = flags & 4 != 0;
    p.accept_delegated_consent = flags & 8 != 0;
    if flags & 16 != 0 {
        p.exclude_categories = vec!["audio".into()];
    }
    if flags & 32 != 0 {
        p.require_visibility = Some(Visibility::Public);
    }
    if flags & 64 != 0 {
        p.jurisdictions = Some(vec!["EU".into()]);
    }
    p.normalise();
    p
}

/// Per-shard excluded rows of a manifest.
fn excluded_of(m: &Manifest) -> Vec<(String, String, Vec<u32>)> {
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

/// Per-shard excluded rows of an engine evaluation, via the reference form.
fn excluded_of_verdict(v: &reference::Verdict) -> Vec<(String, String, Vec<u32>)> {
    let mut out: Vec<(String, String, Vec<u32>)> = v
        .shards
        .keys()
        .map(|(d, s)| (d.clone(), s.clone(), Vec::new()))
        .collect();
    for name in v.excluded.keys() {
        let (d, s, r) = name.clone();
        if let Some(e) = out.iter_mut().find(|e| e.0 == d && e.1 == s) {
            e.2.push(r);
        }
    }
    for e in &mut out {
        e.2.sort_unstable();
    }
    out
}

/// Structure-aware operation sequences: random ingests, events, manifests,
/// snapshots and reopens of a `MemIo` ledger, with a mirror `Index` fed the
/// same entries. Checks: the engine equals the naive reference evaluator on
/// the mirror (at the head and at a past seq); the ledger's manifests equal
/// the mirror's exclusions while both accepted the same calls; manifests
/// round-trip through their bytes and verify against the ledger; a reopen
/// (log replay, or snapshot + replay) gives the same manifest.
pub fn ops(data: &[u8]) {
    let mut b = Bytes(data);
    let io = MemIo::new();
    let root = Path::new(ROOT);
    let mut l = Ledger::create_with(io.clone(), root, keyer(), ledger_opts(false)).unwrap();
    let mut mirror = Index::new();
    let mut log: Vec<(Seq, Entry)> = Vec::new();
    let mut lockstep = true;
    let mut steps = 0;
    while !b.done() && steps < 64 {
        steps += 1;
        match b.below(6) {
            0 => {
                let batch = op_batch(&mut b);
                let led = l.ingest(batch.clone()).is_ok();
                let e = Entry::Records(batch);
                let seq = Seq(mirror.seq().0 + 1);
                let mir = mirror.apply(seq, &e).is_ok();
                if mir {
                    log.push((seq, e));
                }
                lockstep &= led == mir;
            }
            1 => {
                let n = 1 + b.below(3);
                let evs: Vec<Event> = (0..n).map(|_| op_event(&mut b)).collect();
                let led = l.apply(evs.clone()).is_ok();
                let mut mir = true;
                for ev in evs {
                    let e = Entry::Event(ev);
                    let seq = Seq(mirror.seq().0 + 1);
                    if mirror.apply(seq, &e).is_ok() {
                        log.push((seq, e));
                    } else {
                        mir = false;
                    }
                }
                lockstep &= led == mir;
            }
            2 => {
                let policy = op_policy(&mut b);
                let at = day(u64::from(b.below(13)));
                let q = Query {
                    policy: policy.clone(),
                    seq: l.index().seq(),
                    at,
                    datasets: vec![],
                };
                let m = l.manifest(&q).expect("manifest at the head");
                let bytes = m.to_bytes();
                assert_eq!(Manifest::from_bytes(&bytes).expect("decodes"), m);
                l.verify_manifest(&m).expect("own manifest verifies");
                // Engine vs the naive reference on the mirror, at the head
                // and at a past seq.
                let past = Seq(u64::from(b.u8()) % (mirror.seq().0 + 1));
                for seq in [mirror.seq(), past] {
                    let mq = Query {
                        policy: policy.clone(),
                        seq,
                        at,
                        datasets: vec![],
                    };
                    let got = reference::from_engine(&mirror, &engine::evaluate(&mirror, &mq));
                    let want = reference::evaluate(&log, &mq);
                    assert_eq!(got, want, "engine differs from reference at {seq:?}");
                    if seq == mirror.seq() && lockstep {
                        assert_eq!(
                            excluded_of(&m),
                            excluded_of_verdict(&want),
                            "ledger manifest differs from the mirror"
                        );
                    }
                }
            }
            3 => {
                let _ = l.snapshot();
            }
            4 => {
                let q = Query {
                    policy: op_policy(&mut b),
                    seq: l.index().seq(),
                    at: day(u64::from(b.below(13))),
                    datasets: vec![],
                };
                let before = l.manifest(&q).unwrap();
                drop(l);
                l = Ledger::open_with(io.clone(), root, Some(keyer()), ledger_opts(false))
                    .expect("reopen");
                let after = l.manifest(&q).unwrap();
                assert_eq!(
                    before.to_bytes(),
                    after.to_bytes(),
                    "reopen changed a manifest"
                );
            }
            _ => {
                let before = mirror.seq();
                let bytes = mirror.to_snapshot_bytes().unwrap();
                let back = Index::from_snapshot_bytes(&bytes).expect("snapshot round trip");
                assert_eq!(back.seq(), before);
                mirror = back;
            }
        }
    }
}
