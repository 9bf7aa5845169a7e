//! DSR exports into events: CSV shaped as Fides' and OneTrust's downloads,
//! Parquet and Arrow tables; each equal to the JSONL events a user would
//! write by hand, and each bad cell named by file, line (or row) and column.

mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use optout::event::Event;
use optout::jsonl;
use optout::table::{
    arrow_events, csv_events, csv_events_from, parquet_events, At, EventMapping, TableErrorKind,
    TableEvents,
};
use optout::SubjectKeyer;

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([3; 32])
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/table")
        .join(name)
}

fn mapping_file(name: &str) -> EventMapping {
    let p = fixture(name);
    EventMapping::from_json(
        &std::fs::read_to_string(&p).unwrap(),
        &p.display().to_string(),
    )
    .unwrap()
}

fn events(jsonl_text: &str) -> Vec<Event> {
    jsonl::parse_events(jsonl_text.as_bytes(), "events.jsonl", &keyer()).unwrap()
}

#[test]
fn a_fides_download_as_it_ships() {
    let got = csv_events(
        &[fixture("fides_privacy_requests.csv")],
        &mapping_file("fides_mapping.json"),
        &keyer(),
    )
    .unwrap();
    let want = events(concat!(
        r#"{"type":"erasure","subject":"alice@example.com","at":"2024-03-01T12:00:00.123456Z","ref":"pri_0d1f2c3a-1111-4e5f-9a00-000000000001"}"#,
        "\n",
        r#"{"type":"erasure","subject":"carol@example.com","at":"2024-03-03T16:45:10Z","ref":"pri_0d1f2c3a-1111-4e5f-9a00-000000000003"}"#,
        "\n",
    ));
    assert_eq!(got.events, want);
    // The denied request is filtered out; access and consent map to null.
    assert_eq!(got.skipped, 3);
    let lines: Vec<&At> = got.origins.iter().map(|(_, at)| at).collect();
    assert_eq!(lines, [&At::Line(2), &At::Line(4)]);
    // Read again, the same events: what makes a nightly re-apply a no-op
    // once the ledger recognises identical events.
    let again = csv_events(
        &[fixture("fides_privacy_requests.csv")],
        &mapping_file("fides_mapping.json"),
        &keyer(),
    )
    .unwrap();
    assert_eq!(again.events, got.events);
}

#[test]
fn a_onetrust_export_with_us_dates_and_a_default_zone() {
    let got = csv_events(
        &[fixture("onetrust_requests.csv")],
        &mapping_file("onetrust_mapping.json"),
        &keyer(),
    )
    .unwrap();
    // The literal purposes go where the type takes them; an erasure and a
    // restriction cover every purpose, so theirs are dropped.
    let want = events(concat!(
        r#"{"type":"objection","subject":"alice@example.com","at":"2024-03-01T12:00:00Z","purposes":["ai-training"],"ref":"DSR-1001"}"#,
        "\n",
        r#"{"type":"erasure","subject":"bob@example.com","at":"2024-03-02T09:15:00Z","ref":"DSR-1002"}"#,
        "\n",
        r#"{"type":"restriction","subject":"frank@example.com","at":"2024-03-05T16:30:00Z","ref":"DSR-1003"}"#,
        "\n",
    ));
    assert_eq!(got.events, want);
    assert_eq!(got.skipped, 1);
}

fn onetrust_with(edit: impl Fn(&str) -> String) -> String {
    edit(&std::fs::read_to_string(fixture("onetrust_requests.csv")).unwrap())
}

fn run(csv: &str, mapping: &EventMapping) -> optout::table::TableError {
    csv_events_from(
        csv.as_bytes(),
        "export.csv",
        mapping,
        &keyer(),
        &mut TableEvents::default(),
    )
    .unwrap_err()
}

#[test]
fn bad_cells_are_named_by_line_and_column() {
    let m = mapping_file("onetrust_mapping.json");
    // A missing column is reported at the header.
    let e = run(&onetrust_with(|s| s.replacen("Email", "E-mail", 1)), &m);
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::MissingColumn,
            &At::Line(1),
            Some("Email"),
            Some("subject")
        )
    );
    assert!(e.to_string().starts_with("export.csv:1: column `Email` (field `subject`): no such column (the columns are: ID, Name, E-mail,"), "{e}");
    // A word the value map does not know (fail closed, never skipped).
    let e = run(
        &onetrust_with(|s| s.replace("Restrict Processing", "Restrict processing please")),
        &m,
    );
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::BadValue,
            &At::Line(4),
            Some("Request Type"),
            Some("type")
        )
    );
    assert!(
        e.message
            .starts_with("\"Restrict processing please\" is not in the mapping's \"values\""),
        "{e}"
    );
    // Case and white space do not matter to the value map.
    let ok = csv_events_from(
        onetrust_with(|s| s.replace("Delete My Data", " delete my data")).as_bytes(),
        "x.csv",
        &m,
        &keyer(),
        &mut TableEvents::default(),
    );
    assert!(ok.is_ok(), "{ok:?}");
    // A null subject.
    let e = run(&onetrust_with(|s| s.replace("bob@example.com", "")), &m);
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::Null,
            &At::Line(3),
            Some("Email"),
            Some("subject")
        )
    );
    assert_eq!(
        e.to_string(),
        "export.csv:3: column `Email` (field `subject`): null where the event needs a value"
    );
    // A date that does not match the format.
    let e = run(
        &onetrust_with(|s| s.replace("03/05/2024 04:30 PM", "2024-03-05")),
        &m,
    );
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::BadValue,
            &At::Line(4),
            Some("Date Created"),
            Some("at")
        )
    );
    // A value map to a type we do not have: the JSONL rule refuses it.
    let typo = EventMapping::from_json(
        &std::fs::read_to_string(fixture("onetrust_mapping.json"))
            .unwrap()
            .replace("\"erasure\"", "\"erasrue\""),
        "m.json",
    )
    .unwrap();
    let e = run(&onetrust_with(|s| s.to_string()), &typo);
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::BadValue,
            &At::Line(3),
            Some("Request Type"),
            Some("type")
        )
    );
    // A ragged row.
    let e = run(
        &onetrust_with(|s| s.replace(",Completed\nDSR-1002", ",Completed,extra\nDSR-1002")),
        &m,
    );
    assert_eq!(
        (e.kind, &e.at),
        (TableErrorKind::Corrupt, &At::Line(2)),
        "{e}"
    );
    // Without a default zone, a zone-less time says to add one.
    let plain = r#"{"type":"objection","subject":{"column":"email"},"at":{"column":"at"},"purposes":["ai-training"]}"#;
    let m = EventMapping::from_json(plain, "m.json").unwrap();
    let e = run(
        "email,at\na@x.org,2024-03-01T12:00:00Z\nb@x.org,2024-03-01 12:00\n",
        &m,
    );
    assert!(
        e.to_string()
            .starts_with("export.csv:3: column `at` (field `at`): not an RFC 3339 time"),
        "{e}"
    );
    let e = run("email,at\nb@x.org,2024-03-01 12:00:00\n", &m);
    assert!(e.to_string().starts_with("export.csv:2: column `at` (field `at`): \"2024-03-01 12:00:00\" has no time zone: add a time zone (e.g. `Z`)"), "{e}");
}

#[test]
fn quoted_cells_across_lines_keep_their_line() {
    let m = EventMapping::from_json(r#"{"type":"erasure","subject":{"column":"email"},"at":{"column":"at"},"ref":{"column":"note"}}"#, "m.json").unwrap();
    let csv = "email,note,at\na@x.org,\"two\nlines\",2024-01-01T00:00:00Z\nb@x.org,one,\n";
    let e = run(csv, &m);
    assert_eq!((e.kind, &e.at), (TableErrorKind::Null, &At::Line(4)), "{e}");
}

fn dsr_table() -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_type", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new(
            "received_at",
            DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new("ticket", DataType::Int64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["objection", "delete", "objection"])),
        Arc::new(StringArray::from(vec![
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
        ])),
        Arc::new(
            TimestampNanosecondArray::from(vec![
                1_717_200_000_000_000_000,
                1_717_286_400_000_000_000,
                1_717_372_800_500_000_000,
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from(vec![Some(41), Some(42), None])),
    ];
    (schema.clone(), RecordBatch::try_new(schema, cols).unwrap())
}

const ISSUE_MAPPING: &str = r#"{"type": {"column": "request_type", "values": {"objection": "objection", "delete": "erasure"}}, "subject": {"column": "email"}, "at": {"column": "received_at"}, "purposes": ["ai-training"], "ref": {"column": "ticket"}}"#;

fn issue_events() -> Vec<Event> {
    events(concat!(
        r#"{"type":"objection","subject":"alice@example.com","at":"2024-06-01T00:00:00Z","purposes":["ai-training"],"ref":"41"}"#,
        "\n",
        r#"{"type":"erasure","subject":"bob@example.com","at":"2024-06-02T00:00:00Z","ref":"42"}"#,
        "\n",
        r#"{"type":"objection","subject":"carol@example.com","at":"2024-06-03T00:00:00.5Z","purposes":["ai-training"]}"#,
        "\n",
    ))
}

#[test]
fn parquet_and_arrow_exports_with_the_issue_mapping() {
    let m = EventMapping::from_json(ISSUE_MAPPING, "dsr.json").unwrap();
    let (schema, batch) = dsr_table();
    let got = arrow_events(
        RecordBatchIterator::new(vec![Ok(batch.clone())], schema),
        &m,
        &keyer(),
        "<arrow>",
    )
    .unwrap();
    assert_eq!(got.events, issue_events());
    assert_eq!(got.origins[2], ("<arrow>".to_string(), At::Row(2)));

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dsr.parquet");
    let cols: Vec<(&str, ArrayRef)> = ["request_type", "email", "received_at", "ticket"]
        .into_iter()
        .zip(batch.columns().iter().cloned())
        .collect();
    table::write_parquet(&f, cols, &[2, 1]);
    let got = parquet_events(&[&f], &m, &keyer()).unwrap();
    assert_eq!(got.events, issue_events());

    // A missing column is named before any row is read, even in an empty stream.
    let bad = EventMapping::from_json(&ISSUE_MAPPING.replace("\"email\"", "\"mail\""), "dsr.json")
        .unwrap();
    let (schema, _) = dsr_table();
    let e = arrow_events(
        RecordBatchIterator::new(vec![], schema),
        &bad,
        &keyer(),
        "<arrow>",
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.column.as_deref()),
        (TableErrorKind::MissingColumn, Some("mail"))
    );
    // A ticket column of floats is the wrong type.
    let schema = Arc::new(Schema::new(vec![Field::new(
        "ticket",
        DataType::Float64,
        true,
    )]));
    let m2 = EventMapping::from_json(
        r#"{"type":"erasure","subject":"x","at":"2024-01-01T00:00:00Z","ref":{"column":"ticket"}}"#,
        "m.json",
    )
    .unwrap();
    let e = arrow_events(
        RecordBatchIterator::new(vec![], schema),
        &m2,
        &keyer(),
        "<arrow>",
    )
    .unwrap_err();
    assert_eq!(e.kind, TableErrorKind::WrongType);
    assert_eq!(e.to_string(), "<arrow>: column `ticket` (field `ref`): the column is Float64; the field needs a string or integer column");
}

#[test]
fn mapping_files_are_checked_with_field_names() {
    let bad = |text: &str| {
        EventMapping::from_json(text, "m.json")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad(r#"{"type":"objection"}"#),
        "m.json: field `at`: missing (required)"
    );
    assert_eq!(
        bad(r#"{"type":{"colum":"t"},"at":"2024-01-01T00:00:00Z"}"#),
        "m.json: field `type`: unknown key \"colum\" in a column reference (known: column, values)"
    );
    assert_eq!(bad(r#"{"type":"erasure","at":"2024-01-01T00:00:00","subject":"x"}"#), "m.json: field `at`: \"2024-01-01T00:00:00\" has no time zone: add a time zone (e.g. `Z`), or give the mapping a \"default_zone\" such as \"Z\" or \"+01:00\"");
    assert_eq!(bad(r#"{"type":"erasure","at":"2024-01-01T00:00:00Z","default_zone":"CET"}"#), "m.json: field `default_zone`: \"CET\" is not a fixed offset: use \"Z\", \"UTC\" or \"+HH:MM\" / \"-HH:MM\"");
    assert!(
        bad(r#"{"type":"erasure","at":"2024-01-01T00:00:00Z","purposes":"ai-training"}"#)
            .starts_with("m.json: field `purposes`: expected a list of strings")
    );
    assert!(bad("not json").starts_with("m.json: not a JSON mapping"));
    let rec = |text: &str| {
        optout::table::RecordMapping::from_json(text, "r.json")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        rec(r#"{"dataset":{"column":"d"},"subjects":[]}"#),
        "r.json: field `dataset`: must be a literal: a file is a shard of one dataset"
    );
    assert_eq!(
        rec(
            r#"{"dataset":"d","subjects":[],"source":" ","basis":"consent","collected_at":"2024-01-01T00:00:00Z"}"#
        ),
        "r.json: field `source`: must not be empty"
    );
    assert_eq!(rec(r#"{"dataset":"d","subjects":[],"source":"s","basis":"consent","collected_at":"2024-01-01T00:00:00Z","key":"k"}"#), "r.json: field `key`: must be {\"column\": NAME}: a literal would give every row the same value");
    assert_eq!(
        rec(
            r#"{"dataset":"d","subjects":[],"source":"s","basis":"consent","collected_at":"2024-01-01T00:00:00Z","visibility":"Public"}"#
        ),
        "r.json: field `visibility`: \"Public\" is not a visibility (\"public\" or \"private\")"
    );
    assert_eq!(
        rec(r#"{"dataset":"d","subjects":[],"source":"s"}"#),
        "r.json: field `basis`: missing (required)"
    );
}

#[test]
fn a_jsonl_time_without_a_zone_says_to_add_one() {
    let line = r#"{"type":"objection","subject":"a@x.org","at":"2025-06-01T00:00:00","purposes":["ai-training"]}"#;
    let e = jsonl::parse_events(line.as_bytes(), "ev.jsonl", &keyer()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ev.jsonl:1: field `at`: a date and time without a time zone: add a time zone (e.g. `Z`)"
    );
    // The value is not echoed (it may be anything a user typed, an id included).
    assert!(!e.to_string().contains("2025-06-01T00"));
}
