//! Pacing: when the next cycle starts (GOGC).
//!
//! What: the heap goal of Go's `gcControllerState`, reduced to what a
//! stop-the-world collector needs. After a cycle marked `live` bytes, the
//! next cycle is due when the bytes allocated (counted per span, when a
//! thread cache takes one: Go's `heapLive`) reach
//! `goal = max(live * (1 + GOGC/100), 4 MiB * GOGC/100)`. A negative GOGC
//! turns automatic collection off.
//!
//! The decision is a pure function ([`heap_goal`]); the state is three
//! atomics: `HEAP_LIVE` (written by thread caches with `fetch_add`, reset by
//! the collector while the world is stopped), `NEXT_GC` (written by the
//! collector and by `set_gc_percent`), and `GC_PENDING` (set by any
//! allocating thread that crosses the goal, which wakes the collector
//! thread; cleared by the collector at the end of the cycle).
//!
//! The concurrent collector (issue 3) replaces this with the full pacer:
//! trigger before the goal, assists, the memory limit.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};

/// Minimum heap goal at GOGC=100 (Go's `heapMinimum`).
pub(crate) const HEAP_MINIMUM: u64 = 4 << 20;

/// Bytes counted as allocated since the last cycle, plus the live bytes it marked.
pub(crate) static HEAP_LIVE: AtomicU64 = AtomicU64::new(0);
/// The heap goal: a cycle is due when `HEAP_LIVE` reaches it.
pub(crate) static NEXT_GC: AtomicU64 = AtomicU64::new(HEAP_MINIMUM);
/// A cycle is due; the next thread to pass a quiescent point runs it.
pub(crate) static GC_PENDING: AtomicBool = AtomicBool::new(false);
/// GOGC. Negative: off.
pub(crate) static GC_PERCENT: AtomicI32 = AtomicI32::new(100);
/// Live bytes marked by the last cycle.
pub(crate) static HEAP_MARKED: AtomicU64 = AtomicU64::new(0);

/// The heap goal after a cycle that marked `live` bytes, at `gogc` percent.
pub(crate) fn heap_goal(live: u64, gogc: i32) -> u64 {
    if gogc < 0 {
        return u64::MAX;
    }
    let g = gogc as u64;
    let min = HEAP_MINIMUM.saturating_mul(g) / 100;
    live.saturating_add(live.saturating_mul(g) / 100).max(min)
}

/// Counts `bytes` as allocated; flags a cycle when the goal is reached.
#[inline]
pub(crate) fn account(bytes: u64) {
    let live = HEAP_LIVE.fetch_add(bytes, Relaxed) + bytes;
    if live >= NEXT_GC.load(Relaxed) && !GC_PENDING.load(Relaxed) {
        GC_PENDING.store(true, Relaxed);
        crate::collector::wake();
    }
}

/// Returns bytes a cache counted but did not use.
pub(crate) fn unaccount(bytes: u64) {
    let _ = HEAP_LIVE.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(bytes)));
}

/// Recomputes the goal from the last marked heap (after a cycle or a GOGC change).
pub(crate) fn update_goal() {
    let goal = heap_goal(HEAP_MARKED.load(Relaxed), GC_PERCENT.load(Relaxed));
    NEXT_GC.store(goal, Relaxed);
    if HEAP_LIVE.load(Relaxed) >= goal && !GC_PENDING.swap(true, Relaxed) {
        crate::collector::wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_follows_gogc() {
        assert_eq!(heap_goal(0, 100), HEAP_MINIMUM);
        assert_eq!(heap_goal(100 << 20, 100), 200 << 20);
        assert_eq!(heap_goal(100 << 20, 50), 150 << 20);
        assert_eq!(heap_goal(0, 50), HEAP_MINIMUM / 2);
        assert_eq!(heap_goal(1 << 30, -1), u64::MAX);
        assert!(heap_goal(u64::MAX / 2, 100) >= u64::MAX / 2, "no overflow");
    }
}
