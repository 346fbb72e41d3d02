//! The soft memory limit covers the bytes the `Tracking` global allocator
//! counts live: with GOGC off the heap goal is the limit less what is not
//! heap, and a large plain Rust allocation is not heap, so the goal must
//! shrink by its size while it lives and grow back once it is freed.
//!
//! One test in this file: the memory limit and GOGC are process-wide.

use tricolor::alloc::Tracking;

#[global_allocator]
static ALLOC: Tracking = Tracking::new();

const MIB: u64 = 1 << 20;

/// The heap goal after a full cycle.
fn goal() -> u64 {
    tricolor::gc();
    tricolor::read_mem_stats().next_gc
}

#[test]
fn memory_limit_covers_tracked_allocations() {
    tricolor::set_gc_percent(-1);
    tricolor::set_memory_limit(256 * MIB);
    let without = goal();
    assert!(
        without > 128 * MIB,
        "with an empty heap the goal is near the 256 MiB limit, got {without}"
    );

    let big = vec![1u8; 64 << 20];
    let with = goal();
    assert!(
        with + 60 * MIB <= without,
        "a live 64 MiB Vec must lower the heap goal by about its size: \
         {} MiB without it, {} MiB with it",
        without / MIB,
        with / MIB
    );

    drop(std::hint::black_box(big));
    let after = goal();
    assert!(
        after + 4 * MIB >= without,
        "freeing the Vec gives its room back to the heap: {} MiB before, {} MiB after",
        without / MIB,
        after / MIB
    );
}
