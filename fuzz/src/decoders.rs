//! The decoder targets: each feeds its input to one parser or reader of
//! the library (segments, snapshots, manifests, entries, JSONL, crawl
//! lines, policies) and checks that it returns an error or a value that
//! survives its own round trip, never a panic.

use super::*;

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
    let io = with_file(base_ledger(), SEG, &bytes);
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
        let q = default_query(&ix, p);
        let a = engine::evaluate(&ix, &q);
        let b = engine::evaluate(&ix2, &q);
        assert_eq!(
            reference::from_engine(&ix, &a),
            reference::from_engine(&ix2, &b)
        );
    }
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
        let q = default_query(&ix, p);
        assert_eq!(engine::evaluate(&ix, &q), engine::evaluate(&twin, &q));
    }
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
    let io = with_file(io0, path, &bytes);
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

/// Lineage JSONL (`optout derive`'s input): what parses round-trips
/// through the codec as a `Derive` entry, and `Ledger::derive` over the
/// base ledger (sources `d` and `e`; `--allow-missing-parents` when the
/// first byte is odd) registers it or refuses it with a located error;
/// when registered, a manifest of the derived dataset is computed.
pub fn lineage_jsonl(data: &[u8]) {
    lineage_jsonl_registered(data);
}

/// [`lineage_jsonl`], telling whether the derivation was registered.
pub fn lineage_jsonl_registered(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else {
        return false;
    };
    let sources = vec!["d".to_string(), "e".to_string()];
    let mut b = jsonl::DerivationBuilder::new("packed", &sources, flags & 1 == 1);
    if b.parse(rest, "fuzz").is_err() {
        return false;
    }
    let d = b.take();
    let e = Entry::Derive(d.clone());
    let bytes = codec::encode(&e).unwrap();
    assert_eq!(codec::decode::<Entry>(&bytes).unwrap(), e);
    let mut l = Ledger::open_with(
        base_ledger().fork(),
        Path::new(ROOT),
        Some(keyer()),
        ledger_opts(false),
    )
    .unwrap();
    let before = l.head();
    match l.derive(d) {
        Err(_) => {
            assert_eq!(l.head(), before, "a refused derivation wrote nothing");
            false
        }
        // Nothing new (an empty input, or rows already derived alike):
        // nothing written, and `packed` may not exist at all.
        Ok(s) if s.registered == 0 => {
            assert_eq!(l.head(), before, "an empty derivation wrote nothing");
            false
        }
        Ok(_) => {
            let mut q = l
                .query(None, "ai-training", t("2025-06-01T00:00:00Z"))
                .unwrap();
            q.datasets = vec!["packed".into()];
            let _ = l.manifest(&q).unwrap();
            true
        }
    }
}
