//! `pool-bench`: `tricolor::Pool` (Go's `sync.Pool`) against the
//! `object-pool` and `lockfree-object-pool` crates and a `Mutex<Vec<T>>`
//! pool, all in one process.
//!
//! ```text
//! cargo run --release -p tricolor-bench --bin pool-bench -- [--iters N] [--runs K] [--only A,B]
//! ```
//!
//! `--only A,B` keeps the implementations whose name contains `A` or `B`
//! (e.g. `--only tricolor,Mutex`; without `Mutex` the ratios are `NaN`).
//!
//! Each thread runs `N` (default 10,000,000) get+put pairs on one shared
//! pool of `Vec<u8>` buffers (capacity 256): take a buffer, write one byte
//! through it, give it back. The time is measured from a barrier that
//! starts all threads to the last thread's end, for 1 thread and for 2
//! threads; each figure is the median of `K` (default 5) runs, the runs of
//! all implementations interleaved. Printed per implementation:
//!
//! - **ns/pair**, in two tables: wall time / `N` (the time of one get+put
//!   pair as one thread sees it; with 2 threads, perfect scaling keeps it
//!   equal to the 1-thread figure), and each thread's CPU time / `N`
//!   (`CLOCK_THREAD_CPUTIME_ID`, averaged over the threads: insensitive to
//!   other processes taking the CPUs, but blind to time spent asleep in a
//!   lock);
//! - **vs Mutex**: that figure divided by the `Mutex<Vec<T>>` pool's, same
//!   process, same thread count;
//! - **scaling**: 2-thread throughput / 1-thread throughput (2.0 is linear).
//!
//! The implementations:
//!
//! - `tricolor::Pool`: `pool.get()` (a `Pooled` guard, put back on drop);
//! - `object-pool`: `object_pool::Pool::pull(fallback)`, a `Mutex<Vec<T>>`
//!   inside (its `Reusable` puts back on drop);
//! - `lockfree-object-pool` (linear): `LinearObjectPool::pull()`, a
//!   lock-free page list (reset closure: a no-op);
//! - `lockfree-object-pool` (spin lock): `SpinLockObjectPool::pull()`;
//! - `Mutex<Vec<T>>`: `lock().pop()` or a new buffer, then `lock().push()`.
//!
//! No GC cycle runs during the measurement (nothing is allocated on the GC
//! heap): this measures the pools' fast paths.

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::Instant;

fn buffer() -> Vec<u8> {
    Vec::with_capacity(256)
}

/// This thread's CPU time, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a
    // constant that every Linux kernel supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `threads` threads run `iters` pairs each; returns the wall time and the
/// mean thread CPU time, in ns per pair.
fn run<F: Fn() + Sync>(threads: usize, iters: u64, pair: &F) -> [f64; 2] {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let cpu = thread_cpu_ns();
                    for _ in 0..iters {
                        pair();
                    }
                    thread_cpu_ns() - cpu
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let cpu: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .sum();
        let wall = start.elapsed().as_nanos() as f64 / iters as f64;
        [wall, cpu as f64 / (threads as u64 * iters) as f64]
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut iters: u64 = 10_000_000;
    let mut runs: usize = 5;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        if a == "--only" {
            only = args.next();
            continue;
        }
        match a.as_str() {
            "--iters" => iters = value("--iters").max(1),
            "--runs" => runs = value("--runs").max(1) as usize,
            _ => {
                eprintln!("usage: pool-bench [--iters N] [--runs K] [--only A,B]");
                std::process::exit(2);
            }
        }
    }

    let tricolor_pool = tricolor::Pool::new(buffer);
    let object_pool = object_pool::Pool::new(0, buffer);
    let linear = lockfree_object_pool::LinearObjectPool::new(buffer, |_| {});
    let spin = lockfree_object_pool::SpinLockObjectPool::new(buffer, |_| {});
    let mutex: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    let touch = |v: &mut Vec<u8>| {
        v.push(1);
        v.clear();
        black_box(v);
    };
    let t_tricolor = || touch(&mut tricolor_pool.get());
    let t_object = || touch(&mut object_pool.pull(buffer));
    let t_linear = || touch(&mut linear.pull());
    let t_spin = || touch(&mut spin.pull());
    let t_mutex = || {
        let popped = mutex.lock().unwrap().pop();
        let mut v = popped.unwrap_or_else(buffer);
        touch(&mut v);
        mutex.lock().unwrap().push(v);
    };

    type Case<'a> = (&'a str, &'a (dyn Fn(usize) -> [f64; 2] + Sync));
    let r_tricolor = |n| run(n, iters, &t_tricolor);
    let r_object = |n| run(n, iters, &t_object);
    let r_linear = |n| run(n, iters, &t_linear);
    let r_spin = |n| run(n, iters, &t_spin);
    let r_mutex = |n| run(n, iters, &t_mutex);
    let cases: [Case; 5] = [
        ("`tricolor::Pool`", &r_tricolor),
        ("`object-pool` 0.6", &r_object),
        ("`lockfree-object-pool` 0.1 (linear)", &r_linear),
        ("`lockfree-object-pool` 0.1 (spin lock)", &r_spin),
        ("`Mutex<Vec<T>>`", &r_mutex),
    ];
    let keep = |name: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|o| name.contains(o)))
    };
    let cases: Vec<Case> = cases.into_iter().filter(|(n, _)| keep(n)).collect();

    // Warm-up: every pool fills its caches.
    for (_, f) in &cases {
        f(1);
        f(2);
    }
    // times[case][clock: wall, cpu][threads: 1, 2]: one sample per run.
    let mut times = vec![[[vec![], vec![]], [vec![], vec![]]]; cases.len()];
    for _ in 0..runs {
        for (i, (_, f)) in cases.iter().enumerate() {
            for (t, n) in [1, 2].into_iter().enumerate() {
                let [wall, cpu] = f(n);
                times[i][0][t].push(wall);
                times[i][1][t].push(cpu);
            }
        }
    }
    let med: Vec<[[f64; 2]; 2]> = times
        .iter_mut()
        .map(|[[w1, w2], [c1, c2]]| [[median(w1), median(w2)], [median(c1), median(c2)]])
        .collect();
    // The baseline: the `Mutex<Vec<T>>` pool, if measured.
    let base = cases
        .iter()
        .position(|(n, _)| n.contains("Mutex"))
        .map_or([[f64::NAN; 2]; 2], |i| med[i]);

    println!(
        "get+put pairs: {iters} per thread per run, median of {runs} runs, {} CPUs, load average before: {}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    );
    for (clock, title) in [
        (0, "wall time / pairs per thread"),
        (1, "CPU time of each thread / its pairs"),
    ] {
        println!("ns per get+put pair, {title}:\n");
        println!(
            "| pool | 1 thread | vs Mutex | 2 threads | vs Mutex | scaling (2T/1T throughput) |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for ((name, _), m) in cases.iter().zip(&med) {
            let [one, two] = m[clock];
            println!(
                "| {name} | {one:.1} | {:.2}x | {two:.1} | {:.2}x | {:.2}x |",
                one / base[clock][0],
                two / base[clock][1],
                2.0 * one / two
            );
        }
        println!();
    }
}
