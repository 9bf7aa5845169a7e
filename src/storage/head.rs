//! The durable head: the highest `(seq, chain)` the log ever acknowledged,
//! kept in `LEDGER/HEAD`, outside the segment files, so that damage to an
//! acknowledged frame, a truncated or deleted newest segment, or a segment
//! replaced by a fork is told apart from a torn tail (which only ever holds
//! bytes after the last acknowledged commit).
//!
//! Layout (little-endian, see docs/FORMAT.md, "Durable head"): a file of
//! exactly two 4096-byte slots, written alternately, each holding
//!
//! | offset | size | field                                                |
//! |--------|------|------------------------------------------------------|
//! | 0      | 8    | magic `b"OOUTHEAD"`                                  |
//! | 8      | 4    | format version (1)                                   |
//! | 12     | 4    | reserved, 0                                          |
//! | 16     | 16   | ledger id                                            |
//! | 32     | 8    | generation (1, 2, 3, ...; the higher valid slot wins) |
//! | 40     | 8    | seq: the last acknowledged frame                     |
//! | 48     | 32   | chain value after `seq`                              |
//! | 80     | 8    | segment number holding `seq` (1 for an empty log)     |
//! | 88     | 8    | byte offset in that segment just after frame `seq`   |
//! | 96     | 4    | crc32 of bytes 0..96                                 |
//!
//! and zeros to the end of the slot. A commit writes the slot the previous
//! one did not use and `fdatasync`s the file: the file's length never
//! changes, so no metadata has to reach the disk, and a torn write can only
//! damage the slot being written, never the other, which still holds the
//! previous head (a lower bound of what was acknowledged, and never above
//! it). The file is created whole (temp file, fsync, rename, fsync dir).

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Io;
use super::types::{ChainHash, LedgerId, Seq};

/// The durable head's file name in the ledger directory.
pub const HEAD_FILE: &str = "HEAD";
const TEMP_NAME: &str = "HEAD.tmp";
const MAGIC: [u8; 8] = *b"OOUTHEAD";
const VERSION: u32 = 1;
/// One slot: a whole 4 KiB sector/page, so a torn write stays inside it.
const SLOT: usize = 4096;
const FILE_LEN: usize = 2 * SLOT;
const USED: usize = 100;

/// The last commit the log acknowledged: `(seq, chain)` and where frame
/// `seq` ends on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableHead {
    /// The last acknowledged sequence number (`Seq(0)`: nothing yet).
    pub seq: Seq,
    /// The chain value after `seq`.
    pub chain: ChainHash,
    /// The segment holding frame `seq` (for `Seq(0)`: the first segment).
    pub segment: u64,
    /// The byte offset in `segment` just after frame `seq`: every byte
    /// before it was acknowledged, none after it was.
    pub end: u64,
}

/// The head file of an open writer: which generation it last wrote.
#[derive(Debug)]
pub(crate) struct HeadFile {
    pub(crate) path: PathBuf,
    pub(crate) generation: u64,
}

pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(HEAD_FILE)
}

fn encode(ledger: &LedgerId, generation: u64, h: &DurableHead) -> [u8; USED] {
    let mut b = [0u8; USED];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[16..32].copy_from_slice(ledger.as_bytes());
    b[32..40].copy_from_slice(&generation.to_le_bytes());
    b[40..48].copy_from_slice(&h.seq.0.to_le_bytes());
    b[48..80].copy_from_slice(h.chain.as_bytes());
    b[80..88].copy_from_slice(&h.segment.to_le_bytes());
    b[88..96].copy_from_slice(&h.end.to_le_bytes());
    let crc = crc32fast::hash(&b[..96]);
    b[96..100].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A slot's `(generation, ledger, head)`, or `None` if it is not a valid slot.
fn decode(b: &[u8]) -> Option<(u64, LedgerId, DurableHead)> {
    let b = b.get(..USED)?;
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if b[0..8] != MAGIC
        || crc32fast::hash(&b[..96]) != u32_at(96)
        || u32_at(8) != VERSION
        || u32_at(12) != 0
    {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[16..32]);
    let mut chain = [0u8; 32];
    chain.copy_from_slice(&b[48..80]);
    Some((
        u64_at(32),
        LedgerId(id),
        DurableHead {
            seq: Seq(u64_at(40)),
            chain: ChainHash(chain),
            segment: u64_at(80),
            end: u64_at(88),
        },
    ))
}

/// Reads the head file of `root`: `None` if there is none (a ledger
/// written by a build before the head file, or one being created), else the
/// valid slot with the highest generation. Both slots damaged, the wrong
/// length or another ledger's id is [`StorageError::Corrupt`].
pub(crate) fn read<I: Io + ?Sized>(
    io: &I,
    root: &Path,
) -> Result<Option<(u64, LedgerId, DurableHead)>> {
    let p = path(root);
    if !io.exists(&p).map_err(|e| StorageError::io("stat", &p, e))? {
        return Ok(None);
    }
    super::io::refuse_symlink(io, &p)?;
    let len = io
        .file_len(&p)
        .map_err(|e| StorageError::io("stat", &p, e))?;
    if len != FILE_LEN as u64 {
        return Err(StorageError::corrupt(
            &p,
            0,
            None,
            format!("the durable head file is {len} bytes, not {FILE_LEN}"),
        ));
    }
    let mut b = vec![0u8; FILE_LEN];
    io.read_at(&p, 0, &mut b)
        .map_err(|e| StorageError::io("read", &p, e))?;
    let slots = [decode(&b[..SLOT]), decode(&b[SLOT..])];
    let best = slots.into_iter().flatten().max_by_key(|s| s.0);
    match best {
        Some(s) => Ok(Some(s)),
        None => Err(StorageError::corrupt(
            &p,
            0,
            None,
            "both slots of the durable head are damaged",
        )),
    }
}

/// Creates the head file whole (temp → fsync → rename → fsync dir) with
/// generation 1 (in slot 1: generation `g` lives in slot `g % 2`).
pub(crate) fn create<I: Io + ?Sized>(
    io: &I,
    root: &Path,
    ledger: &LedgerId,
    h: &DurableHead,
) -> Result<HeadFile> {
    let tmp = root.join(TEMP_NAME);
    let fin = path(root);
    let mut b = vec![0u8; FILE_LEN];
    b[SLOT..SLOT + USED].copy_from_slice(&encode(ledger, 1, h));
    io.create_file(&tmp)
        .map_err(|e| StorageError::io("create", &tmp, e))?;
    io.write_at(&tmp, 0, &b)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    io.sync_file(&tmp)
        .map_err(|e| StorageError::io("sync", &tmp, e))?;
    io.rename(&tmp, &fin)
        .map_err(|e| StorageError::io("rename", &tmp, e))?;
    io.sync_dir(root)
        .map_err(|e| StorageError::io("sync dir", root, e))?;
    Ok(HeadFile {
        path: fin,
        generation: 1,
    })
}

/// Removes a temp file left by a crash during [`create`].
pub(crate) fn remove_temp<I: Io + ?Sized>(io: &I, root: &Path) -> Result<()> {
    let tmp = root.join(TEMP_NAME);
    if io
        .exists(&tmp)
        .map_err(|e| StorageError::io("stat", &tmp, e))?
    {
        io.remove_file(&tmp)
            .map_err(|e| StorageError::io("remove", &tmp, e))?;
    }
    Ok(())
}

impl HeadFile {
    /// The bytes and offset of the next write: the slot the last write did
    /// not use, with the next generation.
    pub(crate) fn next_slot(&self, ledger: &LedgerId, h: &DurableHead) -> (u64, [u8; USED]) {
        let generation = self.generation + 1;
        let offset = (generation % 2) * SLOT as u64;
        (offset, encode(ledger, generation, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> DurableHead {
        DurableHead {
            seq: Seq(seq),
            chain: ChainHash([seq as u8; 32]),
            segment: 3,
            end: 1000 + seq,
        }
    }

    #[test]
    fn slot_round_trip_and_every_flip_is_refused() {
        let id = LedgerId([5; 16]);
        let b = encode(&id, 7, &head(9));
        assert_eq!(decode(&b), Some((7, id, head(9))));
        for i in 0..USED * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert_eq!(decode(&c), None, "bit {i}");
        }
        assert_eq!(decode(&[0u8; USED]), None);
    }

    #[test]
    fn the_higher_valid_generation_wins_and_a_torn_slot_falls_back() {
        use crate::storage::MemIo;
        let io = MemIo::new();
        let root = Path::new("/l");
        io.create_dir(root).unwrap();
        let id = LedgerId([1; 16]);
        let mut f = create(&io, root, &id, &head(0)).unwrap();
        for s in 1..=5u64 {
            let (off, b) = f.next_slot(&id, &head(s));
            io.write_at(&f.path, off, &b).unwrap();
            f.generation += 1;
            assert_eq!(read(&io, root).unwrap().unwrap().2, head(s));
        }
        // Tear the slot of seq 5: seq 4 (the other slot) is what remains.
        let (off, _) = (f.generation % 2 * SLOT as u64, ());
        io.write_at(&f.path, off + 50, &[0xff; 10]).unwrap();
        assert_eq!(read(&io, root).unwrap().unwrap().2, head(4));
        io.write_at(&f.path, SLOT as u64 - off + 3, &[0xff])
            .unwrap();
        assert!(matches!(read(&io, root), Err(StorageError::Corrupt { .. })));
    }
}
