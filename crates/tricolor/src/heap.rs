//! The page heap: arenas, spans and their metadata.
//!
//! What: memory comes from the OS in 64 MiB aligned arenas ([`crate::sys`]).
//! An arena is cut into 256 spans of 256 KiB. The first few spans of every
//! arena hold the metadata ([`SpanMeta`]) of all its spans, so the metadata of
//! the span holding address `p` is `arena(p).meta[(p >> 18) & 255]`: two
//! masks and a shift, no table lookup (Go uses a two-level arena index here;
//! fixed-size aligned spans let us skip it).
//!
//! A span is free, small (slots of one span class) or large (one object, a
//! run of whole spans; its continuation spans are marked so). Each span's
//! metadata carries two bitmaps, one bit per slot:
//! - `alloc_bits`: slots allocated as of the span's last sweep, plus the
//!   words a thread cache has committed since (see `cache`);
//! - `mark_bits`: slots marked in the current cycle.
//!
//! Sweeping a span is a word scan: `dead = alloc & !mark`, then
//! `alloc = mark; mark = 0` (Go's `gcmarkBits` becoming `allocBits`).
//!
//! Invariants and who writes what:
//! - `kind`, `spanclass`, `elem_size`, `nelems`, `magic`, `nspans` are written
//!   only under the page-heap lock while the span is not reachable by any
//!   other thread (being handed out or freed), then read freely.
//! - `alloc_bits` are written by the thread cache that holds the span (it
//!   holds it exclusively), and by the sweeper that popped it from its
//!   unswept set (also exclusively, `sweep.rs`).
//! - `mark_bits` are set during marking by the collector and by mutators
//!   (barriers, black allocation) with `fetch_or`, and cleared by the
//!   sweeper; sweeping starts only after marking has ended (the cycle's
//!   stop), and the next marking only after every span is swept.
//! - `has_drop` is set by the holding thread cache when it allocates a value
//!   that needs `Drop`; a span handed out fresh starts without it.
//! - Free spans keep both bitmaps zero (INV-SWEEP leaves `mark` zeroed, and
//!   a span is zeroed when it is handed out).
//!
//! Free spans and the OS (the scavenger, `scavenger.rs`): a free span is
//! either *retained* (its pages may be resident) or *released* (its pages
//! were given back with `madvise(MADV_DONTNEED)`, or never touched: the
//! object spans of a fresh arena start released, as Go's newly grown heap
//! starts scavenged). Taking a span makes it unreleased again (its pages
//! fault back in, zeroed, when used). Only object spans are ever released;
//! the metadata spans never are, so `SpanMeta` of a released span stays
//! valid. The [`PageHeap`] fields (free and released bitmaps, their counts,
//! the spans in flight to the OS) are all guarded by [`PAGES`]; the
//! invariants between them are listed on [`PageHeap`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::sizeclass::{div_magic, objects_per_span, CLASS_SIZES, SPAN_BYTES, SPAN_SHIFT};
use crate::sys::{map_arena, ARENA_BYTES};

/// Spans per arena.
pub(crate) const SPANS_PER_ARENA: usize = ARENA_BYTES / SPAN_BYTES;
/// Words in one span bitmap: one bit per 16-byte slot, the smallest class.
pub(crate) const BITMAP_WORDS: usize = SPAN_BYTES / 16 / 64;
/// Spans at the start of each arena that hold its metadata.
pub(crate) const META_SPANS: usize =
    (SPANS_PER_ARENA * std::mem::size_of::<SpanMeta>()).div_ceil(SPAN_BYTES);
/// Spans of an arena that can hold objects.
pub(crate) const USABLE_SPANS: usize = SPANS_PER_ARENA - META_SPANS;

/// What a span holds.
pub(crate) mod kind {
    /// In the page heap, free.
    pub const FREE: u8 = 0;
    /// Slots of one span class.
    pub const SMALL: u8 = 1;
    /// The first span of one large object.
    pub const LARGE: u8 = 2;
    /// A later span of a large object.
    pub const LARGE_CONT: u8 = 3;
}

/// Metadata of one span; lives in its arena's metadata spans.
#[repr(C, align(64))]
pub(crate) struct SpanMeta {
    pub kind: AtomicU8,
    /// `class << 1 | noscan` for small spans; `noscan` bit for large ones.
    pub spanclass: AtomicU8,
    /// Some slot may hold a value whose type needs `Drop`.
    pub has_drop: AtomicBool,
    /// Slot size (small) or object bytes (large).
    pub elem_size: AtomicU32,
    pub nelems: AtomicU32,
    /// Length of a large object's run, in spans.
    pub nspans: AtomicU32,
    /// divMagic of `elem_size` (0 for large spans: one slot).
    pub magic: AtomicU64,
    pub alloc_bits: [AtomicU64; BITMAP_WORDS],
    pub mark_bits: [AtomicU64; BITMAP_WORDS],
}

impl SpanMeta {
    /// Span start address of this metadata's span.
    #[inline]
    pub(crate) fn start(&self) -> usize {
        let me = self as *const SpanMeta as usize;
        let arena = me & !(ARENA_BYTES - 1);
        let idx = (me - arena) / std::mem::size_of::<SpanMeta>();
        arena + idx * SPAN_BYTES
    }

    #[inline]
    pub(crate) fn noscan(&self) -> bool {
        self.spanclass.load(Relaxed) & 1 != 0
    }

    /// Words of the bitmaps in use.
    #[inline]
    pub(crate) fn nwords(&self) -> usize {
        (self.nelems.load(Relaxed) as usize).div_ceil(64)
    }

    /// Mask of valid slots in bitmap word `w`.
    #[inline]
    pub(crate) fn valid_mask(&self, w: usize) -> u64 {
        let n = self.nelems.load(Relaxed) as usize;
        let left = n - w * 64;
        if left >= 64 {
            !0
        } else {
            (1u64 << left) - 1
        }
    }

    /// Slots currently committed as allocated.
    pub(crate) fn allocated(&self) -> usize {
        (0..self.nwords())
            .map(|w| self.alloc_bits[w].load(Relaxed).count_ones() as usize)
            .sum()
    }
}

/// The metadata of the span holding `addr` (an address inside the heap).
///
/// # Safety
/// `addr` must lie in a span of a mapped arena (INV-HEAPPTR: every pointer
/// the collector follows is a value pointer handed out by the allocator).
#[inline(always)]
pub(crate) unsafe fn meta_of(addr: usize) -> &'static SpanMeta {
    let arena = addr & !(ARENA_BYTES - 1);
    let idx = (addr >> SPAN_SHIFT) & (SPANS_PER_ARENA - 1);
    // SAFETY: by the caller's contract the arena is mapped; its first
    // META_SPANS spans hold SPANS_PER_ARENA initialised (zeroed-is-valid)
    // SpanMeta records that are never unmapped.
    unsafe { &*(arena as *const SpanMeta).add(idx) }
}

/// Slot index of `addr` in its small span (0 for a large span).
#[inline(always)]
pub(crate) fn slot_index(meta: &SpanMeta, addr: usize) -> usize {
    let off = (addr & (SPAN_BYTES - 1)) as u64;
    ((off * meta.magic.load(Relaxed)) >> 32) as usize
}

/// Words in one per-arena span bitmap.
const ARENA_WORDS: usize = SPANS_PER_ARENA / 64;

/// Free spans, arenas mapped. Guarded by [`PAGES`].
///
/// Invariants (`give_back` checks the first two in debug builds):
/// - `released[a] & !free[a] == 0`: a released span is in the free set (a
///   span being handed out or freed is in neither);
/// - `released_spans` = set bits of `released`;
/// - `free_spans` = set bits of `free` + `in_flight`: spans a releaser took
///   out of the free set are still free (counted in `heap_idle`), only not
///   available to the allocator until they come back;
/// - `alloc_waiting > 0` only while an allocating thread waits in
///   [`Pages::take`] for in-flight spans; no releaser takes spans then.
pub(crate) struct PageHeap {
    arenas: Vec<usize>,
    /// Per arena: bit i set = span i free and available (metadata spans never are).
    free: Vec<[u64; ARENA_WORDS]>,
    /// Per arena: bit i set = span i free and released to the OS.
    released: Vec<[u64; ARENA_WORDS]>,
    /// Free spans, in the free set or in flight.
    free_spans: usize,
    /// Free spans whose pages are released.
    released_spans: usize,
    /// Free spans taken out of the free set by a releaser (madvise pending).
    in_flight: usize,
    /// Allocating threads waiting for in-flight spans to come back.
    alloc_waiting: usize,
}

/// The page heap and the condition variable on which allocating threads
/// and releasers wait for each other (see [`Pages::take`]).
pub(crate) struct Pages {
    heap: Mutex<PageHeap>,
    changed: Condvar,
}

/// The page heap. Lock order: collector → thread registry → `PAGES` /
/// central lists (never both central and `PAGES` held while taking the other
/// in the opposite order: central code releases its lock before calling here).
/// The scavenger's locks come before `PAGES` too (it never holds `PAGES`
/// while taking one of them).
pub(crate) static PAGES: Pages = Pages::new();

/// Page-heap figures, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageFigures {
    /// Object spans mapped (Go's `HeapSys`).
    pub sys: u64,
    /// Free spans, released or not, in flight or not (Go's `HeapIdle`).
    pub free: u64,
    /// Free spans released to the OS (Go's `HeapReleased`).
    pub released: u64,
    /// Free spans a releaser could take now: available and not released.
    pub releasable: u64,
}

/// Error from the page heap.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The OS refused memory.
    Os(std::io::Error),
    /// The request is larger than an arena can hold.
    TooLarge,
}

impl PageHeap {
    const fn new() -> Self {
        PageHeap {
            arenas: Vec::new(),
            free: Vec::new(),
            released: Vec::new(),
            free_spans: 0,
            released_spans: 0,
            in_flight: 0,
            alloc_waiting: 0,
        }
    }

    /// Arenas mapped so far.
    pub(crate) fn arenas(&self) -> &[usize] {
        &self.arenas
    }

    /// Bytes of spans mapped for objects (Go's `HeapSys`).
    pub(crate) fn sys_bytes(&self) -> u64 {
        (self.arenas.len() * USABLE_SPANS * SPAN_BYTES) as u64
    }

    fn figures(&self) -> PageFigures {
        let span = SPAN_BYTES as u64;
        PageFigures {
            sys: self.sys_bytes(),
            free: self.free_spans as u64 * span,
            released: self.released_spans as u64 * span,
            releasable: (self.free_spans - self.in_flight - self.released_spans) as u64 * span,
        }
    }

    /// Index of the arena starting at `arena`.
    fn arena_index(&self, arena: usize) -> usize {
        self.arenas
            .iter()
            .position(|&x| x == arena)
            .expect("span of an unknown arena")
    }

    /// Finds `n` contiguous available spans (first fit, arenas in mapping
    /// order) and removes them from the free set; they become unreleased.
    fn take_run(&mut self, n: usize) -> Option<usize> {
        for a in 0..self.arenas.len() {
            if let Some(i) = find_run(&self.free[a], n) {
                for s in i..i + n {
                    let bit = 1u64 << (s % 64);
                    self.free[a][s / 64] &= !bit;
                    if self.released[a][s / 64] & bit != 0 {
                        self.released[a][s / 64] &= !bit;
                        self.released_spans -= 1;
                    }
                }
                self.free_spans -= n;
                return Some(self.arenas[a] + i * SPAN_BYTES);
            }
        }
        None
    }

    /// Maps one more arena; its object spans are free and released (never
    /// touched: they cost no physical memory until used).
    fn grow(&mut self) -> Result<(), PageError> {
        let arena = map_arena().map_err(PageError::Os)?;
        let mut bits = [0u64; ARENA_WORDS];
        for s in META_SPANS..SPANS_PER_ARENA {
            bits[s / 64] |= 1 << (s % 64);
        }
        self.arenas.push(arena);
        self.free.push(bits);
        self.released.push(bits);
        self.free_spans += USABLE_SPANS;
        self.released_spans += USABLE_SPANS;
        Ok(())
    }

    fn give_back(&mut self, start: usize, n: usize) {
        let arena = start & !(ARENA_BYTES - 1);
        let a = self.arena_index(arena);
        let i = (start - arena) / SPAN_BYTES;
        for s in i..i + n {
            debug_assert_eq!(self.free[a][s / 64] & (1 << (s % 64)), 0, "double free");
            debug_assert_eq!(self.released[a][s / 64] & (1 << (s % 64)), 0);
            self.free[a][s / 64] |= 1 << (s % 64);
        }
        self.free_spans += n;
    }

    /// The lowest-priority run of available, unreleased spans, at most
    /// `max` long: the allocator takes first fit in arena order, lowest span
    /// first, so the last arena's highest spans are the last it would reuse.
    /// Returns (arena index, first span index, length).
    fn find_releasable(&self, max: usize) -> Option<(usize, usize, usize)> {
        let cand = |a: usize, s: usize| {
            (self.free[a][s / 64] & !self.released[a][s / 64]) & (1 << (s % 64)) != 0
        };
        for a in (0..self.arenas.len()).rev() {
            for w in (0..ARENA_WORDS).rev() {
                let c = self.free[a][w] & !self.released[a][w];
                if c == 0 {
                    continue;
                }
                let top = w * 64 + 63 - c.leading_zeros() as usize;
                let mut lo = top;
                while lo > 0 && top - lo + 1 < max && cand(a, lo - 1) {
                    lo -= 1;
                }
                return Some((a, lo, top - lo + 1));
            }
        }
        None
    }
}

impl Pages {
    pub(crate) const fn new() -> Self {
        Pages {
            heap: Mutex::new(PageHeap::new()),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PageHeap> {
        // A panic never happens while this lock is held (no user code runs
        // under it), but recover from poisoning rather than cascade.
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, PageHeap>) -> MutexGuard<'a, PageHeap> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Current figures, in bytes.
    pub(crate) fn figures(&self) -> PageFigures {
        self.lock().figures()
    }

    /// Finds `n` contiguous free spans, mapping an arena if needed, and
    /// removes them from the free set. Returns the first span's address.
    ///
    /// If none is available but a releaser has spans in flight, waits for
    /// them instead of growing the heap (they may be the run we need), and
    /// holds releasers off meanwhile: the wait is at most one madvise of
    /// one chunk (`scavenger::MAX_CHUNK` spans).
    pub(crate) fn take(&self, n: usize) -> Result<usize, PageError> {
        if n > USABLE_SPANS {
            return Err(PageError::TooLarge);
        }
        let mut p = self.lock();
        let mut waiting = false;
        let r = loop {
            if let Some(start) = p.take_run(n) {
                break Ok(start);
            }
            if p.in_flight > 0 {
                if !waiting {
                    p.alloc_waiting += 1;
                    waiting = true;
                }
                p = self.wait(p);
                continue;
            }
            if let Err(e) = p.grow() {
                break Err(e);
            }
        };
        if waiting {
            p.alloc_waiting -= 1;
            if p.alloc_waiting == 0 {
                self.changed.notify_all();
            }
        }
        r
    }

    /// Returns a span (or a run) to the free set, unreleased.
    pub(crate) fn give_back(&self, start: usize, n: usize) {
        self.lock().give_back(start, n);
    }

    /// Takes the lowest-priority run of at most `max` free, unreleased spans
    /// out of the free set for releasing (they stay counted as free, in
    /// flight). Returns (start address, spans), or `None` if there is none.
    /// Waits while an allocating thread waits for in-flight spans.
    pub(crate) fn take_for_release(&self, max: usize) -> Option<(usize, usize)> {
        debug_assert!(max > 0);
        let mut p = self.lock();
        while p.alloc_waiting > 0 {
            p = self.wait(p);
        }
        let (a, i, n) = p.find_releasable(max)?;
        for s in i..i + n {
            p.free[a][s / 64] &= !(1 << (s % 64));
        }
        p.in_flight += n;
        Some((p.arenas[a] + i * SPAN_BYTES, n))
    }

    /// Puts back spans taken with [`take_for_release`](Self::take_for_release),
    /// marked released if `released` (the madvise succeeded).
    pub(crate) fn return_released(&self, start: usize, n: usize, released: bool) {
        let mut p = self.lock();
        let arena = start & !(ARENA_BYTES - 1);
        let a = p.arena_index(arena);
        let i = (start - arena) / SPAN_BYTES;
        for s in i..i + n {
            p.free[a][s / 64] |= 1 << (s % 64);
            if released {
                p.released[a][s / 64] |= 1 << (s % 64);
            }
        }
        if released {
            p.released_spans += n;
        }
        p.in_flight -= n;
        drop(p);
        self.changed.notify_all();
    }
}

/// First index of a run of `n` set bits.
fn find_run(bits: &[u64; ARENA_WORDS], n: usize) -> Option<usize> {
    let mut run = 0;
    for s in 0..SPANS_PER_ARENA {
        if bits[s / 64] & (1 << (s % 64)) != 0 {
            run += 1;
            if run == n {
                return Some(s + 1 - n);
            }
        } else {
            run = 0;
        }
    }
    None
}

fn lock_pages() -> MutexGuard<'static, PageHeap> {
    PAGES.lock()
}

/// Takes a fresh span for span class `sc` from the page heap.
pub(crate) fn new_small_span(sc: usize) -> Result<&'static SpanMeta, PageError> {
    let start = PAGES.take(1)?;
    // SAFETY: `start` is the start of a span of a mapped arena.
    let m = unsafe { meta_of(start) };
    let class = sc >> 1;
    let size = CLASS_SIZES[class] as usize;
    for w in 0..BITMAP_WORDS {
        m.alloc_bits[w].store(0, Relaxed);
        m.mark_bits[w].store(0, Relaxed);
    }
    m.spanclass.store(sc as u8, Relaxed);
    m.elem_size.store(size as u32, Relaxed);
    m.nelems.store(objects_per_span(class) as u32, Relaxed);
    m.magic.store(div_magic(size), Relaxed);
    m.nspans.store(1, Relaxed);
    m.has_drop.store(false, Relaxed);
    m.kind.store(kind::SMALL, Relaxed);
    Ok(m)
}

/// Takes a run of spans for one large object of `bytes` (slot bytes
/// including header and alignment padding).
pub(crate) fn new_large_span(bytes: usize, noscan: bool) -> Result<&'static SpanMeta, PageError> {
    let n = bytes.div_ceil(SPAN_BYTES);
    let start = PAGES.take(n)?;
    // SAFETY: `start` is the start of a span of a mapped arena.
    let m = unsafe { meta_of(start) };
    for s in 1..n {
        // SAFETY: the run lies inside one arena (take() never crosses arenas).
        unsafe { meta_of(start + s * SPAN_BYTES) }
            .kind
            .store(kind::LARGE_CONT, Relaxed);
    }
    m.alloc_bits[0].store(1, Relaxed);
    m.mark_bits[0].store(0, Relaxed);
    m.spanclass.store(noscan as u8, Relaxed);
    m.elem_size.store(bytes as u32, Relaxed);
    m.nelems.store(1, Relaxed);
    m.magic.store(0, Relaxed);
    m.nspans.store(n as u32, Relaxed);
    m.has_drop.store(false, Relaxed);
    m.kind.store(kind::LARGE, Relaxed);
    Ok(m)
}

/// Returns a span (or a large object's run) to the page heap.
pub(crate) fn free_span(m: &SpanMeta) {
    let n = m.nspans.load(Relaxed) as usize;
    let start = m.start();
    for w in 0..m.nwords().max(1) {
        m.alloc_bits[w].store(0, Relaxed);
        m.mark_bits[w].store(0, Relaxed);
    }
    for s in 0..n {
        // SAFETY: the run lies inside one mapped arena.
        unsafe { meta_of(start + s * SPAN_BYTES) }
            .kind
            .store(kind::FREE, Relaxed);
    }
    PAGES.give_back(start, n);
}

/// Page-heap figures for statistics (`MemStats`).
pub(crate) fn page_figures() -> PageFigures {
    PAGES.figures()
}

/// Page-heap figures for the pacer's memory accounting (Go's `mappedReady`
/// and `heapFree`): (object span bytes mapped and not released to the OS,
/// free span bytes not released). Released spans cost no memory, so they
/// count against neither the memory limit nor the heap's future growth.
pub(crate) fn page_stats() -> (u64, u64) {
    let f = PAGES.figures();
    (f.sys - f.released, f.free - f.released)
}

/// Memory the heap maps and has not released to the OS: object spans not
/// released plus metadata (what the memory limit limits; `sys -
/// heap_released` in `MemStats`).
pub(crate) fn mapped_bytes() -> u64 {
    let p = lock_pages();
    let f = p.figures();
    f.sys - f.released + meta_of_arenas(p.arenas().len())
}

/// Metadata bytes mapped (for `sys`).
pub(crate) fn meta_bytes() -> u64 {
    meta_of_arenas(lock_pages().arenas().len())
}

/// Metadata bytes of `arenas` arenas.
fn meta_of_arenas(arenas: usize) -> u64 {
    (arenas * META_SPANS * SPAN_BYTES) as u64
}
