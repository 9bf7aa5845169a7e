//! Deterministic random ledgers for tests.
#![allow(dead_code)]

use optout::event::{
    ConsentMethod, ContentHash, Entry, Event, EventKind, RecordBatch, RowEntry, ShardRecords,
    SignalEvidence, SignalTarget, TakedownTarget,
};
use optout::{Policy, Profile, Purpose, Purposes, Query, Seq, SubjectKey, Timestamp, Visibility};

/// xorshift64*: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The generator in state `s` as given (not mixed like [`Rng::new`]'s seed).
    pub const fn from_state(s: u64) -> Self {
        Rng(s)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// Up to `max` random bytes (the length random too).
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn subset(&mut self, xs: &[&str], pct: u64) -> Vec<String> {
        xs.iter()
            .filter(|_| self.chance(pct))
            .map(|s| s.to_string())
            .collect()
    }
}

pub fn subject(i: u64) -> SubjectKey {
    SubjectKey::from_bytes([i as u8 + 1; 16])
}

pub fn day(d: u64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + d as i64 * 86_400)
}

const SOURCES: &[&str] = &["a.com", "forum.a.com", "b.org", "zoom"];
const CATS: &[&str] = &["text", "audio", "telemetry"];

pub fn profile(r: &mut Rng) -> Profile {
    let mut p = Profile {
        source: r.pick(SOURCES).to_string(),
        basis: r
            .pick(&["consent", "legitimate_interest", "contract"])
            .to_string(),
        categories: r.subset(CATS, 40),
        visibility: *r.pick(&[None, Some(Visibility::Public), Some(Visibility::Private)]),
        jurisdiction: r.pick(&[None, Some("EU"), Some("US")]).map(str::to_string),
        license: None,
        obtained_from: r
            .pick(&[None, Some("dmp:acme"), Some("b.org")])
            .map(str::to_string),
    };
    p.normalise();
    p
}

fn purposes(r: &mut Rng) -> Purposes {
    match r.below(4) {
        0 => Purposes::All,
        1 => Purposes::Some(vec![Purpose::new("ads").unwrap()]),
        _ => Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
    }
}

fn signal_target(r: &mut Rng) -> SignalTarget {
    if r.chance(50) {
        SignalTarget::Source(
            r.pick(&["a.com", "forum.a.com", "b.org", "dmp:acme"])
                .to_string(),
        )
    } else {
        SignalTarget::Key(format!("k{}", r.below(5)))
    }
}

pub fn event(r: &mut Rng, n_subjects: u64) -> Event {
    let s = subject(r.below(n_subjects));
    let kind = match r.below(14) {
        0 | 1 => EventKind::Objection {
            subject: s,
            purposes: purposes(r),
            categories: if r.chance(30) {
                r.subset(CATS, 50)
            } else {
                vec![]
            },
            sources: if r.chance(20) {
                vec![r.pick(&["a.com", "zoom", "dmp:acme"]).to_string()]
            } else {
                vec![]
            },
        },
        2 => EventKind::ObjectionWithdrawn {
            subject: s,
            purposes: purposes(r),
        },
        3..=5 => EventKind::Consent {
            subject: s,
            purposes: purposes(r),
            method: *r.pick(&[
                ConsentMethod::SingleOptIn,
                ConsentMethod::DoubleOptIn,
                ConsentMethod::Delegated,
            ]),
            confirmed: r.chance(70),
            granted_by: None,
        },
        6 => EventKind::ConsentWithdrawn {
            subject: s,
            purposes: purposes(r),
        },
        7 => EventKind::Erasure { subject: s },
        8 => EventKind::Restriction {
            subject: s,
            until: if r.chance(50) {
                Some(day(r.below(12)))
            } else {
                None
            },
        },
        9 => EventKind::Takedown {
            target: match r.below(3) {
                0 => TakedownTarget::Key(format!("k{}", r.below(5))),
                1 => TakedownTarget::ContentHash(ContentHash([r.below(3) as u8; 32])),
                _ => TakedownTarget::Record {
                    dataset: r.pick(&["d1", "d2"]).to_string(),
                    shard: format!("s{}", r.below(3)),
                    row: r.below(12) as u32,
                },
            },
            reason: Some("copyright".into()),
        },
        10 => EventKind::SourceOptout {
            source: r
                .pick(&["a.com", "forum.a.com", "b.org", "dmp:acme", "zoom"])
                .to_string(),
            purposes: purposes(r),
            signal: Some("tdmrep".into()),
        },
        // Web signals: reserving or unparsable, for a domain or a URL key,
        // and explicit lifts of them.
        _ if r.chance(40) => EventKind::SignalLifted {
            target: signal_target(r),
            purposes: purposes(r),
            evidence: "licence L-1".into(),
        },
        _ => EventKind::Signal {
            target: signal_target(r),
            purposes: purposes(r),
            unparsable: r.chance(50),
            evidence: SignalEvidence::new(
                "robots",
                "https://a.com/robots.txt",
                day(r.below(12)),
                "User-agent: GPTBot\nDisallow: /",
                None,
            ),
        },
    };
    // Lifts mostly come after the signals they lift.
    let lift = matches!(kind, EventKind::SignalLifted { .. });
    Event {
        at: day(if lift { 4 + r.below(8) } else { r.below(12) }),
        reference: None,
        kind,
    }
}

/// A random log of `len` entries over `n_subjects` subjects.
pub fn ledger(seed: u64, len: usize, n_subjects: u64) -> Vec<(Seq, Entry)> {
    let mut r = Rng::new(seed);
    let profiles: Vec<Profile> = (0..4).map(|_| profile(&mut r)).collect();
    let mut registered = std::collections::HashSet::new();
    let mut out = Vec::new();
    for i in 0..len {
        let seq = Seq(i as u64 + 1);
        let entry = if r.chance(40) {
            let mut b = RecordBatch {
                profiles: profiles.clone(),
                shards: vec![],
            };
            for _ in 0..1 + r.below(3) {
                let dataset = r.pick(&["d1", "d2"]).to_string();
                let shard = format!("s{}", r.below(3));
                let mut rows = Vec::new();
                let start = r.below(10) as u32;
                for k in 0..1 + r.below(6) as u32 {
                    let row = if r.chance(80) {
                        start + k
                    } else {
                        r.below(12) as u32
                    };
                    let n = match r.below(10) {
                        0 => 0,
                        1..=6 => 1,
                        _ => 2 + r.below(3),
                    };
                    let subjects: Vec<SubjectKey> =
                        (0..n).map(|_| subject(r.below(n_subjects))).collect();
                    let replace = !registered.insert((dataset.clone(), shard.clone(), row));
                    rows.push(RowEntry {
                        row,
                        subjects,
                        profile: r.below(profiles.len() as u64) as u32,
                        collected_at: day(r.below(5)),
                        key: if r.chance(40) {
                            Some(format!("k{}", r.below(5)))
                        } else {
                            None
                        },
                        content_hash: if r.chance(30) {
                            Some(ContentHash([r.below(3) as u8; 32]))
                        } else {
                            None
                        },
                        replace,
                    });
                }
                b.shards.push(ShardRecords {
                    dataset,
                    shard,
                    rows,
                });
            }
            Entry::Records(b)
        } else {
            Entry::Event(event(&mut r, n_subjects))
        };
        out.push((seq, entry));
    }
    out
}

pub fn policy(r: &mut Rng) -> Policy {
    let purpose = if r.chance(75) { "ai-training" } else { "ads" };
    let mut p = Policy::default_for(Purpose::new(purpose).unwrap());
    p.consent_required_for = r.subset(&["consent", "legitimate_interest", "contract"], 40);
    p.require_double_opt_in = r.chance(30);
    p.accept_delegated_consent = r.chance(50);
    p.exclude_categories = if r.chance(40) {
        r.subset(CATS, 40)
    } else {
        vec![]
    };
    p.require_visibility = *r.pick(&[
        None,
        None,
        Some(Visibility::Public),
        Some(Visibility::Private),
    ]);
    p.jurisdictions = if r.chance(30) {
        Some(r.subset(&["EU", "US"], 60))
    } else {
        None
    };
    p.normalise();
    p
}

pub fn query(seed: u64, len: usize) -> Query {
    let mut r = Rng::new(seed ^ 0xABCD);
    Query {
        policy: policy(&mut r),
        seq: Seq(r.below(len as u64 + 2)),
        at: day(r.below(13)),
        datasets: if r.chance(25) {
            vec![r.pick(&["d1", "d2"]).to_string()]
        } else {
            vec![]
        },
    }
}

/// Copies the directory `from` to `to` recursively (a ledger's lock file
/// left out: a copy is a ledger nobody holds).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Runs the `optout` binary with `args` (no `OPTOUT_KEY_FILE` from the
/// environment), waiting for its output.
#[cfg(feature = "cli")]
pub fn optout(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_optout"))
        .args(args)
        .env_remove("OPTOUT_KEY_FILE")
        .output()
        .expect("run optout")
}

/// A finished command's stdout then stderr, as text.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `optout args`, asserts exit code `want`, returns its output as text.
#[cfg(feature = "cli")]
pub fn run(args: &[&str], want: i32) -> String {
    let o = optout(args);
    assert_eq!(o.status.code(), Some(want), "{args:?}: {}", text(&o));
    text(&o)
}

/// Runs `optout --format json args`, asserts exit code `want`, returns the
/// JSON it printed.
#[cfg(feature = "cli")]
pub fn json(args: &[&str], want: i32) -> serde_json::Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let o = optout(&a);
    assert_eq!(o.status.code(), Some(want), "{args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)))
}

/// The segment files of the log of the ledger at `root` in `io`, oldest first.
pub fn segments(io: &optout::storage::MemIo, root: &str) -> Vec<std::path::PathBuf> {
    use optout::storage::Io;
    let dir = std::path::Path::new(root).join("log");
    let mut v: Vec<std::path::PathBuf> = io
        .list_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|n| dir.join(n))
        .collect();
    v.sort();
    v
}

/// The golden ledger fixture at `path`, verified clean and opened read-only
/// with `keyer`. With `OPTOUT_REGEN_FIXTURES` set it is first rebuilt by
/// `build`, and the test panics with `regen(&ledger)`: the constants to
/// paste into the test before re-running it.
pub fn golden_fixture(
    path: &std::path::Path,
    keyer: &optout::SubjectKeyer,
    build: impl FnOnce(&std::path::Path),
    regen: impl FnOnce(&optout::Ledger) -> String,
) -> optout::Ledger {
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        let _ = std::fs::remove_dir_all(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        build(path);
        let _ = std::fs::remove_file(path.join("LOCK"));
        let l = optout::Ledger::open_read_only(path, Some(keyer.clone())).unwrap();
        panic!("fixture regenerated; {} and re-run", regen(&l));
    }
    let v =
        optout::verify_ledger_with(&optout::storage::FsIo::new(), path, Some(keyer), None).unwrap();
    assert!(v.is_clean(), "{v:?}");
    optout::Ledger::open_read_only(path, Some(keyer.clone())).unwrap()
}
