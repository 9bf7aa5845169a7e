//! Bearer tokens: the tokens file, scopes, and checking a presented secret.
//!
//! The file (`TOKENS.json`, mode 0600) holds, per token, its name, its
//! scopes and a blake3 hash of its secret (`derive_key` with a context of
//! its own); the secret itself is printed once by `optout token add` and
//! stored nowhere. A presented secret is hashed and compared with every
//! stored hash in constant time ([`blake3::Hash`]'s `==`), all of them,
//! so the time taken says nothing about which token came close.
//!
//! ```
//! use optout::service::{Scope, TokenFile};
//!
//! let mut file = TokenFile::default();
//! let secret = file.add("privacy-desk", &[Scope::EventsWrite]).unwrap();
//! let tokens = file.tokens().unwrap();
//! let who = tokens.authenticate(&secret).unwrap();
//! assert_eq!(who.name, "privacy-desk");
//! assert!(who.allows(Scope::EventsWrite) && !who.allows(Scope::AuditRead));
//! assert!(tokens.authenticate("optout_not-a-token").is_none());
//! ```

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// The `derive_key` context of a stored token hash (used for nothing else).
const TOKEN_CONTEXT: &str = "optout 2026-12 service token v1";
/// Every secret starts with this, so a leaked one is easy to grep for.
pub const SECRET_PREFIX: &str = "optout_";
/// The largest tokens file read (it holds a few hundred bytes per token).
const MAX_FILE: u64 = 4 << 20;

/// What a token may do. `admin` may do everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Append events: `/v1/events`, `/v1/signals`, `/v1/integrations/fides`.
    EventsWrite,
    /// Register records: `/v1/records`.
    RecordsWrite,
    /// Register training runs: `POST /v1/runs`.
    RunsWrite,
    /// Compute and fetch manifests: `/v1/manifests`.
    ManifestsRead,
    /// Read runs and subjects: `GET /v1/runs`, `/v1/subjects/*`.
    AuditRead,
    /// Everything.
    Admin,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Scope; 6] = [
        Scope::EventsWrite,
        Scope::RecordsWrite,
        Scope::RunsWrite,
        Scope::ManifestsRead,
        Scope::AuditRead,
        Scope::Admin,
    ];

    /// The scope's name in the tokens file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::RecordsWrite => "records:write",
            Scope::RunsWrite => "runs:write",
            Scope::ManifestsRead => "manifests:read",
            Scope::AuditRead => "audit:read",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name (trimmed, lowercased).
    pub fn parse(s: &str) -> std::result::Result<Scope, String> {
        let s = s.trim().to_lowercase();
        Scope::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scope::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scope {s:?}: expected one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of the tokens file, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it; recorded as the actor of what it writes.
    pub name: String,
    /// 64 hex digits: `blake3::derive_key(TOKEN_CONTEXT, secret)`.
    pub hash: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// The tokens file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Format version (1).
    pub version: u32,
    /// The tokens, in the order they were added.
    pub tokens: Vec<TokenEntry>,
}

impl Default for TokenFile {
    fn default() -> Self {
        TokenFile {
            version: 1,
            tokens: Vec::new(),
        }
    }
}

/// A token the server accepts: its name and scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The token's name (the actor).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    hash: blake3::Hash,
}

impl Token {
    /// Whether the token may do what `scope` covers (`admin` may do all).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|&s| s == scope || s == Scope::Admin)
    }
}

/// The tokens a server accepts.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

fn hash_secret(secret: &str) -> blake3::Hash {
    blake3::Hash::from(blake3::derive_key(TOKEN_CONTEXT, secret.as_bytes()))
}

fn valid_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token name {name:?}: use 1 to 64 of A-Z a-z 0-9 - _ . (it is recorded as the actor of what the token writes)"
        ))
    }
}

impl TokenFile {
    /// Reads a tokens file. `Ok(None)` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<TokenFile>> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, "open tokens file", e)),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_FILE + 1), &mut text)
            .map_err(|e| Error::io(path, "read tokens file", e))?;
        if text.len() as u64 > MAX_FILE {
            return Err(Error::Invalid(format!(
                "{}: a tokens file is at most {MAX_FILE} bytes",
                path.display()
            )));
        }
        let file: TokenFile = serde_json::from_str(&text).map_err(|e| {
            crate::InputError::new(
                &path.display().to_string(),
                e.line() as u64,
                None,
                format!("not a tokens file: {e}"),
            )
        })?;
        if file.version != 1 {
            return Err(Error::Invalid(format!(
                "{}: tokens file version {} (this build reads 1)",
                path.display(),
                file.version
            )));
        }
        file.tokens()
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        Ok(Some(file))
    }

    /// Writes the file atomically with mode 0600 (temp, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        text.push('\n');
        crate::fsutil::atomic_write_mode(path, text.as_bytes(), Some(0o600))
    }

    /// Adds a token named `name` with `scopes`; returns its secret (shown
    /// once: only its hash is kept).
    pub fn add(&mut self, name: &str, scopes: &[Scope]) -> Result<String> {
        valid_name(name).map_err(Error::Invalid)?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(Error::Invalid(format!(
                "a token named {name:?} already exists"
            )));
        }
        if scopes.is_empty() {
            return Err(Error::Invalid("a token needs at least one scope".into()));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Other(format!("no OS randomness: {e}")))?;
        let secret = format!("{SECRET_PREFIX}{}", blake3::Hash::from(raw).to_hex());
        let mut names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        self.tokens.push(TokenEntry {
            name: name.to_string(),
            hash: hash_secret(&secret).to_hex().to_string(),
            scopes: names.into_iter().map(str::to_string).collect(),
            created_at: Timestamp::now().to_rfc3339(),
        });
        Ok(secret)
    }

    /// The tokens, checked (names valid and distinct, hashes and scopes well-formed).
    pub fn tokens(&self) -> std::result::Result<Tokens, String> {
        let mut out: Vec<Token> = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            valid_name(&t.name)?;
            if out.iter().any(|x| x.name == t.name) {
                return Err(format!("token name {:?} appears twice", t.name));
            }
            let hash = blake3::Hash::from_hex(&t.hash)
                .map_err(|_| format!("token {:?}: hash is not 64 hex digits", t.name))?;
            let scopes = t
                .scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(|m| format!("token {:?}: {m}", t.name)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(Token {
                name: t.name.clone(),
                scopes,
                hash,
            });
        }
        Ok(Tokens { tokens: out })
    }
}

impl Tokens {
    /// The token whose secret this is, if any. Compares with every stored
    /// hash in constant time and never stops early.
    pub fn authenticate(&self, secret: &str) -> Option<&Token> {
        let h = hash_secret(secret);
        let mut found = None;
        for t in &self.tokens {
            // `blake3::Hash`'s `==` is constant-time.
            if t.hash == h {
                found = Some(t);
            }
        }
        found
    }

    /// Every token (names and scopes).
    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_admin_allows_all() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.name()), Ok(s));
        }
        assert!(Scope::parse("events:read").is_err());
        let mut f = TokenFile::default();
        let secret = f.add("ops", &[Scope::Admin]).unwrap();
        let t = f.tokens().unwrap();
        let who = t.authenticate(&secret).unwrap();
        assert!(Scope::ALL.iter().all(|&s| who.allows(s)));
    }

    #[test]
    fn stores_only_a_hash_and_refuses_duplicates() {
        let mut f = TokenFile::default();
        let secret = f.add("desk", &[Scope::EventsWrite]).unwrap();
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 64);
        let text = serde_json::to_string(&f).unwrap();
        assert!(!text.contains(&secret[SECRET_PREFIX.len()..]));
        assert!(f.add("desk", &[Scope::AuditRead]).is_err());
        assert!(f.add("bad name", &[Scope::AuditRead]).is_err());
        assert!(f.add("x", &[]).is_err());
        // Another secret, a truncated one, the hash itself: all refused.
        let t = f.tokens().unwrap();
        assert!(t.authenticate(&secret[..secret.len() - 1]).is_none());
        assert!(t.authenticate(&f.tokens[0].hash).is_none());
    }

    #[test]
    fn save_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.json");
        assert!(TokenFile::load(&p).unwrap().is_none());
        let mut f = TokenFile::default();
        f.add("a", &[Scope::RunsWrite, Scope::RunsWrite]).unwrap();
        f.save(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = TokenFile::load(&p).unwrap().unwrap();
        assert_eq!(back, f);
        assert_eq!(back.tokens[0].scopes, vec!["runs:write".to_string()]);
        std::fs::write(
            &p,
            r#"{"version":1,"tokens":[{"name":"a","hash":"zz","scopes":[],"created_at":""}]}"#,
        )
        .unwrap();
        assert!(TokenFile::load(&p).is_err());
    }
}
