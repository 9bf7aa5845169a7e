//! `optout`: the command-line face of the optout ledger.
//!
//! A thin binary: parse arguments (`args`), run one command (`cmd_*`,
//! `demo`), print through `out`. Exit codes: 0 ok, 1 found something
//! (`check` hit, `verify` damage, `affected` violation), 2 error. A closed
//! stdout (`optout ... | head`) ends the program quietly with 0.

mod args;
mod cmd_derive;
mod cmd_export;
mod cmd_ledger;
mod cmd_manifest;
mod cmd_runs;
#[cfg(feature = "server")]
mod cmd_serve;
mod cmd_signals;
mod cmd_tlog;
mod cmd_vocab;
mod demo;
mod ingest_report;
mod input;
mod out;
mod tables;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use optout::{Ledger, SubjectKeyer, Timestamp};

use args::{
    Cli, Command, ExpectHead, ExportFormat, KeyArg, PurposesCommand, QuarantineCommand,
    RunsCommand, VocabCommand,
};
use out::Out;

/// `--wait SECONDS`: how long writing commands wait for the lock.
static WAIT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// How a command that ran to the end came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Nothing to report (exit 0).
    Ok,
    /// Found something the user must look at (exit 1).
    Found,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let mut out = Out::new(cli.format, cli.quiet);
    match cli.wait.map(std::time::Duration::try_from_secs_f64) {
        Some(Err(_)) => {
            eprintln!("optout: error: --wait: expected a number of seconds, at least 0");
            return ExitCode::from(2);
        }
        Some(Ok(w)) => {
            let _ = WAIT.set(w);
        }
        None => {}
    }
    let r = run(cli.command, &mut out).and_then(|s| {
        out.flush()?;
        Ok(s)
    });
    match r {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Found) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Whatever was printed before the error still goes out.
            let _ = out.flush();
            eprintln!("optout: error: {}", with_flags(&e, message(&e)));
            ExitCode::from(2)
        }
    }
}

/// `--help` and `--version` print and exit 0; every other parse error is
/// a usage error: `optout: error: ...` (clap's text, its usage lines kept)
/// and exit code 2, like every other error.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("optout: error: {text}");
    ExitCode::from(2)
}

/// The error and its causes, `: `-separated, each cause once: a cause
/// whose text the message already holds (an error that prints its source)
/// is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for c in e.chain() {
        let t = c.to_string();
        if s.contains(&t) {
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&t);
    }
    s
}

/// The library's errors name no CLI flags; here the CLI adds the flag that
/// answers them, matched by variant.
fn with_flags(e: &anyhow::Error, mut text: String) -> String {
    use optout::{Error, LedgerError};
    let needs_key = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<Error>(),
            Some(Error::Ledger(LedgerError::NeedsKey { .. }))
        )
    });
    if needs_key {
        text.push_str(" (pass --key-file FILE or set OPTOUT_KEY_FILE)");
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

fn run(cmd: Command, out: &mut Out) -> Result<Status> {
    match cmd {
        Command::Init {
            ledger,
            key,
            signing,
        } => cmd_ledger::init(out, &ledger, &key, &signing),
        Command::Ingest {
            ledger,
            files,
            format,
            key,
        } => cmd_ledger::ingest(out, &ledger, &files, &format, &key),
        Command::Apply {
            ledger,
            files,
            csv,
            parquet,
            mapping,
            vocab,
            key,
            receipts,
        } => {
            let src = cmd_ledger::EventSource {
                csv,
                parquet,
                mapping: mapping.as_deref(),
                opts: optout::ApplyOptions {
                    new_purpose: vocab.new_purpose,
                    strict: vocab.strict,
                },
            };
            cmd_ledger::apply(out, &ledger, &files, &src, &key, &receipts)
        }
        Command::Verify {
            ledger,
            key,
            expect,
            checkpoints,
        } if !checkpoints.checkpoints.is_empty() => {
            cmd_tlog::verify(out, &ledger, &key, &expect, &checkpoints)
        }
        Command::Verify {
            ledger,
            key,
            expect,
            checkpoints,
        } => {
            cmd_tlog::no_checkpoint_flags(&checkpoints)?;
            cmd_ledger::verify(out, &ledger, &key, &expect)
        }
        Command::Head { ledger } => cmd_ledger::head(out, &ledger),
        Command::Quarantine(QuarantineCommand::List { ledger }) => {
            cmd_ledger::quarantine_list(out, &ledger)
        }
        Command::Quarantine(QuarantineCommand::Ack { ledger, note, key }) => {
            cmd_ledger::quarantine_ack(out, &ledger, note, &key)
        }
        Command::Snapshot { ledger, key } => cmd_ledger::snapshot(out, &ledger, &key),
        Command::Signals(a) => cmd_signals::signals(out, &a),
        // --- derive (issue 15) ---
        Command::Derive(a) => cmd_derive::derive(out, &a),
        // --- end derive ---
        Command::Manifest(a) => cmd_manifest::manifest(out, &a),
        Command::Show { manifest } => cmd_manifest::show(out, &manifest),
        Command::Diff { old, new } => cmd_manifest::diff(out, &old, &new),
        Command::Check {
            manifest,
            used,
            ledger,
            allow_unknown_shards,
            key,
            expect,
            checkpoint,
        } => cmd_manifest::check(
            out,
            &manifest,
            &used,
            ledger.as_deref(),
            allow_unknown_shards,
            &key,
            cmd_manifest::CheckPins {
                expect: &expect,
                checkpoint: &checkpoint,
            },
        ),
        Command::Export {
            manifest,
            to,
            out: dest,
            ledger,
            parents,
            table,
            key,
        } => match to {
            // --- derive (issue 15) ---
            ExportFormat::Jsonl if parents => {
                let ledger = ledger.expect("clap: --parents requires --ledger");
                cmd_derive::export_parents(out, &manifest, &dest, &ledger, &key)
            }
            _ if parents => anyhow::bail!("--parents is for --to jsonl"),
            // --- end derive ---
            ExportFormat::Delta => cmd_export::delta(out, &manifest, &table),
            ExportFormat::Iceberg => cmd_export::iceberg(out, &manifest, &dest, &table),
            _ if table.table.is_some() || table.dataset.is_some() || table.data_root.is_some() => {
                anyhow::bail!("--table, --dataset and --data-root are for --to delta|iceberg")
            }
            _ => cmd_manifest::export(out, &manifest, to, &dest, ledger.as_deref(), &key),
        },
        Command::Runs(RunsCommand::Add {
            ledger,
            model,
            manifest,
            name,
            started_at,
            require_fresh,
            key,
            checkpoint,
        }) => cmd_runs::add(
            out,
            &ledger,
            &model,
            &manifest,
            cmd_runs::RunArgs {
                name: name.as_deref(),
                started_at: started_at.as_deref(),
                require_fresh,
                checkpoint: &checkpoint,
            },
            &key,
        ),
        Command::Runs(RunsCommand::List { ledger, key }) => cmd_runs::list(out, &ledger, &key),
        Command::Affected {
            ledger,
            subject,
            at,
            key,
        } => cmd_runs::affected(out, &ledger, &subject, at.as_deref(), &key),
        Command::Report {
            ledger,
            subject,
            at,
            key,
            receipts,
        } => cmd_runs::report(out, &ledger, &subject, at.as_deref(), &key, &receipts),
        #[cfg(feature = "server")]
        Command::Serve(a) => cmd_serve::serve(&a),
        #[cfg(feature = "server")]
        Command::Token(t) => cmd_serve::token(out, t),
        Command::Checkpoint {
            ledger,
            out: dest,
            signing,
            key,
        } => cmd_tlog::checkpoint(out, &ledger, dest.as_deref(), &signing, &key),
        Command::ProveConsistency {
            ledger,
            old,
            new,
            key,
        } => cmd_tlog::prove_consistency(out, &ledger, &old, &new, &key),
        Command::VerifyConsistency {
            old,
            new,
            proof,
            verifier,
        } => cmd_tlog::verify_consistency(out, &old, &new, &proof, &verifier),
        Command::Receipt {
            ledger,
            seq,
            out: dest,
            signing,
            key,
        } => cmd_tlog::receipt(out, &ledger, seq, dest.as_deref(), &signing, &key),
        Command::VerifyReceipt {
            receipt,
            verifier,
            later,
            proof,
        } => cmd_tlog::verify_receipt(
            out,
            &receipt,
            &verifier,
            later.as_deref().zip(proof.as_deref()),
        ),
        Command::Keygen {
            ledger,
            witness,
            out: dest,
            signing_key,
        } => cmd_tlog::keygen(
            out,
            ledger.as_deref(),
            witness.as_deref(),
            dest.as_deref(),
            signing_key,
        ),
        Command::Cosign {
            checkpoint,
            witness_key,
            pubkey,
            previous,
            proof,
            out: dest,
        } => cmd_tlog::cosign(
            out,
            &checkpoint,
            &witness_key,
            &pubkey,
            previous.as_deref().zip(proof.as_deref()),
            dest.as_deref(),
        ),
        // --- declared purposes (issue 21) ---
        Command::Purposes(PurposesCommand::Add {
            ledger,
            name,
            description,
            key,
        }) => cmd_vocab::add(out, &ledger, &name, description.as_deref(), &key),
        Command::Vocab(VocabCommand::Add {
            ledger,
            vocabulary,
            name,
            key,
        }) => cmd_vocab::add_word(out, &ledger, vocabulary, &name, &key),
        Command::Purposes(PurposesCommand::List { ledger, key }) => {
            cmd_vocab::list(out, &ledger, &key)
        }
        // --- end of declared purposes ---
        Command::Demo { dir } => {
            demo::run(out, &dir.unwrap_or_else(|| PathBuf::from("./optout-demo")))
        }
    }
}

/// The key file to use: `--key-file`, else `$OPTOUT_KEY_FILE`, else
/// `LEDGER.key`. The flag says whether the user named it.
pub fn key_path(ledger: &Path, key: &KeyArg) -> (PathBuf, bool) {
    if let Some(p) = &key.key_file {
        return (p.clone(), true);
    }
    if let Some(p) = std::env::var_os("OPTOUT_KEY_FILE").filter(|s| !s.is_empty()) {
        return (PathBuf::from(p), true);
    }
    (optout::default_key_path(ledger), false)
}

/// Loads the subject key for `ledger`, warning (stderr) about a key kept
/// inside the ledger directory or readable by group or others.
pub fn load_key(ledger: &Path, key: &KeyArg) -> Result<SubjectKeyer> {
    let (path, _) = key_path(ledger, key);
    let k = SubjectKeyer::load_key_file(&path).with_context(|| {
        format!(
            "this command needs the ledger's subject key (--key-file, $OPTOUT_KEY_FILE, default {})",
            optout::default_key_path(ledger).display()
        )
    })?;
    for w in optout::key_file_warnings(&path, ledger) {
        eprintln!("optout: warning: {w}");
    }
    Ok(k)
}

/// The subject key if there is one: the named file (`--key-file` or
/// `$OPTOUT_KEY_FILE`) must load; the default `LEDGER.key` is used when it
/// exists. Commands that only read use it to authenticate snapshots.
pub fn optional_key(ledger: &Path, key: &KeyArg) -> Result<Option<SubjectKeyer>> {
    let (path, named) = key_path(ledger, key);
    if named || path.exists() {
        return load_key(ledger, key).map(Some);
    }
    Ok(None)
}

/// Opens `ledger` (read-only or for writing) and reports what the open
/// did (a torn tail cut, a head file created, a snapshot not used) on
/// stderr and in the JSON output.
pub fn open_ledger(
    out: &mut Out,
    ledger: &Path,
    keyer: Option<SubjectKeyer>,
    read_only: bool,
) -> Result<Ledger> {
    let l = if read_only {
        Ledger::open_read_only(ledger, keyer)?
    } else {
        let opts = optout::LedgerOptions {
            wait: WAIT.get().copied(),
            ..Default::default()
        };
        Ledger::open_opts(ledger, keyer, opts)?
    };
    for n in l.notes() {
        out.note(n);
    }
    Ok(l)
}

/// The pinned head of `--expect-head`, if given.
pub fn expected_head(e: &ExpectHead) -> Result<Option<optout::PinnedHead>> {
    match &e.expect_head {
        None => Ok(None),
        Some(a) => Ok(Some(optout::PinnedHead::parse(a).context("--expect-head")?)),
    }
}

/// Parses an optional RFC 3339 flag value; `None` is now.
pub fn time_arg(flag: &str, v: Option<&str>) -> Result<Timestamp> {
    match v {
        None => Ok(Timestamp::now()),
        Some(s) => Timestamp::parse(s).map_err(|m| anyhow::anyhow!("{flag}: {m}")),
    }
}

pub use optout::hex;
