//! The allocation-heavy loop on `tricolor::alloc::Tracking` (counting and
//! sampling at the default rate; compare with `alloc-system`, see
//! `src/alloc_loop.rs`). Prints the tracking statistics on stderr.

#[global_allocator]
static A: tricolor::alloc::Tracking = tricolor::alloc::Tracking::new();

include!("../alloc_loop.rs");

fn report() {
    eprintln!("{:?}", tricolor::alloc::stats());
}
