//! Frame encoding: one payload in the log.
//!
//! Layout (little-endian, see docs/FORMAT.md):
//!
//! | offset     | size | field                                              |
//! |------------|------|----------------------------------------------------|
//! | 0          | 4    | magic `b"OOFR"`                                    |
//! | 4          | 4    | `len`: payload length, `<= MAX_PAYLOAD`            |
//! | 8          | 8    | `seq`                                              |
//! | 16         | 4    | `flags` (bit 0 = COMMIT)                           |
//! | 20         | 4    | crc32 of bytes 0..20 (so `len` is trusted early)   |
//! | 24         | len  | payload                                            |
//! | 24+len     | 32   | chain hash after this frame                        |
//! | 56+len     | 4    | crc32 of bytes 0..56+len                           |

use super::types::{ChainHash, Seq};

/// Frame magic, the first 4 bytes of every frame.
pub(crate) const MAGIC: [u8; 4] = *b"OOFR";
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 24;
/// Bytes of a frame besides its payload.
pub(crate) const OVERHEAD: usize = 60;
/// Largest payload the format accepts (64 MiB); checked before allocating.
pub const MAX_PAYLOAD: u32 = 64 << 20;
/// Flag bit set on the last frame of an atomic group.
pub(crate) const FLAG_COMMIT: u32 = 1;
/// Flag bits this version understands; any other bit set is corruption.
pub(crate) const KNOWN_FLAGS: u32 = FLAG_COMMIT;

/// The fixed-size frame header, checked by its own crc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) seq: Seq,
    pub(crate) flags: u32,
}

impl Header {
    /// Total frame length in bytes.
    pub(crate) fn frame_len(&self) -> u64 {
        u64::from(self.len) + OVERHEAD as u64
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Appends one encoded frame to `out`. `payload.len()` must be `<= MAX_PAYLOAD`.
pub(crate) fn encode(out: &mut Vec<u8>, seq: Seq, flags: u32, payload: &[u8], chain: &ChainHash) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.0.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    let hcrc = crc32fast::hash(&out[start..start + 20]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&chain.0);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Parses a frame header: magic, header crc and the payload bound.
/// Flags are *not* judged here (a well-formed frame with unknown flags is
/// corruption, not a torn write).
pub(crate) fn parse_header(b: &[u8]) -> Result<Header, &'static str> {
    if b.len() < HEADER_LEN {
        return Err("incomplete frame header");
    }
    if b[0..4] != MAGIC {
        return Err("bad frame magic");
    }
    if crc32fast::hash(&b[0..20]) != le32(b, 20) {
        return Err("bad frame header checksum");
    }
    let len = le32(b, 4);
    if len > MAX_PAYLOAD {
        return Err("frame length over the limit");
    }
    Ok(Header {
        len,
        seq: Seq(le64(b, 8)),
        flags: le32(b, 16),
    })
}

/// A frame whose checksums verify.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) header: Header,
    pub(crate) payload: &'a [u8],
    pub(crate) chain: ChainHash,
}

/// Checks a whole frame (`b` holds at least `header.frame_len()` bytes
/// starting at the frame's magic).
pub(crate) fn check(b: &[u8], header: Header) -> Result<Frame<'_>, &'static str> {
    let len = header.len as usize;
    let total = len + OVERHEAD;
    if b.len() < total {
        return Err("incomplete frame");
    }
    if crc32fast::hash(&b[..total - 4]) != le32(b, total - 4) {
        return Err("bad frame checksum");
    }
    let mut chain = [0u8; 32];
    chain.copy_from_slice(&b[HEADER_LEN + len..HEADER_LEN + len + 32]);
    Ok(Frame {
        header,
        payload: &b[HEADER_LEN..HEADER_LEN + len],
        chain: ChainHash(chain),
    })
}

/// Parses and checks the frame at the start of `b`.
pub(crate) fn decode(b: &[u8]) -> Result<Frame<'_>, &'static str> {
    let header = parse_header(b)?;
    check(b, header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(seq in any::<u64>(), flags in 0u32..2, payload in proptest::collection::vec(any::<u8>(), 0..600), chain in any::<[u8; 32]>()) {
            let mut buf = vec![0xAA; 3];
            encode(&mut buf, Seq(seq), flags, &payload, &ChainHash(chain));
            prop_assert_eq!(buf.len(), 3 + payload.len() + OVERHEAD);
            let f = decode(&buf[3..]).unwrap();
            prop_assert_eq!(f.header, Header { len: payload.len() as u32, seq: Seq(seq), flags });
            prop_assert_eq!(f.payload, &payload[..]);
            prop_assert_eq!(f.chain, ChainHash(chain));
        }

        #[test]
        fn any_bit_flip_is_rejected(payload in proptest::collection::vec(any::<u8>(), 0..64), bit in any::<proptest::sample::Index>()) {
            let mut buf = Vec::new();
            encode(&mut buf, Seq(9), FLAG_COMMIT, &payload, &ChainHash([3; 32]));
            let i = bit.index(buf.len() * 8);
            buf[i / 8] ^= 1 << (i % 8);
            prop_assert!(decode(&buf).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn every_truncation_is_rejected(payload in proptest::collection::vec(any::<u8>(), 0..64), cut in any::<proptest::sample::Index>()) {
            let mut buf = Vec::new();
            encode(&mut buf, Seq(1), 0, &payload, &ChainHash([0; 32]));
            let n = cut.index(buf.len());
            prop_assert!(decode(&buf[..n]).is_err());
        }
    }

    #[test]
    fn oversized_length_rejected_before_reading_payload() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        let c = crc32fast::hash(&b);
        b.extend_from_slice(&c.to_le_bytes());
        assert_eq!(parse_header(&b), Err("frame length over the limit"));
    }
}
