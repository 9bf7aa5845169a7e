//! Policies: per purpose, which records are usable given their provenance
//! and the events about them.
//!
//! What always excludes a record, whatever the policy: an objection of any
//! linked subject (within its scope), an erasure, an active restriction, a
//! takedown, a source-level opt-out. A policy adds: consent requirements per
//! legal basis, and filters on category, visibility and jurisdiction.

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::ids::Purpose;
use crate::provenance::{basis, Profile, Visibility};

const POLICY_CONTEXT: &str = "optout 2026-11 policy digest v1";
/// Largest policy file [`Policy::load`] reads.
pub const MAX_POLICY_FILE: u64 = 1 << 20;

/// The rules for one purpose. The JSON form is the policy file
/// (`--policy FILE`); unknown fields are rejected.
///
/// ```
/// use optout::Policy;
/// let p = Policy::from_json(r#"{"purpose":"ai-training","exclude_categories":["telemetry"]}"#, "policy.json").unwrap();
/// assert_eq!(p.consent_required_for, vec!["consent".to_string()]);
/// assert!(!p.accept_delegated_consent);
/// assert_eq!(p.digest(), Policy::from_json(&p.to_json(), "copy").unwrap().digest());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The purpose these rules are for.
    pub purpose: Purpose,
    /// Legal bases whose records need a valid consent from every linked subject.
    #[serde(default = "default_consent_bases")]
    pub consent_required_for: Vec<String>,
    /// When true, only a confirmed double opt-in counts as consent.
    #[serde(default)]
    pub require_double_opt_in: bool,
    /// When true, a confirmed consent given on someone's behalf (by a meeting
    /// admin, say) counts; it never overrides the subject's own objection or
    /// withdrawal.
    #[serde(default)]
    pub accept_delegated_consent: bool,
    /// Records with any of these categories are filtered out.
    #[serde(default)]
    pub exclude_categories: Vec<String>,
    /// When set, only records with this visibility are usable (unknown visibility is not).
    #[serde(default)]
    pub require_visibility: Option<Visibility>,
    /// When set, the consent requirement and the filters apply only to
    /// records of these jurisdictions, and to records whose jurisdiction is
    /// unknown (fail closed). Objections, erasures, restrictions, consent
    /// withdrawals, takedowns and source opt-outs apply everywhere regardless.
    #[serde(default)]
    pub jurisdictions: Option<Vec<String>>,
}

fn default_consent_bases() -> Vec<String> {
    vec![basis::CONSENT.to_string()]
}

impl Policy {
    /// The documented default for a purpose: records on the `consent` basis
    /// need a confirmed (single or double opt-in) consent of every linked
    /// subject; delegated consent does not count; no category, visibility
    /// or jurisdiction filter.
    pub fn default_for(purpose: Purpose) -> Self {
        Policy {
            purpose,
            consent_required_for: default_consent_bases(),
            require_double_opt_in: false,
            accept_delegated_consent: false,
            exclude_categories: Vec::new(),
            require_visibility: None,
            jurisdictions: None,
        }
    }

    /// Reads and parses a policy file (at most [`MAX_POLICY_FILE`] bytes).
    pub fn load(path: &std::path::Path) -> crate::error::Result<Self> {
        let bytes = crate::fsutil::read_bounded(path, MAX_POLICY_FILE, "a policy file")?;
        let name = path.display().to_string();
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| InputError::new(&name, 0, None, "not valid UTF-8"))?;
        Ok(Self::from_json(text, &name)?)
    }

    /// Parses a policy file's text. `name` is used in errors.
    pub fn from_json(text: &str, name: &str) -> Result<Self, InputError> {
        let mut p: Policy = serde_json::from_str(text)
            .map_err(|e| InputError::from_serde(name, e.line() as u64, &e, Some(text)))?;
        // A misspelt basis would make its records skip the consent
        // requirement: only known bases (or candidate extensions, which the
        // ledger checks are declared), spelt as the records store them.
        let field = Some("consent_required_for");
        for b in &p.consent_required_for {
            let known = basis::parse_open(b).map_err(|m| InputError::new(name, 0, field, m))?;
            if known != *b {
                return Err(InputError::new(
                    name,
                    0,
                    field,
                    format!("write the basis as `{known}` (lowercase, as records store it)"),
                ));
            }
        }
        p.normalise();
        Ok(p)
    }

    /// The canonical JSON form (lists sorted), as hashed by [`Policy::digest`].
    pub fn to_json(&self) -> String {
        let mut p = self.clone();
        p.normalise();
        serde_json::to_string(&p).unwrap_or_default()
    }

    /// Sorts and deduplicates the lists so equal policies hash equal.
    pub fn normalise(&mut self) {
        for c in &mut self.exclude_categories {
            *c = c.trim().to_lowercase();
        }
        for l in [&mut self.consent_required_for, &mut self.exclude_categories] {
            l.sort();
            l.dedup();
        }
        if let Some(j) = &mut self.jurisdictions {
            j.sort();
            j.dedup();
        }
    }

    /// A blake3 digest of the canonical form (its own derive_key context).
    pub fn digest(&self) -> [u8; 32] {
        let key = blake3::derive_key(POLICY_CONTEXT, b"");
        *blake3::keyed_hash(&key, self.to_json().as_bytes()).as_bytes()
    }

    /// Whether the consent requirement and filters apply to records of this profile.
    pub fn governs(&self, p: &Profile) -> bool {
        match &self.jurisdictions {
            None => true,
            // An unknown jurisdiction might be one of the listed: govern it.
            Some(list) => p.jurisdiction.as_ref().is_none_or(|j| list.contains(j)),
        }
    }

    /// Whether records of this profile need consent of every linked
    /// subject: those on a basis the policy requires consent for, and those
    /// on an extension basis (declared in the ledger), which every policy
    /// treats as `consent`, the strictest built-in basis (fail closed; a
    /// policy field allowing one would change the manifest and run
    /// encodings, which carry the policy).
    pub fn needs_consent(&self, p: &Profile) -> bool {
        self.governs(p) && (self.consent_required_for.contains(&p.basis) || self.extension(p))
    }

    /// Whether a subject's consent withdrawal excludes records of this
    /// profile: those whose basis is consent (whatever the policy says),
    /// those on an extension basis (treated as consent), and those the
    /// policy requires consent for.
    pub fn withdrawal_applies(&self, p: &Profile) -> bool {
        p.basis == basis::CONSENT || self.extension(p) || self.needs_consent(p)
    }

    /// A record on an extension basis: treated as `consent`.
    fn extension(&self, p: &Profile) -> bool {
        !basis::is_builtin(&p.basis)
    }

    /// Whether records of this profile are filtered out by category or visibility.
    pub fn filters_out(&self, p: &Profile) -> bool {
        self.governs(p)
            && (p.has_any_category(&self.exclude_categories)
                || self
                    .require_visibility
                    .is_some_and(|v| p.visibility != Some(v)))
    }
}
