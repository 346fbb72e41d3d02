//! The sampling heap profiler (Go's `runtime/mprof.go` and
//! `runtime/pprof`'s heap profile).
//!
//! What: a Poisson sample of allocations, over bytes, with mean
//! [`mem_profile_rate`] (512 KiB by default, `TRICOLOR_MEMPROFILERATE`,
//! [`set_mem_profile_rate`]); each sampled allocation's stack is captured and
//! its free is recorded, so [`write_heap_profile`] can write Go's four heap
//! sample types (`alloc_objects`, `alloc_space`, `inuse_objects`,
//! `inuse_space`) as gzip'd pprof protobuf. Two sources feed it: objects of
//! the GC heap, and plain Rust allocations when [`crate::alloc::Tracking`] is
//! the global allocator.
//!
//! Algorithm:
//! 1. Every allocating thread keeps a countdown of bytes until its next
//!    sample (the GC heap's in its thread cache, `cache.rs`; the tracking
//!    allocator's and large GC objects' in a thread-local). The fast path is
//!    `countdown -= size; if countdown < 0 { slow() }`. With the rate at 0
//!    the countdown is `i64::MAX`: the branch is never taken.
//! 2. The slow path draws the next countdown from an exponential
//!    distribution of mean `rate` (`-ln(u) * rate`, `u` from a per-thread
//!    xorshift generator; rate 1 gives 0: every allocation is sampled),
//!    captures the raw instruction pointers of the stack (no symbols;
//!    `unwind.rs`: a DWARF unwinder with a rule cache), and
//!    records the allocation in the bucket of its (stack, size) and the
//!    object's address in the set of live sampled objects.
//! 3. Frees: the sweeper asks, per span, [`span_sampled`] (one load of a
//!    counting filter keyed by span); only for such spans does it look the
//!    span's dead slots up in the live set ([`sweep_small_frees`],
//!    [`sweep_large_free`]). The tracking allocator asks the same of a
//!    counting filter keyed by 4 KiB page on every free.
//! 4. [`write_heap_profile`] snapshots the buckets, symbolizes each distinct
//!    address once (`backtrace::resolve`, with inlined frames), drops the
//!    profiler's and allocator's own leading frames, scales each bucket's
//!    counts by Go's `scaleHeapSample` and encodes the profile.
//!
//! Invariants: an address is in the live set iff its object was sampled and
//! its free has not been recorded; while it is, the filter counter it hashes
//! to is positive (a counter is incremented before the insert and
//! decremented after the removal), so a zero counter proves "not sampled".
//! Inuse figures are current (Go's are as of the last completed cycle).
//!
//! Shared state and synchronisation: [`TABLE`] (buckets and live sets) under
//! one mutex, taken only on the slow paths (sampling is rare) and by the
//! writer; the filters are atomic counters; `RATE` is an atomic. A
//! thread-local `BUSY` flag is set whenever this thread holds `TABLE` or
//! captures a stack: the tracking allocator neither samples nor looks frees
//! up while it is set, so the allocations the profiler makes itself never
//! re-enter it (and never deadlock on `TABLE`).

pub mod proto;
mod unwind;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crate::heap::SpanMeta;
use crate::sizeclass::{SPAN_BYTES, SPAN_SHIFT};

/// Go's default `MemProfileRate`: one sample per 512 KiB allocated, on average.
pub const DEFAULT_MEM_PROFILE_RATE: i64 = 512 * 1024;

/// The rate; -1 until the environment was read.
static RATE: AtomicI64 = AtomicI64::new(-1);

/// Most frames kept per stack.
const MAX_DEPTH: usize = 64;

/// Parses a `TRICOLOR_MEMPROFILERATE` value: bytes (with an optional KiB or
/// MiB suffix), or `off` (= 0).
pub(crate) fn parse_rate(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let (num, mult) = if let Some(n) = t.strip_suffix("KiB") {
        (n, 1024)
    } else if let Some(n) = t.strip_suffix("MiB") {
        (n, 1024 * 1024)
    } else {
        (t.strip_suffix('B').unwrap_or(t), 1)
    };
    num.trim()
        .parse::<i64>()
        .ok()
        .filter(|&n| n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!(
                "expected a number of bytes (e.g. 524288 or 512KiB; 1 samples every allocation) or `off`, got {s:?}"
            )
        })
}

/// Reads `TRICOLOR_MEMPROFILERATE` once (from [`crate::options`], or from the
/// first sample). Uses `libc::getenv`: it may run inside the global
/// allocator, where `std::env` (which allocates) is not welcome.
pub(crate) fn init_rate() {
    if RATE.load(Relaxed) != -1 {
        return;
    }
    let mut rate = DEFAULT_MEM_PROFILE_RATE;
    // SAFETY: a NUL-terminated name; getenv returns NULL or a C string valid
    // until the environment changes, read right away.
    let v = unsafe { libc::getenv(c"TRICOLOR_MEMPROFILERATE".as_ptr()) };
    if !v.is_null() {
        // SAFETY: a non-NULL getenv result is a NUL-terminated string.
        let bytes = unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes();
        match std::str::from_utf8(bytes)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(parse_rate)
        {
            Ok(r) => rate = r,
            Err(e) => eprintln!(
                "tricolor: ignoring TRICOLOR_MEMPROFILERATE: {e}; using the default ({DEFAULT_MEM_PROFILE_RATE})"
            ),
        }
    }
    let _ = RATE.compare_exchange(-1, rate, Relaxed, Relaxed);
}

#[inline]
fn rate() -> i64 {
    let r = RATE.load(Relaxed);
    if r >= 0 {
        return r;
    }
    busy(init_rate);
    RATE.load(Relaxed)
}

/// The heap profile's sampling rate: the mean number of bytes allocated
/// between two samples (Go's `runtime.MemProfileRate`). 0: profiling off.
///
/// ```
/// assert!(tricolor::profile::mem_profile_rate() >= 0);
/// ```
pub fn mem_profile_rate() -> i64 {
    rate()
}

/// Sets the sampling rate and returns the previous one. 1 samples every
/// allocation, 0 turns profiling off. Like Go's `MemProfileRate`, set it as
/// early as possible: a thread picks a new rate up at its next sample (a
/// thread that saw rate 0 never samples again).
///
/// ```
/// let old = tricolor::profile::set_mem_profile_rate(1);
/// tricolor::profile::set_mem_profile_rate(old);
/// ```
pub fn set_mem_profile_rate(rate: i64) -> i64 {
    let old = self::rate();
    RATE.store(rate.max(0), Relaxed);
    old
}

// ---------------------------------------------------------------------------
// Per-thread state.

/// Per-thread profiler state (const-initialised, no destructor: it may be
/// used inside the global allocator at any time, thread exit included).
pub(crate) struct Local {
    /// Set while this thread is inside the profiler (see the module comment).
    pub(crate) busy: Cell<bool>,
    /// Bytes until the next sample of a tracked or large GC allocation.
    pub(crate) countdown: Cell<i64>,
    /// xorshift state; 0 until seeded.
    pub(crate) rng: Cell<u64>,
    /// The bounds of this thread's stack mapping, `[base, top)`; top 0
    /// until a stack capture needed them (`unwind.rs`).
    #[cfg_attr(
        not(all(target_os = "linux", target_arch = "x86_64")),
        allow(dead_code, reason = "only the x86-64 stack walk uses it")
    )]
    pub(crate) stack: Cell<(u64, u64)>,
}

thread_local! {
    pub(crate) static LOCAL: Local = const {
        Local {
            busy: Cell::new(false),
            countdown: Cell::new(0),
            rng: Cell::new(0),
            stack: Cell::new((0, 0)),
        }
    };
}

/// Runs `f` with this thread's `BUSY` flag set (restoring it after).
pub(crate) fn busy<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            let was = self.0;
            LOCAL.with(|l| l.busy.set(was));
        }
    }
    let _reset = Reset(LOCAL.with(|l| l.busy.replace(true)));
    f()
}

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

fn seed() -> u64 {
    static N: AtomicI64 = AtomicI64::new(0);
    let n = N.fetch_add(1, Relaxed) as u64;
    let mut z = n
        .wrapping_add(&n as *const u64 as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 31)) | 1
}

/// Draws the bytes until the next sample (Go's `nextSample`).
fn next_sample(rng: &mut u64) -> i64 {
    match rate() {
        0 => i64::MAX,
        1 => 0,
        r => {
            // u in (0, 1]: 53 random bits.
            let u = ((xorshift(rng) >> 11) + 1) as f64 / (1u64 << 53) as f64;
            (-u.ln() * r as f64).min(i64::MAX as f64 / 2.0) as i64
        }
    }
}

/// The slow path of a countdown that went negative: re-arms it and says
/// whether the allocation is to be sampled. Countdowns start at 0 with an
/// unseeded generator: a thread's first trip seeds it and draws the first
/// countdown (Go draws it when the `mcache` is created), then charges the
/// allocation that tripped it (the countdown holds `-size`) against it.
#[cold]
pub(crate) fn countdown_expired(countdown: &mut i64, rng: &mut u64) -> bool {
    if *rng == 0 {
        *rng = seed();
        *countdown = countdown.saturating_add(next_sample(rng));
        if *countdown >= 0 {
            return false;
        }
    }
    *countdown = next_sample(rng);
    *countdown != i64::MAX
}

// ---------------------------------------------------------------------------
// Filters.

/// Counters of the filter over sampled tracked blocks, one per 4 KiB page
/// of address space modulo 256 MiB: frees of neighbouring blocks read the
/// same cache line (a hashed index made that load a cache miss on nearly
/// every free); a page holding a sampled block sends the frees of its other
/// blocks to the lookup too, about 4 KiB / rate of all frees (0.8% at the
/// default rate).
const BLOCK_FILTER: usize = 1 << 16;
static BLOCKS: [AtomicU32; BLOCK_FILTER] = [const { AtomicU32::new(0) }; BLOCK_FILTER];
/// Counters of the filter over spans holding sampled GC objects.
const SPAN_FILTER: usize = 1 << 12;
static SPANS: [AtomicU32; SPAN_FILTER] = [const { AtomicU32::new(0) }; SPAN_FILTER];

#[inline(always)]
fn block_slot(addr: usize) -> &'static AtomicU32 {
    &BLOCKS[(addr >> 12) % BLOCK_FILTER]
}

#[inline(always)]
fn span_slot(addr: usize) -> &'static AtomicU32 {
    let h = ((addr >> SPAN_SHIFT) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52;
    &SPANS[h as usize % SPAN_FILTER]
}

/// Whether the span starting at `start` may hold sampled objects (false
/// proves it holds none).
#[inline]
pub(crate) fn span_sampled(start: usize) -> bool {
    span_slot(start).load(Relaxed) != 0
}

/// Whether the tracked block at `addr` may be sampled (false proves not).
#[inline(always)]
pub(crate) fn block_maybe_sampled(addr: usize) -> bool {
    block_slot(addr).load(Relaxed) != 0
}

// ---------------------------------------------------------------------------
// Records.

/// One allocation site: a stack and an object size.
struct Bucket {
    stack: Box<[usize]>,
    size: u64,
    allocs: u64,
    frees: u64,
}

/// Buckets and live sampled objects.
struct Table {
    /// Hash of (stack, size) -> buckets with that hash (looked up without
    /// allocating: a sample of an existing site allocates nothing).
    index: HashMap<u64, Vec<usize>>,
    buckets: Vec<Bucket>,
    /// Live sampled GC objects: slot address -> bucket.
    gc_live: BTreeMap<usize, usize>,
    /// Live sampled tracked blocks: address -> bucket.
    tracked_live: HashMap<usize, usize>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    busy(|| {
        let mut g = table();
        let t = g.get_or_insert_with(|| Table {
            index: HashMap::new(),
            buckets: Vec::new(),
            gc_live: BTreeMap::new(),
            tracked_live: HashMap::new(),
        });
        f(t)
    })
}

/// Records a sampled allocation of `size` bytes at `addr`.
#[cold]
#[inline(never)]
fn record(addr: usize, size: usize, gc: bool) {
    busy(|| {
        let mut buf = [0usize; MAX_DEPTH];
        let n = unwind::capture(&mut buf);
        let stack = &buf[..n];
        if gc {
            span_slot(addr).fetch_add(1, Relaxed);
        } else {
            block_slot(addr).fetch_add(1, Relaxed);
        }
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ size as u64;
        for &ip in stack {
            h = (h ^ ip as u64).wrapping_mul(0x0100_0000_01b3);
        }
        with_table(|t| {
            let found = t.index.get(&h).and_then(|c| {
                c.iter()
                    .copied()
                    .find(|&b| t.buckets[b].size == size as u64 && *t.buckets[b].stack == *stack)
            });
            let b = match found {
                Some(b) => b,
                None => {
                    let b = t.buckets.len();
                    t.buckets.push(Bucket {
                        stack: stack.into(),
                        size: size as u64,
                        allocs: 0,
                        frees: 0,
                    });
                    t.index.entry(h).or_default().push(b);
                    b
                }
            };
            t.buckets[b].allocs += 1;
            if gc {
                t.gc_live.insert(addr, b);
            } else {
                t.tracked_live.insert(addr, b);
            }
        })
    })
}

/// The slow path of a GC small-object countdown (`cache.rs`): samples the
/// object in slot `slot` of `size` bytes if the draw says so.
#[cold]
#[inline(never)]
pub(crate) fn gc_countdown(countdown: &mut i64, rng: &mut u64, slot: usize, size: usize) {
    if countdown_expired(countdown, rng) {
        record(slot, size, true);
    }
}

/// Counts a large GC object down on this thread's countdown; samples it
/// when due.
pub(crate) fn gc_large(slot: usize, size: usize) {
    if tick(size) {
        record(slot, size, true);
    }
}

/// Counts `size` bytes down on this thread's countdown; true when the
/// allocation is to be sampled.
#[inline(always)]
pub(crate) fn tick(size: usize) -> bool {
    LOCAL.with(|l| {
        let c = l.countdown.get().wrapping_sub(size as i64);
        l.countdown.set(c);
        c < 0 && tick_slow(l)
    })
}

#[cold]
#[inline(never)]
fn tick_slow(l: &Local) -> bool {
    if l.busy.get() {
        return false;
    }
    let (mut c, mut r) = (l.countdown.get(), l.rng.get());
    let sample = countdown_expired(&mut c, &mut r);
    l.countdown.set(c);
    l.rng.set(r);
    sample
}

/// Records a sampled tracked block (the tracking allocator).
pub(crate) fn tracked_alloc(addr: usize, size: usize) {
    record(addr, size, false);
}

/// Records the free of the tracked block at `addr` if it was sampled; the
/// caller saw [`block_maybe_sampled`] true and the thread not busy.
#[cold]
#[inline(never)]
pub(crate) fn tracked_free(addr: usize) {
    with_table(|t| {
        if let Some(b) = t.tracked_live.remove(&addr) {
            t.buckets[b].frees += 1;
            block_slot(addr).fetch_sub(1, Relaxed);
        }
    })
}

/// Records the frees of the sampled dead objects of a small span being
/// swept (the sweeper owns it; its bitmaps are those of the end of marking).
#[cold]
pub(crate) fn sweep_small_frees(m: &SpanMeta, start: usize, size: usize) {
    with_table(|t| {
        let dead: Vec<usize> = t
            .gc_live
            .range(start..start + SPAN_BYTES)
            .map(|(&a, _)| a)
            .filter(|&a| {
                let i = (a - start) / size;
                let bit = 1u64 << (i % 64);
                let alloc = m.alloc_bits[i / 64].load(Relaxed);
                let mark = m.mark_bits[i / 64].load(Relaxed);
                alloc & bit != 0 && mark & bit == 0
            })
            .collect();
        for a in dead {
            if let Some(b) = t.gc_live.remove(&a) {
                t.buckets[b].frees += 1;
                span_slot(a).fetch_sub(1, Relaxed);
            }
        }
    })
}

/// Records the free of the dead large object at `start`, if sampled.
#[cold]
pub(crate) fn sweep_large_free(start: usize) {
    with_table(|t| {
        if let Some(b) = t.gc_live.remove(&start) {
            t.buckets[b].frees += 1;
            span_slot(start).fetch_sub(1, Relaxed);
        }
    })
}

// ---------------------------------------------------------------------------
// Writing.

/// Go's `scaleHeapSample`: estimates the unsampled totals of `count` sampled
/// objects of `size` sampled bytes in all, each sampled with probability
/// `1 - exp(-avg/rate)`.
///
/// ```
/// use tricolor::profile::scale_heap_sample;
/// assert_eq!(scale_heap_sample(10, 40960, 1), (10, 40960));
/// let (n, b) = scale_heap_sample(1, 512 * 1024, 512 * 1024);
/// assert_eq!((n, b), (1, 829_411)); // 1 / (1 - e^-1) = 1.582
/// ```
pub fn scale_heap_sample(count: i64, size: i64, rate: i64) -> (i64, i64) {
    if count == 0 || size == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count, size);
    }
    let avg = size as f64 / count as f64;
    let scale = 1.0 / (1.0 - (-avg / rate as f64).exp());
    ((count as f64 * scale) as i64, (size as f64 * scale) as i64)
}

/// Frame functions dropped from the leaf end of every stack: the
/// profiler, the allocators and the unwinder.
const OWN_FRAMES: &[&str] = &[
    "backtrace::",
    "tricolor::profile::",
    "tricolor::alloc::",
    "<tricolor::alloc::",
    "tricolor::cache::",
    "tricolor::thread::Guard::alloc",
    "tricolor::thread::Guard::try_alloc",
    "__rust_alloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rg_",
    "__rdl_",
    "__rustc::",
    "std::thread::local::",
    "<std::thread::local::",
    "alloc::alloc::",
    "<alloc::alloc::Global",
];

/// One symbolized line: function, file, line.
type Sym = (String, String, i64);

/// The function, file and line of return address `ip`, inlined frames
/// first. `backtrace::resolve` looks up `ip - 1`, inside the call
/// instruction, so the lines are those of the calls, not of the code after
/// them (the profile test checks it).
fn symbolize(ip: usize) -> Vec<Sym> {
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |s| {
        let name = match s.name() {
            Some(n) => format!("{n:#}"),
            None => return,
        };
        let file = s
            .filename()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        out.push((name, file, i64::from(s.lineno().unwrap_or(0))));
    });
    out
}

/// Strings, functions and locations of a profile being built.
#[derive(Default)]
struct Builder {
    p: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    /// (address, leading lines dropped) -> location id.
    locations: HashMap<(usize, usize), u64>,
}

impl Builder {
    fn s(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.p.string_table.len() as i64;
        self.p.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn vt(&mut self, t: &str, u: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.s(t),
            unit: self.s(u),
        }
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_owned(), file.to_owned());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.p.function.len() as u64 + 1;
        let f = proto::Function {
            id,
            name: self.s(name),
            system_name: self.s(name),
            filename: self.s(file),
            start_line: 0,
        };
        self.p.function.push(f);
        self.functions.insert(key, id);
        id
    }

    fn location(&mut self, ip: usize, lines: &[Sym], dropped: usize) -> u64 {
        if let Some(&id) = self.locations.get(&(ip, dropped)) {
            return id;
        }
        let id = self.p.location.len() as u64 + 1;
        let line = lines[dropped..]
            .iter()
            .map(|(n, f, l)| proto::Line {
                function_id: self.function(n, f),
                line: *l,
                column: 0,
            })
            .collect();
        self.p.location.push(proto::Location {
            id,
            mapping_id: 1,
            address: ip as u64,
            line,
            is_folded: false,
        });
        self.locations.insert((ip, dropped), id);
        id
    }
}

/// Builds the heap profile of everything sampled so far (see
/// [`write_heap_profile`]).
///
/// ```
/// let p = tricolor::profile::heap_profile();
/// assert_eq!(p.sample_type.len(), 4);
/// ```
pub fn heap_profile() -> proto::Profile {
    let rate = rate();
    let snapshot: Vec<(Box<[usize]>, u64, u64, u64)> = with_table(|t| {
        t.buckets
            .iter()
            .map(|b| (b.stack.clone(), b.size, b.allocs, b.frees))
            .collect()
    });
    let mut syms: HashMap<usize, Vec<Sym>> = HashMap::new();
    for (stack, ..) in &snapshot {
        for &ip in stack.iter() {
            syms.entry(ip).or_insert_with(|| symbolize(ip));
        }
    }
    let mut b = Builder::default();
    b.s("");
    b.p.sample_type = vec![
        b.vt("alloc_objects", "count"),
        b.vt("alloc_space", "bytes"),
        b.vt("inuse_objects", "count"),
        b.vt("inuse_space", "bytes"),
    ];
    b.p.period_type = Some(b.vt("space", "bytes"));
    b.p.period = rate;
    b.p.default_sample_type = b.s("inuse_space");
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let filename = b.s(&exe);
    b.p.mapping.push(proto::Mapping {
        id: 1,
        memory_start: 0,
        memory_limit: u64::MAX,
        file_offset: 0,
        filename,
        build_id: 0,
        has_functions: true,
        has_filenames: true,
        has_line_numbers: true,
        has_inline_frames: true,
    });
    b.p.time_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let bytes_key = b.s("bytes");
    let own = |n: &str| OWN_FRAMES.iter().any(|p| n.starts_with(p));
    for (stack, size, allocs, frees) in snapshot {
        // Drop the profiler's own lines from the leaf end.
        let mut locs = Vec::new();
        let mut leaf = true;
        for &ip in stack.iter() {
            let lines = &syms[&ip];
            let mut dropped = 0;
            if leaf {
                while dropped < lines.len() && own(&lines[dropped].0) {
                    dropped += 1;
                }
                if dropped == lines.len() && !lines.is_empty() {
                    continue;
                }
                leaf = false;
            }
            locs.push(b.location(ip, lines, dropped));
        }
        let size = size as i64;
        let (ao, ab) = scale_heap_sample(allocs as i64, allocs as i64 * size, rate);
        let inuse = allocs.saturating_sub(frees) as i64;
        let (io, ib) = scale_heap_sample(inuse, inuse * size, rate);
        b.p.sample.push(proto::Sample {
            location_id: locs,
            value: vec![ao, ab, io, ib],
            label: vec![proto::Label {
                key: bytes_key,
                str: 0,
                num: size,
                num_unit: 0,
            }],
        });
    }
    b.p
}

/// Writes the heap profile, gzip'd pprof protobuf as Go's
/// `pprof.WriteHeapProfile` writes it: sample types `alloc_objects`,
/// `alloc_space`, `inuse_objects`, `inuse_space` (the default), period
/// `space`/`bytes` = the rate, sampled counts scaled to estimates of the
/// totals, symbolized functions with files and lines. It includes the GC
/// heap's objects and, when [`crate::alloc::Tracking`] is the global
/// allocator, plain Rust allocations. Read it with `go tool pprof`,
/// speedscope or `tricolor pprof top`. Inlined functions are lines of one
/// location, innermost first, as Go writes them; speedscope (1.25) shows
/// only the last line of each location, so there a function inlined into
/// its caller appears as the caller, and it always shows the last sample
/// type, `inuse_space` (also the default here).
///
/// ```
/// let mut out = Vec::new();
/// tricolor::profile::write_heap_profile(&mut out).unwrap();
/// assert_eq!(&out[..2], &[0x1f, 0x8b]); // gzip
/// ```
pub fn write_heap_profile(w: impl Write) -> io::Result<()> {
    use prost::Message;
    let bytes = heap_profile().encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_values() {
        assert_eq!(parse_rate("524288"), Ok(524288));
        assert_eq!(parse_rate("512KiB"), Ok(524288));
        assert_eq!(parse_rate("1MiB"), Ok(1 << 20));
        assert_eq!(parse_rate("off"), Ok(0));
        assert_eq!(parse_rate("1"), Ok(1));
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("abc").unwrap_err().contains("abc"));
    }

    #[test]
    fn exponential_mean() {
        let mut rng = seed();
        let n = 20_000;
        let sum: f64 = (0..n)
            .map(|_| {
                let u = ((xorshift(&mut rng) >> 11) + 1) as f64 / (1u64 << 53) as f64;
                -u.ln()
            })
            .sum();
        let mean = sum / n as f64;
        assert!((0.95..1.05).contains(&mean), "mean {mean}");
    }
}
