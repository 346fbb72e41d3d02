//! The soft memory limit (`set_memory_limit`, Go's debug.SetMemoryLimit):
//! it replaces the GOGC goal when that would not fit under it.

use tricolor::{GcVec, Root, Trace};

#[derive(Trace)]
struct Blob {
    bytes: [u64; 12_800], // 100 KiB
}

#[derive(Trace)]
struct Holder {
    blobs: GcVec<Blob>,
}

/// With 29.3 MiB live and GOGC 100, the goal is about 59 MiB; a 40 MiB limit
/// brings it under 40 MiB, and lifting the limit restores the GOGC goal.
#[test]
fn limit_caps_the_heap_goal() {
    assert_eq!(
        tricolor::set_memory_limit(u64::MAX),
        u64::MAX,
        "no limit by default"
    );
    let holder = Root::new(Holder {
        blobs: GcVec::new(),
    });
    {
        let mut g = tricolor::pin();
        for _ in 0..300 {
            let b = g.alloc(Blob { bytes: [1; 12_800] });
            holder.blobs.push(&g, Some(b));
            g.repin();
        }
    }
    tricolor::gc();
    let free = tricolor::read_mem_stats().next_gc;
    assert!(free > 50 << 20, "GOGC goal with 30 MiB live: {free}");

    assert_eq!(tricolor::set_memory_limit(40 << 20), u64::MAX);
    tricolor::gc();
    let limited = tricolor::read_mem_stats().next_gc;
    assert!(limited < 40 << 20, "goal under the limit: {limited}");
    assert!(
        limited >= 29 << 20,
        "but not under the live heap (29.3 MiB): {limited}"
    );

    assert_eq!(tricolor::set_memory_limit(u64::MAX), 40 << 20);
    tricolor::gc();
    assert!(tricolor::read_mem_stats().next_gc > 50 << 20);
    assert_eq!(holder.blobs.len(), 300);
}
