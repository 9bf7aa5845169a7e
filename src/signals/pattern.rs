//! robots.txt-style path patterns (RFC 9309 §2.2.3), shared by the
//! robots.txt `Content-Usage` rule, ai.txt and TDMRep `location`: `*`
//! matches any run of characters, a final `$` anchors the end, anything
//! else is a prefix match. Allow/Disallow decisions themselves are the
//! `robotstxt` crate's (see `robots.rs`).

/// Whether `pattern` matches `path` (which starts with `/`).
///
/// ```
/// use optout::signals::pattern::matches;
/// assert!(matches("/private/", "/private/a.html"));
/// assert!(matches("/*.pdf$", "/docs/x.pdf"));
/// assert!(!matches("/*.pdf$", "/docs/x.pdf?dl=1"));
/// assert!(!matches("/private/", "/public/"));
/// ```
pub fn matches(pattern: &str, path: &str) -> bool {
    let (pat, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let p = pat.as_bytes();
    let s = path.as_bytes();
    // Iterative wildcard match with one backtrack point (linear in practice,
    // never exponential).
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if i == p.len() {
            if !anchored || j == s.len() {
                return true;
            }
        } else if p[i] == b'*' {
            star = Some((i, j));
            i += 1;
            continue;
        } else if j < s.len() && p[i] == s[j] {
            i += 1;
            j += 1;
            continue;
        }
        match star {
            Some((si, sj)) if sj < s.len() => {
                star = Some((si, sj + 1));
                i = si + 1;
                j = sj + 1;
            }
            _ => return false,
        }
    }
}

/// Specificity of a pattern for longest-match precedence: its length in
/// bytes (RFC 9309 counts octets of the rule's path).
pub fn specificity(pattern: &str) -> usize {
    pattern.len()
}

/// Whether a pattern matches every path.
pub fn is_catch_all(pattern: &str) -> bool {
    matches!(pattern.trim(), "/" | "*" | "/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_anchors() {
        assert!(matches("/", "/anything"));
        assert!(matches("*", "/anything"));
        assert!(matches("/a*b", "/a/x/b/c"));
        assert!(matches("/a*b$", "/a/x/b"));
        assert!(!matches("/a*b$", "/a/x/b/c"));
        assert!(matches("/$", "/"));
        assert!(!matches("/$", "/x"));
        assert!(matches("*.jpg", "/img/cat.jpg"));
        assert!(matches("/**", "/x"));
        assert!(!matches("/fish", "/Fish"));
        // Pathological patterns stay fast.
        let long = "/".to_string() + &"a".repeat(5000);
        assert!(!matches("/*a*a*a*a*a*a*a*b", &long));
    }
}
