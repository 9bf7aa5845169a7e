//! Tabular intake (feature `parquet`): Parquet files, Arrow streams, CSV
//! exports and WebDataset tar shards, mapped into the same
//! [`RecordBatch`](crate::event::RecordBatch)es and [`Event`](crate::Event)s
//! the JSONL path builds, with the same rules (profile normalisation,
//! pseudonyms, event validation are the JSONL path's own functions).
//!
//! A mapping file says where each field comes from ([`RecordMapping`],
//! [`EventMapping`]). Positions come from where the data is: a Parquet row
//! is its position in the file (counted from the footer's row groups), an
//! Arrow row its position in the stream, a WebDataset row its sample index
//! in tar order; never a column. Every reader is all or nothing: the first
//! bad value (lowest position) is reported as a [`TableError`] naming the
//! file, the row / line / sample, the column and the field, and nothing is
//! returned.
//!
//! ```
//! use optout::table::{EventMapping, csv_events_from, TableEvents};
//! use optout::SubjectKeyer;
//!
//! let csv = "Request ID,Request Type,Subject Email,Received\n\
//!            T-1,Object,alice@example.com,2025-06-01 09:00:00+02:00\n\
//!            T-2,Delete,bob@example.com,2025-06-02 10:00:00\n";
//! let m = EventMapping::from_json(r#"{"type": {"column": "Request Type", "values": {"Object": "objection", "Delete": "erasure"}},
//!     "subject": {"column": "Subject Email"}, "at": {"column": "Received"},
//!     "purposes": ["ai-training"], "ref": {"column": "Request ID"}}"#, "dsr.json").unwrap();
//! let k = SubjectKeyer::from_secret([1; 32]);
//! let err = csv_events_from(csv.as_bytes(), "export.csv", &m, &k, &mut TableEvents::default()).unwrap_err();
//! assert_eq!(err.to_string(), "export.csv:3: column `Received` (field `at`): \"2025-06-02 10:00:00\" has no time zone: \
//!     add a time zone (e.g. `Z`), or give the mapping a \"default_zone\" such as \"Z\" or \"+01:00\"");
//! ```

mod arrow_batch;
mod arrow_stream;
mod csv_file;
mod error;
mod events;
mod fingerprints;
mod lineage;
mod mapping;
mod par;
mod parquet_file;
mod records;
mod source;
mod timefmt;
mod webdataset;

pub use arrow_stream::{arrow_events, arrow_records, arrow_shard, ArrowRecords};
pub use csv_file::{csv_events, csv_events_from, MAX_CSV};
pub use error::{At, TableError, TableErrorKind};
pub use events::TableEvents;
pub use fingerprints::{mapping_blake3, parquet_fingerprints};
pub use lineage::{parquet_lineage, TableLineage, LINEAGE_COLUMNS};
pub use mapping::{EventMapping, RecordMapping, MAX_MAPPING_FILE};
pub use parquet_file::{
    parquet_events, parquet_records, FileFingerprint, FileOptions, TableRecords, MAX_FOOTER,
};
pub use webdataset::{webdataset_fingerprints, webdataset_records, KEY as WEBDATASET_KEY};
