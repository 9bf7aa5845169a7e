//! Writing one commit: the deletion-vector file, the actions, and the
//! create-if-absent commit file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::dv::{self, Descriptor};
use super::{log, Plan};
use crate::export::ExportError;

impl Plan {
    /// One attempt. `Ok(Err(v))`: version `v` was already taken (the DV
    /// file written for this attempt has been removed again).
    #[allow(clippy::type_complexity)]
    pub(super) fn try_commit(&self) -> Result<Result<(u64, Option<PathBuf>), u64>, ExportError> {
        let table = &self.snapshot.table;
        let version = self.snapshot.version + 1;
        // Deletion vectors: small ones inline, the rest in one new file.
        let payloads: Vec<Vec<u8>> = self
            .changes
            .iter()
            .map(|c| dv::encode_bitmap(&c.merged))
            .collect();
        let in_file: Vec<usize> = (0..payloads.len())
            .filter(|&i| payloads[i].len() > self.opts.inline_max_bytes)
            .collect();
        let mut descriptors: Vec<Option<Descriptor>> = vec![None; payloads.len()];
        let mut dv_file = None;
        if !in_file.is_empty() {
            let uuid = dv::random_uuid().map_err(ExportError::Other)?;
            let chosen: Vec<Vec<u8>> = in_file.iter().map(|&i| payloads[i].clone()).collect();
            let (bytes, offsets) = dv::encode_file(&chosen);
            let path = table.join(dv::file_name(&uuid));
            crate::fsutil::atomic_write(&path, &bytes).map_err(ExportError::from_crate)?;
            for (k, &i) in in_file.iter().enumerate() {
                descriptors[i] = Some(Descriptor::in_file(
                    &uuid,
                    offsets[k],
                    payloads[i].len(),
                    self.changes[i].merged.len(),
                ));
            }
            dv_file = Some(path);
        }
        for (i, d) in descriptors.iter_mut().enumerate() {
            if d.is_none() {
                *d = Some(Descriptor::inline(
                    &payloads[i],
                    self.changes[i].merged.len(),
                ));
            }
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut lines = Vec::new();
        let rows_added: u64 = self
            .changes
            .iter()
            .map(|c| c.merged.len() - c.old.len())
            .sum();
        lines.push(json!({"commitInfo": {
            "timestamp": now_ms,
            "operation": "DELETE",
            "operationParameters": {"predicate": format!("optout manifest {}", self.digest)},
            "readVersion": self.snapshot.version,
            "isBlindAppend": false,
            "engineInfo": crate::manifest::tool_version(),
            "operationMetrics": {
                "numDeletionVectorsAdded": self.changes.len().to_string(),
                "numDeletedRows": rows_added.to_string(),
            },
            "optout": {"manifestDigest": self.digest, "dataset": self.dataset},
        }}));
        if let Some(p) = &self.protocol {
            lines.push(json!({ "protocol": p }));
        }
        if let Some(m) = &self.metadata {
            lines.push(json!({ "metaData": m }));
        }
        for (c, d) in self.changes.iter().zip(descriptors) {
            lines.push(json!({ "remove": remove_action(&c.add, now_ms) }));
            lines.push(json!({ "add": add_action(&c.add, d) }));
        }
        let mut text = String::new();
        for l in &lines {
            text.push_str(&l.to_string());
            text.push('\n');
        }
        match write_new(&log::commit_path(table, version), text.as_bytes())? {
            true => Ok(Ok((version, dv_file))),
            false => {
                if let Some(p) = &dv_file {
                    let _ = std::fs::remove_file(p);
                }
                Ok(Err(version))
            }
        }
    }
}

/// The `remove` action for the file as `add` described it (with its old
/// deletion vector, if any, so it names that logical file).
fn remove_action(add: &Map<String, Value>, now_ms: u64) -> Map<String, Value> {
    let mut r = Map::new();
    for k in [
        "path",
        "partitionValues",
        "size",
        "tags",
        "deletionVector",
        "baseRowId",
        "defaultRowCommitVersion",
        "stats",
    ] {
        if let Some(v) = add.get(k).filter(|v| !v.is_null()) {
            r.insert(k.into(), v.clone());
        }
    }
    r.insert("deletionTimestamp".into(), now_ms.into());
    r.insert("dataChange".into(), true.into());
    r.insert("extendedFileMetadata".into(), true.into());
    r
}

/// The `add` action re-adding the file with deletion vector `d`. Its
/// column statistics now describe a superset of the live rows: they are
/// marked wide (`tightBounds: false`), as the protocol asks.
fn add_action(add: &Map<String, Value>, d: Option<Descriptor>) -> Map<String, Value> {
    let mut a = add.clone();
    a.insert("dataChange".into(), true.into());
    a.insert(
        "deletionVector".into(),
        serde_json::to_value(d).unwrap_or(Value::Null),
    );
    if let Some(Ok(Value::Object(mut s))) = a
        .get("stats")
        .and_then(Value::as_str)
        .map(serde_json::from_str::<Value>)
    {
        s.insert("tightBounds".into(), false.into());
        a.insert("stats".into(), Value::String(Value::Object(s).to_string()));
    }
    a
}

/// Writes `bytes` to `path` only if `path` does not exist, atomically:
/// a temporary file is written and fsynced, then hard-linked to `path`
/// (which fails if `path` exists, whoever wrote it), then the directory is
/// fsynced. `Ok(false)`: `path` already existed.
fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, ExportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".optout-{}-{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let io = |op, e| ExportError::Io {
        path: path.to_path_buf(),
        op,
        source: e,
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create temporary commit", e))?;
    f.write_all(bytes)
        .map_err(|e| io("write temporary commit", e))?;
    f.sync_all().map_err(|e| io("fsync temporary commit", e))?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io("link the commit into place", e)),
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().map_err(|e| io("fsync the log directory", e))?;
    }
    Ok(true)
}
