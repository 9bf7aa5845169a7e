//! The one place serialised payloads are encoded and decoded (bincode 2,
//! fixed-width little-endian integers), so the codec can change here alone.
//!
//! Decoding is bounded: a size limit caps what any length prefix may claim
//! before anything is allocated, and trailing bytes are an error.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest payload a log entry may decode to claim (64 MiB).
pub const ENTRY_LIMIT: usize = 64 << 20;

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding (or claim more than the limit).
    #[error("undecodable payload: {0}")]
    Invalid(String),
    /// The value ended before the payload did.
    #[error("{0} trailing bytes after the payload")]
    Trailing(usize),
    /// The value could not be encoded.
    #[error("unencodable value: {0}")]
    Encode(String),
}

/// Largest value a snapshot's state section may decode to claim (256 GiB).
/// Memory stays bounded by the input regardless: sequences grow as their
/// elements are read, and serde preallocates at most 1 MiB from a length.
pub const SNAPSHOT_LIMIT: usize = 1 << 38;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
        .with_limit::<ENTRY_LIMIT>()
}

fn large_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
        .with_limit::<SNAPSHOT_LIMIT>()
}

/// Decodes with a claim limit proportional to the input: bincode allocates
/// a string's or vector's claimed length *before* reading it, so the limit
/// is what bounds memory. A valid value never claims more than a small
/// multiple of its encoding (structs expand in memory), so the limit is the
/// smallest step of a ladder at or above 16 × the input, capped at `cap`.
fn decode_bounded<T: DeserializeOwned>(bytes: &[u8], cap: usize) -> Result<(T, usize), CodecError> {
    macro_rules! ladder {
        ($($lim:expr),*) => {{
            let want = bytes.len().saturating_mul(16).min(cap);
            $(
                if want <= $lim {
                    let c = bincode::config::standard()
                        .with_fixed_int_encoding()
                        .with_little_endian()
                        .with_limit::<{ $lim }>();
                    return bincode::serde::decode_from_slice(bytes, c)
                        .map_err(|e| CodecError::Invalid(e.to_string()));
                }
            )*
        }};
    }
    ladder!(
        1 << 16,
        1 << 20,
        1 << 24,
        1 << 26,
        1 << 28,
        1 << 30,
        1 << 32,
        1 << 34,
        1 << 36,
        SNAPSHOT_LIMIT
    );
    Err(CodecError::Invalid(format!(
        "{} bytes is over the limit",
        bytes.len()
    )))
}

/// Encodes a large value (a snapshot section).
pub fn encode_large<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(v, large_config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a large value (a snapshot section) that must use every byte.
pub fn decode_large<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (v, used) = decode_bounded(bytes, SNAPSHOT_LIMIT)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(v)
}

/// Encodes a value.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(v, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a value that must use every byte of `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > ENTRY_LIMIT {
        return Err(CodecError::Invalid(format!(
            "{} bytes is over the limit",
            bytes.len()
        )));
    }
    let (v, used) = decode_bounded(bytes, ENTRY_LIMIT)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Entry, Event, EventKind};
    use crate::ids::SubjectKey;
    use crate::time::Timestamp;

    #[test]
    fn roundtrip_and_trailing_bytes() {
        let e = Entry::Event(Event {
            at: Timestamp(5),
            reference: Some("t-1".into()),
            kind: EventKind::Erasure {
                subject: SubjectKey([3; 16]),
            },
        });
        let mut b = encode(&e).unwrap();
        assert_eq!(decode::<Entry>(&b).unwrap(), e);
        b.push(0);
        assert_eq!(decode::<Entry>(&b), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn hostile_length_does_not_allocate() {
        // An Entry::Records whose profile vector claims u64::MAX elements.
        let mut b = vec![0u8; 4];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Entry>(&b).is_err());
    }
}
