//! The allocation-heavy loop on a global allocator that only forwards to
//! `System`: the floor of any wrapping allocator (what `alloc-tracking`
//! costs beyond this is its counting and sampling; see `src/alloc_loop.rs`).

use std::alloc::{GlobalAlloc, Layout, System};

struct PassThrough;

// SAFETY: every method forwards to `System` with the caller's arguments and
// returns its result unchanged, so `System`'s guarantees are the caller's.
unsafe impl GlobalAlloc for PassThrough {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System::alloc_zeroed`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System::dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: PassThrough = PassThrough;

include!("../alloc_loop.rs");

fn report() {}
