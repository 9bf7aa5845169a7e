//! Subject pseudonyms: keyed blake3, with the key kept apart from the ledger.
//!
//! An unkeyed hash of an email address is reversible by trying a dictionary
//! of addresses; a keyed one is not without the key. The key file lives
//! outside the ledger directory (by default `LEDGER.key` beside it), created
//! with mode 0600; the ledger stores only the key's fingerprint so that a
//! wrong key is refused instead of silently making new pseudonyms.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ids::hex;
use crate::ids::SubjectKey;

const PSEUDONYM_CONTEXT: &str = "optout 2026-11 subject pseudonym v1";
const FINGERPRINT_CONTEXT: &str = "optout 2026-11 subject key fingerprint v1";
const SNAPSHOT_MAC_CONTEXT: &str = "optout 2026-11 snapshot mac v1";
const KEY_FILE_HEADER: &str = "optout-subject-key-v1";
/// Largest subject key file read (the real one is 87 bytes).
pub const MAX_KEY_FILE: u64 = 4096;

/// Makes [`SubjectKey`] pseudonyms from external subject ids.
#[derive(Clone)]
pub struct SubjectKeyer {
    derived: [u8; 32],
    fingerprint: [u8; 32],
    snapshot: [u8; 32],
}

impl std::fmt::Debug for SubjectKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SubjectKeyer(fingerprint {})",
            hex(&self.fingerprint[..8])
        )
    }
}

impl SubjectKeyer {
    /// A keyer from 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        SubjectKeyer {
            derived: blake3::derive_key(PSEUDONYM_CONTEXT, &secret),
            fingerprint: blake3::derive_key(FINGERPRINT_CONTEXT, &secret),
            snapshot: blake3::derive_key(SNAPSHOT_MAC_CONTEXT, &secret),
        }
    }

    /// A fresh random secret from the operating system.
    pub fn generate_secret() -> Result<[u8; 32]> {
        let mut s = [0u8; 32];
        getrandom::fill(&mut s).map_err(|e| Error::Other(format!("no OS randomness: {e}")))?;
        Ok(s)
    }

    /// Writes a new random key file at `path` (mode 0600); fails if it exists.
    pub fn create_key_file(path: &Path) -> Result<Self> {
        use std::io::Write;
        let secret = Self::generate_secret()?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let io = |e: std::io::Error| Error::io(path, "create key file", e);
        let mut f = opts.open(path).map_err(io)?;
        writeln!(f, "{KEY_FILE_HEADER}\n{}", hex(&secret)).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Self::from_secret(secret))
    }

    /// Reads a key file written by [`SubjectKeyer::create_key_file`] (at
    /// most [`MAX_KEY_FILE`] bytes).
    pub fn load_key_file(path: &Path) -> Result<Self> {
        let bytes = crate::fsutil::read_bounded(path, MAX_KEY_FILE, "a subject key file")?;
        let text = String::from_utf8_lossy(&bytes);
        let bad = || {
            Error::Other(format!(
                "{}: not an optout subject key file",
                path.display()
            ))
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(bad());
        }
        let h = lines.next().ok_or_else(bad)?.trim();
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut secret = [0u8; 32];
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self::from_secret(secret))
    }

    /// The key that authenticates the ledger's snapshots: the secret stays
    /// outside the ledger directory, so someone who can only write the
    /// directory cannot make a snapshot an open trusts.
    pub fn snapshot_key(&self) -> crate::storage::SnapshotKey {
        crate::storage::SnapshotKey::from_bytes(self.snapshot)
    }

    /// The key's fingerprint, stored in the ledger to refuse a wrong key.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The pseudonym of an external subject id.
    ///
    /// Surrounding white space is ignored, and an id containing `@` (an
    /// email address) is lowercased, so `Alice@Example.com ` and
    /// `alice@example.com` are the same person. Other ids are case-sensitive.
    ///
    /// ```
    /// use optout::SubjectKeyer;
    /// let k = SubjectKeyer::from_secret([7; 32]);
    /// assert_eq!(k.pseudonym("Alice@Example.com "), k.pseudonym("alice@example.com"));
    /// assert_ne!(k.pseudonym("alice"), SubjectKeyer::from_secret([8; 32]).pseudonym("alice"));
    /// assert_eq!(k.pseudonym("ÉLISE@example.com"), k.pseudonym("élise@example.com"));
    /// assert_ne!(k.pseudonym("Alice"), k.pseudonym("alice"));
    /// ```
    pub fn pseudonym(&self, external_id: &str) -> SubjectKey {
        let id = external_id.trim();
        // Lowercasing allocates; an ASCII id without capitals (most emails)
        // is its own lowercase form, so it is hashed as it is.
        let lower =
            id.contains('@') && (!id.is_ascii() || id.bytes().any(|b| b.is_ascii_uppercase()));
        let h = if lower {
            blake3::keyed_hash(&self.derived, id.to_lowercase().as_bytes())
        } else {
            blake3::keyed_hash(&self.derived, id.as_bytes())
        };
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.as_bytes()[..16]);
        SubjectKey(out)
    }
}

/// `p` made absolute with symbolic links resolved, as far as it exists.
fn resolved(p: &Path) -> Option<std::path::PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(p.file_name()?))
}

/// Whether the key file `key` lies inside the ledger directory `ledger`:
/// whoever can read the directory then has the key, which defeats the
/// pseudonyms and the snapshots' authentication.
pub fn key_inside_ledger(key: &Path, ledger: &Path) -> bool {
    match (resolved(key), resolved(ledger)) {
        (Some(k), Some(l)) => k.starts_with(&l),
        _ => false,
    }
}

/// What weakens the key file `key` of the ledger `ledger`, one sentence
/// each: kept inside the ledger directory, or readable or writable by
/// group or others.
pub fn key_file_warnings(key: &Path, ledger: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if key_inside_ledger(key, ledger) {
        out.push(format!(
            "the subject key {} is inside the ledger directory {}: anyone who can read the ledger can \
             match subject ids and forge snapshots; move it outside",
            key.display(),
            ledger.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(key) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(format!(
                    "the subject key {} has mode {mode:04o}: group or others can read or change it; chmod 600 it",
                    key.display()
                ));
            }
        }
    }
    out
}
