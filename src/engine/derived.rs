//! Derived rows: a derived row is excluded for every reason any of its
//! ancestors (transitively) is, as well as for its own (takedowns of the
//! derived row itself). Parents are resolved against the records known at
//! N, so a link, and a parent, recorded after N do not count at N.

use super::*;

/// A reason set as bits (`1 << Reason as usize`).
type Mask = u16;
const ON_PATH: u32 = 1 << 30;
const DONE: u32 = 1 << 31;

/// Adds to each derived row visible at `seq` its ancestors' reasons, in
/// `shards` (which must hold every shard known at `seq`, whatever the scope).
pub(super) fn propagate(index: &Index, seq: Seq, shards: &mut BTreeMap<ShardId, ShardExclusion>) {
    const { assert!(Reason::COUNT <= 16) };
    let (recs, lin) = (&index.records, &index.lineage);
    let limit = recs.limit_at(seq);
    let vis = |o: u32| recs.visible(o, limit, seq);
    let own = |shards: &BTreeMap<ShardId, ShardExclusion>, o: u32| -> Mask {
        let id = recs.record_of(o);
        match shards.get(&id.shard()) {
            Some(e) if e.excluded.contains(id.row()) => e
                .reasons
                .iter()
                .enumerate()
                .filter(|(_, b)| b.contains(id.row()))
                .fold(0, |m, (r, _)| m | 1 << r),
            _ => 0,
        }
    };
    // Per derived row: its reasons (low bits) and the search state.
    let mut state: Vec<u32> = vec![0; lin.small.derived.len() as usize];
    let mut resolved = Vec::new();
    let mut changed: Vec<(u32, Mask)> = Vec::new();
    for (i, o) in lin.small.derived.iter().enumerate() {
        if o >= limit || state[i] & DONE != 0 || !vis(o) {
            continue;
        }
        // Depth first over derived parents; each row's reasons are final
        // before any child reads them.
        let mut stack: Vec<(usize, u32, Vec<u32>)> = Vec::new();
        let mut push = |i: usize, o: u32, state: &mut Vec<u32>| {
            resolved.clear();
            for &p in lin.parents_of(i) {
                lin.resolve(recs, p, seq, &mut resolved);
            }
            state[i] = ON_PATH | own(shards, o) as u32;
            (i, o, resolved.clone())
        };
        stack.push(push(i, o, &mut state));
        while let Some((ci, _, ps)) = stack.last_mut() {
            let ci = *ci;
            match ps.pop() {
                Some(p) => match lin.child(p) {
                    // A derived parent not folded yet: fold it first. (On
                    // the path: a cycle, which derive refuses; it adds nothing.)
                    Some(j) if state[j] & (DONE | ON_PATH) == 0 => {
                        let next = push(j, p, &mut state);
                        stack.push(next);
                    }
                    Some(j) => state[ci] |= state[j] & 0xFFFF,
                    None => state[ci] |= own(shards, p) as u32,
                },
                None => {
                    let (ci, co, _) = stack.pop().expect("non-empty");
                    state[ci] = (state[ci] & !ON_PATH) | DONE;
                    let m = (state[ci] & 0xFFFF) as Mask;
                    if m != 0 {
                        changed.push((co, m));
                    }
                    if let Some((pi, _, _)) = stack.last() {
                        state[*pi] |= m as u32;
                    }
                }
            }
        }
    }
    for (o, m) in changed {
        let id = recs.record_of(o);
        if let Some(e) = shards.get_mut(&id.shard()) {
            for (r, b) in e.reasons.iter_mut().enumerate() {
                if m & 1 << r != 0 {
                    b.insert(id.row());
                }
            }
            e.excluded.insert(id.row());
        }
    }
}
