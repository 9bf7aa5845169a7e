//! Serde for hash maps as sequences sorted by key, so encodings (snapshots)
//! are deterministic: the same index always gives the same bytes; and
//! decoding accepts only that form (keys strictly ascending), so a damaged
//! or hostile snapshot cannot repeat a key and have one entry dropped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use roaring::RoaringBitmap;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<K, V, S>(m: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    K: Serialize + Ord,
    V: Serialize,
    S: Serializer,
{
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_seq(v)
}

/// Accepts only what [`serialize`] writes: keys strictly ascending. A
/// repeated key would otherwise be dropped silently (the last one wins),
/// losing, say, one of the record lists of a record key.
pub(crate) fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Eq + Hash + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let v: Vec<(K, V)> = Vec::deserialize(d)?;
    if v.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(serde::de::Error::custom(
            "map keys are not strictly ascending (repeated or unsorted)",
        ));
    }
    Ok(v.into_iter().collect())
}

/// Deserializes a `BTreeMap` (written by its own `Serialize`, keys in
/// order) refusing repeated or unsorted keys, which serde's own impl merges
/// silently (the last one wins).
pub(crate) fn strict_btree<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Strict<K, V>(PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for Strict<K, V> {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map with strictly ascending keys")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut m = BTreeMap::new();
            while let Some((k, v)) = a.next_entry::<K, V>()? {
                if m.last_key_value().is_some_and(|(last, _)| *last >= k) {
                    return Err(A::Error::custom(
                        "map keys are not strictly ascending (repeated or unsorted)",
                    ));
                }
                m.insert(k, v);
            }
            Ok(m)
        }
    }
    d.deserialize_map(Strict(PhantomData))
}

/// Decodes a serialized roaring bitmap only in the form roaring-rs writes:
/// the no-run cookie (a run container is 4 bytes on disk and up to 8 KiB
/// in memory, so they are refused before decoding), room for every
/// container's description and offset (so no container is allocated
/// beyond what the input holds), container keys strictly ascending, and
/// re-encoding to exactly these bytes (nothing trailing, no empty
/// containers).
pub(crate) fn canonical_bitmap(s: &[u8]) -> Result<RoaringBitmap, String> {
    const NO_RUN_COOKIE: u32 = 12346;
    let u32_at = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    if s.len() < 8 || u32_at(0) != NO_RUN_COOKIE {
        return Err("roaring bitmap not in canonical form (run containers or bad cookie)".into());
    }
    let c = u32_at(4) as usize;
    if c > 1 << 16 || s.len() < 8 + 8 * c {
        return Err("roaring bitmap container count exceeds its bytes".into());
    }
    let keys = s[8..8 + 4 * c]
        .chunks_exact(4)
        .map(|d| u16::from_le_bytes([d[0], d[1]]));
    if keys.clone().zip(keys.skip(1)).any(|(a, b)| a >= b) {
        return Err("roaring bitmap containers out of order".into());
    }
    let b = RoaringBitmap::deserialize_from(s).map_err(|e| format!("bad roaring bitmap: {e}"))?;
    if b.serialized_size() != s.len() {
        return Err("roaring bitmap not in canonical form".into());
    }
    let mut again = Vec::with_capacity(s.len());
    let _ = b.serialize_into(&mut again);
    if again != s {
        return Err("roaring bitmap not in canonical form".into());
    }
    Ok(b)
}

/// One roaring bitmap, in canonical form (see [`canonical_bitmap`]).
struct One(RoaringBitmap);

impl<'de> Deserialize<'de> for One {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = One;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a serialized roaring bitmap")
            }
            fn visit_bytes<E: serde::de::Error>(self, s: &[u8]) -> Result<One, E> {
                canonical_bitmap(s).map(One).map_err(E::custom)
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// Deserializes bitmaps written by roaring's `Serialize` (bytes), each
/// through [`canonical_bitmap`].
pub(crate) fn canonical_bitmaps<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RoaringBitmap>, D::Error> {
    let v: Vec<One> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|o| o.0).collect())
}

/// [`canonical_bitmaps`] for a single bitmap.
pub(crate) fn canonical_bitmap_field<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<RoaringBitmap, D::Error> {
    One::deserialize(d).map(|o| o.0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    fn de(s: &str) -> Result<HashMap<u32, u32>, serde_json::Error> {
        super::deserialize(&mut serde_json::Deserializer::from_str(s))
    }

    #[test]
    fn only_strictly_ascending_keys_decode() {
        assert_eq!(
            de("[[1,5],[2,6]]").unwrap(),
            HashMap::from([(1, 5), (2, 6)])
        );
        assert!(de("[]").unwrap().is_empty());
        assert!(de("[[1,5],[1,6]]").is_err(), "repeated key");
        assert!(de("[[2,5],[1,6]]").is_err(), "unsorted keys");
    }

    fn de_btree(s: &str) -> Result<std::collections::BTreeMap<u32, u32>, serde_json::Error> {
        super::strict_btree(&mut serde_json::Deserializer::from_str(s))
    }

    #[test]
    fn canonical_bitmaps_only() {
        use roaring::RoaringBitmap;
        let b: RoaringBitmap = (0..10)
            .chain(70_000..70_100)
            .chain(9_000_000..9_010_000)
            .collect();
        let mut s = Vec::new();
        b.serialize_into(&mut s).unwrap();
        assert_eq!(super::canonical_bitmap(&s).unwrap(), b);
        let mut e = Vec::new();
        RoaringBitmap::new().serialize_into(&mut e).unwrap();
        assert!(super::canonical_bitmap(&e).unwrap().is_empty());
        // Trailing bytes (found by the snapshot fuzz target).
        let mut t = s.clone();
        t.extend_from_slice(&[0; 10]);
        assert!(super::canonical_bitmap(&t).is_err());
        // Swapped container descriptions (keys out of order).
        let mut u = s.clone();
        let (a, c) = (u[8..12].to_vec(), u[12..16].to_vec());
        u[8..12].copy_from_slice(&c);
        u[12..16].copy_from_slice(&a);
        assert!(super::canonical_bitmap(&u).is_err());
        // A claimed container count beyond the bytes.
        let mut n = s.clone();
        n[4..8].copy_from_slice(&60_000u32.to_le_bytes());
        assert!(super::canonical_bitmap(&n).is_err());
        // Run containers (cookie 12347).
        let mut r = s;
        r[0..4].copy_from_slice(&12347u32.to_le_bytes());
        assert!(super::canonical_bitmap(&r).is_err());
        for cut in 0..e.len() {
            assert!(super::canonical_bitmap(&e[..cut]).is_err());
        }
    }

    #[test]
    fn btree_maps_refuse_repeated_and_unsorted_keys() {
        assert_eq!(de_btree(r#"{"1":5,"2":6}"#).unwrap().len(), 2);
        assert!(de_btree(r#"{"1":5,"1":6}"#).is_err(), "repeated key");
        assert!(de_btree(r#"{"2":5,"1":6}"#).is_err(), "unsorted keys");
    }
}
