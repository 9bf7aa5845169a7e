//! Opening a store: check the files, cut what is damaged or describes
//! leaves the log does not have, catch up from the log.
//!
//! The log is the truth. A record is used only if its checksum binds it to
//! its position and every record before it is good; the first bad one and
//! everything after it are cut and recomputed from the log's entries (a
//! crash can leave unsynced writes lost, torn or reordered, so damage is
//! not necessarily at the very end). Records of tiles beyond the log's size
//! are cut too. A header that is not a header, or one of another log, makes
//! the store start over from the log; a newer format version is an error
//! and the files are left alone.

use std::path::Path;

use super::format::{self, Header, HEADER_LEN, NODES_MAGIC, RECORD_LEN, TAIL_MAGIC};
use super::tile::Tile;
use super::{
    LeafSource, StoreOptions, TreeStore, MAX_TILE_HEIGHT, NODES_FILE, STORE_VERSION, TAIL_FILE,
};
use crate::storage::Io;
use crate::tlog::error::TlogError;
use crate::tlog::merkle::{Frontier, Hash};

/// What opening a store found and repaired (all zero / `None`: the files
/// described exactly the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRecovery {
    /// Why the store was started over from the log (`None`: its files were
    /// used): `"missing"`, `"not a tree store header"`, `"another log"`.
    pub created: Option<&'static str>,
    /// Node records cut: damaged, torn, or beyond the log's size.
    pub records_dropped: u64,
    /// Whole tiles recomputed from the log's entries.
    pub tiles_recomputed: u64,
    /// Leaves of the filling tile read from the log because the tail file
    /// did not have them.
    pub tail_leaves_read: u64,
}

/// Records read per `read_at` while checking the nodes file.
const SCAN_CHUNK: u64 = 8192;
/// Pending records that make catching up persist what it has.
const CATCH_UP_FLUSH: usize = 4096;

fn read_header<I: Io>(io: &I, path: &Path) -> Result<Option<Header>, TlogError> {
    if !io
        .exists(path)
        .map_err(|e| TlogError::io("stat", path, e))?
    {
        return Ok(None);
    }
    let len = io
        .file_len(path)
        .map_err(|e| TlogError::io("stat", path, e))?;
    if len < HEADER_LEN {
        return Ok(None);
    }
    let mut b = [0u8; HEADER_LEN as usize];
    io.read_at(path, 0, &mut b)
        .map_err(|e| TlogError::io("read", path, e))?;
    Ok(Header::decode(&b))
}

/// How many leading records of `path` (holding `count`) are good.
fn good_records<I: Io>(
    io: &I,
    path: &Path,
    count: u64,
    first_position: u64,
) -> Result<u64, TlogError> {
    let mut good = 0u64;
    let mut buf = Vec::new();
    while good < count {
        let n = (count - good).min(SCAN_CHUNK);
        buf.resize((n * RECORD_LEN) as usize, 0);
        io.read_at(path, HEADER_LEN + good * RECORD_LEN, &mut buf)
            .map_err(|e| TlogError::io("read", path, e))?;
        for r in buf.chunks_exact(RECORD_LEN as usize) {
            if format::decode_record(r, first_position + good).is_none() {
                return Ok(good);
            }
            good += 1;
        }
    }
    Ok(good)
}

fn record_count<I: Io>(io: &I, path: &Path) -> Result<u64, TlogError> {
    let len = io
        .file_len(path)
        .map_err(|e| TlogError::io("stat", path, e))?;
    Ok(len.saturating_sub(HEADER_LEN) / RECORD_LEN)
}

impl<I: Io> TreeStore<I> {
    /// Opens (or creates) the store in `dir` for a log of `log_size`
    /// durable entries, repairing it from `leaves` (the log) as the module
    /// docs say. Reading the nodes file is sequential (about 0.28 bytes per
    /// leaf at k = 8); the log is read only for what the files lack.
    pub fn open(
        io: I,
        dir: impl AsRef<Path>,
        opts: StoreOptions,
        log_size: u64,
        leaves: &mut dyn LeafSource,
    ) -> Result<(Self, StoreRecovery), TlogError> {
        if opts.tile_height > MAX_TILE_HEIGHT {
            return Err(TlogError::OutOfRange {
                what: "tile height",
                value: u64::from(opts.tile_height),
                size: u64::from(MAX_TILE_HEIGHT),
            });
        }
        let dir = dir.as_ref();
        let nodes_path = dir.join(NODES_FILE);
        let mut rec = StoreRecovery::default();
        io.create_dir(dir)
            .map_err(|e| TlogError::io("create directory", dir, e))?;

        let header = read_header(&io, &nodes_path)?;
        let k = match header {
            None => {
                rec.created = Some(if io.exists(&nodes_path).unwrap_or(false) {
                    "not a tree store header"
                } else {
                    "missing"
                });
                None
            }
            Some(h) if h.magic != *NODES_MAGIC || h.tile_height > MAX_TILE_HEIGHT => {
                rec.created = Some("not a tree store header");
                None
            }
            Some(h) if h.version != STORE_VERSION => {
                return Err(TlogError::UnsupportedVersion {
                    file: nodes_path,
                    version: h.version,
                })
            }
            Some(h) if h.log_id != opts.log_id => {
                rec.created = Some("another log");
                None
            }
            Some(h) => Some(h.tile_height),
        };
        let k = match k {
            Some(k) => k,
            None => {
                create_nodes_file(&io, dir, &nodes_path, opts)?;
                opts.tile_height
            }
        };

        // The good prefix of the nodes file, cut to whole tiles of the log.
        let in_file = record_count(&io, &nodes_path)?;
        let good = good_records(&io, &nodes_path, in_file, 0)?;
        let tiles = format::tiles_for_records(good).min(log_size >> k);
        let keep = format::records_for_tiles(tiles);
        let keep_len = HEADER_LEN + keep * RECORD_LEN;
        if io
            .file_len(&nodes_path)
            .map_err(|e| TlogError::io("stat", &nodes_path, e))?
            != keep_len
        {
            rec.records_dropped = in_file - keep;
            io.truncate(&nodes_path, keep_len)
                .and_then(|()| io.sync_file(&nodes_path))
                .map_err(|e| TlogError::io("truncate", &nodes_path, e))?;
        }

        let mut store = TreeStore {
            tail_path: dir.join(TAIL_FILE),
            nodes_path,
            io,
            k,
            log_id: opts.log_id,
            frontier: Frontier::new(),
            records: keep,
            synced: keep,
            tail_dirty: false,
            pending: Vec::new(),
            tail: Tile::empty(tiles, k),
            tail_written: 0,
            tail_file_ready: false,
            cached: None,
            poisoned: false,
        };
        store.frontier = store.peaks_of(tiles)?;

        // Whole tiles the file lacks, from the log.
        let mut hashes = Vec::with_capacity(1 << k);
        for t in tiles..log_size >> k {
            hashes.clear();
            leaves.leaf_hashes(t << k, (t + 1) << k, &mut hashes)?;
            store.append_all(&hashes, (t << k)..((t + 1) << k))?;
            rec.tiles_recomputed += 1;
            if store.pending.len() >= CATCH_UP_FLUSH {
                store.persist(store.size())?;
            }
        }

        // The filling tile: from the tail file, the rest from the log.
        let first = (log_size >> k) << k;
        let from_file = store.read_tail(log_size - first)?;
        hashes.clear();
        hashes.extend_from_slice(&from_file);
        if first + (from_file.len() as u64) < log_size {
            leaves.leaf_hashes(first + from_file.len() as u64, log_size, &mut hashes)?;
        }
        rec.tail_leaves_read = (log_size - first) - from_file.len() as u64;
        store.append_all(&hashes, first..log_size)?;
        store.persist(log_size)?;
        if rec != StoreRecovery::default() {
            // What was repaired stays repaired.
            store.sync()?;
        }
        Ok((store, rec))
    }

    fn append_all(
        &mut self,
        hashes: &[Hash],
        range: std::ops::Range<u64>,
    ) -> Result<(), TlogError> {
        if hashes.len() as u64 != range.end - range.start {
            return Err(TlogError::Leaves(format!(
                "asked for leaves {}..{}, got {}",
                range.start,
                range.end,
                hashes.len()
            )));
        }
        for h in hashes {
            self.append(*h);
        }
        Ok(())
    }

    /// The frontier of the first `tiles` whole tiles, from stored records.
    fn peaks_of(&self, tiles: u64) -> Result<Frontier, TlogError> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for h in (0..64u32).rev() {
            if tiles >> h & 1 == 1 {
                peaks.push(self.record(format::node_position(h, start >> h))?);
                start += 1 << h;
            }
        }
        Frontier::from_peaks(tiles << self.k, peaks).ok_or(TlogError::Corrupt {
            file: self.nodes_path.clone(),
            offset: 0,
            what: "peak count".into(),
        })
    }

    /// Up to `want` leaf hashes of the filling tile from the tail file (its
    /// good prefix); marks the file ready for appending after them, cutting
    /// anything beyond.
    fn read_tail(&mut self, want: u64) -> Result<Vec<Hash>, TlogError> {
        let path = self.tail_path.clone();
        let Some(h) = read_header(&self.io, &path)? else {
            return Ok(Vec::new());
        };
        let ours = h.magic == *TAIL_MAGIC
            && h.version == STORE_VERSION
            && h.tile_height == self.k
            && h.log_id == self.log_id
            && h.tile == self.tail.index;
        if !ours {
            return Ok(Vec::new());
        }
        let first = self.tail.index << self.k;
        let in_file = record_count(&self.io, &path)?;
        let good = good_records(&self.io, &path, in_file.min(want), first)?;
        let mut buf = vec![0u8; (good * RECORD_LEN) as usize];
        self.io
            .read_at(&path, HEADER_LEN, &mut buf)
            .map_err(|e| TlogError::io("read", &path, e))?;
        let mut out = Vec::with_capacity(good as usize);
        for (i, r) in buf.chunks_exact(RECORD_LEN as usize).enumerate() {
            out.extend(format::decode_record(r, first + i as u64));
        }
        let len = HEADER_LEN + good * RECORD_LEN;
        if self
            .io
            .file_len(&path)
            .map_err(|e| TlogError::io("stat", &path, e))?
            != len
        {
            // Records beyond the log (or damaged) must not come back.
            self.io
                .truncate(&path, len)
                .and_then(|()| self.io.sync_file(&path))
                .map_err(|e| TlogError::io("truncate", &path, e))?;
        }
        self.tail_file_ready = true;
        self.tail_written = good;
        Ok(out)
    }
}

fn create_nodes_file<I: Io>(
    io: &I,
    dir: &Path,
    path: &Path,
    opts: StoreOptions,
) -> Result<(), TlogError> {
    let header = Header {
        magic: *NODES_MAGIC,
        version: STORE_VERSION,
        tile_height: opts.tile_height,
        log_id: opts.log_id,
        tile: 0,
    };
    let io_err = |op| move |e| TlogError::io(op, path, e);
    io.create_file(path).map_err(io_err("create"))?;
    io.write_at(path, 0, &header.encode())
        .map_err(io_err("write"))?;
    io.sync_file(path).map_err(io_err("fsync"))?;
    io.sync_dir(dir)
        .map_err(|e| TlogError::io("fsync directory", dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        io.sync_dir(parent)
            .map_err(|e| TlogError::io("fsync directory", parent, e))?;
    }
    Ok(())
}
