//! Z85, the JSON-friendly base-85 encoding of ZeroMQ RFC 32, which Delta
//! uses for inline deletion vectors and for the UUIDs of deletion-vector
//! files.
//!
//! Z85 maps every 4 bytes (big-endian) to 5 characters. Delta pads data
//! whose length is not a multiple of 4 with zero bytes before encoding and
//! records the true length beside it (`sizeInBytes`); [`encode_padded`] and
//! [`decode`] + truncation do the same.
//!
//! ```
//! use optout::export::z85;
//! // The test vector of RFC 32.
//! let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
//! assert_eq!(z85::encode_padded(&bytes), "HelloWorld");
//! assert_eq!(z85::decode("HelloWorld").unwrap(), bytes);
//! ```

const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Encodes `bytes`, padded with zero bytes to a multiple of 4.
pub fn encode_padded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(4) * 5);
    for chunk in bytes.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let mut v = u32::from_be_bytes(word);
        let mut five = [0u8; 5];
        for c in five.iter_mut().rev() {
            *c = ALPHABET[(v % 85) as usize];
            v /= 85;
        }
        out.extend(five.iter().map(|&c| c as char));
    }
    out
}

fn digit(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decodes a Z85 string (length a multiple of 5). The error says which
/// character (0-based) is wrong.
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(5) {
        return Err(format!(
            "Z85 text has {} characters, not a multiple of 5",
            b.len()
        ));
    }
    let mut out = Vec::with_capacity(b.len() / 5 * 4);
    for (i, chunk) in b.chunks(5).enumerate() {
        let mut v: u64 = 0;
        for (j, &c) in chunk.iter().enumerate() {
            let d = digit(c)
                .ok_or_else(|| format!("character {} ({:?}) is not Z85", i * 5 + j, c as char))?;
            v = v * 85 + u64::from(d);
        }
        let v = u32::try_from(v)
            .map_err(|_| format!("characters {}..{} overflow 32 bits", i * 5, i * 5 + 5))?;
        out.extend_from_slice(&v.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_vector() {
        let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode_padded(&bytes), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), bytes);
    }

    #[test]
    fn delta_protocol_uuid_example() {
        // PROTOCOL.md, "JSON Example 1": prefix "ab", then the Z85 UUID
        // d2c639aa-8816-431a-aaf6-d3fe2512ff61.
        let got = decode("^-aqEH.-t@S}K{vb[*k^").unwrap();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "d2c639aa8816431aaaf6d3fe2512ff61");
    }

    #[test]
    fn round_trip_and_padding() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode_padded(&data);
            assert_eq!(s.len(), n.div_ceil(4) * 5);
            let back = decode(&s).unwrap();
            assert_eq!(&back[..n], &data[..]);
            assert!(back[n..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert!(decode("Hell").unwrap_err().contains("multiple of 5"));
        assert!(decode("Hell~").unwrap_err().contains("character 4"));
        assert!(decode("#####").unwrap_err().contains("overflow"));
    }
}
