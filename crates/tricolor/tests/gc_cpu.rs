//! GC CPU accounting (`/cpu/classes/gc/...`): a workload that must make
//! mutators assist shows assist CPU time, and the classes add up to the
//! total. One test in this binary: it changes GOGC and compares figures
//! that another allocating test would move.

use std::collections::HashMap;

use tricolor::metrics::{self, Sample, Value};
use tricolor::{GcVec, Member, Root, Trace};

/// A small object that must be scanned (it has an edge), so the collector
/// pushes it on its grey stack and shares the stack with assists.
#[derive(Trace)]
struct Leaf {
    next: Member<Leaf>,
    payload: [u64; 2],
}

const CLASSES: [&str; 5] = [
    "/cpu/classes/gc/mark/assist:cpu-seconds",
    "/cpu/classes/gc/mark/dedicated:cpu-seconds",
    "/cpu/classes/gc/mark/idle:cpu-seconds",
    "/cpu/classes/gc/pause:cpu-seconds",
    "/cpu/classes/gc/sweep:cpu-seconds",
];
const TOTAL: &str = "/cpu/classes/gc/total:cpu-seconds";

/// The GC CPU classes and the total, in ns, from one read.
fn gc_cpu() -> HashMap<&'static str, u64> {
    let mut samples: Vec<Sample> = CLASSES
        .iter()
        .chain([&TOTAL])
        .map(|n| Sample::new(*n))
        .collect();
    metrics::read(&mut samples).unwrap();
    samples
        .iter()
        .zip(CLASSES.iter().chain([&TOTAL]))
        .map(|(s, n)| {
            let Value::F64(secs) = s.value else {
                panic!("{n} is not an f64: {:?}", s.value)
            };
            assert!(secs >= 0.0 && secs.is_finite(), "{n} = {secs}");
            // Exact: counters are whole ns, far below 2^53.
            (*n, (secs * 1e9).round() as u64)
        })
        .collect()
}

fn assert_total_is_the_sum(m: &HashMap<&'static str, u64>) {
    let sum: u64 = CLASSES.iter().map(|n| m[n]).sum();
    assert_eq!(m[TOTAL], sum, "total != sum of the classes: {m:?}");
}

/// A thread holding a wide live heap (one vector of 200k scannable leaves,
/// so the collector's grey stack is large and shared through the work pool)
/// allocates garbage fast with GOGC=10: cycles run back to back, and while
/// one marks, each span the thread takes puts it in debt, which it pays by
/// scanning from the pool. Its assist CPU time must show, and every class
/// must only grow, with the total their sum at every read.
#[test]
fn assists_are_counted_and_the_classes_add_up() {
    let old_gogc = tricolor::set_gc_percent(10);
    let start = gc_cpu();
    assert_total_is_the_sum(&start);
    assert_eq!(start[CLASSES[2]], 0, "there are no idle mark workers");

    let live: Root<GcVec<Leaf>> = Root::new(GcVec::new());
    {
        let mut g = tricolor::pin();
        for i in 0..200_000u64 {
            let leaf = g.alloc(Leaf {
                next: Member::null(),
                payload: [i; 2],
            });
            live.push(&g, Some(leaf));
            if i % 4096 == 0 {
                g.repin();
            }
        }
    }

    // With every cycle run stopped (TRICOLOR_DEBUG=gcstoptheworld=1) no
    // mutator runs while marking, so none can assist: check the sums only.
    let stopped = std::env::var("TRICOLOR_DEBUG").is_ok_and(|d| d.contains("gcstoptheworld=1"));
    // Allocate garbage until an assist has been counted, in rounds of 64k
    // objects (about 2 MiB, several cycles at GOGC=10 over a ~10 MiB
    // heap), up to a bound so a broken accounting fails instead of hanging.
    let mut last = gc_cpu();
    let mut rounds = 0;
    while last[CLASSES[0]] == start[CLASSES[0]] && (!stopped || rounds < 8) {
        rounds += 1;
        assert!(
            rounds <= 400,
            "no assist CPU time after {} cycles of allocation under GOGC=10: {last:?}",
            tricolor::read_mem_stats().num_gc
        );
        {
            let g = tricolor::pin();
            let mut keep = Member::null();
            for i in 0..65_536u64 {
                let leaf = g.alloc(Leaf {
                    next: keep,
                    payload: [i; 2],
                });
                // A short chain, so the garbage is scannable too.
                keep = if i % 8 == 0 {
                    Member::null()
                } else {
                    Member::from(leaf)
                };
            }
        }
        let now = gc_cpu();
        assert_total_is_the_sum(&now);
        for n in CLASSES.iter().chain([&TOTAL]) {
            assert!(now[n] >= last[n], "{n} went backwards: {last:?} -> {now:?}");
        }
        last = now;
    }
    assert!(live.len() == 200_000);
    drop(live);
    // Every assist that scanned is also timed, wall clock, in the assist
    // histogram (pause accounting): CPU time showed, so intervals must.
    let s = tricolor::read_mem_stats();
    if !stopped {
        assert!(
            s.assist_hist.iter().sum::<u64>() > 0 && s.assist_total_ns > 0,
            "assist CPU time counted but no assist interval recorded: {:?}",
            s.assist_hist
        );
    }

    tricolor::set_gc_percent(old_gogc);
    tricolor::gc();
    tricolor::gc();
    let end = gc_cpu();
    assert_total_is_the_sum(&end);
    assert!(stopped || end[CLASSES[0]] > start[CLASSES[0]]);
    assert!(
        end[CLASSES[1]] > start[CLASSES[1]],
        "the collector marked: {end:?}"
    );
    assert!(
        end[CLASSES[3]] > start[CLASSES[3]],
        "every cycle stops: {end:?}"
    );
    assert_eq!(end[CLASSES[2]], 0);

    // Pause CPU is the stops' wall time times the CPUs, as Go estimates it:
    // MemStats::pause_total_ns counts the same stops. Nothing allocates
    // now, so no cycle runs between the two reads.
    let s = tricolor::read_mem_stats();
    let procs = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert_eq!(gc_cpu()[CLASSES[3]], s.pause_total_ns * procs);
    // gc_cpu_fraction is the total over the available CPU time: positive
    // and at most 1.
    assert!(
        s.gc_cpu_fraction > 0.0 && s.gc_cpu_fraction <= 1.0,
        "{}",
        s.gc_cpu_fraction
    );
}
