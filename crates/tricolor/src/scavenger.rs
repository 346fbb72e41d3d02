//! The scavenger: returning the pages of free spans to the OS (Go's
//! `mgcscavenge.go`), in the background and on demand
//! ([`free_os_memory`], Go's `debug.FreeOSMemory`).
//!
//! What: arenas are mapped once and never unmapped, so without this a heap
//! that shrank would keep its peak resident set forever. Releasing a free
//! span is `madvise(MADV_DONTNEED)` on its 256 KiB: the kernel drops the
//! pages at once (RSS falls; Go on Linux uses `MADV_DONTNEED` by default for
//! the same reason: `MADV_FREE` leaves RSS high until memory pressure), the
//! mapping stays, and the next touch faults in a zero page. The page heap
//! (`heap.rs`) records per free span whether it is released; a span handed
//! out again simply becomes unreleased.
//!
//! The goal (Go's, without a memory limit): keep the *retained* heap (object
//! spans mapped and not released: in-use spans plus unreleased free ones,
//! i.e. `heap_sys - heap_released`) at most 10% over the heap goal:
//! `retained <= NEXT_GC * 1.1`. Go scales the goal from object bytes to
//! span bytes with `heapInUse / heapGoal` of the last cycle; we compare the
//! span bytes with the object-byte goal directly (simpler; fragmentation
//! inside spans only makes us release somewhat more). With a memory limit
//! set, Go also keeps mapped memory (retained spans plus metadata) at most
//! 95% of the limit; the background goal is the tighter of the two. With
//! GOGC off and no limit (`NEXT_GC` = never) it does nothing.
//!
//! The pacer sees the result: `heap::page_stats` (its `mapped` and `free`
//! inputs, Go's `mappedReady` and `heapFree`) leaves released spans out.
//!
//! Algorithm of the background scavenger (thread `tricolor-scavenger`,
//! started by the first [`wake`] that finds something to do; [`wake`] is
//! called at the end of every collection cycle):
//! 1. Wait (condition variable) until `retained > goal` and some free span
//!    is unreleased.
//! 2. One step: take the serialising `WORK` lock, then repeatedly take a run
//!    of at most `min(excess, MAX_CHUNK)` free unreleased spans out of the
//!    free set (the lowest-priority ones: the last arena's highest spans,
//!    since the allocator reuses first fit from the first arena's lowest
//!    span, so warm pages stay where it allocates next), `madvise` them with
//!    no lock held, and put them back marked released; until the goal is met,
//!    nothing is left, or about 1 ms of work is done (Go's `minScavWorkTime`).
//! 3. Sleep `worked * 99`, so the scavenger uses about 1% of one CPU (Go's
//!    `scavengePercent`), then go to 1. (A sleep is how the runtime paces a
//!    background worker; nothing waits on it.)
//!
//! [`free_os_memory`] runs a full [`gc`](crate::gc), then the same loop with
//! goal 0 and no time budget, bounded by the number of releasable spans it
//! saw at the start (so it ends even while other threads free spans).
//!
//! Locking choice: `madvise` runs with no lock held. A releaser takes its
//! chunk out of the free set under `PAGES` (a bitmap scan: a few words per
//! arena), releases it unlocked, and puts it back under `PAGES`; meanwhile
//! the chunk's spans are counted free (in `heap_idle`) but unavailable. An
//! allocating thread that finds no run but sees spans in flight waits for
//! them instead of mapping a new arena, and releasers take no new chunk
//! while one waits, so an allocation waits at most one `madvise` of one
//! chunk (`MAX_CHUNK` = 16 spans, 4 MiB). Sweeping (`free_span`) and
//! allocation never wait for the scavenger otherwise.
//!
//! `malloc`'s memory: [`free_os_memory`] also returns the whole free
//! pages glibc keeps to the OS (`malloc_trim(0)`; other C libraries have no
//! such call). The background scavenger does not: trimming at the end of
//! each cycle under a memory limit was tried on `churn` and held every
//! arena's lock for 30-130 ms per call while RSS moved by -7 to +8 MiB
//! (the freed `String`s' pages are reused by the next allocations, so
//! releasing them only makes them fault back in).
//!
//! Invariants:
//! - Only free object spans are released: a released or in-flight span has
//!   no object in it (INV-SWEEP: a span returns to the page heap only when
//!   none of its slots is marked, after their `Drop`s ran) and no thread
//!   cache holds it (INV-CACHE: caches hold in-use spans only); while in
//!   flight the allocator cannot hand it out. Span metadata lives in the
//!   arena's metadata spans, which are never free and never released.
//! - Released spans are in the free set (`heap_released <= heap_idle`), and
//!   `heap_inuse + heap_idle == heap_sys` holds throughout (in-flight spans
//!   count as idle).
//!
//! Shared state and who writes it:
//! - the page heap's free/released bitmaps and counts, `in_flight` and
//!   `alloc_waiting`: under `PAGES` (allocating threads, the sweeper,
//!   releasers; see `heap::PageHeap`);
//! - `WORK` (a `Mutex<()>`): held by a releaser (the scavenger thread for
//!   one step, `free_os_memory` for its whole pass), so at most one releaser
//!   has spans in flight;
//! - `IDLE` / `IDLE_CV`: the scavenger thread waits on it; [`wake`] takes
//!   `IDLE` before notifying, and the thread checks its condition under
//!   `IDLE`, so no wake-up is lost. Lock order: `IDLE` or `WORK` → `PAGES`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::heap::{Pages, PAGES};
use crate::sizeclass::SPAN_BYTES;

/// Extra memory retained over the heap goal, in percent (Go's `retainExtraPercent`).
const RETAIN_EXTRA_PERCENT: u64 = 10;
/// Margin kept under the memory limit, in percent (Go's `reduceExtraPercent`).
const REDUCE_EXTRA_PERCENT: u64 = 5;
/// CPU share of the background scavenger, in percent (Go's `scavengePercent`).
const CPU_PERCENT: u32 = 1;
/// Work done per background step before sleeping (Go's `minScavWorkTime`).
const MIN_WORK: Duration = Duration::from_millis(1);
/// Most spans released by one `madvise` (bounds how long an allocation can
/// wait for spans in flight).
pub(crate) const MAX_CHUNK: usize = 16;

/// Serialises releasers (see the module comment).
static WORK: Mutex<()> = Mutex::new(());
/// The scavenger thread waits on `IDLE_CV` with `IDLE` held.
static IDLE: Mutex<()> = Mutex::new(());
static IDLE_CV: Condvar = Condvar::new();

fn lock(m: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The retained-bytes goal for heap goal `heap_goal` (`u64::MAX`: none).
fn retained_goal(heap_goal: u64) -> u64 {
    heap_goal.saturating_add(heap_goal / 100 * RETAIN_EXTRA_PERCENT)
}

/// How long to sleep after a step that worked `worked`, to use
/// `CPU_PERCENT` of one CPU.
fn pacing_sleep(worked: Duration) -> Duration {
    worked * (100 - CPU_PERCENT) / CPU_PERCENT
}

/// Spans to release to bring `retained` bytes down to `goal`.
fn excess_spans(retained: u64, goal: u64) -> usize {
    retained.saturating_sub(goal).div_ceil(SPAN_BYTES as u64) as usize
}

/// Whether retained memory exceeds `goal` and some free span could be released.
fn over_goal(pages: &Pages, goal: u64) -> bool {
    let f = pages.figures();
    f.releasable > 0 && f.sys - f.released > goal
}

/// Returns the pages of `[start, start + len)` to the OS.
///
/// # Safety
/// The range must be whole spans of a mapped arena that the caller took out
/// of the free set with `Pages::take_for_release` and has not put back.
unsafe fn release_pages(start: usize, len: usize) -> bool {
    // By the caller's contract the range lies inside a mapping made by
    // `sys::map_arena` (private, anonymous, read-write), and its spans are
    // free and in flight: no object lives in them (INV-SWEEP: a span is
    // freed only when none of its slots is marked, and their `Drop`s have
    // run), no thread cache holds them (INV-CACHE), and the allocator cannot
    // hand them out until they are put back. The spans' metadata lives in
    // the metadata spans, outside the range.
    // SAFETY: (above) nothing reads or writes these bytes meanwhile, and
    // none depends on their contents: later reads just see zero pages.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0 }
}

/// Releases free spans of `pages` until retained bytes are at most `goal`,
/// no free span is unreleased, `max_spans` spans were released, or (with a
/// `budget`) the work took that long. Returns the spans released.
fn scavenge(pages: &Pages, goal: u64, budget: Option<Duration>, max_spans: usize) -> usize {
    let t0 = Instant::now();
    let mut done = 0;
    while done < max_spans {
        let f = pages.figures();
        let want = excess_spans(f.sys - f.released, goal)
            .min(max_spans - done)
            .min(MAX_CHUNK);
        if want == 0 {
            break;
        }
        let Some((start, n)) = pages.take_for_release(want) else {
            break;
        };
        // SAFETY: `start..start + n` spans were just taken out of the free
        // set for releasing and are put back right below.
        let ok = unsafe { release_pages(start, n * SPAN_BYTES) };
        pages.return_released(start, n, ok);
        if !ok {
            // madvise fails only on invalid arguments; stop rather than spin.
            break;
        }
        done += n;
        if budget.is_some_and(|b| t0.elapsed() >= b) {
            break;
        }
    }
    done
}

/// The retained-bytes goal under memory limit `limit` (`u64::MAX`: none):
/// mapped memory (retained spans plus `meta` bytes of metadata and
/// `Tracking` allocations) at most 95% of the limit (Go's
/// `reduceExtraPercent`).
fn limit_goal(limit: u64, meta: u64) -> u64 {
    if limit == u64::MAX {
        return u64::MAX;
    }
    (limit / 100 * (100 - REDUCE_EXTRA_PERCENT)).saturating_sub(meta)
}

/// The current retained goal of the background scavenger: the tighter of
/// the heap-goal rule and the memory-limit rule (Go keeps scavenging while
/// either is unmet).
fn background_goal() -> u64 {
    let gc = retained_goal(crate::pacer::NEXT_GC.load(Relaxed));
    let limit = crate::pacer::MEMORY_LIMIT.load(Relaxed);
    let other = crate::heap::meta_bytes().saturating_add(crate::alloc::tracked_live(false));
    gc.min(limit_goal(limit, other))
}

/// Wakes the background scavenger (starting it the first time there is
/// work): called at the end of every collection cycle.
pub(crate) fn wake() {
    if !over_goal(&PAGES, background_goal()) {
        return;
    }
    static START: Once = Once::new();
    START.call_once(|| {
        if let Err(e) = std::thread::Builder::new()
            .name("tricolor-scavenger".into())
            .spawn(worker)
        {
            eprintln!(
                "tricolor: cannot start the scavenger thread ({e}); free memory is returned to \
                 the OS only by free_os_memory()"
            );
        }
    });
    let _idle = lock(&IDLE);
    IDLE_CV.notify_all();
}

fn worker() {
    loop {
        {
            let mut idle = lock(&IDLE);
            while !over_goal(&PAGES, background_goal()) {
                idle = IDLE_CV.wait(idle).unwrap_or_else(|e| e.into_inner());
            }
        }
        let worked = {
            let _work = lock(&WORK);
            let t0 = Instant::now();
            scavenge(&PAGES, background_goal(), Some(MIN_WORK), usize::MAX);
            t0.elapsed()
        };
        std::thread::sleep(pacing_sleep(worked));
    }
}

/// Returns `malloc`'s whole free pages to the OS (glibc's `malloc_trim`;
/// nothing elsewhere).
fn trim_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions; it takes each arena's
    // lock itself, and only releases pages of free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs a garbage collection, then returns the memory of every free span to
/// the operating system (Go's `debug.FreeOSMemory`), and with glibc, the
/// whole free pages `malloc` keeps (`malloc_trim`).
///
/// Free spans stay mapped, so the heap reuses them without a system call
/// (their pages come back zeroed, on first touch). A background scavenger
/// does the same gradually whenever the heap keeps more than about 10%
/// over its goal; call this after a phase that left a much larger heap
/// behind, to shrink the resident set now. `heap_released` in
/// [`MemStats`](crate::MemStats) counts the bytes given back.
///
/// ```
/// // 8 MiB of garbage.
/// {
///     let g = tricolor::pin();
///     for i in 0..1024u64 {
///         let _ = g.alloc([i; 1024]);
///     }
/// }
/// tricolor::free_os_memory();
/// let s = tricolor::read_mem_stats();
/// assert!(s.heap_released > 0);
/// assert!(s.heap_released <= s.heap_idle);
/// ```
///
/// # Panics
/// Like [`gc`](crate::gc): if the calling thread holds a guard, or when
/// called from a `Drop` run by the collector.
pub fn free_os_memory() {
    crate::gc();
    let _work = lock(&WORK);
    let max = (PAGES.figures().releasable / SPAN_BYTES as u64) as usize;
    scavenge(&PAGES, 0, None, max);
    trim_malloc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::{META_SPANS, USABLE_SPANS};

    const SPAN: u64 = SPAN_BYTES as u64;

    #[test]
    fn goal_and_pacing() {
        assert_eq!(retained_goal(100 << 20), 110 << 20);
        assert_eq!(retained_goal(u64::MAX), u64::MAX);
        assert_eq!(
            pacing_sleep(Duration::from_millis(1)),
            Duration::from_millis(99)
        );
        assert_eq!(excess_spans(10 * SPAN, 10 * SPAN), 0);
        assert_eq!(excess_spans(10 * SPAN + 1, 10 * SPAN), 1);
        assert_eq!(excess_spans(0, 10 * SPAN), 0);
        assert_eq!(limit_goal(u64::MAX, 5 << 20), u64::MAX);
        assert_eq!(limit_goal(100 << 20, 5 << 20), (95 << 20) - (5 << 20));
        assert_eq!(limit_goal(1 << 20, 5 << 20), 0);
    }

    /// Fills `n` spans from `start` with a non-zero byte (touches their pages).
    fn touch(start: usize, n: usize) {
        // SAFETY: the spans belong to the test's private page heap and were
        // taken from it: mapped, and used by nothing else.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0xA5, n * SPAN_BYTES) };
    }

    /// Whether the first word of every page of `n` spans from `start` is 0.
    fn zeroed(start: usize, n: usize) -> bool {
        (0..n * SPAN_BYTES / 4096).all(|p| {
            // SAFETY: as in `touch`: mapped memory of the private page heap,
            // aligned for u64; nothing else uses it.
            unsafe { *((start + p * 4096) as *const u64) == 0 }
        })
    }

    /// A private page heap (not the global one): accounting, release order
    /// and the goal, deterministic.
    #[test]
    fn releases_lowest_priority_spans_down_to_the_goal() {
        let pages = Pages::new();
        let a = pages.take(40).unwrap();
        let arena = pages.lock().arenas()[0];
        assert_eq!(a, arena + META_SPANS * SPAN_BYTES, "first fit");
        let usable = USABLE_SPANS as u64;
        // A fresh arena is released except what was taken.
        let f = pages.figures();
        assert_eq!(f.sys, usable * SPAN);
        assert_eq!(f.free, (usable - 40) * SPAN);
        assert_eq!(f.released, (usable - 40) * SPAN);
        assert_eq!(f.releasable, 0);

        touch(a, 40);
        pages.give_back(a, 40);
        let f = pages.figures();
        assert_eq!(f.free, usable * SPAN);
        assert_eq!(f.releasable, 40 * SPAN);

        // The highest free unreleased spans go first.
        let (s, n) = pages.take_for_release(MAX_CHUNK).unwrap();
        assert_eq!((s, n), (a + 24 * SPAN_BYTES, 16));
        assert_eq!(pages.figures().free, usable * SPAN, "in flight is idle");
        // SAFETY: taken for release just above, put back below.
        assert!(unsafe { release_pages(s, n * SPAN_BYTES) });
        pages.return_released(s, n, true);
        assert!(zeroed(s, n), "released pages read as zero");
        assert!(!zeroed(a, 24), "retained pages keep their contents");

        // Down to a goal of 10 retained spans: 14 more, from the top.
        assert_eq!(scavenge(&pages, 10 * SPAN, None, usize::MAX), 14);
        let f = pages.figures();
        assert_eq!(f.sys - f.released, 10 * SPAN);
        assert!(!zeroed(a, 10) && zeroed(a + 10 * SPAN_BYTES, 30));

        // Reuse: taking released spans makes them unreleased.
        let b = pages.take(20).unwrap();
        assert_eq!(b, a, "first fit again");
        let f = pages.figures();
        assert_eq!(f.released, (usable - 20) * SPAN);
        assert_eq!(f.releasable, 0);
        touch(b, 20);
        pages.give_back(b, 20);

        // Everything, bounded by `max_spans`.
        assert_eq!(scavenge(&pages, 0, None, 5), 5);
        assert_eq!(scavenge(&pages, 0, None, usize::MAX), 15);
        let f = pages.figures();
        assert_eq!((f.released, f.free, f.releasable), (f.sys, f.sys, 0));
        assert_eq!(pages.lock().arenas().len(), 1);
    }

    /// An allocation that needs spans in flight waits for them rather than
    /// mapping a new arena.
    #[test]
    fn allocation_waits_for_spans_in_flight() {
        let pages = Pages::new();
        let all = pages.take(USABLE_SPANS).unwrap();
        pages.give_back(all, USABLE_SPANS);
        let (s, n) = pages.take_for_release(4).unwrap();
        std::thread::scope(|sc| {
            // Whether it runs before or after the chunk is put back, the
            // only run of USABLE_SPANS spans is the whole first arena.
            let t = sc.spawn(|| pages.take(USABLE_SPANS).unwrap());
            // SAFETY: taken for release above, put back right after.
            assert!(unsafe { release_pages(s, n * SPAN_BYTES) });
            pages.return_released(s, n, true);
            assert_eq!(t.join().unwrap(), all);
        });
        assert_eq!(
            pages.lock().arenas().len(),
            1,
            "no arena mapped for the wait"
        );
        let f = pages.figures();
        assert_eq!((f.free, f.released), (0, 0));
    }
}
