//! Unit tests of the index snapshot encoding.

use super::*;
use crate::workload::{build_index, Layout, Spec};

#[test]
fn events_out_of_log_order_are_rejected() {
    let spec = Spec {
        objecting_per_10k: 3_000,
        ..Spec::ws().scaled(1000)
    };
    let mut ix = build_index(&spec);
    let b = ix.to_snapshot_bytes().unwrap();
    let [small, keys, ..] = sections(&b).unwrap();
    let rebuild = |small: &Small| {
        let enc = codec::encode_large(small).unwrap();
        let mut out = MAGIC.to_vec();
        put_u64(&mut out, enc.len() as u64);
        out.extend_from_slice(&enc);
        out.extend_from_slice(&b[keys.start - 8..]);
        out
    };
    let mut s: Small = codec::decode_large(&b[small.clone()]).unwrap();
    assert!(s.events.len() > 2);
    assert!(Index::from_snapshot_bytes(&rebuild(&s)).is_ok());
    s.events.swap(0, 1);
    let e = Index::from_snapshot_bytes(&rebuild(&s))
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("inconsistent"), "{e}");
}

#[test]
fn owned_decode_equals_borrowed_decode() {
    let spec = Spec {
        objecting_per_10k: 3_000,
        layout: Layout::Mixed,
        ..Spec::ws().scaled(500)
    };
    let mut ix = build_index(&spec);
    let b = ix.to_snapshot_bytes().unwrap();
    let mut borrowed = Index::from_snapshot_bytes(&b).unwrap();
    let mut owned = Index::from_snapshot_vec(b.clone()).unwrap();
    assert_eq!(borrowed.to_snapshot_bytes().unwrap(), b);
    assert_eq!(owned.to_snapshot_bytes().unwrap(), b);
    // Damage is reported the same way by both.
    let step = (b.len() / 97).max(1);
    for n in (0..b.len()).step_by(step) {
        let x = Index::from_snapshot_bytes(&b[..n]).map(|_| ()).unwrap_err();
        let y = Index::from_snapshot_vec(b[..n].to_vec())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(x.to_string(), y.to_string(), "prefix {n}");
    }
}
