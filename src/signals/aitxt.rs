//! Spawning's `ai.txt`: robots.txt syntax at `/ai.txt`, read as a
//! statement about AI training by every agent (its generator writes
//! `User-Agent: *` groups, often with file-type patterns such as
//! `Disallow: *.jpg`). Evaluated with the same RFC 9309 matcher as
//! robots.txt, for the configured AI agents and for `*`; the same
//! fail-closed rules apply (HTML or binary bodies, 5xx statuses).

use super::robots::Robots;
use super::Verdict;

/// A parsed ai.txt.
#[derive(Debug)]
pub struct AiTxt(Robots);

/// The agent names ai.txt is read for: the configured ones and a name no
/// group names, which selects the `*` groups.
fn names(agents: &[String]) -> Vec<String> {
    let mut v = agents.to_vec();
    v.push("optout-ai-txt".into());
    v
}

impl AiTxt {
    /// Parses ai.txt text (`None`: a 4xx status, no file).
    pub fn parse(text: &str, status: Option<u16>) -> Option<AiTxt> {
        Robots::parse(text, status).map(AiTxt)
    }

    /// The decision for one URL.
    pub fn verdict(&self, agents: &[String], url: &str, path: &str) -> Verdict {
        self.0.verdict(&names(agents), url, path)
    }

    /// Whether the whole site is reserved.
    pub fn site_verdict(&self, agents: &[String]) -> Verdict {
        self.0.site_verdict(&names(agents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawning_style_file_types() {
        let t = "# Spawning AI\n# Prevent datasets from using the following file types\n\nUser-Agent: *\nDisallow: *.jpg\nDisallow: *.png\nAllow: *.txt\n";
        let a = AiTxt::parse(t, None).unwrap();
        let ag = vec!["GPTBot".to_string()];
        assert!(a
            .verdict(&ag, "https://x.org/img/cat.jpg", "/img/cat.jpg")
            .is_reserved());
        assert!(!a
            .verdict(&ag, "https://x.org/notes.txt", "/notes.txt")
            .is_reserved());
        assert_eq!(a.site_verdict(&ag), Verdict::Open);
        let all = AiTxt::parse("User-Agent: *\nDisallow: /\n", None).unwrap();
        assert!(all.site_verdict(&ag).is_reserved());
    }
}
