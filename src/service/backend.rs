//! The ledger seam: every operation the routes need, over today's
//! [`Ledger`] API, in one place, so rewiring after the reorganisation
//! (structured `LedgerError`, request metadata in entries, a read view
//! that does not wait for the writer's fsync) changes this file and
//! `writer.rs`, not the routes.
//!
//! Writes go to the writer task ([`super::writer`]) with their
//! [`WriteMeta`] (actor, `Idempotency-Key`); reads take the ledger's read
//! lock, which the writer holds only while it appends a group.
//!
//! **Reads and the writer's fsync.** Today `Ledger` keeps the log and the
//! index together and `Ledger::apply` appends, fsyncs and folds under one
//! `&mut self`, so a read waits for at most one group commit (measured by
//! `optout_read_wait_seconds`). What the wiring needs is in
//! docs/SERVICE.md, "Reads during writes".

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::journal::{self, Holds, Journal, OpenReport};
use super::metrics::Metrics;
use super::writer::{self, Answer, WriteMeta, WriteOp, WriteRequest, Writer};
use crate::engine::Query;
use crate::ids::Seq;
use crate::ledger::Ledger;
use crate::lineage::{self, Use};
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::pseudonym::SubjectKeyer;
use crate::time::Timestamp;

/// The manifests file in the state directory: digest → the query that
/// computed it (manifests are reproducible, so the query is enough).
const MANIFESTS: &str = "manifests.jsonl";

/// `POST /v1/manifests`: what to compute (the CLI's `manifest` flags).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestRequest {
    /// The purpose (may be omitted with `policy`).
    #[serde(default)]
    pub purpose: Option<String>,
    /// Valid time (RFC 3339), default now.
    #[serde(default)]
    pub at: Option<String>,
    /// Ledger clock, default the head.
    #[serde(default)]
    pub at_seq: Option<u64>,
    /// Datasets to cover, default all.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// A policy (the policy file's JSON), default the purpose's default.
    #[serde(default)]
    pub policy: Option<Value>,
}

/// A computed manifest: its sealed bytes, digest and clocks.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// The bytes, as `optout manifest -o` writes them.
    pub bytes: Vec<u8>,
    /// The seal (hex).
    pub digest: String,
    /// The ledger clock it was computed at.
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredQuery {
    digest: String,
    policy: Policy,
    seq: u64,
    at_ns: i64,
    datasets: Vec<String>,
}

impl StoredQuery {
    fn query(&self) -> Query {
        Query {
            policy: self.policy.clone(),
            seq: Seq(self.seq),
            at: Timestamp(self.at_ns),
            datasets: self.datasets.clone(),
        }
    }
}

/// Everything the routes ask of the ledger.
pub struct LedgerService {
    ledger: Arc<RwLock<Ledger>>,
    keyer: SubjectKeyer,
    writes: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    manifests: Mutex<HashMap<String, StoredQuery>>,
    manifests_file: PathBuf,
    metrics: Arc<Metrics>,
    failed: Arc<std::sync::OnceLock<String>>,
}

impl std::fmt::Debug for LedgerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerService").finish_non_exhaustive()
    }
}

/// The writer thread, to join at shutdown.
pub type WriterThread = std::thread::JoinHandle<()>;

fn read_error() -> ApiError {
    ApiError::internal("the ledger lock is poisoned (a writer panicked); restart the server")
}

impl LedgerService {
    /// Opens the ledger for writing (taking its lock), the journal in
    /// `state`, and starts the writer thread. `queue` bounds the writes
    /// waiting; `max_group` the requests per commit group.
    pub fn open(
        path: &Path,
        keyer: SubjectKeyer,
        state: &Path,
        ttl_secs: u64,
        queue: usize,
        max_group: usize,
        metrics: Arc<Metrics>,
    ) -> crate::Result<(LedgerService, WriterThread, OpenReport)> {
        let ledger = Ledger::open(path, Some(keyer.clone()))?;
        let id = ledger.ledger_id().to_string();
        let (journal, report) = Journal::open(state, &id, ttl_secs, |h, f, l, d| {
            reached(&ledger, h, f, l, d)
        })?;
        let manifests_file = state.join(MANIFESTS);
        let manifests = load_manifests(&manifests_file)?;
        let ledger = Arc::new(RwLock::new(ledger));
        let failed = Arc::new(std::sync::OnceLock::new());
        let (tx, rx) = mpsc::channel(queue.max(1));
        let w = Writer {
            ledger: Arc::clone(&ledger),
            journal,
            metrics: Arc::clone(&metrics),
            failed: Arc::clone(&failed),
            max_group: max_group.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("optout-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| crate::Error::Other(format!("starting the writer thread: {e}")))?;
        Ok((
            LedgerService {
                ledger,
                keyer,
                writes: Mutex::new(Some(tx)),
                manifests: Mutex::new(manifests),
                manifests_file,
                metrics,
                failed,
            },
            thread,
            report,
        ))
    }

    /// The subject key (parsing input pseudonymises with it).
    pub fn keyer(&self) -> &SubjectKeyer {
        &self.keyer
    }

    /// Why the writer stopped, if it did.
    pub fn writer_failure(&self) -> Option<String> {
        self.failed.get().cloned()
    }

    /// Queues a write and waits for its answer (after it is durable).
    pub async fn write(&self, op: WriteOp, meta: WriteMeta) -> Result<Answer, ApiError> {
        let tx = self
            .writes
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or_else(|| ApiError::unavailable("the server is shutting down"))?;
        let (reply, rx) = oneshot::channel();
        tx.send(WriteRequest { op, meta, reply })
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the writer stopped before answering"))?
    }

    /// Stops taking writes; the writer finishes what is queued and exits.
    pub fn close(&self) {
        if let Ok(mut g) = self.writes.lock() {
            g.take();
        }
    }

    /// Runs `f` on the ledger under its read lock, timing the wait.
    fn read<T>(&self, f: impl FnOnce(&Ledger) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let t = Instant::now();
        let l = self.ledger.read().map_err(|_| read_error())?;
        self.metrics.read_wait(t.elapsed());
        f(&l)
    }

    /// `GET /v1/head`: the head to pin, as `(seq, chain head)`.
    pub fn head(&self) -> Result<Value, ApiError> {
        self.read(|l| {
            let (seq, chain) = l.head();
            Ok(json!({"seq": seq.0, "chain_head": chain.to_hex(), "ledger_id": l.ledger_id().to_string()}))
        })
    }

    /// `GET /v1/runs`: the registered runs (the fields of `optout runs list --format json`).
    pub fn runs(&self) -> Result<Value, ApiError> {
        self.read(|l| {
            let runs: Vec<Value> = l
                .index()
                .runs()
                .iter()
                .map(|(seq, r)| crate::render::run_json(*seq, r))
                .collect();
            Ok(json!({"runs": runs}))
        })
    }

    /// `POST /v1/manifests`: computes a manifest exactly as `optout manifest` does.
    pub fn manifest(&self, req: ManifestRequest) -> Result<Sealed, ApiError> {
        let policy = match &req.policy {
            Some(v) => Some(Policy::from_json(&v.to_string(), "body.policy")?),
            None => None,
        };
        let purpose = match (&req.purpose, &policy) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p.purpose.to_string(),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "`purpose` is required without `policy`",
                ))
            }
        };
        let at = match &req.at {
            Some(t) => Timestamp::parse(t)
                .map_err(|m| crate::InputError::new(super::body::BODY, 0, Some("at"), m))?,
            None => Timestamp::now(),
        };
        let (m, q) = self.read(|l| {
            let mut q = l.query(policy, &purpose, at)?;
            if let Some(s) = req.at_seq {
                q.seq = Seq(s);
            }
            q.datasets = req.datasets.clone();
            Ok((l.manifest(&q)?, q))
        })?;
        let sealed = seal(&m);
        self.remember_manifest(&sealed.digest, &q);
        Ok(sealed)
    }

    /// `GET /v1/manifests/{digest}`: a manifest this server computed, recomputed from its query.
    pub fn manifest_by_digest(&self, digest: &str) -> Result<Sealed, ApiError> {
        let q = self
            .manifests
            .lock()
            .ok()
            .and_then(|m| m.get(digest).map(StoredQuery::query))
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "unknown_manifest",
                    format!("no manifest with digest {digest} was computed by this server: POST /v1/manifests first"),
                )
            })?;
        let m = self.read(|l| Ok(l.manifest(&q)?))?;
        let sealed = seal(&m);
        if sealed.digest != digest {
            return Err(ApiError::internal(format!(
                "recomputing manifest {digest} gave {}: the ledger's history changed",
                sealed.digest
            )));
        }
        Ok(sealed)
    }

    fn remember_manifest(&self, digest: &str, q: &Query) {
        let Ok(mut m) = self.manifests.lock() else {
            return;
        };
        if m.contains_key(digest) {
            return;
        }
        let s = StoredQuery {
            digest: digest.to_string(),
            policy: q.policy.clone(),
            seq: q.seq.0,
            at_ns: q.at.0,
            datasets: q.datasets.clone(),
        };
        // A cache of reproducible results: no fsync; a line lost in a crash
        // means a 404 and a POST again, never a wrong manifest.
        if let Ok(mut line) = serde_json::to_vec(&s) {
            line.push(b'\n');
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.manifests_file)
                .and_then(|mut f| f.write_all(&line));
        }
        m.insert(digest.to_string(), s);
    }

    /// `POST /v1/subjects/affected`: the runs that trained on the subject's
    /// records (as `optout affected`, without echoing the subject id).
    pub fn affected(&self, subject: &str, at: Timestamp) -> Result<Value, ApiError> {
        self.read(|l| {
            let sk = l.pseudonym(subject)?;
            let ix = l.index();
            let records = ix.subject_records(&sk, ix.seq()).len();
            let runs = lineage::affected(ix, &sk, ix.seq(), at);
            let violations = runs.iter().filter(|r| r.status() == Use::Violation).count();
            Ok(json!({
                "pseudonym": sk.to_hex(),
                "at": at.to_rfc3339(),
                "seq": ix.seq().0,
                "records": records,
                "runs_registered": ix.runs().len(),
                "violations": violations,
                "runs": runs,
            }))
        })
    }

    /// `POST /v1/subjects/report`: the Art. 15 / 20 report, as `optout report` prints it.
    pub fn report(&self, subject: &str, at: Timestamp) -> Result<Value, ApiError> {
        self.read(|l| {
            let r = crate::report::subject_report(l, subject, at)?;
            serde_json::to_value(&r).map_err(|e| ApiError::internal(e.to_string()))
        })
    }
}

/// The bytes and seal of a manifest (the seal is the bytes' last 32, docs/FORMAT.md "Manifests").
fn seal(m: &Manifest) -> Sealed {
    let bytes = m.to_bytes();
    let digest = m.digest_hex(); // kept by the encoding: no second pass
    Sealed {
        bytes,
        digest,
        seq: m.header.seq.0,
    }
}

/// Whether the ledger holds exactly what an intent promised at its seqs.
fn reached(l: &Ledger, holds: Holds, first: Seq, last: Seq, digest: &str) -> bool {
    let ix = l.index();
    match holds {
        Holds::Events => {
            let evs = ix.events();
            let i = evs.partition_point(|(s, _)| *s < first);
            let n = (last.0 + 1).saturating_sub(first.0) as usize;
            let Some(slice) = evs.get(i..i + n) else {
                return false;
            };
            if n == 0
                || slice
                    .iter()
                    .zip(first.0..)
                    .any(|((s, _), want)| s.0 != want)
            {
                return false;
            }
            writer::events_encoded(slice.iter().map(|(_, e)| e))
                .is_ok_and(|enc| journal::entries_digest(enc.iter().map(Vec::as_slice)) == digest)
        }
        Holds::Run => ix
            .runs()
            .iter()
            .find(|(s, _)| *s == first)
            .is_some_and(|(_, r)| writer::run_digest(&r.name, &r.manifest_digest) == digest),
    }
}

fn load_manifests(path: &Path) -> crate::Result<HashMap<String, StoredQuery>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(crate::Error::io(path, "read manifests", e)),
    };
    // A cache: a line that does not parse (torn by a crash) is skipped.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<StoredQuery>(l).ok())
        .map(|s| (s.digest.clone(), s))
        .collect())
}
