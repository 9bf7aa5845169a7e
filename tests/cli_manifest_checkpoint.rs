//! Manifests tied to checkpoints (issue 16 part 4): `optout manifest
//! --record-checkpoint` records the Merkle tree size and root at the
//! manifest's seq, `optout show` prints it, and `check` and `runs add` with
//! `--checkpoint FILE` refuse a manifest from a forked or rolled-back
//! ledger, naming the seq where history diverges. Without `--checkpoint`
//! (as on main), the rolled-back ledger's own manifest is accepted.
#![cfg(feature = "cli")]

mod common;
use common::{copy_dir, json, run};

use std::path::{Path, PathBuf};

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Setup {
    /// A ledger `l` with records of alice and bob (seq 2), and a copy of
    /// it at that point, `backup` (the same ledger id and history).
    fn new() -> Setup {
        let t = tempfile::tempdir().unwrap();
        let s = Setup {
            root: t.path().to_path_buf(),
            _tmp: t,
        };
        let recs = s.write(
            "recs.jsonl",
            "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0,\"subjects\":[\"alice@x.org\"],\"source\":\"forum.x.org\",\"collected_at\":\"2024-03-01T00:00:00Z\",\"basis\":\"legitimate_interest\"}\n\
             {\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":1,\"subjects\":[\"bob@x.org\"],\"source\":\"forum.x.org\",\"collected_at\":\"2024-03-01T00:00:00Z\",\"basis\":\"legitimate_interest\"}\n",
        );
        run(&["init", &s.p("l")], 0);
        run(&["ingest", &s.p("l"), &recs], 0);
        copy_dir(Path::new(&s.p("l")), Path::new(&s.p("backup")));
        std::fs::copy(s.p("l.key"), s.p("backup.key")).unwrap();
        s
    }
    fn p(&self, name: &str) -> String {
        self.root.join(name).to_string_lossy().into_owned()
    }
    fn write(&self, name: &str, body: &str) -> String {
        let p = self.p(name);
        std::fs::write(&p, body).unwrap();
        p
    }
    /// Appends an objection by `who` to `ledger`.
    fn object(&self, ledger: &str, who: &str) {
        let e = self.write(
            &format!("{who}.jsonl"),
            &format!("{{\"type\":\"objection\",\"subject\":\"{who}@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}}\n"),
        );
        run(&["apply", &self.p(ledger), &e], 0);
    }
    /// A manifest of `ledger` at its head, with its checkpoint recorded.
    fn manifest(&self, ledger: &str, out: &str) -> String {
        let m = self.p(out);
        run(
            &[
                "manifest",
                &self.p(ledger),
                "--purpose",
                "ai-training",
                "--at",
                "2025-06-01T00:00:00Z",
                "--record-checkpoint",
                "-o",
                &m,
            ],
            0,
        );
        m
    }
}

#[test]
fn the_checkpoint_is_recorded_only_when_asked_and_shown() {
    let s = Setup::new();
    s.object("l", "alice");
    let m = s.manifest("l", "m.optm");
    let cp = json(&["checkpoint", &s.p("l"), "-o", &s.p("c.txt")], 0);
    let shown = json(&["show", &m], 0);
    assert_eq!(shown["header"]["checkpoint"]["size"], 3);
    assert_eq!(shown["header"]["checkpoint"]["root"], cp["root"]);
    let text = run(&["show", &m], 0);
    assert!(text.contains("checkpoint   tree size 3, root "), "{text}");
    // Without the flag: no checkpoint, and the bytes of before (the
    // manifest stays a function of the ledger, T, policy and scope).
    let plain = s.p("plain.optm");
    run(
        &[
            "manifest",
            &s.p("l"),
            "--purpose",
            "ai-training",
            "--at",
            "2025-06-01T00:00:00Z",
            "-o",
            &plain,
        ],
        0,
    );
    let shown = json(&["show", &plain], 0);
    assert!(shown["header"].get("checkpoint").is_none(), "{shown}");
    assert!(run(&["show", &plain], 0).contains("checkpoint   none recorded"));
    // Recording it again gives the same bytes.
    let again = s.manifest("l", "again.optm");
    assert_eq!(std::fs::read(&m).unwrap(), std::fs::read(again).unwrap());
    // Both verify against the ledger (check --ledger recomputes them).
    let used = s.write(
        "used.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":1}\n",
    );
    run(&["check", &m, &used, "--ledger", &s.p("l")], 0);
    run(&["check", &plain, &used, "--ledger", &s.p("l")], 0);
    // The published checkpoint agrees, with and without the ledger.
    let c = s.p("c.txt");
    run(
        &[
            "check",
            &m,
            &used,
            "--ledger",
            &s.p("l"),
            "--checkpoint",
            &c,
        ],
        0,
    );
    let pubkey = s.p("l.signing.pub");
    run(
        &["check", &m, &used, "--checkpoint", &c, "--pubkey", &pubkey],
        0,
    );
    run(
        &[
            "runs",
            "add",
            &s.p("l"),
            "--model",
            "m1",
            "--manifest",
            &m,
            "--checkpoint",
            &c,
        ],
        0,
    );
}

/// The ledger was rolled back after a checkpoint was published (restored
/// from a backup, then written again): its own manifest is consistent with
/// it, so `runs add` without `--checkpoint` accepts it, but the published
/// checkpoint shows the history changed at seq 3.
#[test]
fn a_manifest_from_a_rolled_back_ledger_is_refused() {
    let s = Setup::new();
    s.object("l", "alice");
    let c = s.p("c3.txt");
    run(&["checkpoint", &s.p("l"), "-o", &c], 0);
    // Roll back to the backup (seq 2) and record something else at seq 3.
    s.object("backup", "bob");
    let m = s.manifest("backup", "rolled.optm");
    let used = s.write(
        "used.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0}\n",
    );
    let pubkey = s.p("l.signing.pub");
    let b = s.p("backup");
    let o = run(
        &[
            "check",
            &m,
            &used,
            "--ledger",
            &b,
            "--checkpoint",
            &c,
            "--pubkey",
            &pubkey,
        ],
        2,
    );
    assert!(o.contains("--checkpoint"), "{o}");
    assert!(
        o.contains("does not extend the checkpoint (tree size 3)"),
        "{o}"
    );
    assert!(o.contains("history diverges at or before seq 3"), "{o}");
    let o = run(
        &[
            "runs",
            "add",
            &b,
            "--model",
            "m1",
            "--manifest",
            &m,
            "--checkpoint",
            &c,
            "--pubkey",
            &pubkey,
        ],
        2,
    );
    assert!(o.contains("history diverges at or before seq 3"), "{o}");
    assert_eq!(
        json(&["runs", "list", &b], 0)["runs"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Offline, the manifest's recorded tree head differs from the checkpoint's.
    let o = run(
        &["check", &m, &used, "--checkpoint", &c, "--pubkey", &pubkey],
        2,
    );
    assert!(o.contains("diverge at or before seq 3"), "{o}");
    // Without --checkpoint the rolled-back ledger accepts its own manifest.
    run(&["runs", "add", &b, "--model", "m1", "--manifest", &m], 0);
}

/// A fork: the manifest was computed on a copy of the ledger that recorded
/// something else after seq 2; the ledger and its checkpoint agree with
/// each other, and the manifest's recorded checkpoint diverges from both.
#[test]
fn a_manifest_from_a_forked_ledger_is_refused() {
    let s = Setup::new();
    s.object("l", "alice");
    s.object("l", "carol");
    let c = s.p("c4.txt");
    run(&["checkpoint", &s.p("l"), "-o", &c], 0);
    s.object("backup", "bob");
    let m = s.manifest("backup", "fork.optm");
    let used = s.write(
        "used.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0}\n",
    );
    let l = s.p("l");
    let o = run(&["check", &m, &used, "--ledger", &l, "--checkpoint", &c], 2);
    assert!(
        o.contains("does not extend the manifest's checkpoint (tree size 3): history diverges at or before seq 3"),
        "{o}"
    );
    let o = run(
        &[
            "runs",
            "add",
            &l,
            "--model",
            "m1",
            "--manifest",
            &m,
            "--checkpoint",
            &c,
        ],
        2,
    );
    assert!(o.contains("history diverges at or before seq 3"), "{o}");
    // A checkpoint of another size cannot be related without the ledger.
    let pubkey = s.p("l.signing.pub");
    let o = run(
        &["check", &m, &used, "--checkpoint", &c, "--pubkey", &pubkey],
        2,
    );
    assert!(o.contains("relating them needs the ledger"), "{o}");
    // A checkpoint signed by another key is refused before anything else.
    let other = Setup::new();
    let c_other = other.p("c.txt");
    run(&["checkpoint", &other.p("l"), "-o", &c_other], 0);
    let o = run(
        &[
            "check",
            &m,
            &used,
            "--checkpoint",
            &c_other,
            "--pubkey",
            &pubkey,
        ],
        2,
    );
    assert!(o.contains("checkpoint"), "{o}");
}
