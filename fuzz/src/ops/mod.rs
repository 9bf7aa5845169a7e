//! The operation targets (`ops`, `ops_arbitrary`): a sequence of ledger
//! operations, decoded from bytes (`grammar`) or with `arbitrary`, built
//! into ledger input (`build`) and run against the reference evaluator
//! (`harness`).

use super::*;

mod build;
mod grammar;
mod harness;

pub use build::*;
pub use grammar::*;
pub use harness::*;

/// An integer in `0..N`: the small domains that make operations collide
/// (the same rows, subjects, keys and days come back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Below<const N: u8>(pub u8);

impl<'a, const N: u8> Arbitrary<'a> for Below<N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Below(u.int_in_range(0..=N - 1)?))
    }
    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

/// Between `MIN` and `MAX` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Few<T, const MIN: usize, const MAX: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const MIN: usize, const MAX: usize> Arbitrary<'a> for Few<T, MIN, MAX> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(MIN..=MAX)?;
        (0..n)
            .map(|_| T::arbitrary(u))
            .collect::<arbitrary::Result<Vec<T>>>()
            .map(Few)
    }
}

/// The purposes an event names.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurposesOp {
    /// `*`.
    All,
    /// `ads`.
    Ads,
    /// `ai-training`.
    AiTraining,
}

/// One row of an ingest.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct RowOp {
    /// Row number.
    pub row: Below<12>,
    /// Linked subjects (sorted and deduplicated when built).
    pub subjects: Few<Below<5>, 0, 2>,
    /// Index into the batch's three profiles.
    pub profile: Below<3>,
    /// Collection day.
    pub day: Below<5>,
    /// Record key `k0..k2`.
    pub key: Option<Below<3>>,
    /// Content hash `[h; 32]`.
    pub hash: Option<Below<2>>,
    /// The replace flag.
    pub replace: bool,
}

/// One shard's rows of an ingest.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ShardOp {
    /// Dataset `d0`, `d1`.
    pub dataset: Below<2>,
    /// Shard `s0..s2`.
    pub shard: Below<3>,
    /// Its rows.
    pub rows: Few<RowOp, 1, 4>,
}

/// A takedown's target.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetOp {
    /// By record key.
    Key(Below<3>),
    /// By content hash.
    Hash(Below<2>),
    /// One record by name.
    Record {
        /// Dataset.
        dataset: Below<2>,
        /// Shard.
        shard: Below<3>,
        /// Row.
        row: Below<12>,
    },
}

/// Every event kind.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindOp {
    /// An objection, maybe scoped to the `text` category or to `a.com`.
    Objection {
        /// Purposes.
        purposes: PurposesOp,
        /// Scoped to category `text`.
        text: bool,
        /// Scoped to source `a.com`.
        source: bool,
    },
    /// An objection withdrawn.
    ObjectionWithdrawn {
        /// Purposes.
        purposes: PurposesOp,
    },
    /// Consent.
    Consent {
        /// Purposes.
        purposes: PurposesOp,
        /// Single, double opt-in, delegated.
        method: Below<3>,
        /// Confirmed.
        confirmed: bool,
    },
    /// Consent withdrawn.
    ConsentWithdrawn {
        /// Purposes.
        purposes: PurposesOp,
    },
    /// Erasure.
    Erasure,
    /// Restriction, maybe until a day.
    Restriction {
        /// End day.
        until: Option<Below<12>>,
    },
    /// Takedown.
    Takedown(TargetOp),
    /// A source (or third party) opts out.
    SourceOptout {
        /// `a.com`, `forum.a.com`, `zoom`, `dmp:acme`.
        source: Below<4>,
        /// Purposes.
        purposes: PurposesOp,
    },
}

/// One event.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOp {
    /// Its subject (ignored by takedowns and source opt-outs).
    pub subject: Below<5>,
    /// Valid time, a day.
    pub at: Below<12>,
    /// What happened.
    pub kind: KindOp,
}

/// A policy: seven switches, see [`policy_of`].
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyOp(pub u8);

/// Which ledger state a manifest is computed at.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqOp {
    /// The head.
    Head,
    /// A past state: one of the checkpoints recorded while the ledger and
    /// the mirror were in lockstep (`n` modulo their number).
    Past(u8),
}

/// A manifest's dataset scope.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeOp {
    /// Every dataset.
    All,
    /// `d0`.
    D0,
    /// `d1`.
    D1,
    /// `d0` and `d1`, named explicitly.
    Both,
}

/// A manifest query.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryOp {
    /// Policy.
    pub policy: PolicyOp,
    /// Valid time, a day.
    pub at: Below<13>,
    /// State.
    pub seq: SeqOp,
    /// Dataset scope.
    pub scope: ScopeOp,
}

/// One operation on the ledger under test (and its mirror).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Ingest a batch of 1-2 shards.
    Ingest(Few<ShardOp, 1, 2>),
    /// Record 1-3 events, all or nothing.
    Events(Few<EventOp, 1, 3>),
    /// Compute a manifest and check it against the reference evaluator.
    Manifest(QueryOp),
    /// Write a ledger snapshot.
    Snapshot,
    /// Compute a manifest, reopen the ledger (snapshot + replay, or replay),
    /// compute it again: the same bytes, the same runs and lineage.
    Reopen(QueryOp),
    /// Round-trip the mirror index through its snapshot bytes.
    IndexRoundTrip,
    /// Register a training run on a manifest (names `run0..run2`), and try
    /// to register an altered copy of it.
    RegisterRun {
        /// Run name.
        name: Below<3>,
        /// The manifest's query.
        query: QueryOp,
        /// Start day.
        started: Below<13>,
    },
    /// Which runs used a subject's records, against a naive recomputation.
    Affected {
        /// Subject.
        subject: Below<5>,
        /// Valid time now, a day.
        at: Below<13>,
    },
}

/// At most this many operations per input.
pub const MAX_OPS: usize = 64;

/// How many checks an op sequence ran (see `tests/fuzz_replay.rs`, which
/// sums them over a corpus to show the comparisons are active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpsStats {
    /// Operations run.
    pub ops: u64,
    /// Ledger manifests compared with the reference evaluator (head and past).
    pub ledger_vs_reference: u64,
    /// Of those, at a past checkpoint.
    pub past: u64,
    /// Manifest calls skipped because the ledger and the mirror diverged.
    pub diverged: u64,
    /// Engine-on-mirror evaluations compared with the reference.
    pub engine_vs_reference: u64,
    /// Training runs registered.
    pub runs: u64,
    /// Lineage (`affected`) results compared with the naive recomputation.
    pub affected: u64,
    /// Of those, with at least one run that used the subject's records.
    pub affected_nonempty: u64,
    /// Reopens.
    pub reopens: u64,
}

impl std::ops::AddAssign for OpsStats {
    fn add_assign(&mut self, o: Self) {
        self.ops += o.ops;
        self.ledger_vs_reference += o.ledger_vs_reference;
        self.past += o.past;
        self.diverged += o.diverged;
        self.engine_vs_reference += o.engine_vs_reference;
        self.runs += o.runs;
        self.affected += o.affected;
        self.affected_nonempty += o.affected_nonempty;
        self.reopens += o.reopens;
    }
}

/// The `ops_arbitrary` target: `arbitrary` decodes up to [`MAX_OPS`]
/// operations from the input, then [`run_ops`].
pub fn ops_arbitrary(data: &[u8]) {
    run_ops(&ops_of_arbitrary(data));
}

/// Decodes the `ops_arbitrary` input.
pub fn ops_of_arbitrary(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// The `ops` target: a hand-written byte program, see [`ops_of_bytes`].
pub fn ops(data: &[u8]) {
    run_ops(&ops_of_bytes(data));
}
