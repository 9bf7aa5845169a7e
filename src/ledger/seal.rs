//! Manifests and runs: the query for a purpose, the manifest, its
//! verification against the ledger, pinned heads, registering a run.

use super::*;

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
            purpose: Purpose::new(&h.purpose).map_err(LedgerError::BadPurpose)?,
            manifest_digest: manifest.digest_hex(),
            manifest_seq: Seq(h.seq),
            manifest_at: Timestamp(h.at_ns),
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
        let h = &m.header;
        let q = Query {
            policy: h.policy.clone(),
            seq: self.index.seq(),
            at: at.max(Timestamp(h.at_ns)),
            datasets: h.datasets.clone(),
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
    /// Computes the exclusion manifest for `q`.
    pub fn manifest(&self, q: &Query) -> Result<Manifest> {
        self.check_purpose(&q.policy.purpose, None)?;
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
        let ex = evaluate(&self.index, q);
        Ok(Manifest::build(
            &self.index,
            q,
            &ex,
            self.ledger_id(),
            *chain.as_bytes(),
        ))
    }
    /// Checks that `m` is exactly what this ledger computes at the seq N,
    /// valid time T, policy and dataset scope it claims: same ledger id,
    /// the chain head it pins is this log's chain at N (a manifest from a
    /// forked, rewritten or rolled-back ledger fails), and its bytes equal
    /// a recomputation. The seal is a public hash, so anyone can re-seal an
    /// edited manifest (an older one with a newer head written in, rows
    /// dropped): only the recomputation catches that. `check --ledger`,
    /// `runs add` and Python's `Ledger.verify_manifest` all call this.
    pub fn verify_manifest(&self, m: &Manifest) -> Result<()> {
        let h = &m.header;
        let id: String = self
            .ledger_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mismatch = |what: String| Err(Error::ManifestMismatch(what));
        if h.ledger_id != id {
            return mismatch(format!(
                "the manifest is from ledger {}, not this one ({id})",
                h.ledger_id
            ));
        }
        if Seq(h.seq) > self.index.seq() {
            return mismatch(format!(
                "the manifest pins seq {} but this ledger ends at {}: it was rolled back or truncated",
                h.seq,
                self.index.seq()
            ));
        }
        let chain = self.log.chain_at(Seq(h.seq))?;
        if chain.to_hex() != h.chain_head {
            return mismatch(format!(
                "the manifest pins chain head {} at seq {}, but this ledger has {}: its history was rewritten",
                h.chain_head,
                h.seq,
                chain.to_hex()
            ));
        }
        let q = Query {
            policy: h.policy.clone(),
            seq: Seq(h.seq),
            at: Timestamp(h.at_ns),
            datasets: h.datasets.clone(),
        };
        let mut again = self.manifest(&q)?;
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
