//! The site-level files with path rules — robots.txt, ai.txt and TDMRep's
//! `/.well-known/tdmrep.json` — behind one trait, read from a crawl line
//! the same way: a verdict for the whole site (a [`super::Scope::Domain`]
//! signal) and one per known URL of the host (a [`super::Scope::Url`]
//! signal).

use std::sync::Arc;

use super::aitxt::AiTxt;
use super::robots::Robots;
use super::tdmrep::{self, TdmFile};
use super::{Crawl, Verdict};

/// A parsed site-level file with path rules.
pub(crate) trait SiteFile {
    /// What it says about the whole site.
    fn site(&self, agents: &[String]) -> Verdict;
    /// What it says about one URL of the site (`path`: its path and query).
    fn url(&self, agents: &[String], url: &str, path: &str) -> Verdict;
}

impl SiteFile for Robots {
    fn site(&self, agents: &[String]) -> Verdict {
        self.site_verdict(agents)
    }
    fn url(&self, agents: &[String], url: &str, path: &str) -> Verdict {
        self.verdict(agents, url, path)
    }
}

impl SiteFile for AiTxt {
    fn site(&self, agents: &[String]) -> Verdict {
        self.site_verdict(agents)
    }
    fn url(&self, agents: &[String], url: &str, path: &str) -> Verdict {
        self.verdict(agents, url, path)
    }
}

impl SiteFile for TdmFile {
    fn site(&self, _: &[String]) -> Verdict {
        self.site_verdict()
    }
    fn url(&self, _: &[String], _: &str, path: &str) -> Verdict {
        self.verdict(path)
    }
}

/// What reading a site file's text gives: `None`, no file (a 4xx status);
/// else the file or why it could not be read.
type Parsed = Option<Result<Box<dyn SiteFile>, String>>;

/// One site-level file a crawl line carries.
pub(crate) struct Read {
    /// The signal kind (`robots`, `ai.txt`, `tdmrep`).
    pub kind: &'static str,
    /// Where it lives (`SCHEME://HOST/robots.txt`, ...).
    pub at: String,
    /// Its text, shared by every signal read from it.
    pub text: Arc<str>,
    /// The file, or why it could not be read (a whole-site unparsable signal).
    pub parsed: Result<Box<dyn SiteFile>, String>,
}

/// The site-level files of a crawl line, in the order their signals are
/// made: robots.txt, ai.txt, tdmrep.json. A file fetched with a 4xx status
/// is absent.
pub(crate) fn read(c: &Crawl) -> Vec<Read> {
    let l = &c.line;
    let mut out = Vec::new();
    let mut add = |kind, file, text: &Option<String>, parse: &dyn Fn(&str) -> Parsed| {
        if let Some(t) = text {
            let text: Arc<str> = Arc::from(t.as_str());
            if let Some(parsed) = parse(&text) {
                out.push(Read {
                    kind,
                    at: origin_url(c, file),
                    text,
                    parsed,
                });
            }
        }
    };
    add("robots", "/robots.txt", &l.robots_txt, &|t| {
        Robots::parse(t, l.robots_status).map(|r| Ok(Box::new(r) as Box<dyn SiteFile>))
    });
    add("ai.txt", "/ai.txt", &l.ai_txt, &|t| {
        AiTxt::parse(t, l.ai_txt_status).map(|r| Ok(Box::new(r) as Box<dyn SiteFile>))
    });
    add("tdmrep", "/.well-known/tdmrep.json", &l.tdmrep_json, &|t| {
        let status = l.tdmrep_status.unwrap_or(200);
        if (400..500).contains(&status) {
            None
        } else if status >= 300 {
            Some(Err(format!("tdmrep.json answered HTTP {status}")))
        } else {
            Some(tdmrep::parse_file(t).map(|f| Box::new(f) as Box<dyn SiteFile>))
        }
    });
    out
}

fn origin_url(c: &Crawl, file: &str) -> String {
    let scheme = c
        .line
        .url
        .split("://")
        .next()
        .unwrap_or("https")
        .to_ascii_lowercase();
    format!("{scheme}://{}{file}", c.host)
}
