//! The rules of a run registration both front doors follow (`optout runs
//! add` and `POST /v1/runs`): the default name and the events recorded
//! after the manifest that had taken effect when the run started.

use super::*;

impl<I: Io> Ledger<I> {
    /// The name a run gets when none is given: `MODEL-run-K`, K the number
    /// of runs registered so far plus one.
    pub fn default_run_name(&self, model: &str) -> String {
        format!("{model}-run-{}", self.index.runs().len() + 1)
    }

    /// How many events recorded after manifest `m` (seq above its seq) had
    /// taken effect (`at` at or before `started_at`) when a run starting at
    /// `started_at` used it: a fresh manifest may exclude more.
    pub fn events_after_manifest(&self, m: &Manifest, started_at: Timestamp) -> usize {
        let seq = m.header.seq;
        self.index
            .events()
            .iter()
            .filter(|(s, e)| *s > seq && e.at <= started_at)
            .count()
    }
}
