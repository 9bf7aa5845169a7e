//! TDMRep (W3C TDM Reservation Protocol, community group final report):
//! `tdm-reservation` (`0` or `1`) and `tdm-policy` (a URL), in
//! `/.well-known/tdmrep.json`, in HTTP headers and in HTML `<meta>`.
//!
//! The well-known file is a JSON array of rules
//! `{"location": "/images/*", "tdm-reservation": 1, "tdm-policy": "https://..."}`;
//! `location` is a path pattern (`*` wildcard, final `$`). For a resource,
//! the longest matching location applies; among equally long ones a
//! reservation wins (fail closed). The report processes the file first,
//! then headers, then meta; since a reservation by any of them reserves the
//! resource here, the order only decides which evidence is shown first.
//! A `tdm-reservation: 0` never lifts a reservation made by another
//! technique or another signal.
//!
//! `tdm-reservation: 1` with a `tdm-policy` means "licensable under this
//! policy": reserved unless a license is acquired, so reserved here (the
//! policy URL is kept in the evidence).

use serde_json::Value;

use super::pattern;
use super::Verdict;

/// One rule of a `tdmrep.json` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The location pattern.
    pub location: String,
    /// Whether TDM rights are reserved.
    pub reserved: bool,
    /// The policy URL, if any.
    pub policy: Option<String>,
}

/// Parses a `tdm-reservation` value (header or meta): `0` or `1`.
pub fn parse_reservation(v: &str) -> Result<bool, String> {
    match v.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(format!("tdm-reservation must be 0 or 1, got {other:?}")),
    }
}

/// The verdict of a `tdm-reservation` / `tdm-policy` pair (from headers or meta).
pub fn pair_verdict(reservation: Option<&str>, policy: Option<&str>) -> Verdict {
    match (reservation, policy) {
        (None, None) => Verdict::Open,
        (None, Some(p)) => Verdict::Unparsable(format!("tdm-policy {p:?} without tdm-reservation")),
        (Some(r), p) => match parse_reservation(r) {
            Err(e) => Verdict::Unparsable(e),
            Ok(false) => Verdict::Open,
            Ok(true) => Verdict::Reserved(match p {
                Some(p) => format!("tdm-reservation: 1, tdm-policy: {p}"),
                None => "tdm-reservation: 1".into(),
            }),
        },
    }
}

/// A parsed `/.well-known/tdmrep.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdmFile {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// Parses the text of a `tdmrep.json` file.
///
/// ```
/// use optout::signals::tdmrep;
/// let f = tdmrep::parse_file(r#"[{"location":"/news/*","tdm-reservation":1}]"#).unwrap();
/// assert!(f.verdict("/news/a.html").is_reserved());
/// assert!(!f.verdict("/about").is_reserved());
/// assert!(tdmrep::parse_file(r#"[{"location":"/","tdm-reservation":"yes"}]"#).is_err());
/// ```
pub fn parse_file(text: &str) -> Result<TdmFile, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("tdmrep.json is not JSON: {e}"))?;
    let arr = v
        .as_array()
        .ok_or("tdmrep.json must be a JSON array of rules")?;
    let mut rules = Vec::with_capacity(arr.len());
    for (i, r) in arr.iter().enumerate() {
        let o = r
            .as_object()
            .ok_or_else(|| format!("rule {i}: not an object"))?;
        let location = o
            .get("location")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("rule {i}: location missing or not a string"))?;
        let reserved = match o.get("tdm-reservation") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
            Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
            Some(x) => return Err(format!("rule {i}: tdm-reservation must be 0 or 1, got {x}")),
            None => return Err(format!("rule {i}: tdm-reservation missing")),
        };
        let policy = match o.get("tdm-policy") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(x) => {
                return Err(format!(
                    "rule {i}: tdm-policy must be a URL string, got {x}"
                ))
            }
        };
        // A location is a path pattern; tolerate a missing leading slash.
        let location = if location.starts_with('/') || location.starts_with('*') {
            location.to_string()
        } else {
            format!("/{location}")
        };
        rules.push(Rule {
            location,
            reserved,
            policy,
        });
    }
    Ok(TdmFile { rules })
}

impl TdmFile {
    fn describe(r: &Rule) -> String {
        match &r.policy {
            Some(p) => format!(
                "location {:?}: tdm-reservation {}, tdm-policy {p}",
                r.location, r.reserved as u8
            ),
            None => format!(
                "location {:?}: tdm-reservation {}",
                r.location, r.reserved as u8
            ),
        }
    }

    /// The decision for a path: the longest matching location (a
    /// reservation wins a tie).
    pub fn verdict(&self, path: &str) -> Verdict {
        let best = self
            .rules
            .iter()
            .filter(|r| pattern::matches(&r.location, path))
            .max_by_key(|r| (pattern::specificity(&r.location), r.reserved));
        match best {
            Some(r) if r.reserved => Verdict::Reserved(Self::describe(r)),
            _ => Verdict::Open,
        }
    }

    /// Whether every path is reserved: a catch-all reserving rule and no
    /// rule that does not reserve.
    pub fn site_verdict(&self) -> Verdict {
        let all = self
            .rules
            .iter()
            .find(|r| r.reserved && pattern::is_catch_all(&r.location));
        match all {
            Some(r) if self.rules.iter().all(|x| x.reserved) => {
                Verdict::Reserved(Self::describe(r))
            }
            _ => Verdict::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_location_wins_and_ties_reserve() {
        let f = parse_file(
            r#"[{"location":"/*","tdm-reservation":1,"tdm-policy":"https://pub.example/policy.json"},
                {"location":"/open-access/*","tdm-reservation":0},
                {"location":"/open-access/embargo/","tdm-reservation":1}]"#,
        )
        .unwrap();
        assert!(f.verdict("/articles/1").is_reserved());
        assert!(!f.verdict("/open-access/paper.pdf").is_reserved());
        assert!(f.verdict("/open-access/embargo/x").is_reserved());
        assert_eq!(f.site_verdict(), Verdict::Open);
        let tie = parse_file(
            r#"[{"location":"/a*","tdm-reservation":0},{"location":"/*b","tdm-reservation":1}]"#,
        )
        .unwrap();
        assert!(tie.verdict("/ab").is_reserved());
        let all = parse_file(r#"[{"location":"/","tdm-reservation":1}]"#).unwrap();
        assert!(all.site_verdict().is_reserved());
    }

    #[test]
    fn malformed_files_and_values() {
        for bad in [
            "",
            "{}",
            r#"[{"tdm-reservation":1}]"#,
            r#"[{"location":"/","tdm-reservation":2}]"#,
            r#"[{"location":"/","tdm-reservation":true}]"#,
            r#"[{"location":"/","tdm-reservation":1,"tdm-policy":5}]"#,
            "<html>404</html>",
        ] {
            assert!(parse_file(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            pair_verdict(Some("yes"), None),
            Verdict::Unparsable(_)
        ));
        assert!(matches!(
            pair_verdict(None, Some("https://x")),
            Verdict::Unparsable(_)
        ));
        assert_eq!(pair_verdict(Some(" 0 "), None), Verdict::Open);
        assert!(pair_verdict(Some("1"), Some("https://x/p.json")).is_reserved());
    }
}
