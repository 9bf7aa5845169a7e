//! Reading line inputs: one line at a time ([`for_lines`]), and record files
//! in parallel blocks ([`ParallelRecords`], the hot path of `ingest`). The
//! CLI and the Python binding both read through here.
//!
//! Records are read in blocks cut at line ends; worker threads take blocks
//! in order, parse them into their own batch, and the batches are merged in
//! block order, so the result equals a sequential parse (same row order, so
//! "the last registration of a row wins" still holds). The first bad line
//! (lowest line number) is reported, and nothing is returned.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::jsonl::{parse_record_line, BatchBuilder};
use crate::error::InputError;
use crate::event::{RecordBatch, ShardRecords};
use crate::fingerprint::ShardEnd;
use crate::provenance::Profile;
use crate::pseudonym::SubjectKeyer;

/// Longest line accepted, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// Bytes per block handed to a parser thread.
const BLOCK: usize = 4 << 20;

/// The text of line `n` (raw bytes without the newline), trimmed, or `None`
/// when blank; a line over [`MAX_LINE`] bytes or not UTF-8 is an error
/// naming it. The one copy of the line rules.
fn line_text<'a>(file: &str, n: u64, raw: &'a [u8]) -> Result<Option<&'a str>, InputError> {
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
    Ok((!text.is_empty()).then_some(text))
}

/// Reads lines of at most [`MAX_LINE`] bytes (a longer one is an error
/// naming its line, read no further), skipping blank ones, calling
/// `f(line_no, trimmed line)`. Memory is bounded by one line.
pub fn for_lines(
    input: impl BufRead,
    file: &str,
    mut f: impl FnMut(u64, &str) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let mut buf = Vec::new();
    let mut input = input;
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| InputError::new(file, n + 1, None, format!("read error: {e}")))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if let Some(text) = line_text(file, n, &buf)? {
            f(n, text)?;
        }
    }
}

/// Record files read in parallel into one batch, all or nothing: call
/// [`read`](Self::read) per input, then [`finish`](Self::finish).
pub struct ParallelRecords<'k> {
    keyer: &'k SubjectKeyer,
    threads: usize,
    /// Bytes per block (a field so that tests can cut small blocks).
    block: usize,
    parts: Vec<RecordBatch>,
    /// Shard end lines read so far (issue 14), in input order.
    ends: Vec<ShardEnd>,
    /// Lines read so far (including blank ones).
    pub lines: u64,
    /// Bytes read so far.
    pub bytes: u64,
}

impl<'k> ParallelRecords<'k> {
    /// A reader parsing with `threads` threads (at least one), pseudonymising
    /// with `keyer`.
    pub fn new(keyer: &'k SubjectKeyer, threads: usize) -> Self {
        ParallelRecords {
            keyer,
            threads: threads.max(1),
            block: BLOCK,
            parts: Vec::new(),
            ends: Vec::new(),
            lines: 0,
            bytes: 0,
        }
    }

    /// Reads and parses one input named `file`; `progress(bytes)` is called
    /// as blocks are taken (from any thread).
    pub fn read(
        &mut self,
        file: &str,
        input: impl Read + Send,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), InputError> {
        let (parts, lines, bytes) = read_one(file, input, self, progress)?;
        for (batch, ends) in parts {
            self.parts.push(batch);
            self.ends.extend(ends.into_iter().map(|(_, e)| e));
        }
        self.lines += lines;
        self.bytes += bytes;
        Ok(())
    }

    /// Adds a batch parsed elsewhere (rows of another kind of source), in
    /// input order after what was read so far.
    pub fn push(&mut self, batch: RecordBatch) {
        self.parts.push(batch);
    }

    /// Adds shard ends read elsewhere, after those read so far.
    pub fn push_ends(&mut self, ends: impl IntoIterator<Item = ShardEnd>) {
        self.ends.extend(ends);
    }

    /// The batch of everything read, in input order, and the shard end
    /// lines read (for [`crate::Ledger::ingest_ending`]).
    pub fn finish(self) -> (RecordBatch, Vec<ShardEnd>) {
        (merge(self.parts), self.ends)
    }
}

/// The block reader shared by the workers (behind a mutex).
struct Blocks<R> {
    input: R,
    block: usize,
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

impl<R: Read> Blocks<R> {
    /// The next block of whole lines (the last one may lack its newline).
    fn next(&mut self) -> io::Result<Option<Block>> {
        let mut buf = std::mem::take(&mut self.carry);
        fill(&mut self.input, &mut buf, self.block, &mut self.eof)?;
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
            let target = buf.len() + self.block;
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
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, target: usize, eof: &mut bool) -> io::Result<()> {
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
        if let Some(text) = line_text(file, n, raw)? {
            parse_record_line(b, keyer, file, n, text)?;
        }
    }
    Ok(())
}

type Parsed = (RecordBatch, Vec<(u64, ShardEnd)>);
type BlockResult = (u64, Result<Parsed, InputError>);

fn read_one(
    file: &str,
    input: impl Read + Send,
    opts: &ParallelRecords<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<Parsed>, u64, u64), InputError> {
    let (keyer, threads) = (opts.keyer, opts.threads);
    let blocks = Mutex::new(Blocks {
        input,
        block: opts.block,
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
        progress(block.bytes.len() as u64);
        let mut b = BatchBuilder::default();
        let r = parse_block(&mut b, keyer, file, &block).map(|()| b.finish_all());
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
    // A panicking parser thread re-raises its panic at the end of the scope,
    // so the locks are never poisoned here.
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: u32) -> String {
        (0..n)
            .map(|r| {
                let blank = if r % 5 == 0 { "\n" } else { "" };
                format!(
                    r#"{{"dataset":"d{}","shard":"s{}","row":{r},"subjects":["u{}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}}"#,
                    r % 2,
                    r % 3,
                    r % 7
                ) + "\n" + blank
            })
            .collect()
    }

    fn parallel(
        text: &str,
        block: usize,
        threads: usize,
    ) -> Result<(RecordBatch, u64, u64), InputError> {
        let k = SubjectKeyer::from_secret([3; 32]);
        let mut r = ParallelRecords::new(&k, threads);
        r.block = block;
        r.read("in.jsonl", text.as_bytes(), &|_| ())?;
        let (l, b) = (r.lines, r.bytes);
        Ok((r.finish().0, l, b))
    }

    #[test]
    fn small_blocks_on_many_threads_equal_the_sequential_parse() {
        let k = SubjectKeyer::from_secret([3; 32]);
        let text = lines(300);
        let want = super::super::jsonl::parse_records(text.as_bytes(), "in.jsonl", &k).unwrap();
        for (block, threads) in [(64, 3), (1000, 2), (BLOCK, 1)] {
            let (got, l, b) = parallel(&text, block, threads).unwrap();
            assert_eq!(got, want, "block {block}, {threads} threads");
            assert_eq!(l, text.lines().count() as u64);
            assert_eq!(b, text.len() as u64);
        }
    }

    #[test]
    fn the_first_bad_line_is_reported_whatever_the_blocks() {
        let mut text = lines(200);
        let good = text.lines().count() as u64;
        text.push_str("{\"dataset\":\"d\"}\n");
        text.push_str(&lines(50));
        text.push_str("not json\n");
        for (block, threads) in [(64, 3), (BLOCK, 1)] {
            let e = parallel(&text, block, threads).unwrap_err();
            assert_eq!((e.file.as_str(), e.line), ("in.jsonl", good + 1), "{e}");
        }
        let long = format!("{}\n", "x".repeat(MAX_LINE + 1));
        let e = parallel(&long, 64, 2).unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
    }
}
