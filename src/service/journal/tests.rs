//! Unit tests of `journal`.

use super::*;
use serde_json::json;

fn intent(key: &str, first: u64, digest: &str) -> Line {
    Line::Intent {
        actor: "desk".into(),
        key: key.into(),
        fp: "f".into(),
        holds: Holds::Events,
        first,
        last: first,
        digest: digest.into(),
        response: json!({"first_seq": first}),
        at: Timestamp::now().to_rfc3339(),
    }
}

#[test]
fn intents_count_only_when_the_ledger_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let never = |_: Holds, _: Seq, _: Seq, _: &str| false;
    let (mut j, r) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    assert_eq!(r, OpenReport::default());
    j.append(&[intent("k1", 5, "d5"), intent("k2", 6, "d6")])
        .unwrap();
    drop(j);
    // Only seq 5 reached the ledger with the digest written.
    let reached = |_: Holds, f: Seq, _: Seq, d: &str| f == Seq(5) && d == "d5";
    let (j, r) = Journal::open(dir.path(), "id", 3600, reached).unwrap();
    assert_eq!((r.resolved, r.dropped, r.keys), (1, 1, 1));
    assert_eq!(
        j.get("desk", "k1").unwrap().response,
        json!({"first_seq": 5})
    );
    assert!(j.get("desk", "k2").is_none() && j.get("other", "k1").is_none());
    drop(j);
    // Compacted: resolved once, remembered as done.
    let (j, r) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    assert_eq!((r.resolved, r.keys), (0, 1));
    assert!(j.get("desk", "k1").is_some());
}

#[test]
fn a_torn_tail_is_cut_and_damage_before_it_refused() {
    let dir = tempfile::tempdir().unwrap();
    let never = |_: Holds, _: Seq, _: Seq, _: &str| false;
    let (mut j, _) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    j.append(&[Line::Done {
        actor: "a".into(),
        key: "k".into(),
        fp: "f".into(),
        response: json!(1),
        at: Timestamp::now().to_rfc3339(),
    }])
    .unwrap();
    drop(j);
    let p = dir.path().join(FILE);
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"{\"line\":\"done\",\"act").unwrap();
    drop(f);
    let (j, r) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    assert!(r.torn_tail && j.get("a", "k").is_some());
    drop(j);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen("\"done\"", "\"dome\"", 1)
            + "{\"line\":\"header\",\"v\":1,\"ledger_id\":\"id\"}\n",
    )
    .unwrap();
    assert!(Journal::open(dir.path(), "id", 3600, never).is_err());
    assert!(Journal::open(tempfile::tempdir().unwrap().path(), "id", 3600, never).is_ok());
}

#[test]
fn a_journal_of_another_ledger_is_refused_and_old_keys_expire() {
    let dir = tempfile::tempdir().unwrap();
    let never = |_: Holds, _: Seq, _: Seq, _: &str| false;
    let (mut j, _) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    j.append(&[Line::Done {
        actor: "a".into(),
        key: "old".into(),
        fp: "f".into(),
        response: json!(1),
        at: "2020-01-01T00:00:00Z".into(),
    }])
    .unwrap();
    drop(j);
    let e = Journal::open(dir.path(), "other", 3600, never).unwrap_err();
    assert!(e.to_string().contains("belongs to ledger id"), "{e}");
    let (j, r) = Journal::open(dir.path(), "id", 3600, never).unwrap();
    assert_eq!((r.expired, j.get("a", "old").is_none()), (1, true));
}

#[test]
fn fingerprints_separate_route_query_and_body() {
    let a = fingerprint("/v1/events", "", b"x");
    assert_eq!(a, fingerprint("/v1/events", "", b"x"));
    assert_ne!(a, fingerprint("/v1/events", "x", b""));
    assert_ne!(a, fingerprint("/v1/records", "", b"x"));
    assert_ne!(
        entries_digest([&b"ab"[..]]),
        entries_digest([&b"a"[..], &b"b"[..]])
    );
}
