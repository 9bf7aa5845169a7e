//! The transparency log from the command line (issue 16): init's signing
//! key, checkpoints, `verify --checkpoint` against rolled-back, forked and
//! damaged ledger directories (naming the seqs), consistency proofs checked
//! offline, receipts written by `apply --receipts` and checked offline,
//! tampered receipts and checkpoints refused, witnesses, old ledgers.
#![cfg(feature = "cli")]

mod common;
use common::{copy_dir, json, optout, run, text};

use std::path::{Path, PathBuf};

use serde_json::Value;

struct Dir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        Dir { _tmp: t, root }
    }
    fn p(&self, name: &str) -> String {
        self.root.join(name).to_string_lossy().into_owned()
    }
    /// A JSONL file of `n` objections by `tag`{i}@x.org.
    fn events(&self, name: &str, tag: &str, n: usize) -> String {
        let body: String = (0..n)
            .map(|i| format!("{{\"type\":\"objection\",\"subject\":\"{tag}{i}@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}}\n"))
            .collect();
        let p = self.p(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

/// A ledger copy `name` of `l` (directory and key files), as a backup or
/// a fork would be.
fn copy_ledger(d: &Dir, l: &str, name: &str) -> String {
    copy_dir(Path::new(l), Path::new(&d.p(name)));
    for suffix in [".key", ".signing.key", ".signing.pub"] {
        std::fs::copy(format!("{l}{suffix}"), format!("{}{suffix}", d.p(name))).unwrap();
    }
    d.p(name)
}

#[test]
fn init_creates_the_signing_key_pair_and_reuses_a_named_one() {
    let d = Dir::new();
    let l = d.p("L");
    let v = json(&["init", &l], 0);
    assert_eq!(v["signing_key_created"], true);
    let key = format!("{l}.signing.key");
    let public = format!("{l}.signing.pub");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let vkey = std::fs::read_to_string(&public).unwrap();
    let id = v["ledger_id"].as_str().unwrap();
    assert!(vkey.starts_with(&format!("optout/{id}+")), "{vkey}");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("PRIVATE+KEY+optout/"));

    // A second ledger: the default key file is someone else's, so it must be named.
    let l2 = d.p("M");
    std::fs::copy(&key, format!("{l2}.signing.key")).unwrap();
    let out = run(&["init", &l2], 2);
    assert!(out.contains("--signing-key"), "{out}");
    assert!(!Path::new(&l2).join("log").exists());
    assert!(
        !Path::new(&format!("{l2}.key")).exists(),
        "subject key left behind"
    );
    let v = json(&["init", &l2, "--signing-key", &key], 0);
    assert_eq!(v["signing_key_created"], false);
    // A key inside the ledger directory is refused.
    std::fs::create_dir(d.p("N")).unwrap();
    let out = run(&["init", &d.p("N"), "--signing-key", &d.p("N/in.key")], 2);
    assert!(out.contains("outside the ledger directory"), "{out}");
}

#[test]
fn checkpoints_verify_and_rollback_fork_and_damage_are_found_with_the_seq() {
    let d = Dir::new();
    let l = d.p("L");
    let public = format!("{l}.signing.pub");
    run(&["init", &l], 0);
    run(&["apply", &l, &d.events("e1", "a", 3)], 0); // seq 2..=4
    let c4 = d.p("c4");
    let v = json(&["checkpoint", &l, "-o", &c4], 0);
    assert_eq!(v["size"], 4);
    let backup = copy_ledger(&d, &l, "backup4");
    run(&["apply", &l, &d.events("e2", "b", 2)], 0); // ..=6
    let c6 = d.p("c6");
    run(&["checkpoint", &l, "-o", &c6], 0);
    let fork = copy_ledger(&d, &l, "fork6");
    run(&["apply", &l, &d.events("e3", "c", 2)], 0); // ..=8
    let c8 = d.p("c8");
    run(&["checkpoint", &l, "-o", &c8], 0);
    // The checkpoint is a C2SP signed note: origin, size, root, blank, signature.
    let note = std::fs::read_to_string(&c8).unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[1], "8");
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("\u{2014} optout/"), "{note}");

    // The ledger extends all three.
    let v = json(
        &[
            "verify",
            &l,
            "--checkpoint",
            &c4,
            "--checkpoint",
            &c6,
            "--checkpoint",
            &c8,
        ],
        0,
    );
    assert_eq!(v["ok"], true);

    // Rolled back to the backup: seq 5.. are missing.
    let v = json(
        &[
            "verify",
            &backup,
            "--checkpoint",
            &c4,
            "--checkpoint",
            &c8,
            "--pubkey",
            &public,
        ],
        1,
    );
    assert_eq!(v["ok"], false);
    assert_eq!(v["diverges_after"], 4);
    assert_eq!(v["diverges_at_or_before"], 5);
    let out = run(&["verify", &backup, "--checkpoint", &c8], 1);
    assert!(out.contains("seq 5..=8 are missing"), "{out}");

    // A fork of the copy at seq 6: other events from seq 7 on.
    run(&["apply", &fork, &d.events("f", "z", 3)], 0); // ..=9
    let v = json(
        &[
            "verify",
            &fork,
            "--checkpoint",
            &c4,
            "--checkpoint",
            &c6,
            "--checkpoint",
            &c8,
        ],
        1,
    );
    assert_eq!(
        (
            v["diverges_after"].clone(),
            v["diverges_at_or_before"].clone()
        ),
        (6.into(), 8.into())
    );
    let out = run(
        &["verify", &fork, "--checkpoint", &c6, "--checkpoint", &c8],
        1,
    );
    assert!(
        out.contains("history diverges after seq 6, at or before seq 8"),
        "{out}"
    );
    // The fork's own checkpoint is not consistent with the original's.
    let f9 = d.p("f9");
    run(&["checkpoint", &fork, "-o", &f9], 0);
    let out = run(&["prove-consistency", &fork, &c8, &f9], 2);
    assert!(out.contains("at or before seq 8"), "{out}");

    // Consistency proofs, checked offline.
    let proof = d.p("p6-8");
    let o = optout(&["prove-consistency", &l, &c6, &c8]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(&proof, &o.stdout).unwrap();
    run(
        &["verify-consistency", &c6, &c8, &proof, "--pubkey", &public],
        0,
    );
    // ... and a proof between other checkpoints does not pass.
    let out = run(
        &["verify-consistency", &c4, &c8, &proof, "--pubkey", &public],
        1,
    );
    assert!(out.contains("FAILED"), "{out}");

    // A rewrite in place (one byte of the last entry) is damage with a seq.
    let damaged = copy_ledger(&d, &l, "damaged");
    let seg = std::fs::read_dir(Path::new(&damaged).join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let n = b.len();
    b[n - 40] ^= 0x55;
    std::fs::write(&seg, b).unwrap();
    let out = run(&["verify", &damaged, "--checkpoint", &c8], 1);
    assert!(out.contains("seq"), "{out}");
}

#[test]
fn checkpoints_that_are_forged_foreign_or_reshaped_are_refused() {
    let d = Dir::new();
    let (l, m) = (d.p("L"), d.p("M"));
    run(&["init", &l], 0);
    run(&["init", &m], 0);
    let (cl, cm) = (d.p("cl"), d.p("cm"));
    run(&["checkpoint", &l, "-o", &cl], 0);
    run(&["checkpoint", &m, "-o", &cm], 0);
    // Another ledger's checkpoint, with that ledger's key or with ours.
    let out = run(
        &[
            "verify",
            &l,
            "--checkpoint",
            &cm,
            "--pubkey",
            &format!("{m}.signing.pub"),
        ],
        2,
    );
    assert!(out.contains("origin"), "{out}");
    let out = run(&["verify", &l, "--checkpoint", &cm], 2);
    assert!(out.contains("checkpoint refused"), "{out}");
    // A forged signature.
    let note = std::fs::read_to_string(&cl).unwrap();
    let sig_at = note.rfind(' ').unwrap() + 5;
    let mut forged = note.clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    let f = d.p("forged");
    std::fs::write(&f, forged).unwrap();
    run(&["verify", &l, "--checkpoint", &f], 2);
    // An extra line, and reordered lines.
    let mut lines: Vec<&str> = note.split('\n').collect();
    lines.insert(3, "extra");
    std::fs::write(&f, lines.join("\n")).unwrap();
    run(&["verify", &l, "--checkpoint", &f], 2);
    let mut lines: Vec<&str> = note.split('\n').collect();
    lines.swap(1, 2);
    std::fs::write(&f, lines.join("\n")).unwrap();
    run(&["verify", &l, "--checkpoint", &f], 2);
}

#[test]
fn witnesses_cosign_and_verify_requires_them() {
    let d = Dir::new();
    let l = d.p("L");
    let public = format!("{l}.signing.pub");
    run(&["init", &l], 0);
    let (w1, w2) = (d.p("w1.key"), d.p("w2.key"));
    run(&["keygen", "--witness", "auditor.example/w1", "-o", &w1], 0);
    run(
        &["keygen", "--witness", "regulator.example/w2", "-o", &w2],
        0,
    );
    let c1 = d.p("c1");
    run(&["checkpoint", &l, "-o", &c1], 0);
    let c1w = d.p("c1w");
    run(
        &[
            "cosign",
            &c1,
            "--witness-key",
            &w1,
            "--pubkey",
            &public,
            "-o",
            &c1w,
        ],
        0,
    );
    let w1_pub = format!("{w1}.pub");
    let w2_pub = format!("{w2}.pub");
    run(
        &["verify", &l, "--checkpoint", &c1w, "--witness", &w1_pub],
        0,
    );
    let out = run(
        &["verify", &l, "--checkpoint", &c1, "--witness", &w1_pub],
        2,
    );
    assert!(out.contains("auditor.example/w1"), "{out}");
    // Both required; one of two is enough with --witness-threshold 1.
    let vk2 = std::fs::read_to_string(&w2_pub).unwrap();
    run(
        &[
            "verify",
            &l,
            "--checkpoint",
            &c1w,
            "--witness",
            &w1_pub,
            "--witness",
            vk2.trim(),
        ],
        2,
    );
    run(
        &[
            "verify",
            &l,
            "--checkpoint",
            &c1w,
            "--witness",
            &w1_pub,
            "--witness",
            vk2.trim(),
            "--witness-threshold",
            "1",
        ],
        0,
    );
    // A witness cosigns a later checkpoint only with a valid proof from the last one.
    run(&["apply", &l, &d.events("e", "a", 2)], 0);
    let c2 = d.p("c2");
    run(&["checkpoint", &l, "-o", &c2], 0);
    let proof = d.p("p");
    let o = optout(&["prove-consistency", &l, "1", "3"]);
    std::fs::write(&proof, &o.stdout).unwrap();
    run(
        &[
            "cosign",
            &c2,
            "--witness-key",
            &w2,
            "--pubkey",
            &public,
            "--previous",
            &c1,
            "--proof",
            &proof,
        ],
        0,
    );
    let bad = d.p("bad");
    let o = optout(&["prove-consistency", &l, "2", "3"]);
    std::fs::write(&bad, &o.stdout).unwrap();
    let out = run(
        &[
            "cosign",
            &c2,
            "--witness-key",
            &w2,
            "--pubkey",
            &public,
            "--previous",
            &c1,
            "--proof",
            &bad,
        ],
        2,
    );
    assert!(out.contains("not cosigned"), "{out}");
}

#[test]
fn receipts_are_written_per_event_verified_offline_and_tampering_is_refused() {
    let d = Dir::new();
    let l = d.p("L");
    let public = format!("{l}.signing.pub");
    run(&["init", &l], 0);
    let rdir = d.p("receipts");
    let v = json(
        &["apply", &l, &d.events("e1", "a", 3), "--receipts", &rdir],
        0,
    );
    let files: Vec<String> = v["receipts"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 3);
    for f in &files {
        assert!(!f.contains('@') && !f.contains("x.org"), "{f}");
        let body = std::fs::read_to_string(Path::new(&rdir).join(f)).unwrap();
        assert!(!body.contains("@x.org"), "{body}");
    }
    let r = Path::new(&rdir).join(&files[1]);
    let r = r.to_str().unwrap();
    let v = json(&["verify-receipt", r, "--pubkey", &public], 0);
    assert_eq!(v["seq"], 3);
    assert_eq!(v["summary"]["type"], "objection");

    // Still there at a later checkpoint, with the operator's proof.
    run(&["apply", &l, &d.events("e2", "b", 2)], 0);
    let later = d.p("later");
    run(&["checkpoint", &l, "-o", &later], 0);
    let proof = d.p("proof");
    let o = optout(&["prove-consistency", &l, "4", &later]);
    std::fs::write(&proof, &o.stdout).unwrap();
    let v = json(
        &[
            "verify-receipt",
            r,
            "--pubkey",
            &public,
            "--checkpoint",
            &later,
            "--proof",
            &proof,
        ],
        0,
    );
    assert_eq!(v["later_size"], 6);

    // Tampered: the summary, the entry, the proof; another key.
    let original: Value = serde_json::from_str(&std::fs::read_to_string(r).unwrap()).unwrap();
    let t = d.p("tampered.json");
    for (field, value) in [
        (
            "summary",
            serde_json::json!({"seq": 3, "type": "objection_withdrawn"}),
        ),
        ("seq", 4.into()),
        ("entry", "AAAA".into()),
        ("inclusion_proof", serde_json::json!([])),
    ] {
        let mut v = original.clone();
        v[field] = value;
        std::fs::write(&t, serde_json::to_string(&v).unwrap()).unwrap();
        let out = run(&["verify-receipt", &t, "--pubkey", &public], 1);
        assert!(out.contains("FAILED"), "{field}: {out}");
    }
    run(&["init", &d.p("M")], 0);
    let out = run(&["verify-receipt", r, "--pubkey", &d.p("M.signing.pub")], 1);
    assert!(out.contains("FAILED"), "{out}");

    // `optout receipt` makes one for an existing seq.
    let one = d.p("one.json");
    run(&["receipt", &l, "5", "-o", &one], 0);
    let v = json(&["verify-receipt", &one, "--pubkey", &public], 0);
    assert_eq!(v["seq"], 5);
    assert_eq!(v["checkpoint_size"], 6);
}

#[test]
fn an_old_ledger_without_a_signing_key_is_told_how_to_make_one() {
    let d = Dir::new();
    let l = d.p("L");
    run(&["init", &l], 0);
    std::fs::remove_file(format!("{l}.signing.key")).unwrap();
    std::fs::remove_file(format!("{l}.signing.pub")).unwrap();
    let out = run(&["checkpoint", &l], 2);
    assert!(out.contains("optout keygen"), "{out}");
    // Nothing is applied when the receipts cannot be signed.
    let out = run(
        &["apply", &l, &d.events("e", "a", 1), "--receipts", &d.p("r")],
        2,
    );
    assert!(out.contains("optout keygen"), "{out}");
    let v = json(&["head", &l], 0);
    assert_eq!(v["seq"], 1);
    run(&["keygen", &l], 0);
    run(&["checkpoint", &l, "-o", &d.p("c")], 0);
    run(&["verify", &l, "--checkpoint", &d.p("c")], 0);
    let out = run(&["keygen", &l], 2);
    assert!(out.contains("already exists"), "{out}");
}

#[test]
fn the_subject_report_carries_the_receipts_of_their_events() {
    let d = Dir::new();
    let l = d.p("L");
    let public = format!("{l}.signing.pub");
    run(&["init", &l], 0);
    run(&["apply", &l, &d.events("e1", "a", 3)], 0); // a0 at seq 2
                                                     // a0 objects again, later (an identical event would be unchanged), at seq 5.
    let e2 = d.p("e2");
    std::fs::write(
        &e2,
        "{\"type\":\"objection\",\"subject\":\"a0@x.org\",\"at\":\"2025-02-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n",
    )
    .unwrap();
    run(&["apply", &l, &e2], 0);
    let plain = json(&["report", &l, "--subject", "a0@x.org"], 0);
    assert!(plain.get("receipts").is_none());
    let v = json(&["report", &l, "--subject", "a0@x.org", "--receipts"], 0);
    let receipts = v["receipts"].as_array().unwrap();
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 5]);
    for r in receipts {
        assert_eq!(r["summary"]["subject_pseudonym"], v["pseudonym"]);
        let f = d.p("r.json");
        std::fs::write(&f, serde_json::to_string(r).unwrap()).unwrap();
        run(&["verify-receipt", &f, "--pubkey", &public], 0);
    }
}
