//! Statistics: the counters behind `MemStats`, and `MemStats` itself.
//!
//! One declaration ([`mem_stats!`]) lists every `MemStats` field once, with
//! its documentation; the struct, the field-name list and the JSON writer are
//! generated from it, so they cannot drift.
//!
//! Counters (all `Relaxed` atomics, monotonic): `mallocs` and `alloc_bytes`
//! are added by thread caches when they commit a bitmap word (every <= 64
//! objects) or allocate a large object; `frees`/`freed_bytes` by the sweeper.
//! Between cycles they lag by the words thread caches have not committed
//! yet; `gc()` flushes every cache, so figures read right after it are exact.
//! The per-size-class counters (`BY_SIZE`, behind `MemStats::by_size`) are
//! added at the same two places (a cache's word commit, a span's sweep), so
//! they are exact too, and the allocation fast path touches no shared counter.
//!
//! `CYCLES` (a mutex) is written by the collector thread once per cycle, in
//! `finish_cycle`, after the world restarted (never held during a stop);
//! readers (`read_mem_stats`, `metrics::read`) hold it for a copy.
//!
//! [`snapshot`] reads every source once; `MemStats` and the metrics registry
//! (`metrics.rs`) are both computed from it, so they agree.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Allocation and cycle counters.
pub(crate) struct Counters {
    pub mallocs: AtomicU64,
    pub alloc_bytes: AtomicU64,
    pub frees: AtomicU64,
    pub freed_bytes: AtomicU64,
}

pub(crate) static COUNTERS: Counters = Counters {
    mallocs: AtomicU64::new(0),
    alloc_bytes: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    freed_bytes: AtomicU64::new(0),
};

/// Per-cycle records, written by the collector at the end of each cycle.
pub(crate) struct CycleStats {
    pub num_gc: u32,
    pub num_forced_gc: u32,
    pub pause_total_ns: u64,
    pub pause_ns: [u64; 256],
    pub pause_end: [u64; 256],
    pub last_gc: u64,
    /// Live (marked) bytes the last cycle found.
    pub heap_live: u64,
    /// Bytes the last cycle scanned.
    pub heap_scan: u64,
    /// Histogram of stop pauses (request to restart), log2 buckets of ns as
    /// `BLOCKED_BUCKETS`, and their sum.
    pub pause_hist: [u64; BLOCKED_BUCKETS],
    pub pause_hist_ns: u64,
}

impl CycleStats {
    /// Records one cycle's stop (the collector, under `CYCLES`).
    pub(crate) fn record_pause(&mut self, ns: u64) {
        self.pause_hist[log2_bucket(ns)] += 1;
        self.pause_hist_ns += ns;
    }
}

/// The log2 bucket of `ns` (0 and 1 in bucket 0; `2^i..2^(i+1)` in bucket i).
pub(crate) fn log2_bucket(ns: u64) -> usize {
    (63 - ns.max(1).leading_zeros() as usize).min(BLOCKED_BUCKETS - 1)
}

pub(crate) static CYCLES: Mutex<CycleStats> = Mutex::new(CycleStats {
    num_gc: 0,
    num_forced_gc: 0,
    pause_total_ns: 0,
    pause_ns: [0; 256],
    pause_end: [0; 256],
    last_gc: 0,
    heap_live: 0,
    heap_scan: 0,
    pause_hist: [0; BLOCKED_BUCKETS],
    pause_hist_ns: 0,
});

/// Number of entries of `MemStats::by_size`: the size classes, entry 0
/// (Go's size-0 class) unused.
pub const NUM_SIZE_CLASSES: usize = crate::sizeclass::NUM_CLASSES;

/// Per-size-class allocation and free counts (`Relaxed`, monotonic): added
/// by thread caches at each word commit and by the sweeper per span.
pub(crate) struct BySizeCounters {
    pub mallocs: [AtomicU64; NUM_SIZE_CLASSES],
    pub frees: [AtomicU64; NUM_SIZE_CLASSES],
}

pub(crate) static BY_SIZE: BySizeCounters = BySizeCounters {
    mallocs: [const { AtomicU64::new(0) }; NUM_SIZE_CLASSES],
    frees: [const { AtomicU64::new(0) }; NUM_SIZE_CLASSES],
};

/// Allocation counts of one size class (Go's `MemStats.BySize` entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeClassStats {
    /// The class's slot size in bytes (object plus its 8-byte header,
    /// rounded up to the class); 0 for the unused entry 0.
    pub size: u32,
    /// Cumulative count of objects allocated in this class.
    pub mallocs: u64,
    /// Cumulative count of objects of this class freed.
    pub frees: u64,
}

/// Buckets of `MemStats::blocked_hist`.
pub const BLOCKED_BUCKETS: usize = 40;

/// Intervals mutators spent blocked by the collector (log2 buckets of ns).
pub(crate) struct Blocked {
    hist: [AtomicU64; BLOCKED_BUCKETS],
    total_ns: AtomicU64,
}

pub(crate) static BLOCKED: Blocked = Blocked::new();
/// Mark assists' wall-clock durations (same buckets).
pub(crate) static ASSISTS: Blocked = Blocked::new();

impl Blocked {
    pub(crate) const fn new() -> Self {
        Blocked {
            hist: [const { AtomicU64::new(0) }; BLOCKED_BUCKETS],
            total_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn hist(&self) -> [u64; BLOCKED_BUCKETS] {
        std::array::from_fn(|i| self.hist[i].load(Relaxed))
    }

    pub(crate) fn total_ns(&self) -> u64 {
        self.total_ns.load(Relaxed)
    }

    /// Records that a mutator was blocked for `ns` nanoseconds.
    pub(crate) fn record(&self, ns: u64) {
        self.hist[log2_bucket(ns)].fetch_add(1, Relaxed);
        self.total_ns.fetch_add(ns, Relaxed);
    }
}

/// Process start, for `gc_cpu_fraction`.
pub(crate) static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

trait JsonValue {
    fn write_json(&self, out: &mut String);
}
impl JsonValue for u64 {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string())
    }
}
impl JsonValue for u32 {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string())
    }
}
impl JsonValue for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" })
    }
}
impl JsonValue for f64 {
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            out.push_str(&format!("{self}"))
        } else {
            out.push('0')
        }
    }
}
impl<const N: usize> JsonValue for [SizeClassStats; N] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, c) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"size\":{},\"mallocs\":{},\"frees\":{}}}",
                c.size, c.mallocs, c.frees
            ));
        }
        out.push(']');
    }
}
impl<const N: usize> JsonValue for [u64; N] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }
}

macro_rules! mem_stats {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty, )*) => {
        /// Memory statistics, named after Go's `runtime.MemStats` (snake_case).
        ///
        /// Read with [`read_mem_stats`](crate::read_mem_stats). Figures are
        /// exact right after [`gc`](crate::gc); between cycles, allocation
        /// counts lag by the objects thread caches have not committed yet
        /// (at most 64 per size class per thread).
        ///
        /// Identities (exact right after [`gc`](crate::gc)):
        /// `heap_inuse + heap_idle == heap_sys`, `mallocs - frees ==
        /// heap_objects`, `sys == heap_sys + gc_sys`. The same figures, by
        /// Go's `runtime/metrics` names, are in [`metrics`](crate::metrics).
        ///
        /// Go fields left out, having no meaning here: `Lookups` (always 0
        /// in Go too), `StackInuse`/`StackSys` (no goroutine stacks),
        /// `MSpanInuse`/`MSpanSys`/`MCacheInuse`/`MCacheSys` (span
        /// descriptors are one block per arena, in `gc_sys`; thread caches
        /// live in each thread's state, outside the heap's memory),
        /// `BuckHashSys` (no profiling buckets), `OtherSys`, and `DebugGC`
        /// (unused in Go).
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub struct MemStats {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        impl MemStats {
            /// Every field name, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// One JSON object with every field by its name.
            pub fn to_json(&self) -> String {
                let mut out = String::from("{");
                let mut first = true;
                $(
                    if !first { out.push(','); }
                    first = false;
                    out.push_str(concat!("\"", stringify!($name), "\":"));
                    JsonValue::write_json(&self.$name, &mut out);
                )*
                let _ = first;
                out.push('}');
                out
            }
        }
    };
}

mem_stats! {
    /// Bytes of allocated heap objects (same as `heap_alloc`).
    alloc: u64,
    /// Cumulative bytes allocated for heap objects (slot sizes).
    total_alloc: u64,
    /// Bytes of memory obtained from the OS for the heap and its metadata
    /// (`heap_sys + gc_sys`).
    sys: u64,
    /// Cumulative count of heap objects allocated.
    mallocs: u64,
    /// Cumulative count of heap objects freed.
    frees: u64,
    /// Bytes of allocated heap objects: reachable ones and unreachable ones
    /// the collector has not freed yet.
    heap_alloc: u64,
    /// Bytes of heap memory obtained from the OS (spans of all arenas).
    heap_sys: u64,
    /// Bytes in idle (free) spans, released to the OS or not (includes
    /// `heap_released`, as in Go).
    heap_idle: u64,
    /// Bytes in in-use spans.
    heap_inuse: u64,
    /// Bytes of physical memory returned to the OS: free spans whose pages
    /// the scavenger (or [`free_os_memory`](crate::free_os_memory)) released,
    /// plus free spans of fresh arenas never touched yet (as Go counts new
    /// heap memory as scavenged). Part of `heap_idle`.
    heap_released: u64,
    /// Number of allocated heap objects (`mallocs - frees`).
    heap_objects: u64,
    /// Bytes of heap metadata: the span descriptors with their allocation
    /// and mark bitmaps, at the start of every arena (Go counts these in
    /// `MSpanSys` and `GCSys`; here they are one block).
    gc_sys: u64,
    /// The heap goal: the next cycle starts when the heap reaches it.
    next_gc: u64,
    /// End of the last cycle, in nanoseconds since the Unix epoch (0: none yet).
    last_gc: u64,
    /// Cumulative nanoseconds of collector pauses (see `pause_ns`),
    /// including stops that were given up and retried.
    pause_total_ns: u64,
    /// Recent pause durations in nanoseconds, a ring: the most recent is at
    /// `pause_ns[(num_gc + 255) % 256]`. A cycle's pause runs from the
    /// moment its stop of the world is requested (from then on, a thread
    /// that pins waits) to the restart: an upper bound of the time any
    /// thread was blocked by it. Marking and sweeping are concurrent.
    pause_ns: [u64; 256],
    /// End times of recent pauses (ns since the Unix epoch), same ring layout.
    pause_end: [u64; 256],
    /// Histogram of the intervals mutator threads spent blocked by the
    /// collector, as the threads measured them (a `pin`, a root operation
    /// or a thread start or exit waiting for a stop of the world to end):
    /// `blocked_hist[i]` counts intervals of `2^i` to `2^(i+1)` nanoseconds.
    /// Marking, handshakes and sweeping block no thread.
    blocked_hist: [u64; BLOCKED_BUCKETS],
    /// Cumulative nanoseconds mutator threads spent blocked by the collector
    /// (the sum of the intervals of `blocked_hist`).
    blocked_total_ns: u64,
    /// Histogram of mark assists' wall-clock durations: intervals in which
    /// an allocating thread, while marking runs and its allocation outpaces
    /// the collector, scanned heap objects instead of running its own code
    /// (the other way, besides `blocked_hist`, in which the collector
    /// delays a mutator). Same buckets as `blocked_hist`.
    assist_hist: [u64; BLOCKED_BUCKETS],
    /// Cumulative wall-clock nanoseconds of mark assists (the sum of the
    /// intervals of `assist_hist`).
    assist_total_ns: u64,
    /// Number of completed cycles.
    num_gc: u32,
    /// Number of cycles forced by `gc()`.
    num_forced_gc: u32,
    /// Fraction of the CPU time available since the heap started (wall
    /// time times the CPUs the program may use) spent on collection work,
    /// as Go computes it: `/cpu/classes/gc/total:cpu-seconds` less idle
    /// marking, over that capacity (the classes are measured as
    /// `/cpu/classes/gc/...` describe them in docs/metrics.md).
    gc_cpu_fraction: f64,
    /// Whether automatic collection is on (GOGC >= 0).
    enable_gc: bool,
    /// Allocations and frees per size class: entry `i` is size class `i`
    /// (entry 0 unused, as in Go). Objects larger than the largest class
    /// (32 KiB) are counted in `mallocs`/`frees` only, as in Go.
    by_size: [SizeClassStats; NUM_SIZE_CLASSES],
}

/// What the metrics registry needs beyond `MemStats`, read in the same
/// snapshot.
pub(crate) struct Extra {
    pub heap_live: u64,
    pub heap_scan: u64,
    pub pause_hist: [u64; BLOCKED_BUCKETS],
    pub pause_hist_ns: u64,
    pub gc_cpu: crate::cpu::CpuTotals,
    pub gc_percent: i32,
    pub memory_limit: u64,
    pub freed_bytes: u64,
}

/// `MemStats::gc_cpu_fraction`: GC CPU time (idle marking excepted, as in
/// Go) over wall time since the heap started times the CPUs.
pub(crate) fn gc_cpu_fraction() -> f64 {
    fraction(&crate::cpu::totals())
}

fn fraction(cpu: &crate::cpu::CpuTotals) -> f64 {
    let capacity = START
        .get()
        .map(|s| s.elapsed().as_nanos() as f64)
        .unwrap_or(0.0)
        * f64::from(crate::pacer::procs());
    if capacity > 0.0 {
        (cpu.total() - cpu.idle) as f64 / capacity
    } else {
        0.0
    }
}

/// Reads the current memory statistics. Never stops the world.
pub fn read_mem_stats() -> MemStats {
    snapshot().0
}

/// Reads every statistic once: the atomics with `Relaxed` loads, the page
/// heap's figures under its lock (held briefly by allocators, never during
/// a stop), and `CYCLES` for a copy.
pub(crate) fn snapshot() -> (MemStats, Extra) {
    crate::options::init();
    let mallocs = COUNTERS.mallocs.load(Relaxed);
    let frees = COUNTERS.frees.load(Relaxed).min(mallocs);
    let alloc_bytes = COUNTERS.alloc_bytes.load(Relaxed);
    let freed_bytes = COUNTERS.freed_bytes.load(Relaxed).min(alloc_bytes);
    let heap_alloc = alloc_bytes - freed_bytes;
    let pages = crate::heap::page_figures();
    let (heap_sys, heap_idle) = (pages.sys, pages.free);
    let gc_sys = crate::heap::meta_bytes();
    let by_size = std::array::from_fn(|i| SizeClassStats {
        size: if i == 0 {
            0
        } else {
            crate::sizeclass::CLASS_SIZES[i]
        },
        mallocs: BY_SIZE.mallocs[i].load(Relaxed),
        frees: BY_SIZE.frees[i].load(Relaxed),
    });
    let c = CYCLES.lock().unwrap_or_else(|e| e.into_inner());
    let gc_cpu = crate::cpu::totals();
    let gc_percent = crate::pacer::GC_PERCENT.load(Relaxed);
    let stats = MemStats {
        alloc: heap_alloc,
        total_alloc: alloc_bytes,
        sys: heap_sys + gc_sys,
        mallocs,
        frees,
        heap_alloc,
        heap_sys,
        heap_idle,
        heap_inuse: heap_sys - heap_idle,
        heap_released: pages.released,
        heap_objects: mallocs - frees,
        gc_sys,
        next_gc: crate::pacer::NEXT_GC.load(Relaxed),
        last_gc: c.last_gc,
        pause_total_ns: c.pause_total_ns,
        pause_ns: c.pause_ns,
        pause_end: c.pause_end,
        blocked_hist: BLOCKED.hist(),
        blocked_total_ns: BLOCKED.total_ns(),
        assist_hist: ASSISTS.hist(),
        assist_total_ns: ASSISTS.total_ns(),
        num_gc: c.num_gc,
        num_forced_gc: c.num_forced_gc,
        gc_cpu_fraction: fraction(&gc_cpu),
        enable_gc: gc_percent >= 0,
        by_size,
    };
    let extra = Extra {
        heap_live: c.heap_live,
        heap_scan: c.heap_scan,
        pause_hist: c.pause_hist,
        pause_hist_ns: c.pause_hist_ns,
        gc_cpu,
        gc_percent,
        memory_limit: crate::pacer::MEMORY_LIMIT.load(Relaxed),
        freed_bytes,
    };
    (stats, extra)
}
