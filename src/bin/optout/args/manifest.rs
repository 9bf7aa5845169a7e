//! The flags of the manifest commands: `manifest`, `check` and `runs add`
//! pins (`--expect-head`, `--checkpoint`), `export --to`.

use super::*;

/// `optout manifest`.
#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// The ledger directory.
    pub ledger: PathBuf,
    /// The purpose (e.g. ai-training); may be omitted when --policy is given.
    #[arg(long, required_unless_present = "policy")]
    pub purpose: Option<String>,
    /// Where to write the manifest.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub out: PathBuf,
    /// Valid time: events that took effect at or before it count [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Ledger clock: only entries recorded at or before this sequence number count [default: head].
    #[arg(long, value_name = "N")]
    pub at_seq: Option<u64>,
    /// Cover only this dataset (repeatable) [default: all].
    #[arg(long = "dataset", value_name = "D")]
    pub datasets: Vec<String>,
    /// A policy file (JSON) [default: the documented default for the purpose].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub expect: ExpectHead,
    /// Record in the manifest the checkpoint it is computed at (the size
    /// and root of the ledger's Merkle tree at its seq), so `check` and
    /// `runs add --checkpoint FILE` can tie it to a signed checkpoint. Catches
    /// the tree up first (hashes the entries appended since it last was) and
    /// opens the ledger for writing.
    #[arg(long)]
    pub record_checkpoint: bool,
}

/// `--expect-head`: a head the ledger must extend.
#[derive(Args, Debug, Clone)]
pub struct ExpectHead {
    /// Refuse a ledger (or manifest) that does not extend this head:
    /// SEQ:HASH, or a file holding what `optout head` printed.
    #[arg(long, value_name = "FILE|SEQ:HASH")]
    pub expect_head: Option<String>,
}

/// `export --to delta|iceberg`: where the deletion vectors go.
#[derive(Args, Debug, Clone)]
pub struct TableArgs {
    /// The Delta table (a directory with `_delta_log/`) to commit deletion vectors to (`--to delta`).
    #[arg(long, value_name = "PATH", required_if_eq("to", "delta"))]
    pub table: Option<PathBuf>,
    /// The manifest dataset whose shards are the table's data files [default: the manifest's only one].
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Accept table files the manifest does not cover (by default an error: nothing is written).
    #[arg(long)]
    pub allow_unknown_files: bool,
    /// Delta: deletion vectors up to this many bytes go inline into the log; 0 = always a file.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub inline_max_bytes: usize,
    /// Iceberg: prefix joined to shard names to give each data file's location (`referenced-data-file`).
    #[arg(long, value_name = "URI")]
    pub data_root: Option<String>,
}

/// `export --to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
    /// Deletion vectors committed to the Delta table named by --table.
    Delta,
    /// An Iceberg v3 Puffin file of deletion-vector-v1 blobs, written to -o.
    Iceberg,
}

// --- manifests tied to checkpoints (issue 16 part 4) ---

/// `check|runs add --checkpoint FILE`: a signed checkpoint the manifest must agree with.
#[derive(Args, Debug, Clone, Default)]
pub struct ManifestCheckpointArg {
    /// A signed checkpoint of the ledger's log (from `optout checkpoint`):
    /// refuse (exit 2) a manifest whose history the checkpoint's does not
    /// agree with (a forked, rewritten or rolled-back ledger), naming the
    /// seq where they diverge. With a ledger, it must extend both the
    /// checkpoint and the one the manifest records; without one, the
    /// manifest must record this very checkpoint (same size and root).
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub verifier: VerifierArgs,
}
