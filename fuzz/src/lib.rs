//! The per-target checks shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/fuzz_replay.rs`, which includes this file with `#[path]` so
//! `cargo test` replays every seed and regression without cargo-fuzz.
//!
//! Dependencies: `optout`, crates `optout` itself depends on (`blake3`,
//! `crc32fast`) and `arbitrary` (a dev-dependency of the root package), so
//! the root package's integration tests can include it.
//! Every check returns normally for any input; a panic is a finding.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};

use lineage::Use;
use optout::event::{
    ConsentMethod, ContentHash, Entry, Event, EventKind, RecordBatch, RowEntry, ShardRecords,
    TakedownTarget,
};
use optout::storage::{Io, Log, LogOptions, MemIo, Seq as SSeq};
use optout::{
    codec, engine, jsonl, lineage, reference, Index, Ledger, LedgerOptions, Manifest, Policy,
    Profile, Purpose, Purposes, Query, Reason, Seq, SubjectKey, SubjectKeyer, Timestamp,
    Visibility,
};

/// Every target, by name (the directory names under `fuzz/seeds/`).
pub const TARGETS: &[&str] = &[
    "segment",
    "snapshot",
    "snapshot_file",
    "manifest",
    "entry",
    "jsonl_record",
    "jsonl_event",
    "policy",
    "ops",
    "crawl",
    "ops_arbitrary",
];

/// Runs the check of target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "segment" => segment(data),
        "snapshot" => snapshot(data),
        "snapshot_file" => snapshot_file(data),
        "snapshot_sections" => snapshot_sections(data),
        "manifest" => manifest(data),
        "entry" => entry(data),
        "jsonl_record" => jsonl_record(data),
        "jsonl_event" => jsonl_event(data),
        "policy" => policy(data),
        "ops" => ops(data),
        "crawl" => crawl(data),
        "ops_arbitrary" => ops_arbitrary(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// The subject key's secret of every fuzz ledger.
pub const SECRET: [u8; 32] = [5; 32];

pub fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret(SECRET)
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
        // The targets compute manifests for both purposes: both declared.
        l.add_purpose("ads", None).unwrap();
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

/// Index snapshot payload decoder. What decodes must re-encode to exactly
/// the same bytes (canonical form) and be evaluable.
pub fn snapshot(data: &[u8]) {
    let Ok(mut ix) = Index::from_snapshot_bytes(data) else {
        return;
    };
    let again = ix.to_snapshot_bytes().expect("a decoded index re-encodes");
    // Canonical form: one encoding per index, so nothing the decoder
    // accepted was dropped or merged on the way (F6-F8).
    assert_eq!(again, data, "a decoded index re-encodes to its bytes");
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

/// `[k] ‖ k × u32 length ‖ bytes`: the input of [`snapshot_sections`].
pub fn sections_input(sections: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![sections.len() as u8];
    for s in sections {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    for s in sections {
        out.extend_from_slice(s);
    }
    out
}

/// The index section reader of snapshot format 3
/// (`Index::from_snapshot_sections`) on up to 7 sections cut from the input
/// (see [`sections_input`]; lengths are clamped to what is left), laid out
/// aligned as a mapped file lays them out. Never a panic; what decodes
/// re-encodes to exactly its sections and evaluates as its format 2 twin.
pub fn snapshot_sections(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = (k % 8) as usize;
    let Some(lens) = rest.get(..4 * k) else {
        return;
    };
    let mut body = &rest[4 * k..];
    let mut sections = Vec::with_capacity(k);
    for c in lens.chunks_exact(4) {
        let n = (u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).min(body.len());
        sections.push(&body[..n]);
        body = &body[n..];
    }
    let Ok(mut ix) = Index::from_snapshot_sections(&optout::storage::Sections::copy_of(&sections))
    else {
        return;
    };
    let again = ix
        .to_snapshot_sections()
        .expect("a decoded index re-encodes");
    let again: Vec<&[u8]> = again.iter().map(|s| &s[..]).collect();
    assert_eq!(
        again, sections,
        "a decoded index re-encodes to its sections"
    );
    let twin = Index::from_snapshot_bytes(&ix.to_snapshot_bytes().unwrap())
        .expect("its format 2 encoding decodes");
    for p in ["ai-training", "ads"] {
        let q = Query {
            policy: Policy::default_for(Purpose::new(p).unwrap()),
            seq: ix.seq(),
            at: t("2025-06-01T00:00:00Z"),
            datasets: vec![],
        };
        assert_eq!(engine::evaluate(&ix, &q), engine::evaluate(&twin, &q));
    }
}

/// The base ledger with a snapshot of its head (`snap/<seq>.snap`).
pub fn base_ledger_with_snapshot() -> &'static (MemIo, String) {
    static BASE: OnceLock<(MemIo, String)> = OnceLock::new();
    BASE.get_or_init(|| {
        let io = base_ledger().fork();
        let mut l = Ledger::open_with(
            io.clone(),
            Path::new(ROOT),
            Some(keyer()),
            ledger_opts(false),
        )
        .unwrap();
        let p = l.snapshot().unwrap();
        drop(l);
        (io.fork(), p.to_string_lossy().into_owned())
    })
}

/// The base ledger's snapshot file as this version writes it (format 3).
pub fn base_snapshot_file_v3() -> Vec<u8> {
    let (io, p) = base_ledger_with_snapshot();
    io.read_all(Path::new(p)).unwrap()
}

/// The base ledger's snapshot as a format 2 file (an opaque payload: the
/// index in its format 2 encoding), authenticated with the ledger's key, as
/// earlier versions wrote it and this one still opens: the base of the
/// `snapshot_file` target, whose edits and reseals are format 2's.
pub fn base_snapshot_file() -> Vec<u8> {
    static V2: OnceLock<Vec<u8>> = OnceLock::new();
    V2.get_or_init(|| {
        let (io, _) = base_ledger_with_snapshot();
        let l = Ledger::open_with(
            io.fork(),
            Path::new(ROOT),
            Some(keyer()),
            ledger_opts(false),
        )
        .unwrap();
        let payload = l.index().clone().to_snapshot_bytes().unwrap();
        let mut b = base_snapshot_file_v3()[..72].to_vec();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        b.extend_from_slice(&payload);
        b.extend_from_slice(&[0; 32]);
        reseal_snapshot_file(&mut b);
        b
    })
    .clone()
}

/// Recomputes a format 2 storage snapshot file's digest (its last 32 bytes): the key
/// derives from the ledger id, which is not secret, so a hostile writer can
/// seal any file.
pub fn reseal_snapshot_file(b: &mut [u8]) {
    if b.len() < 32 {
        return;
    }
    // Format 2: keyed_hash(snapshot key, header ‖ blake3(payload)), the
    // snapshot key derived from the subject key as `SubjectKeyer` does.
    let n = b.len() - 32;
    let key = blake3::derive_key("optout 2026-11 snapshot mac v1", &SECRET);
    let mut h = blake3::Hasher::new_keyed(&key);
    h.update(&b[..80.min(n)]);
    h.update(blake3::hash(&b[80.min(n)..n]).as_bytes());
    let d = *h.finalize().as_bytes();
    b[n..].copy_from_slice(&d);
}

/// The manifests of the base ledger for the purposes the targets check.
fn base_manifests() -> &'static Vec<Vec<u8>> {
    static M: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    M.get_or_init(|| {
        let l = Ledger::open_with(
            base_ledger().fork(),
            Path::new(ROOT),
            Some(keyer()),
            ledger_opts(true),
        )
        .unwrap();
        ["ai-training", "ads"]
            .iter()
            .map(|p| {
                let q = l.query(None, p, t("2025-06-01T00:00:00Z")).unwrap();
                l.manifest(&q).unwrap().to_bytes()
            })
            .collect()
    })
}

/// The storage snapshot file, read by `Log::latest_valid_snapshot` and
/// decoded by `Ledger::open` (which falls back to replay when it does not
/// decode). `data[0] % 3` picks the mode: 0 the file is `data[1..]`,
/// resealed when `data[0] & 4`; 1 the
/// base file's header around the payload `data[1..]`, resealed (a hostile
/// but well-sealed file: reaches `Index::from_snapshot_bytes` inside
/// `Ledger::open`); 2 byte edits `(pos_lo, pos_hi, xor)` of the base file,
/// resealed when `data[0] & 4`. Checks: no panic; an accepted ledger's
/// manifests round-trip and verify; and while the file is not resealed, a
/// ledger that opens computes exactly the base ledger's manifests (an
/// edited file must be rejected, never used).
pub fn snapshot_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let base = base_snapshot_file();
    let (bytes, sealed_by_us) = match mode % 3 {
        0 => {
            let mut b = rest.to_vec();
            let reseal = mode & 4 != 0;
            if reseal {
                reseal_snapshot_file(&mut b);
            }
            (b, reseal)
        }
        1 => {
            // Well-sealed hostile format 3 sections are the
            // `snapshot_sections` target's.
            let mut b = base[..72].to_vec();
            b.extend_from_slice(&(rest.len() as u64).to_le_bytes());
            b.extend_from_slice(rest);
            b.extend_from_slice(&[0; 32]);
            reseal_snapshot_file(&mut b);
            (b, true)
        }
        _ => {
            let mut b = base.clone();
            for e in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % b.len();
                b[at] ^= e[2];
            }
            let reseal = mode & 4 != 0;
            if reseal {
                reseal_snapshot_file(&mut b);
            }
            (b, reseal)
        }
    };
    let (io0, path) = base_ledger_with_snapshot();
    let io = io0.fork();
    let p = Path::new(path);
    io.create_file(p).unwrap();
    io.write_at(p, 0, &bytes).unwrap();
    let _ = optout::storage::verify(&io, ROOT);
    if let Ok(log) = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new()
            .create(false)
            .read_only(true)
            .snapshot_key(keyer().snapshot_key()),
    ) {
        if let Ok(load) = log.latest_valid_snapshot() {
            if let Some(s) = load.snapshot {
                if !sealed_by_us {
                    assert_eq!(bytes, base, "an edited snapshot file verified");
                }
                let _ = Index::from_snapshot_bytes(&s.payload);
            }
        }
    }
    let Ok(l) = Ledger::open_with(io, Path::new(ROOT), Some(keyer()), ledger_opts(true)) else {
        return;
    };
    for (i, purpose) in ["ai-training", "ads"].iter().enumerate() {
        let q = l.query(None, purpose, t("2025-06-01T00:00:00Z")).unwrap();
        let m = match l.manifest(&q) {
            Ok(m) => m,
            // A snapshot we resealed may hold any state that decodes,
            // declarations with an edited name included.
            Err(optout::Error::Ledger(optout::LedgerError::UndeclaredPurpose { .. }))
                if sealed_by_us =>
            {
                continue
            }
            Err(e) => panic!("manifest at the head: {e:?}"),
        };
        let b = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&b).expect("own manifest decodes"), m);
        l.verify_manifest(&m).expect("own manifest verifies");
        if !sealed_by_us {
            assert_eq!(
                b,
                base_manifests()[i],
                "a damaged snapshot changed a manifest"
            );
        }
        let _ = engine::evaluate(l.index(), &q);
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

// The operation-sequence targets. `ops_arbitrary` derives its operations
// with `arbitrary` (structure-aware: libFuzzer mutates the bytes, the
// derived decoders turn any bytes into a valid op sequence); `ops` reads a
// hand-written byte program into the same [`Op`]s (kept so its corpus stays
// meaningful). Both run [`run_ops`].

/// An integer in `0..N`: the small domains that make operations collide
/// (the same rows, subjects, keys and days come back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Below<const N: u8>(pub u8);

impl<'a, const N: u8> Arbitrary<'a> for Below<N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Below(u.int_in_range(0..=N - 1)?))
    }
    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

/// Between `MIN` and `MAX` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Few<T, const MIN: usize, const MAX: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const MIN: usize, const MAX: usize> Arbitrary<'a> for Few<T, MIN, MAX> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(MIN..=MAX)?;
        (0..n)
            .map(|_| T::arbitrary(u))
            .collect::<arbitrary::Result<Vec<T>>>()
            .map(Few)
    }
}

/// The purposes an event names.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurposesOp {
    /// `*`.
    All,
    /// `ads`.
    Ads,
    /// `ai-training`.
    AiTraining,
}

/// One row of an ingest.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RowOp {
    /// Row number.
    pub row: Below<12>,
    /// Linked subjects (sorted and deduplicated when built).
    pub subjects: Few<Below<5>, 0, 2>,
    /// Index into the batch's three profiles.
    pub profile: Below<3>,
    /// Collection day.
    pub day: Below<5>,
    /// Record key `k0..k2`.
    pub key: Option<Below<3>>,
    /// Content hash `[h; 32]`.
    pub hash: Option<Below<2>>,
    /// The replace flag.
    pub replace: bool,
}

/// One shard's rows of an ingest.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ShardOp {
    /// Dataset `d0`, `d1`.
    pub dataset: Below<2>,
    /// Shard `s0..s2`.
    pub shard: Below<3>,
    /// Its rows.
    pub rows: Few<RowOp, 1, 4>,
}

/// A takedown's target.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetOp {
    /// By record key.
    Key(Below<3>),
    /// By content hash.
    Hash(Below<2>),
    /// One record by name.
    Record {
        /// Dataset.
        dataset: Below<2>,
        /// Shard.
        shard: Below<3>,
        /// Row.
        row: Below<12>,
    },
}

/// Every event kind.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindOp {
    /// An objection, maybe scoped to the `text` category or to `a.com`.
    Objection {
        /// Purposes.
        purposes: PurposesOp,
        /// Scoped to category `text`.
        text: bool,
        /// Scoped to source `a.com`.
        source: bool,
    },
    /// An objection withdrawn.
    ObjectionWithdrawn {
        /// Purposes.
        purposes: PurposesOp,
    },
    /// Consent.
    Consent {
        /// Purposes.
        purposes: PurposesOp,
        /// Single, double opt-in, delegated.
        method: Below<3>,
        /// Confirmed.
        confirmed: bool,
    },
    /// Consent withdrawn.
    ConsentWithdrawn {
        /// Purposes.
        purposes: PurposesOp,
    },
    /// Erasure.
    Erasure,
    /// Restriction, maybe until a day.
    Restriction {
        /// End day.
        until: Option<Below<12>>,
    },
    /// Takedown.
    Takedown(TargetOp),
    /// A source (or third party) opts out.
    SourceOptout {
        /// `a.com`, `forum.a.com`, `zoom`, `dmp:acme`.
        source: Below<4>,
        /// Purposes.
        purposes: PurposesOp,
    },
}

/// One event.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOp {
    /// Its subject (ignored by takedowns and source opt-outs).
    pub subject: Below<5>,
    /// Valid time, a day.
    pub at: Below<12>,
    /// What happened.
    pub kind: KindOp,
}

/// A policy: seven switches, see [`policy_of`].
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyOp(pub u8);

/// Which ledger state a manifest is computed at.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqOp {
    /// The head.
    Head,
    /// A past state: one of the checkpoints recorded while the ledger and
    /// the mirror were in lockstep (`n` modulo their number).
    Past(u8),
}

/// A manifest's dataset scope.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeOp {
    /// Every dataset.
    All,
    /// `d0`.
    D0,
    /// `d1`.
    D1,
    /// `d0` and `d1`, named explicitly.
    Both,
}

/// A manifest query.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryOp {
    /// Policy.
    pub policy: PolicyOp,
    /// Valid time, a day.
    pub at: Below<13>,
    /// State.
    pub seq: SeqOp,
    /// Dataset scope.
    pub scope: ScopeOp,
}

/// One operation on the ledger under test (and its mirror).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Ingest a batch of 1-2 shards.
    Ingest(Few<ShardOp, 1, 2>),
    /// Record 1-3 events, all or nothing.
    Events(Few<EventOp, 1, 3>),
    /// Compute a manifest and check it against the reference evaluator.
    Manifest(QueryOp),
    /// Write a ledger snapshot.
    Snapshot,
    /// Compute a manifest, reopen the ledger (snapshot + replay, or replay),
    /// compute it again: the same bytes, the same runs and lineage.
    Reopen(QueryOp),
    /// Round-trip the mirror index through its snapshot bytes.
    IndexRoundTrip,
    /// Register a training run on a manifest (names `run0..run2`), and try
    /// to register an altered copy of it.
    RegisterRun {
        /// Run name.
        name: Below<3>,
        /// The manifest's query.
        query: QueryOp,
        /// Start day.
        started: Below<13>,
    },
    /// Which runs used a subject's records, against a naive recomputation.
    Affected {
        /// Subject.
        subject: Below<5>,
        /// Valid time now, a day.
        at: Below<13>,
    },
}

/// At most this many operations per input.
pub const MAX_OPS: usize = 64;

/// How many checks an op sequence ran (see `tests/fuzz_replay.rs`, which
/// sums them over a corpus to show the comparisons are active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpsStats {
    /// Operations run.
    pub ops: u64,
    /// Ledger manifests compared with the reference evaluator (head and past).
    pub ledger_vs_reference: u64,
    /// Of those, at a past checkpoint.
    pub past: u64,
    /// Manifest calls skipped because the ledger and the mirror diverged.
    pub diverged: u64,
    /// Engine-on-mirror evaluations compared with the reference.
    pub engine_vs_reference: u64,
    /// Training runs registered.
    pub runs: u64,
    /// Lineage (`affected`) results compared with the naive recomputation.
    pub affected: u64,
    /// Of those, with at least one run that used the subject's records.
    pub affected_nonempty: u64,
    /// Reopens.
    pub reopens: u64,
}

impl std::ops::AddAssign for OpsStats {
    fn add_assign(&mut self, o: Self) {
        self.ops += o.ops;
        self.ledger_vs_reference += o.ledger_vs_reference;
        self.past += o.past;
        self.diverged += o.diverged;
        self.engine_vs_reference += o.engine_vs_reference;
        self.runs += o.runs;
        self.affected += o.affected;
        self.affected_nonempty += o.affected_nonempty;
        self.reopens += o.reopens;
    }
}

/// The `ops_arbitrary` target: `arbitrary` decodes up to [`MAX_OPS`]
/// operations from the input, then [`run_ops`].
pub fn ops_arbitrary(data: &[u8]) {
    run_ops(&ops_of_arbitrary(data));
}

/// Decodes the `ops_arbitrary` input.
pub fn ops_of_arbitrary(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// The `ops` target: a hand-written byte program, see [`ops_of_bytes`].
pub fn ops(data: &[u8]) {
    run_ops(&ops_of_bytes(data));
}

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
    fn below<const N: u8>(&mut self) -> Below<N> {
        Below(self.u8() % N)
    }
    fn n(&mut self, n: u8) -> u8 {
        self.u8() % n
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    fn purposes(&mut self) -> PurposesOp {
        [PurposesOp::All, PurposesOp::Ads, PurposesOp::AiTraining][usize::from(self.n(3))]
    }
}

/// The `ops` byte program: each op reads the few bytes it needs (`op % 6`:
/// ingest, events, manifest at the head (and a past seq of the mirror),
/// snapshot, reopen, index round trip; no scopes, runs or lineage).
pub fn ops_of_bytes(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes(data);
    let mut ops = Vec::new();
    while !b.done() && ops.len() < MAX_OPS {
        ops.push(match b.n(6) {
            0 => {
                let mut shards = Vec::new();
                for _ in 0..1 + b.n(2) {
                    let dataset = b.below();
                    let shard = b.below();
                    let mut rows = Vec::new();
                    for _ in 0..1 + b.n(4) {
                        let flags = b.u8();
                        let n = b.n(3);
                        let row = b.below();
                        let subjects = Few((0..n).map(|_| b.below()).collect());
                        rows.push(RowOp {
                            row,
                            subjects,
                            profile: b.below(),
                            day: b.below(),
                            key: (flags & 1 == 1).then_some(Below((flags >> 4) % 3)),
                            hash: (flags & 2 == 2).then_some(Below((flags >> 6) % 2)),
                            replace: flags & 4 == 4,
                        });
                    }
                    shards.push(ShardOp {
                        dataset,
                        shard,
                        rows: Few(rows),
                    });
                }
                Op::Ingest(Few(shards))
            }
            1 => {
                let n = 1 + b.n(3);
                Op::Events(Few((0..n).map(|_| event_of_bytes(&mut b)).collect()))
            }
            2 => {
                let policy = PolicyOp(b.u8());
                let at = b.below();
                Op::Manifest(QueryOp {
                    policy,
                    at,
                    seq: SeqOp::Past(b.u8()),
                    scope: ScopeOp::All,
                })
            }
            3 => Op::Snapshot,
            4 => {
                let policy = PolicyOp(b.u8());
                Op::Reopen(QueryOp {
                    policy,
                    at: b.below(),
                    seq: SeqOp::Head,
                    scope: ScopeOp::All,
                })
            }
            _ => Op::IndexRoundTrip,
        });
    }
    ops
}

fn event_of_bytes(b: &mut Bytes) -> EventOp {
    let subject = b.below();
    let kind = match b.n(8) {
        0 => KindOp::Objection {
            purposes: b.purposes(),
            text: b.n(3) == 0,
            source: b.n(4) == 0,
        },
        1 => KindOp::ObjectionWithdrawn {
            purposes: b.purposes(),
        },
        2 => KindOp::Consent {
            purposes: b.purposes(),
            method: b.below(),
            confirmed: b.n(4) != 0,
        },
        3 => KindOp::ConsentWithdrawn {
            purposes: b.purposes(),
        },
        4 => KindOp::Erasure,
        5 => KindOp::Restriction {
            until: if b.n(2) == 0 { Some(b.below()) } else { None },
        },
        6 => KindOp::Takedown(match b.n(3) {
            0 => TargetOp::Key(b.below()),
            1 => TargetOp::Hash(b.below()),
            _ => TargetOp::Record {
                dataset: b.below(),
                shard: b.below(),
                row: b.below(),
            },
        }),
        _ => KindOp::SourceOptout {
            source: b.below(),
            purposes: b.purposes(),
        },
    };
    EventOp {
        subject,
        at: b.below(),
        kind,
    }
}

// ------------------------------------------------- ops: building entries

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

fn purposes_of(p: PurposesOp) -> Purposes {
    match p {
        PurposesOp::All => Purposes::All,
        PurposesOp::Ads => Purposes::Some(vec![Purpose::new("ads").unwrap()]),
        PurposesOp::AiTraining => Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
    }
}

fn batch_of(shards: &[ShardOp]) -> RecordBatch {
    RecordBatch {
        profiles: profiles(),
        shards: shards
            .iter()
            .map(|g| ShardRecords {
                dataset: format!("d{}", g.dataset.0),
                shard: format!("s{}", g.shard.0),
                rows: g
                    .rows
                    .0
                    .iter()
                    .map(|r| RowEntry {
                        row: u32::from(r.row.0),
                        subjects: {
                            let mut s: Vec<SubjectKey> =
                                r.subjects.0.iter().map(|s| subject(s.0)).collect();
                            s.sort_unstable();
                            s.dedup();
                            s
                        },
                        profile: u32::from(r.profile.0),
                        collected_at: day(u64::from(r.day.0)),
                        key: r.key.map(|k| format!("k{}", k.0)),
                        content_hash: r.hash.map(|h| ContentHash([h.0; 32])),
                        replace: r.replace,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn event_of(e: &EventOp) -> Event {
    let s = subject(e.subject.0);
    let kind = match e.kind {
        KindOp::Objection {
            purposes,
            text,
            source,
        } => EventKind::Objection {
            subject: s,
            purposes: purposes_of(purposes),
            categories: if text { vec!["text".into()] } else { vec![] },
            sources: if source { vec!["a.com".into()] } else { vec![] },
        },
        KindOp::ObjectionWithdrawn { purposes } => EventKind::ObjectionWithdrawn {
            subject: s,
            purposes: purposes_of(purposes),
        },
        KindOp::Consent {
            purposes,
            method,
            confirmed,
        } => EventKind::Consent {
            subject: s,
            purposes: purposes_of(purposes),
            method: [
                ConsentMethod::SingleOptIn,
                ConsentMethod::DoubleOptIn,
                ConsentMethod::Delegated,
            ][usize::from(method.0)],
            confirmed,
            granted_by: None,
        },
        KindOp::ConsentWithdrawn { purposes } => EventKind::ConsentWithdrawn {
            subject: s,
            purposes: purposes_of(purposes),
        },
        KindOp::Erasure => EventKind::Erasure { subject: s },
        KindOp::Restriction { until } => EventKind::Restriction {
            subject: s,
            until: until.map(|d| day(u64::from(d.0))),
        },
        KindOp::Takedown(t) => EventKind::Takedown {
            target: match t {
                TargetOp::Key(k) => TakedownTarget::Key(format!("k{}", k.0)),
                TargetOp::Hash(h) => TakedownTarget::ContentHash(ContentHash([h.0; 32])),
                TargetOp::Record {
                    dataset,
                    shard,
                    row,
                } => TakedownTarget::Record {
                    dataset: format!("d{}", dataset.0),
                    shard: format!("s{}", shard.0),
                    row: u32::from(row.0),
                },
            },
            reason: None,
        },
        KindOp::SourceOptout { source, purposes } => EventKind::SourceOptout {
            source: ["a.com", "forum.a.com", "zoom", "dmp:acme"][usize::from(source.0)].into(),
            purposes: purposes_of(purposes),
            signal: None,
        },
    };
    Event {
        at: day(u64::from(e.at.0)),
        reference: None,
        kind,
    }
}

/// The policy of seven switches: bit 0 purpose `ads` (else `ai-training`),
/// 1 consent required for legitimate interest, 2 double opt-in, 3 delegated
/// consent accepted, 4 exclude `audio`, 5 public only, 6 EU only.
pub fn policy_of(p: PolicyOp) -> Policy {
    let flags = p.0;
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

fn scope_of(s: ScopeOp) -> Vec<String> {
    match s {
        ScopeOp::All => vec![],
        ScopeOp::D0 => vec!["d0".into()],
        ScopeOp::D1 => vec!["d1".into()],
        ScopeOp::Both => vec!["d0".into(), "d1".into()],
    }
}

/// A manifest as a reference verdict: every excluded row with its reasons,
/// every shard with its registered count.
pub fn verdict_of_manifest(m: &Manifest) -> reference::Verdict {
    let mut v = reference::Verdict::default();
    for s in &m.shards {
        v.shards
            .insert((s.dataset.clone(), s.shard.clone()), s.registered);
        for r in s.excluded.iter() {
            v.excluded.insert(
                (s.dataset.clone(), s.shard.clone(), r),
                s.reasons_of(r).into_iter().collect(),
            );
        }
    }
    v
}

/// Records (by name) whose newest version at `seq` links `subject`, in
/// `scope`: the naive counterpart of `Index::subject_records`.
fn ref_subject_records(
    log: &[(Seq, Entry)],
    seq: Seq,
    subject: SubjectKey,
    scope: &[String],
) -> BTreeSet<reference::RecordName> {
    let mut newest: BTreeMap<reference::RecordName, &[SubjectKey]> = BTreeMap::new();
    for (s, e) in log {
        if *s > seq {
            continue;
        }
        if let Entry::Records(b) = e {
            for g in &b.shards {
                for r in &g.rows {
                    newest.insert((g.dataset.clone(), g.shard.clone(), r.row), &r.subjects);
                }
            }
        }
    }
    newest
        .into_iter()
        .filter(|(n, subs)| subs.contains(&subject) && (scope.is_empty() || scope.contains(&n.0)))
        .map(|(n, _)| n)
        .collect()
}

/// Lineage by name: run → record → (status, reasons).
type Lineage = BTreeMap<String, BTreeMap<reference::RecordName, (Use, BTreeSet<Reason>)>>;

fn lineage_of(impacts: &[lineage::RunImpact]) -> Lineage {
    impacts
        .iter()
        .map(|i| {
            let recs = i
                .records
                .iter()
                .map(|r| {
                    (
                        (r.dataset.clone(), r.shard.clone(), r.row),
                        (r.status, r.reasons.iter().copied().collect()),
                    )
                })
                .collect();
            (i.run.clone(), recs)
        })
        .collect()
}

// ------------------------------------------------------ ops: the harness

/// The ledger under test, on a `MemIo`, and its mirror: an `Index` fed the
/// same entries, with the entries kept for the naive reference evaluator.
struct Harness {
    io: MemIo,
    /// The ledger under test (`None` only while it is reopened).
    l: Option<Ledger<MemIo>>,
    mirror: Index,
    log: Vec<(Seq, Entry)>,
    /// False once the ledger and the mirror disagreed on accepting a call.
    lockstep: bool,
    /// Ledger seq -> mirror seq of equivalent states, recorded after every
    /// op while in lockstep (both histories are append-only, so a
    /// checkpoint stays valid after a later divergence).
    map: BTreeMap<Seq, Seq>,
    /// The same checkpoints in the order they were taken.
    points: Vec<(Seq, Seq)>,
    stats: OpsStats,
}

/// Runs an op sequence against a fresh ledger and checks, at every step:
///
/// * the engine on the mirror equals `reference::evaluate` on its log, at
///   the head and at a past seq, for the op's policy, time and scope;
/// * the ledger's manifest (at the head, or at a past checkpoint) equals the
///   reference verdict at the equivalent mirror state: every excluded row
///   with its reasons, every shard with its registered count; it
///   round-trips through its bytes and verifies;
/// * a manifest scoped to a dataset the ledger does not know is refused;
/// * a run registers on a fresh name and not on a taken one, and an altered
///   manifest never registers;
/// * `lineage::affected` equals a naive recomputation from the reference;
/// * a reopen (replay, or snapshot + replay) keeps manifests, runs and
///   lineage identical;
/// * the mirror survives its snapshot round trip.
pub fn run_ops(ops: &[Op]) -> OpsStats {
    let io = MemIo::new();
    let mut l = Ledger::create_with(io.clone(), Path::new(ROOT), keyer(), ledger_opts(false))
        .expect("create");
    // Events and manifests name both purposes: both declared (the mirror,
    // an index, has no notion of declarations).
    l.add_purpose("ads", None).expect("declare ads");
    let start = (l.index().seq(), Seq(0));
    let mut h = Harness {
        io,
        l: Some(l),
        mirror: Index::new(),
        log: Vec::new(),
        lockstep: true,
        map: BTreeMap::from([start]),
        points: vec![start],
        stats: OpsStats::default(),
    };
    for op in ops.iter().take(MAX_OPS) {
        h.stats.ops += 1;
        h.step(op);
        if h.lockstep {
            let p = (h.led().index().seq(), h.mirror.seq());
            if h.points.last() != Some(&p) {
                h.map.insert(p.0, p.1);
                h.points.push(p);
            }
        }
    }
    h.stats
}

impl Harness {
    fn led(&self) -> &Ledger<MemIo> {
        self.l.as_ref().expect("ledger open")
    }

    fn led_mut(&mut self) -> &mut Ledger<MemIo> {
        self.l.as_mut().expect("ledger open")
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Ingest(shards) => {
                let batch = batch_of(&shards.0);
                let led = self.led_mut().ingest(batch.clone()).is_ok();
                let e = Entry::Records(batch);
                let seq = Seq(self.mirror.seq().0 + 1);
                let mir = self.mirror.apply(seq, &e).is_ok();
                if mir {
                    self.log.push((seq, e));
                }
                self.lockstep &= led == mir;
            }
            Op::Events(evs) => {
                let evs: Vec<Event> = evs.0.iter().map(event_of).collect();
                let led = self.led_mut().apply(evs.clone()).is_ok();
                let mut mir = true;
                for ev in evs {
                    // An event identical to a recorded one is a no-op
                    // (`unchanged`): the mirror skips it too.
                    if self.mirror.events().iter().any(|(_, x)| *x == ev) {
                        continue;
                    }
                    let e = Entry::Event(ev);
                    let seq = Seq(self.mirror.seq().0 + 1);
                    if self.mirror.apply(seq, &e).is_ok() {
                        self.log.push((seq, e));
                    } else {
                        mir = false;
                    }
                }
                self.lockstep &= led == mir;
            }
            Op::Manifest(q) => {
                self.engine_vs_reference(q);
                self.manifest(q, true);
                if let SeqOp::Past(_) = q.seq {
                    // The head too, so a past query never hides the head.
                    self.manifest(
                        &QueryOp {
                            seq: SeqOp::Head,
                            ..*q
                        },
                        true,
                    );
                }
            }
            Op::Snapshot => {
                let _ = self.led_mut().snapshot();
            }
            Op::Reopen(q) => self.reopen(q),
            Op::IndexRoundTrip => {
                let before = self.mirror.seq();
                let bytes = self.mirror.to_snapshot_bytes().unwrap();
                let mut back = Index::from_snapshot_bytes(&bytes).expect("snapshot round trip");
                assert_eq!(back.seq(), before);
                assert_eq!(
                    back.to_snapshot_bytes().unwrap(),
                    bytes,
                    "index snapshot bytes are canonical"
                );
                self.mirror = back;
            }
            Op::RegisterRun {
                name,
                query,
                started,
            } => self.register_run(*name, query, *started),
            Op::Affected { subject: s, at } => {
                self.affected(subject(s.0), day(u64::from(at.0)));
            }
        }
    }

    /// The checkpoint a query names: (ledger seq, mirror seq).
    fn point(&self, s: SeqOp) -> Option<(Seq, Seq)> {
        match s {
            SeqOp::Head if self.lockstep => Some((self.led().index().seq(), self.mirror.seq())),
            SeqOp::Head => None,
            SeqOp::Past(n) => Some(self.points[usize::from(n) % self.points.len()]),
        }
    }

    fn ledger_query(&self, q: &QueryOp) -> Query {
        Query {
            policy: policy_of(q.policy),
            seq: self
                .point(q.seq)
                .map(|p| p.0)
                .unwrap_or(self.led().index().seq()),
            at: day(u64::from(q.at.0)),
            datasets: scope_of(q.scope),
        }
    }

    /// Whether the mirror's log registered a record of `dataset`.
    fn mirror_knows(&self, dataset: &str) -> bool {
        self.log.iter().any(|(_, e)| match e {
            Entry::Records(b) => b.shards.iter().any(|g| g.dataset == dataset),
            _ => false,
        })
    }

    /// Engine on the mirror vs the reference, at the mirror's head and at a
    /// past seq of the mirror (any, not only checkpoints).
    fn engine_vs_reference(&mut self, q: &QueryOp) {
        let head = self.mirror.seq();
        let past = match q.seq {
            SeqOp::Past(n) => Seq(u64::from(n) % (head.0 + 1)),
            SeqOp::Head => head,
        };
        for seq in [head, past] {
            let mq = Query {
                policy: policy_of(q.policy),
                seq,
                at: day(u64::from(q.at.0)),
                datasets: scope_of(q.scope),
            };
            let got = reference::from_engine(&self.mirror, &engine::evaluate(&self.mirror, &mq));
            let want = reference::evaluate(&self.log, &mq);
            assert_eq!(got, want, "engine differs from reference at {seq:?}");
            self.stats.engine_vs_reference += 1;
        }
    }

    /// The ledger's manifest for `q`, checked; `None` when the ledger
    /// refused it (a scope naming a dataset it does not know).
    fn manifest(&mut self, q: &QueryOp, compare: bool) -> Option<Manifest> {
        let lq = self.ledger_query(q);
        let r = self.led().manifest(&lq);
        if self.lockstep {
            let known = lq.datasets.iter().all(|d| self.mirror_knows(d));
            assert_eq!(r.is_ok(), known, "scope {:?}: manifest {r:?}", lq.datasets);
        }
        let m = r.ok()?;
        assert_eq!(m.header.seq, lq.seq.0);
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes).expect("decodes"), m);
        self.led()
            .verify_manifest(&m)
            .expect("own manifest verifies");
        if compare {
            match self.point(q.seq) {
                Some((_, mseq)) => {
                    let want = reference::evaluate(
                        &self.log,
                        &Query {
                            seq: mseq,
                            ..lq.clone()
                        },
                    );
                    assert_eq!(
                        verdict_of_manifest(&m),
                        want,
                        "ledger manifest at {:?} differs from the reference at mirror {mseq:?}",
                        lq.seq
                    );
                    self.stats.ledger_vs_reference += 1;
                    if matches!(q.seq, SeqOp::Past(_)) {
                        self.stats.past += 1;
                    }
                }
                None => self.stats.diverged += 1,
            }
        }
        Some(m)
    }

    fn reopen(&mut self, q: &QueryOp) {
        self.stats.reopens += 1;
        let before = self.manifest(q, false);
        let runs = self.led().index().runs().to_vec();
        let head = self.led().index().seq();
        let at = day(u64::from(q.at.0));
        let lineage_before: Vec<_> = (0..5)
            .map(|s| lineage::affected(self.led().index(), &subject(s), head, at))
            .collect();
        // The old ledger holds the lock: drop it first.
        self.l = None;
        self.l = Some(
            Ledger::open_with(
                self.io.clone(),
                Path::new(ROOT),
                Some(keyer()),
                ledger_opts(false),
            )
            .expect("reopen"),
        );
        assert_eq!(self.led().index().seq(), head, "reopen changed the head");
        let after = self.manifest(q, false);
        assert_eq!(
            before.map(|m| m.to_bytes()),
            after.map(|m| m.to_bytes()),
            "reopen changed a manifest"
        );
        assert_eq!(
            self.led().index().runs(),
            &runs[..],
            "reopen changed the runs"
        );
        for (s, b) in lineage_before.iter().enumerate() {
            let a = lineage::affected(self.led().index(), &subject(s as u8), head, at);
            assert_eq!(&a, b, "reopen changed the lineage");
        }
    }

    fn register_run(&mut self, name: Below<3>, q: &QueryOp, started: Below<13>) {
        let Some(m) = self.manifest(q, true) else {
            return;
        };
        let name = format!("run{}", name.0);
        let taken = self
            .led()
            .index()
            .runs()
            .iter()
            .any(|(_, r)| r.name == name);
        let started_at = day(u64::from(started.0));
        // An altered manifest, resealed: never registers.
        let mut bad = m.clone();
        bad.header.registered += 1;
        assert!(
            self.led_mut()
                .register_run("altered", "model", &bad, started_at)
                .is_err(),
            "an altered manifest registered"
        );
        let r = self.led_mut().register_run(&name, "model", &m, started_at);
        assert_eq!(r.is_ok(), !taken, "register {name}: {r:?}");
        if r.is_ok() {
            self.stats.runs += 1;
        }
    }

    /// `lineage::affected` against a naive recomputation from the mirror's
    /// log, when every state it needs maps to a mirror state.
    fn affected(&mut self, subject: SubjectKey, now: Timestamp) {
        let head = self.led().index().seq();
        let got = lineage::affected(self.led().index(), &subject, head, now);
        let Some(want) = self.ref_affected(subject, now) else {
            return;
        };
        assert_eq!(lineage_of(&got), want, "lineage differs from the reference");
        for i in &got {
            for r in &i.records {
                assert_eq!(r.reasons.is_empty(), r.status == Use::Used);
            }
        }
        self.stats.affected += 1;
        if !got.is_empty() {
            self.stats.affected_nonempty += 1;
        }
    }

    fn ref_affected(&self, subject: SubjectKey, now: Timestamp) -> Option<Lineage> {
        let head = *self.map.get(&self.led().index().seq())?;
        let mut out = Lineage::new();
        for (run_seq, run) in self.led().index().runs() {
            let trained_seq = *self.map.get(&run.manifest_seq)?;
            let before_seq = *self.map.get(&Seq(run_seq.0 - 1))?;
            let q = |seq: Seq, at: Timestamp| Query {
                policy: run.policy.clone(),
                seq,
                at,
                datasets: run.datasets.clone(),
            };
            let known = ref_subject_records(&self.log, trained_seq, subject, &run.datasets);
            let trained = reference::evaluate(&self.log, &q(trained_seq, run.manifest_at));
            let used: Vec<_> = known
                .into_iter()
                .filter(|n| !trained.excluded.contains_key(n))
                .collect();
            if used.is_empty() {
                continue;
            }
            let before = reference::evaluate(&self.log, &q(before_seq, run.started_at));
            let current = reference::evaluate(&self.log, &q(head, now));
            let recs = used
                .into_iter()
                .map(|n| {
                    let v = if let Some(r) = before.excluded.get(&n) {
                        (Use::Violation, r.clone())
                    } else if let Some(r) = current.excluded.get(&n) {
                        (Use::After, r.clone())
                    } else {
                        (Use::Used, BTreeSet::new())
                    };
                    (n, v)
                })
                .collect();
            out.insert(run.name.clone(), recs);
        }
        Some(out)
    }
}
