//! robots.txt (RFC 9309) for AI user agents, plus the aipref
//! `Content-Usage:` rule inside its groups.
//!
//! Allow/Disallow decisions come from the `robotstxt` crate, a port of
//! Google's robots.txt parser and matcher (the reference implementation
//! RFC 9309 was written from): longest match wins, Allow wins a tie, `*`
//! and a final `$`, groups for the same user agent merged, user agents
//! matched by product token, case-insensitively, falling back to `*`. Its
//! parse callbacks also give us the groups, from which we decide whether a
//! whole site is reserved (so records registered later are covered too)
//! and read `Content-Usage` rules, which the crate does not know.
//!
//! Fail closed: a robots.txt served with a 5xx status (RFC 9309 §2.3.1.4:
//! "assume complete disallow"), one that is an HTML page or binary, or a
//! panic inside the parser, is unparsable. A 4xx status means no robots.txt.

use std::cell::OnceCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use robotstxt::{DefaultMatcher, RobotsParseHandler};

use super::aipref;
use super::pattern;
use super::Verdict;

/// One group: its user agents (product tokens, lowercased) and its rules.
#[derive(Clone, Debug, Default)]
struct Group {
    agents: Vec<String>,
    /// The `User-agent` values as written.
    raw_agents: Vec<String>,
    rules: Vec<(bool, String, u32)>,
    usage: Vec<Usage>,
}

/// A `Content-Usage:` rule: optional path pattern, then preferences.
#[derive(Clone, Debug)]
struct Usage {
    path: String,
    prefs: Result<aipref::Prefs, String>,
    raw: String,
    line: u32,
}

#[derive(Default)]
struct Collect {
    groups: Vec<Group>,
    /// `Content-Usage` lines before any user-agent line: applied to everyone.
    global_usage: Vec<Usage>,
    in_agents: bool,
}

impl Collect {
    fn current(&mut self) -> Option<&mut Group> {
        self.groups.last_mut()
    }
}

fn product_token(ua: &str) -> String {
    let ua = ua.trim();
    if ua.starts_with('*') {
        return "*".into();
    }
    let end = ua
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-' || c == '_'))
        .unwrap_or(ua.len());
    ua[..end].to_ascii_lowercase()
}

impl RobotsParseHandler for Collect {
    fn handle_robots_start(&mut self) {}
    fn handle_robots_end(&mut self) {}
    fn handle_user_agent(&mut self, _line: u32, ua: &str) {
        if !self.in_agents {
            self.groups.push(Group::default());
            self.in_agents = true;
        }
        let t = product_token(ua);
        if let Some(g) = self.current() {
            g.agents.push(t);
            g.raw_agents.push(ua.trim().to_string());
        }
    }
    fn handle_allow(&mut self, line: u32, value: &str) {
        self.in_agents = false;
        if let Some(g) = self.current() {
            g.rules.push((true, value.trim().to_string(), line));
        }
    }
    fn handle_disallow(&mut self, line: u32, value: &str) {
        self.in_agents = false;
        if let Some(g) = self.current() {
            g.rules.push((false, value.trim().to_string(), line));
        }
    }
    fn handle_sitemap(&mut self, _line: u32, _value: &str) {}
    fn handle_unknown_action(&mut self, line: u32, action: &str, value: &str) {
        if !action.trim().eq_ignore_ascii_case("content-usage") {
            return;
        }
        self.in_agents = false;
        let v = value.trim();
        let (path, prefs) = match v.split_once(char::is_whitespace) {
            Some((p, rest)) if p.starts_with('/') || p.starts_with('*') => (p, rest.trim()),
            _ => ("/", v),
        };
        let u = Usage {
            path: path.to_string(),
            prefs: aipref::parse(prefs),
            raw: format!("Content-Usage: {v}"),
            line,
        };
        match self.groups.last_mut() {
            Some(g) => g.usage.push(u),
            None => self.global_usage.push(u),
        }
    }
}

/// A parsed robots.txt.
#[derive(Debug)]
pub struct Robots {
    text: String,
    groups: Vec<Group>,
    global_usage: Vec<Usage>,
    /// Set when the file as a whole cannot be used.
    broken: Option<String>,
    /// What every URL's decision needs for one agent list, computed once
    /// (a run evaluates thousands of URLs against the same file).
    prepared: OnceCell<Prepared>,
}

/// Per agent list: the agents the matcher is asked about and the
/// `Content-Usage` rules that bind any of them.
#[derive(Debug)]
struct Prepared {
    agents: Vec<String>,
    reps: Vec<String>,
    usage: Vec<Usage>,
    /// The file cut down to the groups that can bind these agents (their
    /// own groups and the `*` ones): what the matcher re-parses per URL.
    /// The matcher's answer for these agents is the same on it as on the
    /// whole file (tests/signals.rs checks this against the whole file).
    reduced: String,
}

impl Robots {
    /// Parses `text`, fetched with HTTP `status` (200 if unknown). `None`
    /// when there is no robots.txt (a 4xx status).
    pub fn parse(text: &str, status: Option<u16>) -> Option<Robots> {
        let status = status.unwrap_or(200);
        if (400..500).contains(&status) {
            return None;
        }
        let mut broken = None;
        if status >= 500 {
            broken = Some(format!(
                "robots.txt answered HTTP {status}: RFC 9309 requires assuming complete disallow"
            ));
        } else if !(200..300).contains(&status) {
            broken = Some(format!("robots.txt answered HTTP {status}"));
        } else if text.contains('\0') || text.contains('\u{FFFD}') {
            broken = Some("robots.txt is binary or not valid UTF-8".into());
        } else if text.trim_start().starts_with('<') {
            broken = Some("robots.txt is an HTML or XML document, not robots rules".into());
        }
        let mut c = Collect::default();
        if broken.is_none()
            && catch_unwind(AssertUnwindSafe(|| {
                robotstxt::parse_robotstxt(text, &mut c)
            }))
            .is_err()
        {
            broken = Some("robots.txt parser failed on this input".into());
        }
        Some(Robots {
            text: text.to_string(),
            groups: c.groups,
            global_usage: c.global_usage,
            broken,
            prepared: OnceCell::new(),
        })
    }

    /// Why the file cannot be used, if it cannot.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The groups that apply to `agent` (RFC 9309 §2.2.1): those naming its
    /// product token, merged; else those for `*`.
    fn groups_for(&self, agent: &str) -> Vec<&Group> {
        let t = product_token(agent);
        let own: Vec<&Group> = self
            .groups
            .iter()
            .filter(|g| g.agents.contains(&t))
            .collect();
        if !own.is_empty() {
            return own;
        }
        self.groups
            .iter()
            .filter(|g| g.agents.iter().any(|a| a == "*"))
            .collect()
    }

    /// The agents worth asking the matcher about: those with groups of
    /// their own, and one of those without (they all read the `*` groups,
    /// so they all get the same answer). The matcher parses the whole file
    /// on every call, so this bounds the work per URL by the groups, not
    /// by the length of the agent list.
    fn representatives(&self, agents: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut star = false;
        for a in agents {
            let t = product_token(a);
            if self.groups.iter().any(|g| g.agents.contains(&t)) {
                out.push(a.clone());
            } else if !star {
                star = true;
                out.push(a.clone());
            }
        }
        out
    }

    /// Whether `agent` may fetch `url` (the crate's RFC 9309 matcher).
    /// `None` if the matcher failed.
    pub fn allowed(&self, agent: &str, url: &str) -> Option<bool> {
        catch_unwind(AssertUnwindSafe(|| {
            DefaultMatcher::default().one_agent_allowed_by_robots(&self.text, agent, url)
        }))
        .ok()
    }

    fn allowed_in(text: &str, agent: &str, url: &str) -> Option<bool> {
        catch_unwind(AssertUnwindSafe(|| {
            DefaultMatcher::default().one_agent_allowed_by_robots(text, agent, url)
        }))
        .ok()
    }

    /// The decision for `url` (full URL; `path` its path and query) over
    /// the AI `agents`: reserved if any of them is disallowed, or any
    /// applicable `Content-Usage` rule reserves training.
    pub fn verdict(&self, agents: &[String], url: &str, path: &str) -> Verdict {
        if let Some(b) = &self.broken {
            return Verdict::Unparsable(b.clone());
        }
        let owned;
        let mut prep = self.prepared.get_or_init(|| self.prepare(agents));
        if prep.agents != agents {
            owned = self.prepare(agents);
            prep = &owned;
        }
        for a in &prep.reps {
            match Self::allowed_in(&prep.reduced, a, url) {
                None => return Verdict::Unparsable("robots.txt matcher failed".into()),
                Some(false) => {
                    let rule = self
                        .groups_for(a)
                        .iter()
                        .flat_map(|g| &g.rules)
                        .filter(|(allow, p, _)| {
                            !allow && !p.is_empty() && pattern::matches(p, path)
                        })
                        .max_by_key(|(_, p, _)| pattern::specificity(p))
                        .map(|(_, p, l)| format!(" (line {l}: Disallow: {p})"))
                        .unwrap_or_default();
                    return Verdict::Reserved(format!("{a} disallowed{rule}"));
                }
                Some(true) => {}
            }
        }
        Self::usage_verdict(prep.usage.iter().collect(), Some(path))
    }

    fn prepare(&self, agents: &[String]) -> Prepared {
        let mut usage: Vec<Usage> = self.global_usage.clone();
        // Sets, not lists: `--agent` may be repeated many times, and a
        // robots.txt may have many groups.
        let mut seen: std::collections::HashSet<*const Group> = std::collections::HashSet::new();
        for a in agents {
            for g in self.groups_for(a) {
                if seen.insert(g as *const Group) {
                    usage.extend(g.usage.iter().cloned());
                }
            }
        }
        let tokens: std::collections::HashSet<String> =
            agents.iter().map(|a| product_token(a)).collect();
        let mut reduced = String::new();
        for g in &self.groups {
            if !g.agents.iter().any(|a| a == "*" || tokens.contains(a)) {
                continue;
            }
            for ua in &g.raw_agents {
                reduced += &format!("User-agent: {ua}\n");
            }
            for (allow, p, _) in &g.rules {
                reduced += &format!("{}: {p}\n", if *allow { "Allow" } else { "Disallow" });
            }
            reduced.push('\n');
        }
        Prepared {
            agents: agents.to_vec(),
            reps: self.representatives(agents),
            usage,
            reduced,
        }
    }

    /// Whether the whole site is reserved for some AI agent: its groups
    /// disallow everything (`/`, `*`, `/*`) and allow nothing; or a
    /// `Content-Usage` rule for the whole site reserves training.
    pub fn site_verdict(&self, agents: &[String]) -> Verdict {
        if let Some(b) = &self.broken {
            return Verdict::Unparsable(b.clone());
        }
        for a in agents {
            let groups = self.groups_for(a);
            let rules = groups.iter().flat_map(|g| &g.rules);
            let all = rules
                .clone()
                .find(|(allow, p, _)| !allow && pattern::is_catch_all(p));
            let any_allow = rules.clone().any(|(allow, p, _)| *allow && !p.is_empty());
            if let (Some((_, p, l)), false) = (all, any_allow) {
                return Verdict::Reserved(format!(
                    "{a} disallowed site-wide (line {l}: Disallow: {p})"
                ));
            }
        }
        Self::usage_verdict(self.prepare(agents).usage.iter().collect(), None)
    }

    /// `Content-Usage` rules: for a path, the longest matching one per
    /// agent; for the whole site (`path` = None), only rules for every path.
    fn usage_verdict(candidates: Vec<&Usage>, path: Option<&str>) -> Verdict {
        let chosen: Vec<&Usage> = match path {
            Some(p) => {
                let hits: Vec<&Usage> = candidates
                    .into_iter()
                    .filter(|u| pattern::matches(&u.path, p))
                    .collect();
                let best = hits.iter().map(|u| pattern::specificity(&u.path)).max();
                hits.into_iter()
                    .filter(|u| Some(pattern::specificity(&u.path)) == best)
                    .collect()
            }
            None => {
                // Site-wide only when no more specific rule could say otherwise.
                let all: Vec<&Usage> = candidates
                    .iter()
                    .copied()
                    .filter(|u| pattern::is_catch_all(&u.path))
                    .collect();
                if candidates.len() != all.len() {
                    // Some path has its own rule: judge per URL.
                    let bad = all.iter().find(|u| u.prefs.is_err());
                    return match bad {
                        Some(u) => Verdict::Unparsable(format!(
                            "line {}: {}: {}",
                            u.line,
                            u.raw,
                            u.prefs.as_ref().err().cloned().unwrap_or_default()
                        )),
                        None => Verdict::Open,
                    };
                }
                all
            }
        };
        // Ties between equally long rules: a reservation (or an unparsable
        // rule) wins, failing closed.
        for u in &chosen {
            if let Err(e) = &u.prefs {
                return Verdict::Unparsable(format!("line {}: {}: {e}", u.line, u.raw));
            }
        }
        for u in &chosen {
            if u.prefs.as_ref().is_ok_and(|p| p.reserves_training()) {
                return Verdict::Reserved(format!("line {}: {}", u.line, u.raw));
            }
        }
        Verdict::Open
    }
}

#[cfg(test)]
mod tests;
