//! The report of an `ingest`, JSONL or table: one line for people, one
//! JSON object for `--json`.

use std::time::Duration;

use anyhow::Result;
use optout::{IngestSummary, Seq};
use serde_json::{json, Value};

use crate::out::{num, rate, secs, Out};

/// What both ingest paths read and wrote.
pub struct IngestReport<'a> {
    /// Records read (registered and unchanged).
    pub records: u64,
    /// Files named on the command line.
    pub files: usize,
    /// What the ledger did with them.
    pub summary: &'a IngestSummary,
    /// The ledger's head before the ingest.
    pub before: Seq,
    /// Since the command started.
    pub elapsed: Duration,
    /// Said after "N unchanged" (empty for none).
    pub unchanged_note: String,
    /// Fields of the JSON object beyond the common ones.
    pub json: Value,
}

/// Writes the report of an ingest.
pub fn report(out: &mut Out, r: IngestReport<'_>) -> Result<()> {
    let (n, s, el) = (r.records, r.summary, r.elapsed);
    out.line(format!(
        "ingested {} records from {} file(s): {} registered, {} unchanged{}{}, {} subject links; seq {} -> {}{} ({}{})",
        num(n),
        r.files,
        num(s.registered),
        num(s.unchanged),
        r.unchanged_note,
        if s.gone > 0 {
            format!(", {} gone (past a shard's new end)", num(s.gone))
        } else {
            String::new()
        },
        num(s.links),
        r.before,
        s.seq,
        match s.snapshot {
            Some(at) => format!("; snapshot written at seq {at}"),
            None => String::new(),
        },
        secs(el),
        if n >= 100_000 {
            format!(", {} records/s", rate(n, el))
        } else {
            String::new()
        },
    ))?;
    let mut js = json!({
        "command": "ingest",
        "records": n,
        "registered": s.registered,
        "unchanged": s.unchanged,
        "links": s.links,
        "gone": s.gone,
        "snapshot_seq": s.snapshot.map(|s| s.0),
        "seq_before": r.before.0,
        "seq": s.seq.0,
        "seconds": el.as_secs_f64(),
    });
    if let (Some(m), Value::Object(extra)) = (js.as_object_mut(), r.json) {
        m.extend(extra);
    }
    Ok(out.json(js)?)
}
