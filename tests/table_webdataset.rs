//! WebDataset tar shards into records: a sample per run of members sharing
//! a key, row = sample index in tar order, key = `__key__`, the other
//! fields from the mapping (literals, or fields of the sample's `.json`).

use std::path::Path;

use optout::jsonl;
use optout::table::{webdataset_records, At, FileOptions, RecordMapping, TableErrorKind};
use optout::SubjectKeyer;

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

/// Writes a tar with `members` (name, bytes) in order.
fn write_tar(path: &Path, members: &[(&str, &[u8])]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.finish().unwrap();
}

fn shard(path: &Path) {
    write_tar(
        path,
        &[
            ("__info__", b"{}"),
            ("img/000000.jpg", b"\xff\xd8jpeg"),
            ("img/000000.json", br#"{"author":"alice@example.com","tags":["bob@example.com",null],"created":"2024-03-01T12:00:00Z"}"#),
            ("img/000001.jpg", b"\xff\xd8jpeg"),
            ("img/000001.json", br#"{"author":null,"created":"2024-03-02T12:00:00Z"}"#),
            ("img/README", b"no extension: not a sample"),
            ("img/000002.txt", b"caption only"),
            ("img/000002.JSON", br#"{"author":"Carol@Example.com","created":"2024-03-03T12:00:00+01:00"}"#),
        ],
    );
}

#[test]
fn samples_in_tar_order_equal_the_jsonl_path() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("wds/train/shard-000000.tar");
    shard(&t);
    let m = RecordMapping::from_json(
        r#"{"dataset":"images","subjects":["author","tags"],"source":"photos.example.com","basis":"consent","collected_at":{"column":"created"},"categories":["image"]}"#,
        "wds.json",
    )
    .unwrap();
    let opts = FileOptions {
        root: Some(dir.path().join("wds")),
        threads: 2,
        replace: false,
    };
    let got = webdataset_records(&[&t], &m, &keyer(), &opts).unwrap();
    let want = jsonl::parse_records(
        concat!(
            r#"{"dataset":"images","shard":"train/shard-000000.tar","row":0,"subjects":["alice@example.com","bob@example.com"],"source":"photos.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"consent","categories":["image"],"key":"img/000000"}"#, "\n",
            r#"{"dataset":"images","shard":"train/shard-000000.tar","row":1,"subjects":[],"source":"photos.example.com","collected_at":"2024-03-02T12:00:00Z","basis":"consent","categories":["image"],"key":"img/000001"}"#, "\n",
            r#"{"dataset":"images","shard":"train/shard-000000.tar","row":2,"subjects":["carol@example.com"],"source":"photos.example.com","collected_at":"2024-03-03T11:00:00Z","basis":"consent","categories":["image"],"key":"img/000002"}"#, "\n",
        )
        .as_bytes(),
        "r.jsonl",
        &keyer(),
    )
    .unwrap();
    assert_eq!(got.batch, want);
    assert_eq!(
        (got.files[0].shard.as_str(), got.files[0].rows),
        ("train/shard-000000.tar", 3)
    );

    // Literal fields only: no `.json` is read, and the key stays `__key__`.
    let lit = RecordMapping::from_json(
        r#"{"dataset":"images","subjects":[],"source":"photos.example.com","basis":"licensed","collected_at":"2024-01-01T00:00:00Z"}"#,
        "wds.json",
    )
    .unwrap();
    let got = webdataset_records(&[&t], &lit, &keyer(), &FileOptions::default()).unwrap();
    let keys: Vec<_> = got.batch.shards[0]
        .rows
        .iter()
        .map(|r| (r.row, r.key.clone().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            (0, "img/000000".to_string()),
            (1, "img/000001".into()),
            (2, "img/000002".into())
        ]
    );
    assert_eq!(got.batch.shards[0].shard, "shard-000000.tar");
}

#[test]
fn bad_samples_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = RecordMapping::from_json(
        r#"{"dataset":"images","subjects":["author"],"source":"s","basis":"consent","collected_at":{"column":"created"}}"#,
        "wds.json",
    )
    .unwrap();
    let opts = FileOptions::default();
    // A sample without the time its mapping needs.
    let t = dir.path().join("a.tar");
    write_tar(
        &t,
        &[
            (
                "0.json",
                br#"{"author":"a@x.org","created":"2024-01-01T00:00:00Z"}"#,
            ),
            ("1.jpg", b"x"),
        ],
    );
    let e = webdataset_records(&[&t], &m, &keyer(), &opts).unwrap_err();
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::Null,
            &At::Sample(1),
            Some("created"),
            Some("collected_at")
        )
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{}: sample 1: column `created` (field `collected_at`): null in a required column",
            t.display()
        )
    );
    // A repeated extension within a sample, as WebDataset refuses it.
    let t = dir.path().join("b.tar");
    write_tar(&t, &[("0.jpg", b"x"), ("0.jpg", b"y")]);
    let e = webdataset_records(&[&t], &m, &keyer(), &opts).unwrap_err();
    assert_eq!((e.kind, &e.at), (TableErrorKind::Corrupt, &At::Sample(0)));
    // A subject field of the wrong shape; the error does not quote it.
    let t = dir.path().join("c.tar");
    write_tar(
        &t,
        &[(
            "0.json",
            br#"{"author":{"email":"canary@example.com"},"created":"2024-01-01T00:00:00Z"}"#,
        )],
    );
    let e = webdataset_records(&[&t], &m, &keyer(), &opts).unwrap_err();
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref()),
        (TableErrorKind::BadValue, &At::Sample(0), Some("author"))
    );
    assert!(!e.to_string().contains("canary"), "{e}");
    // Not a tar at all.
    let t = dir.path().join("d.tar");
    std::fs::write(&t, vec![7u8; 1000]).unwrap();
    assert_eq!(
        webdataset_records(&[&t], &m, &keyer(), &opts)
            .unwrap_err()
            .kind,
        TableErrorKind::Corrupt
    );
}

#[test]
fn a_changed_tar_has_another_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("s.tar");
    let m = RecordMapping::from_json(
        r#"{"dataset":"images","subjects":[],"source":"s","basis":"licensed","collected_at":"2024-01-01T00:00:00Z"}"#,
        "wds.json",
    )
    .unwrap();
    shard(&t);
    let a = webdataset_records(&[&t], &m, &keyer(), &FileOptions::default()).unwrap();
    shard(&t);
    let b = webdataset_records(&[&t], &m, &keyer(), &FileOptions::default()).unwrap();
    assert_eq!(a.files, b.files);
    write_tar(&t, &[("img/000000.jpg", b"\xff\xd8jpeg, another image")]);
    let c = webdataset_records(&[&t], &m, &keyer(), &FileOptions::default()).unwrap();
    assert_ne!(a.files[0].footer_blake3, c.files[0].footer_blake3);
}
