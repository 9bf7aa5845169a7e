//! Ordered parallel map with "first error wins": items are taken in
//! order by `threads` scoped threads (as the engine splits its passes);
//! the result is the items' results in order, or the error of the
//! lowest-numbered failing item, the same whatever the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The threads to use by default: the cores, at most 4 (as `ingest`).
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}

/// `f(0..n)` on `threads` threads, in order, stopping after the first error.
pub(crate) fn map<T: Send, E: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    if threads <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    // Items after the first failing one need not run: every item before
    // it was taken earlier and runs to completion.
    let first_bad = AtomicUsize::new(usize::MAX);
    let slots: Vec<Mutex<Option<Result<T, E>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n || i > first_bad.load(Ordering::Relaxed) {
            return;
        }
        let r = f(i);
        if r.is_err() {
            first_bad.fetch_min(i, Ordering::Relaxed);
        }
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(n) {
            s.spawn(work);
        }
        work();
    });
    let mut out = Vec::with_capacity(n);
    for slot in slots {
        match slot.into_inner().ok().flatten() {
            Some(Ok(t)) => out.push(t),
            Some(Err(e)) => return Err(e),
            // Only items after a failure are skipped, and it came first.
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordered_and_first_error_wins() {
        for threads in [1, 2, 3, 8] {
            let ok: Result<Vec<usize>, usize> = super::map(100, threads, |i| Ok(i * 2));
            assert_eq!(ok.unwrap(), (0..100).map(|i| i * 2).collect::<Vec<_>>());
            let bad: Result<Vec<usize>, usize> =
                super::map(100, threads, |i| if i % 17 == 16 { Err(i) } else { Ok(i) });
            assert_eq!(bad.unwrap_err(), 16);
        }
    }
}
