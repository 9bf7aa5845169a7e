//! Manifests and runs: the query for a purpose, the manifest, its
//! verification against the ledger, pinned heads, registering a run.

use super::*;
use crate::tlog::Hash;

impl<I: Io> Ledger<I> {
    /// Registers a training run that used `manifest`, which must come from
    /// this ledger's history (its pinned chain head is checked).
    pub fn register_run(
        &mut self,
        name: &str,
        model: &str,
        manifest: &Manifest,
        started_at: Timestamp,
    ) -> Result<Seq> {
        self.verify_manifest(manifest)?;
        if name.trim().is_empty() || model.trim().is_empty() {
            return Err(LedgerError::EmptyRun.into());
        }
        let h = &manifest.header;
        let run = TrainingRun {
            name: name.to_string(),
            model: model.to_string(),
            started_at,
            purpose: h.purpose.clone(),
            manifest_digest: manifest.digest_hex(),
            manifest_seq: h.seq,
            manifest_at: h.at,
            datasets: h.datasets.clone(),
            policy: h.policy.clone(),
        };
        self.index.check(&Entry::Run(run.clone()))?;
        self.append(vec![Entry::Run(run)])
    }
    /// How many rows a manifest like `m` (same purpose, policy and
    /// datasets) computed now, at the head and for valid time `at`,
    /// excludes that `m` does not: what the events recorded after `m`
    /// would change. 0: `m` is fresh. Rows it would no longer exclude do
    /// not count (using `m` excludes more than needed, never less).
    pub fn excluded_since(&self, m: &Manifest, at: Timestamp) -> Result<u64> {
        self.verify_manifest(m)?;
        let q = Query {
            seq: self.index.seq(),
            at: at.max(m.header.at),
            ..m.header.query()
        };
        let fresh = self.manifest(&q)?;
        let d = crate::manifest::ManifestDiff::between(m, &fresh);
        Ok(d.shards.iter().map(|s| s.newly_excluded.len()).sum())
    }
    /// A query for `purpose` at the head and the given valid time, with the
    /// default policy unless one is given.
    pub fn query(&self, policy: Option<Policy>, purpose: &str, at: Timestamp) -> Result<Query> {
        let purpose = Purpose::new(purpose).map_err(LedgerError::BadPurpose)?;
        let policy = match policy {
            Some(p) if p.purpose != purpose => {
                return Err(LedgerError::PolicyPurpose {
                    policy: p.purpose.to_string(),
                    asked: purpose.to_string(),
                }
                .into())
            }
            Some(p) => p,
            None => Policy::default_for(purpose),
        };
        Ok(Query {
            policy,
            seq: self.index.seq(),
            at,
            datasets: Vec::new(),
        })
    }
    /// Computes the exclusion manifest for `q` (from the head cache of
    /// evaluations when it holds `q`'s: docs/ARCHITECTURE.md, "The head
    /// cache").
    pub fn manifest(&self, q: &Query) -> Result<Manifest> {
        self.compute_manifest(q, true)
    }
    /// [`Ledger::manifest`], evaluated afresh when `cached` is false (what
    /// [`Ledger::verify_manifest`] compares with: a check never rests on
    /// the cache it would check).
    fn compute_manifest(&self, q: &Query, cached: bool) -> Result<Manifest> {
        self.check_purpose(&q.policy.purpose, None)?;
        self.check_policy_bases(&q.policy)?;
        if q.seq > self.index.seq() {
            return Err(LedgerError::SeqPastHead {
                seq: q.seq,
                head: self.index.seq(),
            }
            .into());
        }
        for d in &q.datasets {
            if !self.index.records.dataset_ids.contains_key(d) {
                return Err(LedgerError::UnknownDataset(d.to_string()).into());
            }
        }
        let chain = self.log.chain_at(q.seq)?;
        let ex = if cached {
            self.exclusions(q)
        } else {
            std::sync::Arc::new(evaluate(&self.index, q))
        };
        Ok(Manifest::build(
            &self.index,
            q,
            &ex,
            self.ledger_id(),
            chain,
        ))
    }
    /// The evaluation of `q` (checked by the caller), from the head cache
    /// when it holds it (src/engine/head.rs), else evaluated and kept
    /// there. The lock is not held while evaluating; a poisoned lock is a
    /// miss, and nothing is kept.
    fn exclusions(&self, q: &Query) -> std::sync::Arc<crate::engine::Exclusions> {
        if let Some(ex) = self.head.lock().ok().and_then(|mut c| c.get(q)) {
            return ex;
        }
        let ex = std::sync::Arc::new(evaluate(&self.index, q));
        if let Ok(mut c) = self.head.lock() {
            c.insert(&self.index, q, ex.clone());
        }
        ex
    }
    /// What the head cache of evaluations did since the ledger was opened
    /// (hits, misses, entries carried to a new head or patched).
    pub fn head_stats(&self) -> crate::engine::HeadStats {
        self.head
            .lock()
            .map_or_else(|p| p.get_ref().stats(), |c| c.stats())
    }
    /// [`Ledger::manifest`] with the checkpoint it is computed at recorded
    /// in its header: the size N (= `q.seq`) and root of the Merkle tree of
    /// the first N entries. The tree is caught up first, which replays the
    /// log entries appended since it last was (hashing them): that is why
    /// a plain `manifest` does not record one (docs/FORMAT.md, "Manifests").
    /// Needs a ledger opened for writing (the tree store is updated).
    pub fn manifest_at_checkpoint(&self, q: &Query) -> Result<Manifest> {
        let mut m = self.manifest(q)?;
        let root = self.tree_root_at(q.seq.0)?;
        m.header.checkpoint = Some(crate::manifest::TreeHead {
            size: q.seq.0,
            root,
        });
        Ok(m)
    }
    /// Checks `m` against a checkpoint of this ledger's log (its
    /// signatures already verified, `Ledger::verify_checkpoint_note`):
    /// this ledger must extend both the checkpoint and the one the manifest
    /// records (so one is a prefix of the other). A ledger rolled back,
    /// forked or rewritten since the checkpoint was published, or a
    /// manifest recording a checkpoint of another history, is refused with
    /// the seqs between which history diverges. The roots are recomputed
    /// from the log in one sequential read (never from the tree store it
    /// would check). This does not recompute the manifest: `check --ledger`
    /// and `runs add` also call [`Ledger::verify_manifest`] (which ties a
    /// manifest without a checkpoint to this ledger by its chain head).
    pub fn check_manifest_checkpoint(&self, m: &Manifest, checkpoint: (u64, Hash)) -> Result<()> {
        let mut pairs = vec![checkpoint];
        if let Some(t) = &m.header.checkpoint {
            pairs.push((t.size, t.root));
        }
        let checks = self.check_checkpoints(&pairs)?;
        // Each on its own: the ledger agreeing with one checkpoint says
        // nothing about where it parts from a checkpoint of another history.
        for (i, c) in checks.iter().enumerate() {
            if let Some((after, upto)) = crate::ledger::divergence(std::slice::from_ref(c)) {
                let which = if i == 0 {
                    "the checkpoint"
                } else {
                    "the manifest's checkpoint"
                };
                return Err(Error::ManifestMismatch(format!(
                    "this ledger does not extend {which} (tree size {}): history diverges {}",
                    pairs[i].0,
                    diverges(after, upto)
                )));
            }
        }
        Ok(())
    }
    /// Checks that `m` is exactly what this ledger computes at the seq N,
    /// valid time T, policy and dataset scope it claims: same ledger id,
    /// the chain head it pins is this log's chain at N (a manifest from a
    /// forked, rewritten or rolled-back ledger fails), and its bytes equal
    /// a recomputation (a fresh evaluation, never the head cache). The seal is a public hash, so anyone can re-seal an
    /// edited manifest (an older one with a newer head written in, rows
    /// dropped): only the recomputation catches that. `check --ledger`,
    /// `runs add` and Python's `Ledger.verify_manifest` all call this.
    pub fn verify_manifest(&self, m: &Manifest) -> Result<()> {
        let h = &m.header;
        let id = self.ledger_id();
        let mismatch = |what: String| Err(Error::ManifestMismatch(what));
        if h.ledger_id != id {
            return mismatch(format!(
                "the manifest is from ledger {}, not this one ({id})",
                h.ledger_id
            ));
        }
        if h.seq > self.index.seq() {
            return mismatch(format!(
                "the manifest pins seq {} but this ledger ends at {}: it was rolled back or truncated",
                h.seq,
                self.index.seq()
            ));
        }
        let chain = self.log.chain_at(h.seq)?;
        if chain != h.chain_head {
            return mismatch(format!(
                "the manifest pins chain head {} at seq {}, but this ledger has {chain}: its history was rewritten",
                h.chain_head, h.seq,
            ));
        }
        let mut again = self.compute_manifest(&h.query(), false)?;
        if let Some(t) = &h.checkpoint {
            // Recomputed from the log, never taken from the tree store.
            let ours = self.roots_from_log(&[t.size])?[0];
            if ours != Some(t.root) {
                return mismatch(format!(
                    "the manifest records tree root {} at size {}, but this ledger's first {} entries give {}: \
                     its history was rewritten",
                    t.root,
                    t.size,
                    t.size,
                    ours.map_or("nothing".into(), |r| r.to_hex())
                ));
            }
            again.header.checkpoint = Some(t.clone());
        }
        if m.version < again.version {
            // An older format re-encodes to its own bytes (FORMAT.md, Manifests).
            again.version = m.version;
            again
                .header
                .counts
                .truncate(crate::manifest::reasons_in(m.version).unwrap_or(0));
        }
        if again.to_bytes() != m.to_bytes() {
            return mismatch(format!(
                "the manifest differs from what this ledger computes at its seq {}, time {}, policy and scope \
                 (digest {} here, {} in the file): it was altered and re-sealed, or made by another optout version",
                h.seq,
                h.at,
                &again.digest_hex()[..16],
                &m.digest_hex()[..16]
            ));
        }
        Ok(())
    }
    /// Checks that this ledger extends the pinned head: the same ledger,
    /// at least its seq, and the same chain value there
    /// ([`Error::HeadMismatch`] otherwise: rolled back, forked, rewritten).
    pub fn check_extends(&self, pin: &PinnedHead) -> Result<()> {
        pin.check(self.ledger_id(), self.index.seq(), |s| {
            Ok(self.log.chain_at(s)?)
        })
        .map_err(Error::HeadMismatch)
    }
    /// Checks that `m` comes from a log that extends `pin` (`check
    /// --expect-head`): what its header shows
    /// ([`PinnedHead::check_manifest_header`]), this ledger extending the
    /// pin, and the manifest being exactly what this ledger computes
    /// ([`Ledger::verify_manifest`]).
    pub fn check_pinned_manifest(&self, pin: &PinnedHead, m: &Manifest) -> Result<()> {
        pin.check_manifest_header(m, true)?;
        self.check_extends(pin)?;
        self.verify_manifest(m)
    }
}

/// Where history diverges, in words: "at seq N", "at or before seq N"
/// or "after seq A, at or before seq B".
pub(crate) fn diverges(after: u64, upto: u64) -> String {
    match after {
        _ if after + 1 == upto => format!("at seq {upto}"),
        0 => format!("at or before seq {upto}"),
        _ => format!("after seq {after}, at or before seq {upto}"),
    }
}
