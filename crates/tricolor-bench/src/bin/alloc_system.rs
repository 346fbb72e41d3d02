//! The allocation-heavy loop on the system allocator (the baseline of
//! `alloc-tracking`; see `src/alloc_loop.rs`).

include!("../alloc_loop.rs");

fn report() {}
