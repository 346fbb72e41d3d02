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
//!   holds it exclusively), and by the collector while the world is stopped.
//! - `mark_bits` are written by the collector (marking) and the sweeper, both
//!   while the world is stopped in this first collector.
//! - `has_drop` is set by the holding thread cache when it allocates a value
//!   that needs `Drop`, and cleared by the sweeper.
//! - Free spans keep both bitmaps zero (INV-SWEEP leaves `mark` zeroed, and
//!   a span is zeroed when it is handed out).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use crate::sizeclass::{
    div_magic, objects_per_span, CLASS_SIZES, NUM_SPAN_CLASSES, SPAN_BYTES, SPAN_SHIFT,
};
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

/// Free spans, arenas mapped. Guarded by [`PAGES`].
pub(crate) struct PageHeap {
    arenas: Vec<usize>,
    /// Per arena: bit i set = span i free (metadata spans never are).
    free: Vec<[u64; SPANS_PER_ARENA / 64]>,
    pub(crate) free_spans: usize,
}

/// The page heap lock. Lock order: collector → thread registry → `PAGES` /
/// central lists (never both central and `PAGES` held while taking the other
/// in the opposite order: central code releases its lock before calling here).
pub(crate) static PAGES: Mutex<PageHeap> = Mutex::new(PageHeap {
    arenas: Vec::new(),
    free: Vec::new(),
    free_spans: 0,
});

/// Partially free swept spans per span class, for thread caches to refill from.
pub(crate) static CENTRAL: [Mutex<Vec<usize>>; NUM_SPAN_CLASSES] =
    [const { Mutex::new(Vec::new()) }; NUM_SPAN_CLASSES];

/// Error from the page heap.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The OS refused memory.
    Os(std::io::Error),
    /// The request is larger than an arena can hold.
    TooLarge,
}

impl PageHeap {
    /// Arenas mapped so far.
    pub(crate) fn arenas(&self) -> &[usize] {
        &self.arenas
    }

    /// Bytes of spans mapped for objects (Go's `HeapSys`).
    pub(crate) fn sys_bytes(&self) -> u64 {
        (self.arenas.len() * USABLE_SPANS * SPAN_BYTES) as u64
    }

    /// Finds `n` contiguous free spans, mapping an arena if needed, and
    /// removes them from the free set. Returns the first span's address.
    fn take(&mut self, n: usize) -> Result<usize, PageError> {
        if n > USABLE_SPANS {
            return Err(PageError::TooLarge);
        }
        loop {
            for (a, bits) in self.free.iter_mut().enumerate() {
                if let Some(i) = find_run(bits, n) {
                    for s in i..i + n {
                        bits[s / 64] &= !(1 << (s % 64));
                    }
                    self.free_spans -= n;
                    return Ok(self.arenas[a] + i * SPAN_BYTES);
                }
            }
            let arena = map_arena().map_err(PageError::Os)?;
            let mut bits = [0u64; SPANS_PER_ARENA / 64];
            for s in META_SPANS..SPANS_PER_ARENA {
                bits[s / 64] |= 1 << (s % 64);
            }
            self.arenas.push(arena);
            self.free.push(bits);
            self.free_spans += USABLE_SPANS;
        }
    }

    fn give_back(&mut self, start: usize, n: usize) {
        let arena = start & !(ARENA_BYTES - 1);
        let a = self
            .arenas
            .iter()
            .position(|&x| x == arena)
            .expect("span of an unknown arena");
        let i = (start - arena) / SPAN_BYTES;
        for s in i..i + n {
            self.free[a][s / 64] |= 1 << (s % 64);
        }
        self.free_spans += n;
    }
}

/// First index of a run of `n` set bits.
fn find_run(bits: &[u64; SPANS_PER_ARENA / 64], n: usize) -> Option<usize> {
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

fn lock_pages() -> std::sync::MutexGuard<'static, PageHeap> {
    // A panic never happens while this lock is held (no user code runs under
    // it), but recover from poisoning rather than cascade.
    PAGES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a fresh span for span class `sc` from the page heap.
pub(crate) fn new_small_span(sc: usize) -> Result<&'static SpanMeta, PageError> {
    let start = lock_pages().take(1)?;
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
    let start = lock_pages().take(n)?;
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
    lock_pages().give_back(start, n);
}

/// Calls `f` on the metadata of every in-use span head (small or large),
/// with the page-heap lock released. The caller must have stopped the world
/// (no span changes kind meanwhile).
pub(crate) fn for_each_span(mut f: impl FnMut(&'static SpanMeta)) {
    let arenas: Vec<usize> = lock_pages().arenas().to_vec();
    for arena in arenas {
        for s in META_SPANS..SPANS_PER_ARENA {
            // SAFETY: `arena` is mapped; span `s` is inside it.
            let m = unsafe { meta_of(arena + s * SPAN_BYTES) };
            let k = m.kind.load(Relaxed);
            if k == kind::SMALL || k == kind::LARGE {
                f(m);
            }
        }
    }
}

/// Page-heap figures for statistics: (mapped object bytes, free bytes).
pub(crate) fn page_stats() -> (u64, u64) {
    let p = lock_pages();
    (p.sys_bytes(), (p.free_spans * SPAN_BYTES) as u64)
}

/// Metadata bytes mapped (for `sys`).
pub(crate) fn meta_bytes() -> u64 {
    (lock_pages().arenas().len() * META_SPANS * SPAN_BYTES) as u64
}
