//! The fixtures every target starts from: the fuzz ledger's key and paths,
//! a base ledger (in memory), its segment, snapshot files of both formats,
//! base manifests, and encoders of framed and sectioned inputs.

use super::*;

/// The subject key's secret of every fuzz ledger.
pub const SECRET: [u8; 32] = [5; 32];

pub fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret(SECRET)
}

pub const ROOT: &str = "/l";
pub const SEG: &str = "/l/log/00000000000000000001.seg";
pub const LEDGER_ID: [u8; 16] = *b"fuzz-ledger-id!!";

pub(crate) fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub(crate) fn day(d: u64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + d as i64 * 86_400)
}

pub(crate) fn ledger_opts(read_only: bool) -> LedgerOptions {
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
pub fn base_manifests() -> &'static Vec<Vec<u8>> {
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

/// The payloads of the base ledger's log, in order.
pub fn base_payloads() -> Vec<Vec<u8>> {
    let io = base_ledger().fork();
    let log = Log::open(io, ROOT, LogOptions::new().create(false).read_only(true)).unwrap();
    let mut out = Vec::new();
    log.replay::<optout::storage::StorageError, _>(SSeq(1), |_, p| {
        out.push(p.to_vec());
        Ok(())
    })
    .unwrap();
    out
}

/// A fork of `base` with the file at `path` replaced by `bytes`.
pub fn with_file(base: &MemIo, path: &str, bytes: &[u8]) -> MemIo {
    let io = base.fork();
    let p = Path::new(path);
    io.create_file(p).unwrap();
    io.write_at(p, 0, bytes).unwrap();
    io
}

/// The query of `purpose`'s default policy over all of `ix`, at its seq
/// and 2025-06-01.
pub fn default_query(ix: &Index, purpose: &str) -> Query {
    Query {
        policy: Policy::default_for(Purpose::new(purpose).unwrap()),
        seq: ix.seq(),
        at: t("2025-06-01T00:00:00Z"),
        datasets: vec![],
    }
}
