//! Unit tests of `robots`.

use super::*;

fn agents() -> Vec<String> {
    ["GPTBot", "CCBot", "Google-Extended", "ClaudeBot"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn v(r: &Robots, path: &str) -> Verdict {
    r.verdict(&agents(), &format!("https://example.com{path}"), path)
}

#[test]
fn groups_merge_and_fall_back_to_star() {
    let r = Robots::parse(
        "User-agent: *\nDisallow: /private/\n\nUser-agent: GPTBot\nDisallow: /news/\n\nUser-agent: gptbot\nDisallow: /blog/\n",
        None,
    )
    .unwrap();
    // GPTBot has its own (merged) groups: /private/ is not in them.
    assert_eq!(
        r.allowed("GPTBot", "https://example.com/private/x"),
        Some(true)
    );
    assert_eq!(
        r.allowed("GPTBot", "https://example.com/blog/x"),
        Some(false)
    );
    assert_eq!(
        r.allowed("GPTBot", "https://example.com/news/x"),
        Some(false)
    );
    // CCBot falls back to `*`.
    assert_eq!(
        r.allowed("CCBot", "https://example.com/private/x"),
        Some(false)
    );
    assert!(v(&r, "/private/x").is_reserved());
    assert!(!v(&r, "/about").is_reserved());
}

#[test]
fn longest_match_and_ties() {
    let r = Robots::parse(
        "User-agent: GPTBot\nDisallow: /docs/\nAllow: /docs/public/\nAllow: /page\nDisallow: /page\nDisallow: /*.pdf$\n",
        None,
    )
    .unwrap();
    let ok = |p: &str| r.allowed("GPTBot", &format!("https://example.com{p}"));
    assert_eq!(ok("/docs/secret.html"), Some(false));
    assert_eq!(ok("/docs/public/a.html"), Some(true));
    // Equal length: Allow wins.
    assert_eq!(ok("/page"), Some(true));
    assert_eq!(ok("/public/x.pdf"), Some(false));
    assert_eq!(ok("/public/x.pdf?dl=1"), Some(true));
}

#[test]
fn site_wide_only_without_allows() {
    let all = Robots::parse("User-agent: GPTBot\nDisallow: /\n", None).unwrap();
    assert!(all.site_verdict(&agents()).is_reserved());
    let partial =
        Robots::parse("User-agent: GPTBot\nDisallow: /\nAllow: /public/\n", None).unwrap();
    assert!(!partial.site_verdict(&agents()).is_reserved());
    assert!(v(&partial, "/x").is_reserved());
    assert!(!v(&partial, "/public/x").is_reserved());
    let other = Robots::parse("User-agent: Googlebot\nDisallow: /\n", None).unwrap();
    assert_eq!(other.site_verdict(&agents()), Verdict::Open);
}

#[test]
fn unparsable_bodies_and_statuses() {
    assert!(Robots::parse("whatever", Some(404)).is_none());
    for (t, s) in [
        ("User-agent: *\nAllow: /\n", Some(503)),
        (
            "<!DOCTYPE html><html><body>Not found</body></html>",
            Some(200),
        ),
        ("\0\0binary", None),
    ] {
        let r = Robots::parse(t, s).unwrap();
        assert!(
            matches!(r.site_verdict(&agents()), Verdict::Unparsable(_)),
            "{t:?}"
        );
        assert!(matches!(v(&r, "/x"), Verdict::Unparsable(_)));
    }
}

#[test]
fn content_usage_rules() {
    let r = Robots::parse(
        "User-agent: *\nAllow: /\nContent-Usage: train-ai=n\nContent-Usage: /open/ train-ai=y\n",
        None,
    )
    .unwrap();
    assert!(v(&r, "/a").is_reserved());
    assert!(!v(&r, "/open/a").is_reserved());
    assert_eq!(r.site_verdict(&agents()), Verdict::Open);
    let site = Robots::parse(
        "User-agent: *\nContent-Usage: train-genai=n, search=y\n",
        None,
    )
    .unwrap();
    assert!(site.site_verdict(&agents()).is_reserved());
    let bad = Robots::parse("User-agent: *\nContent-Usage: train-ai=nope\n", None).unwrap();
    assert!(matches!(
        bad.site_verdict(&agents()),
        Verdict::Unparsable(_)
    ));
}

#[test]
fn never_panics_on_odd_input() {
    for t in [
        "User-agent: é\nDisallow: /é\n",
        "User-agent:\n",
        ":\n::\n",
        "Disallow: /\n",
        "User-agent: *é\nDisallow: /",
    ] {
        let r = Robots::parse(t, None).unwrap();
        let _ = v(&r, "/é");
        let _ = r.site_verdict(&agents());
    }
}
