//! Points in time: the valid-time clock of events (`at`), RFC 3339 in JSON.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, in nanoseconds since the Unix epoch (UTC).
///
/// Events carry the time they took effect (`at`); manifests are computed at
/// a valid time `T`: an event with `at <= T` has taken effect at `T`.
///
/// ```
/// use optout::Timestamp;
/// let t = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
/// assert_eq!(t.to_rfc3339(), "2025-06-01T00:00:00Z");
/// assert!(Timestamp::parse("yesterday").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc()).unwrap_or(Timestamp(i64::MAX))
    }

    /// Parses an RFC 3339 time such as `2024-03-01T12:00:00Z` or
    /// `2024-03-01T13:00:00.5+01:00`.
    ///
    /// A date and time without a zone (`2024-03-01T12:00:00`) is refused
    /// with an error that says so: which instant it means is not known.
    pub fn parse(s: &str) -> Result<Self, String> {
        // The value is not echoed: it may be anything a user typed into
        // the field, a subject id included.
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            if parse_naive(s).is_some() {
                "a date and time without a time zone: add a time zone (e.g. `Z`)".to_string()
            } else {
                format!("not an RFC 3339 time such as 2024-03-01T12:00:00Z ({e})")
            }
        })?;
        Self::from_datetime(dt).ok_or_else(|| "time out of range".to_string())
    }

    pub(crate) fn from_datetime(dt: OffsetDateTime) -> Option<Self> {
        i64::try_from(dt.unix_timestamp_nanos()).ok().map(Timestamp)
    }

    /// Seconds since the Unix epoch.
    pub fn from_unix_seconds(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// The RFC 3339 form in UTC (`Z`), with fractional seconds only when present.
    pub fn to_rfc3339(self) -> String {
        match OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128) {
            Ok(dt) => dt
                .format(&Rfc3339)
                .unwrap_or_else(|_| format!("@{}ns", self.0)),
            Err(_) => format!("@{}ns", self.0),
        }
    }
}

/// Serde of a [`Timestamp`] as its RFC 3339 text ([`Timestamp::to_rfc3339`],
/// parsed back with [`Timestamp::parse`]), for `#[serde(with = ...)]`.
pub(crate) mod rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `s` with a space between date and time replaced by the `T` RFC 3339
/// and ISO 8601 write there (`2024-03-01 12:00:00+01:00` is how many tools,
/// Python's `str(datetime)` among them, print a time).
pub(crate) fn with_t(s: &str) -> std::borrow::Cow<'_, str> {
    let s = s.trim();
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let mut fixed = s.to_string();
        fixed.replace_range(10..11, "T");
        std::borrow::Cow::Owned(fixed)
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// An ISO 8601 date and time without a zone: `2024-03-01T12:00:00`, with
/// optional fractional seconds, `T` or a space between date and time.
pub(crate) fn parse_naive(s: &str) -> Option<time::PrimitiveDateTime> {
    use time::macros::format_description;
    let t = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(&with_t(s), &t).ok()
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}
