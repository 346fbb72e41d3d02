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

/// A pinned thread blocks on a channel fed by threads that pin and allocate
/// while `gc()` runs cycles on a third thread: everything finishes.
#[test]
fn pinned_thread_waiting_for_a_pinning_thread_does_not_deadlock() {
    for round in 0..20u64 {
        let g = tricolor::pin();
        let keep = g.alloc(Cell2 { v: round, next: Member::null() });
        let collector = std::thread::spawn(|| {
            for _ in 0..3 {
                tricolor::gc();
            }
        });
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            for i in 0..200u64 {
                let g = tricolor::pin();
                let a = g.alloc(Cell2 { v: i, next: Member::null() });
                let b = g.alloc(Cell2 { v: i + 1, next: Member::new(Some(a)) });
                assert_eq!(b.next.load(&g).unwrap().v, i);
            }
            tx.send(()).unwrap();
        });
        // Pinned, and waiting for a thread that needs to pin.
        rx.recv().unwrap();
        assert_eq!(keep.v, round);
        drop(g);
        worker.join().unwrap();
        collector.join().unwrap();
    }
}
