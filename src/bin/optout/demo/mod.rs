//! `optout demo [DIR]`: the whole story on generated data, in a few
//! seconds, leaving every input file, the ledger, its key and the manifests
//! in DIR so each step can be re-run by hand.

mod data;
mod files;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use optout::lineage::{self, RunImpact};
use optout::manifest::{check, ManifestDiff};
use optout::{Ledger, Manifest, Policy, Reason, SubjectKeyer, Timestamp};
use serde_json::json;

use crate::cmd_manifest::print_table;
use crate::cmd_runs::describe;
use crate::input;
use crate::out::{num, secs, Out};
use crate::Status;

/// Marks a directory the demo made, so it may be wiped on the next run.
const MARKER: &str = ".optout-demo";

const POLICY: &str = r#"{"purpose":"ai-training","consent_required_for":["consent"],"require_double_opt_in":false,"accept_delegated_consent":false,"exclude_categories":["telemetry"]}
"#;

fn t(s: &str) -> Result<Timestamp> {
    Timestamp::parse(s).map_err(|m| anyhow::anyhow!(m))
}

/// The demo's ai-training manifest at `at`, sealed and saved as `dir/file`.
fn seal(
    l: &Ledger,
    dir: &Path,
    policy: &Policy,
    at: &str,
    file: &str,
) -> Result<(Manifest, PathBuf)> {
    let q = l.query(Some(policy.clone()), "ai-training", t(at)?)?;
    let m = l.manifest(&q)?;
    let path = dir.join(file);
    m.save(&path)?;
    Ok((m, path))
}

/// Empties `dir` if it is missing, empty or an earlier demo's; refuses otherwise.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{}: exists and was not made by `optout demo`; choose another directory",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("{}: cannot remove the old demo", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by `optout demo`; safe to delete\n")
        .with_context(|| format!("{}: cannot write", dir.display()))?;
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("{}: cannot write", p.display()))?;
    Ok(p)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn reasons_line(m: &Manifest) -> String {
    m.header
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {}", num(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(out: &mut Out, dir: &Path) -> Result<Status> {
    let t0 = Instant::now();
    prepare(dir)?;
    let d = data::generate();
    let datasets = [
        files::write(
            dir,
            "forum",
            &d.forum,
            files::FORUM_MAPPING,
            2_000,
            "*/*.parquet",
        )?,
        files::write(
            dir,
            "meetings",
            &d.meetings,
            files::MEETINGS_MAPPING,
            600,
            "*.parquet",
        )?,
        files::write(dir, "crm", &d.crm, files::CRM_MAPPING, 1_200, "*.parquet")?,
    ];
    let q1 = write(dir, "events-2025-q1.jsonl", &d.events_q1)?;
    let q2 = write(dir, "events-2025-q2.jsonl", &d.events_q2)?;
    let policy_path = write(dir, "policy-ai-training.json", POLICY)?;
    let c = &d.counts;
    out.line(format!("optout demo in {}\n", dir.display()))?;
    out.line(format!(
        "1. Generated {} records in {} shards of 3 datasets about {} people:",
        num(c.records),
        c.shards,
        num(data::PEOPLE as u64)
    ))?;
    out.line(format!(
        "   forum (public posts), meetings (multi-participant transcripts on consent, plus telemetry),\n   crm (ad profiles, a third bought from {}). Files: Parquet under forum/ (two\n   crawl=N/ directories), meetings/ and crm/, one mapping-NAME.json per dataset",
        data::DMP
    ))?;

    // The ledger and its key.
    let ledger = dir.join("ledger");
    let key = optout::default_key_path(&ledger);
    let keyer = SubjectKeyer::create_key_file(&key)?;
    let mut l = Ledger::create(&ledger, keyer.clone())?;
    // The CRM data is also used for ads: a second purpose, declared.
    l.add_purpose(
        "ads-personalisation",
        Some("ad targeting from CRM profiles"),
    )?;
    let ti = Instant::now();
    let (mut registered, mut links) = (0, 0);
    for ds in &datasets {
        let ing = files::ingest(&mut l, ds)?;
        registered += ing.registered;
        links += ing.links;
    }
    out.line(format!(
        "2. Created the ledger {} (subject key {}, mode 0600);\n   registered the {} Parquet files with `ingest --parquet` (shard = path under the\n   dataset's directory, row = position in the file): {} records, {} subject links in {}.",
        ledger.display(),
        key.display(),
        datasets.iter().map(|d| d.files.len()).sum::<usize>(),
        num(registered),
        num(links),
        secs(ti.elapsed())
    ))?;

    // Q1: consents, objections, withdrawal, erasure, restriction, DMP, takedown.
    let (ev, _) = input::read_events(&[s(&q1)], &keyer)?;
    let n1 = ev.len();
    l.apply(ev)?;
    out.line(format!(
        "3. Q1 2025 events ({}, events-2025-q1.jsonl):\n   - {} consents ({} delegated by a meeting admin, {} unconfirmed)\n   - {} objections to AI training (one scoped to meeting audio)\n   - {} withdrew her consent\n   - {} asked for erasure, {} restricted processing\n   - {} was opted out as a source; one forum post was taken down (copyright)",
        num(n1 as u64),
        num(c.consents),
        c.delegated,
        c.unconfirmed,
        c.objections_q1,
        data::CAROL,
        data::DAVE,
        data::FRANK,
        data::DMP
    ))?;

    // Manifest 1 and run 1.
    let policy = Policy::from_json(POLICY, &s(&policy_path))?;
    let (m1, m1_path) = seal(&l, dir, &policy, "2025-03-01T00:00:00Z", "manifest-1.optm")?;
    out.line(format!(
        "4. Manifest 1 (ai-training at 2025-03-01, ledger seq {}, policy excludes telemetry):\n   {} of {} records excluded:",
        m1.header.seq,
        num(m1.header.excluded),
        num(m1.header.registered),
    ))?;
    print_table(out, &m1, "     ")?;
    out.line(format!("   digest {}", m1.digest_hex()))?;
    let run1_start = t("2025-03-02T09:00:00Z")?;
    l.register_run("run-2025-03", "acme-assistant-v1", &m1, run1_start)?;
    let seq_run1 = l.head().0;
    out.line("   Training run run-2025-03 (acme-assistant-v1) registered on manifest 1.")?;
    let alice = l.pseudonym(data::ALICE)?;
    let before = lineage::affected(l.index(), &alice, seq_run1, t("2025-03-05T00:00:00Z")?);

    // Q2: more objections, Alice's among them.
    let (ev, _) = input::read_events(&[s(&q2)], &keyer)?;
    let n2 = ev.len();
    l.apply(ev)?;
    let alice_used: usize = before.iter().map(|r| r.records.len()).sum();
    out.line(format!(
        "5. Q2 2025 events ({n2} in events-2025-q2.jsonl): {} more objections; {} withdrew his objection.\n   Among them {} (2025-03-20), whose {} record(s) run-2025-03 had used.",
        c.objections_q2,
        data::BRAM,
        data::ALICE,
        alice_used
    ))?;

    // Manifest 2, run 2, and a run on the stale manifest 1.
    let (m2, m2_path) = seal(&l, dir, &policy, "2025-05-01T00:00:00Z", "manifest-2.optm")?;
    out.line(format!(
        "6. Manifest 2 (at 2025-05-01, seq {}): {} excluded: {}",
        m2.header.seq,
        num(m2.header.excluded),
        reasons_line(&m2)
    ))?;
    out.line(format!("   digest {}", m2.digest_hex()))?;
    let diff = ManifestDiff::between(&m1, &m2);
    let per = diff.per_reason();
    let changes: Vec<String> = Reason::ALL
        .iter()
        .filter(|r| per[**r as usize] != (0, 0))
        .map(|r| {
            let (a, b) = per[*r as usize];
            format!("{} +{a}/-{b}", r.name())
        })
        .collect();
    out.line(format!(
        "   Diff 1 -> 2: {} newly excluded, {} re-included ({}) in {} shards.",
        diff.newly_excluded(),
        diff.re_included(),
        changes.join(", "),
        diff.shards.len()
    ))?;
    l.register_run(
        "run-2025-05",
        "acme-assistant-v2",
        &m2,
        t("2025-05-02T09:00:00Z")?,
    )?;
    l.register_run(
        "run-2025-05-hotfix",
        "acme-assistant-v1.1",
        &m1,
        t("2025-05-03T09:00:00Z")?,
    )?;
    out.line(
        "   Run run-2025-05 (acme-assistant-v2) registered on manifest 2; run-2025-05-hotfix\n   (acme-assistant-v1.1) was registered on the STALE manifest 1, after the objections were recorded.",
    )?;

    // What the hotfix run read, checked against manifest 2.
    let mut used = String::new();
    let mut rows = Vec::new();
    for sh in &m1.shards {
        for row in 0..sh.registered as u32 {
            if !sh.excluded.contains(row) {
                let _ = writeln!(
                    used,
                    r#"{{"dataset":"{}","shard":"{}","row":{row}}}"#,
                    sh.dataset, sh.shard
                );
                rows.push((sh.dataset.as_str(), sh.shard.as_str(), row));
            }
        }
    }
    let used_path = write(dir, "training-input-run-2025-05-hotfix.jsonl", &used)?;
    // The same by external key: a crawler's list of URLs it trained on.
    let mut by_key = String::new();
    for k in d.alice_forum_keys.iter().chain(
        [
            "https://forum.example.com/p/1",
            "https://forum.example.com/p/4242",
        ]
        .map(String::from)
        .iter(),
    ) {
        let _ = writeln!(by_key, r#"{{"key":"{k}"}}"#);
    }
    let keys_path = write(dir, "used-keys.jsonl", &by_key)?;
    let hits = check(&m2, rows.iter().copied()).hits;
    out.line(format!(
        "7. Checking what the hotfix run read ({} rows, {}) against manifest 2:\n   {} rows it should not have used.",
        num(rows.len() as u64),
        used_path.file_name().and_then(|f| f.to_str()).unwrap_or(""),
        num(hits.len() as u64)
    ))?;

    // Alice, before and after her objection.
    let after = lineage::affected(l.index(), &alice, l.head().0, t("2025-05-10T00:00:00Z")?);
    out.line(format!(
        "8. Affected runs for {}, before her objection (2025-03-05):",
        data::ALICE
    ))?;
    show_runs(out, &before)?;
    out.line("   and after it (2025-05-10):")?;
    show_runs(out, &after)?;
    let violations: Vec<&RunImpact> = after
        .iter()
        .filter(|r| r.status() == lineage::Use::Violation)
        .collect();
    if !violations.is_empty() {
        out.line(format!(
            "   => VIOLATION: {} trained on her data after her objection was recorded.\n      run-2025-05 used the fresh manifest and none of her records.",
            violations
                .iter()
                .map(|r| r.run.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    l.snapshot()?;
    drop(l);
    out.line(format!(
        "\nDone in {}. Explore further:",
        secs(t0.elapsed())
    ))?;
    let lg = s(&ledger);
    let (m1s, m2s) = (s(&m1_path), s(&m2_path));
    let again = datasets.iter().map(|d| files::command(&lg, d));
    for cmd in again.chain([
        format!("optout show {m2s}"),
        format!("optout diff {m1s} {m2s}"),
        format!("optout runs list {lg}"),
        format!("optout affected {lg} --subject {}", data::ALICE),
        format!("optout report {lg} --subject {}", data::ALICE),
        format!("optout check {m2s} {}", s(&used_path)),
        format!("optout check {m2s} {} --ledger {lg}", s(&keys_path)),
        format!(
            "optout export {m2s} --to csv -o {} --ledger {lg}",
            s(&dir.join("excluded.csv"))
        ),
        format!(
            "optout manifest {lg} --policy {} --at 2025-05-01T00:00:00Z -o {}",
            s(&policy_path),
            s(&dir.join("manifest-3.optm"))
        ),
        format!("optout verify {lg}"),
    ]) {
        out.line(format!("  {cmd}"))?;
    }
    out.line("(from a checkout: cargo run --release --features cli -- <command>)")?;
    out.json(json!({
        "command": "demo",
        "dir": dir,
        "records": registered,
        "links": links,
        "datasets": datasets.iter().map(|d| json!({
            "dataset": d.name,
            "root": d.root,
            "mapping": d.mapping,
            "files": d.files,
            "ingest": files::command(&lg, d),
        })).collect::<Vec<_>>(),
        "manifests": [
            {"path": m1_path, "digest": m1.digest_hex(), "seq": m1.header.seq, "excluded": m1.header.excluded, "counts": m1.header.counts},
            {"path": m2_path, "digest": m2.digest_hex(), "seq": m2.header.seq, "excluded": m2.header.excluded, "counts": m2.header.counts},
        ],
        "diff": {"newly_excluded": diff.newly_excluded(), "re_included": diff.re_included()},
        "check_hits": hits.len(),
        "subject": data::ALICE,
        "affected_before": before,
        "affected_after": after,
        "violations": violations.iter().map(|r| r.run.clone()).collect::<Vec<_>>(),
        "seconds": t0.elapsed().as_secs_f64(),
    }))?;
    Ok(Status::Ok)
}

fn show_runs(out: &mut Out, runs: &[RunImpact]) -> Result<()> {
    if runs.is_empty() {
        out.line("     no run used her records")?;
    }
    for r in runs {
        out.line(format!("     {}", describe(r)))?;
    }
    Ok(())
}
