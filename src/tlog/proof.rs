//! Inclusion and consistency proofs: generation (RFC 9162 §2.1.3.1,
//! §2.1.4.1) from any [`NodeSource`], and verification (§2.1.3.2,
//! §2.1.4.2), which needs nothing but the proof.
//!
//! Generation asks the source for O(log n) perfect subtrees: along the
//! path every sibling is a perfect subtree except at most one or two on the
//! right edge of the tree, each a fold of at most log n perfect subtrees.

use serde::{Deserialize, Serialize};

use super::error::{ProofError, TlogError};
use super::merkle::{empty_root, node_hash, split_point, Hash};

/// Where proof generation reads perfect subtree hashes from.
pub trait NodeSource {
    /// The hash of the perfect subtree of `2^level` leaves starting at leaf
    /// `index << level` (level 0: the leaf hash).
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, TlogError>;
}

/// A slice of leaf hashes is a source (each node costs `2^level` hashes:
/// for tests and small trees).
impl NodeSource for &[Hash] {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, TlogError> {
        let start = index.checked_shl(level).unwrap_or(u64::MAX);
        let end = start.saturating_add(1u64 << level);
        if end > self.len() as u64 {
            return Err(TlogError::OutOfRange {
                what: "node end",
                value: end,
                size: self.len() as u64,
            });
        }
        Ok(super::merkle::root_of(&self[start as usize..end as usize]))
    }
}

/// `MTH(D[start..end])` for a range of the RFC's recursive split: a perfect
/// subtree, or a perfect left part and a recursively split right part.
pub(crate) fn subtree<S: NodeSource + ?Sized>(
    src: &mut S,
    start: u64,
    end: u64,
) -> Result<Hash, TlogError> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros(), start / n);
    }
    // Ranges of the RFC's split are perfect on the left; fold the right
    // edge from its smallest peak upwards.
    let mut peaks = Vec::new();
    let mut s = start;
    while s < end {
        let rest = end - s;
        let k = if rest.is_power_of_two() {
            rest
        } else {
            split_point(rest)
        };
        debug_assert!(
            s.is_multiple_of(k),
            "the RFC's split keeps left parts aligned"
        );
        peaks.push(src.node(k.trailing_zeros(), s / k)?);
        s += k;
    }
    let mut it = peaks.iter().rev();
    let last = *it.next().unwrap_or(&empty_root());
    Ok(it.fold(last, |acc, p| node_hash(p, &acc)))
}

/// An inclusion proof: the audit path of leaf `leaf_index` in the tree of
/// `tree_size` leaves, bottom up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The leaf's index (ledger seq − 1).
    pub leaf_index: u64,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// The sibling hashes, from the leaf's sibling up to the root's child.
    pub hashes: Vec<Hash>,
}

/// A consistency proof: the tree of `old_size` leaves is a prefix of the
/// tree of `new_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The older (smaller) tree's size.
    pub old_size: u64,
    /// The newer tree's size.
    pub new_size: u64,
    /// The proof's hashes (RFC 9162 `PROOF(m, D[n])`).
    pub hashes: Vec<Hash>,
}

/// Generates `PATH(index, D[0..size])` (RFC 9162 §2.1.3.1).
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, TlogError> {
    if index >= size {
        return Err(TlogError::OutOfRange {
            what: "leaf index",
            value: index,
            size,
        });
    }
    let (mut start, mut end) = (0u64, size);
    let mut top_down = Vec::new();
    while end - start > 1 {
        let k = split_point(end - start);
        if index - start < k {
            top_down.push(subtree(src, start + k, end)?);
            end = start + k;
        } else {
            top_down.push(subtree(src, start, start + k)?);
            start += k;
        }
    }
    top_down.reverse();
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        hashes: top_down,
    })
}

/// Generates `PROOF(old, D[0..new])` (RFC 9162 §2.1.4.1); empty when
/// `old` is 0 or equals `new`.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &mut S,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, TlogError> {
    if old > new {
        return Err(ProofError::NotAnExtension { old, new }.into());
    }
    let mut top_down = Vec::new();
    if old > 0 && old < new {
        // SUBPROOF(m, D[start..end], whole): `whole` is true while the old
        // tree is the left edge of the current range.
        let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
        loop {
            if m == end - start {
                if !whole {
                    top_down.push(subtree(src, start, end)?);
                }
                break;
            }
            let k = split_point(end - start);
            if m <= k {
                top_down.push(subtree(src, start + k, end)?);
                end = start + k;
            } else {
                top_down.push(subtree(src, start, start + k)?);
                start += k;
                m -= k;
                whole = false;
            }
        }
    }
    top_down.reverse();
    Ok(ConsistencyProof {
        old_size: old,
        new_size: new,
        hashes: top_down,
    })
}

impl InclusionProof {
    /// Checks that `leaf` is leaf `leaf_index` of the tree of `tree_size`
    /// leaves whose root is `root` (RFC 9162 §2.1.3.2).
    ///
    /// ```
    /// use optout::tlog::{inclusion_proof, leaf_hash, root_of, Hash};
    /// let leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
    /// let proof = inclusion_proof(&mut &leaves[..], 3, 5).unwrap();
    /// assert!(proof.verify(&leaves[3], &root_of(&leaves)).is_ok());
    /// assert!(proof.verify(&leaves[2], &root_of(&leaves)).is_err());
    /// ```
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        if self.leaf_index >= self.tree_size {
            return Err(ProofError::IndexOutOfRange {
                index: self.leaf_index,
                size: self.tree_size,
            });
        }
        let (mut fi, mut si) = (self.leaf_index, self.tree_size - 1);
        let mut r = *leaf;
        for p in &self.hashes {
            if si == 0 {
                return Err(ProofError::WrongLength {
                    got: self.hashes.len(),
                });
            }
            if fi & 1 == 1 || fi == si {
                r = node_hash(p, &r);
                if fi & 1 == 0 {
                    while fi & 1 == 0 && fi != 0 {
                        fi >>= 1;
                        si >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            fi >>= 1;
            si >>= 1;
        }
        if si != 0 {
            return Err(ProofError::WrongLength {
                got: self.hashes.len(),
            });
        }
        if r != *root {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }
}

impl ConsistencyProof {
    /// Checks that the tree of `old_size` leaves with root `old_root` is a
    /// prefix of the tree of `new_size` leaves with root `new_root`
    /// (RFC 9162 §2.1.4.2; size 0 is a prefix of every tree).
    ///
    /// ```
    /// use optout::tlog::{consistency_proof, leaf_hash, root_of, Hash};
    /// let leaves: Vec<Hash> = (0u8..7).map(|i| leaf_hash(&[i])).collect();
    /// let proof = consistency_proof(&mut &leaves[..], 3, 7).unwrap();
    /// assert!(proof.verify(&root_of(&leaves[..3]), &root_of(&leaves)).is_ok());
    /// assert!(proof.verify(&root_of(&leaves[..2]), &root_of(&leaves)).is_err());
    /// ```
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        let (old, new) = (self.old_size, self.new_size);
        if old > new {
            return Err(ProofError::NotAnExtension { old, new });
        }
        if old == 0 || old == new {
            if !self.hashes.is_empty() {
                return Err(ProofError::WrongLength {
                    got: self.hashes.len(),
                });
            }
            if old == new && old_root != new_root {
                return Err(ProofError::RootMismatch);
            }
            return Ok(());
        }
        let mut path: Vec<&Hash> = Vec::with_capacity(self.hashes.len() + 1);
        if old.is_power_of_two() {
            path.push(old_root);
        }
        path.extend(self.hashes.iter());
        let wrong = || ProofError::WrongLength {
            got: self.hashes.len(),
        };
        let (first, rest) = path.split_first().ok_or_else(wrong)?;
        let (mut fi, mut si) = (old - 1, new - 1);
        while fi & 1 == 1 {
            fi >>= 1;
            si >>= 1;
        }
        let (mut fr, mut sr) = (**first, **first);
        for c in rest {
            if si == 0 {
                return Err(wrong());
            }
            if fi & 1 == 1 || fi == si {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                if fi & 1 == 0 {
                    while fi & 1 == 0 && fi != 0 {
                        fi >>= 1;
                        si >>= 1;
                    }
                }
            } else {
                sr = node_hash(&sr, c);
            }
            fi >>= 1;
            si >>= 1;
        }
        if si != 0 {
            return Err(wrong());
        }
        if fr != *old_root || sr != *new_root {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{leaf_hash, root_of};

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn every_proof_of_small_trees_verifies() {
        let l = leaves(40);
        for n in 1..=40u64 {
            let root = root_of(&l[..n as usize]);
            assert_eq!(subtree(&mut &l[..], 0, n).unwrap(), root);
            for i in 0..n {
                let p = inclusion_proof(&mut &l[..], i, n).unwrap();
                p.verify(&l[i as usize], &root).unwrap();
            }
            for m in 0..=n {
                let p = consistency_proof(&mut &l[..], m, n).unwrap();
                p.verify(&root_of(&l[..m as usize]), &root).unwrap();
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let l = leaves(4);
        assert!(inclusion_proof(&mut &l[..], 4, 4).is_err());
        assert!(consistency_proof(&mut &l[..], 3, 2).is_err());
        assert!(inclusion_proof(&mut &l[..], 0, 5).is_err());
    }
}
