//! The writer's one-request path: records, signals and runs, and each
//! events request of a group that one request broke, are appended on
//! their own (a keyed run journals its intent first; every keyed request
//! gets a done line after).

use super::*;

impl Writer {
    /// Appends one request on its own; keyed answers get a done line.
    pub(super) fn commit_single(&mut self, r: WriteRequest) {
        let WriteRequest {
            op,
            meta,
            reply: tx,
        } = r;
        let result = self.apply_one(op, &meta);
        let result = match (result, &meta.key) {
            (Ok(body), Some(k)) => {
                let line = Line::Done {
                    actor: meta.actor.clone(),
                    key: k.clone(),
                    fp: meta.fp.clone(),
                    response: body.clone(),
                    at: Timestamp::now().to_rfc3339(),
                };
                self.journal(std::slice::from_ref(&line)).map(|()| {
                    self.journal
                        .remember(&meta.actor, k, &meta.fp, body.clone());
                    body
                })
            }
            (r, _) => r,
        };
        let _ = tx.send(result.map(|body| Answer {
            body,
            replayed: false,
        }));
    }

    fn apply_one(&mut self, op: WriteOp, meta: &WriteMeta) -> Result<Value, ApiError> {
        let ledger = Arc::clone(&self.ledger);
        let mut l = ledger.write().map_err(|_| lock_error())?;
        let before = l.head().0 .0;
        let t = Instant::now();
        let storage = |w: &Self, e: crate::Error| match e {
            crate::Error::Storage(s) => w.fail(s.to_string()),
            e => e.into(),
        };
        let body = match op {
            WriteOp::Events(evs) => {
                let marks = l.unchanged_events(&evs)?;
                let unchanged = marks.iter().filter(|&&m| m).count() as u64;
                let kept: Vec<Event> = evs
                    .into_iter()
                    .zip(marks)
                    .filter_map(|(e, same)| (!same).then_some(e))
                    .collect();
                let body = events_answer(&kept, unchanged, before + 1);
                l.apply(kept).map_err(|e| storage(self, e))?;
                body
            }
            WriteOp::Records(batch) => {
                let n = batch.len() as u64;
                let s = l.ingest(batch).map_err(|e| storage(self, e))?;
                let counts = [s.registered, s.unchanged, s.links];
                registered_answer(json!({ "records": n }), counts, before, s.seq.0)
            }
            WriteOp::Derive(mut b) => {
                let rows = b.derivation().len() as u64;
                let s = match l.derive(b.take()) {
                    Err(crate::Error::Derive(e)) => return Err(b.located(e).into()),
                    r => r.map_err(|e| storage(self, e))?,
                };
                let counts = [s.registered, s.unchanged, s.links];
                let what = json!({ "dataset": b.derivation().dataset, "rows": rows });
                registered_answer(what, counts, before, s.seq.0)
            }
            WriteOp::Signals {
                crawl,
                config,
                dry_run,
            } => {
                let keys = l.record_keys().map_err(|e| storage(self, e))?;
                let plan = signals::plan(
                    &crawl,
                    keys.iter().map(String::as_str),
                    l.index().events().iter().map(|(_, e)| e),
                    &config,
                );
                let n = plan.events.len() as u64;
                let head = if dry_run || plan.events.is_empty() {
                    before
                } else {
                    l.apply(plan.events).map_err(|e| storage(self, e))?.0
                };
                json!({
                    "dry_run": dry_run,
                    "crawl_lines": crawl.len(),
                    "urls_evaluated": plan.urls_evaluated,
                    "signals": plan.signals.len(),
                    "unparsable": plan.signals.iter().filter(|s| s.unparsable).count(),
                    "events": if dry_run { 0 } else { n },
                    "would_record": if dry_run { n } else { 0 },
                    "already_recorded": plan.already_recorded,
                    "first_seq": (head > before).then_some(before + 1),
                    "last_seq": (head > before).then_some(head),
                })
            }
            WriteOp::Run {
                name,
                model,
                manifest,
                started_at,
            } => {
                let name = name.unwrap_or_else(|| l.default_run_name(&model));
                let h = &manifest.header;
                let later = l.events_after_manifest(&manifest, started_at);
                let digest = manifest.digest_hex();
                let body = json!({
                    "name": name,
                    "model": model,
                    "seq": before + 1,
                    "manifest_digest": digest,
                    "manifest_seq": h.seq,
                    "started_at": started_at.to_rfc3339(),
                    "events_after_manifest": later,
                });
                if let Some(k) = &meta.key {
                    let intent = Line::Intent {
                        actor: meta.actor.clone(),
                        key: k.clone(),
                        fp: meta.fp.clone(),
                        holds: Holds::Run,
                        first: before + 1,
                        last: before + 1,
                        digest: run_digest(&name, &digest),
                        response: body.clone(),
                        at: Timestamp::now().to_rfc3339(),
                    };
                    drop(l);
                    self.journal(std::slice::from_ref(&intent))?;
                    l = ledger.write().map_err(|_| lock_error())?;
                }
                let seq = l
                    .register_run(&name, &model, &manifest, started_at)
                    .map_err(|e| storage(self, e))?;
                if seq.0 != before + 1 {
                    return Err(self.fail(format!(
                        "the run landed at seq {seq}, expected {}",
                        before + 1
                    )));
                }
                body
            }
        };
        let head = l.head().0 .0;
        self.metrics.group(1, t.elapsed(), head - before, head);
        Ok(body)
    }
}

/// The answer of a records or derive write: `what` with the `registered`,
/// `unchanged` and `links` counts and the seq range written (none when
/// the head did not move past `before`).
fn registered_answer(
    mut what: Value,
    [registered, unchanged, links]: [u64; 3],
    before: u64,
    head: u64,
) -> Value {
    let moved = head > before;
    let more = json!({
        "registered": registered,
        "unchanged": unchanged,
        "links": links,
        "first_seq": moved.then_some(before + 1),
        "last_seq": moved.then_some(head),
    });
    if let (Some(w), Value::Object(m)) = (what.as_object_mut(), more) {
        w.extend(m);
    }
    what
}
