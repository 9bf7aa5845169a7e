//! Declared vocabularies: the purposes a ledger knows, each declared by an
//! [`Entry::Declare`] at a seq. An event, policy or manifest naming an
//! undeclared purpose is refused with the closest declared one, so a typo
//! never files an objection under a purpose nobody computes manifests for.

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
