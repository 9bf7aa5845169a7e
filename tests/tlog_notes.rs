//! Signed notes, checkpoints, cosignatures and key files: interop with
//! published vectors (Go's sumdb/note, a real CT log checkpoint with
//! witness cosignatures) and the tamper cases.
#![cfg(feature = "signing")]

use optout::tlog::{
    cosign, empty_root, key_id, leaf_hash, Checkpoint, CheckpointVerifier, KeyKind, NoteError,
    SignedNote, SignerKey, VerifierKey,
};

// golang.org/x/mod/sumdb/note, note_test.go.
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn go_sumdb_note_vector_signs_and_verifies_byte_for_byte() {
    let sk = SignerKey::parse(GO_SKEY).unwrap();
    let vk = VerifierKey::parse(GO_VKEY).unwrap();
    assert_eq!(sk.verifier(), vk);
    assert_eq!(sk.to_text(), GO_SKEY);
    assert_eq!(vk.to_text(), GO_VKEY);
    let mut note = SignedNote::new(GO_TEXT.into()).unwrap();
    note.push(sk.sign(GO_TEXT, 0));
    let want = format!("{GO_TEXT}\n{GO_SIG}");
    assert_eq!(note.to_text(), want, "Ed25519 is deterministic");
    let parsed = SignedNote::parse(want.as_bytes()).unwrap();
    assert_eq!(parsed.text(), GO_TEXT);
    assert_eq!(parsed.verify(std::slice::from_ref(&vk)).unwrap().len(), 1);
    let tampered = want.replace("cryptography", "cryptographY");
    assert!(matches!(
        SignedNote::parse(tampered.as_bytes())
            .unwrap()
            .verify(&[vk]),
        Err(NoteError::BadSignature { .. })
    ));
}

// A checkpoint of the arche2025h1 staging CT log with its Ed25519 note
// signature, an RFC 6962 (0x05) signature and five witness cosignatures
// (0x04), as published; and the keys of the log and of one witness.
const ARCHE: &str = "arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

\u{2014} arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u{2014} arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u{2014} transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u{2014} witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
\u{2014} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
\u{2014} witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
";
const ARCHE_LOG: &str =
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f";
const REMORA: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

#[test]
fn a_real_ct_checkpoint_with_witness_cosignatures_verifies() {
    let log = VerifierKey::parse(ARCHE_LOG).unwrap();
    let remora = VerifierKey::parse(REMORA).unwrap();
    assert_eq!(remora.kind(), KeyKind::Cosignature);
    let v = CheckpointVerifier::new(log)
        .origin("arche2025h1.staging.ct.transparency.dev")
        .witnesses(vec![remora], 1);
    let ok = v.verify(ARCHE.as_bytes()).unwrap();
    assert_eq!(ok.checkpoint.size, 1_432_088_532);
    assert_eq!(ok.cosigned_by.len(), 1);
    assert_eq!(ok.cosigned_by[0].0, "remora.n621.de");
    assert!(ok.cosigned_by[0].1 > 1_700_000_000, "a 2026 timestamp");
    // The same note with another size: every signature fails.
    let forged = ARCHE.replace("1432088532", "1432088533");
    assert!(matches!(
        v.verify(forged.as_bytes()),
        Err(NoteError::BadSignature { .. })
    ));
}

fn log_key() -> SignerKey {
    SignerKey::from_seed(
        "optout.example/ledger/00112233445566778899aabbccddeeff",
        KeyKind::Ed25519,
        [7; 32],
    )
    .unwrap()
}

fn witness(n: u8) -> SignerKey {
    SignerKey::from_seed(
        &format!("witness.example/w{n}"),
        KeyKind::Cosignature,
        [n; 32],
    )
    .unwrap()
}

fn signed(size: u64) -> (Checkpoint, String) {
    let k = log_key();
    let cp = Checkpoint::new(k.name(), size, leaf_hash(&size.to_le_bytes()));
    let note = cp.sign(&k).unwrap();
    (cp, note)
}

fn verifier() -> CheckpointVerifier {
    let k = log_key();
    CheckpointVerifier::new(k.verifier()).origin(k.name())
}

#[test]
fn checkpoint_text_is_exactly_the_c2sp_form() {
    let (cp, note) = signed(42);
    let root = cp.to_text().lines().nth(2).unwrap().to_owned();
    assert!(note.starts_with(&format!(
        "{}\n42\n{root}\n\n\u{2014} {} ",
        cp.origin, cp.origin
    )));
    assert_eq!(note.lines().count(), 5);
    assert_eq!(verifier().verify(note.as_bytes()).unwrap().checkpoint, cp);
    assert_eq!(Checkpoint::from_text(&cp.to_text()).unwrap(), cp);
    let empty = Checkpoint::new("o", 0, empty_root());
    assert_eq!(Checkpoint::from_text(&empty.to_text()).unwrap(), empty);
}

#[test]
fn tampered_checkpoints_are_rejected() {
    let (cp, note) = signed(42);
    let v = verifier();
    let bad = |text: &str| v.verify(text.as_bytes()).unwrap_err();

    // A forged signature: one bit of the signature flipped.
    let line = note.lines().nth(4).unwrap();
    let b64 = line.rsplit(' ').next().unwrap();
    let mut chars: Vec<char> = b64.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let forged = note.replace(b64, &chars.into_iter().collect::<String>());
    assert!(
        matches!(bad(&forged), NoteError::BadSignature { .. }),
        "{}",
        bad(&forged)
    );

    // The body changed after signing: size, root, an extra line.
    assert!(matches!(
        bad(&note.replace("\n42\n", "\n43\n")),
        NoteError::BadSignature { .. }
    ));
    let extra = note.replacen("\n\n", "\nextension\n\n", 1);
    assert!(matches!(bad(&extra), NoteError::BadSignature { .. }));

    // Reordered, missing or non-canonical lines, even when signed by the key.
    let k = log_key();
    let root = cp.to_text().lines().nth(2).unwrap().to_owned();
    for text in [
        format!("{}\n{root}\n42\n", cp.origin),
        format!("{}\n42\n", cp.origin),
        format!("42\n{root}\n"),
        format!("{}\n042\n{root}\n", cp.origin),
        format!("{}\n+42\n{root}\n", cp.origin),
        format!("{}\n42\n{}\n", cp.origin, &root[..root.len() - 1]),
        format!("\n42\n{root}\n"),
    ] {
        let mut n = match SignedNote::new(text.clone()) {
            Ok(n) => n,
            Err(_) => continue, // not even a note text
        };
        n.push(k.sign(&text, 0));
        let e = bad(&n.to_text());
        assert!(matches!(e, NoteError::Checkpoint { .. }), "{text:?}: {e}");
    }

    // Lines outside the signature block, or malformed signature lines.
    for text in [
        format!("{note}trailing line\n"),
        note.replace("\n\n", "\n"),
        note.replace('\u{2014}', "--"),
        note.trim_end().to_owned(),
        note.replace('\n', "\r\n"),
        format!("{note}\u{2014} \n"),
    ] {
        let e = bad(&text);
        assert!(matches!(e, NoteError::Malformed { .. }), "{text:?}: {e}");
    }
    // A second blank line moves the separator: the signed text changes.
    assert!(v.verify(note.replace("\n\n", "\n\n\n").as_bytes()).is_err());
    // Not UTF-8, and too many signatures.
    let mut b = note.clone().into_bytes();
    b[3] = 0xff;
    assert!(matches!(
        v.verify(&b),
        Err(NoteError::Malformed { line: 1, .. })
    ));
    let sig = note.lines().nth(4).unwrap();
    let many = format!("{note}{}", format!("{sig}\n").repeat(100));
    assert!(matches!(bad(&many), NoteError::Malformed { .. }));
}

#[test]
fn other_origins_other_keys_and_key_id_collisions_are_rejected() {
    let (_, note) = signed(42);
    // A checkpoint of another ledger, signed by its own key with the same
    // kind of name: the name differs, so the signature is unknown.
    let other =
        SignerKey::from_seed("optout.example/ledger/ffff", KeyKind::Ed25519, [8; 32]).unwrap();
    let their = Checkpoint::new(other.name(), 42, empty_root())
        .sign(&other)
        .unwrap();
    assert!(matches!(
        verifier().verify(their.as_bytes()),
        Err(NoteError::NoKnownSignature { .. })
    ));
    // Another origin signed by *our* key (a misuse): refused by origin.
    let k = log_key();
    let elsewhere = Checkpoint::new("optout.example/ledger/elsewhere", 42, empty_root())
        .sign(&k)
        .unwrap();
    assert!(matches!(
        verifier().verify(elsewhere.as_bytes()),
        Err(NoteError::WrongOrigin { .. })
    ));
    // An impostor key under our name (another key id): ignored, so the
    // note has no known signature.
    let impostor = SignerKey::from_seed(k.name(), KeyKind::Ed25519, [9; 32]).unwrap();
    assert_ne!(impostor.key_id(), k.key_id());
    let text = Checkpoint::new(k.name(), 99, empty_root()).to_text();
    let mut n = SignedNote::new(text.clone()).unwrap();
    n.push(impostor.sign(&text, 0));
    assert!(matches!(
        verifier().verify(n.to_text().as_bytes()),
        Err(NoteError::NoKnownSignature { .. })
    ));
    // A key whose id collides with ours (same name, same 4-byte id): the
    // verifier takes it for our key and the signature fails. (Finding a
    // real collision takes ~2^32 keys; the line is what it would produce.)
    let mut sig = impostor.sign(&text, 0);
    sig.key_id = k.key_id();
    let mut n = SignedNote::new(text).unwrap();
    n.push(sig);
    assert!(matches!(
        verifier().verify(n.to_text().as_bytes()),
        Err(NoteError::BadSignature { .. })
    ));
    // A valid note plus an unknown signature still verifies (witnesses the
    // verifier does not know are ignored).
    let w = witness(5);
    let with_unknown = cosign(note.as_bytes(), &w, 1).unwrap();
    assert!(verifier().verify(with_unknown.as_bytes()).is_ok());
    // Key id derivation is the spec's.
    let vk = k.verifier();
    let pubkey: [u8; 32] = {
        let t = vk.to_text();
        let b64 = t.rsplit('+').next().unwrap();
        let raw = base64_decode(b64);
        raw[1..].try_into().unwrap()
    };
    assert_eq!(key_id(k.name(), KeyKind::Ed25519, &pubkey), k.key_id());
}

fn base64_decode(s: &str) -> Vec<u8> {
    // A tiny independent decoder for the test (standard alphabet, padded).
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => 0,
    };
    let b = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in b {
        acc = (acc << 6) | u32::from(val(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn witness_policy_requires_its_cosignatures() {
    let (_, note) = signed(7);
    let (w1, w2, w3) = (witness(1), witness(2), witness(3));
    let v = verifier().witnesses(vec![w1.verifier(), w2.verifier(), w3.verifier()], 2);
    let one = cosign(note.as_bytes(), &w1, 100).unwrap();
    match v.verify(one.as_bytes()) {
        Err(NoteError::MissingCosignatures {
            threshold: 2,
            verified: 1,
            missing,
        }) => assert_eq!(missing, ["witness.example/w2", "witness.example/w3"]),
        other => panic!("{other:?}"),
    }
    // The same witness twice counts once.
    let twice = cosign(one.as_bytes(), &w1, 101).unwrap();
    assert!(v.verify(twice.as_bytes()).is_err());
    let two = cosign(one.as_bytes(), &w3, 102).unwrap();
    let ok = v.verify(two.as_bytes()).unwrap();
    assert_eq!(
        ok.cosigned_by,
        [
            ("witness.example/w1".to_owned(), 100),
            ("witness.example/w3".to_owned(), 102)
        ]
    );
    // A cosignature with a changed timestamp does not verify.
    let n = SignedNote::parse(two.as_bytes()).unwrap();
    let mut sigs = n.signatures().to_vec();
    sigs[1].signature[7] ^= 1;
    let mut m = SignedNote::new(n.text().to_owned()).unwrap();
    for s in sigs {
        m.push(s);
    }
    assert!(matches!(
        v.verify(m.to_text().as_bytes()),
        Err(NoteError::BadSignature { .. })
    ));
    // Witness signatures without the log's own are not a checkpoint.
    let text = n.text().to_owned();
    let mut only_w = SignedNote::new(text.clone()).unwrap();
    only_w.push(w1.sign(&text, 5));
    only_w.push(w2.sign(&text, 5));
    assert!(matches!(
        v.verify(only_w.to_text().as_bytes()),
        Err(NoteError::MissingLogSignature { .. })
    ));
    // Cosigning something that is not a checkpoint is refused.
    let k = log_key();
    let mut junk = SignedNote::new("hello\n".into()).unwrap();
    junk.push(k.sign("hello\n", 0));
    assert!(cosign(junk.to_text().as_bytes(), &w1, 1).is_err());
}

#[test]
fn key_files_round_trip_and_keep_the_secret_private() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ledger.signing.key");
    let public = dir.path().join("ledger.signing.pub");
    let k = SignerKey::create_file(&key, "optout.example/ledger/ab", KeyKind::Ed25519).unwrap();
    k.verifier().write_file(&public).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+optout.example/ledger/ab+") && text.ends_with('\n'));
    let loaded = SignerKey::load_file(&key).unwrap();
    assert_eq!(loaded.verifier(), k.verifier());
    assert_eq!(VerifierKey::load_file(&public).unwrap(), k.verifier());
    assert!(
        !format!("{loaded:?}").contains(&text[30..50]),
        "Debug shows no secret"
    );
    // Never overwritten.
    assert!(SignerKey::create_file(&key, "x", KeyKind::Ed25519).is_err());
    assert!(k.verifier().write_file(&public).is_err());
    // A damaged file names itself.
    std::fs::write(&public, "optout.example/ledger/ab+00000000+AAAA\n").unwrap();
    let e = VerifierKey::load_file(&public).unwrap_err().to_string();
    assert!(e.contains("ledger.signing.pub"), "{e}");
    for bad in [
        "",
        "name",
        "name+c74f20a3",
        "na me+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ApPc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+BRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
    }
    assert!(SignerKey::parse(GO_VKEY).is_err());
    assert!(SignerKey::parse(&GO_SKEY.replace("c74f20a3", "c74f20a4")).is_err());
}
