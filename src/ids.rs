//! Identifiers. Every id is a newtype with its traits chosen on purpose.
//!
//! A record is addressed by `(dataset, shard, row)`: a shard is one data file
//! (a Parquet file, a WebDataset tar, a JSONL part) and `row` its position in
//! that file. Internally [`RecordId`] packs `shard << 32 | row`, so the rows
//! of one shard form one contiguous id range and a per-shard row bitmap is
//! exactly a Delta Lake / Iceberg deletion vector.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A dataset registered in the ledger, numbered from 0 in order of first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DatasetId(pub u32);

/// A shard (one data file) registered in the ledger, numbered from 0 across
/// all datasets in order of first use. Shard ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub u32);

/// One training record: `shard << 32 | row`.
///
/// ```
/// use optout::{RecordId, ShardId};
/// let id = RecordId::new(ShardId(3), 17);
/// assert_eq!(id.shard(), ShardId(3));
/// assert_eq!(id.row(), 17);
/// assert_eq!(id.get(), (3u64 << 32) | 17);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId(u64);

impl RecordId {
    /// The record at `row` of `shard`.
    pub const fn new(shard: ShardId, row: u32) -> Self {
        RecordId(((shard.0 as u64) << 32) | row as u64)
    }
    /// The packed value `shard << 32 | row`.
    pub const fn get(self) -> u64 {
        self.0
    }
    /// Rebuilds an id from its packed value.
    pub const fn from_u64(v: u64) -> Self {
        RecordId(v)
    }
    /// The shard (data file) this record lives in.
    pub const fn shard(self) -> ShardId {
        ShardId((self.0 >> 32) as u32)
    }
    /// The row position inside its shard.
    pub const fn row(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({}:{})", self.shard().0, self.row())
    }
}

/// A ledger sequence number.
///
/// Every entry appended to the ledger (an event, a batch of record
/// registrations, a training run) gets the next sequence number, starting
/// at 1. `Seq(0)` is the empty ledger. A manifest computed "at `Seq` N"
/// reflects every entry recorded at or before N and nothing recorded after,
/// so recomputing it at N later gives the same bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A subject's pseudonym: a keyed blake3 hash of the external subject id,
/// truncated to 128 bits.
///
/// The raw id (an email address, a user id) is never stored; the key that
/// makes the pseudonym lives outside the ledger (see [`crate::SubjectKeyer`]),
/// so the same person in another dataset, or re-collected later, maps to the
/// same pseudonym, while the ledger alone cannot be reversed by a dictionary.
/// There is deliberately no conversion from a string: only a keyer makes one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubjectKey(pub(crate) [u8; 16]);

impl SubjectKey {
    /// The pseudonym's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// Rebuilds a pseudonym from bytes previously taken from [`SubjectKey::as_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        SubjectKey(bytes)
    }
    /// The pseudonym as 32 lowercase hex digits (safe to print: it is keyed).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectKey({})", &self.to_hex()[..12])
    }
}

/// A purpose of processing, such as `ai-training` or `ads-personalisation`.
///
/// Lowercase ASCII letters, digits and `-_.:`, 1 to 64 characters. `*` is not
/// a purpose; events use [`Purposes::All`] for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Purpose(String);

impl Purpose {
    /// The purpose most of this crate is about.
    pub const AI_TRAINING: &'static str = "ai-training";

    /// Checks and wraps a purpose name.
    pub fn new(name: &str) -> Result<Self, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.:".contains(&b));
        if ok {
            Ok(Purpose(name.to_string()))
        } else {
            // The name is not echoed (it may be a subject id typed into
            // the wrong field).
            Err(format!(
                "invalid purpose ({} characters): use 1-64 lowercase letters, digits or -_.:",
                name.chars().count()
            ))
        }
    }
    /// The purpose's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The purposes an event applies to: every purpose (`"*"`), or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purposes {
    /// `"*"`: every purpose, including ones defined later.
    All,
    /// Exactly these purposes.
    Some(Vec<Purpose>),
}

impl Purposes {
    /// Whether the event applies to `p`.
    pub fn applies_to(&self, p: &Purpose) -> bool {
        match self {
            Purposes::All => true,
            Purposes::Some(list) => list.contains(p),
        }
    }
    /// Parses the JSON form: a list of names, where `"*"` means all.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("purposes must not be empty (use [\"*\"] for all)".into());
        }
        if names.iter().any(|n| n == "*") {
            return Ok(Purposes::All);
        }
        // Sort, then drop repeats: O(n log n) however long the list (a
        // scan per name made 90,000 purposes take 10 s).
        let mut out = names
            .iter()
            .map(|n| Purpose::new(n))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(Purposes::Some(out))
    }
    /// The JSON form.
    pub fn names(&self) -> Vec<String> {
        match self {
            Purposes::All => vec!["*".to_string()],
            Purposes::Some(l) => l.iter().map(|p| p.0.clone()).collect(),
        }
    }
}

/// Lowercase hex of bytes: the one hex encoder of the crate.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_parse_sorts_and_dedups_any_length() {
        let names: Vec<String> = (0..90_000).map(|i| format!("p{}", i % 45_001)).collect();
        let Purposes::Some(p) = Purposes::parse(&names).unwrap() else {
            panic!("not all")
        };
        assert_eq!(p.len(), 45_001);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        let all = Purposes::parse(&["b".into(), "*".into()]).unwrap();
        assert_eq!(all, Purposes::All);
        let some = Purposes::parse(&["b".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(some.names(), vec!["a", "b"]);
        assert!(some.applies_to(&Purpose::new("a").unwrap()));
        assert!(!some.applies_to(&Purpose::new("c").unwrap()));
        assert!(Purposes::parse(&["a".into(), "Not Valid".into()]).is_err());
    }
}
