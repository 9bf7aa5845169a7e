//! Reading the index: a subject's events and records, names of a record,
//! the runs, events, quarantine acknowledgements and declarations; `compact`.

use super::*;

impl Index {
    /// The events about a subject, with their sequence numbers, in log order.
    pub fn subject_events(&self, subject: &SubjectKey) -> Vec<(Seq, &Event)> {
        let Some(sid) = self.subjects.get(subject) else {
            return Vec::new();
        };
        self.events_of(sid)
    }

    pub(crate) fn events_of(&self, sid: u32) -> Vec<(Seq, &Event)> {
        self.subject_events
            .get(&sid)
            .map(|v| {
                v.iter()
                    .map(|&i| {
                        let (s, e) = &self.events[i as usize];
                        (*s, e)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The records linked to a subject that were live at `seq`, ascending.
    pub fn subject_records(&self, subject: &SubjectKey, seq: Seq) -> Vec<RecordId> {
        let Some(sid) = self.subjects.get(subject) else {
            return Vec::new();
        };
        let limit = self.records.limit_at(seq);
        let mut ords: Vec<u32> = Vec::new();
        self.links.for_each(sid, |o| {
            if self.records.visible(o, limit, seq) {
                ords.push(o);
            }
        });
        let mut out = Vec::with_capacity(ords.len());
        self.records.for_each_record(&ords, |_, r| out.push(r));
        out.sort();
        out
    }

    /// Dataset and shard names of a record id.
    pub fn names_of(&self, id: RecordId) -> Option<(&str, &str)> {
        let sh = self.records.shards.get(id.shard().0 as usize)?;
        Some((&self.records.datasets[sh.dataset.0 as usize], &sh.name))
    }

    /// The training runs, with the sequence number that registered each.
    pub fn runs(&self) -> &[(Seq, TrainingRun)] {
        &self.runs
    }

    /// Every event with its sequence number, in log order.
    pub fn events(&self) -> &[(Seq, Event)] {
        &self.events
    }

    /// The acknowledgements of quarantined torn tails, in log order.
    pub fn quarantine_acks(&self) -> &[(Seq, QuarantineAck)] {
        &self.quarantine_acks
    }

    /// The vocabulary declarations (purposes, bases), in log order.
    pub fn declarations(&self) -> &[(Seq, Declaration)] {
        &self.declarations
    }

    /// The subject-key fingerprint the ledger was created with.
    pub fn key_fingerprint(&self) -> Option<[u8; 32]> {
        self.key_fingerprint
    }

    /// Merges all subject links into one array (done before snapshots).
    pub fn compact(&mut self) {
        self.links.compact(self.subjects.len());
        self.lineage.shrink();
    }
}
