//! # optout
//!
//! A ledger that makes AI training honour people's objections.
//!
//! optout keeps, beside an organisation's training data, a record of where
//! every training record came from and which people it concerns. It records
//! objections, consents, withdrawals, erasures, restrictions, takedowns and
//! source-level opt-outs as they arrive, and before every training run it
//! computes an **exclusion manifest**: per data file, the rows that must not
//! be used, with reasons, sealed by a digest and reproducible later.
//!
//! ```
//! use optout::{jsonl, Index, Policy, Purpose, Query, Seq, SubjectKeyer, Timestamp, engine, Entry};
//!
//! let keyer = SubjectKeyer::from_secret([42; 32]);
//! let records = r#"{"dataset":"forum","shard":"part-0","row":0,"subjects":["alice@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest"}
//! {"dataset":"forum","shard":"part-0","row":1,"subjects":["bob@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest"}"#;
//! let events = r#"{"type":"objection","subject":"alice@example.com","at":"2025-06-01T00:00:00Z","purposes":["ai-training"]}"#;
//!
//! let mut index = Index::new();
//! index.apply(Seq(1), &Entry::Records(jsonl::parse_records(records.as_bytes(), "records", &keyer)?))?;
//! for (i, e) in jsonl::parse_events(events.as_bytes(), "events", &keyer)?.into_iter().enumerate() {
//!     index.apply(Seq(2 + i as u64), &Entry::Event(e))?;
//! }
//! let query = Query {
//!     policy: Policy::default_for(Purpose::new("ai-training").unwrap()),
//!     seq: index.seq(),
//!     at: Timestamp::parse("2025-07-01T00:00:00Z").unwrap(),
//!     datasets: vec![],
//! };
//! let ex = engine::evaluate(&index, &query);
//! assert_eq!(ex.excluded(), 1); // alice's post; bob's stays
//! # Ok::<(), optout::Error>(())
//! ```
#![deny(missing_docs)]

// The bincode layer: public only to tests and fuzz targets (`testing`), which
// check the byte formats entry by entry.
#[cfg(any(test, feature = "testing"))]
pub mod codec;
#[cfg(not(any(test, feature = "testing")))]
mod codec;
pub mod engine;
mod error;
pub mod event;
pub mod export;
mod fsutil;
// Shard fingerprints (issue 14).
mod fingerprint;
mod ids;
mod index;
pub mod ingest;
mod ledger;
pub mod lineage;
pub mod manifest;
mod pin;
mod policy;
mod provenance;
mod pseudonym;
mod reason;
#[cfg(any(test, feature = "testing"))]
pub mod reference;
mod render;
pub mod report;
#[cfg(feature = "server")]
pub mod service;
pub mod signals;
mod status;
pub mod storage;
#[cfg(feature = "parquet")]
pub mod table;
mod time;
pub mod tlog;
mod verify;
mod vocab;
#[cfg(any(test, feature = "testing"))]
pub mod workload;

pub use engine::{evaluate, Exclusions, Query, Reason, ShardExclusion};
pub use error::{DeriveError, Error, InputError, LedgerError, Result};
pub use event::{
    Declaration, Derivation, DerivedRow, DerivedShard, Entry, Event, EventKind, ParentRef,
    SignalEvidence, SignalTarget, TrainingRun, Vocabulary,
};
pub use fsutil::{read_bounded, Output};
pub use ids::{
    hex, ChainHash, DatasetId, LedgerId, Purpose, Purposes, RecordId, Seq, ShardId, SubjectKey,
};
pub use index::{Index, IndexStats};
/// The JSONL grammar, at its old path ([`ingest::jsonl`]).
pub use ingest::jsonl;
#[cfg(feature = "signing")]
pub use ledger::{
    create_key_pair, init_signing_key, new_ledger_id, origin_of, verify_ledger_receipt,
    SignedCheckpoint, SigningKeyInit,
};
pub use ledger::{
    default_key_path, default_signing_key_path, default_signing_pub_path, divergence,
    entry_summary, ApplyOptions, ApplySummary, CheckpointCheck, DeriveSummary, ExcludedDerived,
    ExcludedRecord, IngestSummary, Ledger, LedgerOptions, PurposeInfo, AUTO_SNAPSHOT_ROWS,
    DEFAULT_PURPOSE, ORIGIN_PREFIX, TREE_DIR,
};
// Shard fingerprints (issue 14).
pub use fingerprint::{FileState, ShardEnd, ShardEnds, ShardFile, ShardFiles};
#[cfg(feature = "parquet")]
pub use ledger::{FilesError, TableIngest};
pub use manifest::{Manifest, ManifestError, MAX_MANIFEST_FILE};
pub use pin::{PinnedHead, MAX_PIN_FILE};
pub use policy::{Policy, MAX_POLICY_FILE};
pub use provenance::{basis, Profile, Provenance, Visibility};
pub use pseudonym::{key_file_warnings, key_inside_ledger, SubjectKeyer, MAX_KEY_FILE};
pub use render::{event_json, run_json};
pub use status::{ConsentStatus, ObjectionScope, SubjectStatus};
pub use storage::{quarantine::QuarantineFile, Finding, FindingKind, StorageError, VerifyReport};
pub use time::Timestamp;
pub use verify::{verify_ledger, verify_ledger_keyed, verify_ledger_with, LedgerVerify};
