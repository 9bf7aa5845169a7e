//! Shard fingerprints: what the log keeps of a data file registered by
//! `ingest --parquet|--webdataset` ([`crate::event::Entry::Files`]), so a
//! re-run of an unchanged file is `unchanged` after reading its footer only,
//! and a changed file is refused unless it is registered with `replace`
//! (docs/FORMAT.md, "Shard fingerprints").

use serde::{Deserialize, Serialize};

/// One registered data file, as its rows were read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Dataset name.
    pub dataset: String,
    /// Shard (the file's path under the data root, `/`-separated).
    pub shard: String,
    /// The file's size in bytes.
    pub size: u64,
    /// blake3 of the footer (Parquet: the metadata and the 8-byte tail; a
    /// tar: every member header and name).
    pub footer_blake3: [u8; 32],
    /// Rows (Parquet) or samples (tar) in the file.
    pub rows: u64,
    /// blake3 of the record mapping the rows were read by: an unchanged
    /// file read by another mapping may give other records, so it is read
    /// and compared row by row.
    pub mapping_blake3: [u8; 32],
}

/// The files of one ingest, recorded after its records in its last group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFiles {
    /// One per file, in input order.
    pub files: Vec<ShardFile>,
}

/// How a file compares with the fingerprint the ledger holds for its shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// No fingerprint is held (a new shard, or one registered otherwise).
    New,
    /// Same size, rows, footer and mapping: nothing to read or write.
    Same,
    /// The same file, read by another mapping: read and compare its rows.
    OtherMapping,
    /// The file changed since it was registered: what changed, in words
    /// (`size 1200 -> 1300 bytes, rows 100 -> 110, footer`).
    Changed(String),
}

impl ShardFile {
    /// Compares `new` (the file as it is now) with `self` (as registered).
    pub fn state_of(&self, new: &ShardFile) -> FileState {
        let mut what = Vec::new();
        if self.size != new.size {
            what.push(format!("size {} -> {} bytes", self.size, new.size));
        }
        if self.rows != new.rows {
            what.push(format!("rows {} -> {}", self.rows, new.rows));
        }
        if self.footer_blake3 != new.footer_blake3 {
            what.push("footer".to_string());
        }
        if !what.is_empty() {
            FileState::Changed(what.join(", "))
        } else if self.mapping_blake3 != new.mapping_blake3 {
            FileState::OtherMapping
        } else {
            FileState::Same
        }
    }
}

/// Where shards end now ([`crate::event::Entry::Ends`], index 9): every
/// row at or past `end` registered before the entry is gone (no version of
/// it is live from the entry's seq on: no manifest counts, excludes or
/// keeps it, no subject is affected through it, and registering it again
/// is a new registration). Written by a replace of a file by a shorter one
/// (`ingest --parquet|--webdataset --replace`, `ingest_arrow(replace)`)
/// and by a JSONL `{"dataset", "shard", "end"}` line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEnds {
    /// One per shard, in input order.
    pub shards: Vec<ShardEnd>,
}

/// One shard's new end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEnd {
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Rows at or past this one are gone.
    pub end: u32,
}

/// The payload of the reserved entry index 8 (`DeriveOwn`, another
/// branch's): uninhabited, so no such entry is built, and one in a log
/// fails to decode (the ledger does not open) instead of being misread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reserved {}
