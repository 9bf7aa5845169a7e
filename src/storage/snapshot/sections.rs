//! Format 3 snapshots: the section layout (each section aligned to
//! [`SECTION_ALIGN`]), per-chunk hashes, encoding, and reading the
//! sections in place ([`Sections`]).

use super::*;

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
pub(super) struct Layout3 {
    meta_end: usize,
    pub(super) ranges: Vec<std::ops::Range<usize>>,
    chunks: usize,
    pub(super) file_len: usize,
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
pub(super) fn encode3(
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
pub(super) fn read3(
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
