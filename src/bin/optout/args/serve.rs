//! The flags of `optout serve` and `optout token` (feature `server`).

use super::*;

/// `optout serve`.
#[cfg(feature = "server")]
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The ledger directory.
    pub ledger: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The tokens file (`optout token add`).
    #[arg(long, value_name = "TOKENS.json")]
    pub tokens: PathBuf,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "F", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "F", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Request journal and computed manifests [default: LEDGER.serve beside the ledger].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Largest request body in bytes (413 above).
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20)]
    pub max_body: usize,
    /// Seconds a request may take (503 `timeout` after).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub request_timeout: u64,
    /// Requests one token may have in flight (429 above).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_concurrent: usize,
    /// Seconds an Idempotency-Key's answer is kept.
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 24 * 3600)]
    pub idempotency_ttl: u64,
    /// Seconds shutdown waits for requests in flight.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub shutdown_grace: u64,
    #[command(flatten)]
    pub key: KeyArg,
}

/// `optout token ...`.
#[cfg(feature = "server")]
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Add a token (creates the file, mode 0600, if needed) and print its secret once.
    Add {
        /// The tokens file.
        tokens: PathBuf,
        /// The token's name, recorded as the actor of what it writes.
        #[arg(long)]
        name: String,
        /// A scope (repeatable): events:write, records:write, runs:write,
        /// manifests:read, audit:read, admin.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
    },
    /// List the tokens (names and scopes; secrets are not stored).
    List {
        /// The tokens file.
        tokens: PathBuf,
    },
}
