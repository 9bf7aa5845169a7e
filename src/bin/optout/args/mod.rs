//! The command line: every command, flag and default. The commands and
//! the intake flags here; the other flag groups by command family in
//! `manifest`, `ledger`, `serve` and `tlog`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod ledger;
mod manifest;
#[cfg(feature = "server")]
mod serve;
mod tlog;

pub use ledger::*;
pub use manifest::*;
#[cfg(feature = "server")]
pub use serve::*;
pub use tlog::*;

/// Keeps a tamper-evident ledger of privacy events beside training data and
/// computes per-file exclusion manifests.
///
/// Exit codes: 0 ok; 1 found something (`check` found excluded records used,
/// `verify` found damage, `affected` found a violation); 2 error (bad input,
/// I/O, usage).
#[derive(Parser, Debug)]
#[command(name = "optout", version, max_term_width = 100)]
pub struct Cli {
    /// Output format on stdout. JSON output always carries "schema_version": 1.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No progress bars and no human-readable messages (JSON, `report` and
    /// `export` output are still written; errors still go to stderr).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Writing commands: wait up to SECONDS for another writer to release
    /// the ledger's lock instead of failing at once (readers never wait).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub wait: Option<f64>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// The subject key: needed by commands that take subject ids or write
/// snapshots; used when present by every command that opens a ledger (it
/// authenticates snapshots: without it the log is replayed).
#[derive(Args, Debug, Clone)]
pub struct KeyArg {
    /// The subject key file [default: $OPTOUT_KEY_FILE, else LEDGER.key beside the ledger].
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

/// `optout signals`.
#[derive(Args, Debug)]
pub struct SignalsArgs {
    /// The ledger directory.
    pub ledger: PathBuf,
    /// Crawl metadata JSONL files ('-' = stdin), one all-or-nothing batch.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// An AI user agent whose robots.txt rules count (repeatable; replaces
    /// the default list: GPTBot, CCBot, Google-Extended, ClaudeBot,
    /// anthropic-ai, Applebot-Extended, Bytespider, meta-externalagent, cohere-ai).
    #[arg(long = "agent", value_name = "NAME")]
    pub agents: Vec<String>,
    /// A purpose the reservations cover (repeatable) [default: ai-training].
    #[arg(long = "purpose", value_name = "P")]
    pub purposes: Vec<String>,
    /// Print what would be recorded; record nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub key: KeyArg,
}

/// How `ingest` reads files that are not JSONL records.
#[derive(Args, Debug, Default)]
pub struct IngestFormat {
    /// The files are Parquet: the shard is the path relative to --root, the row the position in the file.
    #[arg(long, conflicts_with = "webdataset", requires = "mapping")]
    pub parquet: bool,
    /// The files are WebDataset tars: the row is the sample index, the key `__key__`.
    #[arg(long, requires = "mapping")]
    pub webdataset: bool,
    /// The record mapping (JSON): where each record field comes from (docs/TABLES.md).
    #[arg(long, value_name = "MAP.json")]
    pub mapping: Option<PathBuf>,
    /// Shards are paths relative to DIR ('/' separators; default: each file's name).
    #[arg(long, value_name = "DIR", requires = "mapping")]
    pub root: Option<PathBuf>,
    /// Register every row again with `replace` set (a file that changed on purpose).
    #[arg(long, requires = "mapping")]
    pub replace: bool,
    /// Write a snapshot after the ingest once this many rows were appended
    /// or replayed since the newest one, and a tenth of the ledger's
    /// records (0 = never), so the next open need not replay them.
    #[arg(long, value_name = "ROWS", default_value_t = optout::AUTO_SNAPSHOT_ROWS)]
    pub snapshot_after: u64,
}

/// `optout derive`.
#[derive(Args, Debug)]
pub struct DeriveArgs {
    /// The ledger directory.
    pub ledger: PathBuf,
    /// The derived dataset.
    #[arg(long, value_name = "NAME")]
    pub dataset: String,
    /// The datasets parents may come from (a record parent must name one;
    /// key and content-hash parents match among their records); repeat the
    /// flag or separate with commas.
    #[arg(
        long = "from",
        value_name = "DATASET",
        required = true,
        value_delimiter = ','
    )]
    pub from: Vec<String>,
    /// Record parents that match nothing yet; each resolves once a matching
    /// record is registered (until then it excludes nothing).
    #[arg(long)]
    pub allow_missing_parents: bool,
    /// FILE... are Parquet files of lineage columns, one row per link:
    /// `shard`, `row` and the parent as `parent_dataset`, `parent_shard`,
    /// `parent_row`, or `parent_key`, or `parent_content_hash`.
    #[arg(long)]
    pub parquet: bool,
    /// Lineage JSONL files ('-' = stdin): `{"shard","row","parents":[...]}`;
    /// with --parquet, Parquet files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub key: KeyArg,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a ledger; creates the subject key file (mode 0600) unless --key-file names an existing one.
    Init {
        /// The ledger directory to create.
        ledger: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        signing: SigningKeyArg,
    },
    /// Register records from JSONL files ('-' = stdin), or from Parquet files
    /// or WebDataset tars by a mapping; all files are one all-or-nothing batch.
    Ingest {
        /// The ledger directory.
        ledger: PathBuf,
        /// JSONL files of records ('-' = stdin); with --parquet / --webdataset, the data files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        #[command(flatten)]
        format: IngestFormat,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Append events from JSONL files ('-' = stdin), or from a DSR tool's CSV
    /// or Parquet export by a mapping; all files are one all-or-nothing batch.
    Apply {
        /// The ledger directory.
        ledger: PathBuf,
        /// JSONL files of events ('-' = stdin); with --csv / --parquet, the export files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// The files are CSV (a header line, then one request per line).
        #[arg(long, conflicts_with = "parquet", requires = "mapping")]
        csv: bool,
        /// The files are Parquet.
        #[arg(long, requires = "mapping")]
        parquet: bool,
        /// The event mapping (JSON): where each event field comes from (docs/TABLES.md).
        #[arg(long, value_name = "MAP.json")]
        mapping: Option<PathBuf>,
        #[command(flatten)]
        vocab: ApplyVocab,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        receipts: ReceiptsArg,
    },
    /// Record machine-readable opt-out signals (robots.txt AI agents, TDMRep,
    /// noai, ai.txt, aipref Content-Usage, C2PA) from crawl metadata JSONL.
    /// Unparsable signals reserve too (reason signal_unparsable). Re-running
    /// adds nothing already recorded; a signal missing from a later crawl
    /// lifts nothing.
    Signals(SignalsArgs),
    // --- derive (issue 15) ---
    /// Register rows of a derived dataset (deduplicated, tokenised, packed
    /// shards) with their parents, from lineage JSONL files ('-' = stdin);
    /// all files are one all-or-nothing derivation. A derived row is
    /// excluded when any ancestor is, with the ancestors' reasons.
    Derive(DeriveArgs),
    // --- end derive ---
    /// Compute an exclusion manifest and write it to OUT.
    Manifest(ManifestArgs),
    /// Show a manifest: header, clocks, digest, counts per reason and dataset.
    Show {
        /// The manifest file.
        manifest: PathBuf,
    },
    /// Compare two manifests: newly excluded and re-included rows, per reason and shard.
    Diff {
        /// The older manifest.
        old: PathBuf,
        /// The newer manifest.
        new: PathBuf,
    },
    /// Check what a training job used against a manifest; exit 1 if any of it is excluded.
    Check {
        /// The manifest file.
        manifest: PathBuf,
        /// JSONL of {"dataset","shard","row"} or {"key"} lines ('-' = stdin).
        used: String,
        /// The ledger the manifest came from (needed to resolve {"key"} lines).
        #[arg(long, value_name = "LEDGER")]
        ledger: Option<PathBuf>,
        /// Do not count used rows the manifest does not cover as a finding:
        /// rows of shards it does not list, and rows past a shard's end
        /// (by default they are: a shard or row the ledger does not know is
        /// usually a naming or numbering mismatch, and has unknown provenance).
        #[arg(long, visible_alias = "allow-uncovered")]
        allow_unknown_shards: bool,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        expect: ExpectHead,
        #[command(flatten)]
        checkpoint: ManifestCheckpointArg,
    },
    /// List the excluded records of a manifest (dataset, shard, row, reasons[, key]), or
    /// write them as deletion vectors into a Delta table (`--to delta --table PATH`) or an
    /// Iceberg Puffin file (`--to iceberg -o OUT.puffin`).
    Export {
        /// The manifest file.
        manifest: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        to: ExportFormat,
        /// Output file ('-' = stdout).
        #[arg(short = 'o', long = "output", value_name = "OUT", default_value = "-")]
        out: String,
        /// The ledger the manifest came from: adds each record's key.
        #[arg(long, value_name = "LEDGER")]
        ledger: Option<PathBuf>,
        // --- derive (issue 15) ---
        /// With --to jsonl --ledger: per excluded derived row, its excluded parents and why.
        #[arg(long, requires = "ledger")]
        parents: bool,
        // --- end derive ---
        #[command(flatten)]
        table: TableArgs,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Training runs: register one, list them.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Runs that trained on a subject's records, and whether before or after the exclusion
    /// (exit 1 if any run is a violation).
    Affected {
        /// The ledger directory.
        ledger: PathBuf,
        /// The subject's external id (e.g. an email address).
        #[arg(long)]
        subject: String,
        /// Judge as of this valid time (RFC 3339) [default: now].
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        #[command(flatten)]
        key: KeyArg,
    },
    /// GDPR Art. 15/20 report for a subject: records, provenance, events, runs, status (JSON).
    Report {
        /// The ledger directory.
        ledger: PathBuf,
        /// The subject's external id (e.g. an email address).
        #[arg(long)]
        subject: String,
        /// Judge the status at this valid time (RFC 3339) [default: now].
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        receipts: ReportReceiptsArg,
    },
    /// Check the ledger's frames, hash chain and snapshots, and replay it; exit 1 on damage.
    /// With --checkpoint: check that the ledger extends each signed checkpoint.
    Verify {
        /// The ledger directory.
        ledger: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        expect: ExpectHead,
        #[command(flatten)]
        checkpoints: CheckpointArgs,
    },
    /// Print the ledger's head (seq, chain head, ledger id) as JSON: pin it,
    /// and pass it to --expect-head later.
    Head {
        /// The ledger directory.
        ledger: PathBuf,
    },
    /// Torn tails that recoveries moved to LEDGER/quarantine/: list them, or
    /// acknowledge them (recorded in the log) so `verify` stops reporting them.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Write a snapshot of the index so later opens replay less (needs the
    /// subject key: snapshots are authenticated with it).
    Snapshot {
        /// The ledger directory.
        ledger: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Serve the ledger over HTTP (scoped tokens, group commit); stops on SIGTERM.
    #[cfg(feature = "server")]
    Serve(ServeArgs),
    /// Bearer tokens for `optout serve`.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Token(TokenCommand),
    // ---- The transparency log (issue 16): checkpoints, proofs, receipts ----
    /// Write a signed checkpoint (C2SP signed note: origin, size = head seq,
    /// Merkle root) of the ledger's log, to stdout or -o FILE.
    Checkpoint {
        /// The ledger directory.
        ledger: PathBuf,
        /// Where to write the checkpoint [default: stdout].
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        signing: SigningKeyArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Print the consistency proof (JSON) that the tree at OLD is a prefix
    /// of the tree at NEW; each is a tree size (seq) or a checkpoint file.
    ProveConsistency {
        /// The ledger directory.
        ledger: PathBuf,
        /// The older tree size, or a checkpoint file.
        old: String,
        /// The newer tree size, or a checkpoint file.
        new: String,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Check offline, without the ledger, that checkpoint NEW extends
    /// checkpoint OLD by the proof `prove-consistency` printed.
    VerifyConsistency {
        /// The older checkpoint file.
        old: PathBuf,
        /// The newer checkpoint file.
        new: PathBuf,
        /// The proof file (JSON).
        proof: PathBuf,
        #[command(flatten)]
        verifier: VerifierArgs,
    },
    /// Write the receipt (JSON) of the entry at SEQ in a checkpoint at the head.
    Receipt {
        /// The ledger directory.
        ledger: PathBuf,
        /// The entry's seq.
        seq: u64,
        /// Where to write it [default: stdout].
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        signing: SigningKeyArg,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Check a receipt offline, with nothing but the log's public key; with
    /// --checkpoint LATER and --proof, that the entry is still in the log.
    VerifyReceipt {
        /// The receipt file.
        receipt: PathBuf,
        #[command(flatten)]
        verifier: VerifierArgs,
        /// A later checkpoint of the same log that must still include the entry.
        #[arg(long = "checkpoint", value_name = "LATER", requires = "proof")]
        later: Option<PathBuf>,
        /// The consistency proof from the receipt's checkpoint to LATER
        /// (`optout prove-consistency LEDGER RECEIPT_SIZE LATER`).
        #[arg(long, value_name = "PROOF", requires = "later")]
        proof: Option<PathBuf>,
    },
    /// Create a checkpoint signing key pair: the ledger's (LEDGER.signing.key
    /// and .pub, for a ledger created before signed checkpoints), or with
    /// --witness NAME a witness's cosigning key (-o PATH and PATH.pub).
    Keygen {
        /// The ledger directory (its key files go beside it).
        #[arg(required_unless_present = "witness", conflicts_with = "witness")]
        ledger: Option<PathBuf>,
        /// Create a witness's cosigning key with this name (e.g. auditor.example/w1).
        #[arg(long, value_name = "NAME", requires = "out")]
        witness: Option<String>,
        /// Where the witness's secret key goes (its public key: PATH.pub).
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        out: Option<PathBuf>,
        /// The ledger key file to create [default: LEDGER.signing.key].
        #[arg(long, value_name = "PATH", conflicts_with = "witness")]
        signing_key: Option<PathBuf>,
    },
    /// Cosign a checkpoint as a witness: checks the log's signature (and, with
    /// --previous and --proof, that it extends the last one cosigned), then
    /// adds a timestamped cosignature.
    Cosign {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// The witness's secret key (`optout keygen --witness`).
        #[arg(long, value_name = "PATH")]
        witness_key: PathBuf,
        /// The log's public key (LEDGER.signing.pub).
        #[arg(long, value_name = "PATH")]
        pubkey: PathBuf,
        /// The last checkpoint this witness cosigned for the log.
        #[arg(long, value_name = "FILE", requires = "proof")]
        previous: Option<PathBuf>,
        /// The consistency proof from --previous to the checkpoint.
        #[arg(long, value_name = "PROOF", requires = "previous")]
        proof: Option<PathBuf>,
        /// Where to write the cosigned checkpoint [default: stdout].
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    // --- declared purposes (issue 21) ---
    /// The ledger's declared purposes: events, policies and manifests may
    /// name only these (init declares ai-training).
    #[command(subcommand)]
    Purposes(PurposesCommand),
    /// Extend a closed vocabulary on purpose: `vocab add LEDGER basis NAME`
    /// declares a legal basis records may then name.
    #[command(subcommand)]
    Vocab(VocabCommand),
    // --- end of declared purposes ---
    /// End-to-end run on generated data: ingest, events, manifests, runs, a violation.
    Demo {
        /// Directory to (re)create [default: ./optout-demo].
        dir: Option<PathBuf>,
    },
}
