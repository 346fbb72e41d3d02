//! `churn`: a large live heap of small cyclic graphs that several threads
//! replace at random, measuring throughput and the pauses the mutators
//! themselves observe.
//!
//! The heap: one rooted [`Table`] holding a [`GcVec`] of `live` slots, each
//! slot an [`Entry`] graph of three objects with cycles —
//!
//! ```text
//!   Entry (key, writer, seq, payload: String)
//!    | left        \ right
//!    v              v
//!   Child --sibling--> Child
//!    | head           | head
//!    +-> Entry <------+
//! ```
//!
//! The table is allocated empty and filled afterwards (a `GcVec` can only be
//! used once the object holding it is on the heap), slot `i` always holding
//! an entry with `key == i`.
//!
//! The run: `threads` threads each perform their share of `ops` (`ops /
//! threads`, the first `ops % threads` threads one more) replacements: pick
//! a slot with a per-thread xorshift64* generator (deterministic seeds),
//! build a fresh entry graph, store it with [`GcVec::set`]; the old graph
//! becomes garbage. One operation in eight also reads a random slot and
//! verifies its graph (key, both back edges to the head, the sibling edge,
//! the children's check tags, the payload string); a corrupted entry panics
//! with a message naming the slot and what is wrong. After the run every
//! slot is verified once more.
//!
//! Each thread holds one guard per batch of [`BATCH`] operations and calls
//! [`Guard::repin`] between batches, so collections can proceed. `pin()` and
//! `repin()` are the only calls where the collector can block a mutator
//! (they wait while the world is stopped), so each thread times every one of
//! them: the distribution of these *mutator-observed pin/repin latencies*
//! is the pause a mutator really sees, next to the collector's own
//! `pause_ns`. Each batch of operations is timed too (the work between two
//! pins: allocation slow paths, `GcVec::set` (lock-free unless it races a
//! grow), page faults).
//!
//! Unlike the other workloads, the output of `churn` is its measurements,
//! so it is not deterministic (the sequence of operations is).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tricolor::{Gc, GcVec, Guard, Member, Root, Trace};

use crate::report::{self, human_ns, Extra, PauseSummary};

/// Operations per guard: each thread re-pins after this many.
pub const BATCH: u64 = 64;

/// The largest `live` accepted: the slot buffer of the table (one word per
/// slot, grown by doubling) must stay a single large object, at most one
/// 64 MiB arena (32 MiB for 4 Mi slots).
pub const MAX_LIVE: u64 = 4 << 20;

/// The largest `threads` accepted.
pub const MAX_THREADS: u64 = 1024;

/// One operation in `VERIFY_ONE_IN` also reads and verifies a random entry.
const VERIFY_ONE_IN: u64 = 8;

/// The head of an entry graph: the slot's key, who wrote it, a payload, and
/// the edges to the two children (both of which point back here).
#[derive(Trace)]
pub struct Entry {
    /// The slot index this entry was built for.
    pub key: u64,
    /// Who built it: 0 for the initial fill, thread `t` writes `t + 1`.
    pub writer: u32,
    /// The writer's operation counter when it built this entry.
    pub seq: u64,
    /// `"{key}/{writer}/{seq}"` (see [`payload`]).
    pub payload: String,
    /// The first child; its `sibling` is `right`.
    pub left: Member<Child>,
    /// The second child; its `sibling` is null.
    pub right: Member<Child>,
}

/// A child of an [`Entry`]: a back edge to the head (the cycle), an edge to
/// its sibling, and a check tag derived from the head's fields.
#[derive(Trace)]
pub struct Child {
    /// The entry this child belongs to.
    pub head: Member<Entry>,
    /// The left child points to the right one; the right one to nothing.
    pub sibling: Member<Child>,
    /// [`tag`]`(key, writer, seq, side)`, side 1 (left) or 2 (right).
    pub tag: u64,
}

/// The rooted table: `live` slots, never empty once filled.
#[derive(Trace)]
pub struct Table {
    /// Slot `i` holds an entry with key `i`.
    pub slots: GcVec<Entry>,
}

/// The sizes `churn` runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnParams {
    /// Number of live entries (slots of the table).
    pub live: u64,
    /// Total number of replacements, over all threads.
    pub ops: u64,
    /// Number of mutator threads.
    pub threads: u64,
}

impl Default for ChurnParams {
    /// 1 000 000 live entries, 10 000 000 operations, 2 threads.
    fn default() -> Self {
        ChurnParams {
            live: 1_000_000,
            ops: 10_000_000,
            threads: 2,
        }
    }
}

impl ChurnParams {
    /// Checks that the parameters make sense, with a message saying why not.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_LIVE).contains(&self.live) {
            return Err(format!(
                "churn --live {} is out of range (1 to {MAX_LIVE})",
                self.live
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!(
                "churn --threads {} is out of range (1 to {MAX_THREADS})",
                self.threads
            ));
        }
        Ok(())
    }

    /// The number of operations thread `t` performs.
    pub fn ops_of_thread(&self, t: u64) -> u64 {
        self.ops / self.threads + u64::from(t < self.ops % self.threads)
    }
}

/// What a `churn` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnResult {
    /// The parameters of the run.
    pub params: ChurnParams,
    /// Time to allocate and fill the table.
    pub fill: Duration,
    /// Time of the mutator phase: from starting the threads to joining them.
    pub elapsed: Duration,
    /// `ops / elapsed`.
    pub ops_per_s: f64,
    /// Mutator-observed pin/repin latency: every `pin()` and `repin()` call
    /// of every mutator thread.
    pub pin_latency: PauseSummary,
    /// Duration of every batch of (up to) [`BATCH`] operations, pins
    /// excluded.
    pub batches: PauseSummary,
    /// Entries read and verified during the run.
    pub reads_verified: u64,
    /// Entries verified after the run (every slot).
    pub entries_verified: u64,
    /// Time to verify every slot after the run.
    pub verify: Duration,
    /// Peak of the memory the heap maps and has not released to the OS
    /// (`sys - heap_released`: what the memory limit limits), sampled every
    /// 5 ms during the mutator phase.
    pub peak_mapped: u64,
    /// Peak resident set of the process (from `/proc/self/statm`, 0 where
    /// unavailable), sampled with `peak_mapped`; it also counts memory
    /// outside the heap (the payload strings, the thread stacks).
    pub peak_rss: u64,
    /// Peak of `peak_mapped`'s quantity plus the bytes the
    /// `tricolor::alloc::Tracking` global allocator counts live (the
    /// `tricolor` binary installs it): all that the memory limit covers.
    /// Equal to `peak_mapped` where `Tracking` is not the global allocator.
    pub peak_limited: u64,
}

impl ChurnResult {
    /// The human lines `churn` prints (each ending with a newline).
    pub fn lines(&self) -> String {
        let p = &self.params;
        let l = &self.pin_latency;
        let b = &self.batches;
        format!(
            "churn: {} live entries, {} ops on {} threads: {}; \
             mutator-observed pin/repin latency p50 {}, p99 {}, max {} ({} calls)\n\
             churn: fill {:.3} s, run {:.3} s, verify {:.3} s; batches of {BATCH} ops p50 {}, p99 {}, max {} ({} batches); \
             verified {} reads and {} entries after the run\n\
             churn: peak heap mapped {} MiB, with tracked allocations {} MiB, peak RSS {} MiB\n",
            p.live,
            p.ops,
            p.threads,
            human_rate(self.ops_per_s),
            human_ns(l.p50_ns),
            human_ns(l.p99_ns),
            human_ns(l.max_ns),
            l.count,
            self.fill.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.verify.as_secs_f64(),
            human_ns(b.p50_ns),
            human_ns(b.p99_ns),
            human_ns(b.max_ns),
            b.count,
            self.reads_verified,
            self.entries_verified,
            self.peak_mapped >> 20,
            self.peak_limited >> 20,
            self.peak_rss >> 20,
        )
    }

    /// The measurements for the report: `ops_per_s`, `mutator_pauses`
    /// (pin/repin latency) and `batches` in the JSON object and the summary.
    pub fn extra(&self) -> Extra {
        let l = &self.pin_latency;
        let b = &self.batches;
        Extra {
            json: vec![
                ("ops_per_s", report::json_f64(self.ops_per_s)),
                ("mutator_pauses", l.to_json()),
                ("batches", b.to_json()),
                ("peak_mapped_bytes", self.peak_mapped.to_string()),
                ("peak_rss_bytes", self.peak_rss.to_string()),
                ("peak_limited_bytes", self.peak_limited.to_string()),
            ],
            summary: vec![
                ("ops_per_s", format!("{:.0}", self.ops_per_s)),
                (
                    "mutator_pauses",
                    format!(
                        "{} pin/repin calls, p50 {}, p99 {}, max {}",
                        l.count,
                        human_ns(l.p50_ns),
                        human_ns(l.p99_ns),
                        human_ns(l.max_ns)
                    ),
                ),
                (
                    "batches",
                    format!(
                        "{} of {BATCH} ops, p50 {}, p99 {}, max {}",
                        b.count,
                        human_ns(b.p50_ns),
                        human_ns(b.p99_ns),
                        human_ns(b.max_ns)
                    ),
                ),
                (
                    "peak_memory",
                    format!(
                        "heap mapped {} MiB, with tracked allocations {} MiB, RSS {} MiB",
                        self.peak_mapped >> 20,
                        self.peak_limited >> 20,
                        self.peak_rss >> 20
                    ),
                ),
            ],
        }
    }
}

/// `2.31 M ops/s`, `845.2 k ops/s`, `12 ops/s`.
fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M ops/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k ops/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} ops/s")
    }
}

/// A xorshift64* generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of mutator thread `t` (deterministic, never zero).
    pub fn for_thread(t: u64) -> Rng {
        Rng(mix(0x6368_7572_6e00_0000 ^ t) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`), from the high bits.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The check tag of a child (`side` 1 for the left, 2 for the right).
pub fn tag(key: u64, writer: u32, seq: u64, side: u64) -> u64 {
    mix(key ^ mix(seq ^ (u64::from(writer) << 32)) ^ side.wrapping_mul(0x5851_f42d_4c95_7f2d))
}

/// The payload string of an entry.
pub fn payload(key: u64, writer: u32, seq: u64) -> String {
    format!("{key}/{writer}/{seq}")
}

/// Builds an entry graph: the head, then the right and left children (each
/// pointing back to the head, the left one to its sibling), then the head's
/// edges to them (two stores into the existing head).
pub fn build_entry<'g>(g: &'g Guard, key: u64, writer: u32, seq: u64) -> Gc<'g, Entry> {
    let head = g.alloc(Entry {
        key,
        writer,
        seq,
        payload: payload(key, writer, seq),
        left: Member::null(),
        right: Member::null(),
    });
    let right = g.alloc(Child {
        head: Member::new(Some(head)),
        sibling: Member::null(),
        tag: tag(key, writer, seq, 2),
    });
    let left = g.alloc(Child {
        head: Member::new(Some(head)),
        sibling: Member::new(Some(right)),
        tag: tag(key, writer, seq, 1),
    });
    head.left.store(g, Some(left));
    head.right.store(g, Some(right));
    head
}

/// Checks an entry graph read from slot `key`: the key, both children and
/// their back edges to `head`, the sibling edge, the tags and the payload.
/// The error says what is wrong.
pub fn verify_entry(g: &Guard, head: Gc<'_, Entry>, key: u64) -> Result<(), String> {
    let (writer, seq) = (head.writer, head.seq);
    if head.key != key {
        return Err(format!(
            "holds key {} (writer {writer}, seq {seq})",
            head.key
        ));
    }
    let left = head.left.load(g).ok_or("the left child is null")?;
    let right = head.right.load(g).ok_or("the right child is null")?;
    for (name, child) in [("left", left), ("right", right)] {
        match child.head.load(g) {
            Some(h) if Gc::ptr_eq(h, head) => {}
            Some(_) => return Err(format!("the {name} child points to another head")),
            None => return Err(format!("the {name} child's head edge is null")),
        }
    }
    match left.sibling.load(g) {
        Some(s) if Gc::ptr_eq(s, right) => {}
        _ => return Err("the left child's sibling is not the right child".to_owned()),
    }
    if !right.sibling.is_null() {
        return Err("the right child has a sibling".to_owned());
    }
    for (name, child, side) in [("left", left, 1), ("right", right, 2)] {
        let want = tag(key, writer, seq, side);
        if child.tag != want {
            return Err(format!(
                "the {name} child's tag is {:#x}, expected {want:#x} (writer {writer}, seq {seq})",
                child.tag
            ));
        }
    }
    let want = payload(key, writer, seq);
    if head.payload != want {
        return Err(format!(
            "payload {:?}, expected {want:?}",
            head.payload.as_str()
        ));
    }
    Ok(())
}

/// Reads slot `i` and verifies it; panics with a clear message if it is
/// empty or corrupted.
fn check_slot(g: &Guard, table: &Table, i: u64) {
    let Some(e) = table.slots.get(g, i as usize) else {
        panic!("churn: slot {i} is empty (every slot was filled before the run)");
    };
    if let Err(what) = verify_entry(g, e, i) {
        panic!("churn: the entry in slot {i} is corrupted: {what}");
    }
}

/// What one mutator thread measured.
struct ThreadResult {
    pins_ns: Vec<u64>,
    batches_ns: Vec<u64>,
    reads: u64,
}

/// Sets the flag if the thread panics, so the other threads stop early.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Relaxed);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The loop of mutator thread `t`: `ops` replacements in batches, timing
/// every pin/repin and every batch.
fn mutator(table: &Table, live: u64, t: u64, ops: u64, stop: &AtomicBool) -> ThreadResult {
    let _stop = StopOnPanic(stop);
    let writer = u32::try_from(t + 1).unwrap_or(u32::MAX);
    let mut rng = Rng::for_thread(t);
    let batches = ops.div_ceil(BATCH) as usize;
    let mut pins_ns = Vec::with_capacity(batches + 1);
    let mut batches_ns = Vec::with_capacity(batches);
    let mut reads = 0;

    let t0 = Instant::now();
    let mut g = tricolor::pin();
    pins_ns.push(nanos(t0.elapsed()));
    let mut done = 0;
    while done < ops && !stop.load(Relaxed) {
        let n = BATCH.min(ops - done);
        let b0 = Instant::now();
        for seq in done..done + n {
            let i = rng.below(live);
            let e = build_entry(&g, i, writer, seq);
            table.slots.set(&g, i as usize, Some(e));
            if rng.next_u64().is_multiple_of(VERIFY_ONE_IN) {
                check_slot(&g, table, rng.below(live));
                reads += 1;
            }
        }
        batches_ns.push(nanos(b0.elapsed()));
        done += n;
        if done < ops {
            let p0 = Instant::now();
            g.repin();
            pins_ns.push(nanos(p0.elapsed()));
        }
    }
    drop(g);
    ThreadResult {
        pins_ns,
        batches_ns,
        reads,
    }
}

/// Samples the heap's mapped memory and the process's resident set every
/// 5 ms until `stop`; returns their peaks. (A sampling period, not a
/// synchronisation: nothing waits for the sampler but the final join.)
fn sample_memory(stop: &AtomicBool) -> (u64, u64, u64) {
    let (mut mapped, mut rss, mut limited) = (0u64, 0u64, 0u64);
    loop {
        let m = tricolor::read_mem_stats();
        let heap = m.sys.saturating_sub(m.heap_released);
        mapped = mapped.max(heap);
        limited = limited.max(heap + tricolor::alloc::stats().alloc_bytes);
        rss = rss.max(resident_bytes());
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return (mapped, rss, limited);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The process's resident set in bytes (Linux), or 0.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs `churn` with `params`, writing its human lines to `out`, and returns
/// what it measured.
///
/// Fails with [`io::ErrorKind::InvalidInput`] if the parameters do not
/// validate, and with the writer's error if writing fails. Panics if an
/// entry is found corrupted (in the thread that found it, then here).
pub fn run(params: &ChurnParams, out: &mut dyn Write) -> io::Result<ChurnResult> {
    params
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let live = params.live;

    // Allocate the table empty, then fill it (a GcVec can only be used once
    // the object holding it is on the heap).
    let fill_start = Instant::now();
    let table: Root<Table> = Root::new(Table {
        slots: GcVec::new(),
    });
    {
        let mut g = tricolor::pin();
        for i in 0..live {
            table.slots.push(&g, Some(build_entry(&g, i, 0, i)));
            if i % BATCH == BATCH - 1 {
                g.repin();
            }
        }
    }
    let fill = fill_start.elapsed();

    // The mutator phase. This thread holds no guard while it waits.
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (results, (peak_mapped, peak_rss, peak_limited)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample_memory(&stop));
        let handles: Vec<_> = (0..params.threads)
            .map(|t| {
                let (table, stop) = (&*table, &stop);
                let ops = params.ops_of_thread(t);
                std::thread::Builder::new()
                    .name(format!("churn-{t}"))
                    .spawn_scoped(s, move || mutator(table, live, t, ops, stop))
                    .unwrap_or_else(|e| panic!("churn: cannot start mutator thread {t}: {e}"))
            })
            .collect();
        let results: Vec<ThreadResult> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peaks = sampler
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (results, peaks)
    });
    let elapsed = start.elapsed();

    // Every slot, once more.
    let verify_start = Instant::now();
    {
        let mut g = tricolor::pin();
        for i in 0..live {
            check_slot(&g, &table, i);
            if i % 1024 == 1023 {
                g.repin();
            }
        }
    }

    let verify = verify_start.elapsed();

    let mut pins: Vec<u64> = results
        .iter()
        .flat_map(|r| r.pins_ns.iter().copied())
        .collect();
    let mut batches: Vec<u64> = results
        .iter()
        .flat_map(|r| r.batches_ns.iter().copied())
        .collect();
    let secs = elapsed.as_secs_f64();
    let result = ChurnResult {
        params: params.clone(),
        fill,
        elapsed,
        ops_per_s: if secs > 0.0 {
            params.ops as f64 / secs
        } else {
            0.0
        },
        pin_latency: PauseSummary::from_pauses(&mut pins),
        batches: PauseSummary::from_pauses(&mut batches),
        reads_verified: results.iter().map(|r| r.reads).sum(),
        entries_verified: live,
        verify,
        peak_mapped,
        peak_rss,
        peak_limited,
    };
    out.write_all(result.lines().as_bytes())?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_catches_a_broken_cycle() {
        let g = tricolor::pin();
        let e = build_entry(&g, 7, 1, 3);
        assert_eq!(verify_entry(&g, e, 7), Ok(()));
        assert!(verify_entry(&g, e, 8).unwrap_err().contains("key 7"));

        // A child pointing to another head.
        let other = build_entry(&g, 7, 1, 3);
        let right = e.right.load(&g).unwrap();
        right.head.store(&g, Some(other));
        let err = verify_entry(&g, e, 7).unwrap_err();
        assert!(err.contains("right child points to another head"), "{err}");

        // A well-formed cycle whose tags belong to another seq.
        let bad = g.alloc(Entry {
            key: 7,
            writer: 1,
            seq: 4,
            payload: payload(7, 1, 4),
            left: Member::null(),
            right: Member::null(),
        });
        let r = g.alloc(Child {
            head: Member::new(Some(bad)),
            sibling: Member::null(),
            tag: tag(7, 1, 3, 2),
        });
        let l = g.alloc(Child {
            head: Member::new(Some(bad)),
            sibling: Member::new(Some(r)),
            tag: tag(7, 1, 3, 1),
        });
        bad.left.store(&g, Some(l));
        bad.right.store(&g, Some(r));
        let err = verify_entry(&g, bad, 7).unwrap_err();
        assert!(err.contains("left child's tag"), "{err}");
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let a: Vec<u64> = {
            let mut r = Rng::for_thread(0);
            (0..100).map(|_| r.below(10)).collect()
        };
        let mut r = Rng::for_thread(0);
        assert!(a.iter().all(|&x| x == r.below(10)));
        assert!(a.iter().all(|&x| x < 10));
        assert!((0..10).all(|k| a.contains(&k)), "{a:?}");
        assert_ne!(Rng::for_thread(1).next_u64(), Rng::for_thread(0).next_u64());
    }

    #[test]
    fn ops_are_shared_out_exactly() {
        let p = ChurnParams {
            live: 10,
            ops: 10,
            threads: 3,
        };
        let per: Vec<u64> = (0..3).map(|t| p.ops_of_thread(t)).collect();
        assert_eq!(per, [4, 3, 3]);
        assert!(ChurnParams {
            live: 0,
            ..p.clone()
        }
        .validate()
        .is_err());
        assert!(ChurnParams { threads: 0, ..p }.validate().is_err());
    }
}
