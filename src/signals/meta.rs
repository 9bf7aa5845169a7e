//! HTML `<meta>` tags, as crawl metadata lists them (`{"name", "content"}`):
//! `<meta name="robots" content="noai, noimageai">` (or a bot's name
//! instead of `robots`), and TDMRep's `tdm-reservation` / `tdm-policy`.

use serde::Deserialize;

use super::headers::noai_verdict;
use super::{tdmrep, Finding};

/// One `<meta name=... content=...>` tag.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetaTag {
    /// The `name` attribute.
    pub name: String,
    /// The `content` attribute.
    pub content: String,
}

/// Findings from a page's meta tags.
pub fn findings(tags: &[MetaTag], agents: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = |t: &MetaTag| t.name.trim().to_ascii_lowercase();
    for t in tags {
        let n = name(t);
        if n == "robots" || agents.iter().any(|a| a.eq_ignore_ascii_case(&n)) {
            out.push(Finding::new(
                "noai-meta",
                format!("<meta name=\"{}\" content=\"{}\">", t.name, t.content),
                noai_verdict(&t.content, Some(&n), agents),
            ));
        }
    }
    let res: Vec<&MetaTag> = tags
        .iter()
        .filter(|t| name(t) == "tdm-reservation")
        .collect();
    let pol: Vec<&MetaTag> = tags.iter().filter(|t| name(t) == "tdm-policy").collect();
    if !res.is_empty() || !pol.is_empty() {
        let raw: Vec<String> = res
            .iter()
            .chain(&pol)
            .map(|t| format!("<meta name=\"{}\" content=\"{}\">", t.name, t.content))
            .collect();
        let p = pol.first().map(|t| t.content.as_str());
        let mut v = tdmrep::pair_verdict(res.first().map(|t| t.content.as_str()), p);
        // Several reservation tags: any valid reservation wins.
        for r in res.iter().skip(1) {
            let w = tdmrep::pair_verdict(Some(&r.content), p);
            if w.is_reserved() || (!v.is_reserved() && w.is_unparsable()) {
                v = w;
            }
        }
        out.push(Finding::new("tdmrep-meta", raw.join("\n"), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Verdict;

    fn tag(n: &str, c: &str) -> MetaTag {
        MetaTag {
            name: n.into(),
            content: c.into(),
        }
    }

    #[test]
    fn robots_and_tdm_meta() {
        let a = vec!["GPTBot".to_string()];
        let f = findings(&[tag("robots", "noai, noimageai")], &a);
        assert!(f[0].verdict.is_reserved());
        let f = findings(&[tag("GPTBot", "noai")], &a);
        assert!(f[0].verdict.is_reserved());
        assert!(findings(&[tag("googlebot", "noai")], &a).is_empty());
        let f = findings(&[tag("description", "noai")], &a);
        assert!(f.is_empty());
        let f = findings(
            &[
                tag("tdm-reservation", "1"),
                tag("tdm-policy", "https://p/x.json"),
            ],
            &a,
        );
        assert!(f[0].verdict.is_reserved());
        let f = findings(&[tag("tdm-reservation", "reserved")], &a);
        assert!(matches!(f[0].verdict, Verdict::Unparsable(_)));
        let f = findings(&[tag("tdm-reservation", "0")], &a);
        assert_eq!(f[0].verdict, Verdict::Open);
    }
}
