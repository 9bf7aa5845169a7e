//! The one-character-edit law (issue 21): a random edit of one character
//! in a record's `basis`, an event's purpose, an event's `type` or the
//! policy's purpose never yields a manifest that lets more rows into
//! training than the unedited input, unless an error or a warning names the
//! edited line (or, for the policy, the purpose).

use std::path::Path;

use optout::storage::MemIo;
use optout::{
    jsonl, ApplyOptions, Error, Ledger, LedgerError, LedgerOptions, Policy, Query, SubjectKeyer,
    Timestamp,
};
use proptest::prelude::*;

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

/// Records: two on the consent basis (excluded without a consent), two
/// legitimate interest. The basis of each is a placeholder.
const RECORDS: [(&str, &str); 4] = [
    ("a@x.org", "consent"),
    ("b@x.org", "legitimate_interest"),
    ("c@x.org", "consent"),
    ("d@x.org", "legitimate_interest"),
];

/// Events: type, subject, purpose (empty: the kind has none).
const EVENTS: [(&str, &str, &str); 4] = [
    ("objection", "b@x.org", "ai-training"),
    ("erasure", "d@x.org", ""),
    ("consent", "c@x.org", "ads"),
    ("restriction", "a@x.org", ""),
];

/// What is edited: the basis of record i, the type or the purpose of
/// event i, or the policy's purpose.
#[derive(Clone, Copy, Debug)]
enum Field {
    Basis(usize),
    Type(usize),
    Purpose(usize),
    Policy,
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Substitute(usize, char),
    Swap(usize),
}

fn apply_edit(w: &str, e: &Edit) -> String {
    let mut c: Vec<char> = w.chars().collect();
    match *e {
        Edit::Insert(i, ch) => c.insert(i % (c.len() + 1), ch),
        Edit::Delete(i) if !c.is_empty() => {
            c.remove(i % c.len());
        }
        Edit::Substitute(i, ch) if !c.is_empty() => {
            let n = c.len();
            c[i % n] = ch;
        }
        Edit::Swap(i) if c.len() > 1 => {
            let j = i % (c.len() - 1);
            c.swap(j, j + 1);
        }
        _ => {}
    }
    c.into_iter().collect()
}

fn records_text(basis: &[String]) -> String {
    RECORDS
        .iter()
        .zip(basis)
        .enumerate()
        .map(|(i, ((s, _), b))| {
            format!(
                "{{\"dataset\":\"d\",\"shard\":\"s\",\"row\":{i},\"subjects\":[\"{s}\"],\"source\":\"x.org\",\
                 \"collected_at\":\"2024-01-01T00:00:00Z\",\"basis\":\"{b}\"}}\n"
            )
        })
        .collect()
}

fn events_text(types: &[String], purposes: &[String]) -> String {
    EVENTS
        .iter()
        .zip(types.iter().zip(purposes))
        .map(|((_, s, p0), (t, p))| {
            let extra = if p0.is_empty() {
                String::new()
            } else {
                let method = if t.as_str() == "consent" || *s == "c@x.org" {
                    ",\"method\":\"double_opt_in\",\"confirmed\":true"
                } else {
                    ""
                };
                format!(",\"purposes\":[\"{p}\"]{method}")
            };
            format!(
                "{{\"type\":\"{t}\",\"subject\":\"{s}\",\"at\":\"2025-01-01T00:00:00Z\"{extra}}}\n"
            )
        })
        .collect()
}

/// What the pipeline said about the input.
enum Outcome {
    /// Refused, naming (file, 1-based line or 0, field or purpose).
    Refused(String, u64, Option<String>),
    /// A manifest: its excluded rows, and the batch positions the apply
    /// warned about.
    Manifest(Vec<u32>, Vec<usize>),
}

fn run(basis: &[String], types: &[String], purposes: &[String], policy: &str) -> Outcome {
    let refused = |e: Error, file: &str| match e {
        Error::Input(i) => Outcome::Refused(i.file, i.line, i.field),
        Error::Ledger(LedgerError::UndeclaredPurpose { event, purpose, .. }) => Outcome::Refused(
            file.to_string(),
            event.map_or(0, |i| i as u64 + 1),
            Some(purpose),
        ),
        e => panic!("unexpected error: {e}"),
    };
    let k = keyer();
    let mut l = Ledger::create_with(
        MemIo::new(),
        Path::new("/L"),
        k.clone(),
        LedgerOptions::default(),
    )
    .unwrap();
    l.add_purpose("ads", None).unwrap();
    let recs = match jsonl::parse_records(records_text(basis).as_bytes(), "records", &k) {
        Ok(r) => r,
        Err(e) => return refused(e.into(), "records"),
    };
    l.ingest(recs).unwrap();
    let evs = match jsonl::parse_events(events_text(types, purposes).as_bytes(), "events", &k) {
        Ok(e) => e,
        Err(e) => return refused(e.into(), "events"),
    };
    let s = match l.apply_with(evs, ApplyOptions::default()) {
        Ok(s) => s,
        Err(e) => return refused(e, "events"),
    };
    let policy = match Policy::from_json(&format!("{{\"purpose\":\"{policy}\"}}"), "policy") {
        Ok(p) => p,
        Err(e) => return refused(e.into(), "policy"),
    };
    let q = Query {
        policy,
        seq: l.index().seq(),
        at: Timestamp::parse("2025-06-01T00:00:00Z").unwrap(),
        datasets: vec![],
    };
    match l.manifest(&q) {
        Ok(m) => {
            let rows = m
                .shard("d", "s")
                .map(|s| s.excluded.iter().collect())
                .unwrap_or_default();
            Outcome::Manifest(rows, [s.no_records, s.unmatched].concat())
        }
        Err(e) => refused(e, "policy"),
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        (0..RECORDS.len()).prop_map(Field::Basis),
        (0..EVENTS.len()).prop_map(Field::Type),
        prop_oneof![Just(0usize), Just(2usize)].prop_map(Field::Purpose),
        Just(Field::Policy),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop::sample::select("abcdeinorstuvyACEGIT_- *01".chars().collect::<Vec<char>>());
    prop_oneof![
        (0..24usize, ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (0..24usize).prop_map(Edit::Delete),
        (0..24usize, ch).prop_map(|(i, c)| Edit::Substitute(i, c)),
        (0..24usize).prop_map(Edit::Swap),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn one_edited_character_never_lets_more_rows_in_silently(f in field(), e in edit()) {
        let mut basis: Vec<String> = RECORDS.iter().map(|(_, b)| b.to_string()).collect();
        let mut types: Vec<String> = EVENTS.iter().map(|(t, _, _)| t.to_string()).collect();
        let mut purposes: Vec<String> = EVENTS.iter().map(|(_, _, p)| p.to_string()).collect();
        let mut policy = "ai-training".to_string();
        let Outcome::Manifest(base, warned) = run(&basis, &types, &purposes, &policy) else {
            panic!("the unedited input is valid");
        };
        prop_assert!(warned.is_empty());
        // Without the edit: rows 0 (consent basis, restricted) 1 (objection)
        // 2 (consent basis, consent only for ads) 3 (erased): all excluded.
        prop_assert_eq!(&base, &vec![0, 1, 2, 3]);
        let (file, line) = match f {
            Field::Basis(i) => { basis[i] = apply_edit(&basis[i], &e); ("records", i as u64 + 1) }
            Field::Type(i) => { types[i] = apply_edit(&types[i], &e); ("events", i as u64 + 1) }
            Field::Purpose(i) => { purposes[i] = apply_edit(&purposes[i], &e); ("events", i as u64 + 1) }
            Field::Policy => { policy = apply_edit(&policy, &e); ("policy", 0) }
        };
        match run(&basis, &types, &purposes, &policy) {
            Outcome::Refused(got_file, got_line, what) => {
                prop_assert_eq!(got_file.as_str(), file, "{:?} {:?}: {:?}", f, e, what);
                prop_assert!(got_line == line || (file == "policy" && got_line <= 1),
                    "{:?} {:?}: refused at line {} ({:?})", f, e, got_line, what);
            }
            Outcome::Manifest(rows, warned) => {
                let lost: Vec<&u32> = base.iter().filter(|r| !rows.contains(r)).collect();
                let named = file == "events" && warned.contains(&(line as usize - 1));
                prop_assert!(lost.is_empty() || named,
                    "{:?} {:?}: rows {:?} let in silently (basis {:?}, types {:?}, purposes {:?}, policy {:?})",
                    f, e, lost, basis, types, purposes, policy);
            }
        }
    }
}
