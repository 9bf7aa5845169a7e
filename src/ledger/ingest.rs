//! Ingest: a record batch made all-or-nothing entries (unchanged rows
//! dropped, large batches split into frames of bounded size).

use super::*;
use crate::fingerprint::{ShardEnd, ShardEnds};

impl<I: Io> Ledger<I> {
    /// Registers records. Rows already registered with identical content
    /// are skipped (so re-running an ingest is harmless); a row registered
    /// with different content is an error unless it has `replace` set.
    /// Nothing is written unless the whole batch is valid.
    pub fn ingest(&mut self, batch: RecordBatch) -> Result<IngestSummary> {
        self.ingest_with(batch, Vec::new())
    }

    /// [`Ledger::ingest`], then shard ends (issue 14; docs/FORMAT.md,
    /// "Shard ends"): every row of each named shard at or past its `end`
    /// is gone (no manifest counts, excludes or keeps it; registering it
    /// again is a new registration), written after the records in their
    /// last group, all or nothing. A row of `batch` at or past its shard's
    /// end, or two different ends for one shard, is an error; an end that
    /// makes no row gone is not written. [`IngestSummary::gone`] counts
    /// the rows gone.
    pub fn ingest_ending(
        &mut self,
        batch: RecordBatch,
        ends: Vec<ShardEnd>,
    ) -> Result<IngestSummary> {
        let mut want: HashMap<(String, String), u32> = HashMap::new();
        let mut distinct = Vec::new();
        for e in ends {
            let k = (e.dataset.clone(), e.shard.clone());
            match want.get(&k) {
                Some(&x) if x != e.end => {
                    return Err(Error::Invalid(format!(
                        "shard {}/{}: two ends given ({x} and {})",
                        e.dataset, e.shard, e.end
                    )))
                }
                Some(_) => {}
                None => {
                    want.insert(k, e.end);
                    distinct.push(e);
                }
            }
        }
        for g in &batch.shards {
            let Some(&end) = want.get(&(g.dataset.clone(), g.shard.clone())) else {
                continue;
            };
            if let Some(r) = g.rows.iter().find(|r| r.row >= end) {
                return Err(Error::Invalid(format!(
                    "record {}/{} row {}: at or past the end {end} given to its shard",
                    g.dataset, g.shard, r.row
                )));
            }
        }
        let (tail, gone) = self.ends_entry(distinct);
        let mut s = self.ingest_with(batch, tail.into_iter().collect())?;
        s.gone = gone;
        Ok(s)
    }

    /// The [`Entry::Ends`] of `ends` that make a row gone (none if no
    /// shard has a registered row at or past its end), and how many.
    pub(super) fn ends_entry(
        &self,
        ends: impl IntoIterator<Item = ShardEnd>,
    ) -> (Option<Entry>, u64) {
        let recs = &self.index.records;
        let mut gone = 0;
        let shards: Vec<ShardEnd> = ends
            .into_iter()
            .filter(|e| {
                let n = recs
                    .find_shard(&e.dataset, &e.shard)
                    .map_or(0, |s| recs.shards[s.0 as usize].rows_from(e.end));
                gone += n;
                n > 0
            })
            .collect();
        let entry = (!shards.is_empty()).then_some(Entry::Ends(ShardEnds { shards }));
        (entry, gone)
    }

    /// [`Ledger::ingest`], with `tail` (the ingest's shard ends and
    /// fingerprints) written after the records, in their last group: a
    /// fingerprint in the log means its rows are too. A `tail` is written
    /// even when every row is unchanged. Then the snapshot
    /// [`LedgerOptions::auto_snapshot`] calls for, if any (its failure is
    /// an error, the records being durable already).
    pub(super) fn ingest_with(
        &mut self,
        batch: RecordBatch,
        tail: Vec<Entry>,
    ) -> Result<IngestSummary> {
        self.keyer()?;
        self.check_batch_bases(&batch)?;
        // Duplicates inside the batch first: dropping "unchanged" rows must
        // not hide a second, conflicting registration of the same row.
        Index::new().check_records(&batch)?;
        let (batch, unchanged) = self.drop_unchanged(batch)?;
        let mut summary = IngestSummary {
            unchanged,
            seq: self.index.seq(),
            ..Default::default()
        };
        if batch.is_empty() {
            if !tail.is_empty() {
                summary.seq = self.append_checked(tail, true)?;
            }
            summary.snapshot = self.auto_snapshot()?;
            return Ok(summary);
        }
        self.index.check_records(&batch)?;
        summary.registered = batch.len() as u64;
        summary.links = batch
            .shards
            .iter()
            .flat_map(|g| &g.rows)
            .map(|r| r.subjects.len() as u64)
            .sum();
        let mut frames: Vec<Entry> = split(batch).into_iter().map(Entry::Records).collect();
        let mut tail = tail;
        while !frames.is_empty() {
            let rest = frames.split_off(frames.len().min(FRAMES_PER_GROUP));
            let mut group = std::mem::replace(&mut frames, rest);
            if frames.is_empty() {
                group.append(&mut tail);
            }
            summary.seq = self.append_checked(group, true)?;
        }
        summary.snapshot = self.auto_snapshot()?;
        Ok(summary)
    }
    /// Splits off rows that are already registered with identical content;
    /// errors on rows registered with different content and no `replace`.
    pub(super) fn drop_unchanged(&self, mut batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        let mut cache = super::readback::FrameCache::default();
        let mut unchanged = 0u64;
        let profiles = batch.profiles.clone();
        for g in &mut batch.shards {
            let Some(shard) = self.index.records.find_shard(&g.dataset, &g.shard) else {
                continue;
            };
            let mut keep = Vec::with_capacity(g.rows.len());
            for r in std::mem::take(&mut g.rows) {
                let existing = self.index.records.shards[shard.0 as usize].current(r.row);
                match existing {
                    Some(ord) if !r.replace && self.index.lineage.child(ord).is_some() => {
                        return Err(Error::RecordConflict {
                            dataset: g.dataset.clone(),
                            shard: g.shard.clone(),
                            row: r.row,
                            twice_in_batch: false,
                            what: "is a derived row (registered by a derivation); set \"replace\": true to replace it",
                        });
                    }
                    Some(ord) if !r.replace => {
                        let (old, old_profile) =
                            self.stored_row(&mut cache, ord, &g.dataset, &g.shard, r.row)?;
                        match first_difference(old, old_profile, &r, &profiles[r.profile as usize])
                        {
                            None => unchanged += 1,
                            Some(what) => {
                                return Err(Error::RecordConflict {
                                    dataset: g.dataset.clone(),
                                    shard: g.shard.clone(),
                                    row: r.row,
                                    twice_in_batch: false,
                                    what,
                                })
                            }
                        }
                    }
                    _ => keep.push(r),
                }
            }
            g.rows = keep;
        }
        batch.shards.retain(|g| !g.rows.is_empty());
        Ok((batch, unchanged))
    }
}

/// The first field in which a registration differs from the stored one,
/// as the conflict's message (naming the field: "different content" does
/// not say what to look at), or `None` when they are identical.
fn first_difference(
    old: &RowEntry,
    old_p: &Profile,
    new: &RowEntry,
    new_p: &Profile,
) -> Option<&'static str> {
    macro_rules! differs {
        ($field:literal) => {
            concat!(
                "is already registered with a different `",
                $field,
                "`; set \"replace\": true to replace it"
            )
        };
    }
    Some(if old.subjects != new.subjects {
        differs!("subjects")
    } else if old_p.source != new_p.source {
        differs!("source")
    } else if old_p.basis != new_p.basis {
        differs!("basis")
    } else if old_p.categories != new_p.categories {
        differs!("categories")
    } else if old_p.visibility != new_p.visibility {
        differs!("visibility")
    } else if old_p.jurisdiction != new_p.jurisdiction {
        differs!("jurisdiction")
    } else if old_p.license != new_p.license {
        differs!("license")
    } else if old_p.obtained_from != new_p.obtained_from {
        differs!("obtained_from")
    } else if old.collected_at != new.collected_at {
        differs!("collected_at")
    } else if old.key != new.key {
        differs!("key")
    } else if old.content_hash != new.content_hash {
        differs!("content_hash")
    } else if old_p != new_p {
        // A profile field added later and not named above.
        "is already registered with different provenance; set \"replace\": true to replace it"
    } else {
        return None;
    })
}

/// Estimated encoded bytes of a row (its profile not included).
pub(super) fn row_bytes(r: &RowEntry) -> usize {
    64 + 16 * r.subjects.len() + r.key.as_ref().map_or(0, |k| k.len())
}

/// Estimated encoded bytes of a profile.
pub(super) fn profile_bytes(p: &Profile) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 8);
    64 + p.source.len()
        + p.basis.len()
        + p.categories.iter().map(|c| c.len() + 8).sum::<usize>()
        + opt(&p.jurisdiction)
        + opt(&p.license)
        + opt(&p.obtained_from)
}

/// Splits a batch into frames of at most [`ROWS_PER_FRAME`] rows and about
/// [`BYTES_PER_FRAME`] estimated bytes, profiles counted: each frame
/// carries only the profiles its own rows use (renumbered), so a batch of
/// many large, distinct profiles cannot make a frame past the 64 MiB limit.
pub(super) fn split(batch: RecordBatch) -> Vec<RecordBatch> {
    let total: usize = batch
        .shards
        .iter()
        .flat_map(|g| &g.rows)
        .map(row_bytes)
        .sum::<usize>()
        + batch.profiles.iter().map(profile_bytes).sum::<usize>();
    if batch.len() <= ROWS_PER_FRAME && total <= BYTES_PER_FRAME {
        return vec![batch];
    }
    let sizes: Vec<usize> = batch.profiles.iter().map(profile_bytes).collect();
    let mut out = Vec::new();
    let mut cur = RecordBatch::default();
    let mut remap: HashMap<u32, u32> = HashMap::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for g in batch.shards {
        let mut rows = Vec::new();
        for mut r in g.rows {
            let cost = |remap: &HashMap<u32, u32>, r: &RowEntry| {
                row_bytes(r)
                    + if remap.contains_key(&r.profile) {
                        0
                    } else {
                        sizes[r.profile as usize]
                    }
            };
            if n > 0 && (n == ROWS_PER_FRAME || bytes + cost(&remap, &r) > BYTES_PER_FRAME) {
                // Close the frame; this row starts the next one.
                if !rows.is_empty() {
                    cur.shards.push(crate::event::ShardRecords {
                        dataset: g.dataset.clone(),
                        shard: g.shard.clone(),
                        rows: std::mem::take(&mut rows),
                    });
                }
                out.push(std::mem::take(&mut cur));
                remap.clear();
                (n, bytes) = (0, 0);
            }
            bytes += cost(&remap, &r);
            let next = cur.profiles.len() as u32;
            let id = *remap.entry(r.profile).or_insert_with(|| {
                cur.profiles
                    .push(batch.profiles[r.profile as usize].clone());
                next
            });
            r.profile = id;
            rows.push(r);
            n += 1;
        }
        if !rows.is_empty() {
            cur.shards.push(crate::event::ShardRecords {
                dataset: g.dataset,
                shard: g.shard,
                rows,
            });
        }
    }
    if n > 0 {
        out.push(cur);
    }
    out
}
