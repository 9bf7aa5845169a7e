//! Per-resource HTTP response headers: `X-Robots-Tag` (`noai`,
//! `noimageai`), TDMRep `tdm-reservation` / `tdm-policy`, and the aipref
//! `Content-Usage` header.
//!
//! Header names are matched case-insensitively; a header sent several times
//! is a JSON array of its values.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{aipref, tdmrep, Finding, Verdict};

/// A header's value(s) as crawl metadata gives them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum HeaderValue {
    /// Sent once.
    One(String),
    /// Sent several times.
    Many(Vec<String>),
}

impl HeaderValue {
    fn values(&self) -> Vec<&str> {
        match self {
            HeaderValue::One(s) => vec![s.as_str()],
            HeaderValue::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Every value of header `name` (case-insensitive).
pub fn get<'a>(headers: &'a BTreeMap<String, HeaderValue>, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.values())
        .collect()
}

/// Directives that take a `name: value` form and are not user agents.
const VALUED: &[&str] = &[
    "unavailable_after",
    "max-snippet",
    "max-image-preview",
    "max-video-preview",
];

/// The `noai` verdict of a robots directive list (`X-Robots-Tag` or a
/// robots `<meta>`), for the AI `agents`. `agent` is the meta tag's name
/// when it names one bot. A directive list may start with `botname:`,
/// which then applies to the directives after it. A token that mentions
/// `noai` / `noimageai` without being exactly that directive is
/// unparsable (the publisher meant something we cannot read).
pub fn noai_verdict(value: &str, agent: Option<&str>, agents: &[String]) -> Verdict {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Verdict::Unparsable(format!("control characters in {value:?}"));
    }
    let applies = |a: Option<&str>| {
        a.is_none_or(|a| a == "robots" || agents.iter().any(|x| x.eq_ignore_ascii_case(a)))
    };
    let mut current = agent.map(|a| a.trim().to_ascii_lowercase());
    for tok in value.split(',') {
        let mut t = tok.trim().to_ascii_lowercase();
        if let Some((pre, rest)) = t.split_once(':') {
            let pre = pre.trim();
            if !VALUED.contains(&pre) && !pre.is_empty() && !rest.trim().is_empty() {
                current = Some(pre.to_string());
                t = rest.trim().to_string();
            }
        }
        if t == "noai" || t == "noimageai" {
            if applies(current.as_deref()) {
                return Verdict::Reserved(format!(
                    "{t}{}",
                    current
                        .as_deref()
                        .map(|a| format!(" for {a}"))
                        .unwrap_or_default()
                ));
            }
        } else if (t.contains("noai") || t.contains("noimageai")) && applies(current.as_deref()) {
            return Verdict::Unparsable(format!("cannot read directive {:?}", tok.trim()));
        }
    }
    Verdict::Open
}

/// Findings from a resource's response headers.
pub fn findings(headers: &BTreeMap<String, HeaderValue>, agents: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in get(headers, "x-robots-tag") {
        out.push(Finding::new(
            "noai-header",
            format!("X-Robots-Tag: {v}"),
            noai_verdict(v, None, agents),
        ));
    }
    let res = get(headers, "tdm-reservation");
    let pol = get(headers, "tdm-policy");
    if res.len() > 1 || pol.len() > 1 {
        let raw = format!("tdm-reservation: {res:?}; tdm-policy: {pol:?}");
        // Conflicting repeated headers: any reservation wins, else unreadable.
        let verdicts: Vec<Verdict> = res
            .iter()
            .map(|r| tdmrep::pair_verdict(Some(r), pol.first().copied()))
            .collect();
        let v = verdicts
            .iter()
            .find(|v| v.is_reserved())
            .cloned()
            .unwrap_or(Verdict::Unparsable(
                "tdm headers sent more than once".into(),
            ));
        out.push(Finding::new("tdmrep-header", raw, v));
    } else if !res.is_empty() || !pol.is_empty() {
        let mut raw = Vec::new();
        if let Some(r) = res.first() {
            raw.push(format!("tdm-reservation: {r}"));
        }
        if let Some(p) = pol.first() {
            raw.push(format!("tdm-policy: {p}"));
        }
        out.push(Finding::new(
            "tdmrep-header",
            raw.join("\n"),
            tdmrep::pair_verdict(res.first().copied(), pol.first().copied()),
        ));
    }
    let cu = get(headers, "content-usage");
    if !cu.is_empty() {
        // Repeated structured-field lines combine as one comma-separated list.
        let joined = cu.join(", ");
        let v = match aipref::parse(&joined) {
            Err(e) => Verdict::Unparsable(e),
            Ok(p) if p.reserves_training() => Verdict::Reserved(format!("Content-Usage: {joined}")),
            Ok(_) => Verdict::Open,
        };
        out.push(Finding::new(
            "aipref-header",
            format!("Content-Usage: {joined}"),
            v,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Vec<String> {
        vec!["GPTBot".into(), "CCBot".into()]
    }

    fn h(pairs: &[(&str, &str)]) -> BTreeMap<String, HeaderValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), HeaderValue::One(v.to_string())))
            .collect()
    }

    #[test]
    fn noai_directives() {
        let a = agents();
        assert!(noai_verdict("noai, noimageai", None, &a).is_reserved());
        assert!(noai_verdict("noindex, NoAI", None, &a).is_reserved());
        assert!(noai_verdict("gptbot: noai", None, &a).is_reserved());
        assert_eq!(noai_verdict("googlebot: noai", None, &a), Verdict::Open);
        assert_eq!(
            noai_verdict("noindex, nofollow, max-snippet: 20", None, &a),
            Verdict::Open
        );
        assert!(matches!(
            noai_verdict("noai=1", None, &a),
            Verdict::Unparsable(_)
        ));
        assert!(matches!(
            noai_verdict("noai\u{7}", None, &a),
            Verdict::Unparsable(_)
        ));
    }

    #[test]
    fn header_findings() {
        let f = findings(
            &h(&[("TDM-Reservation", "1"), ("tdm-policy", "https://x/p.json")]),
            &agents(),
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].verdict.is_reserved());
        let f = findings(&h(&[("tdm-reservation", "true")]), &agents());
        assert!(matches!(f[0].verdict, Verdict::Unparsable(_)));
        let f = findings(&h(&[("Content-Usage", "train-ai=n")]), &agents());
        assert!(f[0].verdict.is_reserved());
        let f = findings(&h(&[("content-type", "text/html")]), &agents());
        assert!(f.is_empty());
        let mut many = BTreeMap::new();
        many.insert(
            "tdm-reservation".to_string(),
            HeaderValue::Many(vec!["0".into(), "1".into()]),
        );
        assert!(findings(&many, &agents())[0].verdict.is_reserved());
    }
}
