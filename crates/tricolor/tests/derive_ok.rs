//! `#[derive(Trace)]` on every shape it supports: generic, enum with data,
//! tuple, unit, plain data with its own `Drop`, `Option<Member<T>>`,
//! `Vec<u8>`, `GcVec`, and `#[tricolor(unsafe_allow_drop)]`. Checks the
//! `NEEDS_TRACE` values the derive computes, and that the generated `trace`
//! reports the edges: what is reachable from a root survives collections.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

use tricolor::{Gc, GcVec, Guard, Member, Root, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    left: Member<Node>,
    right: Member<Node>,
}

/// Plain data only: "noscan".
#[derive(Trace)]
struct Plain {
    id: i64,
    name: String,
}

#[derive(Trace)]
struct Bytes {
    data: Vec<u8>,
    hits: Cell<u64>,
}

#[derive(Trace)]
struct Pair<A, B> {
    a: A,
    b: B,
}

/// Generic, self-referential through `Option<Member<Self>>`.
#[derive(Trace)]
struct List<T: Trace + Send + Sync + 'static> {
    head: T,
    tail: Option<Member<Self>>,
}

#[derive(Trace)]
enum Expr {
    Num(i64),
    Neg(Member<Expr>),
    Add {
        lhs: Member<Expr>,
        rhs: Member<Expr>,
    },
    Nil,
}

#[derive(Trace)]
enum Shape {
    Circle { r: u32 },
    Square(u32),
    Empty,
}

#[derive(Trace)]
enum Never {}

#[derive(Trace)]
struct Edge(i64, Member<Node>);

#[derive(Trace)]
struct Marker;

#[derive(Trace)]
struct Bag {
    label: String,
    items: GcVec<Node>,
}

/// Lifetimes are accepted (such a type cannot be allocated unless they are
/// `'static`, but it can still be traced as part of something else).
#[derive(Trace)]
struct Borrowed<'a, T: ?Sized> {
    len: usize,
    _marker: PhantomData<&'a T>,
}

/// Plain data with its own `Drop`: allowed, nothing in it is an edge.
#[derive(Trace)]
struct Logged {
    id: i64,
    label: String,
}

static LOGGED_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Logged {
    fn drop(&mut self) {
        LOGGED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Holds an edge and has a `Drop`: accepted only with the opt-out, which is
/// the promise that `drop` never touches `peer`.
#[derive(Trace)]
#[tricolor(unsafe_allow_drop)]
struct Handle {
    fd: i64,
    peer: Member<Node>,
}

static HANDLE_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Handle {
    fn drop(&mut self) {
        // Plain data only (the promise made by `unsafe_allow_drop`).
        if self.fd >= 0 {
            HANDLE_DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Raw identifiers work, both for the type and its fields.
#[derive(Trace)]
struct r#Type {
    r#type: u8,
    r#ref: Member<Node>,
}

fn needs_trace<T: Trace + ?Sized>() -> bool {
    T::NEEDS_TRACE
}

// Also usable in constants.
const _: () = assert!(!<Plain as Trace>::NEEDS_TRACE);
const _: () = assert!(<Node as Trace>::NEEDS_TRACE);

#[test]
fn needs_trace_is_false_for_plain_data() {
    assert!(!needs_trace::<Plain>());
    assert!(!needs_trace::<Bytes>());
    assert!(!needs_trace::<Marker>());
    assert!(!needs_trace::<Shape>());
    assert!(!needs_trace::<Never>());
    assert!(!needs_trace::<Logged>());
    assert!(!needs_trace::<Pair<i64, String>>());
    assert!(!needs_trace::<Borrowed<'static, str>>());
}

#[test]
fn needs_trace_is_true_with_an_edge() {
    assert!(needs_trace::<Node>());
    assert!(needs_trace::<Expr>());
    assert!(needs_trace::<Edge>());
    assert!(needs_trace::<Bag>());
    assert!(needs_trace::<Handle>());
    assert!(needs_trace::<r#Type>());
    assert!(needs_trace::<List<u32>>());
    assert!(needs_trace::<Pair<i64, Member<Node>>>());
    assert!(needs_trace::<Pair<Option<Member<Node>>, u8>>());
}

fn leaf(g: &Guard, value: i64) -> Gc<'_, Node> {
    g.alloc(Node {
        value,
        left: Member::null(),
        right: Member::null(),
    })
}

/// Collects a few times with no guard held by this thread.
fn collect() {
    for _ in 0..3 {
        tricolor::gc();
    }
}

#[test]
fn struct_edges_keep_targets_alive() {
    let root: Root<Node> = {
        let g = tricolor::pin();
        let l = leaf(&g, 2);
        let r = leaf(&g, 3);
        g.alloc(Node {
            value: 1,
            left: Member::from(l),
            right: Member::new(Some(r)),
        })
        .root()
    };
    collect();
    let g = tricolor::pin();
    assert_eq!(root.value, 1);
    assert_eq!(root.left.load(&g).map(|n| n.value), Some(2));
    assert_eq!(root.right.load(&g).map(|n| n.value), Some(3));
}

fn eval(e: &Expr, g: &Guard) -> i64 {
    let sub = |m: &Member<Expr>| eval(&m.load(g).expect("edge kept alive"), g);
    match e {
        Expr::Num(n) => *n,
        Expr::Neg(x) => -sub(x),
        Expr::Add { lhs, rhs } => sub(lhs) + sub(rhs),
        Expr::Nil => 0,
    }
}

#[test]
fn enum_edges_keep_targets_alive() {
    let root: Root<Expr> = {
        let g = tricolor::pin();
        let two = g.alloc(Expr::Num(2));
        let forty = g.alloc(Expr::Num(40));
        let neg = g.alloc(Expr::Neg(Member::from(two)));
        let sum = g.alloc(Expr::Add {
            lhs: Member::from(forty),
            rhs: Member::from(neg),
        });
        let four = g.alloc(Expr::Add {
            lhs: Member::from(g.alloc(Expr::Num(4))),
            rhs: Member::from(g.alloc(Expr::Nil)),
        });
        g.alloc(Expr::Add {
            lhs: Member::from(sum),
            rhs: Member::from(four),
        })
        .root()
    };
    collect();
    let g = tricolor::pin();
    assert_eq!(eval(&root, &g), 42);
}

#[test]
fn generic_tuple_and_container_edges_keep_targets_alive() {
    let (list, edge, bag) = {
        let g = tricolor::pin();
        let tail = g.alloc(List {
            head: 2u32,
            tail: None,
        });
        let list = g
            .alloc(List {
                head: 1u32,
                tail: Some(Member::from(tail)),
            })
            .root();
        let edge = g.alloc(Edge(7, Member::from(leaf(&g, 8)))).root();
        let bag = g
            .alloc(Bag {
                label: "bag".to_string(),
                items: GcVec::new(),
            })
            .root();
        for v in 0..4 {
            bag.items.push(&g, Some(leaf(&g, v)));
        }
        (list, edge, bag)
    };
    collect();
    let g = tricolor::pin();
    let tail = list.tail.as_ref().and_then(|m| m.load(&g)).expect("tail");
    assert_eq!((list.head, tail.head), (1, 2));
    assert!(tail.tail.is_none());
    assert_eq!(edge.0, 7);
    assert_eq!(edge.1.load(&g).map(|n| n.value), Some(8));
    assert_eq!(bag.label, "bag");
    let values: Vec<i64> = bag.items.iter(&g).map(|n| n.expect("item").value).collect();
    assert_eq!(values, [0, 1, 2, 3]);
}

#[test]
fn plain_data_drop_runs_when_collected() {
    {
        let g = tricolor::pin();
        let _ = g.alloc(Logged {
            id: 1,
            label: "garbage".to_string(),
        });
        let _ = g.alloc(Handle {
            fd: 3,
            peer: Member::null(),
        });
        let kept = g.alloc(Plain {
            id: 9,
            name: "kept".to_string(),
        });
        let kept = kept.root();
        drop(g);
        collect();
        assert_eq!((kept.id, kept.name.as_str()), (9, "kept"));
    }
    // Dropping happens while sweeping; allow a few cycles for it.
    for _ in 0..20 {
        if LOGGED_DROPS.load(Ordering::SeqCst) > 0 && HANDLE_DROPS.load(Ordering::SeqCst) > 0 {
            break;
        }
        tricolor::gc();
    }
    assert_eq!(LOGGED_DROPS.load(Ordering::SeqCst), 1);
    assert_eq!(HANDLE_DROPS.load(Ordering::SeqCst), 1);
}

#[test]
fn unit_and_field_less_values_trace_nothing() {
    let g = tricolor::pin();
    let m = g.alloc(Marker);
    let s = g.alloc(Shape::Circle { r: 1 });
    let q = g.alloc(Shape::Square(2));
    let e = g.alloc(Shape::Empty);
    let b = g.alloc(Bytes {
        data: vec![1, 2, 3],
        hits: Cell::new(0),
    });
    b.hits.set(b.hits.get() + 1);
    let t = g.alloc(r#Type {
        r#type: 5,
        r#ref: Member::null(),
    });
    let _ = (m, e);
    assert!(matches!(*s, Shape::Circle { r: 1 }));
    assert!(matches!(*q, Shape::Square(2)));
    assert_eq!(b.data, [1, 2, 3]);
    assert_eq!(b.hits.get(), 1);
    assert_eq!(t.r#type, 5);
    assert!(t.r#ref.is_null());
    let pair = g.alloc(Pair {
        a: 1i64,
        b: Borrowed::<'static, str> {
            len: 3,
            _marker: PhantomData,
        },
    });
    assert_eq!((pair.a, pair.b.len), (1, 3));
}
