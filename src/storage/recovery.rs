//! Recovery: verifying every segment, frame and chain link, and classifying
//! damage as a torn tail (cut off and quarantined) or corruption (hard error).
//!
//! Rules (docs/FORMAT.md, "Recovery"):
//! * Segments are numbered 1..=n without gaps; each header's number, ledger
//!   id, first seq and carried-in chain must continue the previous segment.
//! * Every frame must verify (checksums, consecutive seq, chain). Every
//!   segment but the last must end exactly after a COMMIT frame.
//! * Only the end of the *last* segment may be torn: an unreadable frame with
//!   no checksum-valid frame anywhere after it, and/or valid frames of a group
//!   without its COMMIT frame. A damaged frame followed by any valid frame is
//!   corruption, never a torn tail.
//! * Anchored (an authenticated snapshot's pin): segments wholly before the
//!   one holding its seq are checked by header and last chain value only.

use std::path::{Path, PathBuf};

use super::chain;
use super::error::{Result, StorageError};
use super::frame::{self, FLAG_COMMIT, KNOWN_FLAGS};
use super::io::Io;
use super::segment::{self, HeaderError, Name, SegmentHeader};
use super::types::{ChainHash, LedgerId, Seq};
use super::window::Window;

/// Why the end of the last segment was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailReason {
    /// The segment header itself is torn (the crash came while the segment
    /// was being created); the whole file is cut.
    TornHeader,
    /// The last frame runs past the end of the file.
    Incomplete,
    /// Only zero bytes follow the last good frame.
    Zeros,
    /// Bytes that are not a valid frame follow the last good frame.
    Damaged,
    /// Valid frames follow the last COMMIT frame, but their group has no
    /// COMMIT frame: the group is dropped whole.
    Uncommitted,
}

/// A torn tail found (and, for a read-write open, cut off) by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The last segment file.
    pub segment: PathBuf,
    /// Byte offset in `segment` where the valid log ends; everything from
    /// here to the end of the file is the tail.
    pub truncated_at: u64,
    /// Length of the tail in bytes.
    pub bytes: u64,
    /// Complete, checksum-valid frames dropped because their group had no
    /// COMMIT frame (they were never acknowledged).
    pub frames_dropped: u64,
    /// Why the tail was cut.
    pub reason: TailReason,
    /// Whether the whole segment file was cut (and removed): its header was torn.
    pub segment_removed: bool,
    /// Where the tail's bytes were moved (`LEDGER/quarantine/<segment>-<offset>.torn`);
    /// `None` for a read-only open, which modifies nothing.
    pub quarantine: Option<PathBuf>,
}

/// A verified segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentMeta {
    pub(crate) number: u64,
    /// The segment's format version (2: the ledger keeps a durable head).
    pub(crate) version: u32,
    pub(crate) path: PathBuf,
    pub(crate) first_seq: Seq,
    /// Length of the verified part (after the last committed frame).
    pub(crate) end: u64,
    /// `Some` for a segment an anchored open did not read (it lies wholly
    /// before a trusted snapshot): its frame offsets, found on first use.
    pub(crate) lazy_offsets: Option<std::sync::OnceLock<Vec<u64>>>,
}

/// A state of the log vouched for by an authenticated snapshot: the chain
/// value after `seq`. An anchored scan reads only segment headers before
/// the segment holding `seq`, and verifies every frame from there on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) seq: Seq,
    pub(crate) chain: ChainHash,
}

/// Everything a scan of `LEDGER/log` established.
pub(crate) struct Scan {
    pub(crate) ledger: Option<LedgerId>,
    pub(crate) segments: Vec<SegmentMeta>,
    /// `offsets[s - 1 - base]`: byte offset of seq `s`'s frame in its segment.
    pub(crate) offsets: Vec<u64>,
    /// Seqs `1..=base` are in segments not read (`lazy_offsets`).
    pub(crate) base: u64,
    pub(crate) head: Seq,
    pub(crate) chain: ChainHash,
    pub(crate) tail: Option<Recovery>,
}

/// Reads the frame at `pos`: `Ok(Err(why))` if it is not a valid frame.
fn read_frame<'w, I: Io + ?Sized>(
    w: &'w mut Window<'_, I>,
    pos: u64,
) -> Result<Result<frame::Frame<'w>, &'static str>> {
    let header = match w.get(pos, frame::HEADER_LEN)? {
        None => return Ok(Err("incomplete frame header")),
        Some(b) => match frame::parse_header(b) {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        },
    };
    Ok(match w.get(pos, header.frame_len() as usize)? {
        None => Err("incomplete frame"),
        Some(b) => frame::check(b, header),
    })
}

/// The offset of the first checksum-valid frame starting at or after `from`.
pub(crate) fn find_valid_frame<I: Io + ?Sized>(
    w: &mut Window<'_, I>,
    from: u64,
) -> Result<Option<u64>> {
    const CHUNK: usize = 64 << 10;
    let mut q = from;
    loop {
        let (found, chunk_len) = {
            let c = w.get_upto(q, CHUNK)?;
            (c.windows(4).position(|x| x == frame::MAGIC), c.len())
        };
        match found {
            Some(i) => {
                let at = q + i as u64;
                if read_frame(w, at)?.is_ok() {
                    return Ok(Some(at));
                }
                q = at + 1;
            }
            None if chunk_len < CHUNK => return Ok(None),
            // The magic may straddle the chunk boundary.
            None => q += (chunk_len - 3) as u64,
        }
    }
}

fn all_zero<I: Io + ?Sized>(w: &mut Window<'_, I>, from: u64) -> Result<bool> {
    let mut q = from;
    while q < w.len() {
        let c = w.get_upto(q, 64 << 10)?;
        if c.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        q += c.len() as u64;
    }
    Ok(true)
}

/// The segment numbers under `log_dir`, `1..=n` without gaps (else corrupt).
fn segment_numbers<I: Io + ?Sized>(io: &I, log_dir: &Path) -> Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for name in io
        .list_dir(log_dir)
        .map_err(|e| StorageError::io("list", log_dir, e))?
    {
        match segment::parse_name(&name) {
            Name::Segment(n) => numbers.push(n),
            Name::Malformed => {
                return Err(StorageError::corrupt(
                    log_dir.join(&name),
                    0,
                    None,
                    "unexpected segment file name",
                ))
            }
            Name::Other => {}
        }
    }
    numbers.sort_unstable();
    for (i, n) in numbers.iter().enumerate() {
        let want = i as u64 + 1;
        if *n != want {
            return Err(StorageError::corrupt(
                segment::path(log_dir, *n),
                0,
                None,
                format!("segment {want} is missing before segment {n}"),
            ));
        }
    }
    Ok(numbers)
}

/// Verifies the log under `log_dir` without modifying anything: every
/// frame, or, given an `anchor`, only segment headers (and each segment's
/// last chain value) before the segment holding the anchor's seq, and every
/// frame from that segment on. An anchor the log does not bear out (its
/// chain value differs, the log ends before it, a header before it is off)
/// is dropped and the whole log verified instead.
pub(crate) fn scan<I: Io + ?Sized>(io: &I, log_dir: &Path, anchor: Option<Anchor>) -> Result<Scan> {
    let numbers = segment_numbers(io, log_dir)?;
    let empty = Scan {
        ledger: None,
        segments: Vec::new(),
        offsets: Vec::new(),
        base: 0,
        head: Seq(0),
        chain: ChainHash([0; 32]),
        tail: None,
    };
    if let Some(a) = anchor.filter(|a| a.seq.0 > 0) {
        if let Some(prefix) = anchored_prefix(io, log_dir, &numbers, a)? {
            let start = prefix.segments.len();
            let (scan, at_anchor) = scan_segments(io, log_dir, &numbers[start..], prefix, a.seq)?;
            if at_anchor == Some(a.chain) {
                return Ok(scan);
            }
        }
    }
    Ok(scan_segments(io, log_dir, &numbers, empty, Seq(0))?.0)
}

/// The segments wholly before the one holding `a.seq`, checked by header
/// only, as a scan state ready to verify the rest; `None` if anything is
/// off (the full scan then says what).
fn anchored_prefix<I: Io + ?Sized>(
    io: &I,
    log_dir: &Path,
    numbers: &[u64],
    a: Anchor,
) -> Result<Option<Scan>> {
    let mut headers = Vec::new();
    for &number in numbers {
        let path = segment::path(log_dir, number);
        super::io::refuse_symlink(io, &path)?;
        let len = io
            .file_len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?;
        let mut hb = [0u8; segment::HEADER_LEN as usize];
        if len < segment::HEADER_LEN {
            return Ok(None);
        }
        io.read_at(&path, 0, &mut hb)
            .map_err(|e| StorageError::io("read", &path, e))?;
        let Ok(h) = SegmentHeader::decode(&hb) else {
            return Ok(None);
        };
        if h.first_seq > a.seq {
            break;
        }
        headers.push((path, len, h));
    }
    // `headers.last()` holds the anchor's seq: it is verified in full.
    let Some((_, _, start)) = headers.pop() else {
        return Ok(None);
    };
    let key = chain::chain_key(&start.ledger);
    let mut chain_v = chain::genesis(&key, &start.ledger);
    let mut next = Seq(1);
    let mut segments = Vec::new();
    for (i, (path, len, h)) in headers.iter().enumerate() {
        let following = headers.get(i + 1).map_or(&start, |x| &x.2);
        let ok = h.ledger == start.ledger
            && h.number == i as u64 + 1
            && h.first_seq == next
            && h.prev_chain == chain_v
            && following.first_seq > h.first_seq
            && *len >= segment::HEADER_LEN + frame::OVERHEAD as u64;
        if !ok {
            return Ok(None);
        }
        // A non-last segment ends with its last frame's chain value and crc:
        // the chain value the next segment carries in (a cut segment does not).
        let mut end = [0u8; 32];
        io.read_at(path, len - 36, &mut end)
            .map_err(|e| StorageError::io("read", path, e))?;
        if end != *following.prev_chain.as_bytes() {
            return Ok(None);
        }
        chain_v = following.prev_chain;
        next = following.first_seq;
        segments.push(SegmentMeta {
            number: h.number,
            version: h.version,
            path: path.clone(),
            first_seq: h.first_seq,
            end: *len,
            lazy_offsets: Some(std::sync::OnceLock::new()),
        });
    }
    Ok(Some(Scan {
        ledger: Some(start.ledger),
        segments,
        offsets: Vec::new(),
        base: next.0 - 1,
        head: Seq(next.0 - 1),
        chain: chain_v,
        tail: None,
    }))
}

/// Verifies every frame of segments `numbers` (the last of the log among
/// them), continuing `scan`; also returns the chain value after `watch`
/// if a committed frame of it was verified.
fn scan_segments<I: Io + ?Sized>(
    io: &I,
    log_dir: &Path,
    numbers: &[u64],
    mut scan: Scan,
    watch: Seq,
) -> Result<(Scan, Option<ChainHash>)> {
    let mut watched = None;
    let mut key = scan.ledger.map_or([0u8; 32], |l| chain::chain_key(&l));
    let count = numbers.last().copied().unwrap_or(0);
    for &number in numbers {
        let last = number == count;
        let path = segment::path(log_dir, number);
        super::io::refuse_symlink(io, &path)?;
        let len = io
            .file_len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?;
        let mut w = Window::new(io, &path, len);
        let next = Seq(scan.head.0 + 1);
        let corrupt = |offset: u64, seq: Option<Seq>, what: &str| {
            StorageError::corrupt(&path, offset, seq, what)
        };

        let hb = w.get_upto(0, segment::HEADER_LEN as usize)?;
        let header = match SegmentHeader::decode(hb) {
            Ok(h) => h,
            Err(HeaderError::Version(version)) => {
                return Err(StorageError::UnsupportedVersion {
                    file: path,
                    version,
                })
            }
            Err(HeaderError::Damaged(what)) => {
                if last && find_valid_frame(&mut w, 0)?.is_none() {
                    scan.tail = Some(Recovery {
                        segment: path.clone(),
                        truncated_at: 0,
                        bytes: len,
                        frames_dropped: 0,
                        reason: TailReason::TornHeader,
                        segment_removed: true,
                        quarantine: None,
                    });
                    break;
                }
                return Err(corrupt(0, None, what));
            }
        };
        match scan.ledger {
            None => {
                scan.ledger = Some(header.ledger);
                key = chain::chain_key(&header.ledger);
                scan.chain = chain::genesis(&key, &header.ledger);
            }
            Some(id) if id != header.ledger => {
                return Err(corrupt(16, None, "segment belongs to another ledger"))
            }
            Some(_) => {}
        }
        if header.number != number {
            return Err(corrupt(
                32,
                None,
                "segment number differs from its file name",
            ));
        }
        if header.first_seq != next {
            return Err(corrupt(
                40,
                Some(next),
                "segment's first seq does not continue the log",
            ));
        }
        if header.prev_chain != scan.chain {
            return Err(corrupt(
                48,
                Some(next),
                "carried-in chain differs from the previous segment's last chain",
            ));
        }

        // Frames. `committed` is (end offset, head, chain, frame count) after
        // the last COMMIT frame; frames after it are undecided.
        let mut pos = segment::HEADER_LEN;
        let mut head = scan.head;
        let mut chain_v = scan.chain;
        let mut committed = (pos, head, chain_v, scan.offsets.len());
        let mut seen = None;
        let mut torn: Option<TailReason> = None;
        while pos < len {
            let expect = Seq(head.0 + 1);
            let (frame_len, seq, new_chain, flags) = match read_frame(&mut w, pos)? {
                Ok(f) => {
                    let h = f.header;
                    if h.flags & !KNOWN_FLAGS != 0 {
                        return Err(corrupt(pos, Some(h.seq), "frame has unknown flag bits"));
                    }
                    if h.seq != expect {
                        return Err(corrupt(
                            pos,
                            Some(expect),
                            &format!("frame has seq {}, expected {expect}", h.seq),
                        ));
                    }
                    if chain::step(&key, &chain_v, h.seq, h.flags, f.payload) != f.chain {
                        return Err(corrupt(pos, Some(h.seq), "hash chain broken"));
                    }
                    (h.frame_len(), h.seq, f.chain, h.flags)
                }
                Err(why) => {
                    if !last {
                        return Err(corrupt(pos, Some(expect), why));
                    }
                    if let Some(q) = find_valid_frame(&mut w, pos + 1)? {
                        return Err(corrupt(
                            pos,
                            Some(expect),
                            &format!("{why}, yet a valid frame follows at byte {q}"),
                        ));
                    }
                    torn = Some(if why.starts_with("incomplete") {
                        TailReason::Incomplete
                    } else if all_zero(&mut w, pos)? {
                        TailReason::Zeros
                    } else {
                        TailReason::Damaged
                    });
                    break;
                }
            };
            scan.offsets.push(pos);
            pos += frame_len;
            head = seq;
            chain_v = new_chain;
            if seq == watch {
                seen = Some(new_chain);
            }
            if flags & FLAG_COMMIT != 0 {
                committed = (pos, head, chain_v, scan.offsets.len());
                watched = watched.or(seen);
            }
        }
        let (end, c_head, c_chain, c_count) = committed;
        let dropped = (scan.offsets.len() - c_count) as u64;
        if end < len {
            if !last {
                return Err(corrupt(
                    end,
                    Some(Seq(c_head.0 + 1)),
                    "segment ends inside an atomic group",
                ));
            }
            scan.tail = Some(Recovery {
                segment: path.clone(),
                truncated_at: end,
                bytes: len - end,
                frames_dropped: dropped,
                reason: torn.unwrap_or(TailReason::Uncommitted),
                segment_removed: false,
                quarantine: None,
            });
        }
        scan.offsets.truncate(c_count);
        scan.head = c_head;
        scan.chain = c_chain;
        scan.segments.push(SegmentMeta {
            number,
            version: header.version,
            path,
            first_seq: header.first_seq,
            end,
            lazy_offsets: None,
        });
    }
    Ok((scan, watched))
}
