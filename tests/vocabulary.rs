//! A misspelt legal basis never lets data through (issue 21, part 1): the
//! basis is a closed vocabulary, trimmed and lowercased; anything else is
//! an error naming the file, line and field, with the closest known basis.

use optout::{jsonl, Ledger, Policy, Reason, SubjectKeyer, Timestamp};

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([9; 32])
}

fn record(row: u32, basis: &str) -> String {
    format!(
        "{{\"dataset\":\"d\",\"shard\":\"s\",\"row\":{row},\"subjects\":[\"u{row}@x.org\"],\"source\":\"x.org\",\
         \"collected_at\":\"2024-01-01T00:00:00Z\",\"basis\":\"{basis}\"}}\n"
    )
}

#[test]
fn a_capitalised_or_padded_basis_is_the_basis_and_needs_consent() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("L"), keyer()).unwrap();
    let text = record(0, "consent")
        + &record(1, "Consent")
        + &record(2, " CONSENT ")
        + &record(3, "legitimate_interest");
    let b = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap();
    l.ingest(b).unwrap();
    let q = l
        .query(
            None,
            "ai-training",
            Timestamp::parse("2025-01-01T00:00:00Z").unwrap(),
        )
        .unwrap();
    let m = l.manifest(&q).unwrap();
    let s = m.shard("d", "s").expect("shard s");
    // Rows 0-2 are all consent-basis records without a consent: excluded.
    assert_eq!(s.excluded.iter().collect::<Vec<u32>>(), vec![0, 1, 2]);
    assert_eq!(s.reasons_of(1), vec![Reason::ConsentMissing]);
}

#[test]
fn a_misspelt_basis_is_an_error_with_the_closest_name() {
    let text = record(0, "consent") + &record(1, "consnet");
    let e = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.field.as_deref()),
        ("r.jsonl", 2, Some("basis"))
    );
    assert!(e.message.contains("did you mean `consent`?"), "{e}");
    // A word nothing is close to: the known ones are listed.
    let e =
        jsonl::parse_records(record(0, "marketing").as_bytes(), "r.jsonl", &keyer()).unwrap_err();
    assert!(
        !e.message.contains("did you mean") && e.message.contains("legitimate_interest"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("marketing"),
        "the value is not echoed: {e}"
    );
}

#[test]
fn a_policy_names_only_known_bases_as_stored() {
    let p = |bases: &str| {
        Policy::from_json(
            &format!(r#"{{"purpose":"ai-training","consent_required_for":[{bases}]}}"#),
            "p.json",
        )
    };
    assert!(p(r#""consent","legitimate_interest""#).is_ok());
    let e = p(r#""consent","legitimate_intrest""#).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("consent_required_for"));
    assert!(
        e.message.contains("did you mean `legitimate_interest`?"),
        "{e}"
    );
    let e = p(r#""Consent""#).unwrap_err();
    assert!(e.message.contains("`consent`"), "{e}");
}

#[cfg(feature = "parquet")]
#[test]
fn a_table_mapping_or_cell_with_a_misspelt_basis_is_an_error() {
    use optout::table::{RecordMapping, TableErrorKind};
    let e = RecordMapping::from_json(
        r#"{"dataset":"d","subjects":["email"],"source":"x.org","basis":"consnet","collected_at":"2024-01-01T00:00:00Z"}"#,
        "map.json",
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (TableErrorKind::Mapping, Some("basis"))
    );
    assert!(e.message.contains("did you mean `consent`?"), "{e}");
}
