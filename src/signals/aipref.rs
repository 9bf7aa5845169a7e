//! The IETF aipref vocabulary (`draft-ietf-aipref-vocab`) as carried by the
//! `Content-Usage` HTTP header and the robots.txt `Content-Usage:` rule
//! (`draft-ietf-aipref-attach`): a structured-field dictionary of usage
//! categories with `y` / `n`, e.g. `train-ai=n, search=y`.
//!
//! Categories nest: `train-genai` ⊂ `train-ai` ⊂ `bots` (automated
//! processing). The most specific stated preference applies. Unknown
//! categories are ignored (the vocabulary is extensible); a known category
//! with a value other than `y` / `n`, or text that is not a dictionary, is
//! unparsable.

use std::collections::BTreeMap;

/// Parsed preferences: category → allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefs(pub BTreeMap<String, bool>);

/// Categories this module understands, broadest first.
pub const KNOWN: &[&str] = &["bots", "train-ai", "train-genai", "search", "ai-use"];

impl Prefs {
    /// The effective preference for `category`, following the nesting
    /// `train-genai` → `train-ai` → `bots`; `None` if nothing applies.
    pub fn effective(&self, category: &str) -> Option<bool> {
        let chain: &[&str] = match category {
            "train-genai" => &["train-genai", "train-ai", "bots"],
            "train-ai" => &["train-ai", "bots"],
            "search" => &["search", "bots"],
            "ai-use" => &["ai-use", "bots"],
            _ => &["bots"],
        };
        chain.iter().find_map(|c| self.0.get(*c).copied())
    }

    /// Whether AI training is reserved: `train-ai` or `train-genai` is `n`
    /// (a `n` for generative training reserves training as a whole, since
    /// the use of the data is not known here).
    pub fn reserves_training(&self) -> bool {
        self.effective("train-ai") == Some(false) || self.effective("train-genai") == Some(false)
    }
}

fn is_key(k: &str) -> bool {
    let mut c = k.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_lowercase() || ch == '*')
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "_-.*".contains(ch))
}

/// Parses a `Content-Usage` value.
///
/// ```
/// use optout::signals::aipref;
/// let p = aipref::parse("train-ai=n, search=y").unwrap();
/// assert!(p.reserves_training());
/// assert!(aipref::parse("train-ai=no").is_err());
/// ```
pub fn parse(value: &str) -> Result<Prefs, String> {
    let mut out = BTreeMap::new();
    if value.trim().is_empty() {
        return Err("empty Content-Usage value".into());
    }
    for member in value.split(',') {
        // Structured-field parameters (`;param`) carry nothing we use.
        let item = member.split(';').next().unwrap_or("").trim();
        if item.is_empty() {
            return Err(format!("empty member in {value:?}"));
        }
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            // A bare key is boolean true in structured fields: not a y/n.
            None => (item, None),
        };
        if !is_key(k) {
            return Err(format!("{k:?} is not a structured-field key"));
        }
        let known = KNOWN.contains(&k);
        let b = match v {
            Some("y") => true,
            Some("n") => false,
            _ if !known => continue,
            other => {
                return Err(format!(
                    "{k}: expected y or n, got {}",
                    other.unwrap_or("no value")
                ))
            }
        };
        out.insert(k.to_string(), b);
    }
    Ok(Prefs(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_takes_the_most_specific() {
        let p = parse("bots=n, train-ai=y").unwrap();
        assert_eq!(p.effective("train-ai"), Some(true));
        assert_eq!(p.effective("train-genai"), Some(true));
        assert_eq!(p.effective("search"), Some(false));
        assert!(!p.reserves_training());
        assert!(parse("train-genai=n").unwrap().reserves_training());
        assert!(parse("bots=n").unwrap().reserves_training());
        assert!(!parse("search=n").unwrap().reserves_training());
    }

    #[test]
    fn unknown_categories_are_ignored_bad_values_are_not() {
        assert_eq!(
            parse("future-use=maybe, train-ai=n;v=1").unwrap().0.len(),
            1
        );
        for bad in [
            "",
            "train-ai=no",
            "train-ai",
            "Train-AI=n",
            "train-ai=n,,",
            "train ai=n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
