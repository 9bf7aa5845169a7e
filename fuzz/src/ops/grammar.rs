//! The byte grammar of the `ops` target: a compact decoding of any input
//! into operations.

use super::*;

/// Reads the op program's bytes; 0 once exhausted.
pub(crate) struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn below<const N: u8>(&mut self) -> Below<N> {
        Below(self.u8() % N)
    }
    fn n(&mut self, n: u8) -> u8 {
        self.u8() % n
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    fn purposes(&mut self) -> PurposesOp {
        [PurposesOp::All, PurposesOp::Ads, PurposesOp::AiTraining][usize::from(self.n(3))]
    }
}

/// The `ops` byte program: each op reads the few bytes it needs (`op % 6`:
/// ingest, events, manifest at the head (and a past seq of the mirror),
/// snapshot, reopen, index round trip; no scopes, runs or lineage).
pub fn ops_of_bytes(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes(data);
    let mut ops = Vec::new();
    while !b.done() && ops.len() < MAX_OPS {
        ops.push(match b.n(6) {
            0 => {
                let mut shards = Vec::new();
                for _ in 0..1 + b.n(2) {
                    let dataset = b.below();
                    let shard = b.below();
                    let mut rows = Vec::new();
                    for _ in 0..1 + b.n(4) {
                        let flags = b.u8();
                        let n = b.n(3);
                        let row = b.below();
                        let subjects = Few((0..n).map(|_| b.below()).collect());
                        rows.push(RowOp {
                            row,
                            subjects,
                            profile: b.below(),
                            day: b.below(),
                            key: (flags & 1 == 1).then_some(Below((flags >> 4) % 3)),
                            hash: (flags & 2 == 2).then_some(Below((flags >> 6) % 2)),
                            replace: flags & 4 == 4,
                        });
                    }
                    shards.push(ShardOp {
                        dataset,
                        shard,
                        rows: Few(rows),
                    });
                }
                Op::Ingest(Few(shards))
            }
            1 => {
                let n = 1 + b.n(3);
                Op::Events(Few((0..n).map(|_| event_of_bytes(&mut b)).collect()))
            }
            2 => {
                let policy = PolicyOp(b.u8());
                let at = b.below();
                Op::Manifest(QueryOp {
                    policy,
                    at,
                    seq: SeqOp::Past(b.u8()),
                    scope: ScopeOp::All,
                })
            }
            3 => Op::Snapshot,
            4 => {
                let policy = PolicyOp(b.u8());
                Op::Reopen(QueryOp {
                    policy,
                    at: b.below(),
                    seq: SeqOp::Head,
                    scope: ScopeOp::All,
                })
            }
            _ => Op::IndexRoundTrip,
        });
    }
    ops
}

pub(crate) fn event_of_bytes(b: &mut Bytes) -> EventOp {
    let subject = b.below();
    let kind = match b.n(8) {
        0 => KindOp::Objection {
            purposes: b.purposes(),
            text: b.n(3) == 0,
            source: b.n(4) == 0,
        },
        1 => KindOp::ObjectionWithdrawn {
            purposes: b.purposes(),
        },
        2 => KindOp::Consent {
            purposes: b.purposes(),
            method: b.below(),
            confirmed: b.n(4) != 0,
        },
        3 => KindOp::ConsentWithdrawn {
            purposes: b.purposes(),
        },
        4 => KindOp::Erasure,
        5 => KindOp::Restriction {
            until: if b.n(2) == 0 { Some(b.below()) } else { None },
        },
        6 => KindOp::Takedown(match b.n(3) {
            0 => TargetOp::Key(b.below()),
            1 => TargetOp::Hash(b.below()),
            _ => TargetOp::Record {
                dataset: b.below(),
                shard: b.below(),
                row: b.below(),
            },
        }),
        _ => KindOp::SourceOptout {
            source: b.below(),
            purposes: b.purposes(),
        },
    };
    EventOp {
        subject,
        at: b.below(),
        kind,
    }
}

// ------------------------------------------------- ops: building entries
