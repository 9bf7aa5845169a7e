//! The flags of the ledger's housekeeping commands: `quarantine`, `runs`,
//! `purposes`, `vocab`, and `apply`'s vocabulary checks.

use super::*;

/// `optout quarantine ...`.
#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List the quarantined torn tails, and whether each was acknowledged.
    List {
        /// The ledger directory.
        ledger: PathBuf,
    },
    /// Record in the log that the quarantined torn tails were looked at (a
    /// crash cut them; nothing acknowledged is missing).
    Ack {
        /// The ledger directory.
        ledger: PathBuf,
        /// Why (e.g. a ticket); recorded with the acknowledgement.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        key: KeyArg,
    },
}

/// `optout runs ...`.
#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Register a training run that used MANIFEST.
    Add {
        /// The ledger directory.
        ledger: PathBuf,
        /// The model trained.
        #[arg(long)]
        model: String,
        /// The manifest the run applied.
        #[arg(long, value_name = "MANIFEST")]
        manifest: PathBuf,
        /// The run's name, unique in the ledger [default: MODEL-run-K].
        #[arg(long)]
        name: Option<String>,
        /// When training started (RFC 3339) [default: now].
        #[arg(long, value_name = "RFC3339")]
        started_at: Option<String>,
        /// Refuse (exit 2, nothing registered) a manifest that events
        /// recorded since would change (a fresh one would exclude more).
        #[arg(long)]
        require_fresh: bool,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        checkpoint: ManifestCheckpointArg,
    },
    /// List the registered training runs.
    List {
        /// The ledger directory.
        ledger: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
}

// --- declared purposes and apply's checks (issue 21) ---

/// `apply --new-purpose --strict`.
#[derive(Args, Debug, Clone, Copy)]
pub struct ApplyVocab {
    /// Declare the purposes the events name that the ledger has not
    /// declared (in the same commit), instead of refusing them as typos.
    #[arg(long)]
    pub new_purpose: bool,
    /// Refuse the whole batch (exit 2, nothing written) when an event's
    /// subject has no records, or a scoped objection or takedown matches none.
    #[arg(long)]
    pub strict: bool,
}

/// `optout purposes ...`.
#[derive(Subcommand, Debug)]
pub enum PurposesCommand {
    /// Declare a purpose (declaring one twice changes nothing).
    Add {
        /// The ledger directory.
        ledger: PathBuf,
        /// The purpose's name (e.g. ads-personalisation).
        name: String,
        /// What it means, shown by `purposes list`.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        key: KeyArg,
    },
    /// List the declared purposes with counts of the events naming each
    /// (and purposes named by events but never declared).
    List {
        /// The ledger directory.
        ledger: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
}

/// `optout vocab ...`.
#[derive(Subcommand, Debug)]
pub enum VocabCommand {
    /// Declare a word of a vocabulary (declaring one twice changes nothing).
    Add {
        /// The ledger directory.
        ledger: PathBuf,
        /// The vocabulary extended.
        vocabulary: VocabKind,
        /// The word (a basis: a-z, 0-9 and _, not close to a built-in one).
        name: String,
        #[command(flatten)]
        key: KeyArg,
    },
}

/// The vocabularies `vocab add` extends.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// A legal basis beyond the built-in ones.
    Basis,
    /// A purpose (as `purposes add`).
    Purpose,
}
