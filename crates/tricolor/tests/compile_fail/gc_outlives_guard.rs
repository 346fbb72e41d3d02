// INV-GUARD: a `Gc<'g, T>` cannot outlive the guard it was obtained from.
use tricolor::{Member, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    next: Member<Node>,
}

fn main() {
    let gc;
    {
        let g = tricolor::pin();
        gc = g.alloc(Node {
            value: 1,
            next: Member::null(),
        });
    }
    println!("{}", gc.value);
}
