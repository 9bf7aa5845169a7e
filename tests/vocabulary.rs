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
    // A word nothing is close to and not a well-formed basis name: the
    // known ones are listed, the value is not echoed (it could be a
    // subject id mapped to the wrong column).
    let e =
        jsonl::parse_records(record(0, "ann@x.org").as_bytes(), "r.jsonl", &keyer()).unwrap_err();
    assert!(
        !e.message.contains("did you mean") && e.message.contains("legitimate_interest"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("ann@"),
        "the value is not echoed: {e}"
    );
    // A well-formed word nothing is close to is a candidate extension
    // basis: the ledger refuses it unless declared, and writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("L"), keyer()).unwrap();
    let head = l.head();
    let b = jsonl::parse_records(record(0, "marketing").as_bytes(), "r.jsonl", &keyer()).unwrap();
    let e = l.ingest(b).unwrap_err().to_string();
    assert!(e.contains("`marketing` is not a known legal basis"), "{e}");
    assert!(e.contains("declare it first"), "{e}");
    assert_eq!(l.head(), head, "nothing written");
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

fn manifest_with(l: &Ledger, policy: Option<&str>) -> optout::Result<optout::Manifest> {
    let mut q = l.query(
        None,
        "ai-training",
        Timestamp::parse("2025-01-01T00:00:00Z").unwrap(),
    )?;
    if let Some(p) = policy {
        q.policy = Policy::from_json(p, "policy.json").unwrap();
    }
    l.manifest(&q)
}

#[test]
fn a_declared_basis_is_treated_as_consent_by_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("L"), keyer()).unwrap();
    // Before it is declared, a record naming it is refused, nothing written.
    let text = record(0, "research_exemption") + &record(1, "legitimate_interest");
    let b = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap();
    let e = l.ingest(b).unwrap_err().to_string();
    assert!(
        e.contains("shard s, row 0") && e.contains("declare it first"),
        "{e}"
    );
    assert!(manifest_with(&l, None).unwrap().shard("d", "s").is_none());
    assert!(l.add_basis("research_exemption").unwrap().is_some());
    assert_eq!(
        l.add_basis(" Research_Exemption ").unwrap(),
        None,
        "declared once"
    );
    let b = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap();
    l.ingest(b).unwrap();
    // The default policy does not know it: treated as consent, so excluded.
    let m = manifest_with(&l, None).unwrap();
    let s = m.shard("d", "s").unwrap();
    assert_eq!(s.excluded.iter().collect::<Vec<u32>>(), vec![0]);
    assert_eq!(s.reasons_of(0), vec![Reason::ConsentMissing]);
    // Every subject's confirmed consent lets it through, as for `consent`;
    // a consent withdrawal excludes it again.
    let consent = |t: &str, at: &str| {
        format!("{{\"type\":\"{t}\",\"subject\":\"u0@x.org\",\"at\":\"{at}\",\"purposes\":[\"ai-training\"]{}}}\n", if t == "consent" { ",\"method\":\"single_opt_in\",\"confirmed\":true" } else { "" })
    };
    let ev = consent("consent", "2024-06-01T00:00:00Z");
    l.apply(jsonl::parse_events(ev.as_bytes(), "e.jsonl", &keyer()).unwrap())
        .unwrap();
    let m = manifest_with(&l, None).unwrap();
    assert!(m.shard("d", "s").unwrap().excluded.is_empty());
    let ev = consent("consent_withdrawn", "2024-07-01T00:00:00Z");
    l.apply(jsonl::parse_events(ev.as_bytes(), "e.jsonl", &keyer()).unwrap())
        .unwrap();
    let m = manifest_with(&l, None).unwrap();
    let ex: Vec<u32> = m.shard("d", "s").unwrap().excluded.iter().collect();
    assert_eq!(ex, vec![0]);
}

#[test]
fn undeclared_or_typo_bases_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("L"), keyer()).unwrap();
    // Declaring: a built-in name, a typo of one, an ill-formed name.
    for bad in [
        "consent",
        "consnet",
        "legitimate-interest",
        "has space",
        "9lives",
        "",
    ] {
        assert!(l.add_basis(bad).is_err(), "{bad:?} declared");
    }
    assert!(l.declared_bases().is_empty());
    l.add_basis("research_exemption").unwrap();
    // A typo of a declared basis names it; a typo of a built-in one is
    // refused at parse time with the file, line and field, as before.
    let b = jsonl::parse_records(
        record(0, "research_exemptoin").as_bytes(),
        "r.jsonl",
        &keyer(),
    )
    .unwrap();
    let e = l.ingest(b).unwrap_err().to_string();
    assert!(e.contains("did you mean `research_exemption`?"), "{e}");
    let e = jsonl::parse_records(record(0, "consnet").as_bytes(), "r.jsonl", &keyer()).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (1, Some("basis")));
    assert!(
        e.message.contains("did you mean `consent`?"),
        "{}",
        e.message
    );
    // A policy naming an undeclared extension basis is refused by the
    // ledger, with the closest declared one.
    let p = r#"{"purpose":"ai-training","consent_required_for":["consent","research_exemptoin"]}"#;
    let e = manifest_with(&l, Some(p)).unwrap_err().to_string();
    assert!(
        e.contains("not declared in this ledger; did you mean `research_exemption`?"),
        "{e}"
    );
}
