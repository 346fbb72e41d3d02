//! `Pool<T>` (Go's `sync.Pool`): values survive exactly the cycles Go's
//! rules say (one cycle as a victim, dropped at the second), on one thread
//! and across threads; drops happen when the victim is dropped; `Pooled`
//! derefs and returns its value; a dropped pool frees its values.
//!
//! Cycles are global, so every scenario runs in one `#[test]`, in order,
//! in this test binary of its own: no other test can run a cycle in the
//! middle of a scenario. Nothing here allocates on the GC heap, so the
//! only cycles are the `gc()` calls (the pool works without GC objects).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use tricolor::{gc, Pool, Pooled};

/// A pooled value: `id` 0 is made by `new`; drops are counted.
struct Item {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

struct Counters {
    made: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            made: Arc::new(AtomicUsize::new(0)),
            drops: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn pool(&self) -> Pool<Item> {
        let (made, drops) = (self.made.clone(), self.drops.clone());
        Pool::new(move || {
            made.fetch_add(1, SeqCst);
            Item {
                id: 0,
                drops: drops.clone(),
            }
        })
    }
    fn item(&self, id: u64) -> Item {
        Item {
            id,
            drops: self.drops.clone(),
        }
    }
    fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }
}

#[test]
fn pool_scenarios() {
    victim_survives_one_cycle();
    shared_values_dropped_by_the_second_cycle();
    across_threads();
    pooled_derefs_and_returns();
    dropped_pool_frees_its_values();
    values_whose_drop_uses_a_pool();
    concurrent_use_with_cycles();
}

fn victim_survives_one_cycle() {
    let c = Counters::new();
    let pool = c.pool();
    pool.put(c.item(1));
    gc();
    let x = pool.get_raw();
    assert_eq!(x.id, 1, "a value put before one cycle comes back (victim)");
    pool.put(x);
    gc();
    gc();
    assert_eq!(c.drops(), 0, "a private value is dropped lazily");
    let y = pool.get_raw();
    assert_eq!(y.id, 0, "after two cycles without get: a fresh value");
    assert_eq!(c.drops(), 1, "the expired value was dropped by that get");
    assert_eq!(c.made.load(SeqCst), 1);
    drop(y);
}

fn shared_values_dropped_by_the_second_cycle() {
    let c = Counters::new();
    let pool = c.pool();
    pool.put(c.item(1)); // the private slot
    pool.put(c.item(2)); // the shared shard
    pool.put(c.item(3));
    gc();
    assert_eq!(c.drops(), 0, "one cycle: victims, not dropped");
    gc();
    assert_eq!(c.drops(), 2, "the second cycle drops the shared victims");
    assert_eq!(pool.get_raw().id, 0);
    assert_eq!(c.drops(), 3 + 1, "the private value too, at the next get");
    // A get from the victim puts nothing back: the value is the caller's.
    pool.put(c.item(4));
    pool.put(c.item(5));
    gc();
    let mut ids = [pool.get_raw().id, pool.get_raw().id];
    ids.sort();
    assert_eq!(ids, [4, 5]);
    assert_eq!(pool.get_raw().id, 0);
}

fn across_threads() {
    let c = Counters::new();
    let pool = Arc::new(c.pool());

    // Values of an exited thread go back to the shared cache.
    let p = pool.clone();
    let (a, b) = (c.item(1), c.item(2));
    std::thread::spawn(move || {
        p.put(a);
        p.put(b);
    })
    .join()
    .unwrap();
    gc();
    let mut ids = [pool.get_raw().id, pool.get_raw().id];
    ids.sort();
    assert_eq!(ids, [1, 2], "another thread's values, one cycle later");
    assert_eq!(pool.get_raw().id, 0);
    let base = c.drops();

    let p = pool.clone();
    let (a, b) = (c.item(3), c.item(4));
    std::thread::spawn(move || {
        p.put(a);
        p.put(b);
    })
    .join()
    .unwrap();
    gc();
    gc();
    assert_eq!(c.drops(), base + 2, "two cycles: dropped by the collector");
    assert_eq!(pool.get_raw().id, 0);

    // A value put by this thread (shared) is taken by another thread after
    // a cycle (stolen from the victim cache).
    pool.put(c.item(5)); // this thread's private slot
    pool.put(c.item(6)); // shared
    gc();
    let p = pool.clone();
    let (first, second) = std::thread::spawn(move || (p.get_raw().id, p.get_raw().id))
        .join()
        .unwrap();
    assert_eq!((first, second), (6, 0));
    assert_eq!(pool.get_raw().id, 5);

    // A live thread keeps its private value across a cycle.
    let (to_thread, from_main) = mpsc::channel::<()>();
    let (to_main, from_thread) = mpsc::channel::<u64>();
    let p = pool.clone();
    let x = c.item(7);
    let t = std::thread::spawn(move || {
        p.put(x);
        to_main.send(0).unwrap();
        from_main.recv().unwrap(); // main ran one cycle
        to_main.send(p.get_raw().id).unwrap();
    });
    assert_eq!(from_thread.recv().unwrap(), 0);
    gc();
    to_thread.send(()).unwrap();
    assert_eq!(from_thread.recv().unwrap(), 7);
    t.join().unwrap();
}

fn pooled_derefs_and_returns() {
    let pool: Pool<Vec<u32>> = Pool::new(Vec::new);
    {
        let mut v: Pooled<'_, Vec<u32>> = pool.get();
        v.push(1); // DerefMut
        v.push(2);
        assert_eq!(v.len(), 2); // Deref
        assert_eq!(&v[..], [1, 2]);
    }
    assert_eq!(pool.get_raw(), [1, 2], "Pooled returned its value on drop");
    let v = pool.get();
    let kept = v.into_inner();
    assert!(kept.is_empty());
    assert!(pool.get_raw().is_empty(), "into_inner does not return it");
}

fn dropped_pool_frees_its_values() {
    let c = Counters::new();
    let pool = Arc::new(c.pool());
    pool.put(c.item(1));
    pool.put(c.item(2));
    pool.put(c.item(3));
    // An exited thread's private value went back to the pool.
    let p = pool.clone();
    let x = c.item(4);
    std::thread::spawn(move || p.put(x)).join().unwrap();
    gc(); // some in the victim cache
    pool.put(c.item(5));

    // A live thread's private value is dropped when that thread exits.
    let (to_thread, from_main) = mpsc::channel::<()>();
    let (to_main, from_thread) = mpsc::channel::<()>();
    let p = pool.clone();
    let y = c.item(6);
    let t = std::thread::spawn(move || {
        p.put(y);
        drop(p);
        to_main.send(()).unwrap();
        from_main.recv().unwrap();
    });
    from_thread.recv().unwrap();
    let pool = Arc::try_unwrap(pool).expect("the last handle");
    drop(pool);
    assert_eq!(c.drops(), 5, "the pool's values are dropped with it");
    to_thread.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(c.drops(), 6, "the other thread's one at its exit");
    assert_eq!(c.made.load(SeqCst), 0);

    // A new pool reusing the dropped pool's slot index never sees its values.
    let c2 = Counters::new();
    let pool = c2.pool();
    assert_eq!(pool.get_raw().id, 0);
}

/// Pooled values whose `Drop` uses another pool: no re-entrance panic,
/// whether the drop runs on a thread's pool operation or on the collector.
fn values_whose_drop_uses_a_pool() {
    struct Noisy {
        other: Arc<Pool<u64>>,
    }
    impl Drop for Noisy {
        fn drop(&mut self) {
            self.other.put(self.other.get_raw() + 1);
        }
    }
    let other = Arc::new(Pool::new(|| 0u64));
    let o = other.clone();
    let pool = Pool::new(move || Noisy { other: o.clone() });
    let (a, b, d) = (pool.get_raw(), pool.get_raw(), pool.get_raw());
    pool.put(a); // private
    pool.put(b); // shared
    pool.put(d);
    gc();
    gc(); // the shared two are dropped on the collector thread
    drop(pool.get_raw()); // the private one expires here; a fresh one dropped
    drop(pool);
    let total: u64 = std::iter::from_fn(|| Some(other.get_raw())).take(8).sum();
    assert!(total >= 1);
}

fn concurrent_use_with_cycles() {
    let c = Counters::new();
    let pool = Arc::new(c.pool());
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let p = pool.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    let mut v = p.get();
                    v.id = t * 1_000_000 + i + 1;
                    if i % 3 == 0 {
                        let w = p.get_raw();
                        p.put(w);
                    }
                }
            })
        })
        .collect();
    for _ in 0..20 {
        gc();
    }
    for t in threads {
        t.join().unwrap();
    }
    drop(Arc::try_unwrap(pool).expect("the last handle"));
    assert_eq!(
        c.drops(),
        c.made.load(SeqCst),
        "every value made is dropped exactly once"
    );
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Pool<Item>>();
    is::<Pool<std::cell::Cell<u8>>>();
}
