//! A real `optout serve` for tests: a ledger with records, a tokens file
//! with one token per scope, the server started on a free 127.0.0.1 port
//! (it prints the port it bound), and a small blocking HTTP/1.1 client.
#![allow(dead_code)]

#[path = "http.rs"]
mod http;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[allow(unused_imports)]
pub use http::{read_response, Conn, Resp};

pub const BIN: &str = env!("CARGO_BIN_EXE_optout");

/// Runs the CLI, asserting success; returns stdout.
pub fn cli(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "optout {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The scopes, one token each, plus `admin` and `none` (a valid token
/// whose only scope is unrelated to the route tested is made per test).
pub const SCOPES: [&str; 6] = [
    "events:write",
    "records:write",
    "runs:write",
    "manifests:read",
    "audit:read",
    "admin",
];

/// A ledger with records and a tokens file.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ledger: PathBuf,
    pub tokens: PathBuf,
    /// Scope name (as the token's name, `:` → `-`) → secret.
    pub secrets: HashMap<String, String>,
}

pub const RECORDS: &str = r#"{"dataset":"forum","shard":"part-0.parquet","row":0,"subjects":["alice@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest","key":"post/1"}
{"dataset":"forum","shard":"part-0.parquet","row":1,"subjects":["bob@example.com"],"source":"forum.example.com","collected_at":"2024-03-02T09:30:00Z","basis":"legitimate_interest","key":"post/2"}
{"dataset":"forum","shard":"part-0.parquet","row":2,"subjects":["dave@example.com"],"source":"forum.example.com","collected_at":"2024-03-02T09:30:00Z","basis":"legitimate_interest"}
{"dataset":"meetings","shard":"2024-q1.tar","row":0,"subjects":["bob@example.com","carol@example.com"],"source":"meet.example.com","collected_at":"2024-02-01T10:00:00Z","basis":"consent","categories":["audio"]}
"#;

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("L");
        let tokens = dir.path().join("tokens.json");
        cli(&["init", ledger.to_str().unwrap()]);
        let recs = dir.path().join("records.jsonl");
        std::fs::write(&recs, RECORDS).unwrap();
        cli(&["ingest", ledger.to_str().unwrap(), recs.to_str().unwrap()]);
        let mut secrets = HashMap::new();
        for s in SCOPES {
            let name = s.replace(':', "-");
            secrets.insert(name.clone(), add_token(&tokens, &name, &[s]));
        }
        Fixture {
            dir,
            ledger,
            tokens,
            secrets,
        }
    }

    pub fn secret(&self, scope: &str) -> &str {
        &self.secrets[&scope.replace(':', "-")]
    }

    pub fn start(&self, extra: &[&str]) -> Server {
        Server::start(&self.ledger, &self.tokens, extra)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `optout token add`: the secret it printed.
pub fn add_token(tokens: &Path, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["token", "add", tokens.to_str().unwrap(), "--name", name];
    for s in scopes {
        args.push("--scope");
        args.push(s);
    }
    cli(&args).lines().next().unwrap().trim().to_string()
}

/// A running server (killed on drop).
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub stderr: PathBuf,
}

impl Server {
    pub fn start(ledger: &Path, tokens: &Path, extra: &[&str]) -> Server {
        let stderr = ledger.with_extension(format!("stderr-{}", rand_suffix()));
        let mut child = Command::new(BIN)
            .args([
                "serve",
                ledger.to_str().unwrap(),
                "--tokens",
                tokens.to_str().unwrap(),
            ])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .or_else(|| line.trim().strip_prefix("listening on https://"))
            .unwrap_or_else(|| {
                panic!(
                    "server did not start: {line:?} {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .to_string();
        Server {
            child,
            addr,
            stderr,
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::open(&self.addr).unwrap()
    }

    /// One request on a fresh connection.
    pub fn req(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
        self.req_h(method, path, token, &[], body)
    }

    pub fn req_h(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        self.conn().send(method, path, &h, body).unwrap()
    }

    /// SIGTERM, then wait: the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let st = self.child.wait().unwrap();
        std::mem::forget(self);
        st
    }

    /// SIGKILL, then wait.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 1000 + u64::from(std::process::id())
}

/// The ledger's events as (seq, type, ref), read with the library after the server stopped.
pub fn events_of(ledger: &Path) -> Vec<(u64, String, Option<String>)> {
    let l = optout::Ledger::open_read_only(ledger, None).unwrap();
    l.index()
        .events()
        .iter()
        .map(|(s, e)| (s.0, e.type_name().to_string(), e.reference.clone()))
        .collect()
}

/// An objection line for `subject` with `ref`.
pub fn objection(subject: &str, reference: &str) -> String {
    format!(
        r#"{{"type":"objection","subject":"{subject}","at":"2025-02-01T00:00:00Z","purposes":["ai-training"],"ref":"{reference}"}}"#
    )
}
