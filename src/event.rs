//! What the ledger records: events about subjects and content, record
//! registrations and training runs. Each becomes one [`Entry`] in the log.
//!
//! These are the stored forms: subject ids are already pseudonyms
//! ([`SubjectKey`]). The JSON forms users write live in [`crate::jsonl`].

use serde::{Deserialize, Serialize};

use crate::ids::{Purpose, Purposes, Seq, SubjectKey};
use crate::policy::Policy;
use crate::provenance::Profile;
use crate::time::Timestamp;

mod derivation;

pub use derivation::{Derivation, DerivedRow, DerivedShard, ParentRef};

/// A blake3 hash of a record's content, for takedowns and duplicates across datasets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(format!(
                "content_hash must be 64 hex digits, got {} characters",
                b.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            match (hex(pair[0]), hex(pair[1])) {
                (Some(h), Some(l)) => out[i] = h << 4 | l,
                _ => return Err("content_hash must be 64 hex digits".into()),
            }
        }
        Ok(ContentHash(out))
    }
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}

/// How a consent was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// The subject ticked a box once.
    SingleOptIn,
    /// The subject ticked a box and confirmed it (e.g. by a link in an email).
    DoubleOptIn,
    /// Someone else (a meeting admin, an account owner) consented on the subject's behalf.
    Delegated,
}

/// What a takedown removes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TakedownTarget {
    /// One record.
    Record {
        /// Dataset name.
        dataset: String,
        /// Shard (data file) name.
        shard: String,
        /// Row position in the shard.
        row: u32,
    },
    /// Every record, in any dataset, registered with this external key (a URL, a `__key__`).
    Key(String),
    /// Every record, in any dataset, with this content hash.
    ContentHash(ContentHash),
}

/// What a [`EventKind::Signal`] covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalTarget {
    /// Every record whose source or third party is this domain or a
    /// subdomain of it (as [`EventKind::SourceOptout`]).
    Source(String),
    /// Every record, in any dataset, registered with this external key (a URL).
    Key(String),
}

/// The evidence a machine-readable signal leaves in the ledger: what was
/// read, where and when, so an auditor can tell why content was reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalEvidence {
    /// The signal kind (`robots`, `tdmrep`, `tdmrep-header`, `noai`, `ai.txt`,
    /// `aipref`, `c2pa`, ...; see `docs/SIGNALS.md`).
    pub kind: String,
    /// The URL the signal was read from (a page, `/robots.txt`, ...).
    pub url: String,
    /// When the crawler fetched it.
    pub fetched_at: Timestamp,
    /// The raw value, cut to at most [`SignalEvidence::MAX_RAW`] bytes (at a
    /// character boundary); for a URL decided by a path rule of a site-level
    /// file whose text an earlier event of the same run keeps, only an
    /// excerpt (empty: the rule is in `detail`).
    pub raw: String,
    /// Length in bytes of the whole raw value.
    pub raw_len: u64,
    /// blake3 of the whole raw value.
    pub raw_blake3: [u8; 32],
    /// What in it decided (the matching rule, the parse error), if known.
    pub detail: Option<String>,
}

impl SignalEvidence {
    /// Longest raw value kept verbatim, in bytes.
    pub const MAX_RAW: usize = 4096;

    /// Evidence that keeps `excerpt` (the deciding part, bounded) in `raw`
    /// but the length and hash of the `whole` value: for the many URLs one
    /// robots.txt decides, whose text one event already keeps.
    pub fn excerpt(
        kind: &str,
        url: &str,
        fetched_at: Timestamp,
        whole: &str,
        excerpt: &str,
        detail: Option<String>,
    ) -> Self {
        let mut e = Self::new(kind, url, fetched_at, excerpt, detail);
        e.raw_len = whole.len() as u64;
        e.raw_blake3 = *blake3::hash(whole.as_bytes()).as_bytes();
        e
    }

    /// Evidence for `raw`: the first [`Self::MAX_RAW`] bytes and the hash of all of it.
    pub fn new(
        kind: &str,
        url: &str,
        fetched_at: Timestamp,
        raw: &str,
        detail: Option<String>,
    ) -> Self {
        let mut cut = raw.len().min(Self::MAX_RAW);
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        SignalEvidence {
            kind: kind.to_string(),
            url: url.to_string(),
            fetched_at,
            raw: raw[..cut].to_string(),
            raw_len: raw.len() as u64,
            raw_blake3: *blake3::hash(raw.as_bytes()).as_bytes(),
            detail,
        }
    }
}

/// What happened, per kind. See [`Event`] for the fields every kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Art. 21: the subject objects to processing for `purposes`, optionally
    /// only for records of some `categories` and/or `sources` (empty = all).
    Objection {
        /// Who objects.
        subject: SubjectKey,
        /// For which purposes.
        purposes: Purposes,
        /// Only records with one of these categories (empty: any).
        categories: Vec<String>,
        /// Only records from one of these sources (empty: any).
        sources: Vec<String>,
    },
    /// The subject withdraws every earlier objection for `purposes`.
    ObjectionWithdrawn {
        /// Who withdraws.
        subject: SubjectKey,
        /// For which purposes.
        purposes: Purposes,
    },
    /// Art. 6(1)(a) / 7: consent for `purposes`.
    Consent {
        /// Whose consent.
        subject: SubjectKey,
        /// For which purposes.
        purposes: Purposes,
        /// How it was obtained.
        method: ConsentMethod,
        /// Whether it was confirmed. An unconfirmed consent never counts.
        confirmed: bool,
        /// For a delegated consent: the pseudonym of who granted it.
        granted_by: Option<SubjectKey>,
    },
    /// Art. 7(3): the subject withdraws consent for `purposes`.
    ConsentWithdrawn {
        /// Who withdraws.
        subject: SubjectKey,
        /// For which purposes.
        purposes: Purposes,
    },
    /// Art. 17: erase everything about the subject. Permanent, every purpose.
    Erasure {
        /// Whose data.
        subject: SubjectKey,
    },
    /// Art. 18: restrict processing of the subject's data, every purpose,
    /// from `at` until `until` (exclusive), or indefinitely.
    Restriction {
        /// Whose data.
        subject: SubjectKey,
        /// End of the restriction, if known.
        until: Option<Timestamp>,
    },
    /// Content removed (copyright, legal order, ...), every purpose.
    Takedown {
        /// What is removed.
        target: TakedownTarget,
        /// Why (free text, e.g. `copyright`).
        reason: Option<String>,
    },
    /// A source-level opt-out (TDM reservation, robots.txt, ai.txt, a DMP
    /// that lost its consent basis): every record whose source or third
    /// party is `source` or a subdomain of it.
    SourceOptout {
        /// The source (domain or system name).
        source: String,
        /// For which purposes.
        purposes: Purposes,
        /// Which signal said so (`tdmrep`, `robots`, `ai.txt`, `noai`, ...).
        signal: Option<String>,
    },
    /// A machine-readable reservation read from the web (`optout signals`):
    /// TDMRep, robots.txt AI user agents, `noai`, ai.txt, aipref, C2PA.
    /// A reserving signal excludes its target as [`EventKind::SourceOptout`]
    /// does; a signal that was present but could not be parsed excludes it
    /// too (fail closed), under its own reason, `signal_unparsable`.
    Signal {
        /// What it covers.
        target: SignalTarget,
        /// For which purposes.
        purposes: Purposes,
        /// The signal was present but could not be parsed.
        unparsable: bool,
        /// What was read, where and when.
        evidence: SignalEvidence,
    },
    /// An explicit, evidenced decision that the `signal` events for
    /// `target` recorded before this one, and in effect at its `at`, no
    /// longer exclude for `purposes` (a licence was acquired, the publisher
    /// granted permission in writing). A signal that merely disappears from
    /// a later crawl never lifts anything; this event is the only way.
    SignalLifted {
        /// Exactly the target of the signals it lifts.
        target: SignalTarget,
        /// For which purposes.
        purposes: Purposes,
        /// Why, and on what evidence (a licence id, a letter, a URL).
        evidence: String,
    },
}

impl EventKind {
    /// The purposes the event is limited to, for the kinds that have them
    /// (erasures, restrictions and takedowns cover every purpose).
    pub fn purposes(&self) -> Option<&Purposes> {
        match self {
            EventKind::Objection { purposes, .. }
            | EventKind::ObjectionWithdrawn { purposes, .. }
            | EventKind::Consent { purposes, .. }
            | EventKind::ConsentWithdrawn { purposes, .. }
            | EventKind::SourceOptout { purposes, .. }
            | EventKind::Signal { purposes, .. }
            | EventKind::SignalLifted { purposes, .. } => Some(purposes),
            EventKind::Erasure { .. }
            | EventKind::Restriction { .. }
            | EventKind::Takedown { .. } => None,
        }
    }
}

/// One event: what happened and when it took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it took effect (valid time). It may lie before the time it was
    /// recorded (a late-filed objection) or after it (a scheduled one).
    pub at: Timestamp,
    /// An outside reference (ticket id), if given.
    pub reference: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// The subject the event is about, if it is about one.
    pub fn subject(&self) -> Option<SubjectKey> {
        match &self.kind {
            EventKind::Objection { subject, .. }
            | EventKind::ObjectionWithdrawn { subject, .. }
            | EventKind::Consent { subject, .. }
            | EventKind::ConsentWithdrawn { subject, .. }
            | EventKind::Erasure { subject }
            | EventKind::Restriction { subject, .. } => Some(*subject),
            EventKind::Takedown { .. }
            | EventKind::SourceOptout { .. }
            | EventKind::Signal { .. }
            | EventKind::SignalLifted { .. } => None,
        }
    }

    /// The JSON `type` name of the event.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            EventKind::Objection { .. } => "objection",
            EventKind::ObjectionWithdrawn { .. } => "objection_withdrawn",
            EventKind::Consent { .. } => "consent",
            EventKind::ConsentWithdrawn { .. } => "consent_withdrawn",
            EventKind::Erasure { .. } => "erasure",
            EventKind::Restriction { .. } => "restriction",
            EventKind::Takedown { .. } => "takedown",
            EventKind::SourceOptout { .. } => "source_optout",
            EventKind::Signal { .. } => "signal",
            EventKind::SignalLifted { .. } => "signal_lifted",
        }
    }
}

/// One record's registration inside a [`ShardRecords`] group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowEntry {
    /// Row position in the shard.
    pub row: u32,
    /// Pseudonyms of the linked subjects (sorted, no duplicates; may be empty).
    pub subjects: Vec<SubjectKey>,
    /// Index into [`RecordBatch::profiles`].
    pub profile: u32,
    /// When the record was collected.
    pub collected_at: Timestamp,
    /// External key (URL, `__key__`), if any.
    pub key: Option<String>,
    /// Content hash, if any.
    pub content_hash: Option<ContentHash>,
    /// Whether this registration deliberately replaces an earlier one of the same row.
    pub replace: bool,
}

/// The records of one shard inside a [`RecordBatch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecords {
    /// Dataset name.
    pub dataset: String,
    /// Shard (data file) name.
    pub shard: String,
    /// The rows, in input order.
    pub rows: Vec<RowEntry>,
}

/// Record registrations, grouped by shard, with their profiles stored once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// Distinct profiles used by the rows.
    pub profiles: Vec<Profile>,
    /// Rows grouped by shard.
    pub shards: Vec<ShardRecords>,
}

impl RecordBatch {
    /// Number of rows in the batch.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.rows.len()).sum()
    }
    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.rows.is_empty())
    }
}

/// A training run: which model was trained for which purpose on which
/// manifest. The manifest's parameters are kept so it can be recomputed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingRun {
    /// The run's name (unique in the ledger).
    pub name: String,
    /// The model trained.
    pub model: String,
    /// When training started.
    pub started_at: Timestamp,
    /// The purpose (taken from the manifest).
    pub purpose: Purpose,
    /// The manifest's digest (hex of its blake3 seal).
    pub manifest_digest: String,
    /// The ledger sequence number the manifest was computed at.
    pub manifest_seq: Seq,
    /// The valid time the manifest was computed at.
    pub manifest_at: Timestamp,
    /// The datasets the manifest covered (empty: all).
    pub datasets: Vec<String>,
    /// The policy the manifest applied.
    pub policy: Policy,
}

/// The first entry of every ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerInit {
    /// Format version of the entries that follow.
    pub format: u32,
    /// Fingerprint of the subject key the ledger's pseudonyms are made with,
    /// so a different key is refused rather than silently making new ones.
    pub key_fingerprint: [u8; 32],
}

/// A torn tail that recovery moved to `quarantine/`, as acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedTail {
    /// The file's name in `LEDGER/quarantine/`.
    pub name: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// blake3 of its bytes.
    pub blake3: [u8; 32],
}

/// An operator's statement, recorded in the log, that the torn tails in
/// `quarantine/` were looked at: a crash cut them, they were never
/// acknowledged, nothing is missing. `verify` no longer reports exactly
/// these files (same name, length and hash); anything else still is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineAck {
    /// The files acknowledged.
    pub files: Vec<QuarantinedTail>,
    /// Why (free text, e.g. a ticket).
    pub note: Option<String>,
}

/// One log entry: what a sequence number stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// The ledger was created (always `Seq` 1).
    Init(LedgerInit),
    /// Records registered.
    Records(RecordBatch),
    /// An event.
    Event(Event),
    /// A training run registered.
    Run(TrainingRun),
    /// Quarantined torn tails acknowledged (index 4, appended: older
    /// builds refuse a ledger holding one rather than misread it).
    QuarantineAck(QuarantineAck),
    /// A word added to one of the ledger's vocabularies on purpose (index
    /// 5, appended: older builds refuse a ledger holding one).
    Declare(Declaration),
    /// Rows of a derived dataset registered with their parents (index 6,
    /// appended: older builds refuse a ledger holding one).
    Derive(Derivation),
    // Shard fingerprints (issue 14): src/fingerprint.rs.
    /// Fingerprints of the data files an ingest read (index 7, appended:
    /// older builds refuse a ledger holding one), after its records.
    Files(crate::fingerprint::ShardFiles),
    /// Index 8 is `DeriveOwn` (issue 15, another branch): never written
    /// by this build, and refused on decode (an uninhabited payload).
    #[doc(hidden)]
    Reserved8(crate::fingerprint::Reserved),
    // Shard ends (issue 14): src/fingerprint.rs, src/index/ends.rs.
    /// Rows at or past a shard's new end are gone (index 9, appended:
    /// older builds refuse a ledger holding one): a file replaced by a
    /// shorter one.
    Ends(crate::fingerprint::ShardEnds),
}

/// Which open-by-declaration vocabulary a [`Declaration`] extends. New
/// vocabularies are appended at the end only: the codec writes the variant's
/// position, so a build that does not know a variant refuses the entry
/// (an unknown variant is a decode error) instead of misreading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Vocabulary {
    /// Purposes events, policies and manifests may name.
    Purpose,
    /// Legal bases records may name beyond the built-in ones
    /// ([`crate::provenance::basis::ALL`]).
    Basis,
}

/// A declaration: from its seq on, `name` is a word of `vocabulary`.
/// Declaring is the only way a purpose or an extension basis comes to be,
/// so a typo is an error, never a new word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The vocabulary extended.
    pub vocabulary: Vocabulary,
    /// The word, normalised (a valid purpose or basis name).
    pub name: String,
    /// What it means, for people reading `purposes list`.
    pub description: Option<String>,
}
