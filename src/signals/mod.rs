//! Machine-readable opt-out signals from the web: rights holders'
//! reservations of text-and-data mining and AI training (EU DSM Directive
//! Art. 4(3)), read from crawl metadata and turned into ledger events.
//!
//! One parser per signal: [`robots`] (RFC 9309, AI user agents, and the
//! aipref `Content-Usage:` rule), [`tdmrep`] (the W3C TDMRep well-known
//! file and its header / meta values), [`headers`] (`X-Robots-Tag: noai`,
//! TDMRep headers, the aipref `Content-Usage` header), [`meta`] (HTML
//! `<meta>`), [`aitxt`] (Spawning's ai.txt), [`aipref`] (the vocabulary),
//! [`c2pa`] (C2PA / CAWG training-mining assertions). Each gives a
//! [`Verdict`]: open, reserved, or **unparsable** — present but not
//! readable, which reserves the content too (fail closed) under its own
//! reason, [`crate::Reason::SignalUnparsable`].
//!
//! [`signals_of`] turns one crawl-metadata line into [`Signal`]s: a
//! whole-site reservation becomes a [`Scope::Domain`] signal, a path rule
//! (robots.txt, ai.txt, TDMRep `location`) a [`Scope::Url`] signal for each
//! known URL of that host it reserves, a per-resource signal (headers, meta,
//! C2PA) a [`Scope::Url`] signal for that URL. [`plan`] makes events of
//! them ([`EventKind::Signal`]) with their evidence, leaving out those
//! the ledger already holds, so a re-run adds nothing. Nothing here lifts
//! a reservation: a signal that disappears from a later crawl leaves the
//! recorded one in force. See `docs/SIGNALS.md`.

pub mod aipref;
pub mod aitxt;
pub mod c2pa;
pub mod headers;
pub mod meta;
pub mod pattern;
pub mod robots;
mod sitefile;
pub mod tdmrep;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::BufRead;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::InputError;
use crate::event::{Event, EventKind, SignalEvidence, SignalTarget};
use crate::ids::Purposes;
use crate::time::Timestamp;

pub use headers::HeaderValue;
pub use meta::MetaTag;

/// AI crawlers whose robots.txt rules count by default (training crawlers,
/// by their published product tokens).
pub const DEFAULT_AGENTS: &[&str] = &[
    "GPTBot",
    "CCBot",
    "Google-Extended",
    "ClaudeBot",
    "anthropic-ai",
    "Applebot-Extended",
    "Bytespider",
    "meta-externalagent",
    "cohere-ai",
];

/// What one signal says about what it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No reservation (absent, or explicitly allowed).
    Open,
    /// Reserved; the text says which rule or value.
    Reserved(String),
    /// Present but not readable: reserved, failing closed; the text says why.
    Unparsable(String),
}

impl Verdict {
    /// Whether it reserves (not counting unparsable).
    pub fn is_reserved(&self) -> bool {
        matches!(self, Verdict::Reserved(_))
    }
    /// Whether it could not be parsed.
    pub fn is_unparsable(&self) -> bool {
        matches!(self, Verdict::Unparsable(_))
    }
}

/// A per-resource finding: which signal, its raw value, its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Signal kind.
    pub kind: &'static str,
    /// The raw value read.
    pub raw: String,
    /// What it says.
    pub verdict: Verdict,
}

impl Finding {
    pub(crate) fn new(kind: &'static str, raw: String, verdict: Verdict) -> Finding {
        Finding { kind, raw, verdict }
    }
}

/// What a signal covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A whole host (and, as source matching goes, its subdomains).
    Domain(String),
    /// One URL (records whose `key` is exactly this URL).
    Url(String),
}

/// One reserving (or unparsable) signal, ready to become an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The signal kind: `robots`, `ai.txt`, `tdmrep`, `tdmrep-header`,
    /// `tdmrep-meta`, `noai-header`, `noai-meta`, `aipref-header`, `c2pa`.
    pub kind: &'static str,
    /// What it covers.
    pub scope: Scope,
    /// Present but unreadable (reserved, failing closed).
    pub unparsable: bool,
    /// The raw value as read (whole; the event keeps a bounded prefix and
    /// a hash). Shared by every signal read from the same file.
    pub raw: Arc<str>,
    /// Whether a site-level file's path rule decided it for one URL.
    pub path_rule: bool,
    /// Where it was read.
    pub url: String,
    /// When it was fetched.
    pub fetched_at: Timestamp,
    /// Which rule decided, or why it could not be read.
    pub detail: String,
}

/// One line of crawl metadata: a fetched URL and what came with it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlLine {
    /// The URL fetched (a page, or the site root for a domain-level line).
    pub url: String,
    /// When it was fetched (RFC 3339).
    pub fetched_at: String,
    /// The response headers of `url`.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// The text of the host's `/robots.txt`.
    pub robots_txt: Option<String>,
    /// The HTTP status `/robots.txt` answered with (default 200).
    pub robots_status: Option<u16>,
    /// The text of the host's `/.well-known/tdmrep.json`.
    pub tdmrep_json: Option<String>,
    /// The HTTP status `/.well-known/tdmrep.json` answered with (default 200).
    pub tdmrep_status: Option<u16>,
    /// The page's `<meta>` tags.
    #[serde(default)]
    pub meta: Vec<MetaTag>,
    /// The text of the host's `/ai.txt`.
    pub ai_txt: Option<String>,
    /// The HTTP status `/ai.txt` answered with (default 200).
    pub ai_txt_status: Option<u16>,
    /// An extracted C2PA manifest store of the resource (JSON, or JSON text).
    pub c2pa: Option<serde_json::Value>,
}

/// Splits an `http(s)` URL into its lowercased host (no port, no user
/// info) and its path with query (`/` when empty). `None` if it is not one.
///
/// ```
/// use optout::signals::split_url;
/// assert_eq!(split_url("https://User@News.Example.com:8443/a/b?x=1#top"),
///            Some(("news.example.com".into(), "/a/b?x=1".into())));
/// assert_eq!(split_url("post/123"), None);
/// ```
pub fn split_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    if host.is_empty() {
        return None;
    }
    let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Some((host.to_ascii_lowercase(), path))
}

/// Which agents and purposes the signals are read for.
#[derive(Clone, Debug)]
pub struct Config {
    /// AI user agents whose robots.txt rules count.
    pub agents: Vec<String>,
    /// The purposes a reservation covers (default `ai-training`).
    pub purposes: Purposes,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agents: DEFAULT_AGENTS.iter().map(|s| s.to_string()).collect(),
            purposes: Purposes::parse(&["ai-training".to_string()]).unwrap_or(Purposes::All),
        }
    }
}

/// A crawl line, validated.
#[derive(Clone, Debug)]
pub struct Crawl {
    /// The line as read.
    pub line: CrawlLine,
    /// Its host.
    pub host: String,
    /// Its path and query.
    pub path: String,
    /// Its fetch time.
    pub fetched_at: Timestamp,
}

/// Reads crawl metadata JSONL, all or nothing: a bad line stops it with
/// the file, line and field.
pub fn parse_crawl(input: impl BufRead, file: &str) -> Result<Vec<Crawl>, InputError> {
    let mut out = Vec::new();
    crate::jsonl::for_lines(input, file, |n, text| {
        let line: CrawlLine = serde_json::from_str(text)
            .map_err(|e| InputError::from_serde(file, n, &e, Some(text)))?;
        let (host, path) = split_url(&line.url).ok_or_else(|| {
            InputError::new(
                file,
                n,
                Some("url"),
                format!("{:?} is not an http(s) URL", line.url),
            )
        })?;
        let fetched_at = Timestamp::parse(&line.fetched_at)
            .map_err(|m| InputError::new(file, n, Some("fetched_at"), m))?;
        out.push(Crawl {
            line,
            host,
            path,
            fetched_at,
        });
        Ok(())
    })?;
    Ok(out)
}

/// The signals of one crawl line. `urls` are the known URLs of the line's
/// host (ledger keys and crawled URLs), for path rules.
pub fn signals_of(c: &Crawl, urls: &BTreeSet<String>, cfg: &Config) -> Vec<Signal> {
    let mut out = Vec::new();
    let agents = &cfg.agents;
    let mut push = |kind: &'static str, scope: Scope, raw: &Arc<str>, url: &str, v: Verdict| {
        let (unparsable, detail) = match v {
            Verdict::Open => return,
            Verdict::Reserved(d) => (false, d),
            Verdict::Unparsable(d) => (true, d),
        };
        let path_rule = matches!(scope, Scope::Url(_)) && url != c.line.url;
        out.push(Signal {
            kind,
            scope,
            unparsable,
            path_rule,
            raw: Arc::clone(raw),
            url: url.to_string(),
            fetched_at: c.fetched_at,
            detail,
        });
    };
    let paths: Vec<(&String, String)> = urls
        .iter()
        .filter_map(|u| {
            split_url(u)
                .filter(|(h, _)| *h == c.host)
                .map(|(_, p)| (u, p))
        })
        .collect();

    // Domain-level files with path rules.
    for f in sitefile::read(c) {
        let site = Scope::Domain(c.host.clone());
        match &f.parsed {
            Err(e) => push(f.kind, site, &f.text, &f.at, Verdict::Unparsable(e.clone())),
            Ok(r) => {
                push(f.kind, site, &f.text, &f.at, r.site(agents));
                for (u, p) in &paths {
                    let v = r.url(agents, u, p);
                    push(f.kind, Scope::Url((*u).clone()), &f.text, &f.at, v);
                }
            }
        }
    }
    // Per-resource signals, about the line's own URL.
    let me = Scope::Url(c.line.url.clone());
    for f in headers::findings(&c.line.headers, agents)
        .into_iter()
        .chain(meta::findings(&c.line.meta, agents))
    {
        push(
            f.kind,
            me.clone(),
            &Arc::from(f.raw),
            &c.line.url,
            f.verdict,
        );
    }
    if let Some(store) = &c.line.c2pa {
        let raw = match store {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        push(
            "c2pa",
            me.clone(),
            &Arc::from(raw),
            &c.line.url,
            c2pa::verdict(store),
        );
    }
    out
}

/// What [`plan`] found and will record.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Every reserving or unparsable signal found.
    pub signals: Vec<Signal>,
    /// The events to record (signals not already in the ledger).
    pub events: Vec<Event>,
    /// Signals left out because the ledger (or this run) already holds them.
    pub already_recorded: usize,
    /// URLs evaluated against path rules.
    pub urls_evaluated: usize,
}

/// What makes two signal events the same reservation: the fetch time does
/// not (a later crawl of the same robots.txt adds nothing).
type Identity = (SignalTarget, bool, String, [u8; 32], String);

fn identity(e: &Event) -> Option<Identity> {
    match &e.kind {
        EventKind::Signal {
            target,
            purposes,
            unparsable,
            evidence,
        } => Some((
            target.clone(),
            *unparsable,
            evidence.kind.clone(),
            evidence.raw_blake3,
            purposes.names().join(","),
        )),
        _ => None,
    }
}

/// Turns crawl lines into events. `keys` are the record keys the ledger
/// knows (URLs among them are evaluated against path rules), `existing`
/// its events (signals already recorded are left out).
pub fn plan<'a>(
    crawl: &[Crawl],
    keys: impl IntoIterator<Item = &'a str>,
    existing: impl IntoIterator<Item = &'a Event>,
    cfg: &Config,
) -> Plan {
    let mut by_host: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in keys {
        if let Some((h, _)) = split_url(k) {
            by_host.entry(h).or_default().insert(k.to_string());
        }
    }
    for c in crawl {
        by_host
            .entry(c.host.clone())
            .or_default()
            .insert(c.line.url.clone());
    }
    let mut seen: HashSet<Identity> = existing.into_iter().filter_map(identity).collect();
    let mut p = Plan {
        urls_evaluated: by_host.values().map(BTreeSet::len).sum(),
        ..Plan::default()
    };
    let empty = BTreeSet::new();
    // Site-level files whose text an event of this run already carries.
    let mut full_text: HashSet<(&'static str, String)> = HashSet::new();
    for c in crawl {
        let urls = by_host.get(&c.host).unwrap_or(&empty);
        for s in signals_of(c, urls, cfg) {
            let e = Event {
                at: s.fetched_at,
                reference: None,
                kind: EventKind::Signal {
                    target: match &s.scope {
                        Scope::Domain(d) => SignalTarget::Source(d.clone()),
                        Scope::Url(u) => SignalTarget::Key(u.clone()),
                    },
                    purposes: cfg.purposes.clone(),
                    unparsable: s.unparsable,
                    evidence: if !s.path_rule || full_text.insert((s.kind, s.url.clone())) {
                        SignalEvidence::new(
                            s.kind,
                            &s.url,
                            s.fetched_at,
                            &s.raw,
                            Some(s.detail.clone()),
                        )
                    } else {
                        // The file's text is in the first event from it;
                        // this one names the deciding rule and the file's hash.
                        SignalEvidence::excerpt(
                            s.kind,
                            &s.url,
                            s.fetched_at,
                            &s.raw,
                            "",
                            Some(s.detail.clone()),
                        )
                    },
                },
            };
            if identity(&e).is_some_and(|id| seen.insert(id)) {
                p.events.push(e);
            } else {
                p.already_recorded += 1;
            }
            p.signals.push(s);
        }
    }
    p
}
