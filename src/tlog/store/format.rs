//! The bytes of the tree store's two files (docs/FORMAT.md, "Transparency
//! log"): a 48-byte header, then 36-byte records `hash || crc32(position_le64 || hash)`.

use crate::tlog::merkle::Hash;

/// Format version of both files.
pub const STORE_VERSION: u32 = 1;
pub(super) const NODES_MAGIC: &[u8; 8] = b"OOTLOGN\0";
pub(super) const TAIL_MAGIC: &[u8; 8] = b"OOTLOGT\0";
pub(super) const HEADER_LEN: u64 = 48;
pub(super) const RECORD_LEN: u64 = 36;

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub tile_height: u32,
    pub log_id: [u8; 16],
    /// The tail file: the tile its leaves belong to. The nodes file: 0.
    pub tile: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.tile_height.to_le_bytes());
        b[16..32].copy_from_slice(&self.log_id);
        b[32..40].copy_from_slice(&self.tile.to_le_bytes());
        // 40..44 reserved, zero.
        let crc = crc32fast::hash(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` when the bytes are not a header (short, bad checksum, nonzero
    /// reserved bytes). The version is not judged here.
    pub fn decode(b: &[u8]) -> Option<Header> {
        let b = b.get(..HEADER_LEN as usize)?;
        if crc32fast::hash(&b[..44]).to_le_bytes() != b[44..48] || b[40..44] != [0; 4] {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        let mut log_id = [0u8; 16];
        log_id.copy_from_slice(&b[16..32]);
        let mut tile = [0u8; 8];
        tile.copy_from_slice(&b[32..40]);
        Some(Header {
            magic,
            version: u32_at(8),
            tile_height: u32_at(12),
            log_id,
            tile: u64::from_le_bytes(tile),
        })
    }
}

fn record_crc(position: u64, hash: &Hash) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&position.to_le_bytes());
    h.update(hash.as_bytes());
    h.finalize()
}

/// Appends the record of `hash` at `position` (its index in the file's
/// sequence: a post-order node position, or a leaf index for the tail).
pub(super) fn push_record(out: &mut Vec<u8>, position: u64, hash: &Hash) {
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&record_crc(position, hash).to_le_bytes());
}

/// The hash of a record, if its checksum binds it to `position`.
pub(super) fn decode_record(b: &[u8], position: u64) -> Option<Hash> {
    let b = b.get(..RECORD_LEN as usize)?;
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[..32]);
    let h = Hash::from_bytes(h);
    (record_crc(position, &h).to_le_bytes() == b[32..36]).then_some(h)
}

/// Records in the nodes file once `tiles` tiles are complete: every
/// perfect subtree of whole tiles, in post-order (a tile root, then each
/// ancestor it completes).
pub(super) fn records_for_tiles(tiles: u64) -> u64 {
    2 * tiles - u64::from(tiles.count_ones())
}

/// The largest tile count whose records fit in `records`.
pub(super) fn tiles_for_records(records: u64) -> u64 {
    // records_for_tiles is strictly increasing; t <= records.
    let (mut lo, mut hi) = (0u64, records);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if records_for_tiles(mid) <= records {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Post-order position of the node `height` levels above the tiles (0 =
/// a tile root) with index `index` at that height.
pub(super) fn node_position(height: u32, index: u64) -> u64 {
    let last_tile = ((index + 1) << height) - 1;
    records_for_tiles(last_tile) + u64::from(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_post_order() {
        // Build the post-order sequence the way appends produce it.
        let mut seq = Vec::new();
        for t in 0u64..64 {
            seq.push((0u32, t));
            let mut h = 0;
            let mut i = t;
            while i & 1 == 1 {
                h += 1;
                i >>= 1;
                seq.push((h, i));
            }
            assert_eq!(records_for_tiles(t + 1), seq.len() as u64);
        }
        for (pos, (h, i)) in seq.iter().enumerate() {
            assert_eq!(node_position(*h, *i), pos as u64, "node {h}/{i}");
        }
        for r in 0..200 {
            let t = tiles_for_records(r);
            assert!(records_for_tiles(t) <= r && records_for_tiles(t + 1) > r);
        }
    }

    #[test]
    fn header_and_record_round_trip_and_reject_damage() {
        let h = Header {
            magic: *NODES_MAGIC,
            version: STORE_VERSION,
            tile_height: 8,
            log_id: [9; 16],
            tile: 77,
        };
        let b = h.encode();
        assert_eq!(Header::decode(&b), Some(h));
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 1;
            assert_eq!(Header::decode(&c), None, "flip at {i}");
        }
        let x = crate::tlog::leaf_hash(b"x");
        let mut r = Vec::new();
        push_record(&mut r, 5, &x);
        assert_eq!(decode_record(&r, 5), Some(x));
        assert_eq!(decode_record(&r, 6), None);
        r[3] ^= 1;
        assert_eq!(decode_record(&r, 5), None);
    }
}
