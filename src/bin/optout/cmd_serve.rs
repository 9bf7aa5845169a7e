//! `optout serve` and `optout token` (feature `server`): flags into
//! `optout::service`, which does the work.

use std::time::Duration;

use anyhow::{Context, Result};
use optout::service::{self, Scope, ServeConfig, TokenFile};
use serde_json::json;

use crate::args::{ServeArgs, TokenCommand};
use crate::out::Out;
use crate::{load_key, Status};

pub fn serve(a: &ServeArgs) -> Result<Status> {
    let keyer = load_key(&a.ledger, &a.key)?;
    let mut cfg = ServeConfig::new(&a.ledger, &a.tokens, a.listen);
    cfg.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    if let Some(s) = &a.state {
        cfg.state = s.clone();
    }
    cfg.max_body = a.max_body;
    cfg.request_timeout = Duration::from_secs(a.request_timeout.max(1));
    cfg.max_concurrent = a.max_concurrent;
    cfg.idempotency_ttl = a.idempotency_ttl;
    cfg.shutdown_grace = Duration::from_secs(a.shutdown_grace);
    service::run(cfg, keyer)?;
    Ok(Status::Ok)
}

pub fn token(out: &mut Out, cmd: TokenCommand) -> Result<Status> {
    match cmd {
        TokenCommand::Add {
            tokens,
            name,
            scopes,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(|m| anyhow::anyhow!("--scope: {m}")))
                .collect::<Result<Vec<_>>>()?;
            let mut file = TokenFile::load(&tokens)?.unwrap_or_default();
            let secret = file.add(&name, &scopes)?;
            file.save(&tokens)
                .with_context(|| format!("{}: writing the tokens file", tokens.display()))?;
            let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
            // The secret is the output (shown once), so it is printed even with -q.
            if out.json_mode() {
                out.json(json!({"command": "token add", "name": name, "scopes": names, "secret": secret}))?;
            } else {
                writeln!(out.raw(), "{secret}")?;
                out.line(format!(
                    "added token {name} ({}) to {}: the secret above is shown once; only its hash is stored",
                    names.join(", "),
                    tokens.display()
                ))?;
            }
        }
        TokenCommand::List { tokens } => {
            let file = TokenFile::load(&tokens)?
                .with_context(|| format!("{}: no tokens file", tokens.display()))?;
            for t in &file.tokens {
                out.line(format!(
                    "{:<24} {}  (added {})",
                    t.name,
                    t.scopes.join(","),
                    t.created_at
                ))?;
            }
            let list: Vec<_> = file
                .tokens
                .iter()
                .map(|t| json!({"name": t.name, "scopes": t.scopes, "created_at": t.created_at}))
                .collect();
            out.json(json!({"command": "token list", "tokens": list}))?;
        }
    }
    Ok(Status::Ok)
}
