//! RFC 9162 Merkle tree hashing with SHA-256, and the incremental frontier.
//!
//! ```text
//! MTH({})       = SHA-256()
//! MTH({d0})     = SHA-256(0x00 || d0)                       leaf hash
//! MTH(D[0..n])  = SHA-256(0x01 || MTH(D[0..k]) || MTH(D[k..n]))   node hash,
//!                 k = the largest power of two smaller than n
//! ```
//!
//! A *perfect* subtree is one of `2^level` leaves starting at a multiple of
//! `2^level`; node `(level, index)` covers leaves
//! `index << level .. (index + 1) << level`. Every hash a proof needs is a
//! perfect subtree or a fold of a few of them along the right edge.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf, a node or a whole tree.
///
/// Deliberately no `Deref` to bytes: it is compared, printed and stored
/// whole. Serialised (JSON) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The hash with these 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }

    /// The 32 bytes of the hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex (64 characters).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// Parses 64 hex digits (either case).
    ///
    /// ```
    /// use optout::tlog::Hash;
    /// let h = Hash::from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
    /// assert_eq!(h, optout::tlog::empty_root());
    /// assert!(Hash::from_hex("e3b0").is_none());
    /// ```
    pub fn from_hex(s: &str) -> Option<Hash> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let hi = (b[2 * i] as char).to_digit(16)?;
            let lo = (b[2 * i + 1] as char).to_digit(16)?;
            *o = (hi * 16 + lo) as u8;
        }
        Some(Hash(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

fn finish(h: Sha256) -> Hash {
    Hash(h.finalize().into())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    finish(Sha256::new())
}

/// The hash of a leaf holding `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    finish(h)
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    finish(h)
}

/// The leaf hash of the ledger entry recorded at `seq` with frame payload
/// `payload`: the leaf data is `seq` as a little-endian `u64` followed by
/// the payload, so the leaf hash is `SHA-256(0x00 || seq_le64 || payload)`.
/// Entry `seq` is leaf `seq - 1`; a tree of size N covers seq 1..=N.
///
/// ```
/// use optout::tlog::{entry_leaf_hash, leaf_hash};
/// let mut data = 7u64.to_le_bytes().to_vec();
/// data.extend_from_slice(b"payload");
/// assert_eq!(entry_leaf_hash(7, b"payload"), leaf_hash(&data));
/// ```
pub fn entry_leaf_hash(seq: u64, payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(seq.to_le_bytes());
    h.update(payload);
    finish(h)
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH` of a list of leaf hashes, straight from the definition (O(n)).
/// The reference the incremental structures are tested against.
///
/// ```
/// use optout::tlog::{leaf_hash, node_hash, root_of};
/// let (a, b, c) = (leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c"));
/// assert_eq!(root_of(&[a, b, c]), node_hash(&node_hash(&a, &b), &c));
/// ```
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The right edge of a growing tree: one perfect subtree root ("peak") per
/// set bit of the size, largest first. Appending is amortised one node
/// hash per leaf; the root is a fold of at most 64 peaks.
///
/// ```
/// use optout::tlog::{leaf_hash, root_of, Frontier};
/// let leaves: Vec<_> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
/// let mut f = Frontier::new();
/// for l in &leaves {
///     f.push(*l, |_, _, _| {});
/// }
/// assert_eq!(f.size(), 5);
/// assert_eq!(f.root(), root_of(&leaves));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// A frontier from the peaks of a tree of `size` leaves (largest
    /// first, one per set bit of `size`); `None` if the count is wrong.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (peaks.len() == size.count_ones() as usize).then_some(Frontier { size, peaks })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest (leftmost) first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash. `completed(level, index, hash)` is called for
    /// every perfect subtree this leaf completes, bottom up: the leaf
    /// itself at level 0, then each ancestor that is now whole.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut h = leaf;
        let mut level = 0u32;
        let mut index = self.size;
        completed(0, index, &h);
        while index & 1 == 1 {
            // A full subtree of this level is waiting on the left.
            let Some(left) = self.peaks.pop() else { break };
            h = node_hash(&left, &h);
            level += 1;
            index >>= 1;
            completed(level, index, &h);
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The tree's root hash (the empty root for size 0).
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, p| node_hash(p, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n={n}");
        }
    }

    #[test]
    fn frontier_equals_definition_and_reports_perfect_nodes() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, l) in leaves.iter().enumerate() {
            let mut nodes = Vec::new();
            f.push(*l, |lv, ix, h| nodes.push((lv, ix, *h)));
            for (lv, ix, h) in nodes {
                let start = (ix << lv) as usize;
                assert_eq!(
                    h,
                    root_of(&leaves[start..start + (1 << lv)]),
                    "node {lv}/{ix}"
                );
            }
            assert_eq!(f.root(), root_of(&leaves[..=i]), "size {}", i + 1);
            assert_eq!(f.peaks().len(), (i + 1).count_ones() as usize);
        }
        let g = Frontier::from_peaks(f.size(), f.peaks().to_vec()).unwrap();
        assert_eq!(g, f);
        assert!(Frontier::from_peaks(3, vec![empty_root()]).is_none());
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert!(Hash::from_hex(&"g".repeat(64)).is_none());
        assert!(Hash::from_hex("+".repeat(64).as_str()).is_none());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Hash>("\"00\"").is_err());
    }
}
