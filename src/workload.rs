//! Deterministic synthetic workloads (PERF.md: W-S, W-M, W-C, W-X) for
//! benchmarks and the peer comparison. Every number comes from a seeded
//! splitmix64, so every run sees the same ledger.

use crate::event::{Entry, Event, EventKind, RecordBatch, RowEntry, ShardRecords};
use crate::ids::{Purpose, Purposes, Seq, SubjectKey};
use crate::index::Index;
use crate::provenance::Profile;
use crate::time::Timestamp;

/// splitmix64: the generator behind every workload.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How subjects are spread over records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One subject per record, uniformly at random (worst case for locality).
    Uniform,
    /// Each subject's records contiguous.
    Clustered,
    /// 20% of records with 2-5 subjects, provenance rules active (W-X).
    Mixed,
}

/// A workload's shape.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Number of shards.
    pub shards: u32,
    /// Rows per shard.
    pub rows: u32,
    /// Number of distinct subjects.
    pub subjects: u64,
    /// Objecting subjects, in parts per 10,000 (100 = 1%).
    pub objecting_per_10k: u64,
    /// Layout.
    pub layout: Layout,
}

impl Spec {
    /// W-S: 10M records in 1,000 shards of 10,000 rows, 1M subjects, 1% objecting.
    pub fn ws() -> Self {
        Spec {
            shards: 1_000,
            rows: 10_000,
            subjects: 1_000_000,
            objecting_per_10k: 100,
            layout: Layout::Uniform,
        }
    }
    /// W-M: 100M records in 10,000 shards of 10,000 rows, 10M subjects, 1% objecting.
    pub fn wm() -> Self {
        Spec {
            shards: 10_000,
            rows: 10_000,
            subjects: 10_000_000,
            objecting_per_10k: 100,
            layout: Layout::Uniform,
        }
    }
    /// The PERF.md workload called `name`: `ws`, `wm`, `wc` (W-M
    /// clustered), `wx` (W-M with the W-X rules) or `wsx` (W-X at W-S size).
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "ws" => Spec::ws(),
            "wm" => Spec::wm(),
            "wc" => Spec {
                layout: Layout::Clustered,
                ..Spec::wm()
            },
            "wx" => Spec {
                layout: Layout::Mixed,
                ..Spec::wm()
            },
            "wsx" => Spec {
                layout: Layout::Mixed,
                ..Spec::ws()
            },
            _ => return None,
        })
    }
    /// Records in total.
    pub fn records(&self) -> u64 {
        self.shards as u64 * self.rows as u64
    }
    /// Scales the record and subject counts by `1/div` (for quick runs).
    pub fn scaled(mut self, div: u32) -> Self {
        self.shards = (self.shards / div).max(1);
        self.subjects = (self.subjects / div as u64).max(1);
        self
    }
}

/// The pseudonym of synthetic subject `i` (no keyer needed: synthetic).
pub fn subject(i: u64) -> SubjectKey {
    let a = splitmix64(i ^ 0x5151_5151);
    let b = splitmix64(a);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..].copy_from_slice(&b.to_le_bytes());
    SubjectKey::from_bytes(k)
}

/// The subjects of record `r` (global record number) under `spec`.
pub fn subjects_of(spec: &Spec, r: u64, out: &mut Vec<u64>) {
    out.clear();
    match spec.layout {
        Layout::Uniform => out.push(splitmix64(r) % spec.subjects),
        Layout::Clustered => out.push(r * spec.subjects / spec.records()),
        Layout::Mixed => {
            let h = splitmix64(r);
            let n = if h.is_multiple_of(5) {
                2 + (h >> 8) % 4
            } else {
                1
            };
            for k in 0..n {
                out.push(splitmix64(r.wrapping_mul(7).wrapping_add(k)) % spec.subjects);
            }
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// Whether subject `i` objects.
pub fn objects(spec: &Spec, i: u64) -> bool {
    splitmix64(i ^ 0x000b_1ec7) % 10_000 < spec.objecting_per_10k
}

/// The provenance profile of shard `s`. Under [`Layout::Mixed`]: one shard
/// in ten is on a consent basis, one in twenty is telemetry, and sources
/// rotate over ten domains (`src3.example` is the opted-out one).
pub fn profile_of(spec: &Spec, s: u32) -> Profile {
    let mixed = spec.layout == Layout::Mixed;
    Profile {
        source: if mixed {
            format!("src{}.example", s % 10)
        } else {
            "forum.example".into()
        },
        basis: if mixed && s % 10 == 1 {
            "consent".into()
        } else {
            "legitimate_interest".into()
        },
        categories: if mixed && s % 20 == 7 {
            vec!["telemetry".into()]
        } else {
            vec!["text".into()]
        },
        visibility: None,
        jurisdiction: Some("EU".into()),
        license: None,
        obtained_from: None,
    }
}

/// The record batch of shard `s`.
pub fn shard_batch(spec: &Spec, s: u32) -> RecordBatch {
    let mut subj = Vec::new();
    let rows = (0..spec.rows)
        .map(|row| {
            subjects_of(spec, s as u64 * spec.rows as u64 + row as u64, &mut subj);
            RowEntry {
                row,
                subjects: subj.iter().map(|&i| subject(i)).collect(),
                profile: 0,
                collected_at: Timestamp::from_unix_seconds(1_700_000_000),
                key: None,
                content_hash: None,
                replace: false,
            }
        })
        .collect();
    RecordBatch {
        profiles: vec![profile_of(spec, s)],
        shards: vec![ShardRecords {
            dataset: "bench".into(),
            shard: format!("part-{s:05}.parquet"),
            rows,
        }],
    }
}

/// The events of a workload: objections by the objecting subjects; under
/// [`Layout::Mixed`] also consents by 90% of subjects of consent-basis
/// records is too many events to keep, so consent is given by one subject
/// in ten, and one source opts out.
pub fn events(spec: &Spec) -> Vec<Event> {
    let at = Timestamp::from_unix_seconds(1_710_000_000);
    let ai = || {
        Purposes::Some(vec![
            Purpose::new(Purpose::AI_TRAINING).unwrap_or_else(|_| unreachable!())
        ])
    };
    let mut out = Vec::new();
    for i in 0..spec.subjects {
        if objects(spec, i) {
            out.push(Event {
                at,
                reference: None,
                kind: EventKind::Objection {
                    subject: subject(i),
                    purposes: ai(),
                    categories: vec![],
                    sources: vec![],
                },
            });
        }
        if spec.layout == Layout::Mixed && splitmix64(i ^ 0xc0).is_multiple_of(10) {
            out.push(Event {
                at,
                reference: None,
                kind: EventKind::Consent {
                    subject: subject(i),
                    purposes: ai(),
                    method: crate::event::ConsentMethod::DoubleOptIn,
                    confirmed: true,
                    granted_by: None,
                },
            });
        }
    }
    if spec.layout == Layout::Mixed {
        out.push(Event {
            at,
            reference: None,
            kind: EventKind::SourceOptout {
                source: "src3.example".into(),
                purposes: ai(),
                signal: Some("tdmrep".into()),
            },
        });
    }
    out
}

/// Builds the workload's index in memory (records, then events).
pub fn build_index(spec: &Spec) -> Index {
    let mut index = Index::new();
    let mut seq = 0u64;
    // Generated entries are valid by construction.
    for s in 0..spec.shards {
        seq += 1;
        let _ = index.apply_unfrozen(Seq(seq), &Entry::Records(shard_batch(spec, s)));
    }
    for e in events(spec) {
        seq += 1;
        let _ = index.apply_unfrozen(Seq(seq), &Entry::Event(e));
    }
    index.freeze();
    index
}

/// The query the benchmarks time over a workload's index: purpose
/// `ai-training` at the index's head; under [`Layout::Mixed`] the policy
/// also excludes the `telemetry` category (the W-X rules).
pub fn query(layout: Layout, index: &Index) -> crate::Query {
    let ai = Purpose::new(Purpose::AI_TRAINING).unwrap_or_else(|_| unreachable!());
    let mut policy = crate::Policy::default_for(ai);
    if layout == Layout::Mixed {
        policy.exclude_categories = vec!["telemetry".into()];
    }
    crate::Query {
        policy,
        seq: index.seq(),
        at: Timestamp::from_unix_seconds(1_800_000_000),
        datasets: vec![],
    }
}

/// The workload's index, loaded from the snapshot at `cache` when there is
/// one, else built (and written there when a path is given, so repeated
/// benchmark runs skip the build). Also says whether it was built.
///
/// A cache that does not decode (written by an older snapshot format) is
/// rebuilt and overwritten.
///
/// # Panics
/// When the cache cannot be written (a benchmark helper).
pub fn cached_index(spec: &Spec, cache: Option<&std::path::Path>) -> (Index, bool) {
    if let Some(bytes) = cache.and_then(|p| std::fs::read(p).ok()) {
        match Index::from_snapshot_vec(bytes) {
            Ok(index) => return (index, false),
            Err(e) => eprintln!("index cache does not decode ({e}): rebuilding it"),
        }
    }
    let mut index = build_index(spec);
    if let Some(p) = cache {
        let bytes = index
            .to_snapshot_bytes()
            .expect("snapshot of a built index");
        std::fs::write(p, bytes).expect("write the index cache");
    }
    (index, true)
}
