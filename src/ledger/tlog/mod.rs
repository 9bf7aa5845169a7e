//! The ledger's transparency log: the Merkle tree of its entries kept in
//! `LEDGER/tree/`, caught up from the log lazily (when a checkpoint, a
//! proof or a receipt is asked for, never on an append), signed
//! checkpoints of it, checks of a ledger against a checkpoint, and
//! receipts. The CLI, the Python binding and the service call these; the
//! rules live here once. Formats: docs/FORMAT.md, "Transparency log".

use std::path::{Path, PathBuf};

use super::{beside, Ledger};
use crate::error::{Error, LedgerError, Result};
use crate::event::Entry;
use crate::ids::Seq;
use crate::storage::{Io, Log};
use crate::tlog::{
    entry_leaf_hash, ConsistencyProof, Frontier, Hash, InclusionProof, StoreOptions, TlogError,
    TreeStore,
};

/// The tree store's directory inside the ledger directory.
pub const TREE_DIR: &str = "tree";
pub use crate::ids::ORIGIN_PREFIX;

/// The default place of a ledger's checkpoint signing key:
/// `LEDGER.signing.key` beside the directory (never inside it).
pub fn default_signing_key_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".signing.key")
}

/// The default place of the signing key's public key (the vkey that
/// auditors, witnesses and receipt holders verify with): `LEDGER.signing.pub`.
pub fn default_signing_pub_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".signing.pub")
}

/// How a ledger stands against a checkpoint (see [`Ledger::check_checkpoints`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointCheck {
    /// The ledger's first `size` entries hash to the checkpoint's root: the
    /// ledger extends it (its head is at or past `size`).
    Extends {
        /// The checkpoint's tree size (= seq).
        size: u64,
    },
    /// The ledger ends before the checkpoint's size: truncated or rolled
    /// back; seq `head + 1` is the first entry the checkpoint covers that
    /// is missing.
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// The ledger's head.
        head: u64,
    },
    /// The ledger's first `size` entries do not hash to the checkpoint's
    /// root: an entry at or before seq `size` was rewritten or the history
    /// forked there.
    Diverged {
        /// The checkpoint's size.
        size: u64,
        /// The root the ledger's entries give at that size.
        ledger_root: Hash,
    },
}

/// The tree store's anchor file inside `LEDGER/tree/`.
const ANCHOR_FILE: &str = "anchor";
/// `"OOTLOGA\0"`, size (u64 LE), chain value (32), crc32 of the 48 bytes before.
const ANCHOR_MAGIC: &[u8; 8] = b"OOTLOGA\0";
const ANCHOR_LEN: usize = 52;

fn read_anchor<I: Io>(io: &I, path: &Path) -> Option<(u64, crate::storage::ChainHash)> {
    if io.file_len(path).ok()? != ANCHOR_LEN as u64 {
        return None;
    }
    let mut b = [0u8; ANCHOR_LEN];
    io.read_at(path, 0, &mut b).ok()?;
    let crc = u32::from_le_bytes(b[48..].try_into().ok()?);
    if &b[..8] != ANCHOR_MAGIC || crc32fast::hash(&b[..48]) != crc {
        return None;
    }
    let size = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let chain: [u8; 32] = b[16..48].try_into().ok()?;
    Some((size, crate::storage::ChainHash::from_bytes(chain)))
}

/// Writes the anchor (a new file renamed over the old, then the directory
/// fsynced): the store's files are already durable up to `size`.
fn write_anchor<I: Io>(
    io: &I,
    dir: &Path,
    size: u64,
    chain: &crate::storage::ChainHash,
) -> std::result::Result<(), TlogError> {
    let mut b = Vec::with_capacity(ANCHOR_LEN);
    b.extend_from_slice(ANCHOR_MAGIC);
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(chain.as_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("anchor.tmp");
    let path = dir.join(ANCHOR_FILE);
    let e = |op| move |err| TlogError::io(op, dir.join(ANCHOR_FILE), err);
    io.create_file(&tmp).map_err(e("create"))?;
    io.write_at(&tmp, 0, &b).map_err(e("write"))?;
    io.sync_file(&tmp).map_err(e("fsync"))?;
    io.rename(&tmp, &path).map_err(e("rename"))?;
    io.sync_dir(dir).map_err(e("fsync directory"))?;
    Ok(())
}

/// Stops a replay early, or carries its error.
enum Replay {
    Done,
    Failed(crate::storage::StorageError),
}

impl From<crate::storage::StorageError> for Replay {
    fn from(e: crate::storage::StorageError) -> Self {
        Replay::Failed(e)
    }
}

impl<I: Io> Ledger<I> {
    /// Opens the tree store in `LEDGER/tree/`, catches it up with the log
    /// (a sequential read of the entries it lacks), makes it durable, and
    /// runs `f` on it. The store is a cache of the log, repaired or rebuilt
    /// from it on open, so a crash at any point costs only recomputation.
    ///
    /// The store is trusted only up to its anchor (`tree/anchor`: a size
    /// and the log's chain value there, written after each catch-up):
    /// whatever it holds beyond that size, or all of it when the log's chain
    /// there differs (a `tree/` of another history of this ledger id, a
    /// log restored beside a newer tree), is recomputed from the log.
    fn with_tree<T>(
        &self,
        f: impl FnOnce(&mut TreeStore<&I>, &Log<I>) -> std::result::Result<T, TlogError>,
    ) -> Result<T> {
        if self.read_only {
            return Err(LedgerError::ReadOnly.into());
        }
        let dir = self.path.join(TREE_DIR);
        let log = &self.log;
        let io = log.io();
        let durable = log.durable_head().0;
        let anchor_path = dir.join(ANCHOR_FILE);
        let trusted = match read_anchor(io, &anchor_path) {
            Some((size, chain)) if size <= durable && log.chain_at(Seq(size))? == chain => size,
            _ => 0,
        };
        let mut src = log;
        let (mut store, _) = TreeStore::open(
            io,
            &dir,
            StoreOptions::new(*self.ledger_id().as_bytes()),
            trusted,
            &mut src,
        )?;
        store.extend_from_log(log)?;
        store.sync()?;
        if durable != trusted {
            write_anchor(io, &dir, durable, &log.chain_at(Seq(durable))?)?;
        }
        Ok(f(&mut store, log)?)
    }

    /// The tree's size (= the head seq) and root, the tree caught up first.
    pub fn tree_head(&self) -> Result<(u64, Hash)> {
        self.with_tree(|t, _| Ok((t.size(), t.root())))
    }

    /// The root of the tree of the first `size` entries (`size` at most the head).
    pub fn tree_root_at(&self, size: u64) -> Result<Hash> {
        self.with_tree(|t, mut log| t.root_at(size, &mut log))
    }

    /// The proof that the entry at `seq` is in the tree of `size` entries
    /// (`size` at most the head).
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<InclusionProof> {
        if seq.0 == 0 || seq.0 > size {
            return Err(seq_error(seq, size));
        }
        self.with_tree(|t, mut log| t.inclusion_proof(seq.0 - 1, size, &mut log))
    }

    /// The proof that the tree of `old` entries is a prefix of the tree of
    /// `new` entries (`old <= new <= head`).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        if old > new {
            return Err(Error::Invalid(format!(
                "a consistency proof goes from a smaller tree to a larger one, not from {old} to {new}"
            )));
        }
        self.with_tree(|t, mut log| t.consistency_proof(old, new, &mut log))
    }

    /// The roots of the tree at each of `sizes`, recomputed from the log's
    /// entries (one sequential read from seq 1, never from the tree store:
    /// a check must not trust the cache it checks). Sizes past the head
    /// give `None`. Works on a read-only ledger.
    pub fn roots_from_log(&self, sizes: &[u64]) -> Result<Vec<Option<Hash>>> {
        let head = self.head().0 .0;
        let mut out: Vec<Option<Hash>> = vec![None; sizes.len()];
        let mut frontier = Frontier::new();
        let set = |frontier: &Frontier, out: &mut Vec<Option<Hash>>| {
            for (i, s) in sizes.iter().enumerate() {
                if *s == frontier.size() {
                    out[i] = Some(frontier.root());
                }
            }
        };
        set(&frontier, &mut out);
        let last = sizes.iter().copied().filter(|s| *s <= head).max();
        if let Some(last) = last.filter(|l| *l > 0) {
            let r = self.log.replay(Seq(1), |seq, payload| {
                frontier.push(entry_leaf_hash(seq.0, payload), |_, _, _| {});
                set(&frontier, &mut out);
                if seq.0 >= last {
                    return Err(Replay::Done);
                }
                Ok(())
            });
            match r {
                Ok(()) | Err(Replay::Done) => {}
                Err(Replay::Failed(e)) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

impl<I: Io> Ledger<I> {
    /// Checks the ledger against checkpoints (already verified, see
    /// `verify_checkpoint_note`): the root of its first `size` entries,
    /// recomputed from the log in one sequential read, against each.
    pub fn check_checkpoints(&self, checkpoints: &[(u64, Hash)]) -> Result<Vec<CheckpointCheck>> {
        let head = self.head().0 .0;
        let sizes: Vec<u64> = checkpoints.iter().map(|c| c.0).collect();
        let roots = self.roots_from_log(&sizes)?;
        Ok(checkpoints
            .iter()
            .zip(roots)
            .map(|(&(size, root), ours)| match ours {
                None => CheckpointCheck::Truncated { size, head },
                Some(r) if r == root => CheckpointCheck::Extends { size },
                Some(ledger_root) => CheckpointCheck::Diverged { size, ledger_root },
            })
            .collect())
    }
}

/// Where history diverges, given the checks of several checkpoints: the
/// seqs `(after, at_or_before)` such that the ledger agrees with what was
/// checkpointed up to seq `after` and differs at some seq in
/// `after + 1 ..= at_or_before`. `None` when the ledger extends every
/// checkpoint. A root alone does not say which entry differs: more
/// checkpoints narrow the range; a truncation names the first missing seq.
pub fn divergence(checks: &[CheckpointCheck]) -> Option<(u64, u64)> {
    let good = checks
        .iter()
        .filter_map(|c| match c {
            CheckpointCheck::Extends { size } => Some(*size),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let bad = checks
        .iter()
        .filter_map(|c| match c {
            CheckpointCheck::Extends { .. } => None,
            CheckpointCheck::Diverged { size, .. } => Some(*size),
            CheckpointCheck::Truncated { size, head } => Some((*head + 1).max(good + 1).min(*size)),
        })
        .min()?;
    // A checkpoint the ledger extends at or past a bad one cannot be (the
    // ledger would then agree on the prefix): `after` is bounded below it.
    Some((good.min(bad - 1), bad))
}

fn seq_error(seq: Seq, size: u64) -> Error {
    Error::Invalid(format!(
        "seq {seq} is not in a tree of {size} entries (seq 1..={size})"
    ))
}

/// What a ledger entry says, pseudonymised: the JSON a receipt carries as
/// its `summary`, and what [`verify_ledger_receipt`] recomputes from the
/// receipt's entry. Subject ids never appear: entries hold only pseudonyms.
pub fn entry_summary(seq: Seq, entry: &Entry) -> serde_json::Value {
    match entry {
        Entry::Event(e) => crate::render::event_json(seq, e),
        Entry::Run(r) => {
            let mut v = crate::render::run_json(seq, r);
            v["type"] = "training_run".into();
            v
        }
        Entry::Init(_) => serde_json::json!({"seq": seq.0, "type": "init"}),
        Entry::Records(b) => {
            serde_json::json!({"seq": seq.0, "type": "records", "records": b.len()})
        }
        Entry::QuarantineAck(a) => {
            serde_json::json!({"seq": seq.0, "type": "quarantine_ack", "files": a.files.len()})
        }
        Entry::Declare(d) => serde_json::json!({
            "seq": seq.0,
            "type": "declare",
            "vocabulary": d.vocabulary,
            "name": d.name,
        }),
        Entry::Derive(d) => serde_json::json!({
            "seq": seq.0,
            "type": "derive",
            "dataset": d.dataset,
            "rows": d.len(),
            "links": d.links(),
        }),
        // Shard fingerprints (issue 14).
        Entry::Files(f) => {
            serde_json::json!({"seq": seq.0, "type": "files", "files": f.files.len()})
        }
        Entry::Ends(e) => {
            serde_json::json!({"seq": seq.0, "type": "ends", "shards": e.shards.len()})
        }
        Entry::Reserved8(r) => match *r {},
    }
}

#[cfg(feature = "signing")]
mod signing;

#[cfg(feature = "signing")]
pub use signing::{
    create_key_pair, init_signing_key, new_ledger_id, origin_of, verify_ledger_receipt,
    SignedCheckpoint, SigningKeyInit,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ChainHash, MemIo};

    /// The anchor's layout, byte for byte (docs/FORMAT.md, "Ledger wiring").
    #[test]
    fn the_anchor_layout_is_the_documented_one() {
        let io = MemIo::new();
        let dir = Path::new("/t");
        io.create_dir(dir).unwrap();
        let chain = ChainHash::from_bytes([0xab; 32]);
        write_anchor(&io, dir, 0x0102_0304_0506_0708, &chain).unwrap();
        let b = io.read_all(&dir.join(ANCHOR_FILE)).unwrap();
        let mut want = b"OOTLOGA\0".to_vec();
        want.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]);
        want.extend_from_slice(&[0xab; 32]);
        let crc = crc32fast::hash(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(b, want);
        assert!(!io.exists(&dir.join("anchor.tmp")).unwrap());
        assert_eq!(
            read_anchor(&io, &dir.join(ANCHOR_FILE)),
            Some((0x0102_0304_0506_0708, chain))
        );
        // A flipped byte: not an anchor (the store is then trusted for nothing).
        let mut bad = b.clone();
        bad[20] ^= 1;
        io.write_at(&dir.join(ANCHOR_FILE), 0, &bad).unwrap();
        assert_eq!(read_anchor(&io, &dir.join(ANCHOR_FILE)), None);
    }
}
