//! The flags of the transparency log (issue 16): the signing key,
//! receipts, who must have signed a checkpoint, `verify --checkpoint`.

use super::*;

// ---- The transparency log (issue 16) ----

/// The ledger's checkpoint signing key.
#[derive(Args, Debug, Clone, Default)]
pub struct SigningKeyArg {
    /// The checkpoint signing key file [default: LEDGER.signing.key beside the ledger]
    /// (`init`: an existing key to use instead of creating one).
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
}

/// `apply --receipts`.
#[derive(Args, Debug, Clone, Default)]
pub struct ReceiptsArg {
    /// Write one receipt per applied event into DIR (named by seq and
    /// subject pseudonym), in a checkpoint signed at the new head.
    #[arg(long, value_name = "DIR")]
    pub receipts: Option<PathBuf>,
    #[command(flatten)]
    pub signing: SigningKeyArg,
}

/// `report --receipts`.
#[derive(Args, Debug, Clone, Default)]
pub struct ReportReceiptsArg {
    /// Add the receipt of each of the subject's events (in a checkpoint
    /// signed at the head; opens the ledger for writing).
    #[arg(long = "receipts")]
    pub receipts: bool,
    #[command(flatten)]
    pub signing: SigningKeyArg,
}

/// Who must have signed a checkpoint: the log's key and witnesses.
#[derive(Args, Debug, Clone, Default)]
pub struct VerifierArgs {
    /// The log's public key file (LEDGER.signing.pub) [default, with a ledger: LEDGER.signing.pub].
    #[arg(long, value_name = "PATH")]
    pub pubkey: Option<PathBuf>,
    /// A witness whose cosignature is required (repeatable): a vkey, or a file holding one.
    #[arg(long = "witness", value_name = "VKEY")]
    pub witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned [default: all].
    #[arg(long, value_name = "N", requires = "witnesses")]
    pub witness_threshold: Option<usize>,
}

/// `verify --checkpoint`.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckpointArgs {
    /// A signed checkpoint the ledger must extend (repeatable): rollback,
    /// truncation, fork and rewrite are found, with the seqs between which
    /// history diverges.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
    #[command(flatten)]
    pub verifier: VerifierArgs,
}
