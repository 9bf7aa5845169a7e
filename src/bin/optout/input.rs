//! Reading JSONL inputs: record files in parallel (the hot path of `ingest`),
//! event files, and opening '-' as stdin.
//!
//! Records are read in blocks cut at line ends; worker threads take blocks
//! in order, parse them into their own batch, and the batches are merged in
//! block order, so the result equals a sequential parse (same row order, so
//! "the last registration of a row wins" still holds). The first bad line
//! (lowest line number) is reported, and nothing is returned.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use optout::event::{Event, RecordBatch, ShardRecords};
use optout::jsonl::{self, BatchBuilder, MAX_LINE};
use optout::{InputError, Profile, SubjectKeyer};

/// Bytes per block handed to a parser thread.
const BLOCK: usize = 4 << 20;

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
    /// Lines read (including blank ones).
    pub lines: u64,
    pub bytes: u64,
}

/// The block reader shared by the workers (behind a mutex).
struct Blocks {
    input: Box<dyn Read + Send>,
    carry: Vec<u8>,
    /// Lines handed out so far.
    lines: u64,
    next_block: u64,
    eof: bool,
}

struct Block {
    no: u64,
    first_line: u64,
    bytes: Vec<u8>,
}

impl Blocks {
    /// The next block of whole lines (the last one may lack its newline).
    fn next(&mut self) -> io::Result<Option<Block>> {
        let mut buf = std::mem::take(&mut self.carry);
        fill(&mut self.input, &mut buf, BLOCK, &mut self.eof)?;
        // Cut at the last line end; read on while a block holds no line end
        // yet, unless that line is already too long (the parser reports it).
        let mut searched = 0;
        while !self.eof {
            if let Some(i) = buf[searched..].iter().rposition(|&b| b == b'\n') {
                let cut = searched + i + 1;
                self.carry = buf[cut..].to_vec();
                buf.truncate(cut);
                break;
            }
            if buf.len() > MAX_LINE + 1 {
                break;
            }
            searched = buf.len();
            let target = buf.len() + BLOCK;
            fill(&mut self.input, &mut buf, target, &mut self.eof)?;
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let first_line = self.lines + 1;
        self.lines += count_lines(&buf);
        let no = self.next_block;
        self.next_block += 1;
        Ok(Some(Block {
            no,
            first_line,
            bytes: buf,
        }))
    }
}

/// Reads into `buf` until it holds `target` bytes or the input ends.
fn fill(input: &mut dyn Read, buf: &mut Vec<u8>, target: usize, eof: &mut bool) -> io::Result<()> {
    while !*eof && buf.len() < target {
        let len = buf.len();
        buf.resize(target.max(len + (64 << 10)), 0);
        match input.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                *eof = true;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Lines in `b`, counting a final line without a newline.
fn count_lines(b: &[u8]) -> u64 {
    let n = b.iter().filter(|&&c| c == b'\n').count() as u64;
    n + u64::from(b.last().is_some_and(|&c| c != b'\n'))
}

/// Parses one block into `b`; line numbers continue from `first_line`.
fn parse_block(
    b: &mut BatchBuilder,
    keyer: &SubjectKeyer,
    file: &str,
    block: &Block,
) -> Result<(), InputError> {
    let bytes = block.bytes.strip_suffix(b"\n").unwrap_or(&block.bytes);
    for (n, raw) in (block.first_line..).zip(bytes.split(|&c| c == b'\n')) {
        if raw.len() > MAX_LINE {
            return Err(InputError::new(
                file,
                n,
                None,
                format!("line longer than {MAX_LINE} bytes"),
            ));
        }
        let text = std::str::from_utf8(raw)
            .map_err(|_| InputError::new(file, n, None, "not valid UTF-8"))?
            .trim();
        if !text.is_empty() {
            jsonl::parse_record_line(b, keyer, file, n, text)?;
        }
    }
    Ok(())
}

/// Reads and parses record files, all or nothing, with `threads` parsers.
pub fn read_records(
    names: &[String],
    keyer: &SubjectKeyer,
    threads: usize,
    progress: &ProgressBar,
) -> Result<Records> {
    let mut parts: Vec<RecordBatch> = Vec::new();
    let mut lines = 0;
    let mut bytes = 0;
    for name in names {
        let input = open(name)?;
        let (mut p, l, b) = read_one(name, input, keyer, threads, progress)?;
        parts.append(&mut p);
        lines += l;
        bytes += b;
    }
    Ok(Records {
        batch: merge(parts),
        lines,
        bytes,
    })
}

type BlockResult = (u64, Result<RecordBatch, InputError>);

fn read_one(
    file: &str,
    input: Box<dyn Read + Send>,
    keyer: &SubjectKeyer,
    threads: usize,
    progress: &ProgressBar,
) -> Result<(Vec<RecordBatch>, u64, u64)> {
    let blocks = Mutex::new(Blocks {
        input,
        carry: Vec::new(),
        lines: 0,
        next_block: 0,
        eof: false,
    });
    // Blocks after the first bad one need not be parsed.
    let first_bad = AtomicU64::new(u64::MAX);
    let bytes = AtomicU64::new(0);
    let results: Mutex<Vec<BlockResult>> = Mutex::new(Vec::new());
    let worker = || loop {
        let block = {
            let Ok(mut g) = blocks.lock() else { return };
            if g.next_block > first_bad.load(Ordering::Relaxed) {
                return;
            }
            match g.next() {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    let no = g.next_block;
                    let line = g.lines + 1;
                    drop(g);
                    first_bad.fetch_min(no, Ordering::Relaxed);
                    if let Ok(mut r) = results.lock() {
                        r.push((
                            no,
                            Err(InputError::new(
                                file,
                                line,
                                None,
                                format!("read error: {e}"),
                            )),
                        ));
                    }
                    return;
                }
            }
        };
        bytes.fetch_add(block.bytes.len() as u64, Ordering::Relaxed);
        progress.inc(block.bytes.len() as u64);
        let mut b = BatchBuilder::default();
        let r = parse_block(&mut b, keyer, file, &block).map(|()| b.finish());
        if r.is_err() {
            first_bad.fetch_min(block.no, Ordering::Relaxed);
        }
        if let Ok(mut g) = results.lock() {
            g.push((block.no, r));
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.max(1) {
            s.spawn(worker);
        }
        worker();
    });
    let mut results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a parser thread panicked"))?;
    results.sort_by_key(|(no, _)| *no);
    let lines = blocks.into_inner().map(|b| b.lines).unwrap_or_default();
    let mut out = Vec::with_capacity(results.len());
    for (_, r) in results {
        out.push(r?);
    }
    Ok((out, lines, bytes.into_inner()))
}

/// Concatenates batches in order, storing each profile and shard group once.
pub fn merge(parts: Vec<RecordBatch>) -> RecordBatch {
    let mut parts = parts.into_iter();
    let Some(mut out) = parts.next() else {
        return RecordBatch::default();
    };
    let mut profiles: HashMap<Profile, u32> = out
        .profiles
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i as u32))
        .collect();
    let mut groups: HashMap<(String, String), usize> = out
        .shards
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.dataset.clone(), g.shard.clone()), i))
        .collect();
    for part in parts {
        let remap: Vec<u32> = part
            .profiles
            .into_iter()
            .map(|p| {
                let next = out.profiles.len() as u32;
                *profiles.entry(p).or_insert_with_key(|p| {
                    out.profiles.push(p.clone());
                    next
                })
            })
            .collect();
        for mut g in part.shards {
            for r in &mut g.rows {
                r.profile = remap[r.profile as usize];
            }
            let key = (g.dataset, g.shard);
            match groups.get(&key) {
                Some(&i) => out.shards[i].rows.append(&mut g.rows),
                None => {
                    groups.insert(key.clone(), out.shards.len());
                    out.shards.push(ShardRecords {
                        dataset: key.0,
                        shard: key.1,
                        rows: g.rows,
                    });
                }
            }
        }
    }
    out
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

/// Reads and parses event files in order, all or nothing.
pub fn read_events(names: &[String], keyer: &SubjectKeyer) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for name in names {
        let input = BufReader::with_capacity(1 << 20, open(name)?);
        out.extend(jsonl::parse_events(input, name, keyer)?);
    }
    Ok(out)
}
