//! Hostile input for every decoder and parser: truncated, oversized-length,
//! bit-flipped and random inputs give a clean error (never a panic), and
//! hostile length fields do not make a decoder allocate more than a small
//! multiple of its input (a counting allocator measures the peak).
//!
//! Decoders: the index snapshot payload, log entries, manifests, log
//! segments (frames), storage snapshot files (header, digest, payload through
//! `Ledger::open`), JSONL record and event lines, policy files.
//!
//! Complements tests/storage_hostile.rs (segment and snapshot files),
//! tests/tamper_log.rs and tests/manifest.rs (every bit flip and truncation
//! of a sealed manifest).

mod common;
use common::Rng;

#[path = "../fuzz/src/lib.rs"]
#[allow(unused)]
mod fuzz;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use optout::event::Entry;
use optout::storage::{Io, Log, LogOptions, Seq as SSeq};
use optout::{codec, jsonl, Index, Manifest, Policy, SubjectKeyer};

// ---------------------------------------------------------------- allocator

/// Counts live bytes and their peak, per thread (tests run in parallel).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            grow(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            grow(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        shrink(l.size());
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            shrink(l.size());
            grow(new);
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes allocated (above what was live before) while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(|p| p.get()) - base
}

/// The bound: `K` times the input plus a constant. The constant covers
/// serde's capped preallocation from a claimed length (at most 1 MiB per
/// sequence being read) and the decoders' fixed tables.
const K: usize = 8;
const SLACK: usize = 4 << 20;

fn assert_bounded(what: &str, input: usize, peak: usize) {
    assert!(
        peak <= K * input + SLACK,
        "{what}: {peak} bytes allocated for {input} bytes of input"
    );
}

// ---------------------------------------------------------------- helpers

fn snapshot_bytes() -> Vec<u8> {
    let mut ix = Index::new();
    for (i, p) in fuzz::base_payloads().iter().enumerate() {
        let e: Entry = codec::decode(p).unwrap();
        ix.apply(optout::Seq(i as u64 + 1), &e).unwrap();
    }
    ix.to_snapshot_bytes().unwrap()
}

fn manifest_bytes() -> Vec<u8> {
    fuzz::base_manifests()[0].clone()
}

/// Recomputes a manifest's digest (the key is public: the digest detects
/// accidents, so a hostile writer can always produce a sealed file).
fn reseal(b: &mut [u8]) {
    let n = b.len() - 32;
    let key = blake3::derive_key("optout 2026-11 manifest v1", b"");
    let d = *blake3::keyed_hash(&key, &b[..n]).as_bytes();
    b[n..].copy_from_slice(&d);
}

/// Offsets of the five length fields of an index snapshot payload.
fn snapshot_length_fields(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    for width in [1usize, 16, 8, 4, 1] {
        let n = u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
        out.push((at, width));
        at += 8 + n * width;
    }
    assert_eq!(at, b.len());
    out
}

const HOSTILE_U64: [u64; 5] = [u64::MAX, 1 << 40, 1 << 32, u32::MAX as u64, 1 << 24];

// ---------------------------------------------------------------- index snapshot

#[test]
fn snapshot_every_truncation_is_an_error() {
    let b = snapshot_bytes();
    for n in 0..b.len() {
        assert!(Index::from_snapshot_bytes(&b[..n]).is_err(), "prefix {n}");
    }
    let mut long = b.clone();
    long.push(0);
    assert!(Index::from_snapshot_bytes(&long).is_err());
}

/// Over every limit: rejected before anything is allocated.
const OVER_LIMIT: [u64; 3] = [u64::MAX, 1 << 40, 1 << 39];
/// Under the codec limits (64 MiB entries, 256 GiB snapshot sections) but
/// far beyond the input.
const UNDER_LIMIT: [u64; 2] = [1 << 24, (1 << 26) - 1];

#[test]
fn snapshot_oversized_lengths_are_errors_and_bounded() {
    let b = snapshot_bytes();
    for (at, _) in snapshot_length_fields(&b) {
        for v in HOSTILE_U64 {
            let mut h = b.clone();
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let peak = peak_during(|| assert!(Index::from_snapshot_bytes(&h).is_err()));
            assert_bounded("snapshot length field", h.len(), peak);
        }
    }
}

fn snapshot_bincode_lengths(values: &[u64], bounded: bool) {
    // Length prefixes inside the bincode section, at every offset.
    let b = snapshot_bytes();
    let small_end = 16 + u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    for at in 16..small_end.saturating_sub(8) {
        for &v in values {
            let mut h = b.clone();
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let peak = peak_during(|| fuzz::snapshot(&h));
            if bounded {
                assert_bounded(
                    &format!("snapshot bincode length {v} at {at}"),
                    h.len(),
                    peak,
                );
            }
        }
    }
}

#[test]
fn snapshot_bincode_lengths_are_bounded() {
    // Unaligned overwrites make every length in between the limits too.
    snapshot_bincode_lengths(&UNDER_LIMIT, true);
    snapshot_bincode_lengths(&OVER_LIMIT, true);
}

#[test]
fn snapshot_string_length_reproducer_is_bounded() {
    // Found by the snapshot fuzz target: a Policy string in a training run
    // claiming 24 GiB; under AddressSanitizer the process aborts (OOM).
    let h = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/snapshot/oom-string-length-24gib"
    ))
    .unwrap();
    let peak = peak_during(|| assert!(Index::from_snapshot_bytes(&h).is_err()));
    assert_bounded("snapshot reproducer", h.len(), peak);
}

fn snapshot_bit_flips(include_bincode: bool) {
    let b = snapshot_bytes();
    let small_end = 16 + u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    for bit in 0..b.len() * 8 {
        if !include_bincode && (16..small_end).contains(&(bit / 8)) {
            continue;
        }
        let mut h = b.clone();
        h[bit / 8] ^= 1 << (bit % 8);
        // No checksum here (the snapshot file's digest covers it): a flip may
        // decode, but then it must be consistent and evaluable.
        fuzz::snapshot(&h);
    }
}

#[test]
fn snapshot_every_bit_flip_outside_the_bincode_section_is_clean() {
    snapshot_bit_flips(false);
}

#[test]
fn snapshot_every_bit_flip_is_clean() {
    snapshot_bit_flips(true);
}

#[test]
fn snapshot_shard_with_unknown_dataset_is_rejected() {
    // Found by the snapshot fuzz target (fork mode, second pass).
    let h = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/snapshot/panic-shard-dataset-out-of-range"
    ))
    .unwrap();
    let Ok(ix) = Index::from_snapshot_bytes(&h) else {
        return;
    };
    let q = optout::Query {
        policy: Policy::default_for(optout::Purpose::new("ai-training").unwrap()),
        seq: ix.seq(),
        at: optout::Timestamp::parse("2025-06-01T00:00:00Z").unwrap(),
        datasets: vec![],
    };
    let r = std::panic::catch_unwind(|| {
        let ex = optout::engine::evaluate(&ix, &q);
        Manifest::build(&ix, &q, &ex, [0; 16], [0; 32])
    });
    assert!(
        r.is_ok(),
        "decoded an index that panics the manifest builder"
    );
}

#[test]
fn snapshot_duplicate_subject_keys_are_rejected() {
    // F6: the subject table deduplicated the keys while the links kept one
    // row per key, so a subject's records hid behind the second copy.
    let b = snapshot_bytes();
    let fields = snapshot_length_fields(&b);
    let (at, _) = fields[1];
    let n = u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    assert!(n >= 2, "the base index has two subjects");
    let keys = at + 8;
    for (i, j) in [(0, 1), (1, 0)] {
        let mut h = b.clone();
        let k = h[keys + 16 * i..keys + 16 * i + 16].to_vec();
        h[keys + 16 * j..keys + 16 * j + 16].copy_from_slice(&k);
        assert!(
            Index::from_snapshot_bytes(&h).is_err(),
            "duplicate key {i} -> {j} accepted"
        );
    }
    // The fuzzer's reproducer.
    let h = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/snapshot/duplicate-subject-keys"
    ))
    .unwrap();
    assert!(Index::from_snapshot_bytes(&h).is_err());
}

#[test]
fn snapshot_name_lookups_must_match_the_vectors() {
    // F7: the dataset name -> id map was only range-checked. Swapping the
    // ids of "d" and "e" made a manifest scoped to "d" cover "e".
    let b = snapshot_bytes();
    let mut pat = Vec::new();
    for (name, id) in [(b'd', 0u32), (b'e', 1u32)] {
        pat.extend_from_slice(&1u64.to_le_bytes());
        pat.push(name);
        pat.extend_from_slice(&id.to_le_bytes());
    }
    let at = b
        .windows(pat.len())
        .position(|w| w == pat)
        .expect("dataset_ids of the base index");
    let mut h = b.clone();
    h[at + 9..at + 13].copy_from_slice(&1u32.to_le_bytes());
    h[at + 22..at + 26].copy_from_slice(&0u32.to_le_bytes());
    assert!(
        Index::from_snapshot_bytes(&h).is_err(),
        "swapped dataset ids accepted"
    );
    // A repeated map key (the entry for "e" renamed "d"): one would be
    // dropped silently.
    let mut h = b.clone();
    h[at + 21] = b'd';
    assert!(
        Index::from_snapshot_bytes(&h).is_err(),
        "repeated key accepted"
    );
}

/// The base snapshot with its first profile bitmap replaced by `bitmap`
/// (the bincode section's length fixed up).
fn snapshot_with_first_profile_bitmap(bitmap: &[u8]) -> Vec<u8> {
    let b = snapshot_bytes();
    let small = u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    let sec = &b[16..16 + small];
    // A profile bitmap of the base index: 18 bytes, no-run cookie.
    let mut pat = 18u64.to_le_bytes().to_vec();
    pat.extend_from_slice(&12346u32.to_le_bytes());
    let at = sec
        .windows(pat.len())
        .position(|w| w == pat)
        .expect("a profile bitmap");
    let mut new = sec[..at].to_vec();
    new.extend_from_slice(&(bitmap.len() as u64).to_le_bytes());
    new.extend_from_slice(bitmap);
    new.extend_from_slice(&sec[at + 8 + 18..]);
    let mut out = b[..8].to_vec();
    out.extend_from_slice(&(new.len() as u64).to_le_bytes());
    out.extend_from_slice(&new);
    out.extend_from_slice(&b[16 + small..]);
    out
}

#[test]
fn snapshot_profile_bitmaps_must_be_canonical() {
    // F8: trailing bytes after a bitmap were ignored, and run containers
    // expanded (~800x) before anything was checked.
    let b = snapshot_bytes();
    let small = u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    let sec = &b[16..16 + small];
    let mut pat = 18u64.to_le_bytes().to_vec();
    pat.extend_from_slice(&12346u32.to_le_bytes());
    let at = sec.windows(pat.len()).position(|w| w == pat).unwrap();
    let original = sec[at + 8..at + 26].to_vec();
    assert!(Index::from_snapshot_bytes(&snapshot_with_first_profile_bitmap(&original)).is_ok());
    let trailing = [&original[..], &[0u8; 10]].concat();
    assert!(Index::from_snapshot_bytes(&snapshot_with_first_profile_bitmap(&trailing)).is_err());
    let h = snapshot_with_first_profile_bitmap(&run_container_bitmap(2048));
    let peak = peak_during(|| assert!(Index::from_snapshot_bytes(&h).is_err()));
    assert_bounded("snapshot run-container bitmap", h.len(), peak);
}

#[test]
fn snapshot_random_inputs_are_errors() {
    let mut r = Rng::from_state(11);
    for _ in 0..3000 {
        let mut x = r.bytes(300);
        assert!(Index::from_snapshot_bytes(&x).is_err());
        // With the magic, to get past the first check.
        let mut m = b"OOIDXSN1".to_vec();
        if let Ok(real) = std::str::from_utf8(&snapshot_bytes()[..8]) {
            m = real.as_bytes().to_vec();
        }
        m.append(&mut x);
        fuzz::snapshot(&m);
    }
}

// ---------------------------------------------------------------- log entries

#[test]
fn entry_every_truncation_is_an_error() {
    for p in fuzz::base_payloads() {
        for n in 0..p.len() {
            assert!(codec::decode::<Entry>(&p[..n]).is_err());
        }
    }
}

#[test]
fn entry_every_bit_flip_is_clean() {
    for p in fuzz::base_payloads() {
        for bit in 0..p.len() * 8 {
            let mut h = p.clone();
            h[bit / 8] ^= 1 << (bit % 8);
            fuzz::entry(&h);
        }
    }
}

fn entry_lengths(values: &[u64]) {
    for p in fuzz::base_payloads() {
        for at in 0..p.len().saturating_sub(8) {
            for &v in values {
                let mut h = p.clone();
                h[at..at + 8].copy_from_slice(&v.to_le_bytes());
                let peak = peak_during(|| fuzz::entry(&h));
                assert_bounded(&format!("entry length {v} at {at}"), h.len(), peak);
            }
        }
    }
}

#[test]
fn entry_hostile_lengths_are_bounded() {
    entry_lengths(&UNDER_LIMIT);
    entry_lengths(&OVER_LIMIT);
}

#[test]
fn entry_string_length_reproducer_is_bounded() {
    // Entry::Event, reference Some(string of claimed length 32 MiB),
    // in 22 bytes.
    let mut h = vec![2, 0, 0, 0]; // variant Event
    h.extend_from_slice(&0i64.to_le_bytes()); // at
    h.push(1); // reference: Some
    h.extend_from_slice(&(32u64 << 20).to_le_bytes());
    let peak = peak_during(|| assert!(codec::decode::<Entry>(&h).is_err()));
    assert_bounded("entry reproducer", h.len(), peak);
}

#[test]
fn entry_random_inputs_are_clean() {
    let mut r = Rng::from_state(12);
    for _ in 0..5000 {
        let x = r.bytes(200);
        let peak = peak_during(|| fuzz::entry(&x));
        assert_bounded("random entry", x.len(), peak);
    }
}

// ---------------------------------------------------------------- manifests

#[test]
fn manifest_resealed_hostile_u32_at_every_offset_is_rejected() {
    // With the digest recomputed, the structural checks alone must reject
    // an oversized length (or any other u32 overwrite) anywhere.
    let b = manifest_bytes();
    let body = b.len() - 32;
    for at in 8..body - 4 {
        for v in [u32::MAX, 1 << 31, 1 << 20] {
            let mut h = b.clone();
            h[at..at + 4].copy_from_slice(&v.to_le_bytes());
            reseal(&mut h);
            let peak = peak_during(|| match Manifest::from_bytes(&h) {
                Err(_) => {}
                Ok(m) => assert_eq!(
                    m.to_bytes(),
                    h,
                    "offset {at}: accepted a non-canonical file"
                ),
            });
            assert_bounded("manifest length", h.len(), peak);
        }
    }
}

#[test]
fn manifest_every_truncation_is_an_error() {
    // Resealed too, so the structural checks, not the digest, reject it.
    let b = manifest_bytes();
    for n in 0..b.len() {
        assert!(Manifest::from_bytes(&b[..n]).is_err(), "prefix {n}");
        if n >= 48 {
            let mut h = b[..n].to_vec();
            reseal(&mut h);
            assert!(Manifest::from_bytes(&h).is_err(), "resealed prefix {n}");
        }
    }
    let mut long = b.clone();
    long.insert(b.len() - 32, 0);
    reseal(&mut long);
    assert!(
        Manifest::from_bytes(&long).is_err(),
        "trailing byte accepted"
    );
}

#[test]
fn manifest_resealed_bit_flips_are_clean() {
    let b = manifest_bytes();
    // Bytes 10..12 (the reserved field) are skipped: see
    // manifest_reserved_field_must_be_zero.
    for bit in (64..(b.len() - 32) * 8).filter(|b| !(80..96).contains(b)) {
        let mut h = b.clone();
        h[bit / 8] ^= 1 << (bit % 8);
        reseal(&mut h);
        fuzz::manifest(&[&[0u8][..], &h].concat());
    }
}

#[test]
fn manifest_random_inputs_are_errors() {
    let mut r = Rng::from_state(13);
    let b = manifest_bytes();
    for _ in 0..3000 {
        let x = r.bytes(400);
        assert!(Manifest::from_bytes(&x).is_err());
        // A valid prefix, random rest, resealed.
        let cut = (r.next() as usize) % b.len();
        let mut h = [&b[..cut], &x[..], &[0u8; 32][..]].concat();
        if h.len() >= 48 {
            reseal(&mut h);
        }
        assert!(Manifest::from_bytes(&h).is_err() || h == b);
    }
}

#[test]
fn manifest_reserved_field_must_be_zero() {
    let mut h = manifest_bytes();
    h[10] = 1;
    reseal(&mut h);
    assert!(
        Manifest::from_bytes(&h).is_err(),
        "non-canonical manifest accepted"
    );
}

/// A serialized roaring bitmap of `containers` run containers, each one
/// run covering all 65536 values: tiny on disk, 8 KiB per container in
/// memory.
fn run_container_bitmap(containers: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let size = containers;
    v.extend_from_slice(&(12347u32 | ((size - 1) << 16)).to_le_bytes());
    v.extend(std::iter::repeat_n(0xFFu8, size.div_ceil(8) as usize)); // all runs
    for k in 0..size {
        v.extend_from_slice(&(k as u16).to_le_bytes());
        v.extend_from_slice(&u16::MAX.to_le_bytes()); // cardinality - 1
    }
    if size >= 4 {
        for _ in 0..size {
            v.extend_from_slice(&0u32.to_le_bytes()); // offsets, ignored
        }
    }
    for _ in 0..size {
        v.extend_from_slice(&1u16.to_le_bytes()); // one run
        v.extend_from_slice(&0u16.to_le_bytes()); // start
        v.extend_from_slice(&u16::MAX.to_le_bytes()); // length - 1
    }
    v
}

/// The base manifest with its first bitmap (the first shard's excluded
/// rows) replaced by `bitmap`, resealed.
fn manifest_with_first_bitmap(bitmap: &[u8]) -> Vec<u8> {
    let b = manifest_bytes();
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 16 + u32_at(12); // after the header
    at += 4; // shard count
    at += 4 + u32_at(at); // dataset
    at += 4 + u32_at(at); // shard
    at += 8 + 8 + 4; // registered, row end (format 3), bitmap count
    let old = u32_at(at);
    let mut h = b[..at].to_vec();
    h.extend_from_slice(&(bitmap.len() as u32).to_le_bytes());
    h.extend_from_slice(bitmap);
    h.extend_from_slice(&b[at + 4 + old..]);
    reseal(&mut h);
    h
}

#[test]
fn manifest_run_container_bitmap_is_rejected() {
    // Canonical bitmaps never use run containers (roaring 0.10 writes none).
    let h = manifest_with_first_bitmap(&run_container_bitmap(2));
    let e = Manifest::from_bytes(&h).unwrap_err();
    assert!(
        e.what.contains("canonical") || e.what.contains("roaring"),
        "{e}"
    );
}

#[test]
fn manifest_run_container_bitmap_allocation_is_bounded() {
    // 2048 run containers: ~20 KiB of input, 16 MiB decoded; a full 65536
    // containers is ~0.9 MiB of sealed manifest and 512 MiB of memory.
    let h = manifest_with_first_bitmap(&run_container_bitmap(2048));
    let peak = peak_during(|| assert!(Manifest::from_bytes(&h).is_err()));
    assert_bounded("manifest run containers", h.len(), peak);
}

// ---------------------------------------------------------------- segments

#[test]
fn segment_every_truncation_opens_or_errors_cleanly() {
    let seg = fuzz::base_segment();
    for n in (0..seg.len()).step_by(3) {
        let mut input = vec![0u8];
        input.extend_from_slice(&seg[..n]);
        fuzz::segment(&input);
    }
}

#[test]
fn segment_oversized_frame_length_is_bounded() {
    // A frame header (with a good header crc) claiming up to 64 MiB, at
    // every frame position: the length is checked against the file first.
    let seg = fuzz::base_segment();
    let mut at = 84;
    let mut starts = Vec::new();
    while at < seg.len() {
        starts.push(at);
        at += 60 + u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    for &s in &starts {
        for len in [
            optout::storage::MAX_PAYLOAD,
            optout::storage::MAX_PAYLOAD + 1,
            u32::MAX,
        ] {
            let mut h = seg.clone();
            h[s + 4..s + 8].copy_from_slice(&len.to_le_bytes());
            let crc = crc32fast::hash(&h[s..s + 20]);
            h[s + 20..s + 24].copy_from_slice(&crc.to_le_bytes());
            let io = fuzz::base_ledger().fork();
            let p = Path::new(fuzz::SEG);
            io.create_file(p).unwrap();
            io.write_at(p, 0, &h).unwrap();
            let peak = peak_during(|| {
                if let Ok(log) = Log::open(
                    io.clone(),
                    fuzz::ROOT,
                    LogOptions::new().create(false).read_only(true),
                ) {
                    let _ = log.replay::<optout::storage::StorageError, _>(SSeq(1), |_, _| Ok(()));
                }
                let _ = optout::storage::verify(&io, fuzz::ROOT);
            });
            assert_bounded("segment frame length", h.len(), peak);
        }
    }
}

#[test]
fn segment_every_bit_flip_is_clean() {
    // Mode 2 of the segment target: one XOR edit of the valid segment.
    let len = fuzz::base_segment().len();
    for at in 0..len {
        let [lo, hi] = (at as u16).to_le_bytes();
        fuzz::segment(&[2, lo, hi, 1 << (at % 8)]);
    }
}

#[test]
fn segment_random_inputs_are_clean() {
    let mut r = Rng::from_state(14);
    for i in 0..300u32 {
        let mut x = r.bytes(600);
        x.insert(0, (i % 3) as u8);
        fuzz::segment(&x);
    }
}

// ---------------------------------------------------------------- JSONL, policy

const RECORD: &str = r#"{"dataset":"d","shard":"p0","row":3,"subjects":["a@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"consent","categories":["text"],"key":"k","content_hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
const EVENT: &str = r#"{"type":"consent","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["ads","ai-training"],"method":"delegated","confirmed":true,"granted_by":"admin@x.org"}"#;
const POLICY: &str = r#"{"purpose":"ai-training","consent_required_for":["consent"],"require_double_opt_in":true,"exclude_categories":["audio"],"require_visibility":"public","jurisdictions":["EU"]}"#;

fn keyer() -> SubjectKeyer {
    fuzz::keyer()
}

fn record(line: &str) -> bool {
    let mut b = jsonl::BatchBuilder::default();
    jsonl::parse_record_line(&mut b, &keyer(), "f", 1, line).is_ok()
}

fn event(line: &str) -> bool {
    jsonl::parse_event_line(&keyer(), "f", 1, line).is_ok()
}

fn policy(text: &str) -> bool {
    Policy::from_json(text, "p").is_ok()
}

#[test]
fn text_inputs_every_truncation_is_an_error() {
    assert!(record(RECORD) && event(EVENT) && policy(POLICY));
    for (s, f) in [
        (RECORD, record as fn(&str) -> bool),
        (EVENT, event),
        (POLICY, policy),
    ] {
        for n in 0..s.len() {
            assert!(!f(&s[..n]), "prefix {n} of {s} accepted");
        }
    }
}

#[test]
fn text_inputs_bit_flips_and_random_bytes_are_clean() {
    for s in [RECORD, EVENT, POLICY] {
        for bit in 0..s.len() * 8 {
            let mut h = s.as_bytes().to_vec();
            h[bit / 8] ^= 1 << (bit % 8);
            fuzz::jsonl_record(&h);
            fuzz::jsonl_event(&h);
            fuzz::policy(&h);
        }
    }
    let mut r = Rng::from_state(15);
    for _ in 0..3000 {
        let x = r.bytes(200);
        fuzz::jsonl_record(&x);
        fuzz::jsonl_event(&x);
        fuzz::policy(&x);
    }
}

#[test]
fn text_inputs_deep_nesting_and_huge_values_are_errors() {
    let deep = "[".repeat(100_000);
    let deep_obj = format!(r#"{{"dataset":{}"#, "{\"a\":".repeat(50_000));
    let long = format!(
        r#"{{"dataset":"{}","shard":"p","row":1,"subjects":[],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}}"#,
        "x".repeat(1 << 20)
    );
    for s in [deep.as_str(), deep_obj.as_str()] {
        assert!(!record(s) && !event(s) && !policy(s));
    }
    // A long value is fine (bounded by the line) and allocates in proportion.
    let peak = peak_during(|| assert!(record(&long)));
    assert_bounded("long record line", long.len(), peak);
    for bad in [
        r#"{"dataset":"d","shard":"p","row":4294967295,"subjects":[],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}"#,
        r#"{"dataset":"d","shard":"p","row":99999999999999999999,"subjects":[],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}"#,
        r#"{"dataset":"d","shard":"p","row":1,"subjects":[],"source":"x","collected_at":"99999-01-01T00:00:00Z","basis":"consent"}"#,
        r#"{"dataset":"d","shard":"p","row":-1,"subjects":[],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}"#,
    ] {
        assert!(!record(bad), "{bad}");
    }
}

// ---------------------------------------------------------------- snapshot files

/// The snapshot file target with input `mode, rest`.
fn snapshot_file(mode: u8, rest: &[u8]) {
    fuzz::snapshot_file(&[&[mode][..], rest].concat());
}

#[test]
fn snapshot_file_every_truncation_is_rejected() {
    // Raw (the digest fails) and resealed (the length field disagrees with
    // the file, or the payload does not decode): never used, never a panic.
    let b = fuzz::base_snapshot_file();
    for n in 0..b.len() {
        snapshot_file(0, &b[..n]);
        let mut h = b[..n].to_vec();
        fuzz::reseal_snapshot_file(&mut h);
        let peak = peak_during(|| snapshot_file(4, &h));
        assert_bounded("truncated snapshot file", h.len(), peak);
    }
}

#[test]
fn snapshot_file_every_bit_flip_is_clean() {
    // Unsealed: the target asserts the file is rejected and the ledger's
    // manifests are the replayed ones; resealed: no panic.
    let b = fuzz::base_snapshot_file();
    for bit in 0..b.len() * 8 {
        let [lo, hi] = ((bit / 8) as u16).to_le_bytes();
        let edit = [lo, hi, 1 << (bit % 8)];
        snapshot_file(2, &edit);
        if bit % 4 == 0 {
            snapshot_file(6, &edit);
        }
    }
}

#[test]
fn snapshot_file_hostile_lengths_are_bounded() {
    // The payload length field (offset 72), resealed, and the index
    // payload's own length fields inside a well-sealed file.
    let b = fuzz::base_snapshot_file();
    for v in HOSTILE_U64 {
        let mut h = b.clone();
        h[72..80].copy_from_slice(&v.to_le_bytes());
        fuzz::reseal_snapshot_file(&mut h);
        let peak = peak_during(|| snapshot_file(4, &h));
        assert_bounded("snapshot file length", h.len(), peak);
    }
    let payload = &b[80..b.len() - 32];
    for (at, _) in snapshot_length_fields(payload) {
        for v in HOSTILE_U64 {
            let mut p = payload.to_vec();
            p[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let peak = peak_during(|| snapshot_file(1, &p));
            assert_bounded("snapshot payload length", p.len() + 112, peak);
        }
    }
    let small_end = 16 + u64::from_le_bytes(payload[8..16].try_into().unwrap()) as usize;
    for at in (16..small_end - 8).step_by(3) {
        for v in UNDER_LIMIT.iter().chain(&OVER_LIMIT) {
            let mut p = payload.to_vec();
            p[at..at + 8].copy_from_slice(&v.to_le_bytes());
            let peak = peak_during(|| snapshot_file(1, &p));
            assert_bounded("snapshot payload bincode length", p.len() + 112, peak);
        }
    }
}

#[test]
fn snapshot_file_random_inputs_are_clean() {
    let mut r = Rng::from_state(16);
    let b = fuzz::base_snapshot_file();
    for i in 0..400u32 {
        let x = r.bytes(300);
        snapshot_file(0, &x);
        snapshot_file(1, &x);
        // The valid header, then random bytes, resealed.
        let mut h = [&b[..80], &x[..], &[0u8; 32][..]].concat();
        if i % 2 == 0 {
            h[72..80].copy_from_slice(&(x.len() as u64).to_le_bytes());
        }
        snapshot_file(4, &h);
    }
}
