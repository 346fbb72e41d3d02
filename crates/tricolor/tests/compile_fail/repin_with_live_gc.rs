// INV-GUARD: `repin` is a quiescent point, so it takes `&mut Guard` and cannot
// be called while a `Gc` borrowed from the guard is still used afterwards.
use tricolor::{Member, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    next: Member<Node>,
}

fn main() {
    let mut g = tricolor::pin();
    let gc = g.alloc(Node {
        value: 1,
        next: Member::null(),
    });
    g.repin();
    println!("{}", gc.value);
}
