//! `GcVec`: push/get/set/pop/iter semantics, growth that preserves contents
//! across collections, and lock-free readers running while a writer pushes
//! or replaces elements (every element a reader sees is a valid live node, at
//! the index it was pushed to).
//!
//! The tests may share a process: each counts only the drops of its own tag.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use common::{assert_dropped_exactly, scaled, was_dropped, Tracked};
use tricolor::{Gc, GcVec, Guard, Root, Trace};

fn check_of(idx: u64, generation: u64) -> u64 {
    (idx.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ generation).rotate_left(17)
}

/// An element: `idx` is the position it was stored at.
#[derive(Trace)]
struct Item {
    idx: u64,
    generation: u64,
    check: u64,
    t: Tracked,
}

impl Item {
    fn verify(&self) {
        assert_eq!(
            self.check,
            check_of(self.idx, self.generation),
            "element {} corrupted",
            self.idx
        );
        assert!(
            !was_dropped(self.t.tag, self.t.id),
            "element {} (id {}) seen after it was dropped",
            self.idx,
            self.t.id
        );
    }
}

fn item<'g>(g: &'g Guard, tag: u32, idx: u64, generation: u64, id: u64) -> Gc<'g, Item> {
    g.alloc(Item {
        idx,
        generation,
        check: check_of(idx, generation),
        t: Tracked { tag, id },
    })
}

#[derive(Trace)]
struct Holder {
    v: GcVec<Item>,
}

fn holder() -> Root<Holder> {
    Root::new(Holder { v: GcVec::new() })
}

fn ids(g: &Guard, v: &GcVec<Item>) -> Vec<Option<u64>> {
    v.iter(g).map(|e| e.map(|n| n.t.id)).collect()
}

/// push/get/set/pop/iter/len follow `Vec` semantics with nullable elements, empty included.
#[test]
fn basic_semantics() {
    const TAG: u32 = 1;
    let h = holder();
    let g = tricolor::pin();
    let v = &h.v;
    assert_eq!(v.len(), 0);
    assert!(v.is_empty());
    assert!(v.get(&g, 0).is_none());
    assert!(v.pop(&g).is_none());
    assert_eq!(v.iter(&g).count(), 0);

    let a = item(&g, TAG, 0, 0, 0);
    let b = item(&g, TAG, 2, 0, 1);
    let c = item(&g, TAG, 1, 0, 2);
    v.push(&g, Some(a));
    v.push(&g, None);
    v.push(&g, Some(b));
    assert_eq!(v.len(), 3);
    assert!(!v.is_empty());
    assert!(Gc::ptr_eq(v.get(&g, 0).unwrap(), a));
    assert!(v.get(&g, 1).is_none());
    assert!(Gc::ptr_eq(v.get(&g, 2).unwrap(), b));
    assert!(v.get(&g, 3).is_none());
    assert!(v.get(&g, usize::MAX).is_none());
    assert_eq!(ids(&g, v), vec![Some(0), None, Some(1)]);

    v.set(&g, 1, Some(c));
    assert!(Gc::ptr_eq(v.get(&g, 1).unwrap(), c));
    v.set(&g, 0, None);
    assert!(v.get(&g, 0).is_none());
    assert_eq!(ids(&g, v), vec![None, Some(2), Some(1)]);
    assert_eq!(v.len(), 3);

    assert!(Gc::ptr_eq(v.pop(&g).unwrap().unwrap(), b));
    assert!(Gc::ptr_eq(v.pop(&g).unwrap().unwrap(), c));
    assert!(v.pop(&g).unwrap().is_none());
    assert!(v.pop(&g).is_none());
    assert!(v.is_empty());
    assert_eq!(v.iter(&g).count(), 0);
    // Reusable after being emptied.
    v.push(&g, Some(a));
    assert_eq!(ids(&g, v), vec![Some(0)]);
}

/// `set` past the end panics (it does not grow the vector).
#[test]
#[should_panic]
fn set_out_of_range_panics() {
    let h = holder();
    let g = tricolor::pin();
    h.v.push(&g, None);
    let x = item(&g, 2, 0, 0, 0);
    h.v.set(&g, 1, Some(x));
}

/// Growth to 5,000 with collections keeps contents; popped/cleared elements are freed once.
#[test]
fn growth_preserves_contents_across_collections() {
    const TAG: u32 = 3;
    const N: u64 = 5_000;
    let h = holder();
    for chunk in 0..10 {
        {
            let g = tricolor::pin();
            for i in chunk * (N / 10)..(chunk + 1) * (N / 10) {
                h.v.push(&g, Some(item(&g, TAG, i, 0, i)));
            }
        }
        tricolor::gc();
        let g = tricolor::pin();
        let want = (chunk + 1) * (N / 10);
        assert_eq!(h.v.len() as u64, want);
        let mut seen = 0;
        for (i, e) in h.v.iter(&g).enumerate() {
            let n = e.expect("no null pushed");
            assert_eq!(n.idx, i as u64);
            n.verify();
            seen += 1;
        }
        assert_eq!(seen, want);
        assert_dropped_exactly(TAG, []);
    }
    {
        let g = tricolor::pin();
        for i in (0..N as usize).step_by(5) {
            h.v.set(&g, i, None);
        }
        for _ in 0..N / 2 {
            h.v.pop(&g).expect("not empty");
        }
    }
    tricolor::gc();
    let gone = (0..N).filter(|i| i % 5 == 0 || *i >= N / 2);
    assert_dropped_exactly(TAG, gone);
    {
        let g = tricolor::pin();
        assert_eq!(h.v.len() as u64, N / 2);
        for i in 0..N / 2 {
            let e = h.v.get(&g, i as usize);
            assert_eq!(e.map(|n| n.idx), (i % 5 != 0).then_some(i));
        }
        // Grow again after shrinking: the new elements land after the old.
        for i in N / 2..N {
            h.v.push(&g, Some(item(&g, TAG, i, 1, N + i)));
        }
    }
    tricolor::gc();
    {
        let g = tricolor::pin();
        for (i, e) in h.v.iter(&g).enumerate() {
            let i = i as u64;
            match e {
                Some(n) => {
                    assert_eq!(n.idx, i);
                    n.verify();
                }
                None => assert!(i < N / 2 && i.is_multiple_of(5)),
            }
        }
    }
    drop(h);
    tricolor::gc();
    let all = (0..N).chain(N + N / 2..2 * N);
    assert_dropped_exactly(TAG, all);
}

/// Runs `writer` on this thread while two reader threads run `reader`, each
/// with its own clone of the root `h` and the flag set once the writer is
/// done, all three starting together; returns what the readers return.
fn race_readers<R: Send>(
    h: &Root<Holder>,
    reader: impl Fn(&Root<Holder>, &AtomicBool) -> R + Sync,
    writer: impl FnOnce(),
) -> Vec<R> {
    let done = AtomicBool::new(false);
    // Readers and writer start together.
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let h = h.clone();
                let (done, start, reader) = (&done, &start, &reader);
                s.spawn(move || {
                    start.wait();
                    reader(&h, done)
                })
            })
            .collect();
        start.wait();
        writer();
        done.store(true, Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().expect("reader panicked"))
            .collect()
    })
}

/// Readers racing a pushing writer see a prefix: elements 0..k in order, live and intact.
#[test]
fn readers_see_a_prefix_while_writer_pushes() {
    const TAG: u32 = 4;
    let n = scaled(50_000, 10_000);
    let h = holder();
    let passes = race_readers(
        &h,
        |h, done| {
            let mut last = 0u64;
            let mut passes = 0u64;
            loop {
                // Read the flag first: a pass that starts after the
                // writer finished must see everything.
                let finished = done.load(Ordering::Acquire);
                let g = tricolor::pin();
                let len_before = h.v.len() as u64;
                let mut k = 0u64;
                for e in h.v.iter(&g) {
                    let e = e.unwrap_or_else(|| panic!("null element at {k}"));
                    assert_eq!(e.idx, k, "element out of place");
                    e.verify();
                    k += 1;
                }
                assert!(k >= len_before, "iter saw {k} < len {len_before}");
                assert!(k >= last, "view shrank from {last} to {k}");
                last = k;
                passes += 1;
                if finished {
                    assert_eq!(k, n);
                    return passes;
                }
            }
        },
        || {
            let mut g = tricolor::pin();
            for i in 0..n {
                if i % 64 == 0 {
                    g.repin();
                }
                if i % 2_000 == 1_999 {
                    drop(g);
                    tricolor::gc();
                    g = tricolor::pin();
                }
                h.v.push(&g, Some(item(&g, TAG, i, 0, i)));
            }
        },
    );
    for p in passes {
        assert!(p >= 1);
    }
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    drop(h);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..n);
}

/// Readers racing a writer that replaces elements see live elements at the right index.
#[test]
fn readers_see_live_elements_while_writer_replaces() {
    const TAG: u32 = 5;
    const LEN: u64 = 256;
    let rounds = scaled(40_000, 8_000);
    let h = holder();
    let mut next_id = 0u64;
    {
        let g = tricolor::pin();
        for i in 0..LEN {
            h.v.push(&g, Some(item(&g, TAG, i, 0, next_id)));
            next_id += 1;
        }
    }
    race_readers(
        &h,
        |h, done| {
            while !done.load(Ordering::Acquire) {
                let g = tricolor::pin();
                let mut k = 0u64;
                for e in h.v.iter(&g) {
                    if let Some(e) = e {
                        assert_eq!(e.idx, k, "element out of place");
                        e.verify();
                    }
                    k += 1;
                }
                assert!((LEN - 1..=LEN).contains(&k), "length {k} out of bounds");
                for i in [0, LEN / 2, LEN - 2] {
                    let e = h.v.get(&g, i as usize).expect("never null");
                    assert_eq!(e.idx, i);
                    e.verify();
                }
            }
        },
        || {
            let mut x = 0x1234_5678u64;
            let mut g = tricolor::pin();
            for r in 0..rounds {
                if r % 32 == 0 {
                    g.repin();
                }
                if r % 2_000 == 1_999 {
                    drop(g);
                    tricolor::gc();
                    g = tricolor::pin();
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if r % 8 == 0 {
                    // Pop and push the last element (briefly LEN - 1 long).
                    let last = h.v.pop(&g).expect("not empty").expect("never null");
                    assert_eq!(last.idx, LEN - 1);
                    h.v.push(&g, Some(item(&g, TAG, LEN - 1, r, next_id)));
                } else {
                    let i = x % LEN;
                    h.v.set(&g, i as usize, Some(item(&g, TAG, i, r, next_id)));
                }
                next_id += 1;
            }
        },
    );
    tricolor::gc();
    let live: Vec<u64> = {
        let g = tricolor::pin();
        h.v.iter(&g).map(|e| e.unwrap().t.id).collect()
    };
    let gone = (0..next_id).filter(|id| !live.contains(id));
    assert_dropped_exactly(TAG, gone);
    drop(h);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..next_id);
}

/// Writers that `set` disjoint elements without a lock, while another
/// thread grows the vector (doubling its buffer each round, up to 2^11
/// times the first size) and pops the grown part back, with collections in
/// between: no set is lost to a buffer copy, and every element read is live
/// and in place. Each setter finally reads its elements back and finds the
/// last value it stored. (The narrow window in which a set could lose its
/// store to a buffer copy, between its first read of the shape count and
/// its store, is what the loom model `loom_gcvec.rs` explores; this test
/// checks the whole, with the collector running.)
#[test]
fn concurrent_sets_survive_growth_and_pops() {
    const TAG: u32 = 7;
    const SETTERS: u64 = 2;
    const OWNED: u64 = 64;
    let doublings = scaled(11, 8) as u32;
    let h = holder();
    {
        let g = tricolor::pin();
        for i in 0..SETTERS * OWNED {
            h.v.push(&g, Some(item(&g, TAG, i, 0, i)));
        }
    }
    let base = SETTERS * OWNED;
    let done = AtomicBool::new(false);
    let start = Barrier::new(SETTERS as usize + 1);
    std::thread::scope(|s| {
        let setters: Vec<_> = (0..SETTERS)
            .map(|t| {
                let (h, start, done) = (&h, &start, &done);
                s.spawn(move || {
                    start.wait();
                    let mut g = tricolor::pin();
                    let mut last = vec![0u64; OWNED as usize];
                    let mut r = 0u64;
                    while !done.load(Ordering::Acquire) {
                        r += 1;
                        if r.is_multiple_of(64) {
                            g.repin();
                        }
                        let k = r % OWNED;
                        let i = t * OWNED + k;
                        let id = 1_000_000_000 * (t + 1) + r;
                        h.v.set(&g, i as usize, Some(item(&g, TAG, i, r, id)));
                        last[k as usize] = id;
                        // Nobody else sets element i: a set that went to a
                        // buffer being replaced would be missing here.
                        let e = h.v.get(&g, i as usize).expect("never null");
                        assert_eq!(e.t.id, id, "set of element {i} lost");
                        assert_eq!(e.idx, i, "element out of place");
                        e.verify();
                    }
                    for k in 0..OWNED {
                        let i = t * OWNED + k;
                        let e = h.v.get(&g, i as usize).expect("never null");
                        if last[k as usize] != 0 {
                            assert_eq!(e.t.id, last[k as usize], "set of element {i} lost");
                        }
                        e.verify();
                    }
                    r
                })
            })
            .collect();
        start.wait();
        for d in 1..=doublings {
            let g = tricolor::pin();
            // Past the capacity (a new buffer, filled by copying), then back.
            let grown = base << d;
            for j in base..grown {
                h.v.push(&g, Some(item(&g, TAG, j, d as u64, 3_000_000_000 + j)));
            }
            for _ in base..grown {
                h.v.pop(&g).expect("not empty");
            }
            drop(g);
            if d.is_multiple_of(4) {
                tricolor::gc();
            }
        }
        done.store(true, Ordering::Release);
        for t in setters {
            assert!(t.join().unwrap() > 0, "a setter never ran");
        }
    });
    assert_eq!(h.v.len() as u64, base);
}
