//! A mixed stress workload for valgrind: threads building and replacing
//! rings (cycles) of nodes that own `String` and `Vec<u8>` buffers in a
//! shared rooted table, cross links, roots created, dropped and handed
//! between threads, automatic collections (GC percent 25) and explicit
//! `gc()` calls. It checks itself (every reachable node intact, exactly the
//! unreachable ones dropped) and exits with status 0 only if all is well.
//!
//! CI runs it under valgrind memcheck (no errors, no definite leaks):
//!
//! ```text
//! cargo build --release --example stress
//! valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
//!     target/release/examples/stress --small
//! ```
//!
//! Without `--small` it runs a larger workload (for plain runs, not
//! valgrind).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use common::{mix, Counted};
use tricolor::{Gc, Guard, Member, Root, Trace};

/// Slots in the shared table.
const SLOTS: usize = 64;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    payload: String,
    bytes: Vec<u8>,
    next: Member<Node>,
    other: Member<Node>,
    counted: Counted,
}

#[derive(Trace)]
struct Table {
    slots: [Member<Node>; SLOTS],
}

struct Config {
    threads: usize,
    rounds: u64,
    ring: u64,
    gc_every: u64,
}

fn bytes_for(id: u64) -> Vec<u8> {
    vec![id as u8; (id % 97) as usize]
}

fn new_node<'g>(g: &'g Guard, id: u64) -> Gc<'g, Node> {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    g.alloc(Node {
        id,
        check: mix(id),
        payload: format!("node-{id}"),
        bytes: bytes_for(id),
        next: Member::null(),
        other: Member::null(),
        counted: Counted,
    })
}

fn verify(n: &Node) {
    assert_eq!(n.check, mix(n.id), "node {} corrupted", n.id);
    assert_eq!(n.payload, format!("node-{}", n.id), "payload corrupted");
    assert_eq!(n.bytes, bytes_for(n.id), "bytes corrupted");
}

/// Walks a ring from `head` for `len` steps, verifying each node; the ring
/// must close.
fn verify_ring(g: &Guard, head: Gc<'_, Node>, len: u64) {
    let mut cur = head;
    for _ in 0..len {
        verify(&cur);
        if let Some(o) = cur.other.load(g) {
            verify(&o);
        }
        cur = cur.next.load(g).expect("rings are closed");
    }
    assert!(Gc::ptr_eq(cur, head), "ring does not close");
}

static POOL: Mutex<Vec<Root<Node>>> = Mutex::new(Vec::new());

fn worker(t: usize, table: Root<Table>, cfg: &Config) -> Vec<Root<Node>> {
    let mut roots: Vec<Root<Node>> = Vec::new();
    let mut x = 0x9e37_79b9u64 + t as u64;
    let mut g = tricolor::pin();
    for round in 0..cfg.rounds {
        g.repin();
        if t == 0 && round % cfg.gc_every == cfg.gc_every - 1 {
            drop(g);
            tricolor::gc();
            g = tricolor::pin();
        }
        x = mix(x);
        // A new ring replaces an old one (which becomes a garbage cycle
        // unless a root or a cross link still holds it).
        let base = ((t as u64) << 40) | (round * cfg.ring);
        let head = new_node(&g, base);
        let mut prev = head;
        for k in 1..cfg.ring {
            let n = new_node(&g, base + k);
            prev.next.store(&g, Some(n));
            prev = n;
        }
        prev.next.store(&g, Some(head));
        let slot = (x % SLOTS as u64) as usize;
        table.slots[slot].store(&g, Some(head));
        // Cross link into another ring.
        let other = ((x >> 8) % SLOTS as u64) as usize;
        head.other.store(&g, table.slots[other].load(&g));
        // Verify some ring.
        let check = ((x >> 16) % SLOTS as u64) as usize;
        if let Some(h) = table.slots[check].load(&g) {
            verify_ring(&g, h, cfg.ring);
        }
        // Roots: create, drop, hand over, take.
        match (x >> 24) % 8 {
            0 | 1 => roots.push(head.root()),
            2 => {
                if !roots.is_empty() {
                    let r = roots.swap_remove((x >> 32) as usize % roots.len());
                    verify_ring(&g, r.get(&g), cfg.ring);
                }
            }
            3 => {
                if let Some(r) = roots.pop() {
                    POOL.lock().unwrap().push(r);
                }
            }
            4 => {
                let taken = POOL.lock().unwrap().pop();
                if let Some(r) = taken {
                    verify_ring(&g, r.get(&g), cfg.ring);
                    roots.push(r);
                }
            }
            _ => {
                // Short-lived garbage with an edge into the live graph.
                let n = new_node(&g, base | (1 << 39));
                n.next.store(&g, Some(head));
            }
        }
        if roots.len() > 16 {
            roots.remove(0);
        }
    }
    drop(g);
    roots
}

fn main() {
    let small = std::env::args().any(|a| a == "--small");
    let cfg = if small {
        Config {
            threads: 3,
            rounds: 12_000,
            ring: 6,
            gc_every: 500,
        }
    } else {
        Config {
            threads: 4,
            rounds: 50_000,
            ring: 8,
            gc_every: 2_000,
        }
    };
    tricolor::set_gc_percent(25);
    let table = Root::new(Table {
        slots: std::array::from_fn(|_| Member::null()),
    });
    let mut roots: Vec<Root<Node>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let table = table.clone();
                let cfg = &cfg;
                s.spawn(move || worker(t, table, cfg))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    roots.append(&mut POOL.lock().unwrap());

    // Quiesced: count what is reachable, verifying it.
    let reachable = {
        let g = tricolor::pin();
        let mut seen = HashSet::new();
        let mut stack: Vec<Gc<'_, Node>> = table.slots.iter().filter_map(|s| s.load(&g)).collect();
        stack.extend(roots.iter().map(|r| r.get(&g)));
        while let Some(n) = stack.pop() {
            if seen.insert(n.id) {
                verify(&n);
                stack.extend(n.next.load(&g));
                stack.extend(n.other.load(&g));
            }
        }
        seen.len() as u64
    };
    tricolor::gc();
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let drops = common::drops();
    assert_eq!(
        drops,
        allocs - reachable,
        "after gc(): {drops} drops, {allocs} allocations, {reachable} reachable"
    );
    let stats = tricolor::read_mem_stats();
    assert_eq!(stats.heap_objects, reachable + 1, "nodes plus the table");

    drop(roots);
    drop(table);
    tricolor::gc();
    assert_eq!(common::drops(), allocs, "everything freed");
    let stats = tricolor::read_mem_stats();
    assert_eq!(stats.heap_objects, 0);
    println!(
        "stress ok: {} threads, {allocs} nodes allocated, {reachable} reachable at the end, {} cycles",
        cfg.threads, stats.num_gc
    );
}
