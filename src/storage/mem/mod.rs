//! [`MemIo`]: an in-memory file system that knows what is durable.
//!
//! Every file keeps two versions: the *durable* bytes (as of its last
//! [`Io::sync_file`]) and the *live* bytes readers see, plus the list of
//! writes/truncations made since the last sync. Every directory likewise keeps
//! durable and live entries and the list of entry operations (create, rename,
//! remove) made since its last [`Io::sync_dir`]. From this state
//! [`MemIo::crash_image`] builds what a disk could hold after a power loss
//! (see `crash.rs`).
//!
//! Every [`Io`] call counts as one operation; [`MemIo::set_fault`] makes the
//! k-th operation (0-based) fail once, or it and every later one fail.
//! A failed operation changes nothing.

mod crash;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use crash::CrashKind;

use super::io::{Io, IoLock};

/// When injected I/O errors happen (operation indices are 0-based and count
/// every [`Io`] call on this `MemIo` and its clones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Operation `k` fails; later operations succeed.
    Once(u64),
    /// Operation `k` and every later operation fail (a dead disk, or a crash:
    /// the process can do nothing after it).
    From(u64),
}

/// An in-memory file system with a durable/volatile split, fault injection
/// and crash images. Clones share the same state.
#[derive(Clone, Default)]
pub struct MemIo {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemIo")
    }
}

#[derive(Clone, Default)]
pub(crate) struct Inode {
    pub(crate) durable: Vec<u8>,
    pub(crate) live: Vec<u8>,
    /// Changes since the last sync, in order; applying all of them to
    /// `durable` gives `live`.
    pub(crate) pending: Vec<Pending>,
}

#[derive(Clone, Debug)]
pub(crate) enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(usize),
    Dir(usize),
}

#[derive(Clone, Default)]
pub(crate) struct Dir {
    pub(crate) durable: BTreeMap<String, Entry>,
    pub(crate) live: BTreeMap<String, Entry>,
    /// Entry operations since the last directory sync, in order.
    pub(crate) pending: Vec<DirOp>,
}

#[derive(Clone, Debug)]
pub(crate) enum DirOp {
    Link(String, Entry),
    Unlink(String),
    Rename(String, String, Entry),
}

pub(crate) struct State {
    pub(crate) inodes: Vec<Inode>,
    /// `dirs[0]` is the root `/`.
    pub(crate) dirs: Vec<Dir>,
    locks: BTreeSet<PathBuf>,
    ops: u64,
    fault: Option<Fault>,
    faults_fired: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            inodes: Vec::new(),
            dirs: vec![Dir::default()],
            locks: BTreeSet::new(),
            ops: 0,
            fault: None,
            faults_fired: 0,
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

fn names(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::Normal(n) => out.push(
                n.to_str()
                    .ok_or_else(|| io::Error::other("non-UTF-8 path"))?
                    .to_owned(),
            ),
            Component::ParentDir => return Err(io::Error::other("`..` not supported")),
        }
    }
    Ok(out)
}

impl State {
    fn lookup(&self, path: &Path) -> io::Result<Option<Entry>> {
        let mut cur = Entry::Dir(0);
        for n in names(path)? {
            let Entry::Dir(d) = cur else { return Ok(None) };
            match self.dirs[d].live.get(&n) {
                Some(e) => cur = *e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    fn file(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Some(Entry::File(i)) => Ok(i),
            Some(Entry::Dir(_)) => Err(io::Error::other(format!(
                "{} is a directory",
                path.display()
            ))),
            None => Err(not_found(path)),
        }
    }

    fn dir(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Some(Entry::Dir(d)) => Ok(d),
            Some(Entry::File(_)) => Err(io::Error::other(format!("{} is a file", path.display()))),
            None => Err(not_found(path)),
        }
    }

    /// The parent directory's index and the last path component.
    fn parent(&self, path: &Path) -> io::Result<(usize, String)> {
        let mut n = names(path)?;
        let last = n.pop().ok_or_else(|| io::Error::other("no file name"))?;
        let parent: PathBuf = std::iter::once("/".to_owned()).chain(n).collect();
        Ok((self.dir(&parent)?, last))
    }

    fn link(&mut self, d: usize, name: String, e: Entry) {
        self.dirs[d].live.insert(name.clone(), e);
        self.dirs[d].pending.push(DirOp::Link(name, e));
    }

    fn push_write(&mut self, i: usize, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start
            .checked_add(data.len())
            .ok_or_else(|| io::Error::other("overflow"))?;
        let ino = &mut self.inodes[i];
        if ino.live.len() < end {
            ino.live.resize(end, 0);
        }
        ino.live[start..end].copy_from_slice(data);
        ino.pending.push(Pending::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}

struct LockGuard {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    /// What `path` named when the lock was taken.
    entry: Option<Entry>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.locks.remove(&self.path);
    }
}

impl MemIo {
    /// An empty file system holding only the root directory `/`.
    pub fn new() -> Self {
        MemIo::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Operations leave the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one operation and applies the fault plan.
    fn begin(&self, op: &str) -> io::Result<MutexGuard<'_, State>> {
        let mut s = self.lock();
        let k = s.ops;
        s.ops += 1;
        let fail = match s.fault {
            Some(Fault::Once(at)) => k == at,
            Some(Fault::From(at)) => k >= at,
            None => false,
        };
        if fail {
            s.faults_fired += 1;
            return Err(io::Error::other(format!("injected fault at op {k} ({op})")));
        }
        Ok(s)
    }

    /// How many operations have been made so far (failed ones included).
    pub fn op_count(&self) -> u64 {
        self.lock().ops
    }

    /// Sets (or clears) the fault plan. Operation counting continues.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }

    /// How many operations have failed because of the fault plan.
    pub fn faults_fired(&self) -> u64 {
        self.lock().faults_fired
    }

    /// Whether any file or directory has changes that are not durable.
    pub fn has_unsynced(&self) -> bool {
        let s = self.lock();
        s.inodes.iter().any(|i| !i.pending.is_empty())
            || s.dirs.iter().any(|d| !d.pending.is_empty())
    }

    /// A deep copy of the live state in which everything is durable, with no
    /// locks, fault plan or operation count (as after a clean shutdown).
    pub fn fork(&self) -> MemIo {
        self.crash_image(CrashKind::KeepAll, 0)
    }

    fn from_state(state: State) -> MemIo {
        MemIo {
            state: Arc::new(Mutex::new(state)),
        }
    }
}

impl Io for MemIo {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.begin("create_dir")?;
        let (d, name) = s.parent(path)?;
        match s.dirs[d].live.get(&name) {
            Some(Entry::Dir(_)) => Ok(()),
            Some(Entry::File(_)) => {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"))
            }
            None => {
                s.dirs.push(Dir::default());
                let id = s.dirs.len() - 1;
                s.link(d, name, Entry::Dir(id));
                Ok(())
            }
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let s = self.begin("list_dir")?;
        let d = s.dir(path)?;
        Ok(s.dirs[d].live.keys().cloned().collect())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.begin("exists")?;
        Ok(s.lookup(path)?.is_some())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let s = self.begin("file_len")?;
        let i = s.file(path)?;
        Ok(s.inodes[i].live.len() as u64)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self.begin("read_at")?;
        let i = s.file(path)?;
        let data = &s.inodes[i].live;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        match start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.begin("create_file")?;
        match s.lookup(path)? {
            Some(Entry::File(i)) => {
                s.inodes[i].live.clear();
                s.inodes[i].pending.push(Pending::Truncate(0));
                Ok(())
            }
            Some(Entry::Dir(_)) => Err(io::Error::other("is a directory")),
            None => {
                let (d, name) = s.parent(path)?;
                s.inodes.push(Inode::default());
                let i = s.inodes.len() - 1;
                s.link(d, name, Entry::File(i));
                Ok(())
            }
        }
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.begin("write_at")?;
        let i = s.file(path)?;
        s.push_write(i, offset, data)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.begin("truncate")?;
        let i = s.file(path)?;
        let n = usize::try_from(len).map_err(io::Error::other)?;
        s.inodes[i].live.resize(n, 0);
        s.inodes[i].pending.push(Pending::Truncate(len));
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.begin("sync_file")?;
        let i = s.file(path)?;
        let ino = &mut s.inodes[i];
        ino.durable = ino.live.clone();
        ino.pending.clear();
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.begin("sync_dir")?;
        let d = s.dir(path)?;
        let dir = &mut s.dirs[d];
        dir.durable = dir.live.clone();
        dir.pending.clear();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.begin("rename")?;
        let (d1, n1) = s.parent(from)?;
        let (d2, n2) = s.parent(to)?;
        if d1 != d2 {
            return Err(io::Error::other("MemIo renames only within one directory"));
        }
        let e = *s.dirs[d1].live.get(&n1).ok_or_else(|| not_found(from))?;
        let dir = &mut s.dirs[d1];
        dir.live.remove(&n1);
        dir.live.insert(n2.clone(), e);
        dir.pending.push(DirOp::Rename(n1, n2, e));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.begin("remove_file")?;
        s.file(path)?;
        let (d, name) = s.parent(path)?;
        s.dirs[d].live.remove(&name);
        s.dirs[d].pending.push(DirOp::Unlink(name));
        Ok(())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<IoLock>> {
        let mut s = self.begin("try_lock")?;
        if !s.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        let entry = s.lookup(path)?;
        Ok(Some(IoLock::new(LockGuard {
            state: self.state.clone(),
            path: path.to_path_buf(),
            entry,
        })))
    }

    fn lock_is_current(&self, lock: &IoLock, path: &Path) -> io::Result<bool> {
        let s = self.begin("lock_is_current")?;
        Ok(lock
            .guard::<LockGuard>()
            .is_some_and(|g| g.path == path && s.lookup(path).ok().flatten() == g.entry))
    }
}

#[cfg(test)]
mod tests;
