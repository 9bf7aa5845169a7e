//! Note keys (Ed25519) in the text forms of C2SP signed-note and Go's
//! `sumdb/note`, and their files.
//!
//! * Verifier key ("vkey"): `<name>+<8 hex key id>+<base64(type || 32-byte public key)>`.
//! * Signer key: `PRIVATE+KEY+<name>+<8 hex key id>+<base64(type || 32-byte seed)>`,
//!   the form Go's `note.NewSigner` reads.
//! * Type `0x01`: Ed25519 signatures over the note text (the log's key).
//!   Type `0x04`: timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature,
//!   a witness's key).
//! * Key id: the first 4 bytes, big-endian, of
//!   `SHA-256(name || 0x0A || type || public key)`.

use std::io::{Read, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::NoteError;

/// The start of a signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id (big-endian on the wire).
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, newline included.
    pub fn to_line(&self) -> String {
        let mut b = self.key_id.to_be_bytes().to_vec();
        b.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(b))
    }
}

/// What a key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `0x01`: Ed25519 over the note text (a log's checkpoints).
    Ed25519,
    /// `0x04`: timestamped Ed25519 cosignatures (a witness).
    Cosignature,
}

impl KeyKind {
    /// The signature type byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyKind::Ed25519 => 0x01,
            KeyKind::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(KeyKind::Ed25519),
            0x04 => Some(KeyKind::Cosignature),
            _ => None,
        }
    }
}

/// Largest key file read (a key is under 200 bytes).
const MAX_KEY_FILE: u64 = 4096;
/// The header of a cosignature's signed message.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";
/// The prefix of a signer key.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Whether `name` is a valid key name: non-empty, no Unicode white space,
/// no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key id of a public key under `name` and `kind`.
pub fn key_id(name: &str, kind: KeyKind, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn key_err(what: impl Into<String>) -> NoteError {
    NoteError::Key {
        path: None,
        what: what.into(),
    }
}

/// Splits `<name>+<hex id>+<base64(type || 32 bytes)>`.
fn parse_parts(text: &str) -> Result<(String, u32, KeyKind, [u8; 32]), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(key_err("a key is <name>+<key id>+<key data>"));
    };
    if !valid_name(name) {
        return Err(key_err("invalid key name"));
    }
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(key_err("the key id is 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| key_err("bad key id"))?;
    let raw = STANDARD
        .decode(data)
        .map_err(|_| key_err("key data is not canonical base64"))?;
    let kind = raw
        .first()
        .and_then(|b| KeyKind::from_byte(*b))
        .ok_or_else(|| key_err("unsupported key type (Ed25519 0x01 and cosignature 0x04 are)"))?;
    let bytes: [u8; 32] = raw[1..]
        .try_into()
        .map_err(|_| key_err("an Ed25519 key is 32 bytes"))?;
    Ok((name.to_owned(), id, kind, bytes))
}

fn encode_parts(name: &str, id: u32, kind: KeyKind, bytes: &[u8; 32]) -> String {
    let mut raw = vec![kind.byte()];
    raw.extend_from_slice(bytes);
    format!("{name}+{id:08x}+{}", STANDARD.encode(raw))
}

fn read_key_file(path: &Path) -> Result<String, NoteError> {
    let io = |op| {
        move |source| NoteError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    };
    let f = std::fs::File::open(path).map_err(io("open"))?;
    let mut s = String::new();
    f.take(MAX_KEY_FILE)
        .read_to_string(&mut s)
        .map_err(io("read"))?;
    Ok(s.strip_suffix('\n').unwrap_or(&s).to_owned())
}

fn write_new_file(path: &Path, text: &str, mode: u32) -> Result<(), NoteError> {
    let io = |op| {
        move |source| NoteError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io("create"))?;
    f.write_all(text.as_bytes()).map_err(io("write"))?;
    f.write_all(b"\n").map_err(io("write"))?;
    f.sync_all().map_err(io("fsync"))?;
    Ok(())
}

fn with_path(e: NoteError, path: &Path) -> NoteError {
    match e {
        NoteError::Key { what, .. } => NoteError::Key {
            path: Some(path.to_path_buf()),
            what,
        },
        e => e,
    }
}

/// A public key that verifies note signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: KeyKind,
    id: u32,
    key: VerifyingKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifierKey({})", self.to_text())
    }
}

impl VerifierKey {
    /// Parses a vkey. The key id must be the one the name and key imply.
    ///
    /// ```
    /// use optout::tlog::VerifierKey;
    /// let k = VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")?;
    /// assert_eq!((k.name(), k.key_id()), ("PeterNeumann", 0xc74f20a3));
    /// assert!(VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
    /// # Ok::<(), optout::tlog::NoteError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, kind, bytes) = parse_parts(text.trim_end_matches('\n'))?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| key_err("not an Ed25519 public key"))?;
        if key_id(&name, kind, &bytes) != id {
            return Err(key_err("the key id does not match the name and key"));
        }
        Ok(VerifierKey {
            name,
            kind,
            id,
            key,
        })
    }

    /// The vkey text.
    pub fn to_text(&self) -> String {
        encode_parts(&self.name, self.id, self.kind, self.key.as_bytes())
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// What the key signs.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Reads a public key file (one vkey line).
    pub fn load_file(path: &Path) -> Result<Self, NoteError> {
        Self::parse(&read_key_file(path)?).map_err(|e| with_path(e, path))
    }

    /// Writes a new public key file (fails if it exists).
    pub fn write_file(&self, path: &Path) -> Result<(), NoteError> {
        write_new_file(path, &self.to_text(), 0o644)
    }

    /// Verifies `sig` over note `text`: `Some(None)` for a plain signature,
    /// `Some(Some(timestamp))` for a cosignature, `None` if it fails.
    pub(crate) fn verify(&self, text: &[u8], sig: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            KeyKind::Ed25519 => {
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text, &sig).ok()?;
                Some(None)
            }
            KeyKind::Cosignature => {
                if sig.len() != 72 {
                    return None;
                }
                let ts = u64::from_be_bytes(sig[..8].try_into().ok()?);
                if ts > i64::MAX as u64 {
                    return None;
                }
                let s = ed25519_dalek::Signature::from_slice(&sig[8..]).ok()?;
                self.key
                    .verify_strict(&cosigned_message(ts, text), &s)
                    .ok()?;
                Some(Some(ts))
            }
        }
    }
}

/// The message a cosignature signs: `cosignature/v1`, `time <ts>`, the note text.
fn cosigned_message(ts: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("{COSIGNATURE_HEADER}time {ts}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

/// A secret key that signs notes (a log's) or cosigns checkpoints (a
/// witness's). `Debug` never shows the secret; it is zeroed on drop.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    kind: KeyKind,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({}+{:08x})", self.name, self.id)
    }
}

impl SignerKey {
    /// A key from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, kind: KeyKind, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(key_err("invalid key name"));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, kind, key.verifying_key().as_bytes());
        Ok(SignerKey {
            name: name.to_owned(),
            kind,
            id,
            key,
        })
    }

    /// A fresh random key (the operating system's generator).
    pub fn generate(name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| key_err(format!("no OS randomness: {e}")))?;
        let k = Self::from_seed(name, kind, seed);
        seed.fill(0);
        k
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+<base64(type || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or_else(|| key_err("a signer key starts with PRIVATE+KEY+"))?;
        let (name, id, kind, seed) = parse_parts(rest)?;
        let k = Self::from_seed(&name, kind, seed)?;
        if k.id != id {
            return Err(key_err("the key id does not match the name and key"));
        }
        Ok(k)
    }

    /// The signer key text (secret: write it only to a 0600 file).
    pub fn to_text(&self) -> String {
        format!(
            "{PRIVATE_PREFIX}{}",
            encode_parts(&self.name, self.id, self.kind, self.key.as_bytes())
        )
    }

    /// Creates a new signing key file (mode 0600, fails if it exists).
    pub fn create_file(path: &Path, name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        let k = Self::generate(name, kind)?;
        write_new_file(path, &k.to_text(), 0o600)?;
        Ok(k)
    }

    /// Reads a signing key file.
    pub fn load_file(path: &Path) -> Result<Self, NoteError> {
        Self::parse(&read_key_file(path)?).map_err(|e| with_path(e, path))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            kind: self.kind,
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs note `text` (an Ed25519 key) or cosigns it at `timestamp`
    /// seconds since the epoch (a cosignature key; `timestamp` is ignored
    /// by an Ed25519 key).
    pub fn sign(&self, text: &str, timestamp: u64) -> NoteSignature {
        let signature = match self.kind {
            KeyKind::Ed25519 => self.key.sign(text.as_bytes()).to_bytes().to_vec(),
            KeyKind::Cosignature => {
                let ts = timestamp.min(i64::MAX as u64);
                let mut s = ts.to_be_bytes().to_vec();
                let sig = self.key.sign(&cosigned_message(ts, text.as_bytes()));
                s.extend_from_slice(&sig.to_bytes());
                s
            }
        };
        NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature,
        }
    }
}
