//! Closed vocabularies: the suggestion an error makes when a word is not
//! one of the known ones ("did you mean `consent`?").

/// The known word closest to `word` by edit distance (insertions,
/// deletions, substitutions and swaps of neighbours), if it is close: at
/// most a third of the word's length, and at least one edit allowed.
/// `-`, `_` and spaces count as the same character.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| -> Vec<char> {
        s.chars()
            .map(|c| {
                if c == '-' || c == ' ' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    };
    let w = fold(word);
    let limit = (w.len() / 3).max(1);
    known
        .iter()
        .map(|k| (distance(&w, &fold(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance (Damerau-Levenshtein without
/// repeated edits of one substring).
fn distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::closest;

    const KNOWN: &[&str] = &["consent", "contract", "legitimate_interest", "ai-training"];

    #[test]
    fn typos_find_the_word_and_strangers_find_nothing() {
        assert_eq!(closest("consnet", KNOWN), Some("consent"));
        assert_eq!(closest("contrakt", KNOWN), Some("contract"));
        assert_eq!(
            closest("legitimate-interest", KNOWN),
            Some("legitimate_interest")
        );
        assert_eq!(closest("ai_training", KNOWN), Some("ai-training"));
        assert_eq!(closest("ai_trainig", KNOWN), Some("ai-training"));
        assert_eq!(closest("marketing", KNOWN), None);
        assert_eq!(closest("", KNOWN), None);
    }
}
