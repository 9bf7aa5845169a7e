//! Crash images: what a disk may hold after a power loss.
//!
//! The model: data made durable by a sync is kept. Each file's writes and
//! truncations since its last sync may each be lost or kept independently
//! (so a later write can survive while an earlier one is lost), and one write
//! may be *torn*: a prefix of it kept, the rest of its range left as zeros, as
//! random garbage, or not written at all. Each directory's entry operations
//! since its last sync may each be lost or kept. Torn writes keep a *prefix*:
//! the storage format relies on this (see docs/FORMAT.md, "Recovery").

use super::{Dir, DirOp, Inode, MemIo, Pending, State};

/// Which unsynced changes a crash image keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// Only durable state: every unsynced write and directory change is lost.
    DurableOnly,
    /// Everything, as if the crash came after all caches were written.
    KeepAll,
    /// Unsynced file data kept, unsynced directory changes lost.
    DataNoDirs,
    /// Unsynced directory changes kept, unsynced file data lost.
    DirsNoData,
    /// Each file and directory independently: all, none, a random subset
    /// (reordering), or a kept prefix ending in a torn write.
    Random,
}

/// A small deterministic generator (splitmix64) so images are reproducible
/// from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn apply(bytes: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Pending::Truncate(len) => bytes.resize(*len as usize, 0),
    }
}

/// A copy of `p` torn after a random prefix.
fn tear(p: &Pending, rng: &mut Rng) -> Pending {
    match p {
        Pending::Write { offset, data } => {
            let keep = rng.below(data.len() as u64) as usize;
            let mut torn = data[..keep].to_vec();
            match rng.below(3) {
                0 => {}
                1 => torn.resize(data.len(), 0),
                _ => torn.extend((keep..data.len()).map(|_| rng.next() as u8)),
            }
            Pending::Write {
                offset: *offset,
                data: torn,
            }
        }
        Pending::Truncate(_) => p.clone(),
    }
}

fn crash_file(ino: &Inode, kind: CrashKind, rng: &mut Rng) -> Vec<u8> {
    let mut bytes = ino.durable.clone();
    let n = ino.pending.len();
    let keep_all = |bytes: &mut Vec<u8>| ino.pending.iter().for_each(|p| apply(bytes, p));
    match kind {
        CrashKind::DurableOnly | CrashKind::DirsNoData => {}
        CrashKind::KeepAll | CrashKind::DataNoDirs => keep_all(&mut bytes),
        CrashKind::Random if n == 0 => {}
        CrashKind::Random => match rng.below(5) {
            0 => {}
            1 => keep_all(&mut bytes),
            2 => {
                // Reordering: any subset may reach the disk.
                for p in &ino.pending {
                    if rng.below(2) == 0 {
                        apply(&mut bytes, p);
                    }
                }
            }
            3 => {
                // In order up to a torn write.
                let k = rng.below(n as u64) as usize;
                ino.pending[..k].iter().for_each(|p| apply(&mut bytes, p));
                apply(&mut bytes, &tear(&ino.pending[k], rng));
            }
            _ => {
                // A subset, one of which is torn.
                let t = rng.below(n as u64) as usize;
                for (i, p) in ino.pending.iter().enumerate() {
                    if i == t {
                        apply(&mut bytes, &tear(p, rng));
                    } else if rng.below(2) == 0 {
                        apply(&mut bytes, p);
                    }
                }
            }
        },
    }
    bytes
}

fn crash_dir(dir: &Dir, kind: CrashKind, rng: &mut Rng) -> Dir {
    let mut entries = dir.durable.clone();
    let n = dir.pending.len() as u64;
    // Which of the pending entry operations survive.
    enum Keep {
        None,
        All,
        Coin,
        Prefix(usize),
    }
    let keep = match kind {
        CrashKind::DurableOnly | CrashKind::DataNoDirs => Keep::None,
        CrashKind::KeepAll | CrashKind::DirsNoData => Keep::All,
        CrashKind::Random => match rng.below(4) {
            0 => Keep::None,
            1 => Keep::All,
            2 => Keep::Coin,
            _ => Keep::Prefix(rng.below(n + 1) as usize),
        },
    };
    for (i, op) in dir.pending.iter().enumerate() {
        let kept = match keep {
            Keep::None => false,
            Keep::All => true,
            Keep::Coin => rng.below(2) == 0,
            Keep::Prefix(k) => i < k,
        };
        if !kept {
            continue;
        }
        match op {
            DirOp::Link(name, e) => {
                entries.insert(name.clone(), *e);
            }
            DirOp::Unlink(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to, e) => {
                entries.remove(from);
                entries.insert(to.clone(), *e);
            }
        }
    }
    Dir {
        durable: entries.clone(),
        live: entries,
        pending: Vec::new(),
    }
}

impl MemIo {
    /// A new `MemIo` holding one possible post-crash disk of this one's
    /// current state, everything in it durable, with no locks, no fault plan
    /// and a zero operation count. Deterministic in `(kind, seed)`.
    pub fn crash_image(&self, kind: CrashKind, seed: u64) -> MemIo {
        let s = self.lock();
        let mut rng = Rng(seed ^ 0x6F70_746F_7574);
        let inodes = s
            .inodes
            .iter()
            .map(|ino| {
                let bytes = crash_file(ino, kind, &mut rng);
                Inode {
                    durable: bytes.clone(),
                    live: bytes,
                    pending: Vec::new(),
                }
            })
            .collect();
        let dirs = s
            .dirs
            .iter()
            .map(|d| crash_dir(d, kind, &mut rng))
            .collect();
        MemIo::from_state(State {
            inodes,
            dirs,
            ..State::default()
        })
    }

    /// `count` crash images: the four fixed kinds first (durable only, keep
    /// all, data without directory changes, directory changes without data),
    /// then [`CrashKind::Random`] images seeded from `seed`.
    pub fn crash_images(&self, seed: u64, count: usize) -> Vec<MemIo> {
        const FIXED: [CrashKind; 4] = [
            CrashKind::DurableOnly,
            CrashKind::KeepAll,
            CrashKind::DataNoDirs,
            CrashKind::DirsNoData,
        ];
        (0..count)
            .map(|i| match FIXED.get(i) {
                Some(k) => self.crash_image(*k, seed),
                None => self.crash_image(
                    CrashKind::Random,
                    seed.wrapping_mul(1000).wrapping_add(i as u64),
                ),
            })
            .collect()
    }
}
