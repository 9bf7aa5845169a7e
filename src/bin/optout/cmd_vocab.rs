//! Declared vocabularies: `purposes add`, `purposes list` and `vocab add`.
//! The rules (what is declared, what an old ledger counts as declared, which
//! basis names may be declared) are the library's.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::args::{KeyArg, VocabKind};
use crate::out::{num, Out};
use crate::{open_ledger, optional_key, Status};

pub fn add(
    out: &mut Out,
    ledger: &Path,
    name: &str,
    description: Option<&str>,
    key: &KeyArg,
) -> Result<Status> {
    let keyer = optional_key(ledger, key)?;
    let mut l = open_ledger(out, ledger, keyer, false)?;
    let seq = l.add_purpose(name, description)?;
    match seq {
        Some(s) => out.line(format!("declared purpose {name} at seq {s}"))?,
        None => out.line(format!("purpose {name} is already declared (unchanged)"))?,
    }
    out.json(json!({
        "command": "purposes add",
        "purpose": name,
        "declared": seq.is_some(),
        "seq": seq.map_or(l.head().0 .0, |s| s.0),
    }))?;
    Ok(Status::Ok)
}

/// `vocab add LEDGER basis|purpose NAME`.
pub fn add_word(
    out: &mut Out,
    ledger: &Path,
    vocabulary: VocabKind,
    name: &str,
    key: &KeyArg,
) -> Result<Status> {
    if vocabulary == VocabKind::Purpose {
        return add(out, ledger, name, None, key);
    }
    let keyer = optional_key(ledger, key)?;
    let mut l = open_ledger(out, ledger, keyer, false)?;
    let seq = l.add_basis(name)?;
    let name = name.trim().to_lowercase();
    match seq {
        Some(s) => out.line(format!("declared basis {name} at seq {s}"))?,
        None => out.line(format!("basis {name} is already declared (unchanged)"))?,
    }
    out.json(json!({
        "command": "vocab add",
        "vocabulary": "basis",
        "name": name,
        "declared": seq.is_some(),
        "seq": seq.map_or(l.head().0 .0, |s| s.0),
    }))?;
    Ok(Status::Ok)
}

pub fn list(out: &mut Out, ledger: &Path, key: &KeyArg) -> Result<Status> {
    let keyer = optional_key(ledger, key)?;
    let l = open_ledger(out, ledger, keyer, true)?;
    let purposes = l.purposes();
    for p in &purposes {
        let how = match (p.declared_at, p.implicit) {
            (Some(s), _) => format!("declared at seq {s}"),
            (None, true) => {
                "declared by init (implicitly: no purpose was declared since)".to_string()
            }
            (None, false) => {
                "NOT declared (named by events recorded before declarations existed)".to_string()
            }
        };
        out.line(format!(
            "{}\t{} event(s)\t{how}{}",
            p.name,
            num(p.events),
            p.description
                .as_ref()
                .map(|d| format!("\t{d}"))
                .unwrap_or_default()
        ))?;
    }
    out.json(json!({
        "command": "purposes list",
        "purposes": purposes.iter().map(|p| json!({
            "name": p.name,
            "description": p.description,
            "declared": p.is_declared(),
            "declared_at_seq": p.declared_at.map(|s| s.0),
            "implicit": p.implicit,
            "events": p.events,
        })).collect::<Vec<_>>(),
    }))?;
    Ok(Status::Ok)
}
