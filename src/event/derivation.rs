//! The stored form of a derivation: derived rows of a derived dataset and
//! their parents (the lineage the engine follows: docs/ARCHITECTURE.md,
//! "Derived datasets").

use super::*;

/// A parent of a derived row: a record named by `(dataset, shard, row)`,
/// or every record of the derivation's source datasets with an external
/// key or a content hash. Resolved at the seq a question is asked at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParentRef {
    /// One record.
    Record {
        /// Dataset name.
        dataset: String,
        /// Shard (data file) name.
        shard: String,
        /// Row position in the shard.
        row: u32,
    },
    /// The records of the source datasets registered with this external key.
    Key(String),
    /// The records of the source datasets with this content hash.
    ContentHash(ContentHash),
}

/// One derived row and its parents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedRow {
    /// Row position in the derived shard.
    pub row: u32,
    /// Its parents (at least one), in input order.
    pub parents: Vec<ParentRef>,
}

/// The derived rows of one shard inside a [`Derivation`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedShard {
    /// Shard (data file) name, in the derived dataset.
    pub shard: String,
    /// The rows, in input order.
    pub rows: Vec<DerivedRow>,
}

/// Rows of a derived dataset (deduplicated, tokenised, packed shards),
/// each registered as a record of `dataset` with lineage links to its
/// parents. A derived row is excluded when any ancestor is, with the
/// ancestors' reasons (docs/ARCHITECTURE.md, "Derived datasets").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    /// The derived dataset.
    pub dataset: String,
    /// The datasets parents may come from (sorted, no duplicates): a
    /// record parent must name one; key and content-hash parents resolve
    /// among their records.
    pub sources: Vec<String>,
    /// Whether parents that match nothing yet were accepted: they are
    /// recorded and resolve once a matching record is registered.
    pub allow_missing: bool,
    /// Rows grouped by shard.
    pub shards: Vec<DerivedShard>,
}

impl Derivation {
    /// Number of derived rows.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.rows.len()).sum()
    }
    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.rows.is_empty())
    }
    /// Number of parent links.
    pub fn links(&self) -> usize {
        self.shards
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.parents.len())
            .sum()
    }
}
