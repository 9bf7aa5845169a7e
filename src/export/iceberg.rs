//! Iceberg v3 deletion vectors: a Puffin file with one
//! `deletion-vector-v1` blob per data file that has excluded rows.
//!
//! ```text
//! file:   "PFA1" | blob... | footer
//! blob:   length u32 BE (of magic + vector) | D1 D3 39 64 | vector | CRC-32 u32 BE (of magic + vector)
//!         vector = 64-bit roaring, portable format (u64 LE count, per bucket: key u32 LE, 32-bit roaring)
//! footer: "PFA1" | payload (JSON) | payload length u32 LE | flags [0; 4] | "PFA1"
//! ```
//!
//! Each blob's footer entry carries the properties `referenced-data-file`
//! (the data file's location) and `cardinality`, with `snapshot-id` and
//! `sequence-number` -1 (they are assigned when a writer commits the
//! file). optout writes the Puffin file only: committing it (a delete file
//! of content `deletion vectors`, with `content_offset`,
//! `content_size_in_bytes` and `referenced_data_file` per blob, as
//! [`PuffinSummary::blobs`] lists them) is the job of an Iceberg writer and
//! its catalog. See `docs/LAKEHOUSE.md`.

use std::path::{Path, PathBuf};

use roaring::RoaringTreemap;
use serde_json::json;

use crate::export::{select_shards, ExportError};
use crate::manifest::Manifest;

/// Puffin's magic.
pub const PUFFIN_MAGIC: &[u8; 4] = b"PFA1";
/// The magic that starts a `deletion-vector-v1` vector.
pub const DV_MAGIC: [u8; 4] = [0xD1, 0xD3, 0x39, 0x64];
/// Iceberg's reserved field id of the row position (`_pos`).
const ROW_POSITION_FIELD_ID: i64 = 2_147_483_645;

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct IcebergOptions {
    /// The manifest dataset; may be `None` when the manifest covers one.
    pub dataset: Option<String>,
    /// Prefix joined to each shard name (with `/`) to give the data file's
    /// location as the table knows it, e.g. `s3://bucket/db/t/data`.
    /// `None`: the shard name is the location.
    pub data_root: Option<String>,
}

/// One blob written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PuffinBlob {
    /// The data file's location (`referenced-data-file`).
    pub referenced_data_file: String,
    /// The blob's offset in the Puffin file (`content_offset`).
    pub offset: u64,
    /// The blob's length (`content_size_in_bytes`).
    pub length: u64,
    /// Rows deleted.
    pub cardinality: u64,
}

/// What [`write_puffin`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PuffinSummary {
    /// The Puffin file.
    pub path: PathBuf,
    /// The dataset exported.
    pub dataset: String,
    /// One per data file with excluded rows, in shard order.
    pub blobs: Vec<PuffinBlob>,
    /// Rows deleted in all.
    pub rows: u64,
}

/// Encodes one `deletion-vector-v1` blob.
///
/// ```
/// use optout::export::iceberg;
/// let rows: roaring::RoaringTreemap = [1u64, 5].into_iter().collect();
/// let blob = iceberg::dv_blob(&rows);
/// let len = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
/// assert_eq!(blob.len(), 4 + len + 4);
/// assert_eq!(&blob[4..8], &iceberg::DV_MAGIC);
/// ```
pub fn dv_blob(rows: &RoaringTreemap) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + rows.serialized_size());
    body.extend_from_slice(&DV_MAGIC);
    // Writing into a Vec cannot fail.
    let _ = rows.serialize_into(&mut body);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out
}

/// Encodes a Puffin file of deletion vectors (data file location, rows).
/// Returns the bytes and the blobs' offsets and lengths.
pub fn encode_puffin(dvs: &[(String, RoaringTreemap)]) -> (Vec<u8>, Vec<PuffinBlob>) {
    let mut out = PUFFIN_MAGIC.to_vec();
    let mut blobs = Vec::with_capacity(dvs.len());
    let mut meta = Vec::with_capacity(dvs.len());
    for (file, rows) in dvs {
        let b = dv_blob(rows);
        let blob = PuffinBlob {
            referenced_data_file: file.clone(),
            offset: out.len() as u64,
            length: b.len() as u64,
            cardinality: rows.len(),
        };
        meta.push(json!({
            "type": "deletion-vector-v1",
            "fields": [ROW_POSITION_FIELD_ID],
            "snapshot-id": -1,
            "sequence-number": -1,
            "offset": blob.offset,
            "length": blob.length,
            "properties": {
                "referenced-data-file": file,
                "cardinality": rows.len().to_string(),
            },
        }));
        out.extend_from_slice(&b);
        blobs.push(blob);
    }
    let payload = json!({
        "blobs": meta,
        "properties": {"created-by": crate::manifest::tool_version()},
    })
    .to_string();
    out.extend_from_slice(PUFFIN_MAGIC);
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(PUFFIN_MAGIC);
    (out, blobs)
}

/// Writes the deletion vectors of one dataset of `manifest` to a Puffin
/// file at `path` (atomically), one blob per shard with excluded rows.
pub fn write_puffin(
    path: &Path,
    manifest: &Manifest,
    opts: &IcebergOptions,
) -> Result<PuffinSummary, ExportError> {
    let (dataset, shards) = select_shards(manifest, opts.dataset.as_deref())?;
    let dvs: Vec<(String, RoaringTreemap)> = shards
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(shard, rows)| {
            let loc = match &opts.data_root {
                Some(root) => format!(
                    "{}/{}",
                    root.trim_end_matches('/'),
                    shard.trim_start_matches('/')
                ),
                None => shard,
            };
            (loc, rows.iter().map(u64::from).collect())
        })
        .collect();
    let (bytes, blobs) = encode_puffin(&dvs);
    crate::fsutil::atomic_write(path, &bytes).map_err(ExportError::from_crate)?;
    Ok(PuffinSummary {
        path: path.to_path_buf(),
        dataset,
        rows: blobs.iter().map(|b| b.cardinality).sum(),
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puffin_layout() {
        let a: RoaringTreemap = [0u64, 7, 70_000].into_iter().collect();
        let b: RoaringTreemap = [(1u64 << 32) + 3].into_iter().collect();
        let (bytes, blobs) = encode_puffin(&[
            ("s3://t/a.parquet".into(), a.clone()),
            ("b".into(), b.clone()),
        ]);
        assert_eq!(&bytes[..4], PUFFIN_MAGIC);
        assert_eq!(&bytes[bytes.len() - 4..], PUFFIN_MAGIC);
        assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], &[0; 4]);
        let n = u32::from_le_bytes(bytes[bytes.len() - 12..bytes.len() - 8].try_into().unwrap())
            as usize;
        let footer_start = bytes.len() - 12 - n;
        assert_eq!(&bytes[footer_start - 4..footer_start], PUFFIN_MAGIC);
        let footer: serde_json::Value =
            serde_json::from_slice(&bytes[footer_start..bytes.len() - 12]).unwrap();
        assert_eq!(footer["blobs"].as_array().unwrap().len(), 2);
        assert_eq!(footer["blobs"][0]["properties"]["cardinality"], "3");
        for (blob, rows) in blobs.iter().zip([a, b]) {
            let raw = &bytes[blob.offset as usize..(blob.offset + blob.length) as usize];
            let len = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
            let body = &raw[4..4 + len];
            assert_eq!(&body[..4], &DV_MAGIC);
            assert_eq!(
                u32::from_be_bytes(raw[4 + len..].try_into().unwrap()),
                crc32fast::hash(body)
            );
            assert_eq!(RoaringTreemap::deserialize_from(&body[4..]).unwrap(), rows);
        }
    }
}
