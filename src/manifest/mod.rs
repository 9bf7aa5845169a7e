//! Exclusion manifests: what a training pipeline must skip, per data file,
//! with reasons, sealed by a digest.
//!
//! A manifest is self-contained: its header says which purpose, policy,
//! ledger, sequence number N and valid time T it was computed at, and the
//! ledger chain head at N, so an auditor can recompute it (byte for byte)
//! and a consumer can pin the ledger it came from. Shards are listed by
//! name, sorted by `(dataset, shard)`; each carries the excluded rows and one
//! bitmap per [`Reason`], in the portable roaring format that pyroaring,
//! Java and Go roaring read. See `docs/FORMAT.md`.

mod diff;
mod format;
mod shard;

use std::path::Path;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

pub use diff::{check, CheckHit, CheckReport, ManifestDiff, ShardDiff, UnknownShard};
pub use format::ManifestError;
pub use shard::{ManifestShard, RowPastEnd};

use crate::engine::{Exclusions, Query, Reason};
use crate::error::{Error, Result};
use crate::ids::{hex, ChainHash, LedgerId, Purpose, Seq};
use crate::index::Index;
use crate::policy::Policy;
use crate::time::Timestamp;

/// Format version written by this build. Version 2 added reason 8,
/// `signal_unparsable` (10 bitmaps per shard instead of 9); version 3 added
/// each shard's row end ([`ManifestShard::row_end`]). Version 1 and 2
/// manifests are still read (and re-encode to their own bytes).
pub const FORMAT_VERSION: u16 = 3;

/// Largest manifest file [`Manifest::load`] reads (1 GiB): a manifest of a
/// billion records with a tenth of them excluded is a few hundred MiB.
pub const MAX_MANIFEST_FILE: u64 = 1 << 30;

/// Number of reasons a manifest of format `version` carries, if the version is known.
pub fn reasons_in(version: u16) -> Option<usize> {
    match version {
        1 => Some(8),
        2 | 3 => Some(Reason::COUNT),
        _ => None,
    }
}

/// What a manifest says about itself: the typed query it answers (purpose,
/// policy, N, T, scope: [`ManifestHeader::query`]), where from (ledger id,
/// chain head at N) and its counts. In the file it is JSON, the ids as hex
/// text and T twice (RFC 3339 and nanoseconds): `docs/FORMAT.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestHeader {
    /// The tool that wrote it, e.g. `optout 0.1.0`.
    pub tool: String,
    /// The purpose (the policy's).
    pub purpose: Purpose,
    /// The policy applied (canonical form).
    pub policy: Policy,
    /// Hex blake3 digest of the policy.
    pub policy_digest: String,
    /// The ledger it was computed from.
    pub ledger_id: LedgerId,
    /// The ledger sequence number N: entries recorded at or before N count.
    pub seq: Seq,
    /// The chain hash of the ledger's log at N (pin this).
    pub chain_head: ChainHash,
    /// The valid time T: events that took effect at or before T count
    /// (RFC 3339 in the file).
    #[serde(with = "crate::time::rfc3339")]
    pub at: Timestamp,
    /// T in nanoseconds since the Unix epoch (the file's second copy of
    /// `at`; decoding checks they agree).
    pub at_ns: i64,
    /// The datasets covered; empty means all.
    pub datasets: Vec<String>,
    /// Rows the ledger knew at N in the covered shards.
    pub registered: u64,
    /// Rows excluded for any reason.
    pub excluded: u64,
    /// Rows excluded per reason (by reason name, in code order).
    pub counts: Vec<(String, u64)>,
    /// The checkpoint of the ledger's transparency log the manifest was
    /// computed at (format 3 on, when asked for: see
    /// `Ledger::manifest_at_checkpoint`); absent otherwise, and then not
    /// written, so older headers keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<TreeHead>,
}

impl ManifestHeader {
    /// The query this manifest answers: its policy, seq N, valid time T and
    /// dataset scope (the one way a manifest becomes a [`Query`]: verifying,
    /// registering a run, recomputing it fresh, deriving).
    pub fn query(&self) -> Query {
        Query {
            policy: self.policy.clone(),
            seq: self.seq,
            at: self.at,
            datasets: self.datasets.clone(),
        }
    }
}

/// The transparency-log checkpoint a manifest was computed at: the Merkle
/// tree of the ledger's first `size` entries (`size` = the manifest's seq
/// N) and its root. Unsigned on purpose: the manifest stays a function of
/// the ledger alone (anyone holding the ledger recomputes it, byte for
/// byte, without the signing key); a signed checkpoint note of the same or
/// a later size is what proves it to outsiders (`check --checkpoint`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    /// Tree size: the number of entries, = the manifest's seq N.
    pub size: u64,
    /// The RFC 9162 root (SHA-256) of the tree of the first `size` entries.
    pub root: crate::tlog::Hash,
}

/// An exclusion manifest.
///
/// Its digest ([`Manifest::digest`]) is computed once, by the first
/// encoding or digest call (a decoded manifest has it from its file), and
/// kept: a command that saves a manifest, prints its digest and records a
/// run encodes it once. A manifest whose fields are edited after that
/// (tests forging one) must call [`Manifest::reseal`]; a clone starts
/// with no digest kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The file format version ([`FORMAT_VERSION`] for every manifest this
    /// build computes; 1 or 2 for an older file that was read).
    pub version: u16,
    /// What it was computed from.
    pub header: ManifestHeader,
    /// Shards, sorted by `(dataset, shard)`.
    pub shards: Vec<ManifestShard>,
    /// The digest of the manifest's bytes, once known.
    sealed: Sealed,
}

/// The kept digest of a [`Manifest`]: not part of its value (equality
/// ignores it), and not carried into a clone (which may be edited).
#[derive(Debug, Default)]
struct Sealed(std::sync::OnceLock<[u8; 32]>);

impl Clone for Sealed {
    fn clone(&self) -> Self {
        Sealed::default()
    }
}

impl PartialEq for Sealed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The tool string written into manifests.
pub fn tool_version() -> String {
    format!("optout {}", env!("CARGO_PKG_VERSION"))
}

impl Manifest {
    /// Builds a manifest from an evaluation over `index`, of the ledger
    /// `ledger_id` whose chain at `q.seq` is `chain_head` (bytes convert).
    pub fn build(
        index: &Index,
        q: &Query,
        ex: &Exclusions,
        ledger_id: impl Into<LedgerId>,
        chain_head: impl Into<ChainHash>,
    ) -> Manifest {
        let (ledger_id, chain_head) = (ledger_id.into(), chain_head.into());
        let row_ends = index.records.row_ends_at(q.seq);
        let mut shards: Vec<ManifestShard> = ex
            .shards
            .iter()
            .map(|(&id, e)| {
                let (d, s) = index
                    .names_of(crate::ids::RecordId::new(id, 0))
                    .unwrap_or(("?", "?"));
                ManifestShard {
                    dataset: d.to_string(),
                    shard: s.to_string(),
                    registered: e.registered,
                    row_end: Some(row_ends.get(&id.0).copied().unwrap_or(0)),
                    excluded: e.excluded.clone(),
                    reasons: e.reasons.clone(),
                }
            })
            .collect();
        shards.sort_by(|a, b| (&a.dataset, &a.shard).cmp(&(&b.dataset, &b.shard)));
        let counts = ex.counts();
        let mut datasets = q.datasets.clone();
        datasets.sort();
        datasets.dedup();
        let mut policy = q.policy.clone();
        policy.normalise();
        Manifest {
            version: FORMAT_VERSION,
            header: ManifestHeader {
                tool: tool_version(),
                purpose: q.purpose().clone(),
                policy_digest: hex(&policy.digest()),
                policy,
                ledger_id,
                seq: q.seq,
                chain_head,
                at: q.at,
                at_ns: q.at.0,
                datasets,
                registered: shards.iter().map(|s| s.registered).sum(),
                excluded: ex.excluded(),
                counts: Reason::ALL
                    .iter()
                    .map(|r| (r.name().to_string(), counts[*r as usize]))
                    .collect(),
                checkpoint: None,
            },
            shards,
            sealed: Sealed::default(),
        }
    }

    /// A manifest of these parts (its digest computed when first asked).
    pub(crate) fn from_parts(
        version: u16,
        header: ManifestHeader,
        shards: Vec<ManifestShard>,
    ) -> Manifest {
        Manifest {
            version,
            header,
            shards,
            sealed: Sealed::default(),
        }
    }

    /// The shard named `(dataset, shard)`, if the manifest covers it.
    pub fn shard(&self, dataset: &str, shard: &str) -> Option<&ManifestShard> {
        self.shards
            .binary_search_by(|s| (s.dataset.as_str(), s.shard.as_str()).cmp(&(dataset, shard)))
            .ok()
            .map(|i| &self.shards[i])
    }

    /// Whether `(dataset, shard, row)` is excluded (false for a shard the
    /// manifest does not cover or a row past its end: callers that must
    /// fail closed use [`check`] or [`ManifestShard::keep_mask`]).
    pub fn is_excluded(&self, dataset: &str, shard: &str, row: u32) -> bool {
        self.shard(dataset, shard)
            .is_some_and(|s| s.excluded.contains(row))
    }

    /// The origin of the log of the ledger the manifest is from
    /// (`optout/<ledger id hex>`, the first line of its checkpoints).
    pub fn origin(&self) -> String {
        self.header.ledger_id.origin()
    }

    /// Checks the manifest against a checkpoint of its ledger's log
    /// (`size`, `root`; its signatures verified by the caller) without the
    /// ledger: the manifest must record that very checkpoint. A root that
    /// differs at the same size means the histories diverge at or before
    /// that seq; a checkpoint of another size can only be related to the
    /// manifest's with the ledger (`Ledger::check_manifest_checkpoint`).
    pub fn check_checkpoint(&self, size: u64, root: &crate::tlog::Hash) -> Result<()> {
        let mismatch = |what: String| Err(Error::ManifestMismatch(what));
        let Some(t) = &self.header.checkpoint else {
            return mismatch(
                "the manifest records no checkpoint (it was computed without one); \
                 checking it against a checkpoint needs the ledger"
                    .into(),
            );
        };
        if t.size != size {
            return mismatch(format!(
                "the manifest records the checkpoint of tree size {}, the checkpoint is of size {size}: \
                 relating them needs the ledger",
                t.size
            ));
        }
        if t.root != *root {
            return mismatch(format!(
                "the manifest records tree root {} at size {size}, the checkpoint has {root}: \
                 their histories diverge at or before seq {size}",
                t.root
            ));
        }
        Ok(())
    }

    /// The digest sealing the manifest, as written at its end: computed
    /// by the first call (or encoding) and kept ([`Manifest`]).
    pub fn digest(&self) -> [u8; 32] {
        let d = *self
            .sealed
            .0
            .get_or_init(|| format::seal_of(&format::encode(self)));
        debug_assert_eq!(
            d,
            format::seal_of(&format::encode(self)),
            "a manifest edited after its digest was taken: call Manifest::reseal"
        );
        d
    }

    /// [`Manifest::digest`] in hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest())
    }

    /// Forgets the kept digest, after editing the manifest's fields.
    pub fn reseal(&mut self) {
        self.sealed = Sealed::default();
    }

    /// Encodes the manifest (deterministic: same manifest, same bytes),
    /// keeping its digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let bytes = format::encode(self);
        let _ = self.sealed.0.set(format::seal_of(&bytes));
        bytes
    }

    /// Decodes and verifies a manifest: digest, framing, canonical roaring
    /// bitmaps, the excluded set equal to the union of the reasons, counts.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Manifest, ManifestError> {
        let m = format::decode(bytes)?;
        let _ = m.sealed.0.set(format::seal_of(bytes));
        Ok(m)
    }

    /// Writes the manifest atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::atomic_write(path, &self.to_bytes())
    }

    /// Reads and verifies a manifest file (at most [`MAX_MANIFEST_FILE`] bytes).
    pub fn load(path: &Path) -> Result<Manifest> {
        let bytes = crate::fsutil::read_bounded(path, MAX_MANIFEST_FILE, "a manifest")?;
        Manifest::from_bytes(&bytes).map_err(|e| Error::Manifest(e.in_file(path)))
    }
}
