//! Reading records back from the log: a stored row, its details, the
//! keys of excluded records.

use super::*;

/// The record frame last read back from the log, and where its rows are
/// (per `(dataset, shard)`: row -> (group, index)), for comparing a
/// re-registration with what is stored.
#[derive(Default)]
pub(super) struct FrameCache {
    seq: Option<Seq>,
    batch: RecordBatch,
    rows: HashMap<(String, String), HashMap<u32, (usize, usize)>>,
}

impl<I: Io> Ledger<I> {
    /// The stored registration of ordinal `ord` (read back from the log).
    pub(super) fn stored_row<'c>(
        &self,
        cache: &'c mut FrameCache,
        ord: u32,
        dataset: &str,
        shard: &str,
        row: u32,
    ) -> Result<(&'c RowEntry, &'c Profile)> {
        let recs = &self.index.records;
        let i = recs.checkpoints.partition_point(|(_, end)| *end <= ord);
        let seq = recs.checkpoints.get(i).map(|c| c.0).ok_or_else(|| {
            LedgerError::Damaged(format!("record ordinal {ord} has no registering entry"))
        })?;
        if cache.seq != Some(seq) {
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                LedgerError::Damaged(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            let Entry::Records(b) = entry else {
                return Err(LedgerError::Damaged(format!(
                    "log entry at seq {seq} is not a record batch"
                ))
                .into());
            };
            *cache = FrameCache {
                seq: Some(seq),
                batch: b,
                rows: HashMap::new(),
            };
        }
        let FrameCache { batch: b, rows, .. } = cache;
        // Where each row of (dataset, shard) is in the frame, built once per
        // shard and frame (a frame holds up to 50,000 rows: a search per row
        // made a re-ingest quadratic). The last registration of the row in
        // that batch is the live one.
        let at = rows
            .entry((dataset.to_string(), shard.to_string()))
            .or_insert_with(|| {
                let mut m = HashMap::new();
                for (gi, g) in b.shards.iter().enumerate() {
                    if g.dataset == dataset && g.shard == shard {
                        for (ri, r) in g.rows.iter().enumerate() {
                            m.insert(r.row, (gi, ri));
                        }
                    }
                }
                m
            })
            .get(&row)
            .copied();
        at.map(|(gi, ri)| {
            let r = &b.shards[gi].rows[ri];
            (r, &b.profiles[r.profile as usize])
        })
        .ok_or_else(|| {
            LedgerError::Damaged(format!(
                "record {dataset}/{shard}#{row} not found at seq {seq}"
            ))
            .into()
        })
    }

    /// The registration of a record as the ledger knew it at `seq`:
    /// the row, its profile and the sequence number that registered it.
    pub fn record_details(
        &self,
        id: RecordId,
        seq: Seq,
    ) -> Result<Option<(RowEntry, Profile, Seq)>> {
        let recs = &self.index.records;
        let Some(ord) = recs.version_at(id.shard(), id.row(), seq) else {
            return Ok(None);
        };
        let (d, s) = self.index.names_of(id).unwrap_or(("?", "?"));
        let i = recs.checkpoints.partition_point(|(_, end)| *end <= ord);
        let reg = recs.checkpoints.get(i).map(|c| c.0).unwrap_or_default();
        let mut cache = FrameCache::default();
        let (row, profile) = self.stored_row(&mut cache, ord, d, s, id.row())?;
        Ok(Some((row.clone(), profile.clone(), reg)))
    }
    /// Every external record key (URL, `__key__`) registered so far, read
    /// back from the log (the index keeps only their hashes). Keys of
    /// replaced registrations are included.
    pub fn record_keys(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut last = None;
        for &(seq, _) in &self.index.records.checkpoints {
            if last == Some(seq) {
                continue;
            }
            last = Some(seq);
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                LedgerError::Damaged(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            if let Entry::Records(b) = entry {
                out.extend(
                    b.shards
                        .iter()
                        .flat_map(|g| &g.rows)
                        .filter_map(|r| r.key.clone()),
                );
            }
        }
        Ok(out)
    }
    /// The external keys (URL, `__key__`) of the rows `m` excludes, as
    /// registered at or before its seq N, after [`Ledger::verify_manifest`]:
    /// `(dataset, shard, row) → key`, for `check` (`{"key"}` lines) and
    /// `export --ledger`. The last registration of a row at or before N is
    /// the one the manifest judged.
    pub fn excluded_keys(&self, m: &Manifest) -> Result<HashMap<(String, String, u32), String>> {
        self.verify_manifest(m)?;
        let n = m.header.seq;
        let mut keys: HashMap<(String, String, u32), Option<String>> = HashMap::new();
        let mut last = None;
        for &(seq, _) in &self.index.records.checkpoints {
            if seq > n || last == Some(seq) {
                continue;
            }
            last = Some(seq);
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                LedgerError::Damaged(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            let Entry::Records(b) = entry else { continue };
            for g in b.shards {
                let Some(sh) = m.shard(&g.dataset, &g.shard) else {
                    continue;
                };
                for r in g.rows {
                    if sh.excluded.contains(r.row) {
                        keys.insert((g.dataset.clone(), g.shard.clone(), r.row), r.key);
                    }
                }
            }
        }
        Ok(keys
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}
