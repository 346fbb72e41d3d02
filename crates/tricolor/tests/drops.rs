//! Drop counting: every unreachable object is dropped exactly once by the
//! collection that follows, and reachable ones never: chains, cycles (a
//! 2-cycle, a self-loop, a 10,000-node ring), objects kept only by a `Root`
//! clone, objects reachable only through a `GcVec`, objects owning `String`
//! and `Vec<u8>` buffers.
//!
//! The tests in this file may run concurrently in one process (`cargo test`):
//! each counts only the drops of its own tag, and `gc()` frees everything
//! that was unreachable when it was called, whoever else collects.

mod common;

use common::{assert_dropped_exactly, Tracked};
use tricolor::{Gc, GcVec, Guard, Member, Root, Trace};

#[derive(Trace)]
struct Node {
    id: u64,
    a: Member<Node>,
    b: Member<Node>,
    t: Tracked,
}

fn node<'g>(g: &'g Guard, tag: u32, id: u64) -> Gc<'g, Node> {
    g.alloc(Node {
        id,
        a: Member::null(),
        b: Member::null(),
        t: Tracked { tag, id },
    })
}

/// A chain of nodes `0..len` linked along `a` edges: its head and its tail.
fn chain<'g>(g: &'g Guard, tag: u32, len: u64) -> (Gc<'g, Node>, Gc<'g, Node>) {
    let head = node(g, tag, 0);
    let mut prev = head;
    for i in 1..len {
        let n = node(g, tag, i);
        prev.a.store(g, Some(n));
        prev = n;
    }
    (head, prev)
}

/// The ids along `a` edges from `start`, at most `limit` of them.
fn ids_along_a(g: &Guard, start: Gc<'_, Node>, limit: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cur = Some(start);
    while let Some(n) = cur {
        if out.len() == limit {
            break;
        }
        assert_eq!(n.t.id, n.id, "node {} corrupted", n.id);
        out.push(n.id);
        cur = n.a.load(g);
    }
    out
}

/// Cutting a rooted 100-node chain frees exactly the cut-off tail; dropping the root, the rest.
#[test]
fn chain_cut_frees_exactly_the_tail() {
    const TAG: u32 = 1;
    let root = {
        let g = tricolor::pin();
        let (head, _) = chain(&g, TAG, 100);
        head.root()
    };
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    {
        let g = tricolor::pin();
        let head = root.get(&g);
        assert_eq!(ids_along_a(&g, head, 1000), (0..100).collect::<Vec<_>>());
        let mut n = head;
        for _ in 0..49 {
            n = n.a.load(&g).unwrap();
        }
        assert_eq!(n.id, 49);
        n.a.store(&g, None);
    }
    tricolor::gc();
    assert_dropped_exactly(TAG, 50..100);
    {
        let g = tricolor::pin();
        assert_eq!(
            ids_along_a(&g, root.get(&g), 1000),
            (0..50).collect::<Vec<_>>()
        );
    }
    drop(root);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..100);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..100);
}

/// A 2-cycle lives while either node is rooted; both nodes are freed once when neither is.
#[test]
fn two_cycle_is_freed_once_unrooted() {
    const TAG: u32 = 2;
    let (ra, rb) = {
        let g = tricolor::pin();
        let a = node(&g, TAG, 0);
        let b = node(&g, TAG, 1);
        a.a.store(&g, Some(b));
        b.a.store(&g, Some(a));
        (a.root(), Root::from(b))
    };
    drop(ra);
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    {
        let g = tricolor::pin();
        let b = rb.get(&g);
        let a = b.a.load(&g).unwrap();
        assert_eq!(a.id, 0);
        assert!(Gc::ptr_eq(a.a.load(&g).unwrap(), b));
    }
    drop(rb);
    tricolor::gc();
    assert_dropped_exactly(TAG, [0, 1]);
}

/// Self-loops keep nothing alive: each is freed once when unrooted or cut off a live node.
#[test]
fn self_loop_is_freed() {
    const TAG: u32 = 3;
    let (r, hanging) = {
        let g = tricolor::pin();
        let a = node(&g, TAG, 0);
        a.a.store(&g, Some(a));
        let s = node(&g, TAG, 1);
        s.a.store(&g, Some(s));
        a.b.store(&g, Some(s));
        (a.root(), s.root())
    };
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    drop(hanging);
    {
        let g = tricolor::pin();
        let a = r.get(&g);
        assert!(Gc::ptr_eq(a.a.load(&g).unwrap(), a));
        let s = a.b.load(&g).unwrap();
        assert!(Gc::ptr_eq(s.a.load(&g).unwrap(), s));
        a.b.store(&g, None);
    }
    tricolor::gc();
    assert_dropped_exactly(TAG, [1]);
    drop(r);
    tricolor::gc();
    assert_dropped_exactly(TAG, [0, 1]);
}

/// A rooted 10,000-node ring with chords stays intact; unrooted, every node is freed once.
#[test]
fn ring_of_10000_is_freed_exactly_once() {
    const TAG: u32 = 4;
    const N: u64 = 10_000;
    let root = {
        let g = tricolor::pin();
        let nodes: Vec<Gc<'_, Node>> = (0..N).map(|i| node(&g, TAG, i)).collect();
        for i in 0..N as usize {
            nodes[i].a.store(&g, Some(nodes[(i + 1) % N as usize]));
            nodes[i].b.store(&g, Some(nodes[(i * 7919) % N as usize]));
        }
        nodes[1234].root()
    };
    for _ in 0..2 {
        tricolor::gc();
        assert_dropped_exactly(TAG, []);
        let g = tricolor::pin();
        let start = root.get(&g);
        let ids = ids_along_a(&g, start, N as usize + 1);
        let want: Vec<u64> = (0..=N).map(|k| (1234 + k) % N).collect();
        assert_eq!(ids, want, "ring changed");
        let mut n = start;
        for _ in 0..N {
            let chord = n.b.load(&g).unwrap();
            assert_eq!(chord.id, (n.id * 7919) % N);
            n = n.a.load(&g).unwrap();
        }
        assert!(Gc::ptr_eq(n, start));
    }
    drop(root);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..N);
}

/// A clone outliving the original root keeps its object alive; the last clone's drop frees it.
#[test]
fn root_clone_alone_keeps_object_alive() {
    const TAG: u32 = 5;
    let r1 = Root::new(Node {
        id: 0,
        a: Member::null(),
        b: Member::null(),
        t: Tracked { tag: TAG, id: 0 },
    });
    let r2 = r1.clone();
    assert!(Root::ptr_eq(&r1, &r2));
    drop(r1);
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    assert_eq!(r2.id, 0);
    assert_eq!(r2.t.id, 0);

    // A node only ever held by a `Gc`, turned into a root before unpinning.
    let r3 = {
        let g = tricolor::pin();
        let n = node(&g, TAG, 1);
        let r = n.root();
        assert!(Gc::ptr_eq(r.get(&g), n));
        r
    };
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    assert_eq!(r3.id, 1);

    // Clones moved to another thread, verified and dropped there; the
    // original dropped here.
    let r4 = r3.clone();
    std::thread::spawn(move || {
        let g = tricolor::pin();
        assert_eq!(r4.get(&g).id, 1);
        drop(g);
        drop(r4);
        tricolor::gc();
    })
    .join()
    .unwrap();
    assert_dropped_exactly(TAG, []);
    drop(r3);
    tricolor::gc();
    assert_dropped_exactly(TAG, [1]);
    drop(r2);
    tricolor::gc();
    assert_dropped_exactly(TAG, [0, 1]);
}

#[derive(Trace)]
struct Holder {
    items: GcVec<Node>,
    t: Tracked,
}

/// Objects reachable only via a `GcVec` live; cleared, popped and finally all are freed once.
#[test]
fn gcvec_only_reachability() {
    const TAG: u32 = 6;
    const HOLDER: u64 = u64::MAX;
    let holder = Root::new(Holder {
        items: GcVec::new(),
        t: Tracked {
            tag: TAG,
            id: HOLDER,
        },
    });
    {
        let g = tricolor::pin();
        for i in 0..1000 {
            holder.items.push(&g, Some(node(&g, TAG, i)));
        }
    }
    tricolor::gc();
    assert_dropped_exactly(TAG, []);
    {
        let g = tricolor::pin();
        assert_eq!(holder.items.len(), 1000);
        for (i, e) in holder.items.iter(&g).enumerate() {
            assert_eq!(e.unwrap().id, i as u64);
        }
        for i in (0..1000).step_by(3) {
            holder.items.set(&g, i, None);
        }
        // Pop 100: ids 999..=900 (some already cleared).
        for i in (900..1000).rev() {
            let popped = holder.items.pop(&g).expect("not empty");
            assert_eq!(popped.map(|n| n.id), (i % 3 != 0).then_some(i as u64));
        }
    }
    tricolor::gc();
    let gone: Vec<u64> = (0..1000).filter(|i| i % 3 == 0 || *i >= 900).collect();
    assert_dropped_exactly(TAG, gone);
    {
        let g = tricolor::pin();
        assert_eq!(holder.items.len(), 900);
        for i in 0..900 {
            let e = holder.items.get(&g, i);
            assert_eq!(e.map(|n| n.id), (i % 3 != 0).then_some(i as u64));
        }
    }
    drop(holder);
    tricolor::gc();
    assert_dropped_exactly(TAG, (0..1000).chain([HOLDER]));
}

#[derive(Trace)]
struct Blob {
    id: u64,
    text: String,
    bytes: Vec<u8>,
    next: Member<Blob>,
    t: Tracked,
}

fn blob_text(id: u64) -> String {
    format!("blob {id} ").repeat(1 + (id as usize * 37) % 400)
}

fn blob_bytes(id: u64) -> Vec<u8> {
    (0..(64 + (id as usize * 131) % 8192))
        .map(|k| (k as u64 ^ id) as u8)
        .collect()
}

fn blob<'g>(g: &'g Guard, tag: u32, id: u64) -> Gc<'g, Blob> {
    g.alloc(Blob {
        id,
        text: blob_text(id),
        bytes: blob_bytes(id),
        next: Member::null(),
        t: Tracked { tag, id },
    })
}

/// `String`/`Vec<u8>` fields stay intact while live and are dropped (freed) once when not.
#[test]
fn string_and_bytes_fields_are_kept_then_dropped() {
    const TAG: u32 = 7;
    const CHURN: u32 = 10;
    // Evens rooted; odds chained behind the evens or dropped at once.
    let roots: Vec<Root<Blob>> = {
        let g = tricolor::pin();
        (0..200u64)
            .step_by(2)
            .map(|i| {
                let even = blob(&g, TAG, i);
                let odd = blob(&g, TAG, i + 1);
                if i % 4 == 0 {
                    even.next.store(&g, Some(odd));
                }
                even.root()
            })
            .collect()
    };
    let mut churn_id = 0;
    for _ in 0..3 {
        {
            let g = tricolor::pin();
            for _ in 0..300 {
                let _ = blob(&g, CHURN, churn_id);
                churn_id += 1;
            }
        }
        tricolor::gc();
        let gone: Vec<u64> = (0..200).filter(|i| i % 4 == 3).collect();
        assert_dropped_exactly(TAG, gone);
        let g = tricolor::pin();
        for r in &roots {
            let b = r.get(&g);
            assert_eq!(b.text, blob_text(b.id));
            assert_eq!(b.bytes, blob_bytes(b.id));
            if let Some(odd) = b.next.load(&g) {
                assert_eq!(odd.id, b.id + 1);
                assert_eq!(odd.text, blob_text(odd.id));
                assert_eq!(odd.bytes, blob_bytes(odd.id));
            } else {
                assert_eq!(b.id % 4, 2);
            }
        }
    }
    assert_dropped_exactly(CHURN, 0..churn_id);
    drop(roots);
    tricolor::gc();
    assert_dropped_exactly(TAG, 0..200);
}

/// Garbage with edges into a live structure is freed without freeing what it pointed at.
#[test]
fn garbage_pointing_into_live_graph() {
    const TAG: u32 = 8;
    let root = {
        let g = tricolor::pin();
        let (head, tail) = chain(&g, TAG, 10);
        for i in 0..1000u64 {
            let garbage = node(&g, TAG, 100 + i);
            garbage.a.store(&g, Some(head));
            garbage.b.store(&g, Some(tail));
        }
        head.root()
    };
    tricolor::gc();
    assert_dropped_exactly(TAG, 100..1100);
    {
        let g = tricolor::pin();
        assert_eq!(
            ids_along_a(&g, root.get(&g), 100),
            (0..10).collect::<Vec<_>>()
        );
    }
    drop(root);
    tricolor::gc();
    assert_dropped_exactly(TAG, (0..10).chain(100..1100));
}

/// An object of about `8 * W` bytes, with an edge.
#[derive(Trace)]
struct Words<const W: usize> {
    words: [u64; W],
    next: Member<Words<W>>,
    t: Tracked,
}

/// The same without edges ("noscan").
#[derive(Trace)]
struct PlainWords<const W: usize> {
    words: [u64; W],
    t: Tracked,
}

fn pattern(id: u64, k: usize) -> u64 {
    id.rotate_left(k as u32 % 64) ^ k as u64
}

/// Allocates, for size `W`: a rooted object, one reachable only through
/// its edge, a rooted noscan one, and two garbage ones; returns the roots
/// and the ids that must be dropped by the next collection.
fn alloc_size<const W: usize>(
    tag: u32,
) -> (Root<Words<W>>, Root<PlainWords<W>>, [u64; 2], [u64; 3]) {
    let id = |k: u64| W as u64 * 10 + k;
    let g = tricolor::pin();
    let words = |k| std::array::from_fn(|i| pattern(id(k), i));
    let a = g.alloc(Words::<W> {
        words: words(0),
        next: Member::null(),
        t: Tracked { tag, id: id(0) },
    });
    let b = g.alloc(Words::<W> {
        words: words(1),
        next: Member::null(),
        t: Tracked { tag, id: id(1) },
    });
    a.next.store(&g, Some(b));
    let p = Root::new(PlainWords::<W> {
        words: words(2),
        t: Tracked { tag, id: id(2) },
    });
    let _ = g.alloc(Words::<W> {
        words: words(3),
        next: Member::new(Some(a)),
        t: Tracked { tag, id: id(3) },
    });
    let _ = g.alloc(PlainWords::<W> {
        words: words(4),
        t: Tracked { tag, id: id(4) },
    });
    (a.root(), p, [id(3), id(4)], [id(0), id(1), id(2)])
}

fn check_size<const W: usize>(a: &Root<Words<W>>, p: &Root<PlainWords<W>>) {
    let g = tricolor::pin();
    let b = a.get(&g).next.load(&g).expect("edge kept");
    for (n, id) in [(&a.words, a.t.id), (&b.words, b.t.id), (&p.words, p.t.id)] {
        for (i, w) in n.iter().enumerate() {
            assert_eq!(*w, pattern(id, i), "object {id} ({W} words) corrupted");
        }
    }
}

macro_rules! every_size {
    ($tag:expr, $($w:literal),*) => {{
        let mut garbage = Vec::new();
        let mut live = Vec::new();
        let mut roots: Vec<Box<dyn std::any::Any>> = Vec::new();
        $(
            let (a, p, g, l) = alloc_size::<$w>($tag);
            garbage.extend(g);
            live.extend(l);
            roots.push(Box::new((a, p)));
        )*
        tricolor::gc();
        assert_dropped_exactly($tag, garbage.iter().copied());
        $(
            let (a, p) = roots[0].downcast_ref::<(Root<Words<$w>>, Root<PlainWords<$w>>)>().unwrap();
            check_size::<$w>(a, p);
            roots.remove(0);
        )*
        tricolor::gc();
        assert_dropped_exactly($tag, garbage.iter().chain(&live).copied());
    }};
}

/// Objects of every size class and large ones, scan and noscan, live intact and die once.
#[test]
fn every_object_size_is_kept_then_dropped() {
    const TAG: u32 = 9;
    // Values up to 160 KiB are built on the stack and moved into the heap;
    // unoptimised builds keep several copies per frame.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            every_size!(
                TAG, 0, 1, 2, 3, 5, 9, 14, 30, 62, 126, 254, 510, 511, 600, 1020, 1500, 2000, 3000,
                4090, 4100, 8000, 20000
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
