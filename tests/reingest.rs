//! Re-ingesting what is registered: identical rows are `unchanged` however
//! many log frames they span, a changed row anywhere is a conflict naming
//! it, and after a `replace` the new content is the one compared against.

use optout::{jsonl, Error, Ledger, SubjectKeyer};

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([3; 32])
}

/// `n` rows of `shard`; row `changed` (if any) with another subject.
fn records(shard: &str, n: u32, changed: Option<u32>, replace: bool) -> String {
    (0..n)
        .map(|r| {
            let who = if Some(r) == changed { "zed".to_string() } else { format!("u{}", r % 977) };
            format!(
                "{{\"dataset\":\"d\",\"shard\":\"{shard}\",\"row\":{r},\"subjects\":[\"{who}@x.org\"],\"source\":\"x.org\",\
                 \"collected_at\":\"2024-01-01T00:00:00Z\",\"basis\":\"legitimate_interest\"{}}}\n",
                if replace { ",\"replace\":true" } else { "" }
            )
        })
        .collect()
}

fn ingest(l: &mut Ledger, text: &str) -> optout::Result<optout::IngestSummary> {
    let b = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap();
    l.ingest(b)
}

#[test]
fn a_re_ingest_spanning_many_frames_is_unchanged_and_a_deep_change_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("L"), keyer()).unwrap();
    // 130,000 rows in two shards: more than two log frames of 50,000 rows.
    let text = records("a", 90_000, None, false) + &records("b", 40_000, None, false);
    let s = ingest(&mut l, &text).unwrap();
    assert_eq!(s.registered, 130_000);
    let head = l.head();
    let s = ingest(&mut l, &text).unwrap();
    assert_eq!((s.registered, s.unchanged), (0, 130_000));
    assert_eq!(l.head(), head, "nothing written");

    // One changed row in the middle of the second frame of shard a, and one
    // in shard b: the first in input order is named, nothing is written.
    let changed = records("a", 90_000, Some(73_311), false) + &records("b", 40_000, Some(5), false);
    match ingest(&mut l, &changed) {
        Err(Error::RecordConflict {
            shard,
            row,
            twice_in_batch: false,
            ..
        }) => {
            assert_eq!((shard.as_str(), row), ("a", 73_311));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(l.head(), head);

    // Replacing row 73,311 of a; then its new content is unchanged and the
    // old one a conflict.
    let one = |who_changed: bool, replace: bool| {
        let all = records("a", 73_312, who_changed.then_some(73_311), replace);
        all.lines().last().unwrap().to_string() + "\n"
    };
    assert_eq!(ingest(&mut l, &one(true, true)).unwrap().registered, 1);
    assert_eq!(ingest(&mut l, &one(true, false)).unwrap().unchanged, 1);
    assert!(matches!(
        ingest(&mut l, &one(false, false)),
        Err(Error::RecordConflict { row: 73_311, .. })
    ));
    // The rest of shard a still compares against its first registration.
    let s = ingest(&mut l, &records("a", 73_311, None, false)).unwrap();
    assert_eq!((s.registered, s.unchanged), (0, 73_311));
}
