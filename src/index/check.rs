//! Checking an entry against the index before it is written: what
//! [`Index::apply`] would refuse, said before anything reaches the log.

use super::*;

impl Index {
    /// Checks that `entry` can be applied after the current state, without
    /// changing anything. [`Index::apply`] does the same checks first.
    pub fn check(&self, entry: &Entry) -> Result<()> {
        match entry {
            Entry::Records(b) => self.check_records(b),
            Entry::Derive(d) => self.check_derivation(d),
            Entry::Event(_) => Ok(()),
            Entry::Init(_) if self.key_fingerprint.is_some() => {
                Err(Error::Invalid("a second ledger init entry".into()))
            }
            Entry::Init(_) => Ok(()),
            Entry::QuarantineAck(_) | Entry::Declare(_) => Ok(()),
            Entry::Files(_) | Entry::Ends(_) => Ok(()),
            Entry::Reserved8(r) => match *r {},
            Entry::Run(r) => {
                if self.runs.iter().any(|(_, x)| x.name == r.name) {
                    return Err(Error::Invalid(format!(
                        "a training run named {:?} is already registered",
                        r.name
                    )));
                }
                Ok(())
            }
        }
    }

    /// Checks a record batch against the current state: profile indices in
    /// range, and no row registered twice (in the batch or before) unless
    /// it has `replace` set.
    pub(crate) fn check_records(&self, b: &RecordBatch) -> Result<()> {
        let mut seen: HashMap<(&str, &str), roaring::RoaringBitmap> = HashMap::new();
        for g in &b.shards {
            let existing = self.records.find_shard(&g.dataset, &g.shard);
            let rows = seen.entry((&g.dataset, &g.shard)).or_default();
            for r in &g.rows {
                if r.profile as usize >= b.profiles.len() {
                    return Err(Error::Invalid(format!(
                        "record batch names profile {} of {}",
                        r.profile,
                        b.profiles.len()
                    )));
                }
                if r.row == u32::MAX {
                    return Err(Error::Invalid(format!(
                        "record {}/{}: row 4294967295 is out of range",
                        g.dataset, g.shard
                    )));
                }
                let twice = !rows.insert(r.row);
                let dup = twice
                    || existing.is_some_and(|s| {
                        self.records.shards[s.0 as usize].current(r.row).is_some()
                    });
                if dup && !r.replace {
                    return Err(Error::RecordConflict {
                        dataset: g.dataset.clone(),
                        shard: g.shard.clone(),
                        row: r.row,
                        twice_in_batch: twice,
                        what: if twice {
                            "is registered twice in this batch; set \"replace\": true on the later line to replace it"
                        } else {
                            "is already registered; set \"replace\": true to replace it"
                        },
                    });
                }
            }
        }
        Ok(())
    }
}
