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
use super::types::{ChainHash, LedgerId, Seq, SnapshotKey};

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
/// Current snapshot format version (2: authenticated by a [`SnapshotKey`];
/// version 1 files are never trusted, see the module docs).
pub const SNAPSHOT_VERSION: u32 = 2;
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
    /// The opaque payload.
    pub payload: Vec<u8>,
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

/// Reads one snapshot file and checks it (not yet against the log). The
/// file is read with one allocation sized from its length; header fields
/// are trusted only after they agree with that length and, when `key` is
/// given, the MAC verifies. Without a key the snapshot is returned
/// unauthenticated (for `verify`, which compares it with a replay) only if
/// `allow_unauthenticated`; otherwise it is
/// [`StorageError::SnapshotUnauthenticated`], as is every format 1 file.
pub(crate) fn read<I: Io + ?Sized>(
    io: &I,
    path: &Path,
    name_seq: Seq,
    ledger: &LedgerId,
    key: Option<&SnapshotKey>,
    allow_unauthenticated: bool,
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
    let n = usize::try_from(len).map_err(|_| StorageError::TooLarge {
        what: "snapshot",
        len,
        max: usize::MAX as u64,
    })?;
    let mut b = vec![0u8; n];
    io.read_at(path, 0, &mut b)
        .map_err(|e| StorageError::io("read", path, e))?;
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    if b[0..8] != MAGIC {
        return Err(corrupt(0, "bad snapshot magic"));
    }
    let payload_len = u64_at(72);
    if payload_len != len - min {
        return Err(corrupt(72, "payload length does not match the file length"));
    }
    let body = n - DIGEST_LEN;
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
        SNAPSHOT_VERSION => {}
        _ => {
            return Err(StorageError::UnsupportedVersion {
                file: path.to_path_buf(),
                version,
            })
        }
    }
    let authenticated = match key {
        Some(k) => {
            if mac(k, &b[..HEADER_LEN], &b[HEADER_LEN..body])[..] != b[body..] {
                return Err(corrupt(
                    body,
                    "snapshot MAC mismatch: damaged, or not written with this ledger's key",
                ));
            }
            true
        }
        None if allow_unauthenticated => false,
        None => {
            return Err(unauthenticated(
                "no subject key was given to authenticate it",
            ))
        }
    };
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
    // Reuse the one allocation: drop the digest, shift the payload down.
    b.truncate(body);
    b.drain(..HEADER_LEN);
    Ok(Snapshot {
        path: path.to_path_buf(),
        seq,
        chain_head: ChainHash(c),
        payload: b,
        authenticated,
    })
}

impl<I: Io> Log<I> {
    /// Whether `(seq, chain_head)` is a state of this log.
    pub(crate) fn check_pin(&self, file: &Path, seq: Seq, chain_head: &ChainHash) -> Result<()> {
        let mismatch = |what: &str| StorageError::SnapshotMismatch {
            file: file.to_path_buf(),
            seq,
            what: what.to_owned(),
        };
        if seq > self.head {
            return Err(mismatch("seq is beyond the log's head"));
        }
        if self.chain_at(seq)? != *chain_head {
            return Err(mismatch("chain head differs from the log's chain at seq"));
        }
        Ok(())
    }

    /// Writes a snapshot of the state at `seq` (whose chain value must be
    /// `chain_head`) atomically, authenticated with the snapshot key of the
    /// log's options ([`LogOptions::snapshot_key`](super::LogOptions::snapshot_key);
    /// [`StorageError::NoSnapshotKey`] without one), then deletes all but
    /// the newest [`KEEP_SNAPSHOTS`]. Syncs the log first, so a snapshot
    /// never refers to frames that are not durable. Returns the snapshot's
    /// path. Any I/O failure poisons the handle; the temp file is removed.
    pub fn write_snapshot(
        &mut self,
        seq: Seq,
        chain_head: ChainHash,
        payload: &[u8],
    ) -> Result<PathBuf> {
        self.check_writable()?;
        let Some(key) = self.opts.snapshot_key else {
            return Err(StorageError::NoSnapshotKey);
        };
        self.sync()?;
        let dir = self.root.join(SNAP_DIR);
        let fin = dir.join(format!("{:020}{SUFFIX}", seq.0));
        self.check_pin(&fin, seq, &chain_head)?;
        let tmp = dir.join(format!("{:020}{TEMP_SUFFIX}", seq.0));
        let header = encode_header(&self.ledger, seq, &chain_head, payload.len() as u64);
        let digest = mac(&key, &header, payload);
        self.check_root()?;
        let written = self.write_temp(&tmp, &header, payload, &digest);
        if written.is_err() {
            // Best effort: the next read-write open removes it otherwise.
            let _ = self.io.remove_file(&tmp);
        }
        written?;
        let r = self.io.rename(&tmp, &fin);
        self.step("rename", &tmp, r)?;
        let r = self.io.sync_dir(&dir);
        self.step("sync dir", &dir, r)?;

        // Prune only after the new one is durable.
        let all = list(&self.io, &dir)?;
        let mut pruned = false;
        // Never the one just written (it may be older than the kept ones).
        for (_, old) in all.iter().skip(KEEP_SNAPSHOTS).filter(|(_, p)| *p != fin) {
            let r = self.io.remove_file(old);
            self.step("remove", old, r)?;
            pruned = true;
        }
        if pruned {
            let r = self.io.sync_dir(&dir);
            self.step("sync dir", &dir, r)?;
        }
        Ok(fin)
    }

    fn write_temp(
        &mut self,
        tmp: &Path,
        header: &[u8],
        payload: &[u8],
        digest: &[u8; 32],
    ) -> Result<()> {
        let r = self.io.create_file(tmp);
        self.step("create", tmp, r)?;
        let r = self.io.write_at(tmp, 0, header);
        self.step("write", tmp, r)?;
        let r = self.io.write_at(tmp, HEADER_LEN as u64, payload);
        self.step("write", tmp, r)?;
        let r = self
            .io
            .write_at(tmp, (HEADER_LEN + payload.len()) as u64, digest);
        self.step("write", tmp, r)?;
        let r = self.io.sync_file(tmp);
        self.step("sync", tmp, r)
    }

    /// The newest snapshot that is authenticated by the options' snapshot
    /// key and matches this log's chain at its seq; newer files that do not
    /// (without a key: every file) are skipped and listed in
    /// [`SnapshotLoad::rejected`]. `snapshot: None` means: replay the whole log.
    pub fn latest_valid_snapshot(&self) -> Result<SnapshotLoad> {
        self.snapshot_search(false)
    }

    /// The newest snapshot that matches this log's chain at its seq, read
    /// without authentication when the options carry no key. Never trust
    /// its payload: it is for `verify`, which compares it with a replay.
    pub fn latest_snapshot_to_compare(&self) -> Result<SnapshotLoad> {
        self.snapshot_search(true)
    }

    fn snapshot_search(&self, allow_unauthenticated: bool) -> Result<SnapshotLoad> {
        self.check_readable()?;
        let mut load = SnapshotLoad::default();
        let key = self.opts.snapshot_key.as_ref();
        for (name_seq, path) in list(&self.io, &self.root.join(SNAP_DIR))? {
            match read(
                &self.io,
                &path,
                name_seq,
                &self.ledger,
                key,
                allow_unauthenticated,
            )
            .and_then(|s| self.check_pin(&path, s.seq, &s.chain_head).map(|()| s))
            {
                Ok(s) => {
                    load.snapshot = Some(s);
                    break;
                }
                Err(error) => load.rejected.push(RejectedSnapshot { path, error }),
            }
        }
        Ok(load)
    }
}
