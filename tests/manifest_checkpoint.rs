//! The checkpoint a manifest records (issue 16 part 4), in the library:
//! `Ledger::manifest_at_checkpoint` records the tree size and root at the
//! manifest's seq; `verify_manifest` recomputes the root from the log, so
//! a re-sealed manifest with another root is refused; decoding refuses a
//! checkpoint in a version 2 file or at another size than the seq;
//! `check_manifest_checkpoint` names the seq where a rolled-back ledger
//! diverges from a published checkpoint.
#![cfg(feature = "signing")]

use std::path::Path;

use optout::manifest::Manifest;
use optout::storage::MemIo;
use optout::tlog::Hash;
use optout::{jsonl, Ledger, LedgerOptions, SubjectKeyer, Timestamp};

const ID: [u8; 16] = *b"manifest-cp-id!!";

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

fn ledger(io: &MemIo, path: &str) -> Ledger<MemIo> {
    let opts = LedgerOptions {
        ledger_id: Some(ID),
        ..Default::default()
    };
    let mut l = Ledger::create_with(io.clone(), Path::new(path), keyer(), opts).unwrap();
    let recs = "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0,\"subjects\":[\"s1@x.org\"],\"source\":\"forum.x.org\",\"collected_at\":\"2024-03-01T00:00:00Z\",\"basis\":\"legitimate_interest\"}\n";
    l.ingest(jsonl::parse_records(recs.as_bytes(), "r", &keyer()).unwrap())
        .unwrap();
    l
}

fn object(l: &mut Ledger<MemIo>, who: &str) {
    let ev = format!("{{\"type\":\"objection\",\"subject\":\"{who}@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}}\n");
    l.apply(jsonl::parse_events(ev.as_bytes(), "e", &keyer()).unwrap())
        .unwrap();
}

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

#[test]
fn the_recorded_checkpoint_is_the_tree_at_the_seq_and_verifies() {
    let io = MemIo::new();
    let mut l = ledger(&io, "/l");
    object(&mut l, "s1");
    let q = l.query(None, "ai-training", at()).unwrap();
    let m = l.manifest_at_checkpoint(&q).unwrap();
    let t = m.header.checkpoint.clone().unwrap();
    assert_eq!((t.size, t.root), l.tree_head().unwrap());
    assert_eq!(t.size, m.header.seq.0);
    assert_eq!(m.version, 3);
    let back = Manifest::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(back, m);
    l.verify_manifest(&m).unwrap();
    // Only the checkpoint differs from the plain manifest.
    let mut plain = l.manifest(&q).unwrap();
    assert!(plain.header.checkpoint.is_none());
    plain.header.checkpoint = Some(t.clone());
    assert_eq!(plain.to_bytes(), m.to_bytes());
    // An earlier seq records the tree of that many entries.
    object(&mut l, "s2");
    let mut q2 = q.clone();
    q2.seq = optout::Seq(2);
    let m2 = l.manifest_at_checkpoint(&q2).unwrap();
    assert_eq!(
        m2.header.checkpoint.as_ref().map(|t| (t.size, t.root)),
        Some((2, l.tree_root_at(2).unwrap()))
    );
    l.verify_manifest(&m2).unwrap();
}

#[test]
fn a_resealed_manifest_with_another_root_is_refused() {
    let io = MemIo::new();
    let mut l = ledger(&io, "/l");
    object(&mut l, "s1");
    let q = l.query(None, "ai-training", at()).unwrap();
    let mut m = l.manifest_at_checkpoint(&q).unwrap();
    m.header.checkpoint.as_mut().unwrap().root = Hash::from_hex(&"ab".repeat(32)).unwrap();
    // Re-sealed: it decodes, but the ledger's first 3 entries give another root.
    let forged = Manifest::from_bytes(&m.to_bytes()).unwrap();
    let e = l.verify_manifest(&forged).unwrap_err().to_string();
    assert!(e.contains("records tree root abab"), "{e}");
    assert!(e.contains("its history was rewritten"), "{e}");
}

#[test]
fn decoding_refuses_a_misplaced_checkpoint() {
    let io = MemIo::new();
    let mut l = ledger(&io, "/l");
    object(&mut l, "s1");
    let q = l.query(None, "ai-training", at()).unwrap();
    let m = l.manifest_at_checkpoint(&q).unwrap();
    let mut other_size = m.clone();
    other_size.header.checkpoint.as_mut().unwrap().size = 2;
    let e = Manifest::from_bytes(&other_size.to_bytes()).unwrap_err();
    assert!(
        e.what.contains("tree size 2, but the manifest is at seq 3"),
        "{e}"
    );
    let mut v2 = m.clone();
    v2.version = 2;
    let e = Manifest::from_bytes(&v2.to_bytes()).unwrap_err();
    assert!(
        e.what.contains("a checkpoint in a version 2 manifest"),
        "{e}"
    );
    // A header that is not what encoding writes (here: a space) is refused.
    let bytes = m.to_bytes();
    let hl = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut spaced = bytes[..16].to_vec();
    spaced[12..16].copy_from_slice(&(hl as u32 + 1).to_le_bytes());
    spaced.extend_from_slice(&bytes[16..17]);
    spaced.push(b' ');
    spaced.extend_from_slice(&bytes[17..]);
    // Re-seal by hand: the keyed hash of everything before the digest.
    let n = spaced.len();
    let key = blake3::derive_key("optout 2026-11 manifest v1", b"");
    let d = *blake3::keyed_hash(&key, &spaced[..n - 32]).as_bytes();
    spaced[n - 32..].copy_from_slice(&d);
    let e = Manifest::from_bytes(&spaced).unwrap_err();
    assert!(e.what.contains("not in canonical form"), "{e}");
}

#[test]
fn a_rolled_back_ledger_is_named_at_the_seq_it_diverges() {
    let io = MemIo::new();
    let mut l = ledger(&io, "/l");
    object(&mut l, "s1");
    object(&mut l, "s2");
    let published = l.tree_head().unwrap(); // size 4
    let q = l.query(None, "ai-training", at()).unwrap();
    let honest = l.manifest_at_checkpoint(&q).unwrap();
    l.check_manifest_checkpoint(&honest, published).unwrap();
    // Another ledger of the same id (a restored backup) with another seq 3 on.
    let io2 = MemIo::new();
    let mut r = ledger(&io2, "/l");
    object(&mut r, "s9");
    object(&mut r, "s2");
    let q = r.query(None, "ai-training", at()).unwrap();
    let rolled = r.manifest_at_checkpoint(&q).unwrap();
    r.verify_manifest(&rolled).unwrap();
    let e = r
        .check_manifest_checkpoint(&rolled, published)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not extend the checkpoint (tree size 4)"),
        "{e}"
    );
    // One root does not say which entry differs.
    assert!(e.contains("history diverges at or before seq 4"), "{e}");
    // The honest ledger refuses the other history's manifest by its recorded tree.
    let e = l
        .check_manifest_checkpoint(&rolled, published)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not extend the manifest's checkpoint (tree size 4): history diverges at or before seq 4"),
        "{e}"
    );
    // Offline: the same size with another root.
    let e = rolled
        .check_checkpoint(published.0, &published.1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("diverge at or before seq 4"), "{e}");
    honest.check_checkpoint(published.0, &published.1).unwrap();
}
