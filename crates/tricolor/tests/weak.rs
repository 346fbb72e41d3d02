//! Weak pointers and cleanups: cleared / run exactly when the target is
//! unreachable (an oracle walks the graph), never before; upgrades racing
//! collections; cleanups for cycles, cancelled, allocating and panicking.
//!
//! Every test only asserts what holds whatever other tests (threads of this
//! binary) collect meanwhile: a collection never clears a reachable target.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use proptest::prelude::*;
use tricolor::{Member, Root, Trace, Weak};

#[derive(Trace)]
struct Node {
    id: usize,
    edges: [Member<Node>; 2],
    /// A weak edge: never keeps its target alive.
    weak: Option<Weak<Node>>,
}

fn node(id: usize) -> Node {
    Node {
        id,
        edges: [Member::null(), Member::null()],
        weak: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A random graph, a weak pointer to every node, some roots dropped:
    /// after a collection, exactly the weak pointers of nodes unreachable
    /// from the remaining roots are cleared.
    #[test]
    fn weak_cleared_exactly_when_unreachable(
        n in 2usize..40,
        edges in proptest::collection::vec((0usize..40, 0usize..2, 0usize..40), 0..80),
        keep in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let g = tricolor::pin();
        let nodes: Vec<_> = (0..n).map(|i| g.alloc(node(i))).collect();
        let mut adj = vec![[None::<usize>; 2]; n];
        for &(a, s, b) in &edges {
            let (a, b) = (a % n, b % n);
            nodes[a].edges[s].store(&g, Some(nodes[b]));
            adj[a][s] = Some(b);
        }
        let weaks: Vec<Weak<Node>> = nodes.iter().map(|x| x.downgrade()).collect();
        // Weak edges inside the heap: node i points weakly to node i+1.
        let roots: Vec<Option<Root<Node>>> = nodes
            .iter()
            .enumerate()
            .map(|(i, x)| keep[i].then(|| x.root()))
            .collect();
        drop(g);
        // The oracle: reachable from the kept roots through strong edges.
        let mut seen = HashSet::new();
        let mut todo: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(adj[i].iter().flatten());
            }
        }
        tricolor::gc();
        for (i, w) in weaks.iter().enumerate() {
            prop_assert_eq!(w.is_cleared(), !seen.contains(&i), "node {}", i);
            match w.upgrade() {
                Some(r) => prop_assert_eq!(r.id, i),
                None => prop_assert!(!seen.contains(&i)),
            }
        }
        drop(roots);
    }
}

#[test]
fn weak_edges_inside_the_heap_do_not_keep_targets_alive() {
    let g = tricolor::pin();
    let a = g.alloc(node(1));
    let b = g.alloc(node(2));
    let mut holder = node(0);
    holder.weak = Some(b.downgrade());
    let h = Root::new(holder);
    let a_root = a.root();
    let wa = a.downgrade();
    drop(g);
    tricolor::gc();
    assert!(
        h.weak.as_ref().unwrap().upgrade().is_none(),
        "b was only weakly reachable"
    );
    assert_eq!(wa.upgrade().map(|r| r.id), Some(1));
    drop(a_root);
    tricolor::gc();
    assert!(wa.upgrade().is_none());
}

#[test]
fn upgrade_in_gives_a_guarded_pointer() {
    let r = Root::new(node(5));
    let w = Root::downgrade(&r);
    let w2 = w.clone();
    assert!(Weak::ptr_eq(&w, &w2));
    let g = tricolor::pin();
    assert_eq!(w.upgrade_in(&g).map(|x| x.id), Some(5));
    drop(g);
    drop(r);
    tricolor::gc();
    assert!(w2.upgrade_in(&tricolor::pin()).is_none());
    assert!(format!("{w:?}").contains("cleared"));
}

/// Threads upgrade weak pointers (and root what they get) while others drop
/// roots and collect: every successful upgrade reads an intact object, and
/// an object kept by an upgraded root is never cleared.
#[test]
fn upgrades_race_collections() {
    const N: usize = 2000;
    let roots: Vec<Root<Node>> = (0..N).map(|i| Root::new(node(i))).collect();
    let weaks: Arc<Vec<Weak<Node>>> = Arc::new(roots.iter().map(Root::downgrade).collect());
    let upgraded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut hs = Vec::new();
    for t in 0..2 {
        let (weaks, upgraded) = (weaks.clone(), upgraded.clone());
        hs.push(std::thread::spawn(move || {
            for round in 0..20 {
                for (i, w) in weaks.iter().enumerate() {
                    if (i + t + round) % 7 == 0 {
                        if let Some(r) = w.upgrade() {
                            assert_eq!(r.id, i);
                            if i % 11 == 0 {
                                upgraded.lock().unwrap().push(r);
                            }
                        }
                    }
                }
            }
        }));
    }
    let collector = std::thread::spawn(move || {
        let mut roots = roots;
        for _ in 0..10 {
            roots.truncate(roots.len() * 2 / 3);
            tricolor::gc();
        }
        roots
    });
    for h in hs {
        h.join().unwrap();
    }
    let kept = collector.join().unwrap();
    tricolor::gc();
    for r in upgraded.lock().unwrap().iter() {
        assert_eq!(weaks[r.id].upgrade().map(|x| x.id), Some(r.id));
    }
    for r in &kept {
        assert!(!weaks[r.id].is_cleared());
    }
}

#[test]
fn cleanups_run_once_after_unreachability_also_for_cycles() {
    let count = Arc::new(AtomicUsize::new(0));
    let g = tricolor::pin();
    let a = g.alloc(node(1));
    let b = g.alloc(node(2));
    a.edges[0].store(&g, Some(b));
    b.edges[0].store(&g, Some(a));
    let (ra, rb) = (a.root(), b.root());
    drop(g);
    tricolor::add_cleanup(&ra, count.clone(), |c| {
        c.fetch_add(1, SeqCst);
    });
    tricolor::add_cleanup(&rb, count.clone(), |c| {
        c.fetch_add(10, SeqCst);
    });
    drop(rb);
    tricolor::gc();
    tricolor::run_cleanups();
    assert_eq!(
        count.load(SeqCst),
        0,
        "the cycle is still reachable from ra"
    );
    tricolor::keep_alive(&ra);
    drop(ra);
    tricolor::gc();
    tricolor::run_cleanups();
    assert_eq!(
        count.load(SeqCst),
        11,
        "both cleanups of the dead cycle run"
    );
    tricolor::gc();
    tricolor::run_cleanups();
    assert_eq!(count.load(SeqCst), 11, "each runs once");
}

#[test]
fn a_stopped_cleanup_never_runs() {
    let count = Arc::new(AtomicUsize::new(0));
    let r = Root::new(node(3));
    let c = tricolor::add_cleanup(&r, count.clone(), |c| {
        c.fetch_add(1, SeqCst);
    });
    c.stop();
    drop(r);
    tricolor::gc();
    tricolor::run_cleanups();
    assert_eq!(count.load(SeqCst), 0);
}

#[test]
fn cleanups_that_allocate_or_panic_do_not_break_the_collector() {
    let done = Arc::new(AtomicUsize::new(0));
    let panics_before = tricolor::cleanup_panics();
    let r1 = Root::new(node(1));
    let r2 = Root::new(node(2));
    tricolor::add_cleanup(&r1, (), |()| panic!("cleanup failed on purpose"));
    tricolor::add_cleanup(&r2, done.clone(), |d| {
        // Allocates in the heap and collects from the cleanup thread.
        let x = Root::new(node(99));
        assert_eq!(x.id, 99);
        d.fetch_add(1, SeqCst);
    });
    drop((r1, r2));
    tricolor::gc();
    tricolor::run_cleanups();
    assert_eq!(done.load(SeqCst), 1);
    assert!(tricolor::cleanup_panics() > panics_before);
    // The collector still works.
    let w = Root::downgrade(&Root::new(node(7)));
    tricolor::gc();
    assert!(w.is_cleared());
}
