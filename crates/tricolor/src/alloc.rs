//! A tracking global allocator: MemStats and heap profiles for plain Rust
//! programs (no GC object needed).
//!
//! What: [`Tracking<A>`] wraps any [`GlobalAlloc`] (by default [`System`]),
//! counts allocations and frees ([`stats`]: Go's `Mallocs`, `Frees`,
//! `Alloc`, `TotalAlloc`, `HeapObjects`) and feeds the heap profiler
//! (`crate::profile`) with the same Poisson sampling as the GC heap, so that
//! [`crate::profile::write_heap_profile`] shows where a program allocates.
//!
//! Algorithm, per call:
//! 1. count: each thread owns one cache-line-sized block of counters from a
//!    static pool, claimed on its first allocation (CAS on the block's
//!    `in_use`); as the only writer it adds with a plain load and store (no
//!    locked instruction). Threads that find the pool exhausted, and
//!    allocations made while a thread claims or after its thread-locals
//!    were destroyed, add with `fetch_add` to one shared block, on the
//!    cold path: the fast path is one thread-local load, a null test and
//!    two plain adds. A thread's
//!    block is given back when it exits (a thread-local destructor) and
//!    keeps its counts: [`stats`] sums every block.
//! 2. sample (allocations): the profiler's countdown (`countdown -= size;
//!    if countdown < 0`), as for GC objects; a sampled block's address goes
//!    to the profiler's live set.
//! 3. frees: the profiler keeps a counting filter of the 4 KiB pages that
//!    hold sampled blocks; one load of it proves nearly every block
//!    unsampled, and only the others
//!    (sampled ones and rare false positives) look the address up under the
//!    profiler's lock. The free is recorded *before* the block goes back to
//!    the inner allocator, so its address cannot have been reused yet.
//!
//! Re-entrancy: the profiler allocates (its tables, stack capture, the
//! thread-local destructor registration). It sets a thread-local busy flag
//! around that work; while it is set the allocator neither samples nor
//! looks frees up, and the claim path uses the shared block, so nothing
//! recurses and nothing waits on a lock its own thread holds.
//!
//! Shared fields: the pool blocks (each written by its owner thread only,
//! `Relaxed` loads and stores, or by anyone with `fetch_add` for the shared
//! block; `in_use` handed over with Release/Acquire); the thread-locals are
//! const-initialised, and the one with a destructor is touched only on the
//! claim path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use crate::profile;

/// A global allocator that counts and samples what `A` allocates.
///
/// ```no_run
/// use tricolor::alloc::Tracking;
///
/// #[global_allocator]
/// static A: Tracking = Tracking::new();
///
/// let v: Vec<u64> = (0..1000).collect();
/// assert!(tricolor::alloc::stats().mallocs >= 1);
/// let mut f = std::fs::File::create("heap.pb.gz").unwrap();
/// tricolor::profile::write_heap_profile(&mut f).unwrap();
/// # drop(v);
/// ```
#[derive(Debug, Default)]
pub struct Tracking<A: GlobalAlloc = System> {
    inner: A,
}

impl Tracking<System> {
    /// A tracking allocator over [`System`].
    ///
    /// ```
    /// static A: tricolor::alloc::Tracking = tricolor::alloc::Tracking::new();
    /// ```
    pub const fn new() -> Self {
        Tracking { inner: System }
    }
}

impl<A: GlobalAlloc> Tracking<A> {
    /// A tracking allocator over `inner`.
    ///
    /// ```
    /// use std::alloc::System;
    /// static A: tricolor::alloc::Tracking<System> = tricolor::alloc::Tracking::wrap(System);
    /// ```
    pub const fn wrap(inner: A) -> Self {
        Tracking { inner }
    }
}

/// One thread's counters.
#[repr(align(64))]
struct Block {
    mallocs: AtomicU64,
    frees: AtomicU64,
    alloc_bytes: AtomicU64,
    freed_bytes: AtomicU64,
    in_use: AtomicBool,
}

impl Block {
    const fn new() -> Self {
        Block {
            mallocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            alloc_bytes: AtomicU64::new(0),
            freed_bytes: AtomicU64::new(0),
            in_use: AtomicBool::new(false),
        }
    }
}

const POOL_BLOCKS: usize = 256;
static POOL: [Block; POOL_BLOCKS] = [const { Block::new() }; POOL_BLOCKS];
static SHARED: Block = Block::new();

struct ThreadCounters {
    /// This thread's own block (it is the only writer); `None` until it is
    /// claimed, and while `shared` is set.
    block: Cell<Option<&'static Block>>,
    /// Count on the shared block: the thread is claiming its block, found
    /// the pool exhausted, or is exiting.
    shared: Cell<bool>,
}

/// Gives the thread's block back when the thread exits.
struct ReleaseBlock;

impl Drop for ReleaseBlock {
    fn drop(&mut self) {
        let _ = THREAD.try_with(|t| {
            t.shared.set(true);
            if let Some(b) = t.block.take() {
                b.in_use.store(false, Release);
            }
        });
    }
}

thread_local! {
    static THREAD: ThreadCounters = const {
        ThreadCounters { block: Cell::new(None), shared: Cell::new(false) }
    };
    static RELEASE: ReleaseBlock = const { ReleaseBlock };
}

/// Counts on the shared block, or claims this thread's block and counts
/// there (the first allocation or free of a thread).
#[cold]
#[inline(never)]
fn count_slow(t: &ThreadCounters, malloc: bool, size: usize) {
    if !t.shared.get() {
        t.shared.set(true);
        // Registers the destructor (which may allocate: that allocation
        // finds `shared` set and counts on the shared block).
        if RELEASE.try_with(|_| ()).is_ok() {
            if let Some(b) = POOL.iter().find(|b| {
                b.in_use
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            }) {
                t.block.set(Some(b));
                t.shared.set(false);
                return add(b, malloc, size, true);
            }
        }
        // The pool is exhausted (or the thread is exiting): this thread
        // counts on the shared block from now on.
    }
    add(&SHARED, malloc, size, false);
}

#[inline(always)]
fn add(b: &Block, malloc: bool, size: usize, exclusive: bool) {
    let (n, bytes) = if malloc {
        (&b.mallocs, &b.alloc_bytes)
    } else {
        (&b.frees, &b.freed_bytes)
    };
    if exclusive {
        n.store(n.load(Relaxed).wrapping_add(1), Relaxed);
        bytes.store(bytes.load(Relaxed).wrapping_add(size as u64), Relaxed);
    } else {
        n.fetch_add(1, Relaxed);
        bytes.fetch_add(size as u64, Relaxed);
    }
}

#[inline(always)]
fn count(malloc: bool, size: usize) {
    let _ = THREAD.try_with(|t| match t.block.get() {
        Some(b) => add(b, malloc, size, true),
        None => count_slow(t, malloc, size),
    });
}

#[inline(always)]
fn allocated(p: *mut u8, size: usize) {
    if p.is_null() {
        return;
    }
    count(true, size);
    if profile::tick(size) {
        profile::tracked_alloc(p as usize, size);
    }
}

#[inline(always)]
fn freeing(p: *mut u8, size: usize) {
    count(false, size);
    if profile::block_maybe_sampled(p as usize) {
        freeing_sampled(p);
    }
}

#[cold]
#[inline(never)]
fn freeing_sampled(p: *mut u8) {
    let busy = profile::LOCAL.try_with(|l| l.busy.get()).unwrap_or(true);
    if !busy {
        profile::tracked_free(p as usize);
    }
}

// SAFETY: every method forwards to `A` with the caller's arguments and
// returns its result unchanged, so `A`'s guarantees are the caller's; the
// bookkeeping around the calls neither touches the blocks nor unwinds.
//
// Each method is one call to an out-of-line function (`#[inline(never)]`):
// the allocation shims that the compiler inlines into every caller stay as
// small as a plain `System` call, so wrapping the allocator does not change
// how the program around it is optimised (measured: with the bookkeeping
// inlined, the benchmark's own B-tree code lost its inlining and ran 20%
// slower, with no bookkeeping at all).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracking<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `A::alloc`'s.
        unsafe { tracked_alloc(&self.inner, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `A::alloc_zeroed`'s.
        unsafe { tracked_alloc_zeroed(&self.inner, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `A::dealloc`'s.
        unsafe { tracked_dealloc(&self.inner, ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `A::realloc`'s.
        unsafe { tracked_realloc(&self.inner, ptr, layout, new_size) }
    }
}

/// [`GlobalAlloc::alloc`] of `inner`, counted and sampled.
///
/// # Safety
/// `A::alloc`'s contract.
#[inline(never)]
unsafe fn tracked_alloc<A: GlobalAlloc>(inner: &A, layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract is `A::alloc`'s.
    let p = unsafe { inner.alloc(layout) };
    allocated(p, layout.size());
    p
}

/// [`GlobalAlloc::alloc_zeroed`] of `inner`, counted and sampled.
///
/// # Safety
/// `A::alloc_zeroed`'s contract.
#[inline(never)]
unsafe fn tracked_alloc_zeroed<A: GlobalAlloc>(inner: &A, layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract is `A::alloc_zeroed`'s.
    let p = unsafe { inner.alloc_zeroed(layout) };
    allocated(p, layout.size());
    p
}

/// [`GlobalAlloc::dealloc`] of `inner`, counted; the free of a sampled
/// block is recorded first.
///
/// # Safety
/// `A::dealloc`'s contract.
#[inline(never)]
unsafe fn tracked_dealloc<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout) {
    freeing(ptr, layout.size());
    // SAFETY: the caller's contract is `A::dealloc`'s.
    unsafe { inner.dealloc(ptr, layout) }
}

/// [`GlobalAlloc::realloc`] of `inner`: counted as a free and an
/// allocation (Go has no realloc). The free is recorded first, while `ptr`
/// is still ours; if the inner realloc fails the old block is counted freed
/// though it lives on.
///
/// # Safety
/// `A::realloc`'s contract.
#[inline(never)]
unsafe fn tracked_realloc<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    freeing(ptr, layout.size());
    // SAFETY: the caller's contract is `A::realloc`'s.
    let p = unsafe { inner.realloc(ptr, layout, new_size) };
    allocated(p, new_size);
    p
}

/// Live tracked bytes as of the last [`tracked_live`] refresh, for the
/// memory limit (see there).
static LIVE_SEEN: AtomicU64 = AtomicU64::new(0);

/// Bytes the [`Tracking`] allocator counts live (0 when it is not the
/// global allocator). The soft memory limit covers them: like Go's
/// `GOMEMLIMIT`, which counts all the memory its runtime manages, the limit
/// then bounds the GC heap plus the program's other Rust allocations.
///
/// Summing every thread's counters reads a few hundred cache lines, so with
/// `refresh == false` this returns the sum last taken (the collector
/// refreshes it at the end of every cycle, the allocation path when it is
/// near the limit).
pub(crate) fn tracked_live(refresh: bool) -> u64 {
    if refresh {
        LIVE_SEEN.store(stats().alloc_bytes, Relaxed);
    }
    LIVE_SEEN.load(Relaxed)
}

/// The MemStats subset a [`Tracking`] allocator keeps (Go's field names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingStats {
    /// Allocations made (`Mallocs`).
    pub mallocs: u64,
    /// Allocations freed (`Frees`).
    pub frees: u64,
    /// Bytes of allocated blocks not yet freed (`Alloc`, `HeapAlloc`).
    pub alloc_bytes: u64,
    /// Bytes allocated in all, freed or not (`TotalAlloc`).
    pub total_alloc: u64,
    /// Blocks not yet freed (`HeapObjects`).
    pub heap_objects: u64,
}

/// The counts of the [`Tracking`] global allocator (all zero when it is not
/// the global allocator). Exact for the calls that have returned.
///
/// ```
/// let s = tricolor::alloc::stats();
/// assert_eq!(s.heap_objects, s.mallocs.saturating_sub(s.frees));
/// ```
pub fn stats() -> TrackingStats {
    let (mut m, mut f, mut ab, mut fb) = (0u64, 0u64, 0u64, 0u64);
    for b in POOL.iter().chain(std::iter::once(&SHARED)) {
        m = m.wrapping_add(b.mallocs.load(Relaxed));
        f = f.wrapping_add(b.frees.load(Relaxed));
        ab = ab.wrapping_add(b.alloc_bytes.load(Relaxed));
        fb = fb.wrapping_add(b.freed_bytes.load(Relaxed));
    }
    TrackingStats {
        mallocs: m,
        frees: f,
        alloc_bytes: ab.saturating_sub(fb),
        total_alloc: ab,
        heap_objects: m.saturating_sub(f),
    }
}
