//! Errors. Each area has its own enum; all convert into the crate-wide [`Error`].

use std::path::{Path, PathBuf};

pub(crate) mod serde;

/// Bad input: a JSONL line, a policy file, an argument. Names where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InputError {
    /// The input's name: a file path, `-` for stdin, or `<memory>`.
    pub file: String,
    /// 1-based line number, or 0 when the whole input is meant.
    pub line: u64,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error at `file:line`, blaming `field` if given.
    pub fn new(file: &str, line: u64, field: Option<&str>, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_string(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        let mut s = self.file.clone();
        if self.line > 0 {
            s.push_str(&format!(":{}", self.line));
        }
        if let Some(f) = &self.field {
            s.push_str(&format!(": field `{f}`"));
        }
        s.push_str(": ");
        s.push_str(&self.message);
        s
    }
}

/// A request the ledger refuses, by kind: match on the variant (the Python
/// binding and the HTTP service do), never on the message. Messages name
/// no CLI flags; the CLI adds them when it reports an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// `create` where a ledger already exists.
    #[error("{}: a ledger already exists here", path.display())]
    Exists {
        /// The ledger's directory.
        path: PathBuf,
    },
    /// A write (append, snapshot) to a ledger opened read-only.
    #[error("the ledger is open read-only")]
    ReadOnly,
    /// The call needs the subject key (pseudonymising subjects) and the
    /// ledger was opened without one.
    #[error("this needs the subject key (its default file is {})", default_key.display())]
    NeedsKey {
        /// Where the key is looked for by default.
        default_key: PathBuf,
    },
    /// The subject key given is not the one the ledger was created with.
    #[error("{}: the subject key given is not the key this ledger was created with", path.display())]
    KeyMismatch {
        /// The ledger's directory.
        path: PathBuf,
    },
    /// One entry encodes to more than one log entry may hold; nothing was
    /// written.
    #[error("{what} encodes to {size} bytes, over the {limit}-byte limit of one log entry; nothing was written")]
    EntryTooLarge {
        /// What the entry is, e.g. `a record batch of 3 shards`.
        what: String,
        /// Its encoded size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A seq past the ledger's head was asked for.
    #[error("seq {seq} is past the ledger's head {head}")]
    SeqPastHead {
        /// The seq asked for.
        seq: crate::ids::Seq,
        /// The ledger's head.
        head: crate::ids::Seq,
    },
    /// A dataset the ledger has no record of.
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
    /// A purpose that is not a valid purpose name.
    #[error("{0}")]
    BadPurpose(String),
    /// A policy given for another purpose than the one asked.
    #[error("the policy is for purpose {policy}, not {asked}")]
    PolicyPurpose {
        /// The policy's purpose.
        policy: String,
        /// The purpose asked for.
        asked: String,
    },
    /// A training run without a name or a model.
    #[error("a run needs a non-empty name and model")]
    EmptyRun,
    /// A purpose the ledger has not declared, named by an event, a policy
    /// or a manifest query (a typo would otherwise file an objection under
    /// a purpose nobody computes manifests for).
    #[error("{}purpose `{purpose}` is not declared in this ledger{}", event.map(|i| format!("event {} of the batch: ", i + 1)).unwrap_or_default(), closest.as_ref().map(|c| format!("; did you mean `{c}`?")).unwrap_or_else(|| "; declare it first".into()))]
    UndeclaredPurpose {
        /// The purpose as given.
        purpose: String,
        /// The closest declared purpose, if one is close.
        closest: Option<String>,
        /// Its event's position in the batch (0-based), for events.
        event: Option<usize>,
    },
    /// A name `vocab add ... basis` cannot declare (built in, ill formed,
    /// or within typo distance of a built-in basis).
    #[error("{0}")]
    BadBasis(String),
    /// A legal basis that is neither built in nor declared in this ledger,
    /// named by a record (at `record`: dataset, shard, row) or by a policy.
    #[error("{}basis `{basis}` is not a known legal basis and not declared in this ledger{}", record.as_ref().map(|(d, s, r)| format!("dataset {d}, shard {s}, row {r}: ")).unwrap_or_else(|| "the policy names a ".into()), closest.as_ref().map(|c| format!("; did you mean `{c}`?")).unwrap_or_else(|| "; declare it first (optout vocab add LEDGER basis NAME)".into()))]
    UndeclaredBasis {
        /// The basis as normalised.
        basis: String,
        /// The closest built-in or declared basis, if one is close.
        closest: Option<String>,
        /// The first record naming it (dataset, shard, row); `None` for a policy.
        record: Option<(String, String, u32)>,
    },
    /// A strict apply found events that would do nothing (their subject
    /// has no records, or their scope matches no record); nothing was written.
    #[error("{} event(s) concern subjects with no records and {} scoped event(s) match no record; nothing was written", no_records.len(), unmatched.len())]
    WouldDoNothing {
        /// Positions in the batch (0-based) of events whose subject has no records.
        no_records: Vec<usize>,
        /// Positions in the batch (0-based) of scoped events matching no record.
        unmatched: Vec<usize>,
    },
    /// Another writer holds the ledger's lock (after waiting, if asked to).
    #[error("{}: the ledger is locked by another writer{}{}", path.display(), holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default(), waited.map(|w| format!("; waited {:.1} s", w.as_secs_f64())).unwrap_or_default())]
    Locked {
        /// The ledger directory (the lock).
        path: PathBuf,
        /// What the holder wrote into `LOCK`: `pid N since T`.
        holder: Option<String>,
        /// How long this open waited for it.
        waited: Option<std::time::Duration>,
    },
    /// A log entry the ledger wrote does not read back as what its index
    /// says it is (a damaged or inconsistent log).
    #[error("{0}")]
    Damaged(String),
    /// Creating a ledger without naming a signing key, where the default
    /// signing key file already exists (it may be another ledger's).
    #[error("{}: a signing key file already exists (another ledger's?); name it explicitly to create the ledger with it, or move it away", path.display())]
    SigningKeyExists {
        /// The existing key file.
        path: PathBuf,
    },
}

/// A manifest that did not decode or verify. Names the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}manifest damaged at byte {offset}: {what}", file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The file, when known.
    pub file: Option<String>,
    /// Byte offset of the damage (the digest's offset for a digest mismatch).
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl ManifestError {
    pub(crate) fn at(offset: usize, what: impl Into<String>) -> Self {
        ManifestError {
            file: None,
            offset: offset as u64,
            what: what.into(),
        }
    }
    /// The same error, naming the file.
    pub fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.display().to_string());
        self
    }
}

/// What can go wrong exporting into a table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The table's log or a file it references is malformed, or uses
    /// something optout cannot write to. Names the file, line and field.
    #[error(transparent)]
    Table(InputError),
    /// The table's files and the manifest's shards do not match; nothing
    /// was written.
    #[error("{table}: the table's files do not match dataset {dataset:?} of the manifest; nothing was written:{}", list(problems))]
    Mismatch {
        /// The table.
        table: String,
        /// The manifest dataset.
        dataset: String,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// Another writer committed first and touched the same files (or the
    /// retries ran out); nothing was committed.
    #[error("{table}: commit conflict at version {version}: {message}")]
    Conflict {
        /// The table.
        table: String,
        /// The version that was taken.
        version: u64,
        /// What happened.
        message: String,
    },
    /// A request that cannot be honoured (e.g. which dataset is meant).
    #[error("{0}")]
    Invalid(String),
    /// An operating-system I/O error on a named file.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

fn list(problems: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut s: String = problems
        .iter()
        .take(SHOWN)
        .map(|p| format!("\n  - {p}"))
        .collect();
    if problems.len() > SHOWN {
        s.push_str(&format!("\n  ... and {} more", problems.len() - SHOWN));
    }
    s
}

/// A derived row the ledger refuses (a parent that does not exist or is
/// not of a source dataset, a cycle, a row registered twice with different
/// parents). Names the row and the field; the CLI adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("derived row {dataset}/{shard}#{row}: field `{field}`: {what}")]
pub struct DeriveError {
    /// The derived dataset.
    pub dataset: String,
    /// The derived row's shard.
    pub shard: String,
    /// Its row.
    pub row: u32,
    /// The field to blame (`row`, `parents`, `parents[2].dataset`, ...).
    pub field: String,
    /// What is wrong.
    pub what: String,
}

/// Everything that can go wrong in optout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input; nothing of the batch it came in was applied.
    #[error(transparent)]
    Input(#[from] InputError),
    /// An operating-system I/O error on a named file.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An input file is larger than the documented cap for its kind (or
    /// could not be held in memory): refused before it is read further.
    #[error("{}: {what} may be at most {} bytes{}", path.display(), cap, if *.out_of_memory { " (out of memory before reaching that)" } else { "" })]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What it was read as, e.g. `"a policy file"`.
        what: &'static str,
        /// The cap in bytes.
        cap: u64,
        /// Whether memory ran out before the cap was reached.
        out_of_memory: bool,
    },
    /// A record registered again without `replace` (twice in one batch, or
    /// already in the ledger): nothing of the batch was written. The CLI
    /// names the input's file and line.
    #[error("record {dataset}/{shard}#{row} {what}")]
    RecordConflict {
        /// The record's dataset.
        dataset: String,
        /// Its shard.
        shard: String,
        /// Its row.
        row: u32,
        /// Whether the batch itself holds the row twice (else the ledger
        /// has it already).
        twice_in_batch: bool,
        /// What is wrong.
        what: &'static str,
    },
    /// A derivation (`derive`) refused: nothing of it was written.
    #[error(transparent)]
    Derive(#[from] DeriveError),
    /// A manifest failed to decode or verify.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Exporting a manifest into a Delta table or an Iceberg Puffin file failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The ledger's log, snapshot or lock: damaged, locked, poisoned, or an I/O failure.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A manifest that is not what the ledger computes at the seq, time,
    /// policy and scope it claims (another ledger, a rewritten history, or
    /// altered and re-sealed).
    #[error("{0}")]
    ManifestMismatch(String),
    /// The ledger does not extend a pinned head (`--expect-head`): rolled
    /// back, forked or rewritten.
    #[error("{0}")]
    HeadMismatch(String),
    /// A request the ledger refuses, by kind.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The transparency log: the tree store, a proof, a checkpoint, a key or a receipt.
    #[error(transparent)]
    Tlog(#[from] crate::tlog::TlogError),
    /// A request that cannot be honoured, described (the index's replay
    /// checks, the service's configuration).
    #[error("{0}")]
    Invalid(String),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error on `path` while doing `op`.
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
