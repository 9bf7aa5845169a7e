//! The tree store: the Merkle tree over the log, kept incrementally as
//! leaves are appended, persisted through [`Io`], bounded in memory.
//!
//! Only perfect subtrees of at least `2^k` leaves (k = the *tile height*,
//! default 8) are stored, one 36-byte record each, in post-order in the
//! append-only file `nodes`: about `2 × 36 / 2^k` bytes per leaf (0.28 B
//! at k = 8, 28 MB at 100M leaves, against 3.2 GB for every leaf hash).
//! The levels below are recomputed from the `2^k` leaves of one *tile*,
//! read back from the log (a [`LeafSource`]): the log's entries remain the
//! truth and the store is a cache of them, rebuilt or caught up on open.
//! The leaves of the tile being filled are also written to the file
//! `tail` (not fsynced), so opening does not re-read up to `2^k - 1`
//! entries, which may be record batches of megabytes.
//!
//! Memory: the frontier (≤ 64 hashes), the tile being filled and one
//! cached tile (each ≤ `2^(k+1)` hashes, 16 KiB at k = 8), and records not
//! yet persisted (only while the log holds entries that are not durable).
//!
//! Durability: [`TreeStore::persist`] writes the records of every tile
//! whose leaves are all durable in the log, and the tail leaves, without
//! fsync; `nodes` is fsynced once [`SYNC_EVERY_TILES`] tiles are written
//! since the last fsync, and by [`TreeStore::sync`]. An fsync per tile
//! would cost appends one more fsync per 256 entries (half the throughput
//! of 1,024-entry batches on a slow disk); instead a power loss costs
//! recomputing at most that many tiles from the log at the next open.

mod format;
mod open;
mod tile;

use std::path::{Path, PathBuf};

use self::format::{Header, HEADER_LEN, RECORD_LEN};
use self::tile::Tile;
use super::error::TlogError;
use super::merkle::{Frontier, Hash};
use super::proof::{self, ConsistencyProof, InclusionProof, NodeSource};
use crate::storage::{Io, Log, Seq};

pub use format::STORE_VERSION;
pub use open::StoreRecovery;

/// Name of the file of stored nodes inside the store's directory.
pub const NODES_FILE: &str = "nodes";
/// Name of the file of the filling tile's leaf hashes.
pub const TAIL_FILE: &str = "tail";
/// Tile height used when a store is created, unless told otherwise.
pub const DEFAULT_TILE_HEIGHT: u32 = 8;
/// Largest tile height accepted (a tile of 65,536 leaves).
pub const MAX_TILE_HEIGHT: u32 = 16;
/// Tiles written to `nodes` without an fsync before [`TreeStore::persist`]
/// fsyncs it: what a power loss can make the next open recompute from the
/// log (64 tiles: 16,384 entries at k = 8).
pub const SYNC_EVERY_TILES: u64 = 64;

/// How a store is created and which log it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// `k`: nodes of `2^k` leaves and more are stored. Used when the store
    /// is created; an existing store keeps its own.
    pub tile_height: u32,
    /// The identity of the log (the ledger id), written into both files:
    /// a store of another log is not used.
    pub log_id: [u8; 16],
}

impl StoreOptions {
    /// Options with the default tile height.
    pub fn new(log_id: [u8; 16]) -> Self {
        StoreOptions {
            tile_height: DEFAULT_TILE_HEIGHT,
            log_id,
        }
    }
}

/// Where the store reads leaf hashes it does not keep: the log's entries.
pub trait LeafSource {
    /// Appends to `out` the leaf hashes of leaves `start..end`, in order.
    fn leaf_hashes(&mut self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), TlogError>;
}

/// A slice of leaf hashes (tests, or a log already hashed).
impl LeafSource for &[Hash] {
    fn leaf_hashes(&mut self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), TlogError> {
        let s = self
            .get(start as usize..end as usize)
            .ok_or_else(|| TlogError::Leaves(format!("leaves {start}..{end} are not there")))?;
        out.extend_from_slice(s);
        Ok(())
    }
}

/// The ledger's log: leaf `i` is the entry at seq `i + 1`, hashed with
/// [`entry_leaf_hash`](super::entry_leaf_hash).
impl<I: Io> LeafSource for &Log<I> {
    fn leaf_hashes(&mut self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), TlogError> {
        for i in start..end {
            let payload = self.read(Seq(i + 1))?;
            out.push(super::entry_leaf_hash(i + 1, &payload));
        }
        Ok(())
    }
}

/// The Merkle tree of a log, stored in a directory (see the module docs).
///
/// ```
/// use optout::storage::MemIo;
/// use optout::tlog::{leaf_hash, root_of, Hash, StoreOptions, TreeStore};
///
/// let io = MemIo::new();
/// let leaves: Vec<Hash> = (0u32..1000).map(|i| leaf_hash(&i.to_le_bytes())).collect();
/// let (mut store, _) = TreeStore::open(io.clone(), "/tree", StoreOptions::new([1; 16]), 0, &mut &leaves[..0])?;
/// for l in &leaves {
///     store.append(*l);
/// }
/// store.persist(1000)?; // the log has made all 1000 entries durable
/// assert_eq!(store.root(), root_of(&leaves));
///
/// // Reopen: the store reads its files, and the log for what they lack.
/// drop(store);
/// let (mut store, _) = TreeStore::open(io, "/tree", StoreOptions::new([1; 16]), 1000, &mut &leaves[..])?;
/// let proof = store.inclusion_proof(17, 1000, &mut &leaves[..])?;
/// proof.verify(&leaves[17], &store.root())?;
/// # Ok::<(), optout::tlog::TlogError>(())
/// ```
pub struct TreeStore<I: Io> {
    io: I,
    nodes_path: PathBuf,
    tail_path: PathBuf,
    k: u32,
    log_id: [u8; 16],
    frontier: Frontier,
    /// Records written to `nodes`.
    records: u64,
    /// Records of `nodes` known durable (fsynced).
    synced: u64,
    /// Whether the tail file has writes not fsynced.
    tail_dirty: bool,
    /// Records after `records`, computed, not yet written.
    pending: Vec<Hash>,
    /// The tile being filled (index `size >> k`).
    tail: Tile,
    /// How many of the tail's leaves the tail file holds (for `tail.index`).
    tail_written: u64,
    /// Whether the tail file's header names `tail.index`.
    tail_file_ready: bool,
    /// The last completed or last read whole tile.
    cached: Option<Tile>,
    poisoned: bool,
}

impl<I: Io> std::fmt::Debug for TreeStore<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeStore")
            .field("nodes", &self.nodes_path)
            .field("size", &self.size())
            .field("tile_height", &self.k)
            .finish()
    }
}

impl<I: Io> TreeStore<I> {
    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The tile height `k` of this store.
    pub fn tile_height(&self) -> u32 {
        self.k
    }

    /// The current root hash (no I/O).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.nodes_path.parent().unwrap_or(Path::new("/"))
    }

    /// Leaves covered by records written to `nodes` (a multiple of `2^k`).
    pub fn persisted_size(&self) -> u64 {
        format::tiles_for_records(self.records) << self.k
    }

    /// Appends one leaf (memory only; see [`TreeStore::persist`]).
    pub fn append(&mut self, leaf: Hash) {
        let k = self.k;
        let (pending, tail) = (&mut self.pending, &mut self.tail);
        self.frontier.push(leaf, |level, _, h| {
            if level >= k {
                pending.push(*h);
            } else {
                tail.levels[level as usize].push(*h);
            }
        });
        if self.frontier.size().is_multiple_of(1u64 << k) {
            let next = Tile::empty(self.tail.index + 1, k);
            self.cached = Some(std::mem::replace(&mut self.tail, next));
            self.tail_written = 0;
            self.tail_file_ready = false;
        }
    }

    /// Appends the log's entries the store does not have yet (a sequential
    /// replay of the log from `size() + 1`, hashing each entry with
    /// [`entry_leaf_hash`](super::entry_leaf_hash)), then persists up to
    /// the log's durable head. Returns how many entries were added. This is
    /// how a store that lags the log (one kept up to date only when a
    /// checkpoint or a receipt is asked for) catches up.
    pub fn extend_from_log<L: Io>(&mut self, log: &Log<L>) -> Result<u64, TlogError> {
        self.check()?;
        let before = self.size();
        let (head, _) = log.head();
        if head.0 < before {
            return Err(TlogError::OutOfRange {
                what: "tree size",
                value: before,
                size: head.0,
            });
        }
        let durable = log.durable_head().0;
        log.replay(Seq(before + 1), |seq, payload| {
            self.append(super::entry_leaf_hash(seq.0, payload));
            // Bounded memory on a long catch-up: write as we go.
            if seq.0.is_multiple_of(1 << 20) {
                self.persist(seq.0.min(durable))?;
            }
            Ok::<(), TlogError>(())
        })?;
        self.persist(durable)?;
        Ok(self.size() - before)
    }

    /// Writes the store up to `durable` leaves (the log's durable size):
    /// the records of every whole tile below it and the tail leaves below
    /// it, fsyncing `nodes` every [`SYNC_EVERY_TILES`] tiles (see the
    /// module docs). Records of leaves the log has not made durable stay in
    /// memory, so the files never describe entries a crash may take back.
    ///
    /// A failed write or fsync poisons the store until it is reopened.
    pub fn persist(&mut self, durable: u64) -> Result<(), TlogError> {
        self.check()?;
        let durable = durable.min(self.size());
        let whole_tiles = durable >> self.k;
        let upto = format::records_for_tiles(whole_tiles).max(self.records);
        let n = (upto - self.records) as usize;
        if n > 0 {
            let mut buf = Vec::with_capacity(n * RECORD_LEN as usize);
            for (i, h) in self.pending[..n].iter().enumerate() {
                format::push_record(&mut buf, self.records + i as u64, h);
            }
            let off = HEADER_LEN + self.records * RECORD_LEN;
            let path = self.nodes_path.clone();
            let r = self.io.write_at(&path, off, &buf);
            self.step("write", &path, r)?;
            self.pending.drain(..n);
            self.records = upto;
            let synced_tiles = format::tiles_for_records(self.synced);
            if format::tiles_for_records(upto) - synced_tiles >= SYNC_EVERY_TILES {
                self.sync_nodes()?;
            }
        }
        self.persist_tail(durable)
    }

    /// Fsyncs what [`TreeStore::persist`] wrote (both files).
    pub fn sync(&mut self) -> Result<(), TlogError> {
        self.check()?;
        self.sync_nodes()?;
        if self.tail_dirty {
            let path = self.tail_path.clone();
            let r = self.io.sync_file(&path);
            self.step("fsync", &path, r)?;
            // The tail file is re-created at each tile: its entry too.
            let dir = self.dir().to_path_buf();
            let r = self.io.sync_dir(&dir);
            self.step("fsync directory", &dir, r)?;
            self.tail_dirty = false;
        }
        Ok(())
    }

    fn sync_nodes(&mut self) -> Result<(), TlogError> {
        if self.synced < self.records {
            let path = self.nodes_path.clone();
            let r = self.io.sync_file(&path);
            self.step("fsync", &path, r)?;
            self.synced = self.records;
        }
        Ok(())
    }

    fn persist_tail(&mut self, durable: u64) -> Result<(), TlogError> {
        let first = self.tail.index << self.k;
        let have = self.tail.leaves();
        let want = durable.saturating_sub(first).min(have);
        if want <= self.tail_written {
            return Ok(());
        }
        let path = self.tail_path.clone();
        if !self.tail_file_ready {
            let header = Header {
                magic: *format::TAIL_MAGIC,
                version: STORE_VERSION,
                tile_height: self.k,
                log_id: self.log_id,
                tile: self.tail.index,
            };
            let r = self.io.create_file(&path);
            self.step("create", &path, r)?;
            let r = self.io.write_at(&path, 0, &header.encode());
            self.step("write", &path, r)?;
            self.tail_file_ready = true;
            self.tail_written = 0;
        }
        let mut buf = Vec::new();
        for i in self.tail_written..want {
            format::push_record(&mut buf, first + i, &self.tail.levels[0][i as usize]);
        }
        let off = HEADER_LEN + self.tail_written * RECORD_LEN;
        let r = self.io.write_at(&path, off, &buf);
        self.step("write", &path, r)?;
        self.tail_written = want;
        self.tail_dirty = true;
        Ok(())
    }

    /// The root of the tree's first `size` leaves.
    pub fn root_at(&mut self, size: u64, leaves: &mut dyn LeafSource) -> Result<Hash, TlogError> {
        self.check_size("tree size", size)?;
        if size == self.size() {
            return Ok(self.root());
        }
        proof::subtree(&mut self.reader(leaves), 0, size)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves
    /// (`size` at most the current size), in O(log n) node reads.
    pub fn inclusion_proof(
        &mut self,
        index: u64,
        size: u64,
        leaves: &mut dyn LeafSource,
    ) -> Result<InclusionProof, TlogError> {
        self.check_size("tree size", size)?;
        proof::inclusion_proof(&mut self.reader(leaves), index, size)
    }

    /// The proof that the tree of `old` leaves is a prefix of the tree of
    /// `new` leaves (`new` at most the current size).
    pub fn consistency_proof(
        &mut self,
        old: u64,
        new: u64,
        leaves: &mut dyn LeafSource,
    ) -> Result<ConsistencyProof, TlogError> {
        self.check_size("tree size", new)?;
        proof::consistency_proof(&mut self.reader(leaves), old, new)
    }

    fn reader<'a>(&'a mut self, leaves: &'a mut dyn LeafSource) -> Reader<'a, I> {
        Reader {
            store: self,
            leaves,
        }
    }

    fn check(&self) -> Result<(), TlogError> {
        if self.poisoned {
            return Err(TlogError::Poisoned);
        }
        Ok(())
    }

    fn check_size(&self, what: &'static str, size: u64) -> Result<(), TlogError> {
        self.check()?;
        if size > self.size() {
            return Err(TlogError::OutOfRange {
                what,
                value: size,
                size: self.size(),
            });
        }
        Ok(())
    }

    /// Runs a mutating I/O step; a failure poisons the store.
    fn step<T>(
        &mut self,
        op: &'static str,
        path: &Path,
        r: std::io::Result<T>,
    ) -> Result<T, TlogError> {
        r.map_err(|e| {
            self.poisoned = true;
            TlogError::io(op, path, e)
        })
    }

    /// The stored node at post-order `position`.
    fn record(&self, position: u64) -> Result<Hash, TlogError> {
        if position >= self.records {
            return self
                .pending
                .get((position - self.records) as usize)
                .copied()
                .ok_or(TlogError::OutOfRange {
                    what: "node position",
                    value: position,
                    size: self.records + self.pending.len() as u64,
                });
        }
        let off = HEADER_LEN + position * RECORD_LEN;
        let mut b = [0u8; RECORD_LEN as usize];
        self.io
            .read_at(&self.nodes_path, off, &mut b)
            .map_err(|e| TlogError::io("read", &self.nodes_path, e))?;
        format::decode_record(&b, position).ok_or_else(|| TlogError::Corrupt {
            file: self.nodes_path.clone(),
            offset: off,
            what: format!("node record {position} fails its checksum"),
        })
    }

    /// The whole tile `index` from the log, checked against its stored root.
    fn load_tile(&mut self, index: u64, leaves: &mut dyn LeafSource) -> Result<Tile, TlogError> {
        let (first, end) = (index << self.k, (index + 1) << self.k);
        let mut hashes = Vec::with_capacity(1 << self.k);
        leaves.leaf_hashes(first, end, &mut hashes)?;
        if hashes.len() as u64 != end - first {
            return Err(TlogError::Leaves(format!(
                "asked for leaves {first}..{end}, got {}",
                hashes.len()
            )));
        }
        let (tile, root) = Tile::from_leaves(index, self.k, hashes);
        if root != Some(self.record(format::node_position(0, index))?) {
            return Err(TlogError::TileMismatch {
                tile: index,
                first,
                end,
            });
        }
        Ok(tile)
    }
}

/// A [`NodeSource`] over the store: stored records for levels ≥ k, tiles
/// (held, or read from the log and cached) below.
struct Reader<'a, I: Io> {
    store: &'a mut TreeStore<I>,
    leaves: &'a mut dyn LeafSource,
}

impl<I: Io> NodeSource for Reader<'_, I> {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, TlogError> {
        let s = &mut *self.store;
        let k = s.k;
        if level >= k {
            return s.record(format::node_position(level - k, index));
        }
        let tile = (index << level) >> k;
        if tile == s.tail.index {
            return s.tail.node(k, level, index).ok_or(TlogError::OutOfRange {
                what: "node",
                value: index << level,
                size: s.size(),
            });
        }
        let t = match s.cached.take() {
            Some(t) if t.index == tile => t,
            _ => s.load_tile(tile, self.leaves)?,
        };
        let node = t.node(k, level, index);
        s.cached = Some(t);
        node.ok_or(TlogError::OutOfRange {
            what: "node",
            value: index << level,
            size: s.size(),
        })
    }
}
