//! Unit tests of the runtime's internals (behavioural tests live in `tests/`).

use crate::heap::meta_of;
use crate::{Member, Root, Trace};

#[derive(Trace)]
struct Node {
    v: u64,
    l: Member<Node>,
    r: Member<Node>,
}

fn node(v: u64) -> Node {
    Node {
        v,
        l: Member::null(),
        r: Member::null(),
    }
}

#[test]
fn objects_land_in_their_class_and_get_marked() {
    let root = Root::new(node(7));
    let g = crate::pin();
    let child = g.alloc(node(8));
    root.l.store(&g, Some(child));
    let p = child.as_ptr() as usize;
    // SAFETY: `p` is a live object's value pointer.
    let m = unsafe { meta_of(p) };
    assert_eq!(m.elem_size.load(std::sync::atomic::Ordering::Relaxed), 32);
    assert!(!m.noscan());
    drop(g);
    crate::gc();
    let g = crate::pin();
    assert_eq!(root.l.load(&g).unwrap().v, 8);
    assert!(
        !crate::collector::is_marked(p),
        "marks are cleared by the sweep"
    );
}

#[test]
fn plain_data_goes_to_noscan_spans() {
    let g = crate::pin();
    let x = g.alloc(String::from("plain"));
    // SAFETY: live object.
    let m = unsafe { meta_of(x.as_ptr() as usize) };
    assert!(m.noscan());
    assert_eq!(&*x, "plain");
}

#[test]
#[should_panic(expected = "outside the heap")]
fn unsealed_member_cannot_be_loaded() {
    let g = crate::pin();
    let n = node(1);
    let _ = n.l.load(&g);
}

#[test]
fn over_aligned_values_are_aligned() {
    #[repr(align(64))]
    struct Big(u8);
    // SAFETY: plain data.
    unsafe impl Trace for Big {
        const NEEDS_TRACE: bool = false;
        fn trace(&self, _: &mut crate::Tracer) {}
    }
    let g = crate::pin();
    for i in 0..100u8 {
        let b = g.alloc(Big(i));
        assert_eq!(b.as_ptr() as usize % 64, 0);
        assert_eq!(b.0, i);
    }
}

#[test]
fn large_objects_roundtrip() {
    let g = crate::pin();
    let v = g.alloc([7u64; 10_000]);
    assert!(v.iter().all(|&x| x == 7));
    let r = v.root();
    drop(g);
    crate::gc();
    assert_eq!(r[9_999], 7);
}

#[test]
#[allow(clippy::needless_range_loop)] // the class number is the subject
fn every_size_class_fills_several_spans() {
    // One-word spans (slots >= 4 KiB) and multi-word spans alike: each class
    // hands out every slot of a span before taking another.
    use crate::sizeclass::{objects_per_span, CLASS_SIZES, NUM_CLASSES, SPAN_BYTES};
    static INFO: crate::object::TypeInfo = crate::object::TypeInfo {
        trace: |_, _| {},
        drop: None,
        value_offset: 8,
        name: || "test object",
    };
    let g = crate::pin();
    for class in 1..NUM_CLASSES {
        let size = CLASS_SIZES[class] as usize;
        let per = objects_per_span(class);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..per * 2 + 1 {
            let v = g.alloc_dyn(size - 8, &INFO).expect("memory");
            assert!(seen.insert(v), "class {class}: slot handed out twice");
            assert_eq!(((v - 8) & (SPAN_BYTES - 1)) % size, 0);
        }
        let spans: std::collections::HashSet<usize> =
            seen.iter().map(|v| v & !(SPAN_BYTES - 1)).collect();
        // Another test may have left a partial span of this class in the
        // cache or the central list: at least 3, at most 4 spans.
        assert!(
            (3..=4).contains(&spans.len()),
            "class {class}: {per} per span, {} spans",
            spans.len()
        );
    }
}

#[test]
fn checkmark_finds_reachable_unmarked_objects() {
    // Held guard: no cycle can get past its arm handshake, so nothing new
    // is marked by root scan or drain, and nothing is swept. `x` and `y`
    // are unrooted and unmarked (allocation is white), and the edge is
    // born with `x` rather than stored (a store could run the barrier of a
    // cycle that is marking, which would mark `y`).
    let g = crate::pin();
    let y = g.alloc(node(2));
    let x = g.alloc(Node {
        v: 1,
        l: Member::new(Some(y)),
        r: Member::null(),
    });
    let (xp, yp) = (x.as_ptr() as usize, y.as_ptr() as usize);
    assert_eq!(
        crate::collector::checkmark_find_unmarked_from(vec![xp]),
        Some(xp)
    );
    crate::collector::mark_new(xp);
    assert_eq!(
        crate::collector::checkmark_find_unmarked_from(vec![xp]),
        Some(yp),
        "walks edges"
    );
    crate::collector::mark_new(yp);
    assert_eq!(
        crate::collector::checkmark_find_unmarked_from(vec![xp]),
        None
    );
}

#[test]
fn blocked_intervals_land_in_log2_buckets() {
    let b = crate::stats::Blocked::new();
    for ns in [0, 1, 2, 3, 1023, 1024, 1 << 50] {
        b.record(ns);
    }
    let h = b.hist();
    assert_eq!(h[0], 2, "0 and 1 ns");
    assert_eq!(h[1], 2, "2 and 3 ns");
    assert_eq!(h[9], 1, "1023 ns");
    assert_eq!(h[10], 1, "1024 ns");
    assert_eq!(h[crate::stats::BLOCKED_BUCKETS - 1], 1, "clamped");
    assert_eq!(b.total_ns(), 6 + 1023 + 1024 + (1 << 50));
}
