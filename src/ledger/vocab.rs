//! Declared vocabularies: the purposes a ledger knows, and the legal bases
//! it adds to the built-in ones, each declared by an [`Entry::Declare`] at a
//! seq. An event, policy or manifest naming an undeclared purpose is refused
//! with the closest declared one, so a typo never files an objection under a
//! purpose nobody computes manifests for; a record or policy naming an
//! undeclared basis likewise.

use std::collections::BTreeMap;

use super::*;
use crate::event::{Declaration, Vocabulary};
use crate::ids::Purposes;

/// The purpose a ledger has declared when nothing else was declared.
pub const DEFAULT_PURPOSE: &str = "ai-training";

/// One purpose of [`Ledger::purposes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurposeInfo {
    /// The purpose's name.
    pub name: String,
    /// What it means, as declared.
    pub description: Option<String>,
    /// The seq that declared it; `None` when it is not declared by an
    /// entry (see `implicit`), or not declared at all (named only by
    /// events recorded before declarations existed).
    pub declared_at: Option<Seq>,
    /// Declared without an entry: `ai-training` in a ledger with no purpose
    /// declaration at all (declared by `init`; ledgers written before
    /// declarations existed count it the same way). The first explicit
    /// declaration writes it down too.
    pub implicit: bool,
    /// Events that name it (`"*"` events not counted).
    pub events: u64,
}

impl PurposeInfo {
    /// Whether events, policies and manifests may name it.
    pub fn is_declared(&self) -> bool {
        self.implicit || self.declared_at.is_some()
    }
}

impl<I: Io> Ledger<I> {
    /// The declared purposes (and, after them, purposes named by recorded
    /// events but never declared), with counts of the events naming each.
    pub fn purposes(&self) -> Vec<PurposeInfo> {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, e) in self.index.events() {
            if let Some(Purposes::Some(list)) = e.kind.purposes() {
                for p in list {
                    *counts.entry(p.as_str()).or_default() += 1;
                }
            }
        }
        let mut out: Vec<PurposeInfo> = self
            .declared_purposes()
            .into_iter()
            .map(|(seq, name, description)| PurposeInfo {
                name: name.to_string(),
                description: description.map(str::to_string),
                declared_at: seq,
                implicit: seq.is_none(),
                events: counts.remove(name).unwrap_or(0),
            })
            .collect();
        out.extend(counts.into_iter().map(|(name, events)| PurposeInfo {
            name: name.to_string(),
            description: None,
            declared_at: None,
            implicit: false,
            events,
        }));
        out
    }

    /// Declares `name` a purpose (with an optional description). Returns
    /// the seq of the declaration, or `None` when it was declared already
    /// (nothing is written: declaring twice is harmless).
    pub fn add_purpose(&mut self, name: &str, description: Option<&str>) -> Result<Option<Seq>> {
        let p = Purpose::new(name).map_err(LedgerError::BadPurpose)?;
        if self.purpose_declared(&p) {
            return Ok(None);
        }
        let entries = self.declare_entries(&[(p.as_str(), description)]);
        Ok(Some(self.append(entries)?))
    }

    /// Refuses a purpose the ledger has not declared, suggesting the
    /// closest declared one. `event` is the position of the event naming
    /// it in its batch, if an event does.
    pub fn check_purpose(&self, p: &Purpose, event: Option<usize>) -> Result<()> {
        if self.purpose_declared(p) {
            return Ok(());
        }
        let names: Vec<&str> = self
            .declared_purposes()
            .iter()
            .map(|(_, name, _)| *name)
            .collect();
        Err(LedgerError::UndeclaredPurpose {
            purpose: p.to_string(),
            closest: crate::vocab::closest(p.as_str(), &names).map(str::to_string),
            event,
        }
        .into())
    }

    pub(super) fn purpose_declared(&self, p: &Purpose) -> bool {
        self.declared_purposes()
            .iter()
            .any(|(_, name, _)| *name == p.as_str())
    }

    /// The names of the declared purposes, for checking many events.
    pub(super) fn declared_names(&self) -> std::collections::HashSet<String> {
        self.declared_purposes()
            .into_iter()
            .map(|(_, name, _)| name.to_string())
            .collect()
    }

    /// The declared purposes with their seq and description; in a ledger
    /// without any purpose declaration, `ai-training` (seq `None`).
    fn declared_purposes(&self) -> Vec<(Option<Seq>, &str, Option<&str>)> {
        let mut out: Vec<(Option<Seq>, &str, Option<&str>)> = self
            .index
            .declarations()
            .iter()
            .filter(|(_, d)| d.vocabulary == Vocabulary::Purpose)
            .map(|(s, d)| (Some(*s), d.name.as_str(), d.description.as_deref()))
            .collect();
        if out.is_empty() {
            out.push((None, DEFAULT_PURPOSE, None));
        }
        out
    }
}

impl<I: Io> Ledger<I> {
    /// The extension bases this ledger declares (`vocab add LEDGER basis
    /// NAME`), in declaration order, with the seq of each. The built-in
    /// bases ([`crate::provenance::basis::ALL`]) are not listed.
    pub fn declared_bases(&self) -> Vec<(Seq, &str)> {
        self.index
            .declarations()
            .iter()
            .filter(|(_, d)| d.vocabulary == Vocabulary::Basis)
            .map(|(s, d)| (*s, d.name.as_str()))
            .collect()
    }

    /// Declares `name` an extension legal basis, which records may then
    /// name. Returns the seq of the declaration, or `None` when it was
    /// declared already. A built-in name, an ill-formed one, or one within
    /// typo distance of a built-in basis is refused ([`LedgerError::BadBasis`]).
    pub fn add_basis(&mut self, name: &str) -> Result<Option<Seq>> {
        let name = name.trim().to_lowercase();
        crate::provenance::basis::check_extension(&name).map_err(LedgerError::BadBasis)?;
        if self.declared_bases().iter().any(|(_, n)| *n == name) {
            return Ok(None);
        }
        let entry = Entry::Declare(declaration(Vocabulary::Basis, &name, None));
        Ok(Some(self.append(vec![entry])?))
    }

    /// Refuses a basis that is neither built in nor declared, suggesting
    /// the closest of either; `record` locates the record naming it.
    pub(super) fn check_basis(&self, b: &str, record: Option<(String, String, u32)>) -> Result<()> {
        let declared = self.declared_bases();
        if crate::provenance::basis::is_builtin(b) || declared.iter().any(|(_, n)| *n == b) {
            return Ok(());
        }
        let names: Vec<&str> = crate::provenance::basis::ALL
            .iter()
            .copied()
            .chain(declared.iter().map(|(_, n)| *n))
            .collect();
        Err(LedgerError::UndeclaredBasis {
            basis: b.to_string(),
            closest: crate::vocab::closest(b, &names).map(str::to_string),
            record,
        }
        .into())
    }

    /// Refuses a batch with a record on an undeclared basis, naming the
    /// first record of each such profile.
    pub(super) fn check_batch_bases(&self, batch: &RecordBatch) -> Result<()> {
        for (i, p) in batch.profiles.iter().enumerate() {
            if crate::provenance::basis::is_builtin(&p.basis) {
                continue;
            }
            let first = batch.shards.iter().find_map(|g| {
                g.rows
                    .iter()
                    .find(|r| r.profile as usize == i)
                    .map(|r| (g.dataset.clone(), g.shard.clone(), r.row))
            });
            self.check_basis(&p.basis, first)?;
        }
        Ok(())
    }

    /// Refuses a policy naming a basis neither built in nor declared.
    pub(super) fn check_policy_bases(&self, p: &crate::policy::Policy) -> Result<()> {
        for b in &p.consent_required_for {
            self.check_basis(b, None)?;
        }
        Ok(())
    }

    /// The entries declaring `names` (not declared yet). The first
    /// explicit declaration of a ledger also declares `ai-training`, which
    /// was declared implicitly until then, so it stays declared.
    pub(super) fn declare_entries(&self, names: &[(&str, Option<&str>)]) -> Vec<Entry> {
        let first = !self
            .index
            .declarations()
            .iter()
            .any(|(_, d)| d.vocabulary == Vocabulary::Purpose);
        let implicit = (first && !names.iter().any(|(n, _)| *n == DEFAULT_PURPOSE))
            .then_some((DEFAULT_PURPOSE, None));
        implicit
            .into_iter()
            .chain(names.iter().copied())
            .map(|(n, d)| Entry::Declare(declaration(Vocabulary::Purpose, n, d)))
            .collect()
    }
}

fn declaration(v: Vocabulary, name: &str, description: Option<&str>) -> Declaration {
    Declaration {
        vocabulary: v,
        name: name.to_string(),
        description: description
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string),
    }
}
