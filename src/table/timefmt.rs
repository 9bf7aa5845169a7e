//! Times in tables: timestamp columns of any unit, with or without a zone,
//! and text columns in RFC 3339 or a `time` format description, with the
//! mapping's default zone for values that carry none.

use time::format_description::OwnedFormatItem;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::time::{parse_naive, with_t, Timestamp};

/// How a mapping reads times: its `time_format` and `default_zone`.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimeSpec {
    /// A `time` format description (`[year]-[month]-[day] [hour]:[minute]`),
    /// used instead of RFC 3339 for text columns.
    format: Option<OwnedFormatItem>,
    /// The zone of times written without one; without it such a time is an error.
    zone: Option<UtcOffset>,
}

/// The hint every "no zone" error ends with.
const ADD_ZONE: &str =
    "add a time zone (e.g. `Z`), or give the mapping a \"default_zone\" such as \"Z\" or \"+01:00\"";

impl TimeSpec {
    /// From the mapping's `time_format` and `default_zone` (errors name the key).
    pub(crate) fn new(
        format: Option<&str>,
        zone: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let format = match format {
            Some(f) => Some(time::format_description::parse_owned::<2>(f).map_err(|e| {
                (
                    "time_format",
                    format!("not a `time` format description ({e}), e.g. \"[year]-[month]-[day] [hour]:[minute]:[second]\""),
                )
            })?),
            None => None,
        };
        let zone = match zone {
            Some(z) => Some(parse_zone(z).ok_or_else(|| {
                (
                    "default_zone",
                    format!("{z:?} is not a fixed offset: use \"Z\", \"UTC\" or \"+HH:MM\" / \"-HH:MM\""),
                )
            })?),
            None => None,
        };
        Ok(TimeSpec { format, zone })
    }

    /// A text time: by the format description if the mapping has one, else
    /// RFC 3339 (a space may stand for the `T`). A time without a zone takes
    /// the default zone, or is an error saying to add one.
    pub(crate) fn parse_text(&self, s: &str) -> Result<Timestamp, String> {
        let s = s.trim();
        if let Some(f) = &self.format {
            if let Ok(dt) = OffsetDateTime::parse(s, f) {
                return instant(dt, s);
            }
            let naive =
                PrimitiveDateTime::parse(s, f).or_else(|_| Date::parse(s, f).map(|d| d.midnight()));
            return match naive {
                Ok(dt) => self.local(dt, s),
                Err(e) => Err(format!(
                    "{s:?} does not match the mapping's time_format ({e})"
                )),
            };
        }
        let text = with_t(s);
        match Timestamp::parse(&text) {
            Ok(t) => Ok(t),
            Err(e) => match parse_naive(&text) {
                Some(dt) => self.local(dt, s),
                None => Err(e),
            },
        }
    }

    /// A timestamp column's value: `v` in `unit_ns` nanoseconds since the
    /// epoch; with `zoned` false it is a wall-clock time in an unknown zone.
    pub(crate) fn timestamp_value(
        &self,
        v: i64,
        unit_ns: i64,
        zoned: bool,
    ) -> Result<Timestamp, String> {
        let ns = v
            .checked_mul(unit_ns)
            .ok_or_else(|| "timestamp out of range".to_string())?;
        if zoned {
            return Ok(Timestamp(ns));
        }
        match self.zone {
            Some(z) => ns
                .checked_sub(i64::from(z.whole_seconds()) * 1_000_000_000)
                .map(Timestamp)
                .ok_or_else(|| "timestamp out of range".to_string()),
            None => Err(format!(
                "a timestamp column without a time zone: {ADD_ZONE}"
            )),
        }
    }

    fn local(&self, dt: PrimitiveDateTime, s: &str) -> Result<Timestamp, String> {
        match self.zone {
            Some(z) => instant(dt.assume_offset(z), s),
            None => Err(format!("{s:?} has no time zone: {ADD_ZONE}")),
        }
    }
}

fn instant(dt: OffsetDateTime, s: &str) -> Result<Timestamp, String> {
    Timestamp::from_datetime(dt).ok_or_else(|| format!("time out of range: {s:?}"))
}

fn parse_zone(z: &str) -> Option<UtcOffset> {
    let z = z.trim();
    if z == "Z" || z.eq_ignore_ascii_case("utc") {
        return Some(UtcOffset::UTC);
    }
    let f = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(z, &f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_times_with_and_without_zones() {
        let plain = TimeSpec::default();
        let t = Timestamp::parse("2024-03-01T12:00:00Z").unwrap();
        assert_eq!(plain.parse_text("2024-03-01 12:00:00+00:00"), Ok(t));
        assert_eq!(plain.parse_text("2024-03-01T13:00:00+01:00"), Ok(t));
        let e = plain.parse_text("2024-03-01T12:00:00").unwrap_err();
        assert!(e.contains("add a time zone (e.g. `Z`)"), "{e}");
        let cet = TimeSpec::new(None, Some("+01:00")).unwrap();
        assert_eq!(cet.parse_text("2024-03-01 13:00:00"), Ok(t));
        let us = TimeSpec::new(Some("[month]/[day]/[year] [hour]:[minute]"), Some("Z")).unwrap();
        assert_eq!(us.parse_text("03/01/2024 12:00"), Ok(t));
        let day = TimeSpec::new(Some("[day].[month].[year]"), Some("Z")).unwrap();
        assert_eq!(
            day.parse_text("01.03.2024").unwrap().to_rfc3339(),
            "2024-03-01T00:00:00Z"
        );
        assert!(TimeSpec::new(None, Some("Europe/Amsterdam")).is_err());
        assert!(TimeSpec::new(Some("[nonsense"), None).is_err());
    }

    #[test]
    fn timestamp_units_and_zones() {
        let plain = TimeSpec::default();
        assert_eq!(
            plain.timestamp_value(1_700_000_000, 1_000_000_000, true),
            Ok(Timestamp(1_700_000_000_000_000_000))
        );
        assert!(plain
            .timestamp_value(1, 1, false)
            .unwrap_err()
            .contains("add a time zone"));
        let cet = TimeSpec::new(None, Some("+01:00")).unwrap();
        assert_eq!(
            cet.timestamp_value(3_600, 1_000_000_000, false),
            Ok(Timestamp(0))
        );
        assert!(plain.timestamp_value(i64::MAX, 1_000, true).is_err());
    }
}
