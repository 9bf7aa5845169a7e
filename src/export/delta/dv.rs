//! Delta deletion vectors: the `RoaringBitmapArray` payload, the
//! deletion-vector file (`version 1 | per DV: size u32 BE | payload | CRC-32
//! u32 BE`), and the descriptor stored in an `add` action (see Delta
//! PROTOCOL.md, "Deletion Vectors" and "Deletion Vector Format").

use std::io::Read;
use std::path::{Path, PathBuf};

use roaring::{RoaringBitmap, RoaringTreemap};
use serde::{Deserialize, Serialize};

use crate::export::z85;

/// The magic number that starts a `RoaringBitmapArray` in the portable
/// format (little-endian).
pub const BITMAP_MAGIC: u32 = 1_681_511_377;

/// The version byte that starts a deletion-vector file.
pub const FILE_VERSION: u8 = 1;

/// Encodes rows as a `RoaringBitmapArray`: magic (u32 LE) then a 64-bit
/// roaring bitmap in the portable format (u64 LE bucket count, per bucket:
/// key u32 LE and a 32-bit portable roaring bitmap).
///
/// ```
/// use optout::export::delta::dv;
/// let rows: roaring::RoaringTreemap = [3u64, 4, 7].into_iter().collect();
/// let bytes = dv::encode_bitmap(&rows);
/// assert_eq!(&bytes[..4], &1_681_511_377u32.to_le_bytes());
/// assert_eq!(dv::decode_bitmap(&bytes).unwrap(), rows);
/// ```
pub fn encode_bitmap(rows: &RoaringTreemap) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + rows.serialized_size());
    out.extend_from_slice(&BITMAP_MAGIC.to_le_bytes());
    // Writing into a Vec cannot fail.
    let _ = rows.serialize_into(&mut out);
    out
}

/// Decodes a `RoaringBitmapArray`, insisting on a well-formed one: the
/// magic, bucket keys strictly ascending with a clear top bit (the protocol
/// requires it), every bucket non-empty and validated by roaring, no
/// trailing bytes. (Not byte-canonical: other writers, e.g. Java roaring,
/// may use run containers that roaring-rs would encode differently.)
pub fn decode_bitmap(bytes: &[u8]) -> Result<RoaringTreemap, String> {
    let magic = bytes
        .get(..4)
        .ok_or("deletion vector shorter than its magic number")?;
    let magic = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
    if magic != BITMAP_MAGIC {
        return Err(format!(
            "deletion vector magic {magic}, expected {BITMAP_MAGIC} (the portable RoaringBitmapArray format)"
        ));
    }
    let mut r = &bytes[4..];
    let mut n = [0u8; 8];
    r.read_exact(&mut n)
        .map_err(|_| "deletion vector truncated in its bucket count".to_string())?;
    let n = u64::from_le_bytes(n);
    // Each bucket takes at least 4 + 8 bytes: a count larger than that is a lie.
    if n > (r.len() / 12) as u64 {
        return Err(format!(
            "deletion vector claims {n} buckets in {} bytes",
            r.len()
        ));
    }
    let mut buckets = Vec::with_capacity(n as usize);
    let mut last: Option<u32> = None;
    for i in 0..n {
        let mut k = [0u8; 4];
        r.read_exact(&mut k)
            .map_err(|_| format!("deletion vector truncated in bucket {i}'s key"))?;
        let key = u32::from_le_bytes(k);
        if key & 0x8000_0000 != 0 {
            return Err(format!(
                "deletion vector bucket {i} has key {key} with its top bit set"
            ));
        }
        if last.is_some_and(|l| key <= l) {
            return Err(format!(
                "deletion vector bucket keys not ascending at bucket {i}"
            ));
        }
        last = Some(key);
        let b = RoaringBitmap::deserialize_from(&mut r)
            .map_err(|e| format!("deletion vector bucket {i}: {e}"))?;
        if b.is_empty() {
            return Err(format!("deletion vector bucket {i} is empty"));
        }
        buckets.push((key, b));
    }
    if !r.is_empty() {
        return Err(format!(
            "{} trailing bytes after the deletion vector",
            r.len()
        ));
    }
    Ok(RoaringTreemap::from_bitmaps(buckets))
}

/// Frames payloads as a deletion-vector file. Returns the file's bytes and,
/// per payload, the `offset` to put in its descriptor (the position of its
/// size field, as Delta's readers expect: 1 for the first).
pub fn encode_file(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<u32>) {
    let mut out = vec![FILE_VERSION];
    let mut offsets = Vec::with_capacity(payloads.len());
    for p in payloads {
        offsets.push(out.len() as u32);
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(&crc32fast::hash(p).to_be_bytes());
    }
    (out, offsets)
}

/// Reads the payload at `offset` of a deletion-vector file: checks the
/// version byte, that the size field equals `size`, and the CRC-32.
pub fn read_file_payload(file: &[u8], offset: u64, size: u64) -> Result<&[u8], String> {
    match file.first() {
        Some(&FILE_VERSION) => {}
        Some(v) => return Err(format!("deletion-vector file version {v}, expected 1")),
        None => return Err("deletion-vector file is empty".into()),
    }
    // An absent offset means 0 in the protocol, which is the version byte;
    // Delta's writers always record the size field's position (>= 1).
    let at = usize::try_from(offset.max(1)).map_err(|_| "offset too large")?;
    let get = |from: usize, len: usize, what: &str| {
        from.checked_add(len)
            .and_then(|end| file.get(from..end))
            .ok_or_else(|| format!("deletion-vector file truncated in the {what} at byte {from}"))
    };
    let sz = get(at, 4, "size field")?;
    let len = u32::from_be_bytes([sz[0], sz[1], sz[2], sz[3]]) as usize;
    if len as u64 != size {
        return Err(format!(
            "deletion vector at byte {at} is {len} bytes, the descriptor says {size}"
        ));
    }
    let data = get(at + 4, len, "data")?;
    let c = get(at + 4 + len, 4, "checksum")?;
    let crc = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    if crc != crc32fast::hash(data) {
        return Err(format!("deletion vector at byte {at}: CRC-32 mismatch"));
    }
    Ok(data)
}

/// Largest deletion vector read from a file (a vector of every row of a
/// 4-billion-row file is about 512 MiB).
pub const MAX_DV_BYTES: u64 = 1 << 30;

/// `p` resolved, refusing a path outside the table directory (symbolic
/// links resolved on both sides) without opening it: a table's log must
/// not make the exporter read, or leak a byte of, any other local file.
fn inside_table(table: &Path, p: PathBuf) -> Result<PathBuf, String> {
    let root = table
        .canonicalize()
        .map_err(|e| format!("{}: {e}", table.display()))?;
    let abs = if p.is_absolute() {
        p.clone()
    } else {
        root.join(&p)
    };
    match abs.canonicalize() {
        Ok(c) if c.starts_with(&root) => Ok(c),
        Ok(_) => Err(format!(
            "deletion vector file {} is outside the table directory {}: refused, not read",
            p.display(),
            table.display()
        )),
        // Missing: say so only if it would have been inside.
        Err(e) => match abs.parent().and_then(|d| d.canonicalize().ok()) {
            Some(d) if d.starts_with(&root) => Err(format!(
                "{}: cannot read deletion-vector file: {e}",
                p.display()
            )),
            _ => Err(format!(
                "deletion vector file {} is outside the table directory {}: refused, not read",
                p.display(),
                table.display()
            )),
        },
    }
}

/// The DV of `size` bytes at `offset` in the file `p`: the version byte
/// and just that range are read, never the whole file.
fn read_payload_at(p: &Path, offset: u64, size: u64) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    if size > MAX_DV_BYTES {
        return Err(format!(
            "the descriptor's sizeInBytes {size} is over the {MAX_DV_BYTES}-byte cap"
        ));
    }
    let mut f =
        std::fs::File::open(p).map_err(|e| format!("cannot read deletion-vector file: {e}"))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let at = offset.max(1);
    let end = at
        .checked_add(size + 8)
        .filter(|&e| e <= len)
        .ok_or_else(|| {
            format!(
                "deletion-vector file of {len} bytes is too short for {size} bytes at byte {at}"
            )
        })?;
    let mut head = vec![0u8; 1];
    f.read_exact(&mut head).map_err(|e| e.to_string())?;
    let mut range = vec![0u8; (end - at) as usize];
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    f.read_exact(&mut range).map_err(|e| e.to_string())?;
    // The same checks as on a whole file: version, size field, checksum.
    let mut view = head;
    view.extend_from_slice(&range);
    read_file_payload(&view, 1, size).map(<[u8]>::to_vec)
}

/// A deletion-vector descriptor, as it appears in `add.deletionVector`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// `u` (file named by a UUID, relative to the table), `i` (inline,
    /// Z85) or `p` (absolute path).
    pub storage_type: String,
    /// The Z85 UUID with an optional prefix, the Z85 payload, or the path.
    pub path_or_inline_dv: String,
    /// Where the DV starts in its file (absent for inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The payload's size in bytes (before Z85 for inline).
    pub size_in_bytes: u64,
    /// How many rows it deletes.
    pub cardinality: u64,
}

/// The canonical text form of a UUID.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A random (version 4) UUID.
pub fn random_uuid() -> Result<[u8; 16], String> {
    let mut u = [0u8; 16];
    getrandom::fill(&mut u).map_err(|e| format!("no randomness for a UUID: {e}"))?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// The file name Delta derives from a DV file's UUID.
pub fn file_name(uuid: &[u8; 16]) -> String {
    format!("deletion_vector_{}.bin", uuid_text(uuid))
}

impl Descriptor {
    /// The key Delta uses to tell DVs of the same file apart.
    pub fn unique_id(&self) -> String {
        match self.offset {
            Some(o) => format!("{}{}@{o}", self.storage_type, self.path_or_inline_dv),
            None => format!("{}{}", self.storage_type, self.path_or_inline_dv),
        }
    }

    /// An inline descriptor for `payload` (a `RoaringBitmapArray`).
    pub fn inline(payload: &[u8], cardinality: u64) -> Descriptor {
        Descriptor {
            storage_type: "i".into(),
            path_or_inline_dv: z85::encode_padded(payload),
            offset: None,
            size_in_bytes: payload.len() as u64,
            cardinality,
        }
    }

    /// A descriptor for the DV at `offset` in the file named by `uuid`
    /// (no random prefix: the file sits in the table's root).
    pub fn in_file(uuid: &[u8; 16], offset: u32, size: usize, cardinality: u64) -> Descriptor {
        Descriptor {
            storage_type: "u".into(),
            path_or_inline_dv: z85::encode_padded(uuid),
            offset: Some(u64::from(offset)),
            size_in_bytes: size as u64,
            cardinality,
        }
    }

    /// The file holding this DV, for `u` and `p` descriptors (`None` for inline).
    pub fn file_path(&self, table: &Path) -> Result<Option<PathBuf>, String> {
        match self.storage_type.as_str() {
            "i" => Ok(None),
            "u" => {
                let s = &self.path_or_inline_dv;
                if s.len() < 20 || !s.is_char_boundary(s.len() - 20) {
                    return Err(format!("pathOrInlineDv {s:?} is shorter than a Z85 UUID"));
                }
                let (prefix, enc) = s.split_at(s.len() - 20);
                let raw = z85::decode(enc).map_err(|e| format!("pathOrInlineDv: {e}"))?;
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&raw);
                let mut p = table.to_path_buf();
                if !prefix.is_empty() {
                    // A random prefix is a directory name, never a way out.
                    let sub = Path::new(prefix);
                    if !sub
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
                    {
                        return Err(format!(
                            "deletion vector prefix {prefix:?} leaves the table directory: refused, not read"
                        ));
                    }
                    p.push(sub);
                }
                p.push(file_name(&uuid));
                Ok(Some(p))
            }
            "p" => {
                let s = &self.path_or_inline_dv;
                let local = s
                    .strip_prefix("file://")
                    .or_else(|| s.strip_prefix("file:"))
                    .unwrap_or(s);
                if local.contains("://") {
                    return Err(format!(
                        "deletion vector at {s:?} is not on the local file system"
                    ));
                }
                Ok(Some(PathBuf::from(percent_decode(local)?)))
            }
            t => Err(format!("unknown deletion-vector storageType {t:?}")),
        }
    }

    /// Reads the rows this descriptor deletes (from `table`'s files if
    /// needed), checking the checksum, the size and the cardinality.
    pub fn read(&self, table: &Path) -> Result<RoaringTreemap, String> {
        let rows = match self.file_path(table)? {
            None => {
                let raw = z85::decode(&self.path_or_inline_dv)
                    .map_err(|e| format!("inline deletion vector: {e}"))?;
                let size = usize::try_from(self.size_in_bytes).unwrap_or(usize::MAX);
                if size > raw.len() || raw.len() - size >= 4 {
                    return Err(format!(
                        "inline deletion vector decodes to {} bytes, sizeInBytes is {}",
                        raw.len(),
                        self.size_in_bytes
                    ));
                }
                decode_bitmap(&raw[..size])?
            }
            Some(p) => {
                let p = inside_table(table, p)?;
                let data = read_payload_at(&p, self.offset.unwrap_or(0), self.size_in_bytes)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                decode_bitmap(&data).map_err(|e| format!("{}: {e}", p.display()))?
            }
        };
        if rows.len() != self.cardinality {
            return Err(format!(
                "deletion vector holds {} rows, its cardinality says {}",
                rows.len(),
                self.cardinality
            ));
        }
        Ok(rows)
    }
}

/// Decodes `%XX` escapes (Delta's `add.path` is a URI-encoded path).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape at byte {i} of {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} decodes to invalid UTF-8"))
}

#[cfg(test)]
mod tests;
