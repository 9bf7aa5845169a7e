//! Segment files: naming and the segment header.
//!
//! Header layout (little-endian, 84 bytes, see docs/FORMAT.md):
//!
//! | offset | size | field                                                 |
//! |--------|------|-------------------------------------------------------|
//! | 0      | 8    | magic `b"OOUTSEG\0"`                                  |
//! | 8      | 4    | format version (2; 1 is still read)                   |
//! | 12     | 4    | reserved, 0                                           |
//! | 16     | 16   | ledger id                                             |
//! | 32     | 8    | segment number (1, 2, ...; equals the file name)      |
//! | 40     | 8    | first seq of this segment                             |
//! | 48     | 32   | chain carried in: the chain after seq `first_seq - 1` |
//! | 80     | 4    | crc32 of bytes 0..80                                  |

use std::path::{Path, PathBuf};

use super::types::{ChainHash, LedgerId, Seq};

/// Segment header magic.
pub(crate) const MAGIC: [u8; 8] = *b"OOUTSEG\0";
/// Current log format version. Version 2 has the same layout as 1; it
/// says the ledger keeps a durable head file (`LEDGER/HEAD`), so a log
/// holding a version 2 segment without that file has lost it (an old
/// ledger's version 1 segments open, and get a head file, unchanged).
pub const LOG_VERSION: u32 = 2;
/// The oldest log format version this build reads.
pub(crate) const LOG_VERSION_MIN: u32 = 1;
/// Segment header length in bytes; frames start here.
pub(crate) const HEADER_LEN: u64 = 84;
/// File name suffix of segments.
const SUFFIX: &str = ".seg";

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) version: u32,
    pub(crate) ledger: LedgerId,
    pub(crate) number: u64,
    pub(crate) first_seq: Seq,
    pub(crate) prev_chain: ChainHash,
}

/// Why a header was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Too short, bad magic or bad checksum: damaged or torn.
    Damaged(&'static str),
    /// Checksum fine, but a version this code does not read.
    Version(u32),
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[16..32].copy_from_slice(self.ledger.as_bytes());
        b[32..40].copy_from_slice(&self.number.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_seq.0.to_le_bytes());
        b[48..80].copy_from_slice(self.prev_chain.as_bytes());
        let crc = crc32fast::hash(&b[0..80]);
        b[80..84].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        let b = b
            .get(..HEADER_LEN as usize)
            .ok_or(HeaderError::Damaged("segment shorter than its header"))?;
        if b[0..8] != MAGIC {
            return Err(HeaderError::Damaged("bad segment magic"));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if crc32fast::hash(&b[0..80]) != u32_at(80) {
            return Err(HeaderError::Damaged("bad segment header checksum"));
        }
        let version = u32_at(8);
        if !(LOG_VERSION_MIN..=LOG_VERSION).contains(&version) {
            return Err(HeaderError::Version(version));
        }
        if u32_at(12) != 0 {
            return Err(HeaderError::Damaged("reserved header bytes are not zero"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[16..32]);
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&b[48..80]);
        Ok(SegmentHeader {
            version,
            ledger: LedgerId(id),
            number: u64_at(32),
            first_seq: Seq(u64_at(40)),
            prev_chain: ChainHash(chain),
        })
    }
}

/// `LOG_DIR/<number as 20 decimal digits>.seg`.
pub(crate) fn path(log_dir: &Path, number: u64) -> PathBuf {
    log_dir.join(format!("{number:020}{SUFFIX}"))
}

/// What a name in the log directory is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Name {
    /// A canonical segment name with its number.
    Segment(u64),
    /// Ends in `.seg` but is not canonical (e.g. `7.seg`): refused, since it
    /// may be a segment someone renamed.
    Malformed,
    /// Anything else (ignored).
    Other,
}

pub(crate) fn parse_name(name: &str) -> Name {
    let Some(stem) = name.strip_suffix(SUFFIX) else {
        return Name::Other;
    };
    if stem.len() != 20 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return Name::Malformed;
    }
    match stem.parse::<u64>() {
        Ok(n) if n > 0 => Name::Segment(n),
        _ => Name::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_flips() {
        let h = SegmentHeader {
            version: LOG_VERSION,
            ledger: LedgerId([1; 16]),
            number: 3,
            first_seq: Seq(77),
            prev_chain: ChainHash([9; 32]),
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..b.len() * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(SegmentHeader::decode(&c).is_err(), "bit {i}");
        }
        for n in 0..b.len() {
            assert!(SegmentHeader::decode(&b[..n]).is_err());
        }
        let v1 = SegmentHeader { version: 1, ..h };
        assert_eq!(SegmentHeader::decode(&v1.encode()), Ok(v1));
        let v3 = SegmentHeader { version: 3, ..h };
        assert_eq!(
            SegmentHeader::decode(&v3.encode()),
            Err(HeaderError::Version(3))
        );
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("00000000000000000012.seg"), Name::Segment(12));
        assert_eq!(parse_name("12.seg"), Name::Malformed);
        assert_eq!(parse_name("00000000000000000000.seg"), Name::Malformed);
        assert_eq!(parse_name("LOCK"), Name::Other);
        assert_eq!(
            path(Path::new("/l"), 5),
            PathBuf::from("/l/00000000000000000005.seg")
        );
    }
}
