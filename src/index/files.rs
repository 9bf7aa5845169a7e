//! The newest [`ShardFile`] per `(dataset, shard)`, folded from
//! [`Entry::Files`](crate::event::Entry::Files) entries and kept in the
//! index snapshot (an optional last section, magic `OPTFIL01`).

use std::collections::HashMap;

use super::Index;
use crate::codec::{self, CodecError};
use crate::fingerprint::{ShardFile, ShardFiles};

/// The first bytes of the snapshot section of shard fingerprints.
pub(crate) const FILES_MAGIC: &[u8; 8] = b"OPTFIL01";

/// Shard fingerprints by `(dataset, shard)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileIndex(HashMap<(String, String), ShardFile>);

impl FileIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops the fingerprint of a shard, if one is held.
    pub(crate) fn forget(&mut self, dataset: &str, shard: &str) {
        if !self.0.is_empty() {
            self.0.remove(&(dataset.to_string(), shard.to_string()));
        }
    }

    /// The snapshot section: magic, then the fingerprints sorted by
    /// `(dataset, shard)` as a bincode [`ShardFiles`].
    pub(crate) fn to_section(&self) -> Result<Vec<u8>, CodecError> {
        let mut files: Vec<ShardFile> = self.0.values().cloned().collect();
        files.sort_unstable_by(|a, b| (&a.dataset, &a.shard).cmp(&(&b.dataset, &b.shard)));
        let mut out = FILES_MAGIC.to_vec();
        out.extend_from_slice(&codec::encode_large(&ShardFiles { files })?);
        Ok(out)
    }

    /// Reads [`FileIndex::to_section`]; `None` if it is not such a section.
    pub(crate) fn from_section(s: &[u8]) -> Option<Result<FileIndex, CodecError>> {
        let body = s.strip_prefix(FILES_MAGIC)?;
        Some(codec::decode_large::<ShardFiles>(body).and_then(|f| {
            // Only the canonical form: sorted, each shard once.
            let sorted = f
                .files
                .windows(2)
                .all(|w| (&w[0].dataset, &w[0].shard) < (&w[1].dataset, &w[1].shard));
            if !sorted {
                return Err(CodecError::Invalid(
                    "index snapshot: shard fingerprints not in ascending order".into(),
                ));
            }
            let mut m = FileIndex::default();
            for x in f.files {
                let k = (x.dataset.clone(), x.shard.clone());
                if m.0.insert(k, x).is_some() {
                    return Err(CodecError::Invalid(
                        "index snapshot: a shard fingerprint given twice".into(),
                    ));
                }
            }
            Ok(m)
        }))
    }
}

impl Index {
    /// The newest fingerprint recorded for a shard, if any.
    pub fn shard_file(&self, dataset: &str, shard: &str) -> Option<&ShardFile> {
        self.files.0.get(&(dataset.to_string(), shard.to_string()))
    }

    /// Forgets the fingerprints of the shards an entry wrote rows to
    /// (issue 14): a fingerprint says the ledger's rows of a shard are
    /// those its file gave, which a write by any other path (a JSONL
    /// replace, a shard end, a derivation) makes untrue. An ingest that
    /// read the file writes its fingerprint again after its rows.
    pub(crate) fn forget_written(&mut self, entry: &crate::event::Entry) {
        use crate::event::Entry;
        if self.files.is_empty() {
            return;
        }
        match entry {
            Entry::Records(b) => {
                for g in &b.shards {
                    self.files.forget(&g.dataset, &g.shard);
                }
            }
            Entry::Derive(d) => {
                for g in &d.shards {
                    self.files.forget(&d.dataset, &g.shard);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn apply_files(&mut self, f: &ShardFiles) {
        for x in &f.files {
            self.files
                .0
                .insert((x.dataset.clone(), x.shard.clone()), x.clone());
        }
    }
}
