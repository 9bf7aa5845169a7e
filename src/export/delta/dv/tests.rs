//! Unit tests of `dv`.

use super::*;

#[test]
fn percent_decoding() {
    assert_eq!(
        percent_decode("a%20b%3Dc.parquet").unwrap(),
        "a b=c.parquet"
    );
    assert_eq!(percent_decode("plain").unwrap(), "plain");
    assert!(percent_decode("bad%2").is_err());
    assert!(percent_decode("bad%zz").is_err());
}

fn rows(v: &[u64]) -> RoaringTreemap {
    v.iter().copied().collect()
}

#[test]
fn bitmap_layout_matches_the_spec() {
    let r = rows(&[3, 4, 7, 11, 18, 29]);
    let b = encode_bitmap(&r);
    assert_eq!(&b[..4], &[0xD1, 0xD3, 0x39, 0x64]);
    assert_eq!(u64::from_le_bytes(b[4..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 0);
    let inner = RoaringBitmap::deserialize_from(&b[16..]).unwrap();
    assert_eq!(inner.iter().collect::<Vec<_>>(), vec![3, 4, 7, 11, 18, 29]);
    assert_eq!(decode_bitmap(&b).unwrap(), r);
}

#[test]
fn bitmap_round_trip_over_buckets() {
    let r = rows(&[0, 1, 65_536, u64::from(u32::MAX), 1 << 32, (5 << 32) + 9]);
    assert_eq!(decode_bitmap(&encode_bitmap(&r)).unwrap(), r);
    assert_eq!(
        decode_bitmap(&encode_bitmap(&RoaringTreemap::new()))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn bitmap_rejects_non_canonical_input() {
    let b = encode_bitmap(&rows(&[1, 2]));
    let mut bad = b.clone();
    bad[0] ^= 1;
    assert!(decode_bitmap(&bad).unwrap_err().contains("magic"));
    assert!(decode_bitmap(&b[..b.len() - 1]).is_err());
    let mut long = b.clone();
    long.push(0);
    assert!(decode_bitmap(&long).unwrap_err().contains("trailing"));
    // Two buckets with the same key.
    let one = RoaringBitmap::from_iter([5u32]);
    let mut dup = BITMAP_MAGIC.to_le_bytes().to_vec();
    dup.extend_from_slice(&2u64.to_le_bytes());
    for _ in 0..2 {
        dup.extend_from_slice(&0u32.to_le_bytes());
        one.serialize_into(&mut dup).unwrap();
    }
    assert!(decode_bitmap(&dup).unwrap_err().contains("ascending"));
    // A key with its top bit set.
    let mut neg = BITMAP_MAGIC.to_le_bytes().to_vec();
    neg.extend_from_slice(&1u64.to_le_bytes());
    neg.extend_from_slice(&0x8000_0000u32.to_le_bytes());
    one.serialize_into(&mut neg).unwrap();
    assert!(decode_bitmap(&neg).unwrap_err().contains("top bit"));
}

#[test]
fn file_framing_with_crc() {
    let a = encode_bitmap(&rows(&[1, 2, 3]));
    let b = encode_bitmap(&rows(&[70_000, 80_000]));
    let (file, offs) = encode_file(&[a.clone(), b.clone()]);
    assert_eq!(file[0], 1);
    assert_eq!(offs[0], 1);
    assert_eq!(offs[1] as usize, 1 + 4 + a.len() + 4);
    // Size big-endian, CRC-32 (IEEE) big-endian of the data only.
    assert_eq!(&file[1..5], &(a.len() as u32).to_be_bytes());
    let crc_at = 5 + a.len();
    assert_eq!(
        &file[crc_at..crc_at + 4],
        &crc32fast::hash(&a).to_be_bytes()
    );
    assert_eq!(read_file_payload(&file, 1, a.len() as u64).unwrap(), &a[..]);
    assert_eq!(
        read_file_payload(&file, u64::from(offs[1]), b.len() as u64).unwrap(),
        &b[..]
    );
    // Every single-bit flip in the first DV's data or checksum is caught.
    for i in 5..crc_at + 4 {
        let mut bad = file.clone();
        bad[i] ^= 0x10;
        assert!(
            read_file_payload(&bad, 1, a.len() as u64).is_err(),
            "flip at {i}"
        );
    }
    assert!(read_file_payload(&file, 1, a.len() as u64 + 1).is_err());
    let mut v2 = file.clone();
    v2[0] = 2;
    assert!(read_file_payload(&v2, 1, a.len() as u64).is_err());
}

#[test]
fn descriptors_resolve_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let r = rows(&[2, 9, 100]);
    let payload = encode_bitmap(&r);
    // Inline, including a payload that is not a multiple of 4 long.
    let d = Descriptor::inline(&payload, 3);
    assert_eq!(d.read(dir.path()).unwrap(), r);
    assert_eq!(d.unique_id(), format!("i{}", d.path_or_inline_dv));
    let mut wrong = d.clone();
    wrong.cardinality = 4;
    assert!(wrong.read(dir.path()).unwrap_err().contains("cardinality"));
    // In a UUID-named file, with and without a random prefix.
    let uuid = random_uuid().unwrap();
    let (file, offs) = encode_file(std::slice::from_ref(&payload));
    std::fs::write(dir.path().join(file_name(&uuid)), &file).unwrap();
    let u = Descriptor::in_file(&uuid, offs[0], payload.len(), 3);
    assert_eq!(u.read(dir.path()).unwrap(), r);
    assert_eq!(u.unique_id(), format!("u{}@1", u.path_or_inline_dv));
    std::fs::create_dir(dir.path().join("ab")).unwrap();
    std::fs::write(dir.path().join("ab").join(file_name(&uuid)), &file).unwrap();
    let mut pre = u.clone();
    pre.path_or_inline_dv = format!("ab{}", u.path_or_inline_dv);
    assert_eq!(pre.read(dir.path()).unwrap(), r);
    // By absolute path.
    let p = Descriptor {
        storage_type: "p".into(),
        path_or_inline_dv: format!("file://{}", dir.path().join(file_name(&uuid)).display()),
        ..u.clone()
    };
    assert_eq!(p.read(dir.path()).unwrap(), r);
    let s3 = Descriptor {
        path_or_inline_dv: "s3://bucket/x.bin".into(),
        ..p
    };
    assert!(s3.read(dir.path()).unwrap_err().contains("local"));
}

/// Issue 20, finding 7: a table's log names a file outside the table
/// (an absolute path, a `..` prefix, a symbolic link out): refused
/// without being read, and no byte of it appears in the error.
#[test]
fn descriptors_never_read_outside_the_table() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"\x01SECRET-BYTES").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let uuid = random_uuid().unwrap();
    let u = Descriptor::in_file(&uuid, 1, 8, 1);
    let p = Descriptor {
        storage_type: "p".into(),
        path_or_inline_dv: secret.display().to_string(),
        ..u.clone()
    };
    let dotdot = Descriptor {
        path_or_inline_dv: format!("../{}", u.path_or_inline_dv),
        ..u.clone()
    };
    std::os::unix::fs::symlink(&secret, dir.path().join(file_name(&uuid))).unwrap();
    for (what, d) in [
        ("absolute path", &p),
        ("`..` prefix", &dotdot),
        ("symlink", &u),
    ] {
        let e = d.read(dir.path()).unwrap_err();
        assert!(
            e.contains("outside the table") || e.contains("leaves the table"),
            "{what}: {e}"
        );
        assert!(
            !e.contains("SECRET") && !e.contains("version 1"),
            "{what}: {e}"
        );
    }
}

#[test]
fn protocol_example_uuid_path() {
    let d = Descriptor {
        storage_type: "u".into(),
        path_or_inline_dv: "ab^-aqEH.-t@S}K{vb[*k^".into(),
        offset: Some(4),
        size_in_bytes: 40,
        cardinality: 6,
    };
    assert_eq!(
        d.file_path(Path::new("/mytable")).unwrap().unwrap(),
        PathBuf::from("/mytable/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin")
    );
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the decoders.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), off in 0u64..400, size in 0u64..400) {
            let _ = decode_bitmap(&bytes);
            let _ = read_file_payload(&bytes, off, size);
            let mut with_magic = BITMAP_MAGIC.to_le_bytes().to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_bitmap(&with_magic);
        }

        /// A damaged vector never panics the decoder. (It may decode: the
        /// offsets in a roaring header are redundant and not checked, and
        /// a flipped row bit gives another valid set. Inside a DV file the
        /// CRC catches both, see `file_framing_with_crc`; an inline vector
        /// is checked against its cardinality.)
        #[test]
        fn damaged_vectors(rows in proptest::collection::btree_set(0u64..200_000, 0..50), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut b = encode_bitmap(&rows.iter().copied().collect());
            let i = at.index(b.len());
            b[i] ^= 1 << bit;
            let _ = decode_bitmap(&b);
        }
    }
}
