//! Liveness: a pinned thread that waits for another thread which uses the
//! heap must not deadlock with a collection (the collector's final stop is
//! undone and retried rather than held while a pinned thread is stuck).

use std::sync::mpsc;
use tricolor::{Member, Trace};

#[derive(Trace)]
struct Cell2 {
    v: u64,
    next: Member<Cell2>,
}

/// A pinned thread repeatedly blocks on a reply from a thread that pins and
/// allocates to make it, while `gc()` runs cycles on a third thread: every
/// request is answered and every thread finishes.
#[test]
fn pinned_thread_waiting_for_a_pinning_thread_does_not_deadlock() {
    const ROUNDS: u64 = 2_000;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let collector = std::thread::spawn(move || {
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            tricolor::gc();
        }
    });
    let (req_tx, req_rx) = mpsc::channel::<u64>();
    let (rep_tx, rep_rx) = mpsc::channel::<u64>();
    let worker = std::thread::spawn(move || {
        for i in req_rx {
            let g = tricolor::pin();
            let a = g.alloc(Cell2 {
                v: i,
                next: Member::null(),
            });
            let b = g.alloc(Cell2 {
                v: i + 1,
                next: Member::new(Some(a)),
            });
            let v = b.next.load(&g).unwrap().v;
            drop(g);
            rep_tx.send(v).unwrap();
        }
    });
    for round in 0..ROUNDS {
        let g = tricolor::pin();
        let keep = g.alloc(Cell2 {
            v: round,
            next: Member::null(),
        });
        req_tx.send(round).unwrap();
        // Pinned, and waiting for a thread that needs to pin.
        assert_eq!(rep_rx.recv().unwrap(), round);
        assert_eq!(keep.v, round);
    }
    drop(req_tx);
    worker.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    collector.join().unwrap();
}

/// `Guard::offline` lets a pinned thread block on a thread that runs a whole
/// collection (which needs every thread to pass a quiescent point): without
/// it the join below would never return.
#[test]
fn offline_guard_lets_a_blocked_thread_wait_for_a_collection() {
    let mut g = tricolor::pin();
    let keep = g
        .alloc(Cell2 {
            v: 7,
            next: Member::null(),
        })
        .root();
    let before = tricolor::read_mem_stats().num_gc;
    let after = g.offline(|| {
        std::thread::spawn(|| {
            tricolor::gc();
            tricolor::read_mem_stats().num_gc
        })
        .join()
        .unwrap()
    });
    assert!(after > before);
    assert_eq!(keep.get(&g).v, 7);
}
