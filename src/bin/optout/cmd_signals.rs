//! `optout signals`: machine-readable opt-out signals from crawl metadata
//! into the ledger (see `docs/SIGNALS.md`).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::time::Instant;

use anyhow::{Context, Result};
use optout::signals::{self, Config, Scope};
use optout::Purposes;
use serde_json::json;

use crate::args::SignalsArgs;
use crate::out::{num, secs, Out};
use crate::{input, load_key, open_ledger, Status};

pub fn signals(out: &mut Out, a: &SignalsArgs) -> Result<Status> {
    let t0 = Instant::now();
    let mut cfg = Config::default();
    if !a.agents.is_empty() {
        cfg.agents = a.agents.clone();
    }
    if !a.purposes.is_empty() {
        cfg.purposes =
            Purposes::parse(&a.purposes).map_err(|e| anyhow::anyhow!("--purpose: {e}"))?;
    }
    // Read every file before touching the ledger: all or nothing.
    let mut crawl = Vec::new();
    for f in &a.files {
        let r = BufReader::new(input::open(f)?);
        crawl.extend(signals::parse_crawl(r, f)?);
    }
    let keyer = load_key(&a.ledger, &a.key)?;
    let mut l = open_ledger(out, &a.ledger, Some(keyer), a.dry_run)?;
    let before = l.head().0;
    let keys = l
        .record_keys()
        .with_context(|| format!("{}: reading record keys", a.ledger.display()))?;
    let plan = signals::plan(
        &crawl,
        keys.iter().map(String::as_str),
        l.index().events().iter().map(|(_, e)| e),
        &cfg,
    );
    let n_events = plan.events.len() as u64;
    let seq = if a.dry_run || plan.events.is_empty() {
        before
    } else {
        l.apply(plan.events.clone())?
    };
    let el = t0.elapsed();
    let mut by_kind: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
    for s in &plan.signals {
        by_kind.entry(s.kind).or_default()[s.unparsable as usize] += 1;
    }
    let unparsable = plan.signals.iter().filter(|s| s.unparsable).count() as u64;
    out.line(format!(
        "{} crawl lines, {} URLs evaluated: {} signals ({} unparsable, reserved failing closed); {} {} new events ({} already recorded); seq {} -> {} ({})",
        num(crawl.len() as u64),
        num(plan.urls_evaluated as u64),
        num(plan.signals.len() as u64),
        num(unparsable),
        if a.dry_run { "would record" } else { "recorded" },
        num(n_events),
        num(plan.already_recorded as u64),
        before,
        seq,
        secs(el)
    ))?;
    for s in plan.signals.iter().filter(|s| s.unparsable) {
        out.line(format!(
            "  unparsable {} at {} ({}): {}",
            s.kind, s.url, s.fetched_at, s.detail
        ))?;
    }
    let list: Vec<_> = plan
        .signals
        .iter()
        .map(|s| {
            let (scope, target) = match &s.scope {
                Scope::Domain(d) => ("domain", d),
                Scope::Url(u) => ("url", u),
            };
            json!({
                "kind": s.kind,
                "scope": scope,
                "target": target,
                "unparsable": s.unparsable,
                "url": s.url,
                "fetched_at": s.fetched_at.to_rfc3339(),
                "detail": s.detail,
            })
        })
        .collect();
    out.json(json!({
        "command": "signals",
        "dry_run": a.dry_run,
        "crawl_lines": crawl.len(),
        "urls_evaluated": plan.urls_evaluated,
        "signals": list,
        "by_kind": by_kind.iter().map(|(k, v)| (k.to_string(), json!({"reserved": v[0], "unparsable": v[1]}))).collect::<serde_json::Map<_, _>>(),
        "events": n_events,
        "already_recorded": plan.already_recorded,
        "seq_before": before.0,
        "seq": seq.0,
        "seconds": el.as_secs_f64(),
    }))?;
    Ok(Status::Ok)
}
