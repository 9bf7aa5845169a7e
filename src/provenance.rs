//! Where a record came from and under which legal basis: its provenance.
//!
//! Policies decide from the [`Profile`] part (source, basis, categories,
//! visibility, jurisdiction, license, third party). Records that share a
//! profile share one row bitmap in the index, so a rule such as "exclude
//! telemetry" is bitmap algebra over a handful of profiles, not a scan.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Legal bases as they appear in JSON: a closed vocabulary. The GDPR
/// Art. 6(1) bases, and two that say the data is not personal data the
/// controller needs a basis of its own for (`licensed`, `public_domain`).
/// Input is trimmed and lowercased; any other name is an error that
/// suggests the closest known one, so a typo (`consnet`, `Consent `) can
/// never make consent-basis records skip the consent requirement.
pub mod basis {
    /// Art. 6(1)(a): the subject consented.
    pub const CONSENT: &str = "consent";
    /// Art. 6(1)(b): needed for a contract with the subject.
    pub const CONTRACT: &str = "contract";
    /// Art. 6(1)(c): needed to comply with a legal obligation.
    pub const LEGAL_OBLIGATION: &str = "legal_obligation";
    /// Art. 6(1)(d): to protect someone's vital interests.
    pub const VITAL_INTEREST: &str = "vital_interest";
    /// Art. 6(1)(e): a task in the public interest.
    pub const PUBLIC_TASK: &str = "public_task";
    /// Art. 6(1)(f): legitimate interest of the controller.
    pub const LEGITIMATE_INTEREST: &str = "legitimate_interest";
    /// Licensed from a rights holder.
    pub const LICENSED: &str = "licensed";
    /// In the public domain.
    pub const PUBLIC_DOMAIN: &str = "public_domain";

    /// Every known basis, in the order above.
    pub const ALL: &[&str] = &[
        CONSENT,
        CONTRACT,
        LEGAL_OBLIGATION,
        VITAL_INTEREST,
        PUBLIC_TASK,
        LEGITIMATE_INTEREST,
        LICENSED,
        PUBLIC_DOMAIN,
    ];

    /// The known basis `s` names (trimmed, lowercased), or an error saying
    /// which names are known and, when one is close, which was meant. The
    /// value itself is not echoed.
    pub fn parse(s: &str) -> Result<&'static str, String> {
        let norm = s.trim().to_lowercase();
        if let Some(b) = ALL.iter().find(|b| **b == norm) {
            return Ok(b);
        }
        Err(unknown(&norm))
    }

    /// Whether `b` is one of the built-in bases ([`ALL`]).
    pub fn is_builtin(b: &str) -> bool {
        ALL.contains(&b)
    }

    /// The basis `s` names (trimmed, lowercased): a built-in one, or a
    /// candidate extension (a well-formed name not within typo distance of
    /// a built-in one) that the ledger must have declared
    /// (`optout vocab add LEDGER basis NAME`); the ledger checks that
    /// when the records are registered. A name close to a built-in basis is
    /// refused here, with the built-in one suggested, so `consnet` is a
    /// typo, never an extension.
    pub fn parse_open(s: &str) -> Result<String, String> {
        let norm = s.trim().to_lowercase();
        if is_builtin(&norm) {
            return Ok(norm);
        }
        if crate::vocab::closest(&norm, ALL).is_none() && well_formed(&norm) {
            return Ok(norm);
        }
        Err(unknown(&norm))
    }

    /// Whether `name` may be declared as an extension basis: well formed
    /// (1-64 of `a-z`, `0-9`, `_`, starting with a letter), not built in,
    /// and not within typo distance of a built-in basis. The error says why.
    pub fn check_extension(name: &str) -> Result<(), String> {
        if is_builtin(name) {
            return Err(format!(
                "`{name}` is a built-in basis: it needs no declaring"
            ));
        }
        if !well_formed(name) {
            return Err(
                "a basis name is 1-64 of a-z, 0-9 and _, starting with a letter".to_string(),
            );
        }
        if let Some(b) = crate::vocab::closest(name, ALL) {
            return Err(format!(
                "`{name}` is too close to the built-in basis `{b}` (a typo of it would be read as it)"
            ));
        }
        Ok(())
    }

    fn well_formed(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    }

    fn unknown(norm: &str) -> String {
        let hint = crate::vocab::closest(norm, ALL)
            .map(|b| format!(" (did you mean `{b}`?)"))
            .unwrap_or_default();
        format!(
            "not a known legal basis{hint}; the bases are {} (and those the ledger declares)",
            ALL.join(", ")
        )
    }
}

/// Whether a record was public where it was collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Publicly visible (a public post, a public web page).
    Public,
    /// Visible only to some (a private chat, a meeting, a CRM record).
    Private,
}

impl Visibility {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// The policy-relevant provenance shared by many records.
///
/// Lists are kept sorted and free of duplicates, so equal profiles compare
/// (and hash, and encode) equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Profile {
    /// The system or domain the record was collected from (`forum.example.com`, `zoom`).
    pub source: String,
    /// The legal basis name (see [`basis`]).
    pub basis: String,
    /// Data categories (`text`, `image`, `audio`, `video`, `chat`, `telemetry`, ...).
    pub categories: Vec<String>,
    /// Public or private, when known. Unknown never satisfies a visibility requirement.
    pub visibility: Option<Visibility>,
    /// Jurisdiction code (`EU`, `UK`, `US`, ...), when known.
    pub jurisdiction: Option<String>,
    /// License of the content (an SPDX id, for instance), when known.
    pub license: Option<String>,
    /// The third party it was obtained from (`dmp:acme`), when not collected first-hand.
    pub obtained_from: Option<String>,
}

impl Profile {
    /// Sorts and deduplicates the lists, so equal profiles are equal values.
    pub fn normalise(&mut self) {
        self.categories.sort();
        self.categories.dedup();
    }

    /// Whether the record carries any of `cats`.
    pub fn has_any_category(&self, cats: &[String]) -> bool {
        cats.iter().any(|c| self.categories.contains(c))
    }

    /// Whether a source-level signal for `source` covers this record: its
    /// source or the third party it came from is `source` or a subdomain of it
    /// (`example.com` covers `forum.example.com`).
    pub fn from_source(&self, source: &str) -> bool {
        source_matches(&self.source, source)
            || self
                .obtained_from
                .as_deref()
                .is_some_and(|o| source_matches(o, source))
    }
}

/// `value` is `pattern` or a dot-separated subdomain of it.
pub fn source_matches(value: &str, pattern: &str) -> bool {
    value == pattern
        || (value.len() > pattern.len()
            && value.ends_with(pattern)
            && value.as_bytes()[value.len() - pattern.len() - 1] == b'.')
}

/// The full provenance of one record: its profile and when it was collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The policy-relevant part.
    pub profile: Profile,
    /// When the record was collected.
    pub collected_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_matching_covers_subdomains_only() {
        assert!(source_matches("example.com", "example.com"));
        assert!(source_matches("forum.example.com", "example.com"));
        assert!(!source_matches("badexample.com", "example.com"));
        assert!(!source_matches("example.com", "forum.example.com"));
    }
}
