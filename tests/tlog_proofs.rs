//! Merkle tree proofs against independent references: the RFC 6962 / 9162
//! test vectors of Certificate Transparency, a Python `hashlib` oracle
//! (tests/fixtures/tlog/reference.py), and proptest laws.

use std::path::Path;

use optout::storage::MemIo;
use optout::tlog::{
    consistency_proof, empty_root, entry_leaf_hash, inclusion_proof, leaf_hash, root_of,
    ConsistencyProof, Hash, InclusionProof, StoreOptions, TreeStore,
};
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    Hash::from_hex(s).expect("64 hex digits")
}

/// The eight leaves of the CT reference tests (RFC 6962 test data).
fn ct_leaves() -> Vec<Hash> {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    data.iter().map(|d| leaf_hash(d)).collect()
}

/// The published tree heads of the first 1..=8 of those leaves.
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn ct_reference_tree_heads() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let leaves = ct_leaves();
    for n in 1..=8 {
        assert_eq!(root_of(&leaves[..n]), h(CT_ROOTS[n - 1]), "size {n}");
    }
}

#[test]
fn ct_reference_inclusion_proofs() {
    // (1-based leaf, tree size, audit path), as published with the CT tests.
    let vectors: [(u64, u64, &[&str]); 4] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            3,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            2,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    let leaves = ct_leaves();
    for (leaf, size, path) in vectors {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        let got = inclusion_proof(&mut &leaves[..], leaf - 1, size).unwrap();
        assert_eq!(got.hashes, want, "leaf {leaf} of {size}");
        let root = h(CT_ROOTS[size as usize - 1]);
        got.verify(&leaves[leaf as usize - 1], &root).unwrap();
    }
}

#[test]
fn ct_reference_consistency_proofs() {
    let vectors: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    let leaves = ct_leaves();
    for (old, new, path) in vectors {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        let got = consistency_proof(&mut &leaves[..], old, new).unwrap();
        assert_eq!(got.hashes, want, "{old} -> {new}");
        let (r1, r2) = (h(CT_ROOTS[old as usize - 1]), h(CT_ROOTS[new as usize - 1]));
        got.verify(&r1, &r2).unwrap();
        if old != new {
            // The roots swapped, or another old root, never verify.
            assert!(got.verify(&r2, &r1).is_err());
            assert!(got.verify(&h(CT_ROOTS[old as usize % 8]), &r2).is_err());
        }
    }
}

#[test]
fn consistency_edge_cases_follow_the_rfc() {
    let a = leaf_hash(b"a");
    let b = leaf_hash(b"b");
    let p = |old, new, hashes: Vec<Hash>| ConsistencyProof {
        old_size: old,
        new_size: new,
        hashes,
    };
    assert!(p(0, 0, vec![]).verify(&a, &a).is_ok());
    assert!(p(0, 0, vec![]).verify(&a, &b).is_err());
    assert!(p(0, 1, vec![]).verify(&a, &b).is_ok());
    assert!(p(1, 1, vec![]).verify(&b, &b).is_ok());
    assert!(p(1, 1, vec![]).verify(&a, &b).is_err());
    assert!(p(1, 0, vec![]).verify(&a, &b).is_err());
    assert!(p(1, 2, vec![]).verify(&a, &b).is_err());
    assert!(p(0, 1, vec![a]).verify(&a, &a).is_err());
    let i = |index, size| InclusionProof {
        leaf_index: index,
        tree_size: size,
        hashes: vec![],
    };
    assert!(i(0, 1).verify(&a, &a).is_ok());
    assert!(i(0, 0).verify(&a, &a).is_err());
    assert!(i(1, 1).verify(&a, &a).is_err());
    assert!(i(0, 2).verify(&a, &a).is_err());
}

/// The Python oracle's output: committed, and re-run when python3 exists.
fn reference() -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tlog");
    let committed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    match std::process::Command::new("python3")
        .arg(dir.join("reference.py"))
        .output()
    {
        Ok(out) if out.status.success() => {
            let fresh: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                fresh, committed,
                "reference.py output differs from reference.json"
            );
        }
        _ => eprintln!("python3 not found: using the committed reference.json only"),
    }
    committed
}

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| h(x.as_str().unwrap()))
        .collect()
}

/// Checks every root and proof of one reference tree, from a slice and
/// from a tree store of each tile height.
fn check_against(name: &str, tree: &serde_json::Value, leaves: &[Hash]) {
    let roots = tree["roots"].as_object().unwrap();
    for (n, root) in roots {
        let n: usize = n.parse().unwrap();
        assert_eq!(
            root_of(&leaves[..n]),
            h(root.as_str().unwrap()),
            "{name} root {n}"
        );
    }
    let max = roots
        .keys()
        .map(|n| n.parse::<u64>().unwrap())
        .max()
        .unwrap();
    let mut stores: Vec<_> = (0..=3)
        .map(|k| {
            let opts = StoreOptions {
                tile_height: k,
                log_id: [7; 16],
            };
            let (mut s, _) =
                TreeStore::open(MemIo::new(), "/t", opts, 0, &mut &leaves[..0]).unwrap();
            for l in &leaves[..max as usize] {
                s.append(*l);
            }
            s.persist(max / 2).unwrap();
            s
        })
        .collect();
    for case in tree["inclusion"].as_array().unwrap() {
        let (i, n) = (
            case["index"].as_u64().unwrap(),
            case["size"].as_u64().unwrap(),
        );
        assert_eq!(leaves[i as usize], h(case["leaf"].as_str().unwrap()));
        let want = hashes(&case["path"]);
        assert_eq!(
            inclusion_proof(&mut &leaves[..], i, n).unwrap().hashes,
            want
        );
        for s in &mut stores {
            let got = s.inclusion_proof(i, n, &mut &leaves[..]).unwrap();
            assert_eq!(
                got.hashes,
                want,
                "{name}: {i} of {n}, k = {}",
                s.tile_height()
            );
        }
    }
    for case in tree["consistency"].as_array().unwrap() {
        let (m, n) = (case["old"].as_u64().unwrap(), case["new"].as_u64().unwrap());
        let want = hashes(&case["path"]);
        assert_eq!(
            consistency_proof(&mut &leaves[..], m, n).unwrap().hashes,
            want
        );
        for s in &mut stores {
            let got = s.consistency_proof(m, n, &mut &leaves[..]).unwrap();
            assert_eq!(
                got.hashes,
                want,
                "{name}: {m} -> {n}, k = {}",
                s.tile_height()
            );
            assert_eq!(
                s.root_at(n, &mut &leaves[..]).unwrap(),
                root_of(&leaves[..n as usize])
            );
        }
    }
}

#[test]
fn proofs_equal_the_python_hashlib_oracle() {
    let r = reference();
    check_against("ct", &r["ct"], &ct_leaves());
    // The oracle's ledger leaves: seq || payload, the same rule as entry_leaf_hash.
    let entries: Vec<Hash> = (1u64..=70)
        .map(|s| {
            let payload: Vec<u8> = (0..s % 13).map(|j| ((s * 7 + j) % 256) as u8).collect();
            entry_leaf_hash(s, &payload)
        })
        .collect();
    check_against("entries", &r["entries"], &entries);
}

fn leaves_of(seed: u64, n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| leaf_hash(&(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes()))
        .collect()
}

fn flip(mut x: Hash) -> Hash {
    let mut b = *x.as_bytes();
    b[7] ^= 0x10;
    x = Hash::from_bytes(b);
    x
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_proof_verifies_and_nothing_else_does(
        seed in any::<u64>(), n in 1usize..300, i in any::<prop::sample::Index>(),
        j in any::<prop::sample::Index>(), other in 1usize..300,
    ) {
        let all = leaves_of(seed, n.max(other));
        let leaves = &all[..n];
        let i = i.index(n) as u64;
        let root = root_of(leaves);
        let p = inclusion_proof(&mut &all[..], i, n as u64).unwrap();
        prop_assert!(p.verify(&leaves[i as usize], &root).is_ok());
        // A wrong leaf.
        prop_assert!(p.verify(&leaf_hash(b"not in the tree"), &root).is_err());
        // Another leaf's hash at this index.
        let j = j.index(n);
        if leaves[j] != leaves[i as usize] {
            prop_assert!(p.verify(&leaves[j], &root).is_err());
        }
        // A wrong index or a wrong size, same path.
        for bad in [i ^ 1, i + 1, i.wrapping_sub(1)] {
            if bad != i {
                let q = InclusionProof { leaf_index: bad, ..p.clone() };
                prop_assert!(q.verify(&leaves[i as usize], &root).is_err(), "index {}", bad);
            }
        }
        // Checked against the tree head of another size (with that size).
        if other != n {
            let q = InclusionProof { tree_size: other as u64, ..p.clone() };
            let other_root = root_of(&all[..other]);
            prop_assert!(q.verify(&leaves[i as usize], &other_root).is_err(), "size {}", other);
            prop_assert!(p.verify(&leaves[i as usize], &other_root).is_err(), "size {}", other);
        }
        // Any flipped, dropped or added hash.
        for k in 0..p.hashes.len() {
            let mut q = p.clone();
            q.hashes[k] = flip(q.hashes[k]);
            prop_assert!(q.verify(&leaves[i as usize], &root).is_err());
        }
        let mut q = p.clone();
        q.hashes.push(root);
        prop_assert!(q.verify(&leaves[i as usize], &root).is_err());
        if !p.hashes.is_empty() {
            let mut q = p.clone();
            q.hashes.pop();
            prop_assert!(q.verify(&leaves[i as usize], &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_compose_and_reject_forks(
        seed in any::<u64>(), a in 0usize..200, b in 0usize..200, c in 0usize..200,
        fork_at in any::<prop::sample::Index>(),
    ) {
        let mut sizes = [a, b, c];
        sizes.sort_unstable();
        let [m, n, p] = sizes.map(|s| s as u64);
        let leaves = leaves_of(seed, p as usize);
        let r = |s: u64| root_of(&leaves[..s as usize]);
        let proof = |x, y| consistency_proof(&mut &leaves[..], x, y).unwrap();
        prop_assert!(proof(m, n).verify(&r(m), &r(n)).is_ok());
        prop_assert!(proof(n, p).verify(&r(n), &r(p)).is_ok());
        prop_assert!(proof(m, p).verify(&r(m), &r(p)).is_ok());
        // A fork: the same sizes, one leaf before m rewritten.
        if m > 0 {
            let mut forked = leaves.clone();
            let at = fork_at.index(m as usize);
            forked[at] = leaf_hash(b"rewritten");
            let fm = root_of(&forked[..m as usize]);
            let fp = root_of(&forked[..p as usize]);
            // Neither the fork's old root against the real new root, nor
            // the real old root against the fork's new root.
            prop_assert!(proof(m, p).verify(&fm, &r(p)).is_err());
            if m < p {
                let fproof = consistency_proof(&mut &forked[..], m, p).unwrap();
                prop_assert!(fproof.verify(&r(m), &fp).is_err());
                prop_assert!(fproof.verify(&fm, &r(p)).is_err());
            }
        }
        // Sizes swapped or mangled proofs never verify.
        if m < n {
            let pr = proof(m, n);
            let swapped = ConsistencyProof { old_size: n, new_size: m, ..pr.clone() };
            prop_assert!(swapped.verify(&r(n), &r(m)).is_err());
            for k in 0..pr.hashes.len() {
                let mut q = pr.clone();
                q.hashes[k] = flip(q.hashes[k]);
                prop_assert!(q.verify(&r(m), &r(n)).is_err());
            }
            let mut q = pr.clone();
            q.hashes.push(r(n));
            prop_assert!(q.verify(&r(m), &r(n)).is_err());
            if m > 0 {
                let q = ConsistencyProof { old_size: m + 1, ..pr.clone() };
                prop_assert!(q.verify(&r(m), &r(n)).is_err());
            }
        }
    }
}
