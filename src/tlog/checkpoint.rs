//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): a signed note
//! whose text is the log's origin, its tree size and its root hash, and
//! witness cosignatures on them (<https://c2sp.org/tlog-cosignature>).
//!
//! ```text
//! optout.example/ledger/47890787707bf6ea9876ef58b3ccaa79
//! 42
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — optout.example/ledger/47890787707bf6ea9876ef58b3ccaa79 Az3grlgtzPIC...
//! — witness.example/w1 jWbPPwAAAABkGFDL...
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::keys::{KeyKind, SignerKey, VerifierKey};
use super::merkle::Hash;
use super::note::{NoteError, SignedNote};

/// A log's tree head: origin, size, root, and any extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (for optout: `<prefix>/<ledger id hex>`).
    pub origin: String,
    /// Leaves in the tree (for optout: the ledger's seq).
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Opaque extension lines (optout writes none).
    pub extensions: Vec<String>,
}

fn bad(line: usize, what: &str) -> NoteError {
    NoteError::Checkpoint {
        line,
        what: what.to_owned(),
    }
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.as_bytes())
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses note text strictly: a non-empty origin, a decimal size
    /// without leading zeros, a canonical base64 root of 32 bytes, then
    /// only non-empty extension lines.
    pub fn from_text(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad(1, "text must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(bad(1, "empty origin"));
        }
        let size = lines.next().ok_or_else(|| bad(2, "missing tree size"))?;
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        let size = match size.parse::<u64>() {
            Ok(n) if canonical && size.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(bad(
                    2,
                    "the tree size is a decimal number without leading zeros",
                ))
            }
        };
        let root = lines.next().ok_or_else(|| bad(3, "missing root hash"))?;
        let root: [u8; 32] = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(3, "the root hash is 32 bytes in canonical base64"))?;
        let mut extensions = Vec::new();
        for (i, e) in lines.enumerate() {
            if e.is_empty() {
                return Err(bad(4 + i, "empty extension line"));
            }
            extensions.push(e.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root: Hash::from_bytes(root),
            extensions,
        })
    }

    /// The signed note of this checkpoint, signed by the log's key.
    pub fn sign(&self, key: &SignerKey) -> Result<String, NoteError> {
        if key.verifier().kind() != KeyKind::Ed25519 {
            return Err(NoteError::Key {
                path: None,
                what: "a log signs checkpoints with an Ed25519 (0x01) key".into(),
            });
        }
        let mut note = SignedNote::new(self.to_text())?;
        note.push(key.sign(note.text(), 0));
        Ok(note.to_text())
    }
}

/// Adds a witness's cosignature (at `timestamp`, seconds since the epoch)
/// to a signed checkpoint note.
///
/// A witness must first have verified the log's signature and that this
/// checkpoint is consistent with the last one it cosigned for the origin:
/// a cosignature states that it saw no other tree of this size.
pub fn cosign(note: &[u8], witness: &SignerKey, timestamp: u64) -> Result<String, NoteError> {
    let mut n = SignedNote::parse(note)?;
    Checkpoint::from_text(n.text())?;
    let sig = witness.sign(n.text(), timestamp);
    n.push(sig);
    Ok(n.to_text())
}

/// What a verified checkpoint note holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Witnesses whose cosignatures verified: name and timestamp (0 for a
    /// plain Ed25519 witness signature).
    pub cosigned_by: Vec<(String, u64)>,
}

/// Verifies checkpoint notes: the log's signature, the origin, and a
/// threshold of witness cosignatures.
///
/// ```
/// use optout::tlog::{cosign, Checkpoint, CheckpointVerifier, KeyKind, SignerKey, empty_root};
/// let log = SignerKey::from_seed("example.org/log", KeyKind::Ed25519, [1; 32])?;
/// let w = SignerKey::from_seed("witness.example/w1", KeyKind::Cosignature, [2; 32])?;
/// let note = Checkpoint::new("example.org/log", 0, empty_root()).sign(&log)?;
/// let v = CheckpointVerifier::new(log.verifier()).origin("example.org/log");
/// assert_eq!(v.verify(note.as_bytes())?.checkpoint.size, 0);
///
/// let strict = v.clone().witnesses(vec![w.verifier()], 1);
/// assert!(strict.verify(note.as_bytes()).is_err()); // not cosigned yet
/// let cosigned = cosign(note.as_bytes(), &w, 1_700_000_000)?;
/// assert_eq!(strict.verify(cosigned.as_bytes())?.cosigned_by[0].1, 1_700_000_000);
/// # Ok::<(), optout::tlog::NoteError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CheckpointVerifier {
    log: VerifierKey,
    origin: Option<String>,
    witnesses: Vec<VerifierKey>,
    threshold: usize,
}

impl CheckpointVerifier {
    /// Verifies the log's signature by `log` (an Ed25519 key); any origin.
    pub fn new(log: VerifierKey) -> Self {
        CheckpointVerifier {
            log,
            origin: None,
            witnesses: Vec::new(),
            threshold: 0,
        }
    }

    /// Requires this origin (refuses checkpoints of other logs).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Requires cosignatures by at least `threshold` of `witnesses`.
    pub fn witnesses(mut self, witnesses: Vec<VerifierKey>, threshold: usize) -> Self {
        self.witnesses = witnesses;
        self.threshold = threshold;
        self
    }

    /// The log's key.
    pub fn log_key(&self) -> &VerifierKey {
        &self.log
    }

    /// The required origin, if one is set.
    pub fn expected_origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Parses and verifies a checkpoint note.
    pub fn verify(&self, note: &[u8]) -> Result<VerifiedCheckpoint, NoteError> {
        if self.log.kind() != KeyKind::Ed25519 {
            return Err(NoteError::Key {
                path: None,
                what: "a log's key is an Ed25519 (0x01) key".into(),
            });
        }
        if self.threshold > self.witnesses.len() {
            return Err(NoteError::Key {
                path: None,
                what: format!(
                    "{} cosignatures required of {} witnesses",
                    self.threshold,
                    self.witnesses.len()
                ),
            });
        }
        let n = SignedNote::parse(note)?;
        let mut known = Vec::with_capacity(1 + self.witnesses.len());
        known.push(self.log.clone());
        known.extend(self.witnesses.iter().cloned());
        let verified = n.verify(&known)?;
        if !verified.iter().any(|v| v.key == 0) {
            return Err(NoteError::MissingLogSignature {
                name: self.log.name().to_owned(),
            });
        }
        let checkpoint = Checkpoint::from_text(n.text())?;
        if let Some(o) = &self.origin {
            if *o != checkpoint.origin {
                return Err(NoteError::WrongOrigin {
                    expected: o.clone(),
                    found: checkpoint.origin,
                });
            }
        }
        let cosigned_by: Vec<(String, u64)> = verified
            .iter()
            .filter(|v| v.key > 0)
            .map(|v| (known[v.key].name().to_owned(), v.timestamp.unwrap_or(0)))
            .collect();
        if cosigned_by.len() < self.threshold {
            let missing = self
                .witnesses
                .iter()
                .enumerate()
                .filter(|(i, _)| !verified.iter().any(|v| v.key == i + 1))
                .map(|(_, w)| w.name().to_owned())
                .collect();
            return Err(NoteError::MissingCosignatures {
                threshold: self.threshold,
                verified: cosigned_by.len(),
                missing,
            });
        }
        Ok(VerifiedCheckpoint {
            checkpoint,
            cosigned_by,
        })
    }
}
