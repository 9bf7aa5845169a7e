//! Waiting for the writer lock, and naming its holder. The flock on the
//! ledger directory (and `LOCK`) is the truth; the holder's PID and start
//! time, written into `LOCK` once the lock is taken, only make the
//! "locked" error say who and since when.

use std::time::{Duration, Instant};

use super::*;
use crate::storage::{StorageError, LOCK_FILE};

/// How long to sleep between attempts while waiting for the lock.
const POLL: Duration = Duration::from_millis(50);
/// At most this many bytes of `LOCK` are read.
const MAX_HOLDER: u64 = 256;

impl Ledger<FsIo> {
    /// Opens (or, with `create`, creates) a ledger directory, waiting up to
    /// `opts.wait` for another writer to release the lock. A lock still
    /// held is [`LedgerError::Locked`], naming its holder's PID and since
    /// when, as the holder wrote them into `LOCK`.
    pub(super) fn open_waiting(
        path: &Path,
        keyer: Option<SubjectKeyer>,
        opts: LedgerOptions,
        create: bool,
    ) -> Result<Self> {
        let deadline = opts.wait.map(|w| Instant::now() + w);
        loop {
            let r = match (&keyer, create) {
                (Some(k), true) => Self::create_with(FsIo::new(), path, k.clone(), opts.clone()),
                _ => Self::open_with(FsIo::new(), path, keyer.clone(), opts.clone()),
            };
            match r {
                Err(Error::Storage(StorageError::Locked { path: lock })) => {
                    if deadline.is_some_and(|d| Instant::now() < d) {
                        std::thread::sleep(POLL);
                        continue;
                    }
                    return Err(LedgerError::Locked {
                        path: lock,
                        holder: holder(path),
                        waited: opts.wait,
                    }
                    .into());
                }
                Ok(l) => {
                    if !l.read_only {
                        write_holder(path);
                    }
                    return Ok(l);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes this process's PID and the time into `LOCK`, which this process
/// has just locked (best effort: the flock, not this text, decides who
/// writes; the file is rewritten in place, never replaced).
fn write_holder(path: &Path) {
    let text = format!(
        "pid {} since {}\n",
        std::process::id(),
        Timestamp::now().to_rfc3339()
    );
    let _ = std::fs::write(path.join(LOCK_FILE), text);
}

/// What the holder wrote into `LOCK` (`pid N since T`), if anything.
fn holder(path: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(path.join(LOCK_FILE)).ok()?;
    let mut text = String::new();
    f.take(MAX_HOLDER).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (line.starts_with("pid ") && !line.chars().any(char::is_control)).then(|| line.to_string())
}
