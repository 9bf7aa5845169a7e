//! The manifest file format, versions 1 to 3 (see `docs/FORMAT.md`).
//!
//! ```text
//! magic "OPTOUTMF" | version u16 | reserved u16 | header_len u32 | header (JSON)
//! shard_count u32 | per shard: dataset (u32 len + UTF-8) | shard (u32 len + UTF-8)
//!   | registered u64 | row_end u64 (version 3 on)
//!   | bitmap_count u32 | per bitmap: u32 len + portable roaring
//! digest [32]: blake3 keyed hash (derive_key "optout 2026-11 manifest v1") of all before
//! ```
//! All integers little-endian. Bitmaps: the excluded set, then one per reason.

use roaring::RoaringBitmap;

use super::{reasons_in, Manifest, ManifestHeader, ManifestShard};
use crate::engine::Reason;

const MAGIC: &[u8; 8] = b"OPTOUTMF";
const CONTEXT: &str = "optout 2026-11 manifest v1";
const DIGEST_LEN: usize = 32;

pub use crate::error::ManifestError;

pub(super) fn digest_of(bytes: &[u8]) -> [u8; 32] {
    let body = &bytes[..bytes.len().saturating_sub(DIGEST_LEN)];
    let key = blake3::derive_key(CONTEXT, b"");
    *blake3::keyed_hash(&key, body).as_bytes()
}

/// The digest written at the end of `bytes`, a manifest's encoding (or a
/// file whose digest was verified): no hashing.
pub(super) fn seal_of(bytes: &[u8]) -> [u8; 32] {
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&bytes[bytes.len() - DIGEST_LEN..]);
    d
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_bitmap(out: &mut Vec<u8>, b: &RoaringBitmap) {
    let len = b.serialized_size();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let start = out.len();
    out.reserve(len);
    // Writing into a Vec cannot fail.
    let _ = b.serialize_into(&mut *out);
    debug_assert_eq!(out.len() - start, len);
}

/// Whether format `version` has what version 3 added: each shard's row end and
/// the header's optional checkpoint.
fn since_v3(version: u16) -> bool {
    version >= 3
}

pub(super) fn encode(m: &Manifest) -> Vec<u8> {
    let header = serde_json::to_vec(&m.header).unwrap_or_default();
    let mut out = Vec::with_capacity(
        64 + header.len()
            + m.shards
                .iter()
                .map(|s| 64 + s.dataset.len() + s.shard.len() + 2 * s.excluded.serialized_size())
                .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    // A version 1 manifest (read from an older file) has no bitmap for the
    // reasons added later; they are empty in it.
    let nr = reasons_in(m.version).unwrap_or(Reason::COUNT);
    out.extend_from_slice(&m.version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(m.shards.len() as u32).to_le_bytes());
    for s in &m.shards {
        put_str(&mut out, &s.dataset);
        put_str(&mut out, &s.shard);
        out.extend_from_slice(&s.registered.to_le_bytes());
        if since_v3(m.version) {
            out.extend_from_slice(&s.end().to_le_bytes());
        }
        out.extend_from_slice(&(1 + nr as u32).to_le_bytes());
        put_bitmap(&mut out, &s.excluded);
        for r in &s.reasons[..nr] {
            put_bitmap(&mut out, r);
        }
    }
    out.extend_from_slice(&[0u8; DIGEST_LEN]);
    let d = digest_of(&out);
    let n = out.len();
    out[n - DIGEST_LEN..].copy_from_slice(&d);
    out
}

/// A bounds-checked reader over the manifest body.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ManifestError> {
        if n > self.b.len() - self.pos {
            return Err(ManifestError::at(
                self.pos,
                format!("{what}: needs {n} bytes, {} left", self.b.len() - self.pos),
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, ManifestError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, ManifestError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, what: &str) -> Result<String, ManifestError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| ManifestError::at(at, format!("{what}: not UTF-8")))
    }
    fn bitmap(&mut self, what: &str) -> Result<RoaringBitmap, ManifestError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        let s = self.take(n, what)?;
        // Canonical bitmaps (what roaring-rs writes) have no run containers.
        // Refuse them before decoding: a run container is 4 bytes on disk
        // and 8 KiB in memory.
        const NO_RUN_COOKIE: u32 = 12346;
        if s.len() < 8 || u32::from_le_bytes([s[0], s[1], s[2], s[3]]) != NO_RUN_COOKIE {
            return Err(ManifestError::at(
                at + 4,
                format!(
                    "{what}: roaring bitmap not in canonical form (run containers or bad cookie)"
                ),
            ));
        }
        let b = RoaringBitmap::deserialize_from(s)
            .map_err(|e| ManifestError::at(at + 4, format!("{what}: bad roaring bitmap: {e}")))?;
        // Canonical form: the bitmap must re-encode to exactly these bytes
        // (no duplicate or unsorted containers, no wasted space).
        if b.serialized_size() != n {
            return Err(ManifestError::at(
                at + 4,
                format!("{what}: roaring bitmap not in canonical form"),
            ));
        }
        let mut again = Vec::with_capacity(n);
        let _ = b.serialize_into(&mut again);
        if again != s {
            return Err(ManifestError::at(
                at + 4,
                format!("{what}: roaring bitmap not in canonical form"),
            ));
        }
        // roaring re-encodes containers in the order it read them, so also
        // require strictly ascending values (sorted, unique container keys).
        let mut prev: Option<u32> = None;
        for v in b.iter() {
            if prev.is_some_and(|p| p >= v) {
                return Err(ManifestError::at(
                    at + 4,
                    format!("{what}: roaring containers out of order"),
                ));
            }
            prev = Some(v);
        }
        Ok(b)
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() < MAGIC.len() + 8 + DIGEST_LEN {
        return Err(ManifestError::at(
            0,
            format!("{} bytes is too short for a manifest", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(ManifestError::at(0, "not an optout manifest (bad magic)"));
    }
    let digest_at = bytes.len() - DIGEST_LEN;
    if digest_of(bytes)[..] != bytes[digest_at..] {
        return Err(ManifestError::at(
            digest_at,
            "digest mismatch: the manifest was altered or truncated",
        ));
    }
    let mut c = Cursor {
        b: &bytes[..digest_at],
        pos: 8,
    };
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    let Some(nr) = reasons_in(version) else {
        return Err(ManifestError::at(
            8,
            format!("unsupported format version {version}"),
        ));
    };
    if bytes[10..12] != [0, 0] {
        return Err(ManifestError::at(10, "reserved field is not zero"));
    }
    c.take(4, "version")?;
    let hl = c.u32("header length")? as usize;
    let at = c.pos;
    let header_bytes = c.take(hl, "header")?;
    let header: ManifestHeader = serde_json::from_slice(header_bytes)
        .map_err(|e| ManifestError::at(at, format!("header: {e}")))?;
    // The header must be exactly what encoding writes, so that a manifest
    // re-encodes to its own bytes (no reordered fields, spaces, upper-case hex).
    if serde_json::to_vec(&header).ok().as_deref() != Some(header_bytes) {
        return Err(ManifestError::at(at, "header: not in canonical form"));
    }
    if let Some(t) = &header.checkpoint {
        if !since_v3(version) {
            return Err(ManifestError::at(
                at,
                format!("header: a checkpoint in a version {version} manifest (format 3 added it)"),
            ));
        }
        if t.size != header.seq.0 {
            return Err(ManifestError::at(
                at,
                format!(
                    "header: checkpoint of tree size {}, but the manifest is at seq {}",
                    t.size, header.seq
                ),
            ));
        }
    }
    let n = c.u32("shard count")? as usize;
    // Each shard takes at least 20 + 4 * bitmaps bytes: bound the count by the input.
    if n > (c.b.len() - c.pos) / 20 {
        return Err(ManifestError::at(
            c.pos - 4,
            format!("shard count {n} exceeds what the file can hold"),
        ));
    }
    let mut shards: Vec<ManifestShard> = Vec::with_capacity(n);
    let mut counts = [0u64; Reason::COUNT];
    for i in 0..n {
        let shard_at = c.pos;
        let dataset = c.string("dataset name")?;
        let shard = c.string("shard name")?;
        let registered = c.u64("registered")?;
        let row_end = if since_v3(version) {
            let end_at = c.pos;
            let end = c.u64("row end")?;
            if end < registered || end > 1 << 32 {
                return Err(ManifestError::at(
                    end_at,
                    format!(
                        "shard {dataset}/{shard}: row end {end} is below its {registered} registered rows or past 2^32"
                    ),
                ));
            }
            Some(end)
        } else {
            None
        };
        let nb = c.u32("bitmap count")? as usize;
        if nb != 1 + nr {
            return Err(ManifestError::at(
                c.pos - 4,
                format!("shard {i}: {nb} bitmaps, expected {}", 1 + nr),
            ));
        }
        let excluded = c.bitmap("excluded rows")?;
        let mut reasons: [RoaringBitmap; Reason::COUNT] = Default::default();
        let mut union = RoaringBitmap::new();
        for (k, r) in reasons.iter_mut().enumerate().take(nr) {
            *r = c.bitmap(Reason::ALL[k].name())?;
            counts[k] += r.len();
            union |= &*r;
        }
        if union != excluded {
            return Err(ManifestError::at(
                shard_at,
                format!(
                    "shard {dataset}/{shard}: excluded rows differ from the union of the reasons"
                ),
            ));
        }
        if let (Some(end), Some(max)) = (row_end, excluded.max()) {
            if u64::from(max) >= end {
                return Err(ManifestError::at(
                    shard_at,
                    format!(
                        "shard {dataset}/{shard}: excluded row {max} is past the row end {end}"
                    ),
                ));
            }
        }
        if let Some(prev) = shards.last() {
            if (&prev.dataset, &prev.shard) >= (&dataset, &shard) {
                return Err(ManifestError::at(
                    shard_at,
                    "shards not sorted by (dataset, shard) or duplicated",
                ));
            }
        }
        shards.push(ManifestShard {
            dataset,
            shard,
            registered,
            row_end,
            excluded,
            reasons,
        });
    }
    if c.pos != c.b.len() {
        return Err(ManifestError::at(
            c.pos,
            format!("{} unexpected bytes before the digest", c.b.len() - c.pos),
        ));
    }
    let excluded: u64 = shards.iter().map(|s| s.excluded.len()).sum();
    let registered = shards
        .iter()
        .try_fold(0u64, |a, s| a.checked_add(s.registered))
        .ok_or_else(|| ManifestError::at(16, "registered row counts overflow"))?;
    let want: Vec<(String, u64)> = Reason::ALL[..nr]
        .iter()
        .map(|r| (r.name().to_string(), counts[*r as usize]))
        .collect();
    if header.excluded != excluded || header.registered != registered || header.counts != want {
        return Err(ManifestError::at(
            16,
            "header counts do not match the bitmaps",
        ));
    }
    let digest: String = header
        .policy
        .digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if header.policy_digest != digest
        || header.purpose != header.policy.purpose
        || header.at != crate::time::Timestamp(header.at_ns)
    {
        return Err(ManifestError::at(
            16,
            "header fields disagree (policy digest, purpose or time)",
        ));
    }
    Ok(Manifest::from_parts(version, header, shards))
}
