//! Why a record is excluded: the closed vocabulary of reasons.

use serde::{Deserialize, Serialize};

/// Why a record is excluded. A record may have several reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A linked subject objected (Art. 21), within the objection's scope.
    Objection = 0,
    /// The record's legal basis needs consent and a linked subject has none the policy accepts.
    ConsentMissing = 1,
    /// A linked subject withdrew consent (Art. 7(3)).
    ConsentWithdrawn = 2,
    /// A linked subject asked for erasure (Art. 17).
    Erasure = 3,
    /// Processing of a linked subject's data is restricted (Art. 18).
    Restriction = 4,
    /// The record, its key or its content was taken down.
    Takedown = 5,
    /// Its source (or the third party it came from) opted out (TDM reservation, robots, ...).
    SourceOptout = 6,
    /// The policy filters it out (category, visibility).
    Filtered = 7,
    /// A machine-readable opt-out signal of its source or URL was present
    /// but could not be parsed: reserved, failing closed.
    SignalUnparsable = 8,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 9] = [
        Reason::Objection,
        Reason::ConsentMissing,
        Reason::ConsentWithdrawn,
        Reason::Erasure,
        Reason::Restriction,
        Reason::Takedown,
        Reason::SourceOptout,
        Reason::Filtered,
        Reason::SignalUnparsable,
    ];
    /// Number of reasons.
    pub const COUNT: usize = 9;

    /// The snake_case name used in JSON and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Objection => "objection",
            Reason::ConsentMissing => "consent_missing",
            Reason::ConsentWithdrawn => "consent_withdrawn",
            Reason::Erasure => "erasure",
            Reason::Restriction => "restriction",
            Reason::Takedown => "takedown",
            Reason::SourceOptout => "source_optout",
            Reason::Filtered => "filtered",
            Reason::SignalUnparsable => "signal_unparsable",
        }
    }

    /// The reason with this snake_case name.
    ///
    /// ```
    /// use optout::Reason;
    /// assert_eq!(Reason::from_name("consent_withdrawn"), Some(Reason::ConsentWithdrawn));
    /// assert_eq!(Reason::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The reason with this code.
    pub fn from_code(c: u8) -> Option<Reason> {
        Reason::ALL.get(c as usize).copied()
    }
}
