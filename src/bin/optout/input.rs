//! Naming the CLI's inputs: opening '-' as stdin, reading record and event
//! files through the library's readers (`optout::ingest::lines`), and
//! naming a record conflict by file and line.

use std::fs::File;
use std::io::{self, BufReader, Read};

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use optout::event::{Event, RecordBatch};
use optout::ingest::lines::ParallelRecords;
use optout::jsonl;
use optout::{InputError, SubjectKeyer};

/// Opens a named input; `-` is stdin.
pub fn open(name: &str) -> Result<Box<dyn Read + Send>> {
    if name == "-" {
        Ok(Box::new(io::stdin()))
    } else {
        let f = File::open(name).with_context(|| format!("{name}: cannot open"))?;
        Ok(Box::new(f))
    }
}

/// Total size of the named files, if all are regular files (for progress).
pub fn total_len(names: &[String]) -> Option<u64> {
    names
        .iter()
        .map(|n| {
            if n == "-" {
                None
            } else {
                std::fs::metadata(n).ok().map(|m| m.len())
            }
        })
        .sum()
}

/// What reading records produced.
pub struct Records {
    pub batch: RecordBatch,
    /// Shard end lines (issue 14).
    pub ends: Vec<optout::ShardEnd>,
    /// Lines read (including blank ones).
    pub lines: u64,
    pub bytes: u64,
}

/// Reads and parses record files, all or nothing, with `threads` parsers.
pub fn read_records(
    names: &[String],
    keyer: &SubjectKeyer,
    threads: usize,
    progress: &ProgressBar,
) -> Result<Records> {
    let mut r = ParallelRecords::new(keyer, threads);
    for name in names {
        r.read(name, open(name)?, &|n| progress.inc(n))?;
    }
    let (lines, bytes) = (r.lines, r.bytes);
    let (batch, ends) = r.finish();
    Ok(Records {
        batch,
        ends,
        lines,
        bytes,
    })
}

/// A record conflict found by the ledger, named by the file and line of the
/// record (re-reading the named files; stdin cannot be re-read).
pub fn locate_conflict(names: &[String], e: optout::Error) -> anyhow::Error {
    let optout::Error::RecordConflict {
        dataset,
        shard,
        row,
        twice_in_batch,
        ..
    } = &e
    else {
        return e.into();
    };
    // The second occurrence in the batch, else the first.
    let mut nth = 1 + u64::from(*twice_in_batch);
    for name in names.iter().filter(|n| *n != "-") {
        let Ok(f) = File::open(name) else { continue };
        match jsonl::locate_record(BufReader::new(f), name, dataset, shard, *row, nth) {
            Ok(Ok(line)) => {
                return anyhow::anyhow!(
                    "{}",
                    InputError::new(name, line, Some("row"), e.to_string())
                )
            }
            Ok(Err(seen)) => nth -= seen.min(nth - 1),
            Err(_) => break,
        }
    }
    let from = if names.iter().any(|n| n == "-") {
        " (read from stdin: line not known)"
    } else {
        ""
    };
    anyhow::anyhow!("{e}{from}")
}

/// Reads and parses event files in order, all or nothing, each event
/// with where it came from (`FILE:LINE`).
pub fn read_events(names: &[String], keyer: &SubjectKeyer) -> Result<(Vec<Event>, Vec<String>)> {
    let (mut events, mut origins) = (Vec::new(), Vec::new());
    for name in names {
        let input = BufReader::with_capacity(1 << 20, open(name)?);
        for (line, e) in jsonl::parse_events_located(input, name, keyer)? {
            events.push(e);
            origins.push(format!("{name}:{line}"));
        }
    }
    Ok((events, origins))
}
