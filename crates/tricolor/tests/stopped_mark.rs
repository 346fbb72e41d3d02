//! The stop-the-world mode (`TRICOLOR_DEBUG=gcstoptheworld=1`) marks a heap
//! large enough that marking takes many of the fractional worker's bursts
//! (0.5 ms each), with the world stopped. A regression test: the
//! fractional worker's check between bursts took the thread list's lock,
//! which the collector holds in that mode while it marks, and the first
//! cycle that marked for longer than a burst deadlocked (on machines with
//! fewer than four CPUs, where the collector is a fractional worker).
//!
//! One test in this file: the option is process-wide and read once.

use tricolor::{Member, Root, Trace};

#[derive(Trace)]
struct Node {
    value: u64,
    next: Member<Node>,
}

#[test]
fn stopped_cycles_mark_a_large_heap() {
    // Edition 2021: `set_var` is safe; no other thread runs yet.
    std::env::set_var("TRICOLOR_DEBUG", "gcstoptheworld=1");
    const N: u64 = 300_000;
    let head = Root::new(Node {
        value: 0,
        next: Member::null(),
    });
    {
        let g = tricolor::pin();
        let mut tail = head.get(&g);
        for i in 1..=N {
            let n = g.alloc(Node {
                value: i,
                next: Member::null(),
            });
            tail.next.store(&g, Some(n));
            tail = n;
        }
    }
    for _ in 0..3 {
        tricolor::gc();
    }
    let g = tricolor::pin();
    let (mut node, mut sum, mut len) = (head.get(&g), 0u64, 0u64);
    while let Some(next) = node.next.load(&g) {
        sum += next.value;
        len += 1;
        node = next;
    }
    assert_eq!(len, N);
    assert_eq!(sum, N * (N + 1) / 2);
    assert!(tricolor::read_mem_stats().num_gc >= 3);
}
