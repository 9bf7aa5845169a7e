//! The per-target checks shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/fuzz_replay.rs`, which includes this file with `#[path]` so
//! `cargo test` replays every seed and regression without cargo-fuzz.
//!
//! Dependencies: `optout`, crates `optout` itself depends on (`blake3`,
//! `crc32fast`) and `arbitrary` (a dev-dependency of the root package), so
//! the root package's integration tests can include it.
//! Every check returns normally for any input; a panic is a finding.
//!
//! Here: the target table ([`TARGETS`], [`run`]); `fixtures` (the base
//! ledger, segment, snapshot files, manifests), `decoders` (one check per
//! parser), `ops` (the operation targets: `grammar`, `build`, `harness`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};

use lineage::Use;
use optout::event::{
    ConsentMethod, ContentHash, Entry, Event, EventKind, RecordBatch, RowEntry, ShardRecords,
    TakedownTarget,
};
use optout::storage::{Io, Log, LogOptions, MemIo, Seq as SSeq};
use optout::{
    codec, engine, jsonl, lineage, reference, Index, Ledger, LedgerOptions, Manifest, Policy,
    Profile, Purpose, Purposes, Query, Reason, Seq, SubjectKey, SubjectKeyer, Timestamp,
    Visibility,
};

mod decoders;
mod fixtures;
mod ops;

pub use decoders::*;
pub use fixtures::*;
pub use ops::*;

/// Every target, by name (the directory names under `fuzz/seeds/`).
pub const TARGETS: &[&str] = &[
    "segment",
    "snapshot",
    "snapshot_file",
    "manifest",
    "entry",
    "jsonl_record",
    "jsonl_event",
    "lineage_jsonl",
    "policy",
    "ops",
    "crawl",
    "ops_arbitrary",
];

/// Runs the check of target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "segment" => segment(data),
        "snapshot" => snapshot(data),
        "snapshot_file" => snapshot_file(data),
        "snapshot_sections" => snapshot_sections(data),
        "manifest" => manifest(data),
        "entry" => entry(data),
        "jsonl_record" => jsonl_record(data),
        "jsonl_event" => jsonl_event(data),
        "lineage_jsonl" => lineage_jsonl(data),
        "policy" => policy(data),
        "ops" => ops(data),
        "crawl" => crawl(data),
        "ops_arbitrary" => ops_arbitrary(data),
        other => panic!("unknown fuzz target {other}"),
    }
}
