//! The scavenger: `free_os_memory` returns the pages of free spans to the
//! OS (RSS drops), `MemStats` accounts for it (`heap_released`), and
//! released spans are reused with their new objects intact.
//!
//! The tests change GOGC and measure the process's resident set, so they
//! take one lock (`serial()`) and run one at a time. No test waits for the
//! background scavenger: the checks are on `free_os_memory`, which releases
//! synchronously (the background loop is unit-tested in `scavenger.rs`).

use std::sync::{Mutex, MutexGuard};

use tricolor::{MemStats, Member, Root, Trace};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const MIB: u64 = 1 << 20;

/// About 4 KiB (size class 4096), with an optional large object attached.
#[derive(Trace)]
struct Node {
    id: u64,
    data: [u64; 500],
    big: Member<Big>,
    next: Member<Node>,
}

/// A large object: one 256 KiB span of its own.
#[derive(Trace)]
struct Big {
    id: u64,
    data: [u64; 30_000],
}

/// Every `BIG_EVERY`-th node carries a `Big`.
const BIG_EVERY: u64 = 256;

fn pattern(id: u64, i: usize) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).rotate_left(29)
}

fn node(id: u64) -> Node {
    Node {
        id,
        data: std::array::from_fn(|i| pattern(id, i)),
        big: Member::null(),
        next: Member::null(),
    }
}

/// Bytes a list of `n` nodes occupies in slots and spans (approximately).
fn list_bytes(n: u64) -> u64 {
    n * 4096 + n.div_ceil(BIG_EVERY) * 256 * 1024
}

/// Builds a rooted list of `n` nodes with ids `base..base + n`.
fn build(base: u64, n: u64) -> Root<Node> {
    let head = Root::new(node(base));
    let mut tail = head.clone();
    let mut id = base + 1;
    while id < base + n {
        let g = tricolor::pin();
        let mut cur = tail.get(&g);
        for _ in 0..1024 {
            if id == base + n {
                break;
            }
            let p = g.alloc(node(id));
            if id.is_multiple_of(BIG_EVERY) {
                let b = g.alloc(Big {
                    id,
                    data: std::array::from_fn(|i| pattern(!id, i)),
                });
                p.big.store(&g, Some(b));
            }
            cur.next.store(&g, Some(p));
            cur = p;
            id += 1;
        }
        tail = cur.root();
    }
    head
}

/// Walks the list and checks every node and large object.
fn verify(head: &Root<Node>, base: u64, n: u64) {
    let g = tricolor::pin();
    let mut cur = Some(head.get(&g));
    let mut id = base;
    while let Some(p) = cur {
        assert_eq!(p.id, id, "list order");
        for (i, &w) in p.data.iter().enumerate() {
            assert_eq!(w, pattern(id, i), "node {id} word {i} corrupted");
        }
        match p.big.load(&g) {
            Some(b) => {
                assert!(id.is_multiple_of(BIG_EVERY) && id != base);
                assert_eq!(b.id, id);
                for (i, &w) in b.data.iter().enumerate() {
                    assert_eq!(w, pattern(!id, i), "big {id} word {i} corrupted");
                }
            }
            None => assert!(
                !id.is_multiple_of(BIG_EVERY) || id == base,
                "node {id} lost its big"
            ),
        }
        cur = p.next.load(&g);
        id += 1;
    }
    assert_eq!(id, base + n, "list length");
}

/// Resident set size of this process, in bytes (`/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident field of /proc/self/statm");
    pages * page_size()
}

/// The kernel page size (statm counts in pages).
fn page_size() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    smaps
        .lines()
        .find_map(|l| l.strip_prefix("KernelPageSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(4096, |kb| kb * 1024)
}

fn check_relations(s: &MemStats) {
    assert_eq!(
        s.heap_inuse + s.heap_idle,
        s.heap_sys,
        "inuse + idle == sys"
    );
    assert!(s.heap_idle >= s.heap_released, "idle includes released");
    assert!(s.sys >= s.heap_sys);
}

/// 200 MiB of garbage: after `free_os_memory` its spans are released, RSS
/// falls accordingly, and the spans are reused intact.
#[test]
fn free_os_memory_releases_freed_spans_and_they_are_reused() {
    let _s = serial();
    // GOGC off: no automatic cycles and no background scavenging (its goal
    // is "never"), so every release here is `free_os_memory`'s.
    let orig = tricolor::set_gc_percent(-1);
    tricolor::free_os_memory();

    const N: u64 = 40_960; // 160 MiB of nodes + 160 large objects (40 MiB)
    let head = build(0, N);
    tricolor::gc();
    let live = tricolor::read_mem_stats();
    check_relations(&live);
    drop(head);
    tricolor::gc();
    let dead = tricolor::read_mem_stats();
    check_relations(&dead);
    let freed = live.heap_inuse - dead.heap_inuse;
    assert!(
        freed >= list_bytes(N) * 9 / 10,
        "the dropped list freed only {} MiB of spans",
        freed / MIB
    );

    let rss_before = rss();
    let released_before = tricolor::read_mem_stats().heap_released;
    tricolor::free_os_memory();
    let s = tricolor::read_mem_stats();
    let rss_after = rss();
    check_relations(&s);
    let released = s.heap_released - released_before;
    println!(
        "free_os_memory: freed {} MiB of spans, released {} MiB; RSS {} MiB -> {} MiB \
         (heap_sys {} MiB, heap_idle {} MiB, heap_released {} MiB)",
        freed / MIB,
        released / MIB,
        rss_before / MIB,
        rss_after / MIB,
        s.heap_sys / MIB,
        s.heap_idle / MIB,
        s.heap_released / MIB
    );
    assert!(s.heap_released > 0);
    assert!(
        released >= freed * 9 / 10,
        "released {released} bytes of {freed} freed"
    );
    assert_eq!(s.heap_released, s.heap_idle, "every free span is released");
    assert!(
        rss_before.saturating_sub(rss_after) >= released / 2,
        "RSS fell by {} bytes only, after releasing {released}",
        rss_before.saturating_sub(rss_after)
    );

    // Allocate again: the released spans are reused (no new arena), they
    // become unreleased, and the new objects are intact, also across a
    // cycle and another release of the remaining free spans.
    const M: u64 = 20_480;
    let head = build(1 << 40, M);
    tricolor::gc();
    let again = tricolor::read_mem_stats();
    check_relations(&again);
    assert_eq!(again.heap_sys, s.heap_sys, "released spans were reused");
    let reused = again.heap_inuse - s.heap_inuse;
    assert!(reused >= list_bytes(M) * 9 / 10);
    assert!(
        s.heap_released - again.heap_released >= reused,
        "heap_released went from {} to {} with {reused} bytes of spans reused",
        s.heap_released,
        again.heap_released
    );
    verify(&head, 1 << 40, M);
    tricolor::free_os_memory();
    verify(&head, 1 << 40, M);
    check_relations(&tricolor::read_mem_stats());

    drop(head);
    tricolor::set_gc_percent(orig);
    tricolor::free_os_memory();
}

/// `free_os_memory` while another thread allocates, checks and drops lists:
/// released spans are handed out again intact, and the figures stay coherent.
#[test]
fn free_os_memory_races_with_allocation() {
    let _s = serial();
    let orig = tricolor::set_gc_percent(100);
    let mut calls = 0u32;
    std::thread::scope(|sc| {
        let worker = sc.spawn(|| {
            for round in 0..24u64 {
                let base = round << 32;
                let head = build(base, 2048);
                verify(&head, base, 2048);
            }
        });
        // At least a few calls, however fast the worker is.
        while !worker.is_finished() || calls < 3 {
            tricolor::free_os_memory();
            check_relations(&tricolor::read_mem_stats());
            calls += 1;
        }
        worker.join().unwrap();
    });
    tricolor::free_os_memory();
    let s = tricolor::read_mem_stats();
    check_relations(&s);
    assert!(s.heap_released > 0);
    println!("{calls} free_os_memory calls during the allocation rounds");
    tricolor::set_gc_percent(orig);
}

/// A GC object owning a `malloc` block (freed when the sweep drops it).
#[derive(Trace)]
struct Owner {
    text: String,
}

/// `free_os_memory` also returns the pages `malloc` keeps after a sweep
/// freed the blocks of dead objects (glibc's `malloc_trim`). The blocks are
/// 200 bytes and every 64th object stays alive, so the freed memory lies in
/// runs between live blocks, which `free` itself cannot give back (it
/// returns only the top of an arena). The RSS drop beyond what the
/// scavenger released of the heap's own spans is malloc's; without the
/// trim it is about zero (checked with the call removed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn free_os_memory_returns_malloc_free_pages() {
    let _s = serial();
    const N: usize = 256 * 1024;
    let keep: Vec<Root<Owner>> = {
        let g = tricolor::pin();
        let mut keep = Vec::new();
        for i in 0..N {
            let o = g.alloc(Owner {
                text: format!("{i:0>200}"),
            });
            if i % 64 == 0 {
                keep.push(Root::from_gc(o));
            }
        }
        keep
    };
    // The sweep drops the dead objects: about 52 MiB of blocks go back to
    // malloc, which keeps them.
    tricolor::gc();
    let (rss0, released0) = (rss(), tricolor::read_mem_stats().heap_released);
    tricolor::free_os_memory();
    let (rss1, released1) = (rss(), tricolor::read_mem_stats().heap_released);
    let spans = released1.saturating_sub(released0);
    let dropped = rss0.saturating_sub(rss1);
    assert!(
        dropped >= spans + 32 * MIB,
        "RSS fell by {} MiB, of which {} MiB were the heap's spans: malloc gave back {} MiB \
         of about 52 MiB freed",
        dropped / MIB,
        spans / MIB,
        dropped.saturating_sub(spans) / MIB
    );
    let g = tricolor::pin();
    for (i, r) in keep.iter().enumerate() {
        assert_eq!(r.get(&g).text, format!("{:0>200}", i * 64));
    }
}
