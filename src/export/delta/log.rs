//! Reading a Delta table's log: replay the JSON commits in `_delta_log/`
//! into a snapshot (protocol, metadata, live files).
//!
//! optout reads JSON commits only. A checkpoint (Parquet) is an accelerator
//! that readers may use but need not: as long as every commit from version
//! 0 is still there, replaying them gives the same snapshot. A table whose
//! early commits were cleaned up after a checkpoint cannot be read without
//! a Parquet reader, and is refused with a clear error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::dv::Descriptor;
use crate::error::InputError;
use crate::export::ExportError;

/// A table's state at one version.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The table's root directory.
    pub table: PathBuf,
    /// The version read.
    pub version: u64,
    /// The latest `protocol` action.
    pub protocol: Map<String, Value>,
    /// The latest `metaData` action.
    pub metadata: Map<String, Value>,
    /// Live files: `add.path` as written in the log → the `add` action.
    pub files: BTreeMap<String, Map<String, Value>>,
}

/// What the commits after some version did, for conflict detection.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// The newest version seen.
    pub version: u64,
    /// `add.path` / `remove.path` values those commits touched.
    pub paths: Vec<String>,
    /// Whether any of them changed the protocol or the metadata.
    pub protocol_or_metadata: bool,
}

/// `_delta_log/<version, 20 digits>.json`.
pub fn commit_path(table: &Path, version: u64) -> PathBuf {
    table.join("_delta_log").join(format!("{version:020}.json"))
}

fn err(file: &Path, line: u64, field: Option<&str>, msg: impl Into<String>) -> ExportError {
    ExportError::Table(InputError::new(
        &file.display().to_string(),
        line,
        field,
        msg,
    ))
}

/// The versions of the JSON commits in `_delta_log/`, ascending, and
/// whether a checkpoint file is present.
fn list_versions(table: &Path) -> Result<(Vec<u64>, bool), ExportError> {
    let log = table.join("_delta_log");
    let rd = std::fs::read_dir(&log).map_err(|e| ExportError::Io {
        path: log.clone(),
        op: "list the Delta log (is this a Delta table?)",
        source: e,
    })?;
    let mut versions = Vec::new();
    let mut checkpoint = false;
    for e in rd {
        let e = e.map_err(|e| ExportError::Io {
            path: log.clone(),
            op: "list the Delta log",
            source: e,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".json") {
            if stem.len() == 20 && stem.bytes().all(|c| c.is_ascii_digit()) {
                versions.push(stem.parse::<u64>().unwrap_or(u64::MAX));
            }
        }
        if name.contains(".checkpoint") || name == "_last_checkpoint" {
            checkpoint = true;
        }
    }
    versions.sort_unstable();
    Ok((versions, checkpoint))
}

/// Largest Delta commit file read: a few hundred thousand actions; a
/// larger commit is refused rather than read into memory.
pub const MAX_COMMIT_FILE: u64 = 256 << 20;

/// `(line number, action)` pairs of one commit.
type Actions = Vec<(u64, Map<String, Value>)>;

fn read_commit(table: &Path, version: u64) -> Result<Actions, ExportError> {
    let path = commit_path(table, version);
    let bytes = crate::fsutil::read_bounded(&path, MAX_COMMIT_FILE, "a Delta commit file")
        .map_err(|e| match e {
            crate::Error::Io { path, op, source } => ExportError::Io { path, op, source },
            other => ExportError::Invalid(other.to_string()),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| err(&path, 0, None, "not valid UTF-8"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| err(&path, ln, None, format!("not a JSON action: {e}")))?;
        let Value::Object(m) = v else {
            return Err(err(&path, ln, None, "an action must be a JSON object"));
        };
        out.push((ln, m));
    }
    Ok(out)
}

fn dv_id(
    path: &Path,
    line: u64,
    action: &Map<String, Value>,
) -> Result<Option<String>, ExportError> {
    match action.get("deletionVector") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let d: Descriptor = serde_json::from_value(v.clone())
                .map_err(|e| err(path, line, Some("deletionVector"), e.to_string()))?;
            Ok(Some(d.unique_id()))
        }
    }
}

fn file_path_of<'a>(
    path: &Path,
    line: u64,
    kind: &str,
    action: &'a Map<String, Value>,
) -> Result<&'a str, ExportError> {
    action.get("path").and_then(Value::as_str).ok_or_else(|| {
        err(
            path,
            line,
            Some(&format!("{kind}.path")),
            "missing or not a string",
        )
    })
}

/// Replays every JSON commit of the table at `table` into a snapshot of
/// its latest version.
pub fn read_snapshot(table: &Path) -> Result<Snapshot, ExportError> {
    let (versions, checkpoint) = list_versions(table)?;
    let log = table.join("_delta_log");
    if versions.is_empty() {
        return Err(err(&log, 0, None, "no commits: not a Delta table"));
    }
    if let Some((i, &v)) = versions.iter().enumerate().find(|(i, v)| **v != *i as u64) {
        let what = if i == 0 && checkpoint {
            format!(
                "the log starts at version {v} after a checkpoint: its earlier commits were \
                 cleaned up, and optout reads JSON commits only (no Parquet checkpoints)"
            )
        } else {
            format!(
                "commit {} is missing (the log has a gap before version {v})",
                i
            )
        };
        return Err(err(&log, 0, None, what));
    }
    let mut protocol = None;
    let mut metadata = None;
    // path → (DV unique id, add action)
    let mut files: BTreeMap<String, (Option<String>, Map<String, Value>)> = BTreeMap::new();
    for &v in &versions {
        let path = commit_path(table, v);
        for (ln, mut action) in read_commit(table, v)? {
            if let Some(Value::Object(p)) = action.remove("protocol") {
                protocol = Some(p);
            } else if let Some(Value::Object(m)) = action.remove("metaData") {
                metadata = Some(m);
            } else if let Some(Value::Object(a)) = action.remove("add") {
                let p = file_path_of(&path, ln, "add", &a)?.to_string();
                let id = dv_id(&path, ln, &a)?;
                files.insert(p, (id, a));
            } else if let Some(Value::Object(r)) = action.remove("remove") {
                let p = file_path_of(&path, ln, "remove", &r)?;
                let id = dv_id(&path, ln, &r)?;
                if files.get(p).is_some_and(|(cur, _)| *cur == id) {
                    files.remove(p);
                }
            }
        }
    }
    let last = *versions.last().unwrap_or(&0);
    let protocol = protocol.ok_or_else(|| err(&log, 0, Some("protocol"), "no protocol action"))?;
    let metadata = metadata.ok_or_else(|| err(&log, 0, Some("metaData"), "no metaData action"))?;
    Ok(Snapshot {
        table: table.to_path_buf(),
        version: last,
        protocol,
        metadata,
        files: files.into_iter().map(|(p, (_, a))| (p, a)).collect(),
    })
}

/// What the commits after `version` changed.
pub fn changes_after(table: &Path, version: u64) -> Result<Changes, ExportError> {
    let (versions, _) = list_versions(table)?;
    let mut c = Changes {
        version,
        ..Changes::default()
    };
    for &v in versions.iter().filter(|&&v| v > version) {
        c.version = c.version.max(v);
        for (_, a) in read_commit(table, v)? {
            for kind in ["add", "remove"] {
                if let Some(p) = a
                    .get(kind)
                    .and_then(|x| x.get("path"))
                    .and_then(Value::as_str)
                {
                    c.paths.push(p.to_string());
                }
            }
            if a.contains_key("protocol") || a.contains_key("metaData") {
                c.protocol_or_metadata = true;
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(table: &Path, v: u64, lines: &[Value]) {
        std::fs::create_dir_all(table.join("_delta_log")).unwrap();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(commit_path(table, v), text).unwrap();
    }

    #[test]
    fn replay_follows_action_reconciliation() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        let dv = serde_json::json!({"storageType":"i","pathOrInlineDv":"00000","sizeInBytes":4,"cardinality":0});
        write(
            t,
            0,
            &[
                serde_json::json!({"protocol":{"minReaderVersion":1,"minWriterVersion":2}}),
                serde_json::json!({"metaData":{"id":"x","configuration":{}}}),
                serde_json::json!({"add":{"path":"a.parquet","size":1}}),
                serde_json::json!({"add":{"path":"b.parquet","size":1}}),
            ],
        );
        // The add with a DV comes before the remove of the old one.
        write(
            t,
            1,
            &[
                serde_json::json!({"add":{"path":"a.parquet","size":1,"deletionVector":dv}}),
                serde_json::json!({"remove":{"path":"a.parquet"}}),
                serde_json::json!({"remove":{"path":"b.parquet"}}),
            ],
        );
        let s = read_snapshot(t).unwrap();
        assert_eq!(s.version, 1);
        assert_eq!(s.files.keys().collect::<Vec<_>>(), vec!["a.parquet"]);
        assert!(s.files["a.parquet"].contains_key("deletionVector"));
        let c = changes_after(t, 0).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.paths.len(), 3);
        assert!(!c.protocol_or_metadata);
    }

    #[test]
    fn refuses_gaps_and_cleaned_up_logs() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        write(t, 1, &[serde_json::json!({"add":{"path":"a"}})]);
        assert!(read_snapshot(t)
            .unwrap_err()
            .to_string()
            .contains("commit 0 is missing"));
        std::fs::write(t.join("_delta_log/_last_checkpoint"), "{}").unwrap();
        let e = read_snapshot(t).unwrap_err().to_string();
        assert!(
            e.contains("checkpoint") && e.contains("JSON commits only"),
            "{e}"
        );
        std::fs::write(commit_path(t, 0), "{\"protocol\":{}}\nnot json\n").unwrap();
        let e = read_snapshot(t).unwrap_err().to_string();
        assert!(e.contains("00000000000000000000.json:2"), "{e}");
    }
}
