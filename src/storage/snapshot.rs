//! Snapshots: a payload pinned to a `(seq, chain head)` of the log, written
//! atomically (temp file → fsync → rename → fsync dir) under `LEDGER/snap/`,
//! and authenticated with a secret kept outside the ledger directory.
//!
//! Layout (little-endian, see docs/FORMAT.md, "Snapshots"):
//!
//! | offset | size | field                                                 |
//! |--------|------|-------------------------------------------------------|
//! | 0      | 8    | magic `b"OOUTSNP\0"`                                  |
//! | 8      | 4    | format version (2)                                    |
//! | 12     | 4    | reserved, 0                                           |
//! | 16     | 16   | ledger id                                             |
//! | 32     | 8    | seq the payload reflects                              |
//! | 40     | 32   | chain value after `seq`                               |
//! | 72     | 8    | payload length `n`                                    |
//! | 80     | n    | payload                                               |
//! | 80+n   | 32   | MAC: `keyed_hash(snapshot key, bytes 0..80 ‖ blake3(payload))` |
//!
//! The snapshot key ([`SnapshotKey`]) is derived from the subject key, which
//! lives outside the ledger directory: someone who can write the directory
//! but not read the key cannot make a snapshot an open trusts. A snapshot
//! that fails its MAC, cannot be authenticated (no key given, or format 1,
//! whose digest was keyed by the public ledger id), or whose `(seq, chain)`
//! is not the log's, is never used: [`Log::latest_valid_snapshot`] skips it
//! (falling back to an older one, or to none: replay from the start) and
//! reports it. The log is the authority; snapshots are caches.

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Io;
use super::log::{Log, SNAP_DIR};
use super::mapped::MappedBytes;
use super::recovery::Anchor;
use super::types::{ChainHash, LedgerId, Seq, SnapshotKey};

mod sections;
mod write;

pub use sections::Sections;
use sections::{encode3, read3};

/// `keyed_hash(key, header ‖ blake3(payload))`. The payload enters through
/// its hash, so a later format that splits the payload into sections can
/// authenticate a table of per-section hashes the same way.
fn mac(key: &SnapshotKey, header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key.as_bytes());
    h.update(header);
    h.update(blake3::hash(payload).as_bytes());
    *h.finalize().as_bytes()
}

const MAGIC: [u8; 8] = *b"OOUTSNP\0";
/// Snapshot format of an opaque payload ([`Log::write_snapshot`]; 2:
/// authenticated by a [`SnapshotKey`]; version 1 files are never trusted,
/// see the module docs).
pub const SNAPSHOT_VERSION: u32 = 2;
/// Snapshot format of one in sections ([`Log::write_snapshot_sections`]):
/// fixed-width sections used in place, per-chunk hashes under one MAC.
pub const SECTIONS_VERSION: u32 = 3;
/// Most sections a format 3 snapshot may have.
pub const MAX_SECTIONS: usize = 16;
/// Sections start at multiples of this (from the start of the file, so of
/// the page-aligned map).
pub const SECTION_ALIGN: usize = 64;
/// Format 3 hashes each section in chunks of `1 << CHUNK_LOG2` bytes.
const CHUNK_LOG2: u32 = 20;
const HEADER_LEN: usize = 80;
const DIGEST_LEN: usize = 32;
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".snap.tmp";
/// How many snapshots are kept; older ones are deleted after a new one is durable.
pub const KEEP_SNAPSHOTS: usize = 2;

/// A verified snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The file it was read from.
    pub path: PathBuf,
    /// The payload reflects every frame at or before this seq.
    pub seq: Seq,
    /// The log's chain value after `seq` when the snapshot was written.
    pub chain_head: ChainHash,
    /// The opaque payload (format 2; empty for format 3).
    pub payload: Vec<u8>,
    /// The sections of a format 3 snapshot, in place (`None` for format 2).
    pub sections: Option<Sections>,
    /// Whether its MAC was checked with the snapshot key (only `verify`,
    /// which compares it with a replay of the log, reads one that was not).
    pub authenticated: bool,
}

/// A snapshot file that was skipped, and why.
#[derive(Debug)]
pub struct RejectedSnapshot {
    /// The snapshot file.
    pub path: PathBuf,
    /// Why it was not used ([`StorageError::Corrupt`] or
    /// [`StorageError::SnapshotMismatch`], or an I/O error).
    pub error: StorageError,
}

/// The result of [`Log::latest_valid_snapshot`].
#[derive(Debug, Default)]
pub struct SnapshotLoad {
    /// The newest snapshot that verifies and matches the log, if any.
    pub snapshot: Option<Snapshot>,
    /// Newer snapshot files that were skipped.
    pub rejected: Vec<RejectedSnapshot>,
}

/// Snapshot files in `dir`, newest (highest seq) first.
pub(crate) fn list<I: Io + ?Sized>(io: &I, dir: &Path) -> Result<Vec<(Seq, PathBuf)>> {
    let mut out = Vec::new();
    let names = match io.list_dir(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io("list", dir, e)),
    };
    for name in names {
        let Some(stem) = name.strip_suffix(SUFFIX) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|c| c.is_ascii_digit()) {
            if let Ok(n) = stem.parse::<u64>() {
                out.push((Seq(n), dir.join(name)));
            }
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(out)
}

/// Removes temp files left by a crash during `write_snapshot`.
pub(crate) fn remove_temp_files<I: Io + ?Sized>(io: &I, dir: &Path) -> Result<()> {
    let names = io
        .list_dir(dir)
        .map_err(|e| StorageError::io("list", dir, e))?;
    let mut removed = false;
    for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
        let p = dir.join(name);
        io.remove_file(&p)
            .map_err(|e| StorageError::io("remove", &p, e))?;
        removed = true;
    }
    if removed {
        io.sync_dir(dir)
            .map_err(|e| StorageError::io("sync dir", dir, e))?;
    }
    Ok(())
}

fn encode_header(
    ledger: &LedgerId,
    seq: Seq,
    chain_head: &ChainHash,
    len: u64,
) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    b[16..32].copy_from_slice(ledger.as_bytes());
    b[32..40].copy_from_slice(&seq.0.to_le_bytes());
    b[40..72].copy_from_slice(chain_head.as_bytes());
    b[72..80].copy_from_slice(&len.to_le_bytes());
    b
}

/// How much of a snapshot file [`read`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Everything: the MAC, the padding and every section chunk.
    All,
    /// A format 3 file's header and MAC only (its pin, not its sections,
    /// which are not returned).
    Pin,
}

/// The newest format 3 snapshot in `dir` at or before `head` whose header
/// is authenticated by `key`: the `(seq, chain)` it vouches for, which an
/// open then need not re-verify frame by frame. `None` when there is none
/// (or `dir` cannot be read): the open verifies the whole log. Its
/// sections are checked later, when the snapshot is loaded.
pub(crate) fn trusted_anchor<I: Io + ?Sized>(
    io: &I,
    dir: &Path,
    ledger: &LedgerId,
    key: &SnapshotKey,
    head: Seq,
) -> Option<Anchor> {
    list(io, dir)
        .ok()?
        .into_iter()
        .filter(|(seq, _)| *seq <= head)
        .find_map(|(seq, path)| read(io, &path, seq, ledger, Some(key), false, Check::Pin).ok())
        .map(|s| Anchor {
            seq: s.seq,
            chain: s.chain_head,
        })
}

/// Reads one snapshot file and checks it (not yet against the log), as
/// much as `check` says. The file is read with one allocation sized from
/// its length; header fields are trusted only after they agree with that
/// length and, when `key` is given, the MAC verifies. Without a key the
/// snapshot is returned unauthenticated (for `verify`, which compares it
/// with a replay) only if `allow_unauthenticated`; otherwise it is
/// [`StorageError::SnapshotUnauthenticated`], as is every format 1 file.
pub(crate) fn read<I: Io + ?Sized>(
    io: &I,
    path: &Path,
    name_seq: Seq,
    ledger: &LedgerId,
    key: Option<&SnapshotKey>,
    allow_unauthenticated: bool,
    check: Check,
) -> Result<Snapshot> {
    let corrupt = |off: usize, what: &str| StorageError::corrupt(path, off as u64, None, what);
    super::io::refuse_symlink(io, path)?;
    let len = io
        .file_len(path)
        .map_err(|e| StorageError::io("stat", path, e))?;
    let min = (HEADER_LEN + DIGEST_LEN) as u64;
    if len < min {
        return Err(corrupt(0, "snapshot shorter than header and digest"));
    }
    usize::try_from(len).map_err(|_| StorageError::TooLarge {
        what: "snapshot",
        len,
        max: usize::MAX as u64,
    })?;
    let bytes = std::sync::Arc::new(
        io.map_file(path)
            .map_err(|e| StorageError::io("read", path, e))?,
    );
    let b = bytes.as_bytes();
    if b.len() as u64 != len {
        return Err(corrupt(0, "snapshot changed length while being read"));
    }
    let n = b.len();
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    if b[0..8] != MAGIC {
        return Err(corrupt(0, "bad snapshot magic"));
    }
    let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    let unauthenticated = |what: &str| StorageError::SnapshotUnauthenticated {
        file: path.to_path_buf(),
        what: what.to_owned(),
    };
    match version {
        1 => return Err(unauthenticated(
            "format 1 (an older optout) is sealed with a key derived from the public ledger id, \
                 which anyone who can write the directory can forge",
        )),
        SNAPSHOT_VERSION | SECTIONS_VERSION => {}
        _ => {
            return Err(StorageError::UnsupportedVersion {
                file: path.to_path_buf(),
                version,
            })
        }
    }
    if key.is_none() && !allow_unauthenticated {
        return Err(unauthenticated(
            "no subject key was given to authenticate it",
        ));
    }
    let body = n - DIGEST_LEN;
    if version == SNAPSHOT_VERSION && check == Check::Pin {
        // Its MAC covers the whole payload: not a cheap pin.
        return Err(StorageError::UnsupportedVersion {
            file: path.to_path_buf(),
            version,
        });
    }
    if version == SNAPSHOT_VERSION {
        let payload_len = u64_at(72);
        if payload_len != len - min {
            return Err(corrupt(72, "payload length does not match the file length"));
        }
        if let Some(k) = key {
            if mac(k, &b[..HEADER_LEN], &b[HEADER_LEN..body])[..] != b[body..] {
                return Err(corrupt(
                    body,
                    "snapshot MAC mismatch: damaged, or not written with this ledger's key",
                ));
            }
        }
    }
    if b[12..16] != [0; 4] {
        return Err(corrupt(12, "reserved header bytes are not zero"));
    }
    if b[16..32] != ledger.as_bytes()[..] {
        return Err(corrupt(16, "snapshot belongs to another ledger"));
    }
    let seq = Seq(u64_at(32));
    if seq != name_seq {
        return Err(corrupt(32, "snapshot seq differs from its file name"));
    }
    let mut c = [0u8; 32];
    c.copy_from_slice(&b[40..72]);
    let (payload, sections) = if version == SNAPSHOT_VERSION {
        (b[HEADER_LEN..body].to_vec(), None)
    } else {
        (Vec::new(), Some(read3(path, bytes.clone(), key, check)?))
    };
    Ok(Snapshot {
        path: path.to_path_buf(),
        seq,
        chain_head: ChainHash(c),
        payload,
        sections,
        authenticated: key.is_some(),
    })
}
