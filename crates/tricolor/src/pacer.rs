//! Pacing, as the runtime sees it: when the next cycle starts, and the heap
//! goal, from GOGC and the memory limit.
//!
//! What: the decisions are made by [`crate::pacer_model::Pacer`], a pure,
//! clock-free state machine after Go's `gcControllerState` (tested there by
//! simulation). This module feeds it and publishes its decisions in atomics
//! that the allocation path reads without a lock:
//! 1. Thread caches count bytes as allocated when they take a span (all its
//!    free slots, as Go's `heapLive` does) into `HEAP_LIVE`; when it reaches
//!    `TRIGGER`, the allocating thread sets `GC_PENDING` and wakes the
//!    collector thread.
//! 2. The collector calls [`cycle_start`] when it arms, and [`cycle_end`]
//!    with what it measured (marked and scanned bytes, mark time, memory
//!    use) once the background sweep is done; the model computes the next goal and trigger
//!    (Go's runway-based trigger, between 70% and 95% of the way from the
//!    marked heap to the goal), which are published.
//! 3. `set_gc_percent` / `set_memory_limit` (and `TRICOLOR_GC` /
//!    `TRICOLOR_MEMLIMIT`) change the model and republish.
//!
//! Shared state: `MODEL` (mutex; the collector at cycle start/end, setters);
//! `HEAP_LIVE` (thread caches `fetch_add`, the collector subtracts what the
//! cycle found dead at its end); `TRIGGER`, `NEXT_GC`, `GC_PERCENT`, `MEMORY_LIMIT`
//! (written under `MODEL` by `publish`, read anywhere); `GC_PENDING` (set by
//! whoever crosses the trigger, cleared by the collector).
//!
//! 4. While marking, a thread that takes a span (or a large object) owes
//!    scan work for its bytes ([`account`]): the model's assist ratio, less
//!    the background credit it can claim; it does it at once
//!    (`collector::assist`), from the shared work pool, never waiting.
//!    Mark workers report progress ([`mark_progress`]), which revises the
//!    ratio.
//!
//! 5. The model's GC CPU limiter (Go's `gcCPULimiter`) is fed whenever the
//!    pacer runs during marking (progress reports, assists, cycle start and
//!    end) and at most once per update period: GC CPU time is the dedicated
//!    workers' share of each mark phase (the collector thread and the extra
//!    mark workers, counted as busy for the whole phase, as Go counts its
//!    dedicated workers), the time assists took, and each stop times the
//!    CPUs; the capacity is wall time times the CPUs. While the bucket is
//!    full, assists are off (the heap may overshoot its goal rather than
//!    let the collector take the program's CPU).
//!
//! `GC_CPU_NS` (finished GC CPU time) is added to with `fetch_add` by
//! assists and the collector; `MARK_START_NS` and `DEDICATED` are written
//! by the collector at cycle start and mark end; all are read under `MODEL`
//! to feed the limiter, where a slightly stale sum only delays it.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::pacer_model::{CycleReport, MemoryUse, Pacer, HEAP_MINIMUM, NO_MEMORY_LIMIT};

/// Bytes counted as allocated since the last cycle, plus the live bytes it marked.
pub(crate) static HEAP_LIVE: AtomicU64 = AtomicU64::new(0);
/// The heap goal: the cycle should be done by the time `HEAP_LIVE` reaches it.
pub(crate) static NEXT_GC: AtomicU64 = AtomicU64::new(HEAP_MINIMUM);
/// A cycle starts when `HEAP_LIVE` reaches this.
pub(crate) static TRIGGER: AtomicU64 = AtomicU64::new(HEAP_MINIMUM * 7 / 8);
/// A cycle is due; the collector thread has been woken.
pub(crate) static GC_PENDING: AtomicBool = AtomicBool::new(false);
/// GOGC, mirrored for statistics. Negative: off.
pub(crate) static GC_PERCENT: AtomicI32 = AtomicI32::new(100);
/// The soft memory limit, mirrored for statistics (`u64::MAX`: none).
pub(crate) static MEMORY_LIMIT: AtomicU64 = AtomicU64::new(NO_MEMORY_LIMIT);

fn model() -> MutexGuard<'static, Pacer> {
    static MODEL: OnceLock<Mutex<Pacer>> = OnceLock::new();
    MODEL
        .get_or_init(|| Mutex::new(Pacer::new(100, NO_MEMORY_LIMIT, procs())))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The CPUs the program may use (read once: it may read cgroup files).
pub(crate) fn procs() -> u32 {
    static PROCS: OnceLock<u32> = OnceLock::new();
    *PROCS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
}

/// Finished GC CPU time (ns): assists, stops times the CPUs, and the
/// dedicated workers' share of finished mark phases.
static GC_CPU_NS: AtomicU64 = AtomicU64::new(0);
/// Start of the mark phase in progress on the pacer's clock, 0 if none.
static MARK_START_NS: AtomicU64 = AtomicU64::new(0);
/// The CPU the background marking of this phase uses, in thousandths of a
/// CPU (the collector thread and its mark workers).
static DEDICATED: AtomicU64 = AtomicU64::new(0);

/// The background marking's CPU time over `wall_ns` of this mark phase.
fn background_ns(wall_ns: u64) -> u64 {
    wall_ns * DEDICATED.load(Relaxed) / 1000
}

/// Feeds the CPU limiter (at most once per update period) and republishes
/// whether assists are on.
fn feed_limiter(m: &mut Pacer) {
    let now = now_ns();
    if m.limiter_needs_update(now) {
        let start = MARK_START_NS.load(Relaxed);
        let running = if start == 0 {
            0
        } else {
            background_ns(now.saturating_sub(start))
        };
        let gc = GC_CPU_NS.load(Relaxed) + running;
        m.update_limiter(now, gc, now * u64::from(procs()));
    }
    ASSISTS.store(m.assists_enabled(), Relaxed);
    LIMITING.store(m.limiting(), Relaxed);
}

/// The memory limit, not GOGC, sets the heap goal (as of the last publish).
static MEMORY_LIMITED: AtomicBool = AtomicBool::new(false);

/// Whether the memory limit sets the heap goal: the collector's fractional
/// worker then marks full-time (see `collector::fractional_rest`).
pub(crate) fn memory_limited() -> bool {
    MEMORY_LIMITED.load(Relaxed)
}

/// The CPU limiter is limiting (as of its last update): GC work is not
/// charged to mutators (no assists, no waiting for the sweeper).
static LIMITING: AtomicBool = AtomicBool::new(false);

/// Whether the heap is at its soft memory limit: taking one more span from
/// the OS would take mapped memory (object spans not released, and
/// metadata: what the limit limits) past it. False with no limit, and while
/// the CPU limiter is limiting (the limit gives way then, as in Go).
pub(crate) fn at_memory_limit() -> bool {
    let limit = MEMORY_LIMIT.load(Relaxed);
    if limit == NO_MEMORY_LIMIT || LIMITING.load(Relaxed) {
        return false;
    }
    let heap = crate::heap::mapped_bytes() + crate::sizeclass::SPAN_BYTES as u64;
    let over = |tracked: u64| heap.saturating_add(tracked) > limit;
    // Bytes of the `Tracking` allocator count too; the sum is re-read only
    // near the limit (within 1/16 of it), where it decides.
    let seen = crate::alloc::tracked_live(false);
    over(seen) || (over(seen + limit / 16) && over(crate::alloc::tracked_live(true)))
}

/// Counts `ns` of assist time: a mutator scanning for the collector, or
/// waiting for the collector's sweep (GC work done on its behalf).
pub(crate) fn add_assist_time(ns: u64) {
    ASSIST_NS.fetch_add(ns, Relaxed);
    GC_CPU_NS.fetch_add(ns, Relaxed);
}

/// Nanoseconds on the pacer's clock (since the heap started).
fn now_ns() -> u64 {
    crate::stats::START
        .get()
        .map_or(0, |s| s.elapsed().as_nanos() as u64)
}

/// Counts `bytes` as allocated by the calling (pinned) thread; wakes the
/// collector at the trigger; while marking, makes the thread assist.
#[inline]
pub(crate) fn account(bytes: u64) {
    let live = HEAP_LIVE.fetch_add(bytes, Relaxed) + bytes;
    if live >= TRIGGER.load(Relaxed) && !GC_PENDING.load(Relaxed) && !GC_PENDING.swap(true, Relaxed)
    {
        crate::collector::wake();
    }
    if ASSISTS.load(Relaxed) {
        assist_slow(bytes);
    }
}

/// Assists are on (marking, and the CPU limiter is not limiting).
static ASSISTS: AtomicBool = AtomicBool::new(false);
/// Scan work assists did this cycle (bytes), and the time they took.
static ASSIST_NS: AtomicU64 = AtomicU64::new(0);

#[cold]
fn assist_slow(bytes: u64) {
    let work = {
        let mut m = model();
        feed_limiter(&mut m);
        if !m.assists_enabled() {
            return;
        }
        m.assist_debt(bytes)
    };
    if work > 0 {
        // The time the assisting thread scanned (wall clock; 0 if it found
        // no work); `collector::assist` also counts it in `crate::cpu`.
        let ns = crate::collector::assist(work);
        if ns > 0 {
            crate::stats::ASSISTS.record(ns);
        }
        add_assist_time(ns);
    }
}

/// Marking progress: `total` bytes scanned this cycle so far, of which
/// `background` were just scanned by the collector's workers (credit that
/// assists may claim). Revises the assist ratio.
pub(crate) fn mark_progress(total: u64, background: u64) {
    let mut m = model();
    m.revise(HEAP_LIVE.load(Relaxed), total);
    m.add_background_credit(background);
    feed_limiter(&mut m);
}

/// Returns bytes a cache counted but did not use.
pub(crate) fn unaccount(bytes: u64) {
    let _ = HEAP_LIVE.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(bytes)));
}

/// Publishes the model's decisions (called with `MODEL` held), then, once
/// it is released, wakes the collector if the heap is already past the
/// trigger.
fn publish(m: MutexGuard<'static, Pacer>) {
    NEXT_GC.store(m.heap_goal(), Relaxed);
    TRIGGER.store(m.trigger(), Relaxed);
    GC_PERCENT.store(m.gc_percent(), Relaxed);
    MEMORY_LIMIT.store(m.memory_limit(), Relaxed);
    MEMORY_LIMITED.store(m.memory_limited(), Relaxed);
    let marking = m.is_marking();
    drop(m);
    if !marking
        && HEAP_LIVE.load(Relaxed) >= TRIGGER.load(Relaxed)
        && !GC_PENDING.swap(true, Relaxed)
    {
        crate::collector::wake();
    }
}

/// Sets GOGC; returns the previous value.
pub(crate) fn set_gc_percent(percent: i32) -> i32 {
    let mut m = model();
    let old = m.set_gc_percent(percent);
    publish(m);
    old
}

/// Sets the soft memory limit; returns the previous one.
pub(crate) fn set_memory_limit(limit: u64) -> u64 {
    let mut m = model();
    let old = m.set_memory_limit(limit);
    publish(m);
    old
}

/// The collector armed a cycle with `heap_live` bytes counted; its thread
/// and its mark workers mark with `dedicated` thousandths of a CPU in all
/// until [`mark_done`] (less than 1000 each for a fractional worker).
pub(crate) fn cycle_start(heap_live: u64, dedicated: u64) {
    let mut m = model();
    let scan = m.heap_marked();
    let now = now_ns();
    m.start_cycle(now, heap_live, scan);
    ASSIST_NS.store(0, Relaxed);
    DEDICATED.store(dedicated, Relaxed);
    MARK_START_NS.store(now.max(1), Relaxed);
    feed_limiter(&mut m);
}

/// Marking is over: no more assists; the dedicated workers' time is added
/// to the GC CPU time.
pub(crate) fn mark_done() {
    ASSISTS.store(false, Relaxed);
    let _m = model();
    let start = MARK_START_NS.swap(0, Relaxed);
    if start != 0 {
        let ns = background_ns(now_ns().saturating_sub(start));
        GC_CPU_NS.fetch_add(ns, Relaxed);
    }
}

/// What the collector measured, at the end of a cycle.
pub(crate) struct Measured {
    /// Live bytes the sweep found (marked objects).
    pub marked: u64,
    /// `HEAP_LIVE` at the stop that ended marking (the cycle's peak).
    pub peak: u64,
    /// Bytes of objects scanned.
    pub scanned: u64,
    /// Wall time the collector thread marked.
    pub mark_ns: u64,
    /// Bytes mapped for the heap and its metadata, and free span bytes.
    pub mapped: u64,
    pub free: u64,
    pub forced: bool,
    /// The cycle's stops (request to restart, given-up ones included).
    pub pause_ns: u64,
}

/// The collector finished a cycle (sweep done). Bytes counted since the
/// stop (`peak`) stay counted: the heap is now the marked bytes plus them.
pub(crate) fn cycle_end(x: Measured) {
    ASSISTS.store(false, Relaxed);
    let _ = HEAP_LIVE.fetch_update(Relaxed, Relaxed, |v| {
        Some(v.saturating_sub(x.peak).saturating_add(x.marked))
    });
    GC_PENDING.store(false, Relaxed);
    GC_CPU_NS.fetch_add(x.pause_ns * u64::from(procs()), Relaxed);
    let mut m = model();
    feed_limiter(&mut m);
    ASSISTS.store(false, Relaxed);
    m.end_cycle(&CycleReport {
        now_ns: now_ns(),
        heap_marked: x.marked,
        heap_live: x.peak,
        heap_scan_done: x.scanned,
        assist_time_ns: ASSIST_NS.load(Relaxed),
        bg_time_ns: background_ns(x.mark_ns),
        idle_time_ns: 0,
        memory: MemoryUse {
            // The `Tracking` allocator's live bytes are memory the limit
            // covers and no heap goal can reclaim (non-heap, as Go's
            // runtime-internal memory is).
            mapped: x.mapped.saturating_add(crate::alloc::tracked_live(true)),
            heap_alloc: x.marked,
            heap_free: x.free,
        },
        forced: x.forced,
    });
    publish(m);
}

/// Parses a memory limit: bytes with an optional `B`, `KiB`, `MiB`, `GiB`
/// or `TiB` suffix (Go's GOMEMLIMIT syntax), or `off`.
pub(crate) fn parse_memory_limit(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(NO_MEMORY_LIMIT);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => {
            return Err(format!(
                "expected bytes with an optional B, KiB, MiB, GiB or TiB suffix (e.g. 512MiB), or `off`, got {s:?}"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a number of bytes (e.g. 512MiB), got {s:?}"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("memory limit {s:?} overflows 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_syntax() {
        assert_eq!(parse_memory_limit("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory_limit("1GiB"), Ok(1 << 30));
        assert_eq!(parse_memory_limit("1000"), Ok(1000));
        assert_eq!(parse_memory_limit("64B"), Ok(64));
        assert_eq!(parse_memory_limit("off"), Ok(u64::MAX));
        assert!(parse_memory_limit("12MB").unwrap_err().contains("MiB"));
        assert!(parse_memory_limit("-5").is_err());
        assert!(parse_memory_limit("99999999999TiB")
            .unwrap_err()
            .contains("overflows"));
    }
}
