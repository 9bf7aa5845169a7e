//! Reading the log: one payload, a replay, or the chain value at a seq.
//!
//! Reads re-check each frame's checksum and seq (the files may have changed
//! since open); `replay` also re-walks the hash chain.

use super::chain;
use super::error::{Result, StorageError};
use super::frame;
use super::io::Io;
use super::log::Log;
use super::recovery::SegmentMeta;
use super::types::{ChainHash, Seq};
use super::window::Window;

impl<I: Io> Log<I> {
    /// The segment holding `seq` (which must be `1..=head`).
    pub(super) fn segment_of(&self, seq: Seq) -> &SegmentMeta {
        let i = self.segments.partition_point(|s| s.first_seq <= seq);
        &self.segments[i.saturating_sub(1)]
    }

    /// The byte offset of `seq`'s frame (`1..=head`) in its segment. In a
    /// segment an anchored open did not read, the offsets are found on
    /// first use by walking its frame headers (checksummed; the frames'
    /// payloads are checked when read).
    pub(super) fn offset(&self, seq: Seq) -> Result<u64> {
        if seq.0 > self.offsets_base {
            return Ok(self.offsets[(seq.0 - 1 - self.offsets_base) as usize]);
        }
        let i = self
            .segments
            .partition_point(|s| s.first_seq <= seq)
            .saturating_sub(1);
        let seg = &self.segments[i];
        let lazy = seg.lazy_offsets.as_ref().ok_or_else(|| {
            StorageError::corrupt(&seg.path, 0, Some(seq), "frame offset unknown")
        })?;
        let offsets = match lazy.get() {
            Some(o) => o,
            None => {
                let next = self
                    .segments
                    .get(i + 1)
                    .map_or(self.head.0 + 1, |s| s.first_seq.0);
                let found = self.walk_offsets(seg, next - seg.first_seq.0)?;
                lazy.get_or_init(|| found)
            }
        };
        Ok(offsets[(seq.0 - seg.first_seq.0) as usize])
    }

    /// The offsets of the `count` frames of `seg`, which must fill it exactly.
    fn walk_offsets(&self, seg: &SegmentMeta, count: u64) -> Result<Vec<u64>> {
        let mut w = Window::new(&self.io, &seg.path, seg.end);
        let mut out = Vec::with_capacity(count as usize);
        let mut pos = super::segment::HEADER_LEN;
        while pos < seg.end {
            let seq = Seq(seg.first_seq.0 + out.len() as u64);
            let bad = |w: &str| StorageError::corrupt(&seg.path, pos, Some(seq), w);
            let hb = w
                .get(pos, frame::HEADER_LEN)?
                .ok_or_else(|| bad("incomplete frame header"))?;
            let h = frame::parse_header(hb).map_err(bad)?;
            if h.seq != seq || out.len() as u64 == count {
                return Err(bad("frame seq does not continue the segment"));
            }
            out.push(pos);
            pos += h.frame_len();
        }
        if pos != seg.end || out.len() as u64 != count {
            return Err(StorageError::corrupt(
                &seg.path,
                seg.end,
                None,
                "segment ends inside a frame or holds too few frames",
            ));
        }
        Ok(out)
    }

    fn check_seq(&self, seq: Seq) -> Result<()> {
        if seq.0 == 0 || seq > self.head {
            return Err(StorageError::SeqOutOfRange {
                seq,
                head: self.head,
            });
        }
        Ok(())
    }

    /// The bytes of the frame of `seq` (checked), and whether they came from
    /// the unsynced buffer.
    fn frame_bytes(&self, seq: Seq) -> Result<Vec<u8>> {
        let seg = self.segment_of(seq);
        let off = self.offset(seq)?;
        let is_active = std::ptr::eq(seg, self.segments.last().unwrap_or(seg));
        let bytes = if is_active && off >= seg.end {
            let start = (off - seg.end) as usize;
            let h = frame::parse_header(&self.buffer[start..])
                .map_err(|w| StorageError::corrupt(&seg.path, off, Some(seq), w))?;
            self.buffer[start..start + h.frame_len() as usize].to_vec()
        } else {
            let mut hb = [0u8; frame::HEADER_LEN];
            self.io
                .read_at(&seg.path, off, &mut hb)
                .map_err(|e| StorageError::io("read", &seg.path, e))?;
            let h = frame::parse_header(&hb)
                .map_err(|w| StorageError::corrupt(&seg.path, off, Some(seq), w))?;
            // The length is bounded by MAX_PAYLOAD (checked by parse_header).
            let mut b = vec![0u8; h.frame_len() as usize];
            self.io
                .read_at(&seg.path, off, &mut b)
                .map_err(|e| StorageError::io("read", &seg.path, e))?;
            b
        };
        let f = frame::decode(&bytes)
            .map_err(|w| StorageError::corrupt(&seg.path, off, Some(seq), w))?;
        if f.header.seq != seq {
            return Err(StorageError::corrupt(
                &seg.path,
                off,
                Some(seq),
                "frame seq changed since open",
            ));
        }
        Ok(bytes)
    }

    /// The payload of `seq`.
    pub fn read(&self, seq: Seq) -> Result<Vec<u8>> {
        self.check_readable()?;
        self.check_seq(seq)?;
        let mut bytes = self.frame_bytes(seq)?;
        let len = bytes.len() - frame::OVERHEAD;
        bytes.truncate(frame::HEADER_LEN + len);
        bytes.drain(..frame::HEADER_LEN);
        Ok(bytes)
    }

    /// The chain value after `seq` (`Seq(0)`: the genesis value). Used to pin
    /// a state of the log: a log that still has this value at `seq` holds the
    /// same first `seq` frames.
    pub fn chain_at(&self, seq: Seq) -> Result<ChainHash> {
        self.check_readable()?;
        if seq.0 == 0 {
            return Ok(chain::genesis(&self.key, &self.ledger));
        }
        self.check_seq(seq)?;
        let bytes = self.frame_bytes(seq)?;
        let n = bytes.len();
        let mut c = [0u8; 32];
        c.copy_from_slice(&bytes[n - 36..n - 4]);
        Ok(ChainHash(c))
    }

    /// Calls `f(seq, payload)` for every frame from `from` (at least 1) to
    /// the head, in order, reading one window of a segment at a time and
    /// re-verifying checksums and the hash chain. Stops at the first error,
    /// from the log or from `f`.
    pub fn replay<E, F>(&self, from: Seq, mut f: F) -> Result<(), E>
    where
        E: From<StorageError>,
        F: FnMut(Seq, &[u8]) -> Result<(), E>,
    {
        self.check_readable()?;
        let from = Seq(from.0.max(1));
        if from > self.head {
            return Ok(());
        }
        let mut chain_v = self.chain_at(Seq(from.0 - 1))?;
        let mut seq = from;
        let start = self
            .segments
            .partition_point(|s| s.first_seq <= from)
            .saturating_sub(1);
        for seg in &self.segments[start..] {
            let mut w = Window::new(&self.io, &seg.path, seg.end);
            if seq > self.head {
                break;
            }
            // Only the first segment visited may start mid-way.
            let mut pos = if seg.first_seq < seq {
                self.offset(seq)?
            } else {
                super::segment::HEADER_LEN
            };
            while pos < seg.end && seq <= self.head {
                let bad = |w: &str| StorageError::corrupt(&seg.path, pos, Some(seq), w);
                let hb = w
                    .get(pos, frame::HEADER_LEN)?
                    .ok_or_else(|| bad("incomplete frame header"))?;
                let h = frame::parse_header(hb).map_err(bad)?;
                let fb = w
                    .get(pos, h.frame_len() as usize)?
                    .ok_or_else(|| bad("incomplete frame"))?;
                let fr = frame::check(fb, h).map_err(bad)?;
                if h.seq != seq
                    || chain::step(&self.key, &chain_v, seq, h.flags, fr.payload) != fr.chain
                {
                    return Err(bad("frame changed since open").into());
                }
                chain_v = fr.chain;
                f(seq, fr.payload)?;
                pos += h.frame_len();
                seq = Seq(seq.0 + 1);
            }
        }
        // Frames still in the buffer (Durability::Buffered).
        let mut pos = 0usize;
        while seq <= self.head && pos < self.buffer.len() {
            let off = self.active_end() + pos as u64;
            let bad = |w: &str| StorageError::corrupt(self.root.as_path(), off, Some(seq), w);
            let fr = frame::decode(&self.buffer[pos..]).map_err(bad)?;
            if fr.header.seq == seq {
                f(seq, fr.payload)?;
                seq = Seq(seq.0 + 1);
            }
            pos += fr.header.frame_len() as usize;
        }
        Ok(())
    }
}
