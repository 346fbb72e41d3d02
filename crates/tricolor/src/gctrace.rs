//! gctrace: one line per cycle in Go's `GODEBUG=gctrace=1` format.
//!
//! What: the collector calls [`cycle_done`] once per cycle (from
//! `collector::finish_cycle`, after the sweep, with the world running); if
//! `TRICOLOR_DEBUG=gctrace=1` is set or [`set_gctrace`] turned it on, the
//! line goes to stderr; with the `tracing` cargo feature, the same line is
//! also a `tracing` event (target `tricolor::gctrace`, level DEBUG, the
//! figures as fields) whether or not the stderr trace is on.
//!
//! The format is Go's (`runtime/mgc.go`, `gcMarkTermination`):
//!
//! ```text
//! gc 7 @0.412s 3%: 0.021+1.2+0.015 ms clock, 0.019+0.31/1.9/0+0.030 ms cpu, 11->12->5 MB, 12 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
//! ```
//!
//! - `gc 7`: the cycle number; `@0.412s`: when it started, since the heap
//!   was first used; `3%`: the fraction of the program's available CPU time
//!   spent collecting so far (`MemStats::gc_cpu_fraction`, as an integer
//!   percent).
//! - Clock: Go's three phases map to ours as (1) the arm handshake and the
//!   root scan, (2) the concurrent mark including the termination rounds,
//!   (3) the stop of the world, from its request to the restart (sweeping
//!   is in the background in both runtimes and not shown).
//! - CPU (`A+B/C/D+E`, measured as `crate::cpu` describes): A, the
//!   collector thread's CPU time in phase 1; B, assist mark time (the
//!   assisting threads' CPU time while scanning); C, background mark time
//!   (the collector thread's CPU time in phase 2 plus the mark workers');
//!   D, idle mark time, always 0 (there are no idle-priority workers); E,
//!   the stop's wall time times the CPUs (all of them are held off), as Go
//!   counts it.
//! - Heap: the heap counted live when the cycle started, at the stop, and
//!   the bytes marked live; the goal the cycle worked towards. There are no
//!   goroutine stacks or globals to scan: both print 0. `P` is the number of
//!   mark workers (the collector thread included).
//! - `(forced)`: the cycle was started by `gc()`.
//!
//! Shared state: `ENABLED` (a relaxed flag set by [`set_gctrace`], read once
//! per cycle).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Turned on by [`set_gctrace`] (`TRICOLOR_DEBUG=gctrace=1` is read by `options`).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the per-cycle trace on stderr on or off, like
/// `TRICOLOR_DEBUG=gctrace=1`, and returns whether it was on by this call
/// before (the environment setting stays in force either way).
pub fn set_gctrace(on: bool) -> bool {
    ENABLED.swap(on, Relaxed)
}

/// What the collector measured in one cycle (durations in ns, heap sizes in
/// bytes).
pub(crate) struct Cycle {
    /// The cycle number (1 for the first).
    pub n: u32,
    /// Start of the cycle, since the heap was first used.
    pub start_ns: u64,
    /// Phase 1: arm handshake and roots.
    pub roots_ns: u64,
    /// Phase 2: concurrent mark and termination.
    pub mark_ns: u64,
    /// Phase 3: the stop.
    pub stop_ns: u64,
    /// The sweep after the restart (background; in the `tracing` event only).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub sweep_ns: u64,
    /// CPU time of phase 1 (the collector thread).
    pub roots_cpu_ns: u64,
    /// CPU time of assists in phase 2.
    pub assist_cpu_ns: u64,
    /// CPU time of background marking in phase 2 (the collector thread and
    /// the mark workers).
    pub background_cpu_ns: u64,
    /// The stop's wall time times the CPUs.
    pub stop_cpu_ns: u64,
    /// CPU time of the collector's sweep (in the `tracing` event only).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub sweep_cpu_ns: u64,
    /// Mark workers (the collector thread included).
    pub workers: u64,
    /// Heap counted live at the start, at the stop, and marked live.
    pub heap_before: u64,
    pub heap_peak: u64,
    pub heap_live: u64,
    /// The cycle's heap goal.
    pub goal: u64,
    /// Started by `gc()`.
    pub forced: bool,
}

/// Go's `itoaDiv`: `val / 10^dec` with `dec` decimals.
fn itoa_div(val: u64, dec: u32) -> String {
    if dec == 0 {
        return val.to_string();
    }
    let p = 10u64.pow(dec);
    format!("{}.{:0w$}", val / p, val % p, w = dec as usize)
}

/// Go's `fmtNSAsMS`: whole milliseconds from 10 ms, else two significant
/// digits with at most three decimals.
fn ms(ns: u64) -> String {
    if ns >= 10_000_000 {
        return itoa_div(ns / 1_000_000, 0);
    }
    let mut x = ns / 1000;
    if x == 0 {
        return "0".into();
    }
    let mut dec = 3;
    while x >= 100 {
        x /= 10;
        dec -= 1;
    }
    itoa_div(x, dec)
}

impl Cycle {
    /// The trace line, without a newline; `gc_cpu_fraction` is the
    /// fraction of time spent collecting so far.
    pub(crate) fn line(&self, gc_cpu_fraction: f64) -> String {
        let mb = |b: u64| b >> 20;
        format!(
            "gc {} @{}s {}%: {}+{}+{} ms clock, {}+{}/{}/{}+{} ms cpu, {}->{}->{} MB, {} MB goal, 0 MB stacks, 0 MB globals, {} P{}",
            self.n,
            itoa_div(self.start_ns / 1_000_000, 3),
            (gc_cpu_fraction * 100.0) as u64,
            ms(self.roots_ns),
            ms(self.mark_ns),
            ms(self.stop_ns),
            ms(self.roots_cpu_ns),
            ms(self.assist_cpu_ns),
            ms(self.background_cpu_ns),
            ms(0),
            ms(self.stop_cpu_ns),
            mb(self.heap_before),
            mb(self.heap_peak),
            mb(self.heap_live),
            mb(self.goal),
            self.workers,
            if self.forced { " (forced)" } else { "" },
        )
    }
}

/// Reports a finished cycle: the stderr line if gctrace is on, the
/// `tracing` event with the `tracing` feature.
pub(crate) fn cycle_done(c: &Cycle) {
    let on = crate::options::gctrace() || ENABLED.load(Relaxed);
    #[cfg(not(feature = "tracing"))]
    if !on {
        return;
    }
    let line = c.line(crate::stats::gc_cpu_fraction());
    if on {
        eprintln!("{line}");
    }
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tricolor::gctrace",
        cycle = c.n,
        start_ns = c.start_ns,
        roots_ns = c.roots_ns,
        mark_ns = c.mark_ns,
        stop_ns = c.stop_ns,
        sweep_ns = c.sweep_ns,
        roots_cpu_ns = c.roots_cpu_ns,
        assist_cpu_ns = c.assist_cpu_ns,
        background_cpu_ns = c.background_cpu_ns,
        stop_cpu_ns = c.stop_cpu_ns,
        sweep_cpu_ns = c.sweep_cpu_ns,
        heap_before = c.heap_before,
        heap_peak = c.heap_peak,
        heap_live = c.heap_live,
        goal = c.goal,
        workers = c.workers,
        forced = c.forced,
        "{line}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_as_go_prints_them() {
        assert_eq!(ms(0), "0");
        assert_eq!(ms(999), "0");
        assert_eq!(ms(12_000), "0.012");
        assert_eq!(ms(99_999), "0.099");
        assert_eq!(ms(150_000), "0.15");
        assert_eq!(ms(1_500_000), "1.5");
        assert_eq!(ms(9_999_999), "9.9");
        assert_eq!(ms(10_000_000), "10");
        assert_eq!(ms(1_234_000_000), "1234");
        assert_eq!(itoa_div(412, 3), "0.412");
        assert_eq!(itoa_div(12_345, 3), "12.345");
    }

    #[test]
    fn line_format() {
        let c = Cycle {
            n: 7,
            start_ns: 412_345_678,
            roots_ns: 21_000,
            mark_ns: 1_200_000,
            stop_ns: 15_000,
            sweep_ns: 0,
            roots_cpu_ns: 19_000,
            assist_cpu_ns: 310_000,
            background_cpu_ns: 1_900_000,
            stop_cpu_ns: 30_000,
            sweep_cpu_ns: 0,
            workers: 2,
            heap_before: 11 << 20,
            heap_peak: 12 << 20,
            heap_live: 5 << 20,
            goal: 12 << 20,
            forced: true,
        };
        assert_eq!(
            c.line(0.031),
            "gc 7 @0.412s 3%: 0.021+1.2+0.015 ms clock, 0.019+0.31/1.9/0+0.030 ms cpu, \
             11->12->5 MB, 12 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)"
        );
        let auto = Cycle { forced: false, ..c };
        assert!(auto.line(0.0).ends_with(" 2 P"));
    }
}

/// With the `tracing` feature, each cycle is a `tracing` event with the
/// trace line as its message.
#[cfg(all(test, feature = "tracing"))]
mod tracing_tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    static EVENTS: AtomicU64 = AtomicU64::new(0);

    struct Count;
    impl Subscriber for Count {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            m.target() == "tricolor::gctrace"
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            assert_eq!(e.metadata().target(), "tricolor::gctrace");
            assert!(e.fields().any(|f| f.name() == "heap_live"));
            EVENTS.fetch_add(1, Relaxed);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn each_cycle_is_an_event() {
        tracing::subscriber::set_global_default(Count).unwrap();
        let before = EVENTS.load(Relaxed);
        crate::gc();
        assert!(EVENTS.load(Relaxed) > before);
    }
}
