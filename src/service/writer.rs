//! The writer task: one thread owns every write to the ledger and commits
//! them in groups.
//!
//! It blocks for the first queued request, then drains whatever else is
//! queued (up to a cap), so under load many requests share one append and
//! one fsync. Each request is checked on its own first (a repeated
//! `Idempotency-Key` answers from the journal; a key reused for another
//! request is refused), so one bad request never fails another:
//!
//! * **events** (`/v1/events`, Fides) of all requests in the drain go to the
//!   ledger as ONE atomic group; each request's seq range is its slice of
//!   it. Should the ledger refuse the group (a rule one request broke),
//!   the requests are appended one by one, so only that one fails.
//! * **records, signals, runs** are appended one request at a time (a
//!   record batch is usually large; signals and runs are planned against
//!   the state the previous write left).
//!
//! The write lock on the ledger is held only while a group is appended
//! (write, fsync, fold into the index); reads wait at most that long.
//! A storage failure poisons the ledger handle: the writer then refuses
//! every write (503) and `/healthz` reports it, until the server is
//! restarted and the ledger reopened (recovery decides what is durable).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::journal::{self, Holds, Journal, Line};
use super::metrics::Metrics;
use crate::codec;
use crate::event::{Entry, Event, RecordBatch};
use crate::ledger::Ledger;
use crate::manifest::Manifest;
use crate::signals::{self, Crawl};
use crate::time::Timestamp;

mod single;

/// Who writes, and under which key: carried with every write, so the
/// ledger can record the actor once the entry format has the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteMeta {
    /// The token's name.
    pub actor: String,
    /// The request's `Idempotency-Key`, if it sent one.
    pub key: Option<String>,
    /// The request's fingerprint ([`journal::fingerprint`]).
    pub fp: String,
}

/// A write the ledger is asked to do.
#[derive(Debug)]
pub enum WriteOp {
    /// Append events, all or nothing.
    Events(Vec<Event>),
    /// Register records, all or nothing.
    Records(RecordBatch),
    /// Record the web opt-out signals found in crawl metadata.
    Signals {
        /// The crawl lines.
        crawl: Vec<Crawl>,
        /// Agents and purposes.
        config: signals::Config,
        /// Plan only; record nothing.
        dry_run: bool,
    },
    /// Register a derived dataset's rows and their parents, all or nothing
    /// (the builder names a refused row's body line).
    Derive(Box<crate::jsonl::DerivationBuilder>),
    /// Register a training run.
    Run {
        /// The run's name (default `MODEL-run-K`).
        name: Option<String>,
        /// The model trained.
        model: String,
        /// The manifest it applied.
        manifest: Box<Manifest>,
        /// When training started.
        started_at: Timestamp,
    },
}

/// A write's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The JSON body.
    pub body: Value,
    /// Repeated from the journal for a retried `Idempotency-Key`.
    pub replayed: bool,
}

/// What the writer answers.
pub type WriteResult = Result<Answer, ApiError>;

/// One queued write.
#[derive(Debug)]
pub struct WriteRequest {
    /// The write.
    pub op: WriteOp,
    /// Who and under which key.
    pub meta: WriteMeta,
    /// Where the answer goes (the caller may have given up: then it is dropped).
    pub reply: oneshot::Sender<WriteResult>,
}

/// The writer's state (moved into its thread).
pub struct Writer {
    pub(super) ledger: Arc<RwLock<Ledger>>,
    pub(super) journal: Journal,
    pub(super) metrics: Arc<Metrics>,
    pub(super) failed: Arc<std::sync::OnceLock<String>>,
    pub(super) max_group: usize,
}

fn reply(r: WriteRequest, result: WriteResult) {
    // The caller may have timed out; its write stands (that is what
    // `Idempotency-Key` is for).
    let _ = r.reply.send(result);
}

fn lock_error() -> ApiError {
    ApiError::internal("the ledger lock is poisoned (a writer panicked); restart the server")
}

impl Writer {
    /// Serves the queue until every sender is gone (shutdown), finishing
    /// whatever was queued.
    pub fn run(mut self, mut rx: mpsc::Receiver<WriteRequest>) {
        let mut groups = 0u64;
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_group {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.process(batch);
            groups += 1;
            if groups.is_multiple_of(4096) {
                self.journal.expire();
            }
        }
    }

    fn fail(&self, why: String) -> ApiError {
        eprintln!("optout serve: error: the writer stopped: {why}");
        self.metrics.writer_failed();
        let _ = self.failed.set(why.clone());
        ApiError::unavailable(format!(
            "the ledger's writer stopped after a storage failure ({why}); restart the server"
        ))
    }

    fn process(&mut self, batch: Vec<WriteRequest>) {
        let mut pending = batch;
        while !pending.is_empty() {
            let mut events = Vec::new();
            let mut singles = Vec::new();
            let mut later = Vec::new();
            let mut keys: HashSet<(String, String)> = HashSet::new();
            for r in pending {
                if let Some(why) = self.failed.get() {
                    let e = ApiError::unavailable(format!(
                        "the ledger's writer stopped after a storage failure ({why}); restart the server"
                    ));
                    reply(r, Err(e));
                    continue;
                }
                if let Some(k) = &r.meta.key {
                    if let Some(s) = self.journal.get(&r.meta.actor, k) {
                        let result = if s.fp == r.meta.fp {
                            self.metrics.replay();
                            Ok(Answer {
                                body: s.response.clone(),
                                replayed: true,
                            })
                        } else {
                            Err(ApiError::new(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "idempotency_key_reused",
                                format!("Idempotency-Key {k:?} was used for another request; use a new key for a new request"),
                            ))
                        };
                        reply(r, result);
                        continue;
                    }
                    // The same key twice in one drain: the second waits for
                    // the first's answer, then repeats it.
                    if !keys.insert((r.meta.actor.clone(), k.clone())) {
                        later.push(r);
                        continue;
                    }
                }
                match r.op {
                    WriteOp::Events(_) => events.push(r),
                    _ => singles.push(r),
                }
            }
            if !events.is_empty() {
                self.commit_events(events);
            }
            for r in singles {
                self.commit_single(r);
            }
            pending = later;
        }
    }

    /// Writes journal lines (one fsync), timing it.
    fn journal(&mut self, lines: &[Line]) -> Result<(), ApiError> {
        if lines.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let r = self.journal.append(lines);
        self.metrics.journal_fsync(t.elapsed());
        r.map_err(|e| self.fail(format!("request journal: {e}")))
    }

    fn commit_events(&mut self, mut group: Vec<WriteRequest>) {
        let ledger = Arc::clone(&self.ledger);
        // Kept only for the rare fallback below (a group the ledger
        // refused): the requests as they came, unchanged events included.
        let backup: Option<Vec<Vec<Event>>> = (group.len() > 1).then(|| {
            group
                .iter()
                .filter_map(|r| match &r.op {
                    WriteOp::Events(evs) => Some(evs.clone()),
                    _ => None,
                })
                .collect()
        });
        // Only this thread moves the head: read it and drop the events
        // identical to recorded ones (so the seqs each request lands at are
        // known), write the intents without blocking readers, then take the
        // write lock again to append.
        let Ok(mut l) = ledger.write() else {
            group.into_iter().for_each(|r| reply(r, Err(lock_error())));
            return;
        };
        let head = l.head().0 .0;
        let all: Vec<Event> = group
            .iter()
            .filter_map(|r| match &r.op {
                WriteOp::Events(evs) => Some(evs.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        let marks = match l.unchanged_events(&all) {
            Ok(m) => m,
            Err(e) => {
                drop(l);
                let e: ApiError = e.into();
                group.into_iter().for_each(|r| reply(r, Err(e.clone())));
                return;
            }
        };
        drop(l);
        let mut marks = marks.into_iter();
        let mut unchanged = Vec::with_capacity(group.len());
        for r in &mut group {
            if let WriteOp::Events(evs) = &mut r.op {
                let n = evs.len();
                let mine: Vec<bool> = marks.by_ref().take(n).collect();
                let mut it = mine.iter();
                evs.retain(|_| !it.next().copied().unwrap_or(false));
                unchanged.push((n - evs.len()) as u64);
            }
        }
        // Each request's slice of the group, and its answer, known before
        // the append: the group lands at head + 1 .. head + n.
        let mut next = head + 1;
        let mut answers = Vec::with_capacity(group.len());
        let mut intents = Vec::new();
        for (r, &same) in group.iter().zip(&unchanged) {
            let WriteOp::Events(evs) = &r.op else {
                continue;
            };
            let (first, last) = (next, next + evs.len() as u64 - 1);
            next = last + 1;
            let body = events_answer(evs, same, first);
            if let (Some(key), false) = (&r.meta.key, evs.is_empty()) {
                // The bytes the ledger will append for them (as `Ledger::apply` encodes).
                let encoded = match events_encoded(evs) {
                    Ok(e) => e,
                    Err(e) => {
                        let e = self.fail(format!("encoding events: {e}"));
                        group.into_iter().for_each(|r| reply(r, Err(e.clone())));
                        return;
                    }
                };
                intents.push(Line::Intent {
                    actor: r.meta.actor.clone(),
                    key: key.clone(),
                    fp: r.meta.fp.clone(),
                    holds: Holds::Events,
                    first,
                    last,
                    digest: journal::entries_digest(encoded.iter().map(Vec::as_slice)),
                    response: body.clone(),
                    at: Timestamp::now().to_rfc3339(),
                });
            }
            answers.push(body);
        }
        if let Err(e) = self.journal(&intents) {
            group.into_iter().for_each(|r| reply(r, Err(e.clone())));
            return;
        }
        let Ok(mut l) = ledger.write() else {
            group.into_iter().for_each(|r| reply(r, Err(lock_error())));
            return;
        };
        let n = group.len();
        let mut parts: Vec<Vec<Event>> = Vec::with_capacity(n);
        let mut rest = Vec::with_capacity(n);
        for r in group {
            let WriteRequest { op, meta, reply } = r;
            if let WriteOp::Events(evs) = op {
                parts.push(evs);
                rest.push((meta, reply));
            }
        }
        let all: Vec<Event> = parts.into_iter().flatten().collect();
        let total = all.len() as u64;
        let t = Instant::now();
        let result = l.apply(all);
        let took = t.elapsed();
        match result {
            Ok(head) if head.0 == next - 1 => {
                self.metrics.group(n, took, total, head.0);
                drop(l);
                for ((meta, tx), body) in rest.into_iter().zip(answers) {
                    if let Some(k) = &meta.key {
                        self.journal
                            .remember(&meta.actor, k, &meta.fp, body.clone());
                    }
                    let _ = tx.send(Ok(Answer {
                        body,
                        replayed: false,
                    }));
                }
            }
            Ok(head) => {
                let e = self.fail(format!(
                    "the ledger appended up to seq {head}, expected {}: seq ranges unknown",
                    next - 1
                ));
                rest.into_iter()
                    .for_each(|(_, tx)| drop(tx.send(Err(e.clone()))));
            }
            Err(crate::Error::Storage(s)) => {
                let e = self.fail(s.to_string());
                rest.into_iter()
                    .for_each(|(_, tx)| drop(tx.send(Err(e.clone()))));
            }
            Err(e) => {
                drop(l);
                let Some(parts) = backup else {
                    let e: ApiError = e.into();
                    rest.into_iter()
                        .for_each(|(_, tx)| drop(tx.send(Err(e.clone()))));
                    return;
                };
                // One request broke a rule: append them one by one so the
                // others still land (their intents named other seqs and will
                // not resolve: each gets a done line instead).
                for ((meta, tx), evs) in rest.into_iter().zip(parts) {
                    let r = WriteRequest {
                        op: WriteOp::Events(evs),
                        meta,
                        reply: tx,
                    };
                    self.commit_single(r);
                }
            }
        }
    }
}

/// Each event encoded as the ledger stores it (an `Entry::Event` frame payload).
pub fn events_encoded<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Vec<Vec<u8>>, codec::CodecError> {
    events
        .into_iter()
        .map(|e| codec::encode(&Entry::Event(e.clone())))
        .collect()
}

/// What an intent for a run commits to: its name and manifest (names are
/// unique in a ledger).
pub fn run_digest(name: &str, manifest_digest: &str) -> String {
    journal::entries_digest([name.as_bytes(), manifest_digest.as_bytes()])
}

/// The answer to an events write: its seq range and counts per type.
pub fn events_answer(events: &[Event], unchanged: u64, first: u64) -> Value {
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *by_type.entry(e.type_name()).or_default() += 1;
    }
    let n = events.len() as u64;
    json!({
        "events": n,
        "unchanged": unchanged,
        "by_type": by_type,
        "first_seq": (n > 0).then_some(first),
        "last_seq": (n > 0).then_some(first + n.saturating_sub(1)),
    })
}
