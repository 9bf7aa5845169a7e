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

/// The hash-chain value after a frame: a keyed blake3 hash over the previous
/// chain value and the frame (see `docs/FORMAT.md`, "Event log segments").
///
/// Pinning `(Seq, ChainHash)` pins the whole log prefix up to that seq.
/// Deliberately no `Deref` to bytes: it is compared, printed and stored whole.
/// In JSON (a manifest header's `chain_head`) it is 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub(crate) [u8; 32]);

impl ChainHash {
    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a chain hash from bytes taken from [`ChainHash::as_bytes`].
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }

    /// Lower-case hexadecimal form (64 characters).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses the lower-case hexadecimal form ([`ChainHash::to_hex`]).
    pub fn from_hex(s: &str) -> Option<Self> {
        unhex(s).map(ChainHash)
    }
}

impl From<[u8; 32]> for ChainHash {
    fn from(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A ledger's random 128-bit identity, fixed at creation and written into
/// every segment and snapshot header. It keys the hash chain, so frames and
/// segments cannot be spliced between ledgers without breaking the chain.
/// Displayed (and written in a manifest header) as 32 lowercase hex digits.
///
/// ```
/// use optout::LedgerId;
/// let id = LedgerId::from_bytes(*b"golden-ledger-v1");
/// assert_eq!(id.to_string(), "676f6c64656e2d6c65646765722d7631");
/// assert_eq!(LedgerId::from_hex(&id.to_string()), Some(id));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LedgerId(pub(crate) [u8; 16]);

impl LedgerId {
    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Rebuilds an id from bytes (e.g. a fixed id for reproducible fixtures).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        LedgerId(bytes)
    }

    /// A fresh random id from the operating system's generator.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(LedgerId(b))
    }

    /// Lower-case hexadecimal form (32 characters).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses the lower-case hexadecimal form ([`LedgerId::to_hex`]).
    pub fn from_hex(s: &str) -> Option<Self> {
        unhex(s).map(LedgerId)
    }

    /// The origin of this ledger's log, the first line of its checkpoints:
    /// `optout/<32 hex digits>` ([`ORIGIN_PREFIX`]).
    ///
    /// ```
    /// use optout::LedgerId;
    /// let id = LedgerId::from_bytes(*b"golden-ledger-v1");
    /// assert_eq!(id.origin(), "optout/676f6c64656e2d6c65646765722d7631");
    /// ```
    pub fn origin(&self) -> String {
        format!("{ORIGIN_PREFIX}/{self}")
    }
}

/// The prefix of a ledger log's origin: `optout/<ledger id hex>`
/// ([`LedgerId::origin`]).
pub const ORIGIN_PREFIX: &str = "optout";

impl From<[u8; 16]> for LedgerId {
    fn from(bytes: [u8; 16]) -> Self {
        LedgerId(bytes)
    }
}

impl fmt::Debug for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerId({})", self.to_hex())
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `N` bytes from exactly `2N` lowercase hex digits (the one form [`hex`]
/// writes, so that a parsed value prints back to the same text).
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Serde as lowercase hex text, for the ids a manifest header names.
macro_rules! hex_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$t>::from_hex(&s).ok_or_else(|| serde::de::Error::custom($what))
            }
        }
    };
}
hex_serde!(LedgerId, "a ledger id must be 32 lowercase hex digits");
hex_serde!(ChainHash, "a chain hash must be 64 lowercase hex digits");

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

    #[test]
    fn ids_hex_round_trip_and_refuse_other_forms() {
        let c = ChainHash::from_bytes([0xab; 32]);
        assert_eq!(ChainHash::from_hex(&c.to_hex()), Some(c));
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        let l = LedgerId::from_bytes([0xcd; 16]);
        let back: LedgerId = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        assert_eq!(LedgerId::from_hex(&l.to_hex().to_uppercase()), None);
        assert_eq!(LedgerId::from_hex(&l.to_hex()[1..]), None);
        assert!(serde_json::from_str::<LedgerId>("\"zz\"").is_err());
    }
}
