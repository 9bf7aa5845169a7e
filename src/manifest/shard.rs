//! One shard of a manifest: its rows, exclusions and reasons, and the
//! fail-closed row rules (`end`, `past_end`, `keep_mask`) every front door uses.

use super::*;

/// One shard (data file) of a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestShard {
    /// Dataset name.
    pub dataset: String,
    /// Shard (data file) name.
    pub shard: String,
    /// Rows of this shard the ledger knew at N.
    pub registered: u64,
    /// One past the largest row of this shard the ledger knew at N (rows
    /// may be sparse, so it can exceed `registered`). `None` in a version 1
    /// or 2 manifest, which does not record it: there
    /// [`ManifestShard::end`] falls back to a lower bound.
    pub row_end: Option<u64>,
    /// Rows excluded for any reason: the union of `reasons`.
    pub excluded: RoaringBitmap,
    /// Rows excluded per reason, indexed by `Reason as usize`.
    pub reasons: [RoaringBitmap; Reason::COUNT],
}

/// A row past its shard's end in the manifest: the ledger knew no such row
/// at the manifest's seq, so the manifest says nothing about it (often a
/// row numbering that differs from the ledger's, or a newer file version).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "row {row} of shard {dataset}/{shard} is past the shard's end in the manifest \
     ({}): the manifest says nothing about it",
    if *.exact { format!("the ledger registered no row at or past {}", .row_end) }
    else { format!("this version 1 or 2 manifest records no row end, so the bound is {}, its registered \
                    row count or one past its largest excluded row; a manifest computed by this optout \
                    (format 3) records the exact end", .row_end) }
)]
pub struct RowPastEnd {
    /// Position of the row in the caller's input (0-based).
    pub index: usize,
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// The row.
    pub row: u64,
    /// The shard's end ([`ManifestShard::end`]).
    pub row_end: u64,
    /// Whether the manifest records the row end (format 3 on); otherwise
    /// the bound is a lower bound ([`ManifestShard::end`]).
    pub exact: bool,
}

impl ManifestShard {
    /// One past the last row the manifest covers: the recorded row end, or
    /// for a version 1 or 2 manifest (which has none) the registered row
    /// count or one past the largest excluded row, whichever is larger.
    /// Both are at most the true end, so this fails closed: a sparse
    /// shard's higher rows are refused, never let through unexamined.
    pub fn end(&self) -> u64 {
        self.row_end.unwrap_or_else(|| {
            self.registered
                .max(self.excluded.max().map_or(0, |m| u64::from(m) + 1))
        })
    }

    /// The first of `rows` (in input order) past the shard's
    /// [`end`](ManifestShard::end), as an error naming it. The one copy of
    /// the rule behind `keep_mask`, `check` and the Python binding's
    /// `keep_mask`, `contains_many` and `check`.
    pub fn past_end<T: Copy + Into<u64>>(&self, rows: &[T]) -> Result<(), RowPastEnd> {
        let end = self.end();
        // A branch-free pass (vectorised) first; the position only on failure.
        if !rows.iter().fold(false, |any, &r| any | (r.into() >= end)) {
            return Ok(());
        }
        let index = rows.iter().position(|&r| r.into() >= end).unwrap_or(0);
        Err(self.row_past_end(index, rows[index].into()))
    }

    /// The error for `row` (at input position `index`) past this shard's end.
    pub fn row_past_end(&self, index: usize, row: u64) -> RowPastEnd {
        RowPastEnd {
            index,
            dataset: self.dataset.clone(),
            shard: self.shard.clone(),
            row,
            row_end: self.end(),
            exact: self.row_end.is_some(),
        }
    }

    /// Reasons that exclude `row`.
    pub fn reasons_of(&self, row: u32) -> Vec<Reason> {
        Reason::ALL
            .iter()
            .copied()
            .filter(|r| self.reasons[*r as usize].contains(row))
            .collect()
    }

    /// For each row of `rows`, whether it may be used (not excluded).
    /// Sorted input is fastest (a merge); any order works. A row past the
    /// shard's [`end`](ManifestShard::end) is refused ([`RowPastEnd`]):
    /// the manifest says nothing about a row the ledger did not know.
    ///
    /// ```
    /// # use optout::manifest::ManifestShard;
    /// # let mut s = ManifestShard { dataset: "d".into(), shard: "s".into(), registered: 9,
    /// #     row_end: Some(9), excluded: Default::default(), reasons: Default::default() };
    /// s.excluded.insert(3);
    /// assert_eq!(s.keep_mask(&[1, 3, 5]).unwrap(), vec![true, false, true]);
    /// assert_eq!(s.keep_mask(&[1, 9]).unwrap_err().row, 9);
    /// ```
    pub fn keep_mask(&self, rows: &[u32]) -> Result<Vec<bool>, RowPastEnd> {
        let mut out = vec![true; rows.len()];
        self.keep_mask_into(rows, &mut out)?;
        Ok(out)
    }

    /// [`ManifestShard::keep_mask`] into a caller's buffer (`out.len() ==
    /// rows.len()`; left unspecified on error).
    pub fn keep_mask_into(&self, rows: &[u32], out: &mut [bool]) -> Result<(), RowPastEnd> {
        self.past_end(rows)?;
        self.mask_unchecked(rows, out);
        Ok(())
    }

    fn mask_unchecked(&self, rows: &[u32], out: &mut [bool]) {
        let sorted = rows.windows(2).all(|w| w[0] <= w[1]);
        if !sorted {
            for (o, r) in out.iter_mut().zip(rows) {
                *o = !self.excluded.contains(*r);
            }
            return;
        }
        out.fill(true);
        let (Some(&lo), Some(&hi)) = (rows.first(), rows.last()) else {
            return;
        };
        // Only the excluded rows inside the batch's span matter.
        let span = self.excluded.range(lo..=hi);
        let dense = self.excluded.range_cardinality(lo..=hi) as usize * 16 > rows.len();
        let mut i = 0usize;
        for x in span {
            if dense {
                // Many exclusions for the batch: a linear merge.
                while i < rows.len() && rows[i] < x {
                    i += 1;
                }
            } else {
                // Few: jump to each by binary search.
                i += rows[i..].partition_point(|&r| r < x);
            }
            if i >= rows.len() {
                break;
            }
            while i < rows.len() && rows[i] == x {
                out[i] = false;
                i += 1;
            }
        }
    }
}
