//! How a log is opened and how appends are made durable.

use super::frame::MAX_PAYLOAD;
use super::types::{LedgerId, SnapshotKey};

/// When an appended group becomes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Durable on return: `append_group` writes the group with one write and
    /// one fsync (plus, for a new segment, an fsync of the file and of the log
    /// directory) before it returns Ok. A crash after Ok never loses it.
    #[default]
    Fsync,
    /// Not durable until [`Log::sync`](super::Log::sync) returns Ok: groups
    /// are kept in memory and written (one write, one fsync) when the buffer
    /// exceeds [`LogOptions::buffer_limit`], at segment rotation, before a
    /// snapshot, or on `sync()`. A crash (or dropping the handle without
    /// `sync()`) may lose any group appended since the last successful sync,
    /// always whole groups and always a suffix of the log. For bulk loads.
    Buffered,
}

/// Options for [`Log::open`](super::Log::open).
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub(crate) create: bool,
    pub(crate) read_only: bool,
    pub(crate) durability: Durability,
    pub(crate) segment_size: u64,
    pub(crate) buffer_limit: usize,
    pub(crate) max_payload: u32,
    pub(crate) ledger_id: Option<LedgerId>,
    pub(crate) snapshot_key: Option<SnapshotKey>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            create: true,
            read_only: false,
            durability: Durability::Fsync,
            segment_size: 64 << 20,
            buffer_limit: 4 << 20,
            max_payload: MAX_PAYLOAD,
            ledger_id: None,
            snapshot_key: None,
        }
    }
}

impl LogOptions {
    /// Defaults: create if missing, read-write, [`Durability::Fsync`],
    /// 64 MiB segments, 4 MiB buffer, 64 MiB payload limit, random ledger id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read-write opens create an empty ledger if there is none (default true).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Open read-only: take no lock, modify nothing; a torn tail is reported
    /// in [`Log::recovery`](super::Log::recovery) and ignored (default false).
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// The durability of appends (default [`Durability::Fsync`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Start a new segment when a group would take the current one past
    /// `bytes` (default 64 MiB). A group is never split across segments, so a
    /// segment holding one large group may be bigger.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// In [`Durability::Buffered`] mode, write and fsync once this many bytes
    /// of frames are buffered (default 4 MiB).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Refuse payloads longer than `bytes` (default and maximum: 64 MiB).
    pub fn max_payload(mut self, bytes: u32) -> Self {
        self.max_payload = bytes.min(MAX_PAYLOAD);
        self
    }

    /// The key that authenticates snapshots: written snapshots carry a MAC
    /// under it, and only snapshots whose MAC verifies are used. Without
    /// one (the default) no snapshot is trusted (the log is replayed) and
    /// none can be written.
    pub fn snapshot_key(mut self, key: SnapshotKey) -> Self {
        self.snapshot_key = Some(key);
        self
    }

    /// The id of a ledger created by this open (default: random). Ignored
    /// when the ledger exists. Fixed ids are for reproducible fixtures.
    pub fn ledger_id(mut self, id: LedgerId) -> Self {
        self.ledger_id = Some(id);
        self
    }
}
