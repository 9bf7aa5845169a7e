//! A subject's status for one purpose at a point of both clocks: the fold of
//! their events recorded at or before `Seq` N that took effect at or before
//! time T, in order of `(at, seq)`.

use crate::event::{ConsentMethod, Event, EventKind};
use crate::ids::{Purpose, Seq};
use crate::policy::Policy;
use crate::provenance::Profile;
use crate::time::Timestamp;

/// The scope of one active objection: empty lists mean "any".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectionScope {
    /// Only records with one of these categories.
    pub categories: Vec<String>,
    /// Only records from one of these sources (or subdomains).
    pub sources: Vec<String>,
}

impl ObjectionScope {
    /// Whether the objection reaches records of this profile.
    pub fn covers(&self, p: &Profile) -> bool {
        (self.categories.is_empty() || p.has_any_category(&self.categories))
            && (self.sources.is_empty() || self.sources.iter().any(|s| p.from_source(s)))
    }
    /// Whether it reaches every record.
    pub fn is_total(&self) -> bool {
        self.categories.is_empty() && self.sources.is_empty()
    }
}

/// Where a subject's consent stands for the purpose, under the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentStatus {
    /// A consent that the policy accepts is in force.
    Valid,
    /// No consent the policy accepts (none, unconfirmed, single opt-in where
    /// double is required, or delegated where that is not accepted).
    Missing,
    /// The subject withdrew consent and has not given it again.
    Withdrawn,
}

/// A subject's status for one purpose at `(Seq N, time T)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectStatus {
    /// Erasure requested.
    pub erased: bool,
    /// A restriction is in force at T.
    pub restricted: bool,
    /// Active objections (after withdrawals).
    pub objections: Vec<ObjectionScope>,
    /// Consent.
    pub consent: ConsentStatus,
}

impl SubjectStatus {
    /// The status of a subject with no events.
    pub fn clean() -> Self {
        SubjectStatus {
            erased: false,
            restricted: false,
            objections: Vec::new(),
            consent: ConsentStatus::Missing,
        }
    }
}

/// Folds a subject's events into a status. `events` may be in any order and
/// include events after N or T; they are filtered and ordered here.
pub fn fold<'a>(
    events: impl IntoIterator<Item = (Seq, &'a Event)>,
    purpose: &Purpose,
    policy: &Policy,
    seq: Seq,
    at: Timestamp,
) -> SubjectStatus {
    let mut st = SubjectStatus::clean();
    fold_into(
        &mut st,
        &mut Vec::new(),
        events.into_iter().map(|(s, e)| {
            (
                s,
                e,
                e.kind.purposes().is_some_and(|p| p.applies_to(purpose)),
            )
        }),
        policy,
        seq,
        at,
    );
    st
}

/// The fold itself, into `st` (its objection list keeps its capacity, so
/// a caller folding many subjects does not allocate per subject). Each
/// event comes with whether it applies to the purpose, which the caller
/// may know without comparing names (the index interns purposes).
pub(crate) fn fold_into<'a>(
    st: &mut SubjectStatus,
    evs: &mut Vec<(Timestamp, Seq, &'a Event, bool)>,
    events: impl IntoIterator<Item = (Seq, &'a Event, bool)>,
    policy: &Policy,
    seq: Seq,
    at: Timestamp,
) {
    evs.clear();
    evs.extend(
        events
            .into_iter()
            .filter(|(s, e, _)| *s <= seq && e.at <= at)
            .map(|(s, e, applies)| (e.at, s, e, applies)),
    );
    if evs.len() > 1 {
        evs.sort_by_key(|(t, s, _, _)| (*t, *s));
    }

    st.erased = false;
    st.restricted = false;
    st.objections.clear();
    // The subject's own latest consent, a delegated one, and whether the
    // subject's own withdrawal is the last word (a delegated consent given
    // after it does not bring the consent back).
    let mut own: Option<(ConsentMethod, bool)> = None;
    let mut delegated: Option<bool> = None;
    let mut withdrawn = false;
    for &(_, _, e, applies) in evs.iter() {
        match &e.kind {
            EventKind::Objection {
                categories,
                sources,
                ..
            } if applies => st.objections.push(ObjectionScope {
                categories: categories.clone(),
                sources: sources.clone(),
            }),
            EventKind::ObjectionWithdrawn { .. } if applies => st.objections.clear(),
            EventKind::Consent {
                method, confirmed, ..
            } if applies => {
                if *method == ConsentMethod::Delegated {
                    if !withdrawn {
                        delegated = Some(*confirmed);
                    }
                } else {
                    own = Some((*method, *confirmed));
                    // Only a confirmed consent of the subject's own ends a
                    // withdrawal (and lets delegated consents count again).
                    if *confirmed {
                        withdrawn = false;
                    }
                }
            }
            EventKind::ConsentWithdrawn { .. } if applies => {
                own = None;
                delegated = None;
                withdrawn = true;
            }
            EventKind::Erasure { .. } => st.erased = true,
            EventKind::Restriction { until, .. } if until.is_none_or(|u| at < u) => {
                st.restricted = true;
            }
            _ => {}
        }
    }
    let own_ok = own.is_some_and(|(m, confirmed)| {
        confirmed && (m == ConsentMethod::DoubleOptIn || !policy.require_double_opt_in)
    });
    let delegated_ok =
        delegated == Some(true) && policy.accept_delegated_consent && !policy.require_double_opt_in;
    st.consent = if own_ok || delegated_ok {
        ConsentStatus::Valid
    } else if withdrawn {
        ConsentStatus::Withdrawn
    } else {
        ConsentStatus::Missing
    };
}
