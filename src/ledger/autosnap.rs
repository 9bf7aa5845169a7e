//! Snapshots after large ingests (issue 19, T8): the ledger counts the
//! rows appended or replayed since its newest snapshot (a record or
//! derived row counts one, any other entry one) and, when an ingest ends
//! with that count at or past [`LedgerOptions::auto_snapshot`] and at
//! least a tenth of the index's records, writes a snapshot exactly as
//! `optout snapshot` does ([`Ledger::snapshot`]: the snapshot key from the
//! subject key, the log synced first, the `(seq, chain)` checked, written
//! to a temporary file and renamed; docs/FORMAT.md, "Snapshots"). Nothing
//! about trusting a snapshot changes: it is a cache the next open checks
//! (MAC, seq, chain) and falls back from.

use super::*;

/// The CLI's `ingest` threshold (rows since the newest snapshot): one
/// million rows replay in about a second (T8: 10M rows replayed in 9.6 s),
/// while writing the snapshot of an index costs well under that per
/// million records it holds (BENCHMARKS.md, T8), so an ingest that leaves
/// a second or more of replay behind is followed by a snapshot, and a small
/// one (or a ledger whose snapshot is recent) is not.
pub const AUTO_SNAPSHOT_ROWS: u64 = 1_000_000;

/// What the ledger knows of its replay cost.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Auto {
    /// Rows appended or replayed since the newest snapshot.
    pub(super) since: u64,
    /// [`LedgerOptions::auto_snapshot`].
    pub(super) after: Option<u64>,
}

/// The rows `entry` adds to a replay: one per record or derived row, one
/// for any other entry.
pub(super) fn weight(entry: &Entry) -> u64 {
    match entry {
        Entry::Records(b) => b.len() as u64,
        Entry::Derive(d) => d.len() as u64,
        _ => 1,
    }
    .max(1)
}

impl<I: Io> Ledger<I> {
    /// Sets [`LedgerOptions::auto_snapshot`] on an open ledger (`None`:
    /// never).
    pub fn set_auto_snapshot(&mut self, rows: Option<u64>) {
        self.auto.after = rows;
    }

    /// Rows appended or replayed since the newest snapshot this handle
    /// loaded or wrote (all of them when none was).
    pub fn rows_since_snapshot(&self) -> u64 {
        self.auto.since
    }

    /// At the end of an ingest: the snapshot, if the rows since the newest
    /// one call for it. Needs the key (an ingest has it).
    pub(super) fn auto_snapshot(&mut self) -> Result<Option<Seq>> {
        let Some(after) = self.auto.after else {
            return Ok(None);
        };
        let records = self.index.stats().records;
        if self.read_only || self.keyer.is_none() || self.auto.since < after.max(records / 10) {
            return Ok(None);
        }
        self.snapshot()?;
        Ok(Some(self.log.head().0))
    }
}
