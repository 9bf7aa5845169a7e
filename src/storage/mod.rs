//! Durable storage: the hash-chained event log and snapshots (payload-agnostic).
//!
//! The storage layer stores opaque byte payloads; the layer above encodes
//! events and record batches into them. A ledger directory holds:
//!
//! ```text
//! LEDGER/
//!   LOCK                      lock file (for older builds; the directory itself is locked)
//!   HEAD                      the durable head: the last acknowledged (seq, chain)
//!   log/00000000000000000001.seg   segments: header + frames (see FORMAT.md)
//!   snap/<seq>.snap           the newest two snapshots
//!   quarantine/<seg>-<offset>.torn  torn tails cut off by recovery
//! ```
//!
//! * [`Log`]: open (with recovery), [`Log::append_group`] (atomic groups,
//!   one fsync per group), [`Log::read`], [`Log::replay`], [`Log::chain_at`],
//!   [`Log::write_snapshot`], [`Log::latest_valid_snapshot`].
//! * [`verify`]: a read-only check of every frame, link and snapshot.
//! * [`Io`]: every file-system call goes through it; [`FsIo`] is the real
//!   file system, [`MemIo`] an in-memory twin with crash images and fault
//!   injection for tests.
//!
//! Byte layouts, the write protocol and the recovery rules are in
//! `docs/FORMAT.md`.

mod chain;
mod error;
mod frame;
mod fs;
mod head;
mod io;
mod log;
mod mapped;
pub mod mem;
mod options;
pub mod quarantine;
mod read;
mod recovery;
mod segment;
mod snapshot;
mod types;
mod verify;
mod window;

pub use chain::{CHAIN_CONTEXT, SNAPSHOT_CONTEXT};
pub use error::{Result, StorageError};
pub use frame::MAX_PAYLOAD;
pub use fs::FsIo;
pub use head::{DurableHead, HEAD_FILE};
pub use io::{Io, IoLock};
pub use log::{Log, LOCK_FILE, LOG_DIR, QUARANTINE_DIR, SNAP_DIR};
pub use mapped::MappedBytes;
pub use mem::{CrashKind, Fault, MemIo};
pub use options::{Durability, LogOptions};
pub use recovery::{Recovery, TailReason};
pub use segment::LOG_VERSION;
pub use snapshot::{
    RejectedSnapshot, Sections, Snapshot, SnapshotLoad, KEEP_SNAPSHOTS, MAX_SECTIONS,
    SECTIONS_VERSION, SECTION_ALIGN, SNAPSHOT_VERSION,
};
pub use types::{ChainHash, LedgerId, Seq, SeqRange, SnapshotKey};
pub use verify::{verify, verify_keyed, Finding, FindingKind, VerifyReport};
