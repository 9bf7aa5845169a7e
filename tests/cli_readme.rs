//! Keeps README.md honest: its Rust example is the crate-doc example of
//! src/lib.rs (which `cargo test --doc` runs), and every JSON snippet in it
//! parses as the record, event or policy input it shows.

use optout::{jsonl, Policy, SubjectKeyer};

fn code_blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let Some(j) = body.find("```") else { break };
        out.push(&body[..j]);
        rest = &body[j..];
    }
    out
}

#[test]
fn the_readme_rust_example_is_the_crate_doc_example() {
    let readme = include_str!("../README.md");
    let lib = include_str!("../src/lib.rs");
    let doc: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let in_lib = code_blocks(&doc, "");
    let in_readme = code_blocks(readme, "rust");
    assert_eq!(in_readme.len(), 1, "one Rust example in the README");
    assert_eq!(
        in_lib.first(),
        in_readme.first(),
        "README.md's Rust example differs from src/lib.rs"
    );
}

#[test]
fn every_json_snippet_in_the_readme_parses() {
    let readme = include_str!("../README.md");
    let k = SubjectKeyer::from_secret([3; 32]);
    let (mut records, mut events, mut policies) = (0, 0, 0);
    for block in code_blocks(readme, "json") {
        let t = block.trim_start();
        if t.starts_with("{\"type\"") {
            events += jsonl::parse_events(block.as_bytes(), "README.md", &k)
                .unwrap_or_else(|e| panic!("{e}\n{block}"))
                .len();
        } else if t.starts_with("{\"dataset\"") && block.contains("\"source\"") {
            records += jsonl::parse_records(block.as_bytes(), "README.md", &k)
                .unwrap_or_else(|e| panic!("{e}\n{block}"))
                .len();
        } else if t.starts_with("{\"purpose\"") {
            Policy::from_json(block, "README.md").unwrap_or_else(|e| panic!("{e}\n{block}"));
            policies += 1;
        }
    }
    assert!(
        records >= 3 && events >= 11 && policies == 1,
        "{records} {events} {policies}"
    );
}
