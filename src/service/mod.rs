//! `optout serve`: one ledger shared over HTTP by the privacy desk, the
//! pipelines and the auditors, with scoped bearer tokens (feature `server`).
//!
//! The routes, scopes and error codes are in docs/SERVICE.md and
//! docs/openapi.json. How the pieces fit:
//!
//! ```text
//! request ─► routes (timeout, metrics; token → scope → per-token permit; body cap)
//!              │ parse with the CLI's JSONL parsers (body.rs), pseudonymise
//!              ├─ writes ─► backend::LedgerService::write ─► writer thread
//!              │              (group commit: journal intents → one ledger append + fsync → answers)
//!              └─ reads ──► backend::LedgerService (read lock; manifests, runs, affected, report, head)
//! ```
//!
//! | module | concern |
//! |---|---|
//! | `tokens` | the tokens file, scopes, constant-time checks |
//! | `routes` | the route table, auth, handlers |
//! | `body` | body caps; JSON array or JSONL into one form |
//! | `backend` | the ledger seam: every operation the routes need |
//! | `writer` | the writer thread and its group commit |
//! | `journal` | durable `Idempotency-Key` answers (interim, beside the ledger) |
//! | `fides` | Fides webhook payloads → events (pure) |
//! | `metrics` | Prometheus text |
//! | `error` | errors as JSON with a stable `code` |

mod backend;
mod body;
mod error;
pub mod fides;
mod journal;
mod metrics;
mod routes;
mod tokens;
mod writer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use backend::{LedgerService, ManifestRequest, Sealed};
pub use error::ApiError;
pub use journal::OpenReport;
pub use metrics::Metrics;
pub use routes::{router, App, Route, DIGEST_HEADER, REPLAYED_HEADER, ROUTES, SEQ_HEADER};
pub use tokens::{Scope, Token, TokenEntry, TokenFile, Tokens, SECRET_PREFIX};
pub use writer::{Answer, WriteMeta, WriteOp};

use crate::error::{Error, Result};
use crate::pseudonym::SubjectKeyer;

/// How to run the service (the flags of `optout serve`).
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The ledger directory.
    pub ledger: PathBuf,
    /// The tokens file.
    pub tokens: PathBuf,
    /// Where to listen (port 0: any free port; the bound address is printed).
    pub listen: SocketAddr,
    /// TLS certificate chain and private key (PEM), if TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The state directory (request journal, computed manifests).
    pub state: PathBuf,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Requests one token may have in flight.
    pub max_concurrent: usize,
    /// How long an `Idempotency-Key`'s answer is kept, seconds.
    pub idempotency_ttl: u64,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Writes waiting for the writer, at most.
    pub queue: usize,
    /// Requests per commit group, at most.
    pub max_group: usize,
}

impl ServeConfig {
    /// The defaults, for `ledger` and `tokens` on `listen`.
    pub fn new(ledger: &Path, tokens: &Path, listen: SocketAddr) -> Self {
        ServeConfig {
            ledger: ledger.to_path_buf(),
            tokens: tokens.to_path_buf(),
            listen,
            tls: None,
            state: default_state_dir(ledger),
            max_body: 32 << 20,
            request_timeout: Duration::from_secs(30),
            max_concurrent: 64,
            idempotency_ttl: 7 * 24 * 3600,
            shutdown_grace: Duration::from_secs(30),
            queue: 8192,
            max_group: 1024,
        }
    }
}

/// The default state directory: `LEDGER.serve` beside the ledger.
pub fn default_state_dir(ledger: &Path) -> PathBuf {
    crate::ledger::beside(ledger, ".serve")
}

/// An open service: the ledger, the writer thread, the router's state.
pub struct Service {
    app: Arc<App>,
    writer: Option<backend::WriterThread>,
    /// What opening the request journal found.
    pub journal: OpenReport,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("journal", &self.journal)
            .finish()
    }
}

impl Service {
    /// Opens the ledger (taking its writer lock), the tokens and the state.
    pub fn open(cfg: &ServeConfig, keyer: SubjectKeyer) -> Result<Service> {
        let file = TokenFile::load(&cfg.tokens)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no tokens file: create one with `optout token add {} --name NAME --scope SCOPE`",
                cfg.tokens.display(),
                cfg.tokens.display()
            ))
        })?;
        let tokens = file
            .tokens()
            .map_err(|e| Error::Invalid(format!("{}: {e}", cfg.tokens.display())))?;
        if tokens.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: holds no token",
                cfg.tokens.display()
            )));
        }
        let metrics = Arc::new(Metrics::default());
        let (ledger, writer, journal) = LedgerService::open(
            &cfg.ledger,
            keyer,
            &cfg.state,
            cfg.idempotency_ttl,
            cfg.queue,
            cfg.max_group,
            Arc::clone(&metrics),
        )?;
        let permits = tokens
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent.max(1))),
                )
            })
            .collect();
        let app = Arc::new(App {
            ledger,
            tokens,
            permits,
            metrics,
            max_body: cfg.max_body,
            timeout: cfg.request_timeout,
        });
        Ok(Service {
            app,
            writer: Some(writer),
            journal,
        })
    }

    /// The router (for in-process tests, or to serve yourself).
    pub fn router(&self) -> axum::Router {
        router(Arc::clone(&self.app))
    }

    /// Stops taking writes, lets the writer finish what is queued, and
    /// waits for it. Call after the server stopped taking requests.
    pub fn shutdown(mut self) -> Result<()> {
        self.app.ledger.close();
        if let Some(w) = self.writer.take() {
            w.join()
                .map_err(|_| Error::Other("the writer thread panicked".into()))?;
        }
        Ok(())
    }
}

/// Runs `optout serve` until SIGTERM or SIGINT: prints `listening on
/// URL` on stdout once bound, then serves; on the signal, stops accepting,
/// lets requests in flight (and every queued write) finish, and returns.
pub fn run(cfg: ServeConfig, keyer: SubjectKeyer) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("optout-serve")
        .build()
        .map_err(|e| Error::Other(format!("starting the runtime: {e}")))?;
    let service = Service::open(&cfg, keyer)?;
    let j = service.journal;
    if j.resolved + j.dropped + j.expired > 0 || j.torn_tail {
        eprintln!(
            "optout serve: request journal: {} keys; {} intents reached the ledger, {} never did (dropped), {} expired{}",
            j.keys,
            j.resolved,
            j.dropped,
            j.expired,
            if j.torn_tail { "; a torn last line was cut" } else { "" }
        );
    }
    let app = service.router();
    let served = rt.block_on(async {
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        let grace = cfg.shutdown_grace;
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("optout serve: stopping: finishing requests in flight");
            h.graceful_shutdown(Some(grace));
        });
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        let h = handle.clone();
        tokio::spawn(async move {
            if let Some(addr) = h.listening().await {
                println!("listening on {scheme}://{addr}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
            }
        });
        let mut server_err = None;
        let r = match &cfg.tls {
            Some((cert, key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                match axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await {
                    Ok(tls) => {
                        let mut s = axum_server::bind_rustls(cfg.listen, tls).handle(handle);
                        http1_limits(s.http_builder());
                        s.serve(app.into_make_service()).await
                    }
                    Err(e) => {
                        server_err = Some(format!(
                            "{} / {}: TLS certificate or key: {e}",
                            cert.display(),
                            key.display()
                        ));
                        Ok(())
                    }
                }
            }
            None => {
                let mut s = axum_server::bind(cfg.listen).handle(handle);
                http1_limits(s.http_builder());
                s.serve(app.into_make_service()).await
            }
        };
        match (r, server_err) {
            (Err(e), _) => Err(Error::Other(format!("serving on {}: {e}", cfg.listen))),
            (Ok(()), Some(e)) => Err(Error::Invalid(e)),
            (Ok(()), None) => Ok(()),
        }
    });
    // Whatever the server did, let the writer finish what it took.
    let stopped = service.shutdown();
    served?;
    stopped?;
    eprintln!("optout serve: stopped");
    Ok(())
}

/// Slow clients: headers must arrive within 10 s (the request timeout
/// starts once they have).
fn http1_limits(b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
