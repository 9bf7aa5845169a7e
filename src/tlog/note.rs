//! C2SP signed notes (<https://c2sp.org/signed-note>): a text, a blank
//! line, then signature lines `— <key name> base64(key id || signature)`.
//!
//! Parsing follows the spec and Go's `sumdb/note`: valid UTF-8 without
//! control characters other than newline, at most 1 MiB and 100
//! signatures, the text separated from the signatures by the *last* blank
//! line, every signature line well formed. Verification ignores signatures
//! by unknown keys (a key is its name *and* its id), rejects the whole note
//! if a known key's signature fails, and rejects a note no known key
//! signed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub use super::error::NoteError;
use super::keys::VerifierKey;
pub use super::keys::{NoteSignature, SIGNATURE_PREFIX};

/// Largest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Most signature lines accepted (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

pub(crate) fn malformed(line: usize, what: impl Into<String>) -> NoteError {
    NoteError::Malformed {
        line,
        what: what.into(),
    }
}

/// A verified signature: which of the known keys made it, and, for a
/// cosignature, its timestamp (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Index into the keys given to [`SignedNote::verify`].
    pub key: usize,
    /// The cosignature's timestamp.
    pub timestamp: Option<u64>,
}

/// A signed note, parsed but not yet trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// Checks note text: ends in a newline, no control characters but newline.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    for (i, line) in text.split('\n').enumerate() {
        if line.chars().any(|c| c < ' ') {
            return Err(malformed(i + 1, "control character"));
        }
    }
    if !text.ends_with('\n') {
        return Err(malformed(
            text.split('\n').count(),
            "text must end in a newline",
        ));
    }
    Ok(())
}

impl SignedNote {
    /// A note of `text` with no signatures yet.
    pub fn new(text: String) -> Result<Self, NoteError> {
        check_text(&text)?;
        if text.contains("\n\n") || text.starts_with('\n') {
            // Allowed by the spec, but our notes (checkpoints) have none,
            // and a blank line would be taken as the separator when parsed.
            return Err(malformed(1, "blank line in the text"));
        }
        Ok(SignedNote {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note (structure only: nothing is verified).
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                len: bytes.len(),
                max: MAX_NOTE_BYTES,
            });
        }
        let msg = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            malformed(line, "not valid UTF-8")
        })?;
        check_text(msg)?;
        let split = msg
            .rfind("\n\n")
            .ok_or_else(|| malformed(1, "no blank line before the signatures"))?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        let first_sig_line = text.matches('\n').count() + 2;
        if sigs.is_empty() {
            return Err(malformed(first_sig_line, "no signature lines"));
        }
        let mut signatures = Vec::new();
        for (i, line) in sigs
            .strip_suffix('\n')
            .unwrap_or(sigs)
            .split('\n')
            .enumerate()
        {
            let n = first_sig_line + i;
            if signatures.len() == MAX_SIGNATURES {
                return Err(malformed(
                    n,
                    format!("more than {MAX_SIGNATURES} signatures"),
                ));
            }
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed(n, "a signature line starts with \"\u{2014} \""))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| malformed(n, "a signature line is \"\u{2014} <name> <base64>\""))?;
            if !super::keys::valid_name(name) {
                return Err(malformed(n, "invalid key name"));
            }
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| malformed(n, "signature is not canonical base64"))?;
            if raw.len() < 5 {
                return Err(malformed(n, "signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                signature: raw[4..].to_vec(),
            });
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text (ending in a newline).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line.
    pub fn push(&mut self, sig: NoteSignature) {
        self.signatures.push(sig);
    }

    /// The note as text: the text, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.to_line());
        }
        s
    }

    /// Verifies the signatures by `known` keys (see the module docs);
    /// returns one [`Verified`] per known key that signed, in line order.
    pub fn verify(&self, known: &[VerifierKey]) -> Result<Vec<Verified>, NoteError> {
        let mut out: Vec<Verified> = Vec::new();
        for sig in &self.signatures {
            let Some(key) = known
                .iter()
                .position(|k| k.name() == sig.name && k.key_id() == sig.key_id)
            else {
                continue;
            };
            let bad = || NoteError::BadSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            };
            let timestamp = known[key]
                .verify(self.text.as_bytes(), &sig.signature)
                .ok_or_else(bad)?;
            if !out.iter().any(|v| v.key == key) {
                out.push(Verified { key, timestamp });
            }
        }
        if out.is_empty() {
            return Err(NoteError::NoKnownSignature {
                names: self.signatures.iter().map(|s| s.name.clone()).collect(),
            });
        }
        Ok(out)
    }
}
