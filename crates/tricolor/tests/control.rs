//! Runtime control: `set_gc_percent`, `gc()`, `read_mem_stats()` and the
//! `TRICOLOR_GC` environment variable.
//!
//! The tests here change process-wide settings and assert exact counts, so
//! they take one lock (`serial()`) and run one at a time even under
//! `cargo test`; the environment tests run the probe in child processes.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tricolor::{MemStats, Member, Root, Trace};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of this file.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Trace)]
struct Small {
    id: u64,
    next: Member<Small>,
}

/// 1 KiB of plain data, for growing the heap quickly.
#[derive(Trace)]
struct Blob {
    words: [u64; 128],
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Go's relations between `MemStats` fields that hold at any time.
fn check_relations(s: &MemStats) {
    assert_eq!(s.alloc, s.heap_alloc, "alloc == heap_alloc");
    assert_eq!(s.heap_objects, s.mallocs - s.frees, "heap_objects");
    assert!(s.total_alloc >= s.heap_alloc, "total_alloc >= heap_alloc");
    assert_eq!(
        s.heap_idle + s.heap_inuse,
        s.heap_sys,
        "idle + inuse == sys"
    );
    assert!(s.heap_released <= s.heap_idle, "released <= idle");
    assert!(s.heap_alloc <= s.heap_inuse, "heap_alloc <= heap_inuse");
    assert!(s.sys >= s.heap_sys, "sys >= heap_sys");
}

/// `set_gc_percent` returns the previous value; negatives read back as -1, as in Go.
#[test]
fn set_gc_percent_returns_previous_value() {
    let _s = serial();
    let orig = tricolor::set_gc_percent(50);
    assert_eq!(tricolor::set_gc_percent(75), 50);
    assert_eq!(tricolor::set_gc_percent(-1), 75);
    assert!(!tricolor::read_mem_stats().enable_gc);
    assert_eq!(tricolor::set_gc_percent(-20), -1);
    assert_eq!(tricolor::set_gc_percent(0), -1);
    assert!(tricolor::read_mem_stats().enable_gc);
    assert_eq!(tricolor::set_gc_percent(orig), 0);
}

/// A negative percent stops automatic cycles while the heap grows; re-enabling restarts them.
#[test]
fn negative_gc_percent_disables_automatic_collection() {
    let _s = serial();
    tricolor::gc();
    // The goal while collection is on (with it off, `next_gc` is whatever
    // stands for "never").
    let goal = tricolor::read_mem_stats().next_gc;
    let orig = tricolor::set_gc_percent(-1);
    let before = tricolor::read_mem_stats();
    let target = goal.max(4 << 20) * 3;
    let mut allocated = 0u64;
    while allocated < target {
        let g = tricolor::pin();
        for _ in 0..256 {
            let _ = g.alloc(Blob { words: [7; 128] });
        }
        allocated += 256 * 1024;
    }
    let after = tricolor::read_mem_stats();
    assert_eq!(after.num_gc, before.num_gc, "a cycle ran while GC was off");
    // Thread caches commit allocation counts every <= 64 objects per size
    // class, so the figures read without a `gc()` may lag by that much.
    let lag = 64 * 2048;
    assert!(
        after.heap_alloc + lag >= before.heap_alloc + allocated,
        "garbage was freed while GC was off: {} -> {} after {allocated} bytes",
        before.heap_alloc,
        after.heap_alloc
    );
    assert!(after.heap_alloc > goal, "the heap never passed its goal");
    check_relations(&after);

    // Back on: the heap is over its goal, so allocating must start a cycle
    // (bounded by allocation volume, not by time).
    assert_eq!(tricolor::set_gc_percent(100), -1);
    let mut more = 0u64;
    while tricolor::read_mem_stats().num_gc == after.num_gc {
        assert!(
            more < 64 * target,
            "no automatic cycle after allocating {more} bytes with GC on"
        );
        let g = tricolor::pin();
        for _ in 0..256 {
            let _ = g.alloc(Blob { words: [9; 128] });
        }
        more += 256 * 1024;
    }
    tricolor::set_gc_percent(orig);
    tricolor::gc();
}

/// `gc()` runs exactly one forced cycle, after which the stats are exact and its pause recorded.
#[test]
fn gc_counts_cycles_and_stats_are_exact() {
    let _s = serial();
    tricolor::gc();
    let a = tricolor::read_mem_stats();
    check_relations(&a);

    let t0 = now_ns();
    tricolor::gc();
    let t1 = now_ns();
    let b = tricolor::read_mem_stats();
    check_relations(&b);
    assert_eq!(b.num_gc, a.num_gc + 1);
    assert_eq!(b.num_forced_gc, a.num_forced_gc + 1);
    assert!(
        b.last_gc >= t0 && b.last_gc <= t1,
        "last_gc {} not within the gc() call [{t0}, {t1}]",
        b.last_gc
    );
    let i = (b.num_gc as usize + 255) % 256;
    assert!(b.pause_ns[i] > 0, "the cycle's pause is not recorded");
    assert!(b.pause_end[i] >= t0 && b.pause_end[i] <= t1, "pause_end");
    assert_eq!(
        b.pause_total_ns - a.pause_total_ns,
        b.pause_ns[i],
        "pause_total_ns grows by the cycle's pause"
    );
    assert_eq!(b.mallocs, a.mallocs, "gc() itself allocates no objects");
    assert_eq!(b.heap_objects, a.heap_objects, "nothing to free");

    // 1,000 rooted objects and 500 garbage ones.
    let roots: Vec<Root<Small>> = {
        let g = tricolor::pin();
        for i in 0..500 {
            let _ = g.alloc(Small {
                id: i,
                next: Member::null(),
            });
        }
        (0..1000)
            .map(|i| {
                g.alloc(Small {
                    id: i,
                    next: Member::null(),
                })
                .root()
            })
            .collect()
    };
    tricolor::gc();
    let c = tricolor::read_mem_stats();
    check_relations(&c);
    assert_eq!(c.mallocs - b.mallocs, 1500);
    assert_eq!(c.frees - b.frees, 500);
    assert_eq!(c.heap_objects - b.heap_objects, 1000);
    let size = std::mem::size_of::<Small>() as u64;
    assert!(c.total_alloc - b.total_alloc >= 1500 * size);
    assert!(c.heap_alloc - b.heap_alloc >= 1000 * size);
    assert!(c.next_gc >= c.heap_alloc, "heap goal below the live heap");
    assert!(roots.iter().enumerate().all(|(i, r)| r.id == i as u64));

    drop(roots);
    tricolor::gc();
    let d = tricolor::read_mem_stats();
    check_relations(&d);
    assert_eq!(d.heap_objects, b.heap_objects);
    assert_eq!(d.frees - c.frees, 1000);
    assert_eq!(d.heap_alloc, b.heap_alloc);
    assert_eq!(d.num_gc, b.num_gc + 2);
}

/// `MemStats::to_json` is one JSON object with every field of `FIELDS`.
#[test]
fn mem_stats_json_lists_every_field() {
    let _s = serial();
    tricolor::gc();
    let s = tricolor::read_mem_stats();
    let json = s.to_json();
    assert!(json.starts_with('{') && json.ends_with('}'));
    for f in MemStats::FIELDS {
        assert!(json.contains(&format!("\"{f}\":")), "{f} missing in {json}");
    }
    assert!(json.contains(&format!("\"num_gc\":{}", s.num_gc)));
    assert!(json.contains(&format!("\"heap_objects\":{}", s.heap_objects)));
    for f in ["mallocs", "frees", "pause_ns", "last_gc", "enable_gc"] {
        assert!(MemStats::FIELDS.contains(&f), "{f} not in FIELDS");
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        String::from("<non-string panic>")
    }
}

/// `gc()` on a pinned thread (even via an outer guard) panics clearly; the runtime still works.
#[test]
fn gc_while_pinned_panics_clearly() {
    let _s = serial();
    let before = tricolor::read_mem_stats().num_gc;
    for nested in [false, true] {
        let r = std::panic::catch_unwind(|| {
            let outer = tricolor::pin();
            if nested {
                let inner = tricolor::pin();
                drop(inner);
            }
            tricolor::gc();
            drop(outer);
        });
        let msg = panic_message(&*r.expect_err("gc() while pinned returned"));
        assert!(
            msg.to_lowercase().contains("pin") || msg.to_lowercase().contains("guard"),
            "unclear message: {msg:?}"
        );
    }
    // The guard was released by unwinding: gc() works, the heap is usable.
    let r = Root::new(Small {
        id: 42,
        next: Member::null(),
    });
    tricolor::gc();
    assert_eq!(tricolor::read_mem_stats().num_gc, before + 1);
    assert_eq!(r.id, 42);
}

/// Runs this test binary's `env_probe` test in a child process with
/// `TRICOLOR_GC` set to `value` (or unset); returns the probed value and the
/// child's stderr.
fn probe(value: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "env_probe", "--nocapture", "--test-threads=1"])
        .env("TRICOLOR_TEST_ENV_PROBE", "1")
        .env_remove("TRICOLOR_DEBUG")
        .env_remove("TRICOLOR_MEMLIMIT");
    match value {
        Some(v) => cmd.env("TRICOLOR_GC", v),
        None => cmd.env_remove("TRICOLOR_GC"),
    };
    let out = cmd.output().expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "probe failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        // libtest prints "test env_probe ... " before the test's output.
        .find_map(|l| l.split_once("ENV_PROBE_RESULT=").map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no probe result in:\n{stdout}"));
    (line.trim().parse().unwrap(), stderr)
}

fn mentions_tricolor_gc(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.contains("TRICOLOR_GC")).count()
}

/// Not a check: the child-process probe of the `tricolor_gc_env_*` tests (a no-op otherwise).
#[test]
fn env_probe() {
    if std::env::var_os("TRICOLOR_TEST_ENV_PROBE").is_none() {
        return;
    }
    let started_with = tricolor::set_gc_percent(100);
    tricolor::set_gc_percent(100);
    {
        let g = tricolor::pin();
        let _ = g.alloc(Small {
            id: 1,
            next: Member::null(),
        });
    }
    tricolor::gc();
    let _ = tricolor::read_mem_stats();
    println!("ENV_PROBE_RESULT={started_with}");
}

/// `TRICOLOR_GC=50` sets the initial percent to 50, silently.
#[test]
fn tricolor_gc_env_number() {
    let (p, stderr) = probe(Some("50"));
    assert_eq!(p, 50);
    assert_eq!(mentions_tricolor_gc(&stderr), 0, "stderr: {stderr}");
}

/// `TRICOLOR_GC=off` disables automatic collection (-1), silently.
#[test]
fn tricolor_gc_env_off() {
    let (p, stderr) = probe(Some("off"));
    assert_eq!(p, -1);
    assert_eq!(mentions_tricolor_gc(&stderr), 0, "stderr: {stderr}");
}

/// Without `TRICOLOR_GC` the percent is the default, 100.
#[test]
fn tricolor_gc_env_unset() {
    let (p, _) = probe(None);
    assert_eq!(p, 100);
}

/// A bad `TRICOLOR_GC` ("abc") is reported once on stderr and the default (100) is kept.
#[test]
fn tricolor_gc_env_bad_value_is_reported_once() {
    let (p, stderr) = probe(Some("abc"));
    assert_eq!(p, 100);
    assert_eq!(
        mentions_tricolor_gc(&stderr),
        1,
        "expected one report naming TRICOLOR_GC, stderr:\n{stderr}"
    );
    assert!(stderr.contains("abc"), "the report should show the value");
}
