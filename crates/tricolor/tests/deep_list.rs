//! A very long linked list (10,000,000 nodes in release builds, 1,000,000 in
//! debug builds, where it is 10-30x slower) built with edges, marked and
//! freed: marking must be iterative, so no stack overflow, and every node is
//! kept while linked and dropped once when not.
//!
//! One `#[test]` in this file: it needs a few hundred MiB of heap.

mod common;

use common::{drops, scaled, Counted};
use tricolor::{Member, Root, Trace};

#[derive(Trace)]
struct L {
    idx: u64,
    next: Member<L>,
    c: Counted,
}

#[derive(Trace)]
struct Head {
    first: Member<L>,
}

/// A list of millions of nodes is marked without stack overflow, kept whole, freed when unrooted.
#[test]
fn very_long_list_is_marked_and_freed() {
    let n = scaled(10_000_000, 1_000_000);
    let head = Root::new(Head {
        first: Member::null(),
    });
    {
        let mut g = tricolor::pin();
        for i in 0..n {
            if i % 10_000 == 0 {
                // Let automatic collections (which mark the growing list)
                // proceed.
                g.repin();
            }
            let node = g.alloc(L {
                idx: i,
                next: Member::new(head.first.load(&g)),
                c: Counted,
            });
            head.first.store(&g, Some(node));
        }
    }
    tricolor::gc();
    tricolor::gc();
    assert_eq!(drops(), 0, "linked nodes were freed");
    {
        let g = tricolor::pin();
        let mut cur = head.first.load(&g);
        let mut want = n;
        while let Some(node) = cur {
            want -= 1;
            assert_eq!(node.idx, want);
            cur = node.next.load(&g);
        }
        assert_eq!(want, 0, "list shorter than built");
        // Cut the list in half.
        let mut mid = head.first.load(&g).unwrap();
        for _ in 0..n / 2 - 1 {
            mid = mid.next.load(&g).unwrap();
        }
        assert_eq!(mid.idx, n / 2);
        mid.next.store(&g, None);
    }
    tricolor::gc();
    assert_eq!(drops(), n / 2);
    drop(head);
    tricolor::gc();
    assert_eq!(drops(), n);
    assert_eq!(tricolor::read_mem_stats().heap_objects, 0);
}
