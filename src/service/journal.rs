//! The request journal: durable `Idempotency-Key` → response, so a client
//! that retries after a timeout or a crash never records twice, even
//! across a restart.
//!
//! **Interim home.** The key belongs in the ledger entry itself (with the
//! actor, docs/FORMAT.md "Request metadata (draft)"), rebuilt at open: one
//! fsync per group. Until the entry format has that field, the service
//! keeps `STATE/journal.jsonl` beside the ledger, and pays a second fsync
//! for groups that carry a key. Its protocol:
//!
//! 1. Before a keyed write is appended to the ledger, its **intent** line
//!    (actor, key, request fingerprint, the seq range the write will get,
//!    a digest of the entries it will append, and the answer) is appended
//!    here and fsynced, one fsync for the whole group.
//! 2. The group is appended to the ledger (its own fsync), then answered.
//! 3. At open, each intent is **resolved** against the ledger: it counts
//!    only if the entries at its seq range hash to its digest (the write
//!    reached the ledger); otherwise it never happened (the crash came
//!    before the ledger's fsync) and is dropped, so a retry records it.
//!    Writes whose entries cannot be predicted (record batches: `ingest`
//!    drops unchanged rows) write a **done** line after the commit instead:
//!    a crash between the two loses only the answer, and the retry is a
//!    no-op because re-registering identical records changes nothing.
//!
//! Lines are JSON; a torn last line (no newline, or not JSON) was never
//! acknowledged and is cut at open; damage before it is an error. At open
//! the file is rewritten (temp, fsync, rename, fsync dir) with the resolved
//! entries younger than the retention period (`--idempotency-ttl`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::Seq;
use crate::time::Timestamp;

/// The journal's file name in the state directory.
pub const FILE: &str = "journal.jsonl";
/// The state directory's lock file (held while a server runs).
pub const LOCK: &str = "LOCK";
/// The `derive_key` context of an intent's entry digest.
const ENTRIES_CONTEXT: &str = "optout 2026-12 service journal entries v1";
/// The `derive_key` context of a request fingerprint.
const REQUEST_CONTEXT: &str = "optout 2026-12 service request fingerprint v1";

/// What an intent's seq range holds, for resolution at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holds {
    /// `Entry::Event`s, one per seq.
    Events,
    /// One `Entry::Run`.
    Run,
}

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "line", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// First line: binds the journal to one ledger.
    Header {
        /// Format version (1).
        v: u32,
        /// The ledger's id (hex).
        ledger_id: String,
    },
    /// Written and fsynced before the write reaches the ledger.
    Intent {
        /// The token name.
        actor: String,
        /// The `Idempotency-Key`.
        key: String,
        /// The request's fingerprint (hex).
        fp: String,
        /// What the range holds.
        holds: Holds,
        /// First seq of the write.
        first: u64,
        /// Last seq of the write.
        last: u64,
        /// Digest of the entries (hex), see [`entries_digest`].
        digest: String,
        /// The answer.
        response: Value,
        /// When (RFC 3339).
        at: String,
    },
    /// Written after the write is durable in the ledger (or resolved at open).
    Done {
        /// The token name.
        actor: String,
        /// The `Idempotency-Key`.
        key: String,
        /// The request's fingerprint (hex).
        fp: String,
        /// The answer.
        response: Value,
        /// When (RFC 3339).
        at: String,
    },
}

/// A remembered answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The request's fingerprint (hex): a reused key with another request is refused.
    pub fp: String,
    /// The answer given.
    pub response: Value,
    /// When it was written.
    pub at: Timestamp,
}

/// The digest an intent carries: blake3 (own context) over each encoded entry, length-prefixed.
pub fn entries_digest<'a>(encoded: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = blake3::Hasher::new_derive_key(ENTRIES_CONTEXT);
    for e in encoded {
        h.update(&(e.len() as u64).to_le_bytes());
        h.update(e);
    }
    h.finalize().to_hex().to_string()
}

/// A request's fingerprint: route, query and body.
pub fn fingerprint(route: &str, query: &str, body: &[u8]) -> String {
    let mut h = blake3::Hasher::new_derive_key(REQUEST_CONTEXT);
    for part in [route.as_bytes(), query.as_bytes(), body] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().to_hex().to_string()
}

/// The open journal (owned by the writer task).
pub struct Journal {
    path: PathBuf,
    file: File,
    _lock: File,
    map: HashMap<(String, String), Stored>,
    ttl_ns: i64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("keys", &self.map.len())
            .finish()
    }
}

/// What opening did, for the log line at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Keys remembered.
    pub keys: usize,
    /// Intents whose write reached the ledger.
    pub resolved: usize,
    /// Intents whose write never reached it (dropped).
    pub dropped: usize,
    /// Entries past the retention period (dropped).
    pub expired: usize,
    /// A torn last line was cut.
    pub torn_tail: bool,
}

fn bad(path: &Path, line: usize, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}:{line}: {what}", path.display()))
}

impl Journal {
    /// Opens (or creates) the journal in `dir` for the ledger `ledger_id`,
    /// resolving intents with `reached(holds, first, last, digest)`: whether
    /// the ledger holds exactly those entries at those seqs.
    pub fn open(
        dir: &Path,
        ledger_id: &str,
        ttl_secs: u64,
        reached: impl Fn(Holds, Seq, Seq, &str) -> bool,
    ) -> Result<(Journal, OpenReport)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create state directory", e))?;
        // One server per state directory (the ledger's lock covers the
        // ledger; this one a state directory given to two servers), taken
        // before the journal is read and rewritten.
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "open lock", e))?;
        lock.try_lock().map_err(|_| {
            Error::Invalid(format!(
                "{}: another optout serve is using this state directory",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE);
        let ttl_ns = i64::try_from(ttl_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000);
        let mut report = OpenReport::default();
        let mut map = HashMap::new();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, "read journal", e)),
        };
        let now = Timestamp::now();
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        // The piece after the last newline is a torn line (or empty).
        if lines.last().is_some_and(|l| !l.is_empty()) {
            report.torn_tail = true;
        }
        lines.pop();
        for (i, raw) in lines.iter().enumerate() {
            let n = i + 1;
            let line: Line = match serde_json::from_slice(raw) {
                Ok(l) => l,
                // The last complete line may still be torn (a crash mid-write
                // that left a newline inside it is impossible: JSON has none).
                Err(e) if n == lines.len() => {
                    report.torn_tail = true;
                    let _ = e;
                    break;
                }
                Err(e) => return Err(bad(&path, n, format!("journal line does not parse: {e}"))),
            };
            // The answer this line leaves remembered, if any.
            let answer = match line {
                Line::Header { v, ledger_id: id } => {
                    if n != 1 || v != 1 {
                        return Err(bad(&path, n, "unexpected journal header"));
                    }
                    if id != ledger_id {
                        return Err(bad(
                            &path,
                            n,
                            format!("this journal belongs to ledger {id}, not {ledger_id}: give another --state directory"),
                        ));
                    }
                    None
                }
                _ if n == 1 => return Err(bad(&path, n, "no journal header")),
                Line::Intent {
                    actor,
                    key,
                    fp,
                    holds,
                    first,
                    last,
                    digest,
                    response,
                    at,
                } => {
                    if reached(holds, Seq(first), Seq(last), &digest) {
                        report.resolved += 1;
                        Some((actor, key, fp, response, at))
                    } else {
                        report.dropped += 1;
                        None
                    }
                }
                Line::Done {
                    actor,
                    key,
                    fp,
                    response,
                    at,
                } => Some((actor, key, fp, response, at)),
            };
            if let Some((actor, key, fp, response, at)) = answer {
                insert(
                    &mut map,
                    actor,
                    key,
                    fp,
                    response,
                    &at,
                    now,
                    ttl_ns,
                    &mut report,
                );
            }
        }
        report.keys = map.len();
        let mut out = serde_json::to_vec(&Line::Header {
            v: 1,
            ledger_id: ledger_id.to_string(),
        })
        .map_err(|e| Error::Other(e.to_string()))?;
        out.push(b'\n');
        for ((actor, key), s) in &map {
            out.extend(done_line(actor, key, s)?);
        }
        crate::fsutil::atomic_write(&path, &out)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open journal", e))?;
        Ok((
            Journal {
                path,
                file,
                _lock: lock,
                map,
                ttl_ns,
            },
            report,
        ))
    }

    /// The answer remembered for `(actor, key)`, if any and not expired.
    pub fn get(&self, actor: &str, key: &str) -> Option<&Stored> {
        let s = self.map.get(&(actor.to_string(), key.to_string()))?;
        (Timestamp::now().0.saturating_sub(s.at.0) <= self.ttl_ns).then_some(s)
    }

    /// Appends `lines` with one write and one fsync. Nothing is remembered
    /// until [`Journal::remember`].
    pub fn append(&mut self, lines: &[Line]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, l).map_err(|e| Error::Other(e.to_string()))?;
            buf.push(b'\n');
        }
        let io = |op, e| Error::io(&self.path, op, e);
        self.file.write_all(&buf).map_err(|e| io("append", e))?;
        self.file.sync_data().map_err(|e| io("fsync", e))
    }

    /// Remembers an answer (after its write is durable).
    pub fn remember(&mut self, actor: &str, key: &str, fp: &str, response: Value) {
        self.map.insert(
            (actor.to_string(), key.to_string()),
            Stored {
                fp: fp.to_string(),
                response,
                at: Timestamp::now(),
            },
        );
    }

    /// Forgets answers past the retention period (bounded memory).
    pub fn expire(&mut self) {
        let now = Timestamp::now().0;
        let ttl = self.ttl_ns;
        self.map.retain(|_, s| now.saturating_sub(s.at.0) <= ttl);
    }
}

#[allow(clippy::too_many_arguments)]
fn insert(
    map: &mut HashMap<(String, String), Stored>,
    actor: String,
    key: String,
    fp: String,
    response: Value,
    at: &str,
    now: Timestamp,
    ttl_ns: i64,
    report: &mut OpenReport,
) {
    let at = Timestamp::parse(at).unwrap_or(now);
    if now.0.saturating_sub(at.0) > ttl_ns {
        report.expired += 1;
        return;
    }
    map.insert((actor, key), Stored { fp, response, at });
}

fn done_line(actor: &str, key: &str, s: &Stored) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec(&Line::Done {
        actor: actor.to_string(),
        key: key.to_string(),
        fp: s.fp.clone(),
        response: s.response.clone(),
        at: s.at.to_rfc3339(),
    })
    .map_err(|e| Error::Other(e.to_string()))?;
    v.push(b'\n');
    Ok(v)
}

#[cfg(test)]
mod tests;
