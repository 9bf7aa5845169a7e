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

/// The sections of a format 3 snapshot, in place in the file's bytes
/// (a memory map from [`FsIo`](super::FsIo)). Each starts at a multiple of
/// [`SECTION_ALIGN`] bytes from an 8-byte-aligned base, so arrays of
/// little-endian `u32`/`u64` can be viewed without copying. Every byte was
/// checked against its chunk hash, and the hashes against the MAC, when
/// [`Snapshot::authenticated`] is true.
#[derive(Clone)]
pub struct Sections {
    bytes: std::sync::Arc<MappedBytes>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl Sections {
    /// Number of sections.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Section `i`'s bytes (empty past the last).
    pub fn get(&self, i: usize) -> &[u8] {
        self.ranges
            .get(i)
            .map_or(&[][..], |r| &self.bytes.as_bytes()[r.clone()])
    }

    /// The bytes the sections are in, and section `i`'s range in them (for
    /// views that share the bytes, as the index's columns do).
    pub fn shared(
        &self,
        i: usize,
    ) -> Option<(std::sync::Arc<MappedBytes>, std::ops::Range<usize>)> {
        Some((self.bytes.clone(), self.ranges.get(i)?.clone()))
    }

    /// Whether the bytes are a memory map.
    pub fn is_mapped(&self) -> bool {
        self.bytes.is_mapped()
    }

    /// `sections` laid out as a format 3 file lays them out (each at a
    /// multiple of [`SECTION_ALIGN`] bytes), in an aligned heap copy: what
    /// a read of a snapshot written from them gives, without a file (for
    /// tests and fuzzing of the section readers).
    pub fn copy_of(sections: &[&[u8]]) -> Sections {
        let mut b = Vec::new();
        let mut ranges = Vec::with_capacity(sections.len());
        for s in sections {
            b.resize(align_up(b.len()).unwrap_or(b.len()), 0);
            ranges.push(b.len()..b.len() + s.len());
            b.extend_from_slice(s);
        }
        Sections {
            bytes: std::sync::Arc::new(MappedBytes::copy_of(&b)),
            ranges,
        }
    }
}

impl PartialEq for Sections {
    fn eq(&self, o: &Self) -> bool {
        self.len() == o.len() && (0..self.len()).all(|i| self.get(i) == o.get(i))
    }
}

impl Eq for Sections {}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens: Vec<usize> = self.ranges.iter().map(|r| r.len()).collect();
        write!(f, "Sections({lens:?}, {:?})", self.bytes)
    }
}

fn align_up(n: usize) -> Option<usize> {
    n.checked_add(SECTION_ALIGN - 1)
        .map(|v| v / SECTION_ALIGN * SECTION_ALIGN)
}

/// The layout of a format 3 file, computed (with overflow checks) from
/// its section lengths: where the metadata ends (the MAC follows it), each
/// section's range, and the file length.
struct Layout3 {
    meta_end: usize,
    ranges: Vec<std::ops::Range<usize>>,
    chunks: usize,
    file_len: usize,
}

fn layout3(lens: &[u64]) -> Option<Layout3> {
    let chunk = 1u64 << CHUNK_LOG2;
    let chunks = lens
        .iter()
        .try_fold(0u64, |n, &l| n.checked_add(l.div_ceil(chunk)))?;
    let meta_end = (HEADER_LEN as u64)
        .checked_add(8 * lens.len() as u64)?
        .checked_add(chunks.checked_mul(32)?)?;
    let mut pos = align_up(usize::try_from(meta_end).ok()?.checked_add(DIGEST_LEN)?)?;
    let mut ranges = Vec::with_capacity(lens.len());
    for &l in lens {
        let end = pos.checked_add(usize::try_from(l).ok()?)?;
        ranges.push(pos..end);
        pos = align_up(end)?;
    }
    Some(Layout3 {
        meta_end: meta_end as usize,
        ranges,
        chunks: chunks as usize,
        file_len: pos,
    })
}

/// The chunks of the sections, in order: `(section, byte range in the file)`.
fn chunks3(ranges: &[std::ops::Range<usize>]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let chunk = 1usize << CHUNK_LOG2;
    ranges.iter().flat_map(move |r| {
        let r = r.clone();
        (r.start..r.end)
            .step_by(chunk)
            .map(move |a| a..(a + chunk).min(r.end))
    })
}

/// Checks every chunk against its hash, on up to as many threads as there
/// are cores (one streaming pass); the first bad chunk's file offset.
fn check_chunks(b: &[u8], ranges: &[std::ops::Range<usize>], hashes: &[u8]) -> Option<usize> {
    let chunks: Vec<std::ops::Range<usize>> = chunks3(ranges).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(chunks.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let bad = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(c) = chunks.get(i) else { break };
        if blake3::hash(&b[c.clone()]).as_bytes()[..] != hashes[32 * i..32 * i + 32] {
            bad.fetch_min(c.start, std::sync::atomic::Ordering::Relaxed);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let bad = bad.into_inner();
    (bad != usize::MAX).then_some(bad)
}

/// The bytes of a format 3 file from its header fields and sections, MAC
/// included, as pieces to write at increasing offsets (padding is zero).
fn encode3(
    key: &SnapshotKey,
    ledger: &LedgerId,
    seq: Seq,
    chain_head: &ChainHash,
    sections: &[&[u8]],
) -> Result<(Vec<u8>, Layout3)> {
    let lens: Vec<u64> = sections.iter().map(|s| s.len() as u64).collect();
    let too_large = || StorageError::TooLarge {
        what: "snapshot",
        len: lens.iter().sum(),
        max: usize::MAX as u64,
    };
    if sections.len() > MAX_SECTIONS {
        return Err(StorageError::TooLarge {
            what: "snapshot sections",
            len: sections.len() as u64,
            max: MAX_SECTIONS as u64,
        });
    }
    let lay = layout3(&lens).ok_or_else(too_large)?;
    let mut meta = Vec::with_capacity(lay.meta_end + DIGEST_LEN);
    meta.extend_from_slice(&MAGIC);
    meta.extend_from_slice(&SECTIONS_VERSION.to_le_bytes());
    meta.extend_from_slice(&[0; 4]);
    meta.extend_from_slice(ledger.as_bytes());
    meta.extend_from_slice(&seq.0.to_le_bytes());
    meta.extend_from_slice(chain_head.as_bytes());
    meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    meta.extend_from_slice(&CHUNK_LOG2.to_le_bytes());
    for l in &lens {
        meta.extend_from_slice(&l.to_le_bytes());
    }
    let chunk = 1usize << CHUNK_LOG2;
    for s in sections {
        for c in s.chunks(chunk) {
            meta.extend_from_slice(blake3::hash(c).as_bytes());
        }
    }
    debug_assert_eq!(meta.len(), lay.meta_end);
    let mut h = blake3::Hasher::new_keyed(key.as_bytes());
    h.update(&meta);
    meta.extend_from_slice(h.finalize().as_bytes());
    Ok((meta, lay))
}

/// Checks and maps a format 3 file (`b` is the whole file; the caller has
/// checked the magic and the version).
fn read3(
    path: &Path,
    bytes: std::sync::Arc<MappedBytes>,
    key: Option<&SnapshotKey>,
    check: Check,
) -> Result<Sections> {
    let corrupt = |off: usize, what: &str| StorageError::corrupt(path, off as u64, None, what);
    let b = bytes.as_bytes();
    if b.len() < HEADER_LEN + DIGEST_LEN {
        return Err(corrupt(0, "snapshot shorter than header and digest"));
    }
    if !(b.as_ptr() as usize).is_multiple_of(8) {
        return Err(corrupt(
            0,
            "snapshot bytes are not 8-byte aligned in memory",
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let k = u32_at(72) as usize;
    if k > MAX_SECTIONS {
        return Err(corrupt(72, "too many snapshot sections"));
    }
    if u32_at(76) != CHUNK_LOG2 {
        return Err(corrupt(76, "unsupported snapshot chunk size"));
    }
    let table_end = HEADER_LEN + 8 * k;
    if b.len() < table_end {
        return Err(corrupt(HEADER_LEN, "section table truncated"));
    }
    let lens: Vec<u64> = b[HEADER_LEN..table_end]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    let lay = layout3(&lens).ok_or_else(|| corrupt(HEADER_LEN, "section lengths overflow"))?;
    if lay.file_len != b.len() {
        return Err(corrupt(
            HEADER_LEN,
            "section lengths do not match the file length",
        ));
    }
    let mac_at = lay.meta_end;
    if let Some(key) = key {
        let mut h = blake3::Hasher::new_keyed(key.as_bytes());
        h.update(&b[..mac_at]);
        if h.finalize().as_bytes()[..] != b[mac_at..mac_at + DIGEST_LEN] {
            return Err(corrupt(
                mac_at,
                "snapshot MAC mismatch: damaged, or not written with this ledger's key",
            ));
        }
    }
    if check == Check::Pin {
        return Ok(Sections {
            bytes,
            ranges: Vec::new(),
        });
    }
    // Padding is zero: every byte of the file is then either authenticated
    // or fixed.
    let mut pad_from = mac_at + DIGEST_LEN;
    for r in lay
        .ranges
        .iter()
        .chain(std::iter::once(&(b.len()..b.len())))
    {
        if let Some(i) = b[pad_from..r.start].iter().position(|&x| x != 0) {
            return Err(corrupt(pad_from + i, "snapshot padding is not zero"));
        }
        pad_from = r.end;
    }
    debug_assert_eq!(chunks3(&lay.ranges).count(), lay.chunks);
    if let Some(off) = check_chunks(b, &lay.ranges, &b[table_end..mac_at]) {
        return Err(corrupt(
            off,
            "snapshot section chunk does not match its hash",
        ));
    }
    Ok(Sections {
        bytes,
        ranges: lay.ranges,
    })
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
    read_with(
        io,
        path,
        name_seq,
        ledger,
        key,
        allow_unauthenticated,
        Check::All,
    )
}

/// How much of a snapshot file [`read_with`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
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
        .find_map(|(seq, path)| {
            read_with(io, &path, seq, ledger, Some(key), false, Check::Pin).ok()
        })
        .map(|s| Anchor {
            seq: s.seq,
            chain: s.chain_head,
        })
}

fn read_with<I: Io + ?Sized>(
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
        let header = encode_header(&self.ledger, seq, &chain_head, payload.len() as u64);
        let digest = mac(&key, &header, payload);
        let pieces: [(u64, &[u8]); 3] = [
            (0, &header),
            (HEADER_LEN as u64, payload),
            ((HEADER_LEN + payload.len()) as u64, &digest),
        ];
        self.write_snapshot_file(seq, &chain_head, &pieces, None)
    }

    /// [`Log::write_snapshot`] for a payload in sections, as format 3
    /// (docs/FORMAT.md, "Snapshot format 3"): each section starts at a
    /// multiple of [`SECTION_ALIGN`] bytes so that a reader maps the file
    /// and views fixed-width little-endian arrays in place; each 1 MiB
    /// chunk of a section has a blake3 hash, and the MAC covers the header,
    /// the section lengths and those hashes.
    pub fn write_snapshot_sections(
        &mut self,
        seq: Seq,
        chain_head: ChainHash,
        sections: &[&[u8]],
    ) -> Result<PathBuf> {
        self.check_writable()?;
        let Some(key) = self.opts.snapshot_key else {
            return Err(StorageError::NoSnapshotKey);
        };
        let (meta, lay) = encode3(&key, &self.ledger, seq, &chain_head, sections)?;
        let mut pieces: Vec<(u64, &[u8])> = vec![(0, &meta)];
        pieces.extend(
            lay.ranges
                .iter()
                .zip(sections)
                .map(|(r, s)| (r.start as u64, *s)),
        );
        self.write_snapshot_file(seq, &chain_head, &pieces, Some(lay.file_len as u64))
    }

    /// Writes `pieces` (at their offsets; `len` pads the file to a length)
    /// to a temp file, renames it into place and prunes old snapshots.
    fn write_snapshot_file(
        &mut self,
        seq: Seq,
        chain_head: &ChainHash,
        pieces: &[(u64, &[u8])],
        len: Option<u64>,
    ) -> Result<PathBuf> {
        self.sync()?;
        let dir = self.root.join(SNAP_DIR);
        let fin = dir.join(format!("{:020}{SUFFIX}", seq.0));
        self.check_pin(&fin, seq, chain_head)?;
        let tmp = dir.join(format!("{:020}{TEMP_SUFFIX}", seq.0));
        self.check_root()?;
        let written = self.write_temp(&tmp, pieces, len);
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

    fn write_temp(&mut self, tmp: &Path, pieces: &[(u64, &[u8])], len: Option<u64>) -> Result<()> {
        let r = self.io.create_file(tmp);
        self.step("create", tmp, r)?;
        for (off, data) in pieces {
            let r = self.io.write_at(tmp, *off, data);
            self.step("write", tmp, r)?;
        }
        if let Some(len) = len {
            let r = self.io.truncate(tmp, len);
            self.step("truncate", tmp, r)?;
        }
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
