//! Metrics: every runtime metric declared once, read by name (Go's
//! `runtime/metrics`), exposed in Prometheus' text format.
//!
//! What: `METRICS` is the one registry: each entry is a [`Description`]
//! (a name in Go's `runtime/metrics` style, `/path/to/thing:unit`, its
//! kind, whether it is cumulative, and what it means) and the function that
//! computes its value. [`all`] lists the descriptions, [`read`] fills
//! [`Sample`]s by name, [`prometheus`] writes the whole registry in the
//! Prometheus text exposition format, and with the `metrics` cargo feature
//! [`export_to_facade`] publishes it through the `metrics` facade crate.
//! `docs/metrics.md` is generated from the registry (a test fails when it
//! drifts: regenerate with `TRICOLOR_BLESS=1 cargo test -p tricolor --lib
//! metrics`).
//!
//! Algorithm: a read takes one statistics snapshot (`stats::snapshot`, the
//! same one `read_mem_stats` returns, so metrics equal the corresponding
//! `MemStats` fields) and computes each requested metric from it. Nothing
//! stops the world: counters are `Relaxed` atomic loads; the page-heap
//! figures are read under the page-heap lock and the cycle records under
//! `CYCLES`, both held only briefly by their writers and never during a
//! stop. A read of every metric takes a few microseconds.
//!
//! Invariants: names are unique and sorted (a test checks); the
//! `/memory/classes/...` metrics other than `total` partition
//! `/memory/classes/total:bytes` exactly, in every snapshot (the
//! object bytes are clamped to the in-use span bytes, which a racing sweep
//! may briefly make smaller than the counters say).
//!
//! Adding a metric (e.g. `/sync/pool/...` for the pool): one more entry in
//! `METRICS`, in name order, whose reader computes the value from the
//! snapshot or reads the subsystem's own atomics; [`all`], [`read`],
//! [`prometheus`] and the facade export pick it up, and the docs table is
//! regenerated as above.
//!
//! # Examples
//!
//! ```
//! use tricolor::metrics::{self, Sample, Value};
//!
//! tricolor::gc();
//! let mut samples = [
//!     Sample::new("/gc/cycles/total:gc-cycles"),
//!     Sample::new("/gc/heap/live:bytes"),
//!     Sample::new("/gc/pauses:seconds"),
//! ];
//! metrics::read(&mut samples).unwrap();
//! assert!(samples[0].value.as_u64().unwrap() >= 1);
//! let pauses = samples[2].value.as_histogram().unwrap();
//! assert!(pauses.counts.iter().sum::<u64>() >= 1);
//!
//! // Unknown names are reported, never a panic.
//! let mut bad = [Sample::new("/gc/heap/nope:bytes")];
//! assert!(metrics::read(&mut bad).is_err());
//! assert!(matches!(bad[0].value, Value::Bad));
//!
//! // Every metric, with its description.
//! for d in metrics::all() {
//!     assert!(d.name.starts_with('/') && d.name.contains(':'));
//! }
//!
//! // The Prometheus text format, for an existing /metrics endpoint.
//! let text = metrics::prometheus();
//! assert!(text.contains("# TYPE tricolor_gc_heap_live_bytes gauge"));
//! assert!(text.contains("tricolor_gc_pauses_seconds_bucket{le=\"+Inf\"}"));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::stats::{Extra, MemStats, BLOCKED_BUCKETS};

/// The type of a metric's value (Go's `metrics.ValueKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An unsigned integer ([`Value::U64`]).
    U64,
    /// A floating-point number ([`Value::F64`]).
    F64,
    /// A histogram of floating-point observations ([`Value::Histogram`]).
    Histogram,
}

/// What a metric is (Go's `metrics.Description`).
#[derive(Clone, Copy, Debug)]
pub struct Description {
    /// The name: `/path:unit`, e.g. `/gc/heap/live:bytes`.
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// The type of its value.
    pub kind: Kind,
    /// Whether it only grows (a count or a sum since the heap started).
    pub cumulative: bool,
}

/// A histogram (Go's `metrics.Float64Histogram`, plus the sum of the
/// observations, which the Prometheus format needs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// `counts[i]` observations fell in `[buckets[i], buckets[i + 1])`.
    pub counts: Vec<u64>,
    /// Bucket boundaries, increasing, one more than `counts`; the last is
    /// `+inf`.
    pub buckets: Vec<f64>,
    /// The sum of the observations.
    pub sum: f64,
}

/// A metric's value (Go's `metrics.Value`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// An unsigned integer.
    U64(u64),
    /// A floating-point number.
    F64(f64),
    /// A histogram.
    Histogram(Histogram),
    /// No such metric (Go's `KindBad`), or not read yet.
    #[default]
    Bad,
}

impl Value {
    /// The integer, if this is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// The floating-point number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::F64(v) => Some(*v),
            _ => None,
        }
    }

    /// The histogram, if this is one.
    pub fn as_histogram(&self) -> Option<&Histogram> {
        match self {
            Value::Histogram(h) => Some(h),
            _ => None,
        }
    }
}

/// A metric name and, after [`read`], its value (Go's `metrics.Sample`).
#[derive(Clone, Debug)]
pub struct Sample {
    /// The metric's name, e.g. `/gc/heap/live:bytes`.
    pub name: Cow<'static, str>,
    /// Its value; [`Value::Bad`] if the name is unknown.
    pub value: Value,
}

impl Sample {
    /// A sample of metric `name`, not read yet.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Sample {
            name: name.into(),
            value: Value::Bad,
        }
    }
}

/// [`read`] was given a name that is not a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMetric {
    /// The first unknown name.
    pub name: String,
}

impl std::fmt::Display for UnknownMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tricolor: unknown metric {:?} (names look like /gc/heap/live:bytes; \
             tricolor::metrics::all() lists them)",
            self.name
        )
    }
}

impl std::error::Error for UnknownMetric {}

/// One statistics snapshot: what every metric is computed from.
struct Snapshot {
    stats: MemStats,
    extra: Extra,
}

impl Snapshot {
    fn take() -> Self {
        let (stats, extra) = crate::stats::snapshot();
        Snapshot { stats, extra }
    }

    /// In-use span bytes holding objects (the object bytes, clamped).
    fn object_bytes(&self) -> u64 {
        self.stats.heap_alloc.min(self.stats.heap_inuse)
    }
}

/// A registry entry: the description and how to compute the value.
struct Metric {
    description: Description,
    read: fn(&Snapshot) -> Value,
}

const fn metric(
    name: &'static str,
    kind: Kind,
    cumulative: bool,
    description: &'static str,
    read: fn(&Snapshot) -> Value,
) -> Metric {
    Metric {
        description: Description {
            name,
            description,
            kind,
            cumulative,
        },
        read,
    }
}

use Kind::{Histogram as H, F64, U64};

/// Every metric, in name order.
const METRICS: &[Metric] = &[
    metric(
        "/cpu/classes/gc/mark/assist:cpu-seconds",
        F64,
        true,
        "CPU time mutator threads spent scanning the heap in assists (work they owed for allocating while marking), on their own thread CPU clocks around each assist that found work.",
        |s| secs(s.extra.gc_cpu.assist),
    ),
    metric(
        "/cpu/classes/gc/mark/dedicated:cpu-seconds",
        F64,
        true,
        "CPU time of the dedicated mark threads, on their own thread CPU clocks: the collector thread from a cycle's start to its stop request (handshakes, roots, concurrent mark, termination rounds) and the background mark workers while they hold work.",
        |s| secs(s.extra.gc_cpu.dedicated),
    ),
    metric(
        "/cpu/classes/gc/mark/idle:cpu-seconds",
        F64,
        true,
        "CPU time of idle-priority mark workers: always 0 (tricolor has none; kept for Go's set of names).",
        |s| secs(s.extra.gc_cpu.idle),
    ),
    metric(
        "/cpu/classes/gc/pause:cpu-seconds",
        F64,
        true,
        "Estimated CPU time of stops of the world, as Go estimates it: each stop's wall time (request to restart, given-up stops included) times the CPUs the program may use, since no mutator runs meanwhile. With gcstoptheworld=1 the whole cycle is a stop.",
        |s| secs(s.extra.gc_cpu.pause),
    ),
    metric(
        "/cpu/classes/gc/sweep:cpu-seconds",
        F64,
        true,
        "CPU time of the collector thread's background sweep after each stop, the Drops of dead values included, on its thread CPU clock (a tricolor extension: Go counts its background sweeper as user time). Mutators sweeping lazily when they need a span are not counted.",
        |s| secs(s.extra.gc_cpu.sweep),
    ),
    metric(
        "/cpu/classes/gc/total:cpu-seconds",
        F64,
        true,
        "Estimated total CPU time spent on collection work: the sum of the other /cpu/classes/gc metrics (each counter read once per snapshot, so the sum is exact).",
        |s| secs(s.extra.gc_cpu.total()),
    ),
    metric(
        "/gc/assists:seconds",
        H,
        true,
        "Wall-clock durations of mark assists: intervals in which an allocating thread scanned heap objects because its allocation outpaced marking (MemStats::assist_hist).",
        |s| log2_histogram(&s.stats.assist_hist, s.stats.assist_total_ns),
    ),
    metric(
        "/gc/cycles/automatic:gc-cycles",
        U64,
        true,
        "Completed cycles started because the heap reached its goal.",
        |s| Value::U64(u64::from(s.stats.num_gc - s.stats.num_forced_gc)),
    ),
    metric(
        "/gc/cycles/forced:gc-cycles",
        U64,
        true,
        "Completed cycles forced by tricolor::gc() (MemStats::num_forced_gc).",
        |s| Value::U64(u64::from(s.stats.num_forced_gc)),
    ),
    metric(
        "/gc/cycles/total:gc-cycles",
        U64,
        true,
        "Completed cycles (MemStats::num_gc).",
        |s| Value::U64(u64::from(s.stats.num_gc)),
    ),
    metric(
        "/gc/gogc:percent",
        U64,
        false,
        "The GC percentage (GOGC: TRICOLOR_GC, set_gc_percent); 18446744073709551615 (u64::MAX) when automatic collection is off, as Go reports -1.",
        |s| Value::U64(if s.extra.gc_percent < 0 { u64::MAX } else { s.extra.gc_percent as u64 }),
    ),
    metric(
        "/gc/gomemlimit:bytes",
        U64,
        false,
        "The soft memory limit (GOMEMLIMIT: TRICOLOR_MEMLIMIT, set_memory_limit); u64::MAX when there is none.",
        |s| Value::U64(s.extra.memory_limit),
    ),
    metric(
        "/gc/heap/allocs-by-size:bytes",
        H,
        true,
        "Objects allocated, by slot size (object plus header, rounded to its size class); objects above 32 KiB fall in the last bucket. The sum is /gc/heap/allocs:bytes.",
        |s| by_size(&s.stats, true),
    ),
    metric(
        "/gc/heap/allocs:bytes",
        U64,
        true,
        "Bytes of heap objects allocated, by slot size (MemStats::total_alloc).",
        |s| Value::U64(s.stats.total_alloc),
    ),
    metric(
        "/gc/heap/allocs:objects",
        U64,
        true,
        "Heap objects allocated (MemStats::mallocs).",
        |s| Value::U64(s.stats.mallocs),
    ),
    metric(
        "/gc/heap/frees-by-size:bytes",
        H,
        true,
        "Objects freed by the sweeper, by slot size, in the buckets of /gc/heap/allocs-by-size:bytes. The sum is /gc/heap/frees:bytes.",
        |s| by_size(&s.stats, false),
    ),
    metric(
        "/gc/heap/frees:bytes",
        U64,
        true,
        "Bytes of heap objects freed by the sweeper (total_alloc - heap_alloc).",
        |s| Value::U64(s.extra.freed_bytes),
    ),
    metric(
        "/gc/heap/frees:objects",
        U64,
        true,
        "Heap objects freed by the sweeper (MemStats::frees).",
        |s| Value::U64(s.stats.frees),
    ),
    metric(
        "/gc/heap/goal:bytes",
        U64,
        false,
        "The heap goal: the heap size the next cycle should finish at (MemStats::next_gc).",
        |s| Value::U64(s.stats.next_gc),
    ),
    metric(
        "/gc/heap/live:bytes",
        U64,
        false,
        "Bytes of objects the last cycle marked live (0 before the first cycle).",
        |s| Value::U64(s.extra.heap_live),
    ),
    metric(
        "/gc/heap/objects:objects",
        U64,
        false,
        "Heap objects allocated and not freed yet, reachable or not (MemStats::heap_objects).",
        |s| Value::U64(s.stats.heap_objects),
    ),
    metric(
        "/gc/pauses:seconds",
        H,
        true,
        "Stop-the-world pauses of the collector, one per cycle, from the stop's request to the restart (stops given up and retried are not in it; they are in MemStats::pause_total_ns).",
        |s| log2_histogram(&s.extra.pause_hist, s.extra.pause_hist_ns),
    ),
    metric(
        "/gc/scan/heap:bytes",
        U64,
        false,
        "Bytes of heap objects the last cycle scanned.",
        |s| Value::U64(s.extra.heap_scan),
    ),
    metric(
        "/memory/classes/heap/free:bytes",
        U64,
        false,
        "Free heap span bytes still backed by memory, reusable without asking the OS (heap_idle - heap_released).",
        |s| Value::U64(s.stats.heap_idle - released(s)),
    ),
    metric(
        "/memory/classes/heap/objects:bytes",
        U64,
        false,
        "Bytes of allocated heap objects, reachable or not yet swept (MemStats::heap_alloc; clamped to the in-use span bytes while a sweep races the read).",
        |s| Value::U64(s.object_bytes()),
    ),
    metric(
        "/memory/classes/heap/released:bytes",
        U64,
        false,
        "Free heap span bytes returned to the OS (MemStats::heap_released).",
        |s| Value::U64(released(s)),
    ),
    metric(
        "/memory/classes/heap/unused:bytes",
        U64,
        false,
        "Bytes of in-use spans that hold no object: free slots and span tails (heap_inuse - heap_alloc).",
        |s| Value::U64(s.stats.heap_inuse - s.object_bytes()),
    ),
    metric(
        "/memory/classes/metadata/other:bytes",
        U64,
        false,
        "Heap metadata: span descriptors with their allocation and mark bitmaps (MemStats::gc_sys).",
        |s| Value::U64(s.stats.gc_sys),
    ),
    metric(
        "/memory/classes/total:bytes",
        U64,
        false,
        "All memory the heap mapped (MemStats::sys): the sum of the other /memory/classes metrics.",
        |s| Value::U64(s.stats.sys),
    ),
    metric(
        "/sched/pauses/blocked/gc:seconds",
        H,
        true,
        "Intervals mutator threads spent blocked by the collector, as they measured them (a pin, a root operation, a thread start or exit waiting for a stop to end; MemStats::blocked_hist).",
        |s| log2_histogram(&s.stats.blocked_hist, s.stats.blocked_total_ns),
    ),
    metric(
        "/sync/pool/pools:pools",
        U64,
        false,
        "tricolor::Pool values alive.",
        |_| Value::U64(crate::pool::pool_stats().pools),
    ),
    metric(
        "/sync/pool/primary:objects",
        U64,
        false,
        "Values in the pools' primary caches (shared shards and threads' private slots put since the last cycle); approximate while pools are in use.",
        |_| Value::U64(crate::pool::pool_stats().primary),
    ),
    metric(
        "/sync/pool/victim:objects",
        U64,
        false,
        "Values in the pools' victim caches (put before the last cycle; dropped at the next one unless taken); approximate while pools are in use.",
        |_| Value::U64(crate::pool::pool_stats().victim),
    ),
];

/// Nanoseconds as seconds.
fn secs(ns: u64) -> Value {
    Value::F64(ns as f64 / 1e9)
}

fn released(s: &Snapshot) -> u64 {
    s.stats.heap_released.min(s.stats.heap_idle)
}

/// A histogram of log2 buckets of nanoseconds (`stats::log2_bucket`), in
/// seconds: bucket 0 is `[0, 2ns)`, bucket `i` is `[2^i, 2^(i+1)) ns`, the
/// last is open.
fn log2_histogram(counts: &[u64; BLOCKED_BUCKETS], sum_ns: u64) -> Value {
    let mut buckets: Vec<f64> = (0..BLOCKED_BUCKETS)
        .map(|i| {
            if i == 0 {
                0.0
            } else {
                (1u64 << i) as f64 / 1e9
            }
        })
        .collect();
    buckets.push(f64::INFINITY);
    Value::Histogram(Histogram {
        counts: counts.to_vec(),
        buckets,
        sum: sum_ns as f64 / 1e9,
    })
}

/// Allocations (or frees) by slot size: one bucket per size class
/// `[previous size + 1, size + 1)`, then one for large objects.
fn by_size(m: &MemStats, allocs: bool) -> Value {
    let mut counts = Vec::with_capacity(m.by_size.len());
    let mut buckets = vec![1.0];
    let mut small = 0;
    for c in &m.by_size[1..] {
        let n = if allocs { c.mallocs } else { c.frees };
        small += n;
        counts.push(n);
        buckets.push(f64::from(c.size) + 1.0);
    }
    let total = if allocs { m.mallocs } else { m.frees };
    counts.push(total.saturating_sub(small));
    buckets.push(f64::INFINITY);
    let sum = if allocs {
        m.total_alloc
    } else {
        m.total_alloc - m.heap_alloc
    };
    Value::Histogram(Histogram {
        counts,
        buckets,
        sum: sum as f64,
    })
}

/// Every metric's description, in name order (Go's `metrics.All`).
pub fn all() -> Vec<Description> {
    METRICS.iter().map(|m| m.description).collect()
}

fn find(name: &str) -> Option<&'static Metric> {
    METRICS
        .binary_search_by(|m| m.description.name.cmp(name))
        .ok()
        .map(|i| &METRICS[i])
}

/// Fills each sample's value from one statistics snapshot (Go's
/// `metrics.Read`). Never stops the world. A name that is not a metric gets
/// [`Value::Bad`], the others are filled anyway, and the first unknown name
/// is returned as the error.
pub fn read(samples: &mut [Sample]) -> Result<(), UnknownMetric> {
    let snap = Snapshot::take();
    let mut unknown = None;
    for s in samples.iter_mut() {
        s.value = match find(&s.name) {
            Some(m) => (m.read)(&snap),
            None => {
                unknown.get_or_insert_with(|| s.name.to_string());
                Value::Bad
            }
        };
    }
    unknown.map_or(Ok(()), |name| Err(UnknownMetric { name }))
}

/// Every metric's current value, in name order, from one snapshot.
pub fn read_all() -> Vec<Sample> {
    let snap = Snapshot::take();
    METRICS
        .iter()
        .map(|m| Sample {
            name: Cow::Borrowed(m.description.name),
            value: (m.read)(&snap),
        })
        .collect()
}

/// The Prometheus name of a metric, derived as Go's client_golang derives
/// `go_...` names from runtime/metrics names, with the `tricolor` namespace:
/// `/gc/heap/live:bytes` → `tricolor_gc_heap_live_bytes`; `/`, `-` and
/// `:` become `_`, `*` becomes `_`, a `/` in the unit becomes `_per_`, and
/// cumulative non-histogram metrics (Prometheus counters) end in `_total`.
pub fn prometheus_name(d: &Description) -> String {
    let (path, unit) = d.name.split_once(':').unwrap_or((d.name, ""));
    let mut out = String::from("tricolor");
    for part in path.split('/').filter(|p| !p.is_empty()) {
        out.push('_');
        out.push_str(&part.replace(['-', '*'], "_"));
    }
    if !unit.is_empty() {
        out.push('_');
        out.push_str(&unit.replace('/', "_per_").replace(['-', '*'], "_"));
    }
    if d.cumulative && d.kind != Kind::Histogram {
        out.push_str("_total");
    }
    out
}

/// A number in the Prometheus text format.
fn prom_f64(x: f64) -> String {
    if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

/// Every metric in the Prometheus text exposition format (version 0.0.4),
/// from one snapshot: `# HELP` and `# TYPE` lines, then the samples;
/// integers and floats become gauges (counters if cumulative), histograms
/// become Prometheus histograms (`_bucket{le="..."}` cumulative counts, up
/// to `le="+Inf"`, then `_sum` and `_count`). Append it to a service's
/// existing `/metrics` response.
pub fn prometheus() -> String {
    let mut out = String::with_capacity(16 << 10);
    for s in read_all() {
        let Some(m) = find(&s.name) else { continue };
        let d = &m.description;
        let name = prometheus_name(d);
        let help = d.description.replace('\\', "\\\\").replace('\n', "\\n");
        let ty = match (d.kind, d.cumulative) {
            (Kind::Histogram, _) => "histogram",
            (_, true) => "counter",
            (_, false) => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
        let _ = match &s.value {
            Value::U64(v) => writeln!(out, "{name} {v}"),
            Value::F64(v) => writeln!(out, "{name} {}", prom_f64(*v)),
            Value::Histogram(h) => {
                let mut cum = 0u64;
                for (i, c) in h.counts.iter().enumerate() {
                    cum += c;
                    let le = h.buckets.get(i + 1).copied().unwrap_or(f64::INFINITY);
                    let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cum}", prom_f64(le));
                }
                if h.buckets.last() != Some(&f64::INFINITY) {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
                }
                let _ = writeln!(out, "{name}_sum {}", prom_f64(h.sum));
                writeln!(out, "{name}_count {cum}")
            }
            Value::Bad => Ok(()),
        };
    }
    out
}

/// Publishes every metric through the `metrics` facade crate (the `metrics`
/// cargo feature), to whatever recorder the program installed (e.g. a
/// Prometheus exporter), under its [`prometheus_name`]: cumulative integers
/// as counters (`absolute`), other numbers as gauges, and each histogram as
/// a counter `<name>_bucket` per bucket (label `le`, cumulative counts, as
/// in the text format), a counter `<name>_count` and a gauge `<name>_sum`
/// (the facade's own histograms take single observations, which a
/// bucketed histogram cannot give back). Call it before each scrape, or
/// periodically.
#[cfg(feature = "metrics")]
pub fn export_to_facade() {
    for s in read_all() {
        let Some(m) = find(&s.name) else { continue };
        let d = &m.description;
        let name = prometheus_name(d);
        match &s.value {
            Value::U64(v) if d.cumulative => ::metrics::counter!(name).absolute(*v),
            Value::U64(v) => ::metrics::gauge!(name).set(*v as f64),
            Value::F64(v) => ::metrics::gauge!(name).set(*v),
            Value::Histogram(h) => {
                let mut cum = 0u64;
                for (i, c) in h.counts.iter().enumerate() {
                    cum += c;
                    let le = prom_f64(h.buckets.get(i + 1).copied().unwrap_or(f64::INFINITY));
                    ::metrics::counter!(format!("{name}_bucket"), "le" => le).absolute(cum);
                }
                ::metrics::counter!(format!("{name}_count")).absolute(cum);
                ::metrics::gauge!(format!("{name}_sum")).set(h.sum);
            }
            Value::Bad => {}
        }
    }
}

/// The `docs/metrics.md` table, generated from the registry.
#[cfg(test)]
fn doc_table() -> String {
    let mut s = String::from(
        "# Metrics\n\n\
         <!-- Generated from crates/tricolor/src/metrics.rs (METRICS); do not edit.\n     \
         Regenerate: TRICOLOR_BLESS=1 cargo test -p tricolor --lib metrics -->\n\n\
         Read them with `tricolor::metrics::read` (Go's `runtime/metrics` names), or\n\
         scrape `tricolor::metrics::prometheus()` (Prometheus names as in the second column).\n\
         Cumulative metrics only grow; histograms are in seconds or bytes per their unit.\n\n\
         | Name | Prometheus | Kind | Cumulative | Description |\n\
         |---|---|---|---|---|\n",
    );
    for d in all() {
        let kind = match d.kind {
            Kind::U64 => "u64",
            Kind::F64 => "f64",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(
            s,
            "| `{}` | `{}` | {kind} | {} | {} |",
            d.name,
            prometheus_name(&d),
            if d.cumulative { "yes" } else { "no" },
            d.description.replace('|', "\\|")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_well_formed() {
        for w in METRICS.windows(2) {
            assert!(
                w[0].description.name < w[1].description.name,
                "METRICS must be sorted by name, without duplicates: {} then {}",
                w[0].description.name,
                w[1].description.name
            );
        }
        for d in all() {
            let (path, unit) = d.name.split_once(':').expect("a name has a :unit");
            assert!(path.starts_with('/') && !unit.is_empty(), "{}", d.name);
            assert!(!d.description.is_empty(), "{}", d.name);
        }
    }

    #[test]
    fn prometheus_names_follow_client_golang() {
        let name = |n: &str| prometheus_name(&find(n).unwrap().description);
        assert_eq!(name("/gc/heap/live:bytes"), "tricolor_gc_heap_live_bytes");
        assert_eq!(
            name("/gc/cycles/total:gc-cycles"),
            "tricolor_gc_cycles_total_gc_cycles_total"
        );
        assert_eq!(
            name("/gc/heap/allocs:bytes"),
            "tricolor_gc_heap_allocs_bytes_total"
        );
        assert_eq!(name("/gc/pauses:seconds"), "tricolor_gc_pauses_seconds");
        assert_eq!(
            name("/cpu/classes/gc/total:cpu-seconds"),
            "tricolor_cpu_classes_gc_total_cpu_seconds_total"
        );
    }

    #[test]
    fn every_reader_returns_its_declared_kind() {
        for s in read_all() {
            let d = find(&s.name).unwrap().description;
            let ok = matches!(
                (d.kind, &s.value),
                (Kind::U64, Value::U64(_))
                    | (Kind::F64, Value::F64(_))
                    | (Kind::Histogram, Value::Histogram(_))
            );
            assert!(ok, "{}: declared {:?}, read {:?}", d.name, d.kind, s.value);
            if let Value::Histogram(h) = &s.value {
                assert_eq!(h.buckets.len(), h.counts.len() + 1, "{}", d.name);
                assert!(h.buckets.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
            }
        }
    }

    /// `docs/metrics.md` is generated from the registry; this fails when
    /// they differ. `TRICOLOR_BLESS=1` rewrites the file.
    #[test]
    fn docs_table_matches_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
        let want = doc_table();
        if std::env::var_os("TRICOLOR_BLESS").is_some() {
            std::fs::write(path, &want).expect("cannot write docs/metrics.md");
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/metrics.md is out of date with the metrics registry (METRICS in \
             crates/tricolor/src/metrics.rs); regenerate it with \
             `TRICOLOR_BLESS=1 cargo test -p tricolor --lib metrics` and commit it"
        );
    }

    /// With the `metrics` feature: every registry metric reaches the
    /// installed recorder under its Prometheus name.
    #[cfg(feature = "metrics")]
    #[test]
    fn facade_export_reaches_the_recorder() {
        use ::metrics::{
            Counter, CounterFn, Gauge, GaugeFn, Key, KeyName, Metadata, SharedString, Unit,
        };
        use std::sync::{Arc, Mutex};

        type Log = Arc<Mutex<Vec<(String, f64)>>>;
        struct Cell(String, Log);
        impl CounterFn for Cell {
            fn increment(&self, _: u64) {
                panic!("counters are set with absolute()");
            }
            fn absolute(&self, v: u64) {
                self.1.lock().unwrap().push((self.0.clone(), v as f64));
            }
        }
        impl GaugeFn for Cell {
            fn increment(&self, _: f64) {}
            fn decrement(&self, _: f64) {}
            fn set(&self, v: f64) {
                self.1.lock().unwrap().push((self.0.clone(), v));
            }
        }
        struct Rec(Log);
        fn key_text(k: &Key) -> String {
            let labels: Vec<String> = k
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            format!("{}{{{}}}", k.name(), labels.join(","))
        }
        impl ::metrics::Recorder for Rec {
            fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
            fn register_counter(&self, k: &Key, _: &Metadata<'_>) -> Counter {
                Counter::from_arc(Arc::new(Cell(key_text(k), self.0.clone())))
            }
            fn register_gauge(&self, k: &Key, _: &Metadata<'_>) -> Gauge {
                Gauge::from_arc(Arc::new(Cell(key_text(k), self.0.clone())))
            }
            fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> ::metrics::Histogram {
                panic!("histograms are exported as bucket counters");
            }
        }

        let log: Log = Arc::default();
        ::metrics::with_local_recorder(&Rec(log.clone()), export_to_facade);
        let got = log.lock().unwrap();
        for d in all() {
            let name = prometheus_name(&d);
            let want = if d.kind == Kind::Histogram {
                format!("{name}_count{{}}")
            } else {
                format!("{name}{{}}")
            };
            assert!(got.iter().any(|(k, _)| *k == want), "{want} not exported");
        }
        assert!(got
            .iter()
            .any(|(k, _)| k == "tricolor_gc_pauses_seconds_bucket{le=+Inf}"));
    }
}
