//! A golden ledger holding a `Declare` entry of an extension legal basis
//! (`Vocabulary::Basis`, variant 1), checked into
//! tests/fixtures/ledger-basis-v1: this build must open it and give the same
//! answers byte for byte. Regenerate deliberately with
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test golden_basis` when the format
//! changes. Also: what a build that knows only `Vocabulary::Purpose` does
//! with such an entry (it refuses it; it cannot misread it).

use std::path::{Path, PathBuf};

use optout::{jsonl, Declaration, Ledger, LedgerOptions, SubjectKeyer, Timestamp, Vocabulary};
use serde::{Deserialize, Serialize};

mod common;
use common::copy_dir;

const SECRET: [u8; 32] = [0x25; 32];
/// The default-policy manifest digest at the head, as computed when the fixture was made.
const GOLDEN_DIGEST: &str = "9584b6dc1ca5163672a92624107d942473a6776762dfd0b7a23d3028003c668a";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-basis-v1")
}

const RECORDS: &str = r#"{"dataset":"lab","shard":"s0","row":0,"subjects":["ann@example.com"],"source":"lab.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"research_exemption"}
{"dataset":"lab","shard":"s0","row":1,"subjects":["ben@example.com"],"source":"lab.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}"#;

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

fn build(path: &Path) {
    let keyer = SubjectKeyer::from_secret(SECRET);
    let opts = LedgerOptions {
        ledger_id: Some(*b"golden-basis-001"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l =
        Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), opts).unwrap();
    l.add_basis("research_exemption").unwrap();
    l.ingest(jsonl::parse_records(RECORDS.as_bytes(), "records", &keyer).unwrap())
        .unwrap();
}

#[test]
fn golden_basis_ledger_opens_and_answers_the_same() {
    let path = fixture();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let l = common::golden_fixture(&path, &keyer, build, |l| {
        let d = l
            .manifest(&l.query(None, "ai-training", at()).unwrap())
            .unwrap();
        format!("set GOLDEN_DIGEST = \"{}\"", d.digest_hex())
    });
    let bases: Vec<(u64, &str)> = l.declared_bases().iter().map(|(s, n)| (s.0, *n)).collect();
    assert_eq!(bases, vec![(2, "research_exemption")]);
    let m = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    assert_eq!(m.digest_hex(), GOLDEN_DIGEST);
    // The default policy does not know the extension basis: its record
    // needs consent, which nobody gave.
    let ex: Vec<u32> = m.shard("lab", "s0").unwrap().excluded.iter().collect();
    assert_eq!(ex, vec![0]);
    drop(l);
    // A writer of this build appends to a copy: re-ingesting is unchanged,
    // and a misspelt extension basis is still refused.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    copy_dir(&path, &copy);
    let mut w = Ledger::open(&copy, Some(keyer.clone())).unwrap();
    let b = jsonl::parse_records(RECORDS.as_bytes(), "records", &keyer).unwrap();
    assert_eq!(w.ingest(b).unwrap().unchanged, 2);
    let typo = RECORDS
        .replace("research_exemption", "research_exemptoin")
        .replace("\"s0\"", "\"s1\"");
    let b = jsonl::parse_records(typo.as_bytes(), "records", &keyer).unwrap();
    let e = w.ingest(b).unwrap_err().to_string();
    assert!(e.contains("did you mean `research_exemption`"), "{e}");
}

/// `Vocabulary` as a build before `Basis` existed had it.
#[derive(Debug, Serialize, Deserialize)]
enum OldVocabulary {
    Purpose,
}

/// `Declaration` as a build before `Basis` existed had it.
#[derive(Debug, Serialize, Deserialize)]
#[allow(dead_code)]
struct OldDeclaration {
    vocabulary: OldVocabulary,
    name: String,
    description: Option<String>,
}

#[test]
fn a_build_without_basis_refuses_a_basis_declaration_and_reads_purposes_as_before() {
    let decl = |vocabulary| Declaration {
        vocabulary,
        name: "research_exemption".into(),
        description: None,
    };
    let purpose = optout::codec::encode(&decl(Vocabulary::Purpose)).unwrap();
    let basis = optout::codec::encode(&decl(Vocabulary::Basis)).unwrap();
    // The variant's position is what is written: Purpose stays 0.
    assert_eq!(purpose[0], 0);
    assert_eq!(basis[0], 1);
    let old: OldDeclaration = optout::codec::decode(&purpose).unwrap();
    assert!(matches!(old.vocabulary, OldVocabulary::Purpose));
    assert!(optout::codec::decode::<OldDeclaration>(&basis).is_err());
}
