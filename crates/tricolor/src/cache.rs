//! Thread caches: the allocation fast path.
//!
//! What: each registered thread owns one [`ThreadCache`] with, per span
//! class, the span it is carving slots from (Go's `mcache`).
//!
//! Algorithm (Go's `nextFreeFast` / `allocCache`):
//! 1. Fast path: the cache keeps the free bits of one 64-slot word of the
//!    span's `alloc_bits` inverted in `bits`; a slot is taken with
//!    `trailing_zeros` and `bits &= bits - 1`. No atomics, nothing shared.
//! 2. Slow path (at most once per 64 slots): commit the exhausted word into
//!    the span's `alloc_bits` and statistics (global and per size class),
//!    load the next word with free slots; when the span is exhausted, file
//!    it as full and take a swept partial span of the class, or sweep
//!    unswept ones until one has room (`sweep.rs`), or, at the memory limit
//!    while the collector sweeps spans of the class that hold values with a
//!    `Drop`, wait for them (`sweep::wait_for_sweeper`, bounded), or take a
//!    fresh span from the page heap. Taking a span counts all its free bytes as live
//!    for pacing (Go does the same), and sets `GC_PENDING` when the heap
//!    goal is reached.
//! 3. Release (at each cycle's stop, and when the thread exits): commit the
//!    partial word and give every span back to its span set, so that no
//!    cache holds a span when a new sweep generation starts.
//!
//! Invariants: a span is held by at most one cache (INV-CACHE); words before
//! `word` are committed; the bits of word `word` taken so far are
//! `orig & !bits`, not yet committed.
//!
//! Shared fields: none in the cache itself; it is reached only by its owner
//! thread while pinned, or by the collector while the world is stopped.

use std::sync::atomic::Ordering::Relaxed;

use crate::heap::{self, PageError, SpanMeta};
use crate::pacer;
use crate::sizeclass::{NUM_SPAN_CLASSES, SPAN_BYTES};
use crate::stats::{BY_SIZE, COUNTERS};

/// Why an allocation failed.
#[derive(Debug)]
pub struct AllocError {
    kind: AllocErrorKind,
}

#[derive(Debug)]
enum AllocErrorKind {
    Os(std::io::Error),
    TooLarge(usize),
}

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            AllocErrorKind::Os(e) => {
                write!(f, "tricolor: out of memory: the OS refused to map a 64 MiB arena: {e}")
            }
            AllocErrorKind::TooLarge(n) => write!(
                f,
                "tricolor: an object of {n} bytes is larger than the largest supported object ({} bytes)",
                heap::USABLE_SPANS * SPAN_BYTES
            ),
        }
    }
}

impl std::error::Error for AllocError {}

impl AllocError {
    fn from_page(e: PageError, bytes: usize) -> Self {
        AllocError {
            kind: match e {
                PageError::Os(e) => AllocErrorKind::Os(e),
                PageError::TooLarge => AllocErrorKind::TooLarge(bytes),
            },
        }
    }
}

#[derive(Clone, Copy)]
struct ClassCache {
    span: *const SpanMeta,
    /// Address of slot `word * 64`.
    word_base: usize,
    size: usize,
    word: usize,
    bits: u64,
    orig: u64,
}

const EMPTY: ClassCache = ClassCache {
    span: std::ptr::null(),
    word_base: 0,
    size: 0,
    word: 0,
    bits: 0,
    orig: 0,
};

/// A thread's private spans, one per span class.
pub(crate) struct ThreadCache {
    classes: [ClassCache; NUM_SPAN_CLASSES],
    /// Bytes until the heap profiler's next sample (`profile.rs`); starts at
    /// 0 so that the first allocation seeds it.
    sample_left: i64,
    /// The profiler's per-thread generator state.
    sample_rng: u64,
}

impl ThreadCache {
    pub(crate) const fn new() -> Self {
        ThreadCache {
            classes: [EMPTY; NUM_SPAN_CLASSES],
            sample_left: 0,
            sample_rng: 0,
        }
    }

    /// Takes a slot of span class `sc`; returns the slot's start address.
    #[inline(always)]
    pub(crate) fn alloc_small(&mut self, sc: usize) -> Result<usize, AllocError> {
        let c = &mut self.classes[sc];
        let slot = if c.bits != 0 {
            take(c)
        } else {
            self.alloc_small_slow(sc)?
        };
        // The heap profiler: one subtraction and one branch.
        let size = self.classes[sc].size;
        self.sample_left -= size as i64;
        if self.sample_left < 0 {
            crate::profile::gc_countdown(&mut self.sample_left, &mut self.sample_rng, slot, size);
        }
        Ok(slot)
    }

    #[cold]
    #[inline(never)]
    fn alloc_small_slow(&mut self, sc: usize) -> Result<usize, AllocError> {
        let c = &mut self.classes[sc];
        if !c.span.is_null() {
            // SAFETY: a held span's metadata is valid while held (INV-CACHE).
            let m = unsafe { &*c.span };
            commit(c, m);
            if advance(c, m, c.word + 1) {
                return Ok(take(c));
            }
            // Exhausted: the span is full.
            crate::sweep::release(sc, m, false);
            *c = EMPTY;
        }
        loop {
            let m = refill(sc)?;
            c.span = m;
            c.size = m.elem_size.load(Relaxed) as usize;
            if advance(c, m, 0) {
                return Ok(take(c));
            }
            // A listed span with no free slot cannot happen (the sweeper
            // lists only partial spans); be safe and drop it.
            *c = EMPTY;
        }
    }

    /// Commits the partial word of every held span and gives the spans back
    /// to their span sets (at each cycle's stop, and when the thread exits);
    /// returns their unused bytes to the pacer.
    pub(crate) fn release(&mut self) {
        for (sc, c) in self.classes.iter_mut().enumerate() {
            if c.span.is_null() {
                continue;
            }
            // SAFETY: held span (INV-CACHE).
            let m = unsafe { &*c.span };
            commit(c, m);
            let free = m.nelems.load(Relaxed) as usize - m.allocated();
            pacer::unaccount((free * c.size) as u64);
            crate::sweep::release(sc, m, free > 0);
            *c = EMPTY;
        }
    }
}

/// Takes the lowest free slot of the current word (which has one).
#[inline(always)]
fn take(c: &mut ClassCache) -> usize {
    let i = c.bits.trailing_zeros() as usize;
    c.bits &= c.bits - 1;
    c.word_base + i * c.size
}

/// Commits the slots taken from the current word.
#[inline]
fn commit(c: &mut ClassCache, m: &SpanMeta) {
    let taken = c.orig & !c.bits;
    if taken != 0 {
        m.alloc_bits[c.word].fetch_or(taken, Relaxed);
        let n = taken.count_ones() as u64;
        COUNTERS.mallocs.fetch_add(n, Relaxed);
        COUNTERS.alloc_bytes.fetch_add(n * c.size as u64, Relaxed);
        let class = m.spanclass.load(Relaxed) as usize >> 1;
        BY_SIZE.mallocs[class].fetch_add(n, Relaxed);
    }
    c.orig = c.bits;
}

/// Loads the first word at or after `from` with free slots; false if none.
#[inline]
fn advance(c: &mut ClassCache, m: &SpanMeta, from: usize) -> bool {
    let nwords = m.nwords();
    for w in from..nwords {
        let free = !m.alloc_bits[w].load(Relaxed) & m.valid_mask(w);
        if free != 0 {
            c.word = w;
            c.bits = free;
            c.orig = free;
            c.word_base = m.start() + w * 64 * c.size;
            return true;
        }
    }
    false
}

/// A span for class `sc`: a swept partial one, one this thread sweeps, or a
/// fresh one. Popping a span from a set makes this cache its owner (INV-CACHE).
fn refill(sc: usize) -> Result<&'static SpanMeta, AllocError> {
    use crate::sweep::{self, AllocSweep};
    let m = match sweep::take_partial(sc)
        .or_else(|| match sweep::sweep_for_alloc(sc) {
            AllocSweep::Found(m) => Some(m),
            AllocSweep::Worked | AllocSweep::Empty => None,
        })
        .or_else(|| sweep::wait_for_sweeper(sc, pacer::at_memory_limit))
    {
        Some(m) => m,
        None => heap::new_small_span(sc).map_err(|e| AllocError::from_page(e, 0))?,
    };
    let free = m.nelems.load(Relaxed) as usize - m.allocated();
    pacer::account((free * m.elem_size.load(Relaxed) as usize) as u64);
    Ok(m)
}

/// Allocates a large object of `bytes` (slot bytes); returns its slot start.
#[cold]
pub(crate) fn alloc_large(bytes: usize, noscan: bool) -> Result<usize, AllocError> {
    let m = heap::new_large_span(bytes, noscan).map_err(|e| AllocError::from_page(e, bytes))?;
    crate::sweep::add_large(m);
    crate::profile::gc_large(m.start(), bytes);
    COUNTERS.mallocs.fetch_add(1, Relaxed);
    COUNTERS.alloc_bytes.fetch_add(bytes as u64, Relaxed);
    pacer::account(bytes as u64);
    Ok(m.start())
}
