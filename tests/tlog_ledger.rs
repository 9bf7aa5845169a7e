//! The transparency log wired into the ledger (issue 16): the tree in
//! `LEDGER/tree/` is caught up lazily (appends never touch it), survives a
//! crash at any I/O operation of a catch-up, and gives the root the log's
//! entries give; checkpoints are checked against a ledger (truncation,
//! rewrite located between checkpoints); receipts stop verifying against
//! a later checkpoint of a rewritten log, and a tampered summary is refused.
#![cfg(feature = "signing")]

use std::path::Path;

use optout::storage::{Fault, MemIo};
use optout::tlog::{KeyKind, Later, ReceiptError, SignerKey};
use optout::{
    divergence, jsonl, verify_ledger_receipt, CheckpointCheck, Ledger, LedgerOptions, Seq,
    SubjectKeyer,
};

const ID: [u8; 16] = *b"tlog-ledger-id!!";

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

fn opts() -> LedgerOptions {
    LedgerOptions {
        segment_size: 4096,
        ledger_id: Some(ID),
        ..Default::default()
    }
}

fn signer() -> SignerKey {
    SignerKey::from_seed(&optout::origin_of(&ID), KeyKind::Ed25519, [9; 32]).unwrap()
}

/// Objections by s{from}..s{to} (one event each, one batch).
fn objections(l: &mut Ledger<MemIo>, from: u32, to: u32, tag: &str) -> Seq {
    let ev: String = (from..to)
        .map(|i| {
            format!(
                "{{\"type\":\"objection\",\"subject\":\"s{i}@x.org\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"],\"ref\":\"{tag}\"}}\n"
            )
        })
        .collect();
    l.apply(jsonl::parse_events(ev.as_bytes(), "e", &keyer()).unwrap())
        .unwrap()
}

fn ledger(io: &MemIo) -> Ledger<MemIo> {
    Ledger::create_with(io.clone(), Path::new("/l"), keyer(), opts()).unwrap()
}

fn nodes_exist(io: &MemIo) -> bool {
    use optout::storage::Io;
    io.exists(Path::new("/l/tree/nodes")).unwrap()
}

#[test]
fn appends_leave_the_tree_alone_and_a_catch_up_gives_the_logs_root() {
    let io = MemIo::new();
    let mut l = ledger(&io);
    for b in 0..4 {
        objections(&mut l, b * 100, b * 100 + 100, "a");
    }
    assert!(!nodes_exist(&io), "an append wrote the tree");
    let (size, root) = l.tree_head().unwrap();
    assert_eq!(size, 401);
    assert!(nodes_exist(&io));
    assert_eq!(l.roots_from_log(&[401]).unwrap()[0], Some(root));
    // More appends: the tree lags until asked again.
    objections(&mut l, 400, 700, "b");
    let (size2, root2) = l.tree_head().unwrap();
    assert_eq!(size2, 701);
    assert_eq!(l.roots_from_log(&[701]).unwrap()[0], Some(root2));
    // The proofs the caught-up tree gives verify against the log's roots.
    let p = l.consistency_proof(401, 701).unwrap();
    p.verify(&root, &root2).unwrap();
    let inc = l.inclusion_proof(Seq(333), 701).unwrap();
    assert_eq!(inc.leaf_index, 332);
    assert_eq!(inc.tree_size, 701);
}

/// A catch-up cut at every I/O operation: every crash image reopens, and
/// the tree it catches up to has the root of the log's entries.
#[test]
fn a_crash_during_the_lazy_catch_up_costs_only_recomputation() {
    let base = MemIo::new();
    {
        let mut l = ledger(&base);
        objections(&mut l, 0, 300, "a");
        l.tree_head().unwrap(); // a store on disk, 301 leaves
        objections(&mut l, 300, 900, "b"); // the store lags by 600
    }
    let want = {
        let l = Ledger::open_with(base.fork(), Path::new("/l"), Some(keyer()), opts()).unwrap();
        l.roots_from_log(&[901]).unwrap()[0].unwrap()
    };
    let mut k = 0u64;
    let mut cut = 0;
    loop {
        let io = base.fork();
        let l = Ledger::open_with(io.clone(), Path::new("/l"), Some(keyer()), opts()).unwrap();
        let start = io.op_count();
        io.set_fault(Some(Fault::From(start + k)));
        let done = l.tree_head().is_ok();
        io.set_fault(None);
        drop(l);
        for (i, image) in io.crash_images(k, 5).into_iter().enumerate() {
            let l = Ledger::open_with(image, Path::new("/l"), Some(keyer()), opts())
                .unwrap_or_else(|e| panic!("op {k}, image {i}: reopen: {e}"));
            let (size, root) = l.tree_head().unwrap();
            assert_eq!((size, root), (901, want), "op {k}, image {i}");
            let p = l.inclusion_proof(Seq(450), 901).unwrap();
            assert_eq!(p.tree_size, 901);
        }
        if done {
            break;
        }
        cut += 1;
        k += 1;
    }
    assert!(cut > 3, "the catch-up made only {cut} I/O operations");
}

#[test]
fn a_rewritten_log_is_found_between_checkpoints_and_its_receipts_stop_verifying() {
    let sk = signer();
    let io = MemIo::new();
    let mut a = ledger(&io);
    objections(&mut a, 0, 99, "a"); // seq 2..=100
    let c100 = a.checkpoint(&sk).unwrap();
    objections(&mut a, 99, 148, "a"); // ..=149
    let c149 = a.checkpoint(&sk).unwrap();
    objections(&mut a, 148, 199, "a"); // ..=200
    let c200 = a.checkpoint(&sk).unwrap();
    let receipt = a.receipt(Seq(150), &c200).unwrap();

    // The same ledger (same id, same key) rewritten from seq 150 on.
    let io2 = MemIo::new();
    let mut b = ledger(&io2);
    objections(&mut b, 0, 99, "a");
    objections(&mut b, 99, 148, "a");
    objections(&mut b, 148, 199, "REWRITTEN");
    objections(&mut b, 199, 249, "b"); // ..=250
    let b250 = b.checkpoint(&sk).unwrap();

    let v = b.checkpoint_verifier(sk.verifier(), vec![], 0);
    let cps: Vec<_> = [&c100, &c149, &c200]
        .iter()
        .map(|c| {
            let cp = b.verify_checkpoint_note(c.note.as_bytes(), &v).unwrap();
            (cp.size, cp.root)
        })
        .collect();
    let checks = b.check_checkpoints(&cps).unwrap();
    assert_eq!(checks[0], CheckpointCheck::Extends { size: 100 });
    assert_eq!(checks[1], CheckpointCheck::Extends { size: 149 });
    assert!(matches!(
        checks[2],
        CheckpointCheck::Diverged { size: 200, .. }
    ));
    assert_eq!(divergence(&checks), Some((149, 200)));
    assert_eq!(divergence(&checks[..2]), None);

    // A truncated copy (the original at seq 149) names the first missing seq.
    let mut t = ledger(&MemIo::new());
    objections(&mut t, 0, 99, "a");
    objections(&mut t, 99, 148, "a");
    let checks = t.check_checkpoints(&cps).unwrap();
    assert_eq!(
        checks[2],
        CheckpointCheck::Truncated {
            size: 200,
            head: 149
        }
    );
    assert_eq!(divergence(&checks), Some((149, 150)));

    // The receipt verifies on its own, and against the original's later
    // checkpoint; not against the rewritten log's.
    let rv = a.checkpoint_verifier(sk.verifier(), vec![], 0);
    verify_ledger_receipt(&receipt, &rv, None).unwrap();
    objections(&mut a, 199, 249, "b");
    let a250 = a.checkpoint(&sk).unwrap();
    let pa = a.consistency_proof(200, 250).unwrap();
    let later = Later {
        checkpoint: a250.note.as_bytes(),
        proof: &pa,
    };
    assert_eq!(
        verify_ledger_receipt(&receipt, &rv, Some(later))
            .unwrap()
            .later
            .unwrap()
            .size,
        250
    );
    let pb = b.consistency_proof(200, 250).unwrap();
    let later = Later {
        checkpoint: b250.note.as_bytes(),
        proof: &pb,
    };
    assert!(matches!(
        verify_ledger_receipt(&receipt, &rv, Some(later)),
        Err(ReceiptError::NotExtended { .. })
    ));

    // A summary that is not what the entry says is refused.
    let mut forged = receipt.clone();
    forged.summary["type"] = "objection_withdrawn".into();
    assert!(matches!(
        verify_ledger_receipt(&forged, &rv, None),
        Err(ReceiptError::Inconsistent {
            field: "summary",
            ..
        })
    ));
    // The summary is pseudonymised: no subject id.
    let text = receipt.to_json();
    assert!(!text.contains("@x.org"), "{text}");
    assert!(receipt.summary["subject_pseudonym"].is_string());
}

#[test]
fn a_checkpoint_of_another_ledger_is_refused() {
    let sk = signer();
    let a = ledger(&MemIo::new());
    let c = a.checkpoint(&sk).unwrap();
    let other = Ledger::create_with(
        MemIo::new(),
        Path::new("/l"),
        keyer(),
        LedgerOptions {
            ledger_id: Some([7; 16]),
            ..opts()
        },
    )
    .unwrap();
    let v = other.checkpoint_verifier(sk.verifier(), vec![], 0);
    let e = other
        .verify_checkpoint_note(c.note.as_bytes(), &v)
        .unwrap_err();
    assert!(e.to_string().contains("origin"), "{e}");
    // And a receipt of another ledger's checkpoint cannot be made.
    assert!(other.receipt(Seq(1), &c).is_err());
}

/// A `tree/` of another history of the same ledger id (restored beside
/// another log) is not trusted: the checkpoint is of the log's entries.
#[test]
fn a_tree_from_another_history_is_recomputed_not_signed() {
    use optout::storage::Io;
    let (io_a, io_b) = (MemIo::new(), MemIo::new());
    let mut a = ledger(&io_a);
    objections(&mut a, 0, 600, "a");
    a.tree_head().unwrap();
    let mut b = ledger(&io_b);
    objections(&mut b, 0, 600, "b");
    objections(&mut b, 600, 650, "b");
    for f in io_a.list_dir(Path::new("/l/tree")).unwrap() {
        let from = Path::new("/l/tree").join(&f);
        let bytes = io_a.read_all(&from).unwrap();
        io_b.create_dir(Path::new("/l/tree")).unwrap();
        io_b.create_file(&from).unwrap();
        io_b.write_at(&from, 0, &bytes).unwrap();
    }
    let want = b.roots_from_log(&[651]).unwrap()[0].unwrap();
    assert_eq!(b.tree_head().unwrap(), (651, want));
    let c = b.checkpoint(&signer()).unwrap();
    assert_eq!(c.checkpoint.root, want);
}
