//! Operations into ledger input: profiles, subjects, record batches,
//! events, policies and scopes.

use super::*;

pub(crate) fn profiles() -> Vec<Profile> {
    let mk =
        |source: &str, basis: &str, cats: &[&str], vis, jur: Option<&str>, from: Option<&str>| {
            let mut p = Profile {
                source: source.into(),
                basis: basis.into(),
                categories: cats.iter().map(|s| s.to_string()).collect(),
                visibility: vis,
                jurisdiction: jur.map(str::to_string),
                license: None,
                obtained_from: from.map(str::to_string),
            };
            p.normalise();
            p
        };
    vec![
        mk(
            "a.com",
            "consent",
            &["text"],
            Some(Visibility::Public),
            Some("EU"),
            None,
        ),
        mk(
            "forum.a.com",
            "legitimate_interest",
            &[],
            None,
            None,
            Some("dmp:acme"),
        ),
        mk(
            "zoom",
            "contract",
            &["audio", "text"],
            Some(Visibility::Private),
            Some("US"),
            None,
        ),
    ]
}

pub(crate) fn subject(i: u8) -> SubjectKey {
    SubjectKey::from_bytes([i + 1; 16])
}

pub(crate) fn purposes_of(p: PurposesOp) -> Purposes {
    match p {
        PurposesOp::All => Purposes::All,
        PurposesOp::Ads => Purposes::Some(vec![Purpose::new("ads").unwrap()]),
        PurposesOp::AiTraining => Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
    }
}

pub(crate) fn batch_of(shards: &[ShardOp]) -> RecordBatch {
    RecordBatch {
        profiles: profiles(),
        shards: shards
            .iter()
            .map(|g| ShardRecords {
                dataset: format!("d{}", g.dataset.0),
                shard: format!("s{}", g.shard.0),
                rows: g
                    .rows
                    .0
                    .iter()
                    .map(|r| RowEntry {
                        row: u32::from(r.row.0),
                        subjects: {
                            let mut s: Vec<SubjectKey> =
                                r.subjects.0.iter().map(|s| subject(s.0)).collect();
                            s.sort_unstable();
                            s.dedup();
                            s
                        },
                        profile: u32::from(r.profile.0),
                        collected_at: day(u64::from(r.day.0)),
                        key: r.key.map(|k| format!("k{}", k.0)),
                        content_hash: r.hash.map(|h| ContentHash([h.0; 32])),
                        replace: r.replace,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn event_of(e: &EventOp) -> Event {
    let s = subject(e.subject.0);
    let kind = match e.kind {
        KindOp::Objection {
            purposes,
            text,
            source,
        } => EventKind::Objection {
            subject: s,
            purposes: purposes_of(purposes),
            categories: if text { vec!["text".into()] } else { vec![] },
            sources: if source { vec!["a.com".into()] } else { vec![] },
        },
        KindOp::ObjectionWithdrawn { purposes } => EventKind::ObjectionWithdrawn {
            subject: s,
            purposes: purposes_of(purposes),
        },
        KindOp::Consent {
            purposes,
            method,
            confirmed,
        } => EventKind::Consent {
            subject: s,
            purposes: purposes_of(purposes),
            method: [
                ConsentMethod::SingleOptIn,
                ConsentMethod::DoubleOptIn,
                ConsentMethod::Delegated,
            ][usize::from(method.0)],
            confirmed,
            granted_by: None,
        },
        KindOp::ConsentWithdrawn { purposes } => EventKind::ConsentWithdrawn {
            subject: s,
            purposes: purposes_of(purposes),
        },
        KindOp::Erasure => EventKind::Erasure { subject: s },
        KindOp::Restriction { until } => EventKind::Restriction {
            subject: s,
            until: until.map(|d| day(u64::from(d.0))),
        },
        KindOp::Takedown(t) => EventKind::Takedown {
            target: match t {
                TargetOp::Key(k) => TakedownTarget::Key(format!("k{}", k.0)),
                TargetOp::Hash(h) => TakedownTarget::ContentHash(ContentHash([h.0; 32])),
                TargetOp::Record {
                    dataset,
                    shard,
                    row,
                } => TakedownTarget::Record {
                    dataset: format!("d{}", dataset.0),
                    shard: format!("s{}", shard.0),
                    row: u32::from(row.0),
                },
            },
            reason: None,
        },
        KindOp::SourceOptout { source, purposes } => EventKind::SourceOptout {
            source: ["a.com", "forum.a.com", "zoom", "dmp:acme"][usize::from(source.0)].into(),
            purposes: purposes_of(purposes),
            signal: None,
        },
    };
    Event {
        at: day(u64::from(e.at.0)),
        reference: None,
        kind,
    }
}

/// The policy of seven switches: bit 0 purpose `ads` (else `ai-training`),
/// 1 consent required for legitimate interest, 2 double opt-in, 3 delegated
/// consent accepted, 4 exclude `audio`, 5 public only, 6 EU only.
pub fn policy_of(p: PolicyOp) -> Policy {
    let flags = p.0;
    let purpose = if flags & 1 == 0 { "ai-training" } else { "ads" };
    let mut p = Policy::default_for(Purpose::new(purpose).unwrap());
    if flags & 2 != 0 {
        p.consent_required_for.push("legitimate_interest".into());
    }
    p.require_double_opt_in = flags & 4 != 0;
    p.accept_delegated_consent = flags & 8 != 0;
    if flags & 16 != 0 {
        p.exclude_categories = vec!["audio".into()];
    }
    if flags & 32 != 0 {
        p.require_visibility = Some(Visibility::Public);
    }
    if flags & 64 != 0 {
        p.jurisdictions = Some(vec!["EU".into()]);
    }
    p.normalise();
    p
}

pub(crate) fn scope_of(s: ScopeOp) -> Vec<String> {
    match s {
        ScopeOp::All => vec![],
        ScopeOp::D0 => vec!["d0".into()],
        ScopeOp::D1 => vec!["d1".into()],
        ScopeOp::Both => vec!["d0".into(), "d1".into()],
    }
}
