//! GC CPU accounting: the CPU time spent on collection work, by class, as
//! Go's `/cpu/classes/gc/...` metrics count it.
//!
//! What is measured, and how:
//! - **Dedicated mark** (`/cpu/classes/gc/mark/dedicated`): the collector
//!   thread from a cycle's start (arm handshake, roots, concurrent mark,
//!   termination rounds) to its stop request, retried terminations
//!   included, and the background mark workers (`tricolor-mark-N`) around
//!   each batch of work they take from the pool. Both are threads that do
//!   nothing else, measured with their own CPU clock
//!   (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), so waiting on a condition
//!   variable or being descheduled costs nothing here.
//! - **Assist mark** (`/cpu/classes/gc/mark/assist`): a mutator that owes
//!   scan work and finds some in the pool times its scan with the monotonic
//!   (vDSO) clock, as Go does (`collector::assist`): wall time, which is CPU
//!   time unless the OS deschedules the thread meanwhile. Not the thread
//!   CPU clock: that read is a system call whose scheduler bookkeeping often
//!   ends the mutator's time slice on the spot, turning a 50 us assist into
//!   a 4 ms one on a busy machine. That is in the allocation slow path (a
//!   thread cache taking a span while marking), never on the fast path; an
//!   assist that finds no work reads no clock.
//! - **Pause** (`/cpu/classes/gc/pause`): as Go estimates it, the wall time
//!   of each stop of the world (given-up stops included) times the CPUs the
//!   program may use, since no mutator runs meanwhile. With
//!   `TRICOLOR_DEBUG=gcstoptheworld=1` the whole cycle, sweep included, is
//!   a stop and is counted here only.
//! - **Sweep** (`/cpu/classes/gc/sweep`, a tricolor extension: Go's
//!   background sweeper is a goroutine counted as user time): the collector
//!   thread's CPU from the restart to the end of its sweep, the `Drop`s of
//!   dead values included. Mutators sweeping lazily when they need a span
//!   are not counted (it is part of their allocation).
//! - **Idle mark**: tricolor has no idle-priority mark workers; always 0,
//!   kept so that code reading Go's set of names works.
//!
//! The total is the sum of the classes, computed from one load of each.
//!
//! Shared state: the cumulative counters in `COUNTERS`, `Relaxed` atomics:
//! mark workers and assists `fetch_add` after each batch (before they stop
//! counting as busy in the work pool, so once the collector has seen the
//! pool idle their time of the cycle is in); the collector adds its own
//! classes at the end of each cycle. Readers load each once.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The calling thread's CPU time in ns (`CLOCK_THREAD_CPUTIME_ID`), or 0 if
/// the clock cannot be read (then every interval measured with it is 0).
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call;
    // `clock_gettime` writes only to it.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Measures the calling thread's CPU time from its creation.
pub(crate) struct ThreadTimer(u64);

impl ThreadTimer {
    /// Starts measuring now.
    pub(crate) fn start() -> Self {
        ThreadTimer(thread_cpu_ns())
    }

    /// CPU time of this thread since `start`, in ns.
    pub(crate) fn elapsed(&self) -> u64 {
        thread_cpu_ns().saturating_sub(self.0)
    }
}

/// Cumulative GC CPU time (ns) since the heap started, by class.
struct Counters {
    assist: AtomicU64,
    /// Background mark workers (the rest of the dedicated class is `collector`).
    workers: AtomicU64,
    /// The collector thread while marking.
    collector: AtomicU64,
    pause: AtomicU64,
    sweep: AtomicU64,
}

static COUNTERS: Counters = Counters {
    assist: AtomicU64::new(0),
    workers: AtomicU64::new(0),
    collector: AtomicU64::new(0),
    pause: AtomicU64::new(0),
    sweep: AtomicU64::new(0),
};

/// Adds an assist's scan time (wall clock, see the module comment).
pub(crate) fn add_assist(ns: u64) {
    COUNTERS.assist.fetch_add(ns, Relaxed);
}

/// Adds a background mark worker's CPU time for one batch of work.
pub(crate) fn add_worker(ns: u64) {
    COUNTERS.workers.fetch_add(ns, Relaxed);
}

/// What the collector thread spent on one cycle (ns): marking on its own
/// CPU clock, the stops' wall time times the CPUs, the sweep on its clock.
pub(crate) fn add_cycle(collector_mark: u64, pause: u64, sweep: u64) {
    COUNTERS.collector.fetch_add(collector_mark, Relaxed);
    COUNTERS.pause.fetch_add(pause, Relaxed);
    COUNTERS.sweep.fetch_add(sweep, Relaxed);
}

/// Cumulative assist and mark-worker time (ns), for per-cycle differences.
pub(crate) fn assist_and_workers() -> (u64, u64) {
    (
        COUNTERS.assist.load(Relaxed),
        COUNTERS.workers.load(Relaxed),
    )
}

/// Cumulative GC CPU time by class (ns), each counter loaded once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTotals {
    pub assist: u64,
    pub dedicated: u64,
    pub idle: u64,
    pub pause: u64,
    pub sweep: u64,
}

impl CpuTotals {
    /// The sum of the classes (`/cpu/classes/gc/total`).
    pub(crate) fn total(&self) -> u64 {
        self.assist + self.dedicated + self.idle + self.pause + self.sweep
    }
}

/// Reads the cumulative counters.
pub(crate) fn totals() -> CpuTotals {
    CpuTotals {
        assist: COUNTERS.assist.load(Relaxed),
        dedicated: COUNTERS.workers.load(Relaxed) + COUNTERS.collector.load(Relaxed),
        idle: 0,
        pause: COUNTERS.pause.load(Relaxed),
        sweep: COUNTERS.sweep.load(Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread clock advances with work on this thread, and it is this
    /// thread's: a fresh thread's clock is behind one that did the work.
    #[test]
    fn thread_clock_counts_this_threads_work() {
        let t = ThreadTimer::start();
        let mut x = 0u64;
        // Enough work for any clock resolution (coarse clocks tick at 1-4 ms).
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(t.elapsed() > 0, "the thread CPU clock did not advance");
        // Another thread's clock starts near 0: it is per thread.
        let other = std::thread::spawn(thread_cpu_ns).join().unwrap();
        assert!(other < thread_cpu_ns(), "{other} vs {}", thread_cpu_ns());
    }
}
