//! One tile: the `2^k` leaves below a stored node, with every perfect
//! subtree inside it, so a proof reads its lower levels without hashing.

use crate::tlog::merkle::{node_hash, Hash};

/// The perfect subtrees of levels `0..k` inside tile `index` (complete or,
/// for the tile being filled, the ones completed so far).
#[derive(Clone, Debug)]
pub(super) struct Tile {
    pub index: u64,
    /// `levels[l][j]`: the node of level `l` with index `j` relative to the
    /// tile's first node of that level. `levels.len() == k`.
    pub levels: Vec<Vec<Hash>>,
}

impl Tile {
    pub fn empty(index: u64, k: u32) -> Tile {
        Tile {
            index,
            levels: vec![Vec::new(); k as usize],
        }
    }

    /// The tile of `leaves`; also returns the tile's root (level `k`) when
    /// `leaves` is a whole tile.
    pub fn from_leaves(index: u64, k: u32, leaves: Vec<Hash>) -> (Tile, Option<Hash>) {
        let whole = leaves.len() as u64 == 1u64 << k;
        let mut levels = Vec::with_capacity(k as usize);
        let mut cur = leaves;
        for _ in 0..k {
            let next: Vec<Hash> = cur
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(std::mem::replace(&mut cur, next));
        }
        // After k halvings a whole tile is one hash: its root.
        (Tile { index, levels }, whole.then(|| cur[0]))
    }

    /// Leaves held (the tile's first `leaves()` leaves).
    pub fn leaves(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The node of `level < k` with absolute index `index`, if held.
    pub fn node(&self, k: u32, level: u32, index: u64) -> Option<Hash> {
        let first = self.index << (k - level);
        let rel = index.checked_sub(first)?;
        self.levels.get(level as usize)?.get(rel as usize).copied()
    }
}
