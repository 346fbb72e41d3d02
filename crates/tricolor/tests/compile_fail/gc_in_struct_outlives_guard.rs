// INV-GUARD: a `Gc` stored in an ordinary (unmanaged) struct still cannot
// outlive its guard: the struct carries the guard's lifetime.
use tricolor::{Gc, Member, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    next: Member<Node>,
}

struct Cursor<'g> {
    at: Gc<'g, Node>,
}

fn main() {
    let cursor;
    {
        let g = tricolor::pin();
        cursor = Cursor {
            at: g.alloc(Node {
                value: 1,
                next: Member::null(),
            }),
        };
    }
    println!("{}", cursor.at.value);
}
